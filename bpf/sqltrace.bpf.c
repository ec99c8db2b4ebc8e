// SPDX-License-Identifier: GPL-2.0
/* sqltrace.bpf.c — uprobes on SQLite's API that turn each statement
 * execution into one ring buffer record (see docs/data-path.md).
 *
 * No return probe by default. A uretprobe replaces the return address on
 * the stack, which kills a program that switches stacks inside the call
 * (coroutines) and loses the return of a call left by longjmp. Instead:
 *  - a call is the program's own when its return address lies outside
 *    SQLite's code; a call from inside SQLite (the statements of
 *    sqlite3_exec, schema loading, an automatic reset) is SQLite's own and
 *    ignored. Nothing is counted per thread, so no missed event can leave
 *    a thread blind beyond the call it concerns.
 *  - a step's outcome is read from the statement's own state (running =
 *    the step returned a row; halted = DONE or an error, with the result
 *    code and message in the statement) at the next call on it (step,
 *    reset, finalize) or at the next call of the program's on the same
 *    thread, whichever comes first: that call's time is the execution's
 *    end. One probe hit per row, none at return.
 *  - where a return must be seen (sqlite3_exec's end and result, a prepare
 *    timed with --prepare-time, a copy whose statement state is not known),
 *    the function's ret instructions are probed like any instruction and
 *    matched to their entry by the stack pointer, which the kernel cannot
 *    get wrong. --mode return keeps uretprobes instead (cheaper per hit,
 *    for programs that never switch stacks); they are matched the same way.
 * Per statement (LRU hash keyed by tgid+pointer): when its current
 * execution started, rows so far, its connection, the owner process's start
 * time (a reused pid never inherits a dead process's state).
 *
 * By default a prepare is probed at its entry only: the statement it makes
 * is met at its first step, its text read there from the statement, and a
 * failure is caught inside the prepare, at sqlite3ErrorWithMsg. The
 * record's SQL text is read from the statement object itself (Vdbe.zSql)
 * when the execution ends, so statements prepared before the tracer
 * attached carry their text too; the offsets come from user space, per
 * probed SQLite copy, indexed by the uprobe's cookie.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "sqltrace.h"

char LICENSE[] SEC("license") = "GPL";

#define SQLITE_BUSY        5
#define SQLITE_LOCKED      6
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

/* --mode return: uretprobes replace the return address of the calls they
 * probe, so a call in progress cannot be recognised by its return address
 * (call_live): it is taken as running while below it. */
const volatile bool return_mode = false;

/* Who is traced. Probes attached to one process (-p) only fire there; the
 * filters matter for probes attached to a file for every process (-b). */
const volatile __u32 self_tgid = 0;          /* sqltrace-bpf: never traced */
const volatile bool filter_pids = false;     /* only tgids in pid_filter */
const volatile char filter_comm[ST_COMM_LEN] = {};  /* "" or a process name */
const volatile bool by_cgroup = false;       /* --cgroup: cgroup_ids is used */

struct stmt_state {
	__u64 start_ns;      /* 0: not executing */
	__u64 prepare_ns;    /* duration of the prepare, until first execution */
	__u64 rows;
	__u64 db;
	__u64 owner;         /* start time of the process it belongs to */
	__u32 seq;           /* executions started */
	__u32 in_step;       /* thread (tid) of a step entered whose exit was
	                      * not seen yet; 0: none */
};

enum { TS_UNKNOWN = 0, TS_TRACED = 1, TS_IGNORED = 2 };

/* A step whose exit is awaited, by its entry sp (and the return address
 * found there, which stays in place while it runs). */
struct step_slot {
	__u64 sp;
	__u64 ret;
	__u64 stmt;
	__u64 entered;       /* when the step was entered */
	__u32 lib;
	__u32 pad;
};

#define ST_EXEC_SLOTS 2

struct exec_slot {
	__u64 sp;            /* entry sp; 0: free */
	__u64 ret;           /* the return address found there */
	__u64 start;
	__u64 sql;
	__u64 db;
	__u32 lib;
	__u32 pad;
};

struct thread_state {
	__u32 traced;        /* TS_*: whether this thread's process is traced */
	__u32 pend_lib;
	__u64 owner;         /* start time of this thread's process */
	char trace_id[ST_TRACE_ID_MAX];  /* set by the shim's USDT probes */
	/* The statement of the program's last step on this thread and which
	 * of its executions that was: if that step's exit is not seen (a
	 * return path the exit sites miss), its outcome is read at the next
	 * call instead. */
	__u64 pend_stmt;
	__u32 pend_seq;
	__u32 pend_pad;
	/* The program's sqlite3_exec calls in progress (an exec from an
	 * exec's callback, or from another coroutine, makes two) */
	struct exec_slot ex[ST_EXEC_SLOTS];
	/* What a uretprobe (another tool's, or --mode return's) puts in
	 * place of a return address in this process, once seen: such a
	 * call still runs (call_live). */
	__u64 tramp;
	__u32 ex_pad;
	/* A prepare whose return is probed (prepare_ret) */
	__u32 pr_lib;
	__u64 pr_sp;
	__u64 pr_ret;
	__u64 pr_start;
	__u64 pr_sql;
	__u64 pr_db;
	__u64 pr_ppstmt;
	__u64 pr_tail;       /* its pzTail (0: none or not known) */
	__s32 pr_nbyte;
	__u32 pr_utf16;
	/* An open whose connection is read at the next call (ppDb, name) */
	__u64 op_ppdb;
	__u64 op_name;
	__u32 op_utf16;
	__u32 op_lib;
	/* The program's steps in progress (more than one: callbacks and
	 * coroutines step inside a step) */
	struct step_slot st[ST_STEP_SLOTS];
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

/* Statement states. An LRU: a finalized statement's state is kept for the
 * next statement at that address, states of exited processes are never
 * walked (their owner no longer matches, and they are the least recently
 * used), and the least recently used states make room when it is full. */
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

/* Explicit targets whose loads are watched (dl_loaded): an exec stops
 * them too, so the new program is probed before it runs. The value: how
 * (WATCH_STOP, or WATCH_NOTIFY where a stop would be seen: a foreground
 * job of a terminal, a process under a debugger). */
#define WATCH_STOP   1
#define WATCH_NOTIFY 2
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

/* --cgroup: the ids of the (v2) cgroups whose processes are traced, now
 * and later; a process that execs in one of them or below is stopped and
 * told of (proc_exec), so its new program is probed before it runs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ST_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_ids SEC(".maps");

/* Processes the user named with -p alongside -b. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

/* Processes with state in `stmts`, so their exit is reported. Sized by
 * --max-targets before load; full = counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} procs SEC(".maps");

/* Connections whose file name was sent (OPEN records), per process; the
 * value is the owner process's start time. */
struct db_key {
	__u32 tgid;
	__u32 pad;
	__u64 db;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct db_key);
	__type(value, __u64);
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

/* Control records (struct st_ctl): few, small, always read. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 10);
} ctl SEC(".maps");

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

/* The calling thread's state if it exists (return probes never create it). */
static __always_inline struct thread_state *thread_peek(void)
{
	return bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0, 0);
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
	if (ts->traced == TS_UNKNOWN) {
		struct task_struct *task = bpf_get_current_task_btf();

		ts->traced = traced();
		/* The process, and which of its programs (exec): a state left
		 * by an earlier owner of the pid or program never applies. */
		ts->owner = BPF_CORE_READ(task, group_leader, start_time) ^
			    ((__u64)BPF_CORE_READ(task, self_exec_id) * 0x9E3779B97F4A7C15ULL);
	}
	if (ts->traced != TS_TRACED)
		return NULL;
	barrier_var(ts);  /* keep the NULL check on ts itself (verifier) */
	return ts;
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
	__u64 p, *seen;

