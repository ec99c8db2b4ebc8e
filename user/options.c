/* options.c — command line parsing for the tracing mode (see options.h). */
#include "options.h"
#include "units.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


void options__usage(FILE *f)
{
	fputs(
"Usage: sqltrace-bpf [OPTIONS] -p PID [-p PID ...]\n"
"       sqltrace-bpf [OPTIONS] -b PATH [-b PATH ...]\n"
"       sqltrace-bpf [OPTIONS] --cgroup PATH [--cgroup PATH ...]\n"
"       sqltrace-bpf [OPTIONS] -- COMMAND [ARGS ...]\n"
"       sqltrace-bpf ingest [OPTIONS]        (receive entries over HTTP; ingest --help)\n"
"       sqltrace-bpf report [OPTIONS] [FILE] (summarise a trace file; report --help)\n"
"       sqltrace-bpf top [OPTIONS] TARGETS   (a live view, like top; top --help)\n"
"\n"
"Shows every SQLite statement a running program executes: its SQL, how long it\n"
"took, whether it failed, with no change to the program. Needs root.\n"
"\n"
"Targets:\n"
"  -p, --pid PID            trace this process (repeatable); with -b, trace only\n"
"                           these of the file's processes (--pid-filter)\n"
"  -n, --name NAME          every running process of that name, as pidof finds\n"
"                           them; with -b: only the file's processes of that name\n"
"  -b, --binary PATH        an executable or a shared library (a libsqlite3, or a\n"
"                           program with SQLite inside): every process that runs\n"
"                           or maps it, now and later, until stopped\n"
"      --cgroup PATH        every process in that cgroup (and the cgroups below\n"
"                           it), now and later: a program started in it is\n"
"                           probed before it runs, one moved in is traced within\n"
"                           ~100 ms; PATH is a directory of the cgroup2 tree, or\n"
"                           relative to its mount (system.slice/myapp.service)\n"
"  -- COMMAND ARGS          start COMMAND under the tracer, trace it from its\n"
"                           first statement, exit with its exit status (the\n"
"                           process and the programs it execs; for its child\n"
"                           processes too, use -b on their SQLite)\n"
"      --max-targets N      processes tracked at once (default 1024); more are\n"
"                           not traced and counted\n"
"SQLite is found in what a process maps (any libsqlite3) and in its executable\n"
"(SQLite linked statically, e.g. Go with mattn/go-sqlite3); processes in other\n"
"mount namespaces (containers) are probed in their own files. A process of\n"
"-p, -n or -- that loads SQLite later (dlopen, a lazy import, a .node/.so\n"
"extension) or execs another program is stopped for the moment it takes to\n"
"probe the new copy, before its first statement; one with no SQLite is named\n"
"on stderr and in the summary (\"no SQLite seen\"), and waited for.\n"
"\n"
"Exit status: 0 once every target ended or on Ctrl-C/SIGTERM, the command's own\n"
"with --, 1 when tracing could not start (the line before says why), 2 for a\n"
"usage error.\n"
"\n"
"Where entries go (default: printed, and stored in ./traces.db):\n"
"  -o, --output PATH        trace store, a SQLite file with table sql_traces\n"
"      --no-store           print only, store nothing\n"
"      --remote URL         POST batches as JSON to URL (a Go tracer back office\n"
"                           or `sqltrace-bpf ingest`); with -o, do both\n"
"      --remote-timeout DUR request timeout (default 5s)\n"
"      --remote-ca FILE     CA bundle for a private TLS CA\n"
"      --remote-token-file FILE  bearer token, read from FILE\n"
"      --spool-dir DIR      keep unsent batches here while the endpoint is down\n"
"      --spool-max SIZE     spool limit (default 64M)\n"
"      --otlp URL           send every entry as an OpenTelemetry span over OTLP/HTTP\n"
"                           to URL/v1/traces (URL as in OTEL_EXPORTER_OTLP_ENDPOINT,\n"
"                           e.g. http://collector:4318; \"env\": the endpoint from\n"
"                           OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT); with -o/--remote,\n"
"                           all of them. OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, _TIMEOUT,\n"
"                           _COMPRESSION, _CERTIFICATE, _PROTOCOL, OTEL_SERVICE_NAME and\n"
"                           OTEL_RESOURCE_ATTRIBUTES are honoured; options win.\n"
"                           Unsent batches wait in SPOOL_DIR/otlp\n"
"      --otlp-protocol http/protobuf|http/json   (default http/protobuf)\n"
"      --otlp-compression gzip|none              (default none)\n"
"      --otlp-timeout DUR   request timeout (default 10s)\n"
"      --otlp-ca FILE       CA bundle for the collector's TLS certificate\n"
"      --otlp-only-traced   export only statements with a W3C trace id (traceparent\n"
"                           comment or shim), not one new trace per statement\n"
"\n"
"Printing:\n"
"      --log-format text|json  slog text (default) or JSON lines\n"
"      --min-level LEVEL    print only entries at LEVEL or above: debug (default),\n"
"                           info, warn, error; storing is not affected\n"
"  -q, --quiet              print no entry lines\n"
"      --slow DUR           an entry slower than DUR is logged at WARN (default 100ms)\n"
"      --min-duration DUR   ignore executions shorter than DUR (not stored either)\n"
"\n"
"Trace ids (which request a statement belongs to):\n"
"      --trace-id-from comment|shim|both\n"
"                           comment: a sqlcommenter traceparent='00-<trace>-<span>-..'\n"
"                           in the SQL; shim: the id the program set with\n"
"                           sqltrace_set_trace_id() (libsqltrace); both (default):\n"
"                           the shim's id wins when a statement has both\n"
"\n"
"Batching (as the Go tracer):\n"
"      --queue-size N       entries queued before dropping (default 1024)\n"
"      --batch-size N       entries per write (default 64)\n"
"      --flush-interval DUR write a partial batch after DUR (default 1s)\n"
"\n"
"      --mode exact|return  exact (default): no uretprobe, safe for programs that\n"
"                           switch stacks (coroutines) or longjmp: a step is\n"
"                           seen at its entry and at an instruction on its way\n"
"                           out (two cheap hits per row); the duration runs from\n"
"                           the first step's entry to the last step's exit,\n"
"                           commit included, never the time a statement sits\n"
"                           idle. return: uretprobes on sqlite3_step and\n"
"                           sqlite3_exec (the same durations, a little cheaper\n"
"                           per hit); it KILLS or derails programs that switch\n"
"                           stacks inside SQLite calls: only for programs known\n"
"                           not to. See docs/data-path.md\n"
"      --prepare-time       also time each prepare (the prepare_us field): its\n"
"                           return is probed too (a slower hit per prepare)\n"
"      --probe-only         attach the same probes with programs that do nothing\n"
"                           and capture nothing: measures what the traps alone\n"
"                           cost the target (the benchmark's floor)\n"
"      --config FILE        read settings from FILE first (one `option = value`\n"
"                           or `flag` a line, the long option names without\n"
"                           --; # comments); the command line wins; repeatable,\n"
"                           must come before every other option; -FILE: FILE\n"
"                           may be missing\n"
"  -v, --verbose            attach details and periodic counters (-vv: libbpf too)\n"
"  -h, --help               this help\n"
"\n"
"Durations: 250us, 10ms, 1.5s, 2m. Stop with Ctrl-C (SIGINT) or SIGTERM: queued\n"
"entries are written before exit. Tracing also ends when every target exits.\n"
"\n"
"Examples:\n"
"  sudo sqltrace-bpf -p 4242                     # print and store in ./traces.db\n"
"  sudo sqltrace-bpf -p 4242 --no-store --min-duration 10ms\n"
"  sudo sqltrace-bpf -p 4242 -o /var/tmp/app-traces.db --min-level warn\n"
"  sudo sqltrace-bpf -p 4242 --remote https://bo.example/api/internal/traces\n"
"  sudo OTEL_SERVICE_NAME=shop OTEL_EXPORTER_OTLP_HEADERS=x-api-key=K \\\n"
"       sqltrace-bpf -p 4242 --otlp http://collector:4318 --otlp-compression gzip\n"
"  sudo sqltrace-bpf -b /usr/lib/x86_64-linux-gnu/libsqlite3.so.0 -n gunicorn\n"
"  sudo sqltrace-bpf -o run.db -- python3 batch_job.py --date today\n"
"  sqlite3 traces.db 'SELECT duration_us, query FROM sql_traces ORDER BY duration_us DESC LIMIT 10'\n",
	f);
}

