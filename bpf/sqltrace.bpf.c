// SPDX-License-Identifier: GPL-2.0
/* sqltrace.bpf.c — uprobes on SQLite's API that turn each statement
 * execution into one ring buffer record (see docs/data-path.md).
 *
 * Per thread (task storage): the nesting depth of traced API calls, so that
 * statements SQLite runs inside a program's call (schema loading, the
 * statements of sqlite3_exec) are not reported, and the arguments of the
 * outermost call in progress. By default a prepare is probed at its entry
 * only (no return probe: one trap fewer per prepare): the statement it
 * makes is met at its first step, its text read there from the statement,
 * and a failure is caught inside the prepare, at sqlite3ErrorWithMsg. Per statement (hash keyed by tgid+pointer):
 * when its current execution started, rows so far, the prepare time.
 *
 * The record's SQL text is read from the statement object itself
 * (Vdbe.zSql) when the execution ends, so statements prepared before the
 * tracer attached carry their text too; the offsets come from user space,
 * per probed SQLite copy, indexed by the uprobe's cookie.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "sqltrace.h"

char LICENSE[] SEC("license") = "GPL";

#define SQLITE_SCHEMA      17
#define SQLITE_ROW         100
#define SQLITE_DONE        101
#define SQLITE_ERROR_RETRY 513

/* Ring buffer wakeup: records are submitted without waking the consumer,
 * which drains on a short timer; only when the ring fills past this many
 * bytes is it woken at once. Set by user space before load. */
const volatile __u64 wakeup_bytes = 1 << 20;

/* Floor measurement (--probe-only): every program returns at once, so the
 * cost measured is that of the probe hits alone. */
const volatile bool probe_only = false;

/* --mode fast: no probe on sqlite3_step (nothing per row); an execution
 * ends at sqlite3VdbeHalt and starts when its statement was last made
 * ready (prepared, reset, or its previous execution ended). */
const volatile bool fast_mode = false;

/* Who is traced. Probes attached to one process (-p) only fire there; the
 * filters matter for probes attached to a file for every process (-b). */
const volatile __u32 self_tgid = 0;          /* sqltrace-bpf: never traced */
const volatile bool filter_pids = false;     /* only tgids in pid_filter */
const volatile char filter_comm[ST_COMM_LEN] = {};  /* "" or a process name */

struct stmt_state {
	__u64 start_ns;      /* 0: not executing */
	__u64 prepare_ns;    /* duration of the prepare, until first execution */
	__u64 rows;
	__u64 db;
	__u64 ready_ns;      /* fast mode: made ready (prepare, reset, halt) */
	__u64 prev_ready_ns; /* fast mode: ready_ns before the last reset */
};

enum { TS_UNKNOWN = 0, TS_TRACED = 1, TS_IGNORED = 2 };

struct thread_state {
	__u32 traced;        /* TS_*: whether this thread's process is traced */
	__u32 depth;         /* traced API calls in progress on this thread */
	__u32 kind;          /* outermost call: 1 prepare, 2 step, 3 exec */
	__u64 start_ns;
	__u64 a_sql;         /* prepare/exec: SQL text pointer */
	__u64 a_db;          /* prepare/exec: connection */
	__u64 a_ppstmt;      /* prepare: where the statement pointer goes */
	__u64 a_stmt;        /* step: the statement */
	__s32 a_nbyte;       /* prepare: byte count argument */
	__u32 a_utf16;       /* prepare16 */
	__u32 lib_id;
	char trace_id[ST_TRACE_ID_MAX];  /* set by the shim's USDT probes */
	/* fast mode */
	__u64 halt_stmt;     /* sqlite3VdbeHalt in progress for this statement */
	__u64 halt_start;
	__u64 halt_prepare;
	__u64 halt_db;
	__s32 halt_rc;
	__u32 halt_lib;
	__u64 fin_stmt;      /* being finalized: its state moved here */
	struct stmt_state fin_state;
	/* entry-only prepares (cfg->prepare_ret == 0): the program's
	 * sqlite3LockAndPrepare last entered on this thread */
	__u64 lap_sp;        /* stack pointer at its entry; 0: none running */
	__u64 lap_sig[4];    /* the 4 words found there (return address, stack
	                      * arguments, the wrapper's frame): still in place
	                      * while it runs */
	__u64 lap_inner_sp;  /* a nested prepare (SQLite's own) seen inside it */
	__u64 lap_start;
	__u64 lap_sql;
	__u64 lap_db;
	__s32 lap_nbyte;
	__u32 lap_lib;
	__u32 lap_schema;    /* SQLITE_SCHEMA failures seen (SQLite retries one) */
};

struct stmt_key {
	__u32 tgid;
	__u32 pad;
	__u64 stmt;
};


struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} threads SEC(".maps");

/* Statement states. An LRU: in exact mode a finalized statement's state is
 * kept for the next statement at that address (see end_early), and the
 * least recently used states make room when the map is full. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ST_MAX_STMTS);
	__type(key, struct stmt_key);
	__type(value, struct stmt_state);
} stmts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ST_MAX_LIBS);
	__type(key, __u32);
	__type(value, struct st_lib_cfg);
} libs SEC(".maps");

/* Processes the user named with -p alongside -b. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

/* Processes with state in `stmts`, so their exit is reported and their
 * state freed. Sized by --max-targets before load; full = counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} procs SEC(".maps");

/* Connections whose file name was sent (OPEN records), per process. */
struct db_key {
	__u32 tgid;
	__u32 pad;
	__u64 db;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct db_key);
	__type(value, __u8);
} dbs_seen SEC(".maps");

