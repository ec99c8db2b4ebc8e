/* json_decode.c — JSON batches back into trace entries: json__decode_batch
 * and json__free_batch (see json.h for the contract).
 *
 * Decoding is three steps, because cJSON alone is laxer than Go and loses
 * the text of numbers:
 *   1. check(): a strict RFC 8259 scan that rejects what Go rejects, records
 *      the text of every number literal in document order, and notes the
 *      few spots cJSON would handle differently from Go;
 *   2. those spots are patched in a copy, keeping every offset: a lone
 *      surrogate escape becomes \ufffd (Go's result), \u0000 inside a key
 *      becomes \u0001 (no field name contains either, so matching is
 *      unchanged, where cJSON would cut the key short), and every number
 *      literal longer than one character becomes 0 padded with spaces:
 *      cJSON only has to see a number there (its text is read from the
 *      original), strtod() of "0" is cheap, and literals beyond cJSON's
 *      63-character limit are covered too;
 *   3. cJSON parses the copy and the tree is walked into entries: an
 *      object's fields are gathered in a struct on the stack, its strings
 *      pointing into the tree, then copied into one packed entry (entry.h);
 *      numbers are matched to their recorded text by counting them in
 *      document order, so int64 fields are parsed exactly, as
 *      strconv.ParseInt does.
 * Memory: everything but the entries and their array comes from a
 * per-thread arena (json_arena.c), cJSON's tree included, and is dropped in
 * one go: a decode costs one malloc per entry.
 * Cost (2 vCPU VM, batches of 64 typical entries): ~1.0 us an entry, most
 * of it in cJSON (it was ~1.9 us with malloc'd trees and entries).
 */
#include "json.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_arena.h"
#include "json_text.h"

#define MAX_DEPTH 1000       /* cJSON's CJSON_NESTING_LIMIT */

/* ---- decoding, step 1: strict syntax check ------------------------------ */

enum patch_kind { PATCH_FFFD, PATCH_KEY_NUL };

struct patch {
	size_t off, len;
	enum patch_kind kind;
};

struct span {
	size_t off, len;
};

struct check {
	const unsigned char *s;
	size_t len, i;
	int depth;
	struct span *nums;       /* every number literal, in document order */
	size_t nnums, capnums;
	size_t nlong;            /* numbers longer than one character */
	struct patch *patches;   /* in increasing offset order */
	size_t npatches, cappatches;
	int oom;
	char *err;
	size_t errlen;
};

static bool fail(struct check *c, const char *what)
{
	if (c->err && c->errlen && !c->oom)
		snprintf(c->err, c->errlen, "invalid JSON: %s at offset %zu", what, c->i);
	return false;
}

/* Appends one element of size sz to the growable array *v (in the arena:
 * the old copy is dropped with it). */
static bool push(struct check *c, void **v, size_t *n, size_t *cap, size_t sz,
		 const void *elem)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		void *p = json_arena__alloc(ncap * sz);

		if (!p) {
			c->oom = 1;
			return false;
		}
		if (*n)
			memcpy(p, *v, *n * sz);
		*v = p;
		*cap = ncap;
	}
	memcpy((char *)*v + *n * sz, elem, sz);
	(*n)++;
	return true;
}

static bool add_patch(struct check *c, size_t off, size_t len, enum patch_kind kind)
{
	struct patch p = { off, len, kind };

	return push(c, (void **)&c->patches, &c->npatches, &c->cappatches, sizeof(p), &p);
}

static void skip_ws(struct check *c)
{
	while (c->i < c->len) {
		unsigned char ch = c->s[c->i];

		if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
			break;
		c->i++;
	}
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
		return (ch | 0x20) - 'a' + 10;
	return -1;
}

