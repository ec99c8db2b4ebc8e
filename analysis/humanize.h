/* humanize.h — numbers and text for a person's screen, shared by the text
 * report and `top`: durations with units, counts with a suffix, and text cut
 * to a number of terminal columns with a marker. */
#ifndef SQLTRACE_HUMANIZE_H
#define SQLTRACE_HUMANIZE_H

#include <stddef.h>
#include <stdint.h>

/* Writes us as at most 7 columns ("999µs", "12.3ms", "1.50s", "2.5min",
 * "3.1h") into buf (room for 16 bytes). Returns buf. */
char *humanize__us(char *buf, int64_t us);

/* Writes n as at most 7 columns ("1234567", "12.3M", "4.5G"). Returns buf
 * (room for 16 bytes). */
char *humanize__count(char *buf, uint64_t n);

/* Terminal columns of UTF-8 text s (one per code point). */
size_t humanize__cols(const char *s);

/* Copies s into out (room for outlen bytes), cut to at most cols columns:
 * a longer text keeps cols - 1 columns and ends with "…". Control
 * characters become spaces. Returns out. */
char *humanize__fit(char *out, size_t outlen, const char *s, size_t cols);

/* Right-aligns s in width terminal columns: writes the padding and s into
 * out (room for width + 16 bytes). Returns out. */
char *humanize__right(char *out, const char *s, size_t width);

#endif
