/* layout_decode.c — offsets of SQLite's objects decoded from a copy's own
 * accessor functions (see layout_decode.h).
 *
 * Each function is walked symbolically (user/find/codewalk.h: which fields of
 * its arguments it reads, and what it does with them); each rule below
 * looks for one pattern in one function and takes an offset only when
 * exactly one candidate fits, so code a rule does not expect can only
 * make it find nothing, never something else.
 *
 * The rules and the SQLite source each relies on (3.38 to 3.53; the
 * struct layouts differ between versions and builds, the code below does
 * not):
 *  - sqlite3_sql: `return p->zSql` (vdbeapi.c) → Vdbe.zSql.
 *  - sqlite3_db_handle: `return ((Vdbe*)pStmt)->db` → Vdbe.db.
 *  - sqlite3_db_mutex: `return db->mutex` (main.c): the one pointer
 *    sqlite3_errmsg passes to a call besides db->pErr.
 *  - sqlite3_errmsg: `sqlite3_value_text(db->pErr)` (main.c) → sqlite3.pErr:
 *    the pointer field of db passed to a call or dereferenced, other than
 *    db->mutex.
 *  - sqlite3_value_text / sqlite3ValueText: `return pVal->z` on the fast
 *    path (vdbemem.c) → sqlite3_value.z.
 *  - sqlite3_stmt_busy (3.38+): `v->eVdbeState==VDBE_RUN_STATE`: the byte
 *    compared and the constant → Vdbe.eVdbeState and its running value.
 *    Its ready and halted values are not in that code: vdbeInt.h defines
 *    VDBE_INIT_STATE 0, VDBE_READY_STATE 1, VDBE_RUN_STATE 2,
 *    VDBE_HALT_STATE 3 since 3.38.0 (when eVdbeState replaced
 *    Vdbe.magic); checked in 3.40.1 and 3.53.2 by calibration, read in
 *    3.50.5's source. Taken when sqlite3_libversion_number returns a
 *    version in [3038000, VERSION_STATE_MAX] (later ones are not assumed
 *    to keep the values) and the decoded running value is 2.
 *  - sqlite3VdbeTransferError: `int rc = p->rc; ... return rc` → Vdbe.rc
 *    (the 4-byte field returned), `if( p->zErrMsg ) ...
 *    sqlite3ValueSetStr(db->pErr, -1, p->zErrMsg, ...)` → Vdbe.zErrMsg
 *    (the pointer field tested against 0 and passed to a call).
 *    sqlite3VdbeResetStepResult (`p->rc = SQLITE_OK`), where present,
 *    must agree.
 *  - sqlite3.pParse: sqlite3ParseObjectInit(pParse, db) (3.38+, prepare.c)
 *    stores `db->pParse = pParse` and `pParse->db = db`; sqlite3Prepare
 *    (where that is inlined) stores the address of its stack Parse in a
 *    field of db and db at that address; sqlite3ErrorToParser writes
 *    through `db->pParse`. Whichever of them the copy has must agree.
 *  - the file name: sqlite3_db_filename returns, when fully inlined,
 *    db->aDb[i].pBt->pBt->pPager->zFilename (Db.pBt at 8, Btree.pBt at 8,
 *    BtShared.pPager at 0, the offsets the BPF side follows, are checked
 *    too); else sqlite3DbNameToBtree (`db->aDb[iDb].pBt`),
 *    sqlite3BtreeGetFilename (`p->pBt->pPager`) and sqlite3PagerFilename
 *    (`pPager->zFilename`) together.
 */
#include "layout_decode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codewalk.h"
#include "ehframe.h"
#include "elfsym.h"

#define CODE_MAX     16384   /* bytes of one function decoded at most */
#define CODE_NOSIZE  4096    /* bytes read for a symbol without a size */
#define FIELD_MAX    65536   /* a struct field's offset is below this */
#define VERSION_STATE_MAX 3053999  /* the last version whose state values
                                    * were checked (see decode_state) */

/* ---- rules ------------------------------------------------------------ */

#define REACH_MAX 32         /* candidates kept for one internal function */

struct ctx {
	layout_fetch_fn fetch;
	void *fctx;
};

/* Internal functions that a copy without their names (a stripped file
 * whose API came from its extension API table) may still have: the
 * functions its API function `from` calls (a call or a tail jump) up to
 * `depth` calls deep are tried in their place. A rule then takes an
 * offset only when every candidate its pattern fits gives the same one
 * (and the patterns are narrow: see each rule), so a wrong candidate can
 * make a rule find nothing, not something else. The paths are those of
 * SQLite 3.40-3.53 builds (e.g. sqlite3_reset -> sqlite3VdbeFinalize or
 * sqlite3VdbeReset -> sqlite3VdbeTransferError). */
