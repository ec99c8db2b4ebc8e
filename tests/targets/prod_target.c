/* prod_target.c — targets that behave as production programs do, for the
 * end-to-end tests of tests/e2e/test_production.py: busy threads while the
 * tracer attaches, a callback that leaves with longjmp, coroutines that
 * switch stacks inside SQLite calls, statements reused after idle time.
 * Each mode prints what it ran so the test can compare it with what was
 * captured.
 *
 * Usage: prod_target hammer N K   N threads run statements in a loop from
 *                                 the start; after the go line each runs
 *                                 exactly K more, "SELECT 'T<t>-<i>'",
 *                                 then the program prints "done"
 *        prod_target longjmp N    an sqlite3_exec callback longjmps out;
 *                                 then N INSERTs ("INSERT INTO j VALUES (<i>)")
 *        prod_target coro N       two ucontext coroutines switching to each
 *                                 other from inside SQLite calls: A runs N
 *                                 rounds of "SELECT sw(), 'a-<i>'" (sw()
 *                                 switches), "SELECT 'e-<i>'" by
 *                                 sqlite3_exec (its callback switches) and
 *                                 "SELECT 'p-<i>'" (its prepare's authorizer
 *                                 switches); B runs "SELECT sw(), 'co-<j>'"
 *                                 until A is done (the last one unfinished);
 *                                 prints "switches <count>"
 *        prod_target many N       N executions of one prepared statement
 *                                 ("SELECT ?1", bound to 0..N-1), at once
 *        prod_target timed N      statements of growing cost (a recursive count
 *                                 to 10, 100 ... 1e6), N times each, every
 *                                 execution timed by the program itself from
 *                                 before its first step to after its last:
 *                                 "timed <k> <ns>" lines (bench/accuracy.py)
 *        prod_target explain      "EXPLAIN SELECT 1" stepped to the end, then
 *                                 300 ms before its finalize: "rows <n>"
 *        prod_target reprep       a statement whose table is dropped: two
 *                                 failing steps, 200 ms, reset
 *        prod_target nested       an sqlite3_exec whose callback runs another
 *        prod_target shared       two threads step one statement (20000 rows
 *                                 in all, one execution): "rows <a> <b>"
 *        prod_target ljstep       an SQL function longjmps out of a step (no
 *                                 row returned); then 3 x "SELECT 'after-lj'"
 *        prod_target cbprep       bad SQL prepared from an sqlite3_exec callback
 *                                 ("SELEC 'in-exec-callback'") and from an SQL
 *                                 function inside a step ("SELEC 'in-function'")
 *        prod_target lru N        a statement left running (one row) while N
 *                                 others run, then reset
 *        prod_target idle MS N    one statement prepared once, run N times
 *                                 with MS milliseconds of sleep between runs
 *                                 (reset right after each run, and at the
 *                                 next run: both kinds of program)
 * Protocol (every mode): "ready PID" on stdout, wait for a line on stdin,
 * run, print "done", wait for a line (or EOF), exit 0. */
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static void die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "prod_target: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
	exit(1);
}

static void wait_line(void)
{
	char line[64];

	if (!fgets(line, sizeof(line), stdin))
		return;
}

static sqlite3 *open_mem(void)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		die(db, "open");
	return db;
}

/* Prepares, steps to the end, finalizes; returns the rows. */
static int run1(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int rows = 0, rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(db, sql);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		rows++;
	if (rc != SQLITE_DONE)
		die(db, sql);
	sqlite3_finalize(st);
	return rows;
}

/* ---- hammer ---------------------------------------------------------------- */

#define HAMMER_SQL "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"

static atomic_int go_flag;
static int hammer_k;

static void *hammer_thread(void *arg)
{
	int id = (int)(long)arg, i;
	sqlite3 *db = open_mem();
	sqlite3_stmt *st = NULL;
	char sql[64];

	/* Busy until the go line: short steps of an endless statement, so the
	 * tracer attaches while threads enter and leave sqlite3_step all the
	 * time, yet no execution ends (no record floods the ring buffer);
	 * reset at the go line (one record each). */
	if (sqlite3_prepare_v2(db, HAMMER_SQL, -1, &st, NULL) != SQLITE_OK)
		die(db, "prepare");
	while (!atomic_load(&go_flag))
		if (sqlite3_step(st) != SQLITE_ROW)
			die(db, "step");
	sqlite3_reset(st);
	sqlite3_finalize(st);
	for (i = 0; i < hammer_k; i++) {
		snprintf(sql, sizeof(sql), "SELECT 'T%d-%d'", id, i);
		run1(db, sql);
	}
	sqlite3_close(db);
	return NULL;
}

