/* targets.c — the processes traced: given by -p/-n/--, seen through -b, or
 * members of a --cgroup. Finds the SQLite copies each maps (user/find/) and
 * has them probed (probes.c), keeps finding new ones as it loads more (the
 * dynamic linker's rendezvous and exec, reported on the control ring, stop
 * the process until its new files are probed), and forgets a process when
 * it exits. Part of the tracer (tracer_int.h).
 */
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
#include "finder.h"
#include "layout.h"
#include "log.h"
#include "probepos.h"
#include "procmaps.h"
#include "sqltrace.h"
#include "sqltrace.skel.h"
#include "target.h"
#include "traceparent.h"
#include "watchdog.h"

static bool target_has_file(const struct target *tg, dev_t dev, ino_t ino)
{
	size_t i;

	for (i = 0; i < tg->nfiles; i++)
		if (tg->files[i].dev == dev && tg->files[i].ino == ino)
			return true;
	return false;
}

static int target_add_file(struct target *tg, dev_t dev, ino_t ino)
{
	struct file_id *grown = realloc(tg->files, (tg->nfiles + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	tg->files = grown;
	grown[tg->nfiles++] = (struct file_id){ dev, ino };
	return 0;
}

/* Order-independent fingerprint of the files a process maps. */
static uint64_t maps_fingerprint(int pid)
{
	struct map_entry *maps = NULL;
	size_t n = 0, i;
	uint64_t fp = 0;

	if (procmaps__read_pid(pid, &maps, &n) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		uint64_t h;

		if (!maps[i].path || !maps[i].inode)
			continue;
		h = (maps[i].inode * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)maps[i].dev_major << 40) ^
		    maps[i].dev_minor;
		fp += h ^ (h >> 29);
	}
	procmaps__free(maps, n);
	return fp;
}

/* target_skip_fn: a file of tg already inspected is skipped; one seen for
 * the first time is remembered (and inspected now). */
static bool looked_before(void *ctx, uint32_t maj, uint32_t min, uint64_t ino)
{
	struct target *tg = ctx;
	size_t i;

	for (i = 0; i < tg->nlooked; i++)
		if (tg->looked[i].ino == ino && tg->looked[i].maj == maj && tg->looked[i].min == min)
			return true;
	if (tg->nlooked == tg->caplooked) {
		size_t cap = tg->caplooked ? 2 * tg->caplooked : 64;
		struct looked *g = realloc(tg->looked, cap * sizeof(*g));

		if (!g)
			return false;  /* inspected again next time: no harm */
		tg->looked = g;
		tg->caplooked = cap;
	}
	tg->looked[tg->nlooked++] = (struct looked){ maj, min, ino };
	return false;
}

/* A file of tg that carries SQLite the finders cannot locate (a stripped
 * program built without SQLite's extension API table): named once, with
 * the reason the finders gave (in why), so that the user never takes its
 * silence for a quiet program. */
static void say_unlocatable(struct target *tg, const char *why)
{
	const char *at = strstr(why, TARGET_UNLOCATABLE), *start;

	if (!at || tg->unlocatable)
		return;
	/* from the file's name, which the reason follows */
	for (start = at; start > why && start[-1] != ';' && strncmp(start, "the executable ", 15) != 0; start--)
		;
	while (*start == ' ')
		start++;
	if (strncmp(start, "the executable ", 15) == 0)
		start += 15;
	tg->unlocatable = true;
	log_warn("PID %d (%s): cannot be traced: %s", tg->pid, tg->comm, start);
}

/* Attaches, for process tg, every file it maps that a finder answers for
 * (a SQLite copy, a Go program's database/sql) and every shim, not probed
 * for it yet (files inspected by an earlier scan are not read again: a
 * rescan after each load costs only the new files). Returns the number of
 * files newly probed, or a negative errno with err set. */
static int attach_mapped(struct tracer *t, struct target *tg, char *err, size_t errlen)
{
	struct sqlite_found *found = NULL;
	size_t nfound = 0, nshims = 0, i;
	char **shims = NULL;
	char why[1024];
	int e, added = 0;

	e = find__process(tg->pid, looked_before, tg, &found, &nfound,
			  (t->opts.trace_id_from & TRACE_ID_FROM_SHIM) ? &shims : NULL, &nshims, why, sizeof(why));
	if (e) {
		snprintf(err, errlen, "cannot inspect PID %d: %s", tg->pid, why);
		return e;
	}
	/* (the caller gives the reason itself when nothing at all is found) */
	if (nfound || tg->nfiles)
		say_unlocatable(tg, why);
	else if (strstr(why, TARGET_UNLOCATABLE))
		tg->unlocatable = true;
	for (i = 0; i < nfound; i++) {
		struct sqlite_found *f = &found[i];

		if (target_has_file(tg, f->c.dev, f->c.ino))
			continue;
		e = probes__attach_found(t, tg->pid, f, err, errlen);
		if (!e)
			e = target_add_file(tg, f->c.dev, f->c.ino);
		if (e) {
			tg->nlooked = 0;  /* not probed: every file is looked at again next time */
			goto out;
		}
		if (f->layer == FOUND_GO_SQL)
			log_verbose("PID %d (%s): probing its database/sql layer (no C SQLite in it)", tg->pid,
				    tg->comm);
		else
			log_verbose("PID %d (%s): probing %s", tg->pid, tg->comm, f->c.path);
		tg->sqlite_files++;
		added++;
	}
	for (i = 0; i < nshims; i++) {
		struct stat st;

		/* Shim files are kept apart from SQLite files (a static
		 * executable can be both): tagged device number. */
		if (stat(shims[i], &st) != 0 || target_has_file(tg, st.st_dev ^ SHIM_TAG, st.st_ino))
			continue;
		e = probes__attach_shim(t, tg->pid, shims[i], err, errlen);
		if (!e)
			e = target_add_file(tg, st.st_dev ^ SHIM_TAG, st.st_ino);
		if (e)
			goto out;
	}
	tg->copies_mapped = tg->sqlite_files;
	if (nfound == 0 && tg->nfiles == 0) {
		snprintf(err, errlen, "cannot attach to PID %d: %s", tg->pid, why);
		e = -ENOENT;
		goto out;
	}
	e = added;
out:
	find__free(found, nfound);
	find__free_paths(shims, nshims);
	return e;
}

/* Probes one file for one process before that process has mapped it (the
 * command, about to exec). Returns 0 (also when the file holds no SQLite)
 * or a negative errno with err set. */
static int attach_file_for(struct tracer *t, struct target *tg, const char *path, char *err,
			   size_t errlen)
{
	struct sqlite_found f;
	bool shim;
	char why[512];
	int e = 0;

	if (find__file(path, path, &f, &shim, why, sizeof(why)) != 0) {
		say_unlocatable(tg, why);
		return 0;
	}
	if (f.layer != FOUND_NONE && !target_has_file(tg, f.c.dev, f.c.ino)) {
		e = probes__attach_found(t, tg->pid, &f, err, errlen);
		if (!e)
			e = target_add_file(tg, f.c.dev, f.c.ino);
		if (!e)
			tg->sqlite_files++;
	}
	if (!e && shim && (t->opts.trace_id_from & TRACE_ID_FROM_SHIM))
		e = probes__attach_shim(t, tg->pid, path, err, errlen);
	find__release(&f);
	return e;
}

#define WATCH_NOTIFY_ 2

/* Whether stopping pid would be seen: it is the foreground process group
 * of its controlling terminal, or a debugger traces it. */
static bool stop_is_seen(int pid)
{
	char path[64], buf[1024], *p;
	int pgrp = 0, tty = 0, tpgid = 0, tracer = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 1, " %*c %*d %d %*d %d %d", &pgrp, &tty, &tpgid) == 3 && tty && tpgid == pgrp) {
			fclose(f);
			return true;
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "TracerPid: %d", &tracer) == 1)
			break;
	fclose(f);
	return tracer != 0;
}

