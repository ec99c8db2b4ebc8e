/* pipeline_bench.c — entries per second through the batching pipeline with
 * no kernel in the loop: one producer thread builds entries the way the
 * tracer's ring-buffer consumer does (one heap entry per execution) and
 * hands them to a recorder (store/recorder.h) whose writer thread puts them
 * into the local SQLite store (store/local_store.h) in a temporary file.
 *
 * Usage: pipeline_bench [-n ENTRIES] [-d DIR] [--only local|remote|otlp] [--setting default|tuned]
 *   --only, --setting  run a subset (to profile one path); default: all
 *
 * For each setting (default: queue 1024, batch 64, flush 1 s — the tool's;
 * tuned: queue 65536, batch 1024, flush 1 s) two runs, each on a fresh file:
 *   sustained  the producer never loses an entry: when the queue is full it
 *              waits in recorder__wait_room until there is room (as the tool does), so the rate is what the writer
 *              sustains (time from the first record until recorder__close
 *              has written and closed everything);
 *   offered    the producer records as fast as it can, as the tracer does
 *              (it never waits): how many of ENTRIES were dropped because
 *              the queue was full, and the rate of what was written.
 * Each run prints one line:
 *   pipeline local default sustained entries=... written=... dropped=...
 *            elapsed_ns=... entries_per_s=... record_ns=...
 * record_ns is the producer's average time per recorder__record call
 * (building the entry not included).
 *
 * Then the same through the remote sender (store/remote_store.h: JSON over
 * HTTP, libcurl, one kept-alive connection) into our ingest server
 * (store/ingest.h, libmicrohttpd) on 127.0.0.1, in this process:
 *   remote-store    the server queues into a local store (the whole path);
 *   remote-discard  the server queues into a recorder whose sink discards
 *                   (the HTTP path alone: encode, POST, decode, queue).
 * Default: sender queue 1024 / batch 64, server queue 1024 (the tools'
 * defaults); tuned: 65536 / 1024 on both sides. Time runs from the first
 * record until the sender has closed (everything acknowledged), the server
 * has stopped and its recorder has written everything; entries_per_s counts
 * what reached the server's sink. Lines also give sent/spooled/lost
 * counts of the sender (a 503 from a full server queue sends a batch to
 * the spool, replayed after a backoff of 1 s and more).
 * When store/ingest.h is absent at build time the remote runs are skipped.
 *
 * Then the OpenTelemetry exporter (store/otlp_sink.h: spans as OTLP
 * protobuf over HTTP, the remote sender's delivery) into a loopback OTLP
 * receiver in this process (libmicrohttpd; the spans of each body counted
 * by a walk of its wire format, answered 200), default setting, sustained:
 *   otlp-discard    entries_per_s counts the spans the receiver decoded, to
 *                   compare with remote-discard (--only otlp runs it alone).
 *
 * On 2 vCPUs the producer and the writer(s) share the two cores (remote:
 * producer, sender, two server threads, server writer).
 * Exit status: 0, or 1 with one line on stderr.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "entry.h"
#include "local_store.h"
#include "recorder.h"

#if __has_include("ingest.h") && __has_include("remote_store.h")
#define HAVE_INGEST 1
#include "ingest.h"
#include "remote_store.h"
#endif
#if __has_include("otlp_sink.h")
#define HAVE_OTLP 1
#include <microhttpd.h>
#include "otlp_sink.h"
#endif

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A typical entry, as the tracer builds it for a W2-style lookup. */
static struct st_entry *make_template(void)
{
	struct st_entry *e = entry__new();

	if (!e || entry__set_str(&e->op, "Query") ||
	    entry__set_str(&e->query, "SELECT a, b FROM t WHERE id = ?1") ||
	    entry__set_str(&e->process, "workload") ||
	    entry__set_str(&e->lib, "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6") ||
	    entry__set_str(&e->db_file, "/tmp/sqltrace-bench-000000/bench.db")) {
		fprintf(stderr, "pipeline_bench: out of memory\n");
		exit(1);
	}
	e->duration_us = 3;
	e->pid = 4242;
	e->tid = 4242;
	e->rows = 1;
	e->query_len = (int64_t)strlen(e->query);
	return e;
}

