/* tracer.c — skeleton lifecycle (open → set rodata → load → attach),
 * target resolution, the ring buffer consumer and its event loop.
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

#define LEARN_CACHE_SLOTS 1024

struct lib {
	char *path;                /* as the target sees it */
	dev_t dev;
	ino_t ino;
	bool same_build;           /* the build this tool links (calibrated) */
	bool global;               /* attached for every process (-b) */
	struct st_lib_cfg cfg;
};

struct file_id {
	dev_t dev;
	ino_t ino;
};

/* A process given by the user (-p, -n, the command): probes attached to it
 * alone, its exit watched through a pidfd. */
struct target {
	int pid;
	int pidfd;
	bool alive;
	bool is_command;
	char comm[32];
	uint64_t entries;
	struct file_id *files;     /* files probed for it (rescans skip them) */
	size_t nfiles;
	uint64_t maps_fp;          /* fingerprint of its mapped files */
	bool watched;              /* its dynamic linker is probed (later loads) */
	struct looked { uint32_t maj, min; uint64_t ino; } *looked;  /* files inspected */
	size_t nlooked, caplooked;
	size_t sqlite_files;       /* SQLite copies probed for it */
	size_t copies_mapped;      /* SQLite copies in its maps at the last scan */
	bool blind_said;           /* "no SQLite in it" said once */
	bool unlocatable;          /* it carries a SQLite whose functions
	                            * cannot be located (said once) */
	bool go_probed;            /* its Go database/sql layer is probed */
	int64_t since_us;          /* when it became a target */
	uint64_t start_time;       /* --cgroup: its start time (pid reuse) */
};

#define SHIM_TAG ((dev_t)1 << 63)
#define CTL_EVENT UINT64_MAX   /* epoll data of the control ring buffer */
#define FILTER_EVENT (1ULL << 40)  /* + index: pidfd of a -p pid with -b */
#define RESCAN_US 1000000      /* look for newly mapped SQLite copies */
#define SEEN_SLOTS 8192
#define CGROUP_SCAN_US 100000  /* --cgroup: look for processes that joined */

/* Text of statements whose prepare was seen while their copy's layout was
 * still being learned (direct-mapped on pid and statement pointer). */
struct learn_slot {
	uint32_t pid;
	uint64_t stmt;
	char *text;
};

/* Processes seen through probes attached for every process (-b): entry
 * counts while they live; removed when they exit. */
struct seen {
	uint32_t pid;              /* 0 free, UINT32_MAX removed */
	uint64_t entries;
};

