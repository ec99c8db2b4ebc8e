/* recorder.h — the one interface every entry consumer implements: record an
 * entry without blocking, read counters, close (drain and stop).
 *
 * Implementations share one batching engine (a bounded queue drained by a
 * writer thread in batches; see batcher.c): the local SQLite store
 * (local_store.c), the remote HTTP sender (remote_store.c) and the log
 * printer. Defaults match the Go tracer: queue 1024, batches of 64, a batch
 * written when full or every second, whichever comes first.
 */
#ifndef SQLTRACE_RECORDER_H
#define SQLTRACE_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"

struct recorder;

struct batch_opts {
	unsigned queue_size;        /* entries; default 1024 */
	unsigned batch_size;        /* entries per write; default 64 */
	unsigned flush_interval_ms; /* partial batch written after this; default 1000 */
};

#define BATCH_OPTS_DEFAULT { .queue_size = 1024, .batch_size = 64, .flush_interval_ms = 1000 }

struct recorder_stats {
	uint64_t recorded;  /* entries accepted into the queue */
	uint64_t written;   /* entries the sink has durably handed over */
	uint64_t dropped;   /* entries refused because the queue was full */
	uint64_t lost;      /* accepted entries finally given up on (write failures
	                     * beyond the retry budget) */
	uint64_t failures;  /* failed write attempts (each retried or counted lost) */
};

/* A sink: what the batching engine hands batches to, on its writer thread.
 * write() returns 0 when the batch is done with (written, or deliberately
 * discarded and counted by the sink itself), or a negative errno when it
 * failed and should be retried later. Entries stay owned by the engine. */
struct sink_ops {
	const char *name;
	int (*write)(void *ctx, struct st_entry *const *batch, size_t n);
	void (*close)(void *ctx);  /* after the last write; frees ctx */
	/* Group commit: when more than one full batch is already queued, the
	 * writer may hand up to this many batches to one write() (a sink whose
	 * per-write cost is high and independent of the size, such as a
	 * database transaction). 0 or 1: always one batch per write (a sink
	 * whose writes are visible batches, such as HTTP POST bodies). */
	unsigned group_batches;
};

/* Creates a recorder around a sink (takes ownership of ctx: sink->close is
 * called on it at recorder__close, or here on failure). On error, NULL is
 * returned and errno set. */
struct recorder *recorder__new(const struct batch_opts *opts,
			       const struct sink_ops *sink, void *ctx);

/* Queues e without ever blocking; takes ownership of e in every case.
 * Returns 0 when queued; -ENOSPC when the queue was full (e is freed and
 * counted in dropped); -EPIPE after close began. */
int recorder__record(struct recorder *r, struct st_entry *e);

/* Snapshot of the counters; safe from any thread. */
void recorder__stats(struct recorder *r, struct recorder_stats *out);

/* Number of entries queued and not yet written; safe from any thread. */
size_t recorder__pending(struct recorder *r);

/* Waits until the queue has n free slots (n recorder__record calls would
 * not drop, if nobody else records meanwhile), at most timeout_ms (0: only
 * looks); n larger than the queue never fits. The writer wakes waiters each time it
 * takes entries, so a producer that waits here resumes as soon as there is
 * room, without polling. Returns true when there is room, false on timeout
 * or once close has begun. Safe from any thread but the writer's. */
bool recorder__wait_room(struct recorder *r, size_t n, unsigned timeout_ms);

/* Drains everything queued, writes it (retrying within the sink's budget),
 * stops the writer thread, closes the sink and frees r. Returns 0, or the
 * negative errno of the last failed write when entries were lost. */
int recorder__close(struct recorder *r);

/* recorder__close, and when final is not NULL fills it with the counters as
 * they stand after the drain (what was written and lost in the end). */
int recorder__close_stats(struct recorder *r, struct recorder_stats *final);

#endif
