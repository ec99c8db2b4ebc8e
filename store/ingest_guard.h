/* ingest_guard.h — per-connection deadlines for the ingest server (a
 * defence against slowloris clients): a request head that does not arrive
 * in time, or a body that does not, gets its connection closed.
 *
 * libmicrohttpd's own connection timeout is an idle timeout: a client that
 * sends one byte every few seconds never trips it. The guard tracks every
 * connection from libmicrohttpd's connection notifications and closes,
 * from its own thread, those whose current phase has lasted too long:
 *   HEAD  from the connection's start, or the end of its previous request
 *         (an idle keep-alive connection is in this phase), until the
 *         request head is complete: head_timeout_ms, cut to
 *         pressure_head_ms while more than half of max_connections are
 *         open (a legitimate client sends its head at once, so under
 *         pressure slow heads and idle connections make room first);
 *   BODY  from the complete head until the body is: body_timeout_ms;
 *   WAIT  while the server waits for the store (bounded elsewhere): none.
 * Closing is shutdown(2) on the socket: libmicrohttpd sees the end of the
 * stream and closes and frees the connection itself, so the guard never
 * races it for the descriptor (it forgets a connection, under its lock,
 * in the CLOSED notification, which libmicrohttpd sends before close(2)).
 */
#ifndef SQLTRACE_INGEST_GUARD_H
#define SQLTRACE_INGEST_GUARD_H

#include <stdint.h>

#include <microhttpd.h>

struct ingest_guard_opts {
	unsigned head_timeout_ms;
	unsigned body_timeout_ms;
	unsigned pressure_head_ms;
	unsigned max_connections;
};

enum guard_phase { GUARD_HEAD, GUARD_BODY, GUARD_WAIT };

struct ingest_guard;

/* Starts the guard's thread. On error, NULL is returned and errno set. */
struct ingest_guard *ingest_guard__new(const struct ingest_guard_opts *o);

/* Stops the thread and frees g; call after MHD_stop_daemon (no
 * notification comes any more). NULL is a no-op. */
void ingest_guard__free(struct ingest_guard *g);

/* The MHD_OPTION_NOTIFY_CONNECTION callback; cls is the guard. */
void ingest_guard__notify(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code);

/* Moves c into phase ph, starting its clock now. Safe from any thread
 * while c is open; a no-op for a connection the guard does not track. */
void ingest_guard__phase(struct MHD_Connection *c, enum guard_phase ph);

/* Connections closed at a deadline so far. */
uint64_t ingest_guard__closed(struct ingest_guard *g);

#endif
