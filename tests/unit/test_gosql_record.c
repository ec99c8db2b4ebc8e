/* test_gosql_record.c — a database/sql record (bpf/gosql.bpf.c) on its way
 * to an entry: gosql__record names a failure whose message was not read
 * (never an empty Error), in a copy (the ring buffer's pages are
 * read-only), and event__to_entry takes Op from the record and leaves rows
 * uncounted. No BPF is loaded (gosql__new only opens the programs). */
#include "harness.h"

#include <stdlib.h>

#include "event.h"
#include "gosql.h"
#include "gosql_attach.h"
#include "log.h"

int log_verbose;  /* defined by user/main.c in the tool */

static const struct st_event *got;
static size_t got_size;

static int forward(void *ctx, void *data, size_t size)
{
	(void)ctx;
	got = data;
	got_size = size;
	return 0;
}

static struct st_event *record(const char *sql, int rc, unsigned char op)
{
	struct st_event *ev = calloc(1, sizeof(*ev));

	ev->kind = ST_EV_STMT;
	ev->lib_id = GOSQL_LIB_BASE;
	ev->rc = rc;
	ev->op = op;
	ev->rows_unknown = 1;
	ev->duration_ns = 1500000;
	ev->sql_len = (unsigned)strlen(sql);
	memcpy(ev->sql, sql, ev->sql_len + 1);
	memcpy(ev->comm, "svc", 4);
	return ev;
}

static bool test_failure_named_in_a_copy(void)
{
	struct gosql_opts o = { .forward = forward };
	struct gosql *g;
	char err[256];
	struct st_event *ev = record("SELECT 1", 1, ST_OP_QUERY);
	size_t size = offsetof(struct st_event, sql) + ev->sql_len + 1;

	ASSERT_EQ_INT(gosql__new(&o, &g, err, sizeof(err)), 0);
	ev->stmt = 0x51f278;  /* the error's itab, unknown to this gosql */
	ASSERT_EQ_INT(gosql__record(g, ev, size), 0);
	ASSERT_TRUE(got != ev);                  /* rewritten in a copy */
	ASSERT_EQ_INT(ev->err_len, 0);           /* the original untouched */
	ASSERT_EQ_STR(got->err, "Go error of an unknown type (message not read)");
	ASSERT_EQ_INT(got->err_len, strlen(got->err));
	ASSERT_EQ_INT(got->stmt, 0);
	ASSERT_EQ_INT(got_size, size);
	/* a message read in BPF is kept as it is */
	strcpy(ev->err, "UNIQUE constraint failed: t.id");
	ev->err_len = (unsigned short)strlen(ev->err);
	ASSERT_EQ_INT(gosql__record(g, ev, size), 0);
	ASSERT_EQ_STR(got->err, "UNIQUE constraint failed: t.id");
	/* a success goes through as it is */
	ev->rc = 0;
	ev->stmt = 0;
	ASSERT_EQ_INT(gosql__record(g, ev, size), 0);
	ASSERT_TRUE(got == ev);
	ASSERT_TRUE(gosql__lib(g, GOSQL_LIB_BASE) == NULL);  /* no copy probed */
	ASSERT_TRUE(gosql__lib(NULL, 3) == NULL);
	gosql__free(g);
	free(ev);
	return true;
}

static bool test_entry_op_and_rows(void)
{
	struct st_event *q = record("INSERT INTO t VALUES (1) RETURNING id", 0, ST_OP_QUERY);
	struct st_event *x = record("SELECT 1", 0, ST_OP_EXEC);
	struct st_event *p = record("SELECT * FROM t WHERE", 1, ST_OP_AUTO);
	struct st_entry *e;

	strcpy(p->err, "near \"WHERE\": syntax error");
	p->err_len = (unsigned short)strlen(p->err);
	e = event__to_entry(q, offsetof(struct st_event, sql) + q->sql_len + 1, 0, NULL, "database/sql (x)");
	ASSERT_TRUE(e);
	ASSERT_EQ_STR(e->op, "Query");  /* the call said so, not the text */
	ASSERT_EQ_INT(e->rows, -1);
	ASSERT_EQ_INT(e->duration_us, 1500);
	ASSERT_EQ_STR(e->lib, "database/sql (x)");
	entry__free(e);
	e = event__to_entry(x, offsetof(struct st_event, sql) + x->sql_len + 1, 0, NULL, NULL);
	ASSERT_TRUE(e);
	ASSERT_EQ_STR(e->op, "Exec");
	entry__free(e);
	e = event__to_entry(p, offsetof(struct st_event, sql) + p->sql_len + 1, 0, NULL, NULL);
	ASSERT_TRUE(e);
	ASSERT_EQ_STR(e->op, "Query");  /* a failed Prepare: from the text */
	ASSERT_EQ_STR(e->error, "near \"WHERE\": syntax error");
	entry__free(e);
	free(q);
	free(x);
	free(p);
	return true;
}

int main(void)
{
	harness_skip_reason = "";
	RUN(test_failure_named_in_a_copy);
	RUN(test_entry_op_and_rows);
	return harness_done();
}
