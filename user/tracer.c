/* tracer.c — skeleton lifecycle (open → set rodata → load → attach),
 * target resolution, the ring buffer consumer and its event loop.
 *
 * DESIGN. One thread. The BPF side submits records without waking us
 * (BPF_RB_NO_WAKEUP) unless the ring fills past wakeup_bytes; the loop
 * waits in epoll on the ring buffer and one pidfd per target, with a
 * timeout of drain_ms, and drains the ring on every wake-up or timeout, so
 * records reach user space within ~drain_ms at a cost of one wake-up per
 * period instead of one per record. A pidfd becoming readable means that
 * target exited: its statement state is removed from the BPF map, and when
 * no target is left the loop ends by itself. On stop, links are destroyed
 * first (no new records), then the ring is drained to the last record.
 */
#include "tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "event.h"
#include "layout.h"
#include "log.h"
#include "sqltrace.h"
#include "sqltrace.skel.h"
#include "target.h"
#include "traceparent.h"

#define LEARN_CACHE_SLOTS 1024

struct lib {
	char *path;                /* as the target sees it */
	dev_t dev;
	ino_t ino;
	struct st_lib_cfg cfg;
};

struct target {
	int pid;
	int pidfd;
	bool alive;
	char comm[32];
	uint64_t entries;
};

/* Text of statements whose prepare was seen while their copy's layout was
 * still being learned (direct-mapped on pid and statement pointer). */
struct learn_slot {
	uint32_t pid;
	uint64_t stmt;
	char *text;
};

struct tracer {
	struct tracer_opts opts;
	struct sqltrace_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link **links;
	size_t nlinks;
	struct lib libs[ST_MAX_LIBS];
	size_t nlibs;
	struct target *targets;
	size_t ntargets;
	size_t alive;
	int epfd;
	int64_t wall_offset_us;
	struct tracer_stats stats;
	struct learn_slot learn[LEARN_CACHE_SLOTS];
};

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && log_verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && log_verbose < 1)
		return 0;
	if (level == LIBBPF_WARN && log_verbose < 1)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int64_t now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Effective capability check without libcap: CapEff from /proc/self/status. */
static bool has_cap(int cap)
{
	char line[256];
	unsigned long long eff = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return (eff >> cap) & 1;
}

