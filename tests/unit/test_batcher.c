/* test_batcher.c — unit tests of the batching engine (store/batcher.c)
 * against a fake in-memory sink: delivery, batch boundaries, flush timing,
 * drops on a full queue, drain on close, retries and what is lost.
 *
 * Timing checks only use generous upper bounds (seconds) or lower bounds
 * that load can only make easier to meet, never a tight window.
 */
#include "harness.h"
#include "recorder.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROWS 4096
#define MAX_WRITES 1024

/* The fake sink: remembers every trace id and batch size it accepted. Its
 * write can be made to fail (a number of times, or always) and to block
 * until released. Owned by the test, so close only marks it closed. */
struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	char *ids[MAX_ROWS];
	size_t nrows;
	size_t batch_sizes[MAX_WRITES];
	size_t nwrites;       /* successful writes */
	size_t attempts;      /* every call to write */
	int fail_next;        /* fail this many more calls */
	bool fail_always;
	bool block;           /* write waits while this is set */
	bool in_write;        /* a write is blocked */
	bool closed;
};

static int fake_write(void *ctx, struct st_entry *const *batch, size_t n)
{
	struct fake *f = ctx;
	int ret = 0;

	pthread_mutex_lock(&f->mu);
	f->attempts++;
	f->in_write = true;
	pthread_cond_broadcast(&f->cond);
	while (f->block)
		pthread_cond_wait(&f->cond, &f->mu);
	f->in_write = false;
	if (f->fail_always || f->fail_next > 0) {
		if (f->fail_next > 0)
			f->fail_next--;
		ret = -EIO;
	} else {
		for (size_t i = 0; i < n && f->nrows < MAX_ROWS; i++)
			f->ids[f->nrows++] = strdup(batch[i]->trace_id);
		if (f->nwrites < MAX_WRITES)
			f->batch_sizes[f->nwrites] = n;
		f->nwrites++;
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
	return ret;
}

static void fake_close(void *ctx)
{
	struct fake *f = ctx;

	pthread_mutex_lock(&f->mu);
	f->closed = true;
	pthread_mutex_unlock(&f->mu);
}

static const struct sink_ops fake_ops = {
	.name = "fake", .write = fake_write, .close = fake_close,
};

/* The same sink, declaring group commit of up to 4 batches per write. */
static const struct sink_ops fake_group_ops = {
	.name = "fake-group", .write = fake_write, .close = fake_close, .group_batches = 4,
};

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cond, NULL);
}

static void fake_fini(struct fake *f)
{
	for (size_t i = 0; i < f->nrows; i++)
		free(f->ids[i]);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cond);
}

static void fake_set_block(struct fake *f, bool block)
{
	pthread_mutex_lock(&f->mu);
	f->block = block;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
}

static void fake_set_fail(struct fake *f, int next, bool always)
{
	pthread_mutex_lock(&f->mu);
	f->fail_next = next;
	f->fail_always = always;
	pthread_mutex_unlock(&f->mu);
}

static size_t fake_rows(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	size_t n = f->nrows;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* Waits until the sink is blocked inside write, up to 5 s. */
static bool fake_wait_in_write(struct fake *f)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&f->mu);
	while (!f->in_write &&
	       pthread_cond_timedwait(&f->cond, &f->mu, &ts) != ETIMEDOUT)
		;
	ok = f->in_write;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Polls until the sink holds want rows or limit_s seconds passed. */
static bool wait_rows(struct fake *f, size_t want, double limit_s)
{
	double end = now_s() + limit_s;

	while (fake_rows(f) < want && now_s() < end)
		usleep(2000);
	return fake_rows(f) >= want;
}

static struct st_entry *mk(int i)
{
	struct st_entry *e = entry__new();
	char id[32];

	if (!e)
		abort();
	snprintf(id, sizeof(id), "t%d", i);
	if (entry__set_str(&e->trace_id, id) || entry__set_str(&e->op, "Exec") ||
	    entry__set_str(&e->query, "SELECT 1"))
		abort();
	e->duration_us = i;
	e->timestamp_us = 1700000000000000LL + i;
	return e;
}

