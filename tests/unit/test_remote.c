/* test_remote.c — unit tests of the remote sender (store/remote_store.c)
 * against a programmable endpoint of the test's own (libmicrohttpd on
 * 127.0.0.1) and against the real ingest server: the Go tracer's behaviours
 * (five entries arrive with their trace id, recording never blocks, close
 * flushes) and ours (spool while down, order kept, no retry storm on 400,
 * spool limit counted, spool picked up by the next open, token, split
 * bodies, and the round trip remote -> ingest -> SQLite). */
#include "harness.h"
#include "ingest.h"
#include "json.h"
#include "local_store.h"
#include "remote_store.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <sqlite3.h>

#define MAX_IDS 4096

static char tmpdir[64];

/* ---- the programmable endpoint ---------------------------------------------- */

enum mode { M_OK, M_503, M_400, M_SLOW, M_FIXED };

struct endpoint {
	struct MHD_Daemon *d;
	uint16_t port;
	pthread_mutex_t mu;
	enum mode mode;
	unsigned fail_first;   /* answer fail_status to this many requests first */
	unsigned fail_status;  /* 0 = 503 */
	unsigned fixed_status; /* M_FIXED: the answer to every request */
	unsigned requests;
	unsigned connections;  /* TCP connections accepted */
	size_t nids;
	char *ids[MAX_IDS];    /* trace ids received, in order */
	char auth[128];        /* last Authorization header */
	char ctype[64];        /* last Content-Type header */
};

struct body {
	char *p;
	size_t len;
};

static enum MHD_Result ep_handle(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *data,
				 size_t *size, void **con_cls)
{
	struct endpoint *ep = cls;
	struct body *b = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = 204;
	const char *h;

	(void)url, (void)method, (void)version;
	if (!b) {
		*con_cls = calloc(1, sizeof(*b));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*size) {
		b->p = realloc(b->p, b->len + *size + 1);
		memcpy(b->p + b->len, data, *size);
		b->len += *size;
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&ep->mu);
	ep->requests++;
	if ((h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")))
		snprintf(ep->auth, sizeof(ep->auth), "%s", h);
	if ((h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type")))
		snprintf(ep->ctype, sizeof(ep->ctype), "%s", h);
	if (ep->fail_first) {
		ep->fail_first--;
		status = ep->fail_status ? ep->fail_status : 503;
	} else if (ep->mode == M_FIXED) {
		status = ep->fixed_status;
	} else if (ep->mode == M_503) {
		status = 503;
	} else if (ep->mode == M_400) {
		status = 400;
	} else {
		struct st_entry **v;
		size_t n;
		char err[128];

		if (ep->mode == M_SLOW) {
			struct timespec ts = { 0, 300000000 };

			pthread_mutex_unlock(&ep->mu);
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&ep->mu);
		}
		if (json__decode_batch(b->p, b->len, &v, &n, err, sizeof(err))) {
			status = 400;
		} else {
			for (size_t i = 0; i < n && ep->nids < MAX_IDS; i++)
				ep->ids[ep->nids++] = strdup(v[i]->trace_id);
			json__free_batch(v, n);
		}
	}
	pthread_mutex_unlock(&ep->mu);
	resp = MHD_create_response_from_buffer(status == 400 ? 10 : 0, "bad things",
					       MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void ep_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct body *b = *con_cls;

	(void)cls, (void)c, (void)toe;
	if (b) {
		free(b->p);
		free(b);
	}
}

static void ep_conn(void *cls, struct MHD_Connection *c, void **socket_ctx,
		    enum MHD_ConnectionNotificationCode code)
{
	struct endpoint *ep = cls;

	(void)c, (void)socket_ctx;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		pthread_mutex_lock(&ep->mu);
		ep->connections++;
		pthread_mutex_unlock(&ep->mu);
	}
}

/* Starts listening on ep->port (0: any) — again on the same port after
 * ep_down, which is how a test makes the endpoint come back. */
static bool ep_up(struct endpoint *ep)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(ep->port) };
	const union MHD_DaemonInfo *di;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ep->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
				 0, NULL, NULL, ep_handle, ep, MHD_OPTION_SOCK_ADDR, &sa,
				 MHD_OPTION_NOTIFY_COMPLETED, ep_done, NULL,
				 MHD_OPTION_NOTIFY_CONNECTION, ep_conn, ep,
				 MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
	if (!ep->d)
		return false;
	di = MHD_get_daemon_info(ep->d, MHD_DAEMON_INFO_BIND_PORT);
	ep->port = di->port;
	return true;
}

static void ep_down(struct endpoint *ep)
{
	if (ep->d)
		MHD_stop_daemon(ep->d);
	ep->d = NULL;
}

static bool ep_start(struct endpoint *ep, enum mode mode)
{
	memset(ep, 0, sizeof(*ep));
	pthread_mutex_init(&ep->mu, NULL);
	ep->mode = mode;
	return ep_up(ep);
}

static void ep_free(struct endpoint *ep)
{
	ep_down(ep);
	for (size_t i = 0; i < ep->nids; i++)
		free(ep->ids[i]);
	pthread_mutex_destroy(&ep->mu);
}

static size_t ep_count(struct endpoint *ep)
{
	size_t n;

	pthread_mutex_lock(&ep->mu);
	n = ep->nids;
	pthread_mutex_unlock(&ep->mu);
	return n;
}

/* Waits up to ms for the endpoint to have received n entries. */
static bool ep_wait(struct endpoint *ep, size_t n, int ms)
{
	struct timespec ts = { 0, 10000000 };

	for (int i = 0; i < ms / 10; i++) {
		if (ep_count(ep) >= n)
			return true;
		nanosleep(&ts, NULL);
	}
	return ep_count(ep) >= n;
}

/* ids[i] == prefix + i for every i < n */
static bool ids_in_order(struct endpoint *ep, const char *prefix, size_t n)
{
	char want[64];

	if (ep->nids != n) {
		printf("    received %zu entries, expected %zu\n", ep->nids, n);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%s%zu", prefix, i);
		if (strcmp(ep->ids[i], want) != 0) {
			printf("    entry %zu is %s, expected %s\n", i, ep->ids[i], want);
			return false;
		}
	}
	return true;
}

/* ---- helpers ---------------------------------------------------------------- */

static struct st_entry *mk(const char *prefix, size_t i)
{
	struct st_entry *e = entry__new();
	char id[64];

	snprintf(id, sizeof(id), "%s%zu", prefix, i);
	if (e && (entry__set_str(&e->trace_id, id) || entry__set_str(&e->op, "Exec") ||
		  entry__set_str(&e->query, "UPDATE t SET x = x + 1"))) {
		entry__free(e);
		return NULL;
	}
	if (e) {
		e->duration_us = (int64_t)i;
		e->timestamp_us = 1700000000000000LL + (int64_t)i;
	}
	return e;
}

static void url_for(char *buf, size_t len, uint16_t port)
{
	snprintf(buf, len, "http://127.0.0.1:%u/api/internal/traces", port);
}

/* A fresh spool directory under tmpdir. */
static void spool_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static int count_spool_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strstr(de->d_name, ".json") != NULL;
	closedir(d);
	return n;
}