	if (!cfg || !db || cfg->db_adb_off < 0 || cfg->pager_zfile_off < 0)
		return;
	seen = bpf_map_lookup_elem(&dbs_seen, &key);
	if (seen && *seen == ts->owner)
		return;
	bpf_map_update_elem(&dbs_seen, &key, &ts->owner, BPF_ANY);
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

/* The return address of the call just entered: at rsp, or past what the
 * function pushed before the probed instruction (cookie). */
static __always_inline __u64 entry_sp(struct pt_regs *ctx, __u64 cookie)
{
	return PT_REGS_SP(ctx) + 8 * ST_COOKIE_SPW(cookie);
}

/* Whether the call just entered (an entry probe, cookie) was made by
 * SQLite's own code: its return address lies in SQLite's code range. A
 * range not known counts as the program's. */
static __always_inline bool from_sqlite(struct pt_regs *ctx, struct st_lib_cfg *cfg, __u64 cookie)
{
	__u64 ret = 0, bias;

	if (!cfg || !cfg->text_hi)
		return false;
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)entry_sp(ctx, cookie)) != 0)
		return false;
	bias = PT_REGS_IP(ctx) - ST_COOKIE_OFF(cookie);
	return ret >= cfg->text_lo + bias && ret < cfg->text_hi + bias;
}

/* Whether a call entered at sp0 with return address ret0 is still running
 * under the current stack pointer sp: its frame is above (the stack grows
 * down) and its return address still in place. */
static __always_inline bool call_live(struct thread_state *ts, __u64 sp0, __u64 ret0, __u64 sp)
{
	__u64 v = 0;

	if (!sp0 || sp >= sp0)
		return false;
	if (return_mode)
		return true;
	return bpf_probe_read_user(&v, sizeof(v), (void *)sp0) == 0 &&
	       (v == ret0 || (ts->tramp && v == ts->tramp));
}

/* Inside the program's own sqlite3_exec or sqlite3_step on this thread:
 * what is prepared there is SQLite's (or a callback's). */
static __always_inline bool inside_call(struct thread_state *ts, __u64 sp)
{
	bool in = false;
	int i;

#pragma unroll
	for (i = 0; i < ST_EXEC_SLOTS; i++)
		in = in || call_live(ts, ts->ex[i].sp, ts->ex[i].ret, sp);
#pragma unroll
	for (i = 0; i < ST_STEP_SLOTS; i++)
		in = in || call_live(ts, ts->st[i].sp, ts->st[i].ret, sp);
	return in;
}

/* ---- statements ------------------------------------------------------------ */

/* The state of statement stmt of this process (created when create and
 * missing); a state left by a dead process at a reused pid is cleared. */
static __always_inline struct stmt_state *stmt_get(__u64 stmt, struct thread_state *ts, bool create)
{
	struct stmt_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .stmt = stmt };
	struct stmt_state *st = bpf_map_lookup_elem(&stmts, &key);

	if (!st) {
		struct stmt_state fresh = { .owner = ts->owner };

		if (!create)
			return NULL;
		if (bpf_map_update_elem(&stmts, &key, &fresh, BPF_NOEXIST) != 0 &&
		    !bpf_map_lookup_elem(&stmts, &key)) {
			count(ST_CNT_STMT_FULL);
			return NULL;
		}
		return bpf_map_lookup_elem(&stmts, &key);
	}
	if (st->owner != ts->owner) {
		st->start_ns = st->prepare_ns = st->rows = st->db = 0;
		st->in_step = 0;
		st->owner = ts->owner;
	}
	return st;
}

/* The statement's state byte: 0 ready, 1 running, 2 halted, 3 unknown. */
enum { VS_READY, VS_RUN, VS_HALT, VS_UNKNOWN };

static __always_inline int vdbe_state(struct st_lib_cfg *cfg, __u64 stmt)
{
	__u8 v = 0;

	if (cfg->vdbe_state_off < 0 ||
	    bpf_probe_read_user(&v, sizeof(v), (void *)(stmt + cfg->vdbe_state_off)) != 0)
		return VS_UNKNOWN;
	if (v == cfg->state_run)
		return VS_RUN;
	if (v == cfg->state_halt)
		return VS_HALT;
	if (v == cfg->state_ready)
		return VS_READY;
	return VS_UNKNOWN;
}