static bool test_ten_entries_written_with_trace_id(void)
{
	struct recorder_stats final;
	struct fake f;
	struct recorder_stats st;

	fake_init(&f);
	struct recorder *r = recorder__new(NULL, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	recorder__stats(r, &st);
	ASSERT_EQ_INT(st.recorded, 10);
	ASSERT_EQ_INT(recorder__close_stats(r, &final), 0);
	ASSERT_TRUE(f.closed);
	ASSERT_EQ_INT(final.written, 10);
	ASSERT_EQ_INT(f.nrows, 10);
	for (int i = 0; i < 10; i++) {
		char id[32];
		snprintf(id, sizeof(id), "t%d", i);
		ASSERT_EQ_STR(f.ids[i], id);
	}
	fake_fini(&f);
	return true;
}

static bool test_hundred_entries_all_land_in_bounded_batches(void)
{
	struct fake f;
	struct recorder_stats st;

	fake_init(&f);
	struct recorder *r = recorder__new(NULL, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	recorder__stats(r, &st);
	ASSERT_EQ_INT(st.recorded, 100);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(f.nrows, 100);
	ASSERT_EQ_STR(f.ids[99], "t99");
	for (size_t i = 0; i < f.nwrites; i++)
		ASSERT_TRUE(f.batch_sizes[i] >= 1 && f.batch_sizes[i] <= 64);
	fake_fini(&f);
	return true;
}

/* 64 queued entries are one write, long before the flush interval. */
/* recorder__pending() also counts the batch the writer is finishing (its
 * count drops just after the sink returns): wait for it, bounded. */
static size_t pending_settled(struct recorder *r, size_t want)
{
	size_t n = recorder__pending(r);

	for (int i = 0; i < 300 && n != want; i++) {
		usleep(10 * 1000);
		n = recorder__pending(r);
	}
	return n;
}

static bool test_full_batch_is_one_write(void)
{
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64,
				.flush_interval_ms = 60000 };
	struct fake f;

	fake_init(&f);
	fake_set_block(&f, true);  /* hold the writer until all 64 are queued */
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 64; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	ASSERT_TRUE(fake_wait_in_write(&f));
	fake_set_block(&f, false);
	ASSERT_TRUE(wait_rows(&f, 64, 3.0));
	ASSERT_EQ_INT(f.nwrites, 1);
	ASSERT_EQ_INT(f.batch_sizes[0], 64);
	ASSERT_EQ_INT(pending_settled(r, 0), 0);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(f.nwrites, 1);
	fake_fini(&f);
	return true;
}

/* A partial batch waits for the interval (not written at once), then is
 * written well within a generous bound, before close. */
static bool test_partial_batch_flushed_after_interval(void)
{
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64,
				.flush_interval_ms = 500 };
	struct fake f;

	fake_init(&f);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	usleep(100 * 1000);
	ASSERT_EQ_INT(fake_rows(&f), 0);
	ASSERT_EQ_INT(recorder__pending(r), 5);
	ASSERT_TRUE(wait_rows(&f, 5, 3.0));
	ASSERT_EQ_INT(f.nwrites, 1);
	ASSERT_EQ_INT(recorder__close(r), 0);
	fake_fini(&f);
	return true;
}

/* With the writer stuck in the sink and the queue full, recording returns
 * at once with -ENOSPC and counts the drop; nothing accepted is lost. */
