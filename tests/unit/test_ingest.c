/* test_ingest.c — unit tests of the ingest server (store/ingest.c), run
 * in-process on 127.0.0.1 with an ephemeral port and libcurl as the client:
 * the Go handler's behaviours (two entries stored, GET 405, "not json" 400)
 * and ours (404, 413 plain and chunked, token 401/204, 204 only once written,
 * 503 with the entries taken back when the store cannot take them, a batch
 * near or over the queue size, the ingest subcommand's argument checks). */
#include "harness.h"
#include "ingest.h"
#include "local_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sqlite3.h>

#define TWO_ENTRIES \
	"[{\"TraceID\":\"req-1\",\"Op\":\"Exec\",\"Query\":\"INSERT INTO t VALUES (1)\"," \
	"\"DurationUs\":120,\"Error\":\"\",\"Timestamp\":1700000000000001,\"Pid\":77}," \
	"null," \
	"{\"traceid\":\"\",\"op\":\"Query\",\"query\":\"SELECT * FROM t\",\"durationus\":5," \
	"\"error\":\"no such table: t\",\"timestamp\":1700000000000002,\"Extra\":[1,{}]}]"

static char tmpdir[64];

/* ---- a tiny HTTP client ------------------------------------------------- */

struct http_reply {
	long status;
	char headers[2048];
	size_t hlen;
	char body[512];
	size_t blen;
};

static size_t on_header(char *d, size_t sz, size_t n, void *ctx)
{
	struct http_reply *r = ctx;
	size_t k = sz * n, room = sizeof(r->headers) - 1 - r->hlen;

	memcpy(r->headers + r->hlen, d, k < room ? k : room);
	r->hlen += k < room ? k : room;
	r->headers[r->hlen] = '\0';
	return k;
}

static size_t on_body(char *d, size_t sz, size_t n, void *ctx)
{
	struct http_reply *r = ctx;
	size_t k = sz * n, room = sizeof(r->body) - 1 - r->blen;

	memcpy(r->body + r->blen, d, k < room ? k : room);
	r->blen += k < room ? k : room;
	r->body[r->blen] = '\0';
	return k;
}

struct chunked_src {
	size_t left;
};

static size_t read_zeros(char *buf, size_t sz, size_t n, void *ctx)
{
	struct chunked_src *c = ctx;
	size_t k = sz * n < c->left ? sz * n : c->left;

	memset(buf, ' ', k);
	c->left -= k;
	return k;
}

/* Sends one request; body NULL means no body; chunked_len > 0 sends that
 * many bytes with chunked encoding instead. Returns false on a transport
 * error. */
static bool request(const char *method, uint16_t port, const char *path, const char *body,
		    size_t chunked_len, const char *auth, struct http_reply *out)
{
	char url[256];
	struct curl_slist *h = NULL;
	struct chunked_src src = { chunked_len };
	CURL *c = curl_easy_init();
	CURLcode cc;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	h = curl_slist_append(h, "Content-Type: application/json");
	if (auth)
		h = curl_slist_append(h, auth);
	if (chunked_len) {
		h = curl_slist_append(h, "Transfer-Encoding: chunked");
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_zeros);
		curl_easy_setopt(c, CURLOPT_READDATA, &src);
	} else if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (cc != CURLE_OK)
		printf("    curl: %s\n", curl_easy_strerror(cc));
	return cc == CURLE_OK;
}

static bool has_header(const struct http_reply *r, const char *line)
{
	return strcasestr(r->headers, line) != NULL;
}

/* ---- a recorder whose sink can be made to block --------------------------- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool block;
	size_t written;
	unsigned delay_ms;  /* each write takes this long */
	int fail;           /* each write fails with this */
	bool in_write;
};

