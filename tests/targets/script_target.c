/* script_target.c — a program of ours that runs a known SQL script, for
 * the end-to-end tests: they attach to it, let it run, and compare what was
 * captured with what it ran (tests/e2e/test_observer.py holds the expected
 * entries).
 *
 * Usage: script_target script DBFILE   the observer script (see run_script)
 *        script_target threads         two threads, own connections
 *        script_target idle            SQLite loaded, no statement
 *        script_target once N [DB]     runs "SELECT 'short-N'" at once and exits
 *                                      (no handshake: for many short-lived runs)
 *        script_target twodb DB1 DB2   "SELECT 'on-K'" K = 0..5, prepared, run and
 *                                      finalized one at a time, on DB1 for even K
 *                                      and DB2 for odd K (statements that reuse
 *                                      one address across connections)
 *        script_target cbfinal DB1 DB2 a statement on DB1 stepped once (a row),
 *                                      then finalized by the program's SQL
 *                                      function fin() from inside another
 *                                      statement's step; then "SELECT 'x'" kept
 *                                      and "SELECT 'after'" on DB2 (in the
 *                                      freed statements' memory) run
 * Protocol: prints "ready PID" on stdout, waits for a line on stdin, runs,
 * prints "done", then waits for a second line (or EOF) and exits 0. A
 * statement is prepared before the "ready" line and executed after it. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "script_target: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
	exit(1);
}

/* Runs every statement of sql (prepare with tail), stepping to the end. */
static void run_all(sqlite3 *db, const char *sql)
{
	const char *tail = sql;

	while (tail && *tail) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK)
			die(db, "prepare");
		if (!st)
			break;
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		sqlite3_finalize(st);
	}
}

static void wait_line(void)
{
	char line[64];

	if (!fgets(line, sizeof(line), stdin))
		return;
}

/* The protocol: "ready PID", then wait for the go line. */
static void say_ready(void)
{
	printf("ready %d\n", getpid());
	fflush(stdout);
	wait_line();
}

/* The protocol: "done", then wait for the line (or EOF) that ends it. */
static void say_done(void)
{
	printf("done\n");
	fflush(stdout);
	wait_line();
}

static int run_script(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *pre, *ins, *st;
	int i, rc;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(db, "open");
	run_all(db, "CREATE TABLE IF NOT EXISTS pre(x INTEGER); DELETE FROM pre; "
		    "INSERT INTO pre VALUES (1), (2), (3)");
	if (sqlite3_prepare_v2(db, "SELECT x FROM pre WHERE x >= ?1 ORDER BY x", -1, &pre, NULL) != SQLITE_OK)
		die(db, "prepare pre");

	say_ready();

	/* 1. DDL */
	run_all(db, "DROP TABLE IF EXISTS t");
	run_all(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT)");
	/* 2. one statement reused with rebinding, 5 executions */
	if (sqlite3_prepare_v2(db, "INSERT INTO t(id, name) VALUES (?1, ?2)", -1, &ins, NULL) != SQLITE_OK)
		die(db, "prepare insert");
	for (i = 1; i <= 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), "name-%d", i);
		sqlite3_bind_int(ins, 1, i);
		sqlite3_bind_text(ins, 2, name, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(ins) != SQLITE_DONE)
			die(db, "insert");
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	/* 3. multi-row select: 5 rows */
	run_all(db, "SELECT id, name FROM t ORDER BY id");
	/* 4. one string, three statements */
	run_all(db, "UPDATE t SET note = 'a' WHERE id = 1; UPDATE t SET note = 'b' WHERE id = 2;"
		    " SELECT count(*) FROM t");
	/* 5. sqlite3_exec: one entry, inner statements not reported */
	if (sqlite3_exec(db, "CREATE TABLE u(x); INSERT INTO u VALUES (1); INSERT INTO u VALUES (2)",
			 NULL, NULL, NULL) != SQLITE_OK)
		die(db, "exec");
	/* 6. constraint violation */
	if (sqlite3_prepare_v2(db, "INSERT INTO t(id, name) VALUES (1, 'dup')", -1, &st, NULL) != SQLITE_OK)
		die(db, "prepare dup");
	rc = sqlite3_step(st);
	if (rc != SQLITE_CONSTRAINT)
		die(db, "expected a constraint violation");
	sqlite3_finalize(st);
	/* 7. syntax error: the prepare fails */
	if (sqlite3_prepare_v2(db, "SELEC * FROM t", -1, &st, NULL) == SQLITE_OK)
		die(db, "expected a syntax error");
	/* 8. a 10 KB query */
	{
		size_t n = 10000;
		char *big = malloc(n + 64);

		strcpy(big, "SELECT '");
		memset(big + 8, 'x', n);
		strcpy(big + 8 + n, "' AS big");
		run_all(db, big);
		free(big);
	}
	/* 9. quotes, newlines, UTF-8 */
	run_all(db, "SELECT 'it''s \"quoted\"',\n  'na\xc3\xafve \xe2\x98\x83 \xe6\x97\xa5\xe6\x9c\xac' AS x");
	/* 10. UTF-16 prepare */
	{
		static const unsigned short sql16[] = { 'S', 'E', 'L', 'E', 'C', 'T', ' ', '4', '2', 0 };
		const void *tail16;

		if (sqlite3_prepare16_v2(db, sql16, -1, &st, &tail16) != SQLITE_OK)
			die(db, "prepare16");
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		sqlite3_finalize(st);
	}
	/* 11. the statement prepared before attach, executed twice */
	for (i = 2; i <= 3; i++) {
		sqlite3_bind_int(pre, 1, i);
		while (sqlite3_step(pre) == SQLITE_ROW)
			;
		sqlite3_reset(pre);
	}
	sqlite3_finalize(pre);
	/* 12. an execution ended early by reset: 1 row read of 5 */
	if (sqlite3_prepare_v2(db, "SELECT name FROM t ORDER BY id DESC", -1, &st, NULL) != SQLITE_OK)
		die(db, "prepare early");
	sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_finalize(st);

	sqlite3_close(db);
	say_done();
	return 0;
}

