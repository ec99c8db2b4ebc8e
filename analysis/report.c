/* report.c — `sqltrace-bpf report [FILE]` (report.h): options, one pass over
 * the trace file into fingerprint groups, and the text, JSON and CSV
 * formats (HTML: report_html.c). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "humanize.h"
#include "report.h"
#include "tracefile.h"
#include "units.h"

enum format { FMT_TEXT, FMT_JSON, FMT_CSV, FMT_HTML };

static void usage(FILE *f)
{
	fputs("Usage: sqltrace-bpf report [OPTIONS] [FILE]\n"
	      "\n"
	      "Summarises a trace file (default ./traces.db; written by sqltrace-bpf or by\n"
	      "the Go tracer) by statement fingerprint: the SQL with literals and\n"
	      "parameters as ?, IN lists and VALUES rows collapsed, comments removed.\n"
	      "The file is opened read-only and may be written by a tracer meanwhile.\n"
	      "\n"
	      "Per group: count, total_us, mean_us, p50_us, p95_us, p99_us (nearest rank),\n"
	      "max_us, errors, rows, example, first_seen, last_seen, top_error.\n"
	      "\n"
	      "Options:\n"
	      "  --format FMT      text (default, a table in 100 columns), json, csv, html\n"
	      "  --sort KEY        total (default), count, mean, p99, errors\n"
	      "  --limit N         groups shown (default 20; 0 = all)\n"
	      "  --since WHEN      entries from WHEN: a duration ago (10m, 2h) or a time\n"
	      "                    (2026-11-30T20:00:00Z, 2026-11-30T21:00:00+01:00)\n"
	      "  --until WHEN      entries up to WHEN (same forms)\n"
	      "  --pid PID         entries of that process (needs the pid column)\n"
	      "  --process NAME    entries of processes of that name\n"
	      "  --db-file PATH    entries on that database file\n"
	      "  --trace-id ID     entries of that trace id\n"
	      "  --errors-only     failed entries only\n"
	      "  -o, --output PATH write there instead of stdout\n"
	      "  -h, --help        this help\n"
	      "\n"
	      "Examples:\n"
	      "  sqltrace-bpf report\n"
	      "  sqltrace-bpf report --sort p99 --limit 10 --since 30m run.db\n"
	      "  sqltrace-bpf report --errors-only --process gunicorn\n"
	      "  sqltrace-bpf report --format json traces.db | jq '.[0]'\n"
	      "  sqltrace-bpf report --format html -o report.html\n",
	      f);
}

/* Parses WHEN: a duration ago, or an RFC 3339 time ("T" or a blank between
 * date and time, Z or ±HH:MM, no zone = UTC). Returns 0 and unix µs, or
 * -EINVAL. */
static int parse_when(const char *s, int64_t now_us, int64_t *out)
{
	struct tm tm = {0};
	int64_t d, frac = 0, scale = 100000;
	const char *p;
	time_t t;

	if (units__parse_duration(s, &d) == 0) {
		*out = now_us - d;
		return 0;
	}
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			frac += scale * (*p - '0');
			scale /= 10;
		}
	}
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, sign = *p == '-' ? -1 : 1;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59 || strlen(p) != 6)
			return -EINVAL;
		t -= sign * (hh * 3600 + mm * 60);
		p += 6;
	}
	if (*p)
		return -EINVAL;
	*out = (int64_t)t * 1000000 + frac;
	return 0;
}

struct scan_ctx {
	struct groups *g;
	struct report *r;
};

static int on_row(void *ctx, const struct tf_row *row)
{
	struct scan_ctx *c = ctx;
	struct report *r = c->r;

	if (r->nbuckets) {
		int64_t off = row->timestamp_us - r->span_min;
		size_t b = off <= 0 ? 0 : (size_t)(off / r->bucket_us);

		if (b >= r->nbuckets)
			b = r->nbuckets - 1;  /* written after the span was read */
		r->tl_count[b]++;
		hist__add(&r->tl_hist[b], row->duration_us);
	}
	r->total_us += row->duration_us;
	if (row->error[0])
		r->errors++;
	return groups__add(c->g, row->query, row->query_len, row->duration_us, row->error,
			   row->timestamp_us, row->rows);
}

/* ---- text ---------------------------------------------------------------- */

#define TEXT_WIDTH 100

