/* inproc_preload.c — the benchmark's "trace from inside" configuration: an
 * LD_PRELOAD library that registers SQLite's own profile callback
 * (sqlite3_trace_v2, SQLITE_TRACE_PROFILE) on every connection the program
 * opens and hands one entry per statement execution to our local store
 * (store/local_store.h), through the same batching recorder the tool uses.
 * What it costs is what tracing from inside the process costs.
 *
 * Build: see bench/module.mk (build/bench/libinproc.so, linked with a -fPIC
 * twin of the core archive, whose symbols it keeps hidden).
 *
 * Environment:
 *   SQLTRACE_INPROC_STORE  trace file (default /tmp/sqltrace-inproc-PID.db,
 *                          removed at exit; a path given here is kept)
 *   SQLTRACE_INPROC_QUEUE, SQLTRACE_INPROC_BATCH   batching (default: the
 *                          tool's, queue 1024, batch 64)
 *   SQLTRACE_INPROC_SINK=none   the callback only counts: no entry, no store
 *                          (what SQLite's profile hook alone costs)
 * At exit it drains the queue into the store and prints one line on stderr:
 *   inproc: N entries, N stored, N dropped (queue full), N lost; after go: N entries, N dropped
 * where "after go" counts from the call to sqltrace_bench_go() (the
 * benchmark's workload calls it, when present, once the tracer may start:
 * the table setup before it is not part of the measurement, and the entries
 * it queued are written before the call returns).
 *
 * Only sqlite3_open and sqlite3_open_v2 are wrapped (not sqlite3_open16).
 * The store's own connection (the trace file) is never traced: the wrapper
 * skips it by path, and passes straight through while the store opens.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "entry.h"
#include "local_store.h"
#include "recorder.h"
#include "sqltext.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*open_fn)(const char *, sqlite3 **);
typedef int (*open_v2_fn)(const char *, sqlite3 **, int, const char *);

static open_fn real_open;
static open_v2_fn real_open_v2;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static struct recorder *store;
static char store_path[4096];
static int remove_store;
static int count_only;
static size_t batch_size;
static char process_name[32];
static int32_t pid;
static uint64_t callbacks;
static uint64_t go_callbacks, go_dropped; /* snapshot at sqltrace_bench_go() */
static __thread int in_init; /* this thread is inside init(): pass through */
static __thread int32_t my_tid; /* gettid() is a real syscall: ~1 µs on this VM */

static unsigned env_uint(const char *name, unsigned def)
{
	const char *v = getenv(name);

	return v && *v ? (unsigned)strtoul(v, NULL, 10) : def;
}

/* Resolves the real functions and opens the store, once. On failure the
 * program runs untraced and one line says why. */
static void init(void)
{
	struct batch_opts bo = BATCH_OPTS_DEFAULT;
	const char *p = getenv("SQLTRACE_INPROC_STORE");
	char err[512];
	FILE *f;

	real_open = (open_fn)dlsym(RTLD_NEXT, "sqlite3_open");
	real_open_v2 = (open_v2_fn)dlsym(RTLD_NEXT, "sqlite3_open_v2");
	pid = (int32_t)getpid();
	f = fopen("/proc/self/comm", "r");
	if (f) {
		if (fgets(process_name, sizeof(process_name), f))
			process_name[strcspn(process_name, "\n")] = 0;
		fclose(f);
	}
	if (getenv("SQLTRACE_INPROC_SINK") && !strcmp(getenv("SQLTRACE_INPROC_SINK"), "none")) {
		count_only = 1;
		return;
	}
	if (p && *p) {
		snprintf(store_path, sizeof(store_path), "%s", p);
	} else {
		snprintf(store_path, sizeof(store_path), "/tmp/sqltrace-inproc-%d.db", (int)pid);
		remove_store = 1;
	}
	bo.queue_size = env_uint("SQLTRACE_INPROC_QUEUE", bo.queue_size);
	bo.batch_size = env_uint("SQLTRACE_INPROC_BATCH", bo.batch_size);
	batch_size = bo.batch_size;
	in_init = 1;
	store = local_store__open(store_path, &bo, err, sizeof(err));
	in_init = 0;
	if (!store)
		fprintf(stderr, "inproc: %s; not tracing\n", err);
}

/* The profile callback: p is the statement, x points at its run time in ns.
 * Runs on the thread that ended the execution. */
