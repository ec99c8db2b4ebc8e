/* hist.h — a log-scale latency histogram of durations in µs: exact below
 * 16 µs, then 8 buckets per power of two (each at most 1/8 of its lower
 * bound wide, so a quantile read from it is within 12.5% of the truth).
 * Fixed size, no allocation: what `top` keeps per fingerprint and what the
 * HTML report draws. */
#ifndef SQLTRACE_HIST_H
#define SQLTRACE_HIST_H

#include <stdint.h>

#define HIST_BUCKETS 496

struct hist {
	uint64_t n[HIST_BUCKETS];
	uint64_t total;
};

/* The bucket of d µs (d < 0 counts as 0). This function can't fail. */
unsigned hist__bucket(int64_t d);

/* The smallest and largest durations that fall in bucket b. */
int64_t hist__lower(unsigned b);
int64_t hist__upper(unsigned b);

static inline void hist__add(struct hist *h, int64_t d)
{
	h->n[hist__bucket(d)]++;
	h->total++;
}

/* Nearest-rank quantile p (0 < p <= 100) read from h: the upper bound of the
 * bucket that holds rank ceil(p/100 * total), at most max_seen when given
 * (>= 0). 0 when h is empty. */
int64_t hist__quantile(const struct hist *h, double p, int64_t max_seen);

#endif
