/* event.c — ring buffer record → entry (see event.h). */
#include "event.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "sqltext.h"

char *event__text(const struct st_event *ev, size_t size, size_t *len)
{
	size_t hdr = offsetof(struct st_event, sql), n;
	char *out;

	if (size < hdr) {
		errno = EINVAL;
		return NULL;
	}
	n = ev->sql_len;
	if (n > ST_SQL_MAX - 1 || hdr + n > size) {
		errno = EINVAL;
		return NULL;
	}
	if (ev->sql_enc == ST_ENC_UTF16LE) {
		size_t cap = n / 2 * 3 + 1;  /* a UTF-16 unit is at most 3 UTF-8 bytes */

		out = malloc(cap);
		if (!out)
			return NULL;
		*len = sqltext__utf16le_to_utf8((const uint8_t *)ev->sql, n, out, cap);
		return out;
	}
	out = malloc(n + 1);
	if (!out)
		return NULL;
	memcpy(out, ev->sql, n);
	out[n] = '\0';
	*len = strnlen(out, n);
	return out;
}

/* Cuts text that did not fit in the record and appends the marker. */
static char *mark_cut(char *text, size_t len)
{
	size_t keep = sqltext__utf8_boundary(text, len);
	char *out = realloc(text, keep + sizeof(SQLTEXT_CUT_MARKER));

	if (!out)
		return text;
	memcpy(out + keep, SQLTEXT_CUT_MARKER, sizeof(SQLTEXT_CUT_MARKER));
	return out;
}

struct st_entry *event__to_entry(const struct st_event *ev, size_t size, int64_t wall_offset_us,
				 const char *fallback_text, const char *lib)
{
	struct st_entry *e;
	char *text;
	size_t len, total_lead = 0;

	if (size < offsetof(struct st_event, sql) ||
	    (ev->kind != ST_EV_STMT && ev->kind != ST_EV_EXEC && ev->kind != ST_EV_PREPARE_FAIL)) {
		errno = EINVAL;
		return NULL;
	}
	text = event__text(ev, size, &len);
	if (!text)
		return NULL;
	e = entry__new();
	if (!e) {
		free(text);
		return NULL;
	}
	{
		/* A statement of a multi-statement string starts where the previous
		 * one ended: drop the blanks around it. */
		size_t lead, cut = ev->sql_enc == ST_ENC_UTF8 && ev->sql_total > ev->sql_len;

		len = sqltext__trim(text, len, !cut, &lead);
		total_lead = lead;
	}
	if (len == 0 && fallback_text) {
		free(text);
		text = strdup(fallback_text);
		if (!text)
			goto oom;
		len = strlen(text);
		e->query_len = len;
	} else if (ev->sql_enc == ST_ENC_UTF8 && ev->sql_total > ev->sql_len) {
		e->query_len = (int64_t)ev->sql_total - (int64_t)total_lead;
		text = mark_cut(text, len);
	} else {
		e->query_len = ev->sql_enc == ST_ENC_UTF8 ? (int64_t)len : (int64_t)strlen(text);
	}
	free(e->query);
	e->query = text;

	if (entry__set_str(&e->op, ev->kind == ST_EV_EXEC || ev->op == ST_OP_EXEC ? "Exec"
				   : ev->op == ST_OP_QUERY ? "Query"
				   : sqltext__op(e->query, strlen(e->query),
						 ev->rows_unknown ? 0 : (int64_t)ev->rows)))
		goto oom;
	if (ev->rc != 0) {
		char msg[ST_ERR_MAX];
		size_t n = ev->err_len < ST_ERR_MAX ? ev->err_len : ST_ERR_MAX - 1;

		memcpy(msg, ev->err, n);
		msg[n] = '\0';
		if (entry__set_str(&e->error, n ? msg : sqlite3_errstr(ev->rc)))
			goto oom;
	}
	e->duration_us = (int64_t)(ev->duration_ns / 1000);
	e->timestamp_us = (int64_t)(ev->end_ns / 1000) + wall_offset_us;
	e->pid = (int32_t)ev->pid;
	e->tid = (int32_t)ev->tid;
	e->rows = ev->kind != ST_EV_STMT ? 0 : ev->rows_unknown ? -1 : (int64_t)ev->rows;
	e->prepare_us = ev->prepare_ns ? (int64_t)(ev->prepare_ns / 1000) : -1;
	{
		char comm[ST_COMM_LEN + 1];

		memcpy(comm, ev->comm, ST_COMM_LEN);
		comm[ST_COMM_LEN] = '\0';
		if (entry__set_str(&e->process, comm))
			goto oom;
	}
	if (lib && entry__set_str(&e->lib, lib))
		goto oom;
	return e;
oom:
	entry__free(e);
	errno = ENOMEM;
	return NULL;
}