static uint64_t ld(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- tests ------------------------------------------------------------------ */

static bool test_five_entries_arrive_with_trace_id(void)
{
	struct endpoint ep;
	struct remote_stats st;
	char url[128], dir[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st };
	struct batch_opts b = { .flush_interval_ms = 20 };
	struct recorder *r;
	bool ok;

	ASSERT_TRUE(ep_start(&ep, M_OK));
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "five");
	r = remote_store__open(&o, &b, err, sizeof(err));
	if (!r)
		printf("    %s\n", err);
	ASSERT_TRUE(r);
	/* two batches, both flushed by the interval, before close */
	for (size_t i = 0; i < 2; i++)
		ASSERT_EQ_INT(recorder__record(r, mk("five-", i)), 0);
	ok = ep_wait(&ep, 2, 3000);
	for (size_t i = 2; i < 5; i++)
		ASSERT_EQ_INT(recorder__record(r, mk("five-", i)), 0);
	ok = ok && ep_wait(&ep, 5, 3000);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ok = ok && ids_in_order(&ep, "five-", 5) &&
	     strcmp(ep.ctype, "application/json") == 0 && ep.auth[0] == '\0';
	unsigned requests = ep.requests, connections = ep.connections;
	ep_free(&ep);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(requests, 2);
	ASSERT_EQ_INT(connections, 1); /* one kept-alive connection */
	ASSERT_EQ_INT(st.sent, 5);
	ASSERT_EQ_INT(st.spooled, 0);
	return true;
}

