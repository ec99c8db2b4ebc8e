/* tracefile.h — reading a trace file (table sql_traces, written by
 * sqltrace-bpf or by the Go tracer) read-only, through SQLite, while a
 * tracer may be writing it: the seed columns are required, the extra ones
 * (pid, process, rows, db_file…) used when present. */
#ifndef SQLTRACE_TRACEFILE_H
#define SQLTRACE_TRACEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tracefile;

/* Which entries to read; an unset field selects everything. */
struct tf_filter {
	bool has_since, has_until;
	int64_t since_us, until_us;   /* unix µs, inclusive */
	bool has_pid;
	int pid;
	const char *process;          /* NULL: any */
	const char *db_file;
	const char *trace_id;
	bool errors_only;
};

/* One entry as read; strings valid until the callback returns. */
struct tf_row {
	const char *query;
	size_t query_len;
	int64_t duration_us;
	const char *error;            /* "" on success */
	int64_t timestamp_us;
	int64_t rows;                 /* -1 unknown or no such column */
};

/* Opens path read-only (never creates nor modifies it) and checks it holds
 * a sql_traces table with the seed columns. Returns 0 and *out, or a
 * negative errno with a one-line reason in err (missing file, not a
 * database, no sql_traces table, missing column). */
int tracefile__open(const char *path, struct tracefile **out, char *err, size_t errlen);

/* Whether the file's sql_traces has column name. */
bool tracefile__has_column(const struct tracefile *tf, const char *name);

/* Checks that every column the filter needs exists. Returns 0, or -EINVAL
 * with the reason in err. */
int tracefile__check_filter(const struct tracefile *tf, const struct tf_filter *f, char *err,
			    size_t errlen);

/* Smallest and largest timestamp of the selected entries (both 0 when
 * none). Returns 0 or a negative errno with the reason in err. */
int tracefile__span(struct tracefile *tf, const struct tf_filter *f, int64_t *min_us,
		    int64_t *max_us, char *err, size_t errlen);

/* Calls fn for every selected entry, in one read transaction (a snapshot:
 * what a tracer writes meanwhile is not seen). fn returns 0 to go on, or a
 * negative errno to stop, which is returned. Returns 0 or a negative errno
 * with the reason in err. */
int tracefile__scan(struct tracefile *tf, const struct tf_filter *f,
		    int (*fn)(void *ctx, const struct tf_row *r), void *ctx, char *err, size_t errlen);

void tracefile__close(struct tracefile *tf);

#endif