static const struct reach {
	const char *name, *from;
	int depth;
} reaches[] = {
	{ "sqlite3ValueText", "sqlite3_value_text", 1 },
	{ "sqlite3VdbeTransferError", "sqlite3_reset", 3 },
	{ "sqlite3Prepare", "sqlite3_prepare_v2", 2 },
	{ "sqlite3BtreeGetFilename", "sqlite3_db_filename", 1 },
	{ "sqlite3PagerFilename", "sqlite3_db_filename", 2 },
};

/* Decodes and walks function name. Returns the walk (free() it) or NULL
 * when the copy does not have it or it cannot be decoded. */
static struct codewalk *walk_function(struct ctx *c, const char *name)
{
	uint8_t *code = NULL;
	size_t len = 0;
	uint64_t vaddr = 0;
	struct codewalk *w;

	if (c->fetch(c->fctx, name, &code, &len, &vaddr) != 0)
		return NULL;
	w = malloc(sizeof(*w));
	if (w && codewalk__run(code, len, vaddr, w) != 0) {
		free(w);
		w = NULL;
	}
	free(code);
	return w;
}

static struct codewalk *walk_at(struct ctx *c, uint64_t vaddr)
{
	char name[32];

	snprintf(name, sizeof(name), "@%" PRIx64, vaddr);
	return walk_function(c, name);
}

/* The functions reached from `from` in 1..depth calls (breadth first, at
 * most max), into v. Returns their number. */
static int reached(struct ctx *c, const char *from, int depth, uint64_t *v, int max)
{
	struct codewalk *w = walk_function(c, from);
	uint64_t self = 0;
	int n = 0, level_start = 0, level_end, d, i, j, k;

	if (!w)
		return 0;
	for (d = 1; d <= depth; d++) {
		level_end = n;
		for (k = d == 1 ? -1 : level_start; k < level_end; k++) {
			struct codewalk *cw = k < 0 ? w : walk_at(c, v[k]);

			for (i = 0; cw && i < cw->nev; i++) {
				const struct cw_event *e = &cw->ev[i];
				bool dup = e->kind != CW_CALL || e->x <= 0 || (uint64_t)e->x == self;

				for (j = 0; !dup && j < n; j++)
					dup = v[j] == (uint64_t)e->x;
				if (!dup && n < max)
					v[n++] = (uint64_t)e->x;
			}
			if (k >= 0)
				free(cw);
		}
		level_start = level_end;
	}
	free(w);
	return n;
}

/* Walks for internal function name: the function itself when the copy
 * names it, else the candidates reaches[] gives (see above). Returns their
 * number (0 none) with the walks in out[] (free each); *named says
 * whether it is the function itself. */
static int walks_for(struct ctx *c, const char *name, struct codewalk **out, bool *named)
{
	uint64_t v[REACH_MAX];
	int n = 0, i, k;

	*named = (out[0] = walk_function(c, name)) != NULL;
	if (*named)
		return 1;
	for (i = 0; i < (int)(sizeof(reaches) / sizeof(reaches[0])); i++) {
		if (strcmp(reaches[i].name, name) != 0)
			continue;
		k = reached(c, reaches[i].from, reaches[i].depth, v, REACH_MAX);
		for (int j = 0; j < k; j++)
			if ((out[n] = walk_at(c, v[j])))
				n++;
	}
	return n;
}

static void free_walks(struct codewalk **w, int n)
{
	for (int i = 0; i < n; i++)
		free(w[i]);
}

static bool plausible_off(int64_t x)
{
	return x >= 0 && x < FIELD_MAX;
}

static bool is_field(const struct codewalk *w, int16_t id, int16_t parent, int size)
{
	return cw_is(w, id, CW_FIELD) && w->node[id].parent == parent && !w->node[id].indexed &&
	       (size == 0 || w->node[id].size == size) && plausible_off(w->node[id].x);
}

/* The displacement of the one field of the first argument, size bytes
 * wide, that the function returns; -1 when none or several. */
static int ret_field(const struct codewalk *w, int size)
{
	int i, found = -1;
	int16_t arg0 = 0;

	for (i = 1; i < w->nnodes; i++)
		if (w->node[i].kind == CW_ARG && w->node[i].x == 0)
			arg0 = (int16_t)i;
	for (i = 0; i < w->nev; i++) {
		const struct cw_event *e = &w->ev[i];

		if (e->kind != CW_RET || !is_field(w, e->a, arg0, size))
			continue;
		if (found >= 0 && found != w->node[e->a].x)
			return -1;
		found = (int)w->node[e->a].x;
	}
	return found;
}

