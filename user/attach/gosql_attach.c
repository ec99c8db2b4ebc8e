/* gosql_attach.c — the database/sql probe set (see gosql_attach.h): one
 * plan per Go executable (user/find/gosql.c), probes per process or for
 * every process, the record rewrite that names an error's Go type, and the
 * Query entries held until their Rows are closed (their row count). */
#include "gosql_attach.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "gosql.h"
#include "gosql.skel.h"
#include "gosql_find.h"
#include "log.h"
#include "sqltrace.h"

struct go_copy {
	dev_t dev;
	ino_t ino;
	struct gosql_plan plan;
	char *path;
	bool global;               /* probed for every process */
	int *pids;                 /* processes probed (pid-specific) */
	size_t npids;
};

/* A Query entry held until its Rows are closed (ST_EV_GO_ROWS). */
struct held {
	struct st_event *ev;       /* a copy of the record */
	size_t size;
	int64_t since_us;          /* CLOCK_MONOTONIC when held */
};

struct gosql {
	struct gosql_opts opts;
	struct held *held;         /* GOSQL_MAX_HELD slots, ev NULL: free */
	size_t nheld;
	size_t top;                /* slots in use are below it */
	uint64_t rows_uncounted;   /* Query entries sent without their row count */
	struct gosql_bpf *skel;
	bool loaded;               /* programs in the kernel (on first need) */
	struct go_copy copies[GO_MAX_COPIES];
	size_t ncopies;
	struct bpf_link **links;
	size_t nlinks;
	struct st_event *scratch;  /* a record being rewritten */
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int gosql__new(const struct gosql_opts *o, struct gosql **out, char *err, size_t errlen)
{
	struct gosql *g = calloc(1, sizeof(*g));
	int e;

	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->opts = *o;
	g->scratch = malloc(sizeof(*g->scratch));
	g->held = calloc(GOSQL_MAX_HELD, sizeof(*g->held));
	g->skel = gosql_bpf__open();
	if (!g->skel || !g->scratch || !g->held) {
		e = g->skel ? -ENOMEM : -errno;
		snprintf(err, errlen, "cannot open the database/sql BPF programs: %s", strerror(-e));
		gosql__free(g);
		return e;
	}
	if (o->filter_comm)
		strncpy((char *)g->skel->rodata->filter_comm, o->filter_comm, ST_COMM_LEN - 1);
	*out = g;
	return 0;
}

/* Loads the programs into the kernel, the first time a Go executable is
 * to be probed (a tracer that meets none never loads them). */
static int load(struct gosql *g, char *why, size_t whylen)
{
	int e;

	if (g->loaded)
		return 0;
	e = gosql_bpf__load(g->skel);
	if (e) {
		snprintf(why, whylen, "cannot load the database/sql BPF programs: %s (run with -vv for the "
			 "verifier log)", strerror(-e));
		return e;
	}
	g->loaded = true;
	return 0;
}

int gosql__rb_fd(const struct gosql *g)
{
	return g && g->loaded ? bpf_map__fd(g->skel->maps.rb) : -1;
}

const char *gosql__lib(const struct gosql *g, unsigned lib_id)
{
	if (!g || lib_id < GOSQL_LIB_BASE || lib_id - GOSQL_LIB_BASE >= g->ncopies)
		return NULL;
	return g->copies[lib_id - GOSQL_LIB_BASE].plan.lib;
}

/* The held entry of process pid's Rows at rows, or NULL. */
static struct held *held_of(struct gosql *g, unsigned pid, uint64_t rows)
{
	size_t i;

