/* test_local_store.c — unit tests of the local SQLite sink
 * (store/local_store.c): the Go tracer's store behaviours (schema, rows,
 * trace ids, errors, '' not NULL), migration of a Go-made file, refusal of an
 * incompatible one, one transaction per batch, file modes, and the failure
 * paths (read-only directory, full disk, removed file, locked file).
 *
 * Every test works in its own mkdtemp() directory under /tmp. The read-only
 * and full-disk tests mount a small tmpfs there and SKIP when mounting is
 * not allowed (root can write through plain permissions, not through a
 * read-only or full mount).
 */
#include "harness.h"
#include "local_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char dbpath[128];

static void tmp_cleanup(void);

/* Creates a fresh temp dir and sets dbpath to dir/traces.db. The dir of a
 * test that failed before its tmp_cleanup() is removed first. */
static bool tmp_setup(void)
{
	tmp_cleanup();
	snprintf(dir, sizeof(dir), "/tmp/sqltrace-test-XXXXXX");
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		return false;
	}
	snprintf(dbpath, sizeof(dbpath), "%s/traces.db", dir);
	return true;
}

/* Removes the files of the temp dir and the dir itself, if any. */
static void tmp_cleanup(void)
{
	DIR *d;
	struct dirent *de;
	char p[512];

	if (!dir[0] || !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
	dir[0] = '\0';
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct st_entry *mk(const char *trace_id, int i)
{
	struct st_entry *e = entry__new();
	char q[64];

	if (!e)
		abort();
	snprintf(q, sizeof(q), "SELECT %d FROM t", i);
	if (entry__set_str(&e->trace_id, trace_id) || entry__set_str(&e->op, "Query") ||
	    entry__set_str(&e->query, q))
		abort();
	e->duration_us = 100 + i;
	e->timestamp_us = 1700000000000000LL + i;
	return e;
}

static sqlite3 *db_open(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* Returns the integer result of a one-value query, or -1 on error. */
static long long q_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static long long count_rows(const char *path, const char *where)
{
	char sql[256];
	sqlite3 *db = db_open(path);
	long long n;

	if (!db)
		return -1;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sql_traces%s%s",
		 where ? " WHERE " : "", where ? where : "");
	n = q_int(db, sql);
	sqlite3_close(db);
	return n;
}

/* Polls the recorder until pred holds on its stats, up to limit_s. */
static bool wait_stats(struct recorder *r, double limit_s,
		       bool (*pred)(const struct recorder_stats *, uint64_t), uint64_t arg)
{
	struct recorder_stats st;
	double end = now_s() + limit_s;

	do {
		recorder__stats(r, &st);
		if (pred(&st, arg))
			return true;
		usleep(5000);
	} while (now_s() < end);
	return false;
}

static bool written_at_least(const struct recorder_stats *st, uint64_t n)
{
	return st->written >= n;
}

static bool failures_at_least(const struct recorder_stats *st, uint64_t n)
{
	return st->failures >= n;
}

/* Reads a whole file into a malloc'd buffer; NULL on error. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
		*len = fread(buf, 1, (size_t)n, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

/* Redirects stderr into a file until capture_end(). */
static int capture_begin(const char *path)
{
	int saved, fd;

	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	dup2(fd, 2);
	close(fd);
	return saved;
}

static void capture_end(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

static int count_substr(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Counts the commit frames of the current generation of a WAL file: one per
 * committed write transaction since the WAL last restarted. -1 on error. */
static int wal_commits(const char *wal)
{
	unsigned char hdr[32], fh[24];
	FILE *f = fopen(wal, "rb");
	uint32_t page, salt1, salt2;
	int commits = 0;

	if (!f)
		return -1;
	if (fread(hdr, 1, 32, f) != 32) {
		fclose(f);
		return -1;
	}
	page = be32(hdr + 8) == 1 ? 65536 : be32(hdr + 8);
	salt1 = be32(hdr + 16);
	salt2 = be32(hdr + 20);
	while (fread(fh, 1, 24, f) == 24) {
		if (be32(fh + 8) != salt1 || be32(fh + 12) != salt2)
			break;
		if (be32(fh + 4))  /* database size after commit: a commit frame */
			commits++;
		if (fseek(f, page, SEEK_CUR))
			break;
	}
	fclose(f);
	return commits;
}

/* The Go tracer's Store.Init(), as it runs it. */
static const char go_schema[] =
	"CREATE TABLE IF NOT EXISTS sql_traces (\n"
	"    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"    trace_id TEXT,\n"
	"    op TEXT NOT NULL,\n"
	"    query TEXT NOT NULL,\n"
	"    duration_us INTEGER NOT NULL,\n"
	"    error TEXT,\n"
	"    timestamp INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS idx_sql_traces_ts ON sql_traces(timestamp);\n"
	"CREATE INDEX IF NOT EXISTS idx_sql_traces_tid ON sql_traces(trace_id) WHERE trace_id != '';\n"
	"CREATE INDEX IF NOT EXISTS idx_sql_traces_slow ON sql_traces(duration_us) WHERE duration_us > 100000;\n";

static bool test_init_creates_exact_schema(void)
{
	static const struct { const char *name, *type; int notnull, pk; } want[] = {
		{ "id", "INTEGER", 0, 1 }, { "trace_id", "TEXT", 0, 0 },
		{ "op", "TEXT", 1, 0 }, { "query", "TEXT", 1, 0 },
		{ "duration_us", "INTEGER", 1, 0 }, { "error", "TEXT", 0, 0 },
		{ "timestamp", "INTEGER", 1, 0 },
		{ "pid", "INTEGER", 0, 0 }, { "tid", "INTEGER", 0, 0 },
		{ "process", "TEXT", 0, 0 }, { "rows", "INTEGER", 0, 0 },
		{ "prepare_us", "INTEGER", 0, 0 }, { "query_len", "INTEGER", 0, 0 },
		{ "lib", "TEXT", 0, 0 }, { "db_file", "TEXT", 0, 0 },
		{ "parent_span_id", "TEXT", 0, 0 },
	};
	static const char *const want_idx[] = {
		"CREATE INDEX idx_sql_traces_slow ON sql_traces(duration_us) WHERE duration_us > 100000",
		"CREATE INDEX idx_sql_traces_tid ON sql_traces(trace_id) WHERE trace_id != ''",
		"CREATE INDEX idx_sql_traces_ts ON sql_traces(timestamp)",
	};
	char err[256] = "";
	sqlite3 *db;
	sqlite3_stmt *st;
	size_t i = 0;

	ASSERT_EQ_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
	ASSERT_EQ_INT(local_store__init_db(db, err, sizeof(err)), 0);
	ASSERT_EQ_INT(local_store__init_db(db, err, sizeof(err)), 0);  /* harmless again */
	ASSERT_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA table_info(sql_traces)", -1, &st, NULL), 0);
	for (; sqlite3_step(st) == SQLITE_ROW; i++) {
		ASSERT_TRUE(i < sizeof(want) / sizeof(want[0]));
		ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 1), want[i].name);
		ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 2), want[i].type);
		ASSERT_EQ_INT(sqlite3_column_int(st, 3), want[i].notnull);
		ASSERT_EQ_INT(sqlite3_column_int(st, 5), want[i].pk);
	}
	sqlite3_finalize(st);
	ASSERT_EQ_INT(i, sizeof(want) / sizeof(want[0]));
	ASSERT_TRUE(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'sql_traces' "
			  "AND sql LIKE '%id INTEGER PRIMARY KEY AUTOINCREMENT%'") == 1);
	ASSERT_EQ_INT(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE type = 'index' "
					 "AND tbl_name = 'sql_traces' ORDER BY name", -1, &st, NULL), 0);
	for (i = 0; sqlite3_step(st) == SQLITE_ROW; i++) {
		ASSERT_TRUE(i < 3);
		ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 0), want_idx[i]);
	}
	sqlite3_finalize(st);
	ASSERT_EQ_INT(i, 3);
	sqlite3_close(db);
	return true;
}