static int16_t arg_node(const struct codewalk *w, int n)
{
	int i;

	for (i = 1; i < w->nnodes; i++)
		if (cw_is_arg(w, (int16_t)i, n))
			return (int16_t)i;
	return -1;
}

/* Keeps one candidate value: returns false once two differ. */
static bool one(int *have, int v)
{
	if (*have >= 0 && *have != v) {
		*have = -2;
		return false;
	}
	if (*have != -2)
		*have = v;
	return true;
}

static bool field_used(const struct codewalk *w, int16_t id, bool as_call_arg, bool as_base, bool as_cmp0)
{
	int i;

	for (i = 0; i < w->nev; i++) {
		const struct cw_event *e = &w->ev[i];

		if (as_call_arg && e->kind == CW_CALL && (e->a == id || e->b == id || e->c == id))
			return true;
		if (as_base && e->kind == CW_BASE && e->a == id)
			return true;
		if (as_cmp0 && e->kind == CW_CMP && e->a == id && e->x == 0)
			return true;
	}
	return false;
}

static void say(char *buf, size_t cap, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 2 >= cap)
		return;
	if (used)
		buf[used++] = ' ', buf[used] = '\0';
	va_start(ap, fmt);
	vsnprintf(buf + used, cap - used, fmt, ap);
	va_end(ap);
}

#define FOUND(o, ...) say((o)->found, sizeof((o)->found), __VA_ARGS__)
#define MISSING(o, ...) say((o)->missing, sizeof((o)->missing), __VA_ARGS__)

/* Agreement of two sources of one offset: a (already known, -1 none)
 * and b (-1 none). Returns the offset, -1 none, -2 disagreement. */
static int agree(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0 || a == b)
		return a;
	return -2;
}

/* The field of size bytes function fn returns (ret_field), over its
 * candidates when the copy does not name it: -1 none, -2 candidates
 * disagree. */
static int simple_ret(struct ctx *c, const char *fn, int size)
{
	struct codewalk *w[REACH_MAX];
	bool named;
	int n = walks_for(c, fn, w, &named), v = -1, i;

	for (i = 0; i < n; i++) {
		int r = ret_field(w[i], size);

		if (r >= 0 && !one(&v, r))
			break;
	}
	free_walks(w, n);
	return v;
}

static int decode_version(struct ctx *c)
{
	struct codewalk *w = walk_function(c, "sqlite3_libversion_number");
	int i, v = 0;

	for (i = 0; w && i < w->nev; i++) {
		const struct cw_event *e = &w->ev[i];

		if (e->kind == CW_RET && cw_is(w, e->a, CW_IMM) && w->node[e->a].x > 3000000 &&
		    w->node[e->a].x < 4000000) {
			if (v && v != w->node[e->a].x) {
				v = 0;
				break;
			}
			v = (int)w->node[e->a].x;
		}
	}
	free(w);
	return v;
}

/* sqlite3_stmt_busy: the byte of the statement compared with a constant. */
static void decode_state(struct ctx *c, struct layout_decoded *o)
{
	struct codewalk *w = walk_function(c, "sqlite3_stmt_busy");
	int i, off = -1, run = -1;
	int16_t arg0;

	if (!w) {
		MISSING(o, "state (no sqlite3_stmt_busy)");
		return;
	}
	arg0 = arg_node(w, 0);
	for (i = 0; i < w->nev; i++) {
		const struct cw_event *e = &w->ev[i];

		if (e->kind != CW_CMP || !is_field(w, e->a, arg0, 1))
			continue;
		if (!one(&off, (int)w->node[e->a].x) || !one(&run, (int)(e->x & 0xff)))
			break;
	}
	free(w);
	if (off < 0 || run < 0) {
		MISSING(o, "state (sqlite3_stmt_busy compares no single byte)");
		return;
	}
	/* vdbeInt.h, 3.38.0 and later: INIT 0, READY 1, RUN 2, HALT 3. */
	if (o->version < 3038000 || o->version > VERSION_STATE_MAX || run != 2) {
		MISSING(o, "state (version %d: its state values are not known)", o->version);
		return;
	}
	o->cfg.vdbe_state_off = off;
	o->cfg.state_ready = 1;
	o->cfg.state_run = (unsigned char)run;
	o->cfg.state_halt = 3;
	FOUND(o, "state=%d(%d/%d/%d)", off, 1, run, 3);
	o->nfound++;
}

