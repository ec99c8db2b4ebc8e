/* local_store.c — the local SQLite sink (local_store.h): checks and migrates
 * sql_traces, writes each batch in one transaction with prepared INSERTs
 * (prepared once per connection), and survives a locked, full, read-only or removed trace file by
 * failing the batch (the batcher retries it) and reconnecting.
 *
 * The connection is opened by local_store__open() on the caller's thread,
 * then used only by the recorder's writer thread (SQLITE_OPEN_NOMUTEX).
 *
 * Files. The store's directory is resolved and checked once, at open
 * (common/safefile.h: owned by root or us, not writable by others unless
 * sticky, nor any directory above it), and kept as a directory fd; the
 * file is opened relative to it with O_NOFOLLOW (O_EXCL when it is made,
 * mode 0600) and must be a regular file of ours with one link that others
 * cannot write; read access for others is removed before SQLite opens it,
 * because SQLite gives the -wal and -shm files it creates the store's mode
 * (and, as root, its owner). SQLite opens the file by its real path
 * (SQLITE_OPEN_NOFOLLOW) in that directory, which only root or we can
 * change; that the name is still the file checked is verified right after.
 * -wal, -shm and -journal files already there must be ours too (SQLite
 * itself opens them with O_NOFOLLOW); they are checked again once SQLite
 * has opened them, before any entry is written, which catches one another
 * user made in a sticky directory in between (then refused, and not
 * checkpointed into the store).
 *
 * Failure policy, per write:
 *   - before each batch the name is stat()ed; when the file was removed or
 *     replaced, the connection is dropped and the file reopened (recreated
 *     with its schema when missing), so writing goes on at the path;
 *   - SQLITE_BUSY/LOCKED (another connection held the write lock for longer
 *     than the busy timeout): roll back, keep the connection, fail;
 *   - any other error (disk full, read-only, I/O): roll back, drop the
 *     connection so the retry starts from a fresh open, fail;
 *   - a row refused on its own (a constraint or type error from a trigger or
 *     CHECK the user added) is skipped and counted, so that one bad row
 *     cannot stall the pipeline forever; the rest of the batch is committed.
 * Each kind of failure (SQLite primary result code, or errno for failures to
 * open) is logged once until the store recovers, which is logged too.
 */
#include "local_store.h"

#include "safefile.h"
#include "slog.h"
#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define MAX_KINDS 8          /* failure kinds remembered per failing spell */
#define KIND_ERRNO 0x10000   /* kind of a failure to open: KIND_ERRNO | errno */

struct col_spec {
	const char *name;
	const char *type;
};

/* The Go tracer's columns, in order (seed-behaviour.md). */
static const struct col_spec seed_cols[] = {
	{ "id", "INTEGER" },      { "trace_id", "TEXT" },
	{ "op", "TEXT" },         { "query", "TEXT" },
	{ "duration_us", "INTEGER" }, { "error", "TEXT" },
	{ "timestamp", "INTEGER" },
};
#define N_SEED (sizeof(seed_cols) / sizeof(seed_cols[0]))

/* sqltrace-bpf's extra nullable columns, added when missing. */
static const struct col_spec extra_cols[] = {
	{ "pid", "INTEGER" },        { "tid", "INTEGER" },
	{ "process", "TEXT" },       { "rows", "INTEGER" },
	{ "prepare_us", "INTEGER" }, { "query_len", "INTEGER" },
	{ "lib", "TEXT" },           { "db_file", "TEXT" },
	{ "parent_span_id", "TEXT" },
};
#define N_EXTRA (sizeof(extra_cols) / sizeof(extra_cols[0]))

static const char create_table_sql[] =
	"CREATE TABLE IF NOT EXISTS sql_traces ("
	"id INTEGER PRIMARY KEY AUTOINCREMENT, "
	"trace_id TEXT, "
	"op TEXT NOT NULL, "
	"query TEXT NOT NULL, "
	"duration_us INTEGER NOT NULL, "
	"error TEXT, "
	"timestamp INTEGER NOT NULL)";

static const char *const index_sql[] = {
	"CREATE INDEX IF NOT EXISTS idx_sql_traces_ts ON sql_traces(timestamp)",
	"CREATE INDEX IF NOT EXISTS idx_sql_traces_tid ON sql_traces(trace_id) "
	"WHERE trace_id != ''",
	"CREATE INDEX IF NOT EXISTS idx_sql_traces_slow ON sql_traces(duration_us) "
	"WHERE duration_us > 100000",
};