/* A sustained producer waits for room the way the tool's ring buffer
 * consumer does (user/consume/records.c): in recorder__wait_room, so that it takes
 * no CPU from the writer threads while the queue is full. */
#define ROOM_WAIT_MS 100

struct setting {
	const char *name;
	struct batch_opts bo;
};

/* Records n clones of tmpl into r (waiting for room when sustained);
 * returns the total ns spent in recorder__record. */
static uint64_t produce(struct recorder *r, int sustained, uint64_t n,
			const struct st_entry *tmpl, uint64_t t0)
{
	uint64_t i, rec_ns = 0, a, b;
	int rc;

	for (i = 0; i < n; i++) {
		struct st_entry *e = entry__clone(tmpl);

		if (!e) {
			fprintf(stderr, "pipeline_bench: out of memory\n");
			exit(1);
		}
		e->timestamp_us = (int64_t)(t0 / 1000 + i);
		if (sustained) {
			while (!recorder__wait_room(r, 1, ROOM_WAIT_MS))
				;
		}
		a = now_ns();
		rc = recorder__record(r, e);
		b = now_ns();
		rec_ns += b - a;
		if (rc && rc != -ENOSPC) {
			fprintf(stderr, "pipeline_bench: record: %s\n", strerror(-rc));
			exit(1);
		}
	}
	return rec_ns;
}

static void rm_db(const char *path)
{
	char p2[4300];

	unlink(path);
	snprintf(p2, sizeof(p2), "%s-wal", path);
	unlink(p2);
	snprintf(p2, sizeof(p2), "%s-shm", path);
	unlink(p2);
}

