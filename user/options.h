/* options.h — the command line of `sqltrace-bpf` (tracing mode): what the
 * user asked for, parsed and checked, with the defaults applied. */
#ifndef SQLTRACE_OPTIONS_H
#define SQLTRACE_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "recorder.h"
#include "slog.h"

#define MAX_PIDS 256
#define MAX_BINARIES 32
#define MAX_NAMES 32
#define MAX_CGROUPS 16

struct options {
	int pids[MAX_PIDS];
	int npids;
	const char *binaries[MAX_BINARIES];  /* -b */
	int nbinaries;
	const char *names[MAX_NAMES];        /* -n */
	int nnames;
	const char *cgroups[MAX_CGROUPS];    /* --cgroup */
	int ncgroups;
	char **command;              /* -- COMMAND ARGS (NULL-terminated), or NULL */
	unsigned max_targets;
	const char *output;          /* local store path; NULL with --no-store */
	bool output_given;           /* -o given explicitly */
	bool no_store;
	const char *remote;          /* --remote URL */
	int remote_timeout_ms;
	const char *remote_ca;
	const char *remote_token_file;
	const char *spool_dir;
	const char *otlp;            /* --otlp URL ("env": from OTEL_EXPORTER_OTLP_*) */
	const char *otlp_protocol;   /* --otlp-protocol, NULL: environment */
	const char *otlp_compression; /* --otlp-compression, NULL: environment */
	int otlp_timeout_ms;         /* --otlp-timeout, 0: environment */
	const char *otlp_ca;         /* --otlp-ca, NULL: environment */
	bool otlp_only_traced;       /* --otlp-only-traced */
	int64_t spool_max;           /* bytes, 0 = default */
	enum slog_format log_format;
	enum slog_level min_level;
	bool quiet;                  /* print no entry lines */
	int64_t slow_us;             /* WARN above this */
	int64_t min_duration_us;
	struct batch_opts batch;
	int trace_id_from;           /* 1 comment, 2 shim, 3 both (default) */
	bool probe_only;             /* floor measurement: probes with no-op programs */
	bool return_mode;            /* --mode return: uretprobes */
	bool prepare_time;           /* --prepare-time: probe each prepare's return */
	int verbose;
};

/* Parses argv into o. Returns 0, 1 when --help was printed (exit 0), or
 * -EINVAL with a one-line message in err (exit 2). */
int options__parse(int argc, char **argv, struct options *o, char *err, size_t errlen);

void options__usage(FILE *f);

#endif
