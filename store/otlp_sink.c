/* otlp_sink.c — the OpenTelemetry exporter: its configuration (options and
 * OTEL_* environment) and the OTLP format it gives the remote sender
 * (see otlp_sink.h). Delivery, retries and the spool are remote_store.c's. */
#include "otlp_sink.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define DEF_TIMEOUT_MS 10000
#define MAX_BODY ((size_t)4 << 20)   /* the Collector's default limit is 20 MiB */
#define MAX_PAIRS 64

struct otlp_ctx {
	struct otlp_encoder *enc;
	enum otlp_protocol protocol;
	char **headers;
};

/* ---- configuration -------------------------------------------------------- */

static const char *env(const struct otlp_opts *o, const char *name)
{
	const char *v = o->getenv ? o->getenv(name) : getenv(name);

	return v && v[0] ? v : NULL;
}

/* The TRACES_ variable, else the general one; *name gets the one used. */
static const char *env2(const struct otlp_opts *o, const char *suffix, const char **name,
			char *buf, size_t len)
{
	const char *v;

	snprintf(buf, len, "OTEL_EXPORTER_OTLP_TRACES_%s", suffix);
	if ((v = env(o, buf))) {
		*name = buf;
		return v;
	}
	snprintf(buf, len, "OTEL_EXPORTER_OTLP_%s", suffix);
	*name = buf;
	return env(o, buf);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Copies s[0..n) with surrounding spaces trimmed and %XX decoded. Returns
 * NULL on a bad escape or out of memory (*bad tells which). */
static char *decode(const char *s, size_t n, bool *bad)
{
	char *out, *p;

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (!(out = p = malloc(n + 1))) {
		*bad = false;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h1 = i + 2 < n ? hexval(s[i + 1]) : -1;
			int h2 = i + 2 < n ? hexval(s[i + 2]) : -1;

			if (h1 < 0 || h2 < 0) {
				free(out);
				*bad = true;
				return NULL;
			}
			*p++ = (char)(h1 * 16 + h2);
			i += 2;
			continue;
		}
		*p++ = s[i];
	}
	*p = '\0';
	return out;
}

/* Parses "k=v,k2=v2" (W3C baggage style, as OTEL_*_HEADERS and
 * OTEL_RESOURCE_ATTRIBUTES). Adds to kv (n used of max; a later key
 * replaces an earlier one). Returns 0, -EINVAL with err, -ENOMEM. */
static int parse_pairs(const char *name, const char *s, struct otlp_kv *kv, size_t *n, size_t max,
		       char *err, size_t errlen)
{
	while (s && *s) {
		const char *comma = strchr(s, ','), *eq;
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		char *k, *v;
		bool bad = false;
		size_t i;

		eq = memchr(s, '=', len);
		if (!eq) {
			/* an empty member (",,", trailing comma) is skipped */
			if (strspn(s, " \t") >= len)
				goto next;
			snprintf(err, errlen, "invalid %s: '%.*s' is not key=value", name, (int)len, s);
			return -EINVAL;
		}
		k = decode(s, (size_t)(eq - s), &bad);
		v = k ? decode(eq + 1, len - (size_t)(eq - s) - 1, &bad) : NULL;
		if (!k || !v) {
			free(k);
			if (!bad)
				return -ENOMEM;
			snprintf(err, errlen, "invalid %s: bad %%-escape in '%.*s'", name, (int)len, s);
			return -EINVAL;
		}
		if (!k[0]) {
			free(k);
			free(v);
			snprintf(err, errlen, "invalid %s: empty key in '%.*s'", name, (int)len, s);
			return -EINVAL;
		}
		for (i = 0; i < *n && strcmp(kv[i].key, k); i++)
			;
		if (i < *n) {
			free(kv[i].key);
			free(kv[i].value);
		} else if (*n == max) {
			free(k);
			free(v);
			snprintf(err, errlen, "invalid %s: more than %zu entries", name, max);
			return -EINVAL;
		} else {
			(*n)++;
		}
		kv[i].key = k;
		kv[i].value = v;
next:
		s = comma ? comma + 1 : NULL;
	}
	return 0;
}

static void free_pairs(struct otlp_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
}

/* An HTTP header name is a token (RFC 9110); a value has no control
 * characters (no CR/LF: one header per pair). */
static bool header_ok(const struct otlp_kv *kv)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

	if (strspn(kv->key, tchar) != strlen(kv->key))
		return false;
	for (const unsigned char *p = (const unsigned char *)kv->value; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

/* Parses a non-negative integer of milliseconds. */
static bool parse_ms(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > 600000)
		return false;
	*out = (int)v;
	return true;
}

/* A base URL with "/v1/traces" appended (after one '/'), unless its path
 * ends with it already. */
static char *traces_url(const char *base)
{
	size_t n = strlen(base);
	char *u;

	if (n >= 10 && !strcmp(base + n - 10, "/v1/traces"))
		return strdup(base);
	while (n && base[n - 1] == '/')
		n--;
	if (asprintf(&u, "%.*s/v1/traces", (int)n, base) < 0)
		return NULL;
	return u;
}

