/* test_options.c — unit tests of user/options.c: Go-style durations, sizes,
 * and the command line (repeatable -p, bad values named in the message,
 * contradictions, store/remote combinations, batching limits, defaults,
 * --help). */
#include "harness.h"
#include "options.h"
#include "units.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* ---- durations ---------------------------------------------------------- */

/* Parses s; returns the µs, or -999 when rejected. */
static int64_t d(const char *s)
{
	int64_t us = -777;
	int rc = units__parse_duration(s, &us);

	if (rc == -EINVAL)
		return -999;
	if (rc != 0)
		return -888;  /* neither 0 nor -EINVAL: a contract break */
	return us;
}

static bool test_duration_valid(void)
{
	ASSERT_EQ_INT(d("10ms"), 10000);
	ASSERT_EQ_INT(d("150ms"), 150000);
	ASSERT_EQ_INT(d("1.5s"), 1500000);
	ASSERT_EQ_INT(d("1s"), 1000000);
	ASSERT_EQ_INT(d("250us"), 250);
	ASSERT_EQ_INT(d("250\xc2\xb5s"), 250);  /* µs, U+00B5 */
	ASSERT_EQ_INT(d("2m"), 120000000);
	ASSERT_EQ_INT(d("1h"), 3600000000LL);
	ASSERT_EQ_INT(d("1m30s"), 90000000);
	ASSERT_EQ_INT(d("1h1m1s"), 3661000000LL);
	ASSERT_EQ_INT(d("1s500ms"), 1500000);
	ASSERT_EQ_INT(d("0"), 0);
	ASSERT_EQ_INT(d("0s"), 0);
	ASSERT_EQ_INT(d("0.5ms"), 500);
	ASSERT_EQ_INT(d("2000ns"), 2);
	ASSERT_EQ_INT(d(".5s"), 500000);
	return true;
}

static bool test_duration_invalid(void)
{
	ASSERT_EQ_INT(d(""), -999);
	ASSERT_EQ_INT(d(NULL), -999);
	ASSERT_EQ_INT(d("10"), -999);      /* a unit is required except for "0" */
	ASSERT_EQ_INT(d("-1s"), -999);
	ASSERT_EQ_INT(d("+1s"), -999);
	ASSERT_EQ_INT(d("ms"), -999);
	ASSERT_EQ_INT(d("1x"), -999);
	ASSERT_EQ_INT(d("1 s"), -999);
	ASSERT_EQ_INT(d("1s "), -999);
	ASSERT_EQ_INT(d("1m-1s"), -999);
	ASSERT_EQ_INT(d("1sx"), -999);
	ASSERT_EQ_INT(d("s1"), -999);
	ASSERT_EQ_INT(d("00"), -999);
	ASSERT_EQ_INT(d("infs"), -999);
	ASSERT_EQ_INT(d("nans"), -999);
	ASSERT_EQ_INT(d("99999999999999999999h"), -999);  /* overflows int64 µs */
	return true;
}

static bool test_duration_unchanged_on_error(void)
{
	int64_t us = 12345;

	ASSERT_EQ_INT(units__parse_duration("1x", &us), -EINVAL);
	ASSERT_EQ_INT(us, 12345);
	ASSERT_EQ_INT(units__parse_duration("", &us), -EINVAL);
	ASSERT_EQ_INT(us, 12345);
	return true;
}

/* ---- sizes -------------------------------------------------------------- */

static int64_t sz(const char *s)
{
	int64_t b = -777;
	int rc = units__parse_size(s, &b);

	if (rc == -EINVAL)
		return -999;
	if (rc != 0)
		return -888;
	return b;
}