/* sqlite3_reset, for a copy without sqlite3_db_handle/sqlite3_db_mutex
 * (used only then: a program that never calls them, found through its cgo
 * wrappers): `db = v->db; sqlite3_mutex_enter(db->mutex); ...
 * sqlite3_mutex_leave(db->mutex)`: the pointer field of a pointer field of
 * the statement that is passed to a call as its first argument gives
 * Vdbe.db (*db) and sqlite3.mutex (*mutex); in the function itself or, when
 * it only tests the statement against 0 and jumps on (GCC's
 * sqlite3_reset.part.0), where it jumps. Both -1 unless every such call
 * agrees. */
static void db_mutex_in(struct codewalk *w, int *db, int *mutex, uint64_t *tail)
{
	int16_t arg0 = arg_node(w, 0);
	int i;

	for (i = 0; i < w->nev; i++) {
		const struct cw_event *e = &w->ev[i];
		int16_t p;

		if (e->kind == CW_CALL && e->size == 1 && e->x && cw_is_arg(w, e->a, 0))
			*tail = (uint64_t)e->x;
		if (e->kind != CW_CALL || !cw_is(w, e->a, CW_FIELD) || w->node[e->a].size != 8)
			continue;
		p = w->node[e->a].parent;
		if (!is_field(w, e->a, p, 8) || !is_field(w, p, arg0, 8))
			continue;
		if (!one(db, (int)w->node[p].x) || !one(mutex, (int)w->node[e->a].x))
			break;
	}
}

static void reset_db_mutex(struct ctx *c, int *db, int *mutex)
{
	struct codewalk *w = walk_function(c, "sqlite3_reset");
	uint64_t tail = 0;

	*db = *mutex = -1;
	if (!w)
		return;
	db_mutex_in(w, db, mutex, &tail);
	free(w);
	if (*db == -1 && *mutex == -1 && tail && (w = walk_at(c, tail))) {
		uint64_t again = 0;

		db_mutex_in(w, db, mutex, &again);
		free(w);
	}
	if (*db < 0 || *mutex < 0)
		*db = *mutex = -1;
}

/* For a copy without sqlite3_sql (used only then): sqlite3Reprepare,
 * which sqlite3_step reaches (or inlines), calls sqlite3_sql(p) and hands
 * the text to sqlite3LockAndPrepare(db, zSql, -1, ...). In sqlite3_step
 * and the functions it reaches, a call with the statement's db, one of its
 * pointer fields and -1 gives zSql itself (sqlite3_sql inlined); else, in a function making such a call, the functions called
 * with the statement as first argument that return one of its pointer
 * fields other than Vdbe.db (sqlite3VdbeDb, where not inlined) give it.
 * Every such source must agree. -1 none, -2 they disagree. */
static void zsql_in(struct ctx *c, struct codewalk *w, int db_off, int *off)
{
	uint64_t targets[8];
	int ntargets = 0, i, j;
	bool prepares = false;
	int16_t arg0 = arg_node(w, 0);

	for (i = 0; i < w->nev; i++) {
		const struct cw_event *e = &w->ev[i];

		if (e->kind != CW_CALL || e->size != 0)
			continue;
		if (cw_is(w, e->c, CW_IMM) && (int32_t)w->node[e->c].x == -1) {
			prepares = true;
			if (is_field(w, e->a, arg0, 8) && w->node[e->a].x == db_off && is_field(w, e->b, arg0, 8) &&
			    w->node[e->b].x != db_off && !one(off, (int)w->node[e->b].x))
				return;
		}
		if (e->x > 0 && cw_is_arg(w, e->a, 0) && ntargets < 8)
			targets[ntargets++] = (uint64_t)e->x;
	}
	for (j = 0; prepares && j < ntargets; j++) {
		struct codewalk *t = walk_at(c, targets[j]);
		int r = t ? ret_field(t, 8) : -1;

		free(t);
		if (r >= 0 && r != db_off && !one(off, r))
			return;
	}
}

static int zsql_from_reprepare(struct ctx *c, int db_off)
{
	uint64_t v[4 * REACH_MAX];
	struct codewalk *w;
	int n, k, off = -1;

	if (db_off < 0)
		return -1;
	if ((w = walk_function(c, "sqlite3_step"))) {
		zsql_in(c, w, db_off, &off);
		free(w);
	}
	n = reached(c, "sqlite3_step", 2, v, 4 * REACH_MAX);
	for (k = 0; k < n && off != -2; k++)
		if ((w = walk_at(c, v[k]))) {
			zsql_in(c, w, db_off, &off);
			free(w);
		}
	return off;
}