struct tracer {
	struct tracer_opts opts;
	struct dbnames *dbn;
	struct seen seen[SEEN_SLOTS];
	size_t nseen, seen_removed;
	uint64_t procs_exited;
	int64_t next_rescan_us;
	char **cgroup_dirs;           /* --cgroup, resolved */
	uint64_t *cgroup_ids;         /* their ids in the cgroup_ids map, 0 none */
	int64_t next_cgroup_us;
	bool adding_from_cgroup;      /* add_target: a --cgroup process (quiet when blind) */
	bool detached;                /* detach_all ran: no new target */
	uint64_t room_waited_us;      /* total time waited for room */
	struct st_entry *held;        /* made, waiting for the consumers' room */
	bool command_exited;
	struct sqltrace_bpf *skel;
	struct gosql *go;             /* database/sql probes, made on first need */
	bool go_rb;                   /* their ring buffer is read with ours */
	struct ring_buffer *rb;
	struct ring_buffer *ctl_rb;   /* control records: always read */
	int *filter_fds;              /* -b with -p: a pidfd per pid (-1 gone) */
	size_t nfilter, filter_alive;
	struct watchdog *wd;          /* continues stopped targets if we die */
	struct bpf_link **links;
	size_t nlinks;
	size_t *link_owner;           /* per link: target index + 1, 0 none (--cgroup) */
	size_t cur_owner;             /* owner of the links added now */
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
	if (c->finder && strcmp(c->finder, "symbols") != 0)
		log_verbose("%s: functions named by its %s%s%s%s%s%s", c->path, c->finder,
			    c->api_table[0] ? " at " : "", c->api_table, c->version[0] ? " (SQLite " : "",
			    c->version, c->version[0] ? ")" : "");
	if (c->finder && strcmp(c->finder, "extension API table") == 0)
		log_verbose("%s: only its public API is named: internal functions are reached through it "
			    "or done without", c->path);
	err = layout__self(&self_cfg, &self_id, &self_len, &self_dev, &self_ino);
	if (((self_len > 0 && self_len == c->build_id_len &&
	      memcmp(self_id, c->build_id, self_len) == 0) ||
	     (self_dev == c->dev && self_ino == c->ino)) && self_cfg.vdbe_zsql_off >= 0) {
		l->cfg = self_cfg;
		l->same_build = true;
		log_verbose("%s: same build as ours, layout calibrated (zSql at %d, db at %d, pErr at %d/%d, "
			    "pParse at %d)%s", c->path, self_cfg.vdbe_zsql_off, self_cfg.vdbe_db_off,
			    self_cfg.db_perr_off, self_cfg.mem_z_off, self_cfg.db_pparse_off,
			    err ? " (partial)" : "");
	} else {
		/* What its own code proves (user/find/layout_decode.h); zSql/db not
		 * proven are learned from its first prepare. */
		l->cfg = c->layout.cfg;
		l->cfg.learn = l->cfg.vdbe_zsql_off < 0 || l->cfg.vdbe_db_off < 0;
		log_verbose("%s: other SQLite build (version %d), layout decoded from its code: %s; not decoded: "
			    "%s%s%s", c->path, c->layout.version, c->layout.found[0] ? c->layout.found : "nothing",
			    c->layout.missing[0] ? c->layout.missing : "nothing",
			    l->cfg.learn ? "; zSql/db will be learned from its first prepare" : "",
			    l->cfg.db_perr_off < 0 || l->cfg.mem_z_off < 0
				    ? "; its errors carry SQLite's code text, not its message" : "");
	}
	if (l->same_build) {
		l->cfg.db_adb_off = l->cfg.pager_zfile_off = -1;
		if (layout__self_dbfile(&l->cfg.db_adb_off, &l->cfg.pager_zfile_off) != 0)
			l->cfg.db_adb_off = l->cfg.pager_zfile_off = -1;
	}
	l->cfg.text_lo = c->text_lo;
	l->cfg.text_hi = c->text_hi;
	for (size_t w = 0; w < 2; w++) {
		l->cfg.wrap_ret[w] = c->wrap_ret[w];
		l->cfg.wrap_depth[w] = c->wrap_depth[w];
	}
	if (c->wrap_ret[0])
		log_verbose("%s: sqlite3_prepare_v2 returns from sqlite3LockAndPrepare at 0x%" PRIx64
			    " with its caller at +0x%x: prepares told by the program's call", c->path, c->wrap_ret[0],
			    c->wrap_depth[0] + 8);
	log_verbose("%s: SQLite code at file offsets 0x%llx-0x%llx", c->path, l->cfg.text_lo, l->cfg.text_hi);
	/* A step's outcome: read from the statement's state at an exit site
	 * of sqlite3_step (no return probe), unless that state's layout is
	 * unknown (the result at its ret instructions) or --mode return asks
	 * for uretprobes. */
	l->cfg.step_ret = t->opts.return_mode || l->cfg.vdbe_state_off < 0 || l->cfg.vdbe_rc_off < 0;
	if (!l->cfg.step_ret)
		log_verbose("%s: statement state at %d (ready %u, running %u, halted %u), rc at %d, "
			    "pResultRow at %d", c->path, l->cfg.vdbe_state_off, l->cfg.state_ready, l->cfg.state_run,
			    l->cfg.state_halt, l->cfg.vdbe_rc_off, l->cfg.vdbe_resrow_off);
	log_verbose("%s: step outcomes %s", c->path,
		    !l->cfg.step_ret ? "read from the statement at sqlite3_step's exit sites (no return probe)"
		    : t->opts.return_mode ? "at sqlite3_step's return (uretprobe, --mode return)"
					  : "at sqlite3_step's ret instructions (statement state not known)");
	/* A prepare's return is probed only when something needs it: timed
	 * prepares, learning this build's layout, or no sqlite3ErrorWithMsg to
	 * catch failures at (nor the internal prepare). */
	l->cfg.prepare_ret = t->opts.prepare_time || l->cfg.learn || !c->fn_off[ST_FN_LOCK_AND_PREPARE] ||
			     !c->fn_off[ST_FN_ERROR_WITH_MSG] || !l->cfg.text_hi || l->cfg.db_pparse_off < 0;
	log_verbose("%s: prepares probed at %s", c->path,
		    l->cfg.prepare_ret ? "entry and return" : "entry only (failures at sqlite3ErrorWithMsg)");
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
	struct bpf_link **grown;
	size_t *owners, i;

