/* finder.c — the finders asked in order, per file and per process, and
 * their answer tagged with the probe set that fits (see finder.h). The C
 * finders are target.c's; the Go database/sql finder is gosql.c's. */
#include "finder.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "elfsym.h"
#include "inroot.h"
#include "procmaps.h"

/* Appends to the reason in why, as room allows. */
static void __attribute__((format(printf, 3, 4))) append_why(char *why, size_t whylen, const char *fmt, ...)
{
	size_t used = strlen(why);
	va_list ap;

	if (used + 1 >= whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why + used, whylen - used, fmt, ap);
	va_end(ap);
}

/* The Go database/sql finder, asked of an executable none of the C
 * finders answered for (open as ef): f->layer becomes FOUND_GO_SQL (its
 * plan in f->go) or FOUND_REFUSED (f->refused, f->why), or stays
 * FOUND_NONE when the file is not a Go program using database/sql, or is
 * one with a cgo SQLite (its C functions are the ones to probe: the C
 * finders' reason stands, never traced one level up silently). */
static void ask_go(struct elf_file *ef, struct sqlite_found *f)
{
	uint64_t size;
	int fd = elf_file__fd(ef, &size), e;

	if (fd < 0)
		return;
	f->why[0] = '\0';
	e = gosql__plan(fd, size, &f->go, f->why, sizeof(f->why));
	if (e == 0) {
		f->layer = FOUND_GO_SQL;
		f->finder = "Go function table";
	} else if (e != -ENOEXEC && e != -ENOENT) {
		f->layer = FOUND_REFUSED;
		f->refused = e;
		if (!f->why[0])
			snprintf(f->why, sizeof(f->why), "cannot read its Go function table: %s", strerror(-e));
	}
}

/* Asks the finders about one ELF file, in order: the C finders, then, when
 * go (an executable) and none of them answered, the Go database/sql
 * finder. Sets f->layer and f->finder (f->c's paths and identity are the
 * caller's). Returns 0 when one answered (or refused), else the C finders'
 * negative errno with their reason in why. */
static int ask(struct elf_file *ef, bool go, int rootfd, const char *label, struct sqlite_found *f, char *why,
	       size_t whylen)
{
	int err = target__resolve(ef, &f->c, rootfd, label, why, whylen);

	if (err == 0) {
		f->layer = FOUND_C;
		f->finder = f->c.finder;
		return 0;
	}
	/* nothing of a C copy is kept (its identity is set after) */
	memset(&f->c, 0, sizeof(f->c));
	if (go)
		ask_go(ef, f);
	return f->layer == FOUND_NONE ? err : 0;
}

/* Records where the file of f is: its names and identity. Returns 0 or
 * -ENOMEM. */
static int place(struct sqlite_found *f, const char *path, const char *open_path, const struct stat *st, bool in_exe)
{
	f->c.path = strdup(path);
	f->c.open_path = strdup(open_path);
	f->c.dev = st->st_dev;
	f->c.ino = st->st_ino;
	f->c.in_exe = in_exe;
	return f->c.path && f->c.open_path ? 0 : -ENOMEM;
}

void find__release(struct sqlite_found *f)
{
	free(f->c.path);
	free(f->c.open_path);
	f->c.path = f->c.open_path = NULL;
	gosql__plan_free(&f->go);
}

void find__free(struct sqlite_found *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		find__release(&v[i]);
	free(v);
}

