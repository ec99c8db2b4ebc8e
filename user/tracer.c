/* tracer.c — the tracer's lifecycle: the skeleton opened, its rodata set,
 * loaded and attached (probes.c, targets.c), the event loop that drains the
 * ring buffers (records.c) and watches targets exit, stop, counters.
 *
 * DESIGN. One thread. The BPF side submits records without waking us
 * (BPF_RB_NO_WAKEUP) unless the ring fills past wakeup_bytes; the loop
 * waits in epoll on the ring buffer and one pidfd per target, with a
 * timeout of drain_ms, and drains the ring on every wake-up or timeout, so
 * records reach user space within ~drain_ms at a cost of one wake-up per
 * period instead of one per record. When the consumers' queues are full
 * (the store's writer is behind), handing an entry over waits, 1 ms at a
 * time and boundedly, so the 4 MiB ring buffer absorbs the burst instead
 * of the 1024-entry queue dropping it. A pidfd becoming readable means that
 * target exited: its statement state is removed from the BPF map, and when
 * no target is left the loop ends by itself. On stop, links are destroyed
 * first (no new records), then the ring is drained to the last record.
 */
#include "tracer.h"
#include "tracer.h"
#include "tracer_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "dbnames.h"
#include "elfsym.h"
#include "event.h"
#include "gosql_attach.h"
#include "layout.h"
#include "log.h"
#include "probepos.h"
#include "procmaps.h"
#include "sqltrace.h"
#include "sqltrace.skel.h"
#include "target.h"
#include "traceparent.h"
#include "watchdog.h"

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