static bool test_size(void)
{
	ASSERT_EQ_INT(sz("0"), 0);
	ASSERT_EQ_INT(sz("10"), 10);
	ASSERT_EQ_INT(sz("1K"), 1024);
	ASSERT_EQ_INT(sz("1k"), 1024);
	ASSERT_EQ_INT(sz("64M"), 64LL * 1024 * 1024);
	ASSERT_EQ_INT(sz("64m"), 64LL * 1024 * 1024);
	ASSERT_EQ_INT(sz("2G"), 2LL * 1024 * 1024 * 1024);
	ASSERT_EQ_INT(sz("1KiB"), 1024);
	ASSERT_EQ_INT(sz("1KB"), 1024);
	ASSERT_EQ_INT(sz("3Mi"), 3LL * 1024 * 1024);
	ASSERT_EQ_INT(sz("9223372036854775807"), INT64_MAX);

	ASSERT_EQ_INT(sz(""), -999);
	ASSERT_EQ_INT(sz(NULL), -999);
	ASSERT_EQ_INT(sz("-1"), -999);
	ASSERT_EQ_INT(sz("K"), -999);
	ASSERT_EQ_INT(sz("1T"), -999);
	ASSERT_EQ_INT(sz("1Kx"), -999);
	ASSERT_EQ_INT(sz("1.5M"), -999);
	ASSERT_EQ_INT(sz("99999999999999999999"), -999);     /* ERANGE */
	ASSERT_EQ_INT(sz("9223372036854775807K"), -999);     /* overflow after the suffix */
	ASSERT_EQ_INT(sz("8589934592G"), -999);              /* 2^33 GiB = 2^63 bytes */
	ASSERT_EQ_INT(sz("8589934591G"), 8589934591LL * 1024 * 1024 * 1024);
	return true;
}

/* ---- command line --------------------------------------------------------- */

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static struct options o;
static char err[256];

static int parse(int argc, char **argv)
{
	err[0] = '\0';
	return options__parse(argc, argv, &o, err, sizeof(err));
}

static bool err_has(const char *needle)
{
	if (strstr(err, needle))
		return true;
	printf("    message \"%s\" does not contain \"%s\"\n", err, needle);
	return false;
}

static bool test_parse_defaults(void)
{
	char *argv[] = { "sqltrace-bpf", "-p", "4242" };

	ASSERT_EQ_INT(parse(ARGC(argv), argv), 0);
	ASSERT_EQ_INT(o.npids, 1);
	ASSERT_EQ_INT(o.pids[0], 4242);
	ASSERT_EQ_STR(o.output, "traces.db");
	ASSERT_TRUE(!o.output_given);
	ASSERT_TRUE(!o.no_store);
	ASSERT_TRUE(o.remote == NULL);
	ASSERT_EQ_INT(o.remote_timeout_ms, 5000);
	ASSERT_EQ_INT(o.batch.queue_size, 1024);
	ASSERT_EQ_INT(o.batch.batch_size, 64);
	ASSERT_EQ_INT(o.batch.flush_interval_ms, 1000);
	ASSERT_EQ_INT(o.slow_us, 100000);
	ASSERT_EQ_INT(o.min_duration_us, 0);
	ASSERT_EQ_INT(o.min_level, SLOG_DEBUG);
	ASSERT_EQ_INT(o.log_format, SLOG_TEXT);
	ASSERT_TRUE(!o.quiet);
	ASSERT_EQ_INT(o.verbose, 0);
	ASSERT_EQ_INT(o.spool_max, 0);
	return true;
}

static bool test_parse_pids_repeatable(void)
{
	char *argv[] = { "sqltrace-bpf", "-p", "1", "--pid", "22", "-p333", "--pid=4444" };

	ASSERT_EQ_INT(parse(ARGC(argv), argv), 0);
	ASSERT_EQ_INT(o.npids, 4);
	ASSERT_EQ_INT(o.pids[0], 1);
	ASSERT_EQ_INT(o.pids[1], 22);
	ASSERT_EQ_INT(o.pids[2], 333);
	ASSERT_EQ_INT(o.pids[3], 4444);
	return true;
}