/* Processes refused because `procs` was full, each counted once. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} refused SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Scratch space for building one record (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct st_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);  /* mapped twice by the consumer: counts 8 MiB of RSS */
} rb SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline struct thread_state *thread_get(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct thread_state *ts;

	ts = bpf_task_storage_get(&threads, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ts)
		count(ST_CNT_TASK_FULL);
	return ts;
}

static __always_inline struct st_lib_cfg *lib_cfg(__u32 lib_id)
{
	return bpf_map_lookup_elem(&libs, &lib_id);
}

/* Whether the current process is traced: TS_IGNORED when the filters of -b
 * (or being the tracer) rule it out, TS_TRACED when it is known in `procs`
 * (registered on first sight), TS_UNKNOWN when `procs` is full (asked again
 * next time: room may come). */
static __always_inline __u32 traced(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 one = 1;

	if (tgid == self_tgid)
		return TS_IGNORED;
	if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &tgid))
		return TS_IGNORED;
	if (filter_comm[0]) {
		char comm[ST_COMM_LEN];
		struct task_struct *task = bpf_get_current_task_btf();
		int i;

		BPF_CORE_READ_STR_INTO(&comm, task, group_leader, comm);
		for (i = 0; i < ST_COMM_LEN; i++) {
			if (comm[i] != filter_comm[i])
				return TS_IGNORED;
			if (!comm[i])
				break;
		}
	}
	if (bpf_map_lookup_elem(&procs, &tgid))
		return TS_TRACED;
	if (bpf_map_update_elem(&procs, &tgid, &one, BPF_NOEXIST) != 0 &&
	    !bpf_map_lookup_elem(&procs, &tgid)) {
		if (bpf_map_update_elem(&refused, &tgid, &one, BPF_NOEXIST) == 0)
			count(ST_CNT_PROCS_FULL);
		return TS_UNKNOWN;
	}
	return TS_TRACED;
}

/* The calling thread's state when this process is traced (and programs
 * are not no-ops: --probe-only), else NULL: the prologue of every entry
 * program. */
static __always_inline struct thread_state *traced_thread(void)
{
	struct thread_state *ts;

	if (probe_only)
		return NULL;
	ts = thread_get();
	if (!ts)
		return NULL;
	/* The answer is kept per thread (the filters are per process): later
	 * hits skip the lookups. proc_exec forgets it when the thread execs. */
	if (ts->traced == TS_UNKNOWN)
		ts->traced = traced();
	return ts->traced == TS_TRACED ? ts : NULL;
}

static __always_inline struct st_event *event_init(__u32 kind, __u32 lib_id, struct thread_state *ts)
{
	__u32 zero = 0;
	struct st_event *ev = bpf_map_lookup_elem(&scratch, &zero);
	struct task_struct *task;
	__u64 id;

	if (!ev)
		return NULL;
	id = bpf_get_current_pid_tgid();
	ev->pid = id >> 32;
	ev->tid = (__u32)id;
	ev->kind = kind;
	ev->lib_id = lib_id;
	ev->end_ns = bpf_ktime_get_ns();
	ev->duration_ns = 0;
	ev->prepare_ns = 0;
	ev->stmt = 0;
	ev->db = 0;
	ev->rows = 0;
	ev->rc = 0;
	ev->sql_len = 0;
	ev->sql_total = 0;
	ev->err_len = 0;
	ev->sql_enc = ST_ENC_UTF8;
	ev->end = ST_END_STEP;
	ev->rows_unknown = 0;
	ev->err[0] = 0;
	ev->sql[0] = 0;
	if (ts)
		__builtin_memcpy(ev->trace_id, ts->trace_id, sizeof(ev->trace_id));
	else
		ev->trace_id[0] = 0;
	task = bpf_get_current_task_btf();
	BPF_CORE_READ_STR_INTO(&ev->comm, task, group_leader, comm);
	return ev;
}

struct scan_ctx {
	__u64 addr;
	__u32 total;
	__u32 done;
};

/* bpf_loop callback: measures the rest of a string that did not fit, one
 * 4 KiB chunk at a time, into the second scratch slot. */
static long scan_chunk(__u32 i, struct scan_ctx *c)
{
	__u32 one = 1;
	struct st_event *tmp = bpf_map_lookup_elem(&scratch, &one);
	long n;

	if (!tmp)
		return 1;
	n = bpf_probe_read_user_str(tmp->sql, 4096, (void *)c->addr);
	if (n <= 0)
		return 1;
	if (n < 4096) {
		c->total += n - 1;
		c->done = 1;
		return 1;
	}
	c->total += 4095;
	c->addr += 4095;
	return 0;
}

/* Copies the NUL-terminated UTF-8 string at addr into ev->sql, at most
 * maxlen bytes when maxlen >= 0 (SQLite's nByte). Sets sql_len and
 * sql_total (the full length, also when cut). */