static bool test_record_into_full_queue_does_not_block(void)
{
	struct endpoint ep;
	struct remote_stats st;
	struct recorder_stats rs;
	char url[128], dir[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st };
	struct batch_opts b = { .queue_size = 8, .batch_size = 4, .flush_interval_ms = 5 };
	struct timespec t0, t1;
	struct recorder *r;
	int full = 0;

	ASSERT_TRUE(ep_start(&ep, M_SLOW)); /* every POST takes 300 ms */
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "full");
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < 200; i++)
		full += recorder__record(r, mk("full-", i)) == -ENOSPC;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	recorder__stats(r, &rs);
	recorder__close(r);
	ep_free(&ep);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	ASSERT_TRUE(ms < 200); /* 200 records, no waiting on the 300 ms POSTs */
	ASSERT_TRUE(full > 0);
	ASSERT_EQ_INT(rs.dropped, full);
	ASSERT_EQ_INT(st.sent + (uint64_t)full, 200);
	return true;
}

static bool test_close_flushes_what_remains(void)
{
	struct endpoint ep;
	char url[128], dir[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir };
	struct batch_opts b = { .flush_interval_ms = 60000 };
	struct recorder *r;
	bool ok;

	ASSERT_TRUE(ep_start(&ep, M_OK));
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "flush");
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	for (size_t i = 0; i < 3; i++)
		recorder__record(r, mk("flush-", i));
	sleep_ms(50);
	ok = ep_count(&ep) == 0; /* nothing due yet */
	ASSERT_EQ_INT(recorder__close(r), 0);
	ok = ok && ids_in_order(&ep, "flush-", 3);
	ep_free(&ep);
	ASSERT_TRUE(ok);
	return true;
}

static bool test_down_then_up_nothing_lost_order_kept(void)
{
	struct endpoint ep;
	struct remote_stats st;
	char url[128], dir[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st, .timeout_ms = 1000,
				 .retry_min_ms = 20, .retry_max_ms = 100 };
	struct batch_opts b = { .batch_size = 4, .flush_interval_ms = 5 };
	struct recorder *r;
	bool ok, spooled;

	ASSERT_TRUE(ep_start(&ep, M_OK));
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "down");
	ep_down(&ep); /* connection refused from now on */
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	for (size_t i = 0; i < 40; i++) {
		recorder__record(r, mk("down-", i));
		if (i % 4 == 3)
			sleep_ms(10);
	}
	sleep_ms(100);
	spooled = ld(&st.spool_entries) > 0 && count_spool_files(dir) > 0;
	ok = ep_up(&ep) && ep_wait(&ep, 40, 3000);
	/* back to direct sends once the spool is empty */
	for (size_t i = 40; i < 44; i++)
		recorder__record(r, mk("down-", i));
	ok = ok && ep_wait(&ep, 44, 3000);
	ASSERT_EQ_INT(recorder__close(r), 0);
	ok = ok && ids_in_order(&ep, "down-", 44);
	ep_free(&ep);
	ASSERT_TRUE(spooled);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(st.sent, 44);
	ASSERT_EQ_INT(st.spool_entries, 0);
	ASSERT_EQ_INT(st.spool_bytes, 0);
	ASSERT_TRUE(st.failures > 0);
	ASSERT_EQ_INT(count_spool_files(dir), 0);
	return true;
}

static bool test_5xx_retried_in_order(void)
{
	struct endpoint ep;
	struct remote_stats st;
	char url[128], dir[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st,
				 .retry_min_ms = 10, .retry_max_ms = 50 };
	struct batch_opts b = { .batch_size = 2, .flush_interval_ms = 5 };
	struct recorder *r;
	bool ok;

	ASSERT_TRUE(ep_start(&ep, M_OK));
	ep.fail_first = 3;
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "5xx");
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	for (size_t i = 0; i < 10; i++)
		recorder__record(r, mk("r-", i));
	ok = ep_wait(&ep, 10, 3000);
	recorder__close(r);
	ok = ok && ids_in_order(&ep, "r-", 10);
	ep_free(&ep);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(st.failures, 3);
	ASSERT_EQ_INT(st.sent, 10);
	return true;
}