/* sqlite3_errmsg: the pointer field of db passed on or dereferenced,
 * other than db->mutex (from sqlite3_db_mutex, else from sqlite3_reset:
 * reset_db_mutex). */
static void decode_perr(struct ctx *c, struct layout_decoded *o, int reset_mutex)
{
	int mutex = simple_ret(c, "sqlite3_db_mutex", 8), off = -1, i;
	struct codewalk *w;
	int16_t arg0;

	if (mutex == -1)
		mutex = reset_mutex;
	if (mutex < 0) {
		MISSING(o, "pErr (no sqlite3_db_mutex to tell the mutex apart)");
		return;
	}
	w = walk_function(c, "sqlite3_errmsg");
	if (!w) {
		MISSING(o, "pErr (no sqlite3_errmsg)");
		return;
	}
	arg0 = arg_node(w, 0);
	for (i = 1; i < w->nnodes; i++) {
		if (!is_field(w, (int16_t)i, arg0, 8) || w->node[i].x == mutex)
			continue;
		if (field_used(w, (int16_t)i, true, true, false) && !one(&off, (int)w->node[i].x))
			break;
	}
	free(w);
	if (off < 0) {
		MISSING(o, "pErr (sqlite3_errmsg: %s)", off == -1 ? "no candidate" : "several candidates");
		return;
	}
	o->cfg.db_perr_off = off;
	FOUND(o, "pErr=%d", off);
	o->nfound++;
}

static void decode_memz(struct ctx *c, struct layout_decoded *o)
{
	int a = simple_ret(c, "sqlite3_value_text", 8), b = simple_ret(c, "sqlite3ValueText", 8);
	int v = agree(a, b);

	if (v < 0) {
		MISSING(o, "Mem.z (%s)", v == -2 ? "sqlite3_value_text and sqlite3ValueText disagree"
					 : "no readable sqlite3_value_text/sqlite3ValueText");
		return;
	}
	o->cfg.mem_z_off = v;
	FOUND(o, "Mem.z=%d", v);
	o->nfound++;
}

/* sqlite3VdbeTransferError: rc (returned) and zErrMsg (tested and passed
 * on); sqlite3VdbeResetStepResult: rc (zeroed). */
static void decode_halt(struct ctx *c, struct layout_decoded *o)
{
	struct codewalk *cand[REACH_MAX], *w;
	int rc = -1, msg = -1, reset = -1, i, k, n;
	bool named;
	int16_t arg0;

	n = walks_for(c, "sqlite3VdbeTransferError", cand, &named);
	for (k = 0; k < n; k++) {
		int r, m = -1;

		w = cand[k];
		r = ret_field(w, 4);
		arg0 = arg_node(w, 0);
		for (i = 1; i < w->nnodes && o->cfg.vdbe_db_off >= 0; i++) {
			if (!is_field(w, (int16_t)i, arg0, 8) || w->node[i].x == o->cfg.vdbe_db_off)
				continue;
			if (field_used(w, (int16_t)i, false, false, true) && field_used(w, (int16_t)i, true, false, false) &&
			    !one(&m, (int)w->node[i].x))
				break;
		}
		/* a candidate counts only when it has the whole pattern */
		if (!named && (r < 0 || m < 0))
			continue;
		bool rc_ok = r < 0 || one(&rc, r), msg_ok = m == -1 || one(&msg, m);

		if (!rc_ok || !msg_ok)
			break;
	}
	free_walks(cand, n);
	w = walk_function(c, "sqlite3VdbeResetStepResult");
	if (w) {
		arg0 = arg_node(w, 0);
		for (i = 0; i < w->nev; i++) {
			const struct cw_event *e = &w->ev[i];

			if (e->kind == CW_STORE && e->a == arg0 && e->size == 4 && plausible_off(e->x) &&
			    cw_is(w, e->b, CW_IMM) &&
			    w->node[e->b].x == 0 && !one(&reset, (int)e->x))
				break;
		}
		free(w);
	}
	rc = agree(rc, reset);
	if (rc >= 0) {
		o->cfg.vdbe_rc_off = rc;
		FOUND(o, "rc=%d", rc);
		o->nfound++;
	} else {
		MISSING(o, "rc (%s)", rc == -2 ? "sources disagree"
			: "no sqlite3VdbeTransferError/sqlite3VdbeResetStepResult pattern");
	}
	if (msg >= 0) {
		o->cfg.vdbe_zerrmsg_off = msg;
		FOUND(o, "zErrMsg=%d", msg);
		o->nfound++;
	} else {
		MISSING(o, "zErrMsg (%s)", msg == -2 ? "several candidates"
			: o->cfg.vdbe_db_off < 0 ? "Vdbe.db not known to tell it apart"
			: "no sqlite3VdbeTransferError pattern");
	}
}

