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
	uint64_t cancelled; /* accepted entries taken back by recorder__cancel */
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

/* ---- acknowledgement: learning what became of the entries one queued ----
 *
 * Every entry accepted into the queue gets the next sequence number, from 1
 * (the value of `recorded` once it is counted). The writer hands entries to
 * the sink in that order, so "every entry up to seq S has left the queue"
 * is one number. An entry leaves by being written, lost (only once close
 * has begun: from the first lost entry on, every later one is lost too) or
 * cancelled. A producer that keeps the sequence numbers of its entries can
 * therefore tell when they are durably written (an acknowledgement), and
 * take back those not written yet when it stops waiting. */

struct recorder_progress {
	uint64_t queued;    /* sequence number of the last entry accepted (0: none) */
	uint64_t done;      /* every entry with a sequence number <= done has left */
	uint64_t lost_from; /* the first entry lost (0: none); every later entry
	                     * that was not cancelled is lost too */
	size_t room;        /* free slots in the queue */
	bool failing;       /* the writer holds a batch whose last write attempt
	                     * failed: it waits for its retry */
};

/* Snapshot of the above, consistent (taken under the recorder's lock). */
void recorder__progress(struct recorder *r, struct recorder_progress *p);

/* Queues v[0..n) in order, all of them or none, without blocking.
 * Returns 0 when all were queued (takes ownership of every v[i] and sets
 * *last_seq to the sequence number of v[n-1]; the others precede it by
 * one each); -ENOSPC when fewer than n slots are free, -EPIPE once close
 * has begun, -EINVAL when n is 0: then nothing is taken, the caller keeps
 * the entries, and nothing counts as dropped. */
int recorder__record_batch(struct recorder *r, struct st_entry **v, size_t n,
			   uint64_t *last_seq);

/* Makes every entry queued so far due now: the writer takes it without
 * waiting for a full batch or the flush interval. Never blocks. */
void recorder__flush(struct recorder *r);

/* Takes back the entries with sequence numbers first..last that are not
 * being written: those still in the queue, and those of a batch whose
 * write failed and waits for its retry. They are freed and counted in
 * `cancelled`; the others in the range are written, lost, or in a write
 * attempt now (call again once it has ended). Returns the number taken
 * back. The range must hold only the caller's entries (a recorder with one
 * producer, or sequence numbers it got from recorder__record_batch). */
size_t recorder__cancel(struct recorder *r, uint64_t first, uint64_t last);

/* Waits until every entry up to seq has left the queue (see above), at
 * most timeout_ms. Returns 0 when they are all written (none lost or
 * cancelled, as far as the loss rule above can tell: entries cancelled
 * are the caller's to know), -EIO when some were lost, -ETIMEDOUT. */
int recorder__wait_done(struct recorder *r, uint64_t seq, unsigned timeout_ms);

/* Sets fn(arg) to be called, on the writer's thread and with the
 * recorder's lock held, each time the writer takes entries (room in the
 * queue), finishes a batch (written or lost) or sees a write attempt fail,
 * and when close begins. fn must only wake someone (sem_post, a flag): it
 * must not call into the recorder nor take a lock whose holder may. NULL
 * stops the calls; once recorder__set_notify returns, the previous fn is
 * not running and will not run again. */
void recorder__set_notify(struct recorder *r, void (*fn)(void *), void *arg);

/* Drains everything queued, writes it (retrying within the sink's budget),
 * stops the writer thread, closes the sink and frees r. Returns 0, or the
 * negative errno of the last failed write when entries were lost. */
int recorder__close(struct recorder *r);

/* recorder__close, and when final is not NULL fills it with the counters as
 * they stand after the drain (what was written and lost in the end). */
int recorder__close_stats(struct recorder *r, struct recorder_stats *final);

#endif