	if (t->opts.ncgroups) {
		/* --cgroup: links of exited targets are released (see
		 * release_target): their slots are used again. */
		for (i = 0; i < t->nlinks; i++) {
			if (!t->links[i]) {
				t->links[i] = link;
				t->link_owner[i] = t->cur_owner;
				return 0;
			}
		}
		owners = realloc(t->link_owner, (t->nlinks + 1) * sizeof(*owners));
		if (!owners) {
			bpf_link__destroy(link);
			return -ENOMEM;
		}
		t->link_owner = owners;
		t->link_owner[t->nlinks] = t->cur_owner;
	}
	grown = realloc(t->links, (t->nlinks + 1) * sizeof(*grown));
	if (!grown) {
		bpf_link__destroy(link);
		return -ENOMEM;
	}
	t->links = grown;
	t->links[t->nlinks++] = link;
	return 0;
}

static int attach_one(struct tracer *t, struct bpf_program *prog, int pid, const char *path,
		      uint64_t off, uint64_t cookie, bool ret, const char *fn, bool sstep, uint32_t moved,
		      char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = cookie, .retprobe = ret);
	struct bpf_link *link;
	int e;

	link = bpf_program__attach_uprobe_opts(prog, pid, path, off, &uo);
	if (!link) {
		e = -errno;
		snprintf(err, errlen, "cannot attach %s to %s%s in PID %d: %s", ret ? "uretprobe" : "uprobe",
			 fn, "", pid, strerror(-e));
		return e;
	}
	if (moved)
		log_verbose("attached %s at %s+0x%" PRIx64 " (PID %d), moved %u bytes past the start to an "
			    "instruction the kernel emulates", fn, path, off, pid, moved);
	else
		log_verbose("attached %s%s at %s+0x%" PRIx64 " (PID %d)%s", fn, ret ? " (return)" : "", path, off,
			    pid, sstep && !ret ? ", on an instruction the kernel single-steps (slower hits)" : "");
	return add_link(t, link);
}

/* Attaches the entry probe prog at function fn of copy c (lib lib_id). */
static int attach_entry(struct tracer *t, struct bpf_program *prog, int pid, const struct sqlite_copy *c,
			int lib_id, enum st_fn fn, char *err, size_t errlen)
{
	uint64_t off = c->fn_off[fn];

	return attach_one(t, prog, pid, c->open_path, off, ST_COOKIE(lib_id, c->fn_spdelta[fn] / 8, off), false,
			  st_fn_names[fn], c->fn_sstep[fn], c->fn_moved[fn], err, errlen);
}

/* Attaches the return side of function fn: a uretprobe in --mode return;
 * else exit (when given) on each of its exit sites (retsites.h: an emulated
 * instruction before the ret where there is one), with the result's
 * register in the cookie when need_rc; else reti on each ret instruction
 * (the result in rax). Sites that cannot give the result when it is needed
 * make it use the ret instructions. Returns 0, -ENOENT when where it returns
 * is not known (nothing attached), or -errno. */
static int attach_return(struct tracer *t, struct bpf_program *uret, struct bpf_program *reti,
			 struct bpf_program *exit, bool need_rc, int pid, const struct sqlite_copy *c, int lib_id,
			 enum st_fn fn, char *err, size_t errlen)
{
	const struct ret_site *sites = c->fn_exits[fn];
	int n = c->fn_nexits[fn], i, e;

	if (t->opts.return_mode)
		return attach_one(t, uret, pid, c->open_path, c->fn_off[fn], ST_COOKIE(lib_id, 0, c->fn_off[fn]),
				  true, st_fn_names[fn], false, 0, err, errlen);
	for (i = 0; exit && need_rc && i < n; i++)
		if (sites[i].result_reg < 0)
			exit = NULL;
	if (!exit) {
		sites = c->fn_rets[fn];
		n = c->fn_nrets[fn];
	}
	if (n <= 0)
		return -ENOENT;
	for (i = 0; i < n; i++) {
		uint64_t off = sites[i].off, cookie = ST_COOKIE(lib_id, sites[i].sp_delta / 8, off);
		bool at_ret = !exit;
		char what[96];

		if (at_ret)
			snprintf(what, sizeof(what), "%s (ret instruction)", st_fn_names[fn]);
		else
			snprintf(what, sizeof(what), "%s (exit site, entry rsp = rsp + 0x%x)", st_fn_names[fn],
				 sites[i].sp_delta);
		if (exit && need_rc)
			cookie = ST_COOKIE_WITH_RES(cookie, sites[i].result_reg);
		e = attach_one(t, exit ? exit : reti, pid, c->open_path, off, cookie, false, what, at_ret, 0, err,
			       errlen);
		if (e)
			return e;
	}
	return 0;
}

/* Attaches the probe set that fits copy c (see bpf/sqltrace.bpf.c): no
 * uretprobe unless --mode return. Says with -v what is probed how, and
 * warns once per copy about what cannot be seen. */
