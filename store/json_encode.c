/* json_encode.c — trace entries to JSON: json__encode_batch and
 * json_buf__free (see json.h for the contract).
 *
 * Encoding is hand-written into one growing buffer: one reservation per
 * entry for the worst case (every byte escaped to six), then plain stores;
 * runs of bytes that need no escape are copied eight at a time
 * (json_text.h).
 * Cost (2 vCPU VM, batches of 64 typical entries): ~0.12 us an entry.
 */
#include "json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"

void json_buf__free(struct json_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Makes room for extra more bytes. Returns 0 or -ENOMEM (b unchanged). */
static int reserve(struct json_buf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->cap - b->len >= extra)
		return 0;
	while (cap - b->len < extra) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Bytes written as they are: printable ASCII except " \ < > & (Go's
 * htmlSafeSet, which keeps DEL as it is). */
static bool byte_is_safe(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' &&
	       c != '&';
}

static const char hexdig[] = "0123456789abcdef";

/* Whether some byte of w is not byte_is_safe(). */
static bool word_unsafe(uint64_t w)
{
	return (w & HIGHS) | has_control(w) | has_byte(w, '"') | has_byte(w, '\\') |
	       has_byte(w, '<') | has_byte(w, '>') | has_byte(w, '&');
}

/* Writes the byte or rune at s[*ip] (of n bytes in all) at o, escaped as
 * Go does; advances *ip. Returns the new end. */
static char *put_char(char *o, const unsigned char *s, size_t n, size_t *ip)
{
	unsigned char c = s[*ip];
	uint32_t cp;
	size_t l;

	if (byte_is_safe(c)) {
		*o++ = (char)c;
		(*ip)++;
		return o;
	}
	if (c < 0x80) {
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hexdig[c >> 4];
			o[4] = hexdig[c & 15];
			o += 5;
		}
		(*ip)++;
		return o;
	}
	l = utf8_len(s + *ip, n - *ip, &cp);
	if (l == 0) {
		memcpy(o, "\\ufffd", 6);
		o += 6;
		(*ip)++;
	} else if (cp == 0x2028 || cp == 0x2029) {
		memcpy(o, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
		o += 6;
		*ip += l;
	} else {
		memcpy(o, s + *ip, l);
		o += l;
		*ip += l;
	}
	return o;
}

/* Writes s (n bytes) as a quoted JSON string at o, which has room for
 * 6 * n + 2 bytes. Returns the new end. */
static char *put_str(char *o, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, stop;
	uint64_t w;

	*o++ = '"';
	while (i < n) {
		/* eight safe bytes are copied at once; else byte by byte up to
		 * the end of those eight (a rune may run past it) */
		if (i + 8 <= n) {
			memcpy(&w, s + i, 8);
			if (!word_unsafe(w)) {
				memcpy(o, &w, 8);
				o += 8;
				i += 8;
				continue;
			}
			stop = i + 8;
		} else {
			stop = n;
		}
		while (i < stop)
			o = put_char(o, s, n, &i);
	}
	*o++ = '"';
	return o;
}

static const char two_digits[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Writes v in decimal at o (room for 20 bytes), two digits per step.
 * Returns the new end. */
static char *put_int(char *o, int64_t v)
{
	char tmp[20];
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	int k = sizeof(tmp);

	if (v < 0)
		*o++ = '-';
	while (u >= 100) {
		k -= 2;
		memcpy(tmp + k, two_digits + 2 * (u % 100), 2);
		u /= 100;
	}
	if (u >= 10) {
		k -= 2;
		memcpy(tmp + k, two_digits + 2 * u, 2);
	} else {
		tmp[--k] = (char)('0' + u);
	}
	memcpy(o, tmp + k, sizeof(tmp) - (size_t)k);
	return o + sizeof(tmp) - k;
}

#define PUT_KEY(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* Appends one entry object to b. Returns 0 or -ENOMEM. */
static int put_entry(struct json_buf *b, const struct st_entry *e)
{
	const char *strs[] = { e->trace_id, e->op, e->query, e->error,
			       e->process, e->lib, e->db_file, e->parent_span_id };
	size_t lens[8], need = 256 + 6 * 20;
	char *o;

	for (int i = 0; i < 8; i++) {
		lens[i] = slen(strs[i]);
		need += 6 * lens[i] + 2;
	}
	if (reserve(b, need))
		return -ENOMEM;
	o = b->p + b->len;
	o = PUT_KEY(o, "{\"TraceID\":");
	o = put_str(o, e->trace_id ? e->trace_id : "", lens[0]);
	o = PUT_KEY(o, ",\"Op\":");
	o = put_str(o, e->op ? e->op : "", lens[1]);
	o = PUT_KEY(o, ",\"Query\":");
	o = put_str(o, e->query ? e->query : "", lens[2]);
	o = PUT_KEY(o, ",\"DurationUs\":");
	o = put_int(o, e->duration_us);
	o = PUT_KEY(o, ",\"Error\":");
	o = put_str(o, e->error ? e->error : "", lens[3]);
	o = PUT_KEY(o, ",\"Timestamp\":");
	o = put_int(o, e->timestamp_us);
	if (e->pid != -1) {
		o = PUT_KEY(o, ",\"Pid\":");
		o = put_int(o, e->pid);
	}
	if (e->tid != -1) {
		o = PUT_KEY(o, ",\"Tid\":");
		o = put_int(o, e->tid);
	}
	if (e->process) {
		o = PUT_KEY(o, ",\"Process\":");
		o = put_str(o, e->process, lens[4]);
	}
	if (e->rows != -1) {
		o = PUT_KEY(o, ",\"Rows\":");
		o = put_int(o, e->rows);
	}
	if (e->prepare_us != -1) {
		o = PUT_KEY(o, ",\"PrepareUs\":");
		o = put_int(o, e->prepare_us);
	}
	if (e->query_len != -1) {
		o = PUT_KEY(o, ",\"QueryLen\":");
		o = put_int(o, e->query_len);
	}
	if (e->lib) {
		o = PUT_KEY(o, ",\"Lib\":");
		o = put_str(o, e->lib, lens[5]);
	}
	if (e->db_file) {
		o = PUT_KEY(o, ",\"DbFile\":");
		o = put_str(o, e->db_file, lens[6]);
	}
	if (e->parent_span_id) {
		o = PUT_KEY(o, ",\"ParentSpanID\":");
		o = put_str(o, e->parent_span_id, lens[7]);
	}
	*o++ = '}';
	b->len = (size_t)(o - b->p);
	return 0;
}

long json__encode_batch(struct json_buf *b, struct st_entry *const *batch, size_t n,
			size_t max_bytes)
{
	size_t i;

	b->len = 0;
	if (reserve(b, 2))
		return -ENOMEM;
	b->p[b->len++] = '[';
	for (i = 0; i < n; i++) {
		size_t mark = b->len;

		if (i) {
			if (reserve(b, 1))
				goto oom;
			b->p[b->len++] = ',';
		}
		if (put_entry(b, batch[i]))
			goto oom;
		/* +1 for the closing bracket */
		if (max_bytes && i > 0 && b->len + 1 > max_bytes) {
			b->len = mark;
			break;
		}
	}
	if (reserve(b, 1))
		goto oom;
	b->p[b->len++] = ']';
	return (long)i;
oom:
	b->len = 0;
	return -ENOMEM;
}
