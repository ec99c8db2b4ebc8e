/* test_otlp.c — the OpenTelemetry exporter's pieces without a network:
 * span naming from SQL, SQLite result codes from messages, ids, the
 * OTEL_* configuration (good and bad values), reading the collector's
 * answer (partial success, garbage), and the encoder: a batch decoded back
 * with protobuf-c (resources per process, ids, parents, attributes,
 * status, times), the JSON encoding read with cJSON, and splitting a batch
 * that is larger than allowed. That the bytes are OTLP's is checked
 * against OpenTelemetry's own definitions in tests/e2e/test_otlp.py. */
#include "harness.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otlp_encode.h"
#include "otlp_sink.h"
#include "trace.pb-c.h"

static bool summary_is(const char *sql, const char *op, const char *table)
{
	char o[32], t[64];

	otlp__sql_summary(sql, o, sizeof(o), t, sizeof(t));
	if (strcmp(o, op) || strcmp(t, table)) {
		printf("    %s: got op '%s' table '%s', want '%s' '%s'\n", sql, o, t, op, table);
		return false;
	}
	return true;
}

static bool test_sql_summary(void)
{
	ASSERT_TRUE(summary_is("SELECT * FROM users WHERE id = 1", "SELECT", "users"));
	ASSERT_TRUE(summary_is("  select a from \"Order Items\" o where x in (select 1 from b)",
			       "SELECT", "Order Items"));
	ASSERT_TRUE(summary_is("SELECT * FROM main.users", "SELECT", "main.users"));
	ASSERT_TRUE(summary_is("SELECT * FROM a, b", "SELECT", ""));
	ASSERT_TRUE(summary_is("SELECT * FROM a JOIN b ON a.x = b.x", "SELECT", ""));
	ASSERT_TRUE(summary_is("SELECT 1 UNION SELECT 2 FROM t", "SELECT", ""));
	ASSERT_TRUE(summary_is("SELECT (SELECT max(x) FROM t2) FROM t1", "SELECT", "t1"));
	ASSERT_TRUE(summary_is("SELECT 1", "SELECT", ""));
	ASSERT_TRUE(summary_is("/* c */ -- line\n INSERT OR REPLACE INTO [t x](a) VALUES (1)", "INSERT",
			       "t x"));
	ASSERT_TRUE(summary_is("REPLACE INTO t VALUES (1)", "REPLACE", "t"));
	ASSERT_TRUE(summary_is("UPDATE OR IGNORE `t` SET a = 1", "UPDATE", "t"));
	ASSERT_TRUE(summary_is("UPDATE t SET a = 'FROM x'", "UPDATE", "t"));
	ASSERT_TRUE(summary_is("DELETE FROM t WHERE 1", "DELETE", "t"));
	ASSERT_TRUE(summary_is("CREATE TEMP TABLE IF NOT EXISTS t(a)", "CREATE", "t"));
	ASSERT_TRUE(summary_is("CREATE INDEX i ON t(a)", "CREATE", ""));
	ASSERT_TRUE(summary_is("DROP TABLE IF EXISTS t", "DROP", "t"));
	ASSERT_TRUE(summary_is("begin immediate", "BEGIN", ""));
	ASSERT_TRUE(summary_is("", "", ""));
	ASSERT_TRUE(summary_is("(1)", "", ""));
	ASSERT_TRUE(summary_is("SELECT * FROM 'unterminated", "SELECT", ""));
	ASSERT_TRUE(summary_is("SELECT * FROM \"unterminated", "SELECT", "unterminated"));
	ASSERT_TRUE(summary_is("SELECT * FROM /* unterminated", "SELECT", ""));
	return true;
}

static bool test_sqlite_code(void)
{
	ASSERT_EQ_INT(otlp__sqlite_code("UNIQUE constraint failed: t.id"), 19);
	ASSERT_EQ_INT(otlp__sqlite_code("NOT NULL constraint failed: t.a"), 19);
	ASSERT_EQ_INT(otlp__sqlite_code("database is locked"), 5);
	ASSERT_EQ_INT(otlp__sqlite_code("database table is locked: t"), 6);
	ASSERT_EQ_INT(otlp__sqlite_code("attempt to write a readonly database"), 8);
	ASSERT_EQ_INT(otlp__sqlite_code("near \"SELEC\": syntax error"), 1);
	ASSERT_EQ_INT(otlp__sqlite_code("no such table: x"), 1);
	ASSERT_EQ_INT(otlp__sqlite_code("database is locked up"), 1);
	ASSERT_EQ_INT(otlp__sqlite_code(""), 1);
	ASSERT_EQ_INT(otlp__sqlite_code(NULL), 1);
	return true;
}

