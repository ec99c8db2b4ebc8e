/* target.c — the C finders: SQLite's C functions in one ELF file (symbols,
 * debug file, extension API table, Go cgo wrappers; see target.h), and the
 * process facts the tracer needs besides (its dynamic linker, its name). */
#include "target.h"

#include <errno.h>
#include <inttypes.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apitable.h"
#include "cgofind.h"
#include "codewalk.h"
#include "ehframe.h"
#include "elfsym.h"
#include "inroot.h"
#include "probepos.h"
#include "retsites.h"
#include "procmaps.h"

const char *const st_fn_names[ST_FN_MAX] = {
	[ST_FN_PREPARE_V2] = "sqlite3_prepare_v2",
	[ST_FN_PREPARE_V3] = "sqlite3_prepare_v3",
	[ST_FN_PREPARE16_V2] = "sqlite3_prepare16_v2",
	[ST_FN_PREPARE16_V3] = "sqlite3_prepare16_v3",
	[ST_FN_STEP] = "sqlite3_step",
	[ST_FN_RESET] = "sqlite3_reset",
	[ST_FN_FINALIZE] = "sqlite3_finalize",
	[ST_FN_EXEC] = "sqlite3_exec",
	[ST_FN_LOCK_AND_PREPARE] = "sqlite3LockAndPrepare",
	[ST_FN_OPEN] = "sqlite3_open",
	[ST_FN_OPEN_V2] = "sqlite3_open_v2",
	[ST_FN_OPEN16] = "sqlite3_open16",
	[ST_FN_VDBE_HALT] = "sqlite3VdbeHalt",
	[ST_FN_VDBE_RESET] = "sqlite3VdbeReset",
	[ST_FN_VDBE_EXEC] = "sqlite3VdbeExec",
	[ST_FN_INIT_ONE] = "sqlite3InitOne",
	[ST_FN_CLOSE] = "sqlite3_close",
	[ST_FN_ERROR_WITH_MSG] = "sqlite3ErrorWithMsg",
};

int target__find_ldso(int pid, char *path, size_t len, uint64_t *off)
{
	int64_t d;

	return target__find_ldso2(pid, path, len, off, &d);
}

int target__find_ldso2(int pid, char *path, size_t len, uint64_t *off, int64_t *r_debug_delta)
{
	struct map_entry *maps = NULL;
	size_t n = 0, i;
	int err = -ENOENT;

	if (procmaps__read_pid(pid, &maps, &n) != 0)
		return -ESRCH;
	for (i = 0; i < n && err; i++) {
		const struct map_entry *m = &maps[i];
		const char *base = m->path ? strrchr(m->path, '/') : NULL;
		struct elf_file *ef;
		struct stat st;
		uint64_t va, sz;
		int fd;

		if (!base || m->inode == 0 || m->deleted || (strncmp(base + 1, "ld-", 3) != 0 &&
							     strncmp(base + 1, "ld.so", 5) != 0))
			continue;
		snprintf(path, len, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start, m->end);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != (ino_t)m->inode) {
			close(fd);
			continue;
		}
		ef = elf_file__open_fd(fd, path);
		if (!ef)
			continue;
		if (elf_file__find_func(ef, "_dl_debug_state", &va, &sz) == 0 &&
		    elf_file__vaddr_to_offset(ef, va, off) == 0) {
			uint64_t rd, rsz;

			err = 0;
			*r_debug_delta = elf_file__find_object(ef, "_r_debug", &rd, &rsz) == 0 && rsz >= 32
						 ? (int64_t)(rd - va) : 0;
		}
		elf_file__close(ef);
	}
	procmaps__free(maps, n);
	return err;
}

int target__comm(int pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
		n--;
	buf[n] = '\0';
	return 0;
}

/* Target of the first call in a prepare wrapper into [lo, hi) (SQLite's
 * code: calls elsewhere, such as a -pg build's mcount@plt, are stepped
 * over), 0 when it has none. */
static uint64_t wrapper_call(struct elf_file *sym, struct elf_file *ef, const char *name,
			     uint64_t lo, uint64_t hi)
{
	uint8_t code[64];
	uint64_t vaddr, size, target = 0;
	ssize_t n;

	if (elf_file__find_func(sym, name, &vaddr, &size))
		return 0;
	n = elf_file__read_vaddr(ef, vaddr, code, size && size < sizeof(code) ? size : sizeof(code));
	if (n <= 0 || probepos__first_call_in(code, (size_t)n, vaddr, lo, hi, &target))
		return 0;
	return target;
}