static int gate_write(void *ctx, struct st_entry *const *batch, size_t n)
{
	struct gate *g = ctx;
	int ret;

	(void)batch;
	pthread_mutex_lock(&g->mu);
	g->in_write = true;
	pthread_cond_broadcast(&g->cond);
	while (g->block)
		pthread_cond_wait(&g->cond, &g->mu);
	pthread_mutex_unlock(&g->mu);
	if (g->delay_ms)
		usleep(g->delay_ms * 1000);
	pthread_mutex_lock(&g->mu);
	ret = g->fail;
	if (!ret)
		g->written += n;
	g->in_write = false;
	pthread_mutex_unlock(&g->mu);
	return ret;
}

static size_t gate_written(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	size_t n = g->written;
	pthread_mutex_unlock(&g->mu);
	return n;
}

static void gate_wait_in_write(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->in_write)
		pthread_cond_wait(&g->cond, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

#define GATE_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, 0, false }

static void gate_close(void *ctx)
{
	(void)ctx;
}

static const struct sink_ops gate_sink = { "gate", gate_write, gate_close };

static void gate_set(struct gate *g, bool block)
{
	pthread_mutex_lock(&g->mu);
	g->block = block;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
}

/* ---- fixtures --------------------------------------------------------------- */

struct fixture {
	struct recorder *rec;
	struct ingest_server *srv;
	uint16_t port;
	char db[128];
};

static bool start_local(struct fixture *f, const char *token)
{
	struct ingest_opts o = { .listen = "127.0.0.1:0", .token = token, .timeout_s = 2 };
	char err[256];

	snprintf(f->db, sizeof(f->db), "%s/traces-%d.db", tmpdir, rand());
	f->rec = local_store__open(f->db, NULL, err, sizeof(err));
	if (!f->rec) {
		printf("    %s\n", err);
		return false;
	}
	f->srv = ingest_server__start(&o, f->rec, err, sizeof(err));
	if (!f->srv) {
		printf("    %s\n", err);
		recorder__close(f->rec);
		return false;
	}
	f->port = ingest_server__port(f->srv);
	return f->port != 0;
}

static void stop(struct fixture *f)
{
	ingest_server__stop(f->srv);
	recorder__close(f->rec);
}

/* ---- tests -------------------------------------------------------------------- */

static bool test_two_entries_written(void)
{
	struct fixture f;
	struct http_reply r;
	sqlite3 *db;
	sqlite3_stmt *st;
	int rows = 0;

	ASSERT_TRUE(start_local(&f, NULL));
	ASSERT_TRUE(request("POST", f.port, "/api/internal/traces", TWO_ENTRIES, 0, NULL, &r));
	stop(&f);
	ASSERT_EQ_INT(r.status, 204);
	ASSERT_EQ_INT(r.blen, 0);

	ASSERT_EQ_INT(sqlite3_open(f.db, &db), SQLITE_OK);
	ASSERT_EQ_INT(sqlite3_prepare_v2(db, "SELECT trace_id, op, query, duration_us, error, "
					 "timestamp, pid FROM sql_traces ORDER BY id", -1, &st,
					 NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *tid = (const char *)sqlite3_column_text(st, 0);

		if (rows == 0) {
			ASSERT_EQ_STR(tid, "req-1");
			ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 1), "Exec");
			ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 2), "INSERT INTO t VALUES (1)");
			ASSERT_EQ_INT(sqlite3_column_int64(st, 3), 120);
			ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 4), "");
			ASSERT_EQ_INT(sqlite3_column_int64(st, 5), 1700000000000001LL);
			ASSERT_EQ_INT(sqlite3_column_int64(st, 6), 77);
		} else {
			ASSERT_EQ_STR(tid, "");
			ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 1), "Query");
			ASSERT_EQ_STR((const char *)sqlite3_column_text(st, 4), "no such table: t");
			ASSERT_EQ_INT(sqlite3_column_type(st, 6), SQLITE_NULL);
		}
		rows++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	ASSERT_EQ_INT(rows, 2);
	return true;
}

static bool test_get_is_405_with_allow(void)
{
	struct fixture f;
	struct http_reply r;

	ASSERT_TRUE(start_local(&f, NULL));
	bool ok = request("GET", f.port, "/api/internal/traces", NULL, 0, NULL, &r);
	stop(&f);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r.status, 405);
	ASSERT_TRUE(has_header(&r, "\nAllow: POST"));
	return true;
}

