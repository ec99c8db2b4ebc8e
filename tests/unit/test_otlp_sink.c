/* test_otlp_sink.c — the OTLP exporter's delivery (store/otlp_sink.c over
 * store/remote_store.c) against a programmable OTLP/HTTP endpoint of the
 * test's own (libmicrohttpd on 127.0.0.1, bodies gunzipped with zlib and
 * unpacked with protobuf-c), no root needed: Content-Type, gzip, headers
 * from OTEL_EXPORTER_OTLP_HEADERS, retry of 503/429 (exactly once in the
 * end), OTLP's non-retryable statuses dropped and counted, partial success
 * counted, and a collector down at start then up (the spool, files of the
 * OTLP format, delivers everything). tests/e2e/test_otlp.py does the same
 * with a real target and OpenTelemetry's own decoder. */
#include "harness.h"
#include "otlp_sink.h"
#include "trace.pb-c.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

static char tmpdir[64];

struct endpoint {
	struct MHD_Daemon *d;
	uint16_t port;
	pthread_mutex_t mu;
	unsigned fail_first, fail_status; /* answer fail_status to the first ones */
	unsigned fixed_status;            /* != 0: the answer to every request */
	int64_t partial;                  /* > 0: 200 with this many rejected, once */
	unsigned requests, bad;
	uint64_t spans;
	char ctype[64], cenc[32], key[64];
};

struct body {
	char *p;
	size_t len;
};

