/* report.h — `sqltrace-bpf report [FILE]`: a trace file summarised by
 * statement fingerprint (count, total, percentiles, errors), as a text
 * table, JSON, CSV or a self-contained HTML page (report_html.c). */
#ifndef SQLTRACE_REPORT_H
#define SQLTRACE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "groups.h"
#include "hist.h"

#define REPORT_TIMELINE_MAX 120  /* buckets of the HTML timeline */

/* What the formats print: the groups selected, in order, and the figures
 * over every selected entry. */
struct report {
	const char *path;
	struct group **v;       /* sorted, cut to the limit */
	size_t n;
	size_t ngroups;         /* groups before the limit */
	uint64_t entries;       /* entries selected */
	int64_t total_us;       /* their summed duration */
	uint64_t errors;
	bool has_rows;          /* the file has a rows column */
	enum group_sort sort;
	int64_t span_min, span_max;  /* unix µs of the first and last entry */
	/* timeline (HTML only): statements and latency per bucket */
	size_t nbuckets;
	int64_t bucket_us;
	uint64_t *tl_count;
	struct hist *tl_hist;
	/* every error message over all groups (counted per group, top 16 each) */
	struct group_err *errs;
	size_t nerrs;
};

/* Runs the subcommand: argv[0] is "report". Returns the exit status (0, 1
 * on a failure with a one-line error on stderr, 2 on a usage error). */
int report__main(int argc, char **argv);

/* Writes r as one self-contained HTML page (report_html.c). Returns 0 or a
 * negative errno (a write error). */
int report_html__write(FILE *f, const struct report *r);

#endif