static bool test_not_json_is_400_with_reason(void)
{
	struct fixture f;
	struct http_reply r1, r2, r3;

	ASSERT_TRUE(start_local(&f, NULL));
	bool ok = request("POST", f.port, "/api/internal/traces", "not json", 0, NULL, &r1) &&
		  request("POST", f.port, "/api/internal/traces", "[{\"DurationUs\":1.5}]", 0,
			  NULL, &r2) &&
		  request("POST", f.port, "/api/internal/traces", "[{\"Op\":\"Exec\"}] ", 0, NULL,
			  &r3);
	stop(&f);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r1.status, 400);
	ASSERT_TRUE(strstr(r1.body, "invalid JSON") != NULL);
	ASSERT_TRUE(has_header(&r1, "Content-Type: text/plain"));
	ASSERT_EQ_INT(r2.status, 400);
	ASSERT_TRUE(strstr(r2.body, "DurationUs") != NULL);
	ASSERT_EQ_INT(r3.status, 204); /* the server still works after errors */
	return true;
}

static bool test_empty_array_is_204(void)
{
	struct fixture f;
	struct http_reply r;

	ASSERT_TRUE(start_local(&f, NULL));
	bool ok = request("POST", f.port, "/api/internal/traces", "[]", 0, NULL, &r);
	stop(&f);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r.status, 204);
	return true;
}

static bool test_body_over_limit_is_413(void)
{
	size_t big = 2u << 20;
	char *body = malloc(big + 1);
	struct fixture f;
	struct http_reply r1, r2;
	bool ok;

	ASSERT_TRUE(body);
	memset(body, ' ', big);
	body[0] = '[';
	body[big - 1] = ']';
	body[big] = '\0';
	if (!start_local(&f, NULL)) {
		free(body);
		return false;
	}
	ok = request("POST", f.port, "/api/internal/traces", body, 0, NULL, &r1) &&
	     request("POST", f.port, "/api/internal/traces", NULL, big, NULL, &r2);
	stop(&f);
	free(body);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r1.status, 413); /* declared by Content-Length */
	ASSERT_EQ_INT(r2.status, 413); /* chunked: found while reading */
	return true;
}

static bool test_unknown_path_is_404(void)
{
	struct fixture f;
	struct http_reply r1, r2;

	ASSERT_TRUE(start_local(&f, NULL));
	bool ok = request("POST", f.port, "/other", "[]", 0, NULL, &r1) &&
		  request("POST", f.port, "/api/internal/traces/", "[]", 0, NULL, &r2);
	stop(&f);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r1.status, 404);
	ASSERT_EQ_INT(r2.status, 404);
	return true;
}

static bool test_token_required(void)
{
	struct fixture f;
	struct http_reply r1, r2, r3, r4;

	ASSERT_TRUE(start_local(&f, "s3cret-token"));
	bool ok = request("POST", f.port, "/api/internal/traces", "[]", 0, NULL, &r1) &&
		  request("POST", f.port, "/api/internal/traces", "[]", 0,
			  "Authorization: Bearer s3cret-tokeX", &r2) &&
		  request("POST", f.port, "/api/internal/traces", "[]", 0,
			  "Authorization: Bearer s3cret-token", &r3) &&
		  request("POST", f.port, "/api/internal/traces", "[]", 0,
			  "Authorization: Bearer s3cret-token-longer", &r4);
	stop(&f);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r1.status, 401);
	ASSERT_TRUE(has_header(&r1, "WWW-Authenticate: Bearer"));
	ASSERT_EQ_INT(r2.status, 401);
	ASSERT_EQ_INT(r3.status, 204);
	ASSERT_EQ_INT(r4.status, 401);
	return true;
}