static bool test_full_queue_drops_without_blocking(void)
{
	struct batch_opts o = { .queue_size = 8, .batch_size = 4,
				.flush_interval_ms = 60000 };
	struct recorder_stats st;
	struct fake f;

	fake_init(&f);
	fake_set_block(&f, true);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	ASSERT_TRUE(fake_wait_in_write(&f));
	for (int i = 4; i < 12; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	double t0 = now_s();
	ASSERT_EQ_INT(recorder__record(r, mk(12)), -ENOSPC);
	ASSERT_EQ_INT(recorder__record(r, mk(13)), -ENOSPC);
	ASSERT_TRUE(now_s() - t0 < 1.0);
	recorder__stats(r, &st);
	ASSERT_EQ_INT(st.recorded, 12);
	ASSERT_EQ_INT(st.dropped, 2);
	ASSERT_EQ_INT(recorder__pending(r), 12);
	fake_set_block(&f, false);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(f.nrows, 12);
	ASSERT_EQ_STR(f.ids[11], "t11");
	fake_fini(&f);
	return true;
}

/* A grouping sink gets a backlog in writes of whole batches (up to
 * group_batches of them), in order; without a backlog, one batch. */
static bool test_group_commit_takes_backlog_in_whole_batches(void)
{
	struct batch_opts o = { .queue_size = 64, .batch_size = 4, .flush_interval_ms = 60000 };
	struct fake f;
	size_t big = 0;

	fake_init(&f);
	fake_set_block(&f, true);
	struct recorder *r = recorder__new(&o, &fake_group_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	ASSERT_TRUE(fake_wait_in_write(&f));
	for (int i = 4; i < 34; i++)  /* a backlog of 30 behind the blocked write */
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	fake_set_block(&f, false);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(f.nrows, 34);
	for (int i = 0; i < 34; i++) {
		char want[16];

		snprintf(want, sizeof(want), "t%d", i);
		ASSERT_EQ_STR(f.ids[i], want);
	}
	ASSERT_EQ_INT(f.batch_sizes[0], 4);
	for (size_t i = 0; i < f.nwrites; i++) {
		ASSERT_TRUE(f.batch_sizes[i] <= 16);
		if (f.batch_sizes[i] > 4) {
			ASSERT_EQ_INT(f.batch_sizes[i] % 4, 0);
			big++;
		}
	}
	ASSERT_TRUE(big > 0);
	fake_fini(&f);
	return true;
}

struct unblock_arg {
	struct fake *f;
	unsigned delay_ms;
};

static void *unblock_later(void *arg)
{
	struct unblock_arg *a = arg;

	usleep(a->delay_ms * 1000);
	fake_set_block(a->f, false);
	return NULL;
}

/* recorder__wait_room: false while the queue is full (after waiting at
 * least its timeout), true as soon as the writer takes entries, false once
 * close began. */
static bool test_wait_room(void)
{
	struct batch_opts o = { .queue_size = 8, .batch_size = 4, .flush_interval_ms = 60000 };
	struct unblock_arg ua;
	pthread_t th;
	struct fake f;

	fake_init(&f);
	fake_set_block(&f, true);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	ASSERT_TRUE(recorder__wait_room(r, 1, 0));
	ASSERT_TRUE(recorder__wait_room(r, 8, 0));
	ASSERT_TRUE(!recorder__wait_room(r, 9, 0));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	ASSERT_TRUE(fake_wait_in_write(&f));
	for (int i = 4; i < 12; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	ASSERT_TRUE(!recorder__wait_room(r, 1, 0));
	double t0 = now_s();
	ASSERT_TRUE(!recorder__wait_room(r, 1, 50));
	ASSERT_TRUE(now_s() - t0 >= 0.045);
	ua.f = &f;
	ua.delay_ms = 50;
	ASSERT_EQ_INT(pthread_create(&th, NULL, unblock_later, &ua), 0);
	t0 = now_s();
	ASSERT_TRUE(recorder__wait_room(r, 1, 10000));
	ASSERT_TRUE(now_s() - t0 < 5.0);
	ASSERT_EQ_INT(recorder__record(r, mk(12)), 0);
	pthread_join(th, NULL);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(f.nrows, 13);
	fake_fini(&f);
	return true;
}

/* Close writes what is queued without waiting for the flush interval. */
static bool test_close_drains(void)
{
	struct recorder_stats final;
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64,
				.flush_interval_ms = 60000 };
	struct fake f;

	fake_init(&f);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 300; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	double t0 = now_s();
	ASSERT_EQ_INT(recorder__close_stats(r, &final), 0);
	ASSERT_TRUE(now_s() - t0 < 3.0);
	ASSERT_EQ_INT(final.written, 300);
	ASSERT_EQ_INT(f.nrows, 300);
	ASSERT_EQ_STR(f.ids[299], "t299");
	for (size_t i = 0; i < f.nwrites; i++)
		ASSERT_TRUE(f.batch_sizes[i] <= 64);
	fake_fini(&f);
	return true;
}

static void *close_thread(void *arg)
{
	return (void *)(intptr_t)recorder__close(arg);
}

/* Once close has begun, recording answers -EPIPE (and frees the entry). */
static bool test_record_after_close_began_is_refused(void)
{
	struct batch_opts o = { .queue_size = 16, .batch_size = 1,
				.flush_interval_ms = 60000 };
	struct fake f;
	pthread_t th;
	void *ret;
	int rc, i = 1;

	fake_init(&f);
	fake_set_block(&f, true);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	ASSERT_EQ_INT(recorder__record(r, mk(0)), 0);
	ASSERT_TRUE(fake_wait_in_write(&f));
	ASSERT_EQ_INT(pthread_create(&th, NULL, close_thread, r), 0);
	/* The writer is stuck in the sink, so close cannot finish and r stays
	 * alive. Entries recorded before close began are queued (or dropped
	 * once the queue is full); then every record is refused. */
	while ((rc = recorder__record(r, mk(i++))) != -EPIPE) {
		ASSERT_TRUE(rc == 0 || rc == -ENOSPC);
		usleep(1000);
	}
	ASSERT_EQ_INT(recorder__record(r, mk(i++)), -EPIPE);
	size_t accepted = recorder__pending(r);
	fake_set_block(&f, false);
	pthread_join(th, &ret);
	ASSERT_EQ_INT((intptr_t)ret, 0);
	ASSERT_EQ_INT(f.nrows, accepted);
	fake_fini(&f);
	return true;
}

/* A sink that fails a few times then recovers loses nothing, whether the
 * failures happen while running or at close. */
static bool test_retry_until_sink_recovers(void)
{
	struct recorder_stats final;
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64,
				.flush_interval_ms = 60000 };
	struct fake f;

	fake_init(&f);
	fake_set_fail(&f, 3, false);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 64; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	ASSERT_TRUE(wait_rows(&f, 64, 5.0));  /* backoff 0.1+0.2+0.4 s */
	fake_set_fail(&f, 2, false);
	for (int i = 64; i < 74; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	ASSERT_EQ_INT(recorder__close_stats(r, &final), 0);
	ASSERT_EQ_INT(final.written, 74);
	ASSERT_EQ_INT(final.lost, 0);
	ASSERT_EQ_INT(final.failures, 5);
	ASSERT_EQ_INT(f.nrows, 74);
	ASSERT_EQ_STR(f.ids[73], "t73");
	ASSERT_EQ_INT(f.attempts, f.nwrites + 5);
	fake_fini(&f);
	return true;
}

/* While the sink fails, the failed batch plus the queue is all that is
 * held: further entries are dropped and counted, never lost silently, and
 * everything accepted lands once the sink recovers. */
static bool test_failed_batches_have_bounded_budget(void)
{
	struct batch_opts o = { .queue_size = 16, .batch_size = 4,
				.flush_interval_ms = 10 };
	struct recorder_stats st;
	struct fake f;

	fake_init(&f);
	fake_set_fail(&f, 0, true);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	/* wait for the first failure: the batch is now held for retry */
	double end = now_s() + 5.0;
	do {
		usleep(2000);
		recorder__stats(r, &st);
	} while (st.failures == 0 && now_s() < end);
	ASSERT_TRUE(st.failures > 0);
	for (int i = 4; i < 100; i++)
		recorder__record(r, mk(i));
	recorder__stats(r, &st);
	ASSERT_EQ_INT(st.recorded, 4 + 16);
	ASSERT_EQ_INT(st.dropped, 100 - 20);
	ASSERT_EQ_INT(recorder__pending(r), 20);
	fake_set_fail(&f, 0, false);
	ASSERT_TRUE(wait_rows(&f, 20, 8.0));  /* next retry within 5 s */
	recorder__stats(r, &st);
	ASSERT_EQ_INT(st.written, 20);
	ASSERT_EQ_INT(st.lost, 0);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_STR(f.ids[0], "t0");
	ASSERT_EQ_STR(f.ids[19], "t19");
	fake_fini(&f);
	return true;
}

/* A sink that never recovers: close gives up within its bounded time, and
 * counts every accepted entry as lost; no more attempts after giving up. */
static bool test_always_failing_sink_counts_lost_at_close(void)
{
	struct recorder_stats final;
	struct batch_opts o = { .queue_size = 1024, .batch_size = 64,
				.flush_interval_ms = 60000 };
	struct fake f;

	fake_init(&f);
	fake_set_fail(&f, 0, true);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 200; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	double t0 = now_s();
	ASSERT_EQ_INT(recorder__close_stats(r, &final), -EIO);
	ASSERT_TRUE(now_s() - t0 < 12.0);  /* close gives up after ~5 s */
	ASSERT_EQ_INT(f.nrows, 0);
	ASSERT_EQ_INT(final.recorded, 200);
	ASSERT_EQ_INT(final.written, 0);
	ASSERT_EQ_INT(final.lost, 200);
	ASSERT_EQ_INT(final.failures, f.attempts);
	ASSERT_TRUE(f.attempts >= 2 && f.attempts < 20);
	fake_fini(&f);
	return true;
}

struct producer {
	struct recorder *r;
	int base;
	int ok, dropped;
};

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (int i = 0; i < 10000; i++) {
		int rc = recorder__record(p->r, mk(p->base + i));
		if (rc == 0)
			p->ok++;
		else if (rc == -ENOSPC)
			p->dropped++;
	}
	return NULL;
}

/* Several producers and a stats reader at once: counters add up. */
static bool test_concurrent_producers_and_stats(void)
{
	struct producer p[4];
	pthread_t th[4];
	struct recorder_stats st;
	struct fake f;
	int ok = 0, dropped = 0;

	fake_init(&f);
	struct recorder *r = recorder__new(NULL, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 4; i++) {
		p[i] = (struct producer){ .r = r, .base = i * 10000 };
		ASSERT_EQ_INT(pthread_create(&th[i], NULL, produce, &p[i]), 0);
	}
	for (int i = 0; i < 50; i++) {
		recorder__stats(r, &st);
		ASSERT_TRUE(st.written + st.lost <= st.recorded);
		(void)recorder__pending(r);
		usleep(100);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ok += p[i].ok;
		dropped += p[i].dropped;
	}
	ASSERT_EQ_INT(ok + dropped, 40000);
	recorder__stats(r, &st);
	ASSERT_EQ_INT(st.recorded, ok);
	ASSERT_EQ_INT(st.dropped, dropped);
	ASSERT_EQ_INT(recorder__close(r), 0);
	pthread_mutex_lock(&f.mu);
	size_t rows = f.nrows;
	pthread_mutex_unlock(&f.mu);
	ASSERT_EQ_INT(rows, ok < MAX_ROWS ? ok : MAX_ROWS);
	fake_fini(&f);
	return true;
}

static bool test_bad_arguments(void)
{
	static const struct sink_ops no_write = { .name = "bad", .close = fake_close };

	errno = 0;
	ASSERT_TRUE(recorder__new(NULL, NULL, NULL) == NULL);
	ASSERT_EQ_INT(errno, EINVAL);
	errno = 0;
	ASSERT_TRUE(recorder__new(NULL, &no_write, NULL) == NULL);
	ASSERT_EQ_INT(errno, EINVAL);
	ASSERT_EQ_INT(recorder__close(NULL), 0);
	return true;
}

/* ---- acknowledgement: sequence numbers, wait_done, flush, cancel, notify ---- */

/* record_batch numbers entries from 1 in order; wait_done returns once
 * they are written; a flush makes a partial batch due at once. */
static bool test_batch_sequence_and_wait_done(void)
{
	struct batch_opts o = { .queue_size = 16, .batch_size = 8, .flush_interval_ms = 60000 };
	struct st_entry *v[10];
	struct recorder_progress p;
	uint64_t last = 0;
	struct fake f;

	fake_init(&f);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 10; i++)
		v[i] = mk(i);
	ASSERT_EQ_INT(recorder__record_batch(r, v, 10, &last), 0);
	ASSERT_EQ_INT(last, 10);
	ASSERT_EQ_INT(recorder__record(r, mk(10)), 0);
	/* a full batch of 8 is written; 9..11 wait for the 60 s interval */
	ASSERT_EQ_INT(recorder__wait_done(r, 8, 5000), 0);
	ASSERT_EQ_INT(recorder__wait_done(r, 11, 100), -ETIMEDOUT);
	recorder__progress(r, &p);
	ASSERT_EQ_INT(p.queued, 11);
	ASSERT_EQ_INT(p.done, 8);
	ASSERT_EQ_INT(p.room, 13);
	ASSERT_TRUE(!p.failing && p.lost_from == 0);
	double t0 = now_s();
	recorder__flush(r);
	ASSERT_EQ_INT(recorder__wait_done(r, 11, 5000), 0);
	ASSERT_TRUE(now_s() - t0 < 5.0);
	ASSERT_EQ_INT(fake_rows(&f), 11);
	ASSERT_EQ_STR(f.ids[9], "t9");
	ASSERT_EQ_STR(f.ids[10], "t10");
	ASSERT_EQ_INT(recorder__close(r), 0);
	fake_fini(&f);
	return true;
}

