/* dbnames.h — which database file each connection of each traced process
 * uses: learned from sqlite3_open*() when the open is seen, else recovered
 * from the target (SQLite's own pager file name through calibrated
 * offsets, or the one SQLite database file the process has open). */
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

/* The file name of connection db in pid: known, else recovered once (and
 * remembered, also when nothing was found: ""). same_build: the process's
 * SQLite is the build this tool links, so its structures can be followed
 * (dbnames__from_pager); else only its open files are looked at. Never NULL. */
const char *dbnames__get(struct dbnames *d, uint32_t pid, uint64_t db, bool same_build);

/* Forgets every connection of pid (it exited or exec'd). */
void dbnames__forget_pid(struct dbnames *d, uint32_t pid);

/* Recovery, exposed for tests. Through SQLite's structures: db->aDb[0].pBt
 * ->pBt->pPager->zFilename, offsets from layout__self_dbfile(); returns a
 * malloc'd name or NULL. */
char *dbnames__from_pager(pid_t pid, uint64_t db);

/* Through the process's open files: the only regular file it has open
 * that starts with the SQLite header; a malloc'd path or NULL when there
 * is none or more than one. */
char *dbnames__from_fds(pid_t pid);

#endif