static int check_system(char *err, size_t errlen)
{
	enum { CAP_SYS_ADMIN_ = 21, CAP_SYS_PTRACE_ = 19, CAP_PERFMON_ = 38, CAP_BPF_ = 39 };

	if (!has_cap(CAP_SYS_ADMIN_) && !(has_cap(CAP_BPF_) && has_cap(CAP_PERFMON_))) {
		snprintf(err, errlen, "not enough privileges: run as root (sudo), or grant CAP_BPF, "
			 "CAP_PERFMON and CAP_SYS_PTRACE");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		snprintf(err, errlen, "this kernel has no BTF (/sys/kernel/btf/vmlinux missing): "
			 "CO-RE needs CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	if (access("/sys/bus/event_source/devices/uprobe", F_OK) != 0) {
		snprintf(err, errlen, "this kernel has no uprobe support "
			 "(/sys/bus/event_source/devices/uprobe missing: CONFIG_UPROBE_EVENTS)");
		return -ENOTSUP;
	}
	(void)CAP_SYS_PTRACE_;
	return 0;
}

/* Returns the lib id for a copy, registering it (and its layout) on first
 * sight. -ENOSPC when ST_MAX_LIBS files are already probed. */
static int lib_id_for(struct tracer *t, const struct sqlite_copy *c)
{
	const unsigned char *self_id;
	int self_len, err;
	dev_t self_dev;
	ino_t self_ino;
	struct st_lib_cfg self_cfg;
	struct lib *l;
	size_t i;
	uint32_t key;

	for (i = 0; i < t->nlibs; i++)
		if (t->libs[i].dev == c->dev && t->libs[i].ino == c->ino)
			return (int)i;
	if (t->nlibs >= ST_MAX_LIBS)
		return -ENOSPC;
	l = &t->libs[t->nlibs];
	l->path = strdup(c->path);
	if (!l->path)
		return -ENOMEM;
	l->dev = c->dev;
	l->ino = c->ino;
	err = layout__self(&self_cfg, &self_id, &self_len, &self_dev, &self_ino);
	if (((self_len > 0 && self_len == c->build_id_len &&
	      memcmp(self_id, c->build_id, self_len) == 0) ||
	     (self_dev == c->dev && self_ino == c->ino)) && self_cfg.vdbe_zsql_off >= 0) {
		l->cfg = self_cfg;
		log_verbose("%s: same build as ours, layout calibrated (zSql at %d, db at %d, pErr at %d/%d)%s",
			    c->path, self_cfg.vdbe_zsql_off, self_cfg.vdbe_db_off,
			    self_cfg.db_perr_off, self_cfg.mem_z_off, err ? " (partial)" : "");
	} else {
		l->cfg = (struct st_lib_cfg){ -1, -1, -1, -1, 1 };
		log_verbose("%s: other SQLite build, layout will be learned from its first prepare",
			    c->path);
	}
	key = t->nlibs;
	err = bpf_map__update_elem(t->skel->maps.libs, &key, sizeof(key), &l->cfg, sizeof(l->cfg), BPF_ANY);
	if (err) {
		free(l->path);
		return err;
	}
	return (int)t->nlibs++;
}

static int add_link(struct tracer *t, struct bpf_link *link)
{
	struct bpf_link **grown = realloc(t->links, (t->nlinks + 1) * sizeof(*grown));

	if (!grown) {
		bpf_link__destroy(link);
		return -ENOMEM;
	}
	t->links = grown;
	t->links[t->nlinks++] = link;
	return 0;
}

static int attach_one(struct tracer *t, struct bpf_program *prog, int pid, const char *path,
		      uint64_t off, int lib_id, bool ret, const char *fn, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = (uint64_t)lib_id, .retprobe = ret);
	struct bpf_link *link;
	int e;

	link = bpf_program__attach_uprobe_opts(prog, pid, path, off, &uo);
	if (!link) {
		e = -errno;
		snprintf(err, errlen, "cannot attach %s to %s%s in PID %d: %s", ret ? "uretprobe" : "uprobe",
			 fn, "", pid, strerror(-e));
		return e;
	}
	log_verbose("attached %s%s at %s+0x%" PRIx64 " (PID %d)", fn, ret ? " (return)" : "", path, off, pid);
	return add_link(t, link);
}

static int attach_copy(struct tracer *t, int pid, const struct sqlite_copy *c, char *err, size_t errlen)
{
	struct sqltrace_bpf *s = t->skel;
	struct {
		enum st_fn fn;
		struct bpf_program *entry, *ret;
	} plan[] = {
		{ ST_FN_LOCK_AND_PREPARE, s->progs.lock_and_prepare, s->progs.prepare_ret },
		{ ST_FN_PREPARE_V2, s->progs.prepare_v2, s->progs.prepare_ret },
		{ ST_FN_PREPARE_V3, s->progs.prepare_v3, s->progs.prepare_ret },
		{ ST_FN_PREPARE16_V2, s->progs.prepare16_v2, s->progs.prepare_ret },
		{ ST_FN_PREPARE16_V3, s->progs.prepare16_v3, s->progs.prepare_ret },
		{ ST_FN_STEP, s->progs.step_enter, s->progs.step_ret },
		{ ST_FN_RESET, s->progs.reset_enter, NULL },
		{ ST_FN_FINALIZE, s->progs.finalize_enter, NULL },
		{ ST_FN_EXEC, s->progs.exec_enter, s->progs.exec_ret },
	};
	int lib_id = lib_id_for(t, c), e;
	size_t i;

	if (lib_id < 0) {
		snprintf(err, errlen, "cannot probe %s in PID %d: %s", c->path, pid,
			 lib_id == -ENOSPC ? "too many SQLite files probed" : strerror(-lib_id));
		return lib_id;
	}
	for (i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
		uint64_t off = c->fn_off[plan[i].fn];
		const char *fn = st_fn_names[plan[i].fn];

		if (!off)
			continue;
		if (c->fn_off[ST_FN_LOCK_AND_PREPARE] && plan[i].entry != s->progs.lock_and_prepare &&
		    plan[i].ret == s->progs.prepare_ret)
			continue;  /* every API prepare reaches the internal one */
		e = attach_one(t, plan[i].entry, pid, c->open_path, off, lib_id, false, fn, err, errlen);
		if (!e && plan[i].ret)
			e = attach_one(t, plan[i].ret, pid, c->open_path, off, lib_id, true, fn, err, errlen);
		if (e)
			return e;
	}
	return 0;
}