static __always_inline int vdbe_rc(struct st_lib_cfg *cfg, __u64 stmt)
{
	int rc = 0;

	if (cfg->vdbe_rc_off >= 0)
		bpf_probe_read_user(&rc, sizeof(rc), (void *)(stmt + cfg->vdbe_rc_off));
	return rc;
}

static __always_inline bool busy_rc(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* Sends the record of an execution that ended at `now` with result rc, and
 * clears its state. The message is the statement's own (Vdbe.zErrMsg, kept
 * until reset), else the connection's. */
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
		if (rc != 0 && cfg && !copy_err(ev, read_field(stmt, cfg->vdbe_zerrmsg_off)))
			read_errmsg(ev, cfg, st->db);
		submit(ev);
	}
	st->start_ns = 0;
	st->prepare_ns = 0;
	st->rows = 0;
}

/* State mode: looks at a running execution of stmt at a call of the
 * program's (end: which call; ST_END_STEP for a later step on it or any
 * other call). Halted: its last step ended it (DONE or an error): finished
 * now. Running: that step returned a row (or BUSY: not a row); a reset or
 * finalize ends it now. Ready: reset by a call not seen: finished now,
 * counted. Returns whether the execution is over. */
static __always_inline bool settle_stmt(__u64 stmt, struct stmt_state *st, __u32 lib, __u32 end, bool other,
					struct thread_state *ts)
{
	struct st_lib_cfg *cfg = lib_cfg(lib);
	int s, rc;

	if (!cfg || !st->start_ns)
		return true;
	s = vdbe_state(cfg, stmt);
	if (other && s == VS_RUN)
		return false;  /* a call elsewhere while it runs or between rows */
	rc = vdbe_rc(cfg, stmt);
	if (cfg->vdbe_resrow_off >= 0) {
		if (read_field(stmt, cfg->vdbe_resrow_off)) {
			if (other)
				return false;
			st->rows++;
			if (end == ST_END_STEP)
				return false;
			stmt_finish(stmt, st, 0, end, lib, ts);
			return true;
		}
		if (s == VS_READY && rc == 0) {
			if (other)
				return false;
			count(ST_CNT_UNSEEN_END);  /* reset by a call not seen */
			stmt_finish(stmt, st, 0, ST_END_RESET, lib, ts);
			return true;
		}
		/* Its last step returned DONE or an error (or was left by
		 * longjmp: no row, ended by this call). */
		stmt_finish(stmt, st, (rc & 0xff) == SQLITE_DONE ? 0 : rc, s == VS_HALT ? ST_END_STEP : end, lib, ts);
		return true;
	}
	if (s == VS_HALT) {
		stmt_finish(stmt, st, (rc & 0xff) == SQLITE_DONE ? 0 : rc, ST_END_STEP, lib, ts);
		return true;
	}
	if (s == VS_RUN) {
		if (!busy_rc(rc))
			st->rows++;
		if (end == ST_END_STEP)
			return false;
		stmt_finish(stmt, st, busy_rc(rc) ? rc : 0, end, lib, ts);
		return true;
	}
	if (other)
		return false;
	count(ST_CNT_UNSEEN_END);
	stmt_finish(stmt, st, 0, ST_END_RESET, lib, ts);
	return true;
}

/* At every call of the program's on this thread, before its own work:
 * the pending step's outcome (state mode) and a pending open's connection. */
static __always_inline void settle_thread(struct thread_state *ts, __u64 except_stmt)
{
	if (ts->pend_stmt && ts->pend_stmt != except_stmt) {
		struct stmt_state *st = stmt_get(ts->pend_stmt, ts, false);

		if (st && st->seq == ts->pend_seq && st->start_ns && st->in_step == (__u32)bpf_get_current_pid_tgid())
			settle_stmt(ts->pend_stmt, st, ts->pend_lib, ST_END_STEP, true, ts);
		ts->pend_stmt = 0;
	}
	if (ts->op_ppdb) {
		struct st_event *ev;
		__u64 db = 0;

		bpf_probe_read_user(&db, sizeof(db), (void *)ts->op_ppdb);
		ts->op_ppdb = 0;
		if (!db)
			return;
		{
			struct db_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .db = db };

			bpf_map_update_elem(&dbs_seen, &key, &ts->owner, BPF_ANY);
		}
		ev = event_init(ST_EV_OPEN, ts->op_lib, ts);
		if (!ev)
			return;
		ev->db = db;
		if (ts->op_utf16)
			read_sql_utf16(ev, ts->op_name, -1);
		else
			read_sql_str(ev, ts->op_name, -1);
		submit(ev);
	}
}

/* The prologue of every entry probe on an API call: the thread's state when
 * this process is traced and the call is the program's (not SQLite's own),
 * with what was pending settled. NULL otherwise. */
static __always_inline struct thread_state *program_call(struct pt_regs *ctx, __u64 cookie, __u64 stmt)
{
	struct thread_state *ts = traced_thread();

	if (!ts || from_sqlite(ctx, lib_cfg(ST_COOKIE_LIB(cookie)), cookie))
		return NULL;
	settle_thread(ts, stmt);
	return ts;
}

/* ---- prepare ------------------------------------------------------------ */

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

/* sqlite3LockAndPrepare(db, zSql, nBytes, prepFlags, pOld, ppStmt, pzTail):
 * SQLite's internal prepare, called by every prepare variant (prepare16
 * with the text already converted to UTF-8). Probed at entry only: it notes
 * what a failure record would need; a success needs nothing (the
 * statement's first step finds it). Always called from inside SQLite (the
 * API wrapper), so whose prepare it is comes from what runs around it: a
 * prepare inside the program's sqlite3_exec or step, or inside another
 * prepare, is SQLite's own. */
