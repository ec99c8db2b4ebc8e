/* gosql_attach.h — attaching the database/sql probes (bpf/gosql.bpf.c, its
 * own skeleton) to Go executables by the plans the finder made for them
 * (those in which no C SQLite was found), and
 * turning their records into ordinary ones for the tracer's consumer. */
#ifndef SQLTRACE_GOSQL_ATTACH_H
#define SQLTRACE_GOSQL_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gosql_find.h"

struct gosql;

struct gosql_opts {
	const char *filter_comm;   /* -n with -b: only processes of this name, or NULL */
	/* Receives every record (struct st_event), the error's type named when
	 * its message could not be read: the tracer's ring buffer callback. */
	int (*forward)(void *ctx, void *data, size_t size);
	void *ctx;
};

/* Opens the BPF programs; they are loaded into the kernel only when a Go
 * executable is first probed. Returns 0 and *out, or a negative errno with
 * err set. */
int gosql__new(const struct gosql_opts *o, struct gosql **out, char *err, size_t errlen);

/* The ring buffer's fd once loaded (-1 before), to be consumed with
 * gosql__record as callback (ring_buffer__add) and its ctx the gosql. */
int gosql__rb_fd(const struct gosql *g);
int gosql__record(void *ctx, void *data, size_t size);

/* Probes, for process pid (-1: every process that runs it), the Go
 * executable dev/ino by the plan the database/sql finder made for it
 * (user/find/finder.h): through open_path (its map_files link, or the path
 * given), named path in messages. The first time the file is met its plan
 * is taken over (*plan emptied; else the caller frees it, unused); later
 * the file's first plan serves. Returns 0 (also when already probed for
 * pid) or a negative errno with why set. */
int gosql__attach(struct gosql *g, int pid, const char *path, const char *open_path, dev_t dev, ino_t ino,
		  struct gosql_plan *plan, char *why, size_t whylen);

/* What an entry's `lib` is for a record's lib_id (GOSQL_LIB_BASE + copy),
 * or NULL when it is not one of ours. */
const char *gosql__lib(const struct gosql *g, unsigned lib_id);

/* Query entries whose Rows are followed are held until the Rows are
 * closed (their row count and time until then filled in), at most
 * GOSQL_MAX_HELD at once (past that, sent at once without a row count)
 * and at most GOSQL_HOLD_US (or until their process ends): then sent
 * without a row count, and counted (gosql__rows_uncounted). */
#define GOSQL_MAX_HELD 4096
#define GOSQL_HOLD_US  30000000

/* Sends the held entries whose time is up or whose process ended (all of
 * them when all), through the forward callback, stopping at the first it
 * does not take (a negative return: it keeps that one and the tracer waits
 * for room). Call it only when the tracer holds no entry. Returns how many
 * are left to send now (0 when all is true and everything went). */
int gosql__tick(struct gosql *g, bool all);

/* Query entries sent without their row count (their Rows not closed in
 * time, before their process ended or the trace ended). */
uint64_t gosql__rows_uncounted(const struct gosql *g);

/* Removes the calls in progress of processes that ended (their returns
 * will never be seen), so that they do not fill the map for good. Returns
 * how many were removed. This function can't fail. g may be NULL. */
int gosql__sweep(struct gosql *g);

/* Counters of the BPF side (enum st_counter), summed over CPUs. */
uint64_t gosql__counter(const struct gosql *g, unsigned idx);

/* Removes every probe (the end of a run; records already sent stay in
 * the ring buffer to be drained). g may be NULL. */
void gosql__detach(struct gosql *g);

/* g may be NULL. */
void gosql__free(struct gosql *g);

#endif