static bool test_parse_bad_pid(void)
{
	char *a1[] = { "sqltrace-bpf", "-p", "abc" };
	char *a2[] = { "sqltrace-bpf", "-p", "0" };
	char *a3[] = { "sqltrace-bpf", "-p", "-5" };
	char *a4[] = { "sqltrace-bpf", "-p", "12x" };
	char *a5[] = { "sqltrace-bpf", "-p", "99999999999" };
	char *a6[] = { "sqltrace-bpf", "-p", "" };

	ASSERT_EQ_INT(parse(ARGC(a1), a1), -EINVAL);
	ASSERT_TRUE(err_has("'abc'"));
	ASSERT_TRUE(err_has("PID"));
	ASSERT_EQ_INT(parse(ARGC(a2), a2), -EINVAL);
	ASSERT_TRUE(err_has("'0'"));
	ASSERT_EQ_INT(parse(ARGC(a3), a3), -EINVAL);
	ASSERT_TRUE(err_has("'-5'"));
	ASSERT_EQ_INT(parse(ARGC(a4), a4), -EINVAL);
	ASSERT_TRUE(err_has("'12x'"));
	ASSERT_EQ_INT(parse(ARGC(a5), a5), -EINVAL);
	ASSERT_TRUE(err_has("'99999999999'"));
	ASSERT_EQ_INT(parse(ARGC(a6), a6), -EINVAL);
	ASSERT_TRUE(err_has("''"));
	return true;
}

static bool test_parse_no_target(void)
{
	char *argv[] = { "sqltrace-bpf", "-q" };

	ASSERT_EQ_INT(parse(ARGC(argv), argv), -EINVAL);
	ASSERT_TRUE(err_has("-p"));
	return true;
}

static bool test_parse_too_many_pids(void)
{
	static char *argv[1 + 2 * (MAX_PIDS + 1)];
	int i, argc = 1;

	argv[0] = "sqltrace-bpf";
	for (i = 0; i < MAX_PIDS; i++) {
		argv[argc++] = "-p";
		argv[argc++] = "7";
	}
	ASSERT_EQ_INT(parse(argc, argv), 0);
	ASSERT_EQ_INT(o.npids, MAX_PIDS);
	argv[argc++] = "-p";
	argv[argc++] = "8";
	ASSERT_EQ_INT(parse(argc, argv), -EINVAL);
	ASSERT_TRUE(err_has("256"));
	return true;
}

static bool test_parse_unknown_option(void)
{
	char *a1[] = { "sqltrace-bpf", "-p", "1", "--bogus" };
	char *a2[] = { "sqltrace-bpf", "-p", "1", "-x" };
	char *a3[] = { "sqltrace-bpf", "-p", "1", "stray" };

	ASSERT_EQ_INT(parse(ARGC(a1), a1), -EINVAL);
	ASSERT_TRUE(err_has("unknown option"));
	ASSERT_TRUE(err_has("--bogus"));
	ASSERT_EQ_INT(parse(ARGC(a2), a2), -EINVAL);
	ASSERT_TRUE(err_has("unknown option"));
	ASSERT_TRUE(err_has("-x"));
	/* A word after the options is the command to start (-- optional). */
	ASSERT_EQ_INT(parse(ARGC(a3), a3), 0);
	ASSERT_TRUE(o.command != NULL);
	ASSERT_EQ_STR(o.command[0], "stray");
	return true;
}

static bool test_parse_command(void)
{
	char *a1[] = { "sqltrace-bpf", "-o", "x.db", "--", "python3", "-v", "job.py" };
	char *a2[] = { "sqltrace-bpf", "-b", "/usr/lib/libsqlite3.so.0", "-n", "app", "-n", "other" };

	ASSERT_EQ_INT(parse(ARGC(a1), a1), 0);
	ASSERT_EQ_INT(o.npids, 0);
	ASSERT_EQ_STR(o.command[0], "python3");
	ASSERT_EQ_STR(o.command[1], "-v");  /* the command's own options stay its own */
	ASSERT_EQ_STR(o.command[2], "job.py");
	ASSERT_EQ_STR(o.output, "x.db");
	ASSERT_EQ_INT(parse(ARGC(a2), a2), -EINVAL);
	ASSERT_TRUE(err_has("give -n once"));
	return true;
}