/* All or none: a batch that does not fit is not taken, nor counted. */
static bool test_record_batch_all_or_none(void)
{
	struct batch_opts o = { .queue_size = 4, .batch_size = 1, .flush_interval_ms = 1 };
	struct st_entry *v[3], *w[3];
	struct recorder_stats st;
	uint64_t last = 0;
	struct fake f;

	fake_init(&f);
	fake_set_block(&f, true);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 3; i++) {
		v[i] = mk(i);
		w[i] = mk(10 + i);
	}
	ASSERT_EQ_INT(recorder__record_batch(r, v, 3, &last), 0);
	ASSERT_TRUE(fake_wait_in_write(&f));     /* one taken, two queued */
	ASSERT_EQ_INT(recorder__record_batch(r, w, 3, &last), -ENOSPC);
	ASSERT_EQ_INT(recorder__record_batch(r, w, 0, &last), -EINVAL);
	ASSERT_EQ_INT(recorder__record_batch(r, w, 2, &last), 0);
	ASSERT_EQ_INT(last, 5);
	recorder__stats(r, &st);
	ASSERT_EQ_INT(st.recorded, 5);
	ASSERT_EQ_INT(st.dropped, 0);
	fake_set_block(&f, false);
	ASSERT_EQ_INT(recorder__wait_done(r, 5, 5000), 0);
	ASSERT_EQ_INT(recorder__close(r), 0);
	entry__free(w[2]);                        /* never taken */
	ASSERT_EQ_INT(f.nrows, 5);
	fake_fini(&f);
	return true;
}