/* Later loads: probes the dynamic linker of tg (its _dl_debug_state, see
 * dl_loaded in the BPF program) and marks it watched, so a library it
 * loads later (dlopen, a Python or Node extension) or a program it execs is
 * probed before it runs. Returns 0, -ENOENT when it has no dynamic linker
 * (a static executable: nothing can be loaded into it that way), or -errno
 * with err set. */
static int watch_loads(struct tracer *t, struct target *tg, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	struct bpf_link *link;
	char path[128];
	uint64_t off;
	int64_t rdelta = 0;
	uint32_t key = (uint32_t)tg->pid;
	uint8_t one = 1;
	int e;

	if (tg->watched || t->opts.probe_only)
		return 0;
	e = target__find_ldso2(tg->pid, path, sizeof(path), &off, &rdelta);
	if (e)
		return e;
	/* The cookie: where _r_debug is from the probe (bits 32..63, signed),
	 * so only the call that says "consistent" stops the process. */
	uo.bpf_cookie = (uint64_t)rdelta << 32;
	if (rdelta != (int64_t)(int32_t)rdelta)
		uo.bpf_cookie = 0;
	if (!t->wd) {
		t->wd = watchdog__start();
		if (!t->wd) {
			e = -errno;
			snprintf(err, errlen, "cannot start the watchdog process: %s", strerror(-e));
			return e;
		}
	}
	link = bpf_program__attach_uprobe_opts(t->skel->progs.dl_loaded, tg->pid, path, off, &uo);
	if (!link) {
		e = -errno;
		snprintf(err, errlen, "cannot probe the dynamic linker of PID %d: %s", tg->pid, strerror(-e));
		return e;
	}
	e = probes__add_link(t, link);
	if (e)
		return e;
	/* A stop would be seen where the process is a terminal's foreground
	 * job (its shell reports it Stopped and takes the terminal back) or
	 * runs under a debugger: those are only told of, probed as soon as
	 * the record is read (a statement may run first). Our own command is
	 * always stopped (its parent is us). */
	if (!tg->is_command && stop_is_seen(tg->pid)) {
		one = WATCH_NOTIFY_;
		log_warn("PID %d (%s) is a terminal's foreground job or runs under a debugger: SQLite it "
			 "loads later is probed right after, not before, its first statements", tg->pid, tg->comm);
	}
	bpf_map__update_elem(t->skel->maps.watched, &key, sizeof(key), &one, sizeof(one), BPF_ANY);
	watchdog__watched(t->wd, tg->pid);
	tg->watched = true;
	log_verbose("PID %d (%s): its dynamic linker is probed (%s+0x%" PRIx64 "): SQLite loaded later is "
		    "probed before it runs", tg->pid, tg->comm, path, off);
	return 0;
}