void otlp_config__free(struct otlp_config *c)
{
	if (!c)
		return;
	free(c->url);
	free(c->ca_file);
	for (char **h = c->headers; h && *h; h++)
		free(*h);
	free(c->headers);
	free(c->service_name);
	free_pairs(c->resource, c->nresource);
	free(c->resource);
	memset(c, 0, sizeof(*c));
}

int otlp_config__load(struct otlp_config *c, const struct otlp_opts *o, char *err, size_t errlen)
{
	char nbuf[64];
	const char *name, *v;
	struct otlp_kv pairs[MAX_PAIRS];
	size_t npairs = 0;
	int ret = -EINVAL;

	memset(c, 0, sizeof(*c));
	if (errlen)
		err[0] = '\0';

	/* endpoint */
	if (o->url && strcmp(o->url, "env")) {
		c->url = traces_url(o->url);
	} else if ((v = env(o, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))) {
		c->url = strdup(v);
	} else if ((v = env(o, "OTEL_EXPORTER_OTLP_ENDPOINT"))) {
		c->url = traces_url(v);
	} else {
		snprintf(err, errlen, "--otlp env: neither OTEL_EXPORTER_OTLP_TRACES_ENDPOINT nor "
			 "OTEL_EXPORTER_OTLP_ENDPOINT is set");
		goto fail;
	}
	if (!c->url)
		goto oom;
	if (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8)) {
		snprintf(err, errlen, "invalid OTLP endpoint '%s': expected an http:// or https:// URL "
			 "(OTLP/HTTP, e.g. http://collector:4318)", c->url);
		goto fail;
	}

	/* protocol */
	name = "--otlp-protocol";
	v = o->protocol ? o->protocol : env2(o, "PROTOCOL", &name, nbuf, sizeof(nbuf));
	if (!v || !strcmp(v, "http/protobuf")) {
		c->protocol = OTLP_PROTOBUF;
	} else if (!strcmp(v, "http/json")) {
		c->protocol = OTLP_JSON;
	} else {
		snprintf(err, errlen, "invalid %s '%s': expected http/protobuf or http/json%s", name, v,
			 !strcmp(v, "grpc") ? " (OTLP/gRPC is not supported: use the collector's "
			 "OTLP/HTTP port, 4318)" : "");
		goto fail;
	}

	/* compression */
	name = "--otlp-compression";
	v = o->compression ? o->compression : env2(o, "COMPRESSION", &name, nbuf, sizeof(nbuf));
	if (v && strcmp(v, "gzip") && strcmp(v, "none")) {
		snprintf(err, errlen, "invalid %s '%s': expected gzip or none", name, v);
		goto fail;
	}
	c->gzip = v && !strcmp(v, "gzip");

	/* timeout */
	c->timeout_ms = o->timeout_ms;
	if (!c->timeout_ms && (v = env2(o, "TIMEOUT", &name, nbuf, sizeof(nbuf))) &&
	    !parse_ms(v, &c->timeout_ms)) {
		snprintf(err, errlen, "invalid %s '%s': expected milliseconds between 1 and 600000",
			 name, v);
		goto fail;
	}
	if (!c->timeout_ms)
		c->timeout_ms = DEF_TIMEOUT_MS;

	/* CA file */
	v = o->ca_file ? o->ca_file : env2(o, "CERTIFICATE", &name, nbuf, sizeof(nbuf));
	if (v && !(c->ca_file = strdup(v)))
		goto oom;

	/* headers: the general variable, then the TRACES_ one over it */
	if ((ret = parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", env(o, "OTEL_EXPORTER_OTLP_HEADERS"),
			       pairs, &npairs, MAX_PAIRS, err, errlen)) ||
	    (ret = parse_pairs("OTEL_EXPORTER_OTLP_TRACES_HEADERS",
			       env(o, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"), pairs, &npairs, MAX_PAIRS,
			       err, errlen)))
		goto fail_pairs;
	ret = -EINVAL;
	if (!(c->headers = calloc(npairs + 1, sizeof(*c->headers))))
		goto oom_pairs;
	for (size_t i = 0; i < npairs; i++) {
		if (!header_ok(&pairs[i])) {
			snprintf(err, errlen, "invalid OTEL_EXPORTER_OTLP_HEADERS: '%s' is not a valid "
				 "HTTP header (name a token, value without control characters)",
				 pairs[i].key);
			goto fail_pairs;
		}
		if (asprintf(&c->headers[i], "%s: %s", pairs[i].key, pairs[i].value) < 0) {
			c->headers[i] = NULL;
			goto oom_pairs;
		}
	}
	free_pairs(pairs, npairs);
	npairs = 0;

	/* resource */
	if ((ret = parse_pairs("OTEL_RESOURCE_ATTRIBUTES", env(o, "OTEL_RESOURCE_ATTRIBUTES"), pairs,
			       &npairs, MAX_PAIRS, err, errlen)))
		goto fail_pairs;
	ret = -EINVAL;
	if ((v = env(o, "OTEL_SERVICE_NAME"))) {
		/* wins over a service.name in OTEL_RESOURCE_ATTRIBUTES */
		size_t i;

		for (i = 0; i < npairs && strcmp(pairs[i].key, "service.name"); i++)
			;
		if (i < npairs) {
			free_pairs(&pairs[i], 1);
			pairs[i] = pairs[--npairs];
		}
		if (!(c->service_name = strdup(v)))
			goto oom_pairs;
	}
	if (npairs) {
		if (!(c->resource = malloc(npairs * sizeof(*c->resource))))
			goto oom_pairs;
		memcpy(c->resource, pairs, npairs * sizeof(*pairs));
		c->nresource = npairs;
	}
	return 0;

