/* log_sink.h — the log printer: a consumer on the batching pipeline that
 * prints each entry as a slog-style line, so formatting and writing never
 * slow the ring buffer consumer or the store writer. */
#ifndef SQLTRACE_LOG_SINK_H
#define SQLTRACE_LOG_SINK_H

#include <stdint.h>
#include <stdio.h>

#include "recorder.h"
#include "slog.h"

struct log_sink_opts {
	FILE *out;                 /* where lines go (stdout) */
	enum slog_format format;
	int64_t slow_us;           /* WARN threshold */
};

/* Starts a printer recorder. Entries are filtered by level before they are
 * recorded (see log_sink__wants). On error, NULL is returned (errno set). */
struct recorder *log_sink__open(const struct log_sink_opts *o, const struct batch_opts *b);

#endif
