/* groups.c — entries grouped by fingerprint (groups.h): an open-addressing
 * hash table from folded fingerprint to group. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"
#include "groups.h"

struct groups {
	bool keep_durations;
	struct group **v;      /* in order of first appearance */
	size_t n, cap;
	struct group **slots;  /* hash table, nslots a power of two */
	size_t nslots;
	uint64_t entries;
	char *buf;             /* fingerprint scratch */
	size_t bufcap;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct groups *groups__new(bool keep_durations)
{
	struct groups *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->keep_durations = keep_durations;
	g->nslots = 1024;
	g->slots = calloc(g->nslots, sizeof(*g->slots));
	if (!g->slots) {
		free(g);
		errno = ENOMEM;
		return NULL;
	}
	return g;
}

static int grow_table(struct groups *g)
{
	size_t ns = g->nslots * 2, i;
	struct group **slots = calloc(ns, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < g->n; i++) {
		size_t k = hash_str(g->v[i]->key) & (ns - 1);

		while (slots[k])
			k = (k + 1) & (ns - 1);
		slots[k] = g->v[i];
	}
	free(g->slots);
	g->slots = slots;
	g->nslots = ns;
	return 0;
}

static void free_group(struct group *gr)
{
	size_t i;

	if (!gr)
		return;
	free(gr->fingerprint);
	free(gr->key);
	free(gr->example);
	free(gr->durations);
	for (i = 0; i < gr->nerrs; i++)
		free(gr->errs[i].msg);
	free(gr);
}

/* Finds or creates the group of key (fp: the display form; query z[0..n)
 * the example). Returns it, or NULL on ENOMEM. */
static struct group *lookup(struct groups *g, const char *key, const char *fp, const char *z, size_t n)
{
	size_t k = hash_str(key) & (g->nslots - 1);
	struct group *gr;

	while (g->slots[k]) {
		if (strcmp(g->slots[k]->key, key) == 0)
			return g->slots[k];
		k = (k + 1) & (g->nslots - 1);
	}
	if ((g->n + 1) * 2 > g->nslots) {
		if (grow_table(g) != 0)
			return NULL;
		k = hash_str(key) & (g->nslots - 1);
		while (g->slots[k])
			k = (k + 1) & (g->nslots - 1);
	}
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 64;
		struct group **v = realloc(g->v, nc * sizeof(*v));

		if (!v)
			return NULL;
		g->v = v;
		g->cap = nc;
	}
	gr = calloc(1, sizeof(*gr));
	if (!gr)
		return NULL;
	gr->key = strdup(key);
	gr->fingerprint = strdup(fp);
	gr->example = strndup(z, n);
	if (!gr->key || !gr->fingerprint || !gr->example) {
		free_group(gr);
		return NULL;
	}
	gr->first_seen = INT64_MAX;
	gr->last_seen = INT64_MIN;
	g->slots[k] = gr;
	g->v[g->n++] = gr;
	return gr;
}

static void count_error(struct group *gr, const char *msg)
{
	size_t i;

	for (i = 0; i < gr->nerrs; i++)
		if (strcmp(gr->errs[i].msg, msg) == 0) {
			gr->errs[i].n++;
			return;
		}
	if (gr->nerrs < GROUP_MAX_ERRMSGS) {
		gr->errs[gr->nerrs].msg = strdup(msg);
		if (gr->errs[gr->nerrs].msg)
			gr->errs[gr->nerrs++].n = 1;
	}
}