SEC("uprobe")
int BPF_KPROBE(lock_and_prepare, void *db, const char *sql, int nbyte)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 sp = PT_REGS_SP(ctx), ret = 0, caller = 0, bias;
	struct st_lib_cfg *cfg = lib_cfg(ST_COOKIE_LIB(cookie));
	struct thread_state *ts;
	int known = 0, own = 0, i;

	ts = traced_thread();
	if (!ts || !cfg)
		return 0;
	/* Called by sqlite3_prepare_v2/_v3: whose prepare it is, is whose
	 * call the wrapper's is (its return address, above its frame). */
	bpf_probe_read_user(&ret, sizeof(ret), (void *)sp);
	bias = PT_REGS_IP(ctx) - ST_COOKIE_OFF(cookie);
#pragma unroll
	for (i = 0; i < 2; i++) {
		if (!known && cfg->wrap_ret[i] && ret == cfg->wrap_ret[i] + bias &&
		    bpf_probe_read_user(&caller, sizeof(caller), (void *)(sp + 8 + cfg->wrap_depth[i])) == 0) {
			known = 1;
			own = cfg->text_hi && caller >= cfg->text_lo + bias && caller < cfg->text_hi + bias;
		}
	}
	if (!known)
		own = inside_call(ts, sp);  /* another caller: SQLite's own if inside the program's call */
	if (own || lap_live(ts, sp)) {
		if (lap_live(ts, sp))
			ts->lap_inner_sp = sp;  /* SQLite preparing for itself inside a prepare */
		return 0;
	}
	settle_thread(ts, 0);
	if (bpf_probe_read_user(ts->lap_sig, sizeof(ts->lap_sig), (void *)sp) != 0)
		return 0;
	ts->lap_sp = sp;
	ts->lap_inner_sp = 0;
	ts->lap_start = bpf_ktime_get_ns();
	ts->lap_sql = (__u64)sql;
	ts->lap_db = (__u64)db;
	ts->lap_nbyte = nbyte;
	ts->lap_lib = ST_COOKIE_LIB(cookie);
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
	if (!ts || rc == 0 || !lap_live(ts, sp) || (__u64)db != ts->lap_db)
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

/* Entry of a prepare whose return is probed (cfg->prepare_ret): an API
 * prepare called by the program (or, in --mode return, the internal one). */
static __always_inline int prepare_enter(struct pt_regs *ctx, __u64 db, __u64 sql, long nbyte, __u64 ppstmt,
					 __u64 tail, __u32 utf16, bool internal)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct thread_state *ts;

	__u64 sp = entry_sp(ctx, cookie), ret = 0;

	if (internal) {
		ts = traced_thread();
		if (!ts || inside_call(ts, sp))
			return 0;
		if (!call_live(ts, ts->pr_sp, ts->pr_ret, sp))
			settle_thread(ts, 0);
	} else {
		ts = program_call(ctx, cookie, 0);
		if (!ts)
			return 0;
	}
	if (call_live(ts, ts->pr_sp, ts->pr_ret, sp))
		return 0;  /* inside the program's prepare: SQLite's own */
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp) != 0)
		return 0;
	ts->pr_sp = sp;
	ts->pr_ret = ret;
	ts->pr_start = bpf_ktime_get_ns();
	ts->pr_db = db;
	ts->pr_sql = sql;
	ts->pr_nbyte = nbyte;
	ts->pr_ppstmt = ppstmt;
	ts->pr_tail = tail;
	ts->pr_utf16 = utf16;
	ts->pr_lib = ST_COOKIE_LIB(cookie);
	return 0;
}

/* sqlite3_prepare_v2(db, zSql, nByte, ppStmt, pzTail) */
SEC("uprobe")
int BPF_KPROBE(prepare_v2, void *db, const char *sql, int nbyte, void **ppstmt)
{
	return prepare_enter(ctx, (__u64)db, (__u64)sql, nbyte, (__u64)ppstmt, PT_REGS_PARM5(ctx), 0, false);
}

/* sqlite3_prepare_v3(db, zSql, nByte, prepFlags, ppStmt, pzTail) */
SEC("uprobe")
int BPF_KPROBE(prepare_v3, void *db, const char *sql, int nbyte, unsigned int flags, void **ppstmt)
{
	return prepare_enter(ctx, (__u64)db, (__u64)sql, nbyte, (__u64)ppstmt, ctx->r9, 0, false);
}

SEC("uprobe")
int BPF_KPROBE(prepare16_v2, void *db, const void *sql, int nbyte, void **ppstmt)
{
	return prepare_enter(ctx, (__u64)db, (__u64)sql, nbyte, (__u64)ppstmt, PT_REGS_PARM5(ctx), 1, false);
}

SEC("uprobe")
int BPF_KPROBE(prepare16_v3, void *db, const void *sql, int nbyte, unsigned int flags, void **ppstmt)
{
	return prepare_enter(ctx, (__u64)db, (__u64)sql, nbyte, (__u64)ppstmt, ctx->r9, 1, false);
}

/* --mode return: sqlite3LockAndPrepare's entry, its return probed. */
SEC("uprobe")
int BPF_KPROBE(lock_and_prepare_ret, void *db, const char *sql, int nbyte)
{
	return prepare_enter(ctx, (__u64)db, (__u64)sql, nbyte, ctx->r9 /* sixth argument */, 0, 0, true);
}

/* Learning (see ST_LEARN_WORDS): which of the statement's first words are
 * its connection and which point to a copy of its text, looked at while it
 * surely lives (the program may finalize it before user space could). */
static __always_inline void learn_words(struct st_event *ev, __u64 stmt, __u64 db, __u64 sql, bool match)
{
	__u64 head = 0;
	int i;

	ev->rows = 0;
	ev->duration_ns = 0;
	if (!stmt || (match && bpf_probe_read_user(&head, sizeof(head), (void *)sql) != 0))
		match = false;
	for (i = 0; i < ST_LEARN_WORDS; i++) {
		__u64 w = 0, v = 0;

		if (bpf_probe_read_user(&w, sizeof(w), (void *)(stmt + i * 8)) != 0)
			break;
		if (db && w == db)
			ev->duration_ns |= 1ULL << i;
		else if (match && w >= 4096 && w != sql && bpf_probe_read_user(&v, sizeof(v), (void *)w) == 0 &&
			 v == head)
			ev->rows |= 1ULL << i;
	}
}