static void write_text(FILE *f, const struct report *r)
{
	static const char *const sort_names[] = { "total time", "count", "mean", "p99", "errors" };
	char a[16], b[16], c[16], d[16], e[16], h[16], fp[4 * TEXT_WIDTH];
	char pa[32], pb[32], pc[32], pd[32], pe[32], ph[32];
	/* COUNT TOTAL %TIME MEAN P95 P99 ERRORS, then the fingerprint */
	const size_t fpcols = TEXT_WIDTH - (7 + 1 + 7 + 1 + 5 + 1 + 7 + 1 + 7 + 1 + 7 + 1 + 6 + 2);
	size_t i;

	fprintf(f, "%s: %" PRIu64 " entries, %zu fingerprints, %s in total, %" PRIu64 " errors\n",
		r->path, r->entries, r->ngroups, humanize__us(a, r->total_us), r->errors);
	if (r->entries) {
		char t0[32], t1[32];
		time_t s0 = (time_t)(r->span_min / 1000000), s1 = (time_t)(r->span_max / 1000000);
		struct tm tm0, tm1;

		gmtime_r(&s0, &tm0);
		gmtime_r(&s1, &tm1);
		strftime(t0, sizeof(t0), "%Y-%m-%d %H:%M:%S", &tm0);
		strftime(t1, sizeof(t1), "%Y-%m-%d %H:%M:%S", &tm1);
		fprintf(f, "from %s to %s UTC; top %zu by %s\n", t0, t1, r->n, sort_names[r->sort]);
	}
	fprintf(f, "\n%7s %7s %5s %7s %7s %7s %6s  %s\n", "COUNT", "TOTAL", "%TIME", "MEAN", "P95", "P99",
		"ERRORS", "FINGERPRINT");
	for (i = 0; i < r->n; i++) {
		const struct group *g = r->v[i];
		double share = r->total_us > 0 ? 100.0 * (double)g->total_us / (double)r->total_us : 0;

		fprintf(f, "%s %s %5.1f %s %s %s %s  %s\n", humanize__right(pa, humanize__count(a, g->count), 7),
			humanize__right(pb, humanize__us(b, g->total_us), 7), share,
			humanize__right(pc, humanize__us(c, g->count ? g->total_us / (int64_t)g->count : 0), 7),
			humanize__right(pd, humanize__us(d, g->p95_us), 7),
			humanize__right(pe, humanize__us(e, g->p99_us), 7),
			humanize__right(ph, humanize__count(h, g->errors), 6),
			humanize__fit(fp, sizeof(fp), g->fingerprint, fpcols));
	}
	if (r->n < r->ngroups)
		fprintf(f, "(%zu more; --limit 0 shows every fingerprint)\n", r->ngroups - r->n);
}

/* ---- JSON and CSV ------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else if (*p >= 0x80) {
			/* valid UTF-8 passes; any other byte becomes U+FFFD */
			size_t len = *p >= 0xF0 && *p < 0xF5 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC2 && *p < 0xE0 ? 2 : 0;
			size_t k;

			for (k = 1; k < len && (p[k] & 0xC0) == 0x80; k++)
				;
			if (len && k == len) {
				fwrite(p, 1, len, f);
				p += len - 1;
			} else {
				fputs("\\ufffd", f);
			}
		} else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void write_json(FILE *f, const struct report *r)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < r->n; i++) {
		const struct group *g = r->v[i];

		fputs(i ? ",\n{" : "\n{", f);
		fputs("\"fingerprint\":", f);
		json_str(f, g->fingerprint);
		fprintf(f, ",\"count\":%" PRIu64 ",\"total_us\":%" PRId64 ",\"mean_us\":%.17g", g->count,
			g->total_us, (double)g->total_us / (double)g->count);
		fprintf(f, ",\"p50_us\":%" PRId64 ",\"p95_us\":%" PRId64 ",\"p99_us\":%" PRId64
			",\"max_us\":%" PRId64 ",\"errors\":%" PRIu64, g->p50_us, g->p95_us, g->p99_us,
			g->max_us, g->errors);
		if (r->has_rows)
			fprintf(f, ",\"rows\":%" PRId64, g->rows);
		else
			fputs(",\"rows\":null", f);
		fputs(",\"example\":", f);
		json_str(f, g->example);
		fprintf(f, ",\"first_seen\":%" PRId64 ",\"last_seen\":%" PRId64 ",\"top_error\":",
			g->first_seen, g->last_seen);
		if (g->top_error)
			json_str(f, g->top_error);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fputs(r->n ? "\n]\n" : "]\n", f);
}