/* The INSERT of one row; a statement inserting 2^k rows repeats its VALUES
 * group. Parameters are numbered in order, N_PARAMS per row. */
static const char insert_head[] =
	"INSERT INTO sql_traces (trace_id, op, query, duration_us, error, "
	"timestamp, pid, tid, process, rows, prepare_us, query_len, lib, "
	"db_file, parent_span_id) VALUES ";
static const char insert_row[] = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
#define N_PARAMS 15

/* Batches are inserted in chunks of 2^k rows, k <= CHUNK_LOG_MAX, one
 * multi-row INSERT per chunk: per-statement work (AUTOINCREMENT bookkeeping,
 * VDBE start-up) is paid once per chunk, not once per row; measured about
 * 1.3x faster than row-by-row. Chunk statements are prepared on first use,
 * once per connection. */
#define CHUNK_LOG_MAX 8

struct local_store {
	char *path;                   /* as given, for messages */
	char *real_path;              /* resolved, no symbolic link: SQLite's */
	int dir_fd;                   /* the checked directory holding it */
	char name[NAME_MAX + 1];      /* its name there */
	sqlite3 *db;                  /* NULL while disconnected */
	sqlite3_stmt *ins[CHUNK_LOG_MAX + 1]; /* ins[k] inserts 2^k rows */
	unsigned chunk_log_max;       /* largest k the parameter limit allows */
	sqlite3_stmt *begin, *commit, *rollback;
	dev_t dev;                    /* identity of the file db has open */
	ino_t ino;

	int kinds[MAX_KINDS];         /* failure kinds logged in this spell */
	unsigned nkinds;
	uint64_t failed_attempts;     /* in this spell */
	uint64_t rejected;            /* rows skipped as refused by the table */
	bool rejected_logged;
	char errbuf[256];
};

/* ---- logging ------------------------------------------------------------ */

/* Prints one slog text line to stderr (time, level, msg, path, then the
 * extra key/value string pairs of the NULL-terminated list), formatted by
 * the shared slog helpers and written with one fwrite. */
static void log_line(enum slog_level lvl, const char *msg, const char *path, ...)
{
	struct strbuf b = { 0 };
	va_list ap;

	slog__line_begin(&b, lvl, msg);
	slog__line_str(&b, "path", path);
	va_start(ap, path);
	for (const char *k; (k = va_arg(ap, const char *));)
		slog__line_str(&b, k, va_arg(ap, const char *));
	va_end(ap);
	slog__line_end(&b);
}

/* ---- schema ------------------------------------------------------------- */

/* Maps a SQLite result code to a negative errno. */
static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:   return -EBUSY;
	case SQLITE_NOMEM:    return -ENOMEM;
	case SQLITE_READONLY: return -EROFS;
	case SQLITE_FULL:     return -ENOSPC;
	case SQLITE_CANTOPEN: return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:     return -EACCES;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	case SQLITE_SCHEMA:
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH: return -EINVAL;
	default:              return -EIO;
	}
}

/* Fills err with sqlite3_errmsg(db) and returns the matching -errno. */
static int db_fail(sqlite3 *db, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", sqlite3_errmsg(db));
	return sqlite_errno(sqlite3_errcode(db));
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, err, errlen);
	return 0;
}

