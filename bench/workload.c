/* workload.c — the benchmark's traced program: one SQLite workload (W1..W4)
 * against an in-memory or a file database, run for a fixed number of
 * iterations after a tracer has had the chance to attach, with exact counts
 * of what SQLite executed so captured entries can be compared with them.
 *
 * Usage: workload W1|W2|W3|W4 mem|file [-n ITER] [-w WARMUP] [-d DIR] [--no-wait]
 *
 *   W1  one-row lookup by primary key, prepared each time:
 *       prepare_v2, bind, step (ROW), finalize              1 execution, 1 row
 *   W2  the same lookup prepared once: bind, step (ROW), reset
 *                                                           1 execution, 1 row
 *   W3  one statement returning 1000 rows, stepped to DONE, reset
 *                                                           1 execution, 1000 rows
 *   W4  a transaction of 100 INSERTs through one prepared statement:
 *       BEGIN, 100 x (bind, step DONE, reset), COMMIT — BEGIN and COMMIT are
 *       prepared once too               102 executions, 100 rows (inserted)
 *
 * An iteration is one of the units above. The file database lives in a
 * fresh temporary directory (under -d DIR, default $TMPDIR or /tmp) with
 * journal_mode=WAL and synchronous=OFF: no fsync at all, so that what is
 * measured is SQLite's CPU work plus the tracing, not the disk of the VM.
 *
 * Protocol: the table is created and filled first (10000 rows), then the
 * program prints "ready PID" on stdout and waits for a line on stdin (EOF
 * counts as go; --no-wait skips this), then prepares what the workload keeps
 * prepared, runs WARMUP iterations, then ITER measured iterations, and prints
 * one line:
 *
 *   W2 mem iterations=20000 statements=20000 rows=20000 elapsed_ns=...
 *      ns_per_stmt=... ns_per_row=... cpu_ns=... thread_cpu_ns=...
 *      total_statements=... total_prepares=... total_steps=... total_resets=...
 *      total_finalizes=... setup_statements=...
 *
 * statements/rows/ns_* cover the measured iterations only; cpu_ns is this
 * process's CPU time over them and thread_cpu_ns the running thread's
 * (uprobe traps and BPF programs run in this thread's context and land
 * there, as sys time; an in-process tracer's writer thread counts in cpu_ns
 * only). total_* count everything executed after "go" (warm-up, measured,
 * and the final finalizes): what a tracer attached before "go" must have
 * seen. setup_statements counts the executions run before "ready" (table
 * creation and filling), which only a tracer registered at open sees. An
 * execution is what SQLite counts as one: each one that stepped to DONE, or
 * was ended by reset or finalize.
 *
 * Then (unless --no-wait) the program waits for a second line or EOF on
 * stdin before closing the database and exiting, so that the tracer can be
 * looked at while its target is still alive and idle. The directory of the
 * file database is removed on exit.
 * Exit status: 0, or 1 with one line on stderr.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define TABLE_ROWS 10000
#define SCAN_ROWS 1000
#define TXN_INSERTS 100

struct counts {
	uint64_t statements; /* executions (ended by DONE, reset or finalize) */
	uint64_t rows;       /* rows returned (W1..W3) or inserted (W4) */
	uint64_t prepares;
	uint64_t steps;
	uint64_t resets;
	uint64_t finalizes;
};

struct ctx {
	sqlite3 *db;
	sqlite3_stmt *lookup; /* W2 */
	sqlite3_stmt *scan;   /* W3 */
	sqlite3_stmt *begin, *commit, *insert; /* W4 */
	struct counts c;
	uint64_t ins_seq;
};

static void die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "workload: %s: %s\n", what, db ? sqlite3_errmsg(db) : strerror(errno));
	exit(1);
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static sqlite3_stmt *prepare(struct ctx *x, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(x->db, sql, -1, &st, NULL) != SQLITE_OK || !st)
		die(x->db, sql);
	x->c.prepares++;
	return st;
}

static int step(struct ctx *x, sqlite3_stmt *st)
{
	x->c.steps++;
	return sqlite3_step(st);
}

static void reset(struct ctx *x, sqlite3_stmt *st)
{
	x->c.resets++;
	sqlite3_reset(st);
}

static void finalize(struct ctx *x, sqlite3_stmt **st)
{
	if (!*st)
		return;
	x->c.finalizes++;
	sqlite3_finalize(*st);
	*st = NULL;
}

