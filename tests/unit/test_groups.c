/* test_groups.c — analysis/groups.c and hist.c: grouping by fingerprint,
 * nearest-rank percentiles against a brute-force count, the histogram's
 * bucket bounds and quantile error bound, error messages, sorting. */
#include "harness.h"

#include <stdlib.h>

#include "groups.h"
#include "hist.h"

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The smallest v such that at least ceil(p/100 n) values are <= v. */
static int64_t brute_rank(const int64_t *v, size_t n, double p)
{
	size_t need = (size_t)((p * (double)n + 99.999999) / 100), i, j, le;

	if (need < 1)
		need = 1;
	for (i = 0; i < n; i++) {
		int64_t best = v[i];

		for (le = 0, j = 0; j < n; j++)
			le += v[j] <= best;
		if (le >= need) {
			bool smallest = true;

			for (j = 0; j < n && smallest; j++) {
				size_t le2 = 0, k;

				if (v[j] >= best)
					continue;
				for (k = 0; k < n; k++)
					le2 += v[k] <= v[j];
				smallest = le2 < need;
			}
			if (smallest)
				return best;
		}
	}
	return -1;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static bool test_percentile_nearest_rank(void)
{
	static const double ps[] = { 50, 95, 99, 1, 100 };
	int64_t v[200], s[200];
	size_t n, i, k;

	for (n = 1; n <= 200; n += 13) {
		for (i = 0; i < n; i++)
			v[i] = s[i] = (int64_t)(rnd() % 50);
		qsort(s, n, sizeof(s[0]), cmp64);
		for (k = 0; k < sizeof(ps) / sizeof(ps[0]); k++)
			ASSERT_EQ_INT(groups__percentile(s, n, ps[k]), brute_rank(v, n, ps[k]));
	}
	ASSERT_EQ_INT(groups__percentile(s, 0, 50), 0);
	return true;
}

static bool test_hist_bounds_and_error(void)
{
	struct hist *h = calloc(1, sizeof(*h));
	int64_t *v = malloc(5000 * sizeof(*v));
	unsigned b;
	size_t i;

	ASSERT_TRUE(h && v);
	for (b = 0; b + 1 < HIST_BUCKETS; b++)
		ASSERT_EQ_INT(hist__upper(b) + 1, hist__lower(b + 1));
	for (i = 0; i < 100000; i++) {
		int64_t d = (int64_t)((rnd() >> 1) >> (rnd() % 63));

		b = hist__bucket(d);
		ASSERT_TRUE(b < HIST_BUCKETS);
		ASSERT_TRUE(hist__lower(b) <= d && d <= hist__upper(b));
	}
	ASSERT_EQ_INT(hist__bucket(INT64_MAX) < HIST_BUCKETS, 1);
	ASSERT_EQ_INT(hist__bucket(-5), 0);
	for (i = 0; i < 5000; i++) {
		v[i] = (int64_t)(rnd() % 100000);
		hist__add(h, v[i]);
	}
	qsort(v, 5000, sizeof(*v), cmp64);
	{
		static const double ps[] = { 50, 95, 99 };

		for (i = 0; i < 3; i++) {
			int64_t exact = groups__percentile(v, 5000, ps[i]);
			int64_t est = hist__quantile(h, ps[i], v[4999]);

			ASSERT_TRUE(est >= exact && (double)est <= (double)exact * 1.125 + 1);
		}
	}
	free(h);
	free(v);
	return true;
}

static bool test_grouping_and_errors(void)
{
	struct groups *g = groups__new(true);
	struct group *v[3];
	size_t i;

	ASSERT_TRUE(g);
	for (i = 0; i < 10; i++) {
		char q[128];

		snprintf(q, sizeof(q), "%s * FROM t WHERE id = %zu /* traceparent='00-%zu' */",
			 i % 2 ? "select" : "SELECT", i, i);
		ASSERT_EQ_INT(groups__add(g, q, strlen(q), (int64_t)(i + 1) * 10,
					  i < 3 ? "" : (i < 6 ? "database is locked" : "disk I/O error"),
					  1000 + (int64_t)i, i % 3 ? (int64_t)i : -1), 0);
	}
	ASSERT_EQ_INT(groups__add(g, "DELETE FROM t", 13, 1000, NULL, 5, -1), 0);
	ASSERT_EQ_INT(groups__add(g, "UPDATE t SET a = 1", 18, 1, "x", 7, -1), 0);
	ASSERT_EQ_INT(groups__finish(g), 0);
	ASSERT_EQ_INT(groups__count(g), 3);
	ASSERT_EQ_INT(groups__entries(g), 12);
	v[0] = groups__at(g, 0);
	ASSERT_EQ_STR(v[0]->fingerprint, "SELECT * FROM t WHERE id = ?");  /* first seen's case */
	ASSERT_EQ_STR(v[0]->example, "SELECT * FROM t WHERE id = 0 /* traceparent='00-0' */");
	ASSERT_EQ_INT(v[0]->count, 10);
	ASSERT_EQ_INT(v[0]->total_us, 550);
	ASSERT_EQ_INT(v[0]->max_us, 100);
	ASSERT_EQ_INT(v[0]->p50_us, 50);
	ASSERT_EQ_INT(v[0]->p95_us, 100);
	ASSERT_EQ_INT(v[0]->errors, 7);
	ASSERT_EQ_STR(v[0]->top_error, "disk I/O error");  /* 4 against 3 */
	ASSERT_EQ_INT(v[0]->rows, 1 + 2 + 4 + 5 + 7 + 8);
	ASSERT_EQ_INT(v[0]->first_seen, 1000);
	ASSERT_EQ_INT(v[0]->last_seen, 1009);
	ASSERT_TRUE(!groups__at(g, 1)->rows_known);
	ASSERT_TRUE(groups__at(g, 1)->top_error == NULL);
	for (i = 0; i < 3; i++)
		v[i] = groups__at(g, i);
	groups__sort(v, 3, SORT_TOTAL);
	ASSERT_EQ_STR(v[0]->fingerprint, "DELETE FROM t");
	groups__sort(v, 3, SORT_COUNT);
	ASSERT_EQ_INT(v[0]->count, 10);
	groups__sort(v, 3, SORT_ERRORS);
	ASSERT_EQ_INT(v[0]->errors, 7);
	ASSERT_EQ_INT(v[2]->errors, 0);
	groups__free(g);
	return true;
}

static bool test_many_groups(void)
{
	struct groups *g = groups__new(false);
	size_t i;

	ASSERT_TRUE(g);
	for (i = 0; i < 20000; i++) {
		char q[64];
		int n = snprintf(q, sizeof(q), "SELECT c%zu FROM t WHERE x = %zu", i % 5000, i);

		ASSERT_EQ_INT(groups__add(g, q, (size_t)n, 1, "", 0, -1), 0);
	}
	ASSERT_EQ_INT(groups__count(g), 5000);
	for (i = 0; i < 5000; i++)
		ASSERT_EQ_INT(groups__at(g, i)->count, 4);
	groups__free(g);
	return true;
}

int main(void)
{
	RUN(test_percentile_nearest_rank);
	RUN(test_hist_bounds_and_error);
	RUN(test_grouping_and_errors);
	RUN(test_many_groups);
	return harness_done();
}