static __always_inline void read_sql_str(struct st_event *ev, __u64 addr, long maxlen)
{
	long n;

	if (!addr)
		return;
	n = bpf_probe_read_user_str(ev->sql, sizeof(ev->sql), (void *)addr);
	if (n <= 0) {
		count(ST_CNT_READ_FAULTS);
		ev->sql[0] = 0;
		return;
	}
	n -= 1;  /* without the NUL */
	if (maxlen >= 0 && n > maxlen) {
		n = maxlen;
		ev->sql[n & (ST_SQL_MAX - 1)] = 0;
	}
	ev->sql_len = n;
	ev->sql_total = n;
	if (n == ST_SQL_MAX - 1 && (maxlen < 0 || maxlen > n)) {
		struct scan_ctx c = { .addr = addr + n, .total = n };

		bpf_loop(ST_SCAN_CHUNKS, scan_chunk, &c, 0);
		if (maxlen >= 0 && c.total > maxlen)
			c.total = maxlen;
		ev->sql_total = c.total;
	}
}

/* Copies UTF-16LE text (prepare16): nbyte bytes when known, else up to the
 * buffer or the end of the page; user space converts and stops at U+0000. */
static __always_inline void read_sql_utf16(struct st_event *ev, __u64 addr, long nbyte)
{
	__u64 n = nbyte >= 0 ? nbyte : ST_SQL_MAX - 2;

	if (!addr)
		return;
	if (n > ST_SQL_MAX - 2)
		n = ST_SQL_MAX - 2;
	n &= ~1ULL;
	if (bpf_probe_read_user(ev->sql, n & (ST_SQL_MAX - 1), (void *)addr) != 0) {
		n = 4096 - (addr & 4095);
		if (n > ST_SQL_MAX - 2)
			n = ST_SQL_MAX - 2;
		n &= ~1ULL;
		if (bpf_probe_read_user(ev->sql, n & (ST_SQL_MAX - 1), (void *)addr) != 0) {
			count(ST_CNT_READ_FAULTS);
			return;
		}
	}
	ev->sql_enc = ST_ENC_UTF16LE;
	ev->sql_len = n;
	ev->sql_total = nbyte >= 0 ? nbyte : 0;
	ev->sql[n & (ST_SQL_MAX - 1)] = 0;
}

/* Reads a pointer-sized field of a target object; 0 when unknown/faulting. */
static __always_inline __u64 read_field(__u64 obj, int off)
{
	__u64 v = 0;

	if (!obj || off < 0)
		return 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(obj + off)) != 0) {
		count(ST_CNT_READ_FAULTS);
		return 0;
	}
	return v;
}

/* Copies the NUL-terminated message at z (0: none) into ev->err. Returns
 * whether something was copied. */
static __always_inline bool copy_err(struct st_event *ev, __u64 z)
{
	long n = z ? bpf_probe_read_user_str(ev->err, sizeof(ev->err), (void *)z) : 0;

	if (n > 0) {
		ev->err_len = n - 1;
		return true;
	}
	ev->err[0] = 0;
	return false;
}

/* Copies the connection's current error message (db->pErr->z). */
static __always_inline void read_errmsg(struct st_event *ev, struct st_lib_cfg *cfg, __u64 db)
{
	__u64 perr, z;

	if (!cfg || !db)
		return;
	perr = read_field(db, cfg->db_perr_off);
	z = read_field(perr, cfg->mem_z_off);
	copy_err(ev, z);
}

static __always_inline void submit(struct st_event *ev);
static __always_inline void ensure_db_name(struct st_lib_cfg *cfg, __u64 db, struct thread_state *ts);

/* The record of a call (a failed prepare, an sqlite3_exec) on connection db
 * that began at start and returned rc; the caller adds text and error. */
static __always_inline struct st_event *call_event(__u32 kind, __u32 lib_id, struct thread_state *ts,
						   __u64 db, __u64 start, int rc)
{
	struct st_event *ev;

	ensure_db_name(lib_cfg(lib_id), db, ts);
	ev = event_init(kind, lib_id, ts);
	if (!ev)
		return NULL;
	ev->duration_ns = ev->end_ns - start;
	ev->db = db;
	ev->rc = rc;
	if (kind == ST_EV_PREPARE_FAIL)
		ev->prepare_ns = ev->duration_ns;
	return ev;
}

/* The first time a connection is seen (it was opened before we attached),
 * follows SQLite's structures to its file name and sends an OPEN record,
 * so the name is known even if the process is gone when user space reads
 * the records. Must run before the caller builds its own record (it uses
 * the same scratch slot). */
static __always_inline void ensure_db_name(struct st_lib_cfg *cfg, __u64 db, struct thread_state *ts)
{
	struct db_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .db = db };
	struct st_event *ev;
	__u64 p;
	__u8 one = 1;

	if (!cfg || !db || cfg->db_adb_off < 0 || cfg->pager_zfile_off < 0)
		return;
	if (bpf_map_lookup_elem(&dbs_seen, &key))
		return;
	bpf_map_update_elem(&dbs_seen, &key, &one, BPF_ANY);
	p = read_field(db, cfg->db_adb_off);      /* Db *aDb */
	p = read_field(p, 8);                     /* aDb[0].pBt */
	p = read_field(p, 8);                     /* Btree.pBt */
	p = read_field(p, 0);                     /* BtShared.pPager */
	p = read_field(p, cfg->pager_zfile_off);  /* Pager.zFilename */
	if (!p)
		return;
	ev = event_init(ST_EV_OPEN, 0, ts);
	if (!ev)
		return;
	ev->db = db;
	read_sql_str(ev, p, -1);
	submit(ev);
}

