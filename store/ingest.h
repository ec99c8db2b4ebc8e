/* ingest.h — the ingest server (`sqltrace-bpf ingest`): receives batches
 * POSTed by sqltrace-bpf's remote sender or the Go tracer's RemoteStore and
 * stores their entries through a recorder (the local store), as the Go
 * tracer's IngestHandler does, with the limits a shared endpoint needs.
 *
 * Replies on the configured path:
 *   204  every entry written by the recorder's sink (no body): the answer
 *        waits for the write;
 *   400  not JSON, or not a batch of entries (json__decode_batch's reason);
 *   401  a token is required and the Authorization header does not carry it
 *        (compared in constant time);
 *   405  not a POST (with Allow: POST);
 *   413  body over max_body, chunked or not;
 *   503  (with Retry-After: 1) the server holds too many bodies and
 *        waiting batches already (a memory budget), or the store could
 *        not take the batch: its
 *        queue stayed full, or its writes failed or made no progress for
 *        store_wait_ms; the entries are taken back, so the sender keeps the
 *        batch and retries without duplicates (except in the rare case
 *        ingest.c's DESIGN comment names, which is logged);
 * and 404 on any other path. Replies other than 204 carry a one-line
 * text/plain reason. A batch larger than the queue is queued in parts.
 *
 * Connections: at most max_connections, at most max_per_ip from one client
 * address; a request head must arrive within head_timeout_ms (1 s while
 * over half the connections are open) and its body within body_timeout_ms,
 * or the connection is closed (see ingest_guard.h).
 */
#ifndef SQLTRACE_INGEST_H
#define SQLTRACE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recorder.h"

struct ingest_opts {
	const char *listen;        /* "ADDR:PORT", "[IPV6]:PORT", "localhost:PORT" or
	                            * ":PORT" (every IPv4 address); NULL =
	                            * 127.0.0.1:8080; port 0 picks a free port */
	const char *path;          /* NULL = /api/internal/traces */
	size_t max_body;           /* bytes; 0 = 1 MiB */
	const char *token;         /* required bearer token; NULL = none */
	unsigned max_connections;  /* 0 = 512 */
	unsigned max_per_ip;       /* connections from one client address; 0 = 32 */
	unsigned timeout_s;        /* a connection idle this long is closed; 0 = 10 */
	unsigned head_timeout_ms;  /* request head deadline; 0 = 10000 */
	unsigned body_timeout_ms;  /* request body deadline; 0 = 30000 */
	unsigned queue_size;       /* capacity of the recorder's queue (what it was
	                            * created with); 0 = 1024 */
	unsigned store_wait_ms;    /* a batch the store makes no progress on for
	                            * this long is refused (503); 0 = 3000 */
	size_t mem_budget;         /* bytes of bodies and waiting batches held at
	                            * once (see ingest.c); 0 = 256 MiB; at
	                            * least 2 x max_body */
	bool verbose;              /* one DEBUG line per request */
};

struct ingest_server;

/* Binds and starts serving (four threads) into rec, which the caller keeps
 * owning and must close after ingest_server__stop; the server is rec's only
 * producer and sets its notify callback until stopped. On error, NULL is
 * returned, errno is set and err holds one line such as "cannot listen on
 * 127.0.0.1:8080: Address already in use". */
struct ingest_server *ingest_server__start(const struct ingest_opts *o, struct recorder *rec,
					   char *err, size_t errlen);

/* The bound port (the chosen one when the port was 0). */
uint16_t ingest_server__port(const struct ingest_server *s);

/* Stops accepting, lets requests in progress finish (up to 2 s), answers
 * 503 to those still waiting for the store (taking their entries back),
 * closes every connection and frees s. NULL is a no-op. */
void ingest_server__stop(struct ingest_server *s);

/* The `sqltrace-bpf ingest` subcommand; argv[0] is "ingest". Runs until
 * SIGINT or SIGTERM, then stops accepting, drains the store and returns 0;
 * returns 2 on a usage error, 1 when it cannot start. */
int ingest__main(int argc, char **argv);

#endif