/* The code unit of a \uXXXX escape at s[i..], or -1 when there is none. */
static long u4_at(const struct check *c, size_t i)
{
	long v = 0;

	if (i + 6 > c->len || c->s[i] != '\\' || c->s[i + 1] != 'u')
		return -1;
	for (size_t k = 2; k < 6; k++) {
		int h = hexval(c->s[i + k]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Bytes that end a run of plain string content: '"', '\\' and controls. */
static bool str_special(unsigned char ch)
{
	return ch == '"' || ch == '\\' || ch < 0x20;
}

/* Whether one of the eight bytes of w ends a plain run. */
static bool word_special(uint64_t w)
{
	return has_byte(w, '"') | has_byte(w, '\\') | has_control(w);
}

/* Index of the first special byte of s[i..len), or len. */
static size_t plain_run(const unsigned char *s, size_t i, size_t len)
{
	uint64_t w;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, s + i, 8);
		if (word_special(w))
			break;
	}
	while (i < len && !str_special(s[i]))
		i++;
	return i;
}

static bool check_string(struct check *c, bool is_key)
{
	c->i++; /* opening quote */
	for (;;) {
		size_t i = c->i;
		unsigned char ch;
		long u, u2;

		i = plain_run(c->s, i, c->len);
		c->i = i;
		if (i >= c->len)
			break;
		ch = c->s[i];
		if (ch == '"') {
			c->i++;
			return true;
		}
		if (ch < 0x20)
			return fail(c, "control character in string");
		/* a backslash */
		if (c->i + 1 >= c->len)
			break;
		ch = c->s[c->i + 1];
		if (ch != 'u') {
			if (!strchr("\"\\/bfnrt", ch) || ch == '\0')
				return fail(c, "invalid escape in string");
			c->i += 2;
			continue;
		}
		u = u4_at(c, c->i);
		if (u < 0)
			return fail(c, "invalid \\u escape in string");
		if (u >= 0xD800 && u < 0xE000) {
			u2 = u4_at(c, c->i + 6);
			if (u < 0xDC00 && u2 >= 0xDC00 && u2 < 0xE000) {
				c->i += 12; /* a valid pair */
				continue;
			}
			if (!add_patch(c, c->i, 6, PATCH_FFFD))
				return false;
		} else if (u == 0 && is_key && !add_patch(c, c->i, 6, PATCH_KEY_NUL)) {
			return false;
		}
		c->i += 6;
	}
	return fail(c, "unterminated string");
}

static bool digits(struct check *c)
{
	size_t start = c->i;

	while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9')
		c->i++;
	return c->i > start;
}

static bool check_number(struct check *c)
{
	struct span sp = { c->i, 0 };

	if (c->s[c->i] == '-')
		c->i++;
	if (c->i < c->len && c->s[c->i] == '0')
		c->i++;
	else if (!digits(c))
		return fail(c, "invalid number");
	if (c->i < c->len && c->s[c->i] == '.') {
		c->i++;
		if (!digits(c))
			return fail(c, "invalid number");
	}
	if (c->i < c->len && (c->s[c->i] | 0x20) == 'e') {
		c->i++;
		if (c->i < c->len && (c->s[c->i] == '+' || c->s[c->i] == '-'))
			c->i++;
		if (!digits(c))
			return fail(c, "invalid number");
	}
	sp.len = c->i - sp.off;
	c->nlong += sp.len > 1;
	return push(c, (void **)&c->nums, &c->nnums, &c->capnums, sizeof(sp), &sp);
}

static bool check_literal(struct check *c, const char *lit)
{
	size_t n = strlen(lit);

	if (c->len - c->i < n || memcmp(c->s + c->i, lit, n) != 0)
		return fail(c, "invalid literal");
	c->i += n;
	return true;
}

static bool check_value(struct check *c);

/* Checks an array (close = ']') or an object (close = '}'). */
static bool check_container(struct check *c, unsigned char close)
{
	if (++c->depth > MAX_DEPTH)
		return fail(c, "nesting deeper than 1000");
	c->i++;
	skip_ws(c);
	if (c->i < c->len && c->s[c->i] == close) {
		c->i++;
		c->depth--;
		return true;
	}
	for (;;) {
		if (close == '}') {
			if (c->i >= c->len || c->s[c->i] != '"')
				return fail(c, "expected object key");
			if (!check_string(c, true))
				return false;
			skip_ws(c);
			if (c->i >= c->len || c->s[c->i] != ':')
				return fail(c, "expected ':' after object key");
			c->i++;
			skip_ws(c);
		}
		if (!check_value(c))
			return false;
		skip_ws(c);
		if (c->i < c->len && c->s[c->i] == ',') {
			c->i++;
			skip_ws(c);
			continue;
		}
		if (c->i < c->len && c->s[c->i] == close) {
			c->i++;
			c->depth--;
			return true;
		}
		return fail(c, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
	}
}

static bool check_value(struct check *c)
{
	if (c->i >= c->len)
		return fail(c, "unexpected end of input");
	switch (c->s[c->i]) {
	case '[': return check_container(c, ']');
	case '{': return check_container(c, '}');
	case '"': return check_string(c, false);
	case 't': return check_literal(c, "true");
	case 'f': return check_literal(c, "false");
	case 'n': return check_literal(c, "null");
	default:
		if (c->s[c->i] == '-' || (c->s[c->i] >= '0' && c->s[c->i] <= '9'))
			return check_number(c);
		return fail(c, "invalid character");
	}
}

static bool check_document(struct check *c)
{
	skip_ws(c);
	if (!check_value(c))
		return false;
	skip_ws(c);
	if (c->i != c->len)
		return fail(c, "data after the top-level value");
	return true;
}

/* ---- decoding, step 2: patched copy for cJSON --------------------------- */

/* Returns buf itself when nothing needs patching, else a patched copy
 * (NUL-terminated, in the arena), or NULL when out of memory. */
static char *patched_copy(const struct check *c, const char *buf, size_t len)
{
	char *p;

	if (!c->npatches && !c->nlong)
		return (char *)buf;
	p = json_arena__alloc(len + 1);
	if (!p)
		return NULL;
	memcpy(p, buf, len);
	p[len] = '\0';
	for (size_t k = 0; k < c->nnums; k++) {
		const struct span *sp = &c->nums[k];

		if (sp->len > 1) {
			p[sp->off] = '0';
			memset(p + sp->off + 1, ' ', sp->len - 1);
		}
	}
	for (size_t k = 0; k < c->npatches; k++) {
		const struct patch *pt = &c->patches[k];

		switch (pt->kind) {
		case PATCH_FFFD:
			memcpy(p + pt->off, "\\ufffd", 6);
			break;
		case PATCH_KEY_NUL:
			memcpy(p + pt->off, "\\u0001", 6);
			break;
		}
	}
	return p;
}

/* ---- decoding, step 3: the tree into entries ---------------------------- */

enum ftype { F_STR, F_I64, F_I32 };

struct field {
	const char *name;
	enum ftype type;
	size_t off;
};

#define FIELD(n, t, m) { n, t, offsetof(struct st_entry, m) }
static const struct field fields[] = {
	FIELD("TraceID", F_STR, trace_id),
	FIELD("Op", F_STR, op),
	FIELD("Query", F_STR, query),
	FIELD("DurationUs", F_I64, duration_us),
	FIELD("Error", F_STR, error),
	FIELD("Timestamp", F_I64, timestamp_us),
	FIELD("Pid", F_I32, pid),
	FIELD("Tid", F_I32, tid),
	FIELD("Process", F_STR, process),
	FIELD("Rows", F_I64, rows),
	FIELD("PrepareUs", F_I64, prepare_us),
	FIELD("QueryLen", F_I64, query_len),
	FIELD("Lib", F_STR, lib),
	FIELD("DbFile", F_STR, db_file),
	FIELD("ParentSpanID", F_STR, parent_span_id),
};

/* Go's case folding of a key against a field name made of ASCII letters:
 * letters match in either case, and the key may also spell s/S as U+017F
 * and k/K as U+212A (the only non-ASCII runes folding to ASCII letters). */
static bool key_matches(const char *name, const char *key)
{
	const unsigned char *k = (const unsigned char *)key;

	for (; *name; name++) {
		unsigned char lc = (unsigned char)(*name | 0x20);

		if ((*k | 0x20) == lc) {
			k++;
		} else if (lc == 's' && k[0] == 0xC5 && k[1] == 0xBF) {
			k += 2;
		} else if (lc == 'k' && k[0] == 0xE2 && k[1] == 0x84 && k[2] == 0xAA) {
			k += 3;
		} else {
			return false;
		}
	}
	return *k == '\0';
}

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
#define PER_LETTER 4  /* most field names sharing a first letter (P) */

/* fields[] by the first letter of their name, folded: index + 1, 0 ends.
 * A key can only match a field of its own first byte folded the same way:
 * no field name starts with s or k, the letters with non-ASCII folds. */
static unsigned char by_letter[32][PER_LETTER + 1];

static void index_fields(void)
{
	for (size_t i = 0; i < NFIELDS; i++) {
		unsigned char *slot = by_letter[fields[i].name[0] & 31];

		while (*slot)
			slot++;
		*slot = (unsigned char)(i + 1);
	}
}

static const struct field *find_field(const char *key)
{
	unsigned char c = (unsigned char)key[0];
	const unsigned char *slot = by_letter[c & 31];

	if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
		return NULL;
	for (; *slot; slot++)
		if (key_matches(fields[*slot - 1].name, key))
			return &fields[*slot - 1];
	return NULL;
}

/* Whether s[0..n) is all ASCII, eight bytes at a time. */
static bool ascii(const unsigned char *s, size_t n)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= s[i];
	return !(acc & 0x8080808080808080ULL);
}

/* Points *slot at the string of node v (in the arena: entry__clone copies
 * it out), every invalid UTF-8 byte replaced by U+FFFD as Go's decoder does
 * (then in a new copy in the arena). Returns 0 or -ENOMEM. */
static int take_utf8(char **slot, const cJSON *v)
{
	const char *s = v->valuestring;
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), bad = 0, i, o = 0;
	uint32_t cp;
	char *p;

	if (ascii(u, n)) {
		*slot = (char *)s; /* the common case */
		return 0;
	}
	for (i = 0; i < n;) {
		size_t l = u[i] < 0x80 ? 1 : utf8_len(u + i, n - i, &cp);

		bad += l == 0;
		i += l ? l : 1;
	}
	if (!bad) {
		*slot = (char *)s;
		return 0;
	}
	p = json_arena__alloc(n + 2 * bad + 1);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n;) {
		size_t l = u[i] < 0x80 ? 1 : utf8_len(u + i, n - i, &cp);

		if (l == 0) {
			memcpy(p + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		} else {
			memcpy(p + o, s + i, l);
			o += l;
			i += l;
		}
	}
	p[o] = '\0';
	*slot = p;
	return 0;
}