void find__free_paths(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int find__file(const char *open_path, const char *path, struct sqlite_found *out, bool *has_shim, char *why,
	       size_t whylen)
{
	struct elf_file *ef;
	struct stat st;
	uint64_t va, sz;
	char reason[320];
	int err, fd;

	memset(out, 0, sizeof(*out));
	*has_shim = false;
	/* one open, then fstat: the file checked is the file read */
	fd = open(open_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		err = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, whylen, "%s: not a regular file", path);
		return -EINVAL;
	}
	ef = elf_file__open_fd(fd, open_path);
	if (!ef) {
		err = -errno;
		snprintf(why, whylen, "%s: not an ELF executable or library", path);
		return err ? err : -ENOEXEC;
	}
	*has_shim = elf_file__find_func(ef, "sqltrace_set_trace_id", &va, &sz) == 0;
	/* a file given is asked the Go finder too (-b names a program) */
	err = ask(ef, true, -1, "", out, reason, sizeof(reason));
	elf_file__close(ef);
	if (err) {
		snprintf(why, whylen, "%s: %s", path, reason);
		if (!*has_shim)
			return err;
	}
	if (place(out, path, open_path, &st, false) != 0) {
		find__release(out);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Opens, for reading, the very file a mapping of process pid comes from,
 * and says through which paths the tracer reaches it.
 * First /proc/PID/map_files/<range>: the mapping itself (the kernel follows
 * that link to the mapped file, whatever happened to its path since), which
 * becomes the path probes are attached through (*probe_path). Without it
 * (map_files needs CAP_SYS_ADMIN), the maps path is resolved inside the
 * process's root (rootfd) and must be the mapped file: same inode and the
 * device maps prints (major:minor of the superblock, which is st_dev for
 * ext4/xfs/tmpfs; on btrfs or overlayfs they differ and the file is then
 * not used).
 * *root_path gets /proc/PID/root<path> when the kernel's ordinary walk of
 * that path (which follows symlinks as the tool sees them) reaches the same
 * file (device and inode as fstat gives them, like with like), else the
 * same as *probe_path: libbpf's USDT attach wants a path it can match
 * against the maps of the process.
 * Returns 0 with the fd (the caller closes it) and its fstat in *st, or
 * -ENOENT. */
static int open_mapped_file(int pid, int rootfd, const struct map_entry *m, char *probe_path,
			    char *root_path, size_t len, struct stat *st, int *fdp)
{
	char mf[96];
	struct stat ref, rst;
	int fd;

	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start, m->end);
	if (stat(mf, &ref) == 0) {
		fd = open(mf, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return -ENOENT;
		if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_dev != ref.st_dev ||
		    st->st_ino != ref.st_ino) {
			close(fd);
			return -ENOENT;
		}
		snprintf(probe_path, len, "%s", mf);
	} else {
		if (rootfd < 0 || m->deleted)
			return -ENOENT;
		fd = inroot__open(rootfd, m->path);
		if (fd < 0)
			return -ENOENT;
		if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_ino != (ino_t)m->inode ||
		    major(st->st_dev) != m->dev_major || minor(st->st_dev) != m->dev_minor) {
			close(fd);
			return -ENOENT;
		}
		probe_path[0] = '\0';
	}
	snprintf(root_path, len, "/proc/%d/root%s", pid, m->path);
	if (m->deleted || stat(root_path, &rst) != 0 || rst.st_dev != st->st_dev || rst.st_ino != st->st_ino) {
		if (!probe_path[0]) {
			close(fd);      /* no path that reaches this file safely */
			return -ENOENT;
		}
		snprintf(root_path, len, "%s", probe_path);
	}
	if (!probe_path[0])
		snprintf(probe_path, len, "%s", root_path);
	*fdp = fd;
	return 0;
}

