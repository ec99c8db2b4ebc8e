/* local_store.h — the local SQLite sink: entries batched into the
 * sql_traces table of a trace file, interchangeable with the Go tracer's
 * (schema in shared/design/seed-behaviour.md, extra nullable columns for
 * sqltrace-bpf's extra fields).
 */
#ifndef SQLTRACE_LOCAL_STORE_H
#define SQLTRACE_LOCAL_STORE_H

#include <stddef.h>

#include <sqlite3.h>

#include "recorder.h"

/* Opens (creating with mode 0600 when missing) the trace file at path,
 * checks and migrates sql_traces, and starts a recorder writing into it
 * (opts may be NULL for the defaults). Refused (-EPERM, -ELOOP) unless its
 * directory and every one above it are root's or ours and not writable by
 * group or others (sticky ones, like /tmp, excepted), the file is not a
 * symbolic link and, when it exists, is a regular file of ours with one
 * link that group and others cannot write (one they can read is made
 * 0600), and so are its -wal, -shm and -journal files when they exist: see
 * local_store.c and common/safefile.h. Meant for start-up, before attaching:
 * every problem is reported here. On error, NULL is returned, errno is set
 * and err holds one line such as "cannot open trace store traces.db:
 * sql_traces has column 'op' of type INTEGER, expected TEXT"; an existing
 * file whose sql_traces is incompatible is left unchanged. */
struct recorder *local_store__open(const char *path, const struct batch_opts *opts,
				   char *err, size_t errlen);

/* Checks, without changing anything, that path can serve as a trace file:
 * it does not exist yet, or it is a SQLite database (passing the ownership
 * checks of local_store__open) with no sql_traces table or a compatible
 * one. Returns 0, or a negative errno with one line in err
 * (-EINVAL for an incompatible table). */
int local_store__check(const char *path, char *err, size_t errlen);

/* Creates sql_traces and its indexes when missing and adds the missing extra
 * columns, in one transaction, on an open handle. An incompatible existing
 * table is refused before anything is changed. Returns 0, or a negative
 * errno with one line in err (without the "cannot open" prefix). */
int local_store__init_db(sqlite3 *db, char *err, size_t errlen);

#endif