/* Cancel takes back entries still queued and those of a failed batch
 * waiting for its retry: none of them is ever written, the writer goes on
 * with later entries, and `failing` ends with the batch. */
static bool test_cancel_queued_and_failed_batch(void)
{
	struct batch_opts o = { .queue_size = 8, .batch_size = 4, .flush_interval_ms = 1 };
	struct st_entry *v[6];
	struct recorder_progress p;
	struct recorder_stats st;
	uint64_t last = 0;
	size_t taken = 0;
	struct fake f;

	fake_init(&f);
	fake_set_fail(&f, 0, true);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 6; i++)
		v[i] = mk(i);
	ASSERT_EQ_INT(recorder__record_batch(r, v, 6, &last), 0);
	double end = now_s() + 5;
	do {
		recorder__progress(r, &p);
		usleep(1000);
	} while (!p.failing && now_s() < end);
	ASSERT_TRUE(p.failing);
	ASSERT_EQ_INT(p.done, 0);
	/* the first 4 are in the failing batch, 2 queued; a cancel may meet a
	 * retry in progress, then the rest comes back once it has failed */
	end = now_s() + 5;
	while (taken < 6 && now_s() < end) {
		taken += recorder__cancel(r, 1, 6);
		usleep(1000);
	}
	ASSERT_EQ_INT(taken, 6);
	ASSERT_EQ_INT(recorder__cancel(r, 1, 6), 0);
	ASSERT_EQ_INT(recorder__wait_done(r, 6, 5000), 0);
	recorder__progress(r, &p);
	ASSERT_TRUE(!p.failing);
	ASSERT_EQ_INT(p.room, 8);
	fake_set_fail(&f, 0, false);
	ASSERT_EQ_INT(recorder__record(r, mk(6)), 0);
	ASSERT_EQ_INT(recorder__wait_done(r, 7, 5000), 0);
	recorder__stats(r, &st);
	ASSERT_EQ_INT(st.cancelled, 6);
	ASSERT_EQ_INT(st.written, 1);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(f.nrows, 1);
	ASSERT_EQ_STR(f.ids[0], "t6");
	fake_fini(&f);
	return true;
}

