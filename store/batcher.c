/* batcher.c — the batching engine behind every recorder (recorder.h): a
 * bounded queue of entries drained in batches by one writer thread per
 * recorder into a sink (local SQLite store, remote sender, log printer).
 *
 * DESIGN
 * ------
 *
 * Queue. A ring of queue_size entry pointers guarded by one mutex, with a
 * parallel ring of enqueue times (CLOCK_MONOTONIC, ns). recorder__record()
 * holds the mutex only to push a pointer and read the clock: it never waits
 * for the writer, never allocates, and never does I/O. When the ring is full
 * the entry is freed on the spot, counted in `dropped`, and -ENOSPC returned.
 *
 * Thread. One writer thread per recorder, created with every signal blocked
 * so SIGINT/SIGTERM keep going to the event loop. It sleeps on a condition
 * variable (CLOCK_MONOTONIC) and takes up to batch_size entries at once when
 * either
 *   - batch_size entries are queued (a full batch), or
 *   - flush_interval_ms has passed since the oldest queued entry was queued
 *     (a partial batch: at most one interval of latency), or
 *   - close has begun (drain).
 * It copies the pointers into a preallocated batch array, releases the mutex
 * and calls sink->write() without holding it, so recording goes on while the
 * sink works.
 *
 * Group commit. A sink that declares group_batches > 1 (the local store)
 * gets, when a backlog of more than one full batch is queued, up to
 * group_batches * batch_size entries in one write: one transaction instead
 * of several, which is what lets the store keep up under load (a commit
 * costs as much as ~50 rows here). Without a backlog nothing changes: a
 * full batch, or a partial one after the flush interval. Recorders wake the writer only on the transitions it waits for
 * (queue no longer empty, a full batch reached).
 *
 * Retries and the memory budget. When sink->write() returns a negative errno
 * the batch is kept and retried after a backoff of 100 ms doubling up to 5 s,
 * for as long as the recorder runs: an accepted entry is never given up on
 * while tracing. While a batch waits for its retry the writer takes nothing
 * more from the queue, so the budget for entries held in memory is fixed at
 * queue_size + the largest write (batch_size, or the group commit size): the queue fills up behind the failing batch and
 * further entries are dropped (and counted in `dropped`) instead of piling up.
 * Every failed attempt counts in `failures`. Logging the failure is the
 * sink's business (it knows what failed and on what).
 *
 * Shutdown. recorder__close() sets `closing` (recorder__record() then answers
 * -EPIPE), wakes the writer and joins it. The writer drains the queue in
 * batches without waiting for the flush interval. A failed batch keeps being
 * retried with backoff until CLOSE_RETRY_NS after close began; past that
 * deadline a failed write is not retried, and once one has failed past the
 * deadline the writer stops calling the sink: that batch and everything still
 * queued are freed and counted in `lost`. A sink that keeps succeeding is
 * drained completely, however long it takes. Then sink->close() runs on the
 * caller's thread, recorder__close_stats() copies the final counters, and
 * everything is freed.
 *
 * Counters are updated with atomic builtins and read lock-free by
 * recorder__stats(); recorder__pending() takes the mutex. `recorded` is
 * counted under the mutex, before the writer can take the entry.
 *
 * Acknowledgement. Each accepted entry gets a sequence number (`seq`, the
 * value of `recorded` once counted), kept beside it in ring_seq and, once
 * taken, in batch_seq. Entries leave in that order, so what has left is
 * one number: the sequence number of the oldest entry still held (the
 * writer's batch first, then the queue's head) minus one. The batch the
 * writer holds is shared under the mutex, except during a write attempt
 * (`writing`): between attempts recorder__cancel() may take entries out of
 * it, and the next attempt writes what is left. Loss only happens at close
 * and, once a batch is lost, so is everything after it, so one number
 * (lost_from) says which entries were lost. A waiter is told of progress
 * through the `done` condition and the optional notify callback.
 */
#include "recorder.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1000000ULL
#define RETRY_FIRST_NS (100 * NS_PER_MS)
#define RETRY_MAX_NS (5000 * NS_PER_MS)
#define CLOSE_RETRY_NS (5000 * NS_PER_MS)

struct recorder {
	const struct sink_ops *sink;
	void *ctx;
	unsigned cap;            /* queue capacity */
	unsigned batch_max;      /* entries per batch, <= cap */
	unsigned write_max;      /* entries per write: batch_max * group, <= cap */
	uint64_t interval_ns;    /* partial batch flushed after this */