/* A prepare returned rc; entered at stack pointer sp0. */
static __always_inline int prepare_done(__u64 sp0, int rc)
{
	struct thread_state *ts;
	struct st_lib_cfg *cfg;
	struct st_event *ev;
	__u64 stmt = 0, now;

	if (probe_only)
		return 0;
	ts = thread_peek();
	if (!ts || !ts->pr_sp || ts->pr_sp != sp0)
		return 0;
	ts->pr_sp = 0;
	now = bpf_ktime_get_ns();
	cfg = lib_cfg(ts->pr_lib);
	if (ts->pr_ppstmt)
		bpf_probe_read_user(&stmt, sizeof(stmt), (void *)ts->pr_ppstmt);

	if (rc != 0) {
		ev = call_event(ST_EV_PREPARE_FAIL, ts->pr_lib, ts, ts->pr_db, ts->pr_start, rc);
		if (!ev)
			return 0;
		if (ts->pr_utf16)
			read_sql_utf16(ev, ts->pr_sql, ts->pr_nbyte);
		else
			read_sql_str(ev, ts->pr_sql, ts->pr_nbyte);
		read_errmsg(ev, cfg, ts->pr_db);
		submit(ev);
		return 0;
	}
	if (!stmt)
		return 0;  /* empty text or only a comment: nothing to run */

	{
		struct stmt_state *st = stmt_get(stmt, ts, true);

		if (st) {
			st->start_ns = 0;
			st->rows = 0;
			st->prepare_ns = now - ts->pr_start;
			st->db = ts->pr_db;
		}
	}
	if (cfg && cfg->learn) {
		/* The statement's own text: up to where SQLite left *pzTail (a
		 * string of several statements is prepared one at a time),
		 * which is what its zSql holds once the layout is known. */
		__s32 nbyte = ts->pr_nbyte;
		__u64 tail = 0;

		if (ts->pr_tail && bpf_probe_read_user(&tail, sizeof(tail), (void *)ts->pr_tail) == 0 &&
		    tail > ts->pr_sql && tail - ts->pr_sql < (1u << 30) &&
		    (nbyte < 0 || tail - ts->pr_sql <= (__u64)nbyte))
			nbyte = (__s32)(tail - ts->pr_sql);
		ev = event_init(ST_EV_LEARN, ts->pr_lib, ts);
		if (!ev)
			return 0;
		ev->stmt = stmt;
		ev->db = ts->pr_db;
		if (ts->pr_utf16)
			read_sql_utf16(ev, ts->pr_sql, nbyte);
		else
			read_sql_str(ev, ts->pr_sql, nbyte);
		learn_words(ev, stmt, ts->pr_db, ts->pr_sql, !ts->pr_utf16 && (nbyte < 0 || nbyte >= 8));
		submit(ev);
	}
	return 0;
}

/* A uretprobe fires after the return (rsp one word above the entry's); a
 * probe on a ret instruction fires before it (rsp as at entry). */
SEC("uretprobe")
int BPF_KRETPROBE(prepare_ret, int rc)
{
	return prepare_done(PT_REGS_SP(ctx) - 8, rc);
}

SEC("uprobe")
int BPF_KPROBE(prepare_reti)
{
	return prepare_done(PT_REGS_SP(ctx), (int)PT_REGS_RC(ctx));
}

/* ---- executions ----------------------------------------------------------- */

/* A program's step on stmt begins: the statement's running execution goes
 * on, or a new one starts now. */
static __always_inline struct stmt_state *step_begin(struct stmt_state *st, __u64 stmt, __u32 lib_id,
						     __u64 now)
{
	if (st->start_ns == 0) {
		if (!st->db) {
			struct st_lib_cfg *cfg = lib_cfg(lib_id);

			if (cfg)
				st->db = read_field(stmt, cfg->vdbe_db_off);
		}
		st->start_ns = now;
		st->rows = 0;
		st->seq++;
	}
	return st;
}

/* Keeps the step entered at sp (return address ret) in a free slot: an
 * empty one, one at the same sp (a call there now cannot still run), or one
 * whose return address is gone (it returned unseen or was left by
 * longjmp); when all hold running calls, the first is taken over. */
static __always_inline void slot_push(struct thread_state *ts, __u64 sp, __u64 ret, __u64 stmt, __u32 lib,
				      __u64 now)
{
	int i, k = -1;

#pragma unroll
	for (i = 0; i < ST_STEP_SLOTS; i++)
		if (k < 0 && (!ts->st[i].sp || ts->st[i].sp == sp))
			k = i;
	if (k < 0) {
#pragma unroll
		for (i = 0; i < ST_STEP_SLOTS; i++) {
			__u64 v = 0;

			if (k < 0 && !return_mode &&
			    (bpf_probe_read_user(&v, sizeof(v), (void *)ts->st[i].sp) != 0 ||
			     (v != ts->st[i].ret && v != ts->tramp)))
				k = i;
		}
	}
	if (k < 0) {
		count(ST_CNT_SLOTS_FULL);
		k = 0;
	}
	if (k >= 0 && k < ST_STEP_SLOTS) {
		ts->st[k].sp = sp;
		ts->st[k].ret = ret;
		ts->st[k].stmt = stmt;
		ts->st[k].lib = lib;
		ts->st[k].entered = now;
	}
}

/* sqlite3_step(stmt) */
SEC("uprobe")
int BPF_KPROBE(step_enter, void *pstmt)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 lib_id = ST_COOKIE_LIB(cookie);
	__u64 stmt = (__u64)pstmt, sp, ret = 0, now;
	struct thread_state *ts;
	struct stmt_state *st;

	ts = program_call(ctx, cookie, stmt);
	if (!ts || !stmt)
		return 0;
	sp = entry_sp(ctx, cookie);
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp) != 0)
		return 0;
	now = bpf_ktime_get_ns();
	st = stmt_get(stmt, ts, true);
	if (!st)
		return 0;
	/* The exit of this thread's previous step on it was not seen: its
	 * outcome is read now (a row, or the end of its execution). Another
	 * thread's step on it (a shared connection) will see its own exit. */
	if (st->in_step == (__u32)bpf_get_current_pid_tgid() && st->start_ns &&
	    !settle_stmt(stmt, st, lib_id, ST_END_STEP, false, ts))
		goto started;
	step_begin(st, stmt, lib_id, now);