/* Records n entries with trace ids "<prefix><i>" then closes. */
static bool record_n(const char *prefix, int n, const struct batch_opts *o)
{
	char err[256] = "", id[32];
	struct recorder *r = local_store__open(dbpath, o, err, sizeof(err));

	if (!r) {
		printf("    open: %s\n", err);
		return false;
	}
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s%d", prefix, i);
		if (recorder__record(r, mk(id, i)) != 0)
			return recorder__close(r), false;
	}
	return recorder__close(r) == 0;
}

static bool test_ten_entries_give_ten_rows_with_trace_id(void)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int i = 0;

	ASSERT_TRUE(tmp_setup());
	ASSERT_TRUE(record_n("req-", 10, NULL));
	ASSERT_TRUE((db = db_open(dbpath)));
	ASSERT_EQ_INT(sqlite3_prepare_v2(db, "SELECT trace_id, op, query, duration_us, timestamp "
					 "FROM sql_traces ORDER BY id", -1, &st, NULL), 0);
	for (; sqlite3_step(st) == SQLITE_ROW; i++) {
		char id[32], q[64];
		snprintf(id, sizeof(id), "req-%d", i);
		snprintf(q, sizeof(q), "SELECT %d FROM t", i);
		ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 0), id);
		ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 1), "Query");
		ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 2), q);
		ASSERT_EQ_INT(sqlite3_column_int64(st, 3), 100 + i);
		ASSERT_EQ_INT(sqlite3_column_int64(st, 4), 1700000000000000LL + i);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	ASSERT_EQ_INT(i, 10);
	tmp_cleanup();
	return true;
}

static bool test_hundred_entries_all_land(void)
{
	ASSERT_TRUE(tmp_setup());
	ASSERT_TRUE(record_n("t", 100, NULL));
	ASSERT_EQ_INT(count_rows(dbpath, NULL), 100);
	ASSERT_EQ_INT(count_rows(dbpath, "trace_id = 't99'"), 1);
	tmp_cleanup();
	return true;
}

/* Error round-trips; empty trace id and error are '' (never NULL); extra
 * fields land in their columns, unknown ones as NULL. */
