// SPDX-License-Identifier: GPL-2.0
/* gosql.bpf.c — statement-level probes on Go's database/sql (a pure-Go
 * driver such as modernc.org/sqlite, or any driver), for Go executables in
 * which no C SQLite is found. One record (struct st_event) per call of
 * DB/Tx/Conn/Stmt Exec*, Query*, QueryRow*, and per failed Prepare*.
 *
 * DESIGN
 * - No uretprobes: Go moves and grows goroutine stacks, which a replaced
 *   return address would break. The entry probe and a probe on each RET
 *   instruction of the function (found by user space) are used instead.
 * - State is per goroutine, keyed by (tgid, g) with g in R14 (Go's ABI):
 *   goroutines move between threads in the middle of a call.
 * - A call's entry and its return are matched by the function (cookie)
 *   and by the depth of the stack pointer below the goroutine's stack top
 *   (g.stack.hi - rsp): Go copies a grown stack so that this distance is
 *   kept. Only the outermost database/sql call of a goroutine is an entry
 *   (DB.Exec calls DB.ExecContext: one entry): a call is inside another
 *   when it is deeper and the other's return address is still in its
 *   slot. A call whose return was never seen (a panic through it) is
 *   replaced by the next call at the same depth or shallower, or deeper
 *   once its slot was overwritten, or, when the layout gives goid, by any
 *   call of another goroutine that reuses the g.
 * - The calls map is a plain hash (never LRU: an evicted call would be an
 *   entry lost unsaid): a call is removed at its return, and one that cannot
 *   be added (the map full) is counted (ST_CNT_STMT_FULL) by the innermost
 *   probed function of the call: a wrapper that calls another probed
 *   function (DB.Exec → DB.ExecContext, cookie GO_COOKIE_WRAPS) leaves the
 *   counting to it, so a lost call counts once. User space removes the
 *   calls of processes that ended (gosql__sweep).
 * - Rows: a Query (or QueryRow) that returns a *Rows opens a row set keyed
 *   by (tgid, *Rows); its record carries the *Rows in db, and user space
 *   holds it (gosql_attach.c). Each (*Rows).Next that returns true counts
 *   one row (the Next in progress is per goroutine, as calls are); the
 *   first (*Rows).close sends an ST_EV_GO_ROWS record with the count and
 *   the time, which completes the held entry. A row set evicted (an LRU:
 *   Rows never closed do not fill it for good) or a Next that could not be
 *   followed leaves the entry with no row count, never without the entry.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sqltrace.h"
#include "gosql.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 wakeup_bytes = 1 << 20;
const volatile char filter_comm[ST_COMM_LEN] = {};  /* "" or a process name (-n with -b) */

struct call_key {
	__u64 g;
	__u32 tgid;
	__u32 pad;
};

struct call {
	__u64 t0;
	__u64 depth;        /* g.stack.hi - rsp at entry */
	__u64 goid;
	__u64 sql;          /* the query string */
	__u64 sql_len;
	__u64 ret;          /* its return address ([rsp] at entry) */
	__u32 fn;           /* cookie's function index */
	__u32 active;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GO_MAX_CALLS);
	__type(key, struct call_key);
	__type(value, struct call);
} calls SEC(".maps");

struct rows_key {
	__u64 rows;         /* the *Rows */
	__u32 tgid;
	__u32 pad;
};

struct rowset {
	__u64 count;        /* Next calls that returned true */
	__u32 broken;       /* a Next not followed: the count is not exact */
	__u32 pad;
};

struct next_call {
	__u64 rows;
	__u64 depth;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GO_MAX_ROWSETS);
	__type(key, struct rows_key);
	__type(value, struct rowset);
} rowsets SEC(".maps");

/* The (*Rows).Next in progress of a goroutine (key as calls'). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GO_MAX_CALLS);
	__type(key, struct call_key);
	__type(value, struct next_call);
} nexts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GO_MAX_COPIES);
	__type(key, __u32);
	__type(value, struct go_cfg);
} cfgs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GO_MAX_ERRTYPES * 4);
	__type(key, struct go_err_key);
	__type(value, struct go_err_rule);
} errtypes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int comm_ok(void)
{
	char comm[ST_COMM_LEN];
	struct task_struct *task;
	int i;

	if (!filter_comm[0])
		return 1;
	task = bpf_get_current_task_btf();
	BPF_CORE_READ_STR_INTO(&comm, task, group_leader, comm);
	for (i = 0; i < ST_COMM_LEN; i++) {
		if (comm[i] != filter_comm[i])
			return 0;
		if (!comm[i])
			break;
	}
	return 1;
}

/* The goroutine's g (R14), its distance below its stack top and its id
 * (0 when the layout has none). Returns 0, or -1 when not on a goroutine
 * stack we can read. */
