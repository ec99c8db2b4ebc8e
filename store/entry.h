/* entry.h — the trace entry: one record per statement execution, the unit
 * that flows from the ring buffer consumer through the pipeline into the
 * local store, the remote sender and the log printer.
 *
 * The first six fields are the Go tracer's Entry (seed-behaviour.md) and keep
 * its meaning exactly; the rest are sqltrace-bpf's extra fields, stored in
 * extra nullable columns and sent under their own JSON keys.
 *
 * Ownership: every string is owned by the entry and released with it by
 * entry__free. The seed strings are never NULL ("" when empty); the extra
 * strings may be NULL when unknown. Integer extras use -1 for "unknown".
 *
 * Two layouts, the same to every reader:
 *   - separate (entry__new): each string is its own heap block. A string may
 *     be replaced with entry__set_str(n), or free()d and replaced by another
 *     malloc'd string.
 *   - packed (entry__clone, hence json__decode_batch's entries): the entry
 *     and its strings are one heap block (one malloc, one free: cheap to pass
 *     between threads). Its strings are read-only: never free() one, assign
 *     a slot, or pass a slot to entry__set_str(n); to change one, modify a
 *     separate entry (entry__new) instead.
 * Every user today complies: only the producers of separate entries
 * (user/consume/event.c and records.c, tests) change strings, before recording.
 */
#ifndef SQLTRACE_ENTRY_H
#define SQLTRACE_ENTRY_H

#include <stdint.h>
#include <stddef.h>

struct st_entry {
	/* --- seed fields (Go: TraceID, Op, Query, DurationUs, Error, Timestamp) */
	char *trace_id;        /* request correlation id, "" when none */
	char *op;              /* "Exec" or "Query" */
	char *query;           /* SQL text, possibly cut (see query_len) */
	int64_t duration_us;   /* first step .. end of the execution */
	char *error;           /* "" on success */
	int64_t timestamp_us;  /* unix µs when the statement finished */

	/* --- extra fields (JSON key / column name in comments) */
	int32_t pid;           /* Pid / pid: process (tgid), -1 unknown */
	int32_t tid;           /* Tid / tid: thread, -1 unknown */
	char *process;         /* Process / process: process name (comm) */
	int64_t rows;          /* Rows / rows: rows returned, -1 unknown */
	int64_t prepare_us;    /* PrepareUs / prepare_us: time in the prepare that
	                        * preceded this execution, -1 when not seen */
	int64_t query_len;     /* QueryLen / query_len: original text length in
	                        * bytes, -1 unknown; > strlen(query) when cut */
	char *lib;             /* Lib / lib: SQLite copy it came from (path) */
	char *db_file;         /* DbFile / db_file: database file name */
	char *parent_span_id;  /* ParentSpanID / parent_span_id: from traceparent */

	/* --- private to entry.c: 0 for a separate entry, else the size of the
	 * packed entry's one block (struct and strings) */
	size_t packed_size;
};

/* Allocates a separate entry, zeroed, with seed strings set to "" and
 * integer extras to -1. On error, NULL is returned (errno ENOMEM). */
struct st_entry *entry__new(void);

/* Frees the entry and every string it owns. NULL is a no-op. */
void entry__free(struct st_entry *e);

/* Deep copy of a separate or packed entry (or of a struct on the stack whose
 * string slots point anywhere, NULL seed strings being copied as ""), as a
 * packed entry. On error, NULL is returned (errno ENOMEM). */
struct st_entry *entry__clone(const struct st_entry *e);

/* Replaces *slot, a string of a separate entry (or NULL), with a copy of
 * the first n bytes of s (NUL-terminated); frees the old string. Returns 0,
 * or -ENOMEM leaving *slot unchanged. */
int entry__set_strn(char **slot, const char *s, size_t n);

/* Same with the whole NUL-terminated string s. */
int entry__set_str(char **slot, const char *s);

#endif