/* A batch of n empty entries: "[{},{},...]". */
static char *empty_entries(size_t n)
{
	char *b = malloc(3 * n + 3);
	size_t k = 0;

	if (!b)
		abort();
	b[k++] = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			b[k++] = ',';
		b[k++] = '{';
		b[k++] = '}';
	}
	b[k++] = ']';
	b[k] = '\0';
	return b;
}

struct post_arg {
	uint16_t port;
	const char *body;
	struct http_reply r;
	size_t written_at_reply;
	struct gate *g;
	bool ok;
};

static void *post_thread(void *arg)
{
	struct post_arg *a = arg;

	a->ok = request("POST", a->port, "/api/internal/traces", a->body, 0, NULL, &a->r);
	if (a->g)
		a->written_at_reply = gate_written(a->g);
	return NULL;
}

/* 204 means written: the reply comes after the sink has the entries. */
static bool test_204_only_once_written(void)
{
	struct gate g = GATE_INIT;
	struct batch_opts bo = { .queue_size = 16, .batch_size = 8, .flush_interval_ms = 1000 };
	struct ingest_opts o = { .listen = "127.0.0.1:0", .queue_size = 16 };
	struct recorder *rec;
	struct ingest_server *srv;
	struct http_reply r;
	size_t at_reply;
	char err[256];
	bool ok;

	g.delay_ms = 300;
	rec = recorder__new(&bo, &gate_sink, &g);
	ASSERT_TRUE(rec);
	srv = ingest_server__start(&o, rec, err, sizeof(err));
	ASSERT_TRUE(srv);
	ok = request("POST", ingest_server__port(srv), "/api/internal/traces",
		     "[{\"Op\":\"a\"},{\"Op\":\"b\"},{\"Op\":\"c\"}]", 0, NULL, &r);
	at_reply = gate_written(&g);
	ingest_server__stop(srv);
	recorder__close(rec);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r.status, 204);
	ASSERT_EQ_INT(at_reply, 3);
	return true;
}

/* A full queue and a stuck sink: a batch that cannot be stored in time is
 * answered 503 with Retry-After and taken back (never written later); the
 * one inside the stuck write is answered 204 once the write ends; a batch
 * larger than the queue is stored in parts. */
static bool test_queue_full_is_503_and_taken_back(void)
{
	struct gate g = GATE_INIT;
	struct batch_opts bo = { .queue_size = 4, .batch_size = 1, .flush_interval_ms = 10 };
	struct ingest_opts o = { .listen = "127.0.0.1:0", .queue_size = 4, .store_wait_ms = 2000 };
	struct recorder *rec;
	struct ingest_server *srv;
	struct post_arg a1 = { 0 };
	struct http_reply r2, r3;
	struct recorder_stats st;
	pthread_t th;
	char err[256];
	bool ok;

	g.block = true;
	rec = recorder__new(&bo, &gate_sink, &g);
	ASSERT_TRUE(rec);
	srv = ingest_server__start(&o, rec, err, sizeof(err));
	ASSERT_TRUE(srv);
	a1.port = ingest_server__port(srv);
	a1.body = "[{\"Op\":\"a\"}]";
	ASSERT_EQ_INT(pthread_create(&th, NULL, post_thread, &a1), 0);
	gate_wait_in_write(&g);   /* "a" is inside a write that does not end */
	/* three fit in the queue but are not written within 2 s: refused */
	ok = request("POST", a1.port, "/api/internal/traces",
		     "[{\"Op\":\"b\"},{\"Op\":\"c\"},{\"Op\":\"d\"}]", 0, NULL, &r2);
	gate_set(&g, false);      /* "a" is written, within its second wait */
	pthread_join(th, NULL);
	/* more entries than the queue holds: queued in parts */
	ok = ok && request("POST", a1.port, "/api/internal/traces", "[{},{},{},{},{},{},{}]", 0,
			   NULL, &r3);
	ingest_server__stop(srv);
	recorder__close_stats(rec, &st);
	ASSERT_TRUE(ok && a1.ok);
	ASSERT_EQ_INT(r2.status, 503);
	ASSERT_TRUE(has_header(&r2, "\nRetry-After: 1"));
	ASSERT_EQ_INT(a1.r.status, 204);
	ASSERT_EQ_INT(r3.status, 204);
	ASSERT_EQ_INT(st.cancelled, 3);
	ASSERT_EQ_INT(st.dropped, 0);
	ASSERT_EQ_INT(g.written, 8);
	return true;
}