static __always_inline int goroutine(struct pt_regs *ctx, const struct go_cfg *cfg, __u64 *g, __u64 *depth,
				     __u64 *goid, __u64 *hi_out)
{
	__u64 hi = 0;

	*g = ctx->r14;
	if (!*g || bpf_probe_read_user(&hi, sizeof(hi), (void *)(*g + 8)) != 0 || hi < ctx->sp) {
		count(ST_CNT_READ_FAULTS);
		return -1;
	}
	*depth = hi - ctx->sp;
	*hi_out = hi;
	*goid = 0;
	if (cfg->g_goid_off >= 0 && cfg->g_goid_off < 4096)
		bpf_probe_read_user(goid, sizeof(*goid), (void *)(*g + cfg->g_goid_off));
	return 0;
}

SEC("uprobe")
int go_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), g, depth, goid, hi, slot = 0;
	__u32 copy = GO_COOKIE_COPY(cookie);
	struct go_cfg *cfg = bpf_map_lookup_elem(&cfgs, &copy);
	struct call_key key = {};
	struct call *c, nc = {};

	if (!cfg || !comm_ok() || goroutine(ctx, cfg, &g, &depth, &goid, &hi))
		return 0;
	key.g = g;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	c = bpf_map_lookup_elem(&calls, &key);
	/* A call of this goroutine in progress further up its stack (its
	 * return address still in its slot): this one runs inside it (DB.Exec
	 * → DB.ExecContext), not an entry of its own. A slot overwritten means
	 * that call is gone without its return seen (a panic through it). */
	if (c && c->active && c->goid == goid && depth > c->depth &&
	    bpf_probe_read_user(&slot, sizeof(slot), (void *)(hi - c->depth)) == 0 && slot == c->ret)
		return 0;
	if (bpf_probe_read_user(&nc.ret, sizeof(nc.ret), (void *)ctx->sp) != 0)
		count(ST_CNT_READ_FAULTS);
	nc.t0 = bpf_ktime_get_ns();
	nc.depth = depth;
	nc.goid = goid;
	nc.fn = GO_COOKIE_FN(cookie);
	nc.active = 1;
	switch (GO_COOKIE_ARGS(cookie)) {
	case GO_ARG_CTX_QUERY:
		nc.sql = ctx->di;
		nc.sql_len = ctx->si;
		break;
	case GO_ARG_QUERY:
		nc.sql = ctx->bx;
		nc.sql_len = ctx->cx;
		break;
	default: {
		__u64 s[2] = {};

		if (cfg->stmt_query_off >= 0 &&
		    bpf_probe_read_user(s, sizeof(s), (void *)(ctx->ax + cfg->stmt_query_off)) != 0)
			count(ST_CNT_READ_FAULTS);
		nc.sql = s[0];
		nc.sql_len = s[1];
	}
	}
	if (bpf_map_update_elem(&calls, &key, &nc, BPF_ANY) != 0 && !GO_COOKIE_WRAPS(cookie))
		count(ST_CNT_STMT_FULL);  /* the map full: this call is lost, said */
	return 0;
}

/* The error interface's message into ev->err when its type is one whose
 * message we know how to read; else ev->stmt carries the itab (its address
 * in the file), for user space to name the type. bias: the load bias. */
static __always_inline void read_error(struct st_event *ev, __u32 copy, __u64 itab, __u64 data, __u64 bias)
{
	struct go_err_key k = { .itab = itab - bias, .copy = copy };
	struct go_err_rule *r = bpf_map_lookup_elem(&errtypes, &k);
	__u64 s[2] = {};
	__u32 n;

	ev->rc = 1;
	ev->stmt = itab - bias;
	if (!r || !data || r->msg_off < 0 || r->msg_off > 4096 ||
	    bpf_probe_read_user(s, sizeof(s), (void *)(data + r->msg_off)) != 0 || !s[0])
		return;
	n = s[1] < ST_ERR_MAX - 1 ? (__u32)s[1] : ST_ERR_MAX - 1;
	if (n == 0 || bpf_probe_read_user(ev->err, n & (ST_ERR_MAX - 1), (void *)s[0]) != 0)
		return;
	ev->err[n & (ST_ERR_MAX - 1)] = 0;
	ev->err_len = n;
}