static uint64_t cpu_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One run; exits on a setup failure. writer_cpu_ns is the CPU time of every
 * thread but the producer (the store's writer thread) per entry written: a
 * figure that other load on the machine disturbs less than the rate. */
static void run(const char *dir, const struct setting *s, int sustained, uint64_t n,
		const struct st_entry *tmpl, int seq)
{
	struct recorder_stats st = { 0 };
	struct recorder *r;
	char path[4200], err[512];
	uint64_t t0, t1, rec_ns, p0, p1, m0, m1;
	int rc;

	snprintf(path, sizeof(path), "%s/pipeline-%d.db", dir, seq);
	r = local_store__open(path, &s->bo, err, sizeof(err));
	if (!r) {
		fprintf(stderr, "pipeline_bench: %s\n", err);
		exit(1);
	}
	t0 = now_ns();
	p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	m0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	rec_ns = produce(r, sustained, n, tmpl, t0);
	m1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	rc = recorder__close_stats(r, &st);
	p1 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	t1 = now_ns();
	printf("pipeline local %s %s queue=%u batch=%u entries=%llu written=%llu dropped=%llu "
	       "lost=%llu elapsed_ns=%llu entries_per_s=%.0f record_ns=%.1f writer_cpu_ns=%.0f\n",
	       s->name, sustained ? "sustained" : "offered", s->bo.queue_size, s->bo.batch_size,
	       (unsigned long long)n, (unsigned long long)st.written,
	       (unsigned long long)st.dropped, (unsigned long long)st.lost,
	       (unsigned long long)(t1 - t0), (double)st.written * 1e9 / (double)(t1 - t0),
	       (double)rec_ns / (double)n,
	       st.written ? (double)((p1 - p0) - (m1 - m0)) / (double)st.written : 0.0);
	fflush(stdout);
	if (rc)
		fprintf(stderr, "pipeline_bench: close: %s\n", strerror(-rc));
	rm_db(path);
}

#ifdef HAVE_INGEST
/* The server side's discarding sink (counts, frees nothing: the engine
 * owns the entries). */
static int discard_write(void *ctx, struct st_entry *const *batch, size_t n)
{
	(void)ctx;
	(void)batch;
	(void)n;
	return 0;
}

static void discard_close(void *ctx)
{
	(void)ctx;
}

static const struct sink_ops discard_sink = { "discard", discard_write, discard_close };

/* One remote run: sender -> ingest server on loopback -> store or discard. */
static void run_remote(const char *dir, const struct setting *s, int to_store, int sustained,
		       uint64_t n, const struct st_entry *tmpl, int seq)
{
	struct recorder_stats sst = { 0 }, dst = { 0 };
	struct remote_stats rs = { 0 };
	struct ingest_opts io = { .listen = "127.0.0.1:0", .queue_size = s->bo.queue_size };
	struct remote_opts ro = { 0 };
	struct recorder *dest, *snd;
	struct ingest_server *srv;
	char path[4200], spool[4200], lock[4300], url[128], err[512];
	uint64_t t0, t1, rec_ns;

	snprintf(path, sizeof(path), "%s/ingest-%d.db", dir, seq);
	snprintf(spool, sizeof(spool), "%s/spool-%d", dir, seq);
	dest = to_store ? local_store__open(path, &s->bo, err, sizeof(err))
			: recorder__new(&s->bo, &discard_sink, NULL);
	if (!dest) {
		fprintf(stderr, "pipeline_bench: server recorder: %s\n", to_store ? err : strerror(errno));
		exit(1);
	}
	srv = ingest_server__start(&io, dest, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "pipeline_bench: %s\n", err);
		exit(1);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/internal/traces",
		 (unsigned)ingest_server__port(srv));
	ro.url = url;
	ro.spool_dir = spool;
	ro.stats = &rs;
	ro.close_timeout_ms = 60000; /* let the spool drain: every entry is counted */
	snd = remote_store__open(&ro, &s->bo, err, sizeof(err));
	if (!snd) {
		fprintf(stderr, "pipeline_bench: %s\n", err);
		exit(1);
	}
	t0 = now_ns();
	rec_ns = produce(snd, sustained, n, tmpl, t0);
	recorder__close_stats(snd, &sst);
	ingest_server__stop(srv);
	recorder__close_stats(dest, &dst);
	t1 = now_ns();
	printf("pipeline %s %s %s queue=%u batch=%u entries=%llu written=%llu dropped=%llu "
	       "lost=%llu elapsed_ns=%llu entries_per_s=%.0f record_ns=%.1f sent=%llu spooled=%llu "
	       "requests=%llu failures=%llu\n",
	       to_store ? "remote-store" : "remote-discard", s->name,
	       sustained ? "sustained" : "offered", s->bo.queue_size, s->bo.batch_size,
	       (unsigned long long)n, (unsigned long long)dst.written,
	       (unsigned long long)sst.dropped, (unsigned long long)(sst.lost + dst.lost + dst.dropped),
	       (unsigned long long)(t1 - t0), (double)dst.written * 1e9 / (double)(t1 - t0),
	       (double)rec_ns / (double)n, (unsigned long long)rs.sent,
	       (unsigned long long)rs.spooled, (unsigned long long)rs.requests,
	       (unsigned long long)rs.failures);
	fflush(stdout);
	rm_db(path);
	snprintf(lock, sizeof(lock), "%s/.lock", spool);
	unlink(lock);
	rmdir(spool);
}
#endif

#ifdef HAVE_OTLP
/* The loopback OTLP receiver: counts the spans of every request body. */
struct otlp_rx {
	uint64_t spans, requests, bad;
};

struct rx_body {
	char *p;
	size_t len, cap;
};

/* Counts the spans of an ExportTraceServiceRequest by walking its wire
 * format (resource_spans = 1 > scope_spans = 2 > spans = 2), every tag,
 * varint and length checked, nothing allocated: the receiver's share of
 * the CPU stays small, so the figure is the exporter's. Returns the count,
 * or -1 when the bytes are not well-formed protobuf. */