static bool test_parse_missing_value(void)
{
	char *a1[] = { "sqltrace-bpf", "-p", "1", "-o" };
	char *a2[] = { "sqltrace-bpf", "-p", "1", "--slow" };
	char *a3[] = { "sqltrace-bpf", "-p" };
	char *a4[] = { "sqltrace-bpf", "-p", "1", "-o", "" };

	ASSERT_EQ_INT(parse(ARGC(a1), a1), -EINVAL);
	ASSERT_TRUE(err_has("-o"));
	ASSERT_TRUE(err_has("needs a value"));
	ASSERT_EQ_INT(parse(ARGC(a2), a2), -EINVAL);
	ASSERT_TRUE(err_has("--slow"));
	ASSERT_TRUE(err_has("needs a value"));
	ASSERT_EQ_INT(parse(ARGC(a3), a3), -EINVAL);
	ASSERT_TRUE(err_has("-p"));
	ASSERT_TRUE(err_has("needs a value"));
	ASSERT_EQ_INT(parse(ARGC(a4), a4), -EINVAL);
	ASSERT_TRUE(err_has("-o"));
	return true;
}

static bool test_parse_store_choices(void)
{
	char *a1[] = { "sqltrace-bpf", "-p", "1", "--no-store" };
	char *a2[] = { "sqltrace-bpf", "-p", "1", "--no-store", "-o", "x.db" };
	char *a3[] = { "sqltrace-bpf", "-p", "1", "-o", "x.db" };
	char *a4[] = { "sqltrace-bpf", "-p", "1", "--remote", "http://bo.example/api/internal/traces" };
	char *a5[] = { "sqltrace-bpf", "-p", "1", "--remote", "https://bo.example/t", "-o", "y.db" };
	char *a6[] = { "sqltrace-bpf", "-p", "1", "--remote", "ftp://bo.example/t" };
	char *a7[] = { "sqltrace-bpf", "-p", "1", "--remote", "bo.example" };

	ASSERT_EQ_INT(parse(ARGC(a1), a1), 0);
	ASSERT_TRUE(o.no_store);
	ASSERT_TRUE(o.output == NULL);

	ASSERT_EQ_INT(parse(ARGC(a2), a2), -EINVAL);
	ASSERT_TRUE(err_has("--no-store"));
	ASSERT_TRUE(err_has("contradict"));

	ASSERT_EQ_INT(parse(ARGC(a3), a3), 0);
	ASSERT_EQ_STR(o.output, "x.db");
	ASSERT_TRUE(o.output_given);

	/* --remote alone: no local store. */
	ASSERT_EQ_INT(parse(ARGC(a4), a4), 0);
	ASSERT_EQ_STR(o.remote, "http://bo.example/api/internal/traces");
	ASSERT_TRUE(o.output == NULL);

	/* --remote with -o: both. */
	ASSERT_EQ_INT(parse(ARGC(a5), a5), 0);
	ASSERT_EQ_STR(o.remote, "https://bo.example/t");
	ASSERT_EQ_STR(o.output, "y.db");

	ASSERT_EQ_INT(parse(ARGC(a6), a6), -EINVAL);
	ASSERT_TRUE(err_has("'ftp://bo.example/t'"));
	ASSERT_EQ_INT(parse(ARGC(a7), a7), -EINVAL);
	ASSERT_TRUE(err_has("'bo.example'"));
	return true;
}