started:
	st->in_step = (__u32)bpf_get_current_pid_tgid();
	slot_push(ts, sp, ret, stmt, lib_id, now);
	ts->pend_stmt = stmt;
	ts->pend_seq = st->seq;
	ts->pend_lib = lib_id;
	return 0;
}

/* The step entered at sp0 is leaving: its statement, from its slot. */
static __always_inline __u64 slot_pop(struct thread_state *ts, __u64 sp0, __u32 *lib, __u64 *ret,
				      __u64 *entered)
{
	__u64 stmt = 0;
	int i;

#pragma unroll
	for (i = 0; i < ST_STEP_SLOTS; i++) {
		if (sp0 && ts->st[i].sp == sp0) {
			stmt = ts->st[i].stmt;
			*lib = ts->st[i].lib;
			*ret = ts->st[i].ret;
			*entered = ts->st[i].entered;
			ts->st[i].sp = 0;
		}
	}
	return stmt;
}

/* A step entered at sp0 leaves. use_rc: its result is rc (a ret
 * instruction, a uretprobe); else the outcome is read from the statement:
 * running = a row (or BUSY), halted = the execution's end, with the result
 * the statement holds. */
static __always_inline int step_done(__u64 sp0, int rc, bool use_rc)
{
	struct thread_state *ts;
	struct stmt_state *st;
	struct st_lib_cfg *cfg;
	__u64 stmt, ret0 = 0, v = 0, entered = 0;
	__u32 lib = 0;

	if (probe_only)
		return 0;
	ts = thread_peek();
	if (!ts)
		return 0;
	stmt = slot_pop(ts, sp0, &lib, &ret0, &entered);
	if (!stmt)
		return 0;
	/* Still in the call: a return address not the one it was entered
	 * with is a uretprobe's (another tool's): remember what it looks like. */
	if (!use_rc && bpf_probe_read_user(&v, sizeof(v), (void *)sp0) == 0 && v != ret0)
		ts->tramp = v;
	if (ts->pend_stmt == stmt)
		ts->pend_stmt = 0;
	st = stmt_get(stmt, ts, false);
	if (!st) {
		count(ST_CNT_STMT_FULL);  /* evicted while running: lost */
		return 0;
	}
	/* Another thread's step ended the execution while this one waited
	 * for the connection: this step started the next (SQLite resets a
	 * halted statement), at its entry. */
	if (st->start_ns == 0) {
		st->start_ns = entered;
		st->rows = 0;
		st->seq++;
	}
	cfg = lib_cfg(lib);
	if (!use_rc) {
		if (!cfg)
			return 0;
		rc = vdbe_rc(cfg, stmt);
		if (cfg->vdbe_resrow_off >= 0) {
			/* sqlite3Step sets pResultRow for a row and clears it
			 * for anything else, whatever the state says (EXPLAIN's
			 * DONE leaves it running, a failed re-prepare ready). */
			if (read_field(stmt, cfg->vdbe_resrow_off))
				rc = SQLITE_ROW;
			else
				rc = (rc & 0xff) == SQLITE_DONE || rc == 0 ? SQLITE_DONE : rc;
		} else {
			int s = vdbe_state(cfg, stmt);

			if (s == VS_HALT)
				rc = (rc & 0xff) == SQLITE_DONE || rc == 0 ? SQLITE_DONE : rc;
			else if (s == VS_RUN)
				rc = busy_rc(rc) ? rc : SQLITE_ROW;
			else
				return 0;  /* not ours to say: in_step stays, its next call reads it */
		}
	}
	st->in_step = 0;
	if ((rc & 0xff) == SQLITE_ROW) {
		st->rows++;
		return 0;
	}
	stmt_finish(stmt, st, rc == SQLITE_DONE ? 0 : rc, ST_END_STEP, lib, ts);
	return 0;
}

/* An exit site before sqlite3_step's ret (an instruction the kernel
 * emulates): rsp + the cookie's distance is the entry's rsp. */
SEC("uprobe")
int BPF_KPROBE(step_exit)
{
	return step_done(PT_REGS_SP(ctx) + 8 * ST_COOKIE_SPW(bpf_get_attach_cookie(ctx)), 0, false);
}

/* The register an exit site's cookie names (a callee-saved one the
 * epilogue moves into eax, or rax). */
static __always_inline __u64 reg_value(struct pt_regs *ctx, int idx)
{
	__u64 v = 0;

	/* The registers are read as a copy: the index is not a constant. */
	if (idx < 0 || idx > 20)
		idx = 10;  /* rax */
	bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx + idx * 8);
	return v;
}

static __always_inline int result_reg(struct pt_regs *ctx, int idx)
{
	return (int)reg_value(ctx, idx);
}

/* An exit site where the result is in a register (a copy whose statement
 * layout is not known). */
SEC("uprobe")
int BPF_KPROBE(step_exit_rc)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);

	return step_done(PT_REGS_SP(ctx) + 8 * ST_COOKIE_SPW(cookie), result_reg(ctx, ST_COOKIE_RES(cookie)), true);
}

/* A uretprobe fires after the return (rsp one word above the entry's); a
 * probe on a ret instruction before it (rsp as at entry, result in rax). */
SEC("uretprobe")
int BPF_KRETPROBE(step_ret, int rc)
{
	return step_done(PT_REGS_SP(ctx) - 8, rc, true);
}

SEC("uprobe")
int BPF_KPROBE(step_reti)
{
	return step_done(PT_REGS_SP(ctx), (int)PT_REGS_RC(ctx), true);
}

/* sqlite3_reset / sqlite3_finalize by the program: a running execution
 * ends here (or ended at its last step, state mode). */
