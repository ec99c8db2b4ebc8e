/* layout.c — calibration and learning of SQLite object layouts (see
 * layout.h). All reads of memory, ours included, go through
 * process_vm_readv so a wrong guess can never fault. */
#include "layout.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "elfsym.h"

#define VDBE_SCAN_WORDS 128   /* 1 KiB: Vdbe is ~300 bytes in 3.40 */
#define DB_SCAN_WORDS   512   /* 4 KiB: struct sqlite3 is ~900 bytes */
#define MEM_SCAN_WORDS  8

static ssize_t peek(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

/* Reads as many whole words as are readable (the object may sit near the
 * end of a mapping). Returns the number of words read. */
static size_t peek_words(pid_t pid, uint64_t addr, uint64_t *w, size_t n)
{
	ssize_t got = peek(pid, addr, w, n * 8);

	if (got >= 0)
		return (size_t)got / 8;
	/* Fall back to a page-bounded read. */
	{
		size_t room = 4096 - (addr & 4095);

		if (room > n * 8)
			room = n * 8;
		got = peek(pid, addr, w, room);
	}
	return got > 0 ? (size_t)got / 8 : 0;
}

int layout__find_word(pid_t pid, uint64_t addr, size_t n, uint64_t v)
{
	uint64_t w[DB_SCAN_WORDS];
	size_t i, got;

	if (n > DB_SCAN_WORDS)
		n = DB_SCAN_WORDS;
	got = peek_words(pid, addr, w, n);
	for (i = 0; i < got; i++)
		if (w[i] == v)
			return (int)(i * 8);
	return -1;
}

static bool plausible_ptr(uint64_t p)
{
	return p >= 4096 && p < 0x800000000000ULL;
}

/* Finds (db_perr_off, mem_z_off): a field of the connection pointing at an
 * object whose field points at msg. */
static int find_errmsg(pid_t pid, uint64_t db, uint64_t msg, int *perr_off, int *z_off)
{
	uint64_t w[DB_SCAN_WORDS], m[MEM_SCAN_WORDS];
	size_t i, j, got = peek_words(pid, db, w, DB_SCAN_WORDS);

	for (i = 0; i < got; i++) {
		if (!plausible_ptr(w[i]))
			continue;
		if (peek_words(pid, w[i], m, MEM_SCAN_WORDS) != MEM_SCAN_WORDS)
			continue;
		for (j = 0; j < MEM_SCAN_WORDS; j++) {
			if (m[j] == msg) {
				*perr_off = (int)(i * 8);
				*z_off = (int)(j * 8);
				return 0;
			}
		}
	}
	return -ENOENT;
}

static int read_errmsg_at(pid_t pid, uint64_t db, const struct st_lib_cfg *c, char *buf, size_t len)
{
	uint64_t perr = 0, z = 0;
	ssize_t got;

	if (peek(pid, db + c->db_perr_off, &perr, 8) != 8 || !plausible_ptr(perr))
		return -EFAULT;
	if (peek(pid, perr + c->mem_z_off, &z, 8) != 8 || !plausible_ptr(z))
		return -EFAULT;
	got = peek(pid, z, buf, len - 1);
	if (got <= 0)
		return -EFAULT;
	buf[got] = '\0';
	return 0;
}

/* Finds offsetof(Vdbe, rc) and offsetof(Vdbe, zErrMsg) with a statement
 * stopped by a constraint violation: rc holds the extended result code and
 * zErrMsg a copy of the message (until the statement is reset). Checked
 * against a second, different error. Leaves -1 when not found. */
static void calibrate_halt(pid_t self, sqlite3 *db, struct st_lib_cfg *c)
{
	sqlite3_stmt *st = NULL;
	uint64_t w[VDBE_SCAN_WORDS];
	int32_t *iw = (int32_t *)w;
	size_t got, i;
	int rc_off = -1, msg_off = -1;

	c->vdbe_rc_off = c->vdbe_zerrmsg_off = -1;
	sqlite3_extended_result_codes(db, 1);
	if (sqlite3_exec(db, "CREATE TABLE sqltrace_calib(x INTEGER PRIMARY KEY);"
			     "INSERT INTO sqltrace_calib VALUES (1)", NULL, NULL, NULL) != SQLITE_OK)
		return;
	if (sqlite3_prepare_v2(db, "INSERT INTO sqltrace_calib VALUES (1)", -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) != SQLITE_CONSTRAINT_PRIMARYKEY)
		goto out;
	got = peek_words(self, (uintptr_t)st, w, VDBE_SCAN_WORDS);
	for (i = 0; i < got * 2 && rc_off < 0; i++)
		if (iw[i] == SQLITE_CONSTRAINT_PRIMARYKEY)
			rc_off = (int)(i * 4);
	for (i = 0; i < got && msg_off < 0; i++) {
		char buf[128];
		const char *msg = sqlite3_errmsg(db);

		if (!plausible_ptr(w[i]) || peek(self, w[i], buf, strlen(msg) + 1) != (ssize_t)strlen(msg) + 1)
			continue;
		if (memcmp(buf, msg, strlen(msg) + 1) == 0 && w[i] != (uintptr_t)msg)
			msg_off = (int)(i * 8);
	}
	sqlite3_finalize(st);
	st = NULL;
	/* A second error: a NOT NULL violation, to confirm the rc field. */
	if (rc_off >= 0 && sqlite3_exec(db, "CREATE TABLE sqltrace_calib2(x NOT NULL)", NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "INSERT INTO sqltrace_calib2 VALUES (NULL)", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_CONSTRAINT_NOTNULL) {
		int32_t v = 0;

		if (peek(self, (uintptr_t)st + rc_off, &v, 4) == 4 && v == SQLITE_CONSTRAINT_NOTNULL) {
			c->vdbe_rc_off = rc_off;
			c->vdbe_zerrmsg_off = msg_off;
		}
	}
out:
	if (st)
		sqlite3_finalize(st);
}

/* Snapshots of a statement's first bytes at each point of its life. */
#define STATE_SCAN 512

/* Runs sql (which returns exactly two rows) and keeps, for every byte of
 * the first STATE_SCAN bytes of its Vdbe, a mask of candidate offsets whose
 * value is the same while ready (before the first step and after reset),
 * the same after each row, and a third value once halted, the three
 * distinct. vals[i] = ready | run << 8 | halt << 16. */
static void state_candidates(pid_t self, sqlite3 *db, const char *sql, bool *cand, uint32_t *vals)
{
	uint8_t snap[5][STATE_SCAN];
	sqlite3_stmt *st = NULL;
	size_t i;
	int k;

	memset(snap, 0, sizeof(snap));
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto none;
	for (k = 0; k < 5; k++) {
		if (k == 4)
			sqlite3_reset(st);
		if (peek_words(self, (uintptr_t)st, (uint64_t *)snap[k], STATE_SCAN / 8) != STATE_SCAN / 8)
			goto none;
		if (k < 3 && sqlite3_step(st) != (k < 2 ? SQLITE_ROW : SQLITE_DONE))
			goto none;
	}
	sqlite3_finalize(st);
	for (i = 0; i < STATE_SCAN; i++) {
		uint8_t r = snap[0][i], u = snap[1][i], h = snap[3][i];

		if (!cand[i])
			continue;
		cand[i] = snap[4][i] == r && snap[2][i] == u && r != u && u != h && r != h &&
			  (!vals[i] || vals[i] == ((uint32_t)r | (uint32_t)u << 8 | (uint32_t)h << 16));
		vals[i] = (uint32_t)r | (uint32_t)u << 8 | (uint32_t)h << 16;
	}
	return;
none:
	if (st)
		sqlite3_finalize(st);
	memset(cand, 0, STATE_SCAN * sizeof(*cand));
}

/* Finds the statement's state byte (Vdbe.eVdbeState in SQLite 3.38+: ready,
 * running, halted) and its three values: the one offset that behaves so for
 * three different statements, a failing one among them (halted by an
 * error). Leaves vdbe_state_off -1 when it is not exactly one. */
static void calibrate_state(pid_t self, sqlite3 *db, struct st_lib_cfg *c)
{
	static bool cand[STATE_SCAN];
	static uint32_t vals[STATE_SCAN];
	sqlite3_stmt *st = NULL;
	int found = -1, n = 0;
	uint8_t after;
	size_t i;

	c->vdbe_state_off = -1;
	for (i = 0; i < STATE_SCAN; i++) {
		cand[i] = true;
		vals[i] = 0;
	}
	state_candidates(self, db, "SELECT 1 UNION ALL SELECT 2", cand, vals);
	state_candidates(self, db, "SELECT x FROM (SELECT 7 AS x UNION ALL SELECT 8) ORDER BY x DESC",
			 cand, vals);
	for (i = 0; i < STATE_SCAN; i++) {
		if (cand[i]) {
			found = (int)i;
			n++;
		}
	}
	if (n != 1)
		return;
	/* A statement halted by an error holds the halted value too. */
	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS sqltrace_calib3(x INTEGER PRIMARY KEY);"
			     "INSERT OR IGNORE INTO sqltrace_calib3 VALUES (1)", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO sqltrace_calib3 VALUES (1)", -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) != SQLITE_ROW && peek(self, (uintptr_t)st + (uint64_t)found, &after, 1) == 1 &&
	    after == ((vals[found] >> 16) & 0xff)) {
		c->vdbe_state_off = found;
		c->state_ready = vals[found] & 0xff;
		c->state_run = (vals[found] >> 8) & 0xff;
		c->state_halt = (vals[found] >> 16) & 0xff;
	}
	sqlite3_finalize(st);
}

/* Keeps, among the word offsets still candidates in cand, those whose word
 * is zero before sql's first step, non-zero after each step that returns a
 * row, zero after the step that returns anything else (DONE, an error) and
 * after reset. sql must return at least one row. */
static void keep_if(bool *cand, const uint64_t *w, bool nonzero)
{
	size_t i;

	for (i = 0; i < VDBE_SCAN_WORDS; i++)
		if (cand[i] && (w[i] != 0) != nonzero)
			cand[i] = false;
}

static void resrow_candidates(pid_t self, sqlite3 *db, const char *sql, bool *cand)
{
	uint64_t w[VDBE_SCAN_WORDS];
	sqlite3_stmt *st = NULL;
	int rc, rows = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto none;
	if (peek_words(self, (uintptr_t)st, w, VDBE_SCAN_WORDS) != VDBE_SCAN_WORDS)
		goto none;
	keep_if(cand, w, false);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && rows < 1000) {
		rows++;
		if (peek_words(self, (uintptr_t)st, w, VDBE_SCAN_WORDS) != VDBE_SCAN_WORDS)
			goto none;
		keep_if(cand, w, true);
	}
	if (rows == 0 || rc == SQLITE_ROW ||
	    peek_words(self, (uintptr_t)st, w, VDBE_SCAN_WORDS) != VDBE_SCAN_WORDS)
		goto none;
	keep_if(cand, w, false);
	sqlite3_reset(st);
	if (peek_words(self, (uintptr_t)st, w, VDBE_SCAN_WORDS) != VDBE_SCAN_WORDS)
		goto none;
	keep_if(cand, w, false);
	sqlite3_finalize(st);
	return;
none:
	if (st)
		sqlite3_finalize(st);
	memset(cand, 0, VDBE_SCAN_WORDS * sizeof(*cand));
}