/* A store of ptr into a field of db, and of db at ptr+0 (Parse.db): the
 * field's offset, -1 none, -2 several. */
static int parse_link(const struct codewalk *w, int16_t db, bool ptr_is_stack, int16_t ptr_arg)
{
	int i, j, off = -1;

	for (i = 0; i < w->nev; i++) {
		const struct cw_event *e = &w->ev[i];
		bool back = false;

		if (e->kind != CW_STORE || e->a != db || e->size != 8 || e->b <= 0 || !plausible_off(e->x))
			continue;
		if (ptr_is_stack ? !cw_is(w, e->b, CW_STACK) : e->b != ptr_arg)
			continue;
		for (j = 0; j < w->nev; j++) {
			const struct cw_event *f = &w->ev[j];

			if (f->kind == CW_STORE && f->a == e->b && f->x == 0 && f->size == 8 && f->b == db)
				back = true;
		}
		if (back && !one(&off, (int)e->x))
			break;
	}
	return off;
}

static void decode_pparse(struct ctx *c, struct layout_decoded *o)
{
	struct codewalk *w;
	int v = -1, a = -1, i;

	if ((w = walk_function(c, "sqlite3ParseObjectInit"))) {
		a = parse_link(w, arg_node(w, 1), false, arg_node(w, 0));
		v = agree(v, a);
		free(w);
	}
	if (v != -2) {
		struct codewalk *cand[REACH_MAX];
		bool named;
		int n = walks_for(c, "sqlite3Prepare", cand, &named), k, b = -1;

		/* (each candidate's own several-candidates -2 only spoils it) */
		for (k = 0; k < n; k++)
			if ((a = parse_link(cand[k], arg_node(cand[k], 0), true, 0)) >= 0 && !one(&b, a))
				break;
		free_walks(cand, n);
		v = agree(v, b);
	}
	if (v != -2 && (w = walk_function(c, "sqlite3ErrorToParser"))) {
		int16_t arg0 = arg_node(w, 0);

		a = -1;
		for (i = 0; i < w->nev; i++) {
			const struct cw_event *e = &w->ev[i];

			if (e->kind == CW_STORE && is_field(w, e->a, arg0, 8) && !one(&a, (int)w->node[e->a].x))
				break;
		}
		v = agree(v, a);
		free(w);
	}
	if (v < 0) {
		MISSING(o, "pParse (%s)", v == -2 ? "sources disagree" : "no sqlite3ParseObjectInit/sqlite3Prepare/"
									"sqlite3ErrorToParser pattern");
		return;
	}
	o->cfg.db_pparse_off = v;
	FOUND(o, "pParse=%d", v);
	o->nfound++;
}

/* The chain node = F(F(...)) from the innermost: returns the parent node
 * of id when id is a field at disp (any disp when disp < 0, stored in
 * *got) of size 8 with the given indexing, else -1. */
static int16_t unfield(const struct codewalk *w, int16_t id, long disp, bool indexed, long *got)
{
	if (!cw_is(w, id, CW_FIELD) || w->node[id].size != 8 || w->node[id].indexed != indexed ||
	    !plausible_off(w->node[id].x))
		return -1;
	if (disp >= 0 && w->node[id].x != disp)
		return -1;
	if (got)
		*got = (long)w->node[id].x;
	return w->node[id].parent;
}

