/* ingest.c — the ingest server on libmicrohttpd (see ingest.h), and the
 * `sqltrace-bpf ingest` subcommand around it.
 *
 * DESIGN
 * ------
 *
 * Threads. libmicrohttpd runs a pool of two epoll threads; each request is
 * handled to the end on the thread that owns its connection: the access
 * handler is called once with the headers (path, method, token and a
 * declared Content-Length are checked there, so a refused request never
 * sends its body), then with each piece of the body, then once more at the
 * end, when the batch is decoded and queued.
 *
 * Body limit. Pieces are kept up to max_body. A larger body declared by
 * Content-Length is refused before it is read; a chunked one is read and
 * discarded up to 4 x max_body (libmicrohttpd cannot answer in the middle
 * of an upload), then answered 413, or cut off beyond that.
 *
 * All or nothing. A batch is queued only when it fits whole: under qmu (so
 * two requests never both count the same free room) the handler waits up to
 * queue_wait_ms in recorder__wait_room() for n free slots (woken as soon as
 * the writer takes entries), and answers 503 if they do not come. The
 * recorder's writer only ever frees slots, so the room seen stays there.
 *
 * Stop. MHD_quiesce_daemon() closes the listening socket, requests in
 * progress get up to 2 s, then MHD_stop_daemon() closes what is left and
 * joins the threads; no handler runs after that, so the caller can close the
 * recorder, which drains it.
 */
#include "ingest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "json.h"
#include "local_store.h"
#include "options.h"
#include "remote_store.h"
#include "slog.h"
#include "strbuf.h"

#define DEF_LISTEN "127.0.0.1:8080"
#define DEF_PATH "/api/internal/traces"
#define DEF_MAX_BODY ((size_t)1 << 20)
#define DEF_MAX_CONN 64
#define DEF_TIMEOUT_S 10
#define DEF_QUEUE 1024
#define DEF_QUEUE_WAIT_MS 100
#define POOL_THREADS 2
#define DISCARD_FACTOR 4          /* chunked bodies read past the limit */
#define STOP_GRACE_MS 2000
#define WARN_PER_SEC 20           /* rejected-request lines per second */

struct ingest_server {
	struct MHD_Daemon *d;
	struct recorder *rec;
	char *path;
	char *token;
	size_t token_len;
	size_t max_body;
	unsigned queue_size, queue_wait_ms;
	bool verbose;
	uint16_t port;
	pthread_mutex_t qmu;        /* one batch queued at a time */
	pthread_mutex_t logmu;      /* warning rate limit */
	uint64_t warn_window_ns;
	unsigned warn_in_window;
	uint64_t warn_suppressed;
	uint64_t requests, entries, rejected; /* atomics */
};