	pthread_mutex_t mu;
	pthread_cond_t cond;     /* writer waits here; CLOCK_MONOTONIC */
	pthread_cond_t room;     /* recorder__wait_room waits here; CLOCK_MONOTONIC */
	pthread_cond_t done;     /* recorder__wait_done waits here; CLOCK_MONOTONIC */
	pthread_t thread;

	/* guarded by mu */
	struct st_entry **ring;  /* cap slots */
	uint64_t *ring_ns;       /* enqueue time of each slot */
	uint64_t *ring_seq;      /* sequence number of each slot */
	unsigned head;           /* oldest entry */
	unsigned count;          /* entries queued */
	unsigned inflight;       /* entries taken by the writer, not yet done */
	unsigned room_waiters;   /* threads in recorder__wait_room */
	unsigned done_waiters;   /* threads in recorder__wait_done */
	bool closing;
	uint64_t close_deadline_ns;
	uint64_t seq;            /* sequence number of the last entry accepted */
	uint64_t flush_seq;      /* entries up to this one are due now */
	uint64_t lost_from;      /* first entry lost, 0 if none */
	bool failing;            /* the last write attempt failed */
	void (*notify)(void *);
	void *notify_arg;

	/* the writer's batch: the writer's alone while `writing`, otherwise
	 * guarded by mu (recorder__cancel edits it between attempts) */
	struct st_entry **batch; /* write_max slots */
	uint64_t *batch_seq;     /* their sequence numbers */
	size_t batch_n;          /* entries in it */
	bool writing;            /* a sink->write() call is running */

	/* writer thread only */
	int last_err;            /* errno of the last write failure losing entries */

	/* atomics */
	uint64_t recorded, written, dropped, lost, failures, cancelled;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Counters only grow. Adds are release and loads acquire, so that a
 * snapshot loading the "after" counters (written, lost) before `recorded`
 * never shows more entries leaving than entered. */
static void stat_add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELEASE);
}

static uint64_t stat_get(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Waits on r->cond until the absolute CLOCK_MONOTONIC time t_ns, or a signal.
 * Called and returns with r->mu held. Spurious wake-ups are the caller's to
 * handle (every caller re-checks its condition in a loop). */
static void wait_until(struct recorder *r, uint64_t t_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(t_ns / 1000000000ULL),
		.tv_nsec = (long)(t_ns % 1000000000ULL),
	};

	pthread_cond_timedwait(&r->cond, &r->mu, &ts);
}

/* Called with r->mu held: tells the notify callback and the done waiters
 * that something changed. */
static void progress(struct recorder *r)
{
	if (r->done_waiters)
		pthread_cond_broadcast(&r->done);
	if (r->notify)
		r->notify(r->notify_arg);
}

/* Frees the writer's batch. Called with r->mu held. */
static void free_batch(struct recorder *r)
{
	for (size_t i = 0; i < r->batch_n; i++) {
		entry__free(r->batch[i]);
		r->batch[i] = NULL;
	}
	r->batch_n = 0;
	r->inflight = 0;
	r->failing = false;
}

/* Hands the writer's batch to the sink, retrying with backoff as described
 * in the DESIGN comment (what recorder__cancel takes out between attempts
 * is not written). Returns true when the writer may go on calling the
 * sink, false when it gave up (close deadline passed): the batch is then
 * freed and counted lost. Called and returns with r->mu held (released
 * during each attempt and backoff); frees the batch in every case. */
static bool write_batch(struct recorder *r)
{
	uint64_t backoff = RETRY_FIRST_NS;

	for (;;) {
		size_t n = r->batch_n;

		if (n == 0) {   /* everything was cancelled */
			free_batch(r);
			progress(r);
			return true;
		}
		r->writing = true;
		pthread_mutex_unlock(&r->mu);
		int err = r->sink->write(r->ctx, r->batch, n);
		pthread_mutex_lock(&r->mu);
		r->writing = false;

		if (err >= 0) {
			stat_add(&r->written, n);
			free_batch(r);
			progress(r);
			return true;
		}
		stat_add(&r->failures, 1);
		r->failing = true;

		uint64_t now = now_ns();
		if (r->closing && now >= r->close_deadline_ns) {
			r->last_err = err;
			if (!r->lost_from)
				r->lost_from = r->batch_seq[0];
			stat_add(&r->lost, n);
			free_batch(r);
			progress(r);
			return false;
		}
		progress(r);
		uint64_t until = now + backoff;
		/* Sleep out the backoff, but cut it short when close begins (to
		 * honour its deadline) and never sleep past that deadline. */
		bool was_closing = r->closing;
		for (;;) {
			if (r->closing && until > r->close_deadline_ns)
				until = r->close_deadline_ns;
			if (r->closing != was_closing || r->batch_n == 0 || now_ns() >= until)
				break;
			wait_until(r, until);
		}
		backoff = backoff * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : backoff * 2;
	}
}