/* Finds offsetof(Vdbe, pResultRow): the one word that behaves so through a
 * query, an EXPLAIN (whose DONE leaves the statement running, not halted)
 * and a statement that fails after a row. -1 when not exactly one. */
static void calibrate_resrow(pid_t self, sqlite3 *db, struct st_lib_cfg *c)
{
	bool cand[VDBE_SCAN_WORDS];
	int i, n = 0, found = -1;

	c->vdbe_resrow_off = -1;
	for (i = 0; i < VDBE_SCAN_WORDS; i++)
		cand[i] = true;
	resrow_candidates(self, db, "SELECT 1 UNION ALL SELECT 2", cand);
	resrow_candidates(self, db, "EXPLAIN SELECT 1", cand);
	resrow_candidates(self, db, "SELECT CASE WHEN x = 2 THEN abs(-9223372036854775807 - 1) ELSE x END "
			  "FROM (SELECT 1 AS x UNION ALL SELECT 2)", cand);
	for (i = 0; i < VDBE_SCAN_WORDS; i++) {
		if (cand[i]) {
			found = i * 8;
			n++;
		}
	}
	if (n == 1)
		c->vdbe_resrow_off = found;
}

/* During a prepare (in the authorizer callback) db->pParse points to the
 * Parse on sqlite3Prepare's stack, whose first field is db: the offset of
 * the word of db that points into this thread's stack, just above the
 * callback's frame, at such an object (db->pVdbe also leads to an object
 * starting with db, on the heap). */
