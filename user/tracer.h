/* tracer.h — the observer: loads the BPF programs, attaches them to the
 * SQLite copies of the target processes, consumes the ring buffer and hands
 * each statement execution, as an entry, to a callback. */
#ifndef SQLTRACE_TRACER_H
#define SQLTRACE_TRACER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "entry.h"

struct tracer;

/* Where an entry's TraceID comes from (--trace-id-from). */
enum trace_id_from {
	TRACE_ID_FROM_COMMENT = 1,  /* a sqlcommenter traceparent in the SQL */
	TRACE_ID_FROM_SHIM = 2,     /* the thread's id set through the shim */
	TRACE_ID_FROM_BOTH = 3,     /* both; the shim's id wins when both exist */
};

struct tracer_opts {
	const int *pids;           /* processes to trace (with binaries: which of
	                            * their processes to trace) */
	size_t npids;
	size_t npids_required;     /* pids[npids_required..] came from -n: each is
	                            * traced if it carries SQLite, else reported;
	                            * only none traceable at all is an error */
	const char *const *binaries;  /* -b: files probed for every process */
	size_t nbinaries;
	const char *name_filter;   /* with binaries: only processes of this name */
	const char *const *cgroups;   /* --cgroup: every process in these cgroups
	                               * (and below), now and later */
	size_t ncgroups;
	unsigned max_targets;      /* processes tracked at once; 0 = 1024 */
	int command_pid;           /* a child about to exec the command, or 0 */
	const char *command_exe;   /* the command's executable (resolved) */
	const char *command_name;
	int64_t min_duration_us;   /* entries shorter than this are not passed on */
	int drain_ms;              /* ring buffer drain period; default 20 */
	bool probe_only;           /* programs do nothing (floor measurement) */
	bool return_mode;          /* --mode return: uretprobes (unsafe with stack switches) */
	bool prepare_time;         /* probe each prepare's return (timed prepares) */
	enum trace_id_from trace_id_from;  /* 0 means TRACE_ID_FROM_BOTH */
	/* Receives every entry (takes ownership). Runs on the caller's thread,
	 * inside tracer__run: it must not block. */
	void (*on_entry)(struct st_entry *e, void *ctx);
	void *ctx;
	/* Called on every loop turn (at least every drain_ms), may be NULL. */
	void (*on_tick)(void *ctx);
	/* Backpressure, may be NULL: waits at most timeout_ms (0: only looks)
	 * until on_entry's consumers have room, and says whether they have.
	 * While they have none, the loop stops consuming (records wait in the
	 * ring buffer, which drops and counts only when it is full too) and
	 * tries again every room_wait_ms; it never drops because a consumer
	 * is slow. On stop, what is held is handed over anyway (the consumers
	 * then count what they cannot take). */
	bool (*wait_room)(void *ctx, unsigned timeout_ms);
	int room_wait_ms;
};

struct tracer_stats {
	uint64_t entries;        /* entries passed to on_entry */
	uint64_t filtered;       /* below min_duration */
	uint64_t rb_drops;       /* records lost: ring buffer full */
	uint64_t stmt_full;      /* executions not tracked: statement map full */
	uint64_t read_faults;    /* target memory BPF could not read */
	uint64_t bad_records;    /* records user space could not decode */
	uint64_t waited_ms;      /* time spent waiting for the consumers' room */
	uint64_t unsettled;      /* executions lost: their thread exited before
	                          * the outcome of its last step was read */
	uint64_t unseen_end;     /* executions whose end was not seen (reset by
	                          * a call not probed): ended when noticed */
	uint64_t slots_full;     /* nested calls past the return slots */
	uint64_t rows_uncounted; /* Go Query entries sent without their row
	                          * count (Rows not closed in time) */
	uint64_t loads;          /* loads and execs of watched targets looked at */
	uint64_t ctl_full;       /* loads not reported (control ring full) */
	uint64_t procs_full;     /* processes not traced: --max-targets reached */
	uint64_t procs_seen;     /* processes seen through -b */
	uint64_t live_stmts;     /* statement states held in BPF now */
	uint64_t live_procs;     /* processes registered in BPF now */
};

/* Checks privileges and kernel support, resolves every target, loads and
 * attaches. Returns 0 and *out, or a negative errno with a one-line reason
 * in err (no such process, no SQLite in it, not root, no BTF…). */
int tracer__open(const struct tracer_opts *opts, struct tracer **out, char *err, size_t errlen);

/* Consumes records until *stop becomes non-zero or every target exited;
 * then detaches and drains what is still in the ring buffer. Returns 0, or
 * a negative errno when polling failed. */
int tracer__run(struct tracer *t, volatile sig_atomic_t *stop);

void tracer__stats(struct tracer *t, struct tracer_stats *out);

/* Writes the per-target part of the summary ("pid 42 (python3): 10"). */
void tracer__print_targets(struct tracer *t, FILE *f);

void tracer__free(struct tracer *t);

#endif
