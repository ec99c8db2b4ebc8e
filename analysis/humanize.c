/* humanize.c — numbers and text for a person's screen (humanize.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "humanize.h"

char *humanize__us(char *buf, int64_t us)
{
	double v = (double)us;

	if (us < 0)
		snprintf(buf, 16, "<0");  /* a file can hold anything */
	else if (us < 1000)
		snprintf(buf, 16, "%dµs", (int)us);
	else if (us < 1000000)
		snprintf(buf, 16, v < 9999.5 ? "%.2fms" : v < 99950 ? "%.1fms" : "%.0fms", v / 1000);
	else if (us < 60000000)
		snprintf(buf, 16, v < 9995000 ? "%.2fs" : "%.1fs", v / 1e6);
	else if (us < 3600000000LL)
		snprintf(buf, 16, "%.1fmin", v / 6e7);
	else if (us < 360000000000LL)
		snprintf(buf, 16, "%.1fh", v / 3.6e9);
	else
		snprintf(buf, 16, "%.0fh", v / 3.6e9);
	return buf;
}

char *humanize__count(char *buf, uint64_t n)
{
	if (n < 10000000)
		snprintf(buf, 16, "%" PRIu64, n);
	else if (n < 1000000000)
		snprintf(buf, 16, "%.1fM", (double)n / 1e6);
	else
		snprintf(buf, 16, "%.1fG", (double)n / 1e9);
	return buf;
}

/* Bytes of the character at p: a lead byte and its continuation bytes (at
 * most 4), or 1 for any other byte (a stray continuation byte included). */
static size_t char_len(const unsigned char *p)
{
	size_t len = 1;

	if (*p >= 0xC0)
		while ((p[len] & 0xC0) == 0x80 && len < 4)
			len++;
	return len;
}

size_t humanize__cols(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p) {
		p += char_len(p);
		n++;
	}
	return n;
}

char *humanize__fit(char *out, size_t outlen, const char *s, size_t cols)
{
	size_t total = humanize__cols(s), keep = total <= cols ? total : (cols ? cols - 1 : 0);
	size_t o = 0, c = 0;
	const unsigned char *p = (const unsigned char *)s;

	if (outlen == 0)
		return out;
	while (*p && o + 8 < outlen) {
		size_t len = char_len(p);

		if (c == keep)
			break;
		if (*p < 0x20 || *p == 0x7f)
			out[o++] = ' ';
		else if (*p >= 0x80 && *p < 0xC0)
			out[o++] = '?';   /* a stray continuation byte */
		else {
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
		c++;
	}
	if (keep < total && cols > 0 && o + 4 <= outlen) {
		memcpy(out + o, "\xe2\x80\xa6", 3);  /* … */
		o += 3;
	}
	out[o] = '\0';
	return out;
}

char *humanize__right(char *out, const char *s, size_t width)
{
	size_t cols = humanize__cols(s), pad = cols < width ? width - cols : 0;

	memset(out, ' ', pad);
	strcpy(out + pad, s);  /* s comes from humanize__us/count: at most 15 bytes */
	return out;
}