/* For sqlite3_prepare_v2 and _v3, which call sqlite3LockAndPrepare (at
 * vaddr lap): where it returns into each and the wrapper's frame there, so
 * the BPF side can find the wrapper's caller (c->wrap_ret/wrap_depth;
 * left 0 when a wrapper is not shaped so). */
static void wrapper_frames(struct elf_file *sym, struct elf_file *ef, struct sqlite_copy *c, uint64_t lap)
{
	static const char *const names[2] = { "sqlite3_prepare_v2", "sqlite3_prepare_v3" };
	int i;

	for (i = 0; i < 2; i++) {
		uint64_t vaddr, size, r = 0, off;
		uint32_t depth = 0;
		uint8_t code[128];
		ssize_t n;

		c->wrap_ret[i] = 0;
		c->wrap_depth[i] = 0;
		if (elf_file__find_func(sym, names[i], &vaddr, &size) || !size)
			continue;
		n = elf_file__read_vaddr(ef, vaddr, code, size < sizeof(code) ? size : sizeof(code));
		if (n <= 0 || retsites__call_frame(code, (size_t)n, vaddr, lap, &r, &depth) != 0 ||
		    elf_file__vaddr_to_offset(ef, r, &off) != 0)
			continue;
		c->wrap_ret[i] = off;
		c->wrap_depth[i] = depth;
	}
}

static bool named(struct elf_file *sym, const char *name)
{
	uint64_t vaddr, size;

	return elf_file__find_func(sym, name, &vaddr, &size) == 0;
}

/* True when function name calls target with its own rdi, rsi and rdx. */
static bool passes_args_on(struct elf_file *sym, struct elf_file *ef, const char *name, uint64_t target)
{
	struct codewalk *w = malloc(sizeof(*w));
	uint64_t vaddr, size;
	uint8_t code[256];
	ssize_t n;
	bool yes = false;
	int i;

	if (!w || elf_file__find_func(sym, name, &vaddr, &size) != 0 || !size) {
		free(w);
		return false;
	}
	n = elf_file__read_vaddr(ef, vaddr, code, size < sizeof(code) ? size : sizeof(code));
	if (n > 0 && codewalk__run(code, (size_t)n, vaddr, w) == 0)
		for (i = 0; i < w->nev && !yes; i++) {
			const struct cw_event *e = &w->ev[i];

			yes = e->kind == CW_CALL && (uint64_t)e->x == target && cw_is_arg(w, e->a, 0) &&
			      cw_is_arg(w, e->b, 1) && cw_is_arg(w, e->c, 2);
		}
	free(w);
	return yes;
}

/* Finds SQLite's internal sqlite3LockAndPrepare in a build that does not
 * name it (Debian's libsqlite3 keeps it static): it is the function that
 * sqlite3_prepare_v2 and sqlite3_prepare_v3 both call first. Probing it
 * instead of the four API variants gives one probe site, on an emulated
 * instruction, with UTF-8 text even for prepare16. Leaves the offset 0
 * (API probes are used) when the evidence does not agree. The calls a -pg
 * build starts every function with (mcount) are not it. */
static void find_lock_and_prepare(struct elf_file *sym, struct elf_file *ef, struct sqlite_copy *c)
{
	uint64_t lo, hi, t2, t3, off;
	uint8_t first[16];

	/* the callee must be SQLite's own code: within the span of the
	 * sqlite3* functions, never a PLT stub */
	if (elf_file__func_span(sym, "sqlite3", &lo, &hi) != 0)
		return;
	t2 = wrapper_call(sym, ef, "sqlite3_prepare_v2", lo, hi);
	t3 = wrapper_call(sym, ef, "sqlite3_prepare_v3", lo, hi);
	/* A copy that names only sqlite3_prepare_v2 (one found through a Go
	 * program's cgo wrappers): its first call must pass its own first
	 * three arguments on, as sqlite3LockAndPrepare gets them. */
	if (t2 && !t3 && !named(sym, "sqlite3_prepare_v3") && !passes_args_on(sym, ef, "sqlite3_prepare_v2", t2))
		return;
	if (!t2 || (t3 && t2 != t3) || (!t3 && named(sym, "sqlite3_prepare_v3")))
		return;
	if (elf_file__read_vaddr(ef, t2, first, sizeof(first)) != (ssize_t)sizeof(first) ||
	    !probepos__probeable(first, sizeof(first)))
		return;
	if (elf_file__vaddr_to_offset(ef, t2, &off) == 0) {
		c->fn_off[ST_FN_LOCK_AND_PREPARE] = off;
		c->fn_sstep[ST_FN_LOCK_AND_PREPARE] = probepos__classify(first, sizeof(first)) == PROBE_INSN_SSTEP;
		wrapper_frames(sym, ef, c, t2);
	}
}