static int attach_copy(struct tracer *t, int pid, const struct sqlite_copy *c, char *err, size_t errlen)
{
	static const enum st_fn api_prepares[] = { ST_FN_PREPARE_V2, ST_FN_PREPARE_V3, ST_FN_PREPARE16_V2,
						   ST_FN_PREPARE16_V3 };
	struct sqltrace_bpf *s = t->skel;
	struct bpf_program *api_entry[] = { s->progs.prepare_v2, s->progs.prepare_v3, s->progs.prepare16_v2,
					    s->progs.prepare16_v3 };
	int lib_id = lib_id_for(t, c), e;
	struct lib *l;
	size_t i;

	if (lib_id < 0) {
		snprintf(err, errlen, "cannot probe %s in PID %d: %s", c->path, pid,
			 lib_id == -ENOSPC ? "too many SQLite files probed" : strerror(-lib_id));
		return lib_id;
	}
	l = &t->libs[lib_id];
	/* Steps first: the step's return side before its entry. */
	if (l->cfg.step_ret) {
		e = attach_return(t, s->progs.step_ret, s->progs.step_reti, s->progs.step_exit_rc, true, pid, c,
				  lib_id, ST_FN_STEP, err, errlen);
		if (e == -ENOENT)
			snprintf(err, errlen, "cannot trace %s safely: its statements' layout is not known and "
				 "where sqlite3_step returns cannot be found (--mode return would use "
				 "uretprobes, which kill programs that switch stacks)", c->path);
		if (e)
			return e;
	} else {
		e = attach_return(t, NULL, NULL, s->progs.step_exit, false, pid, c, lib_id, ST_FN_STEP, err, errlen);
		if (e == -ENOENT)
			log_warn("%s: where sqlite3_step returns cannot be found: an execution ends at the "
				 "program's next SQLite call on its thread", c->path);
		else if (e)
			return e;
	}
	if ((e = attach_entry(t, s->progs.step_enter, pid, c, lib_id, ST_FN_STEP, err, errlen)))
		return e;
	if (c->fn_off[ST_FN_RESET] &&
	    (e = attach_entry(t, s->progs.reset_enter, pid, c, lib_id, ST_FN_RESET, err, errlen)))
		return e;
	if (c->fn_off[ST_FN_FINALIZE] &&
	    (e = attach_entry(t, s->progs.finalize_enter, pid, c, lib_id, ST_FN_FINALIZE, err, errlen)))
		return e;
	/* Prepares. */
	if (!l->cfg.prepare_ret) {
		if ((e = attach_entry(t, s->progs.lock_and_prepare, pid, c, lib_id, ST_FN_LOCK_AND_PREPARE, err,
				      errlen)) ||
		    (e = attach_entry(t, s->progs.prepare_error, pid, c, lib_id, ST_FN_ERROR_WITH_MSG, err, errlen)))
			return e;
	} else if (t->opts.return_mode && c->fn_off[ST_FN_LOCK_AND_PREPARE]) {
		if ((e = attach_return(t, s->progs.prepare_ret, NULL, NULL, true, pid, c, lib_id,
				       ST_FN_LOCK_AND_PREPARE, err, errlen)) ||
		    (e = attach_entry(t, s->progs.lock_and_prepare_ret, pid, c, lib_id, ST_FN_LOCK_AND_PREPARE, err,
				      errlen)))
			return e;
	} else {
		for (i = 0; i < sizeof(api_prepares) / sizeof(api_prepares[0]); i++) {
			enum st_fn fn = api_prepares[i];

			if (!c->fn_off[fn])
				continue;
			e = attach_return(t, s->progs.prepare_ret, s->progs.prepare_reti, NULL, true, pid, c, lib_id, fn,
					  err, errlen);
			if (e == -ENOENT) {
				log_warn("%s: where %s returns cannot be found: its failed prepares are not seen%s",
					 c->path, st_fn_names[fn], l->cfg.learn ? " and it cannot teach the layout" : "");
				continue;
			}
			if (e || (e = attach_entry(t, api_entry[i], pid, c, lib_id, fn, err, errlen)))
				return e;
		}
	}
	/* sqlite3_exec: one record per call, at its return. */
	if (c->fn_off[ST_FN_EXEC]) {
		e = attach_return(t, s->progs.exec_ret, s->progs.exec_reti, NULL, true, pid, c, lib_id, ST_FN_EXEC,
				  err, errlen);
		if (e == -ENOENT)
			log_warn("%s: where sqlite3_exec returns cannot be found: sqlite3_exec calls are not "
				 "reported", c->path);
		else if (e || (e = attach_entry(t, s->progs.exec_enter, pid, c, lib_id, ST_FN_EXEC, err, errlen)))
			return e;
	}
	/* Opens, only where a connection does not lead to its file name. */
	if (l->cfg.db_adb_off < 0) {
		static const enum st_fn opens[] = { ST_FN_OPEN, ST_FN_OPEN_V2, ST_FN_OPEN16 };

		for (i = 0; i < 3; i++) {
			if (!c->fn_off[opens[i]])
				continue;
			e = attach_entry(t, opens[i] == ST_FN_OPEN16 ? s->progs.open_utf16 : s->progs.open_utf8, pid,
					 c, lib_id, opens[i], err, errlen);
			if (e)
				return e;
		}
	}
	return 0;
}