static int find_col(const struct col_spec *cols, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(cols[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Reads the shape of sql_traces on db without changing anything. Returns 1
 * when there is no such table, 0 when it is compatible (bit i of *missing
 * set for each extra_cols[i] it lacks), -EINVAL with a message in err when
 * it is not, or another negative errno when SQLite fails. */
static int check_shape(sqlite3 *db, unsigned *missing, char *err, size_t errlen)
{
	bool seen_seed[N_SEED] = { false };
	sqlite3_stmt *st = NULL;
	int rc, ret = 0;

	*missing = 0;
	if (sqlite3_prepare_v2(db, "SELECT type FROM sqlite_master "
			       "WHERE lower(name) = 'sql_traces'", -1, &st, NULL))
		return db_fail(db, err, errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(st, 0), "table") != 0) {
		snprintf(err, errlen, "sql_traces is a %s, expected a table",
			 (const char *)sqlite3_column_text(st, 0));
		ret = -EINVAL;
	} else if (rc == SQLITE_DONE) {
		ret = 1;
	} else if (rc != SQLITE_ROW) {
		ret = db_fail(db, err, errlen);
	}
	sqlite3_finalize(st);
	if (ret)
		return ret;

	*missing = (1u << N_EXTRA) - 1;
	if (sqlite3_prepare_v2(db, "PRAGMA table_info(sql_traces)", -1, &st, NULL))
		return db_fail(db, err, errlen);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && !ret) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *type = (const char *)sqlite3_column_text(st, 2);
		bool notnull = sqlite3_column_int(st, 3);
		bool has_default = sqlite3_column_type(st, 4) != SQLITE_NULL;
		int pk = sqlite3_column_int(st, 5);
		const struct col_spec *spec = NULL;
		int i;

		if ((i = find_col(seed_cols, N_SEED, name)) >= 0) {
			spec = &seed_cols[i];
			seen_seed[i] = true;
		} else if ((i = find_col(extra_cols, N_EXTRA, name)) >= 0) {
			spec = &extra_cols[i];
			*missing &= ~(1u << i);
		}
		if (spec && strcasecmp(type, spec->type) != 0) {
			snprintf(err, errlen, "sql_traces has column '%s' of type %s, expected %s",
				 name, *type ? type : "(none)", spec->type);
			ret = -EINVAL;
		} else if (spec == &seed_cols[0] && pk != 1) {
			snprintf(err, errlen, "sql_traces column 'id' is not its INTEGER PRIMARY KEY");
			ret = -EINVAL;
		} else if (!spec && notnull && !has_default && !pk) {
			snprintf(err, errlen, "sql_traces has column '%s' NOT NULL without a "
				 "default, which sqltrace-bpf cannot fill", name);
			ret = -EINVAL;
		}
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = db_fail(db, err, errlen);
	sqlite3_finalize(st);
	for (size_t i = 0; i < N_SEED && !ret; i++) {
		if (!seen_seed[i]) {
			snprintf(err, errlen, "sql_traces has no column '%s'", seed_cols[i].name);
			ret = -EINVAL;
		}
	}
	return ret;
}

int local_store__init_db(sqlite3 *db, char *err, size_t errlen)
{
	char sql[128];
	unsigned missing;
	int ret;

	if ((ret = exec(db, "BEGIN IMMEDIATE", err, errlen)))
		return ret;
	ret = check_shape(db, &missing, err, errlen);
	if (ret == 1) {
		missing = (1u << N_EXTRA) - 1;
		ret = exec(db, create_table_sql, err, errlen);
	}
	for (size_t i = 0; i < N_EXTRA && !ret; i++) {
		if (!(missing & (1u << i)))
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE sql_traces ADD COLUMN %s %s",
			 extra_cols[i].name, extra_cols[i].type);
		ret = exec(db, sql, err, errlen);
	}
	for (size_t i = 0; i < sizeof(index_sql) / sizeof(index_sql[0]) && !ret; i++)
		ret = exec(db, index_sql[i], err, errlen);
	if (!ret)
		ret = exec(db, "COMMIT", err, errlen);
	if (ret && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int local_store__check(const char *path, char *err, size_t errlen)
{
	char name[NAME_MAX + 1], real[PATH_MAX], msg[PATH_MAX + 256];
	sqlite3 *db = NULL;
	unsigned missing;
	struct stat st;
	int dir_fd, ret;

	/* the same trust rules as local_store__open (see Files above) */
	dir_fd = safefile__open_parent(path, SAFEFILE_STICKY, name, sizeof(name), real, sizeof(real),
				       msg, sizeof(msg));
	if (dir_fd < 0) {
		snprintf(err, errlen, "cannot open trace store %s: %s", path, msg);
		return dir_fd;
	}
	ret = fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	close(dir_fd);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		snprintf(msg, sizeof(msg), "%s", strerror(-ret));
	else if (S_ISLNK(st.st_mode))
		snprintf(msg, sizeof(msg), "%s is a symbolic link (not followed: give the real path "
			 "of the file)", path), ret = -ELOOP;
	else
		ret = safefile__check_file(&st, path, 0, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "cannot open trace store %s: %s", path, msg);
		return ret;
	}
	if (sqlite3_open_v2(real, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) !=
	    SQLITE_OK) {
		ret = db ? db_fail(db, msg, sizeof(msg)) : -ENOMEM;
		if (!db)
			snprintf(msg, sizeof(msg), "%s", strerror(ENOMEM));
	} else {
		sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
		ret = check_shape(db, &missing, msg, sizeof(msg));
		if (ret == 1)
			ret = 0;
	}
	sqlite3_close(db);
	if (ret)
		snprintf(err, errlen, "cannot open trace store %s: %s", path, msg);
	return ret;
}

/* ---- connection --------------------------------------------------------- */

static void disconnect(struct local_store *s)
{
	for (unsigned k = 0; k <= CHUNK_LOG_MAX; k++) {
		sqlite3_finalize(s->ins[k]);
		s->ins[k] = NULL;
	}
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	s->begin = s->commit = s->rollback = NULL;
	sqlite3_close(s->db);
	s->db = NULL;
}

/* Returns the statement inserting 2^k rows, preparing it on first use, or
 * NULL when SQLite cannot prepare it (its error is then on s->db). */
static sqlite3_stmt *insert_stmt(struct local_store *s, unsigned k)
{
	size_t rows = (size_t)1 << k, len = sizeof(insert_head) + rows * sizeof(insert_row);
	char *sql, *p;

	if (s->ins[k])
		return s->ins[k];
	sql = malloc(len);
	if (!sql)
		return NULL;
	p = sql + snprintf(sql, len, "%s", insert_head);
	for (size_t r = 0; r < rows; r++)
		p += snprintf(p, len - (size_t)(p - sql), "%s%s", r ? "," : "", insert_row);
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->ins[k], NULL))
		s->ins[k] = NULL;
	free(sql);
	return s->ins[k];
}

