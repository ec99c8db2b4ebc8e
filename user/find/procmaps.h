/* procmaps.h — parses /proc/PID/maps into an array of mappings, so target
 * resolution can find which files (libsqlite3, the executable) a process maps
 * and where. The parser takes a FILE * so it runs on fixture text without
 * root or a live process.
 */
#ifndef SQLTRACE_PROCMAPS_H
#define SQLTRACE_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* One line of /proc/PID/maps. */
struct map_entry {
	uint64_t start, end;      /* [start, end) in the process */
	uint64_t offset;          /* file offset of start */
	uint64_t inode;           /* 0 for anonymous mappings */
	uint32_t dev_major, dev_minor;
	char perms[5];            /* "r-xp" etc., NUL-terminated */
	char *path;               /* NULL for anonymous; else as the kernel
	                           * printed it: may contain spaces, may be a
	                           * pseudo path ("[heap]", "[vdso]",
	                           * "[anon:name]"), keeps " (deleted)" */
	bool deleted;             /* path ended in " (deleted)" */
};

/* Parses maps text from f until EOF.
 * Returns 0 and a malloc'd array in *out (count in *n; *out may be NULL when
 * n is 0), to be released with procmaps__free(). On failure returns a
 * negative errno and leaves *out NULL and *n 0: -EINVAL for any line that is
 * not a well-formed maps line (including an empty line), -ENOMEM, or the
 * errno of a read error. */
int procmaps__parse(FILE *f, struct map_entry **out, size_t *n);

/* Reads /proc/PID/maps. As procmaps__parse(), plus -ESRCH when there is no
 * such process and -EINVAL for pid <= 0. Other open errors (EACCES) are
 * returned as they are. Note the kernel does not give an atomic snapshot:
 * mappings may change between the reads of a large file. */
int procmaps__read_pid(int pid, struct map_entry **out, size_t *n);

/* Frees an array from procmaps__parse/read_pid. NULL is fine. */
void procmaps__free(struct map_entry *v, size_t n);

/* True when both entries map the same file (same device and inode, inode
 * != 0), whatever path each was opened by (/lib vs /usr/lib on a merged-usr
 * system, or a bind mount). */
bool procmaps__same_file(const struct map_entry *a, const struct map_entry *b);

/* Index of the entry containing address addr, or -1. */
ssize_t procmaps__find_addr(const struct map_entry *v, size_t n, uint64_t addr);

#endif