static void csv_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void write_csv(FILE *f, const struct report *r)
{
	size_t i;

	fputs("fingerprint,count,total_us,mean_us,p50_us,p95_us,p99_us,max_us,errors,rows,example,"
	      "first_seen,last_seen,top_error\r\n", f);
	for (i = 0; i < r->n; i++) {
		const struct group *g = r->v[i];

		csv_str(f, g->fingerprint);
		fprintf(f, ",%" PRIu64 ",%" PRId64 ",%.17g,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
			",%" PRIu64 ",", g->count, g->total_us, (double)g->total_us / (double)g->count,
			g->p50_us, g->p95_us, g->p99_us, g->max_us, g->errors);
		if (r->has_rows)
			fprintf(f, "%" PRId64, g->rows);
		fputc(',', f);
		csv_str(f, g->example);
		fprintf(f, ",%" PRId64 ",%" PRId64 ",", g->first_seen, g->last_seen);
		if (g->top_error)
			csv_str(f, g->top_error);
		fputs("\r\n", f);
	}
}

/* ---- the subcommand -------------------------------------------------------- */

/* Adds every group's error messages into r->errs (summed by message). */
static int collect_errors(struct report *r, struct groups *g)
{
	size_t i, k, j;

	for (i = 0; i < groups__count(g); i++) {
		struct group *gr = groups__at(g, i);

		for (k = 0; k < gr->nerrs; k++) {
			for (j = 0; j < r->nerrs; j++)
				if (strcmp(r->errs[j].msg, gr->errs[k].msg) == 0)
					break;
			if (j == r->nerrs) {
				struct group_err *v = realloc(r->errs, (r->nerrs + 1) * sizeof(*v));

				if (!v)
					return -ENOMEM;
				r->errs = v;
				r->errs[r->nerrs].msg = gr->errs[k].msg;  /* borrowed */
				r->errs[r->nerrs++].n = 0;
			}
			r->errs[j].n += gr->errs[k].n;
		}
	}
	return 0;
}

#define FAIL(code, ...) do { fprintf(stderr, "sqltrace-bpf: error: " __VA_ARGS__); \
	fputc('\n', stderr); status = (code); goto out; } while (0)