/* Appends a copy of s to *v. Returns 0 or -ENOMEM. */
static int push_path(char ***v, size_t *n, const char *s)
{
	char **grown = realloc(*v, (*n + 1) * sizeof(**v));

	if (!grown)
		return -ENOMEM;
	*v = grown;
	grown[*n] = strdup(s);
	if (!grown[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

int find__process(int pid, find_skip_fn skip, void *skip_ctx, struct sqlite_found **out, size_t *n,
		  char ***shims, size_t *nshims, char *why, size_t whylen)
{
	struct map_entry *maps = NULL;
	struct sqlite_found *found = NULL;
	size_t nmaps = 0, nfound = 0, i, j;
	char exe[PATH_MAX], exe_link[64];
	ssize_t exelen;
	char exe_why[320] = "has no sqlite3_prepare_v2 symbol", reason[320];
	char root[64];
	int err, rootfd;

	*out = NULL;
	*n = 0;
	if (shims) {
		*shims = NULL;
		*nshims = 0;
	}
	why[0] = '\0';
	err = procmaps__read_pid(pid, &maps, &nmaps);
	if (err) {
		snprintf(why, whylen, "cannot read /proc/%d/maps: %s", pid, strerror(-err));
		return err;
	}
	snprintf(root, sizeof(root), "/proc/%d/root", pid);
	rootfd = inroot__open_root(pid);  /* -errno: map_files only */
	snprintf(exe_link, sizeof(exe_link), "/proc/%d/exe", pid);
	exelen = readlink(exe_link, exe, sizeof(exe) - 1);
	exe[exelen > 0 ? exelen : 0] = '\0';

	for (i = 0; i < nmaps; i++) {
		struct map_entry *m = &maps[i];
		struct sqlite_found *f, *grown;
		char open_path[PATH_MAX + 64], root_path[PATH_MAX + 64];
		struct elf_file *ef;
		struct stat st;
		const char *base;
		bool seen = false, in_exe;
		int fd;

		if (!m->path || m->path[0] != '/' || m->inode == 0)
			continue;
		/* Each file once (it is mapped several times, maybe under /lib
		 * and /usr/lib). */
		for (j = 0; j < i; j++)
			if (maps[j].inode == m->inode && maps[j].dev_major == m->dev_major &&
			    maps[j].dev_minor == m->dev_minor)
				seen = true;
		if (seen || (skip && skip(skip_ctx, m->dev_major, m->dev_minor, m->inode)))
			continue;
		if (open_mapped_file(pid, rootfd, m, open_path, root_path, sizeof(open_path), &st, &fd) != 0) {
			base = strrchr(m->path, '/');
			if (strstr(base ? base : m->path, "sqlite"))
				append_why(why, whylen, "; %s cannot be opened", m->path);
			continue;
		}
		for (j = 0; j < nfound; j++)
			if (found[j].c.dev == st.st_dev && found[j].c.ino == st.st_ino)
				seen = true;
		if (seen) {
			close(fd);
			continue;
		}
		ef = elf_file__open_fd(fd, open_path);
		if (!ef)
			continue;  /* not ELF (a data file, a locale archive…) */
		if (shims) {
			uint64_t va, sz;

			/* The shim is read and probed through the link to the
			 * mapped file itself, never a path its owner can swap. */
			if (elf_file__find_func(ef, "sqltrace_set_trace_id", &va, &sz) == 0 &&
			    push_path(shims, nshims, open_path) != 0) {
				elf_file__close(ef);
				goto oom;
			}
		}
		/* the answer is made in place, in a slot kept only if one answered */
		grown = realloc(found, (nfound + 1) * sizeof(*found));
		if (!grown) {
			elf_file__close(ef);
			goto oom;
		}
		found = grown;
		f = &found[nfound];
		memset(f, 0, sizeof(*f));
		in_exe = exe[0] && strcmp(exe, m->path) == 0;
		err = ask(ef, in_exe, rootfd, root, f, reason, sizeof(reason));
		elf_file__close(ef);
		if (err) {
			base = strrchr(m->path, '/');
			if (in_exe)
				snprintf(exe_why, sizeof(exe_why), "%s", reason);
			else if (strstr(base ? base : m->path, "sqlite") || strstr(reason, TARGET_UNLOCATABLE))
				append_why(why, whylen, "; %s %s", m->path, reason);
			continue;
		}
		nfound++;
		if (place(f, m->path, open_path, &st, in_exe) != 0)
			goto oom;
	}
	if (nfound == 0) {
		char notes[512];

		snprintf(notes, sizeof(notes), "%s", why);
		snprintf(why, whylen, "no mapped libsqlite3 (%zu mappings in /proc/%d/maps) and the executable %s %s%s",
			 nmaps, pid, exe[0] ? exe : "(unknown)", exe_why, notes);
	}
	procmaps__free(maps, nmaps);
	if (rootfd >= 0)
		close(rootfd);
	*out = found;
	*n = nfound;
	return 0;
oom:
	find__free(found, nfound);
	procmaps__free(maps, nmaps);
	if (rootfd >= 0)
		close(rootfd);
	snprintf(why, whylen, "out of memory");
	if (shims) {
		find__free_paths(*shims, *nshims);
		*shims = NULL;
		*nshims = 0;
	}
	return -ENOMEM;
}