static bool test_ids(void)
{
	uint8_t id[16];

	ASSERT_TRUE(otlp__parse_id("4bf92f3577b34da6a3ce929d0e0e4736", id, 16));
	ASSERT_EQ_INT(id[0], 0x4b);
	ASSERT_EQ_INT(id[15], 0x36);
	ASSERT_TRUE(!otlp__parse_id("4BF92F3577B34DA6A3CE929D0E0E4736", id, 16));
	ASSERT_TRUE(!otlp__parse_id("00000000000000000000000000000000", id, 16));
	ASSERT_TRUE(!otlp__parse_id("4bf92f3577b34da6a3ce929d0e0e473", id, 16));
	ASSERT_TRUE(!otlp__parse_id("req-42", id, 16));
	ASSERT_TRUE(!otlp__parse_id(NULL, id, 8));
	ASSERT_TRUE(otlp__parse_id("00f067aa0ba902b7", id, 8));
	return true;
}

/* ---- configuration ----------------------------------------------------- */

static const char *const *fake_env;

static const char *get_fake(const char *name)
{
	for (const char *const *p = fake_env; p && *p; p += 2)
		if (!strcmp(p[0], name))
			return p[1];
	return NULL;
}

static int load(const char *url, const char *const *envv, struct otlp_config *c, char *err,
		size_t errlen)
{
	struct otlp_opts o = { .url = url, .getenv = get_fake };

	fake_env = envv;
	return otlp_config__load(c, &o, err, errlen);
}