static bool test_parse_otlp(void)
{
	char *a1[] = { "sqltrace-bpf", "-p", "1", "--otlp", "http://collector:4318" };
	char *a2[] = { "sqltrace-bpf", "-p", "1", "--otlp", "https://c", "-o", "y.db",
		       "--otlp-protocol", "http/json", "--otlp-compression", "gzip",
		       "--otlp-timeout", "2s", "--otlp-ca", "/ca.pem", "--otlp-only-traced" };
	char *a3[] = { "sqltrace-bpf", "-p", "1", "--otlp", "env" };
	char *a4[] = { "sqltrace-bpf", "-p", "1", "--otlp", "collector:4318" };
	char *a5[] = { "sqltrace-bpf", "-p", "1", "--otlp", "http://c", "--otlp-protocol", "grpc" };
	char *a6[] = { "sqltrace-bpf", "-p", "1", "--otlp", "http://c", "--otlp-compression", "zstd" };
	char *a7[] = { "sqltrace-bpf", "-p", "1", "--otlp", "http://c", "--otlp-timeout", "0" };
	char *a8[] = { "sqltrace-bpf", "-p", "1", "--otlp-only-traced" };

	/* --otlp alone: no local store; the --otlp-* settings left to the
	 * environment */
	ASSERT_EQ_INT(parse(ARGC(a1), a1), 0);
	ASSERT_EQ_STR(o.otlp, "http://collector:4318");
	ASSERT_TRUE(o.output == NULL);
	ASSERT_TRUE(o.otlp_protocol == NULL && o.otlp_compression == NULL && o.otlp_ca == NULL);
	ASSERT_EQ_INT(o.otlp_timeout_ms, 0);
	ASSERT_TRUE(!o.otlp_only_traced);

	ASSERT_EQ_INT(parse(ARGC(a2), a2), 0);
	ASSERT_EQ_STR(o.output, "y.db");
	ASSERT_EQ_STR(o.otlp_protocol, "http/json");
	ASSERT_EQ_STR(o.otlp_compression, "gzip");
	ASSERT_EQ_INT(o.otlp_timeout_ms, 2000);
	ASSERT_EQ_STR(o.otlp_ca, "/ca.pem");
	ASSERT_TRUE(o.otlp_only_traced);

	ASSERT_EQ_INT(parse(ARGC(a3), a3), 0);
	ASSERT_EQ_STR(o.otlp, "env");

	ASSERT_EQ_INT(parse(ARGC(a4), a4), -EINVAL);
	ASSERT_TRUE(err_has("--otlp 'collector:4318'"));
	ASSERT_EQ_INT(parse(ARGC(a5), a5), -EINVAL);
	ASSERT_TRUE(err_has("--otlp-protocol 'grpc'"));
	ASSERT_EQ_INT(parse(ARGC(a6), a6), -EINVAL);
	ASSERT_TRUE(err_has("--otlp-compression 'zstd'"));
	ASSERT_EQ_INT(parse(ARGC(a7), a7), -EINVAL);
	ASSERT_TRUE(err_has("--otlp-timeout"));
	ASSERT_EQ_INT(parse(ARGC(a8), a8), -EINVAL);
	ASSERT_TRUE(err_has("need --otlp"));
	return true;
}

static bool test_parse_batching(void)
{
	char *a1[] = { "sqltrace-bpf", "-p", "1", "--batch-size", "2000" };
	char *a2[] = { "sqltrace-bpf", "-p", "1", "--batch-size", "2000", "--queue-size", "4096",
		       "--flush-interval", "250ms" };
	char *a3[] = { "sqltrace-bpf", "-p", "1", "--queue-size", "10", "--batch-size", "10" };
	char *a4[] = { "sqltrace-bpf", "-p", "1", "--queue-size", "0" };
	char *a5[] = { "sqltrace-bpf", "-p", "1", "--flush-interval", "500us" };
	char *a6[] = { "sqltrace-bpf", "-p", "1", "--queue-size", "16" };

	/* Larger than the default queue. */
	ASSERT_EQ_INT(parse(ARGC(a1), a1), -EINVAL);
	ASSERT_TRUE(err_has("2000"));
	ASSERT_TRUE(err_has("1024"));
	ASSERT_EQ_INT(parse(ARGC(a2), a2), 0);
	ASSERT_EQ_INT(o.batch.batch_size, 2000);
	ASSERT_EQ_INT(o.batch.queue_size, 4096);
	ASSERT_EQ_INT(o.batch.flush_interval_ms, 250);
	ASSERT_EQ_INT(parse(ARGC(a3), a3), 0);  /* equal is fine */
	ASSERT_EQ_INT(o.batch.batch_size, 10);
	ASSERT_EQ_INT(parse(ARGC(a4), a4), -EINVAL);
	ASSERT_TRUE(err_has("'0'"));
	ASSERT_EQ_INT(parse(ARGC(a5), a5), -EINVAL);  /* below 1ms */
	ASSERT_TRUE(err_has("'500us'"));
	/* A queue below the default batch size. */
	ASSERT_EQ_INT(parse(ARGC(a6), a6), -EINVAL);
	ASSERT_TRUE(err_has("--batch-size 64"));
	return true;
}