struct thread_arg {
	int index;
	int tid;
	pthread_barrier_t *barrier;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	sqlite3 *db;
	char sql[128];
	int i;

	a->tid = (int)syscall(SYS_gettid);
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		die(db, "open");
	pthread_barrier_wait(a->barrier);
	for (i = 0; i < 20; i++) {
		snprintf(sql, sizeof(sql), "SELECT %d AS thread_%d_query_%d", i, a->index, i);
		run_all(db, sql);
	}
	sqlite3_close(db);
	return NULL;
}

static int run_threads(void)
{
	pthread_t th[2];
	struct thread_arg args[2];
	pthread_barrier_t barrier;
	int i;

	say_ready();
	pthread_barrier_init(&barrier, NULL, 2);
	for (i = 0; i < 2; i++) {
		args[i] = (struct thread_arg){ .index = i, .barrier = &barrier };
		pthread_create(&th[i], NULL, thread_main, &args[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 2; i++)
		printf("thread %d tid %d\n", i, args[i].tid);
	say_done();
	return 0;
}

static int run_twodb(const char *p1, const char *p2)
{
	sqlite3 *db[2];
	char sql[32];

	if (sqlite3_open(p1, &db[0]) != SQLITE_OK || sqlite3_open(p2, &db[1]) != SQLITE_OK)
		die(NULL, "open");
	say_ready();
	for (int k = 0; k < 6; k++) {
		snprintf(sql, sizeof(sql), "SELECT 'on-%d'", k);
		run_all(db[k % 2], sql);
	}
	say_done();
	sqlite3_close(db[0]);
	sqlite3_close(db[1]);
	return 0;
}

static sqlite3_stmt *victim;

/* fin(): finalizes the victim statement, from inside a step. */
static void fin_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	sqlite3_finalize(victim);
	victim = NULL;
	sqlite3_result_int(ctx, 1);
}

static int run_cbfinal(const char *p1, const char *p2)
{
	sqlite3 *db[2];
	sqlite3_stmt *x;

	if (sqlite3_open(p1, &db[0]) != SQLITE_OK || sqlite3_open(p2, &db[1]) != SQLITE_OK ||
	    sqlite3_create_function(db[0], "fin", 0, SQLITE_UTF8, NULL, fin_fn, NULL, NULL) != SQLITE_OK)
		die(NULL, "open");
	say_ready();
	if (sqlite3_prepare_v2(db[0], "SELECT 'victim' UNION ALL SELECT 'victim2'", -1, &victim, NULL) ||
	    sqlite3_step(victim) != SQLITE_ROW)
		die(db[0], "victim");
	run_all(db[0], "SELECT fin()");
	if (sqlite3_prepare_v2(db[1], "SELECT 'x'", -1, &x, NULL))
		die(db[1], "x");
	run_all(db[1], "SELECT 'after'");
	sqlite3_finalize(x);
	say_done();
	sqlite3_close(db[0]);
	sqlite3_close(db[1]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "cbfinal") == 0)
		return run_cbfinal(argv[2], argv[3]);
	if (argc >= 4 && strcmp(argv[1], "twodb") == 0)
		return run_twodb(argv[2], argv[3]);
	if (argc >= 3 && strcmp(argv[1], "script") == 0)
		return run_script(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "threads") == 0)
		return run_threads();
	if (argc >= 3 && strcmp(argv[1], "once") == 0) {
		sqlite3 *db;
		char sql[64];

		if (sqlite3_open(argc >= 4 ? argv[3] : ":memory:", &db) != SQLITE_OK)
			die(db, "open");
		snprintf(sql, sizeof(sql), "SELECT 'short-%d'", atoi(argv[2]));
		run_all(db, sql);
		sqlite3_close(db);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "idle") == 0) {
		printf("ready %d (sqlite %s)\n", getpid(), sqlite3_libversion());
		fflush(stdout);
		wait_line();
		return 0;
	}
	fprintf(stderr, "usage: script_target script DBFILE | threads | idle | once N [DB] | twodb DB1 DB2 | cbfinal DB1 DB2\n");
	return 2;
}
