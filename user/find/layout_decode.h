/* layout_decode.h — learns where a copy of SQLite keeps what the BPF
 * programs read (struct st_lib_cfg) from that copy's own code: its small
 * accessor functions (sqlite3_sql, sqlite3_db_handle, sqlite3_stmt_busy,
 * sqlite3_errmsg, ...) each read one or two fields, and decoding them
 * (x86-64, capstone) says at which offsets. Works for any build whose
 * symbols name those functions (a library, an executable with SQLite linked
 * in, a Node addon), whatever its version and options, without running it.
 *
 * Each offset is taken only when its pattern is found exactly (one
 * candidate); where several functions say it, they must agree. The few
 * values code cannot say (the statement state byte's ready and halted
 * values) come from the copy's version, per the rules in layout_decode.c.
 * What is not proven stays -1, and the caller falls back (layout.h's
 * learning, SQLite's code text for errors).
 */
#ifndef SQLTRACE_LAYOUT_DECODE_H
#define SQLTRACE_LAYOUT_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "sqltrace.h"

struct elf_file;

struct layout_decoded {
	/* Offsets decoded (-1 where not proven); learn, step_ret, prepare_ret
	 * and the code range are left 0 for the caller. */
	struct st_lib_cfg cfg;
	int version;          /* sqlite3_libversion_number(), 0 unknown */
	int nfound;           /* offsets decoded (of LAYOUT_DECODE_FIELDS) */
	char found[320];      /* "zSql=248 db=0 ..." for -v */
	char missing[320];    /* "pParse (why) ..." for -v, "" when none */
};

#define LAYOUT_DECODE_FIELDS 10

/* Gives the code of function name: 0 with *code (malloc'd; the caller
 * frees it), *len bytes and the function's virtual address; -ENOENT when
 * the copy has no such function, another -errno on failure. */
typedef int (*layout_fetch_fn)(void *ctx, const char *name, uint8_t **code, size_t *len, uint64_t *vaddr);

/* Decodes every offset it can from the functions fetch gives (a function
 * that cannot be fetched, decoded or walked proves nothing). Always fills
 * *out (everything -1 when nothing is known). Returns the number of
 * offsets decoded (out->nfound). */
int layout_decode__run(layout_fetch_fn fetch, void *ctx, struct layout_decoded *out);

/* layout_decode__run on a file: functions found by name in sym (the file
 * or its debug file), their bytes read from ef. */
int layout_decode__elf(struct elf_file *sym, struct elf_file *ef, struct layout_decoded *out);

/* In a copy that does not name sqlite3ErrorWithMsg (a stripped file whose
 * API came from its extension API table): the one function reached from
 * sqlite3_prepare_v2 (a few calls deep) that does what it does — stores 4
 * bytes into its first argument (db->errCode = err_code), tests its third
 * against 0 (zFormat) and stores into db->pErr (perr_off, decoded before).
 * Returns 0 with its address in *vaddr, -ENOENT when no candidate or more
 * than one fits. (The BPF side checks each hit again: the db of the
 * prepare in progress, a "%s" format, Parse.zErrMsg as its argument.) */
int layout_decode__error_with_msg_elf(struct elf_file *sym, struct elf_file *ef, int perr_off, uint64_t *vaddr);

#endif
