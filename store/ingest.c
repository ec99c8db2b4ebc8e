/* ingest.c — the ingest server on libmicrohttpd (see ingest.h), and the
 * `sqltrace-bpf ingest` subcommand around it.
 *
 * DESIGN
 * ------
 *
 * Threads. libmicrohttpd runs a pool of two epoll threads; each request is
 * handled on the thread that owns its connection: the access handler is
 * called once with the headers (path, method, token and a declared
 * Content-Length are checked there, so a refused request never sends its
 * body), then with each piece of the body, then once more at the end, when
 * the batch is decoded. No handler ever blocks: a slow client, or a slow
 * store, holds only its own connection. Two more threads: the
 * acknowledger (below) and the connection guard (ingest_guard.c: deadlines
 * for a request's head and body, against slowloris clients). Connections
 * are limited in total and per client address.
 *
 * Body limit. Pieces are kept up to max_body. A larger body declared by
 * Content-Length is refused before it is read; a chunked one is read and
 * discarded up to 4 x max_body (libmicrohttpd cannot answer in the middle
 * of an upload), then answered 413, or cut off beyond that.
 *
 * 204 means stored. The decoded batch goes to a FIFO list and its
 * connection is suspended (MHD_suspend_connection). The acknowledger
 * thread, the recorder's only producer, queues batches in arrival order:
 * one that fits in the queue is queued whole when there is room for all of
 * it (recorder__record_batch), a larger one in parts as room appears; then
 * it waits, through the recorder's sequence numbers, until the entries are
 * written (recorder__flush first: the sender batched already, so nothing
 * waits for the flush interval). Written: 204. The recorder tells it of
 * every step (recorder__set_notify posts a semaphore); it resumes the
 * connection, whose handler then sends the answer.
 *
 * 503 means not stored. A request waits while the store makes progress
 * (the store's written position moves, or its own entries get queued); when
 * it has made none for store_wait_ms, or as soon as a write fails (a full
 * disk: the failed batch holds up everything queued behind it, and the
 * sender had better keep its batch and retry later), the acknowledger
 * takes its entries back (recorder__cancel: those queued and
 * those of a failed write waiting for its retry) and answers 503 with
 * Retry-After, so the sender keeps the batch and nothing is stored twice.
 * Entries inside a write attempt cannot be taken back: the answer then
 * waits for the attempt to end (written: 204; failed: taken back, 503), up
 * to store_wait_ms more; past that (a store stuck inside a write, or a
 * batch split in parts of which some were written) it is 503 anyway, and
 * logged, since the entries may yet be stored. Entries are counted
 * accepted (204) or refused (503) for the stop line.
 *
 * Memory. Waiting requests keep their decoded batches, and connections
 * their bodies, so what all of them hold together is bounded: body buffers
 * and waiting batches (their text plus ENTRY_COST per entry) take from one
 * budget of mem_budget bytes. A body that would overrun it is read and
 * discarded, as one over max_body is, and answered 503; a decoded batch
 * that would overrun it is answered 503 unless nothing else is waiting (so
 * one batch of any legal size always gets through an idle server).
 *
 * Stop. Requests in progress get up to 2 s, then the acknowledger answers
 * what is still waiting (503, entries taken back) and ends, and
 * MHD_stop_daemon() closes the listening socket and what is left and joins
 * the threads; no handler runs after that, so the caller can close the
 * recorder, which drains it. (MHD_quiesce_daemon() is not used: see
 * server_halt.)
 */
#include "ingest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
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

#include "ingest_guard.h"
#include "json.h"
#include "local_store.h"
#include "units.h"
#include "remote_store.h"
#include "slog.h"
#include "strbuf.h"

#define DEF_LISTEN "127.0.0.1:8080"
#define DEF_PATH "/api/internal/traces"
#define DEF_MAX_BODY ((size_t)1 << 20)
#define DEF_MAX_CONN 512
#define DEF_MAX_PER_IP 32
#define DEF_TIMEOUT_S 10
#define DEF_HEAD_TIMEOUT_MS 10000
#define DEF_BODY_TIMEOUT_MS 30000
#define PRESSURE_HEAD_MS 1000     /* head deadline while over half the connections are open */
#define DEF_QUEUE 1024
#define DEF_STORE_WAIT_MS 3000
#define ACK_TICK_MS 1000          /* the acknowledger looks at least this often */
#define DEF_MEM_BUDGET ((size_t)256 << 20)
#define ENTRY_COST 64             /* budget per decoded entry, besides its text */
#define POOL_THREADS 2
#define DISCARD_FACTOR 4          /* chunked bodies read past the limit */
#define STOP_GRACE_MS 2000
#define WARN_PER_SEC 20           /* rejected-request lines per second */