static bool test_config_good(void)
{
	static const char *const e1[] = {
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json",
		"OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x=1",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x=2",
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip",
		"OTEL_SERVICE_NAME", "shop",
		"OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,team=db%2Cops,,",
		NULL,
	};
	static const char *const e2[] = {
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318/",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example/custom/path",
		NULL,
	};
	static const char *const e3[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318/", NULL };
	struct otlp_config c;
	char err[256];

	/* flags win: the URL given, the environment for the rest */
	ASSERT_EQ_INT(load("http://collector:4318", e1, &c, err, sizeof(err)), 0);
	ASSERT_EQ_STR(c.url, "http://collector:4318/v1/traces");
	ASSERT_EQ_INT(c.protocol, OTLP_JSON);
	ASSERT_TRUE(c.gzip);
	ASSERT_EQ_INT(c.timeout_ms, 2500);
	ASSERT_EQ_STR(c.headers[0], "api-key: a b");
	ASSERT_EQ_STR(c.headers[1], "x: 2");
	ASSERT_TRUE(c.headers[2] == NULL);
	ASSERT_EQ_STR(c.service_name, "shop");
	ASSERT_EQ_INT(c.nresource, 1);
	ASSERT_EQ_STR(c.resource[0].key, "team");
	ASSERT_EQ_STR(c.resource[0].value, "db,ops");
	otlp_config__free(&c);

	ASSERT_EQ_INT(load("http://c:4318/v1/traces", NULL, &c, err, sizeof(err)), 0);
	ASSERT_EQ_STR(c.url, "http://c:4318/v1/traces");
	ASSERT_EQ_INT(c.protocol, OTLP_PROTOBUF);
	ASSERT_TRUE(!c.gzip);
	ASSERT_EQ_INT(c.timeout_ms, 10000);
	ASSERT_TRUE(c.headers && !c.headers[0]);
	otlp_config__free(&c);

	ASSERT_EQ_INT(load("env", e2, &c, err, sizeof(err)), 0);
	ASSERT_EQ_STR(c.url, "https://traces.example/custom/path");
	otlp_config__free(&c);
	ASSERT_EQ_INT(load(NULL, e3, &c, err, sizeof(err)), 0);
	ASSERT_EQ_STR(c.url, "http://base:4318/v1/traces");
	otlp_config__free(&c);
	return true;
}

static bool bad(const char *url, const char *name, const char *value, const char *want)
{
	const char *const e[] = { name, value, NULL };
	struct otlp_config c;
	char err[256];
	int rc = load(url, name ? e : NULL, &c, err, sizeof(err));

	if (rc != -EINVAL || !strstr(err, want) || strchr(err, '\n') || c.url) {
		printf("    %s=%s: rc %d err '%s' (want '%s')\n", name, value, rc, err, want);
		return false;
	}
	return true;
}

static bool test_config_bad(void)
{
	ASSERT_TRUE(bad("env", NULL, NULL, "OTEL_EXPORTER_OTLP_ENDPOINT"));
	ASSERT_TRUE(bad("env", "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "http://"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "4318"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "x",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "gzip or none"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "OTEL_EXPORTER_OTLP_TIMEOUT"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_TIMEOUT", "-1", "milliseconds"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_HEADERS", "novalue", "key=value"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_HEADERS", "a=%4", "%-escape"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_HEADERS", "a b=1", "HTTP header"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_HEADERS", "a=x%0d%0aInjected: 1",
			"HTTP header"));
	ASSERT_TRUE(bad("http://c", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "=1", "empty key"));
	ASSERT_TRUE(bad("http://c", "OTEL_RESOURCE_ATTRIBUTES", "a", "OTEL_RESOURCE_ATTRIBUTES"));
	return true;
}

/* ---- the collector's answer --------------------------------------------- */

static bool test_read_response(void)
{
	Sqltrace__Otlp__ExportTraceServiceResponse r = SQLTRACE__OTLP__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	Sqltrace__Otlp__ExportTracePartialSuccess ps = SQLTRACE__OTLP__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	uint8_t buf[256];
	size_t n;
	char msg[128];

	ps.rejected_spans = 3;
	ps.error_message = "too old";
	r.partial_success = &ps;
	n = sqltrace__otlp__export_trace_service_response__pack(&r, buf);
	ASSERT_EQ_INT(otlp__read_response(OTLP_PROTOBUF, (char *)buf, n, 10, msg, sizeof(msg)), 3);
	ASSERT_EQ_STR(msg, "too old");
	ASSERT_EQ_INT(otlp__read_response(OTLP_PROTOBUF, (char *)buf, n, 2, msg, sizeof(msg)), 2);
	ASSERT_EQ_INT(otlp__read_response(OTLP_PROTOBUF, "", 0, 2, msg, sizeof(msg)), 0);
	ASSERT_EQ_INT(otlp__read_response(OTLP_PROTOBUF, "\xff\xff\xff", 3, 2, msg, sizeof(msg)), 0);
	ASSERT_TRUE(strstr(msg, "unreadable") != NULL);
	ps.rejected_spans = -5;
	n = sqltrace__otlp__export_trace_service_response__pack(&r, buf);
	ASSERT_EQ_INT(otlp__read_response(OTLP_PROTOBUF, (char *)buf, n, 10, msg, sizeof(msg)), 0);

#define J(s) s, sizeof(s) - 1
	ASSERT_EQ_INT(otlp__read_response(OTLP_JSON, J("{\"partialSuccess\":{\"rejectedSpans\":\"4\","
			"\"errorMessage\":\"bad\"}}"), 10, msg, sizeof(msg)), 4);
	ASSERT_EQ_STR(msg, "bad");
	ASSERT_EQ_INT(otlp__read_response(OTLP_JSON, J("{\"partialSuccess\":{\"rejectedSpans\":7}}"),
				       10, msg, sizeof(msg)), 7);
	ASSERT_EQ_INT(otlp__read_response(OTLP_JSON, J("{}"), 10, msg, sizeof(msg)), 0);
	ASSERT_EQ_INT(otlp__read_response(OTLP_JSON, J("{\"partialSuccess\":{\"rejectedSpans\":\"x\"}}"),
				       10, msg, sizeof(msg)), 0);
	ASSERT_EQ_INT(otlp__read_response(OTLP_JSON, J("[1e999]"), 10, msg, sizeof(msg)), 0);
	ASSERT_EQ_INT(otlp__read_response(OTLP_JSON, J("{\"partialSuccess\":{\"rejectedSpans\":1e30}}"),
				       10, msg, sizeof(msg)), 0);
	return true;
}

/* ---- the encoder --------------------------------------------------------- */

static struct st_entry *mk(int32_t pid, const char *process, const char *query, const char *trace,
			   const char *parent, const char *error, int64_t ts, int64_t dur)
{
	struct st_entry *e = entry__new();

	entry__set_str(&e->query, query);
	entry__set_str(&e->op, "Exec");
	entry__set_str(&e->trace_id, trace ? trace : "");
	entry__set_str(&e->error, error ? error : "");
	if (parent)
		entry__set_str(&e->parent_span_id, parent);
	entry__set_str(&e->process, process);
	entry__set_str(&e->db_file, "/data/app.db");
	e->pid = pid;
	e->tid = pid + 1;
	e->timestamp_us = ts;
	e->duration_us = dur;
	e->rows = 2;
	return e;
}

static const char *attr_s(Sqltrace__Otlp__KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i]->key, key) &&
		    kv[i]->value->value_case == SQLTRACE__OTLP__ANY_VALUE__VALUE_STRING_VALUE)
			return kv[i]->value->string_value;
	return NULL;
}