static bool test_fields_round_trip(void)
{
	char err[256] = "";
	sqlite3 *db;
	sqlite3_stmt *st;

	ASSERT_TRUE(tmp_setup());
	struct recorder *r = local_store__open(dbpath, NULL, err, sizeof(err));
	ASSERT_TRUE(r);
	struct st_entry *a = mk("", 1), *b = mk("x", 2);
	ASSERT_EQ_INT(entry__set_str(&a->error, "no such table: t"), 0);
	b->pid = 42; b->tid = 43; b->rows = 7; b->prepare_us = 0; b->query_len = 900;
	ASSERT_EQ_INT(entry__set_str(&b->process, "app"), 0);
	ASSERT_EQ_INT(entry__set_str(&b->lib, "/usr/lib/libsqlite3.so.0"), 0);
	ASSERT_EQ_INT(entry__set_str(&b->db_file, "/srv/app.db"), 0);
	ASSERT_EQ_INT(entry__set_str(&b->parent_span_id, "00f067aa0ba902b7"), 0);
	ASSERT_EQ_INT(recorder__record(r, a), 0);
	ASSERT_EQ_INT(recorder__record(r, b), 0);
	ASSERT_EQ_INT(recorder__close(r), 0);

	ASSERT_EQ_INT(count_rows(dbpath, "trace_id IS NULL OR error IS NULL"), 0);
	ASSERT_EQ_INT(count_rows(dbpath, "trace_id = '' AND error = 'no such table: t'"), 1);
	ASSERT_EQ_INT(count_rows(dbpath, "trace_id = 'x' AND error = ''"), 1);
	ASSERT_EQ_INT(count_rows(dbpath, "trace_id = '' AND pid IS NULL AND tid IS NULL AND "
				 "process IS NULL AND rows IS NULL AND prepare_us IS NULL AND "
				 "query_len IS NULL AND lib IS NULL AND db_file IS NULL AND "
				 "parent_span_id IS NULL"), 1);
	ASSERT_TRUE((db = db_open(dbpath)));
	ASSERT_EQ_INT(sqlite3_prepare_v2(db, "SELECT pid, tid, process, rows, prepare_us, query_len, "
					 "lib, db_file, parent_span_id FROM sql_traces "
					 "WHERE trace_id = 'x'", -1, &st, NULL), 0);
	ASSERT_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	ASSERT_EQ_INT(sqlite3_column_int(st, 0), 42);
	ASSERT_EQ_INT(sqlite3_column_int(st, 1), 43);
	ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 2), "app");
	ASSERT_EQ_INT(sqlite3_column_int(st, 3), 7);
	ASSERT_EQ_INT(sqlite3_column_type(st, 4), SQLITE_INTEGER);
	ASSERT_EQ_INT(sqlite3_column_int(st, 4), 0);
	ASSERT_EQ_INT(sqlite3_column_int(st, 5), 900);
	ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 6), "/usr/lib/libsqlite3.so.0");
	ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 7), "/srv/app.db");
	ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 8), "00f067aa0ba902b7");
	sqlite3_finalize(st);
	sqlite3_close(db);
	tmp_cleanup();
	return true;
}

/* A file made by the Go tracer (seed columns only, with rows) opens, gains
 * the extra columns and keeps its rows. */