/* A sink whose writes fail (a full disk): 503, nothing kept. */
static bool test_failing_store_is_503(void)
{
	struct gate g = GATE_INIT;
	struct batch_opts bo = { .queue_size = 64, .batch_size = 8, .flush_interval_ms = 1000 };
	struct ingest_opts o = { .listen = "127.0.0.1:0", .queue_size = 64, .store_wait_ms = 300 };
	struct recorder *rec;
	struct ingest_server *srv;
	struct http_reply r1, r2;
	struct recorder_stats st;
	char err[256];
	bool ok;

	g.fail = -ENOSPC;
	rec = recorder__new(&bo, &gate_sink, &g);
	ASSERT_TRUE(rec);
	srv = ingest_server__start(&o, rec, err, sizeof(err));
	ASSERT_TRUE(srv);
	ok = request("POST", ingest_server__port(srv), "/api/internal/traces", "[{},{}]", 0, NULL,
		     &r1) &&
	     request("POST", ingest_server__port(srv), "/api/internal/traces", "[{}]", 0, NULL, &r2);
	ingest_server__stop(srv);
	ASSERT_EQ_INT(recorder__close_stats(rec, &st), 0);  /* nothing left to lose */
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r1.status, 503);
	ASSERT_TRUE(has_header(&r1, "\nRetry-After: 1"));
	ASSERT_EQ_INT(r2.status, 503);
	ASSERT_EQ_INT(st.cancelled, 3);
	ASSERT_EQ_INT(st.written, 0);
	ASSERT_EQ_INT(st.lost, 0);
	return true;
}

/* Issue 11 item 8: a batch near the queue size is not refused because
 * something is pending; it waits for room while the store makes progress. */
static bool test_batch_near_queue_size_waits_for_room(void)
{
	struct gate g = GATE_INIT;
	struct batch_opts bo = { .queue_size = 1024, .batch_size = 64, .flush_interval_ms = 1000 };
	struct ingest_opts o = { .listen = "127.0.0.1:0", .queue_size = 1024 };
	struct recorder *rec;
	struct ingest_server *srv;
	struct post_arg a1 = { 0 };
	struct http_reply r2;
	pthread_t th;
	char err[256], *small = empty_entries(100), *big = empty_entries(1000);
	bool ok;

	g.delay_ms = 150;
	rec = recorder__new(&bo, &gate_sink, &g);
	ASSERT_TRUE(rec);
	srv = ingest_server__start(&o, rec, err, sizeof(err));
	ASSERT_TRUE(srv);
	a1.port = ingest_server__port(srv);
	a1.body = small;
	ASSERT_EQ_INT(pthread_create(&th, NULL, post_thread, &a1), 0);
	gate_wait_in_write(&g);   /* 64 being written, 36 pending */
	ok = request("POST", a1.port, "/api/internal/traces", big, 0, NULL, &r2);
	pthread_join(th, NULL);
	ingest_server__stop(srv);
	recorder__close(rec);
	free(small);
	free(big);
	ASSERT_TRUE(ok && a1.ok);
	ASSERT_EQ_INT(a1.r.status, 204);
	ASSERT_EQ_INT(r2.status, 204);
	ASSERT_EQ_INT(g.written, 1100);
	return true;
}

/* Waiting batches and bodies share a memory budget: past it, a batch is
 * answered 503 at once, unless nothing else waits. */