int tracer__open(const struct tracer_opts *opts, struct tracer **out, char *err, size_t errlen)
{
	struct tracer *t;
	size_t i;
	int e;

	*out = NULL;
	e = check_system(err, errlen);
	if (e)
		return e;
	if (opts->npids == 0 && opts->nbinaries == 0 && opts->ncgroups == 0 && !opts->command_pid) {
		snprintf(err, errlen, "no target: give -p PID, -n NAME, -b PATH, --cgroup PATH or -- COMMAND");
		return -EINVAL;
	}
	for (i = 0; i < opts->npids; i++) {
		if (opts->pids[i] <= 0) {
			snprintf(err, errlen, "invalid PID %d", opts->pids[i]);
			return -EINVAL;
		}
		if (opts->pids[i] == getpid()) {
			snprintf(err, errlen, "PID %d is sqltrace-bpf itself: tracing its own store writes "
				 "would feed back into itself", opts->pids[i]);
			return -EINVAL;
		}
		if (!opts->nbinaries && kill(opts->pids[i], 0) != 0 && errno == ESRCH) {
			snprintf(err, errlen, "no such process: PID %d", opts->pids[i]);
			return -ESRCH;
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
	t->skel->rodata->wakeup_bytes = 1 << 20;  /* a quarter of the ring */
	t->skel->rodata->probe_only = opts->probe_only;
	t->skel->rodata->return_mode = opts->return_mode;
	t->skel->rodata->self_tgid = (uint32_t)getpid();
	/* With -b, -p narrows which of the file's processes are traced. */
	t->skel->rodata->filter_pids = opts->nbinaries > 0 && opts->npids > 0;
	if (opts->nbinaries && opts->name_filter)
		strncpy((char *)t->skel->rodata->filter_comm, opts->name_filter, ST_COMM_LEN - 1);
	if (opts->max_targets)
		bpf_map__set_max_entries(t->skel->maps.procs, opts->max_targets);
	t->skel->rodata->by_cgroup = opts->ncgroups > 0;
	/* Programs are attached by hand, per target and per file. */
	e = sqltrace_bpf__load(t->skel);
	if (e) {
		snprintf(err, errlen, "cannot load BPF programs: %s (run with -vv for the verifier log)",
			 strerror(-e));
		goto fail;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.rb), records__handle, t, NULL);
	if (!t->rb) {
		e = -errno;
		snprintf(err, errlen, "cannot open the ring buffer: %s", strerror(-e));
		goto fail;
	}
	t->ctl_rb = ring_buffer__new(bpf_map__fd(t->skel->maps.ctl), targets__handle_ctl, t, NULL);
	if (!t->ctl_rb) {
		e = -errno;
		snprintf(err, errlen, "cannot open the control ring buffer: %s", strerror(-e));
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
		struct epoll_event cev = { .events = EPOLLIN, .data.u64 = CTL_EVENT };

		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(t->rb), &ev) != 0 ||
		    epoll_ctl(t->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(t->ctl_rb), &cev) != 0) {
			e = -errno;
			snprintf(err, errlen, "epoll_ctl: %s", strerror(-e));
			goto fail;
		}
	}
	t->wall_offset_us = now_us(CLOCK_REALTIME) - now_us(CLOCK_MONOTONIC);
	t->dbn = dbnames__new();
	if (!t->dbn) {
		e = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	{
		struct bpf_link *l1 = bpf_program__attach(t->skel->progs.proc_exit);
		struct bpf_link *l2 = l1 ? bpf_program__attach(t->skel->progs.proc_exec) : NULL;

		if (!l1 || !l2) {
			e = -errno;
			bpf_link__destroy(l1);
			snprintf(err, errlen, "cannot attach to the process exit/exec tracepoints: %s",
				 strerror(-e));
			goto fail;
		}
		if ((e = probes__add_link(t, l1)) || (e = probes__add_link(t, l2)))
			goto fail;
	}
	/* The filter first: a probe that fires before it is filled would
	 * leave its thread marked as not traced. */
	if (t->skel->rodata->filter_pids) {
		uint8_t one = 1;

		for (i = 0; i < opts->npids; i++) {
			uint32_t pid = (uint32_t)opts->pids[i];

			bpf_map__update_elem(t->skel->maps.pid_filter, &pid, sizeof(pid), &one, 1, BPF_ANY);
		}
		/* The trace ends when these processes are gone. */
		t->filter_fds = calloc(opts->npids, sizeof(*t->filter_fds));
		if (!t->filter_fds) {
			e = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		for (i = 0; i < opts->npids; i++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = FILTER_EVENT + i };

			t->filter_fds[i] = pidfd_open(opts->pids[i]);
			if (t->filter_fds[i] < 0 && errno == ESRCH) {
				e = -ESRCH;
				snprintf(err, errlen, "no such process: PID %d", opts->pids[i]);
				goto fail;
			}
			if (t->filter_fds[i] >= 0 && epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->filter_fds[i], &ev) == 0)
				t->filter_alive++;
		}
		t->nfilter = opts->npids;
	}
	for (i = 0; i < opts->nbinaries; i++) {
		e = targets__add_binary(t, opts->binaries[i], err, errlen);
		if (e)
			goto fail;
	}
	if (!t->skel->rodata->filter_pids) {
		size_t skipped = 0;

		for (i = 0; i < opts->npids; i++) {
			e = targets__add(t, opts->pids[i], false, err, errlen);
			if ((e == -ENOENT || e == -ESRCH) && i >= opts->npids_required) {
				/* Named by -n, but nothing to probe (or gone):
				 * anyone can start a process of that name. */
				log_warn("%s: not traced", err);
				if (t->ntargets && t->targets[t->ntargets - 1].pid == opts->pids[i]) {
					t->ntargets--;
					free(t->targets[t->ntargets].files);
					free(t->targets[t->ntargets].looked);
				}
				skipped++;
				continue;
			}
			if (e)
				goto fail;
		}
		if (skipped && skipped == opts->npids - opts->npids_required && opts->npids_required == 0 &&
		    !opts->nbinaries && !opts->command_pid) {
			snprintf(err, errlen, "none of the %zu process%s of that name can be traced (see above)",
				 skipped, skipped > 1 ? "es" : "");
			e = -ENOENT;
			goto fail;
		}
	}
	if (opts->command_pid) {
		e = targets__add(t, opts->command_pid, true, err, errlen);
		if (e)
			goto fail;
	}
	if (opts->ncgroups) {
		t->cgroup_dirs = calloc(opts->ncgroups, sizeof(*t->cgroup_dirs));
		t->cgroup_ids = calloc(opts->ncgroups, sizeof(*t->cgroup_ids));
		if (!t->cgroup_dirs || !t->cgroup_ids) {
			e = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		for (i = 0; i < opts->ncgroups; i++) {
			char dir[PATH_MAX];

			e = cgroup__resolve(opts->cgroups[i], dir, sizeof(dir), err, errlen);
			if (e)
				goto fail;
			t->cgroup_dirs[i] = strdup(dir);
			if (!t->cgroup_dirs[i]) {
				e = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
		/* A process that execs in a cgroup is stopped until probed:
		 * the watchdog continues it should we die meanwhile. */
		if (!t->wd && !t->opts.probe_only)
			t->wd = watchdog__start_cgroups(t->cgroup_dirs, opts->ncgroups);
		if (!t->wd && !t->opts.probe_only) {
			e = -errno;
			snprintf(err, errlen, "cannot start the watchdog process: %s", strerror(errno));
			goto fail;
		}
		targets__scan_cgroups(t, true);
		t->next_cgroup_us = now_us(CLOCK_MONOTONIC) + CGROUP_SCAN_US;
	}
	t->next_rescan_us = now_us(CLOCK_MONOTONIC) + RESCAN_US;
	*out = t;
	return 0;
fail:
	tracer__free(t);
	return e < 0 ? e : -EINVAL;
}

/* --cgroup: a target that exited gives back what it held (its probes'
 * links, its pidfd, its file lists), so tracing a service for weeks, whose
 * processes come and go, does not pile them up. Its entry count stays. */
static void release_target(struct tracer *t, struct target *tg)
{
	size_t owner = (size_t)(tg - t->targets) + 1, i;

	for (i = 0; i < t->nlinks; i++) {
		if (t->links[i] && t->link_owner[i] == owner) {
			bpf_link__destroy(t->links[i]);
			t->links[i] = NULL;
		}
	}
	if (tg->pidfd >= 0)
		close(tg->pidfd);
	tg->pidfd = -1;
	free(tg->files);
	tg->files = NULL;
	tg->nfiles = 0;
	free(tg->looked);
	tg->looked = NULL;
	tg->nlooked = tg->caplooked = 0;
}

static void detach_all(struct tracer *t)
{
	size_t i;

	t->detached = true;
	for (i = 0; i < t->nlinks; i++)
		bpf_link__destroy(t->links[i]);  /* NULL (released) is fine */
	free(t->links);
	t->links = NULL;
	free(t->link_owner);
	t->link_owner = NULL;
	t->nlinks = 0;
	gosql__detach(t->go);
}

/* Consumes the ring buffer unless an entry waits for room. */
static void drain(struct tracer *t)
{
	if (records__release_held(t, 0))
		ring_buffer__consume(t->rb);
}

/* At the end of a run: hands the held entry to the consumers, waiting
 * while they make progress (*progress: when they last took one); once they
 * took nothing for 10 s (*give_up), delivered at once (they count what
 * they drop). */
static void hand_over_held(struct tracer *t, int64_t *progress, bool *give_up)
{
	while (t->held && !*give_up) {
		if (records__release_held(t, 100))
			*progress = now_us(CLOCK_MONOTONIC);
		else if (now_us(CLOCK_MONOTONIC) - *progress > 10000000)
			*give_up = true;
	}
	if (t->held) {
		records__deliver(t, t->held);
		t->held = NULL;
	}
}

int tracer__run(struct tracer *t, volatile sig_atomic_t *stop)
{
	struct epoll_event evs[16];
	int n, i, ret = 0;

	/* Without -b the trace ends when the last target exits; with -b it
	 * runs until stopped, or until the command it started exits. */
	while (!*stop && (t->alive > 0 || (t->opts.nbinaries && !t->opts.command_pid &&
					     (!t->nfilter || t->filter_alive > 0)) ||
			  (t->opts.ncgroups && !t->opts.command_pid))) {
		int64_t now = now_us(CLOCK_MONOTONIC);
		int timeout = t->opts.drain_ms;

		if (t->opts.ncgroups && now >= t->next_cgroup_us) {
			targets__scan_cgroups(t, false);
			t->next_cgroup_us = now + CGROUP_SCAN_US;
		}
		if (now >= t->next_rescan_us) {
			targets__rescan(t);
			gosql__sweep(t->go);
			if (!t->held)
				gosql__tick(t->go, false);
			t->next_rescan_us = now + RESCAN_US;
		}
		if (t->opts.on_tick)
			t->opts.on_tick(t->opts.ctx);
		/* Backpressure: while an entry waits for room, wait on the
		 * consumers instead of the ring (which stays readable). */
		if (t->held) {
			ring_buffer__consume(t->ctl_rb);
			if (!records__release_held(t, t->opts.drain_ms))
				timeout = 0;
		}
		n = epoll_wait(t->epfd, evs, 16, t->held ? 0 : timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		/* A stopped target waits on this: first. */
		ring_buffer__consume(t->ctl_rb);
		/* Drain first: records of a target that just exited are in the
		 * ring before its pidfd fires. */
		drain(t);
		for (i = 0; i < n; i++) {
			uint64_t idx = evs[i].data.u64;
			struct target *tg;

			if (idx >= FILTER_EVENT && idx < FILTER_EVENT + t->nfilter) {
				int *fd = &t->filter_fds[idx - FILTER_EVENT];

				if (*fd >= 0) {
					epoll_ctl(t->epfd, EPOLL_CTL_DEL, *fd, NULL);
					close(*fd);
					*fd = -1;
					t->filter_alive--;
				}
				continue;
			}
			if (idx == 0 || idx == CTL_EVENT || idx > t->ntargets)
				continue;
			tg = &t->targets[idx - 1];
			if (!tg->alive)
				continue;
			if (tg->is_command)
				t->command_exited = true;
			tg->alive = false;
			t->alive--;
			epoll_ctl(t->epfd, EPOLL_CTL_DEL, tg->pidfd, NULL);
			drain(t);
			if (tg->start_time)
				release_target(t, tg);  /* a --cgroup process */
			/* Its pid may be reused: never stop another process. */
			if (tg->watched) {
				uint32_t key = (uint32_t)tg->pid;

				bpf_map__delete_elem(t->skel->maps.watched, &key, sizeof(key), 0);
			}
			/* Its connections' names are forgotten when its
			 * PROC_EXIT record is read: records held back by a slow
			 * consumer still need them. */
			log_verbose("PID %d (%s) exited", tg->pid, tg->comm);
		}
	}
	detach_all(t);
	/* A target stopped just before the probes went: continued now, not
	 * after the last entries are handed over. */
	ring_buffer__consume(t->ctl_rb);
	/* The last records: wait for room while the consumers make progress
	 * (a slow store loses nothing); once they make none for 10 s, the rest
	 * is handed over at once (they count what they drop). */
	{
		int64_t progress = now_us(CLOCK_MONOTONIC);
		bool give_up = false;

		for (;;) {
			hand_over_held(t, &progress, &give_up);
			if (ring_buffer__consume(t->rb) >= 0)
				break;
		}
		/* Query entries still waiting for their Rows' close: handed
		 * over now, without a row count. */
		while (gosql__tick(t->go, true) > 0 || t->held)
			hand_over_held(t, &progress, &give_up);
		if (give_up)
			log_warn("the consumers took nothing for 10 s: the last entries were handed over "
				 "without waiting (see the dropped counts)");
	}
	return ret;
}

static uint64_t count_keys(int fd, size_t key_size)
{
	unsigned char key[64], next[64];
	void *prev = NULL;
	uint64_t n = 0;

	if (key_size > sizeof(key))
		return 0;
	while (bpf_map_get_next_key(fd, prev, next) == 0 && n < (1u << 24)) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

void tracer__stats(struct tracer *t, struct tracer_stats *out)
{
	int ncpu = libbpf_num_possible_cpus(), c;
	uint32_t idx;

	*out = t->stats;
	out->procs_seen = t->nseen + t->procs_exited;
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
		out->procs_full = sums[ST_CNT_PROCS_FULL];
		out->live_stmts = count_keys(bpf_map__fd(t->skel->maps.stmts), bpf_map__key_size(t->skel->maps.stmts));
		out->live_procs = count_keys(bpf_map__fd(t->skel->maps.procs), bpf_map__key_size(t->skel->maps.procs));
		out->read_faults = sums[ST_CNT_READ_FAULTS];
		out->unsettled = sums[ST_CNT_UNSETTLED];
		out->unseen_end = sums[ST_CNT_UNSEEN_END];
		out->slots_full = sums[ST_CNT_SLOTS_FULL];
		out->ctl_full = sums[ST_CNT_CTL_FULL];
	}
	if (t->go) {
		out->rb_drops += gosql__counter(t->go, ST_CNT_RB_DROPS);
		out->stmt_full += gosql__counter(t->go, ST_CNT_STMT_FULL);
		out->read_faults += gosql__counter(t->go, ST_CNT_READ_FAULTS);
		out->rows_uncounted = gosql__rows_uncounted(t->go);
	}
}

void tracer__print_targets(struct tracer *t, FILE *f)
{
	size_t i;

	size_t shown = 0, from_cgroups = 0, exited = 0;

	for (i = 0; i < t->ntargets; i++) {
		const struct target *tg = &t->targets[i];

		if (tg->start_time) {
			/* --cgroup: only those with entries are named (a service
			 * may have run thousands of processes) */
			from_cgroups++;
			exited += !tg->alive;
			if (!tg->entries)
				continue;
		}
		fprintf(f, "%sPID %d (%s): %" PRIu64 "%s", shown++ ? ", " : "", tg->pid, tg->comm, tg->entries,
			tg->copies_mapped || tg->entries ? ""
			: tg->unlocatable ? " (its SQLite could not be located)" : " (no SQLite seen)");
	}
	if (t->opts.ncgroups)
		fprintf(f, "%s%zu processes through --cgroup (%zu exited)", shown ? ", " : "", from_cgroups, exited);
	if (t->opts.nbinaries)
		fprintf(f, "%s%zu processes through -b (%" PRIu64 " exited)", shown ? ", " : "",
			t->nseen + (size_t)t->procs_exited, t->procs_exited);
}

void tracer__free(struct tracer *t)
{
	size_t i;

	if (!t)
		return;
	detach_all(t);
	if (t->ctl_rb) {
		/* Continue whatever is stopped (its probes are gone anyway). */
		ring_buffer__consume(t->ctl_rb);
		ring_buffer__free(t->ctl_rb);
	}
	watchdog__stop(t->wd);
	for (i = 0; i < t->nfilter; i++)
		if (t->filter_fds[i] >= 0)
			close(t->filter_fds[i]);
	free(t->filter_fds);
	if (t->held)
		entry__free(t->held);
	ring_buffer__free(t->rb);
	gosql__free(t->go);
	sqltrace_bpf__destroy(t->skel);
	for (i = 0; i < t->ntargets; i++) {
		if (t->targets[i].pidfd >= 0)
			close(t->targets[i].pidfd);
		free(t->targets[i].files);
		free(t->targets[i].looked);
	}
	free(t->targets);
	if (t->cgroup_dirs)
		for (i = 0; i < t->opts.ncgroups; i++)
			free(t->cgroup_dirs[i]);
	free(t->cgroup_dirs);
	free(t->cgroup_ids);
	dbnames__free(t->dbn);
	for (i = 0; i < t->nlibs; i++)
		free(t->libs[i].path);
	for (i = 0; i < LEARN_CACHE_SLOTS; i++)
		free(t->learn[i].text);
	if (t->epfd >= 0)
		close(t->epfd);
	free(t);
}
