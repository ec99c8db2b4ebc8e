/* cgroup.h — the processes of a cgroup (--cgroup): where the cgroup lives
 * and which processes are in it and in the cgroups below it. Reads only
 * cgroupfs and /proc, so it works without root on fixture directories. */
#ifndef SQLTRACE_CGROUP_H
#define SQLTRACE_CGROUP_H

#include <stddef.h>
#include <stdio.h>

/* Finds the cgroup2 mount point in mountinfo (the text of
 * /proc/self/mountinfo). Returns 0 with the path in out, -ENOENT when there
 * is no cgroup2 mount, -ENAMETOOLONG when out is too small. */
int cgroup__v2_mount(FILE *mountinfo, char *out, size_t outlen);

/* Resolves a --cgroup argument into out: an absolute path is kept as it is,
 * a relative one ("system.slice/myapp.service") is taken below the cgroup2
 * mount point. The directory must exist and hold cgroup.procs. Returns 0,
 * or -errno with one line in why ("/sys/fs/cgroup/x: no such cgroup ..."). */
int cgroup__resolve(const char *arg, char *out, size_t outlen, char *why, size_t whylen);

/* Reads the processes of the cgroup at dir and of every cgroup below it
 * (32 levels at most) into *pids (malloc'd, *n of them; free it). Returns
 * 0, -ENOENT when dir is gone (the service stopped: *n is 0), -ENOMEM. */
int cgroup__pids(const char *dir, int **pids, size_t *n);

/* Parses the text of one cgroup.procs file (one decimal pid a line),
 * appending to *pids, *n and *cap. Lines that are not a positive pid are
 * skipped. Returns 0 or -ENOMEM. */
int cgroup__parse_procs(FILE *f, int **pids, size_t *n, size_t *cap);

#endif
