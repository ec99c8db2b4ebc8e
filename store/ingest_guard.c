/* ingest_guard.c — per-connection deadlines for the ingest server (see
 * ingest_guard.h).
 *
 * DESIGN
 * ------
 * A doubly linked list of tracked connections under one mutex. The
 * connection notifications (libmicrohttpd's threads) add and remove
 * entries; the access handler and the acknowledger move them between
 * phases; one thread wakes every TICK_MS, walks the list and shuts down the
 * socket of each connection past its phase's deadline, once. The work per
 * tick is one pass over at most max_connections entries.
 */
#include "ingest_guard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define TICK_MS 200

struct conn {
	struct ingest_guard *g;
	struct conn *prev, *next;
	int fd;
	enum guard_phase phase;
	uint64_t since_ns;       /* when the phase began */
	bool shut;               /* already shut down */
};

struct ingest_guard {
	struct ingest_guard_opts o;
	pthread_mutex_t mu;
	pthread_cond_t cond;     /* CLOCK_MONOTONIC; the thread sleeps here */
	pthread_t thread;
	bool stop;
	struct conn *head;
	unsigned count;
	bool pressure;           /* on above half the connections, off below a
	                          * quarter: closing some slow heads does not
	                          * give the rest their long deadline back */
	uint64_t closed;         /* atomic */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* One pass: shuts down what is past its deadline. Called with g->mu held. */
static void reap(struct ingest_guard *g)
{
	uint64_t now = now_ns();
	bool pressure;
	uint64_t head_ns;

	if ((uint64_t)g->count * 2 > g->o.max_connections)
		g->pressure = true;
	else if ((uint64_t)g->count * 4 <= g->o.max_connections)
		g->pressure = false;
	pressure = g->pressure;
	head_ns = (uint64_t)(pressure && g->o.pressure_head_ms < g->o.head_timeout_ms
				      ? g->o.pressure_head_ms : g->o.head_timeout_ms) * 1000000ULL;
	uint64_t body_ns = (uint64_t)g->o.body_timeout_ms * 1000000ULL;

	for (struct conn *c = g->head; c; c = c->next) {
		uint64_t limit = c->phase == GUARD_HEAD ? head_ns
			       : c->phase == GUARD_BODY ? body_ns : 0;

		if (c->shut || !limit || now - c->since_ns < limit)
			continue;
		/* the descriptor is still libmicrohttpd's (it is forgotten
		 * here before it is closed): shutting it down ends the stream */
		shutdown(c->fd, SHUT_RDWR);
		c->shut = true;
		__atomic_fetch_add(&g->closed, 1, __ATOMIC_RELAXED);
	}
}

static void *guard_main(void *arg)
{
	struct ingest_guard *g = arg;

	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		uint64_t t = now_ns() + TICK_MS * 1000000ULL;
		struct timespec ts = { (time_t)(t / 1000000000ULL), (long)(t % 1000000000ULL) };

		pthread_cond_timedwait(&g->cond, &g->mu, &ts);
		if (!g->stop)
			reap(g);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

struct ingest_guard *ingest_guard__new(const struct ingest_guard_opts *o)
{
	struct ingest_guard *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	if (!g)
		return NULL;
	g->o = *o;
	if ((err = pthread_mutex_init(&g->mu, NULL)))
		goto err_free;
	if ((err = pthread_condattr_init(&ca)))
		goto err_mutex;
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(&g->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (err)
		goto err_mutex;
	/* every signal blocked: SIGINT/SIGTERM stay with the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&g->thread, NULL, guard_main, g);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto err_cond;
	return g;

err_cond:
	pthread_cond_destroy(&g->cond);
err_mutex:
	pthread_mutex_destroy(&g->mu);
err_free:
	free(g);
	errno = err;
	return NULL;
}

void ingest_guard__free(struct ingest_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = true;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	while (g->head) {   /* none left after MHD_stop_daemon; be safe */
		struct conn *c = g->head;

		g->head = c->next;
		free(c);
	}
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

void ingest_guard__notify(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct ingest_guard *g = cls;
	struct conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (!ci || !(c = calloc(1, sizeof(*c))))
			return;  /* untracked: only the idle timeout applies to it */
		c->g = g;
		c->fd = ci->connect_fd;
		c->phase = GUARD_HEAD;
		c->since_ns = now_ns();
		pthread_mutex_lock(&g->mu);
		c->next = g->head;
		if (g->head)
			g->head->prev = c;
		g->head = c;
		g->count++;
		pthread_mutex_unlock(&g->mu);
		*socket_context = c;
		return;
	}
	if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
		pthread_mutex_lock(&g->mu);
		if (c->prev)
			c->prev->next = c->next;
		else
			g->head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		g->count--;
		pthread_mutex_unlock(&g->mu);
		free(c);
		*socket_context = NULL;
	}
}

void ingest_guard__phase(struct MHD_Connection *mc, enum guard_phase ph)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn *c = ci ? ci->socket_context : NULL;

	if (!c)
		return;
	pthread_mutex_lock(&c->g->mu);
	c->phase = ph;
	c->since_ns = now_ns();
	pthread_mutex_unlock(&c->g->mu);
}

uint64_t ingest_guard__closed(struct ingest_guard *g)
{
	return __atomic_load_n(&g->closed, __ATOMIC_RELAXED);
}
