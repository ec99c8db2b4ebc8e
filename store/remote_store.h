/* remote_store.h — the remote sink: batches POSTed as JSON (json.h) to an
 * HTTP endpoint (a Go tracer back office or `sqltrace-bpf ingest`), with a
 * bounded on-disk spool that keeps batches, in order, while the endpoint is
 * down.
 *
 * Outcome of a POST:
 *   2xx                      done;
 *   transport error, 5xx, 429 (and 408)
 *                            the body goes to the spool, replayed in order
 *                            with backoff; while the spool is not empty new
 *                            batches queue up behind it;
 *   any other status         not retried: logged with the status and the
 *                            start of the reply, entries counted lost.
 * A batch that does not fit in the spool (spool_max_bytes) is counted lost.
 *
 * The spool is one file per POST body, <seq:20 digits>-<entries>.json, in
 * spool_dir, written to a temporary name and renamed (a crash never leaves
 * a torn file under a final name; files are not fsync'ed, so a power loss
 * may lose the newest). A directory is used by one process at a time (an
 * flock on spool_dir/.lock). What is left at close stays for the next open,
 * which sends it first — to whatever URL that run uses.
 */
#ifndef SQLTRACE_REMOTE_STORE_H
#define SQLTRACE_REMOTE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "recorder.h"

/* Live counters of a remote sink, in entries unless said otherwise. The
 * sink updates them with atomic stores; read them with __atomic_load_n or
 * after recorder__close. */
struct remote_stats {
	uint64_t sent;          /* acknowledged with 2xx (directly or from the spool) */
	uint64_t spooled;       /* written to the spool */
	uint64_t rejected;      /* lost: refused with a non-retryable status */
	uint64_t spool_full;    /* lost: the spool had no room */
	uint64_t lost_other;    /* lost: unreadable spool file, or the rest of a
	                         * batch split over several POSTs whose spooling
	                         * failed after its first part was sent */
	uint64_t requests;      /* POSTs made */
	uint64_t failures;      /* POSTs that failed and will be retried */
	uint64_t spool_bytes;   /* bytes in the spool now */
	uint64_t spool_entries; /* entries in the spool now */
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
};

/* Opens the sender: checks the URL, reads the token, opens (creating it,
 * mode 0700) and locks the spool directory, picks up the files a previous
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
 * whitespace or control characters. Returns a malloc'd string (wipe and
 * free it), or NULL with one line in err. Shared with the ingest server. */
char *remote_store__read_token(const char *path, char *err, size_t errlen);

#endif