static const char *const sidecars[] = { "-wal", "-shm", "-journal" };

/* Checks the -wal, -shm and -journal files of s that exist: regular files of
 * ours with one link that group and others cannot write. Before SQLite
 * opens them (fix), read access for group and others is removed; after
 * (!fix) any such access refuses them. Returns 0, or a negative errno with
 * one line in err. */
static int check_sidecars(struct local_store *s, bool fix, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(sidecars) / sizeof(sidecars[0]); i++) {
		char name[NAME_MAX + 16], shown[PATH_MAX + 16];
		struct stat st;
		int fd, ret;

		snprintf(name, sizeof(name), "%s%s", s->name, sidecars[i]);
		snprintf(shown, sizeof(shown), "%s%s", s->path, sidecars[i]);
		if (fstatat(s->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW)) {
			if (errno == ENOENT)
				continue;
			ret = -errno;
			snprintf(err, errlen, "%s: %s", shown, strerror(errno));
			return ret;
		}
		if (S_ISLNK(st.st_mode)) {
			snprintf(err, errlen, "%s is a symbolic link (remove it)", shown);
			return -ELOOP;
		}
		if ((ret = safefile__check_file(&st, shown, fix ? 0 : SAFEFILE_SECRET, err, errlen)))
			return ret;
		if (!(st.st_mode & 077))
			continue;
		fd = openat(s->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) || fchmod(fd, 0600)) {
			ret = -errno;
			snprintf(err, errlen, "cannot make %s private: %s", shown, strerror(errno));
			if (fd >= 0)
				close(fd);
			return ret;
		}
		close(fd);
	}
	return 0;
}

/* Opens (creating it, mode 0600, when missing) the store file in s->dir_fd
 * without following a symbolic link, checks it is ours and makes it
 * private (see Files above). Returns the fd, or a negative errno with one
 * line in err. */