static bool test_400_is_not_retried(void)
{
	struct endpoint ep;
	struct remote_stats st;
	char url[128], dir[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st,
				 .retry_min_ms = 10, .retry_max_ms = 20 };
	struct batch_opts b = { .batch_size = 5, .flush_interval_ms = 5 };
	struct recorder *r;
	unsigned requests;

	ASSERT_TRUE(ep_start(&ep, M_400));
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "400");
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	for (size_t i = 0; i < 10; i++)
		recorder__record(r, mk("bad-", i));
	sleep_ms(300); /* time enough for a retry storm, were there one */
	recorder__close(r);
	requests = ep.requests;
	ep_free(&ep);
	ASSERT_EQ_INT(requests, 2);
	ASSERT_EQ_INT(st.requests, 2);
	ASSERT_EQ_INT(st.rejected, 10);
	ASSERT_EQ_INT(st.spooled, 0);
	ASSERT_EQ_INT(count_spool_files(dir), 0);
	return true;
}

static bool test_spool_limit_counts_loss_and_next_open_sends_spool(void)
{
	struct endpoint ep;
	struct remote_stats st, st2;
	char url[128], dir[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st, .timeout_ms = 500,
				 .spool_max_bytes = 700, .retry_min_ms = 5000,
				 .close_timeout_ms = 200 };
	struct batch_opts b = { .batch_size = 2, .flush_interval_ms = 5 };
	struct recorder *r;
	int files;
	bool ok;

	ASSERT_TRUE(ep_start(&ep, M_OK));
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "limit");
	ep_down(&ep);
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	for (size_t i = 0; i < 20; i++) {
		recorder__record(r, mk("lim-", i));
		if (i % 2)
			sleep_ms(5);
	}
	ASSERT_EQ_INT(recorder__close(r), 0); /* what was handed over is not "lost" to the engine */
	files = count_spool_files(dir);
	ASSERT_TRUE(st.spool_full > 0);
	ASSERT_EQ_INT(st.spooled + st.spool_full, 20);
	ASSERT_EQ_INT(st.spool_entries, st.spooled);
	ASSERT_TRUE(st.spool_bytes <= 700);
	ASSERT_EQ_INT(files * 2, (int)st.spooled);

	/* the next run sends the spool first, in order, before its own entries */
	o.stats = &st2;
	o.retry_min_ms = 10;
	ok = ep_up(&ep);
	r = ok ? remote_store__open(&o, &b, err, sizeof(err)) : NULL;
	ASSERT_TRUE(r);
	recorder__record(r, mk("lim-", 1000));
	ok = ep_wait(&ep, st.spooled + 1, 3000);
	recorder__close(r);
	ok = ok && ep.nids == st.spooled + 1 && strcmp(ep.ids[0], "lim-0") == 0 &&
	     strcmp(ep.ids[ep.nids - 1], "lim-1000") == 0;
	for (size_t i = 1; ok && i + 1 < ep.nids; i++)
		ok = strcmp(ep.ids[i - 1], ep.ids[i]) != 0 &&
		     atoi(ep.ids[i - 1] + 4) < atoi(ep.ids[i] + 4);
	ep_free(&ep);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(st2.sent, st.spooled + 1);
	ASSERT_EQ_INT(count_spool_files(dir), 0);
	return true;
}

static bool test_token_and_open_errors(void)
{
	struct endpoint ep;
	char url[128], dir[128], tok[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .token_file = tok };
	struct recorder *r, *r2;
	FILE *f;
	bool ok;

	ASSERT_TRUE(ep_start(&ep, M_OK));
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "token");
	spool_path(tok, sizeof(tok), "token.txt");
	f = fopen(tok, "w");
	ASSERT_TRUE(f);
	fputs("  abc.DEF-123\n\n", f);
	fclose(f);
	ASSERT_EQ_INT(chmod(tok, 0600), 0);
	r = remote_store__open(&o, NULL, err, sizeof(err));
	ASSERT_TRUE(r);
	/* a second sender on the same spool directory is refused */
	r2 = remote_store__open(&o, NULL, err, sizeof(err));
	ok = r2 == NULL && strstr(err, "in use by another") != NULL;
	recorder__record(r, mk("tok-", 0));
	recorder__close(r);
	ok = ok && ep.nids == 1 && strcmp(ep.auth, "Bearer abc.DEF-123") == 0;
	ep_free(&ep);
	ASSERT_TRUE(ok);

	f = fopen(tok, "w");
	ASSERT_TRUE(f);
	fputs(" \n", f);
	fclose(f);
	ASSERT_TRUE(remote_store__open(&o, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "empty") != NULL);
	o.token_file = "/nonexistent/token";
	ASSERT_TRUE(remote_store__open(&o, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "/nonexistent/token") != NULL);
	o.token_file = NULL;
	o.url = "ftp://example.com/x";
	ASSERT_TRUE(remote_store__open(&o, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "http") != NULL);
	return true;
}