static int64_t attr_i(Sqltrace__Otlp__KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i]->key, key) &&
		    kv[i]->value->value_case == SQLTRACE__OTLP__ANY_VALUE__VALUE_INT_VALUE)
			return kv[i]->value->int_value;
	return -1;
}

static bool test_encode_protobuf(void)
{
	struct otlp_kv res[] = { { "deployment.environment.name", "prod" } };
	struct otlp_encoder_opts o = { .protocol = OTLP_PROTOBUF, .resource = res, .nresource = 1,
				       .host_name = "h1", .proc_dir = "", .seed = 42 };
	struct otlp_encoder *enc = otlp_encoder__new(&o);
	struct st_entry *b[3] = {
		mk(10, "web", "SELECT * FROM users /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-"
		   "00f067aa0ba902b7-01'*/", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7",
		   NULL, 2000000, 250),
		mk(20, "job", "INSERT INTO t VALUES (1)", "req-42", NULL, "UNIQUE constraint failed: t.id",
		   3000000, 10),
		mk(10, "web", "DELETE FROM users", NULL, NULL, NULL, 4000000, 5),
	};
	struct json_buf out = { 0 };
	Sqltrace__Otlp__ExportTraceServiceRequest *req;
	Sqltrace__Otlp__Span *s;

	ASSERT_TRUE(enc != NULL);
	ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 3, 0), 3);
	req = sqltrace__otlp__export_trace_service_request__unpack(NULL, out.len, (uint8_t *)out.p);
	ASSERT_TRUE(req != NULL);
	/* one resource per process, its spans in order */
	ASSERT_EQ_INT(req->n_resource_spans, 2);
	{
		Sqltrace__Otlp__Resource *r = req->resource_spans[0]->resource;

		ASSERT_EQ_STR(attr_s(r->attributes, r->n_attributes, "service.name"), "web");
		ASSERT_EQ_INT(attr_i(r->attributes, r->n_attributes, "process.pid"), 10);
		ASSERT_EQ_STR(attr_s(r->attributes, r->n_attributes, "process.executable.name"), "web");
		ASSERT_EQ_STR(attr_s(r->attributes, r->n_attributes, "host.name"), "h1");
		ASSERT_EQ_STR(attr_s(r->attributes, r->n_attributes, "deployment.environment.name"), "prod");
		ASSERT_TRUE(attr_s(r->attributes, r->n_attributes, "container.id") == NULL);
		ASSERT_EQ_INT(req->resource_spans[0]->n_scope_spans, 1);
		ASSERT_EQ_STR(req->resource_spans[0]->scope_spans[0]->scope->name, "sqltrace-bpf");
		ASSERT_EQ_INT(req->resource_spans[0]->scope_spans[0]->n_spans, 2);
		ASSERT_EQ_INT(req->resource_spans[1]->scope_spans[0]->n_spans, 1);
	}
	s = req->resource_spans[0]->scope_spans[0]->spans[0];
	ASSERT_EQ_STR(s->name, "SELECT users");
	ASSERT_EQ_INT(s->kind, SQLTRACE__OTLP__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
	ASSERT_EQ_INT(s->trace_id.len, 16);
	ASSERT_EQ_INT(s->trace_id.data[0], 0x4b);
	ASSERT_EQ_INT(s->parent_span_id.len, 8);
	ASSERT_EQ_INT(s->parent_span_id.data[7], 0xb7);
	ASSERT_EQ_INT(s->span_id.len, 8);
	ASSERT_EQ_INT(s->end_time_unix_nano, 2000000000ULL);
	ASSERT_EQ_INT(s->start_time_unix_nano, 2000000000ULL - 250000);
	ASSERT_TRUE(s->status == NULL);
	ASSERT_EQ_STR(attr_s(s->attributes, s->n_attributes, "db.system.name"), "sqlite");
	ASSERT_EQ_STR(attr_s(s->attributes, s->n_attributes, "db.operation.name"), "SELECT");
	ASSERT_EQ_STR(attr_s(s->attributes, s->n_attributes, "db.collection.name"), "users");
	ASSERT_EQ_STR(attr_s(s->attributes, s->n_attributes, "db.namespace"), "/data/app.db");
	ASSERT_EQ_INT(attr_i(s->attributes, s->n_attributes, "db.response.returned_rows"), 2);
	ASSERT_EQ_INT(attr_i(s->attributes, s->n_attributes, "thread.id"), 11);
	ASSERT_TRUE(attr_s(s->attributes, s->n_attributes, "sqltrace.trace_id") == NULL);
	s = req->resource_spans[0]->scope_spans[0]->spans[1];
	ASSERT_EQ_STR(s->name, "DELETE users");
	ASSERT_EQ_INT(s->parent_span_id.len, 0);
	ASSERT_TRUE(s->trace_id.data[0] != 0x4b || s->trace_id.data[1] != 0xf9);
	s = req->resource_spans[1]->scope_spans[0]->spans[0];
	ASSERT_EQ_STR(s->name, "INSERT t");
	ASSERT_TRUE(s->status != NULL);
	ASSERT_EQ_INT(s->status->code, SQLTRACE__OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
	ASSERT_EQ_STR(s->status->message, "UNIQUE constraint failed: t.id");
	ASSERT_EQ_STR(attr_s(s->attributes, s->n_attributes, "db.response.status_code"), "19");
	ASSERT_EQ_STR(attr_s(s->attributes, s->n_attributes, "error.type"), "19");
	ASSERT_EQ_STR(attr_s(s->attributes, s->n_attributes, "sqltrace.trace_id"), "req-42");
	sqltrace__otlp__export_trace_service_request__free_unpacked(req, NULL);

	/* too large: a prefix that fits, at least one entry */
	{
		size_t one, two;

		ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 1, 0), 1);
		one = out.len;
		ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 2, 0), 2);
		two = out.len;
		ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 3, two), 2);
		ASSERT_TRUE(out.len <= two);
		ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 3, one + 10), 1);
		ASSERT_TRUE(out.len <= one + 10);
	}
	ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 3, 10), 1);
	ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 0, 0), 0);

	for (int i = 0; i < 3; i++)
		entry__free(b[i]);
	json_buf__free(&out);
	otlp_encoder__free(enc);
	return true;
}

