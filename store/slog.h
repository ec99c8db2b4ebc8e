/* slog.h — entries as log lines in the format of Go's log/slog handlers
 * (TextHandler: key=value, JSONHandler: one object per line), with the Go
 * tracer's message and attributes: msg=SQL component=sql op query duration
 * [trace_id] [error], then sqltrace-bpf's extra fields. */
#ifndef SQLTRACE_SLOG_H
#define SQLTRACE_SLOG_H

#include <stdint.h>
#include <stddef.h>

#include "entry.h"
#include "strbuf.h"

enum slog_level { SLOG_DEBUG = -4, SLOG_INFO = 0, SLOG_WARN = 4, SLOG_ERROR = 8 };
enum slog_format { SLOG_TEXT = 0, SLOG_JSON = 1 };

/* ERROR when the entry failed, WARN when it ran longer than slow_us,
 * DEBUG otherwise (the Go tracer's adaptive levels). */
enum slog_level slog__entry_level(const struct st_entry *e, int64_t slow_us);

/* Parses "debug", "info", "warn", "error" (any case). Returns 0 or -EINVAL. */
int slog__parse_level(const char *s, enum slog_level *out);
const char *slog__level_name(enum slog_level l);

/* Appends one line, newline included, for the entry. */
void slog__format_entry(struct strbuf *b, enum slog_format fmt, const struct st_entry *e,
			int64_t slow_us);

/* Go's time.Duration.String() for a duration in nanoseconds ("1.5ms"). */
void slog__duration(struct strbuf *b, int64_t ns);

/* Appends a text-handler value: bare when safe, else quoted as Go's
 * strconv.Quote does (invalid UTF-8 bytes as \x.., controls escaped). */
void slog__text_value(struct strbuf *b, const char *s);

/* Appends s as a JSON string with quotes, escaped as slog's JSON handler
 * does (invalid UTF-8 becomes \ufffd). */
void slog__json_string(struct strbuf *b, const char *s);

/* Appends the time (unix µs) as the text handler does
 * (2006-01-02T15:04:05.000Z07:00) or the JSON handler (RFC 3339, fraction
 * trimmed). */
void slog__time(struct strbuf *b, int64_t unix_us, enum slog_format fmt);

/* The tool's own diagnostic lines (not entries), in slog's text format on
 * stderr: slog__line_begin writes time, level and msg into b; attributes
 * follow with slog__line_str / slog__line_int; slog__line_end writes the
 * line with one fwrite (so lines of several threads never interleave) and
 * frees b. */
void slog__line_begin(struct strbuf *b, enum slog_level lvl, const char *msg);
void slog__line_str(struct strbuf *b, const char *key, const char *val);
void slog__line_int(struct strbuf *b, const char *key, int64_t v);
void slog__line_end(struct strbuf *b);

/* Decodes one UTF-8 character of s (n bytes available). Returns its length
 * and the code point in *cp, or 1 with *cp = -1 for an invalid byte. */
size_t slog__utf8_decode(const unsigned char *s, size_t n, int32_t *cp);

#endif
