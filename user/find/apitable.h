/* apitable.h — SQLite's public API in a file without symbols, recovered from
 * SQLite's own extension API table.
 *
 * Every SQLite built with loadable-extension support (the default; Debian's
 * libsqlite3.a, most bundled copies) holds sqlite3Apis (src/loadext.c): a
 * struct sqlite3_api_routines of function pointers in a fixed order that
 * only ever grows at the end (sqlite3ext.h). Stripping a program removes
 * the names, not the table. The table is found through two entries that
 * confirm each other and the version: sqlite3_libversion_number (index 67)
 * returns the version as a constant, sqlite3_libversion (index 66) returns
 * the address of the matching "X.Y.Z" string. sqlite3_sourceid (169) gives
 * the source id when it is the usual one-instruction function.
 */
#ifndef SQLTRACE_APITABLE_H
#define SQLTRACE_APITABLE_H

#include <stddef.h>
#include <stdint.h>

#include "elfsym.h"

/* Members of struct sqlite3_api_routines named here (SQLite 3.40's
 * sqlite3ext.h); later versions append more, which stay unnamed. */
#define APITABLE_NAMES 266

/* Members the version is read from: sqlite3_libversion,
 * sqlite3_libversion_number. */
#define APITABLE_IDX_LIBVERSION 66
#define APITABLE_IDX_LIBVERSION_NUMBER 67

/* The API function each member points to, in table order ("sqlite3_step"). */
extern const char *const apitable_names[APITABLE_NAMES];

struct apitable {
	uint32_t version;        /* sqlite3_libversion_number(), e.g. 3040001 */
	char version_str[16];    /* sqlite3_libversion(), "3.40.1" */
	char source_id[96];      /* sqlite3_sourceid(), "" when not read */
	uint64_t vaddr;          /* where the table is */
	size_t n;                /* members this version has that are named */
	uint64_t fn[APITABLE_NAMES];  /* function addresses (vaddr), 0 = none */
};

/* Finds the table in ef and reads it into *t. Returns 0; -ENOENT when the
 * file has none (stripped without loadable-extension support, or not
 * SQLite); -ENOTSUP for a SQLite older than 3.20.0 (its table is shorter
 * than the members used here); -ENOMEM; -EINVAL on a malformed file. */
int apitable__find(struct elf_file *ef, struct apitable *t);

/* Looks for an SQLite source id ("2023-02-21 18:09:37 05941c2a04...", what
 * sqlite3_sourceid() returns) among the file's data: evidence that it
 * carries SQLite even when its functions cannot be located. Returns 0 with
 * the id in buf (truncated to len), -ENOENT, or -errno. */
int apitable__source_id(struct elf_file *ef, char *buf, size_t len);

/* The version a copy's own functions give: number, the address of
 * sqlite3_libversion_number (`mov $VERSION, %eax; ret`), and str, that of
 * sqlite3_libversion (returns "X.Y.Z"): both must agree. Returns 0 with
 * *version and buf ("3.53.2"), or -ENOENT. */
int apitable__version_of(struct elf_file *ef, uint64_t number, uint64_t str, uint32_t *version, char *buf,
			 size_t len);

#endif
