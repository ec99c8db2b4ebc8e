/* safefile.c — path resolution through trusted directories only, and the
 * ownership checks of files root writes or reads secrets from (safefile.h).
 */
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LINKS 40  /* like the kernel's limit on nested symbolic links */

struct walk {
	int fd;                   /* current directory, O_PATH, checked */
	char path[PATH_MAX];      /* its real path, for messages */
	int others_write;         /* it is writable by others (sticky) */
	char *why;
	size_t whylen;
};

static int fail(struct walk *w, int err, const char *what)
{
	snprintf(w->why, w->whylen, "%s: %s", what, strerror(-err));
	return err;
}

static int trusted_owner(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* Checks directory st called path; sticky says whether it may be writable
 * by others when sticky. Returns 0, 1 (trusted, but others may add entries)
 * or -EPERM with why. */
static int check_dir(const struct stat *st, const char *path, int sticky, char *why, size_t whylen)
{
	if (!trusted_owner(st->st_uid)) {
		snprintf(why, whylen, "%s is owned by uid %u, not by root or uid %u (only they may "
			 "own a directory sqltrace-bpf writes into)", path, (unsigned)st->st_uid,
			 (unsigned)geteuid());
		return -EPERM;
	}
	if (!(st->st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	if (sticky && (st->st_mode & S_ISVTX))
		return 1;
	snprintf(why, whylen, "%s is writable by group or others%s (chmod go-w %s, or use "
		 "another directory)", path, st->st_mode & S_ISVTX ? "" : " and not sticky", path);
	return -EPERM;
}

/* Moves w to directory fd nfd (called npath), checking it as a directory on
 * the way (sticky allowed). Takes nfd. */
static int enter(struct walk *w, int nfd, const struct stat *st, const char *npath)
{
	int r = check_dir(st, npath, 1, w->why, w->whylen);

	if (r < 0) {
		close(nfd);
		return r;
	}
	close(w->fd);
	w->fd = nfd;
	w->others_write = r;
	snprintf(w->path, sizeof(w->path), "%s", npath);
	return 0;
}

static int go_root(struct walk *w)
{
	struct stat st;
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		return fail(w, -errno, "/");
	}
	return enter(w, fd, &st, "/");
}

/* Path of component c under the current directory. */
static int child_path(struct walk *w, const char *c, char *out, size_t len)
{
	int k = snprintf(out, len, "%s%s%s", w->path, strcmp(w->path, "/") ? "/" : "", c);

	if (k < 0 || (size_t)k >= len) {
		snprintf(w->why, w->whylen, "%s/%s: path too long", w->path, c);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Resolves path. With want_parent, stops before the last component, whose
 * name goes to name; else the whole path must be a directory. On success
 * w->fd is the (checked) directory reached. */
static int walk(struct walk *w, const char *path, unsigned flags, int want_parent, char *name,
		size_t namelen)
{
	char *rest = malloc(2 * PATH_MAX), *buf = malloc(PATH_MAX), *npath = malloc(PATH_MAX);
	size_t restlen = 2 * PATH_MAX;
	int links = 0, ret = 0;

	if (!rest || !buf || !npath) {
		ret = fail(w, -ENOMEM, path);
		goto out;
	}
	if (path[0] == '/') {
		ret = snprintf(rest, restlen, "%s", path) >= (int)restlen ? -ENAMETOOLONG : 0;
	} else if (!getcwd(buf, PATH_MAX)) {
		ret = fail(w, -errno, "the current directory");
		goto out;
	} else {
		ret = snprintf(rest, restlen, "%s/%s", buf, path) >= (int)restlen ? -ENAMETOOLONG : 0;
	}
	if (ret) {
		ret = fail(w, ret, path);
		goto out;
	}
	if ((ret = go_root(w)))
		goto out;
	if (want_parent) {
		size_t n = strlen(rest);
		const char *last;

		while (n > 1 && rest[n - 1] == '/')
			n--;
		if (n != strlen(rest)) {
			snprintf(w->why, w->whylen, "%s: a file name cannot end with '/'", path);
			ret = -EISDIR;
			goto out;
		}
		last = strrchr(rest, '/') + 1;
		if (!*last || !strcmp(last, ".") || !strcmp(last, "..")) {
			snprintf(w->why, w->whylen, "%s: not a file name", path);
			ret = -EISDIR;
			goto out;
		}
	}

	for (;;) {
		char *p = rest, *c;
		struct stat st;
		size_t clen;
		int nfd, is_last;

		while (*p == '/')
			p++;
		if (!*p)
			break;                 /* everything resolved: w->fd is it */
		c = p;
		clen = strcspn(c, "/");
		p = c + clen;
		while (*p == '/')
			p++;
		is_last = *p == '\0';
		if (clen >= NAME_MAX + 1) {
			ret = fail(w, -ENAMETOOLONG, path);
			goto out;
		}
		memcpy(buf, c, clen);
		buf[clen] = '\0';
		memmove(rest, p, strlen(p) + 1);

		if (is_last && want_parent && !(flags & SAFEFILE_FOLLOW)) {
			snprintf(name, namelen, "%s", buf);
			goto out;
		}
		if (!strcmp(buf, "."))
			continue;
		if (!strcmp(buf, "..")) {
			char *slash;

			nfd = openat(w->fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (nfd < 0 || fstat(nfd, &st)) {
				ret = fail(w, -errno, w->path);
				if (nfd >= 0)
					close(nfd);
				goto out;
			}
			snprintf(npath, PATH_MAX, "%s", w->path);
			slash = strrchr(npath, '/');
			if (slash)
				slash[slash == npath ? 1 : 0] = '\0';
			if ((ret = enter(w, nfd, &st, npath)))
				goto out;
			continue;
		}
		if ((ret = child_path(w, buf, npath, PATH_MAX)))
			goto out;
		nfd = openat(w->fd, buf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && (flags & SAFEFILE_CREATE) &&
		    !(is_last && want_parent)) {
			if (mkdirat(w->fd, buf, 0700) && errno != EEXIST) {
				ret = fail(w, -errno, npath);
				goto out;
			}
			nfd = openat(w->fd, buf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0 && errno == ENOENT && is_last && want_parent) {
			snprintf(name, namelen, "%s", buf);  /* a new file: fine */
			goto out;
		}
		if (nfd < 0 || fstat(nfd, &st)) {
			ret = fail(w, -errno, npath);
			if (nfd >= 0)
				close(nfd);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			ssize_t k;

			if (++links > MAX_LINKS) {
				close(nfd);
				ret = fail(w, -ELOOP, path);
				goto out;
			}
			if (w->others_write && !trusted_owner(st.st_uid)) {
				close(nfd);
				snprintf(w->why, w->whylen, "%s is a symbolic link owned by uid %u in %s, "
					 "which others can write: not followed", npath,
					 (unsigned)st.st_uid, w->path);
				ret = -EPERM;
				goto out;
			}
			k = readlinkat(nfd, "", buf, PATH_MAX - 1);
			close(nfd);
			if (k <= 0) {
				ret = fail(w, k < 0 ? -errno : -ENOENT, npath);
				goto out;
			}
			buf[k] = '\0';
			if (strlen(buf) + 1 + strlen(rest) + 1 > restlen) {
				ret = fail(w, -ENAMETOOLONG, path);
				goto out;
			}
			memmove(rest + k + 1, rest, strlen(rest) + 1);
			memcpy(rest, buf, (size_t)k);
			rest[k] = '/';
			if (buf[0] == '/' && (ret = go_root(w)))
				goto out;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if ((ret = enter(w, nfd, &st, npath)))
				goto out;
			continue;
		}
		close(nfd);
		if (is_last && want_parent) {
			snprintf(name, namelen, "%s", buf);
			goto out;
		}
		ret = fail(w, -ENOTDIR, npath);
		goto out;
	}
	if (want_parent) {  /* only "."s and ".."s after the name's directory */
		snprintf(w->why, w->whylen, "%s: not a file name", path);
		ret = -EISDIR;
	}
out:
	free(rest);
	free(buf);
	free(npath);
	return ret;
}

/* Finishes a walk: checks the directory reached under flags and returns an
 * O_RDONLY fd to it, or -errno. */
static int finish(struct walk *w, int ret, unsigned flags)
{
	struct stat st;
	int fd = -1;

	if (!ret && fstat(w->fd, &st))
		ret = fail(w, -errno, w->path);
	if (!ret && (ret = check_dir(&st, w->path, !!(flags & SAFEFILE_STICKY), w->why,
				     w->whylen)) > 0)
		ret = 0;
	if (!ret && (fd = openat(w->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		ret = fail(w, -errno, w->path);
	if (w->fd >= 0)
		close(w->fd);
	return ret ? ret : fd;
}

int safefile__open_dir(const char *path, unsigned flags, char *why, size_t whylen)
{
	struct walk w = { .fd = -1, .why = why, .whylen = whylen };

	if (!path || !*path) {
		snprintf(why, whylen, "empty directory name");
		return -EINVAL;
	}
	return finish(&w, walk(&w, path, flags & ~SAFEFILE_FOLLOW, 0, NULL, 0), flags);
}

int safefile__open_parent(const char *path, unsigned flags, char *name, size_t namelen,
			  char *resolved, size_t reslen, char *why, size_t whylen)
{
	struct walk w = { .fd = -1, .why = why, .whylen = whylen };
	int ret;

	if (!path || !*path) {
		snprintf(why, whylen, "empty file name");
		return -EINVAL;
	}
	name[0] = '\0';
	ret = walk(&w, path, flags, 1, name, namelen);
	if (!ret && resolved) {
		int k = snprintf(resolved, reslen, "%s%s%s", w.path, strcmp(w.path, "/") ? "/" : "",
				 name);

		if (k < 0 || (size_t)k >= reslen)
			ret = fail(&w, -ENAMETOOLONG, path);
	}
	return finish(&w, ret, flags);
}

int safefile__check_file(const struct stat *st, const char *path, unsigned flags, char *why,
			 size_t whylen)
{
	mode_t bad = (flags & SAFEFILE_SECRET) ? 077 : (S_IWGRP | S_IWOTH);

	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		return -EPERM;
	}
	if (st->st_uid != geteuid() && !((flags & SAFEFILE_ROOT_OK) && st->st_uid == 0)) {
		snprintf(why, whylen, "%s is owned by uid %u, not by %suid %u", path,
			 (unsigned)st->st_uid, flags & SAFEFILE_ROOT_OK ? "root or " : "",
			 (unsigned)geteuid());
		return -EPERM;
	}
	if (st->st_nlink != 1) {
		snprintf(why, whylen, "%s has %lu hard links (one of them may be in a directory "
			 "others control)", path, (unsigned long)st->st_nlink);
		return -EPERM;
	}
	if (st->st_mode & bad) {
		if (flags & SAFEFILE_SECRET)
			snprintf(why, whylen, "%s can be read or written by group or others "
				 "(chmod 600 %s)", path, path);
		else
			snprintf(why, whylen, "%s is writable by group or others (chmod go-w %s)",
				 path, path);
		return -EPERM;
	}
	return 0;
}