struct req;

struct ingest_server {
	struct MHD_Daemon *d;
	struct recorder *rec;
	struct ingest_guard *guard;
	char *path;
	char *token;
	size_t token_len;
	size_t max_body;
	size_t mem_budget;
	size_t mem_used;            /* atomic: bytes of the budget taken */
	unsigned queue_size, store_wait_ms;
	bool verbose;
	uint16_t port;
	pthread_mutex_t logmu;      /* warning rate limit */
	uint64_t warn_window_ns;
	unsigned warn_in_window;
	uint64_t warn_suppressed;

	/* the acknowledger */
	pthread_mutex_t pmu;        /* guards the list and ack_stop */
	struct req *pend_head, *pend_tail; /* waiting requests, in arrival order */
	bool ack_stop;              /* answer everything 503 and end */
	sem_t wake;                 /* posted on news: a request, store progress, stop */
	pthread_t ack_thread;
	bool ack_started;

	uint64_t requests, rejected;  /* atomics: requests answered, answered >= 400 */
	uint64_t accepted, refused;   /* atomics: entries answered 204, answered 503 */
};

enum req_state { RQ_READING, RQ_WAITING, RQ_ANSWERED };

/* One request's state, from its headers to its completion. While
 * RQ_WAITING, the fields below `conn` belong to the acknowledger. */
struct req {
	char *buf;
	size_t len, cap;
	size_t discarded;
	bool too_big;
	bool busy;                  /* over the memory budget: discarding, then 503 */
	size_t mem;                 /* bytes of the budget it holds */
	uint64_t t0_ns;
	enum req_state state;