static int open_store_file(struct local_store *s, char *err, size_t errlen)
{
	struct stat st;
	int fd = -1, ret;

	for (int tries = 0; fd < 0 && tries < 3; tries++) {
		fd = openat(s->dir_fd, s->name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			fd = openat(s->dir_fd, s->name,
				    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST && errno != ENOENT)
			break;
	}
	if (fd < 0) {
		ret = -errno;
		if (errno == ELOOP)
			snprintf(err, errlen, "%s is a symbolic link (not followed: give the real path "
				 "of the file)", s->path);
		else
			snprintf(err, errlen, "%s", strerror(errno));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		return ret;
	}
	if ((ret = safefile__check_file(&st, s->path, 0, err, errlen))) {
		close(fd);
		return ret;
	}
	if ((st.st_mode & 077) && fchmod(fd, 0600)) {
		ret = -errno;
		snprintf(err, errlen, "cannot make %s private (chmod 600): %s", s->path,
			 strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

/* Opens the store file (see open_store_file and Files above), refuses an
 * incompatible sql_traces before changing anything, switches to WAL,
 * migrates, prepares the statements and records the file's identity. (A
 * -wal left next to a file created here belongs to a removed file; SQLite
 * deletes a -wal found next to an empty database rather than replaying it.)
 * Returns 0, or a negative errno with one line in err; s is then
 * disconnected. */
static int connect_store(struct local_store *s, char *err, size_t errlen)
{
	unsigned missing;
	struct stat st, now;
	sqlite3 *db = NULL;
	int fd, ret;

	if ((fd = open_store_file(s, err, errlen)) < 0)
		return fd;
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		return ret;
	}
	if ((ret = check_sidecars(s, true, err, errlen))) {
		close(fd);
		return ret;
	}
	/* SQLite opens the same name in the same checked directory, which only
	 * root or we can change; checked below all the same. */
	if (sqlite3_open_v2(s->real_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
			    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		ret = db ? db_fail(db, err, errlen) : -ENOMEM;
		if (!db)
			snprintf(err, errlen, "%s", strerror(ENOMEM));
		sqlite3_close(db);
		close(fd);
		return ret;
	}
	close(fd);
	s->db = db;
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	/* SQLite has the file open now (it opens it in sqlite3_open_v2): the
	 * name must still be the file checked, before anything is read. */
	if (fstatat(s->dir_fd, s->name, &now, AT_SYMLINK_NOFOLLOW) ||
	    now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
		snprintf(err, errlen, "%s was replaced while it was being opened", s->path);
		ret = -EAGAIN;
		goto fail_quiet;
	}

	/* Read-only look first: an incompatible file stays byte for byte. */
	ret = check_shape(db, &missing, err, errlen);
	if (ret < 0)
		goto fail;
	sqlite3_stmt *jm = NULL;
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &jm, NULL) ||
	    sqlite3_step(jm) != SQLITE_ROW) {
		ret = db_fail(db, err, errlen);
		sqlite3_finalize(jm);
		goto fail;
	}
	if (strcasecmp((const char *)sqlite3_column_text(jm, 0), "wal") != 0) {
		snprintf(err, errlen, "cannot switch to WAL journal mode (got %s)",
			 (const char *)sqlite3_column_text(jm, 0));
		sqlite3_finalize(jm);
		ret = -EINVAL;
		goto fail;
	}
	sqlite3_finalize(jm);
	if ((ret = exec(db, "PRAGMA synchronous=NORMAL", err, errlen)) ||
	    (ret = local_store__init_db(db, err, errlen)))
		goto fail;
	/* SQLite has its -wal and -shm open now: they must be files of ours
	 * that only we can read, before any entry goes into them. */
	if ((ret = check_sidecars(s, false, err, errlen)))
		goto fail_quiet;
	s->chunk_log_max = 0;
	while (s->chunk_log_max < CHUNK_LOG_MAX &&
	       (N_PARAMS << (s->chunk_log_max + 1)) <=
	       sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, -1))
		s->chunk_log_max++;
	if (!insert_stmt(s, 0) && sqlite3_errcode(db) == SQLITE_OK) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		ret = -ENOMEM;
		goto fail;
	}
	if (!s->ins[0] ||
	    sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &s->begin, NULL) ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &s->commit, NULL) ||
	    sqlite3_prepare_v2(db, "ROLLBACK", -1, &s->rollback, NULL)) {
		ret = db_fail(db, err, errlen);
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;

fail_quiet:
	/* Not ours to checkpoint: whatever is in that -wal stays out of the
	 * store. */
	sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
fail:
	disconnect(s);
	return ret;
}

/* Makes sure s has a connection to the file now at s->path, reconnecting
 * when the file it had open was removed or replaced, or when an earlier
 * failure dropped the connection. Returns 0, or a negative errno with a
 * message in s->errbuf. */