	for (i = 0; i < g->top; i++)
		if (g->held[i].ev && g->held[i].ev->pid == pid && g->held[i].ev->db == rows)
			return &g->held[i];
	return NULL;
}

/* Hands a held entry over (its slot freed), rows counted or not. Returns
 * what the forward callback returned. */
static int release(struct gosql *g, struct held *h, bool counted)
{
	struct st_event *ev = h->ev;
	int e;

	h->ev = NULL;
	g->nheld--;
	while (g->top && !g->held[g->top - 1].ev)
		g->top--;
	if (!counted) {
		ev->rows_unknown = 1;
		g->rows_uncounted++;
	}
	ev->db = 0;
	e = g->opts.forward(g->opts.ctx, ev, h->size);
	free(ev);
	return e;
}

/* A Query record whose Rows are followed (db: the *Rows): held until they
 * are closed. Returns 0 when held, or forwards it uncounted (no free slot,
 * or no memory). */
static int hold(struct gosql *g, const struct st_event *ev, size_t size)
{
	struct held *h = held_of(g, ev->pid, ev->db);
	size_t i;

	/* A Rows never closed whose memory the program reused for this one:
	 * that entry can no longer be completed; the next tick sends it. */
	if (h) {
		h->ev->db = 0;
		h->since_us = 0;
		h = NULL;
	}

	for (i = 0; i < GOSQL_MAX_HELD && g->nheld < GOSQL_MAX_HELD; i++)
		if (!g->held[i].ev) {
			h = &g->held[i];
			break;
		}
	if (h && (h->ev = malloc(size)) != NULL) {
		memcpy(h->ev, ev, size);
		h->size = size;
		h->since_us = mono_us();
		g->nheld++;
		if ((size_t)(h - g->held) >= g->top)
			g->top = (size_t)(h - g->held) + 1;
		return 0;
	}
	memcpy(g->scratch, ev, size);
	g->scratch->db = 0;
	g->scratch->rows_unknown = 1;
	g->rows_uncounted++;
	return g->opts.forward(g->opts.ctx, g->scratch, size);
}

/* A Rows closed: its held entry completed (rows, and its time until the
 * close) and handed over. A close whose entry is gone is dropped. */
static int rows_closed(struct gosql *g, const struct st_event *rec)
{
	struct held *h = held_of(g, rec->pid, rec->db);

	if (!h)
		return 0;
	if (rec->rc)
		return release(g, h, false);
	h->ev->rows = rec->rows;
	h->ev->rows_unknown = 0;
	if (rec->end_ns > h->ev->end_ns) {
		h->ev->duration_ns += rec->end_ns - h->ev->end_ns;
		h->ev->end_ns = rec->end_ns;
	}
	return release(g, h, true);
}

int gosql__tick(struct gosql *g, bool all)
{
	int64_t now = mono_us();
	bool blocked = false;
	size_t i;
	int left = 0;

	if (!g)
		return 0;
	for (i = 0; i < g->top; i++) {
		struct held *h = &g->held[i];

		if (!h->ev)
			continue;
		if (!all && now - h->since_us < GOSQL_HOLD_US &&
		    !(kill((pid_t)h->ev->pid, 0) != 0 && errno == ESRCH))
			continue;  /* not due */
		if (blocked) {
			left++;
			continue;
		}
		if (release(g, h, false) < 0)
			blocked = true;  /* taken, and the tracer waits for room: no more now */
	}
	return left;
}

uint64_t gosql__rows_uncounted(const struct gosql *g)
{
	return g ? g->rows_uncounted : 0;
}

int gosql__record(void *ctx, void *data, size_t size)
{
	struct gosql *g = ctx;
	struct st_event *ev = data;

	if (size < offsetof(struct st_event, sql) || size > sizeof(*ev))
		return g->opts.forward(g->opts.ctx, ev, size);
	if (ev->kind == ST_EV_GO_ROWS)
		return rows_closed(g, ev);
	if (ev->kind == ST_EV_STMT && ev->db && ev->rc == 0)
		return hold(g, ev, size);
	/* The ring buffer's pages are read-only: a record is rewritten in a
	 * copy. Only failures need it (stmt carries the error's itab). */
	if (ev->rc != 0) {
		memcpy(g->scratch, ev, size);
		ev = g->scratch;
		if (ev->err_len == 0) {
			unsigned copy = ev->lib_id - GOSQL_LIB_BASE;
			const char *name = copy < g->ncopies ? gosql__err_name(&g->copies[copy].plan, ev->stmt) : NULL;
			int n;

			/* Never an empty error on failure: at least the Go type. */
			n = snprintf(ev->err, sizeof(ev->err), "Go error %s (message not read)",
				     name ? name : "of an unknown type");
			ev->err_len = (unsigned short)(n < (int)sizeof(ev->err) ? n : (int)sizeof(ev->err) - 1);
		}
		ev->stmt = 0;
		ev->db = 0;
	}
	return g->opts.forward(g->opts.ctx, ev, size);
}

static int add_link(struct gosql *g, struct bpf_link *l)
{
	struct bpf_link **grown = realloc(g->links, (g->nlinks + 1) * sizeof(*grown));

	if (!grown) {
		bpf_link__destroy(l);
		return -ENOMEM;
	}
	g->links = grown;
	g->links[g->nlinks++] = l;
	return 0;
}

static int attach_at(struct gosql *g, struct bpf_program *prog, int pid, const char *path, uint64_t off,
		     uint64_t cookie, const char *fn, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = cookie);
	struct bpf_link *l = bpf_program__attach_uprobe_opts(prog, pid, path, off, &uo);
	int e;

