/* json.h — trace entries to and from JSON, the wire format shared with the
 * Go tracer's RemoteStore and IngestHandler (seed-behaviour.md).
 *
 * A batch is a JSON array of objects with exactly the Go keys TraceID, Op,
 * Query, DurationUs, Error, Timestamp, plus sqltrace-bpf's extra keys Pid,
 * Tid, Process, Rows, PrepareUs, QueryLen, Lib, DbFile, ParentSpanID, each
 * present only when known (not -1 / NULL). A Go decoder ignores the extras.
 *
 * Encoding writes what Go's json.Marshal writes for the same strings: every
 * invalid UTF-8 byte becomes \ufffd, controls are escaped (\n \r \t, else
 * \u00XX), and so are <, >, & and U+2028/U+2029 (Go's HTML-safe default).
 *
 * Decoding accepts what Go's encoding/json accepts into []*Entry, with the
 * same results (details at json__decode_batch).
 *
 * Implemented by json_encode.c (json_buf__free, json__encode_batch) and
 * json_decode.c (json__decode_batch, json__free_batch), with two internal
 * headers: json_text.h (UTF-8 and eight-bytes-at-a-time helpers both use)
 * and json_arena.h (the decoder's per-thread arena and cJSON hooks,
 * json_arena.c).
 */
#ifndef SQLTRACE_JSON_H
#define SQLTRACE_JSON_H

#include <stddef.h>

#include "entry.h"

/* A growable output buffer; zero-initialise, reuse, json_buf__free. */
struct json_buf {
	char *p;
	size_t len;
	size_t cap;
};

void json_buf__free(struct json_buf *b);

/* Replaces b's contents with the JSON array of batch[0..n) (n may be 0:
 * "[]"). When max_bytes is not 0, stops before the entry that would make the
 * array longer than max_bytes, but always encodes at least one entry.
 * Returns the number of entries encoded (0 only when n is 0), or -ENOMEM
 * (b is then left empty). b->p is not NUL-terminated. */
long json__encode_batch(struct json_buf *b, struct st_entry *const *batch, size_t n,
			size_t max_bytes);

/* Decodes a batch as Go's json.Unmarshal into []*Entry would, plus the
 * extra keys:
 *   - the top level is an array, or null (no entries, as in Go); anything
 *     else is an error;
 *   - an element is an object or null (null is skipped); anything else is an
 *     error;
 *   - keys are matched case-insensitively (Go's folding, so "ſ" matches "s"
 *     and "K" matches "k"); unknown keys are ignored; for duplicate keys the
 *     last one wins; null leaves a field at its zero value ("" and 0 for the
 *     Go fields, unknown for the extras);
 *   - a string field given anything but a string or null is an error; an
 *     int64 field (int32 for Pid, Tid) given anything but an integer literal
 *     in range (no fraction, no exponent: Go's strconv.ParseInt) is an error;
 *   - strings: invalid UTF-8 bytes and lone surrogate escapes become U+FFFD
 *     as in Go; an escaped NUL (\u0000) cuts the string there, because
 *     entries hold C strings (SQLite itself stops a statement's text at NUL);
 *   - the syntax is strict RFC 8259 as in Go (no BOM, no raw control
 *     characters in strings, no leading zeros or '+', nothing after the
 *     value but whitespace); nesting deeper than 1000 is refused (Go: 10000).
 * On success returns 0 with *out a malloc'd array of *n entries (NULL when
 * *n is 0) to release with json__free_batch; the entries are packed
 * (entry.h: their strings are read-only). On a bad payload returns
 * -EINVAL with a short reason in err ("element 2: DurationUs: number 1.5 is
 * not an int64"); -ENOMEM when memory ran out. Nothing is returned on error.
 * Thread-safe. Sets cJSON's allocation hooks on first use (plain
 * malloc/free, except inside this function, where cJSON allocates from a
 * per-thread arena): nothing else in the program may call cJSON_InitHooks.
 * A thread that has decoded keeps up to 4 MiB of that arena for its next
 * call, freed when the thread exits. */
int json__decode_batch(const char *buf, size_t len, struct st_entry ***out, size_t *n,
		       char *err, size_t errlen);

/* Frees v[0..n) and v. NULL is a no-op. */
void json__free_batch(struct st_entry **v, size_t n);

#endif