static void decode_dbfile(struct ctx *c, struct layout_decoded *o)
{
	struct codewalk *w;
	int adb = -1, zf = -1, i;
	long a, z;
	bool chain = false;

	/* Fully inlined: db->aDb[i].pBt->pBt->pPager->zFilename returned. */
	if ((w = walk_function(c, "sqlite3_db_filename"))) {
		int16_t arg0 = arg_node(w, 0);

		for (i = 0; i < w->nev; i++) {
			const struct cw_event *e = &w->ev[i];
			int16_t p;

			if (e->kind != CW_RET)
				continue;
			p = unfield(w, e->a, -1, false, &z);         /* Pager.zFilename */
			p = p > 0 ? unfield(w, p, 0, false, NULL) : -1;   /* BtShared.pPager */
			p = p > 0 ? unfield(w, p, 8, false, NULL) : -1;   /* Btree.pBt */
			p = p > 0 ? unfield(w, p, 8, true, NULL) : -1;    /* aDb[i].pBt */
			p = p > 0 ? unfield(w, p, -1, false, &a) : -1;    /* db->aDb */
			if (p > 0 && p == arg0 && one(&adb, (int)a) && one(&zf, (int)z))
				chain = true;
		}
		free(w);
	}
	if (!chain) {
		bool bt = false;

		adb = zf = -1;
		if ((w = walk_function(c, "sqlite3DbNameToBtree"))) {
			int16_t arg0 = arg_node(w, 0);

			for (i = 0; i < w->nev; i++) {
				const struct cw_event *e = &w->ev[i];
				int16_t p;

				if (e->kind != CW_RET)
					continue;
				p = unfield(w, e->a, 8, true, NULL);
				p = p > 0 ? unfield(w, p, -1, false, &a) : -1;
				if (p > 0 && p == arg0)
					one(&adb, (int)a);
			}
			free(w);
		}
		/* Where sqlite3DbNameToBtree is inlined into sqlite3_db_filename
		 * (and named nowhere in a stripped copy): the call that gets
		 * db->aDb[i].pBt is the one to sqlite3BtreeGetFilename. */
		if (adb < 0 && (w = walk_function(c, "sqlite3_db_filename"))) {
			int16_t arg0 = arg_node(w, 0);

			for (i = 0; i < w->nev; i++) {
				const struct cw_event *e = &w->ev[i];
				int16_t p = e->kind == CW_CALL ? unfield(w, e->a, 8, true, NULL) : -1;

				p = p > 0 ? unfield(w, p, -1, false, &a) : -1;
				if (p > 0 && p == arg0)
					one(&adb, (int)a);
			}
			free(w);
		}
		{
			struct codewalk *cand[REACH_MAX];
			bool named;
			int n = walks_for(c, "sqlite3BtreeGetFilename", cand, &named), k;

			for (k = 0; k < n; k++) {
				int16_t arg0 = arg_node(cand[k], 0);

				w = cand[k];
				for (i = 0; i < w->nev; i++) {
					const struct cw_event *e = &w->ev[i];
					int16_t p = e->kind == CW_CALL ? unfield(w, e->a, 0, false, NULL) : -1;

					p = p > 0 ? unfield(w, p, 8, false, NULL) : -1;
					if (p > 0 && p == arg0)
						bt = true;
				}
			}
			free_walks(cand, n);
		}
		zf = simple_ret(c, "sqlite3PagerFilename", 8);
		if (!bt)
			adb = -1;
	}
	if (adb < 0 || zf < 0) {
		MISSING(o, "file name (no sqlite3_db_filename chain, nor sqlite3DbNameToBtree, "
			   "sqlite3BtreeGetFilename and sqlite3PagerFilename)");
		return;
	}
	o->cfg.db_adb_off = adb;
	o->cfg.pager_zfile_off = zf;
	FOUND(o, "aDb=%d Pager.zFilename=%d", adb, zf);
	o->nfound += 2;
}

int layout_decode__run(layout_fetch_fn fetch, void *fctx, struct layout_decoded *o)
{
	struct ctx c = { .fetch = fetch, .fctx = fctx };
	int v, rdb, rmutex;

	memset(o, 0, sizeof(*o));
	o->cfg.vdbe_db_off = o->cfg.vdbe_zsql_off = o->cfg.db_perr_off = o->cfg.mem_z_off = -1;
	o->cfg.vdbe_rc_off = o->cfg.vdbe_zerrmsg_off = o->cfg.vdbe_state_off = -1;
	o->cfg.db_pparse_off = o->cfg.db_adb_off = o->cfg.pager_zfile_off = -1;
	o->cfg.vdbe_resrow_off = -1;  /* not decoded: step outcomes by the state byte */
	o->version = decode_version(&c);
	reset_db_mutex(&c, &rdb, &rmutex);
	if ((v = simple_ret(&c, "sqlite3_db_handle", 8)) != -1)
		rdb = v;   /* sqlite3_reset's only where the copy has no sqlite3_db_handle */
	if ((v = simple_ret(&c, "sqlite3_sql", 8)) == -1)
		v = zsql_from_reprepare(&c, rdb);   /* only where the copy has no sqlite3_sql */
	if (v >= 0) {
		o->cfg.vdbe_zsql_off = v;
		FOUND(o, "zSql=%d", v);
		o->nfound++;
	} else {
		MISSING(o, "zSql (sqlite3_sql)");
	}
	if ((v = rdb) >= 0) {
		o->cfg.vdbe_db_off = v;
		FOUND(o, "db=%d", v);
		o->nfound++;
	} else {
		MISSING(o, "db (sqlite3_db_handle)");
	}
	decode_perr(&c, o, rmutex);
	decode_memz(&c, o);
	decode_state(&c, o);
	decode_halt(&c, o);
	decode_pparse(&c, o);
	decode_dbfile(&c, o);
	return o->nfound;
}