struct pparse_probe {
	sqlite3 *db;
	int off;
};

static int find_pparse_cb(void *arg, int action, const char *a, const char *b, const char *c, const char *d)
{
	struct pparse_probe *pp = arg;
	uint64_t w[DB_SCAN_WORDS], first, here = (uintptr_t)&first;
	size_t i, got;

	(void)action; (void)a; (void)b; (void)c; (void)d;
	if (pp->off >= 0)
		return SQLITE_OK;
	got = peek_words(getpid(), (uintptr_t)pp->db, w, DB_SCAN_WORDS);
	for (i = 0; i < got; i++) {
		if (w[i] <= here || w[i] - here > 256 * 1024)
			continue;  /* not on this stack, above this frame */
		if (peek(getpid(), w[i], &first, sizeof(first)) == sizeof(first) &&
		    first == (uintptr_t)pp->db) {
			pp->off = (int)(i * 8);
			break;
		}
	}
	return SQLITE_OK;
}

/* Finds offsetof(sqlite3, pParse), checked to be NULL again once the
 * prepare is over (the only time the word is used). */
static void calibrate_pparse(pid_t self, sqlite3 *db, struct st_lib_cfg *c)
{
	struct pparse_probe pp = { .db = db, .off = -1 };
	sqlite3_stmt *st = NULL;
	uint64_t after = 1;

	c->db_pparse_off = -1;
	if (sqlite3_set_authorizer(db, find_pparse_cb, &pp) != SQLITE_OK)
		return;
	if (sqlite3_prepare_v2(db, "SELECT 1 AS sqltrace_calibration_pparse", -1, &st, NULL) == SQLITE_OK)
		sqlite3_finalize(st);
	sqlite3_set_authorizer(db, NULL, NULL);
	if (pp.off >= 0 && peek(self, (uintptr_t)db + (uint64_t)pp.off, &after, sizeof(after)) == sizeof(after) &&
	    after == 0)
		c->db_pparse_off = pp.off;
}