/* Attaches the shim's two USDT probes found in file path (a library or an
 * executable of process pid). */
static int attach_shim(struct tracer *t, int pid, const char *path, char *err, size_t errlen)
{
	static const struct { const char *name; int set; } probes[] = {
		{ "set_trace_id", 1 }, { "clear_trace_id", 0 },
	};
	size_t i;

	for (i = 0; i < 2; i++) {
		struct bpf_program *prog = probes[i].set ? t->skel->progs.shim_set : t->skel->progs.shim_clear;
		struct bpf_link *link = bpf_program__attach_usdt(prog, pid, path, "sqltrace", probes[i].name, NULL);
		int e;

		if (!link) {
			e = -errno;
			snprintf(err, errlen, "cannot attach to the sqltrace shim's %s probe in %s (PID %d): %s",
				 probes[i].name, path, pid, strerror(-e));
			return e;
		}
		e = add_link(t, link);
		if (e)
			return e;
		log_verbose("attached shim probe sqltrace:%s in %s (PID %d)", probes[i].name, path, pid);
	}
	return 0;
}

static int pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int add_target(struct tracer *t, int pid, char *err, size_t errlen)
{
	struct sqlite_copy *copies = NULL;
	size_t ncopies = 0, nshims = 0, i;
	char **shims = NULL;
	char why[1024];
	struct target *tg;
	int e;

	for (i = 0; i < t->ntargets; i++)
		if (t->targets[i].pid == pid)
			return 0;  /* given twice */
	if (pid <= 0) {
		snprintf(err, errlen, "invalid PID %d", pid);
		return -EINVAL;
	}
	if (kill(pid, 0) != 0 && errno == ESRCH) {
		snprintf(err, errlen, "no such process: PID %d", pid);
		return -ESRCH;
	}
	e = target__scan(pid, &copies, &ncopies,
			 (t->opts.trace_id_from & TRACE_ID_FROM_SHIM) ? &shims : NULL, &nshims,
			 why, sizeof(why));
	if (e) {
		target__free_paths(shims, nshims);
		snprintf(err, errlen, "cannot inspect PID %d: %s", pid, why);
		return e == -ENOENT ? -ESRCH : e;
	}
	if (ncopies == 0) {
		snprintf(err, errlen, "cannot attach to PID %d: %s", pid, why);
		target__free(copies, ncopies);
		target__free_paths(shims, nshims);
		return -ENOENT;
	}
	tg = realloc(t->targets, (t->ntargets + 1) * sizeof(*tg));
	if (!tg) {
		target__free(copies, ncopies);
		target__free_paths(shims, nshims);
		return -ENOMEM;
	}
	t->targets = tg;
	tg = &t->targets[t->ntargets];
	memset(tg, 0, sizeof(*tg));
	tg->pid = pid;
	tg->pidfd = -1;
	if (target__comm(pid, tg->comm, sizeof(tg->comm)) != 0)
		strcpy(tg->comm, "?");
	for (i = 0; i < ncopies; i++) {
		e = attach_copy(t, pid, &copies[i], err, errlen);
		if (e) {
			target__free(copies, ncopies);
			target__free_paths(shims, nshims);
			return e;
		}
		log_verbose("PID %d (%s): probing %s", pid, tg->comm, copies[i].path);
	}
	target__free(copies, ncopies);
	for (i = 0; i < nshims; i++) {
		e = attach_shim(t, pid, shims[i], err, errlen);
		if (e) {
			target__free_paths(shims, nshims);
			return e;
		}
	}
	target__free_paths(shims, nshims);
	tg->pidfd = pidfd_open(pid);
	tg->alive = true;
	if (tg->pidfd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = t->ntargets + 1 };

		epoll_ctl(t->epfd, EPOLL_CTL_ADD, tg->pidfd, &ev);
	} else if (kill(pid, 0) != 0) {
		tg->alive = false;  /* exited while we attached */
	}
	t->ntargets++;
	if (tg->alive)
		t->alive++;
	return 0;
}

