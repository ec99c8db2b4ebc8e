/* watchdog.h — a tiny child process that continues (SIGCONT) every target
 * the tracer stopped and did not continue yet, should the tracer die: the
 * tracer stops a process for a few milliseconds while it probes a SQLite
 * copy the process just loaded (see tracer.c, "later loads"), and a tracer
 * killed in that window must not leave the process stopped for good.
 *
 * The child learns of each stop and continue, and of each watched process,
 * through a pipe. When the pipe reaches EOF (the tracer is exiting, however
 * it exits) it continues the processes still stopped by the tracer; then,
 * since a dying tracer's probes can still stop a process until the kernel
 * has removed them, it waits until the tracer is gone (it is reparented)
 * and continues every watched process found stopped, and exits. */
#ifndef SQLTRACE_WATCHDOG_H
#define SQLTRACE_WATCHDOG_H

#include <sys/types.h>

struct watchdog;

/* Forks the watchdog. Returns NULL and sets errno on failure. */
struct watchdog *watchdog__start(void);

/* The same, for --cgroup: after a tracer's death it also continues every
 * stopped process of these cgroup directories and of the cgroups below
 * them (the tracer stops a process that execs in a traced cgroup, or one
 * below it, until it is probed). The strings must live until it returns
 * (the child works on its own copy of them). */
struct watchdog *watchdog__start_cgroups(char *const *dirs, size_t n);

/* The tracer stopped pid / continued it / watches it (its probes may stop
 * it). These can't fail (a full pipe blocks briefly; a watchdog gone is
 * ignored). */
void watchdog__stopped(struct watchdog *w, pid_t pid);
void watchdog__continued(struct watchdog *w, pid_t pid);
void watchdog__watched(struct watchdog *w, pid_t pid);

/* An orderly end, once every probe is detached: the watchdog continues
 * what is still stopped and exits at once; reaped. NULL is fine. */
void watchdog__stop(struct watchdog *w);

#endif
