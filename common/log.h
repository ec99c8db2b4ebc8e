/* log.h — the tool's own diagnostics on stderr (entries go to stdout):
 * one line each, "sqltrace-bpf: " prefix; verbose lines only with -v. */
#ifndef SQLTRACE_LOG_H
#define SQLTRACE_LOG_H

#include <stdio.h>

extern int log_verbose;  /* 0 quiet, 1 -v, 2 -vv (libbpf debug too) */

#define log_error(fmt, ...) fprintf(stderr, "sqltrace-bpf: error: " fmt "\n", ##__VA_ARGS__)
#define log_warn(fmt, ...) fprintf(stderr, "sqltrace-bpf: warning: " fmt "\n", ##__VA_ARGS__)
#define log_info(fmt, ...) fprintf(stderr, "sqltrace-bpf: " fmt "\n", ##__VA_ARGS__)
#define log_verbose(fmt, ...) do { if (log_verbose) \
	fprintf(stderr, "sqltrace-bpf: " fmt "\n", ##__VA_ARGS__); } while (0)

#endif