/* The sqlite3ErrorWithMsg pattern (layout_decode.h) in one walk. */
static bool error_with_msg_shape(const struct codewalk *w, int perr_off)
{
	int16_t db = arg_node(w, 0), fmt = arg_node(w, 2);
	bool stores_code = false, tests_fmt = false, stores_perr = false;
	int i;

	if (db <= 0 || fmt <= 0)
		return false;
	for (i = 0; i < w->nev; i++) {
		const struct cw_event *e = &w->ev[i];

		/* (the value stored is err_code, but kept in a callee-saved
		 * register across the call before it: not followed) */
		if (e->kind == CW_STORE && e->a == db && e->size == 4 && plausible_off(e->x))
			stores_code = true;
		if (e->kind == CW_CMP && e->a == fmt && e->x == 0)
			tests_fmt = true;
		if (e->kind == CW_STORE && e->a == db && e->size == 8 && e->x == perr_off)
			stores_perr = true;
	}
	return stores_code && tests_fmt && stores_perr;
}

static int error_with_msg(struct ctx *c, int perr_off, uint64_t *vaddr)
{
	uint64_t v[4 * REACH_MAX];
	int n, i, fits = 0;

	if (perr_off < 0)
		return -ENOENT;
	n = reached(c, "sqlite3_prepare_v2", 3, v, 4 * REACH_MAX);
	for (i = 0; i < n; i++) {
		struct codewalk *w = walk_at(c, v[i]);

		if (w && error_with_msg_shape(w, perr_off)) {
			fits++;
			*vaddr = v[i];
		}
		free(w);
	}
	return fits == 1 ? 0 : -ENOENT;
}

/* ---- from an ELF file ------------------------------------------------- */

struct elf_src {
	struct elf_file *sym, *ef;
	struct ehframe_fn *fdes;      /* ef's FDEs, read on first "@" fetch */
	size_t nfdes;
	bool fdes_read;
};

/* name is a function's name, or "@HEX": the function at that address,
 * whose extent its FDE gives (no FDE: not fetched, so that a walk never
 * runs on into the next function). */
static int elf_fetch(void *ctx, const char *name, uint8_t **code, size_t *len, uint64_t *vaddr)
{
	struct elf_src *s = ctx;
	uint64_t size;
	ssize_t n;
	int err;

	if (name[0] == '@') {
		char *end;

		if (!s->fdes_read) {
			s->fdes_read = true;
			if (ehframe__read(s->ef, &s->fdes, &s->nfdes) != 0)
				s->nfdes = 0;
		}
		*vaddr = strtoull(name + 1, &end, 16);
		size = *end ? 0 : ehframe__size_at(s->fdes, s->nfdes, *vaddr);
		err = size ? 0 : -ENOENT;
	} else {
		err = elf_file__find_func(s->sym, name, vaddr, &size);
	}
	if (err)
		return err;
	if (size == 0)
		size = CODE_NOSIZE;
	if (size > CODE_MAX)
		return -E2BIG;
	*code = malloc(size);
	if (!*code)
		return -ENOMEM;
	n = elf_file__read_vaddr(s->ef, *vaddr, *code, size);
	if (n <= 0) {
		free(*code);
		*code = NULL;
		return n < 0 ? (int)n : -ENOENT;
	}
	*len = (size_t)n;
	return 0;
}

int layout_decode__elf(struct elf_file *sym, struct elf_file *ef, struct layout_decoded *out)
{
	struct elf_src s = { .sym = sym, .ef = ef };
	int n = layout_decode__run(elf_fetch, &s, out);

	free(s.fdes);
	return n;
}

int layout_decode__error_with_msg_elf(struct elf_file *sym, struct elf_file *ef, int perr_off, uint64_t *vaddr)
{
	struct elf_src s = { .sym = sym, .ef = ef };
	struct ctx c = { .fetch = elf_fetch, .fctx = &s };
	int err = error_with_msg(&c, perr_off, vaddr);

	free(s.fdes);
	return err;
}
