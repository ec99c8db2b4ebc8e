/* target.h — SQLite's C functions in one file (a shared library or an
 * executable): the copy they make and the file offsets sqltrace-bpf probes
 * there, found by the C finders. Which files of a process are asked, and
 * the Go database/sql finder after them: user/find/finder.h. */
#ifndef SQLTRACE_TARGET_H
#define SQLTRACE_TARGET_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "layout_decode.h"

/* The words a reason (why[] below) holds when a file evidently carries
 * SQLite whose functions no finder can locate (stripped, no debug file, no
 * extension API table): callers tell that case from "no SQLite" by them. */
#define TARGET_UNLOCATABLE "carries SQLite"

/* Probed functions, in attach order. */
enum st_fn {
	ST_FN_PREPARE_V2,
	ST_FN_PREPARE_V3,
	ST_FN_PREPARE16_V2,
	ST_FN_PREPARE16_V3,
	ST_FN_STEP,
	ST_FN_RESET,
	ST_FN_FINALIZE,
	ST_FN_EXEC,
	ST_FN_LOCK_AND_PREPARE,  /* internal: where every prepare variant goes */
	ST_FN_OPEN,
	ST_FN_OPEN_V2,
	ST_FN_OPEN16,
	ST_FN_VDBE_HALT,         /* internal: an execution ends (--mode fast) */
	ST_FN_VDBE_RESET,        /* internal: only its address range is used */
	ST_FN_VDBE_EXEC,         /* internal: for SQLite's code range only */
	ST_FN_INIT_ONE,          /* internal (static): for the code range only */
	ST_FN_CLOSE,             /* for the code range only */
	ST_FN_ERROR_WITH_MSG,    /* internal: a failing prepare leaves its error */
	ST_FN_MAX,
};

extern const char *const st_fn_names[ST_FN_MAX];

struct sqlite_copy {
	char *path;          /* path as the target sees it (from its maps) */
	char *open_path;     /* path the tracer opens: /proc/PID/root/<path> */
	dev_t dev;           /* identity of the file, for attaching once */
	ino_t ino;
	bool in_exe;         /* the executable itself (SQLite linked statically) */
	uint64_t fn_off[ST_FN_MAX];   /* uprobe file offsets, 0 = absent */
	uint64_t fn_size[ST_FN_MAX];  /* symbol sizes, 0 = unknown */
	bool fn_sstep[ST_FN_MAX];     /* probe instruction single-stepped by the
	                               * kernel (slow probe), not emulated */
	uint32_t fn_moved[ST_FN_MAX]; /* entry-only probe moved this many bytes
	                               * past the start (fn_off includes it) */
	uint32_t fn_spdelta[ST_FN_MAX]; /* bytes pushed/reserved before a moved
	                                 * probe: return address at rsp + this */
	/* Where the functions whose return may be probed (exec, step, the API
	 * prepares) return: file offsets of their exit sites (retsites.h);
	 * fn_nrets < 0 when they cannot all be found. fn_rets: at the ret
	 * instructions (the result in rax); fn_exits: the cheapest site of
	 * each (an emulated instruction before the ret where there is one). */
	struct ret_site { uint64_t off; uint32_t sp_delta; int8_t result_reg; } fn_rets[ST_FN_MAX][8], fn_exits[ST_FN_MAX][8];
	int fn_nrets[ST_FN_MAX], fn_nexits[ST_FN_MAX];
	uint64_t text_lo, text_hi;    /* SQLite's code, file offsets (see resolve) */
	/* sqlite3_prepare_v2/_v3 calling sqlite3LockAndPrepare: the return
	 * address it sees (file offset, 0 unknown) and the wrapper's frame
	 * there (retsites__call_frame) */
	uint64_t wrap_ret[2];
	uint32_t wrap_depth[2];
	unsigned char build_id[64];
	int build_id_len;    /* 0 when the file has none */
	const char *finder;  /* what named its functions: "symbols", "debug
	                      * file", "extension API table", "Go cgo
	                      * wrappers" (static string) */
	char version[16];    /* SQLite's version when the finder read it */
	char api_table[128]; /* where the finder read the names ("at 0x5b2e40",
	                      * "of github.com/mattn/go-sqlite3 (12 followed)") */
	struct layout_decoded layout;  /* offsets decoded from its code */
};

struct elf_file;

/* The C finders, in order, on one ELF file (ef): its symbols, else (a
 * stripped file) its debug file under usr/lib/debug/.build-id inside the
 * process's root (rootfd, -1 for none; label names it in messages), then
 * inside the host's, else SQLite's extension API table, else a Go
 * executable's cgo wrappers. Fills c's functions, finder, version and
 * build id (not its path or identity: the caller's). Returns 0, or -errno
 * with a one-line reason (to follow the file's name) in why: it holds
 * TARGET_UNLOCATABLE when the file evidently carries SQLite no finder can
 * locate. user/find/finder.h asks it for every file. */
int target__resolve(struct elf_file *ef, struct sqlite_copy *c, int rootfd, const char *label, char *why,
		    size_t whylen);

/* Every process (but this one) whose name (/proc/PID/comm) or executable's
 * file name is name, as pidof finds them. Returns 0 with up to max pids in
 * out (*n of them), -E2BIG when there are more, or -errno. */
int target__pids_by_name(const char *name, int *out, size_t max, size_t *n);

/* The dynamic linker process pid runs (a mapped file whose name starts
 * with "ld-" or "ld.so" and that defines _dl_debug_state, the function it
 * calls whenever the set of loaded objects changes): the path to probe it
 * through (its /proc/PID/map_files link) in path, and the function's file
 * offset in *off. Returns 0, -ENOENT when the process has none (a static
 * executable), or -errno. */
int target__find_ldso(int pid, char *path, size_t len, uint64_t *off);

/* As target__find_ldso, and *r_debug_delta gets the distance from
 * _dl_debug_state to the linker's _r_debug (struct r_debug: its r_state
 * says whether objects are being added or are consistent), 0 when the
 * linker does not export it. */
int target__find_ldso2(int pid, char *path, size_t len, uint64_t *off, int64_t *r_debug_delta);

/* Reads /proc/PID/comm into buf (without newline). Returns 0 or -errno. */
int target__comm(int pid, char *buf, size_t len);

#endif
