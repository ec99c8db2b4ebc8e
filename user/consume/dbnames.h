/* dbnames.h — which database file each connection of each traced process
 * uses: from OPEN records (sqlite3_open*() seen, or SQLite's own pager file
 * name read in BPF through calibrated offsets), else the one SQLite
 * database file the process has open. */
#ifndef SQLTRACE_DBNAMES_H
#define SQLTRACE_DBNAMES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct dbnames;

struct dbnames *dbnames__new(void);
void dbnames__free(struct dbnames *d);

/* Records the file name of connection db in process pid (copied). */
void dbnames__set(struct dbnames *d, uint32_t pid, uint64_t db, const char *name);

/* The file name of connection db in pid: known (from an OPEN record: an
 * open seen, or, for the calibrated build, the name BPF read from SQLite's
 * pager), else recovered once from the process's open files (and
 * remembered, also when nothing was found: ""). Never NULL. */
const char *dbnames__get(struct dbnames *d, uint32_t pid, uint64_t db);

/* Forgets every connection of pid (it exited or exec'd). */
void dbnames__forget_pid(struct dbnames *d, uint32_t pid);

/* Through the process's open files: the only regular file it has open
 * that starts with the SQLite header; a malloc'd path or NULL when there
 * is none or more than one. */
char *dbnames__from_fds(pid_t pid);

#endif
