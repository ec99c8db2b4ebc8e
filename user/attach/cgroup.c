/* cgroup.c — the processes of a cgroup, for --cgroup (see cgroup.h). */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CGROUP_MAX_DEPTH 32

int cgroup__v2_mount(FILE *mountinfo, char *out, size_t outlen)
{
	char line[4096];

	while (fgets(line, sizeof(line), mountinfo)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source sopts */
		char *sep = strstr(line, " - ");
		char *f[5], *save = NULL, *p = line;
		int i;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		for (i = 0; i < 5; i++, p = NULL)
			if (!(f[i] = strtok_r(p, " ", &save)))
				break;
		if (i < 5 || f[4][0] != '/')
			continue;
		/* Mount points with a space or newline are octal-escaped (\040): none of ours. */
		if (strchr(f[4], '\\'))
			continue;
		if (strlen(f[4]) >= outlen)
			return -ENAMETOOLONG;
		strcpy(out, f[4]);
		return 0;
	}
	return -ENOENT;
}

int cgroup__resolve(const char *arg, char *out, size_t outlen, char *why, size_t whylen)
{
	char base[PATH_MAX], procs[PATH_MAX + 16];
	struct stat st;
	int e;

	if (arg[0] == '/') {
		if (strlen(arg) >= outlen) {
			snprintf(why, whylen, "--cgroup %s: path too long", arg);
			return -ENAMETOOLONG;
		}
		strcpy(out, arg);
	} else {
		FILE *f = fopen("/proc/self/mountinfo", "re");

		if (!f) {
			e = -errno;
			snprintf(why, whylen, "--cgroup %s: cannot read /proc/self/mountinfo: %s", arg, strerror(-e));
			return e;
		}
		e = cgroup__v2_mount(f, base, sizeof(base));
		fclose(f);
		if (e) {
			snprintf(why, whylen, "--cgroup %s: no cgroup2 file system is mounted (give the "
				 "cgroup's full path)", arg);
			return e;
		}
		if ((size_t)snprintf(out, outlen, "%s/%s", base, arg) >= outlen) {
			snprintf(why, whylen, "--cgroup %s: path too long", arg);
			return -ENAMETOOLONG;
		}
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", out);
	if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "--cgroup %s: no such cgroup directory (%s)", arg, out);
		return -ENOENT;
	}
	if (access(procs, R_OK) != 0) {
		e = -errno;
		snprintf(why, whylen, "--cgroup %s: %s is not a cgroup (cannot read %s: %s)", arg, out, procs,
			 strerror(-e));
		return e;
	}
	return 0;
}

int cgroup__parse_procs(FILE *f, int **pids, size_t *n, size_t *cap)
{
	char line[64];

	while (fgets(line, sizeof(line), f)) {
		char *end;
		long v;

		errno = 0;
		v = strtol(line, &end, 10);
		if (errno || end == line || (*end != '\n' && *end != '\0') || v <= 0 || v > INT_MAX)
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			int *np = realloc(*pids, nc * sizeof(**pids));

			if (!np)
				return -ENOMEM;
			*pids = np;
			*cap = nc;
		}
		(*pids)[(*n)++] = (int)v;
	}
	return 0;
}

/* Adds the processes of dirfd's cgroup and of its children. */
static int walk(int dirfd, int depth, int **pids, size_t *n, size_t *cap)
{
	DIR *d;
	struct dirent *de;
	int fd, e = 0;

	fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		FILE *f = fdopen(fd, "r");

		if (!f) {
			close(fd);
			return -ENOMEM;
		}
		e = cgroup__parse_procs(f, pids, n, cap);
		fclose(f);
		if (e)
			return e;
	}
	if (depth >= CGROUP_MAX_DEPTH)
		return 0;
	fd = dup(dirfd);
	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while (!e && (de = readdir(d))) {
		int sub;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			continue;  /* removed meanwhile */
		e = walk(sub, depth + 1, pids, n, cap);
		close(sub);
	}
	closedir(d);
	return e;
}

int cgroup__pids(const char *dir, int **pids, size_t *n)
{
	size_t cap = 0;
	int fd, e;

	*pids = NULL;
	*n = 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOMEM ? -ENOMEM : -ENOENT;
	e = walk(fd, 0, pids, n, &cap);
	close(fd);
	if (e) {
		free(*pids);
		*pids = NULL;
		*n = 0;
	}
	return e;
}