/* For a function probed at entry only (no return probe, which must sit on
 * the first byte) whose first instruction the kernel must single-step:
 * moves the probe to the first instruction it emulates before any branch
 * is taken (user/find/probepos.c), when the statement argument is still in rdi
 * there (the BPF program reads it from rdi). Otherwise leaves it. */
static void move_entry_probe(struct elf_file *sym, struct elf_file *ef, struct sqlite_copy *c, enum st_fn fn)
{
	uint8_t code[256];
	uint64_t vaddr, size;
	struct probe_pos pos;
	ssize_t n;

	if (!c->fn_off[fn] || !c->fn_sstep[fn] || elf_file__find_func(sym, st_fn_names[fn], &vaddr, &size))
		return;
	n = elf_file__read_vaddr(ef, vaddr, code, size && size < sizeof(code) ? size : sizeof(code));
	if (n <= 0 || probepos__choose_mask(code, (size_t)n, vaddr, 1u << 0, &pos) != 0)
		return;
	if (pos.kind != PROBE_INSN_EMULATED || pos.delta == 0 || pos.arg_reg[0] != ARG_REG_RDI)
		return;
	c->fn_off[fn] += pos.delta;
	c->fn_moved[fn] = pos.delta;
	c->fn_spdelta[fn] = (uint32_t)pos.sp_delta;
	c->fn_sstep[fn] = false;
}

/* Exit sites of code (a function at vaddr) into v as file offsets; returns
 * their number or -1. */
static int exit_sites(struct elf_file *ef, const uint8_t *code, uint64_t size, uint64_t vaddr, bool rets_only,
		      struct ret_site *v)
{
	struct exit_site s[RETSITES_MAX];
	int k = retsites__find(code, size, vaddr, rets_only, s, RETSITES_MAX), i;

	if (k < 0)
		return -1;
	for (i = 0; i < k; i++) {
		if (elf_file__vaddr_to_offset(ef, s[i].vaddr, &v[i].off) != 0)
			return -1;
		v[i].sp_delta = s[i].sp_delta;
		v[i].result_reg = s[i].result_reg;
	}
	return k;
}

/* Where function fn returns (its symbol gives its size): c->fn_rets and
 * c->fn_exits; their counts stay -1 when they cannot be found. */
static void find_rets(struct elf_file *sym, struct elf_file *ef, struct sqlite_copy *c, enum st_fn fn)
{
	uint64_t vaddr, size;
	uint8_t *code;

	c->fn_nrets[fn] = c->fn_nexits[fn] = -1;
	if (!c->fn_off[fn] || elf_file__find_func(sym, st_fn_names[fn], &vaddr, &size) || !size ||
	    size > 65536)
		return;
	code = malloc(size);
	if (!code)
		return;
	if (elf_file__read_vaddr(ef, vaddr, code, size) == (ssize_t)size) {
		c->fn_nrets[fn] = exit_sites(ef, code, size, vaddr, true, c->fn_rets[fn]);
		c->fn_nexits[fn] = exit_sites(ef, code, size, vaddr, false, c->fn_exits[fn]);
	}
	free(code);
}

/* Fills c->fn_off from the symbols of sym (the file itself, or its
 * separate debug file) and the program headers and code of ef. Returns 0
 * when the file holds SQLite (prepare_v2 and step at least), -ENOENT when
 * not. */