oom_pairs:
	free_pairs(pairs, npairs);
oom:
	snprintf(err, errlen, "cannot start the OTLP exporter: out of memory");
	otlp_config__free(c);
	return -ENOMEM;
fail_pairs:
	free_pairs(pairs, npairs);
fail:
	otlp_config__free(c);
	return ret;
}

/* ---- the format given to the remote sender ------------------------------- */

static long otlp_encode(void *ctx, struct json_buf *out, struct st_entry *const *batch, size_t n,
			size_t max_bytes)
{
	struct otlp_ctx *x = ctx;

	return otlp_encoder__encode(x->enc, out, batch, n, max_bytes);
}

/* OTLP/HTTP: only these are retryable; any other failure drops the batch. */
static bool otlp_retryable(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

static uint64_t otlp_read_ok(void *ctx, const char *body, size_t len, uint64_t entries, char *msg,
			     size_t msglen)
{
	struct otlp_ctx *x = ctx;

	return otlp__read_response(x->protocol, body, len, entries, msg, msglen);
}

static void otlp_free_ctx(void *ctx)
{
	struct otlp_ctx *x = ctx;

	if (!x)
		return;
	otlp_encoder__free(x->enc);
	for (char **h = x->headers; h && *h; h++)
		free(*h);
	free(x->headers);
	free(x);
}

struct recorder *otlp_sink__open(const struct otlp_opts *o, const struct batch_opts *b,
				 char *err, size_t errlen)
{
	struct otlp_config c;
	struct otlp_ctx *x;
	char dir[PATH_MAX];
	int ret;

	if ((ret = otlp_config__load(&c, o, err, errlen))) {
		errno = -ret;
		return NULL;
	}
	if (o->spool_dir)
		ret = snprintf(dir, sizeof(dir), "%s/otlp", o->spool_dir) >= (int)sizeof(dir) ?
			      -ENAMETOOLONG : 0;
	else if (!(ret = remote_store__default_spool_dir(dir, sizeof(dir) - 5)))
		strcat(dir, "/otlp");
	if (ret) {
		snprintf(err, errlen, ret == -ENOENT ? "cannot choose a spool directory (no HOME): "
			 "pass --spool-dir" : "spool directory name too long");
		otlp_config__free(&c);
		errno = -ret;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (x) {
		struct otlp_encoder_opts eo = {
			.protocol = c.protocol,
			.service_name = c.service_name,
			.resource = c.resource,
			.nresource = c.nresource,
			.proc_dir = o->proc_dir,
		};

		x->protocol = c.protocol;
		x->headers = c.headers;
		c.headers = NULL;
		x->enc = otlp_encoder__new(&eo);
	}
	if (!x || !x->enc) {
		otlp_free_ctx(x);
		otlp_config__free(&c);
		snprintf(err, errlen, "cannot start the OTLP exporter: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	{
		static const char *const ext[2][2] = { { "pb", "pb.gz" }, { "json", "json.gz" } };
		struct remote_format f = {
			.what = "OTLP collector",
			.content_type = c.protocol == OTLP_JSON ? "application/json"
								 : "application/x-protobuf",
			.spool_ext = ext[c.protocol == OTLP_JSON][c.gzip],
			.gzip = c.gzip,
			.headers = (const char *const *)x->headers,
			.encode = otlp_encode,
			.retryable = otlp_retryable,
			.read_ok_reply = otlp_read_ok,
			.ctx = x,
			.free_ctx = otlp_free_ctx,
		};
		struct remote_opts ro = {
			.url = c.url,
			.timeout_ms = c.timeout_ms,
			.ca_file = c.ca_file,
			.spool_dir = dir,
			.spool_max_bytes = o->spool_max_bytes,
			.max_body_bytes = MAX_BODY,
			.retry_min_ms = o->retry_min_ms,
			.retry_max_ms = o->retry_max_ms,
			.close_timeout_ms = o->close_timeout_ms,
			.stats = o->stats,
			.format = &f,
			.opt_name = "--otlp",
		};
		struct recorder *rec = remote_store__open(&ro, b, err, errlen);
		int e = errno;

		otlp_config__free(&c);
		errno = e;
		return rec;
	}
}
