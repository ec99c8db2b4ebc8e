/* watchdog.c — continues the processes a dead tracer left stopped (see
 * watchdog.h). */
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STOPPED 4096

struct watchdog {
	pid_t child;
	int fd;           /* write end */
};

/* The child: keeps the set of stopped pids (+pid stopped, -pid continued);
 * at EOF continues them. Only async-signal-safe calls after fork. */
static void run_child(int fd)
{
	static int32_t set[MAX_STOPPED];
	int n = 0, i;
	int32_t v;

	for (;;) {
		ssize_t r = read(fd, &v, sizeof(v));

		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(v))
			break;
		if (v > 0 && n < MAX_STOPPED) {
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

		/* Only the read end stays open: the pipe's EOF is the tracer's
		 * end. Signals that would end the tool (Ctrl-C reaches the
		 * whole process group) must not end the watchdog first. */
		for (fd = 0; fd < 1024; fd++)
			if (fd != p[0])
				close(fd);
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		prctl(PR_SET_NAME, "sqltrace-watch", 0, 0, 0);
		run_child(p[0]);
	}
	close(p[0]);
	w->fd = p[1];
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

void watchdog__stop(struct watchdog *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->child > 0)
		waitpid(w->child, NULL, 0);
	free(w);
}