/* gunzips in[0..n) into a malloc'd buffer; NULL on bad gzip */
static uint8_t *gunzip(const char *in, size_t n, size_t *outlen)
{
	z_stream z = { 0 };
	size_t cap = n * 8 + 1024;
	uint8_t *out = malloc(cap);
	int zr;

	if (!out || inflateInit2(&z, 15 + 16) != Z_OK) {
		free(out);
		return NULL;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	zr = inflate(&z, Z_FINISH);
	*outlen = z.total_out;
	inflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

static enum MHD_Result ep_handle(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *data,
				 size_t *size, void **con_cls)
{
	struct endpoint *ep = cls;
	struct body *b = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = 200;
	const char *h;
	uint8_t reply[64];
	size_t replylen = 0;

	(void)method, (void)version;
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
	if ((h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type")))
		snprintf(ep->ctype, sizeof(ep->ctype), "%s", h);
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
	snprintf(ep->cenc, sizeof(ep->cenc), "%s", h ? h : "");
	if ((h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key")))
		snprintf(ep->key, sizeof(ep->key), "%s", h);
	if (strcmp(url, "/v1/traces")) {
		status = 404;
	} else if (ep->fail_first) {
		ep->fail_first--;
		status = ep->fail_status;
	} else if (ep->fixed_status) {
		status = ep->fixed_status;
	} else {
		size_t len = b->len;
		uint8_t *raw = (uint8_t *)b->p, *unz = NULL;
		Sqltrace__Otlp__ExportTraceServiceRequest *req;

		if (ep->cenc[0])
			raw = unz = gunzip(b->p, b->len, &len);
		req = raw ? sqltrace__otlp__export_trace_service_request__unpack(NULL, len, raw) : NULL;
		if (!req) {
			ep->bad++;
			status = 400;
		}
		for (size_t i = 0; req && i < req->n_resource_spans; i++)
			for (size_t k = 0; k < req->resource_spans[i]->n_scope_spans; k++)
				ep->spans += req->resource_spans[i]->scope_spans[k]->n_spans;
		if (req)
			sqltrace__otlp__export_trace_service_request__free_unpacked(req, NULL);
		free(unz);
		if (req && ep->partial > 0) {
			Sqltrace__Otlp__ExportTraceServiceResponse r =
				SQLTRACE__OTLP__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
			Sqltrace__Otlp__ExportTracePartialSuccess ps =
				SQLTRACE__OTLP__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;

			ps.rejected_spans = ep->partial;
			ps.error_message = "too old";
			r.partial_success = &ps;
			replylen = sqltrace__otlp__export_trace_service_response__pack(&r, reply);
			ep->partial = 0;
		}
	}
	pthread_mutex_unlock(&ep->mu);
	resp = MHD_create_response_from_buffer(replylen, reply, MHD_RESPMEM_MUST_COPY);
	if (status == 429 || status == 503)
		MHD_add_response_header(resp, "Retry-After", "1");
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

static bool ep_up(struct endpoint *ep)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(ep->port) };
	const union MHD_DaemonInfo *di;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ep->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
				 0, NULL, NULL, ep_handle, ep, MHD_OPTION_SOCK_ADDR, &sa,
				 MHD_OPTION_NOTIFY_COMPLETED, ep_done, NULL,
				 MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
	if (!ep->d)
		return false;
	di = MHD_get_daemon_info(ep->d, MHD_DAEMON_INFO_BIND_PORT);
	ep->port = di->port;
	return true;
}

static void ep_free(struct endpoint *ep)
{
	if (ep->d)
		MHD_stop_daemon(ep->d);
	ep->d = NULL;
	pthread_mutex_destroy(&ep->mu);
}

static uint64_t ep_spans(struct endpoint *ep)
{
	uint64_t n;

	pthread_mutex_lock(&ep->mu);
	n = ep->spans;
	pthread_mutex_unlock(&ep->mu);
	return n;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static struct st_entry *mk(size_t i)
{
	struct st_entry *e = entry__new();

	entry__set_str(&e->op, "Exec");
	entry__set_str(&e->query, "UPDATE t SET x = x + 1 WHERE id = 42 AND note = "
		       "'a long enough text that gzip has something to squeeze, squeeze, squeeze'");
	entry__set_str(&e->process, "app");
	e->pid = 1234;
	e->tid = 1234;
	e->duration_us = (int64_t)i;
	e->timestamp_us = 1700000000000000LL + (int64_t)i;
	return e;
}

static const char *env_headers(const char *name)
{
	if (!strcmp(name, "OTEL_EXPORTER_OTLP_HEADERS"))
		return "x-api-key=k%201";
	if (!strcmp(name, "OTEL_EXPORTER_OTLP_COMPRESSION"))
		return "gzip";
	return NULL;
}

static const char *env_none(const char *name)
{
	(void)name;
	return NULL;
}

/* Opens an exporter to ep (spool under tmpdir/name), records n entries,
 * closes; fills st. */
static bool run(struct endpoint *ep, const char *name, size_t n, const char *(*getenv_fn)(const char *),
		struct remote_stats *st, int wait_ms)
{
	char url[64], dir[128], err[256];
	struct otlp_opts o = { .url = url, .spool_dir = dir, .stats = st, .getenv = getenv_fn,
			       .retry_min_ms = 50, .retry_max_ms = 2000, .close_timeout_ms = 5000 };
	struct batch_opts b = { .queue_size = 1024, .batch_size = 16, .flush_interval_ms = 20 };
	struct recorder *r;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ep->port);
	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	r = otlp_sink__open(&o, &b, err, sizeof(err));
	if (!r) {
		printf("    %s\n", err);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (recorder__record(r, mk(i)))
			return false;
	for (int t = 0; t < wait_ms / 10 && ep_spans(ep) < n; t++)
		sleep_ms(10);
	recorder__close(r);
	return true;
}

static bool test_gzip_headers_content_type(void)
{
	struct endpoint ep = { 0 };
	struct remote_stats st;

	pthread_mutex_init(&ep.mu, NULL);
	ASSERT_TRUE(ep_up(&ep));
	ASSERT_TRUE(run(&ep, "gzip", 40, env_headers, &st, 3000));
	ep_free(&ep);
	ASSERT_EQ_INT(ep.spans, 40);
	ASSERT_EQ_INT(ep.bad, 0);
	ASSERT_TRUE(ep.requests >= 3); /* batches of at most 16 */
	ASSERT_EQ_STR(ep.ctype, "application/x-protobuf");
	ASSERT_EQ_STR(ep.cenc, "gzip");
	ASSERT_EQ_STR(ep.key, "k 1");
	ASSERT_EQ_INT(st.sent, 40);
	ASSERT_EQ_INT(st.spooled, 0);
	return true;
}

static bool test_retry_503_429_exactly_once(void)
{
	struct endpoint ep = { .fail_first = 2, .fail_status = 503 };
	struct endpoint ep2 = { .fail_first = 1, .fail_status = 429 };
	struct remote_stats st;
	struct timespec t0, t1;

	pthread_mutex_init(&ep.mu, NULL);
	ASSERT_TRUE(ep_up(&ep));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_TRUE(run(&ep, "r503", 20, env_none, &st, 8000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ep_free(&ep);
	ASSERT_EQ_INT(ep.spans, 20);
	ASSERT_EQ_INT(st.sent, 20);
	ASSERT_EQ_INT(st.failures, 2);
	ASSERT_EQ_INT(st.rejected, 0);
	/* two retries, each at least the Retry-After of 1 s */
	ASSERT_TRUE((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 1900);

	pthread_mutex_init(&ep2.mu, NULL);
	ASSERT_TRUE(ep_up(&ep2));
	ASSERT_TRUE(run(&ep2, "r429", 5, env_none, &st, 5000));
	ep_free(&ep2);
	ASSERT_EQ_INT(ep2.spans, 5);
	ASSERT_EQ_INT(st.sent, 5);
	ASSERT_EQ_INT(st.failures, 1);
	return true;
}

static bool test_not_retryable_dropped(void)
{
	static const unsigned statuses[] = { 400, 401, 404, 413, 500 };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct endpoint ep = { .fixed_status = statuses[i] };
		struct remote_stats st;
		char name[32];

		pthread_mutex_init(&ep.mu, NULL);
		ASSERT_TRUE(ep_up(&ep));
		snprintf(name, sizeof(name), "drop%u", statuses[i]);
		ASSERT_TRUE(run(&ep, name, 10, env_none, &st, 200));
		ep_free(&ep);
		ASSERT_EQ_INT(st.sent, 0);
		ASSERT_EQ_INT(st.rejected, 10);
		ASSERT_EQ_INT(st.spooled, 0);
	}
	return true;
}

static bool test_partial_success_counted(void)
{
	struct endpoint ep = { .partial = 3 };
	struct remote_stats st;

	pthread_mutex_init(&ep.mu, NULL);
	ASSERT_TRUE(ep_up(&ep));
	ASSERT_TRUE(run(&ep, "partial", 16, env_none, &st, 3000));
	ep_free(&ep);
	ASSERT_EQ_INT(ep.spans, 16);
	ASSERT_EQ_INT(st.sent, 13);
	ASSERT_EQ_INT(st.partial_rejected, 3);
	return true;
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), k = strlen(suffix);

		n += l > k && !strcmp(de->d_name + l - k, suffix);
	}
	closedir(d);
	return n;
}

static bool test_down_then_up_spool(void)
{
	struct endpoint ep = { 0 };
	struct remote_stats st;
	char url[64], dir[128], sdir[160], err[256];
	struct otlp_opts o = { .url = url, .spool_dir = dir, .stats = &st, .getenv = env_none,
			       .retry_min_ms = 50, .retry_max_ms = 200, .close_timeout_ms = 5000 };
	struct batch_opts b = { .queue_size = 1024, .batch_size = 8, .flush_interval_ms = 20 };
	struct recorder *r;
	int files;

	pthread_mutex_init(&ep.mu, NULL);
	ASSERT_TRUE(ep_up(&ep));
	ep_free(&ep);   /* its port, now closed */
	pthread_mutex_init(&ep.mu, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ep.port);
	snprintf(dir, sizeof(dir), "%s/down", tmpdir);
	snprintf(sdir, sizeof(sdir), "%s/otlp", dir);
	r = otlp_sink__open(&o, &b, err, sizeof(err));
	ASSERT_TRUE(r != NULL);
	for (size_t i = 0; i < 32; i++)
		ASSERT_EQ_INT(recorder__record(r, mk(i)), 0);
	for (int t = 0; t < 300 && __atomic_load_n(&st.spooled, __ATOMIC_RELAXED) < 32; t++)
		sleep_ms(10);
	files = count_files(sdir, ".pb");
	ASSERT_TRUE(ep_up(&ep));
	for (int t = 0; t < 500 && ep_spans(&ep) < 32; t++)
		sleep_ms(10);
	recorder__close(r);
	ep_free(&ep);
	ASSERT_TRUE(files >= 4); /* at most 8 entries a batch */
	ASSERT_EQ_INT(ep.spans, 32);
	ASSERT_EQ_INT(st.spooled, 32);
	ASSERT_EQ_INT(st.sent, 32);
	ASSERT_EQ_INT(count_files(sdir, ".pb"), 0);
	return true;
}

int main(void)
{
	harness_skip_reason = "";
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_otlp_sink.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_gzip_headers_content_type);
	RUN(test_retry_503_429_exactly_once);
	RUN(test_not_retryable_dropped);
	RUN(test_partial_success_counted);
	RUN(test_down_then_up_spool);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd)) {
			/* left behind: harmless */
		}
	}
	return harness_done();
}