static int64_t count_spans(const uint8_t *p, size_t n, int depth)
{
	int64_t spans = 0;
	size_t i = 0;

	while (i < n) {
		uint64_t tag = 0, len = 0;
		int shift = 0;

		do {
			if (i >= n || shift > 63)
				return -1;
			tag |= (uint64_t)(p[i] & 0x7f) << shift;
			shift += 7;
		} while (p[i++] & 0x80);
		switch (tag & 7) {
		case 0:
			while (i < n && (p[i] & 0x80))
				i++;
			if (i++ >= n)
				return -1;
			break;
		case 1:
			i += 8;
			break;
		case 5:
			i += 4;
			break;
		case 2:
			shift = 0;
			do {
				if (i >= n || shift > 63)
					return -1;
				len |= (uint64_t)(p[i] & 0x7f) << shift;
				shift += 7;
			} while (p[i++] & 0x80);
			if (len > n - i)
				return -1;
			if ((depth == 0 && tag >> 3 == 1) || (depth == 1 && tag >> 3 == 2)) {
				int64_t k = count_spans(p + i, (size_t)len, depth + 1);

				if (k < 0)
					return -1;
				spans += k;
			} else if (depth == 2 && tag >> 3 == 2) {
				spans++;
			}
			i += (size_t)len;
			break;
		default:
			return -1;
		}
	}
	return i == n ? spans : -1;
}

static enum MHD_Result rx_handler(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **state)
{
	struct otlp_rx *rx = cls;
	struct rx_body *b = *state;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)url;
	(void)method;
	(void)version;
	if (!b) {
		*state = calloc(1, sizeof(struct rx_body));
		return *state ? MHD_YES : MHD_NO;
	}
	if (*size) {
		if (b->len + *size > b->cap) {
			size_t cap = (b->len + *size) * 2;
			char *p = realloc(b->p, cap);

			if (!p)
				return MHD_NO;
			b->p = p;
			b->cap = cap;
		}
		memcpy(b->p + b->len, data, *size);
		b->len += *size;
		*size = 0;
		return MHD_YES;
	}
	{
		int64_t k = count_spans((const uint8_t *)b->p, b->len, 0);

		__atomic_fetch_add(&rx->spans, k > 0 ? (uint64_t)k : 0, __ATOMIC_RELAXED);
		__atomic_fetch_add(&rx->requests, 1, __ATOMIC_RELAXED);
		if (k < 0)
			__atomic_fetch_add(&rx->bad, 1, __ATOMIC_RELAXED);
	}
	resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, "Content-Type", "application/x-protobuf");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void rx_done(void *cls, struct MHD_Connection *c, void **state,
		    enum MHD_RequestTerminationCode why)
{
	struct rx_body *b = *state;

	(void)cls;
	(void)c;
	(void)why;
	if (b) {
		free(b->p);
		free(b);
		*state = NULL;
	}
}

static void run_otlp(const char *dir, const struct setting *s, uint64_t n,
		     const struct st_entry *tmpl, int seq)
{
	struct otlp_rx rx = { 0 };
	struct recorder_stats sst = { 0 };
	struct remote_stats rs = { 0 };
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	char url[64], spool[4200], lock[4300], err[512];
	struct otlp_opts oo = { 0 };
	struct recorder *snd;
	uint64_t t0, t1, rec_ns;

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
			     rx_handler, &rx, MHD_OPTION_NOTIFY_COMPLETED, rx_done, NULL,
			     MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
	info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (!info) {
		fprintf(stderr, "pipeline_bench: cannot start the OTLP receiver\n");
		exit(1);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)info->port);
	snprintf(spool, sizeof(spool), "%s/spool-%d", dir, seq);
	oo.url = url;
	oo.spool_dir = spool;
	oo.stats = &rs;
	oo.close_timeout_ms = 60000;
	oo.getenv = NULL;
	snd = otlp_sink__open(&oo, &s->bo, err, sizeof(err));
	if (!snd) {
		fprintf(stderr, "pipeline_bench: %s\n", err);
		exit(1);
	}
	t0 = now_ns();
	rec_ns = produce(snd, 1, n, tmpl, t0);
	recorder__close_stats(snd, &sst);
	t1 = now_ns();
	MHD_stop_daemon(d);
	printf("pipeline otlp-discard %s sustained queue=%u batch=%u entries=%llu written=%llu "
	       "dropped=%llu lost=%llu elapsed_ns=%llu entries_per_s=%.0f record_ns=%.1f sent=%llu "
	       "spooled=%llu requests=%llu failures=%llu undecodable=%llu\n",
	       s->name, s->bo.queue_size, s->bo.batch_size, (unsigned long long)n,
	       (unsigned long long)rx.spans, (unsigned long long)sst.dropped,
	       (unsigned long long)(sst.lost + rs.rejected + rs.spool_full + rs.lost_other),
	       (unsigned long long)(t1 - t0), (double)rx.spans * 1e9 / (double)(t1 - t0),
	       (double)rec_ns / (double)n, (unsigned long long)rs.sent,
	       (unsigned long long)rs.spooled, (unsigned long long)rs.requests,
	       (unsigned long long)rs.failures, (unsigned long long)rx.bad);
	fflush(stdout);
	snprintf(lock, sizeof(lock), "%s/otlp/.lock", spool);
	unlink(lock);
	snprintf(lock, sizeof(lock), "%s/otlp", spool);
	rmdir(lock);
	rmdir(spool);
}
#endif