static int on_profile(unsigned type, void *ctx, void *p, void *x)
{
	sqlite3_stmt *st = p;
	const char *sql = sqlite3_sql(st);
	const char *dbf;
	struct st_entry *e;
	struct timespec ts;
	size_t n;

	(void)ctx;
	if (type != SQLITE_TRACE_PROFILE)
		return 0;
	__atomic_fetch_add(&callbacks, 1, __ATOMIC_RELAXED);
	if (!store)
		return 0;
	e = entry__new();
	if (!e)
		return 0;
	n = sql ? strlen(sql) : 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	dbf = sqlite3_db_filename(sqlite3_db_handle(st), "main");
	if (entry__set_strn(&e->query, sql ? sql : "", n) ||
	    entry__set_str(&e->op, sqltext__op(sql ? sql : "", n, 0)) ||
	    entry__set_str(&e->process, process_name) ||
	    (dbf && *dbf && entry__set_str(&e->db_file, dbf))) {
		entry__free(e);
		return 0;
	}
	e->duration_us = *(const sqlite3_int64 *)x / 1000;
	e->timestamp_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	e->pid = pid;
	if (!my_tid)
		my_tid = (int32_t)gettid();
	e->tid = my_tid;
	e->query_len = (int64_t)n;
	recorder__record(store, e); /* never blocks; a full queue counts a drop */
	return 0;
}

/* Registers the callback on db unless it is the store's own connection. */
static void attach(const char *filename, sqlite3 *db)
{
	if (!db || (!store && !count_only) || in_init)
		return;
	if (filename && !strcmp(filename, store_path))
		return;
	sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, on_profile, NULL);
}

EXPORT int sqlite3_open(const char *filename, sqlite3 **ppDb)
{
	int rc;

	if (in_init)
		return real_open(filename, ppDb);
	pthread_once(&init_once, init);
	rc = real_open(filename, ppDb);
	if (rc == SQLITE_OK)
		attach(filename, *ppDb);
	return rc;
}

EXPORT int sqlite3_open_v2(const char *filename, sqlite3 **ppDb, int flags, const char *zVfs)
{
	int rc;

	if (in_init)
		return real_open_v2(filename, ppDb, flags, zVfs);
	pthread_once(&init_once, init);
	rc = real_open_v2(filename, ppDb, flags, zVfs);
	if (rc == SQLITE_OK)
		attach(filename, *ppDb);
	return rc;
}

/* Called by the workload when measuring may start: lets the writer take
 * what the setup queued (all but a partial batch, which waits for the flush
 * interval; at most 10 s), so the measurement starts from a quiet pipeline
 * as it would for a tracer attaching then, and snapshots the counters. */
EXPORT void sqltrace_bench_go(void)
{
	struct recorder_stats s = { 0 };
	struct timespec ms = { 0, 1000000 };
	int i;

	for (i = 0; store && i < 10000 && recorder__pending(store) >= batch_size; i++)
		nanosleep(&ms, NULL);
	go_callbacks = __atomic_load_n(&callbacks, __ATOMIC_RELAXED);
	if (store) {
		recorder__stats(store, &s);
		go_dropped = s.dropped + s.lost;
	}
}

/* At exit: drain into the store and report. */
__attribute__((destructor)) static void fini(void)
{
	struct recorder_stats s = { 0 };

	if (count_only) {
		fprintf(stderr, "inproc: %llu entries, 0 stored, 0 dropped (queue full), 0 lost; "
			"after go: %llu entries, 0 dropped\n",
			(unsigned long long)__atomic_load_n(&callbacks, __ATOMIC_RELAXED),
			(unsigned long long)(__atomic_load_n(&callbacks, __ATOMIC_RELAXED) - go_callbacks));
		return;
	}
	if (!store)
		return;
	recorder__close_stats(store, &s);
	store = NULL;
	fprintf(stderr, "inproc: %llu entries, %llu stored, %llu dropped (queue full), %llu lost; "
		"after go: %llu entries, %llu dropped\n",
		(unsigned long long)__atomic_load_n(&callbacks, __ATOMIC_RELAXED),
		(unsigned long long)s.written, (unsigned long long)s.dropped,
		(unsigned long long)s.lost,
		(unsigned long long)(__atomic_load_n(&callbacks, __ATOMIC_RELAXED) - go_callbacks),
		(unsigned long long)(s.dropped + s.lost - go_dropped));
	if (remove_store) {
		static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
		char p[4200];
		int i;

		for (i = 0; i < 4; i++) {
			snprintf(p, sizeof(p), "%s%s", store_path, sfx[i]);
			unlink(p);
		}
	}
}