static __always_inline void submit(struct st_event *ev)
{
	__u64 size = offsetof(struct st_event, sql) + (ev->sql_len & (ST_SQL_MAX - 1)) + 1;
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (size > sizeof(*ev))
		size = sizeof(*ev);
	if (bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&rb, ev, size, flags) != 0)
		count(ST_CNT_RB_DROPS);
	else
		count(ST_CNT_EVENTS);
}

/* Whether the function just entered (probe at its first byte, file offset
 * fn_off) returns into SQLite's own code, i.e. SQLite calls its API for
 * itself. */
static __always_inline bool called_by_sqlite(struct pt_regs *ctx, __u64 fn_off)
{
	struct st_lib_cfg *cfg = lib_cfg(bpf_get_attach_cookie(ctx));
	__u64 ret = 0, bias;

	if (!cfg || !fn_off || !cfg->text_hi)
		return false;
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx)) != 0)
		return false;
	bias = PT_REGS_IP(ctx) - fn_off;
	return ret >= cfg->text_lo + bias && ret < cfg->text_hi + bias;
}

/* ---- prepare ------------------------------------------------------------ */

/* Entry of an outermost prepare (kind 1) or open (kind 4): saves what its
 * return probe needs. Nested calls only count depth. */
static __always_inline int call_enter(__u32 kind, __u64 db, __u64 sql, long nbyte, __u64 out_ptr,
				      __u32 utf16, __u64 cookie)
{
	struct thread_state *ts;

	ts = traced_thread();
	if (!ts)
		return 0;
	if (ts->depth++ > 0)
		return 0;  /* SQLite calling its API for itself inside another call */
	ts->kind = kind;
	ts->start_ns = bpf_ktime_get_ns();
	ts->a_db = db;
	ts->a_sql = sql;
	ts->a_nbyte = nbyte;
	ts->a_ppstmt = out_ptr;
	ts->a_utf16 = utf16;
	ts->lib_id = cookie;
	return 0;
}

static __always_inline int prepare_enter(__u64 db, __u64 sql, long nbyte, __u64 ppstmt, __u32 utf16,
					 __u64 cookie)
{
	return call_enter(1, db, sql, nbyte, ppstmt, utf16, cookie);
}

/* sqlite3_prepare_v2(db, zSql, nByte, ppStmt, pzTail) */
SEC("uprobe")
int BPF_KPROBE(prepare_v2, void *db, const char *sql, int nbyte, void **ppstmt)
{
	return prepare_enter((__u64)db, (__u64)sql, nbyte, (__u64)ppstmt, 0, bpf_get_attach_cookie(ctx));
}

/* sqlite3_prepare_v3(db, zSql, nByte, prepFlags, ppStmt, pzTail) */
SEC("uprobe")
int BPF_KPROBE(prepare_v3, void *db, const char *sql, int nbyte, unsigned int flags, void **ppstmt)
{
	return prepare_enter((__u64)db, (__u64)sql, nbyte, (__u64)ppstmt, 0, bpf_get_attach_cookie(ctx));
}

SEC("uprobe")
int BPF_KPROBE(prepare16_v2, void *db, const void *sql, int nbyte, void **ppstmt)
{
	return prepare_enter((__u64)db, (__u64)sql, nbyte, (__u64)ppstmt, 1, bpf_get_attach_cookie(ctx));
}

SEC("uprobe")
int BPF_KPROBE(prepare16_v3, void *db, const void *sql, int nbyte, unsigned int flags, void **ppstmt)
{
	return prepare_enter((__u64)db, (__u64)sql, nbyte, (__u64)ppstmt, 1, bpf_get_attach_cookie(ctx));
}

/* Whether the prepare noted in ts is still running below stack pointer sp
 * (a deeper frame): the words it was entered with (its return address, its
 * stack arguments and its caller's frame) are all still in place. Forgets it
 * when not. */
static __always_inline bool lap_live(struct thread_state *ts, __u64 sp)
{
	__u64 v[4] = {};

	if (!ts->lap_sp)
		return false;
	if (sp < ts->lap_sp && bpf_probe_read_user(v, sizeof(v), (void *)ts->lap_sp) == 0 &&
	    v[0] == ts->lap_sig[0] && v[1] == ts->lap_sig[1] && v[2] == ts->lap_sig[2] &&
	    v[3] == ts->lap_sig[3])
		return true;
	ts->lap_sp = 0;
	return false;
}

/* Entry-only prepare: notes what a failure record would need. Nothing is
 * kept for a success: the statement's first step finds it. */
static __always_inline int prepare_note(struct pt_regs *ctx, __u64 db, __u64 sql, long nbyte, __u64 cookie)
{
	struct thread_state *ts;
	__u64 sp = PT_REGS_SP(ctx);

	ts = traced_thread();
	if (!ts || ts->depth > 0)
		return 0;  /* inside sqlite3_exec or a step: SQLite's own */
	if (lap_live(ts, sp)) {
		ts->lap_inner_sp = sp;  /* SQLite preparing for itself inside a prepare */
		return 0;
	}
	if (bpf_probe_read_user(ts->lap_sig, sizeof(ts->lap_sig), (void *)sp) != 0)
		return 0;
	ts->lap_sp = sp;
	ts->lap_inner_sp = 0;
	ts->lap_start = bpf_ktime_get_ns();
	ts->lap_sql = sql;
	ts->lap_db = db;
	ts->lap_nbyte = nbyte;
	ts->lap_lib = cookie;
	ts->lap_schema = 0;
	return 0;
}

