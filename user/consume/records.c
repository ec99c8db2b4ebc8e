/* records.c — the ring buffer consumer: each record becomes an entry (its
 * statement text, database name, trace id, process) handed to the
 * consumers; when they have no room the entry is held and the ring is not
 * read further (backpressure instead of drops). Part of the tracer
 * (tracer_int.h).
 */
#include "tracer_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "dbnames.h"
#include "elfsym.h"
#include "event.h"
#include "gosql_attach.h"
#include "layout.h"
#include "log.h"
#include "probepos.h"
#include "procmaps.h"
#include "sqltrace.h"
#include "sqltrace.skel.h"
#include "target.h"
#include "traceparent.h"
#include "watchdog.h"

static struct learn_slot *learn_slot(struct tracer *t, uint32_t pid, uint64_t stmt)
{
	uint64_t h = (stmt >> 4) ^ ((uint64_t)pid * 0x9E3779B97F4A7C15ULL);

	return &t->learn[(h ^ (h >> 29)) % LEARN_CACHE_SLOTS];
}

static void handle_learn(struct tracer *t, const struct st_event *ev, size_t size)
{
	struct lib *l;
	struct learn_slot *slot;
	size_t len;
	char *text;
	uint32_t key = ev->lib_id;

	if (ev->lib_id >= t->nlibs)
		return;
	l = &t->libs[ev->lib_id];
	text = event__text(ev, size, &len);
	if (!text)
		return;
	/* What BPF saw at the prepare's return, else the statement read now
	 * (if the program has not finalized it yet) */
	if (l->cfg.learn && (layout__learn_words(ev->duration_ns, ev->rows, &l->cfg) == 0 ||
			     layout__learn(ev->pid, ev->stmt, ev->db, text, len, &l->cfg) == 0)) {
		l->cfg.learn = 0;
		if (bpf_map__update_elem(t->skel->maps.libs, &key, sizeof(key), &l->cfg, sizeof(l->cfg),
					 BPF_ANY) == 0)
			log_verbose("%s: layout learned (zSql at %d, db at %d)", l->path, l->cfg.vdbe_zsql_off,
				    l->cfg.vdbe_db_off);
	}
	/* Keep the text for executions that end before the layout reaches BPF. */
	slot = learn_slot(t, ev->pid, ev->stmt);
	free(slot->text);
	slot->pid = ev->pid;
	slot->stmt = ev->stmt;
	slot->text = text;
}

struct target *records__target_of(struct tracer *t, int pid)
{
	size_t i;

	/* The newest first: with --cgroup a pid may come back, reused. */
	for (i = t->ntargets; i-- > 0;)
		if (t->targets[i].pid == pid)
			return &t->targets[i];
	return NULL;
}

/* Fills the entry's TraceID by the --trace-id-from rule: the shim's id
 * (sanitised: printable ASCII, at most 64 bytes) wins; otherwise a valid
 * sqlcommenter traceparent in the text, whose span id becomes the parent
 * span. A malformed traceparent is ignored. */
static void apply_trace_id(struct tracer *t, const struct st_event *ev, struct st_entry *e)
{
	char id[ST_TRACE_ID_MAX], trace[33], span[17];
	size_t i;

	if (t->opts.trace_id_from & TRACE_ID_FROM_SHIM) {
		for (i = 0; i < ST_TRACE_ID_MAX - 1 && ev->trace_id[i]; i++) {
			unsigned char c = ev->trace_id[i];

			id[i] = c < 0x20 || c >= 0x7f ? '_' : (char)c;
		}
		id[i] = '\0';
		if (i > 0) {
			entry__set_str(&e->trace_id, id);
			return;
		}
	}
	if ((t->opts.trace_id_from & TRACE_ID_FROM_COMMENT) &&
	    traceparent__extract(e->query, strlen(e->query), trace, span) == 0) {
		entry__set_str(&e->trace_id, trace);
		entry__set_str(&e->parent_span_id, span);
	}
}

void records__deliver(struct tracer *t, struct st_entry *e)
{
	t->stats.entries++;
	t->opts.on_entry(e, t->opts.ctx);
}

/* Hands the held entry over once the consumers have room, waiting at most
 * ms for it. Returns whether nothing is held any more. */
bool records__release_held(struct tracer *t, int ms)
{
	int64_t t0;
	bool room;

	if (!t->held)
		return true;
	t0 = now_us(CLOCK_MONOTONIC);
	room = t->opts.wait_room(t->opts.ctx, (unsigned)ms);
	t->room_waited_us += (uint64_t)(now_us(CLOCK_MONOTONIC) - t0);
	t->stats.waited_ms = t->room_waited_us / 1000;
	if (!room)
		return false;
	records__deliver(t, t->held);
	t->held = NULL;
	return true;
}

int records__handle(void *ctx, void *data, size_t size)
{
	struct tracer *t = ctx;
	const struct st_event *ev = data;
	const char *fallback = NULL, *lib = gosql__lib(t->go, ev->lib_id);
	struct st_entry *e;
	struct target *tg;

	if (size < offsetof(struct st_event, sql)) {
		t->stats.bad_records++;
		return 0;
	}
	switch (ev->kind) {
	case ST_EV_LEARN:
		handle_learn(t, ev, size);
		return 0;
	case ST_EV_OPEN: {
		size_t len;
		char *name = event__text(ev, size, &len);

		if (name) {
			dbnames__set(t->dbn, ev->pid, ev->db, name);
			free(name);
		}
		return 0;
	}
	case ST_EV_PROC_EXIT:
	case ST_EV_PROC_EXEC:
		targets__process_gone(t, (int)ev->pid, ev->kind == ST_EV_PROC_EXEC);
		return 0;
	default:
		break;
	}
	if (ev->kind == ST_EV_STMT && ev->sql_len == 0) {
		struct learn_slot *slot = learn_slot(t, ev->pid, ev->stmt);

		if (slot->text && slot->pid == ev->pid && slot->stmt == ev->stmt)
			fallback = slot->text;
	}
	if (ev->lib_id < t->nlibs)
		lib = t->libs[ev->lib_id].path;
	e = event__to_entry(ev, size, t->wall_offset_us, fallback, lib);
	if (!e) {
		t->stats.bad_records++;
		return 0;
	}
	apply_trace_id(t, ev, e);
	if (e->duration_us < t->opts.min_duration_us) {
		t->stats.filtered++;
		entry__free(e);
		return 0;
	}
	if (ev->db) {
		const char *name = dbnames__get(t->dbn, ev->pid, ev->db);

		if (name[0])
			entry__set_str(&e->db_file, name);
	}
	tg = records__target_of(t, (int)ev->pid);
	if (tg) {
		tg->entries++;
	} else {
		struct seen *sn = targets__seen_slot(t, ev->pid, true);

		if (sn && sn->entries++ == 0)
			log_verbose("PID %u (%s): first statement", ev->pid, e->process);
	}
	if (t->opts.wait_room && !t->opts.wait_room(t->opts.ctx, 0)) {
		/* No room: keep it, and leave the rest in the ring buffer
		 * until there is (tracer__run). */
		t->held = e;
		return -EAGAIN;
	}
	records__deliver(t, e);
	return 0;
}