int targets__add(struct tracer *t, int pid, bool is_command, char *err, size_t errlen)
{
	struct target *tg;
	size_t i;
	int e;

	for (i = 0; i < t->ntargets; i++)
		if (t->targets[i].pid == pid && (t->targets[i].alive || !t->opts.ncgroups))
			return 0;  /* given twice (--cgroup: a pid reused after an exit is new) */
	if (pid <= 0) {
		snprintf(err, errlen, "invalid PID %d", pid);
		return -EINVAL;
	}
	if (kill(pid, 0) != 0 && errno == ESRCH) {
		snprintf(err, errlen, "no such process: PID %d", pid);
		return -ESRCH;
	}
	tg = realloc(t->targets, (t->ntargets + 1) * sizeof(*tg));
	if (!tg)
		return -ENOMEM;
	t->targets = tg;
	tg = &t->targets[t->ntargets];
	memset(tg, 0, sizeof(*tg));
	tg->pid = pid;
	tg->pidfd = -1;
	tg->is_command = is_command;
	t->ntargets++;  /* from here on, tracer__free releases it */
	if (is_command)
		snprintf(tg->comm, sizeof(tg->comm), "%s", t->opts.command_name ? t->opts.command_name : "?");
	else if (target__comm(pid, tg->comm, sizeof(tg->comm)) != 0)
		strcpy(tg->comm, "?");

	tg->since_us = now_us(CLOCK_MONOTONIC);
	if (is_command) {
		/* Not exec'd yet (our fork, mapping our files): its program
		 * and the libraries it loads are looked at when it execs and
		 * when its dynamic linker has loaded them (watch_loads), before
		 * they run; its own file is probed now too. */
		e = watch_loads(t, tg, err, errlen);
		if (e < 0 && e != -ENOENT)
			return e;
		if (t->opts.command_exe) {
			e = attach_file_for(t, tg, t->opts.command_exe, err, errlen);
			if (e)
				return e;
		}
	} else {
		char why[2048];
		int w;

		e = attach_mapped(t, tg, why, sizeof(why));
		if (e < 0 && e != -ENOENT) {
			snprintf(err, errlen, "%s", why);
			return e;
		}
		w = watch_loads(t, tg, err, errlen);
		if (w < 0 && w != -ENOENT)
			return w;
		if (e == -ENOENT) {
			const char *what = strstr(why, ": ");

			if (w == -ENOENT || !tg->watched) {
				snprintf(err, errlen, "%s (and it has no dynamic linker to load one later)", why);
				return -ENOENT;
			}
			/* Nothing yet: waiting for it to load SQLite. (Of a
			 * --cgroup, most processes may have none: said with -v.) */
			if (tg->unlocatable)
				log_warn("PID %d (%s): cannot be traced: %s; watching it for another SQLite it may "
					 "load", pid, tg->comm, what ? what + 2 : why);
			else if (t->adding_from_cgroup)
				log_verbose("PID %d (%s): no SQLite in it yet; probed when it loads one", pid,
					    tg->comm);
			else
				log_warn("PID %d (%s): no SQLite in it yet (%s); waiting for it to load one "
					 "(probed before its first statement)", pid, tg->comm, what ? what + 2 : why);
			tg->blind_said = true;
		}
	}
	tg->maps_fp = maps_fingerprint(pid);
	tg->pidfd = pidfd_open(pid);
	tg->alive = true;
	if (tg->pidfd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = t->ntargets };

		epoll_ctl(t->epfd, EPOLL_CTL_ADD, tg->pidfd, &ev);
	} else if (kill(pid, 0) != 0) {
		tg->alive = false;  /* exited while we attached */
	}
	if (tg->alive)
		t->alive++;
	return 0;
}