static void hammer(int n, int k)
{
	pthread_t th[64];
	int i;

	if (n > 64)
		n = 64;
	hammer_k = k;
	for (i = 0; i < n; i++)
		pthread_create(&th[i], NULL, hammer_thread, (void *)(long)i);
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_line();
	atomic_store(&go_flag, 1);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* ---- longjmp --------------------------------------------------------------- */

static jmp_buf jb;

static int jump_cb(void *arg, int n, char **v, char **c)
{
	(void)arg; (void)n; (void)v; (void)c;
	longjmp(jb, 1);
}

static void longjump(int n)
{
	sqlite3 *db = open_mem();
	char sql[64];
	int i;

	run1(db, "CREATE TABLE j(x)");
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_line();
	/* Leaves sqlite3_exec (and the step inside it) without returning, as
	 * Lua and PHP bindings do on errors; the connection stays usable
	 * (SQLite's mutex is recursive-free here: single thread, no mutex). */
	if (setjmp(jb) == 0)
		sqlite3_exec(db, "SELECT 1 UNION ALL SELECT 2", jump_cb, NULL, NULL);
	for (i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO j VALUES (%d)", i);
		run1(db, sql);
	}
}

/* ---- coroutines ------------------------------------------------------------ */

/* Two coroutines that switch to each other from inside SQLite calls, so
 * each resumes the other in the middle of a call: A inside its step (SQL
 * function sw()), its sqlite3_exec callback, and its prepare (authorizer);
 * B always inside the step of its "SELECT sw(), 'co-<i>'". A stack of
 * uretprobe return addresses cannot follow that order. */
static ucontext_t main_ctx, co_a, co_b;
static ucontext_t *co_cur, *co_other;
static int co_rounds, co_switches;

static void co_switch(void)
{
	ucontext_t *from = co_cur, *to = co_other;

	co_switches++;
	co_cur = to;
	co_other = from;
	swapcontext(from, to);
}

static void sw_func(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc; (void)argv;
	co_switch();
	sqlite3_result_int(ctx, 1);
}

static int sw_exec_cb(void *arg, int n, char **v, char **c)
{
	(void)arg; (void)n; (void)v; (void)c;
	co_switch();
	return 0;
}

static int sw_auth(void *arg, int action, const char *a, const char *b, const char *c, const char *d)
{
	(void)action; (void)a; (void)b; (void)c; (void)d;
	if (arg && *(int *)arg) {
		*(int *)arg = 0;
		co_switch();
	}
	return SQLITE_OK;
}

static sqlite3 *co_open(void)
{
	sqlite3 *db = open_mem();

	sqlite3_create_function(db, "sw", 0, SQLITE_UTF8, NULL, sw_func, NULL, NULL);
	return db;
}

static void co_b_main(void)
{
	sqlite3 *db = co_open();
	char sql[64];
	int i;

	for (i = 0;; i++) {
		snprintf(sql, sizeof(sql), "SELECT sw(), 'co-%d'", i);
		run1(db, sql);
	}
}

static void co_a_main(void)
{
	sqlite3 *db = co_open();
	int i, auth_once = 0;
	char sql[64];

	sqlite3_set_authorizer(db, sw_auth, &auth_once);
	for (i = 0; i < co_rounds; i++) {
		snprintf(sql, sizeof(sql), "SELECT sw(), 'a-%d'", i);
		run1(db, sql);
		snprintf(sql, sizeof(sql), "SELECT 'e-%d'", i);
		sqlite3_exec(db, sql, sw_exec_cb, NULL, NULL);
		auth_once = 1;
		snprintf(sql, sizeof(sql), "SELECT 'p-%d'", i);
		run1(db, sql);
	}
	sqlite3_close(db);
	swapcontext(&co_a, &main_ctx);
}

static void coro(int n)
{
	static char stack_a[256 * 1024], stack_b[256 * 1024];

	co_rounds = n;
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_line();
	getcontext(&co_a);
	co_a.uc_stack.ss_sp = stack_a;
	co_a.uc_stack.ss_size = sizeof(stack_a);
	co_a.uc_link = &main_ctx;
	makecontext(&co_a, co_a_main, 0);
	getcontext(&co_b);
	co_b.uc_stack.ss_sp = stack_b;
	co_b.uc_stack.ss_size = sizeof(stack_b);
	co_b.uc_link = &main_ctx;
	makecontext(&co_b, co_b_main, 0);
	co_cur = &co_a;
	co_other = &co_b;
	swapcontext(&main_ctx, &co_a);
	printf("switches %d\n", co_switches);
}

/* ---- idle ------------------------------------------------------------------ */

static void idle(int ms, int n)
{
	sqlite3 *db = open_mem();
	sqlite3_stmt *st = NULL, *st2 = NULL;
	struct timespec nap = { ms / 1000, (ms % 1000) * 1000000L };
	int i;

	if (sqlite3_prepare_v2(db, "SELECT 'idle-reset-after'", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT 'idle-reset-before'", -1, &st2, NULL) != SQLITE_OK)
		die(db, "prepare");
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_line();
	for (i = 0; i < n; i++) {
		/* As a C program or Python: reset right after the run. */
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		sqlite3_reset(st);
		nanosleep(&nap, NULL);
		/* As Go's mattn driver: reset just before the next run. */
		sqlite3_reset(st2);
		while (sqlite3_step(st2) == SQLITE_ROW)
			;
		nanosleep(&nap, NULL);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(st2);
}

/* ---- timed ----------------------------------------------------------------- */

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void timed(int n)
{
	sqlite3 *db = open_mem();
	int k, i;

	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_line();
	for (k = 10; k <= 1000000; k *= 10) {
		char sql[160];
		sqlite3_stmt *st = NULL;

		snprintf(sql, sizeof(sql), "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
			 "WHERE x < %d) SELECT count(*) FROM c", k);
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
			die(db, "prepare");
		for (i = 0; i < n; i++) {
			long long t0 = now_ns(), t1;

			while (sqlite3_step(st) == SQLITE_ROW)
				;
			t1 = now_ns();
			sqlite3_reset(st);
			printf("timed %d %lld\n", k, t1 - t0);
		}
		sqlite3_finalize(st);
	}
}

/* ---- cases found in review -------------------------------------------------- */

static void msleep(int ms)
{
	struct timespec nap = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&nap, NULL);
}

static void exec_or_die(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(db, sql);
}

static void explain(void)
{
	sqlite3 *db = open_mem();
	sqlite3_stmt *st = NULL;
	int rows = 0;

	if (sqlite3_prepare_v2(db, "EXPLAIN SELECT 1", -1, &st, NULL) != SQLITE_OK)
		die(db, "prepare");
	while (sqlite3_step(st) == SQLITE_ROW)
		rows++;
	printf("rows %d\n", rows);
	msleep(300);
	sqlite3_finalize(st);
}

static void reprep(void)
{
	sqlite3 *db = open_mem();
	sqlite3_stmt *st = NULL;

	exec_or_die(db, "CREATE TABLE x(y); INSERT INTO x VALUES (1)");
	if (sqlite3_prepare_v2(db, "SELECT y FROM x", -1, &st, NULL) != SQLITE_OK)
		die(db, "prepare");
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	sqlite3_reset(st);
	exec_or_die(db, "DROP TABLE x");
	printf("step %d\n", sqlite3_step(st));
	printf("step %d\n", sqlite3_step(st));
	msleep(200);
	sqlite3_reset(st);
	sqlite3_finalize(st);
}

static int nested_cb(void *arg, int n, char **v, char **c)
{
	(void)n; (void)v; (void)c;
	exec_or_die(arg, "INSERT INTO log VALUES ('inner')");
	return 0;
}

static void nested(void)
{
	sqlite3 *db = open_mem();

	exec_or_die(db, "CREATE TABLE log(x)");
	if (sqlite3_exec(db, "SELECT 'outer-row'", nested_cb, db, NULL) != SQLITE_OK)
		die(db, "outer");
}

static sqlite3_stmt *shared_st;
static int shared_rows[2];

static void *shared_thread(void *arg)
{
	int id = (int)(long)arg;

	while (sqlite3_step(shared_st) == SQLITE_ROW)
		shared_rows[id]++;
	return NULL;
}

static void shared(void)
{
	sqlite3 *db = open_mem();  /* serialized: the threads take turns */
	pthread_t th[2];
	int i;

	if (sqlite3_prepare_v2(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
			       "WHERE x < 20000) SELECT x FROM c", -1, &shared_st, NULL) != SQLITE_OK)
		die(db, "prepare");
	for (i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, shared_thread, (void *)(long)i);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	sqlite3_finalize(shared_st);
	printf("rows %d %d\n", shared_rows[0], shared_rows[1]);
}

static jmp_buf lj_jb;

static void lj_func(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)ctx; (void)argc; (void)argv;
	longjmp(lj_jb, 1);
}

static void ljstep(void)
{
	sqlite3 *db = open_mem();
	sqlite3_stmt *st = NULL;
	int i;

	sqlite3_create_function(db, "lj", 0, SQLITE_UTF8, NULL, lj_func, NULL, NULL);
	if (sqlite3_prepare_v2(db, "SELECT 'before', lj() FROM (SELECT 1 UNION ALL SELECT 2)", -1, &st,
			       NULL) != SQLITE_OK)
		die(db, "prepare");
	if (setjmp(lj_jb) == 0)
		while (sqlite3_step(st) == SQLITE_ROW)
			;
	sqlite3_reset(st);
	sqlite3_finalize(st);
	for (i = 0; i < 3; i++)
		run1(db, "SELECT 'after-lj'");
}

static int cbprep_cb(void *arg, int n, char **v, char **c)
{
	sqlite3_stmt *st = NULL;

	(void)n; (void)v; (void)c;
	if (sqlite3_prepare_v2(arg, "SELEC 'in-exec-callback'", -1, &st, NULL) == SQLITE_OK)
		sqlite3_finalize(st);
	return 0;
}

static void cbprep_func(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	sqlite3_stmt *st = NULL;

	(void)argc; (void)argv;
	if (sqlite3_prepare_v2(sqlite3_context_db_handle(ctx), "SELEC 'in-function'", -1, &st, NULL) == SQLITE_OK)
		sqlite3_finalize(st);
	sqlite3_result_int(ctx, 1);
}

static void cbprep(void)
{
	sqlite3 *db = open_mem();

	sqlite3_create_function(db, "badprep", 0, SQLITE_UTF8, NULL, cbprep_func, NULL, NULL);
	if (sqlite3_exec(db, "SELECT 'outer-exec'", cbprep_cb, db, NULL) != SQLITE_OK)
		die(db, "exec");
	run1(db, "SELECT badprep()");
}

static void lru(int n)
{
	sqlite3 *db = open_mem();
	sqlite3_stmt *victim = NULL, **v = calloc((size_t)n, sizeof(*v));
	int i;

	if (!v || sqlite3_prepare_v2(db, "SELECT 'victim' UNION ALL SELECT 'victim2'", -1, &victim, NULL) != SQLITE_OK ||
	    sqlite3_step(victim) != SQLITE_ROW)
		die(db, "victim");
	for (i = 0; i < n; i++) {
		if (sqlite3_prepare_v2(db, "SELECT 1", -1, &v[i], NULL) != SQLITE_OK)
			die(db, "prepare");
		while (sqlite3_step(v[i]) == SQLITE_ROW)
			;
	}
	sqlite3_reset(victim);
	for (i = 0; i < n; i++)
		sqlite3_finalize(v[i]);
	sqlite3_finalize(victim);
	free(v);
}

/* ---- many ------------------------------------------------------------------ */

static void many(int n)
{
	sqlite3 *db = open_mem();
	sqlite3_stmt *st = NULL;
	int i;

	if (sqlite3_prepare_v2(db, "SELECT ?1", -1, &st, NULL) != SQLITE_OK)
		die(db, "prepare");
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_line();
	for (i = 0; i < n; i++) {
		sqlite3_bind_int(st, 1, i);
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
}

static void go_wait(void)
{
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_line();
}

static void run_after_go(void (*fn)(void))
{
	go_wait();
	fn();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && strcmp(argv[1], "hammer") == 0)
		hammer(atoi(argv[2]), atoi(argv[3]));
	else if (argc >= 3 && strcmp(argv[1], "longjmp") == 0)
		longjump(atoi(argv[2]));
	else if (argc >= 3 && strcmp(argv[1], "coro") == 0)
		coro(atoi(argv[2]));
	else if (argc >= 3 && strcmp(argv[1], "timed") == 0)
		timed(atoi(argv[2]));
	else if (argc >= 2 && strcmp(argv[1], "explain") == 0)
		run_after_go(explain);
	else if (argc >= 2 && strcmp(argv[1], "reprep") == 0)
		run_after_go(reprep);
	else if (argc >= 2 && strcmp(argv[1], "nested") == 0)
		run_after_go(nested);
	else if (argc >= 2 && strcmp(argv[1], "shared") == 0)
		run_after_go(shared);
	else if (argc >= 2 && strcmp(argv[1], "cbprep") == 0)
		run_after_go(cbprep);
	else if (argc >= 2 && strcmp(argv[1], "ljstep") == 0)
		run_after_go(ljstep);
	else if (argc >= 3 && strcmp(argv[1], "lru") == 0) {
		go_wait();
		lru(atoi(argv[2]));
	} else if (argc >= 3 && strcmp(argv[1], "many") == 0)
		many(atoi(argv[2]));
	else if (argc >= 4 && strcmp(argv[1], "idle") == 0)
		idle(atoi(argv[2]), atoi(argv[3]));
	else {
		fprintf(stderr, "usage: prod_target hammer N K | longjmp N | coro N | timed N | many N | idle MS N | explain | reprep | nested | shared | cbprep | ljstep | lru N\n");
		return 2;
	}
	printf("done\n");
	fflush(stdout);
	wait_line();
	return 0;
}
