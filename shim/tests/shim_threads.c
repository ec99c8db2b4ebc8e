/* shim_threads.c — test target: several threads, each with its own SQLite
 * connection and its own trace id set through the shim, running statements
 * interleaved in lock step, so a tracer can check that every statement
 * carries its own thread's id and none crossed.
 *
 * Usage: shim_threads [-r ROUNDS] [-s STATEMENTS] [-t THREADS] [-w]
 *   -r  rounds per thread (default 3); each round sets a new id
 *       "trace-thread-<N>-r<R>-<pid>"
 *   -s  statements per round (default 4): alternately an INSERT through
 *       sqlite3_exec and a SELECT through prepare/step/finalize
 *   -t  threads (default 4, at most 64)
 *   -w  print "ready pid=<pid>" and wait for a line on stdin before the
 *       first statement (a test attaches the tracer in between)
 *
 * Every thread opens its own in-memory database, creates table t, then for
 * each round: sets its id, runs the statements, each one preceded by a
 * barrier wait so that the threads' statements interleave. After the last
 * round it clears the id and runs one more SELECT, which must carry "".
 *
 * Output, one line per statement run (stdout, line-buffered):
 *   ran thread=<N> tid=<tid> trace_id=<id or empty> sql=<sql>
 * and a last line "done statements=<total>". Before running, the program
 * checks the shim's own contract (cut, sanitising, NULL clears, per-thread
 * isolation through sqltrace_get_trace_id) and exits 1 with a "selfcheck
 * failed" line if it is broken. Exit status 0 when everything ran.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqltrace.h"

#define MAX_THREADS 64

static int nRounds = 3, nStmts = 4, nThreads = 4;
static pthread_barrier_t barrier;
static int failed;  /* set atomically by any thread on error */

struct worker {
	int iThread;
	int nRan;
};

/* Prints the failure and marks the run failed. */
static void fail(const char *zWhat, int iThread, const char *zDetail)
{
	printf("error thread=%d %s: %s\n", iThread, zWhat, zDetail);
	__atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
}

/* Runs one statement and prints the "ran" line. Returns 0 or -1. */
static int run_one(sqlite3 *db, struct worker *w, const char *zSql, int viaExec)
{
	char *zErr = NULL;
	int rc;

	if (viaExec) {
		rc = sqlite3_exec(db, zSql, NULL, NULL, &zErr);
	} else {
		sqlite3_stmt *pStmt = NULL;

		rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, NULL);
		if (rc == SQLITE_OK) {
			while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW)
				;
			if (rc == SQLITE_DONE)
				rc = SQLITE_OK;
		}
		sqlite3_finalize(pStmt);
	}
	if (rc != SQLITE_OK) {
		fail(zSql, w->iThread, zErr ? zErr : sqlite3_errmsg(db));
		sqlite3_free(zErr);
		return -1;
	}
	printf("ran thread=%d tid=%d trace_id=%s sql=%s\n", w->iThread, gettid(),
	       sqltrace_get_trace_id(), zSql);
	w->nRan++;
	return 0;
}

/* Waits at the barrier so every thread's next statement starts together. */
static void sync_threads(void)
{
	pthread_barrier_wait(&barrier);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sqlite3 *db = NULL;
	char zSql[128], zId[SQLTRACE_TRACE_ID_MAX + 1];
	int r, s, rc;

	/* Every thread goes through the same number of barrier waits whatever
	 * happens, so one failing thread cannot hang the others. */
	rc = sqlite3_open(":memory:", &db);
	if (rc != SQLITE_OK)
		fail("sqlite3_open", w->iThread, sqlite3_errstr(rc));
	sync_threads();
	if (rc == SQLITE_OK)
		run_one(db, w, "CREATE TABLE t(id INTEGER PRIMARY KEY, thread INT, round INT)", 1);
	for (r = 0; r < nRounds; r++) {
		snprintf(zId, sizeof(zId), "trace-thread-%d-r%d-%d", w->iThread, r, (int)getpid());
		sqltrace_set_trace_id(zId);
		if (strcmp(sqltrace_get_trace_id(), zId) != 0)
			fail("sqltrace_get_trace_id", w->iThread, "does not return the id just set");
		for (s = 0; s < nStmts; s++) {
			sync_threads();
			if (rc != SQLITE_OK)
				continue;
			/* A thread with an id never sees another thread's. */
			if (strcmp(sqltrace_get_trace_id(), zId) != 0)
				fail("isolation", w->iThread, sqltrace_get_trace_id());
			if (s % 2 == 0) {
				snprintf(zSql, sizeof(zSql),
					 "INSERT INTO t(thread, round) VALUES (%d, %d)", w->iThread, r);
				run_one(db, w, zSql, 1);
			} else {
				snprintf(zSql, sizeof(zSql),
					 "SELECT count(*) FROM t WHERE thread = %d AND round = %d",
					 w->iThread, r);
				run_one(db, w, zSql, 0);
			}
		}
	}
	sqltrace_clear_trace_id();
	sync_threads();
	if (rc == SQLITE_OK)
		run_one(db, w, "SELECT count(*) FROM t", 0);
	sqlite3_close(db);
	return NULL;
}