/* sqlite3ErrorWithMsg(db, rc, zFormat, ...): where a failing prepare leaves
 * its error on the connection: sqlite3Prepare calls it with "%s" and its
 * Parse's zErrMsg, the Parse db->pParse points to. Only reached on errors,
 * so probing it costs nothing while statements succeed. Other callers
 * (sqlite3_table_column_metadata, which the rtree module calls inside a
 * prepare, for one) pass another message and are not a prepare's failure.
 * Reported when the program's own prepare on that connection is running on
 * this thread and no nested prepare of SQLite's is; SQLite retries a prepare
 * once after SQLITE_SCHEMA (and after SQLITE_ERROR_RETRY), so those wait for
 * the outcome of the retry. */
SEC("uprobe")
int BPF_KPROBE(prepare_error, void *db, int rc, const char *fmt, const char *arg)
{
	__u64 sp = PT_REGS_SP(ctx), pparse;
	struct thread_state *ts;
	struct st_lib_cfg *cfg;
	struct st_event *ev;
	char f[3] = {};

	ts = traced_thread();
	if (!ts || ts->depth > 0 || rc == 0 || !lap_live(ts, sp) || (__u64)db != ts->lap_db)
		return 0;
	cfg = lib_cfg(ts->lap_lib);
	if (!cfg || bpf_probe_read_user(f, sizeof(f), fmt) != 0 || f[0] != '%' || f[1] != 's' || f[2])
		return 0;
	pparse = read_field((__u64)db, cfg->db_pparse_off);
	if (!pparse || read_field(pparse, 8) != (__u64)arg)
		return 0;  /* not sqlite3Prepare's own report */
	if (ts->lap_inner_sp && sp < ts->lap_inner_sp)
		return 0;  /* the failure of a nested prepare of SQLite's */
	if (rc == SQLITE_ERROR_RETRY || ((rc & 0xff) == SQLITE_SCHEMA && ts->lap_schema++ == 0))
		return 0;
	ev = call_event(ST_EV_PREPARE_FAIL, ts->lap_lib, ts, ts->lap_db, ts->lap_start, rc);
	if (!ev)
		return 0;
	read_sql_str(ev, ts->lap_sql, ts->lap_nbyte);
	copy_err(ev, (__u64)arg);
	submit(ev);
	ts->lap_sp = 0;
	return 0;
}

/* sqlite3LockAndPrepare(db, zSql, nBytes, prepFlags, pOld, ppStmt, pzTail):
 * SQLite's internal prepare, called by every prepare variant (prepare16 with
 * the text already converted to UTF-8); probed instead of the API when found. */
SEC("uprobe")
int BPF_KPROBE(lock_and_prepare, void *db, const char *sql, int nbyte)
{
	__u64 ppstmt = ctx->r9;  /* sixth argument */
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct st_lib_cfg *cfg = lib_cfg(cookie);

	if (!cfg || cfg->prepare_ret)
		return prepare_enter((__u64)db, (__u64)sql, nbyte, ppstmt, 0, cookie);
	return prepare_note(ctx, (__u64)db, (__u64)sql, nbyte, cookie);
}

SEC("uretprobe")
int BPF_KRETPROBE(prepare_ret, int rc)
{
	if (probe_only)
		return 0;
	struct thread_state *ts = thread_get();
	struct st_lib_cfg *cfg;
	struct st_event *ev;
	__u64 stmt = 0, now;

	if (!ts || ts->depth == 0)
		return 0;
	if (--ts->depth > 0 || ts->kind != 1)
		return 0;
	now = bpf_ktime_get_ns();
	cfg = lib_cfg(ts->lib_id);
	if (ts->a_ppstmt)
		bpf_probe_read_user(&stmt, sizeof(stmt), (void *)ts->a_ppstmt);

	if (rc != 0) {
		ev = call_event(ST_EV_PREPARE_FAIL, ts->lib_id, ts, ts->a_db, ts->start_ns, rc);
		if (!ev)
			return 0;
		if (ts->a_utf16)
			read_sql_utf16(ev, ts->a_sql, ts->a_nbyte);
		else
			read_sql_str(ev, ts->a_sql, ts->a_nbyte);
		read_errmsg(ev, cfg, ts->a_db);
		submit(ev);
		return 0;
	}
	if (!stmt)
		return 0;  /* empty text or only a comment: nothing to run */

	struct stmt_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .stmt = stmt };
	struct stmt_state st = { .prepare_ns = now - ts->start_ns, .db = ts->a_db, .ready_ns = now };

	if (ts->fin_stmt == stmt)
		ts->fin_stmt = 0;  /* the pointer of a finalized statement, reused */

	if (bpf_map_update_elem(&stmts, &key, &st, BPF_ANY) != 0)
		count(ST_CNT_STMT_FULL);

	if (cfg && cfg->learn) {
		ev = event_init(ST_EV_LEARN, ts->lib_id, ts);
		if (!ev)
			return 0;
		ev->stmt = stmt;
		ev->db = ts->a_db;
		if (ts->a_utf16)
			read_sql_utf16(ev, ts->a_sql, ts->a_nbyte);
		else
			read_sql_str(ev, ts->a_sql, ts->a_nbyte);
		submit(ev);
	}
	return 0;
}

