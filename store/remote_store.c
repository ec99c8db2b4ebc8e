/* remote_store.c — the remote sink: POSTs batches to an HTTP endpoint and
 * spools them on disk while it is down (see remote_store.h).
 *
 * DESIGN
 * ------
 *
 * Two threads use the sink. The recorder's writer thread calls
 * remote_write() with each batch; a replay thread of our own sends the spool.
 * They share one libcurl easy handle (one kept-alive connection), used by
 * one of them at a time under http_mu, and the spool index under mu.
 *
 * Order. The writer POSTs a batch directly only when the spool is empty;
 * otherwise, or when that POST fails with a retryable outcome, it appends
 * the batch to the spool. Only the writer appends, and the replay thread
 * only sends the oldest spool file and removes it after its outcome is
 * known, so batches reach the endpoint in the order they were recorded:
 * while anything is spooled, everything newer goes behind it.
 *
 * Backoff. After a failed POST the replay thread waits retry_min_ms, doubling
 * up to retry_max_ms, with ±25% jitter (so many senders do not retry in
 * step), and at least the Retry-After the endpoint asked for. A success
 * resets it.
 *
 * Close. recorder__close() drains the queue through remote_write() (batches
 * go straight to the spool while it is not empty, so draining is quick even
 * when the endpoint is down), then calls remote_close(), which switches the
 * replay thread to its last pass: no backoff, stop at the first failure or at
 * close_timeout_ms. What is left stays on disk for the next open.
 *
 * Memory is bounded by the recorder's queue plus one encoded batch per
 * thread; the spool by spool_max_bytes.
 *
 * Format. What a body is and how an answer is read is the format's
 * (struct remote_format): the Go tracer's JSON by default; the OTLP
 * exporter (otlp_sink.c) brings its encoder, Content-Type, gzip, which
 * statuses are retried, and a reader of 2xx bodies (partial success). The
 * encoder runs on the writer thread only; the reply reader under http_mu.
 * Spool files carry the format's extension, so a run with another format
 * leaves them alone.
 */
#include "remote_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <zlib.h>

#include "json.h"
#include "safefile.h"
#include "slog.h"
#include "strbuf.h"

#define DEF_TIMEOUT_MS 5000
#define DEF_SPOOL_MAX (64LL << 20)
#define DEF_MAX_BODY ((size_t)1 << 20)
#define DEF_RETRY_MIN_MS 1000
#define DEF_RETRY_MAX_MS 30000
#define DEF_CLOSE_MS 5000
#define REPLY_KEEP 200          /* bytes of a rejection reply that are logged */
#define REPLY_MAX 65536         /* bytes of a reply kept for format->read_ok_reply */
#define TOKEN_MAX 4096
#define SPOOL_CREATE (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
#define LOG_EVERY_NS (10 * 1000000000ULL)   /* rate limit of repeated warnings */
#define OUTAGE_LOG_NS (60 * 1000000000ULL)  /* "still unavailable" reminder */

enum post_result { POST_OK, POST_RETRY, POST_REJECTED };

static const struct remote_format default_format = {
	.what = "remote endpoint",
	.content_type = "application/json",
	.spool_ext = "json",
};

struct spool_item {
	uint64_t seq;
	uint64_t bytes;
	uint32_t entries;
};

struct remote {
	/* configuration, fixed after open */
	char *url;
	char *dir;
	int dir_fd, lock_fd;
	int timeout_ms, retry_min_ms, retry_max_ms, close_ms;
	uint64_t spool_max;
	size_t max_body;
	struct remote_stats own_stats, *stats;
	struct remote_format fmt;       /* with the defaults filled in */

	/* HTTP, guarded by http_mu */
	pthread_mutex_t http_mu;
	CURL *curl;
	struct curl_slist *headers;
	char reply[REPLY_MAX + 1];
	size_t reply_len;
	char curl_err[CURL_ERROR_SIZE];

	/* spool and state, guarded by mu */
	pthread_mutex_t mu;
	pthread_cond_t cond;            /* CLOCK_MONOTONIC */
	struct spool_item *items;       /* items[head .. head+count) */
	size_t head, count, cap;
	uint64_t next_seq;
	uint64_t next_attempt_ns;
	uint64_t backoff_ms;
	unsigned rand_state;
	bool closing, stop, close_failed, open_done;
	uint64_t close_deadline_ns;
	bool outage;                    /* a failure is being retried */
	long outage_status;             /* its HTTP status, 0 = transport */
	uint64_t outage_since_ns, outage_logged_ns;
	uint64_t reject_logged_ns, full_logged_ns;
	uint64_t reject_quiet, full_quiet; /* suppressed warnings since */
	pthread_t thread;
	bool thread_started;