static int resolve_functions_from(struct elf_file *sym, struct elf_file *ef, struct sqlite_copy *c)
{
	int i, err;

	for (i = 0; i < ST_FN_MAX; i++) {
		uint64_t vaddr, size, off;

		c->fn_off[i] = 0;
		c->fn_size[i] = 0;
		c->fn_moved[i] = 0;
		c->fn_spdelta[i] = 0;
		c->fn_nrets[i] = c->fn_nexits[i] = -1;
		err = elf_file__find_func(sym, st_fn_names[i], &vaddr, &size);
		if (err)
			continue;
		if (elf_file__vaddr_to_offset(ef, vaddr, &off) == 0) {
			uint8_t code[16];

			c->fn_off[i] = off;
			c->fn_size[i] = size;
			c->fn_sstep[i] = elf_file__read_vaddr(ef, vaddr, code, sizeof(code)) == (ssize_t)sizeof(code) &&
					 probepos__classify(code, sizeof(code)) == PROBE_INSN_SSTEP;
		}
	}
	if (!c->fn_off[ST_FN_PREPARE_V2] || !c->fn_off[ST_FN_STEP])
		return -ENOENT;
	layout_decode__elf(sym, ef, &c->layout);
	c->wrap_ret[0] = c->wrap_ret[1] = 0;
	if (!c->fn_off[ST_FN_LOCK_AND_PREPARE]) {
		find_lock_and_prepare(sym, ef, c);
	} else {
		uint64_t lap, size;

		if (elf_file__find_func(sym, st_fn_names[ST_FN_LOCK_AND_PREPARE], &lap, &size) == 0)
			wrapper_frames(sym, ef, c, lap);
	}
	/* A copy that does not name sqlite3ErrorWithMsg (stripped): the
	 * function sqlite3_prepare_v2 leads to that does what it does, so that
	 * prepares keep one emulated entry probe (user/find/layout_decode.h). */
	if (!c->fn_off[ST_FN_ERROR_WITH_MSG] && c->fn_off[ST_FN_LOCK_AND_PREPARE] &&
	    c->layout.cfg.db_perr_off >= 0) {
		uint64_t va, off;
		uint8_t code[16];

		if (layout_decode__error_with_msg_elf(sym, ef, c->layout.cfg.db_perr_off, &va) == 0 &&
		    elf_file__vaddr_to_offset(ef, va, &off) == 0 &&
		    elf_file__read_vaddr(ef, va, code, sizeof(code)) == (ssize_t)sizeof(code) &&
		    probepos__probeable(code, sizeof(code))) {
			c->fn_off[ST_FN_ERROR_WITH_MSG] = off;
			c->fn_sstep[ST_FN_ERROR_WITH_MSG] = probepos__classify(code, sizeof(code)) == PROBE_INSN_SSTEP;
		}
	}
	move_entry_probe(sym, ef, c, ST_FN_RESET);
	move_entry_probe(sym, ef, c, ST_FN_FINALIZE);
	find_rets(sym, ef, c, ST_FN_EXEC);
	find_rets(sym, ef, c, ST_FN_STEP);
	find_rets(sym, ef, c, ST_FN_PREPARE_V2);
	find_rets(sym, ef, c, ST_FN_PREPARE_V3);
	find_rets(sym, ef, c, ST_FN_PREPARE16_V2);
	find_rets(sym, ef, c, ST_FN_PREPARE16_V3);
	/* SQLite's code: the span of every function named sqlite3*, which in
	 * a library or an amalgamation brackets the code that calls back into
	 * the API (the VM, schema loading, ANALYZE statistics loading); else
	 * the span of the functions we know. */
	{
		uint64_t lo, hi, olo, ohi;

		if (elf_file__func_span(sym, "sqlite3", &lo, &hi) == 0 &&
		    elf_file__vaddr_to_offset(ef, lo, &olo) == 0 &&
		    elf_file__vaddr_to_offset(ef, hi - 1, &ohi) == 0 && ohi >= olo) {
			c->text_lo = olo;
			c->text_hi = ohi + 1;
			return 0;
		}
	}
	c->text_lo = UINT64_MAX;
	c->text_hi = 0;
	for (i = 0; i < ST_FN_MAX; i++) {
		if (!c->fn_off[i])
			continue;
		if (c->fn_off[i] < c->text_lo)
			c->text_lo = c->fn_off[i];
		if (c->fn_off[i] + c->fn_size[i] > c->text_hi)
			c->text_hi = c->fn_off[i] + c->fn_size[i];
	}
	return 0;
}