/* Cancelling a range in the middle of the queue keeps the others, in
 * order, and frees their room at once. */
static bool test_cancel_middle_keeps_order(void)
{
	struct batch_opts o = { .queue_size = 8, .batch_size = 8, .flush_interval_ms = 60000 };
	struct recorder_progress p;
	struct fake f;

	fake_init(&f);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	for (int i = 0; i < 6; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	ASSERT_EQ_INT(recorder__cancel(r, 2, 4), 3);
	recorder__progress(r, &p);
	ASSERT_EQ_INT(p.room, 5);
	ASSERT_EQ_INT(p.done, 0);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(f.nrows, 3);
	ASSERT_EQ_STR(f.ids[0], "t0");
	ASSERT_EQ_STR(f.ids[1], "t4");
	ASSERT_EQ_STR(f.ids[2], "t5");
	fake_fini(&f);
	return true;
}

static void count_notify(void *arg)
{
	__atomic_fetch_add((int *)arg, 1, __ATOMIC_RELAXED);
}

/* The notify callback runs as the writer takes and writes entries, and
 * not after it was removed. */
static bool test_notify_on_progress(void)
{
	struct batch_opts o = { .queue_size = 8, .batch_size = 2, .flush_interval_ms = 1 };
	int calls = 0;
	struct fake f;

	fake_init(&f);
	struct recorder *r = recorder__new(&o, &fake_ops, &f);
	ASSERT_TRUE(r);
	recorder__set_notify(r, count_notify, &calls);
	ASSERT_EQ_INT(recorder__record(r, mk(0)), 0);
	ASSERT_EQ_INT(recorder__record(r, mk(1)), 0);
	ASSERT_EQ_INT(recorder__wait_done(r, 2, 5000), 0);
	ASSERT_TRUE(__atomic_load_n(&calls, __ATOMIC_RELAXED) >= 2); /* taken, written */
	recorder__set_notify(r, NULL, NULL);
	int before = __atomic_load_n(&calls, __ATOMIC_RELAXED);
	ASSERT_EQ_INT(recorder__record(r, mk(2)), 0);
	ASSERT_EQ_INT(recorder__wait_done(r, 3, 5000), 0);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ASSERT_EQ_INT(calls, before);
	fake_fini(&f);
	return true;
}

int main(void)
{
	/* harness.h prints harness_skip_reason with %s; in a program that never
	 * calls SKIP, gcc -O2 proves it NULL and -Werror=format-overflow fails
	 * the build. Giving it a value keeps the harness untouched. */
	harness_skip_reason = "";
	RUN(test_ten_entries_written_with_trace_id);
	RUN(test_hundred_entries_all_land_in_bounded_batches);
	RUN(test_full_batch_is_one_write);
	RUN(test_partial_batch_flushed_after_interval);
	RUN(test_full_queue_drops_without_blocking);
	RUN(test_close_drains);
	RUN(test_group_commit_takes_backlog_in_whole_batches);
	RUN(test_wait_room);
	RUN(test_record_after_close_began_is_refused);
	RUN(test_retry_until_sink_recovers);
	RUN(test_failed_batches_have_bounded_budget);
	RUN(test_always_failing_sink_counts_lost_at_close);
	RUN(test_concurrent_producers_and_stats);
	RUN(test_bad_arguments);
	RUN(test_batch_sequence_and_wait_done);
	RUN(test_record_batch_all_or_none);
	RUN(test_cancel_queued_and_failed_batch);
	RUN(test_cancel_middle_keeps_order);
	RUN(test_notify_on_progress);
	return harness_done();
}