SEC("uprobe")
int go_ret(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), g, depth, goid, hi, itab = 0, data = 0, size, flags;
	__u32 copy = GO_COOKIE_COPY(cookie), zero = 0, n;
	struct go_cfg *cfg = bpf_map_lookup_elem(&cfgs, &copy);
	struct call_key key = {};
	struct st_event *ev;
	struct task_struct *task;
	struct call *found, cs, *c = &cs;

	if (!cfg || goroutine(ctx, cfg, &g, &depth, &goid, &hi))
		return 0;
	key.g = g;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	found = bpf_map_lookup_elem(&calls, &key);
	if (!found || !found->active || found->fn != GO_COOKIE_FN(cookie) || found->depth != depth ||
	    found->goid != goid)
		return 0;  /* a nested call's return, or a call not entered while probed */
	cs = *found;  /* its slot is reused once removed */
	bpf_map_delete_elem(&calls, &key);
	if (GO_COOKIE_RES(cookie) == GO_RES_PREPARE && !ctx->bx)
		return 0;  /* a prepare that succeeded: its executions are the entries */
	ev = bpf_map_lookup_elem(&scratch, &zero);
	if (!ev)
		return 0;
	ev->end_ns = bpf_ktime_get_ns();
	ev->duration_ns = ev->end_ns - c->t0;
	ev->prepare_ns = 0;
	ev->stmt = 0;
	ev->db = 0;
	ev->rows = 0;
	ev->pid = key.tgid;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->kind = ST_EV_STMT;
	ev->rc = 0;
	ev->lib_id = GOSQL_LIB_BASE + copy;
	ev->sql_len = 0;
	ev->sql_total = 0;
	ev->err_len = 0;
	ev->sql_enc = ST_ENC_UTF8;
	ev->end = ST_END_STEP;
	ev->rows_unknown = 1;
	ev->op = GO_COOKIE_RES(cookie) == GO_RES_PREPARE ? ST_OP_AUTO
		 : GO_COOKIE_QUERY(cookie) ? ST_OP_QUERY : ST_OP_EXEC;
	ev->trace_id[0] = 0;
	ev->err[0] = 0;
	task = bpf_get_current_task_btf();
	BPF_CORE_READ_STR_INTO(&ev->comm, task, group_leader, comm);

	switch (GO_COOKIE_RES(cookie)) {
	case GO_RES_EXEC:
		itab = ctx->cx;
		data = ctx->di;
		break;
	case GO_RES_QUERY:
	case GO_RES_PREPARE:
		itab = ctx->bx;
		data = ctx->cx;
		break;
	default: {
		__u64 e[2] = {};

		if (ctx->ax && cfg->row_err_off >= 0 &&
		    bpf_probe_read_user(e, sizeof(e), (void *)(ctx->ax + cfg->row_err_off)) != 0)
			count(ST_CNT_READ_FAULTS);
		itab = e[0];
		data = e[1];
	}
	}
	/* The load bias: where the probe is minus where the file puts it (the
	 * kernel sets ip to the probe's address before calling us). */
	if (itab)
		read_error(ev, copy, itab, data,
			   GO_COOKIE_VADDR(cookie) ? PT_REGS_IP(ctx) - GO_COOKIE_VADDR(cookie) : 0);
	/* Rows returned: counted until closed; the record says which (db). */
	if (!itab && cfg->follow_rows && GO_COOKIE_RES(cookie) != GO_RES_EXEC &&
	    GO_COOKIE_RES(cookie) != GO_RES_PREPARE) {
		struct rows_key rk = { .tgid = key.tgid };
		struct rowset rs = {};

		rk.rows = ctx->ax;
		if (GO_COOKIE_RES(cookie) == GO_RES_ROW) {
			rk.rows = 0;
			if (ctx->ax && cfg->row_rows_off >= 0 &&
			    bpf_probe_read_user(&rk.rows, sizeof(rk.rows), (void *)(ctx->ax + cfg->row_rows_off)) != 0)
				count(ST_CNT_READ_FAULTS);
		}
		if (rk.rows && bpf_map_update_elem(&rowsets, &rk, &rs, BPF_ANY) == 0)
			ev->db = rk.rows;
	}

	n = c->sql_len < ST_SQL_MAX - 1 ? (__u32)c->sql_len : ST_SQL_MAX - 1;
	if (c->sql_len > ST_SQL_MAX - 1)
		ev->sql_total = c->sql_len > 0xffffffffULL ? 0xffffffffU : (__u32)c->sql_len;
	if (n && c->sql && bpf_probe_read_user(ev->sql, n & (ST_SQL_MAX - 1), (void *)c->sql) == 0) {
		ev->sql_len = n;
	} else {
		if (n)
			count(ST_CNT_READ_FAULTS);
		n = 0;
	}
	ev->sql[n & (ST_SQL_MAX - 1)] = 0;

	size = offsetof(struct st_event, sql) + (ev->sql_len & (ST_SQL_MAX - 1)) + 1;
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&rb, ev, size, flags) != 0)
		count(ST_CNT_RB_DROPS);
	else
		count(ST_CNT_EVENTS);
	return 0;
}

