/* cgofind.h — a C SQLite inside a Go executable without symbols (stripped,
 * no debug file, no extension API table: mattn/go-sqlite3 built with
 * sqlite_omit_load_extension, say), located through Go's own function
 * table, which stripping keeps (user/find/gosym.h).
 *
 * cgo gives every C function a Go program calls a Go wrapper named
 * PKG._Cfunc_NAME; the wrapper loads the address of a C stub from a data
 * word and passes it to runtime.cgocall; the stub calls _cgo_topofstack,
 * then the C function, then _cgo_topofstack again. Following each wrapper
 * to its stub and the stub to the one call that is not _cgo_topofstack
 * (the target every stub calls) gives the C function's address.
 *
 * A wrapper named after a SQLite API function (_Cfunc_sqlite3_reset) names
 * its target. A binding's own C helpers (mattn's _sqlite3_step_internal,
 * _sqlite3_prepare_v2_internal) are small static functions that cgo's
 * compiler flags inline into the stub: their one call is the API function
 * of their name without the underscores and the "_internal"/"_row" words.
 * Such a guess gives way to a wrapper that names the function itself, and
 * a name two wrappers disagree on is dropped. */
#ifndef SQLTRACE_CGOFIND_H
#define SQLTRACE_CGOFIND_H

#include <stddef.h>
#include <stdint.h>

#include "apitable.h"
#include "elfsym.h"

struct cgofind {
	/* by apitable_names index: the C function's address, 0 = not found */
	uint64_t fn[APITABLE_NAMES];
	uint8_t guessed[APITABLE_NAMES];  /* 1: from a helper's name */
	size_t nfound;
	size_t nwrappers;        /* _Cfunc_ wrappers followed to a C function */
	char pkg[96];            /* the Go package of the SQLite wrappers */
	char go_version[32];     /* "go1.19.8", "" unknown */
};

/* Looks for the cgo wrappers of SQLite functions in ef (a Go executable)
 * and follows them. Returns 0 with *out filled (out->nfound > 0);
 * -ENOENT when ef is not a Go executable or has no SQLite wrapper that
 * could be followed; -ENOMEM; -EINVAL for a malformed file. */
int cgofind__find(struct elf_file *ef, struct cgofind *out);

/* The API name a wrapper's C name stands for ("sqlite3_reset" for
 * "sqlite3_reset"; "sqlite3_step" for mattn's "_sqlite3_step_row_internal"),
 * its apitable_names index in *idx and whether it is a guess from a
 * helper's name (*guessed). Returns 0 or -ENOENT (not a SQLite API name). */
int cgofind__api_name(const char *cname, size_t *idx, int *guessed);

#endif