/* -b PATH: probes the file for every process that runs or maps it. */
int targets__add_binary(struct tracer *t, const char *path, char *err, size_t errlen)
{
	struct sqlite_found f;
	char why[512];
	bool shim;
	int e;

	e = find__file(path, path, &f, &shim, why, sizeof(why));
	if (e) {
		snprintf(err, errlen, "cannot trace -b %s", why);
		return e;
	}
	e = probes__attach_found(t, -1, &f, err, errlen);
	if (!e && shim && (t->opts.trace_id_from & TRACE_ID_FROM_SHIM))
		e = probes__attach_shim(t, -1, path, err, errlen);
	find__release(&f);
	return e;
}

/* Looks again at the explicit targets whose mapped files changed (a
 * library loaded with dlopen, a new program after exec). */
void targets__rescan(struct tracer *t)
{
	char err[512];
	size_t i;

	for (i = 0; i < t->ntargets; i++) {
		struct target *tg = &t->targets[i];
		uint64_t fp;

		if (!tg->alive)
			continue;
		fp = maps_fingerprint(tg->pid);
		if (fp && fp != tg->maps_fp) {
			tg->maps_fp = fp;
			target__comm(tg->pid, tg->comm, sizeof(tg->comm));
			t->cur_owner = i + 1;
			if (attach_mapped(t, tg, err, sizeof(err)) < 0 && log_verbose)
				log_verbose("PID %d: %s", tg->pid, err);
			t->cur_owner = 0;
		}
		/* Never tracing while blind: a target that maps no SQLite a
		 * second after it became one is named, once. */
		if (!tg->copies_mapped && !tg->blind_said && !tg->unlocatable &&
		    now_us(CLOCK_MONOTONIC) - tg->since_us > RESCAN_US) {
			tg->blind_said = true;
			log_warn("PID %d (%s): no SQLite in it so far; %s", tg->pid, tg->comm,
				 tg->watched ? "a SQLite it loads later is probed before it runs"
					     : "it cannot load one later (no dynamic linker)");
		}
	}
}

/* ---- processes seen through -b ---------------------------------------- */

struct seen *targets__seen_slot(struct tracer *t, uint32_t pid, bool create)
{
	size_t h = (pid * 2654435761u) & (SEEN_SLOTS - 1), i;
	struct seen *tomb = NULL;

	for (i = 0; i < SEEN_SLOTS; i++) {
		struct seen *s = &t->seen[(h + i) & (SEEN_SLOTS - 1)];

		if (s->pid == pid)
			return s;
		if (s->pid == UINT32_MAX && !tomb)
			tomb = s;
		if (s->pid == 0) {
			if (!create)
				return NULL;
			if (!tomb)
				tomb = s;
			break;
		}
	}
	if (!create || !tomb || t->nseen >= SEEN_SLOTS / 2)
		return NULL;
	if (tomb->pid == UINT32_MAX)
		t->seen_removed--;
	tomb->pid = pid;
	tomb->entries = 0;
	t->nseen++;
	return tomb;
}