static bool test_encode_json(void)
{
	struct otlp_encoder_opts o = { .protocol = OTLP_JSON, .service_name = "svc", .host_name = "h",
				       .proc_dir = "", .seed = 7 };
	struct otlp_encoder *enc = otlp_encoder__new(&o);
	struct st_entry *b[1] = { mk(10, "web", "SELECT 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-"
				     "00f067aa0ba902b7-01'*/", "4bf92f3577b34da6a3ce929d0e0e4736",
				     "00f067aa0ba902b7", "boom\n\"quoted\"", 1700000000123456LL, 6) };
	struct json_buf out = { 0 };
	cJSON *root, *span, *a;
	char *text;

	ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 1, 0), 1);
	text = strndup(out.p, out.len);
	root = cJSON_Parse(text);
	free(text);
	ASSERT_TRUE(root != NULL);
	span = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(
		cJSON_GetArrayItem(cJSON_GetObjectItem(root, "resourceSpans"), 0), "scopeSpans"), 0),
		"spans"), 0);
	ASSERT_TRUE(span != NULL);
	ASSERT_EQ_STR(cJSON_GetObjectItem(span, "traceId")->valuestring, "4bf92f3577b34da6a3ce929d0e0e4736");
	ASSERT_EQ_STR(cJSON_GetObjectItem(span, "parentSpanId")->valuestring, "00f067aa0ba902b7");
	ASSERT_EQ_INT(strlen(cJSON_GetObjectItem(span, "spanId")->valuestring), 16);
	ASSERT_EQ_STR(cJSON_GetObjectItem(span, "startTimeUnixNano")->valuestring, "1700000000123450000");
	ASSERT_EQ_STR(cJSON_GetObjectItem(span, "endTimeUnixNano")->valuestring, "1700000000123456000");
	ASSERT_EQ_INT(cJSON_GetObjectItem(span, "kind")->valueint, 3);
	ASSERT_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(span, "status"), "code")->valueint, 2);
	ASSERT_EQ_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(span, "status"), "message")->valuestring,
		      "boom\n\"quoted\"");
	a = cJSON_GetObjectItem(span, "attributes");
	ASSERT_TRUE(cJSON_IsArray(a));
	for (cJSON *kv = a->child; kv; kv = kv->next)
		if (!strcmp(cJSON_GetObjectItem(kv, "key")->valuestring, "thread.id"))
			ASSERT_EQ_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(kv, "value"),
							  "intValue")->valuestring, "11");
	cJSON_Delete(root);
	entry__free(b[0]);
	json_buf__free(&out);
	otlp_encoder__free(enc);
	return true;
}

