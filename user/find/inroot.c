/* inroot.c — opening files inside a process's root with openat2(2)
 * RESOLVE_IN_ROOT (see inroot.h). glibc has no wrapper for openat2 in every
 * version Debian ships, so the system call is made directly. */
#include "inroot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

int inroot__open_root(int pid)
{
	char path[64];
	int fd;

	if (pid < 0)
		return -EINVAL;
	if (pid == 0)
		snprintf(path, sizeof(path), "/");
	else
		snprintf(path, sizeof(path), "/proc/%d/root", pid);
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd;
}

int inroot__open(int rootfd, const char *path)
{
	struct open_how how;
	int tries = 0;
	long fd;

	if (rootfd < 0 || !path || !path[0])
		return -EINVAL;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	/* EAGAIN: a rename raced with "..", the kernel asks to retry; bounded,
	 * the directory's owner could keep renaming */
	do
		fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 8);
	return fd < 0 ? -errno : (int)fd;
}