static bool test_parse_printing(void)
{
	char *a1[] = { "sqltrace-bpf", "-p", "1", "--log-format", "json", "--min-level", "WARN",
		       "--slow", "1.5s", "--min-duration", "250us", "-q", "-vv" };
	char *a2[] = { "sqltrace-bpf", "-p", "1", "--log-format", "xml" };
	char *a3[] = { "sqltrace-bpf", "-p", "1", "--min-level", "loud" };
	char *a4[] = { "sqltrace-bpf", "-p", "1", "--slow", "10" };
	char *a5[] = { "sqltrace-bpf", "-p", "1", "--remote-timeout", "2s", "--spool-max", "1G",
		       "--spool-dir", "/var/spool/x", "--remote-ca", "ca.pem", "--remote-token-file", "tok",
		       "--remote", "https://h/" };
	char *a6[] = { "sqltrace-bpf", "-p", "1", "--spool-max", "0" };
	char *a7[] = { "sqltrace-bpf", "-p", "1", "--remote-timeout", "11m" };

	ASSERT_EQ_INT(parse(ARGC(a1), a1), 0);
	ASSERT_EQ_INT(o.log_format, SLOG_JSON);
	ASSERT_EQ_INT(o.min_level, SLOG_WARN);
	ASSERT_EQ_INT(o.slow_us, 1500000);
	ASSERT_EQ_INT(o.min_duration_us, 250);
	ASSERT_TRUE(o.quiet);
	ASSERT_EQ_INT(o.verbose, 2);
	ASSERT_EQ_INT(parse(ARGC(a2), a2), -EINVAL);
	ASSERT_TRUE(err_has("'xml'"));
	ASSERT_EQ_INT(parse(ARGC(a3), a3), -EINVAL);
	ASSERT_TRUE(err_has("'loud'"));
	ASSERT_EQ_INT(parse(ARGC(a4), a4), -EINVAL);
	ASSERT_TRUE(err_has("'10'"));
	ASSERT_EQ_INT(parse(ARGC(a5), a5), 0);
	ASSERT_EQ_INT(o.remote_timeout_ms, 2000);
	ASSERT_EQ_INT(o.spool_max, 1024LL * 1024 * 1024);
	ASSERT_EQ_STR(o.spool_dir, "/var/spool/x");
	ASSERT_EQ_STR(o.remote_ca, "ca.pem");
	ASSERT_EQ_STR(o.remote_token_file, "tok");
	ASSERT_EQ_INT(parse(ARGC(a6), a6), -EINVAL);
	ASSERT_TRUE(err_has("'0'"));
	ASSERT_EQ_INT(parse(ARGC(a7), a7), -EINVAL);
	ASSERT_TRUE(err_has("'11m'"));
	return true;
}

/* Parsing twice in one process gives the same result (getopt's global
 * state is reset by options__parse). */
static bool test_parse_repeatable(void)
{
	char *a1[] = { "sqltrace-bpf", "-p", "5", "-q" };
	char *a2[] = { "sqltrace-bpf", "-p", "6" };

	ASSERT_EQ_INT(parse(ARGC(a1), a1), 0);
	ASSERT_TRUE(o.quiet);
	ASSERT_EQ_INT(parse(ARGC(a2), a2), 0);  /* no state left from the first */
	ASSERT_EQ_INT(o.npids, 1);
	ASSERT_EQ_INT(o.pids[0], 6);
	ASSERT_TRUE(!o.quiet);
	return true;
}