static struct learn_slot *learn_slot(struct tracer *t, uint32_t pid, uint64_t stmt)
{
	uint64_t h = (stmt >> 4) ^ ((uint64_t)pid * 0x9E3779B97F4A7C15ULL);

	return &t->learn[(h ^ (h >> 29)) % LEARN_CACHE_SLOTS];
}

static void handle_learn(struct tracer *t, const struct st_event *ev, size_t size)
{
	struct lib *l;
	struct learn_slot *slot;
	size_t len;
	char *text;
	uint32_t key = ev->lib_id;

	if (ev->lib_id >= t->nlibs)
		return;
	l = &t->libs[ev->lib_id];
	text = event__text(ev, size, &len);
	if (!text)
		return;
	if (l->cfg.learn && layout__learn(ev->pid, ev->stmt, ev->db, text, len, &l->cfg) == 0) {
		l->cfg.learn = 0;
		if (bpf_map__update_elem(t->skel->maps.libs, &key, sizeof(key), &l->cfg, sizeof(l->cfg),
					 BPF_ANY) == 0)
			log_verbose("%s: layout learned (zSql at %d, db at %d)", l->path, l->cfg.vdbe_zsql_off,
				    l->cfg.vdbe_db_off);
	}
	/* Keep the text for executions that end before the layout reaches BPF. */
	slot = learn_slot(t, ev->pid, ev->stmt);
	free(slot->text);
	slot->pid = ev->pid;
	slot->stmt = ev->stmt;
	slot->text = text;
}

static struct target *target_of(struct tracer *t, int pid)
{
	size_t i;

	for (i = 0; i < t->ntargets; i++)
		if (t->targets[i].pid == pid)
			return &t->targets[i];
	return NULL;
}

/* Fills the entry's TraceID by the --trace-id-from rule: the shim's id
 * (sanitised: printable ASCII, at most 64 bytes) wins; otherwise a valid
 * sqlcommenter traceparent in the text, whose span id becomes the parent
 * span. A malformed traceparent is ignored. */
static void apply_trace_id(struct tracer *t, const struct st_event *ev, struct st_entry *e)
{
	char id[ST_TRACE_ID_MAX], trace[33], span[17];
	size_t i;

	if (t->opts.trace_id_from & TRACE_ID_FROM_SHIM) {
		for (i = 0; i < ST_TRACE_ID_MAX - 1 && ev->trace_id[i]; i++) {
			unsigned char c = ev->trace_id[i];

			id[i] = c < 0x20 || c >= 0x7f ? '_' : (char)c;
		}
		id[i] = '\0';
		if (i > 0) {
			entry__set_str(&e->trace_id, id);
			return;
		}
	}
	if ((t->opts.trace_id_from & TRACE_ID_FROM_COMMENT) &&
	    traceparent__extract(e->query, strlen(e->query), trace, span) == 0) {
		entry__set_str(&e->trace_id, trace);
		entry__set_str(&e->parent_span_id, span);
	}
}

