/* event.h — turning a ring buffer record (struct st_event) into a trace
 * entry: text decoding and cutting, Op, error text, wall-clock time. */
#ifndef SQLTRACE_EVENT_H
#define SQLTRACE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "sqltrace.h"

/* Builds an entry from a record of kind STMT, EXEC or PREPARE_FAIL.
 * size is the record's size as received (it is variable). wall_offset_us
 * converts CLOCK_MONOTONIC µs to unix µs. fallback_text, when not NULL, is
 * used for a STMT record whose text could not be read in BPF. lib is the
 * path of the SQLite copy (may be NULL). On error, NULL is returned (errno
 * EINVAL for a malformed record, ENOMEM). */
struct st_entry *event__to_entry(const struct st_event *ev, size_t size, int64_t wall_offset_us,
				 const char *fallback_text, const char *lib);

/* Copies the record's text out as UTF-8 (converting UTF-16) into a malloc'd
 * string; *len gets its length. Returns NULL on error. */
char *event__text(const struct st_event *ev, size_t size, size_t *len);

#endif
