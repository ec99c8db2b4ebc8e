/* entry.c — allocation, copy and release of trace entries (see entry.h):
 * separate entries (one heap block per string, for producers that fill them
 * in steps) and packed ones (struct and strings in one block, for copies
 * that cross threads: one malloc, one free). */
#include "entry.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static char *dup_empty(void)
{
	return calloc(1, 1);
}

struct st_entry *entry__new(void)
{
	struct st_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->trace_id = dup_empty();
	e->op = dup_empty();
	e->query = dup_empty();
	e->error = dup_empty();
	if (!e->trace_id || !e->op || !e->query || !e->error) {
		entry__free(e);
		errno = ENOMEM;
		return NULL;
	}
	e->pid = -1;
	e->tid = -1;
	e->rows = -1;
	e->prepare_us = -1;
	e->query_len = -1;
	return e;
}

void entry__free(struct st_entry *e)
{
	if (!e)
		return;
	if (!e->packed_size) {
		free(e->trace_id);
		free(e->op);
		free(e->query);
		free(e->error);
		free(e->process);
		free(e->lib);
		free(e->db_file);
		free(e->parent_span_id);
	}
	free(e);
}

int entry__set_strn(char **slot, const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return -ENOMEM;
	memcpy(p, s, n);
	p[n] = '\0';
	free(*slot);
	*slot = p;
	return 0;
}

int entry__set_str(char **slot, const char *s)
{
	return entry__set_strn(slot, s, strlen(s));
}

/* The string slots, seed strings first. */
static const size_t str_off[] = {
	offsetof(struct st_entry, trace_id), offsetof(struct st_entry, op),
	offsetof(struct st_entry, query),    offsetof(struct st_entry, error),
	offsetof(struct st_entry, process),  offsetof(struct st_entry, lib),
	offsetof(struct st_entry, db_file),  offsetof(struct st_entry, parent_span_id),
};
#define NSTR (sizeof(str_off) / sizeof(str_off[0]))
#define NSEED 4

static const char *str_at(const struct st_entry *e, size_t i)
{
	return *(char *const *)((const char *)e + str_off[i]);
}

/* One block: the struct, then every string that is not NULL (a NULL seed
 * string becomes ""), each NUL-terminated. */
struct st_entry *entry__clone(const struct st_entry *e)
{
	size_t len[NSTR], size = sizeof(*e);
	struct st_entry *c;
	char *o;

	for (size_t i = 0; i < NSTR; i++) {
		const char *s = str_at(e, i);

		len[i] = s ? strlen(s) : 0;
		size += s || i < NSEED ? len[i] + 1 : 0;
	}
	c = malloc(size);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	*c = *e;
	c->packed_size = size;
	o = (char *)(c + 1);
	for (size_t i = 0; i < NSTR; i++) {
		const char *s = str_at(e, i);

		if (!s && i >= NSEED)
			continue; /* an unknown extra stays NULL */
		*(char **)((char *)c + str_off[i]) = o;
		memcpy(o, s ? s : "", len[i]);
		o[len[i]] = '\0';
		o += len[i] + 1;
	}
	return c;
}
