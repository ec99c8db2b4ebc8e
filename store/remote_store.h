/* remote_store.h — the remote sink: batches POSTed as JSON (json.h) to an
 * HTTP endpoint (a Go tracer back office or `sqltrace-bpf ingest`), with a
 * bounded on-disk spool that keeps batches, in order, while the endpoint is
 * down.
 *
 * Outcome of a POST:
 *   2xx                      done;
 *   400, 413, 422            the endpoint says the body is malformed: not
 *                            retried, logged with the status and the start
 *                            of the reply, entries counted in `rejected`;
 *   anything else            (a transport error, 401/403 — a wrong token —,
 *                            404, 429, 5xx...) the body goes to the spool,
 *                            replayed in order with backoff (at least the
 *                            Retry-After asked for); while the spool is not
 *                            empty new batches queue up behind it. The cause
 *                            is logged when it changes, not on every retry.
 * A batch that does not fit in the spool (spool_max_bytes) is counted lost.
 * (Those are the default rules; a struct remote_format changes the body,
 * which statuses are retried and what a 2xx answer says: see below.)
 *
 * The spool is one file per POST body, <seq:20 digits>-<entries>.<ext>
 * (ext: json, or the format's), in
 * spool_dir, written to a temporary name created exclusively (O_EXCL,
 * O_NOFOLLOW, 0600) and renamed (a crash never leaves a torn file under a
 * final name; files are not fsync'ed, so a power loss may lose the newest).
 * The directory must be owned by root or the effective user and not be
 * writable by group or others, nor any directory above it unless sticky
 * (common/safefile.h); a file in it is replayed only when it is a regular
 * file of ours. A directory is used by one process at a time (an flock on
 * spool_dir/.lock). What is left at close stays for the next open, which
 * sends it first — to whatever URL that run uses.
 */
#ifndef SQLTRACE_REMOTE_STORE_H
#define SQLTRACE_REMOTE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recorder.h"

/* Live counters of a remote sink, in entries unless said otherwise. The
 * sink updates them with atomic stores; read them with __atomic_load_n or
 * after recorder__close. */
struct remote_stats {
	uint64_t sent;          /* acknowledged with 2xx (directly or from the spool) */
	uint64_t spooled;       /* written to the spool */
	uint64_t rejected;      /* lost: refused as malformed (400, 413, 422) */
	uint64_t spool_full;    /* lost: the spool had no room */
	uint64_t lost_other;    /* lost: unreadable spool file, or the rest of a
	                         * batch split over several POSTs whose spooling
	                         * failed after its first part was sent */
	uint64_t requests;      /* POSTs made */
	uint64_t failures;      /* POSTs that failed and will be retried */
	uint64_t spool_bytes;   /* bytes in the spool now */
	uint64_t spool_entries; /* entries in the spool now */
	uint64_t auth_refused;  /* POSTs answered 401 or 403 (our token was
	                         * refused), among failures: kept and retried */
	uint64_t partial_rejected; /* lost: a 2xx answer said the endpoint
	                         * rejected that many of the batch's entries
	                         * (format->read_ok_reply; OTLP partial success) */
};

struct json_buf;

/* How bodies are made and answers read. All NULL/0 (or no format at all):
 * the Go tracer's JSON (json.h) with the outcomes above. The OTLP exporter
 * (otlp_sink.c) brings its own. */
struct remote_format {
	const char *what;           /* who answers, in log lines: "OTLP collector";
	                             * NULL = "remote endpoint" */
	const char *content_type;   /* NULL = "application/json" */
	const char *spool_ext;      /* spool file extension, [a-z.]{1,12}; NULL = "json".
	                             * Files of another extension are left alone,
	                             * so a change of format never replays a body
	                             * with the wrong Content-Type */
	bool gzip;                  /* bodies sent (and spooled) gzip-compressed,
	                             * Content-Encoding: gzip */
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
	/* Encodes batch[0..n) (a prefix of at least one entry when the body
	 * would exceed max_bytes) into out, replacing its contents. Returns the
	 * number of entries encoded or a negative errno. Writer thread only. */
	long (*encode)(void *ctx, struct json_buf *out, struct st_entry *const *batch, size_t n,
		       size_t max_bytes);
	/* Whether a failed POST (status >= 300; 0 for a transport error) is
	 * kept and retried; the others are dropped as rejected. NULL: all
	 * but 400, 413 and 422. */
	bool (*retryable)(long status);
	/* Reads a 2xx answer's body (its first 64 KiB): returns how many of
	 * the entries sent the endpoint says it rejected (0..entries), with
	 * its message in msg. Must accept any bytes. NULL: the body is not read. */
	uint64_t (*read_ok_reply)(void *ctx, const char *body, size_t len, uint64_t entries,
				  char *msg, size_t msglen);
	void *ctx;
	/* Frees ctx when the sender is freed (also when remote_store__open
	 * fails: ctx is always taken over). NULL: ctx is the caller's. */
	void (*free_ctx)(void *ctx);
};

struct remote_opts {
	const char *url;            /* http:// or https:// endpoint (required) */
	int timeout_ms;             /* whole request; 0 = 5000 */
	const char *ca_file;        /* PEM CA bundle; NULL = the system's */
	const char *token_file;     /* bearer token, read and trimmed at open;
	                             * NULL = no Authorization header */
	const char *spool_dir;      /* NULL = remote_store__default_spool_dir() */
	int64_t spool_max_bytes;    /* 0 = 64 MiB */
	size_t max_body_bytes;      /* a batch whose JSON is larger is split over
	                             * several POSTs; 0 = 1 MiB (the ingest
	                             * server's and the Go handler's limit) */
	int retry_min_ms;           /* first backoff after a failure; 0 = 1000 */
	int retry_max_ms;           /* backoff cap; 0 = 30000 */
	int close_timeout_ms;       /* spool replay budget at close; 0 = 5000 */
	struct remote_stats *stats; /* optional; must outlive recorder__close */
	const struct remote_format *format; /* optional; must outlive recorder__close */
	const char *opt_name;       /* the option that names the URL, in errors:
	                             * NULL = "--remote" */
};

/* Opens the sender: checks the URL, reads the token, opens (creating it
 * and its missing parents, mode 0700) and locks the spool directory, picks up the files a previous
 * run left there, and starts a recorder (b may be NULL for the defaults)
 * whose writer POSTs batches, plus one thread that replays the spool.
 * On error, NULL is returned, errno is set and err holds one line such as
 * "cannot read --remote-token-file /etc/tok: file is empty". */
struct recorder *remote_store__open(const struct remote_opts *o, const struct batch_opts *b,
				    char *err, size_t errlen);

/* Writes the default spool directory into buf: /var/lib/sqltrace-bpf/spool
 * for root, else $XDG_STATE_HOME/sqltrace-bpf/spool, else
 * $HOME/.local/state/sqltrace-bpf/spool. Returns 0, or -ENAMETOOLONG /
 * -ENOENT (no HOME). */
int remote_store__default_spool_dir(char *buf, size_t len);

/* Reads a bearer token from path: the content with surrounding whitespace
 * trimmed; it must be non-empty, at most 4096 bytes, with no inner
 * whitespace or control characters. The file must be a regular file owned
 * by root or the effective user that group and others cannot read or write
 * (else "cannot use token file F: F can be read or written by group or
 * others (chmod 600 F)"), reached through trusted directories
 * (common/safefile.h). Returns a malloc'd string (wipe and
 * free it), or NULL with one line in err. Shared with the ingest server. */
char *remote_store__read_token(const char *path, char *err, size_t errlen);

#endif