/* Moves up to batch_max queued entries into r->batch, or with a backlog
 * of more than one batch and a grouping sink, as many whole batches as are
 * queued up to write_max. Called with r->mu held; returns the number taken. */
static size_t take_batch(struct recorder *r)
{
	size_t n = r->count < r->batch_max ? r->count : r->batch_max;

	if (r->count > r->batch_max && r->write_max > r->batch_max) {
		n = r->count < r->write_max ? r->count : r->write_max;
		n -= n % r->batch_max;
	}

	for (size_t i = 0; i < n; i++) {
		r->batch[i] = r->ring[r->head];
		r->batch_seq[i] = r->ring_seq[r->head];
		r->ring[r->head] = NULL;
		r->head = (r->head + 1) % r->cap;
	}
	r->count -= (unsigned)n;
	r->inflight = (unsigned)n;
	r->batch_n = n;
	if (n && r->room_waiters)
		pthread_cond_broadcast(&r->room);
	if (n)
		progress(r);
	return n;
}

/* Whether the oldest queued entry is due: its flush interval has passed or
 * recorder__flush asked for it. Called with r->mu held, r->count > 0. */
static bool head_due(struct recorder *r, uint64_t *due)
{
	*due = r->ring_ns[r->head] + r->interval_ns;
	return r->ring_seq[r->head] <= r->flush_seq || now_ns() >= *due;
}

