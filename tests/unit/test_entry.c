/* test_entry.c — unit tests of store/entry.c: separate entries (entry__new,
 * strings replaced one by one) and packed copies (entry__clone: the entry
 * and its strings in one block, NULL extras kept NULL, NULL seed strings
 * copied as ""), each released by entry__free (ASan checks the frees). */
#include "harness.h"
#include "entry.h"

#include <stdlib.h>

static bool test_new_defaults(void)
{
	struct st_entry *e = entry__new();

	ASSERT_TRUE(e);
	ASSERT_EQ_STR(e->trace_id, "");
	ASSERT_EQ_STR(e->op, "");
	ASSERT_EQ_STR(e->query, "");
	ASSERT_EQ_STR(e->error, "");
	ASSERT_TRUE(!e->process && !e->lib && !e->db_file && !e->parent_span_id);
	ASSERT_EQ_INT(e->pid, -1);
	ASSERT_EQ_INT(e->rows, -1);
	ASSERT_EQ_INT(e->packed_size, 0);
	entry__free(e);
	return true;
}

/* The producers' ways of changing a separate entry's strings. */
static bool test_separate_strings_replaced(void)
{
	struct st_entry *e = entry__new();
	char *q = strdup("SELECT 2");

	ASSERT_TRUE(e && q);
	ASSERT_EQ_INT(entry__set_str(&e->op, "Query"), 0);
	ASSERT_EQ_INT(entry__set_strn(&e->lib, "/lib/x.so.0", 8), 0);
	ASSERT_EQ_INT(entry__set_str(&e->lib, "/lib/y.so"), 0);
	free(e->query);
	e->query = q;
	ASSERT_EQ_STR(e->op, "Query");
	ASSERT_EQ_STR(e->lib, "/lib/y.so");
	ASSERT_EQ_STR(e->query, "SELECT 2");
	entry__free(e);
	return true;
}

static bool test_clone_is_packed(void)
{
	struct st_entry *e = entry__new(), *c, *c2;

	ASSERT_TRUE(e);
	ASSERT_EQ_INT(entry__set_str(&e->query, "INSERT INTO t VALUES (1)"), 0);
	ASSERT_EQ_INT(entry__set_str(&e->process, "app"), 0);
	ASSERT_EQ_INT(entry__set_str(&e->parent_span_id, "00f067aa0ba902b7"), 0);
	e->duration_us = 12;
	e->pid = 7;
	c = entry__clone(e);
	entry__free(e);
	ASSERT_TRUE(c);
	ASSERT_TRUE(c->packed_size > sizeof(*c));
	ASSERT_EQ_STR(c->query, "INSERT INTO t VALUES (1)");
	ASSERT_EQ_STR(c->process, "app");
	ASSERT_EQ_STR(c->parent_span_id, "00f067aa0ba902b7");
	ASSERT_EQ_STR(c->trace_id, "");
	ASSERT_TRUE(!c->lib && !c->db_file);
	ASSERT_EQ_INT(c->duration_us, 12);
	ASSERT_EQ_INT(c->pid, 7);
	/* every string inside the one block */
	ASSERT_TRUE(c->query > (char *)c && c->query < (char *)c + c->packed_size);
	ASSERT_TRUE(c->process > (char *)c && c->process < (char *)c + c->packed_size);
	/* a clone of a packed entry is packed on its own */
	c2 = entry__clone(c);
	entry__free(c);
	ASSERT_TRUE(c2);
	ASSERT_EQ_STR(c2->parent_span_id, "00f067aa0ba902b7");
	ASSERT_TRUE(c2->query > (char *)c2 && c2->query < (char *)c2 + c2->packed_size);
	entry__free(c2);
	return true;
}

/* A struct on the stack pointing at anything, as the JSON decoder builds
 * one: NULL seed strings become "", NULL extras stay NULL. */
static bool test_clone_of_stack_struct(void)
{
	char query[] = "SELECT 1";
	struct st_entry s = { .query = query, .pid = -1, .tid = 5, .rows = -1,
			      .prepare_us = -1, .query_len = -1, .db_file = "/a.db" };
	struct st_entry *c = entry__clone(&s);

	ASSERT_TRUE(c);
	query[0] = 'X'; /* the copy does not share the text */
	ASSERT_EQ_STR(c->query, "SELECT 1");
	ASSERT_EQ_STR(c->op, "");
	ASSERT_EQ_STR(c->trace_id, "");
	ASSERT_EQ_STR(c->error, "");
	ASSERT_EQ_STR(c->db_file, "/a.db");
	ASSERT_TRUE(!c->process && !c->lib && !c->parent_span_id);
	ASSERT_EQ_INT(c->tid, 5);
	entry__free(c);
	return true;
}

int main(void)
{
	harness_skip_reason = "";
	RUN(test_new_defaults);
	RUN(test_separate_strings_replaced);
	RUN(test_clone_is_packed);
	RUN(test_clone_of_stack_struct);
	entry__free(NULL);
	return harness_done();
}
