/* top.h — `sqltrace-bpf top`: the statements of the traced processes,
 * grouped by fingerprint, in a full-screen view refreshed every -d (or as
 * plain snapshots with --batch).
 *
 * DESIGN: top is one more entry consumer of the tracer (store/recorder.h):
 * main.c hands it every entry like the store and the remote sender; its
 * sink, on the recorder's writer thread, counts each batch into fingerprint
 * groups under a lock (groups.c, histograms for p99: bounded memory). The
 * view is drawn from the tracer's own loop (top__tick, from on_tick, every
 * ~20 ms): it reads keys, and once per interval copies the figures under
 * the lock and draws them. Counting never waits for the screen and the
 * screen never walks the entries, so a rate of 100k statements/s costs the
 * view nothing more than a rate of 10. */
#ifndef SQLTRACE_TOP_H
#define SQLTRACE_TOP_H

#include <stdbool.h>
#include <stdio.h>

#include "recorder.h"

struct top;
struct tracer;

/* Takes top's own options out of argv (argv[0] is "top"): -d DUR, --batch,
 * --iterations N, --sort KEY, --help. What remains are tracing options,
 * returned as *targc and *targv (argv[0] "sqltrace-bpf", --no-store added when
 * no -o was given) for options__parse; *targv is malloc'd, free it after
 * top__free. Returns 0 and *out, 1 when --help was printed (exit 0), or a
 * negative errno with a one-line reason in err (exit 2). */
int top__args(int argc, char **argv, struct top **out, int *targc, char ***targv, char *err,
	      size_t errlen);

/* The recorder main.c hands entries to. */
struct recorder *top__recorder(struct top *t);

/* Starts the view once the tracer is attached: the full screen (stderr is
 * kept aside until top__finish, so that log lines do not tear it), or
 * nothing with --batch. Returns 0 or a negative errno with the reason in
 * err. */
int top__start(struct top *t, char *err, size_t errlen);

/* From the tracer's loop (its thread): keys, and a new screen or snapshot
 * when the interval has passed. Returns true when the user quit (q) or
 * --iterations snapshots were printed: the caller then stops tracing. */
bool top__tick(struct top *t, struct tracer *tr);

/* After the tracer stopped (drained): closes the recorder (every entry
 * counted), restores the terminal and replays what went to stderr, and
 * with --batch prints a last snapshot unless --iterations were all
 * printed. Safe to call twice; tr may be NULL. */
void top__finish(struct top *t, struct tracer *tr);

void top__free(struct top *t);

#endif