static void *writer_main(void *arg)
{
	struct recorder *r = arg;
	bool sink_ok = true;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		/* Wait for a full batch, an expired partial one, or close. */
		while (!r->closing && r->count < r->batch_max) {
			if (r->count == 0) {
				pthread_cond_wait(&r->cond, &r->mu);
				continue;
			}
			uint64_t due;
			if (head_due(r, &due))
				break;
			wait_until(r, due);
		}
		if (r->count == 0 && r->closing)
			break;

		size_t n = take_batch(r);
		if (sink_ok) {
			sink_ok = write_batch(r);
		} else {
			if (!r->lost_from)
				r->lost_from = r->batch_seq[0];
			stat_add(&r->lost, n);
			free_batch(r);
			progress(r);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void recorder_free(struct recorder *r)
{
	free(r->ring);
	free(r->ring_ns);
	free(r->ring_seq);
	free(r->batch);
	free(r->batch_seq);
	free(r);
}

/* Starts the writer with every signal blocked, so that process signals are
 * delivered to the caller's threads. Returns 0 or a positive errno. */
static int start_writer(struct recorder *r)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&r->thread, NULL, writer_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

struct recorder *recorder__new(const struct batch_opts *opts,
			       const struct sink_ops *sink, void *ctx)
{
	struct batch_opts o = BATCH_OPTS_DEFAULT;
	pthread_condattr_t ca;
	struct recorder *r;
	int err = ENOMEM;

	if (!sink || !sink->write || !sink->close) {
		errno = EINVAL;
		return NULL;
	}
	/* A zero field takes its default; a batch never exceeds the queue. */
	if (opts && opts->queue_size)
		o.queue_size = opts->queue_size;
	if (opts && opts->batch_size)
		o.batch_size = opts->batch_size;
	if (opts && opts->flush_interval_ms)
		o.flush_interval_ms = opts->flush_interval_ms;
	if (o.batch_size > o.queue_size)
		o.batch_size = o.queue_size;

	r = calloc(1, sizeof(*r));
	if (!r)
		goto err_sink;
	r->sink = sink;
	r->ctx = ctx;
	r->cap = o.queue_size;
	r->batch_max = o.batch_size;
	r->write_max = r->batch_max;
	if (sink->group_batches > 1) {
		uint64_t w = (uint64_t)r->batch_max * sink->group_batches;

		r->write_max = w > r->cap ? r->cap : (unsigned)w;
	}
	r->interval_ns = (uint64_t)o.flush_interval_ms * NS_PER_MS;
	r->ring = calloc(r->cap, sizeof(*r->ring));
	r->ring_ns = calloc(r->cap, sizeof(*r->ring_ns));
	r->ring_seq = calloc(r->cap, sizeof(*r->ring_seq));
	r->batch = calloc(r->write_max, sizeof(*r->batch));
	r->batch_seq = calloc(r->write_max, sizeof(*r->batch_seq));
	if (!r->ring || !r->ring_ns || !r->ring_seq || !r->batch || !r->batch_seq)
		goto err_free;

	if ((err = pthread_mutex_init(&r->mu, NULL)))
		goto err_free;
	if ((err = pthread_condattr_init(&ca)))
		goto err_mutex;
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(&r->cond, &ca);
	if (!err && (err = pthread_cond_init(&r->room, &ca)))
		pthread_cond_destroy(&r->cond);
	if (!err && (err = pthread_cond_init(&r->done, &ca))) {
		pthread_cond_destroy(&r->room);
		pthread_cond_destroy(&r->cond);
	}
	pthread_condattr_destroy(&ca);
	if (err)
		goto err_mutex;
	if ((err = start_writer(r)))
		goto err_cond;
	return r;

err_cond:
	pthread_cond_destroy(&r->done);
	pthread_cond_destroy(&r->room);
	pthread_cond_destroy(&r->cond);
err_mutex:
	pthread_mutex_destroy(&r->mu);
err_free:
	recorder_free(r);
err_sink:
	sink->close(ctx);
	errno = err;
	return NULL;
}

int recorder__record(struct recorder *r, struct st_entry *e)
{
	if (!e)
		return -EINVAL;

	uint64_t t = now_ns();

	pthread_mutex_lock(&r->mu);
	if (r->closing) {
		pthread_mutex_unlock(&r->mu);
		entry__free(e);
		return -EPIPE;
	}
	if (r->count == r->cap) {
		pthread_mutex_unlock(&r->mu);
		entry__free(e);
		stat_add(&r->dropped, 1);
		return -ENOSPC;
	}
	unsigned slot = (r->head + r->count) % r->cap;
	r->ring[slot] = e;
	r->ring_ns[slot] = t;
	r->ring_seq[slot] = ++r->seq;
	r->count++;
	stat_add(&r->recorded, 1);  /* before the writer can see the entry */
	/* The writer sleeps without a deadline on an empty queue and until the
	 * oldest entry is due otherwise: only these two events change that. */
	if (r->count == 1 || r->count == r->batch_max)
		pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

/* Each counter is exact; across counters the snapshot may be a moment
 * apart, but written + lost <= recorded always holds in it. */
void recorder__stats(struct recorder *r, struct recorder_stats *out)
{
	out->failures = stat_get(&r->failures);
	out->written = stat_get(&r->written);
	out->lost = stat_get(&r->lost);
	out->cancelled = stat_get(&r->cancelled);
	out->dropped = stat_get(&r->dropped);
	out->recorded = stat_get(&r->recorded);
}

size_t recorder__pending(struct recorder *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = (size_t)r->count + r->inflight;
	pthread_mutex_unlock(&r->mu);
	return n;
}

bool recorder__wait_room(struct recorder *r, size_t n, unsigned timeout_ms)
{
	uint64_t until = now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	struct timespec ts = {
		.tv_sec = (time_t)(until / 1000000000ULL),
		.tv_nsec = (long)(until % 1000000000ULL),
	};
	bool room;

	pthread_mutex_lock(&r->mu);
	r->room_waiters++;
	while (!r->closing && r->count + n > r->cap && timeout_ms) {
		if (pthread_cond_timedwait(&r->room, &r->mu, &ts) == ETIMEDOUT)
			break;
	}
	r->room_waiters--;
	room = !r->closing && r->count + n <= r->cap;
	pthread_mutex_unlock(&r->mu);
	return room;
}

int recorder__record_batch(struct recorder *r, struct st_entry **v, size_t n,
			   uint64_t *last_seq)
{
	if (n == 0)
		return -EINVAL;

	uint64_t t = now_ns();

	pthread_mutex_lock(&r->mu);
	if (r->closing) {
		pthread_mutex_unlock(&r->mu);
		return -EPIPE;
	}
	if (n > (size_t)(r->cap - r->count)) {
		pthread_mutex_unlock(&r->mu);
		return -ENOSPC;
	}
	unsigned before = r->count;
	for (size_t i = 0; i < n; i++) {
		unsigned slot = (r->head + r->count) % r->cap;

		r->ring[slot] = v[i];
		r->ring_ns[slot] = t;
		r->ring_seq[slot] = ++r->seq;
		r->count++;
	}
	stat_add(&r->recorded, n);
	*last_seq = r->seq;
	if (before == 0 || (before < r->batch_max && r->count >= r->batch_max))
		pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

void recorder__flush(struct recorder *r)
{
	pthread_mutex_lock(&r->mu);
	if (r->flush_seq != r->seq) {
		r->flush_seq = r->seq;
		if (r->count)
			pthread_cond_signal(&r->cond);
	}
	pthread_mutex_unlock(&r->mu);
}

/* Every entry up to the returned sequence number has left. Called with
 * r->mu held. */
static uint64_t done_seq(struct recorder *r)
{
	if (r->batch_n)
		return r->batch_seq[0] - 1;
	if (r->count)
		return r->ring_seq[r->head] - 1;
	return r->seq;
}

void recorder__progress(struct recorder *r, struct recorder_progress *p)
{
	pthread_mutex_lock(&r->mu);
	p->queued = r->seq;
	p->done = done_seq(r);
	p->lost_from = r->lost_from;
	p->room = r->cap - r->count;
	p->failing = r->failing;
	pthread_mutex_unlock(&r->mu);
}

size_t recorder__cancel(struct recorder *r, uint64_t first, uint64_t last)
{
	size_t taken = 0, k = 0;

	pthread_mutex_lock(&r->mu);
	/* the writer's batch, between two attempts */
	if (!r->writing && r->batch_n) {
		for (size_t i = 0; i < r->batch_n; i++) {
			if (r->batch_seq[i] >= first && r->batch_seq[i] <= last) {
				entry__free(r->batch[i]);
				taken++;
				continue;
			}
			r->batch[k] = r->batch[i];
			r->batch_seq[k++] = r->batch_seq[i];
		}
		for (size_t i = k; i < r->batch_n; i++)
			r->batch[i] = NULL;
		r->batch_n = k;
		r->inflight = (unsigned)k;
	}
	/* the queue: keep the others in order, closing the gap */
	unsigned kept = 0, before = r->count;
	for (unsigned i = 0; i < before; i++) {
		unsigned from = (r->head + i) % r->cap;

		if (r->ring_seq[from] >= first && r->ring_seq[from] <= last) {
			entry__free(r->ring[from]);
			r->ring[from] = NULL;
			taken++;
			continue;
		}
		unsigned to = (r->head + kept++) % r->cap;
		if (to != from) {
			r->ring[to] = r->ring[from];
			r->ring_ns[to] = r->ring_ns[from];
			r->ring_seq[to] = r->ring_seq[from];
			r->ring[from] = NULL;
		}
	}
	r->count = kept;
	if (taken) {
		stat_add(&r->cancelled, taken);
		if (kept < before && r->room_waiters)
			pthread_cond_broadcast(&r->room);
		/* the batch may now be empty, or the head due: let the writer look */
		pthread_cond_broadcast(&r->cond);
		if (r->done_waiters)
			pthread_cond_broadcast(&r->done);
	}
	pthread_mutex_unlock(&r->mu);
	return taken;
}

int recorder__wait_done(struct recorder *r, uint64_t seq, unsigned timeout_ms)
{
	uint64_t until = now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	struct timespec ts = {
		.tv_sec = (time_t)(until / 1000000000ULL),
		.tv_nsec = (long)(until % 1000000000ULL),
	};
	int ret = -ETIMEDOUT;

	pthread_mutex_lock(&r->mu);
	r->done_waiters++;
	for (;;) {
		if (done_seq(r) >= seq) {
			ret = r->lost_from && r->lost_from <= seq ? -EIO : 0;
			break;
		}
		if (pthread_cond_timedwait(&r->done, &r->mu, &ts) == ETIMEDOUT) {
			if (done_seq(r) >= seq)
				continue;
			break;
		}
	}
	r->done_waiters--;
	pthread_mutex_unlock(&r->mu);
	return ret;
}

void recorder__set_notify(struct recorder *r, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&r->mu);
	r->notify = fn;
	r->notify_arg = fn ? arg : NULL;
	pthread_mutex_unlock(&r->mu);
}

int recorder__close(struct recorder *r)
{
	return recorder__close_stats(r, NULL);
}

int recorder__close_stats(struct recorder *r, struct recorder_stats *final)
{
	int ret;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->mu);
	r->closing = true;
	r->close_deadline_ns = now_ns() + CLOSE_RETRY_NS;
	pthread_cond_broadcast(&r->cond);
	pthread_cond_broadcast(&r->room);
	progress(r);
	pthread_mutex_unlock(&r->mu);

	pthread_join(r->thread, NULL);
	r->sink->close(r->ctx);
	if (final)
		recorder__stats(r, final);

	ret = stat_get(&r->lost) ? r->last_err : 0;
	pthread_cond_destroy(&r->done);
	pthread_cond_destroy(&r->room);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	recorder_free(r);
	return ret;
}
