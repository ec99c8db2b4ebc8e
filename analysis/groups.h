/* groups.h — entries grouped by fingerprint, with the figures `report` and
 * `top` show: counts, totals, exact nearest-rank percentiles (report) or
 * histogram estimates (top), errors and their most frequent message.
 *
 * Not thread-safe: one caller at a time (top holds its own lock). */
#ifndef SQLTRACE_GROUPS_H
#define SQLTRACE_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define GROUP_MAX_ERRMSGS 16  /* distinct messages counted per group */

struct group_err {
	char *msg;
	uint64_t n;
};

struct group {
	char *fingerprint;     /* of the first entry seen, case kept */
	char *key;             /* folded fingerprint: what makes the group */
	char *example;         /* the first entry's full query */
	uint64_t count;
	int64_t total_us;
	int64_t max_us;
	uint64_t errors;       /* entries with a non-empty error */
	int64_t rows;          /* sum of the known row counts */
	bool rows_known;       /* at least one entry carried a row count */
	int64_t first_seen, last_seen;  /* unix µs */
	struct hist hist;
	int64_t *durations;    /* every duration, with keep_durations */
	size_t ndurations, capdurations;
	struct group_err errs[GROUP_MAX_ERRMSGS];
	size_t nerrs;
	/* filled by groups__finish */
	int64_t p50_us, p95_us, p99_us;
	const char *top_error; /* most frequent message, NULL without errors */
	/* free for the caller (top: the count at the previous screen) */
	uint64_t mark;
};

struct groups;

/* keep_durations: store every duration for exact percentiles (8 bytes an
 * entry); else percentiles are read from the histogram. On error, NULL is
 * returned and errno set. */
struct groups *groups__new(bool keep_durations);

/* Adds one entry (query is z[0..n), error NULL or "" for success, rows < 0
 * unknown). Returns 0, or -ENOMEM (the entry is then not counted). */
int groups__add(struct groups *g, const char *query, size_t n, int64_t duration_us,
		const char *error, int64_t timestamp_us, int64_t rows);

/* Sorts each group's durations and fills p50/p95/p99 and top_error.
 * Returns 0 or -ENOMEM. Adding after finish is allowed (finish again). */
int groups__finish(struct groups *g);

size_t groups__count(const struct groups *g);
uint64_t groups__entries(const struct groups *g);
struct group *groups__at(struct groups *g, size_t i);

/* Nearest-rank percentile p of sorted v[0..n): v[ceil(p/100 n) - 1]; 0 when
 * n is 0. */
int64_t groups__percentile(const int64_t *v, size_t n, double p);

enum group_sort { SORT_TOTAL, SORT_COUNT, SORT_MEAN, SORT_P99, SORT_ERRORS };

/* Orders v[0..n) by key, largest first, ties by total then fingerprint. */
void groups__sort(struct group **v, size_t n, enum group_sort key);

/* Parses "total|count|mean|p99|errors". Returns 0 or -EINVAL. */
int groups__parse_sort(const char *s, enum group_sort *out);

void groups__free(struct groups *g);

#endif