static int calibrate(struct st_lib_cfg *c)
{
	pid_t self = getpid();
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc, off;
	char check[256];

	c->vdbe_db_off = c->vdbe_zsql_off = c->db_perr_off = c->mem_z_off = -1;
	c->vdbe_rc_off = c->vdbe_zerrmsg_off = -1;
	c->db_pparse_off = -1;
	c->vdbe_state_off = -1;
	c->vdbe_resrow_off = -1;
	c->learn = 0;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		goto fail;
	rc = sqlite3_prepare_v2(db, "SELECT 1 AS sqltrace_calibration", -1, &st, NULL);
	if (rc != SQLITE_OK || !st)
		goto fail;
	off = layout__find_word(self, (uintptr_t)st, VDBE_SCAN_WORDS, (uintptr_t)sqlite3_sql(st));
	c->vdbe_zsql_off = off;
	off = layout__find_word(self, (uintptr_t)st, VDBE_SCAN_WORDS, (uintptr_t)db);
	c->vdbe_db_off = off;
	sqlite3_finalize(st);
	st = NULL;

	/* An error whose message pointer we know, then a second one to check
	 * that the pair of offsets really leads to the current message. */
	rc = sqlite3_prepare_v2(db, "SELEC 1", -1, &st, NULL);
	if (rc == SQLITE_OK)
		goto fail;
	if (find_errmsg(self, (uintptr_t)db, (uintptr_t)sqlite3_errmsg(db), &c->db_perr_off,
			&c->mem_z_off) != 0)
		goto fail;
	rc = sqlite3_prepare_v2(db, "SELECT * FROM sqltrace_no_such_table", -1, &st, NULL);
	if (rc == SQLITE_OK || read_errmsg_at(self, (uintptr_t)db, c, check, sizeof(check)) != 0 ||
	    strcmp(check, sqlite3_errmsg(db)) != 0) {
		c->db_perr_off = c->mem_z_off = -1;
		goto fail;
	}
	calibrate_halt(self, db, c);
	calibrate_state(self, db, c);
	calibrate_resrow(self, db, c);
	calibrate_pparse(self, db, c);
	sqlite3_close(db);
	return c->vdbe_db_off >= 0 && c->vdbe_zsql_off >= 0 ? 0 : -ENOENT;
fail:
	if (st)
		sqlite3_finalize(st);
	if (db)
		sqlite3_close(db);
	return -ENOENT;
}

static struct {
	bool done;
	int err;
	struct st_lib_cfg cfg;
	unsigned char build_id[64];
	int build_id_len;
	dev_t dev;
	ino_t ino;
} self_layout;

int layout__self(struct st_lib_cfg *out, const unsigned char **build_id, int *build_id_len,
		 dev_t *dev, ino_t *ino)
{
	if (!self_layout.done) {
		Dl_info info;
		struct stat st;

		self_layout.done = true;
		self_layout.err = calibrate(&self_layout.cfg);
		if (dladdr((void *)sqlite3_libversion, &info) && info.dli_fname &&
		    stat(info.dli_fname, &st) == 0) {
			struct elf_file *ef = elf_file__open(info.dli_fname);

			self_layout.dev = st.st_dev;
			self_layout.ino = st.st_ino;
			if (ef) {
				int n = elf_file__build_id(ef, self_layout.build_id,
							   sizeof(self_layout.build_id));

				self_layout.build_id_len = n > 0 ? n : 0;
				elf_file__close(ef);
			}
		}
	}
	*out = self_layout.cfg;
	*build_id = self_layout.build_id;
	*build_id_len = self_layout.build_id_len;
	*dev = self_layout.dev;
	*ino = self_layout.ino;
	return self_layout.err;
}

