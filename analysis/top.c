/* top.c — `sqltrace-bpf top` (top.h): the counting sink, the snapshot, and
 * its two renderings (ncurses full screen, plain --batch text). */
#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "groups.h"
#include "humanize.h"
#include "top.h"
#include "tracer.h"
#include "units.h"

struct top {
	/* options */
	int64_t delay_us;
	bool batch;
	long iterations;            /* 0: until stopped */
	enum group_sort sort;
	/* counting (writer thread), under lock */
	pthread_mutex_t lock;
	struct groups *g;
	uint64_t entries;
	uint64_t oom;               /* entries not counted: out of memory */
	struct recorder *rec;
	/* view (tracer thread) */
	bool started, screen, finished;
	int64_t last_us, next_us;   /* monotonic */
	uint64_t last_entries;
	long shown;                 /* snapshots drawn */
	FILE *saved_err;            /* stderr while the screen is up */
	int saved_fd;
	struct recorder_stats rst;
	struct tracer_stats tst;
	char *targets;              /* tracer__print_targets, last taken */
};

/* ---- counting --------------------------------------------------------------- */

static int sink_write(void *ctx, struct st_entry *const *batch, size_t n)
{
	struct top *t = ctx;
	size_t i;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < n; i++) {
		const struct st_entry *e = batch[i];

		if (groups__add(t->g, e->query, strlen(e->query), e->duration_us, e->error, e->timestamp_us,
				e->rows) == 0)
			t->entries++;
		else
			t->oom++;
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void sink_close(void *ctx)
{
	(void)ctx;  /* t outlives its recorder: freed by top__free */
}

static const struct sink_ops top_sink = { .name = "top", .write = sink_write, .close = sink_close };

/* ---- options -------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("Usage: sqltrace-bpf top [TOP OPTIONS] [TRACING OPTIONS] (-p PID | -n NAME | -b FILE | -- CMD...)\n"
	      "\n"
	      "A live view of the statements the traced processes run, grouped by\n"
	      "fingerprint (literals and parameters as ?), like top: one line per\n"
	      "fingerprint with calls/s over the last interval, calls in total, mean,\n"
	      "p99 (histogram estimate, within 12.5%), errors and share of the total time.\n"
	      "Keys: t total time, c calls, p p99, e errors (sort); q quits.\n"
	      "\n"
	      "Top options:\n"
	      "  -d, --delay DUR    refresh interval (default 1s; 500ms, 2s, or seconds: 0.5)\n"
	      "  --batch            plain snapshots on stdout, no screen control\n"
	      "  --iterations N     stop after N snapshots\n"
	      "  --sort KEY         total (default), count, mean, p99, errors\n"
	      "  -h, --help         this help\n"
	      "\n"
	      "Tracing options are those of sqltrace-bpf (see sqltrace-bpf --help): -p,\n"
	      "-n, -b, -- CMD, and -o FILE / --remote URL to store or send the entries\n"
	      "meanwhile (nothing is stored without -o). Entry lines are not printed.\n"
	      "\n"
	      "Examples:\n"
	      "  sudo sqltrace-bpf top -p 4242\n"
	      "  sudo sqltrace-bpf top -n gunicorn -d 2s --sort p99\n"
	      "  sudo sqltrace-bpf top -o run.db -- python3 job.py\n"
	      "  sudo sqltrace-bpf top --batch --iterations 5 -p 4242 > snapshots.txt\n",
	      f);
}

/* Parses a refresh interval: a duration with a unit, or seconds. */
static int parse_delay(const char *s, int64_t *us)
{
	char *end;
	double v;

	if (units__parse_duration(s, us) == 0)
		return *us >= 10000 ? 0 : -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.01) || v > 86400)
		return -EINVAL;
	*us = (int64_t)(v * 1e6);
	return 0;
}