static bool test_memory_budget_is_503_busy(void)
{
	struct gate g = GATE_INIT;
	struct batch_opts bo = { .queue_size = 8192, .batch_size = 64, .flush_interval_ms = 10 };
	struct ingest_opts o = { .listen = "127.0.0.1:0", .queue_size = 8192, .max_body = 16384,
				 .mem_budget = 48 << 10 };
	struct recorder *rec;
	struct ingest_server *srv;
	struct post_arg a1 = { 0 };
	struct http_reply r2, r3;
	pthread_t th;
	char err[256], *big = empty_entries(5000);   /* 15 KB: 5000 x 64 B decoded */
	bool ok;

	g.block = true;
	rec = recorder__new(&bo, &gate_sink, &g);
	ASSERT_TRUE(rec);
	srv = ingest_server__start(&o, rec, err, sizeof(err));
	ASSERT_TRUE(srv);
	a1.port = ingest_server__port(srv);
	a1.body = "[{\"Op\":\"a\"}]";
	ASSERT_EQ_INT(pthread_create(&th, NULL, post_thread, &a1), 0);
	gate_wait_in_write(&g);   /* "a" waits for its write */
	ok = request("POST", a1.port, "/api/internal/traces", big, 0, NULL, &r2);
	gate_set(&g, false);
	pthread_join(th, NULL);
	/* nothing else waits now: the same batch goes through */
	ok = ok && request("POST", a1.port, "/api/internal/traces", big, 0, NULL, &r3);
	ingest_server__stop(srv);
	recorder__close(rec);
	free(big);
	ASSERT_TRUE(ok && a1.ok);
	ASSERT_EQ_INT(r2.status, 503);
	ASSERT_TRUE(has_header(&r2, "\nRetry-After: 1"));
	ASSERT_TRUE(strstr(r2.body, "busy") != NULL);
	ASSERT_EQ_INT(a1.r.status, 204);
	ASSERT_EQ_INT(r3.status, 204);
	ASSERT_EQ_INT(g.written, 5001);
	return true;
}

/* A legal 1 MiB body of the smallest entries (349,525 of them, 341 times
 * the queue) is stored whole on an idle server. */
static bool test_1mib_body_of_tiny_entries_stored(void)
{
	struct fixture f;
	struct http_reply r;
	size_t n = ((1 << 20) - 1) / 3;
	char *body = empty_entries(n);
	sqlite3 *db;
	sqlite3_stmt *st;
	long long rows = -1;
	bool ok;

	ASSERT_EQ_INT(strlen(body), 1 << 20);
	ASSERT_TRUE(start_local(&f, NULL));
	ok = request("POST", f.port, "/api/internal/traces", body, 0, NULL, &r);
	stop(&f);
	free(body);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(r.status, 204);
	ASSERT_EQ_INT(sqlite3_open(f.db, &db), SQLITE_OK);
	ASSERT_EQ_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM sql_traces", -1, &st, NULL),
		      SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		rows = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	ASSERT_EQ_INT(rows, (long long)n);
	return true;
}

static bool test_room_frees_up_within_wait(void)
{
	struct gate g = GATE_INIT;
	struct batch_opts bo = { .queue_size = 8, .batch_size = 8, .flush_interval_ms = 1 };
	struct ingest_opts o = { .listen = "[::1]:0", .queue_size = 8, .store_wait_ms = 2000 };
	struct recorder *rec = recorder__new(&bo, &gate_sink, &g);
	struct ingest_server *srv;
	struct http_reply r;
	char err[256], body[256] = "[";
	bool ok = true;

	ASSERT_TRUE(rec);
	srv = ingest_server__start(&o, rec, err, sizeof(err));
	if (!srv) {
		recorder__close(rec);
		SKIP("no IPv6 loopback here");
	}
	for (int i = 0; i < 8; i++)
		strcat(body, i ? ",{}" : "{}");
	strcat(body, "]");
	/* a full queue each time: every batch waits for the writer, none is refused */
	for (int i = 0; ok && i < 20; i++) {
		char url[64];
		CURL *c = curl_easy_init();

		snprintf(url, sizeof(url), "http://[::1]:%u/api/internal/traces",
			 ingest_server__port(srv));
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		ok = curl_easy_perform(c) == CURLE_OK;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
		curl_easy_cleanup(c);
		ok = ok && r.status == 204;
	}
	ingest_server__stop(srv);
	recorder__close(rec);
	ASSERT_TRUE(ok);
	ASSERT_EQ_INT(g.written, 160);
	return true;
}