int layout__learn_words(uint64_t dbs, uint64_t texts, struct st_lib_cfg *cfg)
{
	if (!texts)
		return -ENOENT;
	cfg->vdbe_zsql_off = __builtin_ctzll(texts) * 8;
	if (dbs && cfg->vdbe_db_off < 0)
		cfg->vdbe_db_off = __builtin_ctzll(dbs) * 8;
	return 0;
}

int layout__learn(pid_t pid, uint64_t stmt, uint64_t db, const char *text, size_t len,
		  struct st_lib_cfg *cfg)
{
	uint64_t w[VDBE_SCAN_WORDS];
	size_t got, i;
	int db_off = -1, zsql_off = -1;
	char buf[4096];

	if (!stmt || len == 0)
		return -EINVAL;
	got = peek_words(pid, stmt, w, VDBE_SCAN_WORDS);
	if (got == 0)
		return -EFAULT;
	for (i = 0; i < got; i++) {
		if (db && w[i] == db && db_off < 0)
			db_off = (int)(i * 8);
	}
	for (i = 0; i < got && zsql_off < 0; i++) {
		size_t want = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
		ssize_t n;
		size_t slen;

		if (!plausible_ptr(w[i]) || w[i] == db || w[i] == stmt)
			continue;
		n = peek(pid, w[i], buf, want + 1);
		if (n <= 0) {
			/* maybe near the end of a mapping: page-bounded */
			size_t room = 4096 - (w[i] & 4095);

			n = peek(pid, w[i], buf, room < want + 1 ? room : want + 1);
			if (n <= 0)
				continue;
		}
		buf[n < (ssize_t)sizeof(buf) ? n : (ssize_t)sizeof(buf) - 1] = '\0';
		slen = strnlen(buf, n);
		/* The statement's own text: a prefix of what was prepared,
		 * NUL-terminated, at least one non-blank character. */
		if (slen == 0 || slen >= (size_t)n || slen > len || memcmp(buf, text, slen) != 0)
			continue;
		if (slen < 4 && slen < len)
			continue;  /* too short to be sure */
		zsql_off = (int)(i * 8);
	}
	if (zsql_off < 0)
		return -ENOENT;
	cfg->vdbe_zsql_off = zsql_off;
	if (db_off >= 0)
		cfg->vdbe_db_off = db_off;
	return 0;
}

static struct {
	bool done;
	int err, adb_off, zfile_off;
} self_dbfile;

/* Follows db->aDb[0].pBt->pBt->pPager for each candidate aDb offset and
 * looks for the file name pointer in the pager. */
static int calibrate_dbfile(void)
{
	char path[] = "/tmp/sqltrace-calib-XXXXXX";
	pid_t self = getpid();
	sqlite3 *db = NULL;
	uint64_t w[DB_SCAN_WORDS];
	size_t i, got;
	const char *fname;
	int fd, err = -ENOENT;

	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	close(fd);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		goto out;
	fname = sqlite3_db_filename(db, "main");
	if (!fname)
		goto out;
	got = peek_words(self, (uintptr_t)db, w, DB_SCAN_WORDS);
	for (i = 0; i < got && err; i++) {
		uint64_t btree, shared, pager;
		int off;

		if (!plausible_ptr(w[i]) || peek(self, w[i] + 8, &btree, 8) != 8 || !plausible_ptr(btree) ||
		    peek(self, btree + 8, &shared, 8) != 8 || !plausible_ptr(shared) ||
		    peek(self, shared, &pager, 8) != 8 || !plausible_ptr(pager))
			continue;
		off = layout__find_word(self, pager, 64, (uintptr_t)fname);
		if (off >= 0) {
			self_dbfile.adb_off = (int)(i * 8);
			self_dbfile.zfile_off = off;
			err = 0;
		}
	}
out:
	if (db)
		sqlite3_close(db);
	unlink(path);
	return err;
}

int layout__self_dbfile(int *adb_off, int *zfilename_off)
{
	if (!self_dbfile.done) {
		self_dbfile.done = true;
		self_dbfile.err = calibrate_dbfile();
	}
	*adb_off = self_dbfile.adb_off;
	*zfilename_off = self_dbfile.zfile_off;
	return self_dbfile.err;
}