static bool test_large_batch_split_over_posts(void)
{
	struct endpoint ep;
	struct remote_stats st;
	char url[128], dir[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st,
				 .max_body_bytes = 400 };
	struct batch_opts b = { .batch_size = 20, .flush_interval_ms = 5 };
	struct recorder *r;
	bool ok;

	ASSERT_TRUE(ep_start(&ep, M_OK));
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "split");
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	for (size_t i = 0; i < 20; i++)
		recorder__record(r, mk("s-", i));
	recorder__close(r);
	ok = ids_in_order(&ep, "s-", 20);
	ep_free(&ep);
	ASSERT_TRUE(ok);
	ASSERT_TRUE(st.requests >= 7); /* ~140 bytes an entry: 2 per POST */
	return true;
}

#define NASTY "SELECT '\"q\\' || x FROM t WHERE y < 3 -- \t\x01\xff\xc3\xa9"

static bool test_round_trip_remote_ingest_sqlite(void)
{
	struct ingest_opts io = { .listen = "127.0.0.1:0" };
	struct remote_stats st;
	char url[128], dir[128], db[128], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st };
	struct batch_opts b = { .batch_size = 16, .flush_interval_ms = 10 };
	struct recorder *local, *r;
	struct ingest_server *srv;
	sqlite3_stmt *q;
	sqlite3 *h;
	int rows = 0;
	bool ok = true;

	snprintf(db, sizeof(db), "%s/roundtrip.db", tmpdir);
	spool_path(dir, sizeof(dir), "roundtrip");
	local = local_store__open(db, NULL, err, sizeof(err));
	ASSERT_TRUE(local);
	srv = ingest_server__start(&io, local, err, sizeof(err));
	ASSERT_TRUE(srv);
	url_for(url, sizeof(url), ingest_server__port(srv));
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	for (size_t i = 0; i < 50; i++) {
		struct st_entry *e = mk("rt-", i);

		entry__set_str(&e->query, NASTY);
		entry__set_str(&e->error, i % 2 ? "" : "disk I/O error");
		e->pid = 4242;
		e->tid = (int32_t)(4242 + i);
		e->rows = (int64_t)i * 10;
		entry__set_str(&e->process, "app");
		entry__set_str(&e->db_file, "/srv/app.db");
		recorder__record(r, e);
	}
	recorder__close(r);
	ingest_server__stop(srv);
	recorder__close(local);

	ASSERT_EQ_INT(st.sent, 50);
	ASSERT_EQ_INT(sqlite3_open(db, &h), SQLITE_OK);
	ASSERT_EQ_INT(sqlite3_prepare_v2(h, "SELECT trace_id, op, query, duration_us, error, "
					 "timestamp, pid, tid, rows, process, db_file, lib, "
					 "prepare_us FROM sql_traces ORDER BY id", -1, &q, NULL),
		      SQLITE_OK);
	while (ok && sqlite3_step(q) == SQLITE_ROW) {
		char id[32];

		snprintf(id, sizeof(id), "rt-%d", rows);
		ok = strcmp((const char *)sqlite3_column_text(q, 0), id) == 0 &&
		     strcmp((const char *)sqlite3_column_text(q, 1), "Exec") == 0 &&
		     strcmp((const char *)sqlite3_column_text(q, 2),
			    "SELECT '\"q\\' || x FROM t WHERE y < 3 -- \t\x01\xef\xbf\xbd\xc3\xa9") == 0 &&
		     sqlite3_column_int64(q, 3) == rows &&
		     strcmp((const char *)sqlite3_column_text(q, 4), rows % 2 ? "" : "disk I/O error") == 0 &&
		     sqlite3_column_int64(q, 5) == 1700000000000000LL + rows &&
		     sqlite3_column_int(q, 6) == 4242 && sqlite3_column_int(q, 7) == 4242 + rows &&
		     sqlite3_column_int64(q, 8) == rows * 10 &&
		     strcmp((const char *)sqlite3_column_text(q, 9), "app") == 0 &&
		     strcmp((const char *)sqlite3_column_text(q, 10), "/srv/app.db") == 0 &&
		     sqlite3_column_type(q, 11) == SQLITE_NULL && sqlite3_column_type(q, 12) == SQLITE_NULL;
		if (!ok)
			printf("    row %d differs: %s %s\n", rows, sqlite3_column_text(q, 0),
			       sqlite3_column_text(q, 2));
		rows++;
	}
	sqlite3_finalize(q);
	sqlite3_close(h);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(rows, 50);
	return true;
}