int main(int argc, char **argv)
{
	static const struct setting settings[] = {
		{ "default", BATCH_OPTS_DEFAULT },
		{ "tuned", { .queue_size = 65536, .batch_size = 1024, .flush_interval_ms = 1000 } },
	};
	const char *tmp = getenv("TMPDIR");
	uint64_t n = 300000;
	const char *only = NULL, *only_setting = NULL;
	char dir[4096];
	struct st_entry *tmpl;
	int a, seq = 0;
	size_t k;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "-n") && a + 1 < argc) {
			n = strtoull(argv[++a], NULL, 10);
		} else if (!strcmp(argv[a], "-d") && a + 1 < argc) {
			tmp = argv[++a];
		} else if (!strcmp(argv[a], "--only") && a + 1 < argc &&
			   (!strcmp(argv[a + 1], "local") || !strcmp(argv[a + 1], "remote") ||
			    !strcmp(argv[a + 1], "otlp"))) {
			only = argv[++a];
		} else if (!strcmp(argv[a], "--setting") && a + 1 < argc &&
			   (!strcmp(argv[a + 1], "default") || !strcmp(argv[a + 1], "tuned"))) {
			only_setting = argv[++a];
		} else {
			fprintf(stderr, "usage: pipeline_bench [-n ENTRIES] [-d DIR] [--only local|remote|otlp] "
				"[--setting default|tuned]\n");
			return 2;
		}
	}
	snprintf(dir, sizeof(dir), "%s/sqltrace-pipeline-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "pipeline_bench: cannot create a directory under %s: %s\n",
			tmp && *tmp ? tmp : "/tmp", strerror(errno));
		return 1;
	}
	tmpl = make_template();
	for (k = 0; k < sizeof(settings) / sizeof(settings[0]); k++) {
		if ((only && strcmp(only, "local")) || (only_setting && strcmp(only_setting, settings[k].name)))
			continue;
		run(dir, &settings[k], 1, n, tmpl, seq++);
		run(dir, &settings[k], 0, n, tmpl, seq++);
	}
#ifdef HAVE_INGEST
	for (k = 0; k < sizeof(settings) / sizeof(settings[0]); k++) {
		if ((only && strcmp(only, "remote")) || (only_setting && strcmp(only_setting, settings[k].name)))
			continue;
		run_remote(dir, &settings[k], 1, 1, n, tmpl, seq++);
		run_remote(dir, &settings[k], 1, 0, n, tmpl, seq++);
		run_remote(dir, &settings[k], 0, 1, n, tmpl, seq++);
	}
#else
	printf("pipeline remote skipped: store/ingest.h (the ingest server) was not in the tree at build time\n");
#endif
#ifdef HAVE_OTLP
	if ((!only || !strcmp(only, "otlp")) && (!only_setting || !strcmp(only_setting, "default")))
		run_otlp(dir, &settings[0], n, tmpl, seq++);
#endif
	entry__free(tmpl);
	rmdir(dir);
	return 0;
}