/* One request's state, from its headers to its completion. */
struct req {
	char *buf;
	size_t len, cap;
	size_t discarded;
	bool too_big;
	uint64_t t0_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- logging: slog text lines on stderr ---------------------------------- */


static void log_msg(enum slog_level lvl, const char *msg, const char *key, const char *val)
{
	struct strbuf b = { 0 };

	slog__line_begin(&b, lvl, msg);
	if (key)
		slog__line_str(&b, key, val);
	slog__line_end(&b);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_msg(SLOG_WARN, "microhttpd", "error", line);
}

/* Whether a rejected request may be logged now (at most WARN_PER_SEC lines
 * a second); *suppressed is what was skipped since the last line. */
static bool warn_allowed(struct ingest_server *s, uint64_t *suppressed)
{
	uint64_t now = now_ns();
	bool ok;

	pthread_mutex_lock(&s->logmu);
	if (now - s->warn_window_ns >= 1000000000ULL) {
		s->warn_window_ns = now;
		s->warn_in_window = 0;
	}
	ok = s->warn_in_window < WARN_PER_SEC;
	if (ok) {
		s->warn_in_window++;
		*suppressed = s->warn_suppressed;
		s->warn_suppressed = 0;
	} else {
		s->warn_suppressed++;
	}
	pthread_mutex_unlock(&s->logmu);
	return ok;
}

static void client_addr(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	socklen_t sl = sa && sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						       : sizeof(struct sockaddr_in);
	char host[INET6_ADDRSTRLEN], port[8];

	if (!sa || getnameinfo(sa, sl, host, sizeof(host), port, sizeof(port),
			       NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* The request's log line: DEBUG with -v, WARN for a rejection. */
static void log_request(struct ingest_server *s, struct MHD_Connection *c, const char *method,
			const char *url, unsigned status, size_t entries, const struct req *rq,
			const char *reason)
{
	bool warn = status >= 400;
	uint64_t suppressed = 0;
	struct strbuf b = { 0 };
	char from[INET6_ADDRSTRLEN + 16];

	if (!(warn || s->verbose) || (warn && !warn_allowed(s, &suppressed)))
		return;
	client_addr(c, from, sizeof(from));
	slog__line_begin(&b, warn ? SLOG_WARN : SLOG_DEBUG, warn ? "ingest rejected" : "ingest");
	slog__line_int(&b, "status", status);
	if (reason)
		slog__line_str(&b, "reason", reason);
	slog__line_str(&b, "method", method);
	slog__line_str(&b, "path", url);
	slog__line_str(&b, "remote", from);
	if (rq) {
		slog__line_int(&b, "bytes", (int64_t)(rq->len + rq->discarded));
		slog__line_int(&b, "entries", (int64_t)entries);
		strbuf__puts(&b, " duration=");
		slog__duration(&b, (int64_t)(now_ns() - rq->t0_ns));
	}
	if (suppressed)
		slog__line_int(&b, "suppressed", (int64_t)suppressed);
	slog__line_end(&b);
}

/* ---- replies --------------------------------------------------------------- */

/* Queues a reply: status, a text reason (NULL for none) and an optional
 * extra header. Returns what the access handler returns. */
static enum MHD_Result reply(struct ingest_server *s, struct MHD_Connection *c,
			     const char *method, const char *url, const struct req *rq,
			     unsigned status, size_t entries, const char *reason,
			     const char *hname, const char *hval)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char body[320];
	size_t n = 0;

	if (reason)
		n = (size_t)snprintf(body, sizeof(body), "%s\n", reason);
	if (n >= sizeof(body))
		n = sizeof(body) - 1;
	resp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (reason)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/plain; charset=utf-8");
	if (hname)
		MHD_add_response_header(resp, hname, hval);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	__atomic_fetch_add(&s->requests, 1, __ATOMIC_RELAXED);
	if (status >= 400)
		__atomic_fetch_add(&s->rejected, 1, __ATOMIC_RELAXED);
	log_request(s, c, method, url, status, entries, rq, reason);
	return ret;
}

/* Whether the Authorization header carries the token: the scheme compared
 * as usual (case-insensitive), the token in time that depends only on its
 * expected length. */
static bool auth_ok(const struct ingest_server *s, const char *hdr)
{
	volatile unsigned char diff = 0;
	size_t n;

	if (!hdr || strncasecmp(hdr, "Bearer ", 7) != 0)
		return false;
	hdr += 7;
	while (*hdr == ' ')
		hdr++;
	n = strlen(hdr);
	while (n && (hdr[n - 1] == ' ' || hdr[n - 1] == '\t'))
		n--;
	diff = n != s->token_len;
	for (size_t i = 0; i < s->token_len; i++)
		diff |= (unsigned char)((i < n ? (unsigned char)hdr[i] : 0) ^
					(unsigned char)s->token[i]);
	return diff == 0;
}

/* Queues all of v[0..n) or nothing. Returns the HTTP status (204 or 503)
 * and frees v. */
static unsigned queue_batch(struct ingest_server *s, struct st_entry **v, size_t n,
			    const char **reason)
{
	size_t i, queued = 0;
	unsigned status = 204;

	pthread_mutex_lock(&s->qmu);
	if (!recorder__wait_room(s->rec, n, s->queue_wait_ms)) {
		*reason = "trace store queue full, retry later";
		status = 503;
	}
	for (i = 0; status == 204 && i < n; i++) {
		int err = recorder__record(s->rec, v[i]); /* takes v[i] in every case */

		v[i] = NULL;
		if (err == 0) {
			queued++;
		} else if (queued == 0) {
			/* another producer took the room, or the store is closing:
			 * nothing accepted yet, so the sender may retry all of it */
			*reason = err == -EPIPE ? "trace store closing" : "trace store queue full, retry later";
			status = 503;
		}
	}
	pthread_mutex_unlock(&s->qmu);
	if (queued && queued < n)
		log_msg(SLOG_WARN, "ingest dropped entries: the queue is shared with another producer",
			NULL, NULL);
	__atomic_fetch_add(&s->entries, queued, __ATOMIC_RELAXED);
	json__free_batch(v, n);
	return status;
}

/* The end of a request: the whole body is here. */
static enum MHD_Result finish(struct ingest_server *s, struct MHD_Connection *c,
			      const char *method, const char *url, struct req *rq)
{
	struct st_entry **v;
	char reason[200];
	const char *why = NULL;
	size_t n;
	unsigned status;
	int rc;

	if (rq->too_big) {
		snprintf(reason, sizeof(reason), "body larger than %zu bytes", s->max_body);
		return reply(s, c, method, url, rq, 413, 0, reason, NULL, NULL);
	}
	rc = json__decode_batch(rq->buf ? rq->buf : "", rq->len, &v, &n, reason, sizeof(reason));
	if (rc == -ENOMEM)
		return reply(s, c, method, url, rq, 503, 0, "out of memory, retry later",
			     MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (rc)
		return reply(s, c, method, url, rq, 400, 0, reason, NULL, NULL);
	if (n > s->queue_size) {
		json__free_batch(v, n);
		snprintf(reason, sizeof(reason), "batch of %zu entries exceeds the queue size %u",
			 n, s->queue_size);
		return reply(s, c, method, url, rq, 413, n, reason, NULL, NULL);
	}
	status = n ? queue_batch(s, v, n, &why) : 204;
	if (status != 204)
		return reply(s, c, method, url, rq, status, n, why, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	return reply(s, c, method, url, rq, 204, n, NULL, NULL, NULL);
}

/* Keeps one piece of the body, or discards it past the limit. Returns false
 * to cut the connection (a chunked body far over the limit). */
static bool take_body(struct ingest_server *s, struct req *rq, const char *data, size_t n)
{
	if (!rq->too_big && n > s->max_body - rq->len)
		rq->too_big = true;
	if (rq->too_big) {
		rq->discarded += n;
		return rq->discarded <= DISCARD_FACTOR * s->max_body;
	}
	if (rq->len + n > rq->cap) {
		size_t cap = rq->cap ? rq->cap : 16384;
		char *p;

		while (cap < rq->len + n)
			cap *= 2;
		if (cap > s->max_body)
			cap = s->max_body;
		p = realloc(rq->buf, cap);
		if (!p)
			return false;
		rq->buf = p;
		rq->cap = cap;
	}
	memcpy(rq->buf + rq->len, data, n);
	rq->len += n;
	return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct ingest_server *s = cls;
	struct req *rq = *con_cls;

	(void)version;
	if (!rq) {
		const char *cl;
		char reason[96];

		if (strcmp(url, s->path) != 0)
			return reply(s, c, method, url, NULL, 404, 0, "not found", NULL, NULL);
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return reply(s, c, method, url, NULL, 405, 0, "method not allowed, use POST",
				     MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_POST);
		if (s->token && !auth_ok(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_AUTHORIZATION)))
			return reply(s, c, method, url, NULL, 401, 0, "missing or wrong bearer token",
				     MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > s->max_body) {
			snprintf(reason, sizeof(reason), "body larger than %zu bytes", s->max_body);
			return reply(s, c, method, url, NULL, 413, 0, reason, NULL, NULL);
		}
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->t0_ns = now_ns();
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size) {
		bool ok = take_body(s, rq, upload_data, *upload_data_size);

		*upload_data_size = 0;
		if (!ok)
			log_request(s, c, method, url, 413, 0, rq, "body far over the limit, connection cut");
		return ok ? MHD_YES : MHD_NO;
	}
	return finish(s, c, method, url, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq) {
		free(rq->buf);
		free(rq);
		*con_cls = NULL;
	}
}

/* ---- the server ------------------------------------------------------------- */

/* Parses "ADDR:PORT", "[IPV6]:PORT", "localhost:PORT" or ":PORT" into ss. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *port;
	size_t hl;
	char *end;
	unsigned long p;

	memset(ss, 0, sizeof(*ss));
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - spec - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, spec + 1, hl);
		port = rb + 2;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			return -EINVAL;
		hl = (size_t)(colon - spec);
		memcpy(host, spec, hl);
		port = colon + 1;
	}
	host[hl] = '\0';
	errno = 0;
	p = strtoul(port, &end, 10);
	if (!*port || *end || errno || p > 65535)
		return -EINVAL;
	if (spec[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		*sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		if (!host[0])
			a->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)p);
		*sl = sizeof(*a);
	}
	return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
}

static void server_free(struct ingest_server *s)
{
	if (s->token) {
		explicit_bzero(s->token, s->token_len);
		free(s->token);
	}
	free(s->path);
	pthread_mutex_destroy(&s->qmu);
	pthread_mutex_destroy(&s->logmu);
	free(s);
}

struct ingest_server *ingest_server__start(const struct ingest_opts *o, struct recorder *rec,
					   char *err, size_t errlen)
{
	const char *listen = o->listen ? o->listen : DEF_LISTEN;
	const union MHD_DaemonInfo *di;
	struct sockaddr_storage ss;
	struct ingest_server *s;
	unsigned flags;
	socklen_t sl;
	int e;

	if (parse_listen(listen, &ss, &sl)) {
		snprintf(err, errlen, "invalid --listen '%s': expected ADDR:PORT such as "
			 "127.0.0.1:8080 or [::1]:8080", listen);
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || pthread_mutex_init(&s->qmu, NULL) || pthread_mutex_init(&s->logmu, NULL)) {
		free(s);
		snprintf(err, errlen, "cannot start the ingest server: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->rec = rec;
	s->max_body = o->max_body ? o->max_body : DEF_MAX_BODY;
	s->queue_size = o->queue_size ? o->queue_size : DEF_QUEUE;
	s->queue_wait_ms = o->queue_wait_ms ? o->queue_wait_ms : DEF_QUEUE_WAIT_MS;
	s->verbose = o->verbose;
	s->path = strdup(o->path ? o->path : DEF_PATH);
	if (o->token) {
		s->token = strdup(o->token);
		s->token_len = strlen(o->token);
	}
	if (!s->path || (o->token && !s->token)) {
		server_free(s);
		snprintf(err, errlen, "cannot start the ingest server: out of memory");
		errno = ENOMEM;
		return NULL;
	}

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS,
				MHD_OPTION_CONNECTION_LIMIT,
				o->max_connections ? o->max_connections : (unsigned)DEF_MAX_CONN,
				MHD_OPTION_CONNECTION_TIMEOUT,
				o->timeout_s ? o->timeout_s : (unsigned)DEF_TIMEOUT_S,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
				MHD_OPTION_END);
	if (!s->d) {
		e = errno ? errno : EADDRNOTAVAIL;
		snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(e));
		server_free(s);
		errno = e;
		return NULL;
	}
	di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : 0;
	if (!is_loopback(&ss) && !s->token)
		log_msg(SLOG_WARN, "ingest listening beyond loopback without a token: anyone who "
			"can reach it can write traces (see --token-file)", "listen", listen);
	(void)sl;
	return s;
}

uint16_t ingest_server__port(const struct ingest_server *s)
{
	return s->port;
}

/* Stops accepting, lets requests in progress finish (up to STOP_GRACE_MS),
 * then stops the daemon: no handler runs after this returns. */
static void server_halt(struct ingest_server *s)
{
	uint64_t until;

	MHD_quiesce_daemon(s->d);
	until = now_ns() + (uint64_t)STOP_GRACE_MS * 1000000ULL;
	while (now_ns() < until) {
		const union MHD_DaemonInfo *di =
			MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		struct timespec ms = { 0, 10000000 };

		if (!di || di->num_connections == 0)
			break;
		nanosleep(&ms, NULL);
	}
	MHD_stop_daemon(s->d);
	s->d = NULL;
}

void ingest_server__stop(struct ingest_server *s)
{
	if (!s)
		return;
	server_halt(s);
	server_free(s);
}

/* ---- the subcommand --------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs(
"Usage: sqltrace-bpf ingest [OPTIONS]\n"
"Receive trace batches over HTTP (from `sqltrace-bpf --remote` or the Go\n"
"tracer's RemoteStore) and store them in a local trace file.\n"
"\n"
"  -l, --listen ADDR:PORT    listen here (default 127.0.0.1:8080; [::1]:8080 for\n"
"                            IPv6; anything but loopback only when given here)\n"
"      --path PATH           URL path to accept POSTs on (default /api/internal/traces)\n"
"  -o, --output FILE         trace file (default traces.db)\n"
"      --max-body SIZE       largest request body (default 1M)\n"
"      --token-file FILE     require `Authorization: Bearer TOKEN`, TOKEN read from FILE\n"
"      --max-connections N   concurrent connections (default 64)\n"
"      --timeout DUR         close a connection idle this long (default 10s)\n"
"      --queue-size N        entries queued before answering 503 (default 1024;\n"
"                            keep it several times --batch-size: the batch being\n"
"                            written still counts)\n"
"      --batch-size N        entries per write to the trace file (default 64)\n"
"      --flush-interval DUR  write a partial batch after DUR (default 1s)\n"
"  -v, --verbose             log every request (DEBUG)\n"
"  -h, --help                this help\n"
"\n"
"Replies: 204 stored, 400 bad JSON, 401 bad token, 405 not POST, 413 too large,\n"
"503 queue full (with Retry-After), 404 other paths. SIGINT/SIGTERM stop\n"
"accepting, write everything queued, and exit 0.\n"
"\n"
"Examples:\n"
"  sqltrace-bpf ingest -o /var/lib/traces.db\n"
"  sqltrace-bpf ingest --listen 0.0.0.0:8443 --token-file /etc/sqltrace/token\n"
"  sudo sqltrace-bpf -p 4242 --remote http://127.0.0.1:8080/api/internal/traces\n"
"  curl -X POST --data '[{\"Op\":\"Exec\",\"Query\":\"SELECT 1\"}]' \\\n"
"       http://127.0.0.1:8080/api/internal/traces\n", f);
}

struct ingest_args {
	struct ingest_opts srv;
	const char *output;
	const char *token_file;
	struct batch_opts batch;
};

/* Parses argv. Returns 0, 1 after --help, or -EINVAL with err. */
static int parse_args(int argc, char **argv, struct ingest_args *a, char *err, size_t errlen)
{
	enum { O_PATH = 256, O_MAXBODY, O_TOKEN, O_MAXCONN, O_TIMEOUT, O_QUEUE, O_BATCH, O_FLUSH };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "path", required_argument, NULL, O_PATH },
		{ "output", required_argument, NULL, 'o' },
		{ "max-body", required_argument, NULL, O_MAXBODY },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "max-connections", required_argument, NULL, O_MAXCONN },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "queue-size", required_argument, NULL, O_QUEUE },
		{ "batch-size", required_argument, NULL, O_BATCH },
		{ "flush-interval", required_argument, NULL, O_FLUSH },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->output = "traces.db";
	a->batch = (struct batch_opts)BATCH_OPTS_DEFAULT;
	optind = 0; /* the main command line may have been parsed already */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:o:vh", longopts, NULL)) != -1) {
		int64_t v;
		char *end;

		switch (c) {
		case 'l': a->srv.listen = optarg; break;
		case O_PATH:
			if (optarg[0] != '/') {
				snprintf(err, errlen, "invalid --path '%s': must start with /", optarg);
				return -EINVAL;
			}
			a->srv.path = optarg;
			break;
		case 'o': a->output = optarg; break;
		case O_MAXBODY:
			if (options__parse_size(optarg, &v) || v < 2 || v > (1LL << 30)) {
				snprintf(err, errlen, "invalid --max-body '%s': expected a size "
					 "between 2 and 1G", optarg);
				return -EINVAL;
			}
			a->srv.max_body = (size_t)v;
			break;
		case O_TOKEN: a->token_file = optarg; break;
		case O_MAXCONN:
		case O_QUEUE:
		case O_BATCH:
			errno = 0;
			v = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || v < 1 || v > (1 << 24)) {
				snprintf(err, errlen, "invalid --%s '%s': expected 1..16777216",
					 c == O_MAXCONN ? "max-connections" : c == O_QUEUE ? "queue-size"
											  : "batch-size", optarg);
				return -EINVAL;
			}
			if (c == O_MAXCONN)
				a->srv.max_connections = (unsigned)v;
			else if (c == O_QUEUE)
				a->batch.queue_size = (unsigned)v;
			else
				a->batch.batch_size = (unsigned)v;
			break;
		case O_TIMEOUT:
			if (options__parse_duration(optarg, &v) || v < 1000000 || v > 3600000000LL) {
				snprintf(err, errlen, "invalid --timeout '%s': expected a duration "
					 "between 1s and 1h", optarg);
				return -EINVAL;
			}
			a->srv.timeout_s = (unsigned)(v / 1000000);
			break;
		case O_FLUSH:
			if (options__parse_duration(optarg, &v) || v < 1000 || v > 3600000000LL) {
				snprintf(err, errlen, "invalid --flush-interval '%s': expected a "
					 "duration between 1ms and 1h", optarg);
				return -EINVAL;
			}
			a->batch.flush_interval_ms = (unsigned)(v / 1000);
			break;
		case 'v': a->srv.verbose = true; break;
		case 'h': usage(stdout); return 1;
		case ':':
			snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, errlen, "unknown option %s", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (a->batch.batch_size > a->batch.queue_size) {
		snprintf(err, errlen, "--batch-size %u is larger than --queue-size %u",
			 a->batch.batch_size, a->batch.queue_size);
		return -EINVAL;
	}
	a->srv.queue_size = a->batch.queue_size;
	return 0;
}

int ingest__main(int argc, char **argv)
{
	struct ingest_server *srv = NULL;
	struct recorder *rec = NULL;
	struct ingest_args a;
	struct strbuf b = { 0 };
	sigset_t stop_sigs;
	char err[512], *token = NULL;
	int rc, sig = 0, ret = 1;

	rc = parse_args(argc, argv, &a, err, sizeof(err));
	if (rc) {
		if (rc < 0)
			fprintf(stderr, "sqltrace-bpf ingest: %s (see sqltrace-bpf ingest --help)\n", err);
		return rc > 0 ? 0 : 2;
	}
	if (a.token_file) {
		token = remote_store__read_token(a.token_file, err, sizeof(err));
		if (!token) {
			fprintf(stderr, "sqltrace-bpf ingest: %s\n", err);
			return 1;
		}
		a.srv.token = token;
	}

	/* SIGINT/SIGTERM are taken by sigwait below: block them before any
	 * thread starts, so every thread inherits the mask, and undo an
	 * inherited SIG_IGN (a shell starts background jobs with SIGINT
	 * ignored, and an ignored signal never reaches sigwait) */
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);