/* ---- hostile files and refusing endpoints (issue 11) ------------------------ */

/* Sends fd 2 to path until capture_end(); returns the saved fd. */
static int capture_begin(const char *path)
{
	int saved, fd;

	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	return saved;
}

static void capture_end(int saved)
{
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, 2);
		close(saved);
	}
}

static int count_in_file(const char *path, const char *needle)
{
	char line[2048];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static bool write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0 && chmod(path, mode) == 0;
}

/* A wrong token (401) is kept and retried, not lost, and said once. */
static bool test_401_then_200_loses_nothing(void)
{
	struct endpoint ep;
	struct remote_stats st;
	char url[128], dir[128], logp[160], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st,
				 .retry_min_ms = 10, .retry_max_ms = 40 };
	struct batch_opts b = { .batch_size = 2, .flush_interval_ms = 5 };
	struct recorder *r;
	int saved, said;
	bool ok;

	ASSERT_TRUE(ep_start(&ep, M_OK));
	ep.fail_first = 4;
	ep.fail_status = 401;
	url_for(url, sizeof(url), ep.port);
	spool_path(dir, sizeof(dir), "auth");
	snprintf(logp, sizeof(logp), "%s/auth.log", tmpdir);
	saved = capture_begin(logp);
	r = remote_store__open(&o, &b, err, sizeof(err));
	if (r) {
		for (size_t i = 0; i < 10; i++)
			recorder__record(r, mk("a-", i));
		ok = ep_wait(&ep, 10, 5000);
		recorder__close(r);
	}
	capture_end(saved);
	ASSERT_TRUE(r);
	ok = ok && ids_in_order(&ep, "a-", 10);
	ep_free(&ep);
	said = count_in_file(logp, "refused our token");
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(st.sent, 10);
	ASSERT_EQ_INT(st.rejected, 0);
	ASSERT_EQ_INT(st.failures, 4);
	ASSERT_EQ_INT(st.auth_refused, 4);
	ASSERT_EQ_INT(said, 1); /* four refusals in a row: one line */
	ASSERT_EQ_INT(count_in_file(logp, "level=ERROR"), 1);
	return true;
}

/* 403, 404, 429 and 5xx are retried until accepted; only 413 and 422 (and
 * 400, test_400_is_not_retried) drop the batch, counted. */
static bool test_statuses_kept_or_dropped(void)
{
	static const unsigned kept[] = { 403, 404, 429, 500, 502 };
	static const unsigned dropped[] = { 413, 422 };
	char url[128], dir[128], name[32], err[256];
	struct batch_opts b = { .batch_size = 2, .flush_interval_ms = 5 };

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		struct remote_stats st;
		struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st,
					 .retry_min_ms = 10, .retry_max_ms = 40 };
		struct endpoint ep;
		struct recorder *r;
		bool ok;

		ASSERT_TRUE(ep_start(&ep, M_OK));
		ep.fail_first = 2;
		ep.fail_status = kept[i];
		url_for(url, sizeof(url), ep.port);
		snprintf(name, sizeof(name), "kept-%u", kept[i]);
		spool_path(dir, sizeof(dir), name);
		r = remote_store__open(&o, &b, err, sizeof(err));
		ASSERT_TRUE(r);
		for (size_t k = 0; k < 4; k++)
			recorder__record(r, mk("k-", k));
		ok = ep_wait(&ep, 4, 5000);
		recorder__close(r);
		ok = ok && ids_in_order(&ep, "k-", 4);
		ep_free(&ep);
		if (!ok || st.sent != 4 || st.rejected != 0)
			printf("    status %u: sent %llu, rejected %llu\n", kept[i],
			       (unsigned long long)st.sent, (unsigned long long)st.rejected);
		ASSERT_TRUE(ok);
		ASSERT_EQ_INT(st.sent, 4);
		ASSERT_EQ_INT(st.rejected, 0);
	}
	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
		struct remote_stats st;
		struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st,
					 .retry_min_ms = 10, .retry_max_ms = 40 };
		struct endpoint ep;
		struct recorder *r;
		unsigned requests;

		ASSERT_TRUE(ep_start(&ep, M_FIXED));
		ep.fixed_status = dropped[i];
		url_for(url, sizeof(url), ep.port);
		snprintf(name, sizeof(name), "dropped-%u", dropped[i]);
		spool_path(dir, sizeof(dir), name);
		r = remote_store__open(&o, &b, err, sizeof(err));
		ASSERT_TRUE(r);
		for (size_t k = 0; k < 4; k++) {
			recorder__record(r, mk("d-", k));
			sleep_ms(20);
		}
		sleep_ms(100);
		recorder__close(r);
		requests = ep.requests;
		ep_free(&ep);
		ASSERT_EQ_INT(st.rejected, 4);
		ASSERT_EQ_INT(st.requests, requests); /* never sent twice */
		ASSERT_EQ_INT(st.spooled, 0);
		ASSERT_EQ_INT(count_spool_files(dir), 0);
	}
	return true;
}