static int handle_record(void *ctx, void *data, size_t size)
{
	struct tracer *t = ctx;
	const struct st_event *ev = data;
	const char *fallback = NULL, *lib = NULL;
	struct st_entry *e;
	struct target *tg;

	if (size < offsetof(struct st_event, sql)) {
		t->stats.bad_records++;
		return 0;
	}
	if (ev->kind == ST_EV_LEARN) {
		handle_learn(t, ev, size);
		return 0;
	}
	if (ev->kind == ST_EV_STMT && ev->sql_len == 0) {
		struct learn_slot *slot = learn_slot(t, ev->pid, ev->stmt);

		if (slot->text && slot->pid == ev->pid && slot->stmt == ev->stmt)
			fallback = slot->text;
	}
	if (ev->lib_id < t->nlibs)
		lib = t->libs[ev->lib_id].path;
	e = event__to_entry(ev, size, t->wall_offset_us, fallback, lib);
	if (!e) {
		t->stats.bad_records++;
		return 0;
	}
	apply_trace_id(t, ev, e);
	if (e->duration_us < t->opts.min_duration_us) {
		t->stats.filtered++;
		entry__free(e);
		return 0;
	}
	tg = target_of(t, (int)ev->pid);
	if (tg)
		tg->entries++;
	t->stats.entries++;
	t->opts.on_entry(e, t->opts.ctx);
	return 0;
}

/* Removes a dead process's statements from the BPF map. */
static void forget_pid(struct tracer *t, int pid)
{
	int fd = bpf_map__fd(t->skel->maps.stmts);
	struct { uint32_t tgid, pad; uint64_t stmt; } key, next;
	void *prev = NULL;
	size_t removed = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if ((int)next.tgid == pid) {
			bpf_map_delete_elem(fd, &next);
			removed++;
			continue;  /* deleted: restart from the same previous key */
		}
		key = next;
		prev = &key;
	}
	log_verbose("PID %d exited: %zu statement states freed", pid, removed);
}

int tracer__open(const struct tracer_opts *opts, struct tracer **out, char *err, size_t errlen)
{
	struct tracer *t;
	size_t i;
	int e;

	*out = NULL;
	e = check_system(err, errlen);
	if (e)
		return e;
	if (opts->npids == 0) {
		snprintf(err, errlen, "no target: give -p PID");
		return -EINVAL;
	}
	for (i = 0; i < opts->npids; i++) {
		if (opts->pids[i] <= 0) {
			snprintf(err, errlen, "invalid PID %d", opts->pids[i]);
			return -EINVAL;
		}
		if (kill(opts->pids[i], 0) != 0 && errno == ESRCH) {
			snprintf(err, errlen, "no such process: PID %d", opts->pids[i]);
			return -ESRCH;
		}
		if (opts->pids[i] == getpid()) {
			snprintf(err, errlen, "PID %d is sqltrace-bpf itself: tracing its own store writes "
				 "would feed back into itself", opts->pids[i]);
			return -EINVAL;
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->opts = *opts;
	if (!t->opts.trace_id_from)
		t->opts.trace_id_from = TRACE_ID_FROM_BOTH;
	if (t->opts.drain_ms <= 0)
		t->opts.drain_ms = 20;
	t->epfd = -1;
	libbpf_set_print(libbpf_print);

	t->skel = sqltrace_bpf__open();
	if (!t->skel) {
		e = -errno;
		snprintf(err, errlen, "cannot open BPF object: %s", strerror(-e));
		goto fail;
	}
	t->skel->rodata->wakeup_bytes = 4 << 20;
	t->skel->rodata->probe_only = opts->probe_only;
	/* Programs are attached by hand, per target and per file. */
	e = sqltrace_bpf__load(t->skel);
	if (e) {
		snprintf(err, errlen, "cannot load BPF programs: %s (run with -vv for the verifier log)",
			 strerror(-e));
		goto fail;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.rb), handle_record, t, NULL);
	if (!t->rb) {
		e = -errno;
		snprintf(err, errlen, "cannot open the ring buffer: %s", strerror(-e));
		goto fail;
	}
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0) {
		e = -errno;
		snprintf(err, errlen, "epoll_create1: %s", strerror(-e));
		goto fail;
	}
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };

		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(t->rb), &ev) != 0) {
			e = -errno;
			snprintf(err, errlen, "epoll_ctl: %s", strerror(-e));
			goto fail;
		}
	}
	t->wall_offset_us = now_us(CLOCK_REALTIME) - now_us(CLOCK_MONOTONIC);
	for (i = 0; i < opts->npids; i++) {
		e = add_target(t, opts->pids[i], err, errlen);
		if (e)
			goto fail;
	}
	*out = t;
	return 0;