static bool test_listen_address_checks(void)
{
	struct ingest_opts o = { .listen = "127.0.0.1" };
	char err[256];

	ASSERT_TRUE(ingest_server__start(&o, NULL, err, sizeof(err)) == NULL);
	ASSERT_TRUE(strstr(err, "invalid --listen '127.0.0.1'") != NULL);
	o.listen = "[::1:80";
	ASSERT_TRUE(ingest_server__start(&o, NULL, err, sizeof(err)) == NULL);
	o.listen = "127.0.0.1:70000";
	ASSERT_TRUE(ingest_server__start(&o, NULL, err, sizeof(err)) == NULL);
	o.listen = "example.com:80";
	ASSERT_TRUE(ingest_server__start(&o, NULL, err, sizeof(err)) == NULL);
	return true;
}

static bool test_subcommand_usage_errors(void)
{
	char *help[] = { "ingest", "--help", NULL };
	char *bad1[] = { "ingest", "--queue-size", "0", NULL };
	char *bad2[] = { "ingest", "--batch-size", "100", "--queue-size", "10", NULL };
	char *bad3[] = { "ingest", "--bogus", NULL };
	char *bad4[] = { "ingest", "--timeout", "fast", NULL };
	char *bad5[] = { "ingest", "--token-file", "/nonexistent/token", NULL };
	char *bad6[] = { "ingest", "--store-wait", "soon", NULL };
	char *bad7[] = { "ingest", "--max-per-ip", "0", NULL };
	char *bad8[] = { "ingest", "--head-timeout", "10ms", NULL };
	char *bad9[] = { "ingest", "--body-timeout", "2h", NULL };
	FILE *saved = stdout;

	/* --help prints to stdout: keep the test output readable */
	stdout = fopen("/dev/null", "w");
	int rc = ingest__main(2, help);
	fclose(stdout);
	stdout = saved;
	ASSERT_EQ_INT(rc, 0);
	ASSERT_EQ_INT(ingest__main(3, bad1), 2);
	ASSERT_EQ_INT(ingest__main(5, bad2), 2);
	ASSERT_EQ_INT(ingest__main(2, bad3), 2);
	ASSERT_EQ_INT(ingest__main(3, bad4), 2);
	ASSERT_EQ_INT(ingest__main(3, bad5), 1);
	ASSERT_EQ_INT(ingest__main(3, bad6), 2);
	ASSERT_EQ_INT(ingest__main(3, bad7), 2);
	ASSERT_EQ_INT(ingest__main(3, bad8), 2);
	ASSERT_EQ_INT(ingest__main(3, bad9), 2);
	return true;
}

int main(void)
{
	char cmd[128];

	harness_skip_reason = ""; /* see test_batcher.c: gcc -O2 and RUN's %s */
	strcpy(tmpdir, "/tmp/test_ingest.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	srand((unsigned)getpid());
	curl_global_init(CURL_GLOBAL_DEFAULT);
	RUN(test_two_entries_written);
	RUN(test_get_is_405_with_allow);
	RUN(test_not_json_is_400_with_reason);
	RUN(test_empty_array_is_204);
	RUN(test_body_over_limit_is_413);
	RUN(test_unknown_path_is_404);
	RUN(test_token_required);
	RUN(test_204_only_once_written);
	RUN(test_queue_full_is_503_and_taken_back);
	RUN(test_failing_store_is_503);
	RUN(test_batch_near_queue_size_waits_for_room);
	RUN(test_1mib_body_of_tiny_entries_stored);
	RUN(test_memory_budget_is_503_busy);
	RUN(test_room_frees_up_within_wait);
	RUN(test_listen_address_checks);
	RUN(test_subcommand_usage_errors);
	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("cannot remove %s\n", tmpdir);
	return harness_done();
}
