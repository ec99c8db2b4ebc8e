/* main.c — sqltrace-bpf's entry point: parses the command line, opens the
 * entry consumers (printer, local store), starts the tracer, and on exit
 * drains everything and prints a one-line summary. `sqltrace-bpf ingest`
 * is dispatched to the ingest server, `report` to analysis/report.c;
 * `top` is tracing with one more consumer, the live view (analysis/top.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "local_store.h"
#include "log.h"
#include "log_sink.h"
#include "options.h"
#include "ingest.h"
#include "recorder.h"
#include "otlp_sink.h"
#include "remote_store.h"
#include "report.h"
#include "target.h"
#include "top.h"
#include "traceparent.h"
#include "tracer.h"

int log_verbose;

/* --config: the arguments made of the config files (kept for the whole
 * run: the options point into them). */
static struct config config;

static int trial_parse(int argc, char **argv, char *err, size_t errlen)
{
	struct options o;
	int rc;

	/* --help (it prints) cannot be in a config file: config__parse refuses it. */
	rc = options__parse(argc, argv, &o, err, errlen);
	return rc < 0 ? rc : 0;
}

static void free_config(void)
{
	config__free(&config);
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct consumers {
	struct recorder *printer;
	struct recorder *store;
	struct recorder *remote;
	struct recorder *top;           /* `top`: the live view's counting */
	struct top *topview;
	struct recorder *otlp;
	bool otlp_only_traced;
	struct remote_stats *otlp_stats;
	uint64_t otlp_untraced;         /* left out: no W3C trace id (--otlp-only-traced) */
	uint64_t otlp_unsampled;        /* left out: the traceparent's sampled flag is 0 */
	struct tracer *tracer;          /* for -v counters, once open */
	int64_t next_report_us;
	enum slog_level min_level;
	int64_t slow_us;
};

/* Whether the OTLP exporter takes e: not when its traceparent says "not
 * sampled" (the parent's sampling decision is respected), nor, with
 * --otlp-only-traced, when it has no W3C trace id. On the tracer's thread. */
static bool otlp_wants(struct consumers *c, const struct st_entry *e)
{
	char trace[TRACEPARENT_TRACE_ID_LEN + 1], span[TRACEPARENT_SPAN_ID_LEN + 1];
	unsigned flags = 1;
	bool w3c = strlen(e->trace_id) == 32 && strspn(e->trace_id, "0123456789abcdef") == 32 &&
		   strspn(e->trace_id, "0") != 32;

	if (c->otlp_only_traced && !w3c) {
		c->otlp_untraced++;
		return false;
	}
	if (e->parent_span_id && e->parent_span_id[0] &&
	    traceparent__extract_flags(e->query, strlen(e->query), trace, span, &flags) == 0 &&
	    !strcmp(trace, e->trace_id) && !(flags & 1)) {
		c->otlp_unsampled++;
		return false;
	}
	return true;
}

/* Hands one entry to every consumer without blocking (the printer only
 * when the entry's level is shown): copies to all but the last, which takes
 * e itself. Takes ownership of e. */
static void on_entry(struct st_entry *e, void *ctx)
{
	struct consumers *c = ctx;
	struct recorder *to[4];
	size_t n = 0, i;

	if (c->printer && slog__entry_level(e, c->slow_us) >= c->min_level)
		to[n++] = c->printer;
	if (c->store)
		to[n++] = c->store;
	if (c->remote)
		to[n++] = c->remote;
	if (c->top)
		to[n++] = c->top;
	if (c->otlp && otlp_wants(c, e))
		to[n++] = c->otlp;
	if (n == 0) {
		entry__free(e);
		return;
	}
	for (i = 0; i + 1 < n; i++) {
		struct st_entry *copy = entry__clone(e);

		if (copy)
			recorder__record(to[i], copy);
	}
	recorder__record(to[n - 1], e);
}

/* Finds the executable execvp would run for cmd (PATH search). Returns a
 * malloc'd path or NULL. */
static char *resolve_command(const char *cmd)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(cmd, '/'))
		return realpath(cmd, NULL);
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);

		if (len > 0 && (size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, cmd) < sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return realpath(buf, NULL);
		path += len + (colon ? 1 : 0);
	}
	return NULL;
}