int report__main(int argc, char **argv)
{
	enum { O_FORMAT = 256, O_SORT, O_LIMIT, O_SINCE, O_UNTIL, O_PID, O_PROCESS, O_DBFILE,
	       O_TRACEID, O_ERRORS };
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, O_FORMAT },
		{ "sort", required_argument, NULL, O_SORT },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "since", required_argument, NULL, O_SINCE },
		{ "until", required_argument, NULL, O_UNTIL },
		{ "pid", required_argument, NULL, O_PID },
		{ "process", required_argument, NULL, O_PROCESS },
		{ "db-file", required_argument, NULL, O_DBFILE },
		{ "trace-id", required_argument, NULL, O_TRACEID },
		{ "errors-only", no_argument, NULL, O_ERRORS },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tf_filter flt = {0};
	struct report r = { .sort = SORT_TOTAL };
	enum format fmt = FMT_TEXT;
	const char *output = NULL;
	struct tracefile *tf = NULL;
	struct groups *g = NULL;
	struct scan_ctx sc;
	struct timeval tv;
	char err[1024], *end;
	long long limit = 20;
	int64_t now_us;
	int c, status = 0, rc;
	FILE *out = stdout;
	size_t i;

	gettimeofday(&tv, NULL);
	now_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
		switch (c) {
		case O_FORMAT:
			if (strcmp(optarg, "text") == 0)
				fmt = FMT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				fmt = FMT_JSON;
			else if (strcmp(optarg, "csv") == 0)
				fmt = FMT_CSV;
			else if (strcmp(optarg, "html") == 0)
				fmt = FMT_HTML;
			else
				FAIL(2, "--format %s: want text, json, csv or html (see sqltrace-bpf report --help)",
				     optarg);
			break;
		case O_SORT:
			if (groups__parse_sort(optarg, &r.sort))
				FAIL(2, "--sort %s: want total, count, mean, p99 or errors (see sqltrace-bpf "
				     "report --help)", optarg);
			break;
		case O_LIMIT:
			errno = 0;
			limit = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || limit < 0)
				FAIL(2, "--limit %s: want a count, 0 for all (see sqltrace-bpf report --help)", optarg);
			break;
		case O_SINCE:
		case O_UNTIL:
			if (parse_when(optarg, now_us, c == O_SINCE ? &flt.since_us : &flt.until_us))
				FAIL(2, "%s %s: want a duration ago (10m, 2h) or a time (2026-11-30T20:00:00Z) "
				     "(see sqltrace-bpf report --help)", c == O_SINCE ? "--since" : "--until", optarg);
			if (c == O_SINCE)
				flt.has_since = true;
			else
				flt.has_until = true;
			break;
		case O_PID: {
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0 || v > INT_MAX)
				FAIL(2, "--pid %s: want a process id (see sqltrace-bpf report --help)", optarg);
			flt.has_pid = true;
			flt.pid = (int)v;
			break;
		}
		case O_PROCESS:
			flt.process = optarg;
			break;
		case O_DBFILE:
			flt.db_file = optarg;
			break;
		case O_TRACEID:
			flt.trace_id = optarg;
			break;
		case O_ERRORS:
			flt.errors_only = true;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			FAIL(2, "%s needs a value (see sqltrace-bpf report --help)", argv[optind - 1]);
		default:
			FAIL(2, "unknown option %s (see sqltrace-bpf report --help)", argv[optind - 1]);
		}
	}
	if (argc - optind > 1)
		FAIL(2, "one trace file at most, got %s and %s (see sqltrace-bpf report --help)",
		     argv[optind], argv[optind + 1]);
	r.path = optind < argc ? argv[optind] : "traces.db";
	if (flt.has_since && flt.has_until && flt.since_us > flt.until_us)
		FAIL(2, "--since is after --until: nothing to report");

	if (tracefile__open(r.path, &tf, err, sizeof(err)) || tracefile__check_filter(tf, &flt, err, sizeof(err)))
		FAIL(1, "%s", err);
	r.has_rows = tracefile__has_column(tf, "rows");
	g = groups__new(true);
	if (!g)
		FAIL(1, "out of memory");
	if (tracefile__span(tf, &flt, &r.span_min, &r.span_max, err, sizeof(err)))
		FAIL(1, "%s", err);
	if (fmt == FMT_HTML) {
		int64_t span = r.span_max - r.span_min + 1;

		r.nbuckets = REPORT_TIMELINE_MAX;
		r.bucket_us = (span + (int64_t)r.nbuckets - 1) / (int64_t)r.nbuckets;
		if (r.bucket_us < 1000000) {
			/* at least a second per bucket */
			r.bucket_us = 1000000;
			r.nbuckets = (size_t)((span + r.bucket_us - 1) / r.bucket_us);
			if (r.nbuckets < 1)
				r.nbuckets = 1;
		}
		r.tl_count = calloc(r.nbuckets, sizeof(*r.tl_count));
		r.tl_hist = calloc(r.nbuckets, sizeof(*r.tl_hist));
		if (!r.tl_count || !r.tl_hist)
			FAIL(1, "out of memory");
	}
	sc.g = g;
	sc.r = &r;
	rc = tracefile__scan(tf, &flt, on_row, &sc, err, sizeof(err));
	if (rc)
		FAIL(1, "%s", err);
	groups__finish(g);
	r.entries = groups__entries(g);
	r.ngroups = groups__count(g);
	if (r.entries) {
		/* the scan's snapshot may hold entries written after span's */
		int64_t lo = INT64_MAX, hi = INT64_MIN;

		for (i = 0; i < r.ngroups; i++) {
			struct group *gr = groups__at(g, i);

			lo = gr->first_seen < lo ? gr->first_seen : lo;
			hi = gr->last_seen > hi ? gr->last_seen : hi;
		}
		r.span_min = lo;
		r.span_max = hi;
	}
	r.v = malloc((r.ngroups ? r.ngroups : 1) * sizeof(*r.v));
	if (!r.v)
		FAIL(1, "out of memory");
	for (i = 0; i < r.ngroups; i++)
		r.v[i] = groups__at(g, i);
	groups__sort(r.v, r.ngroups, r.sort);
	r.n = limit == 0 || (unsigned long long)limit > r.ngroups ? r.ngroups : (size_t)limit;
	if (collect_errors(&r, g))
		FAIL(1, "out of memory");

	if (output) {
		out = fopen(output, "w");
		if (!out) {
			out = stdout;
			FAIL(1, "cannot write %s: %s", output, strerror(errno));
		}
	}
	switch (fmt) {
	case FMT_TEXT:
		write_text(out, &r);
		break;
	case FMT_JSON:
		write_json(out, &r);
		break;
	case FMT_CSV:
		write_csv(out, &r);
		break;
	case FMT_HTML:
		report_html__write(out, &r);
		break;
	}
	if (fflush(out) != 0 || ferror(out))
		FAIL(1, "cannot write %s: %s", output ? output : "the report to stdout", strerror(errno));

out:
	if (out != stdout && fclose(out) != 0 && status == 0) {
		fprintf(stderr, "sqltrace-bpf: error: cannot write %s: %s\n", output, strerror(errno));
		status = 1;
	}
	free(r.v);
	free(r.errs);
	free(r.tl_count);
	free(r.tl_hist);
	groups__free(g);
	tracefile__close(tf);
	return status;
}