	struct json_buf wbody;          /* writer thread only */
	struct json_buf zbody;          /* writer thread only: wbody compressed */
	struct json_buf rbody;          /* replay thread only */
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void stat_add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static void stat_set(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}


static int msleft(uint64_t deadline_ns)
{
	uint64_t now = now_ns();

	return deadline_ns > now ? (int)((deadline_ns - now) / 1000000) + 1 : 0;
}

/* ---- HTTP --------------------------------------------------------------- */

static size_t on_reply(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct remote *r = ctx;
	size_t n = size * nmemb, room = REPLY_MAX - r->reply_len;

	if (room) {
		memcpy(r->reply + r->reply_len, data, n < room ? n : room);
		r->reply_len += n < room ? n : room;
	}
	return n;
}

/* The statuses that say the body itself is wrong, so that sending it again
 * cannot help: the only ones whose batch is dropped. */
static bool is_malformed(long status)
{
	return status == 400 || status == 413 || status == 422;
}

static bool is_auth(long status)
{
	return status == 401 || status == 403;
}

static bool is_retryable(const struct remote *r, long status)
{
	return r->fmt.retryable ? r->fmt.retryable(status) : !is_malformed(status);
}

/* POSTs body (len bytes, entries entries) within timeout_ms. Returns the
 * outcome; *status is the HTTP status (0 on a transport error), why the
 * transport error or the start of the reply (on a 2xx with entries
 * rejected, the endpoint's message), *retry_after_ms what the endpoint asked
 * for (0 if nothing), *partial the entries a 2xx answer says were rejected
 * (format->read_ok_reply). */
static enum post_result post(struct remote *r, const char *body, size_t len, uint32_t entries,
			     int timeout_ms, long *status, char *why, size_t whylen,
			     long *retry_after_ms, uint64_t *partial)
{
	CURLcode cc;
	curl_off_t ra = 0;

	pthread_mutex_lock(&r->http_mu);
	r->reply_len = 0;
	r->curl_err[0] = '\0';
	curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
	cc = curl_easy_perform(r->curl);
	stat_add(&r->stats->requests, 1);
	*status = 0;
	*retry_after_ms = 0;
	*partial = 0;
	if (cc == CURLE_OK) {
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
		if (curl_easy_getinfo(r->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			*retry_after_ms = ra > 3600 ? 3600000 : (long)ra * 1000;
		r->reply[r->reply_len] = '\0';
		snprintf(why, whylen, "%.*s", REPLY_KEEP, r->reply);
		if (*status >= 200 && *status < 300 && r->fmt.read_ok_reply) {
			why[0] = '\0';
			*partial = r->fmt.read_ok_reply(r->fmt.ctx, r->reply, r->reply_len, entries,
							why, whylen);
			if (*partial > entries)
				*partial = entries;
		}
	} else {
		snprintf(why, whylen, "%s", r->curl_err[0] ? r->curl_err : curl_easy_strerror(cc));
	}
	pthread_mutex_unlock(&r->http_mu);

	if (*status >= 200 && *status < 300)
		return POST_OK;
	if (*status && !is_retryable(r, *status))
		return POST_REJECTED;
	/* Anything else may pass once the endpoint (or its configuration,
	 * or our token) is fixed: kept and retried. */
	stat_add(&r->stats->failures, 1);
	if (is_auth(*status))
		stat_add(&r->stats->auth_refused, 1);
	return POST_RETRY;
}

/* ---- outcomes: counters, backoff and logs (call with mu held) ----------- */

/* "<who answers> <rest>" in buf, for a log line. */
static const char *what_msg(const struct remote *r, char *buf, size_t len, const char *rest)
{
	snprintf(buf, len, "%s %s", r->fmt.what, rest);
	return buf;
}

static void note_rejected(struct remote *r, long status, const char *reply, uint32_t entries)
{
	uint64_t now = now_ns();
	struct strbuf b = { 0 };
	char m[160];

	stat_add(&r->stats->rejected, entries);
	if (r->reject_logged_ns && now - r->reject_logged_ns < LOG_EVERY_NS) {
		r->reject_quiet++;
		return;
	}
	slog__line_begin(&b, SLOG_WARN, what_msg(r, m, sizeof(m), r->fmt.retryable ?
			 "rejected a batch, dropped" : "rejected a batch as malformed, dropped"));
	slog__line_str(&b, "url", r->url);
	slog__line_int(&b, "status", status);
	slog__line_int(&b, "entries", entries);
	slog__line_str(&b, "reply", reply);
	if (r->reject_quiet)
		slog__line_int(&b, "rejected_since_last_log", (int64_t)r->reject_quiet);
	slog__line_end(&b);
	r->reject_logged_ns = now;
	r->reject_quiet = 0;
}

static void note_failure(struct remote *r, long status, const char *why, long retry_after_ms)
{
	uint64_t now = now_ns(), delay;
	struct strbuf b = { 0 };
	char m[200];

	/* Logged when the cause changes (down, another status), then as a
	 * reminder every OUTAGE_LOG_NS: not on every retry. */
	if (!r->outage || status != r->outage_status || now - r->outage_logged_ns >= OUTAGE_LOG_NS) {
		bool again = r->outage && status == r->outage_status;

		if (is_auth(status))
			slog__line_begin(&b, SLOG_ERROR, what_msg(r, m, sizeof(m), again ?
					 "still refuses our token, batches kept in the spool" :
					 "refused our token, batches kept in the spool and retried: "
					 "check --remote-token-file"));
		else if (status == 429 || status >= 500 || status == 0)
			slog__line_begin(&b, SLOG_WARN, what_msg(r, m, sizeof(m), again ?
					 "still unavailable" : "unavailable, spooling"));
		else
			slog__line_begin(&b, SLOG_ERROR, what_msg(r, m, sizeof(m), again ?
					 "still refuses batches" : "refused a batch, batches kept in "
					 "the spool and retried: check the URL"));
		slog__line_str(&b, "url", r->url);
		if (status)
			slog__line_int(&b, "status", status);
		slog__line_str(&b, "error", status ? (why[0] ? why : "(empty reply)") : why);
		slog__line_int(&b, "spool_entries",
			(int64_t)__atomic_load_n(&r->stats->spool_entries, __ATOMIC_RELAXED));
		slog__line_str(&b, "spool_dir", r->dir);
		slog__line_end(&b);
		r->outage_logged_ns = now;
		r->outage_status = status;
	}
	if (!r->outage) {
		r->outage = true;
		r->outage_since_ns = now;
		r->backoff_ms = (uint64_t)r->retry_min_ms;
	}
	/* ±25% jitter, then at least what Retry-After asked, capped */
	delay = r->backoff_ms * (750 + (uint64_t)(rand_r(&r->rand_state) % 501)) / 1000;
	if ((uint64_t)retry_after_ms > delay)
		delay = (uint64_t)retry_after_ms;
	if (delay > (uint64_t)r->retry_max_ms)
		delay = (uint64_t)r->retry_max_ms;
	r->next_attempt_ns = now + delay * 1000000ULL;
	r->backoff_ms = r->backoff_ms * 2 > (uint64_t)r->retry_max_ms ? (uint64_t)r->retry_max_ms
								      : r->backoff_ms * 2;
}

/* A 2xx for entries, partial of which the endpoint says it rejected
 * (message why): counted, the rejection logged (rate-limited). */
static void note_sent(struct remote *r, uint32_t entries, uint64_t partial, const char *why)
{
	uint64_t now = now_ns();
	struct strbuf b = { 0 };
	char m[160];

	stat_add(&r->stats->sent, entries - partial);
	if (!partial)
		return;
	stat_add(&r->stats->partial_rejected, partial);
	if (r->reject_logged_ns && now - r->reject_logged_ns < LOG_EVERY_NS) {
		r->reject_quiet++;
		return;
	}
	slog__line_begin(&b, SLOG_WARN, what_msg(r, m, sizeof(m), "accepted a batch in part, "
						 "the rest dropped"));
	slog__line_str(&b, "url", r->url);
	slog__line_int(&b, "entries", entries);
	slog__line_int(&b, "rejected", (int64_t)partial);
	slog__line_str(&b, "reply", why);
	slog__line_end(&b);
	r->reject_logged_ns = now;
	r->reject_quiet = 0;
}

static void note_success(struct remote *r)
{
	struct strbuf b = { 0 };
	char m[160];

	if (r->outage && r->count == 0) {
		slog__line_begin(&b, SLOG_INFO, what_msg(r, m, sizeof(m), "back, spool replayed"));
		slog__line_str(&b, "url", r->url);
		slog__line_int(&b, "outage_ms", (int64_t)((now_ns() - r->outage_since_ns) / 1000000));
		slog__line_end(&b);
		r->outage = false;
	}
	r->backoff_ms = (uint64_t)r->retry_min_ms;
	r->next_attempt_ns = 0;
}

static void note_spool_full(struct remote *r, uint32_t entries, uint64_t bytes)
{
	uint64_t now = now_ns();
	struct strbuf b = { 0 };

	stat_add(&r->stats->spool_full, entries);
	if (r->full_logged_ns && now - r->full_logged_ns < LOG_EVERY_NS) {
		r->full_quiet++;
		return;
	}
	slog__line_begin(&b, SLOG_WARN, "spool full, batch lost");
	slog__line_str(&b, "spool_dir", r->dir);
	slog__line_int(&b, "spool_max_bytes", (int64_t)r->spool_max);
	slog__line_int(&b, "batch_bytes", (int64_t)bytes);
	slog__line_int(&b, "entries", entries);
	slog__line_int(&b, "lost_total", (int64_t)__atomic_load_n(&r->stats->spool_full, __ATOMIC_RELAXED));
	if (r->full_quiet)
		slog__line_int(&b, "batches_lost_since_last_log", (int64_t)r->full_quiet);
	slog__line_end(&b);
	r->full_logged_ns = now;
	r->full_quiet = 0;
}

/* ---- spool -------------------------------------------------------------- */

static void spool_name(const struct remote *r, char *buf, size_t len, const struct spool_item *it)
{
	snprintf(buf, len, "%020" PRIu64 "-%" PRIu32 ".%s", it->seq, it->entries, r->fmt.spool_ext);
}

static void publish_spool_stats(struct remote *r, int64_t dentries, int64_t dbytes)
{
	stat_set(&r->stats->spool_entries,
		 (uint64_t)((int64_t)__atomic_load_n(&r->stats->spool_entries, __ATOMIC_RELAXED) +
			    dentries));
	stat_set(&r->stats->spool_bytes,
		 (uint64_t)((int64_t)__atomic_load_n(&r->stats->spool_bytes, __ATOMIC_RELAXED) +
			    dbytes));
}

/* Appends it to the index. Called with mu held. Returns 0 or -ENOMEM. */
static int index_push(struct remote *r, const struct spool_item *it)
{
	if (r->head + r->count == r->cap) {
		if (r->head > r->cap / 2) {
			memmove(r->items, r->items + r->head, r->count * sizeof(*r->items));
			r->head = 0;
		} else {
			size_t ncap = r->cap ? r->cap * 2 : 64;
			struct spool_item *p = realloc(r->items, ncap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			r->items = p;
			r->cap = ncap;
		}
	}
	r->items[r->head + r->count++] = *it;
	return 0;
}

/* Removes the oldest file. Called with mu held. */
static void index_pop(struct remote *r)
{
	struct spool_item *it = &r->items[r->head];
	char name[64];

	spool_name(r, name, sizeof(name), it);
	if (unlinkat(r->dir_fd, name, 0) && errno != ENOENT) {
		struct strbuf b = { 0 };

		slog__line_begin(&b, SLOG_WARN, "cannot remove spool file");
		slog__line_str(&b, "file", name);
		slog__line_str(&b, "error", strerror(errno));
		slog__line_end(&b);
	}
	publish_spool_stats(r, -(int64_t)it->entries, -(int64_t)it->bytes);
	r->head++;
	r->count--;
	if (!r->count)
		r->head = 0;
}

/* Writes all of buf to fd. Returns 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t k = write(fd, buf, len);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Renames from to to in dir_fd, failing with EEXIST rather than replacing
 * an existing to (plain renameat where the file system cannot do that:
 * the directory is ours alone, see spool_open). Returns 0 or -1 with errno. */
static int rename_noreplace(int dir_fd, const char *from, const char *to)
{
	if (renameat2(dir_fd, from, dir_fd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	return renameat(dir_fd, from, dir_fd, to);
}

/* Puts one body into the spool (writer thread). Returns 0 when spooled or
 * counted lost for want of room, -errno when the file could not be written
 * (the caller may try again later). */
static int spool_append(struct remote *r, const char *body, size_t len, uint32_t entries)
{
	struct spool_item it = { .bytes = len, .entries = entries };
	char tmp[72], name[64];
	int fd, err;

	pthread_mutex_lock(&r->mu);
	if (__atomic_load_n(&r->stats->spool_bytes, __ATOMIC_RELAXED) + len > r->spool_max) {
		note_spool_full(r, entries, len);
		pthread_mutex_unlock(&r->mu);
		return 0;
	}
	it.seq = r->next_seq++;
	pthread_mutex_unlock(&r->mu);

	spool_name(r, name, sizeof(name), &it);
	snprintf(tmp, sizeof(tmp), "tmp-%s", name);
	/* Never through an existing name: a leftover of ours (a crash between
	 * the scan and now cannot make one, but be sure) is removed and the
	 * name made again, exclusively. */
	fd = openat(r->dir_fd, tmp, SPOOL_CREATE, 0600);
	if (fd < 0 && errno == EEXIST && unlinkat(r->dir_fd, tmp, 0) == 0)
		fd = openat(r->dir_fd, tmp, SPOOL_CREATE, 0600);
	if (fd < 0)
		goto fail;
	err = write_all(fd, body, len);
	if (close(fd) && !err)
		err = -errno;
	if (err) {
		errno = -err;
		unlinkat(r->dir_fd, tmp, 0);
		goto fail;
	}
	if (rename_noreplace(r->dir_fd, tmp, name)) {
		err = errno;
		unlinkat(r->dir_fd, tmp, 0);
		errno = err;
		goto fail;
	}

	pthread_mutex_lock(&r->mu);
	err = index_push(r, &it);
	if (!err) {
		publish_spool_stats(r, entries, (int64_t)len);
		stat_add(&r->stats->spooled, entries);
		pthread_cond_broadcast(&r->cond);
	} else {
		unlinkat(r->dir_fd, name, 0);
	}
	pthread_mutex_unlock(&r->mu);
	return err;

fail:
	err = -errno;
	{
		struct strbuf b = { 0 };

		slog__line_begin(&b, SLOG_ERROR, "cannot write spool file, keeping the batch in memory");
		slog__line_str(&b, "spool_dir", r->dir);
		slog__line_str(&b, "error", strerror(-err));
		slog__line_end(&b);
	}
	return err;
}

/* Reads spool file it into r->rbody. Returns 0 or -errno (with why set
 * when it says more than strerror). */
static int spool_read(struct remote *r, const struct spool_item *it, char *why, size_t whylen)
{
	char name[64];
	struct stat st;
	int fd, err = 0;

	spool_name(r, name, sizeof(name), it);
	fd = openat(r->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	/* Only a file of ours is read, let alone POSTed; and no larger than
	 * the whole spool may be. */
	if (safefile__check_file(&st, name, 0, why, whylen)) {
		err = -EPERM;
		goto out;
	}
	if ((uint64_t)st.st_size > r->spool_max) {
		snprintf(why, whylen, "%s is larger than the spool may be", name);
		err = -EFBIG;
		goto out;
	}
	r->rbody.len = 0;
	free(r->rbody.p);
	r->rbody.p = malloc((size_t)st.st_size + 1);
	r->rbody.cap = r->rbody.p ? (size_t)st.st_size + 1 : 0;
	if (!r->rbody.p) {
		err = -ENOMEM;
		goto out;
	}
	while (r->rbody.len < (size_t)st.st_size) {
		ssize_t k = read(fd, r->rbody.p + r->rbody.len, (size_t)st.st_size - r->rbody.len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			err = k < 0 ? -errno : -EIO;
			break;
		}
		r->rbody.len += (size_t)k;
	}
out:
	close(fd);
	return err;
}

/* One replay attempt of the oldest file. Called with mu held (released
 * during I/O). Returns false when the pass should stop for now. */
static bool replay_one(struct remote *r)
{
	struct spool_item it = r->items[r->head];
	int timeout = r->timeout_ms, err;
	char why[REPLY_KEEP + 64];
	long status, retry_after;
	uint64_t partial = 0;
	enum post_result res;

	if (r->closing) {
		int left = msleft(r->close_deadline_ns);

		if (left < timeout)
			timeout = left;
	}
	pthread_mutex_unlock(&r->mu);
	why[0] = '\0';
	err = spool_read(r, &it, why, sizeof(why));
	if (!err)
		res = post(r, r->rbody.p, r->rbody.len, it.entries, timeout, &status, why,
			   sizeof(why), &retry_after, &partial);
	pthread_mutex_lock(&r->mu);

	if (err) {
		struct strbuf b = { 0 };
		char name[64];

		spool_name(r, name, sizeof(name), &it);
		slog__line_begin(&b, SLOG_ERROR, "cannot read spool file, entries lost");
		slog__line_str(&b, "file", name);
		slog__line_str(&b, "error", why[0] ? why : strerror(-err));
		slog__line_end(&b);
		stat_add(&r->stats->lost_other, it.entries);
		index_pop(r);
		return true;
	}
	switch (res) {
	case POST_OK:
		note_sent(r, it.entries, partial, why);
		index_pop(r);
		note_success(r);
		return true;
	case POST_REJECTED:
		note_rejected(r, status, why, it.entries);
		index_pop(r);
		return true;
	case POST_RETRY:
		note_failure(r, status, why, retry_after);
		if (r->closing)
			r->close_failed = true;
		return false;
	}
	return false;
}

/* The replay thread: sends the spool, oldest first, with backoff; on close
 * makes one last pass (see DESIGN). */
static void *replay_main(void *arg)
{
	struct remote *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		if (r->closing && (r->count == 0 || r->close_failed || msleft(r->close_deadline_ns) == 0))
			break;
		if (r->count == 0) {
			pthread_cond_wait(&r->cond, &r->mu);
			continue;
		}
		if (!r->closing && now_ns() < r->next_attempt_ns) {
			struct timespec ts = {
				.tv_sec = (time_t)(r->next_attempt_ns / 1000000000ULL),
				.tv_nsec = (long)(r->next_attempt_ns % 1000000000ULL),
			};

			pthread_cond_timedwait(&r->cond, &r->mu, &ts);
			continue;
		}
		replay_one(r);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ---- the sink ----------------------------------------------------------- */

/* Hands one encoded body over: POSTed when nothing is spooled, else (or on
 * a retryable failure) spooled. Returns 0, or -errno when it could not be
 * spooled. */
static int deliver(struct remote *r, const char *body, size_t len, uint32_t entries)
{
	char why[REPLY_KEEP + 64];
	long status, retry_after;
	uint64_t partial = 0;
	enum post_result res;
	bool empty;

	pthread_mutex_lock(&r->mu);
	empty = r->count == 0;
	pthread_mutex_unlock(&r->mu);
	if (empty) {
		res = post(r, body, len, entries, r->timeout_ms, &status, why, sizeof(why),
			   &retry_after, &partial);
		pthread_mutex_lock(&r->mu);
		if (res == POST_OK) {
			note_sent(r, entries, partial, why);
			note_success(r);
		} else if (res == POST_REJECTED) {
			note_rejected(r, status, why, entries);
		} else {
			note_failure(r, status, why, retry_after);
		}
		pthread_mutex_unlock(&r->mu);
		if (res != POST_RETRY)
			return 0;
	}
	return spool_append(r, body, len, entries);
}

/* Replaces out's contents with the gzip stream (RFC 1952) of in[0..len).
 * Returns 0 or -ENOMEM. */
static int gzip_body(struct json_buf *out, const char *in, size_t len)
{
	z_stream z = { 0 };
	size_t need;
	int zr;

	/* level 1: most of gzip's gain on SQL text at a fraction of its CPU */
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	need = deflateBound(&z, (uLong)len);
	if (out->cap < need) {
		char *p = realloc(out->p, need);

		if (!p) {
			deflateEnd(&z);
			return -ENOMEM;
		}
		out->p = p;
		out->cap = need;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->p;
	z.avail_out = (uInt)out->cap;
	zr = deflate(&z, Z_FINISH);
	out->len = zr == Z_STREAM_END ? (size_t)z.total_out : 0;
	deflateEnd(&z);
	return zr == Z_STREAM_END ? 0 : -ENOMEM;
}

static int remote_write(void *ctx, struct st_entry *const *batch, size_t n)
{
	struct remote *r = ctx;
	size_t done = 0;

	while (done < n) {
		long k = r->fmt.encode ? r->fmt.encode(r->fmt.ctx, &r->wbody, batch + done, n - done,
						       r->max_body)
				       : json__encode_batch(&r->wbody, batch + done, n - done, r->max_body);
		int err = k < 0 ? (int)k : 0;
		const struct json_buf *body = &r->wbody;

		if (!err && r->fmt.gzip) {
			err = gzip_body(&r->zbody, r->wbody.p, r->wbody.len);
			body = &r->zbody;
		}
		if (!err)
			err = deliver(r, body->p, body->len, (uint32_t)k);

		if (err) {
			/* Nothing handed over yet: let the recorder retry the
			 * batch. Part of it sent: retrying would send that part
			 * twice, so the rest is given up and counted. */
			if (done == 0)
				return err;
			stat_add(&r->stats->lost_other, n - done);
			return 0;
		}
		done += (size_t)k;
	}
	return 0;
}

static void remote_free(struct remote *r)
{
	curl_slist_free_all(r->headers);
	if (r->curl)
		curl_easy_cleanup(r->curl);
	if (r->fmt.free_ctx)
		r->fmt.free_ctx(r->fmt.ctx);
	json_buf__free(&r->wbody);
	json_buf__free(&r->zbody);
	json_buf__free(&r->rbody);
	free(r->items);
	free(r->url);
	free(r->dir);
	if (r->lock_fd >= 0)
		close(r->lock_fd); /* releases the flock */
	if (r->dir_fd >= 0)
		close(r->dir_fd);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->http_mu);
	free(r);
	curl_global_cleanup();
}

static void remote_close(void *ctx)
{
	struct remote *r = ctx;
	struct strbuf b = { 0 };

	if (r->thread_started) {
		pthread_mutex_lock(&r->mu);
		r->closing = true;
		r->stop = !r->open_done; /* open failed: no last pass */
		r->close_deadline_ns = now_ns() + (uint64_t)r->close_ms * 1000000ULL;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
	}
	if (r->open_done) {
		struct remote_stats *s = r->stats;

		uint64_t lost = s->rejected + s->spool_full + s->lost_other + s->partial_rejected;

		slog__line_begin(&b, r->count || lost ? SLOG_WARN : SLOG_INFO, "remote sender closed");
		if (r->fmt.what != default_format.what)
			slog__line_str(&b, "to", r->fmt.what);
		slog__line_str(&b, "url", r->url);
		slog__line_int(&b, "sent", (int64_t)s->sent);
		slog__line_int(&b, "lost", (int64_t)lost);
		if (lost) {
			slog__line_int(&b, "rejected_malformed", (int64_t)s->rejected);
			slog__line_int(&b, "spool_full", (int64_t)s->spool_full);
			slog__line_int(&b, "lost_other", (int64_t)s->lost_other);
			if (s->partial_rejected)
				slog__line_int(&b, "rejected_in_part", (int64_t)s->partial_rejected);
		}
		slog__line_int(&b, "left_in_spool", (int64_t)s->spool_entries);
		if (s->auth_refused)
			slog__line_int(&b, "token_refused_posts", (int64_t)s->auth_refused);
		if (r->count)
			slog__line_str(&b, "spool_dir", r->dir);
		slog__line_end(&b);
	}
	remote_free(r);
}

static const struct sink_ops remote_sink = {
	.name = "remote",
	.write = remote_write,
	.close = remote_close,
};

/* ---- open --------------------------------------------------------------- */

int remote_store__default_spool_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int k;

	if (geteuid() == 0)
		k = snprintf(buf, len, "/var/lib/sqltrace-bpf/spool");
	else if (xdg && xdg[0] == '/')
		k = snprintf(buf, len, "%s/sqltrace-bpf/spool", xdg);
	else if (home && home[0])
		k = snprintf(buf, len, "%s/.local/state/sqltrace-bpf/spool", home);
	else
		return -ENOENT;
	return k < 0 || (size_t)k >= len ? -ENAMETOOLONG : 0;
}

char *remote_store__read_token(const char *path, char *err, size_t errlen)
{
	char buf[TOKEN_MAX + 2], *s, *e, *tok, name[NAME_MAX + 1], why[PATH_MAX + 200];
	size_t n = 0;
	ssize_t k;
	struct stat st;
	int fd, dir_fd;

	/* A secret: read through trusted directories only (a symbolic link
	 * root or we made is fine, one another user planted is not), from a
	 * file only root or we own and only its owner can read. */
	dir_fd = safefile__open_parent(path, SAFEFILE_FOLLOW | SAFEFILE_STICKY, name, sizeof(name),
				       NULL, 0, why, sizeof(why));
	if (dir_fd < 0) {
		snprintf(err, errlen, "cannot use token file %s: %s", path, why);
		return NULL;
	}
	fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(dir_fd);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read token file %s: %s", path, strerror(errno));
		return NULL;
	}
	why[0] = '\0';
	if (fstat(fd, &st))
		snprintf(why, sizeof(why), "%s", strerror(errno));
	else
		safefile__check_file(&st, path, SAFEFILE_SECRET | SAFEFILE_ROOT_OK, why, sizeof(why));
	if (why[0]) {
		snprintf(err, errlen, "cannot use token file %s: %s", path, why);
		close(fd);
		return NULL;
	}
	while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(err, errlen, "cannot read token file %s: %s", path, strerror(errno));
			close(fd);
			return NULL;
		}
		n += (size_t)k;
	}
	close(fd);
	buf[n] = '\0';
	tok = NULL;
	for (s = buf; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'; s++)
		;
	for (e = buf + n; e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'); e--)
		;
	*e = '\0';
	if (n > TOKEN_MAX)
		snprintf(err, errlen, "cannot use token file %s: longer than %d bytes", path, TOKEN_MAX);
	else if (s == e)
		snprintf(err, errlen, "cannot use token file %s: the file is empty", path);
	else if (strcspn(s, " \t\r\n\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10"
			    "\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f") !=
		 (size_t)(e - s))
		snprintf(err, errlen, "cannot use token file %s: the token contains whitespace or "
			 "control characters", path);
	else if (!(tok = strdup(s)))
		snprintf(err, errlen, "cannot read token file %s: out of memory", path);
	explicit_bzero(buf, sizeof(buf));
	return tok;
}

/* The "Authorization: Bearer …" header for the token in path, or NULL with
 * err. */
static char *read_token_header(const char *path, char *err, size_t errlen)
{
	char *tok = remote_store__read_token(path, err, errlen), *hdr;

	if (!tok)
		return NULL;
	if (asprintf(&hdr, "Authorization: Bearer %s", tok) < 0) {
		hdr = NULL;
		snprintf(err, errlen, "cannot read token file %s: out of memory", path);
	}
	explicit_bzero(tok, strlen(tok));
	free(tok);
	return hdr;
}

static int cmp_items(const void *a, const void *b)
{
	const struct spool_item *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Loads the files a previous run left (and removes its torn temporaries).
 * Returns 0 or -errno. */
static int spool_scan(struct remote *r)
{
	int fd = dup(r->dir_fd), err = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t bytes = 0, entries = 0;

	if (!d) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	while ((de = readdir(d))) {
		struct spool_item it;
		struct stat st;
		char check[64], why[160];
		int used = 0;

		if (strncmp(de->d_name, "tmp-", 4) == 0) {
			unlinkat(r->dir_fd, de->d_name, 0);
			continue;
		}
		if (sscanf(de->d_name, "%20" SCNu64 "-%" SCNu32 ".%n", &it.seq, &it.entries,
			   &used) != 2 || !used || strcmp(de->d_name + used, r->fmt.spool_ext) != 0)
			continue;
		spool_name(r, check, sizeof(check), &it);
		if (strcmp(check, de->d_name) != 0 ||
		    fstatat(r->dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (safefile__check_file(&st, de->d_name, 0, why, sizeof(why))) {
			struct strbuf b = { 0 };

			slog__line_begin(&b, SLOG_WARN, "spool file not ours, left alone");
			slog__line_str(&b, "spool_dir", r->dir);
			slog__line_str(&b, "error", why);
			slog__line_end(&b);
			continue;
		}
		it.bytes = (uint64_t)st.st_size;
		if ((err = index_push(r, &it)))
			break;
		bytes += it.bytes;
		entries += it.entries;
		if (it.seq >= r->next_seq)
			r->next_seq = it.seq + 1;
	}
	closedir(d);
	if (err)
		return err;
	if (r->count)
		qsort(r->items, r->count, sizeof(*r->items), cmp_items);
	publish_spool_stats(r, (int64_t)entries, (int64_t)bytes);
	if (r->count) {
		struct strbuf b = { 0 };

		slog__line_begin(&b, SLOG_INFO, "spool from a previous run, sending it first");
		slog__line_str(&b, "spool_dir", r->dir);
		slog__line_int(&b, "files", (int64_t)r->count);
		slog__line_int(&b, "entries", (int64_t)entries);
		slog__line_int(&b, "bytes", (int64_t)bytes);
		slog__line_end(&b);
	}
	return 0;
}

/* Opens, creates and locks the spool directory, then loads it. */
static int spool_open(struct remote *r, const char *dir, char *err, size_t errlen)
{
	char def[PATH_MAX], why[PATH_MAX + 200];
	int ret;

	if (!dir) {
		if ((ret = remote_store__default_spool_dir(def, sizeof(def)))) {
			snprintf(err, errlen, "cannot choose a spool directory (no HOME): pass --spool-dir");
			return ret;
		}
		dir = def;
	}
	if (!(r->dir = strdup(dir)))
		return -ENOMEM;
	/* Ours alone: nobody else may add, rename or remove a spool file. */
	r->dir_fd = safefile__open_dir(dir, SAFEFILE_CREATE, why, sizeof(why));
	if (r->dir_fd < 0) {
		ret = r->dir_fd;
		snprintf(err, errlen, "cannot use spool directory %s: %s", dir, why);
		return ret;
	}
	r->lock_fd = openat(r->dir_fd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r->lock_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot use spool directory %s: .lock: %s", dir, strerror(-ret));
		return ret;
	}
	if (flock(r->lock_fd, LOCK_EX | LOCK_NB)) {
		ret = -errno;
		if (ret == -EWOULDBLOCK)
			snprintf(err, errlen, "spool directory %s is in use by another sqltrace-bpf: "
				 "give each one its own --spool-dir", dir);
		else
			snprintf(err, errlen, "cannot lock spool directory %s: %s", dir, strerror(-ret));
		return ret;
	}
	if ((ret = spool_scan(r)))
		snprintf(err, errlen, "cannot read spool directory %s: %s", dir, strerror(-ret));
	return ret;
}

/* Checks the URL (http or https) and prepares the handle. */
static int http_open(struct remote *r, const struct remote_opts *o, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *hdr = NULL;
	int ret = 0;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, o->url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
		snprintf(err, errlen, "invalid %s URL '%s': expected an http:// or https:// URL",
			 o->opt_name ? o->opt_name : "--remote", o->url);
		ret = -EINVAL;
	}
	curl_free(scheme);
	curl_url_cleanup(u);
	if (ret)
		return ret;

	if (asprintf(&hdr, "Content-Type: %s", r->fmt.content_type) < 0) {
		hdr = NULL;
		goto oom;
	}
	r->headers = curl_slist_append(NULL, hdr);
	free(hdr);
	hdr = NULL;
	if (!r->headers || !(r->url = strdup(o->url)) || !(r->curl = curl_easy_init()) ||
	    !(r->headers = curl_slist_append(r->headers, "Expect:")) ||
	    (r->fmt.gzip && !(r->headers = curl_slist_append(r->headers, "Content-Encoding: gzip"))))
		goto oom;
	for (const char *const *h = r->fmt.headers; h && *h; h++) {
		struct curl_slist *l = curl_slist_append(r->headers, *h);

		if (!l)
			goto oom;
		r->headers = l;
	}
	if (o->token_file) {
		struct curl_slist *h;

		if (!(hdr = read_token_header(o->token_file, err, errlen)))
			return -EINVAL;
		h = curl_slist_append(r->headers, hdr);
		explicit_bzero(hdr, strlen(hdr));
		free(hdr);
		if (!h)
			goto oom;
		r->headers = h;
	}
	curl_easy_setopt(r->curl, CURLOPT_URL, r->url);
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "sqltrace-bpf");
	curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->curl_err);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_reply);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
	if (o->ca_file && curl_easy_setopt(r->curl, CURLOPT_CAINFO, o->ca_file) != CURLE_OK) {
		snprintf(err, errlen, "cannot use %s-ca %s: not supported by this libcurl",
			 o->opt_name ? o->opt_name : "--remote", o->ca_file);
		return -EINVAL;
	}
	if (o->ca_file && access(o->ca_file, R_OK)) {
		ret = -errno;
		snprintf(err, errlen, "cannot read %s-ca %s: %s", o->opt_name ? o->opt_name : "--remote",
			 o->ca_file, strerror(-ret));
		return ret;
	}
	return 0;
oom:
	snprintf(err, errlen, "cannot start the remote sender: out of memory");
	return -ENOMEM;
}

/* Starts the replay thread with every signal blocked (signals belong to the
 * caller's threads). Returns 0 or a positive errno. */
static int start_replay(struct remote *r)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&r->thread, NULL, replay_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	r->thread_started = err == 0;
	return err;
}

static int remote_init_locks(struct remote *r)
{
	pthread_condattr_t ca;
	int err;

	if ((err = pthread_mutex_init(&r->mu, NULL)))
		return err;
	if ((err = pthread_mutex_init(&r->http_mu, NULL)))
		goto err_mu;
	if ((err = pthread_condattr_init(&ca)))
		goto err_http;
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!err)
		return 0;
err_http:
	pthread_mutex_destroy(&r->http_mu);
err_mu:
	pthread_mutex_destroy(&r->mu);
	return err;
}

struct recorder *remote_store__open(const struct remote_opts *o, const struct batch_opts *b,
				    char *err, size_t errlen)
{
	struct recorder *rec;
	struct remote *r;
	int ret;

	if (errlen)
		err[0] = '\0';
	if (!o || !o->url) {
		if (o && o->format && o->format->free_ctx)
			o->format->free_ctx(o->format->ctx);
		snprintf(err, errlen, "cannot start the remote sender: no URL");
		errno = EINVAL;
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		if (o->format && o->format->free_ctx)
			o->format->free_ctx(o->format->ctx);
		snprintf(err, errlen, "cannot start the remote sender: libcurl failed to initialise");
		errno = ENOMEM;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r || (ret = remote_init_locks(r))) {
		if (o->format && o->format->free_ctx)
			o->format->free_ctx(o->format->ctx);
		free(r);
		curl_global_cleanup();
		snprintf(err, errlen, "cannot start the remote sender: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	r->dir_fd = r->lock_fd = -1;
	r->stats = o->stats ? o->stats : &r->own_stats;
	r->fmt = o->format ? *o->format : default_format;
	if (!r->fmt.what)
		r->fmt.what = default_format.what;
	if (!r->fmt.content_type)
		r->fmt.content_type = default_format.content_type;
	if (!r->fmt.spool_ext || !r->fmt.spool_ext[0] || strlen(r->fmt.spool_ext) > 12 ||
	    strspn(r->fmt.spool_ext, "abcdefghijklmnopqrstuvwxyz.") != strlen(r->fmt.spool_ext))
		r->fmt.spool_ext = default_format.spool_ext;
	memset(r->stats, 0, sizeof(*r->stats));
	r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEF_TIMEOUT_MS;
	r->retry_min_ms = o->retry_min_ms > 0 ? o->retry_min_ms : DEF_RETRY_MIN_MS;
	r->retry_max_ms = o->retry_max_ms > 0 ? o->retry_max_ms : DEF_RETRY_MAX_MS;
	if (r->retry_max_ms < r->retry_min_ms)
		r->retry_max_ms = r->retry_min_ms;
	r->close_ms = o->close_timeout_ms > 0 ? o->close_timeout_ms : DEF_CLOSE_MS;
	r->spool_max = (uint64_t)(o->spool_max_bytes > 0 ? o->spool_max_bytes : DEF_SPOOL_MAX);
	r->max_body = o->max_body_bytes ? o->max_body_bytes : DEF_MAX_BODY;
	r->backoff_ms = (uint64_t)r->retry_min_ms;
	r->rand_state = (unsigned)now_ns() ^ (unsigned)getpid();
	r->next_seq = 1;

	if ((ret = http_open(r, o, err, errlen)) || (ret = spool_open(r, o->spool_dir, err, errlen)) ||
	    (ret = -start_replay(r))) {
		if (errlen && !err[0])
			snprintf(err, errlen, "cannot start the remote sender: %s", strerror(-ret));
		remote_close(r);
		errno = -ret;
		return NULL;
	}
	rec = recorder__new(b, &remote_sink, r); /* closes r on failure */
	if (!rec) {
		ret = errno;
		snprintf(err, errlen, "cannot start the remote sender: %s", strerror(ret));
		errno = ret;
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	r->open_done = true;
	pthread_mutex_unlock(&r->mu);
	return rec;
}
