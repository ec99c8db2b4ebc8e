/* units.c — durations and sizes as people write them on command lines
 * ("150ms", "1.5s", "64M"): see units.h. */
#include "units.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int units__parse_duration(const char *s, int64_t *us)
{
	static const struct { const char *unit; double us; } units[] = {
		{ "ns", 0.001 }, { "us", 1 }, { "\xc2\xb5s", 1 }, { "ms", 1000 },
		{ "s", 1000000 }, { "m", 60000000 }, { "h", 3600000000.0 },
	};
	double total = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*us = 0;
		return 0;
	}
	while (*p) {
		char *end;
		double v;
		size_t i, best = 0, bestlen = 0;

		if (*p == '-' || *p == '+')
			return -EINVAL;
		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || !isfinite(v) || v < 0)
			return -EINVAL;
		p = end;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].unit);

			if (strncmp(p, units[i].unit, n) == 0 && n > bestlen) {
				best = i;
				bestlen = n;
			}
		}
		if (!bestlen)
			return -EINVAL;
		/* "m" must not eat the "m" of "ms" */
		total += v * units[best].us;
		p += bestlen;
	}
	if (total > (double)INT64_MAX / 2)
		return -EINVAL;
	*us = (int64_t)llround(total);
	return 0;
}

int units__parse_size(const char *s, int64_t *bytes)
{
	char *end;
	long long v;
	int64_t mul = 1;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': mul = 1024; break;
		case 'm': case 'M': mul = 1024 * 1024; break;
		case 'g': case 'G': mul = 1024LL * 1024 * 1024; break;
		default: return -EINVAL;
		}
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v < 0 || v > INT64_MAX / mul)
		return -EINVAL;
	*bytes = v * mul;
	return 0;
}