/* Checks the shim's contract on the main thread. Returns 0 or -1. */
static int selfcheck(void)
{
	char zLong[200];
	const char *zWhy = NULL;

	memset(zLong, 'a', sizeof(zLong) - 1);
	zLong[sizeof(zLong) - 1] = '\0';
	if (sqltrace_get_trace_id()[0] != '\0')
		zWhy = "a new thread must have no id";
	else if (sqltrace_set_trace_id("abc") != 0 || strcmp(sqltrace_get_trace_id(), "abc"))
		zWhy = "plain id not kept";
	else if (sqltrace_set_trace_id(zLong) != 1 ||
		 strlen(sqltrace_get_trace_id()) != SQLTRACE_TRACE_ID_MAX)
		zWhy = "long id not cut to SQLTRACE_TRACE_ID_MAX";
	else if (sqltrace_set_trace_id("a\tb\x7f\xc3\xa9\n") != 1 ||
		 strcmp(sqltrace_get_trace_id(), "a_b____"))
		zWhy = "control / non-ASCII bytes not replaced";
	else if (sqltrace_set_trace_id(NULL) != 0 || sqltrace_get_trace_id()[0] != '\0')
		zWhy = "NULL does not clear";
	else if (sqltrace_set_trace_id("x") != 0 || sqltrace_set_trace_id("") != 0 ||
		 sqltrace_get_trace_id()[0] != '\0')
		zWhy = "\"\" does not clear";
	if (zWhy) {
		printf("selfcheck failed: %s\n", zWhy);
		return -1;
	}
	printf("selfcheck ok\n");
	return 0;
}

/* Parses a positive int option value. Returns it, or -1. */
static int parse_count(const char *z, int max)
{
	char *zEnd;
	long v = strtol(z, &zEnd, 10);

	return (*z && !*zEnd && v > 0 && v <= max) ? (int)v : -1;
}

int main(int argc, char **argv)
{
	struct worker workers[MAX_THREADS];
	pthread_t threads[MAX_THREADS];
	int opt, wait = 0, i, total = 0, nStarted = 0;

	while ((opt = getopt(argc, argv, "r:s:t:w")) != -1) {
		switch (opt) {
		case 'r': nRounds = parse_count(optarg, 1000000); break;
		case 's': nStmts = parse_count(optarg, 1000000); break;
		case 't': nThreads = parse_count(optarg, MAX_THREADS); break;
		case 'w': wait = 1; break;
		default: nRounds = -1; break;
		}
		if (nRounds < 0 || nStmts < 0 || nThreads < 0) {
			fprintf(stderr, "usage: %s [-r ROUNDS] [-s STATEMENTS] [-t THREADS(1..%d)] [-w]\n",
				argv[0], MAX_THREADS);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (selfcheck() != 0)
		return 1;
	if (wait) {
		char zLine[64];

		printf("ready pid=%d\n", (int)getpid());
		if (!fgets(zLine, sizeof(zLine), stdin) && ferror(stdin)) {
			perror("stdin");
			return 1;
		}
	}
	pthread_barrier_init(&barrier, NULL, (unsigned)nThreads);
	for (i = 0; i < nThreads; i++) {
		workers[i] = (struct worker){ .iThread = i };
		if (pthread_create(&threads[i], NULL, worker_main, &workers[i]) != 0) {
			/* The barrier counts nThreads: without every thread nobody
			 * gets past it, so this is fatal. */
			perror("pthread_create");
			return 1;
		}
		nStarted++;
	}
	for (i = 0; i < nStarted; i++) {
		pthread_join(threads[i], NULL);
		total += workers[i].nRan;
	}
	pthread_barrier_destroy(&barrier);
	printf("done statements=%d\n", total);
	return __atomic_load_n(&failed, __ATOMIC_RELAXED) ? 1 : 0;
}