/* Keeps the optimiser from dropping column reads. */
static volatile int64_t sink;

static const char lookup_sql[] = "SELECT a, b FROM t WHERE id = ?1";

/* One iteration of workload w; i picks the key. */
static void iterate(struct ctx *x, int w, uint64_t i)
{
	sqlite3_stmt *st;
	int rc, k;

	switch (w) {
	case 1:
		st = prepare(x, lookup_sql);
		sqlite3_bind_int64(st, 1, (int64_t)(i % TABLE_ROWS) + 1);
		if (step(x, st) != SQLITE_ROW)
			die(x->db, "W1 step");
		sink += sqlite3_column_int64(st, 0);
		finalize(x, &st);
		x->c.statements++;
		x->c.rows++;
		break;
	case 2:
		st = x->lookup;
		sqlite3_bind_int64(st, 1, (int64_t)(i % TABLE_ROWS) + 1);
		if (step(x, st) != SQLITE_ROW)
			die(x->db, "W2 step");
		sink += sqlite3_column_int64(st, 0);
		reset(x, st);
		x->c.statements++;
		x->c.rows++;
		break;
	case 3:
		st = x->scan;
		k = 0;
		while ((rc = step(x, st)) == SQLITE_ROW) {
			sink += sqlite3_column_int64(st, 1);
			k++;
		}
		if (rc != SQLITE_DONE || k != SCAN_ROWS)
			die(x->db, "W3 step");
		reset(x, st);
		x->c.statements++;
		x->c.rows += (uint64_t)k;
		break;
	case 4:
		if (step(x, x->begin) != SQLITE_DONE)
			die(x->db, "W4 BEGIN");
		reset(x, x->begin);
		for (k = 0; k < TXN_INSERTS; k++) {
			x->ins_seq++;
			sqlite3_bind_int64(x->insert, 1, (int64_t)x->ins_seq);
			sqlite3_bind_text(x->insert, 2, "inserted row payload", -1, SQLITE_STATIC);
			if (step(x, x->insert) != SQLITE_DONE)
				die(x->db, "W4 INSERT");
			reset(x, x->insert);
		}
		if (step(x, x->commit) != SQLITE_DONE)
			die(x->db, "W4 COMMIT");
		reset(x, x->commit);
		x->c.statements += TXN_INSERTS + 2;
		x->c.rows += TXN_INSERTS;
		break;
	}
}

/* Executions run before "ready" (what an in-process tracer registered at
 * open sees in addition to total_statements). */
static uint64_t setup_statements;

/* Runs sql, which holds n statements. */
static void exec_or_die(sqlite3 *db, const char *sql, int n)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "workload: %s: %s\n", sql, msg ? msg : "?");
		exit(1);
	}
	setup_statements += (uint64_t)n;
}

/* Creates and fills t (TABLE_ROWS rows) and the empty insert table. Runs
 * before "ready", so none of it is seen by the tracer. */
static void setup(sqlite3 *db, int file)
{
	sqlite3_stmt *st;
	int i;

	if (file) {
		exec_or_die(db, "PRAGMA journal_mode=WAL", 1);
		exec_or_die(db, "PRAGMA synchronous=OFF", 1);
	}
	exec_or_die(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b TEXT NOT NULL);"
			"CREATE TABLE ins(id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b TEXT NOT NULL);"
			"BEGIN", 3);
	if (sqlite3_prepare_v2(db, "INSERT INTO t(id, a, b) VALUES(?1, ?2, ?3)", -1, &st, NULL))
		die(db, "setup prepare");
	for (i = 1; i <= TABLE_ROWS; i++) {
		char b[48];

		snprintf(b, sizeof(b), "row %d of the lookup table", i);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_int(st, 2, i * 7);
		sqlite3_bind_text(st, 3, b, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE)
			die(db, "setup insert");
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	setup_statements += TABLE_ROWS;
	exec_or_die(db, "COMMIT", 1);
}