	if (!l) {
		e = -errno;
		snprintf(why, whylen, "cannot attach a uprobe to %s at %s+0x%" PRIx64 " in PID %d: %s", fn, path, off,
			 pid, strerror(-e));
		return e;
	}
	return add_link(g, l);
}

/* The copy of the file dev/ino: found by identity, or made from plan
 * (taken over) and configured on the BPF side. */
static int copy_for(struct gosql *g, const char *path, dev_t dev, ino_t ino, struct gosql_plan *plan,
		    struct go_copy **out, char *why, size_t whylen)
{
	struct go_copy *c;
	uint32_t idx;
	size_t i;
	int e;

	for (i = 0; i < g->ncopies; i++)
		if (g->copies[i].dev == dev && g->copies[i].ino == ino) {
			*out = &g->copies[i];
			return 0;
		}
	if (g->ncopies == GO_MAX_COPIES) {
		snprintf(why, whylen, "too many Go executables probed (%d)", GO_MAX_COPIES);
		return -ENOSPC;
	}
	if (!plan->nprobes) {
		snprintf(why, whylen, "%s: no database/sql plan to probe it by", path);
		return -EINVAL;
	}
	e = load(g, why, whylen);
	if (e)
		return e;
	c = &g->copies[g->ncopies];
	memset(c, 0, sizeof(*c));
	c->path = strdup(path);
	if (!c->path)
		return -ENOMEM;
	c->plan = *plan;
	memset(plan, 0, sizeof(*plan));
	c->dev = dev;
	c->ino = ino;
	idx = (uint32_t)g->ncopies;
	if (bpf_map__update_elem(g->skel->maps.cfgs, &idx, sizeof(idx), &c->plan.cfg, sizeof(c->plan.cfg),
				 BPF_ANY) != 0) {
		e = -errno;
		snprintf(why, whylen, "cannot configure the database/sql probes: %s", strerror(-e));
		*plan = c->plan;  /* handed back: the caller still frees it */
		free(c->path);
		return e;
	}
	for (i = 0; i < c->plan.nerrs; i++) {
		struct go_err_key k = { .itab = c->plan.errs[i].itab, .copy = idx };
		struct go_err_rule r = { .msg_off = c->plan.errs[i].msg_off };

		if (r.msg_off >= 0)
			bpf_map__update_elem(g->skel->maps.errtypes, &k, sizeof(k), &r, sizeof(r), BPF_ANY);
	}
	g->ncopies++;
	log_verbose("%s: a Go program (%s) with no C SQLite: traced at database/sql, %zu functions probed, "
		    "%zu error types named, runtime offsets from %s%s%s", path, c->plan.version, c->plan.nprobes,
		    c->plan.nerrs, c->plan.layout_from, c->plan.notes[0] ? "; " : "", c->plan.notes);
	*out = c;
	return 0;
}

int gosql__attach(struct gosql *g, int pid, const char *path, const char *open_path, dev_t dev, ino_t ino,
		  struct gosql_plan *plan, char *why, size_t whylen)
{
	struct go_copy *c = NULL;
	size_t i, k;
	int e, *grown;