static __always_inline int end_early(struct pt_regs *ctx, __u64 stmt, __u32 end)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 lib = ST_COOKIE_LIB(cookie);
	struct thread_state *ts;
	struct st_lib_cfg *cfg;
	struct stmt_state *st;

	ts = program_call(ctx, cookie, stmt);
	if (!ts || !stmt)
		return 0;
	if (ts->pend_stmt == stmt)
		ts->pend_stmt = 0;
	cfg = lib_cfg(lib);
	st = stmt_get(stmt, ts, false);
	if (!cfg)
		return 0;
	if (!st) {
		/* Running, but its state is gone: evicted from the full map. */
		if (vdbe_state(cfg, stmt) == VS_RUN)
			count(ST_CNT_STMT_FULL);
		return 0;
	}
	if (st->start_ns != 0) {
		/* Its last step's exit unseen: read its outcome now. */
		if (!(st->in_step == (__u32)bpf_get_current_pid_tgid() && !cfg->step_ret &&
		      settle_stmt(stmt, st, lib, end, false, ts)))
			if (st->start_ns)
				stmt_finish(stmt, st, 0, end, lib, ts);
	}
	st->in_step = 0;
	/* A finalized statement's state stays, marked: SQLite's allocator
	 * hands the same address to the next statement more often than not
	 * (a program preparing one statement at a time), which then finds its
	 * state ready and costs no map update; db is read again for it. The
	 * map is an LRU: states nobody uses go first. */
	if (end == ST_END_FINALIZE) {
		st->start_ns = 0;
		st->rows = 0;
		st->db = 0;
		st->prepare_ns = 0;
	}
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

/* sqlite3_exec(db, zSql, callback, arg, pzErrMsg) by the program: one
 * record for the whole call at its return (the statements it runs are
 * SQLite's calls, not reported apart). Kept in a slot by entry sp: a free
 * one, one at the same sp, or one whose return address is gone. */
SEC("uprobe")
int BPF_KPROBE(exec_enter, void *db, const char *sql)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct thread_state *ts;
	__u64 sp, ret = 0;
	int i, k = -1;

	ts = program_call(ctx, cookie, 0);
	if (!ts)
		return 0;
	sp = entry_sp(ctx, cookie);
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp) != 0)
		return 0;
#pragma unroll
	for (i = 0; i < ST_EXEC_SLOTS; i++)
		if (k < 0 && (!ts->ex[i].sp || ts->ex[i].sp == sp))
			k = i;
#pragma unroll
	for (i = 0; i < ST_EXEC_SLOTS; i++) {
		__u64 v = 0;

		if (k < 0 && !return_mode &&
		    (bpf_probe_read_user(&v, sizeof(v), (void *)ts->ex[i].sp) != 0 ||
		     (v != ts->ex[i].ret && v != ts->tramp)))
			k = i;
	}
	if (k < 0) {
		count(ST_CNT_SLOTS_FULL);
		k = 0;
	}
	if (k >= 0 && k < ST_EXEC_SLOTS) {
		ts->ex[k].sp = sp;
		ts->ex[k].ret = ret;
		ts->ex[k].start = bpf_ktime_get_ns();
		ts->ex[k].db = (__u64)db;
		ts->ex[k].sql = (__u64)sql;
		ts->ex[k].lib = ST_COOKIE_LIB(cookie);
	}
	return 0;
}

static __always_inline int exec_done(__u64 sp0, int rc)
{
	struct thread_state *ts;
	struct st_event *ev;
	int i, k = -1;

	if (probe_only)
		return 0;
	ts = thread_peek();
	if (!ts || !sp0)
		return 0;
#pragma unroll
	for (i = 0; i < ST_EXEC_SLOTS; i++)
		if (ts->ex[i].sp == sp0)
			k = i;
	if (k < 0 || k >= ST_EXEC_SLOTS)
		return 0;
	ts->ex[k].sp = 0;
	ev = call_event(ST_EV_EXEC, ts->ex[k].lib, ts, ts->ex[k].db, ts->ex[k].start, rc);
	if (!ev)
		return 0;
	read_sql_str(ev, ts->ex[k].sql, -1);
	if (rc != 0)
		read_errmsg(ev, lib_cfg(ts->ex[k].lib), ts->ex[k].db);
	submit(ev);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(exec_ret, int rc)
{
	return exec_done(PT_REGS_SP(ctx) - 8, rc);
}

SEC("uprobe")
int BPF_KPROBE(exec_reti)
{
	return exec_done(PT_REGS_SP(ctx), (int)PT_REGS_RC(ctx));
}

/* ---- the shim's USDT probes (shim/sqltrace.c) ----------------------------- */

/* sqltrace:set_trace_id(const char *id, size_t len): the calling thread's
 * trace id from now on. Attached as a plain uprobe on each probe site
 * (user space reads the notes): the id's register is in the cookie. */
SEC("uprobe")
int BPF_KPROBE(shim_set)
{
	struct thread_state *ts;
	__u64 id;

	ts = traced_thread();
	if (!ts)
		return 0;
	id = reg_value(ctx, ST_COOKIE_RES(bpf_get_attach_cookie(ctx)));
	if (bpf_probe_read_user_str(ts->trace_id, sizeof(ts->trace_id), (void *)id) <= 0) {
		ts->trace_id[0] = 0;
		count(ST_CNT_READ_FAULTS);
	}
	return 0;
}

/* sqltrace:clear_trace_id(): no trace id from now on. */
SEC("uprobe")
int BPF_KPROBE(shim_clear)
{
	struct thread_state *ts;

	ts = traced_thread();
	if (ts)
		ts->trace_id[0] = 0;
	return 0;
}

/* ---- sqlite3_open*: which file a connection uses -------------------------- */

/* The connection is read from *ppDb at the program's next call on this
 * thread (no return probe), with the file name it was opened with. Copies
 * whose connections lead to their file name (db_adb_off) need no open probe. */
static __always_inline int open_enter(struct pt_regs *ctx, __u64 filename, __u64 ppdb, __u32 utf16)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct thread_state *ts = program_call(ctx, cookie, 0);

	if (!ts)
		return 0;
	ts->op_ppdb = ppdb;
	ts->op_name = filename;
	ts->op_utf16 = utf16;
	ts->op_lib = ST_COOKIE_LIB(cookie);
	return 0;
}