static void seen_remove(struct tracer *t, uint32_t pid)
{
	struct seen *s = targets__seen_slot(t, pid, false);

	if (!s)
		return;
	s->pid = UINT32_MAX;
	t->nseen--;
	t->seen_removed++;
	if (t->seen_removed > SEEN_SLOTS / 4) {
		/* Too many tombstones: rebuild. */
		struct seen old[SEEN_SLOTS];
		size_t i;

		memcpy(old, t->seen, sizeof(old));
		memset(t->seen, 0, sizeof(t->seen));
		t->nseen = t->seen_removed = 0;
		for (i = 0; i < SEEN_SLOTS; i++) {
			if (old[i].pid && old[i].pid != UINT32_MAX) {
				struct seen *n = targets__seen_slot(t, old[i].pid, true);

				if (n)
					n->entries = old[i].entries;
			}
		}
	}
}

/* A process ended or replaced its program: its connections' names are
 * forgotten. Its statement states stay in the BPF map's LRU, never walked
 * (O(1) per exit): their owner (process start time and exec count) no
 * longer matches any live thread, so they are never used again, and being
 * the least recently used they are the first to make room. */
static void forget_pid(struct tracer *t, int pid)
{
	dbnames__forget_pid(t->dbn, (uint32_t)pid);
}

/* A traced process ended (or replaced its program, exec): free what was
 * kept for it. An explicit target that exec'd is rescanned at once. */
void targets__process_gone(struct tracer *t, int pid, bool exec)
{
	struct target *tg = records__target_of(t, pid);

	forget_pid(t, pid);
	if (exec) {
		log_verbose("PID %d ran execve: looking at its new program", pid);
		if (tg) {
			tg->maps_fp = 0;
			t->next_rescan_us = 0;
		}
		return;
	}
	if (!tg) {
		struct seen *sn = targets__seen_slot(t, (uint32_t)pid, false);

		log_verbose("PID %d exited (%" PRIu64 " entries)", pid, sn ? sn->entries : 0);
		if (sn) {
			seen_remove(t, (uint32_t)pid);
			t->procs_exited++;
		}
	}
}

static void cgroup_add(struct tracer *t, size_t c, int pid, bool announce);
static size_t cgroup_of(struct tracer *t, int pid);

/* A watched target loaded something (its dynamic linker's rendezvous) or
 * exec'd, and is stopped: probe any new SQLite copy it maps, then let it
 * go on. Says once when a target that had none has one now. */
int targets__handle_ctl(void *ctx, void *data, size_t size)
{
	struct tracer *t = ctx;
	const struct st_ctl *c = data;
	struct target *tg;

	if (size >= sizeof(*c) && c->kind == ST_CTL_CGROUP) {
		/* A process exec'd in a --cgroup cgroup, stopped: a target now,
		 * before its program runs. */
		watchdog__stopped(t->wd, (pid_t)c->pid);
		cgroup_add(t, cgroup_of(t, (int)c->pid), (int)c->pid, true);
		kill((pid_t)c->pid, SIGCONT);
		watchdog__continued(t->wd, (pid_t)c->pid);
		return 0;
	}
	if (size < sizeof(*c) || c->kind != ST_CTL_LOADED)
		return 0;
	if (c->pad)
		watchdog__stopped(t->wd, (pid_t)c->pid);
	tg = records__target_of(t, (int)c->pid);
	if (tg && tg->alive) {
		uint64_t fp = maps_fingerprint(tg->pid);

		if (fp && fp != tg->maps_fp) {
			char err[2048];
			size_t before = tg->copies_mapped;
			int e;

			tg->maps_fp = fp;
			target__comm(tg->pid, tg->comm, sizeof(tg->comm));
			t->cur_owner = (size_t)(tg - t->targets) + 1;
			e = attach_mapped(t, tg, err, sizeof(err));
			t->cur_owner = 0;
			if (e < 0 && e != -ENOENT)
				log_warn("PID %d (%s): %s", tg->pid, tg->comm, err);
			else if (tg->copies_mapped && !before && tg->blind_said)
				log_info("PID %d (%s): SQLite loaded: tracing it", tg->pid, tg->comm);
		}
	}
	if (c->pad) {
		kill((pid_t)c->pid, SIGCONT);
		watchdog__continued(t->wd, (pid_t)c->pid);
	}
	t->stats.loads++;
	return 0;
}

/* ---- --cgroup ------------------------------------------------------------ */

/* Start time of pid (/proc/PID/stat field 22, clock ticks since boot), or 0. */
static uint64_t proc_start_time(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &st) != 1)
		st = 0;
	fclose(f);
	return st;
}