int top__args(int argc, char **argv, struct top **out, int *targc, char ***targv, char *err,
	      size_t errlen)
{
	struct top *t;
	char **v;
	int i, n = 0;
	bool output = false, dashdash = false;

	*out = NULL;
	*targv = NULL;
	t = calloc(1, sizeof(*t));
	v = calloc((size_t)argc + 3, sizeof(*v));
	if (!t || !v) {
		free(t);
		free(v);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->delay_us = 1000000;
	t->sort = SORT_TOTAL;
	t->saved_fd = -1;
	pthread_mutex_init(&t->lock, NULL);
	v[n++] = (char *)"sqltrace-bpf";
	/* Our options are taken out wherever they are, up to "--" (the
	 * command's own arguments are never looked at). */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		bool has_val = false;
		size_t k;
		static const char *const with_val[] = { "-d", "--delay", "--iterations", "--sort" };

		if (dashdash) {
			v[n++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			dashdash = true;
			if (!output)
				v[n++] = (char *)"--no-store";
			v[n++] = argv[i];
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			free(v);
			top__free(t);
			return 1;
		}
		if (strcmp(a, "--batch") == 0) {
			t->batch = true;
			continue;
		}
		for (k = 0; k < sizeof(with_val) / sizeof(with_val[0]); k++) {
			size_t l = strlen(with_val[k]);

			if (strcmp(a, with_val[k]) == 0) {
				if (i + 1 >= argc) {
					snprintf(err, errlen, "%s needs a value", a);
					goto fail;
				}
				val = argv[++i];
				has_val = true;
				break;
			}
			if (strncmp(a, with_val[k], l) == 0 && a[l] == '=' && with_val[k][1] == '-') {
				val = a + l + 1;
				has_val = true;
				break;
			}
			if (k == 0 && strncmp(a, "-d", 2) == 0 && a[2] && a[1] != '-') {
				val = a + 2;  /* -d500ms */
				has_val = true;
				break;
			}
		}
		if (has_val) {
			const char *name = with_val[k];

			if (k <= 1) {
				if (parse_delay(val, &t->delay_us)) {
					snprintf(err, errlen, "%s %s: want an interval of 10ms or more (500ms, 2s, 0.5)",
						 name, val);
					goto fail;
				}
			} else if (k == 2) {
				char *end;

				errno = 0;
				t->iterations = strtol(val, &end, 10);
				if (errno || end == val || *end || t->iterations <= 0) {
					snprintf(err, errlen, "--iterations %s: want a count of 1 or more", val);
					goto fail;
				}
			} else if (groups__parse_sort(val, &t->sort)) {
				snprintf(err, errlen, "--sort %s: want total, count, mean, p99 or errors", val);
				goto fail;
			}
			continue;
		}
		if (strcmp(a, "-o") == 0 || strncmp(a, "--output", 8) == 0 ||
		    (strncmp(a, "-o", 2) == 0 && a[2]) || strcmp(a, "--no-store") == 0)
			output = true;
		v[n++] = argv[i];
	}
	if (!dashdash && !output)
		v[n++] = (char *)"--no-store";
	v[n] = NULL;
	if (!t->batch && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
		snprintf(err, errlen, "the full-screen view needs a terminal on stdin and stdout: use --batch "
			 "for plain snapshots");
		goto fail;
	}
	t->g = groups__new(false);
	if (t->g) {
		struct batch_opts bo = { .queue_size = 65536, .batch_size = 512, .flush_interval_ms = 50 };

		t->rec = recorder__new(&bo, &top_sink, t);
	}
	if (!t->g || !t->rec) {
		snprintf(err, errlen, "cannot start the view: %s", strerror(errno ? errno : ENOMEM));
		goto fail;
	}
	*out = t;
	*targc = n;
	*targv = v;
	return 0;
fail:
	free(v);
	top__free(t);
	return -EINVAL;
}

struct recorder *top__recorder(struct top *t)
{
	return t->rec;
}

/* ---- the snapshot ----------------------------------------------------------- */

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct row {
	const char *fingerprint;  /* stable: groups are never freed before top */
	uint64_t count, errors;
	int64_t total_us, p99_us;
	double rate;
};

struct snap {
	struct row *rows;
	size_t n;
	uint64_t entries, drops;
	int64_t total_us;
	double rate;
	double elapsed_s;
};

/* Copies the figures under the lock; rates over the time since the last
 * snapshot. Returns 0 or -ENOMEM. */
static int take_snapshot(struct top *t, struct tracer *tr, struct snap *s)
{
	int64_t now = mono_us();
	double el = t->last_us ? (double)(now - t->last_us) / 1e6 : (double)t->delay_us / 1e6;
	struct group **v;
	size_t i, n;

	memset(s, 0, sizeof(*s));
	if (tr) {
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);

		tracer__stats(tr, &t->tst);
		if (m) {
			tracer__print_targets(tr, m);
			fclose(m);
			free(t->targets);
			t->targets = buf;
		}
	}
	if (t->rec)
		recorder__stats(t->rec, &t->rst);
	pthread_mutex_lock(&t->lock);
	groups__finish(t->g);
	n = groups__count(t->g);
	v = malloc((n ? n : 1) * sizeof(*v));
	s->rows = malloc((n ? n : 1) * sizeof(*s->rows));
	if (!v || !s->rows) {
		pthread_mutex_unlock(&t->lock);
		free(v);
		free(s->rows);
		s->rows = NULL;
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		v[i] = groups__at(t->g, i);
	groups__sort(v, n, t->sort);
	for (i = 0; i < n; i++) {
		struct group *g = v[i];

		s->rows[i] = (struct row){ .fingerprint = g->fingerprint, .count = g->count,
					   .errors = g->errors, .total_us = g->total_us, .p99_us = g->p99_us,
					   .rate = el > 0 ? (double)(g->count - g->mark) / el : 0 };
		g->mark = g->count;
		s->total_us += g->total_us;
	}
	s->n = n;
	s->entries = t->entries;
	pthread_mutex_unlock(&t->lock);
	free(v);
	s->rate = el > 0 ? (double)(s->entries - t->last_entries) / el : 0;
	s->elapsed_s = el;
	s->drops = t->tst.rb_drops + t->tst.stmt_full + t->rst.dropped + t->oom;
	t->last_entries = s->entries;
	t->last_us = now;
	return 0;
}

static const char *const sort_names[] = { "total time", "calls", "mean", "p99", "errors" };

/* The column part of a row (no fingerprint), in 52 columns. */
static void row_cols(char *buf, size_t len, const struct row *r, int64_t total_us)
{
	char a[16], b[16], c[16], d[16], pa[32], pb[32], pc[32], pd[32], rate[16];

	snprintf(rate, sizeof(rate), r->rate < 99999.5 ? "%.1f" : "%.0f", r->rate);
	snprintf(buf, len, "%9s %s %s %s %s %5.1f", rate, humanize__right(pa, humanize__count(a, r->count), 8),
		 humanize__right(pb, humanize__us(b, r->count ? r->total_us / (int64_t)r->count : 0), 7),
		 humanize__right(pc, humanize__us(c, r->p99_us), 7),
		 humanize__right(pd, humanize__count(d, r->errors), 6),
		 total_us > 0 ? 100.0 * (double)r->total_us / (double)total_us : 0.0);
}

#define COLS_HEAD "   CALLS/S    CALLS    MEAN     P99 ERRORS %TIME"

static void print_batch(struct top *t, const struct snap *s)
{
	char line[256], ts[32];
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	printf("sqltrace-bpf top %s UTC: %.1f entries/s, %" PRIu64 " entries, %" PRIu64 " drops, sorted by %s; "
	       "targets: %s\n", ts, s->rate, s->entries, s->drops, sort_names[t->sort],
	       t->targets && t->targets[0] ? t->targets : "-");
	printf("%s  FINGERPRINT\n", COLS_HEAD);
	for (i = 0; i < s->n; i++) {
		row_cols(line, sizeof(line), &s->rows[i], s->total_us);
		printf("%s  %s\n", line, s->rows[i].fingerprint);
	}
	putchar('\n');
	fflush(stdout);
}

static void draw_screen(struct top *t, const struct snap *s)
{
	char line[1024], cols[256];
	int y = 0, maxy, maxx;
	size_t i;
	bool narrow;

	getmaxyx(stdscr, maxy, maxx);
	if (maxx < 1 || maxy < 1)
		return;
	narrow = maxx < 70;
	erase();
	snprintf(cols, sizeof(cols), "sqltrace-bpf top: %.1f entries/s, %" PRIu64 " entries, %" PRIu64 " drops",
		 s->rate, s->entries, s->drops);
	mvaddstr(y++, 0, humanize__fit(line, sizeof(line), cols, (size_t)maxx));
	if (y < maxy) {
		snprintf(cols, sizeof(cols), "targets: %.200s", t->targets && t->targets[0] ? t->targets : "-");
		mvaddstr(y++, 0, humanize__fit(line, sizeof(line), cols, (size_t)maxx));
	}
	if (y < maxy) {
		snprintf(cols, sizeof(cols), "sorted by %s (t c p e), q quits", sort_names[t->sort]);
		mvaddstr(y++, 0, humanize__fit(line, sizeof(line), cols, (size_t)maxx));
	}
	y++;
	if (y < maxy) {
		attron(A_REVERSE);
		snprintf(cols, sizeof(cols), "%s  %-*s", narrow ? "   CALLS/S %TIME" : COLS_HEAD,
			 maxx > 70 ? maxx - 50 : 20, "FINGERPRINT");
		mvaddstr(y++, 0, humanize__fit(line, sizeof(line), cols, (size_t)maxx));
		attroff(A_REVERSE);
	}
	for (i = 0; i < s->n && y < maxy; i++) {
		const struct row *r = &s->rows[i];
		char text[1600];

		if (narrow)
			snprintf(cols, sizeof(cols), "%10.1f %5.1f", r->rate,
				 s->total_us > 0 ? 100.0 * (double)r->total_us / (double)s->total_us : 0.0);
		else
			row_cols(cols, sizeof(cols), r, s->total_us);
		snprintf(text, sizeof(text), "%s  %.1200s", cols, r->fingerprint);
		mvaddstr(y++, 0, humanize__fit(line, sizeof(line), text, (size_t)maxx));
	}
	refresh();
}

/* Takes a snapshot and shows it. */
static void show(struct top *t, struct tracer *tr)
{
	struct snap s;

	if (take_snapshot(t, tr, &s))
		return;
	if (t->screen)
		draw_screen(t, &s);
	else
		print_batch(t, &s);
	free(s.rows);
	t->shown++;
}

/* ---- the view ------------------------------------------------------------------ */

int top__start(struct top *t, char *err, size_t errlen)
{
	FILE *tmp;

	t->started = true;
	t->last_us = mono_us();
	t->next_us = t->last_us + t->delay_us;
	if (t->batch)
		return 0;
	/* Log lines would tear the screen: stderr goes to a file until the
	 * end, then to the terminal again (top__finish). */
	fflush(stderr);
	tmp = tmpfile();
	t->saved_fd = dup(STDERR_FILENO);
	if (!tmp || t->saved_fd < 0 || dup2(fileno(tmp), STDERR_FILENO) < 0) {
		snprintf(err, errlen, "cannot set stderr aside for the screen: %s", strerror(errno));
		if (tmp)
			fclose(tmp);
		if (t->saved_fd >= 0)
			close(t->saved_fd);
		t->saved_fd = -1;
		return -errno;
	}
	t->saved_err = tmp;
	setlocale(LC_CTYPE, "");  /* UTF-8 fingerprints; numbers stay C */
	if (!initscr()) {
		snprintf(err, errlen, "cannot start the screen (TERM=%s)", getenv("TERM") ? getenv("TERM") : "");
		return -ENOTTY;
	}
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	curs_set(0);
	t->screen = true;
	return 0;
}

bool top__tick(struct top *t, struct tracer *tr)
{
	int64_t now;

	if (!t->started || t->finished)
		return false;
	if (t->screen) {
		int ch;
		bool redraw = false;

		while ((ch = getch()) != ERR) {
			switch (ch) {
			case 'q':
			case 'Q':
				return true;
			case 't':
				t->sort = SORT_TOTAL;
				redraw = true;
				break;
			case 'c':
				t->sort = SORT_COUNT;
				redraw = true;
				break;
			case 'p':
				t->sort = SORT_P99;
				redraw = true;
				break;
			case 'e':
				t->sort = SORT_ERRORS;
				redraw = true;
				break;
			case 'm':
				t->sort = SORT_MEAN;
				redraw = true;
				break;
			case KEY_RESIZE:
				redraw = true;
				break;
			default:
				break;
			}
		}
		if (redraw && t->shown) {
			/* a new order or size now; the interval's rates stay */
			show(t, tr);
			return false;
		}
	}
	now = mono_us();
	if (now < t->next_us)
		return false;
	t->next_us = now + t->delay_us;
	show(t, tr);
	return t->iterations > 0 && t->shown >= t->iterations;
}

void top__finish(struct top *t, struct tracer *tr)
{
	if (!t || t->finished)
		return;
	t->finished = true;
	if (t->rec) {
		recorder__close(t->rec);
		t->rec = NULL;
	}
	if (t->screen) {
		endwin();
		t->screen = false;
	}
	if (t->saved_fd >= 0) {
		char buf[4096];
		size_t n;

		fflush(stderr);
		dup2(t->saved_fd, STDERR_FILENO);
		close(t->saved_fd);
		t->saved_fd = -1;
		rewind(t->saved_err);
		while ((n = fread(buf, 1, sizeof(buf), t->saved_err)) > 0)
			fwrite(buf, 1, n, stderr);
	}
	if (t->saved_err) {
		fclose(t->saved_err);
		t->saved_err = NULL;
	}
	if (t->batch && t->started && (t->iterations == 0 || t->shown < t->iterations))
		show(t, tr);
}

void top__free(struct top *t)
{
	if (!t)
		return;
	if (!t->finished)
		top__finish(t, NULL);
	groups__free(t->g);
	free(t->targets);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
