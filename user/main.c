/* main.c — sqltrace-bpf's entry point: parses the command line, opens the
 * entry consumers (printer, local store), starts the tracer, and on exit
 * drains everything and prints a one-line summary. `sqltrace-bpf ingest`
 * is dispatched to the ingest server. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "local_store.h"
#include "log.h"
#include "log_sink.h"
#include "options.h"
#include "recorder.h"
#include "tracer.h"

int log_verbose;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct consumers {
	struct recorder *printer;
	struct recorder *store;
	enum slog_level min_level;
	int64_t slow_us;
};

/* Hands one entry to every consumer without blocking (the printer only
 * when the entry's level is shown). Takes ownership of e. */
static void on_entry(struct st_entry *e, void *ctx)
{
	struct consumers *c = ctx;

	if (c->printer && slog__entry_level(e, c->slow_us) >= c->min_level) {
		if (c->store) {
			struct st_entry *copy = entry__clone(e);

			if (copy)
				recorder__record(c->printer, copy);
		} else {
			recorder__record(c->printer, e);
			return;
		}
	}
	if (c->store)
		recorder__record(c->store, e);
	else
		entry__free(e);
}

int main(int argc, char **argv)
{
	struct options o;
	struct consumers cons = {0};
	struct tracer *t = NULL;
	struct tracer_stats ts;
	struct recorder_stats ss = {0};
	struct sigaction sa = { .sa_handler = on_signal };
	char err[1024];
	int rc;

	setvbuf(stderr, NULL, _IOLBF, 0);
	rc = options__parse(argc, argv, &o, err, sizeof(err));
	if (rc == 1)
		return 0;
	if (rc < 0) {
		log_error("%s (see sqltrace-bpf --help)", err);
		return 2;
	}
	log_verbose = o.verbose;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Consumers first: a store problem is reported before attaching. */
	if (o.output) {
		cons.store = local_store__open(o.output, &o.batch, err, sizeof(err));
		if (!cons.store) {
			log_error("%s", err);
			return 1;
		}
	}
	if (!o.quiet) {
		struct log_sink_opts lo = { .out = stdout, .format = o.log_format, .slow_us = o.slow_us };
		struct batch_opts pb = { .queue_size = 8192, .batch_size = 256, .flush_interval_ms = 50 };

		cons.printer = log_sink__open(&lo, &pb);
		if (!cons.printer) {
			log_error("cannot start the log printer: %s", strerror(errno));
			rc = 1;
			goto out;
		}
	}
	cons.min_level = o.min_level;
	cons.slow_us = o.slow_us;

	{
		struct tracer_opts to = {
			.pids = o.pids,
			.npids = (size_t)o.npids,
			.min_duration_us = o.min_duration_us,
			.probe_only = o.probe_only,
			.trace_id_from = (enum trace_id_from)o.trace_id_from,
			.on_entry = on_entry,
			.ctx = &cons,
		};

		rc = tracer__open(&to, &t, err, sizeof(err));
		if (rc) {
			log_error("%s", err);
			rc = 1;
			goto out;
		}
	}
	log_info("tracing %d process%s%s%s (Ctrl-C to stop)", o.npids, o.npids > 1 ? "es" : "",
		 o.output ? ", storing into " : "", o.output ? o.output : "");
	rc = tracer__run(t, &stop_requested) ? 1 : 0;

out:
	if (cons.printer) {
		recorder__close(cons.printer);  /* stats read before close below */
		cons.printer = NULL;
	}
	if (cons.store) {
		recorder__close_stats(cons.store, &ss);
	}
	if (t) {
		tracer__stats(t, &ts);
		fprintf(stderr, "sqltrace-bpf: %" PRIu64 " entries", ts.entries);
		if (o.output)
			fprintf(stderr, ", %" PRIu64 " stored, %" PRIu64 " dropped (queue full), %" PRIu64 " lost",
				ss.written, ss.dropped, ss.lost);
		fprintf(stderr, ", %" PRIu64 " ring-buffer drops", ts.rb_drops);
		if (ts.stmt_full)
			fprintf(stderr, ", %" PRIu64 " executions untracked (maps full)", ts.stmt_full);
		if (ts.filtered)
			fprintf(stderr, ", %" PRIu64 " below --min-duration", ts.filtered);
		fprintf(stderr, "; ");
		tracer__print_targets(t, stderr);
		fputc('\n', stderr);
		tracer__free(t);
	}
	return rc;
}
