/* units.h — parsing of durations and sizes written with units, shared by
 * the tracer's and the ingest server's command lines. */
#ifndef SQLTRACE_UNITS_H
#define SQLTRACE_UNITS_H

#include <stdint.h>

/* Parses a Go-style duration ("150ms", "1.5s", "250us", "2m", "1h30m", "0")
 * into microseconds. Returns 0 or -EINVAL (empty, negative, no unit, an
 * unknown unit, too large). */
int units__parse_duration(const char *s, int64_t *us);

/* Parses a size with an optional K/M/G suffix (powers of 1024; "KiB", "MB"
 * accepted) into bytes. Returns 0 or -EINVAL. */
int units__parse_size(const char *s, int64_t *bytes);

#endif
