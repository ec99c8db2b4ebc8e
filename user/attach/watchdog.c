/* watchdog.c — continues the processes a dead tracer left stopped (see
 * watchdog.h). */
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STOPPED 4096
#define MAX_WATCHED 4096
#define WATCHED_TAG 0x40000000  /* above any pid (pid_max <= 2^22) */

struct watchdog {
	pid_t child;
	int fd;           /* write end */
};

/* The child: keeps the set of stopped pids (+pid stopped, -pid continued);
 * at EOF continues them. Only async-signal-safe calls after fork. */
/* Whether pid is stopped (state T in /proc/PID/stat). Allocation-free. */
static int is_stopped(int32_t pid)
{
	char path[40], buf[256], *p;
	ssize_t n;
	int fd, i = 0;
	int32_t v = pid;
	char digits[12];

	/* "/proc/<pid>/stat" without snprintf */
	do {
		digits[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i < 11);
	memcpy(path, "/proc/", 6);
	for (n = 0; n < i; n++)
		path[6 + n] = digits[i - 1 - n];
	memcpy(path + 6 + i, "/stat", 6);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'T';
}

/* The child: keeps the set of stopped pids (+pid stopped, -pid continued)
 * and of watched ones; at EOF continues them (see watchdog.h). Only
 * async-signal-safe calls after fork. */
/* --cgroup: cgroup directories whose stopped processes (theirs and those
 * of the cgroups below them) are continued after a tracer's death (set
 * before the fork, read by the child). */
static char *const *wd_dirs;
static size_t wd_ndirs;

#define CGROUP_DEPTH_MAX 16   /* cgroups below a traced one, followed */

/* Continues every stopped process listed in cgroup.procs of the directory
 * dirfd. Allocation-free. */
static void continue_stopped_in(int dirfd)
{
	static char buf[65536];
	ssize_t n;
	int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	int32_t v = 0;
	int digits = 0;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] >= '0' && buf[i] <= '9' && digits < 9) {
			v = v * 10 + (buf[i] - '0');
			digits++;
		} else {
			if (digits && is_stopped(v))
				kill(v, SIGCONT);
			v = 0;
			digits = 0;
		}
	}
}

/* continue_stopped_in for dirfd and every cgroup below it (depth bounded;
 * a directory is opened O_NOFOLLOW: cgroupfs has no links anyway). Only
 * system calls: getdents64 straight, no opendir (its malloc is not safe in
 * a child forked from a threaded tracer). Closes dirfd. */
static void continue_stopped_under(int dirfd, int depth)
{
	char ents[4096];
	long n;

	continue_stopped_in(dirfd);
	while (depth < CGROUP_DEPTH_MAX && (n = syscall(SYS_getdents64, dirfd, ents, sizeof(ents))) > 0) {
		for (long off = 0; off < n;) {
			const struct linux_dirent64 {
				uint64_t d_ino;
				int64_t d_off;
				unsigned short d_reclen;
				unsigned char d_type;
				char d_name[];
			} *d = (const void *)(ents + off);
			int sub;

			if (d->d_reclen == 0)
				break;
			off += d->d_reclen;
			if (d->d_type != DT_DIR || (d->d_name[0] == '.' && (d->d_name[1] == '\0' ||
			    (d->d_name[1] == '.' && d->d_name[2] == '\0'))))
				continue;
			sub = openat(dirfd, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				continue_stopped_under(sub, depth + 1);
		}
	}
	close(dirfd);
}

static void run_child(int fd, pid_t tracer)
{
	static int32_t set[MAX_STOPPED], watched[MAX_WATCHED];
	int n = 0, nw = 0, i, round, orderly = 0;
	int32_t v;

	for (;;) {
		ssize_t r = read(fd, &v, sizeof(v));

		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(v))
			break;
		if (v == 0) {
			orderly = 1;  /* the tracer's probes are gone already */
			break;
		}
		if (v > WATCHED_TAG) {
			if (nw < MAX_WATCHED)
				watched[nw++] = v - WATCHED_TAG;
		} else if (v > 0 && n < MAX_STOPPED) {
			set[n++] = v;
		} else if (v < 0) {
			for (i = 0; i < n; i++) {
				if (set[i] == -v) {
					set[i] = set[--n];
					break;
				}
			}
		}
	}
	for (i = 0; i < n; i++)
		kill(set[i], SIGCONT);
	if (orderly)
		_exit(0);
	/* Until the tracer is gone (reparented away from it: its files,
	 * probes included, are closed by then), and a moment after, continue
	 * the watched processes a late probe hit stopped. At most ~30 s. */
	for (round = 0; round < 300; round++) {
		struct timespec nap = { 0, 100 * 1000 * 1000 };
		int gone = getppid() != tracer;

		for (i = 0; i < nw; i++)
			if (is_stopped(watched[i]))
				kill(watched[i], SIGCONT);
		for (size_t k = 0; k < wd_ndirs; k++) {
			int d = wd_dirs[k] ? open(wd_dirs[k], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

			if (d >= 0)
				continue_stopped_under(d, 0);
		}
		if (gone && round > 2)
			break;
		nanosleep(&nap, NULL);
	}
	_exit(0);
}

struct watchdog *watchdog__start(void)
{
	struct watchdog *w = calloc(1, sizeof(*w));
	int p[2];

	if (!w)
		return NULL;
	if (pipe2(p, O_CLOEXEC) != 0) {
		free(w);
		return NULL;
	}
	w->child = fork();
	if (w->child < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		free(w);
		errno = e;
		return NULL;
	}
	if (w->child == 0) {
		int fd;
		sigset_t all;
		pid_t tracer = getppid();

		/* Only the read end stays open: the pipe's EOF is the tracer's
		 * end. Signals that would end the tool (Ctrl-C reaches the
		 * whole process group) must not end the watchdog first. */
		for (fd = 0; fd < 1024; fd++)
			if (fd != p[0])
				close(fd);
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		prctl(PR_SET_NAME, "sqltrace-watch", 0, 0, 0);
		run_child(p[0], tracer);
	}
	close(p[0]);
	w->fd = p[1];
	return w;
}

struct watchdog *watchdog__start_cgroups(char *const *dirs, size_t n)
{
	struct watchdog *w;

	/* The child reads them from its copy of our memory. */
	wd_dirs = dirs;
	wd_ndirs = n;
	w = watchdog__start();
	wd_dirs = NULL;
	wd_ndirs = 0;
	return w;
}

static void send_one(struct watchdog *w, int32_t v)
{
	ssize_t r;

	if (!w || w->fd < 0)
		return;
	do
		r = write(w->fd, &v, sizeof(v));
	while (r < 0 && errno == EINTR);
}

void watchdog__stopped(struct watchdog *w, pid_t pid)
{
	send_one(w, (int32_t)pid);
}

void watchdog__continued(struct watchdog *w, pid_t pid)
{
	send_one(w, -(int32_t)pid);
}

void watchdog__watched(struct watchdog *w, pid_t pid)
{
	send_one(w, (int32_t)pid + WATCHED_TAG);
}

void watchdog__stop(struct watchdog *w)
{
	if (!w)
		return;
	send_one(w, 0);  /* an orderly end: nothing can stop a target any more */
	if (w->fd >= 0)
		close(w->fd);
	if (w->child > 0)
		waitpid(w->child, NULL, 0);
	free(w);
}