/* ---- executions ----------------------------------------------------------- */

/* Sends the record of an execution that just ended, and clears its state. */
static __always_inline void stmt_finish(__u64 stmt, struct stmt_state *st, int rc, __u32 end, __u32 lib_id,
					struct thread_state *ts)
{
	struct st_lib_cfg *cfg = lib_cfg(lib_id);
	struct st_event *ev;

	ensure_db_name(cfg, st->db, ts);
	ev = event_init(ST_EV_STMT, lib_id, ts);
	if (ev) {
		ev->duration_ns = ev->end_ns - st->start_ns;
		ev->prepare_ns = st->prepare_ns;
		ev->stmt = stmt;
		ev->db = st->db;
		ev->rows = st->rows;
		ev->rc = rc;
		ev->end = end;
		if (cfg)
			read_sql_str(ev, read_field(stmt, cfg->vdbe_zsql_off), -1);
		if (rc != 0)
			read_errmsg(ev, cfg, st->db);
		submit(ev);
	}
	st->start_ns = 0;
	st->prepare_ns = 0;
	st->rows = 0;
}

/* sqlite3_step(stmt) */
SEC("uprobe")
int BPF_KPROBE(step_enter, void *pstmt)
{
	struct thread_state *ts;
	__u64 stmt = (__u64)pstmt;
	struct stmt_state *st;
	__u32 lib_id;

	ts = traced_thread();
	if (!ts)
		return 0;
	if (ts->depth++ > 0)
		return 0;
	lib_id = bpf_get_attach_cookie(ctx);
	if (ts->lap_sp && lap_live(ts, PT_REGS_SP(ctx))) {
		struct st_lib_cfg *cfg = lib_cfg(lib_id);

		/* Entry-only prepares leave depth at 0 while they run: a step
		 * SQLite makes inside one (STAT4 statistics being loaded) is
		 * told by its caller. (A program's callback may step too.) */
		if (cfg && called_by_sqlite(ctx, cfg->step_off)) {
			ts->kind = 0;  /* step_ret only balances depth */
			return 0;
		}
	}
	ts->kind = 2;
	ts->a_stmt = stmt;
	ts->lib_id = lib_id;

	struct stmt_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .stmt = stmt };

	st = bpf_map_lookup_elem(&stmts, &key);
	if (!st) {
		/* First seen: prepared by an entry-only prepare, or before we
		 * attached. Its connection is read below. */
		struct stmt_state fresh = {};

		if (bpf_map_update_elem(&stmts, &key, &fresh, BPF_NOEXIST) != 0) {
			count(ST_CNT_STMT_FULL);
			return 0;
		}
		st = bpf_map_lookup_elem(&stmts, &key);
		if (!st)
			return 0;
	}
	if (st->start_ns == 0) {
		if (!st->db) {
			struct st_lib_cfg *cfg = lib_cfg(lib_id);

			if (cfg)
				st->db = read_field(stmt, cfg->vdbe_db_off);
		}
		st->start_ns = bpf_ktime_get_ns();
		st->rows = 0;
	}
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(step_ret, int rc)
{
	if (probe_only)
		return 0;
	struct thread_state *ts = thread_get();
	struct stmt_state *st;

	if (!ts || ts->depth == 0)
		return 0;
	if (--ts->depth > 0 || ts->kind != 2)
		return 0;

	struct stmt_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .stmt = ts->a_stmt };

	st = bpf_map_lookup_elem(&stmts, &key);
	if (!st) {
		count(ST_CNT_STMT_FULL);  /* evicted while running: lost */
		return 0;
	}
	if (st->start_ns == 0)
		return 0;
	if ((rc & 0xff) == SQLITE_ROW) {
		st->rows++;
		return 0;
	}
	stmt_finish(ts->a_stmt, st, rc == SQLITE_DONE ? 0 : rc, ST_END_STEP, ts->lib_id, ts);
	return 0;
}

static __always_inline int end_early(struct pt_regs *ctx, __u64 stmt, __u32 end)
{
	struct thread_state *ts;
	struct stmt_state *st;

	ts = traced_thread();
	if (!ts || !stmt)
		return 0;

	struct stmt_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .stmt = stmt };

	st = bpf_map_lookup_elem(&stmts, &key);
	if (ts->depth > 0) {
		/* SQLite cleaning up its own statement, or a callback of the
		 * program's finalizing: no record, but a finalized statement's
		 * state must not carry over to the next one at its address. */
		if (end == ST_END_FINALIZE && st && !fast_mode) {
			st->start_ns = 0;
			st->rows = 0;
			st->prepare_ns = 0;
			st->db = 0;
		}
		return 0;
	}
	if (fast_mode) {
		__u64 now = bpf_ktime_get_ns();

		if (!st) {
			/* Prepared before attach: ready from now on. */
			struct stmt_state fresh = { .ready_ns = now, .prev_ready_ns = now };
			struct st_lib_cfg *cfg = lib_cfg(bpf_get_attach_cookie(ctx));

			if (end == ST_END_FINALIZE)
				return 0;
			if (cfg)
				fresh.db = read_field(stmt, cfg->vdbe_db_off);
			if (bpf_map_update_elem(&stmts, &key, &fresh, BPF_NOEXIST) != 0)
				count(ST_CNT_STMT_FULL);
			return 0;
		}
		/* A halt may follow inside this call (the statement was still
		 * running): it uses prev_ready_ns. */
		st->prev_ready_ns = st->ready_ns;
		st->ready_ns = now;
		if (end == ST_END_FINALIZE) {
			ts->fin_stmt = stmt;
			__builtin_memcpy(&ts->fin_state, st, sizeof(*st));
			bpf_map_delete_elem(&stmts, &key);
		}
		return 0;
	}
	if (!st)
		return 0;
	if (st->start_ns != 0)
		stmt_finish(stmt, st, 0, end, bpf_get_attach_cookie(ctx), ts);
	/* A finalized statement's state stays, marked: SQLite's allocator
	 * hands the same address to the next statement more often than not
	 * (a program preparing one statement at a time), which then finds its
	 * state ready and costs no map update; db is read again for it. The
	 * map is an LRU: states nobody uses go first. */
	if (end == ST_END_FINALIZE) {
		st->db = 0;
		st->prepare_ns = 0;
	}
	return 0;
}