/* The pt_regs index (user/find/probepos.h) of the register a USDT argument spec
 * names ("8@%rax": rax), or -1 when it is not a plain 64-bit register. */
static int usdt_arg_reg(const char *args)
{
	static const struct { const char *name; int idx; } regs[] = {
		{ "rax", ARG_REG_RAX }, { "rbx", ARG_REG_RBX }, { "rcx", ARG_REG_RCX }, { "rdx", ARG_REG_RDX },
		{ "rsi", ARG_REG_RSI }, { "rdi", ARG_REG_RDI }, { "rbp", ARG_REG_RBP }, { "r8", ARG_REG_R8 },
		{ "r9", ARG_REG_R9 }, { "r10", ARG_REG_R10 }, { "r11", ARG_REG_R11 }, { "r12", ARG_REG_R12 },
		{ "r13", ARG_REG_R13 }, { "r14", ARG_REG_R14 }, { "r15", ARG_REG_R15 },
	};
	const char *at = strchr(args, '@');
	size_t i, n;

	if (!at || at[1] != '%')
		return -1;
	n = strcspn(at + 2, " ");
	for (i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		if (strlen(regs[i].name) == n && strncmp(at + 2, regs[i].name, n) == 0)
			return regs[i].idx;
	return -1;
}

/* Attaches the shim's two USDT probes found in file path (a library or an
 * executable of process pid; for a process's file, its map_files link) as
 * plain uprobes: the notes are read here with pread (libbpf's USDT attach
 * would map the file, which its owner could truncate under us), each site
 * probed with its is-enabled counter, the trace id's register in the
 * cookie. */
static int attach_shim(struct tracer *t, int pid, const char *path, char *err, size_t errlen)
{
	static const char *const names[2] = { "set_trace_id", "clear_trace_id" };
	struct elf_file *ef = elf_file__open(path);
	int i, k, e = 0;

	if (!ef) {
		e = -errno;
		snprintf(err, errlen, "cannot read the sqltrace shim in %s (PID %d): %s", path, pid, strerror(-e));
		return e;
	}
	for (i = 0; i < 2 && !e; i++) {
		struct usdt_site sites[8];
		struct bpf_program *prog = i == 0 ? t->skel->progs.shim_set : t->skel->progs.shim_clear;
		int n = elf_file__usdt_sites(ef, "sqltrace", names[i], sites, 8);

		if (n <= 0 || n > 8) {
			snprintf(err, errlen, "the sqltrace shim in %s (PID %d): %s probe sites for %s", path, pid,
				 n > 8 ? "too many" : "no readable", names[i]);
			e = n < 0 ? n : -E2BIG;
			break;
		}
		for (k = 0; k < n && !e; k++) {
			int reg = i == 0 ? usdt_arg_reg(sites[k].args) : 0;
			LIBBPF_OPTS(bpf_uprobe_opts, uo, .ref_ctr_offset = sites[k].sema_off,
				    .bpf_cookie = ST_COOKIE_WITH_RES(ST_COOKIE(0, 0, sites[k].pc_off), reg < 0 ? 0 : reg));
			struct bpf_link *link;

			if (reg < 0) {
				snprintf(err, errlen, "the sqltrace shim in %s: %s's trace id is not in a register "
					 "(%s)", path, names[i], sites[k].args);
				e = -ENOTSUP;
				break;
			}
			link = bpf_program__attach_uprobe_opts(prog, pid, path, sites[k].pc_off, &uo);
			if (!link) {
				e = -errno;
				snprintf(err, errlen, "cannot attach to the sqltrace shim's %s probe in %s (PID %d): %s",
					 names[i], path, pid, strerror(-e));
				break;
			}
			e = add_link(t, link);
			if (!e)
				log_verbose("attached shim probe sqltrace:%s in %s+0x%" PRIx64 " (PID %d)", names[i],
					    path, sites[k].pc_off, pid);
		}
	}
	elf_file__close(ef);
	return e;
}

static int pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

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
 * the reason target.c gave (in why), so that the user never takes its
 * silence for a quiet program. */
static void say_unlocatable(struct target *tg, const char *why)
{
	const char *at = strstr(why, "carries SQLite"), *start;

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

static int handle_record(void *ctx, void *data, size_t size);

/* A Go executable in which no C SQLite was found: its database/sql layer
 * (user/gosql_attach.c; its own BPF programs, loaded on first need, whose
 * records this tracer's consumer takes as any other). Returns 1 when
 * probed, 0 when path is not a Go program using database/sql, or a
 * negative errno with err set. */
static int attach_go(struct tracer *t, int pid, const char *path, char *err, size_t errlen)
{
	int e;

	if (!t->go) {
		struct gosql_opts o = { .filter_comm = t->opts.name_filter, .forward = handle_record, .ctx = t };

		e = gosql__new(&o, &t->go, err, errlen);
		if (e)
			return e;
	}
	e = gosql__attach(t->go, pid, path, err, errlen);
	if (e > 0 && !t->go_rb) {
		if (ring_buffer__add(t->rb, gosql__rb_fd(t->go), gosql__record, t->go) != 0) {
			e = -errno;
			snprintf(err, errlen, "cannot read the database/sql probes' ring buffer: %s", strerror(-e));
			return e;
		}
		t->go_rb = true;
	}
	return e;
}

/* Attaches, for process tg, every SQLite copy and shim it maps that is not
 * probed for it yet (files inspected by an earlier scan are not read
 * again: a rescan after each load costs only the new files). Returns the number of copies newly probed, or a
 * negative errno with err set. */
static int attach_mapped(struct tracer *t, struct target *tg, char *err, size_t errlen)
{
	struct sqlite_copy *copies = NULL;
	size_t ncopies = 0, nshims = 0, i;
	char **shims = NULL;
	char why[1024];
	int e, added = 0;

	e = target__scan_new(tg->pid, looked_before, tg, &copies, &ncopies,
			     (t->opts.trace_id_from & TRACE_ID_FROM_SHIM) ? &shims : NULL, &nshims, why, sizeof(why));
	if (e) {
		snprintf(err, errlen, "cannot inspect PID %d: %s", tg->pid, why);
		return e;
	}
	/* (the caller gives the reason itself when nothing at all is found) */
	if (ncopies || tg->nfiles)
		say_unlocatable(tg, why);
	else if (strstr(why, "carries SQLite"))
		tg->unlocatable = true;
	for (i = 0; i < ncopies; i++) {
		if (target_has_file(tg, copies[i].dev, copies[i].ino))
			continue;
		e = attach_copy(t, tg->pid, &copies[i], err, errlen);
		if (!e)
			e = target_add_file(tg, copies[i].dev, copies[i].ino);
		if (e) {
			tg->nlooked = 0;  /* not probed: every file is looked at again next time */
			goto out;
		}
		log_verbose("PID %d (%s): probing %s", tg->pid, tg->comm, copies[i].path);
		tg->sqlite_files++;
		added++;
	}
	for (i = 0; i < nshims; i++) {
		struct stat st;

		/* Shim files are kept apart from SQLite files (a static
		 * executable can be both): tagged device number. */
		if (stat(shims[i], &st) != 0 || target_has_file(tg, st.st_dev ^ SHIM_TAG, st.st_ino))
			continue;
		e = attach_shim(t, tg->pid, shims[i], err, errlen);
		if (!e)
			e = target_add_file(tg, st.st_dev ^ SHIM_TAG, st.st_ino);
		if (e)
			goto out;
	}
	if (ncopies == 0) {
		char exe[64];

		snprintf(exe, sizeof(exe), "/proc/%d/exe", tg->pid);
		e = attach_go(t, tg->pid, exe, err, errlen);
		if (e < 0)
			goto out;
		if (e > 0 && !tg->go_probed) {
			tg->go_probed = true;
			tg->sqlite_files++;
			added++;
			log_verbose("PID %d (%s): probing its database/sql layer (no C SQLite in it)", tg->pid, tg->comm);
		}
	}
	tg->copies_mapped = tg->sqlite_files;
	if (ncopies == 0 && tg->nfiles == 0 && !tg->go_probed) {
		snprintf(err, errlen, "cannot attach to PID %d: %s", tg->pid, why);
		e = -ENOENT;
		goto out;
	}
	e = added;
out:
	target__free(copies, ncopies);
	target__free_paths(shims, nshims);
	return e;
}

/* Probes one file for one process before that process has mapped it (the
 * command, about to exec). Returns 0 (also when the file holds no SQLite)
 * or a negative errno with err set. */
static int attach_file_for(struct tracer *t, struct target *tg, const char *path, char *err,
			   size_t errlen)
{
	struct sqlite_copy c;
	bool shim;
	char why[512];
	int e;

	if (target__inspect_file(path, path, &c, &shim, why, sizeof(why)) != 0) {
		say_unlocatable(tg, why);
		e = attach_go(t, tg->pid, path, err, errlen);
		if (e > 0 && !tg->go_probed) {
			tg->go_probed = true;
			tg->sqlite_files++;
		}
		return e < 0 ? e : 0;
	}
	e = 0;
	if (c.fn_off[ST_FN_PREPARE_V2] && !target_has_file(tg, c.dev, c.ino)) {
		e = attach_copy(t, tg->pid, &c, err, errlen);
		if (!e)
			e = target_add_file(tg, c.dev, c.ino);
		if (!e)
			tg->sqlite_files++;
	}
	if (!e && shim && (t->opts.trace_id_from & TRACE_ID_FROM_SHIM))
		e = attach_shim(t, tg->pid, path, err, errlen);
	free(c.path);
	free(c.open_path);
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
	e = add_link(t, link);
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

static int add_target(struct tracer *t, int pid, bool is_command, char *err, size_t errlen)
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
static int add_binary(struct tracer *t, const char *path, char *err, size_t errlen)
{
	struct sqlite_copy c;
	char why[512];
	bool shim;
	int e, lib_id;

	e = target__inspect_file(path, path, &c, &shim, why, sizeof(why));
	if (e) {
		/* No C SQLite: a Go program's database/sql layer, for every
		 * process, or only for those of -p. */
		size_t i;
		int g = 0;

		for (i = 0; g >= 0 && i < (t->opts.npids ? t->opts.npids : 1); i++)
			g = attach_go(t, t->opts.npids ? t->opts.pids[i] : -1, path, err, errlen);
		if (g > 0) {
			log_verbose("probing %s's database/sql layer for %s", path,
				    t->opts.npids ? "the processes given" : "every process that runs it");
			return 0;
		}
		if (g < 0)
			return g;
		snprintf(err, errlen, "cannot trace -b %s", why);
		return e;
	}
	if (c.fn_off[ST_FN_PREPARE_V2]) {
		lib_id = lib_id_for(t, &c);
		if (lib_id < 0) {
			e = lib_id;
			snprintf(err, errlen, "cannot probe %s: %s", path, strerror(-e));
		} else if (!t->libs[lib_id].global) {
			e = attach_copy(t, -1, &c, err, errlen);
			if (!e) {
				t->libs[lib_id].global = true;
				log_verbose("probing %s for every process that maps it", path);
			}
		}
	}
	if (!e && shim && (t->opts.trace_id_from & TRACE_ID_FROM_SHIM))
		e = attach_shim(t, -1, path, err, errlen);
	free(c.path);
	free(c.open_path);
	return e;
}

/* Looks again at the explicit targets whose mapped files changed (a
 * library loaded with dlopen, a new program after exec). */
static void rescan_targets(struct tracer *t)
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

static struct seen *seen_slot(struct tracer *t, uint32_t pid, bool create)
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
	struct seen *s = seen_slot(t, pid, false);

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
				struct seen *n = seen_slot(t, old[i].pid, true);

				if (n)
					n->entries = old[i].entries;
			}
		}
	}
}