/* sqlite3_open(filename, ppDb) and sqlite3_open_v2(filename, ppDb, flags, zVfs) */
SEC("uprobe")
int BPF_KPROBE(open_utf8, const char *filename, void **ppdb)
{
	return open_enter(ctx, (__u64)filename, (__u64)ppdb, 0);
}

/* sqlite3_open16(filename, ppDb) */
SEC("uprobe")
int BPF_KPROBE(open_utf16, const void *filename, void **ppdb)
{
	return open_enter(ctx, (__u64)filename, (__u64)ppdb, 1);
}

/* ---- later loads: the dynamic linker's rendezvous ----------------------- */

#define SIGSTOP_ 19

/* _dl_debug_state(), which the dynamic linker calls when the set of loaded
 * objects changes (before and after mapping them: the second time before
 * their constructors run and before dlopen returns). Probed per explicit
 * target: the process is stopped until user space has looked at what it
 * maps and probed any new SQLite copy, then continued (SIGCONT), so no
 * statement runs through a new copy unseen. The record is reserved first:
 * a process is never stopped without user space being told; the signal is
 * sent before the record is visible, so a continue cannot come first. */
/* Tells user space that process tgid must be looked at, stopping it until
 * then (see dl_loaded). */
static __always_inline void stop_for_scan(__u32 tgid, __u32 tid)
{
	__u8 *how = bpf_map_lookup_elem(&watched, &tgid);
	struct st_ctl *c;

	if (!how)
		return;  /* not (or no longer) a target: never stopped */
	c = bpf_ringbuf_reserve(&ctl, sizeof(*c), 0);
	if (!c) {
		count(ST_CNT_CTL_FULL);
		return;
	}
	c->kind = ST_CTL_LOADED;
	c->pid = tgid;
	c->tid = tid;
	c->pad = *how == WATCH_STOP;
	/* WATCH_NOTIFY (a foreground job of a terminal, a process under a
	 * debugger): told, not stopped, and probed as soon as user space
	 * reads the record. */
	if (*how == WATCH_STOP)
		bpf_send_signal(SIGSTOP_);
	bpf_ringbuf_submit(c, BPF_RB_FORCE_WAKEUP);
}

SEC("uprobe")
int BPF_KPROBE(dl_loaded)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s64 delta = (__s64)bpf_get_attach_cookie(ctx) >> 32;
	__s32 state = 0;

	if (probe_only)
		return 0;
	/* r_debug.r_state (offset 24): RT_CONSISTENT (0) once objects were
	 * added (or removed); RT_ADD (1) before mapping new ones, RT_DELETE
	 * (2) before unmapping: nothing new to probe then. Unknown: stop. */
	if (delta && bpf_probe_read_user(&state, sizeof(state), (void *)(PT_REGS_IP(ctx) + delta + 24)) == 0 &&
	    state != 0)
		return 0;
	stop_for_scan(id >> 32, (__u32)id);
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

/* A thread exits. With a step whose outcome was still to be read, that
 * execution is lost (its memory is gone): counted. The last thread of a
 * known process: tell user space. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct thread_state *ts = bpf_task_storage_get(&threads, task, 0, 0);

	if (ts && ts->pend_stmt) {
		struct stmt_key key = { .tgid = tgid, .stmt = ts->pend_stmt };
		struct stmt_state *st = bpf_map_lookup_elem(&stmts, &key);

		if (st && st->start_ns && st->seq == ts->pend_seq && st->owner == ts->owner)
			count(ST_CNT_UNSETTLED);
		ts->pend_stmt = 0;
	}
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;  /* other threads still run */
	bpf_map_delete_elem(&watched, &tgid);  /* its pid may be reused */
	if (bpf_map_delete_elem(&procs, &tgid) != 0)
		return 0;  /* never traced */
	proc_event(ST_EV_PROC_EXIT, tgid);
	return 0;
}

/* Whether the current task is in a --cgroup cgroup or below one. */
static __always_inline bool in_traced_cgroup(void)
{
	for (int level = 0; level < ST_CGROUP_LEVELS; level++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);

		if (!id)
			break;  /* below the task's own cgroup */
		if (bpf_map_lookup_elem(&cgroup_ids, &id))
			return true;
	}
	return false;
}

/* A process that is not a target yet exec'd in a --cgroup cgroup: stopped
 * until user space made it a target (probed its program, watched its
 * loads) and continued it; as in stop_for_scan, the record is reserved
 * first and the signal sent before it is visible. */
static __always_inline void stop_for_cgroup(__u32 tgid, __u32 tid)
{
	struct st_ctl *c;

	if (tgid == self_tgid || bpf_map_lookup_elem(&watched, &tgid) || !in_traced_cgroup())
		return;
	c = bpf_ringbuf_reserve(&ctl, sizeof(*c), 0);
	if (!c) {
		count(ST_CNT_CTL_FULL);
		return;
	}
	c->kind = ST_CTL_CGROUP;
	c->pid = tgid;
	c->tid = tid;
	c->pad = 1;
	bpf_send_signal(SIGSTOP_);
	bpf_ringbuf_submit(c, BPF_RB_FORCE_WAKEUP);
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
	/* A watched target: stopped before its new program runs, so a SQLite
	 * inside it is probed first. */
	stop_for_scan(tgid, (__u32)bpf_get_current_pid_tgid());
	if (by_cgroup && !probe_only)
		stop_for_cgroup(tgid, (__u32)bpf_get_current_pid_tgid());
	if (!bpf_map_lookup_elem(&procs, &tgid) && !(filter_pids && bpf_map_lookup_elem(&pid_filter, &tgid)))
		return 0;
	bpf_map_delete_elem(&procs, &tgid);
	proc_event(ST_EV_PROC_EXEC, tgid);
	return 0;
}
