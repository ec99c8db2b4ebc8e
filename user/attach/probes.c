/* probes.c — attaching the probe set the finders chose for a file (one
 * place that dispatches on it: a SQLite copy's, or Go database/sql's by
 * gosql_attach.c) and the shim's USDT sites, to a process or to every
 * process that maps the file. For a copy:
 * the per-copy configuration the BPF side reads (its layout, exit sites,
 * code range), then entry probes and probes at exit sites or ret
 * instructions, never a uretprobe unless --mode return. Part of the tracer
 * (tracer_int.h); which probes a copy gets is said with -v.
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

/* Returns the lib id for a copy, registering it (and its layout) on first
 * sight. -ENOSPC when ST_MAX_LIBS files are already probed. */
int probes__lib_id(struct tracer *t, const struct sqlite_copy *c)
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
			    c->api_table[0] ? " " : "", c->api_table, c->version[0] ? " (SQLite " : "",
			    c->version, c->version[0] ? ")" : "");
	if (c->finder && (strcmp(c->finder, "extension API table") == 0 || strcmp(c->finder, "Go cgo wrappers") == 0))
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
		char ver[24];

		if (c->layout.version > 0)
			snprintf(ver, sizeof(ver), "%d", c->layout.version);
		else
			snprintf(ver, sizeof(ver), "%s", c->version[0] ? c->version : "unknown");
		log_verbose("%s: other SQLite build (version %s), layout decoded from its code: %s; not decoded: "
			    "%s%s%s", c->path, ver, c->layout.found[0] ? c->layout.found : "nothing",
			    c->layout.missing[0] ? c->layout.missing : "nothing",
			    l->cfg.learn ? "; zSql/db will be learned from its first prepare" : "",
			    l->cfg.db_perr_off >= 0 && l->cfg.mem_z_off >= 0 ? ""
			    : l->cfg.vdbe_zerrmsg_off >= 0
				    ? "; a failed prepare's error carries SQLite's code text, not its message"
				    : "; its errors carry SQLite's code text, not its message");
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

int probes__add_link(struct tracer *t, struct bpf_link *link)
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
	return probes__add_link(t, link);
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
int probes__attach_copy(struct tracer *t, int pid, const struct sqlite_copy *c, char *err, size_t errlen)
{
	static const enum st_fn api_prepares[] = { ST_FN_PREPARE_V2, ST_FN_PREPARE_V3, ST_FN_PREPARE16_V2,
						   ST_FN_PREPARE16_V3 };
	struct sqltrace_bpf *s = t->skel;
	struct bpf_program *api_entry[] = { s->progs.prepare_v2, s->progs.prepare_v3, s->progs.prepare16_v2,
					    s->progs.prepare16_v3 };
	int lib_id = probes__lib_id(t, c), e;
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

/* A C copy for every process that maps it (-b): once per file. */
static int attach_copy_global(struct tracer *t, const struct sqlite_copy *c, char *err, size_t errlen)
{
	int lib_id = probes__lib_id(t, c), e;

	if (lib_id < 0) {
		snprintf(err, errlen, "cannot probe %s: %s", c->path, strerror(-lib_id));
		return lib_id;
	}
	if (t->libs[lib_id].global)
		return 0;
	e = probes__attach_copy(t, -1, c, err, errlen);
	if (e)
		return e;
	t->libs[lib_id].global = true;
	log_verbose("probing %s for every process that maps it", c->path);
	return 0;
}

/* The database/sql probe set (user/attach/gosql_attach.c: its own BPF
 * programs, loaded on first need, whose records this tracer's consumer
 * takes as any other) by the plan in f, for pid. For every process (-1)
 * with -p given, for those processes only: the Go probes have no pid
 * filter of their own. */
static int attach_go(struct tracer *t, int pid, struct sqlite_found *f, char *err, size_t errlen)
{
	bool each = pid < 0 && t->opts.npids;  /* -b with -p */
	size_t i, n = each ? t->opts.npids : 1;
	int e = 0;

	if (!t->go) {
		struct gosql_opts o = { .filter_comm = t->opts.name_filter, .forward = records__handle, .ctx = t };

		e = gosql__new(&o, &t->go, err, errlen);
		if (e)
			return e;
	}
	for (i = 0; !e && i < n; i++)
		e = gosql__attach(t->go, each ? t->opts.pids[i] : pid, f->c.path, f->c.open_path, f->c.dev,
				  f->c.ino, &f->go, err, errlen);
	if (e)
		return e;
	if (!t->go_rb) {
		if (ring_buffer__add(t->rb, gosql__rb_fd(t->go), gosql__record, t->go) != 0) {
			e = -errno;
			snprintf(err, errlen, "cannot read the database/sql probes' ring buffer: %s", strerror(-e));
			return e;
		}
		t->go_rb = true;
	}
	if (pid < 0)
		log_verbose("probing %s's database/sql layer for %s", f->c.path,
			    t->opts.npids ? "the processes given" : "every process that runs it");
	return 0;
}

int probes__attach_found(struct tracer *t, int pid, struct sqlite_found *f, char *err, size_t errlen)
{
	switch (f->layer) {
	case FOUND_C:
		return pid < 0 ? attach_copy_global(t, &f->c, err, errlen)
			       : probes__attach_copy(t, pid, &f->c, err, errlen);
	case FOUND_GO_SQL:
		return attach_go(t, pid, f, err, errlen);
	case FOUND_REFUSED:
		snprintf(err, errlen, "%s", f->why);
		return f->refused;
	case FOUND_NONE:
		break;
	}
	return 0;
}

/* Attaches the shim's two USDT probes found in file path (a library or an
 * executable of process pid; for a process's file, its map_files link) as
 * plain uprobes: the notes are read here with pread (libbpf's USDT attach
 * would map the file, which its owner could truncate under us), each site
 * probed with its is-enabled counter, the trace id's register in the
 * cookie. */
int probes__attach_shim(struct tracer *t, int pid, const char *path, char *err, size_t errlen)
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
			e = probes__add_link(t, link);
			if (!e)
				log_verbose("attached shim probe sqltrace:%s in %s+0x%" PRIx64 " (PID %d)", names[i],
					    path, sites[k].pc_off, pid);
		}
	}
	elf_file__close(ef);
	return e;
}