static bool test_go_file_gains_columns_keeps_rows(void)
{
	sqlite3 *db;

	ASSERT_TRUE(tmp_setup());
	ASSERT_EQ_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
	ASSERT_EQ_INT(sqlite3_exec(db, go_schema, NULL, NULL, NULL), SQLITE_OK);
	ASSERT_EQ_INT(sqlite3_exec(db,
		"INSERT INTO sql_traces (trace_id, op, query, duration_us, error, timestamp) VALUES "
		"('go-1', 'Exec', 'INSERT INTO a VALUES (1)', 12, '', 1600000000000000),"
		"('', 'Query', 'SELECT * FROM b', 250000, 'no such table: b', 1600000000000001),"
		"('go-3', 'Query', 'SELECT 1', 3, '', 1600000000000002)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	ASSERT_TRUE(record_n("new-", 2, NULL));
	ASSERT_EQ_INT(count_rows(dbpath, NULL), 5);
	ASSERT_EQ_INT(count_rows(dbpath, "id = 1 AND trace_id = 'go-1' AND op = 'Exec' AND "
				 "query = 'INSERT INTO a VALUES (1)' AND duration_us = 12 AND "
				 "error = '' AND timestamp = 1600000000000000 AND pid IS NULL"), 1);
	ASSERT_EQ_INT(count_rows(dbpath, "id = 2 AND error = 'no such table: b'"), 1);
	ASSERT_EQ_INT(count_rows(dbpath, "id > 3 AND trace_id LIKE 'new-%'"), 2);
	ASSERT_TRUE((db = db_open(dbpath)));
	ASSERT_EQ_INT(q_int(db, "SELECT count(*) FROM pragma_table_info('sql_traces')"), 16);
	ASSERT_EQ_INT(q_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
			    "AND tbl_name = 'sql_traces'"), 3);
	sqlite3_close(db);
	tmp_cleanup();
	return true;
}

/* Creates dbpath with the given schema, then checks that opening it fails
 * with exactly want_err and leaves the file byte for byte as it was. */
static bool refused_untouched(const char *schema, const char *want_err)
{
	char err[256] = "", want[300];
	size_t n0 = 0, n1 = 0;
	sqlite3 *db;

	ASSERT_TRUE(tmp_setup());
	ASSERT_EQ_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
	ASSERT_EQ_INT(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char *before = slurp(dbpath, &n0);
	ASSERT_TRUE(before);

	snprintf(want, sizeof(want), "cannot open trace store %s: %s", dbpath, want_err);
	errno = 0;
	ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
	ASSERT_EQ_INT(errno, EINVAL);
	ASSERT_EQ_STR(err, want);
	err[0] = '\0';
	ASSERT_EQ_INT(local_store__check(dbpath, err, sizeof(err)), -EINVAL);
	ASSERT_EQ_STR(err, want);

	char *after = slurp(dbpath, &n1);
	ASSERT_TRUE(after);
	bool same = n0 == n1 && memcmp(before, after, n0) == 0;
	free(before);
	free(after);
	ASSERT_TRUE(same);
	ASSERT_TRUE(access(dbpath, F_OK) == 0);
	tmp_cleanup();
	return true;
}

static bool test_incompatible_file_refused_untouched(void)
{
	if (!refused_untouched("CREATE TABLE sql_traces (id INTEGER PRIMARY KEY AUTOINCREMENT, "
			       "trace_id TEXT, op INTEGER NOT NULL, query TEXT NOT NULL, "
			       "duration_us INTEGER NOT NULL, error TEXT, timestamp INTEGER NOT NULL);"
			       "INSERT INTO sql_traces (op, query, duration_us, timestamp) "
			       "VALUES (1, 'q', 1, 1);",
			       "sql_traces has column 'op' of type INTEGER, expected TEXT"))
		return false;
	if (!refused_untouched("CREATE TABLE sql_traces (id INTEGER PRIMARY KEY AUTOINCREMENT, "
			       "trace_id TEXT, op TEXT NOT NULL, duration_us INTEGER NOT NULL, "
			       "error TEXT, timestamp INTEGER NOT NULL);",
			       "sql_traces has no column 'query'"))
		return false;
	if (!refused_untouched("CREATE TABLE other (a); CREATE VIEW sql_traces AS SELECT a FROM other;",
			       "sql_traces is a view, expected a table"))
		return false;
	return refused_untouched("CREATE TABLE sql_traces (id INTEGER PRIMARY KEY AUTOINCREMENT, "
				 "trace_id TEXT, op TEXT NOT NULL, query TEXT NOT NULL, "
				 "duration_us INTEGER NOT NULL, error TEXT, timestamp INTEGER NOT NULL, "
				 "pid TEXT);",
				 "sql_traces has column 'pid' of type TEXT, expected INTEGER");
}

static bool test_not_a_database_refused(void)
{
	char err[256] = "";
	FILE *f;

	ASSERT_TRUE(tmp_setup());
	ASSERT_TRUE((f = fopen(dbpath, "w")));
	for (int i = 0; i < 200; i++)
		fputs("this is not a database. ", f);
	fclose(f);
	ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "cannot open trace store ") == err);
	ASSERT_TRUE(strstr(err, "file is not a database") != NULL);
	tmp_cleanup();
	return true;
}

static bool test_check_missing_file_is_fine_and_creates_nothing(void)
{
	char err[256] = "";

	ASSERT_TRUE(tmp_setup());
	ASSERT_EQ_INT(local_store__check(dbpath, err, sizeof(err)), 0);
	ASSERT_TRUE(access(dbpath, F_OK) != 0);
	ASSERT_TRUE(record_n("a", 1, NULL));
	ASSERT_EQ_INT(local_store__check(dbpath, err, sizeof(err)), 0);
	tmp_cleanup();
	return true;
}

/* 64 entries are one write transaction; 128 recorded at once are two, or
 * one when the writer finds both batches queued (group commit): counted as
 * commit frames in the WAL, which per-row commits would multiply. */
static bool test_one_transaction_per_batch(void)
{
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64, .flush_interval_ms = 60000 };
	char err[256] = "", wal[160];
	sqlite3 *reader;
	int c0, c1, c2;

	ASSERT_TRUE(tmp_setup());
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	struct recorder *r = local_store__open(dbpath, &o, err, sizeof(err));
	ASSERT_TRUE(r);
	ASSERT_TRUE((reader = db_open(dbpath)));
	c0 = wal_commits(wal);
	ASSERT_TRUE(c0 >= 1);
	for (int i = 0; i < 64; i++)
		ASSERT_EQ_INT(recorder__record(r, mk("b1", i)), 0);
	ASSERT_TRUE(wait_stats(r, 5.0, written_at_least, 64));
	ASSERT_EQ_INT(q_int(reader, "SELECT count(*) FROM sql_traces"), 64);
	c1 = wal_commits(wal);
	ASSERT_EQ_INT(c1 - c0, 1);
	for (int i = 0; i < 128; i++)
		ASSERT_EQ_INT(recorder__record(r, mk("b2", i)), 0);
	ASSERT_TRUE(wait_stats(r, 5.0, written_at_least, 192));
	c2 = wal_commits(wal);
	ASSERT_TRUE(c2 - c1 == 1 || c2 - c1 == 2);
	ASSERT_EQ_INT(q_int(reader, "SELECT count(*) FROM sql_traces"), 192);
	sqlite3_close(reader);
	ASSERT_EQ_INT(recorder__close(r), 0);
	tmp_cleanup();
	return true;
}

