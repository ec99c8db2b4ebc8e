/* tracefile.c — reading a trace file read-only (tracefile.h). */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strbuf.h"
#include "tracefile.h"

#define MAX_COLS 64
#define PATH_MAX_LEN 4096

struct tracefile {
	sqlite3 *db;
	char *path;
	char *cols[MAX_COLS];
	size_t ncols;
};

bool tracefile__has_column(const struct tracefile *tf, const char *name)
{
	size_t i;

	for (i = 0; i < tf->ncols; i++)
		if (strcmp(tf->cols[i], name) == 0)
			return true;
	return false;
}

void tracefile__close(struct tracefile *tf)
{
	size_t i;

	if (!tf)
		return;
	sqlite3_close_v2(tf->db);
	for (i = 0; i < tf->ncols; i++)
		free(tf->cols[i]);
	free(tf->path);
	free(tf);
}

/* Whether path is a database in WAL mode whose -wal file is absent (closed
 * cleanly: everything is in the main file). Opening it read-only the
 * ordinary way would create -wal and -shm files beside it and leave them. */
static bool wal_closed(const char *path)
{
	unsigned char h[20];
	char wal[PATH_MAX_LEN];
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	bool ok;

	if (fd < 0)
		return false;
	ok = read(fd, h, sizeof(h)) == (ssize_t)sizeof(h);
	close(fd);
	if (!ok || memcmp(h, "SQLite format 3", 16) != 0 || h[18] != 2 || h[19] != 2)
		return false;
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) >= sizeof(wal))
		return false;
	return lstat(wal, &sb) != 0 && errno == ENOENT;
}

/* "file:PATH?immutable=1" with PATH percent-encoded. NULL on ENOMEM. */
static char *immutable_uri(const char *path)
{
	struct strbuf b = {0};
	const unsigned char *p = (const unsigned char *)path;

	strbuf__puts(&b, "file:");
	for (; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("/-._~", *p))
			strbuf__putc(&b, (char)*p);
		else
			strbuf__printf(&b, "%%%02X", *p);
	}
	strbuf__puts(&b, "?immutable=1");
	if (b.oom) {
		strbuf__free(&b);
		return NULL;
	}
	return b.p;
}