/* Forks the command, stopped before execvp until *go_fd is written (or
 * closed: then it exits 127 without running). Returns its pid or -errno. */
static int start_command(char **cmd, int *go_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = -errno;

		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		char c;

		close(p[1]);
		signal(SIGPIPE, SIG_DFL);
		if (read(p[0], &c, 1) != 1)
			_exit(127);
		close(p[0]);
		execvp(cmd[0], cmd);
		fprintf(stderr, "sqltrace-bpf: error: cannot run %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(p[0]);
	*go_fd = p[1];
	return pid;
}

/* Waits (at most timeout_ms for each) until every consumer can take an
 * entry: the store, the remote sender, and the printer too (printing is
 * the output the user chose: a slow reader of stdout slows tracing down,
 * the ring buffer absorbs it, nothing is dropped unseen). */
static bool wait_room(void *ctx, unsigned timeout_ms)
{
	struct consumers *c = ctx;

	return (!c->store || recorder__wait_room(c->store, 1, timeout_ms)) &&
	       (!c->remote || recorder__wait_room(c->remote, 1, timeout_ms)) &&
	       (!c->top || recorder__wait_room(c->top, 1, timeout_ms)) &&
	       (!c->otlp || recorder__wait_room(c->otlp, 1, timeout_ms)) &&
	       (!c->printer || recorder__wait_room(c->printer, 1, timeout_ms));
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* With -v, every few seconds: what the consumers wrote and dropped. */
static void on_tick(void *ctx)
{
	struct consumers *c = ctx;
	struct recorder *const rs[] = { c->store, c->remote, c->otlp };
	static const char *const names[] = { "store", "remote", "otlp" };
	int64_t now = mono_us();
	size_t i;

	if (c->topview && c->tracer && top__tick(c->topview, c->tracer))
		stop_requested = 1;  /* q, or --iterations done */
	if (!log_verbose || now < c->next_report_us)
		return;
	c->next_report_us = now + 5000000;
	for (i = 0; i < 3; i++) {
		struct recorder_stats st;

		if (!rs[i])
			continue;
		recorder__stats(rs[i], &st);
		log_verbose("%s: %" PRIu64 " written, %" PRIu64 " dropped (queue full), %" PRIu64
			    " lost, %zu queued", names[i], st.written, st.dropped, st.lost,
			    recorder__pending(rs[i]));
	}
	if (c->otlp && c->otlp_stats) {
		struct remote_stats *s = c->otlp_stats;

		log_verbose("otlp: %" PRIu64 " spans accepted, %" PRIu64 " in the spool, %" PRIu64
			    " rejected, %" PRIu64 " rejected in part, %" PRIu64 " spool full, %" PRIu64
			    " failed requests (retried), %" PRIu64 " not sampled, %" PRIu64 " untraced left out",
			    __atomic_load_n(&s->sent, __ATOMIC_RELAXED),
			    __atomic_load_n(&s->spool_entries, __ATOMIC_RELAXED),
			    __atomic_load_n(&s->rejected, __ATOMIC_RELAXED),
			    __atomic_load_n(&s->partial_rejected, __ATOMIC_RELAXED),
			    __atomic_load_n(&s->spool_full, __ATOMIC_RELAXED),
			    __atomic_load_n(&s->failures, __ATOMIC_RELAXED), c->otlp_unsampled,
			    c->otlp_untraced);
	}
	if (c->tracer) {
		struct tracer_stats ts;

		tracer__stats(c->tracer, &ts);
		log_verbose("tracer: %" PRIu64 " entries, %" PRIu64 " ring-buffer drops, %" PRIu64
			    " untracked (maps full), %" PRIu64 " lost at thread exit, %" PRIu64
			    " ended unseen, %" PRIu64 " nested too deep, %" PRIu64 " ms waiting for room",
			    ts.entries, ts.rb_drops, ts.stmt_full, ts.unsettled, ts.unseen_end, ts.slots_full,
			    ts.waited_ms);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	struct consumers cons = {0};
	struct tracer *t = NULL;
	struct tracer_stats ts;
	struct recorder_stats ss = {0}, rs = {0}, ps = {0}, os = {0};
	struct remote_stats remote_stats = {0}, otlp_stats = {0};
	struct sigaction sa = { .sa_handler = on_signal };
	char err[1024];
	char *command_exe = NULL, **top_argv = NULL;
	struct top *top = NULL;
	int rc, command_pid = 0, go_fd = -1;
	size_t npids_required;

	setvbuf(stderr, NULL, _IOLBF, 0);
	/* The store writes from one thread; SQLite's global memory statistics
	 * (a mutex per allocation) buy nothing here and cost ~10% of its
	 * throughput. Process-wide, so set here, before SQLite initialises. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (argc >= 2 && strcmp(argv[1], "ingest") == 0)
		return ingest__main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "report") == 0)
		return report__main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "top") == 0) {
		rc = top__args(argc - 1, argv + 1, &top, &argc, &top_argv, err, sizeof(err));
		if (rc == 1)
			return 0;
		if (rc < 0) {
			log_error("%s (see sqltrace-bpf top --help)", err);
			return 2;
		}
		argv = top_argv;
	}
	rc = config__expand(argc, argv, &config, err, sizeof(err));
	if (rc < 0) {
		log_error("%s", err);
		return 2;
	}
	atexit(free_config);
	rc = options__parse(config.argc, config.argv, &o, err, sizeof(err));
	if (rc == 1)
		return 0;  /* not with top: top__args took -h and --help */
	if (rc < 0) {
		config__blame(&config, trial_parse, err, sizeof(err));
		log_error("%s (see sqltrace-bpf %s--help)", err, top ? "top " : "");
		top__free(top);
		free(top_argv);
		return 2;
	}
	if (top) {
		o.quiet = true;  /* the view replaces the entry lines */
		cons.top = top__recorder(top);
		cons.topview = top;
	}
	log_verbose = o.verbose;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Ctrl-Z would freeze the tracer while its targets wait on it (a
	 * process stopped for a load is continued by the tracer): it goes on. */
	signal(SIGTSTP, SIG_IGN);

	/* Consumers first: a store problem is reported before attaching. */
	if (o.output) {
		cons.store = local_store__open(o.output, &o.batch, err, sizeof(err));
		if (!cons.store) {
			log_error("%s", err);
			return 1;
		}
	}
	if (o.remote) {
		struct remote_opts ro = {
			.url = o.remote,
			.timeout_ms = o.remote_timeout_ms,
			.ca_file = o.remote_ca,
			.token_file = o.remote_token_file,
			.spool_dir = o.spool_dir,
			.spool_max_bytes = o.spool_max,
			.stats = &remote_stats,
		};

		cons.remote = remote_store__open(&ro, &o.batch, err, sizeof(err));
		if (!cons.remote) {
			log_error("%s", err);
			rc = 1;
			goto out;
		}
	}
	if (o.otlp) {
		struct otlp_opts oo = {
			.url = o.otlp,
			.protocol = o.otlp_protocol,
			.compression = o.otlp_compression,
			.timeout_ms = o.otlp_timeout_ms,
			.ca_file = o.otlp_ca,
			.spool_dir = o.spool_dir,
			.spool_max_bytes = o.spool_max,
			.stats = &otlp_stats,
		};

		cons.otlp = otlp_sink__open(&oo, &o.batch, err, sizeof(err));
		if (!cons.otlp) {
			log_error("%s", err);
			rc = 1;
			goto out;
		}
		cons.otlp_only_traced = o.otlp_only_traced;
		cons.otlp_stats = &otlp_stats;
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
	cons.next_report_us = mono_us() + 5000000;

	/* -n without -b: the processes of that name, now. */
	npids_required = (size_t)o.npids;
	if (o.nnames && !o.nbinaries) {
		int i;

		for (i = 0; i < o.nnames; i++) {
			size_t n = 0;
			int e = target__pids_by_name(o.names[i], o.pids + o.npids, MAX_PIDS - o.npids, &n);

			if (e == -E2BIG) {
				log_error("more than %d processes named %s: use -b to trace them all", MAX_PIDS,
					  o.names[i]);
				rc = 1;
				goto out;
			}
			if (n == 0) {
				log_error("no process named %s", o.names[i]);
				rc = 1;
				goto out;
			}
			o.npids += (int)n;
		}
	}
	if (o.command) {
		command_exe = resolve_command(o.command[0]);
		if (!command_exe) {
			log_error("cannot run %s: command not found", o.command[0]);
			rc = 127;
			goto out;
		}
		command_pid = start_command(o.command, &go_fd);
		if (command_pid < 0) {
			log_error("cannot start %s: %s", o.command[0], strerror(-command_pid));
			rc = 1;
			command_pid = 0;
			goto out;
		}
	}
	{
		const char *base = o.command ? strrchr(o.command[0], '/') : NULL;
		struct tracer_opts to = {
			.pids = o.pids,
			.npids = (size_t)o.npids,
			.npids_required = npids_required,
			.binaries = o.binaries,
			.nbinaries = (size_t)o.nbinaries,
			.name_filter = o.nbinaries && o.nnames ? o.names[0] : NULL,
			.cgroups = o.cgroups,
			.ncgroups = (size_t)o.ncgroups,
			.max_targets = o.max_targets,
			.command_pid = command_pid,
			.command_exe = command_exe,
			.command_name = o.command ? (base ? base + 1 : o.command[0]) : NULL,
			.min_duration_us = o.min_duration_us,
			.probe_only = o.probe_only,
			.return_mode = o.return_mode,
			.prepare_time = o.prepare_time,
			.trace_id_from = (enum trace_id_from)o.trace_id_from,
			.on_entry = on_entry,
			.on_tick = on_tick,
			.wait_room = wait_room,
			.room_wait_ms = 100,
			.ctx = &cons,
		};

		rc = tracer__open(&to, &t, err, sizeof(err));
		if (rc) {
			log_error("%s", err);
			rc = 1;
			goto out;
		}
	}
	cons.tracer = t;
	if (o.ncgroups)
		log_info("tracing every process of %d cgroup%s, now and later%s%s (Ctrl-C to stop)", o.ncgroups,
			 o.ncgroups > 1 ? "s" : "", o.output ? ", storing into " : "", o.output ? o.output : "");
	else if (o.nbinaries)
		log_info("tracing every process of %d file%s%s%s (Ctrl-C to stop)", o.nbinaries,
			 o.nbinaries > 1 ? "s" : "", o.output ? ", storing into " : "", o.output ? o.output : "");
	else
		log_info("tracing %d process%s%s%s (Ctrl-C to stop)", o.npids + (command_pid ? 1 : 0),
			 o.npids + (command_pid ? 1 : 0) > 1 ? "es" : "", o.output ? ", storing into " : "",
			 o.output ? o.output : "");
	if (go_fd >= 0) {
		/* Probes are in place: let the command exec. */
		if (write(go_fd, "g", 1) != 1)
			log_warn("cannot release %s: %s", o.command[0], strerror(errno));
		close(go_fd);
		go_fd = -1;
	}
	if (top && top__start(top, err, sizeof(err))) {
		log_error("%s", err);
		rc = 1;
		goto out;
	}
	rc = tracer__run(t, &stop_requested) ? 1 : 0;
	top__finish(top, t);  /* drains and closes cons.top */
	cons.top = NULL;

out:
	if (go_fd >= 0)
		close(go_fd);  /* the command never ran: it exits 127 */
	if (command_pid > 0) {
		int status = 0;

		/* The command ended (the usual way out), or never started; if we
		 * were stopped while it runs, leave it running, untraced. */
		pid_t w = waitpid(command_pid, &status, t && stop_requested ? WNOHANG : 0);

		if (w == 0)
			log_info("%s (PID %d) goes on running, no longer traced", o.command[0], command_pid);
		else if (w == command_pid && t) {
			if (WIFEXITED(status))
				rc = WEXITSTATUS(status);
			else if (WIFSIGNALED(status))
				rc = 128 + WTERMSIG(status);
		}
	}
	top__finish(top, t);  /* before the summary: the terminal is back */
	cons.top = NULL;
	free(command_exe);
	if (cons.printer) {
		recorder__close_stats(cons.printer, &ps);
		cons.printer = NULL;
	}
	if (cons.store)
		recorder__close_stats(cons.store, &ss);
	if (cons.remote)
		recorder__close_stats(cons.remote, &rs);
	if (cons.otlp)
		recorder__close_stats(cons.otlp, &os);
	if (t) {
		tracer__stats(t, &ts);
		fprintf(stderr, "sqltrace-bpf: %" PRIu64 " entries", ts.entries);
		if (o.output)
			fprintf(stderr, ", %" PRIu64 " stored, %" PRIu64 " dropped (queue full), %" PRIu64 " lost",
				ss.written, ss.dropped, ss.lost);
		if (o.remote) {
			fprintf(stderr, ", %" PRIu64 " sent, %" PRIu64 " spooled for later, %" PRIu64
				" dropped (queue full), %" PRIu64 " lost", remote_stats.sent,
				remote_stats.spool_entries, rs.dropped,
				rs.lost + remote_stats.rejected + remote_stats.spool_full + remote_stats.lost_other);
			if (remote_stats.rejected)
				fprintf(stderr, " (%" PRIu64 " rejected by the endpoint as malformed)",
					remote_stats.rejected);
		}
		if (o.otlp) {
			fprintf(stderr, ", %" PRIu64 " spans exported, %" PRIu64 " spooled for later, %"
				PRIu64 " dropped (queue full), %" PRIu64 " lost", otlp_stats.sent,
				otlp_stats.spool_entries, os.dropped,
				os.lost + otlp_stats.rejected + otlp_stats.spool_full + otlp_stats.lost_other +
				otlp_stats.partial_rejected);
			if (otlp_stats.rejected + otlp_stats.partial_rejected)
				fprintf(stderr, " (%" PRIu64 " rejected by the collector, %" PRIu64
					" of them in part)", otlp_stats.rejected + otlp_stats.partial_rejected,
					otlp_stats.partial_rejected);
			if (cons.otlp_unsampled)
				fprintf(stderr, ", %" PRIu64 " not exported (traceparent not sampled)",
					cons.otlp_unsampled);
			if (cons.otlp_untraced)
				fprintf(stderr, ", %" PRIu64 " not exported (no trace id)", cons.otlp_untraced);
		}
		fprintf(stderr, ", %" PRIu64 " ring-buffer drops", ts.rb_drops);
		if (ps.dropped + ps.lost)
			fprintf(stderr, ", %" PRIu64 " not printed (printer queue full)", ps.dropped + ps.lost);
		if (ts.unsettled)
			fprintf(stderr, ", %" PRIu64 " executions lost (thread exited before its last step's "
				"outcome was read)", ts.unsettled);
		if (ts.unseen_end)
			fprintf(stderr, ", %" PRIu64 " executions ended by calls not seen", ts.unseen_end);
		if (ts.ctl_full)
			fprintf(stderr, ", %" PRIu64 " loads seen late (control ring full)", ts.ctl_full);
		if (ts.slots_full)
			fprintf(stderr, ", %" PRIu64 " calls nested too deep to follow", ts.slots_full);
		if (ts.stmt_full)
			fprintf(stderr, ", %" PRIu64 " executions untracked (maps full)", ts.stmt_full);
		if (ts.rows_uncounted)
			fprintf(stderr, ", %" PRIu64 " Go queries without a row count (rows not closed while "
				"traced)", ts.rows_uncounted);
		if (ts.filtered)
			fprintf(stderr, ", %" PRIu64 " below --min-duration", ts.filtered);
		fprintf(stderr, "; ");
		tracer__print_targets(t, stderr);
		fputc('\n', stderr);
		if (ts.procs_full)
			log_warn("%" PRIu64 " processes not traced: --max-targets reached", ts.procs_full);
		log_verbose("state at exit: %" PRIu64 " statements, %" PRIu64 " processes held in BPF maps",
			    ts.live_stmts, ts.live_procs);
		cons.tracer = NULL;
		tracer__free(t);
	}
	top__free(top);
	free(top_argv);
	return rc;
}
