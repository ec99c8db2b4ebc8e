/* finder.h — where SQLite is in a file or a process, and which probe set
 * fits it: the one interface to the finders. Each file is asked the C
 * finders (target.h: symbols, debug file, extension API table, Go cgo
 * wrappers), then, for an executable none of them answered, the Go
 * database/sql finder (gosql_find.h). The answer is tagged with the layer
 * to probe, so that attaching (user/attach/probes.c) dispatches on it in
 * one place and nothing after it cares which finder answered. Files of a
 * process are opened through /proc/PID/map_files or /proc/PID/root, so a
 * process in another mount namespace is probed in its own file. */
#ifndef SQLTRACE_FINDER_H
#define SQLTRACE_FINDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gosql_find.h"
#include "target.h"

/* Which probe set fits a file. */
enum found_layer {
	FOUND_NONE,      /* no SQLite (find__file: the file carries only the shim) */
	FOUND_C,         /* SQLite's C functions (c): bpf/sqltrace.bpf.c */
	FOUND_GO_SQL,    /* Go's database/sql, in Go's ABI (go): bpf/gosql.bpf.c */
	FOUND_REFUSED,   /* a Go program using database/sql whose probes cannot be
	                  * placed safely (its release's runtime layout is
	                  * unknown: never guessed): an error to report when
	                  * attaching (refused, why) */
};

/* What the finders answered for one file. */
struct sqlite_found {
	enum found_layer layer;
	const char *finder;      /* which finder answered (static): c.finder's
	                          * names, or "Go function table" */
	struct sqlite_copy c;    /* FOUND_C: the copy. Any layer: the file in
	                          * c.path (as the target sees it), c.open_path
	                          * (what the tracer opens and probes), c.dev,
	                          * c.ino, c.in_exe */
	struct gosql_plan go;    /* FOUND_GO_SQL: the plan (taken over by
	                          * whoever attaches it, else freed with it) */
	int refused;             /* FOUND_REFUSED: a negative errno */
	char why[320];           /* FOUND_REFUSED: why, one line */
};

/* Asked before a mapped file is opened (identity as /proc/PID/maps gives
 * it): true skips it (already looked at by the caller). */
typedef bool (*find_skip_fn)(void *ctx, uint32_t dev_major, uint32_t dev_minor, uint64_t inode);

/* Every file process pid maps (and its executable) that a finder answers
 * for, looking only at those skip does not skip (NULL: all; a rescan after
 * the process loaded something: only the new files). Returns 0 with a
 * malloc'd array (find__free) — possibly *n == 0, in which case why[] says
 * what was looked at and why nothing answered; otherwise why[] may note
 * files that carry SQLite no finder can locate (TARGET_UNLOCATABLE) — or
 * -ESRCH, -EACCES, or another -errno with why[] set. With shims not NULL,
 * also lists the files that carry the sqltrace shim (they define
 * sqltrace_set_trace_id; a library or the executable), as paths to open
 * (/proc/PID/map_files/...; free with find__free_paths). */
int find__process(int pid, find_skip_fn skip, void *skip_ctx, struct sqlite_found **out, size_t *n,
		  char ***shims, size_t *nshims, char *why, size_t whylen);

/* One file (-b PATH, a command about to run), opened at open_path and
 * named path: fills *out, sets *has_shim when it carries the sqltrace
 * shim. Returns 0 when a finder answered (out->layer) or it carries the
 * shim (FOUND_NONE), else a negative errno with a one-line reason, after
 * the file's name, in why. Release *out with find__release. */
int find__file(const char *open_path, const char *path, struct sqlite_found *out, bool *has_shim, char *why,
	       size_t whylen);

/* Frees what one answer holds (its paths, its plan unless taken over). */
void find__release(struct sqlite_found *f);

void find__free(struct sqlite_found *v, size_t n);

void find__free_paths(char **v, size_t n);

#endif