static void usage(void)
{
	fprintf(stderr, "usage: workload W1|W2|W3|W4 mem|file [-n ITER] [-w WARMUP] [-d DIR] [--no-wait]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const uint64_t default_iter[5] = { 0, 20000, 50000, 100, 500 };
	struct ctx x = { 0 };
	uint64_t iter = 0, warm = UINT64_MAX, i, t0, t1, c0, c1, h0, h1;
	struct counts m;
	char dir[4096] = "", path[4200];
	const char *tmp = getenv("TMPDIR");
	int w, file, wait = 1, a;

	if (argc < 3 || argv[1][0] != 'W' || argv[1][1] < '1' || argv[1][1] > '4' || argv[1][2])
		usage();
	w = argv[1][1] - '0';
	if (!strcmp(argv[2], "mem"))
		file = 0;
	else if (!strcmp(argv[2], "file"))
		file = 1;
	else
		usage();
	for (a = 3; a < argc; a++) {
		if (!strcmp(argv[a], "-n") && a + 1 < argc)
			iter = strtoull(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "-w") && a + 1 < argc)
			warm = strtoull(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "-d") && a + 1 < argc)
			tmp = argv[++a];
		else if (!strcmp(argv[a], "--no-wait"))
			wait = 0;
		else
			usage();
	}
	if (!iter)
		iter = default_iter[w];
	if (warm == UINT64_MAX)
		warm = iter / 10 ? iter / 10 : 1;

	if (file) {
		snprintf(dir, sizeof(dir), "%s/sqltrace-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir))
			die(NULL, "mkdtemp");
		snprintf(path, sizeof(path), "%s/bench.db", dir);
	} else {
		snprintf(path, sizeof(path), ":memory:");
	}
	if (sqlite3_open_v2(path, &x.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		die(x.db, "open");
	setup(x.db, file);

	if (wait) {
		char line[64];

		printf("ready %d\n", (int)getpid());
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			clearerr(stdin); /* EOF: go */
	}
	{
		/* bench/inproc_preload.c, when preloaded, snapshots its counters
		 * here so that what it reports excludes the setup. */
		void (*go)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "sqltrace_bench_go");

		if (go)
			go();
	}

	switch (w) {
	case 2:
		x.lookup = prepare(&x, lookup_sql);
		break;
	case 3:
		x.scan = prepare(&x, "SELECT id, a, b FROM t WHERE id <= 1000 ORDER BY id");
		break;
	case 4:
		x.begin = prepare(&x, "BEGIN");
		x.commit = prepare(&x, "COMMIT");
		x.insert = prepare(&x, "INSERT INTO ins(a, b) VALUES(?1, ?2)");
		break;
	}
	for (i = 0; i < warm; i++)
		iterate(&x, w, i);

	m = x.c;
	c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	h0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	t0 = now_ns(CLOCK_MONOTONIC);
	for (i = 0; i < iter; i++)
		iterate(&x, w, warm + i);
	t1 = now_ns(CLOCK_MONOTONIC);
	h1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	m.statements = x.c.statements - m.statements;
	m.rows = x.c.rows - m.rows;

	finalize(&x, &x.lookup);
	finalize(&x, &x.scan);
	finalize(&x, &x.begin);
	finalize(&x, &x.commit);
	finalize(&x, &x.insert);

	printf("W%d %s iterations=%llu statements=%llu rows=%llu elapsed_ns=%llu "
	       "ns_per_stmt=%.1f ns_per_row=%.1f cpu_ns=%llu thread_cpu_ns=%llu total_statements=%llu "
	       "total_prepares=%llu total_steps=%llu total_resets=%llu total_finalizes=%llu "
	       "setup_statements=%llu\n",
	       w, file ? "file" : "mem", (unsigned long long)iter,
	       (unsigned long long)m.statements, (unsigned long long)m.rows,
	       (unsigned long long)(t1 - t0),
	       (double)(t1 - t0) / (double)m.statements, (double)(t1 - t0) / (double)m.rows,
	       (unsigned long long)(c1 - c0), (unsigned long long)(h1 - h0),
	       (unsigned long long)x.c.statements,
	       (unsigned long long)x.c.prepares, (unsigned long long)x.c.steps,
	       (unsigned long long)x.c.resets, (unsigned long long)x.c.finalizes,
	       (unsigned long long)setup_statements);
	fflush(stdout);
	if (wait) {
		char line[64];

		if (!fgets(line, sizeof(line), stdin))
			clearerr(stdin);
	}

	sqlite3_close(x.db);
	if (file) {
		static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };

		for (a = 0; a < 4; a++) {
			snprintf(path, sizeof(path), "%s/bench.db%s", dir, sfx[a]);
			unlink(path);
		}
		rmdir(dir);
	}
	return 0;
}
