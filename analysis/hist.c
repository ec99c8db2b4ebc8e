/* hist.c — the log-scale latency histogram (hist.h). */
#include <math.h>

#include "hist.h"

unsigned hist__bucket(int64_t d)
{
	unsigned e;

	if (d < 16)
		return d < 0 ? 0 : (unsigned)d;
	e = 63u - (unsigned)__builtin_clzll((unsigned long long)d);  /* >= 4 */
	return 16u + (e - 4u) * 8u + (unsigned)(((uint64_t)d >> (e - 3u)) & 7u);
}

int64_t hist__lower(unsigned b)
{
	unsigned e, sub;

	if (b < 16)
		return b;
	e = (b - 16u) / 8u + 4u;
	sub = (b - 16u) % 8u;
	if (e >= 64u)
		return INT64_MAX;
	{
		uint64_t v = (uint64_t)(8u + sub) << (e - 3u);

		return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
	}
}

int64_t hist__upper(unsigned b)
{
	if (b + 1 >= HIST_BUCKETS)
		return INT64_MAX;
	return hist__lower(b + 1) - 1;
}

int64_t hist__quantile(const struct hist *h, double p, int64_t max_seen)
{
	uint64_t rank, seen = 0;
	unsigned b;

	if (h->total == 0)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->total);
	if (rank < 1)
		rank = 1;
	for (b = 0; b < HIST_BUCKETS; b++) {
		seen += h->n[b];
		if (seen >= rank) {
			int64_t up = hist__upper(b);

			return max_seen >= 0 && up > max_seen ? max_seen : up;
		}
	}
	return max_seen >= 0 ? max_seen : 0;
}
