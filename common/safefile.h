/* safefile.h — opening the directories and files that root writes into or
 * reads secrets from, without following a path another user controls.
 *
 * A directory is trusted when it is owned by root or by the effective user
 * and neither its group nor others may write it (sticky directories such as
 * /tmp are trusted on the way, since others cannot rename or remove what is
 * not theirs there). A path is resolved one component at a time from "/"
 * (a relative path from the current directory's real path), each directory
 * opened with O_NOFOLLOW relative to the one before and checked through its
 * fd, so the result cannot be swapped while it is checked. A symbolic link
 * on the way is followed only when it sits in a trusted directory and, when
 * that directory is writable by others (sticky), belongs to root or to us.
 *
 * Every function returns 0 or a file descriptor, or a negative errno with one
 * line in why naming the path and, where there is one, the fix, e.g.
 * "/srv/pub is writable by group or others (chmod go-w /srv/pub, or use
 * another directory)". why is without a prefix: callers say what the path
 * was for ("cannot use spool directory /srv/pub/spool: ...").
 */
#ifndef SQLTRACE_SAFEFILE_H
#define SQLTRACE_SAFEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* flags of safefile__open_dir and safefile__open_parent */
#define SAFEFILE_CREATE 1u  /* create missing directories, mode 0700 */
#define SAFEFILE_STICKY 2u  /* the last directory may be writable by others
                             * when it is sticky (like /tmp) */
#define SAFEFILE_FOLLOW 4u  /* open_parent: the last component may be a
                             * symbolic link (followed under the same rules) */

/* flags of safefile__check_file */
#define SAFEFILE_SECRET 8u   /* no access at all for group and others */
#define SAFEFILE_ROOT_OK 16u /* root may own it too */

/* Opens the directory path (created, with its missing parents, mode 0700
 * with SAFEFILE_CREATE) after checking it and every directory above it.
 * Returns an O_RDONLY|O_DIRECTORY|O_CLOEXEC fd, or -errno (-EPERM when a
 * directory is not trusted). */
int safefile__open_dir(const char *path, unsigned flags, char *why, size_t whylen);

/* Opens the directory that holds the file path, with the checks of
 * safefile__open_dir, and copies the file's name in that directory into
 * name (namelen bytes) and, when resolved is not NULL, the real absolute
 * path of the file (no symbolic link in it) into resolved (reslen bytes).
 * A path that ends in "/", "." or ".." is refused (-EISDIR). The file
 * itself is not opened: open it with openat(fd, name, ...|O_NOFOLLOW). */
int safefile__open_parent(const char *path, unsigned flags, char *name, size_t namelen,
			  char *resolved, size_t reslen, char *why, size_t whylen);

/* Checks that st, the fstat() of the file called path, is a regular file
 * with one link, owned by the effective user (or root, with
 * SAFEFILE_ROOT_OK), that group and others cannot write (nor read, with
 * SAFEFILE_SECRET). Returns 0 or -EPERM with why. */
int safefile__check_file(const struct stat *st, const char *path, unsigned flags, char *why,
			 size_t whylen);

#endif
