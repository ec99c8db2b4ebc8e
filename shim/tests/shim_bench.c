/* shim_bench.c — measures what the shim's calls cost the program that makes
 * them, in ns per call, with or without a tracer attached.
 *
 * Usage: shim_bench [-n ITERATIONS] [-r REPEATS] [-w]
 *   -n  calls per measurement (default 1000000; lower it with a tracer
 *       attached, where a call costs microseconds)
 *   -r  repetitions of each measurement (default 5); the median and the
 *       minimum over them are printed
 *   -w  print "ready pid=<pid>" and wait for a line on stdin before
 *       measuring (attach the tracer in between)
 *
 * One line per measurement:
 *   bench op=<op> link=<shared|static> iterations=<n> repeats=<r>
 *         median_ns=<x.xx> min_ns=<x.xx> semaphore=<value|n/a>
 * ops: set_trace_id_16 (a 16-byte id), set_trace_id_32 (a W3C trace id),
 * set_trace_id_55 (a whole traceparent), clear_trace_id, set_clear_pair
 * (one set plus one clear: the cost of a request that sets and clears),
 * get_trace_id, and noop (an empty out-of-line function: the floor of the
 * loop and call). `semaphore` is the probe's is-enabled counter: non-zero
 * means a tracer was attached during the run. It is readable only when the
 * shim is linked into this executable (the library's semaphores are not
 * exported); the shared build prints n/a.
 * Exit status 0, or 2 on a usage error.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sqltrace.h"

/* Resolved only when libsqltrace.a is linked in (hidden symbols of the same
 * link); NULL against libsqltrace.so. */
extern volatile unsigned short sqltrace_set_trace_id_semaphore __attribute__((weak));
extern volatile unsigned short sqltrace_clear_trace_id_semaphore __attribute__((weak));

enum op { OP_SET16, OP_SET32, OP_SET55, OP_CLEAR, OP_PAIR, OP_GET, OP_NOOP };

static const char *const azOpName[] = {
	"set_trace_id_16", "set_trace_id_32", "set_trace_id_55", "clear_trace_id",
	"set_clear_pair", "get_trace_id", "noop",
};

static const char zId16[] = "req-0123456789ab";
static const char zId32[] = "4bf92f3577b34da6a3ce929d0e0e4736";
static const char zId55[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static __attribute__((noinline)) void noop(const char *z)
{
	__asm__ __volatile__("" : : "r"(z) : "memory");
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Runs n calls of op and returns the time per call in ns. */
static double measure(enum op op, long n)
{
	double t0 = now_ns();
	long i;

	switch (op) {
	case OP_SET16: for (i = 0; i < n; i++) sqltrace_set_trace_id(zId16); break;
	case OP_SET32: for (i = 0; i < n; i++) sqltrace_set_trace_id(zId32); break;
	case OP_SET55: for (i = 0; i < n; i++) sqltrace_set_trace_id(zId55); break;
	case OP_CLEAR: for (i = 0; i < n; i++) sqltrace_clear_trace_id(); break;
	case OP_PAIR:
		for (i = 0; i < n; i++) {
			sqltrace_set_trace_id(zId32);
			sqltrace_clear_trace_id();
		}
		break;
	case OP_GET:
		for (i = 0; i < n; i++)
			noop(sqltrace_get_trace_id());
		break;
	case OP_NOOP: for (i = 0; i < n; i++) noop(zId32); break;
	}
	return (now_ns() - t0) / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static long parse_long(const char *z)
{
	char *zEnd;
	long v = strtol(z, &zEnd, 10);

	return (*z && !*zEnd && v > 0) ? v : -1;
}

int main(int argc, char **argv)
{
	long n = 1000000, r = 5;
	int opt, wait = 0;
	enum op op;

	while ((opt = getopt(argc, argv, "n:r:w")) != -1) {
		switch (opt) {
		case 'n': n = parse_long(optarg); break;
		case 'r': r = parse_long(optarg); break;
		case 'w': wait = 1; break;
		default: n = -1; break;
		}
		if (n < 0 || r < 0 || r > 1000) {
			fprintf(stderr, "usage: %s [-n ITERATIONS] [-r REPEATS(1..1000)] [-w]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (wait) {
		char zLine[64];

		printf("ready pid=%d\n", (int)getpid());
		if (!fgets(zLine, sizeof(zLine), stdin) && ferror(stdin)) {
			perror("stdin");
			return 1;
		}
	}
	for (op = OP_SET16; op <= OP_NOOP; op++) {
		double aNs[1000];
		char zSema[32] = "n/a";
		long i;

		measure(op, n / 10 + 1);  /* warm up caches and the PLT */
		for (i = 0; i < r; i++)
			aNs[i] = measure(op, n);
		qsort(aNs, (size_t)r, sizeof(aNs[0]), cmp_double);
		if (&sqltrace_set_trace_id_semaphore && &sqltrace_clear_trace_id_semaphore) {
			if (op == OP_CLEAR)
				snprintf(zSema, sizeof(zSema), "%u",
					 sqltrace_clear_trace_id_semaphore);
			else if (op == OP_PAIR)
				snprintf(zSema, sizeof(zSema), "%u/%u",
					 sqltrace_set_trace_id_semaphore,
					 sqltrace_clear_trace_id_semaphore);
			else if (op != OP_GET && op != OP_NOOP)
				snprintf(zSema, sizeof(zSema), "%u",
					 sqltrace_set_trace_id_semaphore);
			else
				snprintf(zSema, sizeof(zSema), "-");
		}
		printf("bench op=%s link=%s iterations=%ld repeats=%ld median_ns=%.2f "
		       "min_ns=%.2f semaphore=%s\n", azOpName[op],
		       &sqltrace_set_trace_id_semaphore ? "static" : "shared", n, r,
		       aNs[r / 2], aNs[0], zSema);
	}
	return 0;
}