/* ---- --mode fast: sqlite3VdbeHalt(Vdbe *p) ---------------------------------- */

SEC("uprobe")
int BPF_KPROBE(halt_enter, void *pstmt)
{
	__u64 stmt = (__u64)pstmt, ret = 0, bias;
	struct thread_state *ts;
	struct st_lib_cfg *cfg;
	struct stmt_state *st;
	bool in_reset;
	__u32 lib_id;
	int rc = 0;

	ts = traced_thread();
	if (!ts || ts->depth > 0 || ts->halt_stmt)
		return 0;  /* inside sqlite3_exec or a prepare: SQLite's own */
	lib_id = bpf_get_attach_cookie(ctx);
	cfg = lib_cfg(lib_id);
	if (!cfg)
		return 0;
	/* Called from sqlite3VdbeReset (a reset or finalize ended the
	 * execution early), or from the VM inside sqlite3_step? */
	bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx));
	bias = PT_REGS_IP(ctx) - cfg->halt_vaddr;
	in_reset = ret >= cfg->reset_lo + bias && ret < cfg->reset_hi + bias;

	struct stmt_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .stmt = stmt };

	st = bpf_map_lookup_elem(&stmts, &key);
	if (!st && ts->fin_stmt == stmt)
		st = &ts->fin_state;
	if (!st)
		return 0;  /* not a statement of the program's */
	ts->halt_start = in_reset ? st->prev_ready_ns : st->ready_ns;
	ts->halt_prepare = st->prepare_ns;
	ts->halt_db = st->db;
	st->prepare_ns = 0;
	if (!ts->halt_start)
		return 0;
	if (cfg->vdbe_rc_off >= 0)
		bpf_probe_read_user(&rc, sizeof(rc), (void *)(stmt + cfg->vdbe_rc_off));
	ts->halt_rc = rc;
	ts->halt_lib = lib_id;
	ts->halt_stmt = stmt;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(halt_ret)
{
	struct thread_state *ts;
	struct st_lib_cfg *cfg;
	struct stmt_state *st;
	struct st_event *ev;
	__u64 stmt;

	if (probe_only)
		return 0;
	ts = thread_get();
	if (!ts || !ts->halt_stmt)
		return 0;
	stmt = ts->halt_stmt;
	ts->halt_stmt = 0;
	cfg = lib_cfg(ts->halt_lib);
	ensure_db_name(cfg, ts->halt_db, ts);
	ev = event_init(ST_EV_STMT, ts->halt_lib, ts);
	if (ev && cfg) {
		ev->duration_ns = ev->end_ns - ts->halt_start;
		ev->prepare_ns = ts->halt_prepare;
		ev->stmt = stmt;
		ev->db = ts->halt_db;
		ev->rc = (ts->halt_rc & 0xff) == SQLITE_DONE ? 0 : ts->halt_rc;
		ev->rows_unknown = 1;
		read_sql_str(ev, read_field(stmt, cfg->vdbe_zsql_off), -1);
		if (ev->rc && !copy_err(ev, read_field(stmt, cfg->vdbe_zerrmsg_off)))
			read_errmsg(ev, cfg, ts->halt_db);
		submit(ev);
	}
	if (ts->fin_stmt == stmt) {
		ts->fin_stmt = 0;
		return 0;
	}

	struct stmt_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .stmt = stmt };

	st = bpf_map_lookup_elem(&stmts, &key);
	if (st)
		st->ready_ns = bpf_ktime_get_ns();
	return 0;
}

/* sqlite3_reset(stmt) */
SEC("uprobe")
int BPF_KPROBE(reset_enter, void *stmt)
{
	return end_early(ctx, (__u64)stmt, ST_END_RESET);
}

/* sqlite3_finalize(stmt) */
SEC("uprobe")
int BPF_KPROBE(finalize_enter, void *stmt)
{
	return end_early(ctx, (__u64)stmt, ST_END_FINALIZE);
}

/* ---- sqlite3_exec ----------------------------------------------------------- */

