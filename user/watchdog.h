/* watchdog.h — a tiny child process that continues (SIGCONT) every target
 * the tracer stopped and did not continue yet, should the tracer die: the
 * tracer stops a process for a few milliseconds while it probes a SQLite
 * copy the process just loaded (see tracer.c, "later loads"), and a tracer
 * killed in that window must not leave the process stopped for good.
 *
 * The child learns of each stop and continue through a pipe; when the pipe
 * reaches EOF (the tracer exited, however it exited) it sends SIGCONT to the
 * processes still stopped by the tracer and exits. It does nothing else. */
#ifndef SQLTRACE_WATCHDOG_H
#define SQLTRACE_WATCHDOG_H

#include <sys/types.h>

struct watchdog;

/* Forks the watchdog. Returns NULL and sets errno on failure. */
struct watchdog *watchdog__start(void);

/* The tracer stopped pid / continued it. These can't fail (a full pipe
 * blocks briefly; a watchdog gone is ignored). */
void watchdog__stopped(struct watchdog *w, pid_t pid);
void watchdog__continued(struct watchdog *w, pid_t pid);

/* Closes the pipe (the watchdog continues what is still stopped and exits)
 * and reaps it. NULL is fine. */
void watchdog__stop(struct watchdog *w);

#endif
