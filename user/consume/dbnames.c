/* dbnames.c — connection → database file name, per process (see
 * dbnames.h). An open-addressing table keyed by (pid, db); small, since a
 * process has few connections. */
#include "dbnames.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>


#define DBNAMES_SLOTS 4096   /* power of two; a full table evicts */

struct slot {
	uint32_t pid;
	uint64_t db;
	char *name;      /* NULL: free slot */
};

struct dbnames {
	struct slot slots[DBNAMES_SLOTS];
};

struct dbnames *dbnames__new(void)
{
	return calloc(1, sizeof(struct dbnames));
}

void dbnames__free(struct dbnames *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < DBNAMES_SLOTS; i++)
		free(d->slots[i].name);
	free(d);
}

static size_t hash(uint32_t pid, uint64_t db)
{
	uint64_t h = (db >> 3) * 0x9E3779B97F4A7C15ULL ^ pid;

	return (size_t)(h ^ (h >> 31)) & (DBNAMES_SLOTS - 1);
}

/* The slot holding (pid, db), or the free slot where it would go, or (the
 * table being full) the home slot, which is then reused. */
static struct slot *find(struct dbnames *d, uint32_t pid, uint64_t db)
{
	size_t h = hash(pid, db), i;

	for (i = 0; i < 64; i++) {
		struct slot *s = &d->slots[(h + i) & (DBNAMES_SLOTS - 1)];

		if (!s->name || (s->pid == pid && s->db == db))
			return s;
	}
	return &d->slots[h];
}

void dbnames__set(struct dbnames *d, uint32_t pid, uint64_t db, const char *name)
{
	struct slot *s = find(d, pid, db);
	char *copy = strdup(name ? name : "");

	if (!copy)
		return;
	free(s->name);
	s->pid = pid;
	s->db = db;
	s->name = copy;
}

void dbnames__forget_pid(struct dbnames *d, uint32_t pid)
{
	size_t i;

	/* Clearing breaks probe chains; rebuild the table without pid. */
	struct slot *old = malloc(sizeof(d->slots));

	if (!old) {
		for (i = 0; i < DBNAMES_SLOTS; i++)
			if (d->slots[i].name && d->slots[i].pid == pid)
				d->slots[i].name[0] = '\0';  /* unknown again, keeps chains */
		return;
	}
	memcpy(old, d->slots, sizeof(d->slots));
	memset(d->slots, 0, sizeof(d->slots));
	for (i = 0; i < DBNAMES_SLOTS; i++) {
		if (!old[i].name)
			continue;
		if (old[i].pid == pid) {
			free(old[i].name);
			continue;
		}
		*find(d, old[i].pid, old[i].db) = old[i];
	}
	free(old);
}

static bool is_sqlite_file(const char *path)
{
	char head[16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = pread(fd, head, sizeof(head), 0);
	close(fd);
	return n == 16 && memcmp(head, "SQLite format 3", 16) == 0;
}

char *dbnames__from_fds(pid_t pid)
{
	char dir[64], link[PATH_MAX], found[PATH_MAX] = "";
	int nfound = 0;
	struct dirent *de;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	dp = opendir(dir);
	if (!dp)
		return NULL;
	while ((de = readdir(dp)) != NULL) {
		char fdpath[320];
		struct stat st;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", dir, de->d_name);
		if (stat(fdpath, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		n = readlink(fdpath, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, found) == 0)
			continue;  /* the same file open twice */
		if (!is_sqlite_file(fdpath))
			continue;
		nfound++;
		snprintf(found, sizeof(found), "%s", link);
	}
	closedir(dp);
	return nfound == 1 ? strdup(found) : NULL;
}

const char *dbnames__get(struct dbnames *d, uint32_t pid, uint64_t db)
{
	struct slot *s;
	char *name;

	if (!db)
		return "";
	s = find(d, pid, db);
	if (s->name && s->pid == pid && s->db == db)
		return s->name;
	/* BPF sends the name of a connection opened before attach (OPEN
	 * record) for the calibrated build; otherwise, and as a last resort
	 * while the process lives, its open files. */
	name = dbnames__from_fds((pid_t)pid);
	dbnames__set(d, pid, db, name ? name : "");
	free(name);
	s = find(d, pid, db);
	return s->name ? s->name : "";
}
