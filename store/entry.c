/* entry.c — allocation, copy and release of trace entries (see entry.h). */
#include "entry.h"

#include <errno.h>
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
	free(e->trace_id);
	free(e->op);
	free(e->query);
	free(e->error);
	free(e->process);
	free(e->lib);
	free(e->db_file);
	free(e->parent_span_id);
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

static int copy_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	return entry__set_str(dst, src);
}

struct st_entry *entry__clone(const struct st_entry *e)
{
	struct st_entry *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	*c = *e;
	c->trace_id = c->op = c->query = c->error = NULL;
	c->process = c->lib = c->db_file = c->parent_span_id = NULL;
	if (copy_opt(&c->trace_id, e->trace_id) || copy_opt(&c->op, e->op) ||
	    copy_opt(&c->query, e->query) || copy_opt(&c->error, e->error) ||
	    copy_opt(&c->process, e->process) || copy_opt(&c->lib, e->lib) ||
	    copy_opt(&c->db_file, e->db_file) ||
	    copy_opt(&c->parent_span_id, e->parent_span_id)) {
		entry__free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}