static void process_gone(struct tracer *t, int pid, bool exec);

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

	/* The newest first: with --cgroup a pid may come back, reused. */
	for (i = t->ntargets; i-- > 0;)
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

static void deliver(struct tracer *t, struct st_entry *e)
{
	t->stats.entries++;
	t->opts.on_entry(e, t->opts.ctx);
}

/* Hands the held entry over once the consumers have room, waiting at most
 * ms for it. Returns whether nothing is held any more. */
static bool release_held(struct tracer *t, int ms)
{
	int64_t t0;
	bool room;

	if (!t->held)
		return true;
	t0 = now_us(CLOCK_MONOTONIC);
	room = t->opts.wait_room(t->opts.ctx, (unsigned)ms);
	t->room_waited_us += (uint64_t)(now_us(CLOCK_MONOTONIC) - t0);
	t->stats.waited_ms = t->room_waited_us / 1000;
	if (!room)
		return false;
	deliver(t, t->held);
	t->held = NULL;
	return true;
}

static int handle_record(void *ctx, void *data, size_t size)
{
	struct tracer *t = ctx;
	const struct st_event *ev = data;
	const char *fallback = NULL, *lib = gosql__lib(t->go, ev->lib_id);
	struct st_entry *e;
	struct target *tg;

	if (size < offsetof(struct st_event, sql)) {
		t->stats.bad_records++;
		return 0;
	}
	switch (ev->kind) {
	case ST_EV_LEARN:
		handle_learn(t, ev, size);
		return 0;
	case ST_EV_OPEN: {
		size_t len;
		char *name = event__text(ev, size, &len);

		if (name) {
			dbnames__set(t->dbn, ev->pid, ev->db, name);
			free(name);
		}
		return 0;
	}
	case ST_EV_PROC_EXIT:
	case ST_EV_PROC_EXEC:
		process_gone(t, (int)ev->pid, ev->kind == ST_EV_PROC_EXEC);
		return 0;
	default:
		break;
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
	if (ev->db) {
		const char *name = dbnames__get(t->dbn, ev->pid, ev->db);

		if (name[0])
			entry__set_str(&e->db_file, name);
	}
	tg = target_of(t, (int)ev->pid);
	if (tg) {
		tg->entries++;
	} else {
		struct seen *sn = seen_slot(t, ev->pid, true);

		if (sn && sn->entries++ == 0)
			log_verbose("PID %u (%s): first statement", ev->pid, e->process);
	}
	if (t->opts.wait_room && !t->opts.wait_room(t->opts.ctx, 0)) {
		/* No room: keep it, and leave the rest in the ring buffer
		 * until there is (tracer__run). */
		t->held = e;
		return -EAGAIN;
	}
	deliver(t, e);
	return 0;
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
static void process_gone(struct tracer *t, int pid, bool exec)
{
	struct target *tg = target_of(t, pid);

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
		struct seen *sn = seen_slot(t, (uint32_t)pid, false);

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
static int handle_ctl(void *ctx, void *data, size_t size)
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
	tg = target_of(t, (int)c->pid);
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
	tg = target_of(t, pid);
	start = proc_start_time(pid);
	if (!start || (tg && (tg->alive || tg->start_time == start)))
		return;  /* gone already, or known */
	before = t->ntargets;
	t->adding_from_cgroup = true;
	t->cur_owner = before + 1;
	e = add_target(t, pid, false, err, sizeof(err));
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
 * handle_ctl.) Never fails: a cgroup that is gone (the service stopped) has
 * no processes until it comes back. */
static void scan_cgroups(struct tracer *t, bool at_open)
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
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.rb), handle_record, t, NULL);
	if (!t->rb) {
		e = -errno;
		snprintf(err, errlen, "cannot open the ring buffer: %s", strerror(-e));
		goto fail;
	}
	t->ctl_rb = ring_buffer__new(bpf_map__fd(t->skel->maps.ctl), handle_ctl, t, NULL);
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
		if ((e = add_link(t, l1)) || (e = add_link(t, l2)))
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
		e = add_binary(t, opts->binaries[i], err, errlen);
		if (e)
			goto fail;
	}
	if (!t->skel->rodata->filter_pids) {
		size_t skipped = 0;

		for (i = 0; i < opts->npids; i++) {
			e = add_target(t, opts->pids[i], false, err, errlen);
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
		e = add_target(t, opts->command_pid, true, err, errlen);
		if (e)
			goto fail;
	}
	if (opts->ncgroups) {
		char **procs;

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
		procs = calloc(opts->ncgroups, sizeof(*procs));
		for (i = 0; procs && i < opts->ncgroups; i++)
			if (asprintf(&procs[i], "%s/cgroup.procs", t->cgroup_dirs[i]) < 0)
				procs[i] = NULL;
		if (!t->wd && !t->opts.probe_only && procs)
			t->wd = watchdog__start_cgroups(procs, opts->ncgroups);
		for (i = 0; procs && i < opts->ncgroups; i++)
			free(procs[i]);
		free(procs);
		if (!t->wd && !t->opts.probe_only) {
			e = -errno;
			snprintf(err, errlen, "cannot start the watchdog process: %s", strerror(errno));
			goto fail;
		}
		scan_cgroups(t, true);
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
	if (release_held(t, 0))
		ring_buffer__consume(t->rb);
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
			scan_cgroups(t, false);
			t->next_cgroup_us = now + CGROUP_SCAN_US;
		}
		if (now >= t->next_rescan_us) {
			rescan_targets(t);
			t->next_rescan_us = now + RESCAN_US;
		}
		if (t->opts.on_tick)
			t->opts.on_tick(t->opts.ctx);
		/* Backpressure: while an entry waits for room, wait on the
		 * consumers instead of the ring (which stays readable). */
		if (t->held) {
			ring_buffer__consume(t->ctl_rb);
			if (!release_held(t, t->opts.drain_ms))
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
			while (t->held && !give_up) {
				if (release_held(t, 100))
					progress = now_us(CLOCK_MONOTONIC);
				else if (now_us(CLOCK_MONOTONIC) - progress > 10000000)
					give_up = true;
			}
			if (t->held) {
				deliver(t, t->held);
				t->held = NULL;
			}
			if (ring_buffer__consume(t->rb) >= 0)
				break;
		}
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