/* Makes pid, a process of --cgroup cg (index c), a target unless it is one
 * already (alive, or tried before: same start time). A process with no
 * SQLite is watched for one it loads later, quietly (a service has many
 * such processes); one that cannot be traced at all is named. */
static void cgroup_add(struct tracer *t, size_t c, int pid, bool announce)
{
	struct target *tg;
	uint64_t start;
	char err[2048];
	size_t before;
	int e;

	if (pid == getpid() || t->detached)
		return;
	tg = records__target_of(t, pid);
	start = proc_start_time(pid);
	if (!start || (tg && (tg->alive || tg->start_time == start)))
		return;  /* gone already, or known */
	before = t->ntargets;
	t->adding_from_cgroup = true;
	t->cur_owner = before + 1;
	e = targets__add(t, pid, false, err, sizeof(err));
	t->cur_owner = 0;
	t->adding_from_cgroup = false;
	if (t->ntargets > before) {
		tg = &t->targets[t->ntargets - 1];
		tg->start_time = start;
		tg->blind_said = true;  /* no "no SQLite so far" for each of them */
		if (e)
			tg->alive = false;
	}
	if (e == -ENOENT)  /* no SQLite, none to load later: common in a service */
		log_verbose("--cgroup %s: PID %d not traced: %s", t->opts.cgroups[c], pid, err);
	else if (e && e != -ESRCH)
		log_warn("--cgroup %s: PID %d not traced: %s", t->opts.cgroups[c], pid, err);
	else if (!e && announce)
		log_info("--cgroup %s: PID %d (%s) joined: tracing it", t->opts.cgroups[c], pid,
			 t->targets[t->ntargets - 1].comm);
}

/* Keeps the cgroup_ids map on the cgroups' current ids: a cgroup made again
 * (a service restarted) has a new one; a cgroup gone has none. */
static void cgroup_update_ids(struct tracer *t)
{
	size_t c;

	for (c = 0; c < t->opts.ncgroups; c++) {
		struct stat st;
		uint64_t id = stat(t->cgroup_dirs[c], &st) == 0 ? (uint64_t)st.st_ino : 0;
		uint8_t one = 1;

		if (id == t->cgroup_ids[c])
			continue;
		if (t->cgroup_ids[c])
			bpf_map__delete_elem(t->skel->maps.cgroup_ids, &t->cgroup_ids[c], sizeof(uint64_t), 0);
		t->cgroup_ids[c] = 0;
		if (id && bpf_map__update_elem(t->skel->maps.cgroup_ids, &id, sizeof(id), &one, 1, BPF_ANY) == 0)
			t->cgroup_ids[c] = id;
	}
}

/* Makes every process now in the --cgroup cgroups a target, once: a process
 * that joined since the last scan (moved in, forked by one there) is probed
 * like a -p target, its later loads and execs followed. (One that execs in
 * the cgroup is made a target at once, stopped by the BPF side: see
 * targets__handle_ctl.) Never fails: a cgroup that is gone (the service stopped) has
 * no processes until it comes back. */
void targets__scan_cgroups(struct tracer *t, bool at_open)
{
	size_t c;

	cgroup_update_ids(t);
	for (c = 0; c < t->opts.ncgroups; c++) {
		int *pids = NULL;
		size_t n = 0, i;

		if (cgroup__pids(t->cgroup_dirs[c], &pids, &n) == -ENOMEM)
			log_warn("--cgroup %s: out of memory reading its processes", t->opts.cgroups[c]);
		for (i = 0; i < n; i++)
			cgroup_add(t, c, pids[i], !at_open);
		free(pids);
	}
}

/* Which --cgroup pid is in (the first whose tree lists it), or 0. */
static size_t cgroup_of(struct tracer *t, int pid)
{
	char path[64], line[4096];
	size_t c, best = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *rel;

		if (strncmp(line, "0::", 3) != 0)
			continue;
		rel = line + 3;
		rel[strcspn(rel, "\n")] = '\0';
		for (c = 0; c < t->opts.ncgroups; c++) {
			const char *d = t->cgroup_dirs[c];
			size_t dl = strlen(d), rl = strlen(rel);

			/* cgroup_dirs[c] is MOUNT + rel, or below: compare the tails */
			if (dl >= rl && strcmp(d + dl - rl, rel) == 0) {
				best = c;
				break;
			}
		}
	}
	fclose(f);
	return best;
}