/* (*Rows).Next's entry: the Rows (RAX) of a row set, for its return. */
SEC("uprobe")
int go_next_enter(struct pt_regs *ctx)
{
	__u32 copy = GO_COOKIE_COPY(bpf_get_attach_cookie(ctx));
	struct go_cfg *cfg = bpf_map_lookup_elem(&cfgs, &copy);
	struct rows_key rk = {};
	struct call_key key = {};
	struct next_call nc = {};
	struct rowset *rs;
	__u64 g, goid, hi;

	if (!cfg || !ctx->ax)
		return 0;
	rk.rows = ctx->ax;
	rk.tgid = bpf_get_current_pid_tgid() >> 32;
	rs = bpf_map_lookup_elem(&rowsets, &rk);
	if (!rs || goroutine(ctx, cfg, &g, &nc.depth, &goid, &hi))
		return 0;
	key.g = g;
	key.tgid = rk.tgid;
	nc.rows = rk.rows;
	if (bpf_map_update_elem(&nexts, &key, &nc, BPF_ANY) != 0)
		rs->broken = 1;  /* this row not seen: the count is not exact */
	return 0;
}

/* (*Rows).Next's returns: true (AL) is one row. */
SEC("uprobe")
int go_next_ret(struct pt_regs *ctx)
{
	__u32 copy = GO_COOKIE_COPY(bpf_get_attach_cookie(ctx));
	struct go_cfg *cfg = bpf_map_lookup_elem(&cfgs, &copy);
	struct call_key key = {};
	struct rows_key rk = {};
	struct next_call *nc;
	struct rowset *rs;
	__u64 g, depth, goid, hi;

	if (!cfg || goroutine(ctx, cfg, &g, &depth, &goid, &hi))
		return 0;
	key.g = g;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	nc = bpf_map_lookup_elem(&nexts, &key);
	if (!nc || nc->depth != depth)
		return 0;
	rk.rows = nc->rows;
	rk.tgid = key.tgid;
	bpf_map_delete_elem(&nexts, &key);
	if (!(ctx->ax & 0xff))
		return 0;
	rs = bpf_map_lookup_elem(&rowsets, &rk);
	if (rs)
		__sync_fetch_and_add(&rs->count, 1);
	return 0;
}

/* (*Rows).close's entry (every Close, Next's end of rows, Row.Scan, a
 * context's cancellation): the first closes the row set and sends its
 * count. */
SEC("uprobe")
int go_rows_close(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), flags;
	__u32 zero = 0;
	struct rows_key rk = {};
	struct st_event *ev;
	struct rowset *rs;
	__u64 n, broken;

	rk.rows = ctx->ax;
	rk.tgid = bpf_get_current_pid_tgid() >> 32;
	rs = bpf_map_lookup_elem(&rowsets, &rk);
	if (!rk.rows || !rs)
		return 0;
	n = rs->count;
	broken = rs->broken;
	if (bpf_map_delete_elem(&rowsets, &rk) != 0)
		return 0;  /* closed at the same time by another goroutine */
	ev = bpf_map_lookup_elem(&scratch, &zero);
	if (!ev)
		return 0;
	__builtin_memset(ev, 0, offsetof(struct st_event, sql) + 1);
	ev->kind = ST_EV_GO_ROWS;
	ev->end_ns = bpf_ktime_get_ns();
	ev->db = rk.rows;
	ev->rows = n;
	ev->rc = broken ? 1 : 0;
	ev->pid = rk.tgid;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->lib_id = GOSQL_LIB_BASE + GO_COOKIE_COPY(cookie);
	flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	/* Lost (the ring full): its entry is released uncounted, and said so,
	 * by user space. */
	bpf_ringbuf_output(&rb, ev, offsetof(struct st_event, sql) + 1, flags);
	return 0;
}