/* A row the table refuses (a user's trigger) is skipped; the rest of its
 * batch lands, and the pipeline does not stall retrying it. */
static bool test_refused_row_skipped_rest_lands(void)
{
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64, .flush_interval_ms = 60000 };
	char err[256] = "", logp[64];
	sqlite3 *db;
	size_t loglen;

	ASSERT_TRUE(tmp_setup());
	ASSERT_TRUE(record_n("init", 0, NULL));
	ASSERT_TRUE((db = db_open(dbpath)));
	ASSERT_EQ_INT(sqlite3_exec(db, "CREATE TRIGGER no_bad BEFORE INSERT ON sql_traces "
				   "WHEN NEW.query = 'bad' BEGIN SELECT RAISE(ABORT, 'bad query'); END",
				   NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	snprintf(logp, sizeof(logp), "/tmp/sqltrace-test-log-%d", (int)getpid());
	int saved = capture_begin(logp);
	struct recorder *r = local_store__open(dbpath, &o, err, sizeof(err));
	for (int i = 0; r && i < 100; i++) {
		struct st_entry *e = mk("ok", i);
		if (i == 10 || i == 70)
			entry__set_str(&e->query, "bad");
		recorder__record(r, e);
	}
	int rc = r ? recorder__close(r) : -1;
	capture_end(saved);
	char *log = slurp(logp, &loglen);
	unlink(logp);
	ASSERT_TRUE(r);
	ASSERT_EQ_INT(rc, 0);
	ASSERT_EQ_INT(count_rows(dbpath, NULL), 98);
	ASSERT_EQ_INT(count_rows(dbpath, "query = 'SELECT 9 FROM t' OR query = 'SELECT 11 FROM t' "
				 "OR query = 'SELECT 99 FROM t'"), 3);
	ASSERT_EQ_INT(count_rows(dbpath, "query = 'SELECT 10 FROM t'"), 0);
	bool logged = log && count_substr(log, "msg=\"trace store refused a row, skipping it\"") == 1 &&
		      strstr(log, "error=\"bad query\"") &&
		      strstr(log, "msg=\"trace store skipped refused rows\"") && strstr(log, "rows=2");
	if (!logged)
		printf("    log was:\n%s", log ? log : "");
	free(log);
	ASSERT_TRUE(logged);
	tmp_cleanup();
	return true;
}

/* The trace file and its -wal/-shm are 0600, whatever the umask. */
static bool test_file_mode_0600(void)
{
	char err[256] = "", p[160];
	struct stat st;
	mode_t old = umask(0);

	ASSERT_TRUE(tmp_setup());
	struct recorder *r = local_store__open(dbpath, NULL, err, sizeof(err));
	umask(old);
	ASSERT_TRUE(r);
	ASSERT_EQ_INT(recorder__record(r, mk("m", 1)), 0);
	ASSERT_EQ_INT(stat(dbpath, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	ASSERT_EQ_INT(stat(p, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	ASSERT_EQ_INT(stat(p, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	ASSERT_EQ_INT(recorder__close(r), 0);
	tmp_cleanup();
	return true;
}

static bool mount_tmpfs(const char *opts, unsigned long flags)
{
	return mount("tmpfs", dir, "tmpfs", flags, opts) == 0;
}

/* A read-only directory: opening reports it in one line, new file or old. */
static bool test_read_only_directory(void)
{
	char err[256] = "";

	ASSERT_TRUE(tmp_setup());
	if (!mount_tmpfs("size=1m", MS_RDONLY)) {
		tmp_cleanup();
		SKIP("cannot mount a read-only tmpfs (needs root with CAP_SYS_ADMIN)");
	}
	errno = 0;
	bool refused = local_store__open(dbpath, NULL, err, sizeof(err)) == NULL;
	int e = errno;
	umount2(dir, MNT_DETACH);
	ASSERT_TRUE(refused);
	ASSERT_EQ_INT(e, EROFS);
	ASSERT_TRUE(strstr(err, "cannot open trace store ") == err);
	ASSERT_TRUE(strstr(err, ": Read-only file system") != NULL);

	/* an existing trace file on a file system remounted read-only */
	ASSERT_TRUE(mount_tmpfs("size=1m", 0));
	bool made = record_n("ro", 3, NULL);
	bool remounted = mount("tmpfs", dir, "tmpfs", MS_REMOUNT | MS_RDONLY, "size=1m") == 0;
	err[0] = '\0';
	refused = local_store__open(dbpath, NULL, err, sizeof(err)) == NULL;
	umount2(dir, MNT_DETACH);
	ASSERT_TRUE(made && remounted);
	ASSERT_TRUE(refused);
	ASSERT_TRUE(strstr(err, "Read-only file system") != NULL);
	tmp_cleanup();
	return true;
}

/* A full disk: writes fail and are retried, the failure is logged once, the
 * queue bounds what is held; once space is back everything accepted lands. */
static bool test_disk_full_then_freed_loses_nothing(void)
{
	struct batch_opts o = { .queue_size = 256, .batch_size = 64, .flush_interval_ms = 50 };
	char err[256] = "", logp[64], big[2048], id[32];
	struct recorder_stats st;
	size_t loglen;

	ASSERT_TRUE(tmp_setup());
	if (!mount_tmpfs("size=256k", 0)) {
		tmp_cleanup();
		SKIP("cannot mount a tmpfs (needs root with CAP_SYS_ADMIN)");
	}
	snprintf(logp, sizeof(logp), "/tmp/sqltrace-test-log-%d", (int)getpid());
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	int saved = capture_begin(logp);
	struct recorder *r = local_store__open(dbpath, &o, err, sizeof(err));
	bool ok = r != NULL;
	/* fill the disk: 2 KiB queries until writes fail */
	for (int i = 0; ok && i < 2000; i++) {
		struct st_entry *e = mk("", i);
		snprintf(id, sizeof(id), "full-%d", i);
		entry__set_str(&e->trace_id, id);
		entry__set_str(&e->query, big);
		recorder__record(r, e);
		recorder__stats(r, &st);
		if (st.failures)
			break;
		if (i % 64 == 63)
			usleep(20000);
	}
	ok = ok && wait_stats(r, 10.0, failures_at_least, 3);
	bool grown = mount("tmpfs", dir, "tmpfs", MS_REMOUNT, "size=64m") == 0;
	double end = now_s() + 15.0;
	while (ok && recorder__pending(r) && now_s() < end)
		usleep(10000);
	if (r) {
		ok = ok && recorder__pending(r) == 0;
		ok = recorder__close_stats(r, &st) == 0 && ok;
	}
	capture_end(saved);
	long long rows = ok ? count_rows(dbpath, NULL) : -1;
	umount2(dir, MNT_DETACH);
	char *log = slurp(logp, &loglen);
	unlink(logp);
	if (!ok && err[0])
		printf("    open: %s\n", err);
	ASSERT_TRUE(ok && grown);
	ASSERT_TRUE(st.failures >= 3);
	ASSERT_EQ_INT(st.lost, 0);
	ASSERT_EQ_INT(st.written, st.recorded);
	ASSERT_EQ_INT(rows, (long long)st.recorded);
	ASSERT_TRUE(log);
	bool logged_once = count_substr(log, "level=WARN msg=\"trace store write failed\" path=") >= 1 &&
			   count_substr(log, "error=\"database or disk is full\"") == 1 &&
			   count_substr(log, "msg=\"trace store write recovered\"") == 1;
	if (!logged_once)
		printf("    log was:\n%s", log);
	free(log);
	ASSERT_TRUE(logged_once);
	tmp_cleanup();
	return true;
}

/* The trace file removed while tracing (alone, or with its -wal and -shm):
 * later entries land in a new file at the same path, mode 0600. */
static bool removed_then_recreated(bool with_sidecars)
{
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64, .flush_interval_ms = 50 };
	char err[256] = "", p[160];
	struct stat st;

	ASSERT_TRUE(tmp_setup());
	struct recorder *r = local_store__open(dbpath, &o, err, sizeof(err));
	ASSERT_TRUE(r);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ_INT(recorder__record(r, mk("before", i)), 0);
	ASSERT_TRUE(wait_stats(r, 5.0, written_at_least, 10));
	ASSERT_EQ_INT(unlink(dbpath), 0);
	if (with_sidecars) {
		snprintf(p, sizeof(p), "%s-wal", dbpath);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", dbpath);
		unlink(p);
	}
	for (int i = 0; i < 10; i++)
		ASSERT_EQ_INT(recorder__record(r, mk("after", i)), 0);
	ASSERT_TRUE(wait_stats(r, 5.0, written_at_least, 20));
	ASSERT_EQ_INT(count_rows(dbpath, NULL), 10);  /* readable while open */
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(count_rows(dbpath, "trace_id = 'after'"), 10);
	ASSERT_EQ_INT(count_rows(dbpath, NULL), 10);
	ASSERT_EQ_INT(stat(dbpath, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	tmp_cleanup();
	return true;
}

static bool test_file_removed_while_open_is_recreated(void)
{
	return removed_then_recreated(false) && removed_then_recreated(true);
}

/* A -wal left behind by a removed trace file is not replayed into the new
 * file created at the same path. */
static bool test_orphan_wal_not_replayed(void)
{
	char err[256] = "", wal[160];
	size_t n = 0;
	FILE *f;

	ASSERT_TRUE(tmp_setup());
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	struct recorder *r = local_store__open(dbpath, NULL, err, sizeof(err));
	ASSERT_TRUE(r);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ_INT(recorder__record(r, mk("old", i)), 0);
	ASSERT_TRUE(wait_stats(r, 5.0, written_at_least, 10));
	char *frames = slurp(wal, &n);  /* the WAL while it holds the rows */
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_TRUE(frames && n > 32);
	ASSERT_EQ_INT(unlink(dbpath), 0);
	ASSERT_TRUE((f = fopen(wal, "wb")));
	ASSERT_EQ_INT(fwrite(frames, 1, n, f), n);
	fclose(f);
	free(frames);

	ASSERT_TRUE(record_n("new", 3, NULL));
	sqlite3 *db = db_open(dbpath);
	ASSERT_TRUE(db);
	sqlite3_stmt *st;
	ASSERT_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	ASSERT_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
	ASSERT_EQ_INT(count_rows(dbpath, NULL), 3);
	ASSERT_EQ_INT(count_rows(dbpath, "trace_id LIKE 'old%'"), 0);
	tmp_cleanup();
	return true;
}

/* Another connection holds the write lock longer than the busy timeout:
 * the write fails, is retried, and everything lands once it lets go. */
static bool test_locked_longer_than_busy_timeout_loses_nothing(void)
{
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64, .flush_interval_ms = 100 };
	char err[256] = "", logp[64];
	struct recorder_stats st;
	sqlite3 *locker;
	size_t loglen;

	ASSERT_TRUE(tmp_setup());
	snprintf(logp, sizeof(logp), "/tmp/sqltrace-test-log-%d", (int)getpid());
	struct recorder *r = local_store__open(dbpath, &o, err, sizeof(err));
	ASSERT_TRUE(r);
	ASSERT_TRUE((locker = db_open(dbpath)));
	ASSERT_EQ_INT(sqlite3_exec(locker, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	int saved = capture_begin(logp);
	for (int i = 0; i < 10; i++)
		recorder__record(r, mk("locked", i));
	bool failed = wait_stats(r, 15.0, failures_at_least, 1);  /* ~5 s busy timeout */
	sqlite3_exec(locker, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(locker);
	bool landed = wait_stats(r, 15.0, written_at_least, 10);
	int rc = recorder__close_stats(r, &st);
	capture_end(saved);
	char *log = slurp(logp, &loglen);
	unlink(logp);
	ASSERT_TRUE(log);
	bool logged = strstr(log, "level=WARN msg=\"trace store write failed\" path=") &&
		      strstr(log, "error=\"database is locked\" batch=10") &&
		      strstr(log, "msg=\"trace store write recovered\"");
	if (!logged)
		printf("    log was:\n%s", log);
	free(log);
	ASSERT_TRUE(failed && landed);
	ASSERT_EQ_INT(rc, 0);
	ASSERT_EQ_INT(st.lost, 0);
	ASSERT_TRUE(logged);
	ASSERT_EQ_INT(count_rows(dbpath, "trace_id = 'locked'"), 10);
	tmp_cleanup();
	return true;
}

/* ---- hostile files (issue 11) ------------------------------------------------ */

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static bool make_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	return fd >= 0 && fchmod(fd, mode) == 0 && close(fd) == 0;
}

/* The store's directory: refused when group or others can write it, unless
 * it is sticky like /tmp; nothing is created in a refused one. */
static bool test_dir_writable_by_others_refused_unless_sticky(void)
{
	char err[512] = "";
	struct stat st;
	bool refused, refused_g, made;

	ASSERT_TRUE(tmp_setup());
	ASSERT_EQ_INT(chmod(dir, 0777), 0);
	refused = local_store__open(dbpath, NULL, err, sizeof(err)) == NULL;
	ASSERT_EQ_INT(chmod(dir, 0770), 0);
	refused_g = local_store__open(dbpath, NULL, err + 256, sizeof(err) - 256) == NULL;
	ASSERT_EQ_INT(chmod(dir, 01777), 0);
	made = record_n("sticky", 2, NULL);
	ASSERT_EQ_INT(chmod(dir, 0700), 0);
	ASSERT_TRUE(refused && refused_g);
	ASSERT_TRUE(strstr(err, "cannot open trace store ") == err);
	ASSERT_TRUE(strstr(err, dir) && strstr(err, "writable by group or others and not sticky"));
	ASSERT_TRUE(strstr(err + 256, "writable by group or others"));
	ASSERT_TRUE(made);
	ASSERT_EQ_INT(count_rows(dbpath, NULL), 2);
	ASSERT_EQ_INT(stat(dbpath, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	tmp_cleanup();
	return true;
}

/* A symbolic link at the store's path is not followed (nothing is created
 * at its target), even in a directory of ours. */
static bool test_symlink_store_refused(void)
{
	char err[512] = "", target[160];

	ASSERT_TRUE(tmp_setup());
	snprintf(target, sizeof(target), "%s/made-through-link", dir);
	ASSERT_EQ_INT(symlink(target, dbpath), 0);
	ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(!exists(target));
	ASSERT_TRUE(strstr(err, dbpath) && strstr(err, "symbolic link"));
	tmp_cleanup();
	return true;
}

/* A store file others can write, with another link, or owned by another
 * user is refused untouched; one others can only read is made private, and
 * so are the -wal and -shm SQLite makes from it. */
static bool test_store_file_modes_and_owner(void)
{
	char err[512] = "", p[160], other[160];
	size_t n1 = 0, n2 = 0;
	struct stat st;
	char *before, *after;

	ASSERT_TRUE(tmp_setup());
	ASSERT_TRUE(record_n("m", 3, NULL));
	ASSERT_EQ_INT(chmod(dbpath, 0666), 0);
	before = slurp(dbpath, &n1);
	ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
	after = slurp(dbpath, &n2);
	bool same = before && after && n1 == n2 && memcmp(before, after, n1) == 0;
	free(before);
	free(after);
	ASSERT_TRUE(same);
	ASSERT_TRUE(strstr(err, dbpath) && strstr(err, "writable by group or others"));

	snprintf(other, sizeof(other), "%s/second-name", dir);
	ASSERT_EQ_INT(chmod(dbpath, 0600), 0);
	ASSERT_EQ_INT(link(dbpath, other), 0);
	ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "hard links"));
	ASSERT_EQ_INT(unlink(other), 0);

	ASSERT_EQ_INT(chmod(dbpath, 0644), 0);
	struct recorder *r = local_store__open(dbpath, NULL, err, sizeof(err));
	ASSERT_TRUE(r);
	ASSERT_EQ_INT(recorder__record(r, mk("m", 4)), 0);
	ASSERT_TRUE(wait_stats(r, 5.0, written_at_least, 1));
	ASSERT_EQ_INT(stat(dbpath, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	ASSERT_EQ_INT(stat(p, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	ASSERT_EQ_INT(stat(p, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	ASSERT_EQ_INT(recorder__close(r), 0);

	if (geteuid() != 0) {
		tmp_cleanup();
		SKIP("the foreign-owner case needs root (chown)");
	}
	ASSERT_EQ_INT(chown(dbpath, 65534, 65534), 0);
	before = slurp(dbpath, &n1);
	ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
	after = slurp(dbpath, &n2);
	same = before && after && n1 == n2 && memcmp(before, after, n1) == 0;
	free(before);
	free(after);
	ASSERT_TRUE(same);
	ASSERT_TRUE(strstr(err, dbpath) && strstr(err, "owned by uid 65534"));
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	ASSERT_TRUE(!exists(p));
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	ASSERT_TRUE(!exists(p));
	tmp_cleanup();
	return true;
}

/* -wal, -shm and -journal files that are symbolic links, that others can
 * write or that another user owns are refused before SQLite opens them. */
static bool test_foreign_sidecars_refused(void)
{
	static const char *const sfx[] = { "-wal", "-shm", "-journal" };
	char err[512] = "", p[160], target[160];
	struct stat st;

	ASSERT_TRUE(tmp_setup());
	ASSERT_TRUE(record_n("s", 2, NULL));
	snprintf(target, sizeof(target), "%s/made-through-link", dir);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
		ASSERT_EQ_INT(symlink(target, p), 0);
		ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
		ASSERT_TRUE(strstr(err, p) && strstr(err, "symbolic link"));
		ASSERT_TRUE(!exists(target));
		ASSERT_EQ_INT(unlink(p), 0);
	}
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	ASSERT_TRUE(make_file(p, 0666));
	ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, p) && strstr(err, "writable by group or others"));
	ASSERT_EQ_INT(chmod(p, 0644), 0);  /* ours, readable: made private */
	ASSERT_TRUE(record_n("s", 1, NULL));
	ASSERT_EQ_INT(count_rows(dbpath, NULL), 3);
	if (stat(p, &st) == 0)
		ASSERT_EQ_INT(st.st_mode & 0777, 0600);
	if (geteuid() != 0) {
		tmp_cleanup();
		SKIP("the foreign-owner case needs root (chown)");
	}
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
		unlink(p);
		ASSERT_TRUE(make_file(p, 0600));
		ASSERT_EQ_INT(chown(p, 65534, 65534), 0);
		ASSERT_TRUE(local_store__open(dbpath, NULL, err, sizeof(err)) == NULL);
		ASSERT_TRUE(strstr(err, p) && strstr(err, "owned by uid 65534"));
		ASSERT_EQ_INT(stat(p, &st), 0);
		ASSERT_EQ_INT(st.st_size, 0);
		ASSERT_EQ_INT(unlink(p), 0);
	}
	tmp_cleanup();
	return true;
}

int main(void)
{
	RUN(test_init_creates_exact_schema);
	RUN(test_ten_entries_give_ten_rows_with_trace_id);
	RUN(test_hundred_entries_all_land);
	RUN(test_fields_round_trip);
	RUN(test_go_file_gains_columns_keeps_rows);
	RUN(test_incompatible_file_refused_untouched);
	RUN(test_not_a_database_refused);
	RUN(test_check_missing_file_is_fine_and_creates_nothing);
	RUN(test_one_transaction_per_batch);
	RUN(test_refused_row_skipped_rest_lands);
	RUN(test_file_mode_0600);
	RUN(test_read_only_directory);
	RUN(test_disk_full_then_freed_loses_nothing);
	RUN(test_file_removed_while_open_is_recreated);
	RUN(test_orphan_wal_not_replayed);
	RUN(test_locked_longer_than_busy_timeout_loses_nothing);
	RUN(test_dir_writable_by_others_refused_unless_sticky);
	RUN(test_symlink_store_refused);
	RUN(test_store_file_modes_and_owner);
	RUN(test_foreign_sidecars_refused);
	tmp_cleanup();
	return harness_done();
}