	rec = local_store__open(a.output, &a.batch, err, sizeof(err));
	if (!rec) {
		fprintf(stderr, "sqltrace-bpf ingest: %s\n", err);
		goto out;
	}
	srv = ingest_server__start(&a.srv, rec, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "sqltrace-bpf ingest: %s\n", err);
		goto out;
	}
	slog__line_begin(&b, SLOG_INFO, "ingest listening");
	slog__line_str(&b, "listen", a.srv.listen ? a.srv.listen : DEF_LISTEN);
	slog__line_int(&b, "port", ingest_server__port(srv));
	slog__line_str(&b, "path", a.srv.path ? a.srv.path : DEF_PATH);
	slog__line_str(&b, "output", a.output);
	slog__line_str(&b, "token", token ? "required" : "none");
	slog__line_end(&b);

	while (sigwait(&stop_sigs, &sig) == EINTR)
		;
	log_msg(SLOG_INFO, "ingest stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
	ret = 0;
out:
	if (srv) {
		server_halt(srv);
		rc = recorder__close(rec); /* writes everything queued */
		rec = NULL;
		slog__line_begin(&b, rc ? SLOG_WARN : SLOG_INFO, "ingest stopped");
		slog__line_int(&b, "requests", (int64_t)srv->requests);
		slog__line_int(&b, "rejected", (int64_t)srv->rejected);
		slog__line_int(&b, "entries", (int64_t)srv->entries);
		slog__line_str(&b, "output", a.output);
		if (rc)
			slog__line_str(&b, "error", strerror(-rc));
		slog__line_end(&b);
		if (rc)
			ret = 1;
		server_free(srv);
	}
	if (rec)
		recorder__close(rec);
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return ret;
}