int tracefile__open(const char *path, struct tracefile **out, char *err, size_t errlen)
{
	static const char *const seed[] = { "query", "duration_us", "error", "timestamp" };
	struct tracefile *tf;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	size_t i;
	int rc;

	*out = NULL;
	if (stat(path, &sb) != 0) {
		int e = errno;

		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "cannot read %s: not a regular file", path);
		return -EINVAL;
	}
	tf = calloc(1, sizeof(*tf));
	if (!tf || !(tf->path = strdup(path))) {
		free(tf);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* Read-only in both cases. A file being written (its -wal exists) is
	 * opened the ordinary way: each read is a consistent snapshot. A WAL
	 * file closed cleanly is opened immutable, so that no -wal/-shm file
	 * is left beside it; a tracer that starts writing it meanwhile appends
	 * to its new -wal, which this read does not see. */
	if (wal_closed(path)) {
		char *uri = immutable_uri(path);

		if (!uri) {
			snprintf(err, errlen, "out of memory");
			tracefile__close(tf);
			return -ENOMEM;
		}
		rc = sqlite3_open_v2(uri, &tf->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
				     NULL);
		free(uri);
	} else {
		rc = sqlite3_open_v2(path, &tf->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path, tf->db ? sqlite3_errmsg(tf->db) : "out of memory");
		tracefile__close(tf);
		return -EIO;
	}
	/* The file may come from anyone: no triggers, views or functions of
	 * its schema run anything on our behalf. */
	sqlite3_db_config(tf->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(tf->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_busy_timeout(tf->db, 5000);
	rc = sqlite3_prepare_v2(tf->db, "SELECT name, type FROM pragma_table_info('sql_traces')", -1, &st,
				NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (name && tf->ncols < MAX_COLS && (tf->cols[tf->ncols] = strdup(name)))
			tf->ncols++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 rc == SQLITE_NOTADB ? "not a SQLite database" : sqlite3_errmsg(tf->db));
		sqlite3_finalize(st);
		tracefile__close(tf);
		return -EINVAL;
	}
	sqlite3_finalize(st);
	if (tf->ncols == 0) {
		snprintf(err, errlen, "%s has no sql_traces table: not a trace file", path);
		tracefile__close(tf);
		return -EINVAL;
	}
	for (i = 0; i < sizeof(seed) / sizeof(seed[0]); i++)
		if (!tracefile__has_column(tf, seed[i])) {
			snprintf(err, errlen, "%s: table sql_traces has no %s column: not a trace file", path,
				 seed[i]);
			tracefile__close(tf);
			return -EINVAL;
		}
	*out = tf;
	return 0;
}

int tracefile__check_filter(const struct tracefile *tf, const struct tf_filter *f, char *err,
			    size_t errlen)
{
	const char *need = NULL, *opt = NULL;

	if (f->has_pid && !tracefile__has_column(tf, "pid"))
		need = "pid", opt = "--pid";
	else if (f->process && !tracefile__has_column(tf, "process"))
		need = "process", opt = "--process";
	else if (f->db_file && !tracefile__has_column(tf, "db_file"))
		need = "db_file", opt = "--db-file";
	else if (f->trace_id && !tracefile__has_column(tf, "trace_id"))
		need = "trace_id", opt = "--trace-id";
	if (!need)
		return 0;
	snprintf(err, errlen, "%s needs the %s column, which %s does not have (a file of the Go tracer "
		 "has only its six fields)", opt, need, tf->path);
	return -EINVAL;
}

/* Appends the WHERE clause of f to b; binds come in the order of bind(). */
static void where(struct strbuf *b, const struct tf_filter *f)
{
	const char *sep = " WHERE ";

#define COND(c) do { strbuf__puts(b, sep); strbuf__puts(b, c); sep = " AND "; } while (0)
	if (f->has_since)
		COND("timestamp >= ?");
	if (f->has_until)
		COND("timestamp <= ?");
	if (f->has_pid)
		COND("pid = ?");
	if (f->process)
		COND("process = ?");
	if (f->db_file)
		COND("db_file = ?");
	if (f->trace_id)
		COND("trace_id = ?");
	if (f->errors_only)
		COND("error IS NOT NULL AND error != ''");
#undef COND
}

static void bind(sqlite3_stmt *st, const struct tf_filter *f)
{
	int i = 1;

	if (f->has_since)
		sqlite3_bind_int64(st, i++, f->since_us);
	if (f->has_until)
		sqlite3_bind_int64(st, i++, f->until_us);
	if (f->has_pid)
		sqlite3_bind_int(st, i++, f->pid);
	if (f->process)
		sqlite3_bind_text(st, i++, f->process, -1, SQLITE_STATIC);
	if (f->db_file)
		sqlite3_bind_text(st, i++, f->db_file, -1, SQLITE_STATIC);
	if (f->trace_id)
		sqlite3_bind_text(st, i++, f->trace_id, -1, SQLITE_STATIC);
}

/* Prepares "head FROM sql_traces WHERE ..." with f bound. */
static int prepare(struct tracefile *tf, const char *head, const struct tf_filter *f, sqlite3_stmt **st,
		   char *err, size_t errlen)
{
	struct strbuf b = {0};
	int rc;

	strbuf__puts(&b, head);
	strbuf__puts(&b, " FROM sql_traces");
	where(&b, f);
	if (b.oom) {
		strbuf__free(&b);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = sqlite3_prepare_v2(tf->db, b.p, -1, st, NULL);
	strbuf__free(&b);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot read %s: %s", tf->path, sqlite3_errmsg(tf->db));
		return -EIO;
	}
	bind(*st, f);
	return 0;
}

int tracefile__span(struct tracefile *tf, const struct tf_filter *f, int64_t *min_us,
		    int64_t *max_us, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc = prepare(tf, "SELECT min(timestamp), max(timestamp)", f, &st, err, errlen);

	*min_us = *max_us = 0;
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*min_us = sqlite3_column_int64(st, 0);
		*max_us = sqlite3_column_int64(st, 1);
		rc = 0;
	} else {
		snprintf(err, errlen, "cannot read %s: %s", tf->path, sqlite3_errmsg(tf->db));
		rc = -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

int tracefile__scan(struct tracefile *tf, const struct tf_filter *f,
		    int (*fn)(void *ctx, const struct tf_row *r), void *ctx, char *err, size_t errlen)
{
	bool has_rows = tracefile__has_column(tf, "rows");
	sqlite3_stmt *st;
	int rc = prepare(tf, has_rows ? "SELECT query, duration_us, error, timestamp, rows"
				      : "SELECT query, duration_us, error, timestamp",
			 f, &st, err, errlen);

	if (rc)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct tf_row r;
		const char *q = (const char *)sqlite3_column_text(st, 0);
		const char *e = (const char *)sqlite3_column_text(st, 2);
		int cb;

		r.query = q ? q : "";
		r.query_len = q ? (size_t)sqlite3_column_bytes(st, 0) : 0;
		r.duration_us = sqlite3_column_int64(st, 1);
		r.error = e ? e : "";
		r.timestamp_us = sqlite3_column_int64(st, 3);
		r.rows = has_rows && sqlite3_column_type(st, 4) != SQLITE_NULL ? sqlite3_column_int64(st, 4) : -1;
		cb = fn(ctx, &r);
		if (cb) {
			sqlite3_finalize(st);
			snprintf(err, errlen, "reading %s: %s", tf->path, strerror(-cb));
			return cb;
		}
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot read %s: %s", tf->path, sqlite3_errmsg(tf->db));
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_finalize(st);
	return 0;
}
