/* layout.h — where a build of SQLite keeps, inside its objects, what the
 * BPF programs read at run time: the statement's connection and SQL text
 * (Vdbe.db, Vdbe.zSql) and the connection's error message (sqlite3.pErr,
 * sqlite3_value.z).
 *
 * Three ways to know them, all exact, none needs debug info:
 *  - calibration: for the libsqlite3 this tool itself links, run known
 *    statements in our own process and find the fields whose values equal
 *    what the public API returns (sqlite3_sql, sqlite3_errmsg). Valid for a
 *    target whose file has the same build id.
 *  - decoding (user/find/layout_decode.h): for any other build, read from its
 *    own accessor functions' code; what it proves is used first.
 *  - learning: for a build whose zSql/db could not be decoded, watch one
 *    prepare of the target (its text, connection and resulting statement
 *    pointer arrive in an ST_EV_LEARN record) and find, in the target's
 *    statement object, the field holding that connection and the field
 *    pointing at that text. The error message offsets cannot be learned
 *    this way: entries of a build whose error offsets were not decoded
 *    either carry the result code's text (sqlite3_errstr) as their error.
 */
#ifndef SQLTRACE_LAYOUT_H
#define SQLTRACE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sqltrace.h"

/* Offsets for the linked libsqlite3, computed once (thread-safe after the
 * first call from the main thread). Returns 0, or -errno when an offset
 * could not be found (then *out has -1 there). build_id/len describe the
 * library file so callers can tell whether a target runs the same build. */
int layout__self(struct st_lib_cfg *out, const unsigned char **build_id, int *build_id_len,
		 dev_t *dev, ino_t *ino);

/* Learns vdbe_db_off and vdbe_zsql_off from a prepare observed in process
 * pid: statement object at stmt, connection db, prepared text (len bytes;
 * the statement's own text is a non-empty prefix of it). Reads the target's
 * memory. Returns 0 and updates cfg, or -ENOENT when no field matched
 * (cfg unchanged), or -errno when the memory could not be read. */
/* As layout__learn, from what BPF saw while the statement surely lived
 * (ST_EV_LEARN): bit i of dbs says word i of it is its connection, bit i
 * of texts that word i points to a copy of its text. Vdbe.db is the first
 * of dbs, zSql the first of texts. Returns 0 and updates cfg, or -ENOENT
 * (cfg unchanged). No memory of the target is read. */
int layout__learn_words(uint64_t dbs, uint64_t texts, struct st_lib_cfg *cfg);

int layout__learn(pid_t pid, uint64_t stmt, uint64_t db, const char *text, size_t len,
		  struct st_lib_cfg *cfg);

/* Offsets for recovering a connection's file name in the linked
 * libsqlite3's build: offsetof(sqlite3, aDb) and offsetof(Pager, zFilename),
 * found by opening a temporary file database in our own process. Returns 0
 * or -ENOENT. */
int layout__self_dbfile(int *adb_off, int *zfilename_off);

/* Scans n words at addr in process pid for the value v; returns the byte
 * offset of the first match or -1. Exposed for tests. */
int layout__find_word(pid_t pid, uint64_t addr, size_t n, uint64_t v);

#endif
