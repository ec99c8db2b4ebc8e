/* otlp_sink.h — the OpenTelemetry exporter: every entry a span
 * (otlp_encode.h), POSTed over OTLP/HTTP to a collector's /v1/traces.
 *
 * Delivery is the remote sender's (remote_store.h) with an OTLP format:
 * batches from the shared batching engine, Content-Type
 * application/x-protobuf or application/json, gzip when asked, retry with
 * backoff (at least Retry-After) on 429, 502, 503, 504 and transport errors
 * through the on-disk spool (SPOOL_DIR/otlp, so a collector restart loses
 * nothing); any other failure status drops the batch (OTLP: not
 * retryable), counted in `rejected`; a 2xx whose partial_success names
 * rejected spans counts them in `partial_rejected`.
 *
 * Configuration is OpenTelemetry's (the OTLP exporter and SDK
 * specifications), each setting from the option when given, else the
 * TRACES_ variable, else the general one:
 *   endpoint     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is),
 *                OTEL_EXPORTER_OTLP_ENDPOINT (+ "/v1/traces")
 *   protocol     OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL: http/protobuf (default)
 *                or http/json (grpc is refused with the reason)
 *   headers      OTEL_EXPORTER_OTLP_[TRACES_]HEADERS: k=v,k2=v2 (values
 *                %-decoded; the TRACES_ value of a key wins)
 *   timeout      OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT: milliseconds (10000)
 *   compression  OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION: gzip or none
 *   CA file      OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE
 *   resource     OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES (k=v,...)
 * A bad value is an error with one line naming the variable.
 */
#ifndef SQLTRACE_OTLP_SINK_H
#define SQLTRACE_OTLP_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "otlp_encode.h"
#include "recorder.h"
#include "remote_store.h"

struct otlp_opts {
	const char *url;           /* --otlp: a base URL as in OTEL_EXPORTER_OTLP_ENDPOINT
	                            * ("/v1/traces" appended unless already there);
	                            * NULL or "env": from the environment */
	const char *protocol;      /* --otlp-protocol; NULL: environment, else http/protobuf */
	const char *compression;   /* --otlp-compression gzip|none; NULL: environment */
	int timeout_ms;            /* --otlp-timeout; 0: environment, else 10000 */
	const char *ca_file;       /* --otlp-ca; NULL: environment, else the system's */
	const char *spool_dir;     /* parent of the otlp/ spool; NULL: the default */
	int64_t spool_max_bytes;   /* 0: 64 MiB */
	int retry_min_ms, retry_max_ms, close_timeout_ms; /* 0: remote_store's defaults */
	const char *proc_dir;      /* NULL: /proc (container ids) */
	struct remote_stats *stats; /* optional; must outlive recorder__close */
	const char *(*getenv)(const char *name); /* NULL: getenv(3) */
};

/* The settings once options and environment are combined. */
struct otlp_config {
	char *url;                  /* full URL, .../v1/traces */
	enum otlp_protocol protocol;
	bool gzip;
	int timeout_ms;
	char *ca_file;
	char **headers;             /* "Name: value", NULL-terminated */
	char *service_name;         /* NULL: per process */
	struct otlp_kv *resource;
	size_t nresource;
};

/* Combines o and the environment into c. Returns 0, or -EINVAL with one
 * line in err ("invalid OTEL_EXPORTER_OTLP_HEADERS: 'x' is not key=value")
 * and c left empty, or -ENOMEM. */
int otlp_config__load(struct otlp_config *c, const struct otlp_opts *o, char *err, size_t errlen);

void otlp_config__free(struct otlp_config *c);

/* Opens the exporter (b may be NULL for the defaults). On error, NULL is
 * returned, errno is set and err holds one line. */
struct recorder *otlp_sink__open(const struct otlp_opts *o, const struct batch_opts *b,
				 char *err, size_t errlen);

#endif