/* A token file others can read, or that is not root's or ours, or that sits
 * in a directory others can write, is refused with the file and the fix. */
static bool test_token_file_must_be_private(void)
{
	char tok[128], link[128], pub[128], pubtok[160], err[512];
	char *t;

	snprintf(tok, sizeof(tok), "%s/private-token", tmpdir);
	snprintf(link, sizeof(link), "%s/token-link", tmpdir);
	ASSERT_TRUE(write_file(tok, "abc\n", 0644));
	t = remote_store__read_token(tok, err, sizeof(err));
	ASSERT_TRUE(t == NULL);
	ASSERT_TRUE(strstr(err, tok) && strstr(err, "chmod 600"));
	ASSERT_EQ_INT(chmod(tok, 0620), 0);
	ASSERT_TRUE(remote_store__read_token(tok, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "chmod 600"));
	ASSERT_EQ_INT(chmod(tok, 0600), 0);
	t = remote_store__read_token(tok, err, sizeof(err));
	ASSERT_TRUE(t);
	ASSERT_EQ_STR(t, "abc");
	free(t);
	/* a symbolic link of ours in a directory of ours is followed */
	ASSERT_EQ_INT(symlink(tok, link), 0);
	t = remote_store__read_token(link, err, sizeof(err));
	if (!t)
		printf("    %s\n", err);
	ASSERT_TRUE(t);
	free(t);
	/* a directory anyone can write: the file could be swapped */
	snprintf(pub, sizeof(pub), "%s/pub", tmpdir);
	snprintf(pubtok, sizeof(pubtok), "%s/token", pub);
	ASSERT_EQ_INT(mkdir(pub, 0700), 0);
	ASSERT_TRUE(write_file(pubtok, "abc\n", 0600));
	ASSERT_EQ_INT(chmod(pub, 0777), 0);
	ASSERT_TRUE(remote_store__read_token(pubtok, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, pubtok) && strstr(err, "writable by"));
	if (geteuid() != 0)
		SKIP("the foreign-owner case needs root (chown)");
	ASSERT_EQ_INT(chown(tok, 65534, 65534), 0);
	ASSERT_TRUE(remote_store__read_token(tok, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, tok) && strstr(err, "owned by uid 65534"));
	return true;
}

/* The spool directory: refused when others can write it (sticky or not)
 * or when it is not root's or ours; made 0700 with its parents. */
static bool test_spool_dir_must_be_ours(void)
{
	char dir[128], sub[160], err[512];
	struct remote_opts o = { .url = "http://127.0.0.1:9/x", .spool_dir = dir };
	struct recorder *r;
	struct stat st;

	spool_path(dir, sizeof(dir), "shared-spool");
	ASSERT_EQ_INT(mkdir(dir, 0700), 0);
	ASSERT_EQ_INT(chmod(dir, 0777), 0);
	ASSERT_TRUE(remote_store__open(&o, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, dir) && strstr(err, "writable by group or others and not sticky"));
	ASSERT_EQ_INT(chmod(dir, 01777), 0);
	ASSERT_TRUE(remote_store__open(&o, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "writable by group or others"));
	ASSERT_EQ_INT(chmod(dir, 0770), 0);
	ASSERT_TRUE(remote_store__open(&o, NULL, err, sizeof(err)) == NULL);
	ASSERT_EQ_INT(chmod(dir, 0755), 0);
	r = remote_store__open(&o, NULL, err, sizeof(err));
	if (!r)
		printf("    %s\n", err);
	ASSERT_TRUE(r);
	recorder__close(r);

	/* made by the sender: 0700, missing parents too */
	spool_path(dir, sizeof(dir), "made/by/us");
	r = remote_store__open(&o, NULL, err, sizeof(err));
	ASSERT_TRUE(r);
	recorder__close(r);
	for (int i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", tmpdir, i == 0 ? "made" : i == 1 ? "made/by"
								: "made/by/us");
		ASSERT_EQ_INT(stat(sub, &st), 0);
		ASSERT_EQ_INT(st.st_mode & 07777, 0700);
	}
	if (geteuid() != 0)
		SKIP("the foreign-owner case needs root (chown)");
	spool_path(dir, sizeof(dir), "nobodys-spool");
	ASSERT_EQ_INT(mkdir(dir, 0755), 0);
	ASSERT_EQ_INT(chown(dir, 65534, 65534), 0);
	ASSERT_TRUE(remote_store__open(&o, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, dir) && strstr(err, "owned by uid 65534"));
	return true;
}