/* Parses the integer literal text[0..len) as strconv.ParseInt(text, 10, 64)
 * does, then checks [lo, hi]. Returns 0 or -ERANGE / -EINVAL. */
static int parse_int(const char *text, size_t len, int64_t lo, int64_t hi, int64_t *out)
{
	bool neg = len && text[0] == '-';
	uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	size_t i = neg;

	/* up to 18 digits cannot overflow: no division per digit */
	for (; i < len && i < (size_t)neg + 18; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	for (; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		if (v > (limit - (uint64_t)(text[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	if (*out < lo || *out > hi)
		return -ERANGE;
	return 0;
}

/* cJSON_IsNumber(v) and the like, inline (every value is tested). */
static inline bool jis(const cJSON *v, int type)
{
	return (v->type & 0xFF) == type;
}

static size_t count_numbers(const cJSON *v)
{
	size_t n = jis(v, cJSON_Number);

	for (const cJSON *ch = v->child; ch; ch = ch->next)
		n += count_numbers(ch);
	return n;
}

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "string";
	if (cJSON_IsNumber(v))
		return "number";
	if (cJSON_IsBool(v))
		return "bool";
	if (cJSON_IsArray(v))
		return "array";
	if (cJSON_IsObject(v))
		return "object";
	return "null";
}

struct walk {
	const char *src;         /* original text, for number literals */
	const struct span *nums;
	size_t nnums;
	size_t inum;             /* next number literal in document order */
	char *err;
	size_t errlen;
};

static int bad(struct walk *w, size_t idx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct walk *w, size_t idx, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (w->err && w->errlen) {
		k = snprintf(w->err, w->errlen, "element %zu: ", idx);
		if (k >= 0 && (size_t)k < w->errlen) {
			va_start(ap, fmt);
			vsnprintf(w->err + k, w->errlen - (size_t)k, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

/* Stores value v (a member of element idx) into field f of e. */
static int set_field(struct walk *w, size_t idx, struct st_entry *e, const struct field *f,
		     cJSON *v)
{
	if (jis(v, cJSON_NULL))
		return 0; /* Go leaves the field as it was */
	if (f->type == F_STR) {
		if (!jis(v, cJSON_String) || !v->valuestring)
			return bad(w, idx, "%s: expected a string, got %s", f->name, type_name(v));
		return take_utf8((char **)((char *)e + f->off), v);
	}
	if (!jis(v, cJSON_Number))
		return bad(w, idx, "%s: expected an integer, got %s", f->name, type_name(v));

	if (w->inum >= w->nnums)  /* cannot happen: check() saw every number */
		return bad(w, idx, "%s: number not found in the input", f->name);

	const struct span *sp = &w->nums[w->inum];
	bool i32 = f->type == F_I32;
	int64_t val;

	if (parse_int(w->src + sp->off, sp->len, i32 ? INT32_MIN : INT64_MIN,
		      i32 ? INT32_MAX : INT64_MAX, &val))
		return bad(w, idx, "%s: number %.*s%s is not an %s", f->name,
			   (int)(sp->len > 24 ? 24 : sp->len), w->src + sp->off,
			   sp->len > 24 ? "..." : "", i32 ? "int32" : "int64");
	if (i32)
		*(int32_t *)((char *)e + f->off) = (int32_t)val;
	else
		*(int64_t *)((char *)e + f->off) = val;
	return 0;
}

/* Builds the entry of object obj (element idx): the fields are gathered in
 * a struct on the stack, its strings pointing into the tree, then copied
 * into one packed entry (entry__clone), with "" for the seed strings the
 * object did not set. */
static int decode_object(struct walk *w, size_t idx, const cJSON *obj, struct st_entry **out)
{
	struct st_entry e = { .pid = -1, .tid = -1, .rows = -1, .prepare_us = -1,
			      .query_len = -1 };
	int ret = 0;

	for (cJSON *m = obj->child; m; m = m->next) {
		const struct field *f = m->string ? find_field(m->string) : NULL;

		if (f)
			ret = set_field(w, idx, &e, f, m);
		w->inum += count_numbers(m);
		if (ret)
			return ret;
	}
	*out = entry__clone(&e);
	return *out ? 0 : -ENOMEM;
}

void json__free_batch(struct st_entry **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		entry__free(v[i]);
	free(v);
}

static int decode_tree(struct walk *w, const cJSON *root, struct st_entry ***out, size_t *n)
{
	struct st_entry **v;
	size_t k = 0, idx = 0, cap = 0;
	int ret;

	if (cJSON_IsNull(root))
		return 0; /* Go: a nil slice, no error */
	if (!cJSON_IsArray(root)) {
		if (w->err && w->errlen)
			snprintf(w->err, w->errlen, "expected a JSON array, got %s",
				 type_name(root));
		return -EINVAL;
	}
	for (const cJSON *el = root->child; el; el = el->next)
		cap += !jis(el, cJSON_NULL);
	if (!cap)
		return 0;
	v = calloc(cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (const cJSON *el = root->child; el; el = el->next, idx++) {
		if (jis(el, cJSON_NULL))
			continue;
		if (!jis(el, cJSON_Object)) {
			ret = bad(w, idx, "expected an object, got %s", type_name(el));
			goto err;
		}
		ret = decode_object(w, idx, el, &v[k]);
		if (ret)
			goto err;
		k++;
	}
	*out = v;
	*n = k;
	return 0;
err:
	json__free_batch(v, k);
	return ret;
}

/* Once per process: cJSON's hooks and the arena's thread-exit key
 * (json_arena__init), the field index. */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void)
{
	json_arena__init();
	index_fields();
}

int json__decode_batch(const char *buf, size_t len, struct st_entry ***out, size_t *n,
		       char *err, size_t errlen)
{
	struct check c = { .s = (const unsigned char *)buf, .len = len, .err = err,
			   .errlen = errlen };
	struct walk w = { .src = buf, .err = err, .errlen = errlen };
	cJSON *root;
	char *text;
	int ret;

	*out = NULL;
	*n = 0;
	if (err && errlen)
		err[0] = '\0';
	pthread_once(&init_once, init);
	json_arena__begin();
	if (!check_document(&c)) {
		ret = c.oom ? -ENOMEM : -EINVAL;
		goto out;
	}
	text = patched_copy(&c, buf, len);
	if (!text) {
		ret = -ENOMEM;
		goto out;
	}
	/* The check above accepts only what cJSON parses: a failure here is
	 * cJSON running out of memory. */
	root = cJSON_ParseWithLength(text, len);
	if (!root) {
		ret = -ENOMEM;
		goto out;
	}
	w.nums = c.nums;
	w.nnums = c.nnums;
	ret = decode_tree(&w, root, out, n);
out:
	if (ret == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory decoding %zu bytes", len);
	json_arena__end(); /* the tree, the patched copy, the check's arrays */
	return ret;
}