	struct MHD_Connection *conn;
	struct st_entry **v;        /* the decoded batch; queued ones are NULL */
	size_t n;
	size_t nq;                  /* entries queued so far (v[0..nq)) */
	size_t ntaken;              /* queued entries taken back */
	uint64_t first_seq, last_seq;
	uint64_t deadline_ns;       /* no progress until then: give up */
	uint64_t seen_done;         /* the store's written position last seen */
	bool giving_up;             /* past the deadline: taking entries back */
	unsigned status;            /* the answer, once RQ_ANSWERED */
	const char *reason;
	struct req *next;
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

/* ---- the memory budget (see DESIGN) ------------------------------------------ */

/* Takes n bytes of the budget for rq. Returns false, taking nothing, when
 * they would overrun it, unless force. */
static bool mem_take(struct ingest_server *s, struct req *rq, size_t n, bool force)
{
	size_t cur = __atomic_load_n(&s->mem_used, __ATOMIC_RELAXED);

	do {
		if (!force && (cur > s->mem_budget || n > s->mem_budget - cur))
			return false;
	} while (!__atomic_compare_exchange_n(&s->mem_used, &cur, cur + n, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	rq->mem += n;
	return true;
}

/* Gives back what rq holds of the budget. */
static void mem_release(struct ingest_server *s, struct req *rq)
{
	__atomic_fetch_sub(&s->mem_used, rq->mem, __ATOMIC_RELAXED);
	rq->mem = 0;
}

/* ---- the acknowledger ---------------------------------------------------- */

/* The recorder's notify callback (writer thread, recorder lock held):
 * only wakes the acknowledger. */
static void on_store_progress(void *arg)
{
	struct ingest_server *s = arg;

	sem_post(&s->wake);
}

/* Sets rq's answer, frees what of its batch was not queued, and counts its
 * entries. Called with s->pmu held; the caller unlinks rq and resumes its
 * connection after releasing s->pmu. */
static void set_answer(struct ingest_server *s, struct req *rq, unsigned status,
		       const char *reason)
{
	rq->status = status;
	rq->reason = reason;
	rq->state = RQ_ANSWERED;
	json__free_batch(rq->v, rq->n);
	rq->v = NULL;
	mem_release(s, rq);
	__atomic_fetch_add(status == 204 ? &s->accepted : &s->refused, rq->n, __ATOMIC_RELAXED);
}

/* Queues what of rq fits now: all of it at once when it can ever fit in the
 * queue, otherwise as much as there is room for. Returns false when the
 * store is closing (rq is then answered). Called with s->pmu held; p->room
 * is updated. */
static bool queue_some(struct ingest_server *s, struct req *rq, struct recorder_progress *p,
		       uint64_t now)
{
	size_t want = rq->n - rq->nq;
	size_t k = rq->n <= s->queue_size ? (p->room >= want ? want : 0)
					   : (p->room < want ? p->room : want);
	uint64_t last;
	int err;

	if (!k)
		return true;
	err = recorder__record_batch(s->rec, rq->v + rq->nq, k, &last);
	if (err == -ENOSPC)  /* the room was not what we were told: look again later */
		return true;
	if (err) {
		set_answer(s, rq, 503, "trace store closing, retry later");
		return false;
	}
	for (size_t i = rq->nq; i < rq->nq + k; i++)
		rq->v[i] = NULL;  /* the recorder's now */
	if (rq->nq == 0)
		rq->first_seq = last - k + 1;
	rq->last_seq = last;
	rq->nq += k;
	p->room -= k;
	rq->deadline_ns = now + (uint64_t)s->store_wait_ms * 1000000ULL;
	return true;
}

/* rq has run out of time (or the server stops): takes back what can be of
 * its entries and answers when that settles it. Called with s->pmu held. */
static void give_up(struct ingest_server *s, struct req *rq, const struct recorder_progress *p,
		    uint64_t now)
{
	if (!rq->giving_up) {
		rq->giving_up = true;
		rq->deadline_ns = now + (uint64_t)s->store_wait_ms * 1000000ULL;
	}
	if (rq->nq == 0) {
		set_answer(s, rq, 503, s->ack_stop ? "ingest server stopping, retry later"
						   : "trace store queue full, retry later");
		return;
	}
	rq->ntaken += recorder__cancel(s->rec, rq->first_seq, rq->last_seq);
	if (rq->ntaken == rq->nq) {
		set_answer(s, rq, 503, s->ack_stop ? "ingest server stopping, retry later"
						   : "trace store too slow or failing, retry later");
		return;
	}
	/* some are written, lost, or inside a write attempt */
	if (p->done >= rq->last_seq && rq->ntaken == 0 && rq->nq == rq->n &&
	    !(p->lost_from && p->lost_from <= rq->last_seq)) {
		set_answer(s, rq, 204, NULL);  /* the attempt it waited for succeeded */
		return;
	}
	if (p->done >= rq->last_seq || s->ack_stop || now >= rq->deadline_ns) {
		log_msg(SLOG_WARN, "ingest answered 503 for a batch partly stored (split over "
			"several writes, or inside a write that does not end): a retry may store "
			"some entries twice", NULL, NULL);
		set_answer(s, rq, 503, "trace store too slow or failing, retry later");
	}
}

/* One look at every waiting request: queue, answer what is settled, give
 * up on what made no progress in time. Answered requests are unlinked and
 * put on *answered. Returns when to look again at the latest. Called with
 * s->pmu held. */
static uint64_t ack_pass(struct ingest_server *s, struct req **answered)
{
	struct recorder_progress p;
	uint64_t now = now_ns(), next = now + ACK_TICK_MS * 1000000ULL;
	bool blocked = false, queued = false;
	struct req **pp = &s->pend_head, *rq, *prev = NULL;

	recorder__progress(s->rec, &p);
	while ((rq = *pp)) {
		if (!rq->giving_up) {
			if (rq->seen_done != p.done) {  /* the store moves: wait on */
				rq->seen_done = p.done;
				rq->deadline_ns = now + (uint64_t)s->store_wait_ms * 1000000ULL;
			}
			if (rq->nq == 0 && p.failing)
				set_answer(s, rq, 503, "trace store cannot write now, retry later");
			else if (rq->nq < rq->n && !blocked) {
				size_t before = rq->nq;

				if (queue_some(s, rq, &p, now) && rq->nq < rq->n)
					blocked = true;  /* later batches wait their turn */
				queued |= rq->nq != before;
			}
			if (rq->state == RQ_WAITING && rq->nq == rq->n && p.done >= rq->last_seq) {
				if (p.lost_from && p.lost_from <= rq->last_seq)
					set_answer(s, rq, 503, "trace store closing, retry later");
				else
					set_answer(s, rq, 204, NULL);
			}
			/* a failed write holds up everything queued: the sender
			 * is better told now than after store_wait_ms */
			if (rq->state == RQ_WAITING &&
			    (s->ack_stop || p.failing || now >= rq->deadline_ns))
				give_up(s, rq, &p, now);
		} else {
			give_up(s, rq, &p, now);
		}
		if (rq->state == RQ_ANSWERED) {
			*pp = rq->next;
			if (s->pend_tail == rq)
				s->pend_tail = prev;
			rq->next = *answered;
			*answered = rq;
			continue;
		}
		if (rq->deadline_ns < next)
			next = rq->deadline_ns;
		prev = rq;
		pp = &rq->next;
	}
	if (queued)
		recorder__flush(s->rec);
	return next;
}

static void *ack_main(void *arg)
{
	struct ingest_server *s = arg;

	for (;;) {
		struct req *answered = NULL;
		uint64_t next;
		bool end;

		pthread_mutex_lock(&s->pmu);
		next = ack_pass(s, &answered);
		end = s->ack_stop && !s->pend_head;
		pthread_mutex_unlock(&s->pmu);
		while (answered) {
			struct req *rq = answered;

			answered = rq->next;   /* rq may be freed once resumed */
			rq->next = NULL;
			MHD_resume_connection(rq->conn);
		}
		if (end)
			break;

		struct timespec ts = {
			.tv_sec = (time_t)(next / 1000000000ULL),
			.tv_nsec = (long)(next % 1000000000ULL),
		};
		while (sem_clockwait(&s->wake, CLOCK_MONOTONIC, &ts) == -1 && errno == EINTR)
			;
		while (sem_trywait(&s->wake) == 0)
			;
	}
	return NULL;
}

/* The end of a request: the whole body is here. */
static enum MHD_Result finish(struct ingest_server *s, struct MHD_Connection *c,
			      const char *method, const char *url, struct req *rq)
{
	struct st_entry **v;
	char reason[200];
	size_t n;
	int rc;

	if (rq->too_big) {
		snprintf(reason, sizeof(reason), "body larger than %zu bytes", s->max_body);
		return reply(s, c, method, url, rq, 413, 0, reason, NULL, NULL);
	}
	if (rq->busy)
		return reply(s, c, method, url, rq, 503, 0, "ingest server busy, retry later",
			     MHD_HTTP_HEADER_RETRY_AFTER, "1");
	rc = json__decode_batch(rq->buf ? rq->buf : "", rq->len, &v, &n, reason, sizeof(reason));
	if (rc == -ENOMEM)
		return reply(s, c, method, url, rq, 503, 0, "out of memory, retry later",
			     MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (rc)
		return reply(s, c, method, url, rq, 400, 0, reason, NULL, NULL);
	if (n == 0) {
		json__free_batch(v, n);
		return reply(s, c, method, url, rq, 204, 0, NULL, NULL, NULL);
	}
	free(rq->buf);  /* decoded: the text is not needed any more */
	rq->buf = NULL;
	rq->cap = 0;
	mem_release(s, rq);

	pthread_mutex_lock(&s->pmu);
	if (s->ack_stop || !mem_take(s, rq, rq->len + n * ENTRY_COST, !s->pend_head)) {
		bool stopping = s->ack_stop;

		pthread_mutex_unlock(&s->pmu);
		json__free_batch(v, n);
		__atomic_fetch_add(&s->refused, n, __ATOMIC_RELAXED);
		return reply(s, c, method, url, rq, 503, n, stopping
			     ? "ingest server stopping, retry later" : "ingest server busy, retry later",
			     MHD_HTTP_HEADER_RETRY_AFTER, "1");
	}
	rq->conn = c;
	rq->v = v;
	rq->n = n;
	rq->state = RQ_WAITING;
	rq->deadline_ns = now_ns() + (uint64_t)s->store_wait_ms * 1000000ULL;
	rq->seen_done = UINT64_MAX;
	ingest_guard__phase(c, GUARD_WAIT);
	/* suspended before the acknowledger can see it, so its resume always
	 * follows this suspend */
	MHD_suspend_connection(c);
	if (s->pend_tail)
		s->pend_tail->next = rq;
	else
		s->pend_head = rq;
	s->pend_tail = rq;
	pthread_mutex_unlock(&s->pmu);
	sem_post(&s->wake);
	return MHD_YES;
}

/* The answer the acknowledger settled on, sent once the connection is
 * resumed. */
static enum MHD_Result send_answer(struct ingest_server *s, struct MHD_Connection *c,
				   const char *method, const char *url, struct req *rq)
{
	if (rq->status == 204)
		return reply(s, c, method, url, rq, 204, rq->n, NULL, NULL, NULL);
	return reply(s, c, method, url, rq, rq->status, rq->n, rq->reason,
		     MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

/* Keeps one piece of the body, or discards it past the limit or the memory
 * budget. Returns false to cut the connection (a body discarded far over
 * the limit, or no memory). */
static bool take_body(struct ingest_server *s, struct req *rq, const char *data, size_t n)
{
	if (!rq->too_big && n > s->max_body - rq->len)
		rq->too_big = true;
	if (!rq->too_big && !rq->busy && rq->len + n > rq->cap) {
		size_t cap = rq->cap ? rq->cap : 16384;
		char *p;

		while (cap < rq->len + n)
			cap *= 2;
		if (cap > s->max_body)
			cap = s->max_body;
		if (!mem_take(s, rq, cap - rq->cap, false)) {
			rq->busy = true;
		} else {
			p = realloc(rq->buf, cap);
			if (!p)
				return false;  /* what it took is given back at completion */
			rq->buf = p;
			rq->cap = cap;
		}
	}
	if (rq->too_big || rq->busy) {
		rq->discarded += n;
		return rq->discarded <= DISCARD_FACTOR * s->max_body;
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
		ingest_guard__phase(c, GUARD_BODY);
		return MHD_YES;
	}
	if (rq->state == RQ_ANSWERED)
		return send_answer(s, c, method, url, rq);
	if (rq->state == RQ_WAITING)  /* not expected: suspended until answered */
		return MHD_YES;
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
	struct ingest_server *s = cls;
	struct req *rq = *con_cls;

	(void)toe;
	if (rq) {
		mem_release(s, rq);
		/* never RQ_WAITING here: a waiting request's connection is
		 * suspended until the acknowledger has answered it */
		json__free_batch(rq->v, rq->n);
		free(rq->buf);
		free(rq);
		*con_cls = NULL;
	}
	ingest_guard__phase(c, GUARD_HEAD);  /* keep-alive: the next head's clock */
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
	ingest_guard__free(s->guard);
	sem_destroy(&s->wake);
	pthread_mutex_destroy(&s->pmu);
	pthread_mutex_destroy(&s->logmu);
	free(s);
}

/* Starts the acknowledger with every signal blocked (SIGINT/SIGTERM stay
 * with the main thread) and hooks it to the recorder. Returns 0 or a
 * positive errno. */
static int start_ack(struct ingest_server *s)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&s->ack_thread, NULL, ack_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return err;
	s->ack_started = true;
	recorder__set_notify(s->rec, on_store_progress, s);
	return 0;
}

/* Answers everything still waiting (503), ends the acknowledger and
 * unhooks it from the recorder. */
static void stop_ack(struct ingest_server *s)
{
	if (!s->ack_started)
		return;
	pthread_mutex_lock(&s->pmu);
	s->ack_stop = true;
	pthread_mutex_unlock(&s->pmu);
	sem_post(&s->wake);
	pthread_join(s->ack_thread, NULL);
	recorder__set_notify(s->rec, NULL, NULL);
	s->ack_started = false;
}

struct ingest_server *ingest_server__start(const struct ingest_opts *o, struct recorder *rec,
					   char *err, size_t errlen)
{
	const char *listen = o->listen ? o->listen : DEF_LISTEN;
	const union MHD_DaemonInfo *di;
	struct sockaddr_storage ss;
	struct ingest_server *s;
	unsigned flags, max_conn;
	socklen_t sl;
	int e;

	if (parse_listen(listen, &ss, &sl)) {
		snprintf(err, errlen, "invalid --listen '%s': expected ADDR:PORT such as "
			 "127.0.0.1:8080 or [::1]:8080", listen);
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || pthread_mutex_init(&s->pmu, NULL) || pthread_mutex_init(&s->logmu, NULL) ||
	    sem_init(&s->wake, 0, 0)) {
		free(s);
		snprintf(err, errlen, "cannot start the ingest server: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->rec = rec;
	s->max_body = o->max_body ? o->max_body : DEF_MAX_BODY;
	s->queue_size = o->queue_size ? o->queue_size : DEF_QUEUE;
	s->store_wait_ms = o->store_wait_ms ? o->store_wait_ms : DEF_STORE_WAIT_MS;
	s->mem_budget = o->mem_budget ? o->mem_budget : DEF_MEM_BUDGET;
	if (s->mem_budget / 2 < s->max_body)  /* room for a largest body at any time */
		s->mem_budget = 2 * s->max_body;
	max_conn = o->max_connections ? o->max_connections : DEF_MAX_CONN;
	struct ingest_guard_opts go = {
		.head_timeout_ms = o->head_timeout_ms ? o->head_timeout_ms : DEF_HEAD_TIMEOUT_MS,
		.body_timeout_ms = o->body_timeout_ms ? o->body_timeout_ms : DEF_BODY_TIMEOUT_MS,
		.pressure_head_ms = PRESSURE_HEAD_MS,
		.max_connections = max_conn,
	};
	s->verbose = o->verbose;
	s->path = strdup(o->path ? o->path : DEF_PATH);
	if (o->token) {
		s->token = strdup(o->token);
		s->token_len = strlen(o->token);
	}
	s->guard = ingest_guard__new(&go);
	if (!s->path || (o->token && !s->token) || !s->guard) {
		server_free(s);
		snprintf(err, errlen, "cannot start the ingest server: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	if ((e = start_ack(s))) {
		server_free(s);
		snprintf(err, errlen, "cannot start the ingest server: %s", strerror(e));
		errno = e;
		return NULL;
	}

	/* epoll threads that never block (see DESIGN): a slow client holds
	 * one connection, not a thread */
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
		MHD_ALLOW_SUSPEND_RESUME;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS,
				MHD_OPTION_CONNECTION_LIMIT, max_conn,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				o->max_per_ip ? o->max_per_ip : (unsigned)DEF_MAX_PER_IP,
				MHD_OPTION_CONNECTION_TIMEOUT,
				o->timeout_s ? o->timeout_s : (unsigned)DEF_TIMEOUT_S,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_NOTIFY_CONNECTION, ingest_guard__notify, s->guard,
				MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
				MHD_OPTION_END);
	if (!s->d) {
		e = errno ? errno : EADDRNOTAVAIL;
		snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(e));
		stop_ack(s);
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

/* Lets requests in progress finish (up to STOP_GRACE_MS),
 * answers those still waiting for the store, then stops the daemon: no
 * handler runs after this returns. */
static void server_halt(struct ingest_server *s)
{
	uint64_t until;

	/* No MHD_quiesce_daemon(): with a thread pool in epoll mode it can
	 * race a worker that took the listening socket out of its epoll set
	 * at the connection limit, and libmicrohttpd then aborts the process
	 * ("Failed to remove listen FD from epoll set"). A request that
	 * arrives during the grace period is answered like the others (503
	 * below if it is still waiting for the store). */
	until = now_ns() + (uint64_t)STOP_GRACE_MS * 1000000ULL;
	while (now_ns() < until) {
		const union MHD_DaemonInfo *di =
			MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		struct timespec ms = { 0, 10000000 };

		if (!di || di->num_connections == 0)
			break;
		nanosleep(&ms, NULL);
	}
	stop_ack(s);  /* before MHD_stop_daemon: no connection stays suspended */
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
"      --max-connections N   concurrent connections (default 512)\n"
"      --max-per-ip N        concurrent connections from one client address\n"
"                            (default 32)\n"
"      --timeout DUR         close a connection idle this long (default 10s)\n"
"      --head-timeout DUR    a request's line and headers must arrive within DUR\n"
"                            of the connection's start or its previous request\n"
"                            (default 10s; 1s while over half of\n"
"                            --max-connections are open)\n"
"      --body-timeout DUR    a request's body must arrive within DUR of its\n"
"                            headers (default 30s)\n"
"      --store-wait DUR      answer 503 when the trace file makes no progress on\n"
"                            a batch for DUR (queue full, writes failing or\n"
"                            stuck; default 3s)\n"
"      --queue-size N        entries queued for the trace file (default 1024;\n"
"                            a larger batch is queued in parts)\n"
"      --batch-size N        entries per write to the trace file (default 64)\n"
"      --flush-interval DUR  no effect, kept for compatibility: each batch received\n"
"                            is written at once (its sender waits for the answer)\n"
"  -v, --verbose             log every request (DEBUG)\n"
"  -h, --help                this help\n"
"\n"
"Replies: 204 written to the trace file (the reply waits for the write), 400 bad\n"
"JSON, 401 bad token, 405 not POST, 413 too large, 503 the trace file cannot\n"
"take it now (queue full, disk full, writes failing; with Retry-After; nothing\n"
"of the batch is kept), 404 other paths. SIGINT/SIGTERM stop accepting, write\n"
"everything queued, print how many entries were accepted, stored and refused,\n"
"and exit 0 (1 when queued entries could not be written).\n"
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
	enum { O_PATH = 256, O_MAXBODY, O_TOKEN, O_MAXCONN, O_TIMEOUT, O_QUEUE, O_BATCH, O_FLUSH,
	       O_PERIP, O_HEAD, O_BODY, O_WAIT };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "path", required_argument, NULL, O_PATH },
		{ "output", required_argument, NULL, 'o' },
		{ "max-body", required_argument, NULL, O_MAXBODY },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "max-connections", required_argument, NULL, O_MAXCONN },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "max-per-ip", required_argument, NULL, O_PERIP },
		{ "head-timeout", required_argument, NULL, O_HEAD },
		{ "body-timeout", required_argument, NULL, O_BODY },
		{ "store-wait", required_argument, NULL, O_WAIT },
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
			if (units__parse_size(optarg, &v) || v < 2 || v > (1LL << 30)) {
				snprintf(err, errlen, "invalid --max-body '%s': expected a size "
					 "between 2 and 1G", optarg);
				return -EINVAL;
			}
			a->srv.max_body = (size_t)v;
			break;
		case O_TOKEN: a->token_file = optarg; break;
		case O_MAXCONN:
		case O_PERIP:
		case O_QUEUE:
		case O_BATCH:
			errno = 0;
			v = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || v < 1 || v > (1 << 24)) {
				snprintf(err, errlen, "invalid --%s '%s': expected 1..16777216",
					 c == O_MAXCONN ? "max-connections" : c == O_PERIP ? "max-per-ip"
					 : c == O_QUEUE ? "queue-size" : "batch-size", optarg);
				return -EINVAL;
			}
			if (c == O_MAXCONN)
				a->srv.max_connections = (unsigned)v;
			else if (c == O_PERIP)
				a->srv.max_per_ip = (unsigned)v;
			else if (c == O_QUEUE)
				a->batch.queue_size = (unsigned)v;
			else
				a->batch.batch_size = (unsigned)v;
			break;
		case O_TIMEOUT:
			if (units__parse_duration(optarg, &v) || v < 1000000 || v > 3600000000LL) {
				snprintf(err, errlen, "invalid --timeout '%s': expected a duration "
					 "between 1s and 1h", optarg);
				return -EINVAL;
			}
			a->srv.timeout_s = (unsigned)(v / 1000000);
			break;
		case O_HEAD:
		case O_BODY:
		case O_WAIT:
			if (units__parse_duration(optarg, &v) || v < 100000 || v > 3600000000LL) {
				snprintf(err, errlen, "invalid --%s '%s': expected a duration between "
					 "100ms and 1h", c == O_HEAD ? "head-timeout" : c == O_BODY
					 ? "body-timeout" : "store-wait", optarg);
				return -EINVAL;
			}
			if (c == O_HEAD)
				a->srv.head_timeout_ms = (unsigned)(v / 1000);
			else if (c == O_BODY)
				a->srv.body_timeout_ms = (unsigned)(v / 1000);
			else
				a->srv.store_wait_ms = (unsigned)(v / 1000);
			break;
		case O_FLUSH:
			if (units__parse_duration(optarg, &v) || v < 1000 || v > 3600000000LL) {
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
		struct recorder_stats st;

		server_halt(srv);
		rc = recorder__close_stats(rec, &st); /* writes everything queued */
		rec = NULL;
		slog__line_begin(&b, rc ? SLOG_WARN : SLOG_INFO, "ingest stopped");
		slog__line_int(&b, "requests", (int64_t)srv->requests);
		slog__line_int(&b, "rejected", (int64_t)srv->rejected);
		slog__line_int(&b, "accepted", (int64_t)srv->accepted);
		slog__line_int(&b, "stored", (int64_t)st.written);
		slog__line_int(&b, "refused", (int64_t)srv->refused);
		if (st.lost)
			slog__line_int(&b, "lost", (int64_t)st.lost);
		slog__line_int(&b, "slow_closed", (int64_t)ingest_guard__closed(srv->guard));
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