/* sqlite3_exec(db, zSql, callback, arg, pzErrMsg) */
SEC("uprobe")
int BPF_KPROBE(exec_enter, void *db, const char *sql)
{
	struct st_lib_cfg *cfg = lib_cfg(bpf_get_attach_cookie(ctx));
	struct thread_state *ts;

	ts = traced_thread();
	if (!ts)
		return 0;
	if (ts->depth++ > 0)
		return 0;  /* nested: the outermost call's state stays */
	if (cfg && called_by_sqlite(ctx, cfg->exec_off)) {
		ts->kind = 0;  /* SQLite's own, outermost: exec_ret only balances depth */
		return 0;
	}
	ts->kind = 3;
	ts->start_ns = bpf_ktime_get_ns();
	ts->a_db = (__u64)db;
	ts->a_sql = (__u64)sql;
	ts->lib_id = bpf_get_attach_cookie(ctx);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(exec_ret, int rc)
{
	if (probe_only)
		return 0;
	struct thread_state *ts = thread_get();
	struct st_event *ev;

	if (!ts || ts->depth == 0)
		return 0;
	if (--ts->depth > 0 || ts->kind != 3)
		return 0;
	ev = call_event(ST_EV_EXEC, ts->lib_id, ts, ts->a_db, ts->start_ns, rc);
	if (!ev)
		return 0;
	read_sql_str(ev, ts->a_sql, -1);
	if (rc != 0)
		read_errmsg(ev, lib_cfg(ts->lib_id), ts->a_db);
	submit(ev);
	return 0;
}

/* ---- the shim's USDT probes (shim/sqltrace.c) ----------------------------- */

/* sqltrace:set_trace_id(const char *id, size_t len): the calling thread's
 * trace id from now on. */
SEC("usdt")
int BPF_USDT(shim_set, const char *id, long len)
{
	struct thread_state *ts;

	ts = traced_thread();
	if (!ts)
		return 0;
	if (bpf_probe_read_user_str(ts->trace_id, sizeof(ts->trace_id), id) <= 0) {
		ts->trace_id[0] = 0;
		count(ST_CNT_READ_FAULTS);
	}
	return 0;
}

/* sqltrace:clear_trace_id(): no trace id from now on. */
SEC("usdt")
int BPF_USDT(shim_clear)
{
	struct thread_state *ts;

	ts = traced_thread();
	if (ts)
		ts->trace_id[0] = 0;
	return 0;
}

/* ---- sqlite3_open*: which file a connection uses -------------------------- */

static __always_inline int open_enter(__u64 filename, __u64 ppdb, __u32 utf16, __u64 cookie)
{
	return call_enter(4, 0, filename, -1, ppdb, utf16, cookie);
}

/* sqlite3_open(filename, ppDb) and sqlite3_open_v2(filename, ppDb, flags, zVfs) */
SEC("uprobe")
int BPF_KPROBE(open_utf8, const char *filename, void **ppdb)
{
	return open_enter((__u64)filename, (__u64)ppdb, 0, bpf_get_attach_cookie(ctx));
}

/* sqlite3_open16(filename, ppDb) */
SEC("uprobe")
int BPF_KPROBE(open_utf16, const void *filename, void **ppdb)
{
	return open_enter((__u64)filename, (__u64)ppdb, 1, bpf_get_attach_cookie(ctx));
}

SEC("uretprobe")
int BPF_KRETPROBE(open_ret, int rc)
{
	struct thread_state *ts;
	struct st_event *ev;
	__u64 db = 0;

	if (probe_only)
		return 0;
	ts = thread_get();
	if (!ts || ts->depth == 0)
		return 0;
	if (--ts->depth > 0 || ts->kind != 4)
		return 0;
	if (!ts->a_ppstmt || bpf_probe_read_user(&db, sizeof(db), (void *)ts->a_ppstmt) != 0 || !db)
		return 0;
	{
		struct db_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .db = db };
		__u8 one = 1;

		bpf_map_update_elem(&dbs_seen, &key, &one, BPF_ANY);
	}
	ev = event_init(ST_EV_OPEN, ts->lib_id, ts);
	if (!ev)
		return 0;
	ev->db = db;
	ev->rc = rc;
	if (ts->a_utf16)
		read_sql_utf16(ev, ts->a_sql, -1);
	else
		read_sql_str(ev, ts->a_sql, -1);
	submit(ev);
	return 0;
}

/* ---- processes that come and go ------------------------------------------- */

static __always_inline void proc_event(__u32 kind, __u32 tgid)
{
	struct st_event *ev = event_init(kind, 0, NULL);

	if (!ev)
		return;
	ev->pid = tgid;
	submit(ev);
}

/* The last thread of a known process exits: tell user space, which frees
 * the process's statement state. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;  /* other threads still run */
	if (bpf_map_delete_elem(&procs, &tgid) != 0)
		return 0;  /* never traced */
	proc_event(ST_EV_PROC_EXIT, tgid);
	return 0;
}

/* A known process replaced its program: its statements are gone, and the
 * new program may carry another SQLite. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	/* A new program: nothing of the thread's state holds (calls in
	 * progress, trace id, whether traced: maybe another name). */
	bpf_task_storage_delete(&threads, task);
	if (!bpf_map_lookup_elem(&procs, &tgid) && !(filter_pids && bpf_map_lookup_elem(&pid_filter, &tgid)))
		return 0;
	bpf_map_delete_elem(&procs, &tgid);
	proc_event(ST_EV_PROC_EXEC, tgid);
	return 0;
}
