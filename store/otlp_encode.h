/* otlp_encode.h — trace entries as OpenTelemetry spans: the OTLP/HTTP
 * request bodies (protobuf through protobuf-c, from store/otlp/trace.proto,
 * or OTLP's JSON through cJSON) and the reading of the collector's answer
 * (partial success). The sender around it is otlp_sink.h.
 *
 * One entry is one span, following OpenTelemetry's database semantic
 * conventions:
 *   - kind CLIENT; name "<operation> <table>" (db.query.summary), or the
 *     operation alone when no single table is named, never the SQL text;
 *   - attributes db.system.name=sqlite, db.query.text, db.operation.name,
 *     db.collection.name (one table), db.query.summary, db.namespace (the
 *     database file), db.response.returned_rows (when counted), thread.id;
 *     on failure db.response.status_code and error.type (SQLite's primary
 *     result code, inferred from its message: entries carry the message
 *     only) and status ERROR with SQLite's message;
 *     sqltrace.trace_id for a shim id that is not a W3C trace id;
 *   - start = end - duration, end = the entry's timestamp (ns since 1970);
 *   - trace id: the entry's when it is 32 lowercase hex digits (a
 *     traceparent comment or a shim id), with the comment's span id as the
 *     parent; else a new random one (Span.flags is left out: receivers
 *     built on opentelemetry-proto before 1.1 do not know the field);
 *   - one resource per process (pid): service.name (the configured one, else
 *     the process name), process.pid, process.executable.name, host.name,
 *     container.id (from /proc/PID/cgroup, when it names one), then the
 *     configured attributes (OTEL_RESOURCE_ATTRIBUTES), which win.
 * JSON follows the OTLP specification's rules: lowerCamelCase keys, ids as
 * hex, 64-bit integers as strings, enums as integers.
 */
#ifndef SQLTRACE_OTLP_ENCODE_H
#define SQLTRACE_OTLP_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "json.h"

enum otlp_protocol { OTLP_PROTOBUF, OTLP_JSON };

struct otlp_kv {
	char *key;
	char *value;
};

struct otlp_encoder_opts {
	enum otlp_protocol protocol;
	const char *service_name;        /* NULL: each process's name */
	const struct otlp_kv *resource;  /* extra resource attributes (copied) */
	size_t nresource;
	const char *host_name;           /* NULL: gethostname() */
	const char *proc_dir;            /* where /proc is, for container ids;
	                                  * NULL: "/proc"; "" : none looked up */
	uint64_t seed;                   /* ids' random seed; 0: from getrandom */
};

struct otlp_encoder;

/* Creates an encoder (options copied). On error, NULL is returned (errno
 * ENOMEM). */
struct otlp_encoder *otlp_encoder__new(const struct otlp_encoder_opts *o);

void otlp_encoder__free(struct otlp_encoder *enc);

/* Replaces out's contents with one ExportTraceServiceRequest of spans for
 * batch[0..n): all of them, or the longest prefix (at least one entry)
 * whose body fits in max_bytes (0: no limit). Returns the number of entries
 * encoded (0 only for n == 0) or -ENOMEM. One thread at a time. */
long otlp_encoder__encode(struct otlp_encoder *enc, struct json_buf *out,
			  struct st_entry *const *batch, size_t n, size_t max_bytes);

/* Reads an ExportTraceServiceResponse (body[0..len), any bytes: an empty
 * body is a full success) in the given encoding. Returns the rejected span
 * count it names, clamped to 0..sent; msg gets its error_message (or why
 * the body could not be read: then 0 is returned). */
uint64_t otlp__read_response(enum otlp_protocol p, const char *body, size_t len, uint64_t sent,
			     char *msg, size_t msglen);

/* The span's naming from the SQL text: op gets db.operation.name (the
 * statement's first keyword, upper case; "" when the text starts with
 * none), table db.collection.name ("" unless the statement names exactly
 * one table: SELECT ... FROM t, INSERT INTO t, UPDATE t, DELETE FROM t,
 * CREATE/DROP TABLE t), quotes removed. This function can't fail. */
void otlp__sql_summary(const char *sql, char *op, size_t oplen, char *table, size_t tablelen);

/* SQLite's primary result code for one of its error messages (the text of
 * sqlite3_errstr, or a message that starts or ends with one, such as
 * "UNIQUE constraint failed: t.id"); 1 (SQLITE_ERROR) for any other. */
int otlp__sqlite_code(const char *msg);

/* Parses lowercase hex (as W3C ids are written) of exactly 2*n digits into out[0..n),
 * refusing all zeros. Returns true when it is a valid id. */
bool otlp__parse_id(const char *hex, uint8_t *out, size_t n);

#endif