static int ensure_connected(struct local_store *s)
{
	struct stat st;

	if (s->db) {
		if (fstatat(s->dir_fd, s->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (st.st_dev == s->dev && st.st_ino == s->ino)
				return 0;
			log_line(SLOG_WARN, "trace store file replaced, reopening", s->path,
				 NULL);
			disconnect(s);
		} else if (errno == ENOENT) {
			log_line(SLOG_WARN, "trace store file removed, recreating", s->path,
				 NULL);
			disconnect(s);
		} else {
			return 0;  /* cannot tell: let SQLite report any real problem */
		}
	}
	return connect_store(s, s->errbuf, sizeof(s->errbuf));
}

/* ---- writing ------------------------------------------------------------ */

static void bind_text(sqlite3_stmt *st, int i, const char *s, bool nullable)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else if (nullable)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, "", 0, SQLITE_STATIC);
}

static void bind_opt_int(sqlite3_stmt *st, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/* Binds the N_PARAMS parameters of row e at parameter offset off (so no
 * clear_bindings is needed between uses). Text is bound SQLITE_STATIC: the
 * batch outlives the step, and every parameter is bound again before the
 * statement is stepped again. */
static void bind_entry(sqlite3_stmt *st, int off, const struct st_entry *e)
{
	bind_text(st, off + 1, e->trace_id, false);
	bind_text(st, off + 2, e->op, false);
	bind_text(st, off + 3, e->query, false);
	sqlite3_bind_int64(st, off + 4, e->duration_us);
	bind_text(st, off + 5, e->error, false);
	sqlite3_bind_int64(st, off + 6, e->timestamp_us);
	bind_opt_int(st, off + 7, e->pid);
	bind_opt_int(st, off + 8, e->tid);
	bind_text(st, off + 9, e->process, true);
	bind_opt_int(st, off + 10, e->rows);
	bind_opt_int(st, off + 11, e->prepare_us);
	bind_opt_int(st, off + 12, e->query_len);
	bind_text(st, off + 13, e->lib, true);
	bind_text(st, off + 14, e->db_file, true);
	bind_text(st, off + 15, e->parent_span_id, true);
}

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

/* True for errors that refuse the statement's rows and leave the
 * transaction usable. */
static bool row_refused(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CONSTRAINT || rc == SQLITE_MISMATCH ||
	       rc == SQLITE_TOOBIG || rc == SQLITE_RANGE;
}

/* Inserts batch[0..m) (m = 2^k) with one statement. When the table refuses
 * a row, inserts the chunk again row by row, skipping (and counting) the
 * refused rows. Returns SQLITE_DONE, or the SQLite error that must fail the
 * batch. */
static int insert_chunk(struct local_store *s, struct st_entry *const *batch, unsigned k)
{
	size_t m = (size_t)1 << k;
	sqlite3_stmt *st = insert_stmt(s, k);
	int rc;

	if (!st)
		return sqlite3_errcode(s->db) ? sqlite3_errcode(s->db) : SQLITE_NOMEM;
	for (size_t r = 0; r < m; r++)
		bind_entry(st, (int)(r * N_PARAMS), batch[r]);
	rc = step_reset(st);
	if (rc == SQLITE_DONE || !row_refused(rc) || sqlite3_get_autocommit(s->db))
		return rc;
	if (k > 0) {
		for (size_t r = 0; r < m; r++)
			if ((rc = insert_chunk(s, batch + r, 0)) != SQLITE_DONE)
				return rc;
		return SQLITE_DONE;
	}
	s->rejected++;
	if (!s->rejected_logged) {
		log_line(SLOG_WARN, "trace store refused a row, skipping it", s->path,
			 "error", sqlite3_errmsg(s->db), NULL);
		s->rejected_logged = true;
	}
	return SQLITE_DONE;
}

/* Inserts the batch in one transaction, in chunks of 2^k rows. Returns 0,
 * or the SQLite result code of the failure after rolling back, its message
 * in s->errbuf. */
static int insert_batch(struct local_store *s, struct st_entry *const *batch, size_t n)
{
	int rc = step_reset(s->begin);

	if (rc != SQLITE_DONE)
		goto fail;
	for (size_t i = 0; i < n;) {
		unsigned k = s->chunk_log_max;

		while (((size_t)1 << k) > n - i)
			k--;
		if ((rc = insert_chunk(s, batch + i, k)) != SQLITE_DONE)
			goto fail;
		i += (size_t)1 << k;
	}
	rc = step_reset(s->commit);
	if (rc == SQLITE_DONE)
		return 0;
fail:
	snprintf(s->errbuf, sizeof(s->errbuf), "%s", sqlite3_errmsg(s->db));
	if (!sqlite3_get_autocommit(s->db))
		step_reset(s->rollback);
	return rc;
}

/* Logs a failure of kind (once per kind until the store recovers). */
static void note_failure(struct local_store *s, int kind, const char *msg, size_t n)
{
	char batch[24];

	s->failed_attempts++;
	for (unsigned i = 0; i < s->nkinds; i++)
		if (s->kinds[i] == kind)
			return;
	if (s->nkinds < MAX_KINDS)
		s->kinds[s->nkinds++] = kind;
	snprintf(batch, sizeof(batch), "%zu", n);
	log_line(SLOG_WARN, "trace store write failed", s->path, "error", msg,
		 "batch", batch, NULL);
}

static void note_success(struct local_store *s)
{
	char attempts[24];

	if (!s->failed_attempts)
		return;
	snprintf(attempts, sizeof(attempts), "%llu", (unsigned long long)s->failed_attempts);
	log_line(SLOG_INFO, "trace store write recovered", s->path,
		 "failed_attempts", attempts, NULL);
	s->failed_attempts = 0;
	s->nkinds = 0;
}

static int store_write(void *ctx, struct st_entry *const *batch, size_t n)
{
	struct local_store *s = ctx;
	int rc, ret;

	ret = ensure_connected(s);
	if (ret) {
		note_failure(s, KIND_ERRNO | -ret, s->errbuf, n);
		return ret;
	}
	rc = insert_batch(s, batch, n);
	if (rc != SQLITE_OK) {
		note_failure(s, rc & 0xff, s->errbuf, n);
		ret = sqlite_errno(rc);
		/* Locked: the connection is fine, only the lock was taken. Else
		 * start the retry from a fresh connection. */
		if (ret != -EBUSY)
			disconnect(s);
		return ret;
	}
	note_success(s);
	return 0;
}

static void local_store_free(struct local_store *s)
{
	disconnect(s);
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	free(s->path);
	free(s->real_path);
	free(s);
}

static void store_close(void *ctx)
{
	struct local_store *s = ctx;

	if (s->rejected) {
		char n[24];
		snprintf(n, sizeof(n), "%llu", (unsigned long long)s->rejected);
		log_line(SLOG_WARN, "trace store skipped refused rows", s->path,
			 "rows", n, NULL);
	}
	local_store_free(s);
}

static const struct sink_ops local_store_ops = {
	.name = "local",
	.write = store_write,
	.close = store_close,
	/* Under a backlog, up to 16 batches in one transaction (1024 entries
	 * with the default batch of 64): see "Group commit" in batcher.c. */
	.group_batches = 16,
};

struct recorder *local_store__open(const char *path, const struct batch_opts *opts,
				   char *err, size_t errlen)
{
	struct local_store *s;
	struct recorder *r;
	char msg[PATH_MAX + 256];
	int ret;

	if (!path || !*path) {
		snprintf(err, errlen, "cannot open trace store: empty path");
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s)
		s->dir_fd = -1;
	if (!s || !(s->path = strdup(path)) || !(s->real_path = malloc(PATH_MAX))) {
		if (s)
			local_store_free(s);
		snprintf(err, errlen, "cannot open trace store %s: %s", path, strerror(ENOMEM));
		errno = ENOMEM;
		return NULL;
	}
	s->dir_fd = safefile__open_parent(path, SAFEFILE_STICKY, s->name, sizeof(s->name),
					  s->real_path, PATH_MAX, msg, sizeof(msg));
	ret = s->dir_fd < 0 ? s->dir_fd : connect_store(s, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "cannot open trace store %s: %s", path, msg);
		local_store_free(s);
		errno = -ret;
		return NULL;
	}
	r = recorder__new(opts, &local_store_ops, s);  /* closes s on failure */
	if (!r) {
		ret = errno;
		snprintf(err, errlen, "cannot open trace store %s: cannot start its writer: %s",
			 path, strerror(ret));
		errno = ret;
	}
	return r;
}
