/* traceparent.h — finds a W3C trace context that a framework put into a
 * statement's SQL text as a sqlcommenter comment, e.g. the statement
 *   SELECT * FROM users
 * followed by a block comment whose content is
 *   controller='users',traceparent='00-4bf9...-00f0...-01'
 * so an entry gets that trace id (and the span id as its parent span).
 * ("block comment" is slash-star ... star-slash; spelled out here because
 * the characters themselves would end this comment.)
 *
 * What counts (anything else is ignored, never misread):
 *  - only block comments closed within the text, found by a scan that
 *    knows SQLite's lexical rules: '...' string literals, "..." / `...` /
 *    [...] identifiers and -- line comments are not looked into.
 *    sqlcommenter writes block comments only, so a traceparent in a --
 *    comment is not taken; neither is one in an unterminated block comment
 *    (often a text cut by the capture limit).
 *  - the comment's whole content must be sqlcommenter's form: key='value'
 *    pairs separated by commas, optional whitespace around them; values may
 *    carry \-escapes and %XX URL-encoding (both undone). A comment of any
 *    other shape (a human's remark) is skipped.
 *  - the key is exactly "traceparent" (lowercase, as sqlcommenter writes it).
 *  - the value must be a valid traceparent (W3C Trace Context level 1):
 *    version-traceid-parentid-flags, all lowercase hex; version 2 chars and
 *    not "ff"; trace id 32 chars, not all zeros; parent (span) id 16 chars,
 *    not all zeros; flags 2 chars. Version 00 is exactly 55 chars; a higher
 *    version may go on after a '-' at position 55 (those extra fields are
 *    ignored, as the spec asks).
 *  - when the text holds more than one traceparent (two comments, or a key
 *    repeated), they must all be valid and identical.
 * A NUL byte ends the text, as it ends it for sqlite3_prepare.
 */
#ifndef SQLTRACE_TRACEPARENT_H
#define SQLTRACE_TRACEPARENT_H

#include <stddef.h>

#define TRACEPARENT_TRACE_ID_LEN 32  /* hex chars, without the NUL */
#define TRACEPARENT_SPAN_ID_LEN  16

/* Looks for a sqlcommenter traceparent in the SQL text zSql[0..nSql) (not
 * necessarily NUL-terminated; nothing outside it is read).
 *
 * Returns 0 when one was found: zTraceId gets the 32 lowercase hex chars of
 * the trace id and zSpanId the 16 of the parent (span) id, NUL-terminated.
 * Returns -ENOENT when the text carries none, -EINVAL when a traceparent is
 * present but malformed (or several disagree), and -EINVAL when zTraceId or
 * zSpanId is NULL, or zSql is NULL with nSql > 0. On every error both
 * buffers (when not NULL) are set to "". */
int traceparent__extract(const char *zSql, size_t nSql,
			 char zTraceId[TRACEPARENT_TRACE_ID_LEN + 1],
			 char zSpanId[TRACEPARENT_SPAN_ID_LEN + 1]);

/* The same, and *pFlags (when not NULL) gets the trace-flags byte (bit 0:
 * sampled) on success. Several traceparents must agree on the flags too. */
int traceparent__extract_flags(const char *zSql, size_t nSql,
			       char zTraceId[TRACEPARENT_TRACE_ID_LEN + 1],
			       char zSpanId[TRACEPARENT_SPAN_ID_LEN + 1], unsigned *pFlags);

#endif