	e = copy_for(g, path, dev, ino, plan, &c, why, whylen);
	if (e)
		return e;
	if (c->global)
		return 0;  /* already probed for every process */
	for (i = 0; i < c->npids; i++)
		if (c->pids[i] == pid)
			return 0;
	for (i = 0; i < c->plan.nprobes; i++) {
		const struct gosql_probe *p = &c->plan.probes[i];
		uint64_t cookie = GO_COOKIE(c - g->copies, i, p->args, p->res, p->query, p->wraps, 0);

		e = attach_at(g, g->skel->progs.go_enter, pid, open_path, p->entry_off,
			      cookie | GO_COOKIE(0, 0, 0, 0, 0, 0, p->entry_vaddr), p->name, why, whylen);
		for (k = 0; !e && k < p->nrets; k++)
			e = attach_at(g, g->skel->progs.go_ret, pid, open_path, p->rets[k],
				      cookie | GO_COOKIE(0, 0, 0, 0, 0, 0, p->ret_vaddrs[k]), p->name, why, whylen);
		if (e)
			return e;
		log_verbose("attached %s at %s+0x%" PRIx64 " (PID %d)%s and its %zu RET instructions%s", p->name,
			    open_path, p->entry_off, pid, p->moved ? ", past the stack check onto its jbe" : "",
			    p->nrets, p->wraps ? " (it calls another probed function)" : "");
	}
	if (c->plan.cfg.follow_rows) {
		const struct gosql_probe *nx = &c->plan.rows_next, *cl = &c->plan.rows_close;
		uint64_t cookie = GO_COOKIE(c - g->copies, 0, 0, 0, 0, 0, 0);

		e = attach_at(g, g->skel->progs.go_next_enter, pid, open_path, nx->entry_off, cookie, nx->name, why,
			      whylen);
		for (k = 0; !e && k < nx->nrets; k++)
			e = attach_at(g, g->skel->progs.go_next_ret, pid, open_path, nx->rets[k], cookie, nx->name,
				      why, whylen);
		if (!e)
			e = attach_at(g, g->skel->progs.go_rows_close, pid, open_path, cl->entry_off, cookie,
				      cl->name, why, whylen);
		if (e)
			return e;
		log_verbose("attached %s and %s (PID %d): rows counted", nx->name, cl->name, pid);
	}
	if (pid < 0) {
		c->global = true;
		return 0;
	}
	grown = realloc(c->pids, (c->npids + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->pids = grown;
	c->pids[c->npids++] = pid;
	return 0;
}

/* The BPF side's key of a call in progress (bpf/gosql.bpf.c). */
struct call_key {
	uint64_t g;
	uint32_t tgid;
	uint32_t pad;
};

/* Removes the keys of ended processes from the map at fd (keys struct
 * call_key). Returns how many. */
static int sweep_map(int fd)
{
	struct call_key key, next, *dead = NULL;
	size_t ndead = 0, cap = 0, i;
	uint32_t last = 0;
	bool last_dead = false;
	int n = 0;

	while (bpf_map_get_next_key(fd, n ? &key : NULL, &next) == 0 && n < GO_MAX_CALLS * 2) {
		key = next;
		n++;
		if (key.tgid != last) {
			last = key.tgid;
			last_dead = kill((pid_t)key.tgid, 0) != 0 && errno == ESRCH;
		}
		if (!last_dead)
			continue;
		if (ndead == cap) {
			struct call_key *grown = realloc(dead, (cap ? cap * 2 : 64) * sizeof(*grown));

			if (!grown)
				break;
			dead = grown;
			cap = cap ? cap * 2 : 64;
		}
		dead[ndead++] = key;
	}
	for (i = 0; i < ndead; i++)
		bpf_map_delete_elem(fd, &dead[i]);
	free(dead);
	return (int)ndead;
}

int gosql__sweep(struct gosql *g)
{
	if (!g || !g->loaded)
		return 0;
	return sweep_map(bpf_map__fd(g->skel->maps.calls)) + sweep_map(bpf_map__fd(g->skel->maps.nexts));
}

uint64_t gosql__counter(const struct gosql *g, unsigned idx)
{
	int ncpu = libbpf_num_possible_cpus(), i;
	uint64_t sum = 0, *vals;

	if (!g || !g->loaded || ncpu <= 0 || idx >= ST_CNT_MAX)
		return 0;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return 0;
	if (bpf_map__lookup_elem(g->skel->maps.counters, &idx, sizeof(idx), vals, (size_t)ncpu * sizeof(*vals), 0) ==
	    0)
		for (i = 0; i < ncpu; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

void gosql__detach(struct gosql *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->nlinks; i++)
		bpf_link__destroy(g->links[i]);
	free(g->links);
	g->links = NULL;
	g->nlinks = 0;
	for (i = 0; i < g->ncopies; i++) {
		g->copies[i].global = false;
		g->copies[i].npids = 0;
	}
}

void gosql__free(struct gosql *g)
{
	size_t i;

	if (!g)
		return;
	gosql__detach(g);
	for (i = 0; i < g->ncopies; i++) {
		gosql__plan_free(&g->copies[i].plan);
		free(g->copies[i].path);
		free(g->copies[i].pids);
	}
	gosql_bpf__destroy(g->skel);
	for (i = 0; i < GOSQL_MAX_HELD && g->held; i++)
		free(g->held[i].ev);
	free(g->held);
	free(g->scratch);
	free(g);
}