/* Opens the separate debug file of ef inside the root directory rootfd
 * (usr/lib/debug/.build-id/xx/yyyy.debug resolved in that root: an
 * absolute symlink there points into the same root, never at the host).
 * label names the root in the file's name ("/proc/PID/root", ""). Returns
 * NULL when there is none (or it is not a regular ELF file). */
static struct elf_file *open_debug_file(struct elf_file *ef, int rootfd, const char *label)
{
	char rel[256], name[PATH_MAX];
	int fd;

	if (rootfd < 0 || elf_file__debug_relpath(ef, rel, sizeof(rel)) != 0)
		return NULL;
	fd = inroot__open(rootfd, rel);
	if (fd < 0)
		return NULL;
	snprintf(name, sizeof(name), "%s/%s", label, rel);
	return elf_file__open_fd(fd, name);   /* refuses a non-regular file */
}

/* True when both fds are the same directory (a process whose root is the
 * tool's own). */
static bool same_dir(int a, int b)
{
	struct stat sa, sb;

	return a >= 0 && b >= 0 && fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A stripped file's public API from SQLite's extension API table
 * (user/find/apitable.c), each function's extent from .eh_frame: the names
 * are added to ef, then resolved as symbols are. Returns 0, or -errno with
 * the reason in why. */
static int resolve_from_apitable(struct elf_file *ef, struct sqlite_copy *c, char *why, size_t whylen)
{
	struct apitable *t = malloc(sizeof(*t));
	uint64_t size[APITABLE_NAMES];
	char id[96];
	int err;

	if (!t)
		return -ENOMEM;
	err = apitable__find(ef, t);
	if (err == -ENOTSUP) {
		snprintf(why, whylen, "is stripped and " TARGET_UNLOCATABLE " %u.%u.%u, older than the 3.20.0 its "
			 "extension API table is read from", t->version / 1000000, t->version / 1000 % 1000,
			 t->version % 1000);
	} else if (err == -ENOENT) {
		if (apitable__source_id(ef, id, 31) == 0)
			snprintf(why, whylen, TARGET_UNLOCATABLE " (source id %s...) but is stripped, has no debug file "
				 "under /usr/lib/debug/.build-id and no SQLite extension API table (built without loadable-extension support): its "
				 "functions cannot be located", id);
		else
			snprintf(why, whylen, "is stripped (no .symtab), exports no sqlite3_prepare_v2, and has "
				 "neither a debug file under /usr/lib/debug/.build-id nor a SQLite extension API "
				 "table");
	} else if (err) {
		snprintf(why, whylen, "cannot be read for SQLite's API table: %s", strerror(-err));
	}
	if (err) {
		free(t);
		return err;
	}
	ehframe__sizes(ef, t->fn, size, t->n);
	err = elf_file__add_funcs(ef, apitable_names, t->fn, size, t->n);
	if (!err)
		err = resolve_functions_from(ef, ef, c);
	if (err == -ENOENT)
		snprintf(why, whylen, "is stripped and its SQLite %s extension API table has no "
			 "sqlite3_prepare_v2/sqlite3_step", t->version_str);
	else if (err)
		snprintf(why, whylen, "%s", strerror(-err));
	if (!err) {
		c->finder = "extension API table";
		snprintf(c->version, sizeof(c->version), "%s", t->version_str);
		snprintf(c->api_table, sizeof(c->api_table), "at 0x%" PRIx64, t->vaddr);
	}
	free(t);
	return err;
}

/* A Go executable's C SQLite found through its cgo wrappers
 * (user/find/cgofind.c), each function's extent from .eh_frame, resolved
 * as symbols are. Returns 0, or -ENOENT (why untouched: the caller's reason
 * stands) or another -errno with the reason in why. */
static int resolve_from_cgo(struct elf_file *ef, struct sqlite_copy *c, char *why, size_t whylen)
{
	struct cgofind *f = malloc(sizeof(*f));
	uint64_t size[APITABLE_NAMES];
	uint32_t v;
	int err;

	if (!f)
		return -ENOMEM;
	err = cgofind__find(ef, f);
	if (err) {
		free(f);
		return err;
	}
	ehframe__sizes(ef, f->fn, size, APITABLE_NAMES);
	err = elf_file__add_funcs(ef, apitable_names, f->fn, size, APITABLE_NAMES);
	if (!err)
		err = resolve_functions_from(ef, ef, c);
	if (err == -ENOENT)
		snprintf(why, whylen, TARGET_UNLOCATABLE " but is stripped, and the cgo wrappers of its Go "
			 "package %s lead to no sqlite3_prepare_v2/sqlite3_step", f->pkg);
	else if (err)
		snprintf(why, whylen, "%s", strerror(-err));
	if (!err) {
		c->finder = "Go cgo wrappers";
		snprintf(c->api_table, sizeof(c->api_table), "of %s (%zu followed)", f->pkg, f->nwrappers);
		if (apitable__version_of(ef, f->fn[APITABLE_IDX_LIBVERSION_NUMBER], f->fn[APITABLE_IDX_LIBVERSION], &v,
					 c->version, sizeof(c->version)) != 0)
			c->version[0] = '\0';
	}
	free(f);
	return err;
}

/* resolve_functions_from the file itself, else, for a stripped file with a
 * build id, from its debug file under usr/lib/debug/.build-id inside the
 * process's root (rootfd, -1 for none; label names it), then inside the
 * host's, else from SQLite's extension API table, else from a Go
 * executable's cgo wrappers. Returns 0, or -errno with a reason (after the
 * file's name) in why. */
static int resolve_functions(struct elf_file *ef, struct sqlite_copy *c, int rootfd, const char *label,
			     char *why, size_t whylen)
{
	int err = resolve_functions_from(ef, ef, c), i, host;

	c->finder = "symbols";
	if (err == 0)
		return 0;
	if (elf_file__has_symtab(ef)) {
		snprintf(why, whylen, "defines no sqlite3_prepare_v2/sqlite3_step (not SQLite)");
		return err;
	}
	host = inroot__open_root(0);
	for (i = 0; i < 2; i++) {
		struct elf_file *sym;

		if (i == 0)
			sym = open_debug_file(ef, rootfd, label);
		else
			sym = same_dir(rootfd, host) ? NULL : open_debug_file(ef, host, "");
		if (!sym)
			continue;
		err = resolve_functions_from(sym, ef, c);
		elf_file__close(sym);
		if (err == 0) {
			c->finder = "debug file";
			break;
		}
	}
	if (host >= 0)
		close(host);
	if (err == 0)
		return 0;
	err = resolve_from_apitable(ef, c, why, whylen);
	if (err == -ENOENT) {
		char why2[320] = "";
		int e2 = resolve_from_cgo(ef, c, why2, sizeof(why2));

		if (e2 == 0)
			return 0;
		if (e2 != -ENOENT || why2[0])
			snprintf(why, whylen, "%s", why2);
		if (e2 != -ENOENT)
			err = e2;
	}
	return err;
}

int target__resolve(struct elf_file *ef, struct sqlite_copy *c, int rootfd, const char *label, char *why,
		    size_t whylen)
{
	int err = resolve_functions(ef, c, rootfd, label, why, whylen);

	if (err)
		return err;
	c->build_id_len = elf_file__build_id(ef, c->build_id, sizeof(c->build_id));
	if (c->build_id_len < 0)
		c->build_id_len = 0;
	return 0;
}

int target__pids_by_name(const char *name, int *out, size_t max, size_t *n)
{
	struct dirent *de;
	DIR *dp = opendir("/proc");
	pid_t self = getpid();

	*n = 0;
	if (!dp)
		return -errno;
	while ((de = readdir(dp)) != NULL) {
		char comm[64], link[64], exe[PATH_MAX];
		const char *base;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		ssize_t len;
		bool match;

		if (*end || pid <= 0 || pid == self)
			continue;
		match = target__comm((int)pid, comm, sizeof(comm)) == 0 && strcmp(comm, name) == 0;
		if (!match) {
			snprintf(link, sizeof(link), "/proc/%ld/exe", pid);
			len = readlink(link, exe, sizeof(exe) - 1);
			if (len > 0) {
				exe[len] = '\0';
				base = strrchr(exe, '/');
				match = strcmp(base ? base + 1 : exe, name) == 0;
			}
		}
		if (!match)
			continue;
		if (*n >= max) {
			closedir(dp);
			return -E2BIG;
		}
		out[(*n)++] = (int)pid;
	}
	closedir(dp);
	return 0;
}