#define BATCH_OF(id) "[{\"TraceID\":\"" id "\",\"Op\":\"Exec\",\"Query\":\"x\"," \
		     "\"DurationUs\":1,\"Error\":\"\",\"Timestamp\":1}]"

/* Replay sends only regular files of ours with one link: not a file owned
 * by another user, nor a hard link to a file elsewhere. */
static bool test_replay_sends_only_our_files(void)
{
	struct endpoint ep;
	struct remote_stats st;
	char url[128], dir[128], p[200], outside[160], err[256];
	struct remote_opts o = { .url = url, .spool_dir = dir, .stats = &st };
	struct batch_opts b = { .flush_interval_ms = 5 };
	struct recorder *r;
	bool ok, root = geteuid() == 0;

	spool_path(dir, sizeof(dir), "replay");
	ASSERT_EQ_INT(mkdir(dir, 0700), 0);
	snprintf(p, sizeof(p), "%s/%020d-1.json", dir, 1);
	ASSERT_TRUE(write_file(p, BATCH_OF("ours-0"), 0600));
	snprintf(outside, sizeof(outside), "%s/outside.json", tmpdir);
	ASSERT_TRUE(write_file(outside, BATCH_OF("linked"), 0600));
	snprintf(p, sizeof(p), "%s/%020d-1.json", dir, 2);
	ASSERT_EQ_INT(link(outside, p), 0);
	if (root) {
		snprintf(p, sizeof(p), "%s/%020d-1.json", dir, 3);
		ASSERT_TRUE(write_file(p, BATCH_OF("foreign"), 0600));
		ASSERT_EQ_INT(chown(p, 65534, 65534), 0);
	}
	ASSERT_TRUE(ep_start(&ep, M_OK));
	url_for(url, sizeof(url), ep.port);
	r = remote_store__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r);
	recorder__record(r, mk("live-", 0));
	ok = ep_wait(&ep, 2, 3000);
	sleep_ms(100);
	recorder__close(r);
	ok = ok && ep.nids == 2 && strcmp(ep.ids[0], "ours-0") == 0 &&
	     strcmp(ep.ids[1], "live-0") == 0;
	for (size_t i = 0; i < ep.nids; i++)
		if (!ok)
			printf("    received %s\n", ep.ids[i]);
	ep_free(&ep);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(st.sent, 2);
	if (!root)
		SKIP("the foreign-owner case needs root (chown)");
	return true;
}

int main(void)
{
	char cmd[128];

	harness_skip_reason = ""; /* see test_batcher.c: gcc -O2 and RUN's %s */
	strcpy(tmpdir, "/tmp/test_remote.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	RUN(test_five_entries_arrive_with_trace_id);
	RUN(test_record_into_full_queue_does_not_block);
	RUN(test_close_flushes_what_remains);
	RUN(test_down_then_up_nothing_lost_order_kept);
	RUN(test_5xx_retried_in_order);
	RUN(test_400_is_not_retried);
	RUN(test_spool_limit_counts_loss_and_next_open_sends_spool);
	RUN(test_token_and_open_errors);
	RUN(test_large_batch_split_over_posts);
	RUN(test_round_trip_remote_ingest_sqlite);
	RUN(test_401_then_200_loses_nothing);
	RUN(test_statuses_kept_or_dropped);
	RUN(test_token_file_must_be_private);
	RUN(test_spool_dir_must_be_ours);
	RUN(test_replay_sends_only_our_files);
	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("cannot remove %s\n", tmpdir);
	return harness_done();
}