fail:
	tracer__free(t);
	return e < 0 ? e : -EINVAL;
}

static void detach_all(struct tracer *t)
{
	size_t i;

	for (i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);
	free(t->links);
	t->links = NULL;
	t->nlinks = 0;
}

int tracer__run(struct tracer *t, volatile sig_atomic_t *stop)
{
	struct epoll_event evs[16];
	int n, i, ret = 0;

	while (!*stop && t->alive > 0) {
		n = epoll_wait(t->epfd, evs, 16, t->opts.drain_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		/* Drain first: records of a target that just exited are in the
		 * ring before its pidfd fires. */
		ring_buffer__consume(t->rb);
		for (i = 0; i < n; i++) {
			uint64_t idx = evs[i].data.u64;
			struct target *tg;

			if (idx == 0 || idx > t->ntargets)
				continue;
			tg = &t->targets[idx - 1];
			if (!tg->alive)
				continue;
			tg->alive = false;
			t->alive--;
			epoll_ctl(t->epfd, EPOLL_CTL_DEL, tg->pidfd, NULL);
			ring_buffer__consume(t->rb);
			forget_pid(t, tg->pid);
			log_verbose("PID %d (%s) exited", tg->pid, tg->comm);
		}
	}
	detach_all(t);
	ring_buffer__consume(t->rb);
	return ret;
}

void tracer__stats(struct tracer *t, struct tracer_stats *out)
{
	int ncpu = libbpf_num_possible_cpus(), c;
	uint32_t idx;

	*out = t->stats;
	if (ncpu <= 0 || !t->skel)
		return;
	{
		uint64_t vals[ncpu];
		uint64_t sums[ST_CNT_MAX] = {0};

		for (idx = 0; idx < ST_CNT_MAX; idx++) {
			if (bpf_map__lookup_elem(t->skel->maps.counters, &idx, sizeof(idx), vals,
						 sizeof(vals), 0) != 0)
				continue;
			for (c = 0; c < ncpu; c++)
				sums[idx] += vals[c];
		}
		out->rb_drops = sums[ST_CNT_RB_DROPS];
		out->stmt_full = sums[ST_CNT_STMT_FULL] + sums[ST_CNT_TASK_FULL];
		out->read_faults = sums[ST_CNT_READ_FAULTS];
	}
}

void tracer__print_targets(struct tracer *t, FILE *f)
{
	size_t i;

	for (i = 0; i < t->ntargets; i++)
		fprintf(f, "%sPID %d (%s): %" PRIu64, i ? ", " : "", t->targets[i].pid,
			t->targets[i].comm, t->targets[i].entries);
}

void tracer__free(struct tracer *t)
{
	size_t i;

	if (!t)
		return;
	detach_all(t);
	ring_buffer__free(t->rb);
	sqltrace_bpf__destroy(t->skel);
	for (i = 0; i < t->ntargets; i++)
		if (t->targets[i].pidfd >= 0)
			close(t->targets[i].pidfd);
	free(t->targets);
	for (i = 0; i < t->nlibs; i++)
		free(t->libs[i].path);
	for (i = 0; i < LEARN_CACHE_SLOTS; i++)
		free(t->learn[i].text);
	if (t->epfd >= 0)
		close(t->epfd);
	free(t);
}