static int parse_uint(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

enum {
	OPT_NO_STORE = 1000, OPT_REMOTE, OPT_REMOTE_TIMEOUT, OPT_REMOTE_CA, OPT_REMOTE_TOKEN,
	OPT_SPOOL_DIR, OPT_SPOOL_MAX, OPT_LOG_FORMAT, OPT_MIN_LEVEL, OPT_SLOW, OPT_MIN_DURATION,
	OPT_QUEUE, OPT_BATCH, OPT_FLUSH, OPT_PROBE_ONLY, OPT_TRACE_ID_FROM, OPT_MAX_TARGETS, OPT_MODE,
	OPT_PREPARE_TIME, OPT_OTLP, OPT_OTLP_PROTOCOL, OPT_OTLP_COMPRESSION, OPT_OTLP_TIMEOUT,
	OPT_OTLP_CA, OPT_OTLP_ONLY_TRACED,
};

/* Apart, so that options added above do not touch these lines. */
enum { OPT_CGROUP = 1100, OPT_CONFIG };

int options__parse(int argc, char **argv, struct options *o, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "pid-filter", required_argument, NULL, 'p' },
		{ "binary", required_argument, NULL, 'b' },
		{ "name", required_argument, NULL, 'n' },
		{ "max-targets", required_argument, NULL, OPT_MAX_TARGETS },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "output", required_argument, NULL, 'o' },
		{ "no-store", no_argument, NULL, OPT_NO_STORE },
		{ "remote", required_argument, NULL, OPT_REMOTE },
		{ "remote-timeout", required_argument, NULL, OPT_REMOTE_TIMEOUT },
		{ "remote-ca", required_argument, NULL, OPT_REMOTE_CA },
		{ "remote-token-file", required_argument, NULL, OPT_REMOTE_TOKEN },
		{ "spool-dir", required_argument, NULL, OPT_SPOOL_DIR },
		{ "spool-max", required_argument, NULL, OPT_SPOOL_MAX },
		{ "otlp", required_argument, NULL, OPT_OTLP },
		{ "otlp-protocol", required_argument, NULL, OPT_OTLP_PROTOCOL },
		{ "otlp-compression", required_argument, NULL, OPT_OTLP_COMPRESSION },
		{ "otlp-timeout", required_argument, NULL, OPT_OTLP_TIMEOUT },
		{ "otlp-ca", required_argument, NULL, OPT_OTLP_CA },
		{ "otlp-only-traced", no_argument, NULL, OPT_OTLP_ONLY_TRACED },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "min-level", required_argument, NULL, OPT_MIN_LEVEL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "slow", required_argument, NULL, OPT_SLOW },
		{ "min-duration", required_argument, NULL, OPT_MIN_DURATION },
		{ "queue-size", required_argument, NULL, OPT_QUEUE },
		{ "batch-size", required_argument, NULL, OPT_BATCH },
		{ "flush-interval", required_argument, NULL, OPT_FLUSH },
		{ "probe-only", no_argument, NULL, OPT_PROBE_ONLY },
		{ "prepare-time", no_argument, NULL, OPT_PREPARE_TIME },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "trace-id-from", required_argument, NULL, OPT_TRACE_ID_FROM },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct batch_opts defaults = BATCH_OPTS_DEFAULT;
	long long v;
	int64_t d;
	int c;

	memset(o, 0, sizeof(*o));
	o->output = "traces.db";
	o->remote_timeout_ms = 5000;
	o->min_level = SLOG_DEBUG;
	o->slow_us = 100000;
	o->trace_id_from = 3;
	o->batch = defaults;
	opterr = 0;
	optind = 0;  /* 0, not 1: also resets glibc's position inside a cluster */
	while ((c = getopt_long(argc, argv, "+:p:b:n:o:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_uint(optarg, 1, INT_MAX, &v)) {
				snprintf(err, errlen, "invalid PID '%s': expected a positive number", optarg);
				return -EINVAL;
			}
			if (o->npids >= MAX_PIDS) {
				snprintf(err, errlen, "too many -p (at most %d)", MAX_PIDS);
				return -EINVAL;
			}
			o->pids[o->npids++] = (int)v;
			break;
		case 'b':
			if (!*optarg) {
				snprintf(err, errlen, "-b needs a file path");
				return -EINVAL;
			}
			if (o->nbinaries >= MAX_BINARIES) {
				snprintf(err, errlen, "too many -b (at most %d)", MAX_BINARIES);
				return -EINVAL;
			}
			o->binaries[o->nbinaries++] = optarg;
			break;
		case 'n':
			if (!*optarg || strlen(optarg) > 15 || strchr(optarg, '/')) {
				snprintf(err, errlen, "invalid -n '%s': expected a process name (at most 15 "
					 "characters, as in /proc/PID/comm)", optarg);
				return -EINVAL;
			}
			if (o->nnames >= MAX_NAMES) {
				snprintf(err, errlen, "too many -n (at most %d)", MAX_NAMES);
				return -EINVAL;
			}
			o->names[o->nnames++] = optarg;
			break;
		case OPT_CGROUP:
			if (!*optarg) {
				snprintf(err, errlen, "--cgroup needs a cgroup directory");
				return -EINVAL;
			}
			if (o->ncgroups >= MAX_CGROUPS) {
				snprintf(err, errlen, "too many --cgroup (at most %d)", MAX_CGROUPS);
				return -EINVAL;
			}
			o->cgroups[o->ncgroups++] = optarg;
			break;
		case OPT_CONFIG:
			/* Read by config__expand() before parsing (main.c). */
			snprintf(err, errlen, "--config must come before every other option");
			return -EINVAL;
		case OPT_MAX_TARGETS:
			if (parse_uint(optarg, 1, 65536, &v)) {
				snprintf(err, errlen, "invalid --max-targets '%s': expected 1..65536", optarg);
				return -EINVAL;
			}
			o->max_targets = (unsigned)v;
			break;
		case 'o':
			if (!*optarg) {
				snprintf(err, errlen, "-o needs a file path");
				return -EINVAL;
			}
			o->output = optarg;
			o->output_given = true;
			break;
		case OPT_NO_STORE:
			o->no_store = true;
			break;
		case OPT_REMOTE:
			if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
				snprintf(err, errlen, "invalid --remote '%s': expected an http:// or https:// URL",
					 optarg);
				return -EINVAL;
			}
			o->remote = optarg;
			break;
		case OPT_REMOTE_TIMEOUT:
			if (units__parse_duration(optarg, &d) || d < 1000 || d > 600000000LL) {
				snprintf(err, errlen, "invalid --remote-timeout '%s': expected a duration between 1ms and 10m",
					 optarg);
				return -EINVAL;
			}
			o->remote_timeout_ms = (int)(d / 1000);
			break;
		case OPT_REMOTE_CA:
			o->remote_ca = optarg;
			break;
		case OPT_REMOTE_TOKEN:
			o->remote_token_file = optarg;
			break;
		case OPT_SPOOL_DIR:
			o->spool_dir = optarg;
			break;
		case OPT_OTLP:
			if (strcmp(optarg, "env") && strncmp(optarg, "http://", 7) &&
			    strncmp(optarg, "https://", 8)) {
				snprintf(err, errlen, "invalid --otlp '%s': expected an http:// or https:// URL "
					 "such as http://collector:4318, or env", optarg);
				return -EINVAL;
			}
			o->otlp = optarg;
			break;
		case OPT_OTLP_PROTOCOL:
			if (strcmp(optarg, "http/protobuf") && strcmp(optarg, "http/json")) {
				snprintf(err, errlen, "invalid --otlp-protocol '%s': expected http/protobuf or "
					 "http/json", optarg);
				return -EINVAL;
			}
			o->otlp_protocol = optarg;
			break;
		case OPT_OTLP_COMPRESSION:
			if (strcmp(optarg, "gzip") && strcmp(optarg, "none")) {
				snprintf(err, errlen, "invalid --otlp-compression '%s': expected gzip or none",
					 optarg);
				return -EINVAL;
			}
			o->otlp_compression = optarg;
			break;
		case OPT_OTLP_TIMEOUT:
			if (units__parse_duration(optarg, &d) || d < 1000 || d > 600000000LL) {
				snprintf(err, errlen, "invalid --otlp-timeout '%s': expected a duration between 1ms and 10m",
					 optarg);
				return -EINVAL;
			}
			o->otlp_timeout_ms = (int)(d / 1000);
			break;
		case OPT_OTLP_CA:
			o->otlp_ca = optarg;
			break;
		case OPT_OTLP_ONLY_TRACED:
			o->otlp_only_traced = true;
			break;
		case OPT_SPOOL_MAX:
			if (units__parse_size(optarg, &o->spool_max) || o->spool_max <= 0) {
				snprintf(err, errlen, "invalid --spool-max '%s': expected a size like 64M", optarg);
				return -EINVAL;
			}
			break;
		case OPT_LOG_FORMAT:
			if (strcmp(optarg, "text") == 0) {
				o->log_format = SLOG_TEXT;
			} else if (strcmp(optarg, "json") == 0) {
				o->log_format = SLOG_JSON;
			} else {
				snprintf(err, errlen, "invalid --log-format '%s': expected text or json", optarg);
				return -EINVAL;
			}
			break;
		case OPT_MIN_LEVEL:
			if (slog__parse_level(optarg, &o->min_level)) {
				snprintf(err, errlen, "invalid --min-level '%s': expected debug, info, warn or error",
					 optarg);
				return -EINVAL;
			}
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_SLOW:
			if (units__parse_duration(optarg, &o->slow_us)) {
				snprintf(err, errlen, "invalid --slow '%s': expected a duration like 100ms", optarg);
				return -EINVAL;
			}
			break;
		case OPT_MIN_DURATION:
			if (units__parse_duration(optarg, &o->min_duration_us)) {
				snprintf(err, errlen, "invalid --min-duration '%s': expected a duration like 10ms",
					 optarg);
				return -EINVAL;
			}
			break;
		case OPT_QUEUE:
			if (parse_uint(optarg, 1, 1 << 24, &v)) {
				snprintf(err, errlen, "invalid --queue-size '%s': expected 1..16777216", optarg);
				return -EINVAL;
			}
			o->batch.queue_size = (unsigned)v;
			break;
		case OPT_BATCH:
			if (parse_uint(optarg, 1, 1 << 20, &v)) {
				snprintf(err, errlen, "invalid --batch-size '%s': expected 1..1048576", optarg);
				return -EINVAL;
			}
			o->batch.batch_size = (unsigned)v;
			break;
		case OPT_FLUSH:
			if (units__parse_duration(optarg, &d) || d < 1000 || d > 3600000000LL) {
				snprintf(err, errlen, "invalid --flush-interval '%s': expected a duration between 1ms and 1h",
					 optarg);
				return -EINVAL;
			}
			o->batch.flush_interval_ms = (unsigned)(d / 1000);
			break;
		case OPT_TRACE_ID_FROM:
			if (strcmp(optarg, "comment") == 0)
				o->trace_id_from = 1;
			else if (strcmp(optarg, "shim") == 0)
				o->trace_id_from = 2;
			else if (strcmp(optarg, "both") == 0)
				o->trace_id_from = 3;
			else {
				snprintf(err, errlen, "invalid --trace-id-from '%s': expected comment, shim or both",
					 optarg);
				return -EINVAL;
			}
			break;
		case OPT_MODE:
			if (strcmp(optarg, "exact") == 0)
				o->return_mode = false;
			else if (strcmp(optarg, "return") == 0)
				o->return_mode = true;
			else if (strcmp(optarg, "fast") == 0) {
				snprintf(err, errlen, "--mode fast was removed: its durations counted the time a "
					 "statement sat idle; the default mode (exact) costs two cheap probe hits per row");
				return -EINVAL;
			} else {
				snprintf(err, errlen, "invalid --mode '%s': expected exact or return", optarg);
				return -EINVAL;
			}
			break;
		case OPT_PROBE_ONLY:
			o->probe_only = true;
			break;
		case OPT_PREPARE_TIME:
			o->prepare_time = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			options__usage(stdout);
			return 1;
		case ':':
			if (optopt > 0 && optopt < 256)
				snprintf(err, errlen, "option -%c needs a value", optopt);
			else
				snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			if (optopt > 0 && optopt < 256)
				snprintf(err, errlen, "unknown option '-%c'", optopt);
			else
				snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc)
		o->command = &argv[optind];  /* -- COMMAND ARGS (the -- is optional) */
	if (o->npids == 0 && o->nbinaries == 0 && o->nnames == 0 && o->ncgroups == 0 && !o->command) {
		snprintf(err, errlen, "no target: give -p PID, -n NAME, -b PATH, --cgroup PATH or -- COMMAND");
		return -EINVAL;
	}
	if (o->ncgroups && o->nbinaries) {
		snprintf(err, errlen, "--cgroup and -b cannot be combined: -b already traces every process "
			 "of its file (narrow it with -p or -n)");
		return -EINVAL;
	}
	if (o->nbinaries && o->nnames > 1) {
		snprintf(err, errlen, "with -b, give -n once (it filters the file's processes by name)");
		return -EINVAL;
	}
	if (o->batch.batch_size > o->batch.queue_size) {
		snprintf(err, errlen, "--batch-size %u is larger than --queue-size %u",
			 o->batch.batch_size, o->batch.queue_size);
		return -EINVAL;
	}
	if (o->no_store && o->output_given) {
		snprintf(err, errlen, "--no-store and -o contradict each other");
		return -EINVAL;
	}
	if ((o->otlp_protocol || o->otlp_compression || o->otlp_timeout_ms || o->otlp_ca ||
	     o->otlp_only_traced) && !o->otlp) {
		snprintf(err, errlen, "the --otlp-* options need --otlp URL");
		return -EINVAL;
	}
	if (o->no_store || ((o->remote || o->otlp) && !o->output_given))
		o->output = NULL;
	return 0;
}
