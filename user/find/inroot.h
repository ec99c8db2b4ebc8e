/* inroot.h — opens a file inside another process's root directory (a
 * container's or a chroot's /, reached through /proc/PID/root) the way
 * that process would resolve it: absolute symlinks and ".." stay inside
 * that root, never reaching the host's files.
 */
#ifndef SQLTRACE_INROOT_H
#define SQLTRACE_INROOT_H

/* Opens the root directory of process pid (/proc/PID/root) as an O_PATH
 * directory fd for inroot__open(). pid 0 opens this process's own "/" (the
 * host, for the tool). Returns the fd or -errno (-ESRCH for no process). */
int inroot__open_root(int pid);

/* Opens path read-only relative to the root directory rootfd, resolving
 * every component inside it (openat2 RESOLVE_IN_ROOT: "/" and ".." stop at
 * rootfd, an absolute symlink starts again from rootfd) and refusing
 * /proc magic links (RESOLVE_NO_MAGICLINKS) that would lead out of it.
 * A leading "/" in path is allowed. The open does not block on a FIFO
 * (O_NONBLOCK) and the fd is close-on-exec; the caller checks the file type.
 * Returns the fd, or -errno: the open's error, -ENOSYS on a kernel without
 * openat2 (nothing is opened then: no unsafe fallback), -EINVAL. */
int inroot__open(int rootfd, const char *path);

#endif
