/* sqltext.h — rules on SQL text that do not need a target: which Op an
 * execution is, UTF-16 to UTF-8, cutting long text with a visible marker. */
#ifndef SQLTRACE_SQLTEXT_H
#define SQLTRACE_SQLTEXT_H

#include <stddef.h>
#include <stdint.h>

/* The marker appended to text that was cut (the entry's query_len keeps the
 * original length). */
#define SQLTEXT_CUT_MARKER " /* sqltrace: text cut */"

/* "Query" when the execution returned rows (rows > 0) or the text begins,
 * after blanks and comments, with SELECT, WITH, PRAGMA, EXPLAIN or VALUES
 * (any case); otherwise "Exec". Reads at most len bytes of sql. This
 * function can't fail. */
const char *sqltext__op(const char *sql, size_t len, int64_t rows);

/* Converts UTF-16LE (inlen bytes, odd byte ignored) to UTF-8, stopping at
 * U+0000. Unpaired surrogates become U+FFFD. Writes at most outcap-1 bytes
 * plus a NUL, never splitting a character. Returns the bytes written (without
 * the NUL). This function can't fail. */
size_t sqltext__utf16le_to_utf8(const uint8_t *in, size_t inlen, char *out, size_t outcap);

/* Length of the longest prefix of s (len bytes) that does not end inside a
 * UTF-8 sequence: used to cut text on a character boundary. */
size_t sqltext__utf8_boundary(const char *s, size_t len);

/* Trims ASCII blanks at both ends of s in place (at the end only when
 * trim_end). Returns the new length; *lead gets the count removed in front. */
size_t sqltext__trim(char *s, size_t len, int trim_end, size_t *lead);

#endif