int groups__add(struct groups *g, const char *query, size_t n, int64_t duration_us,
		const char *error, int64_t timestamp_us, int64_t rows)
{
	struct group *gr;
	size_t m;

	if (n + 1 > g->bufcap) {
		size_t nc = (n + 1) * 2 + 256;
		char *b = realloc(g->buf, nc * 2);

		if (!b)
			return -ENOMEM;
		g->buf = b;
		g->bufcap = nc;
	}
	/* display form in buf[0..], folded key in buf[bufcap..] */
	m = fingerprint__sql(query, n, g->buf);
	memcpy(g->buf + g->bufcap, g->buf, m + 1);
	fingerprint__fold(g->buf + g->bufcap);
	gr = lookup(g, g->buf + g->bufcap, g->buf, query, n);
	if (!gr)
		return -ENOMEM;
	if (g->keep_durations) {
		if (gr->ndurations == gr->capdurations) {
			size_t nc = gr->capdurations ? gr->capdurations * 2 : 16;
			int64_t *d = realloc(gr->durations, nc * sizeof(*d));

			if (!d)
				return -ENOMEM;
			gr->durations = d;
			gr->capdurations = nc;
		}
		gr->durations[gr->ndurations++] = duration_us;
	}
	hist__add(&gr->hist, duration_us);
	gr->count++;
	gr->total_us += duration_us;
	if (gr->count == 1 || duration_us > gr->max_us)
		gr->max_us = duration_us;
	if (error && error[0]) {
		gr->errors++;
		count_error(gr, error);
	}
	if (rows >= 0) {
		gr->rows += rows;
		gr->rows_known = true;
	}
	if (timestamp_us < gr->first_seen)
		gr->first_seen = timestamp_us;
	if (timestamp_us > gr->last_seen)
		gr->last_seen = timestamp_us;
	g->entries++;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int64_t groups__percentile(const int64_t *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

int groups__finish(struct groups *g)
{
	size_t i, k;

	for (i = 0; i < g->n; i++) {
		struct group *gr = g->v[i];
		uint64_t best = 0;

		if (g->keep_durations) {
			qsort(gr->durations, gr->ndurations, sizeof(int64_t), cmp_i64);
			gr->p50_us = groups__percentile(gr->durations, gr->ndurations, 50);
			gr->p95_us = groups__percentile(gr->durations, gr->ndurations, 95);
			gr->p99_us = groups__percentile(gr->durations, gr->ndurations, 99);
		} else {
			gr->p50_us = hist__quantile(&gr->hist, 50, gr->max_us);
			gr->p95_us = hist__quantile(&gr->hist, 95, gr->max_us);
			gr->p99_us = hist__quantile(&gr->hist, 99, gr->max_us);
		}
		gr->top_error = NULL;
		for (k = 0; k < gr->nerrs; k++)
			if (gr->errs[k].n > best) {
				best = gr->errs[k].n;
				gr->top_error = gr->errs[k].msg;
			}
	}
	return 0;
}

size_t groups__count(const struct groups *g)
{
	return g->n;
}

uint64_t groups__entries(const struct groups *g)
{
	return g->entries;
}

struct group *groups__at(struct groups *g, size_t i)
{
	return i < g->n ? g->v[i] : NULL;
}

static double key_of(const struct group *gr, enum group_sort sort_key)
{
	switch (sort_key) {
	case SORT_COUNT:
		return (double)gr->count;
	case SORT_MEAN:
		return gr->count ? (double)gr->total_us / (double)gr->count : 0;
	case SORT_P99:
		return (double)gr->p99_us;
	case SORT_ERRORS:
		return (double)gr->errors;
	case SORT_TOTAL:
	default:
		return (double)gr->total_us;
	}
}

static int cmp_group(const void *a, const void *b, void *arg)
{
	const struct group *x = *(const struct group *const *)a, *y = *(const struct group *const *)b;
	enum group_sort key = *(const enum group_sort *)arg;
	double kx = key_of(x, key), ky = key_of(y, key);

	if (kx != ky)
		return kx > ky ? -1 : 1;
	if (x->total_us != y->total_us)
		return x->total_us > y->total_us ? -1 : 1;
	return strcmp(x->key, y->key);
}

void groups__sort(struct group **v, size_t n, enum group_sort key)
{
	qsort_r(v, n, sizeof(*v), cmp_group, &key);
}

int groups__parse_sort(const char *s, enum group_sort *out)
{
	static const char *const names[] = { "total", "count", "mean", "p99", "errors" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum group_sort)i;
			return 0;
		}
	return -EINVAL;
}

void groups__free(struct groups *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->n; i++)
		free_group(g->v[i]);
	free(g->v);
	free(g->slots);
	free(g->buf);
	free(g);
}