/* container.id from a fake /proc: PID/cgroup naming a container's scope */
static bool test_container_id(void)
{
	static const char id[] = "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
	char dir[] = "/tmp/test_otlp.XXXXXX", path[128];
	struct otlp_encoder_opts o = { .protocol = OTLP_PROTOBUF, .host_name = "h", .seed = 3 };
	struct otlp_encoder *enc;
	struct st_entry *b[2];
	struct json_buf out = { 0 };
	Sqltrace__Otlp__ExportTraceServiceRequest *req;
	FILE *f;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/77", dir);
	ASSERT_EQ_INT(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/77/cgroup", dir);
	f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	fprintf(f, "0::/system.slice/docker-%s.scope\n", id);
	fclose(f);
	o.proc_dir = dir;
	enc = otlp_encoder__new(&o);
	b[0] = mk(77, "app", "SELECT 1", NULL, NULL, NULL, 1000, 1);
	b[1] = mk(78, "host", "SELECT 2", NULL, NULL, NULL, 1000, 1);  /* no cgroup file */
	ASSERT_EQ_INT(otlp_encoder__encode(enc, &out, b, 2, 0), 2);
	req = sqltrace__otlp__export_trace_service_request__unpack(NULL, out.len, (uint8_t *)out.p);
	ASSERT_TRUE(req && req->n_resource_spans == 2);
	ASSERT_EQ_STR(attr_s(req->resource_spans[0]->resource->attributes,
			     req->resource_spans[0]->resource->n_attributes, "container.id"), id);
	ASSERT_TRUE(attr_s(req->resource_spans[1]->resource->attributes,
			   req->resource_spans[1]->resource->n_attributes, "container.id") == NULL);
	sqltrace__otlp__export_trace_service_request__free_unpacked(req, NULL);
	entry__free(b[0]);
	entry__free(b[1]);
	json_buf__free(&out);
	otlp_encoder__free(enc);
	unlink(path);
	snprintf(path, sizeof(path), "%s/77", dir);
	rmdir(path);
	rmdir(dir);
	return true;
}

int main(void)
{
	harness_skip_reason = "";
	RUN(test_sql_summary);
	RUN(test_sqlite_code);
	RUN(test_ids);
	RUN(test_config_good);
	RUN(test_config_bad);
	RUN(test_read_response);
	RUN(test_encode_protobuf);
	RUN(test_encode_json);
	RUN(test_container_id);
	return harness_done();
}