/* Runs options__parse with stdout sent to /dev/null (--help prints usage). */
static int parse_quietly(int argc, char **argv)
{
	int saved, devnull, rc;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	devnull = open("/dev/null", O_WRONLY);
	if (saved < 0 || devnull < 0)
		return -12345;
	dup2(devnull, STDOUT_FILENO);
	close(devnull);
	rc = parse(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	return rc;
}

static bool test_parse_help(void)
{
	char *a1[] = { "sqltrace-bpf", "--help" };
	char *a2[] = { "sqltrace-bpf", "-h" };
	char *a3[] = { "sqltrace-bpf", "-p", "1", "-h" };

	ASSERT_EQ_INT(parse_quietly(ARGC(a1), a1), 1);  /* no -p needed for help */
	ASSERT_EQ_INT(parse_quietly(ARGC(a2), a2), 1);
	ASSERT_EQ_INT(parse_quietly(ARGC(a3), a3), 1);
	return true;
}

static bool test_usage_text(void)
{
	char buf[8192];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	size_t n;

	ASSERT_TRUE(f != NULL);
	options__usage(f);
	n = ftell(f);
	fclose(f);
	ASSERT_TRUE(n > 100 && n < sizeof(buf));
	buf[n] = '\0';
	ASSERT_TRUE(strstr(buf, "Usage: sqltrace-bpf") == buf);
	ASSERT_TRUE(strstr(buf, "--no-store") != NULL);
	ASSERT_TRUE(strstr(buf, "--batch-size") != NULL);
	return true;
}

/* An unknown option inside a cluster is named; a second parse starts clean. */
static bool test_cluster_errors_and_reparse(void)
{
	struct options o;
	char err[256];
	char *a1[] = { "sqltrace-bpf", "-xq", "-p", "1", NULL };
	char *a2[] = { "sqltrace-bpf", "-hq", NULL };
	char *a3[] = { "sqltrace-bpf", "-p", "3", NULL };
	FILE *saved = stdout;

	ASSERT_EQ_INT(options__parse(4, a1, &o, err, sizeof(err)), -EINVAL);
	ASSERT_EQ_STR(err, "unknown option '-x'");
	stdout = fopen("/dev/null", "w");
	ASSERT_EQ_INT(options__parse(2, a2, &o, err, sizeof(err)), 1);
	fclose(stdout);
	stdout = saved;
	ASSERT_EQ_INT(options__parse(3, a3, &o, err, sizeof(err)), 0);
	ASSERT_EQ_INT(o.npids, 1);
	ASSERT_EQ_INT(o.pids[0], 3);
	ASSERT_TRUE(!o.quiet);
	return true;
}

int main(void)
{
	/* harness.h prints harness_skip_reason with %s; in a program that never
	 * calls SKIP, gcc -O2 proves it NULL and -Werror=format-overflow fails
	 * the build. */
	harness_skip_reason = "";
	RUN(test_duration_valid);
	RUN(test_duration_invalid);
	RUN(test_duration_unchanged_on_error);
	RUN(test_size);
	RUN(test_parse_defaults);
	RUN(test_parse_pids_repeatable);
	RUN(test_parse_bad_pid);
	RUN(test_parse_no_target);
	RUN(test_parse_too_many_pids);
	RUN(test_parse_unknown_option);
	RUN(test_parse_command);
	RUN(test_parse_missing_value);
	RUN(test_parse_store_choices);
	RUN(test_parse_otlp);
	RUN(test_parse_batching);
	RUN(test_parse_printing);
	RUN(test_parse_repeatable);
	RUN(test_parse_help);
	RUN(test_usage_text);
	RUN(test_cluster_errors_and_reparse);
	return harness_done();
}
