/* traceparent.c — finds a sqlcommenter traceparent in SQL text (what counts
 * and why is in traceparent.h).
 *
 * Three layers: a lexical scan of the SQL that yields each closed block
 * comment and skips strings, quoted identifiers and line comments; a walk
 * of one comment's content as sqlcommenter key='value' pairs; a decoder and
 * validator for one traceparent value. Every index is checked against the
 * length before it is read: nothing outside [zSql, zSql + nSql) is touched.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "traceparent.h"

/* Longest traceparent value kept after decoding; a longer one is malformed.
 * Version 00 is 55 bytes; later versions may append fields. */
#define VALUE_MAX 512
/* Length of a version 00 traceparent, and the offsets of its dashes. */
#define TP_LEN 55

#define KEY "traceparent"
#define KEY_LEN (sizeof(KEY) - 1)

/* What the traceparents met so far in one text amount to. */
struct found {
	int nSeen;                                   /* traceparent pairs seen */
	int rc;                                      /* 0, or -EINVAL once one was
	                                              * malformed or disagreed */
	char zTrace[TRACEPARENT_TRACE_ID_LEN + 1];   /* valid when nSeen && !rc */
	char zSpan[TRACEPARENT_SPAN_ID_LEN + 1];
	unsigned flags;                              /* trace-flags, same validity */
};

/* SQL whitespace (what SQLite's tokenizer treats as space). */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Value of a hex digit in either case, or -1. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* True when z[0..n) is all lowercase hex (W3C's HEXDIGLC); *pbZero tells
 * whether it is all '0'. */
static bool is_lower_hex(const char *z, size_t n, bool *pbZero)
{
	size_t i;

	*pbZero = true;
	for (i = 0; i < n; i++) {
		if (!((z[i] >= '0' && z[i] <= '9') || (z[i] >= 'a' && z[i] <= 'f')))
			return false;
		if (z[i] != '0')
			*pbZero = false;
	}
	return true;
}

/* Undoes sqlcommenter's serialisation of a value, z[0..n) as found between
 * the quotes: first the \-escapes, then the %XX URL-encoding (the reverse of
 * the order they were applied in). Writes the result to zOut (VALUE_MAX
 * bytes, not NUL-terminated) and its length to *pnOut. Returns 0, or
 * -EINVAL for a malformed escape or a result longer than VALUE_MAX. */
static int decode_value(const char *z, size_t n, char *zOut, size_t *pnOut)
{
	size_t i, o = 0, nEsc;

	for (i = 0; i < n; i++) {
		char c = z[i];

		if (c == '\\') {
			if (++i == n)
				return -EINVAL;
			c = z[i];
		}
		if (o == VALUE_MAX)
			return -EINVAL;
		zOut[o++] = c;
	}
	nEsc = o;
	for (i = 0, o = 0; i < nEsc; i++) {
		char c = zOut[i];

		if (c == '%') {
			int hi, lo;

			if (nEsc - i < 3)
				return -EINVAL;
			hi = hex_value(zOut[i + 1]);
			lo = hex_value(zOut[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		zOut[o++] = c;  /* o <= i: decoding in place is safe */
	}
	*pnOut = o;
	return 0;
}

/* Validates a decoded traceparent z[0..n) (W3C Trace Context level 1):
 *   version "-" trace-id "-" parent-id "-" trace-flags
 *   2 hex, not ff   32 hex, not 0   16 hex, not 0    2 hex
 * all lowercase; version 00 is exactly 55 bytes, a later version may carry
 * more after a '-' at offset 55. Returns 0 and fills zTrace / zSpan, or
 * -EINVAL. */
static int parse_traceparent(const char *z, size_t n, char *zTrace, char *zSpan,
			     unsigned *pFlags)
{
	bool bZero;

	if (n < TP_LEN)
		return -EINVAL;
	if (!is_lower_hex(z, 2, &bZero) || (z[0] == 'f' && z[1] == 'f'))
		return -EINVAL;
	if (z[2] != '-' || z[35] != '-' || z[52] != '-')
		return -EINVAL;
	if (!is_lower_hex(z + 3, TRACEPARENT_TRACE_ID_LEN, &bZero) || bZero)
		return -EINVAL;
	if (!is_lower_hex(z + 36, TRACEPARENT_SPAN_ID_LEN, &bZero) || bZero)
		return -EINVAL;
	if (!is_lower_hex(z + 53, 2, &bZero))
		return -EINVAL;
	if (n > TP_LEN && ((z[0] == '0' && z[1] == '0') || z[TP_LEN] != '-'))
		return -EINVAL;
	memcpy(zTrace, z + 3, TRACEPARENT_TRACE_ID_LEN);
	zTrace[TRACEPARENT_TRACE_ID_LEN] = '\0';
	memcpy(zSpan, z + 36, TRACEPARENT_SPAN_ID_LEN);
	zSpan[TRACEPARENT_SPAN_ID_LEN] = '\0';
	*pFlags = (unsigned)(hex_value(z[53]) * 16 + hex_value(z[54]));
	return 0;
}

/* Adds one traceparent value (raw, as between the quotes) to *pFound: the
 * first sets the result, any later one must be valid and name the same ids
 * or the result becomes -EINVAL. This function can't fail. */
static void note_value(struct found *pFound, const char *z, size_t n)
{
	char aBuf[VALUE_MAX];
	char zTrace[TRACEPARENT_TRACE_ID_LEN + 1], zSpan[TRACEPARENT_SPAN_ID_LEN + 1];
	size_t nBuf;
	unsigned flags = 0;
	int rc;

	rc = decode_value(z, n, aBuf, &nBuf);
	if (rc == 0)
		rc = parse_traceparent(aBuf, nBuf, zTrace, zSpan, &flags);
	if (pFound->nSeen++ == 0) {
		pFound->rc = rc;
		if (rc == 0) {
			memcpy(pFound->zTrace, zTrace, sizeof(zTrace));
			memcpy(pFound->zSpan, zSpan, sizeof(zSpan));
			pFound->flags = flags;
		}
	} else if (pFound->rc == 0 &&
		   (rc != 0 || strcmp(zTrace, pFound->zTrace) != 0 ||
		    strcmp(zSpan, pFound->zSpan) != 0 || flags != pFound->flags)) {
		pFound->rc = -EINVAL;
	}
}

/* Walks the content z[0..n) of one block comment as sqlcommenter pairs:
 *   ws* key '=' '\'' value '\'' ws* ( ',' ws* key '=' ... )*
 * where a key is a non-empty run without whitespace, '=', ',' or quote, and
 * a value runs to the next quote not escaped by '\'. With pFound NULL it
 * only checks the form; otherwise it hands every traceparent value to
 * note_value. Returns true when the whole content has that form (an empty
 * comment does not). */
static bool walk_pairs(const char *z, size_t n, struct found *pFound)
{
	size_t i = 0;

	for (;;) {
		size_t iKey, nKey, iValue;

		while (i < n && is_space(z[i]))
			i++;
		if (i == n)
			return false;  /* empty content, or nothing after a comma */
		iKey = i;
		while (i < n && z[i] != '=' && z[i] != ',' && z[i] != '\'' && !is_space(z[i]))
			i++;
		nKey = i - iKey;
		if (nKey == 0 || i == n || z[i] != '=')
			return false;
		if (++i == n || z[i] != '\'')
			return false;
		iValue = ++i;
		while (i < n && z[i] != '\'')
			i += (z[i] == '\\' && i + 1 < n) ? 2 : 1;
		if (i >= n)
			return false;  /* the value is not closed */
		if (pFound && nKey == KEY_LEN && memcmp(z + iKey, KEY, KEY_LEN) == 0)
			note_value(pFound, z + iValue, i - iValue);
		i++;
		while (i < n && is_space(z[i]))
			i++;
		if (i == n)
			return true;
		if (z[i] != ',')
			return false;
		i++;
	}
}

int traceparent__extract(const char *zSql, size_t nSql,
			 char zTraceId[TRACEPARENT_TRACE_ID_LEN + 1],
			 char zSpanId[TRACEPARENT_SPAN_ID_LEN + 1])
{
	return traceparent__extract_flags(zSql, nSql, zTraceId, zSpanId, NULL);
}

int traceparent__extract_flags(const char *zSql, size_t nSql,
			       char zTraceId[TRACEPARENT_TRACE_ID_LEN + 1],
			       char zSpanId[TRACEPARENT_SPAN_ID_LEN + 1], unsigned *pFlags)
{
	struct found found = { 0 };
	size_t i = 0, n;

	if (zTraceId)
		zTraceId[0] = '\0';
	if (zSpanId)
		zSpanId[0] = '\0';
	if (!zTraceId || !zSpanId || (!zSql && nSql))
		return -EINVAL;
	if (nSql == 0)
		return -ENOENT;
	n = strnlen(zSql, nSql);  /* a NUL ends the text, as for sqlite3_prepare */
	if (!memmem(zSql, n, KEY, KEY_LEN))
		return -ENOENT;   /* the common case, decided without a scan */

	while (i < n) {
		char c = zSql[i];

		if (c == '\'' || c == '"' || c == '`') {
			/* String or quoted identifier; a doubled quote stands for
			 * itself. Unterminated: runs to the end of the text. */
			for (i++; i < n; i++) {
				if (zSql[i] != c)
					continue;
				if (i + 1 < n && zSql[i + 1] == c)
					i++;
				else
					break;
			}
			i++;
		} else if (c == '[') {
			const char *zEnd = memchr(zSql + i, ']', n - i);

			i = zEnd ? (size_t)(zEnd - zSql) + 1 : n;
		} else if (c == '-' && i + 1 < n && zSql[i + 1] == '-') {
			const char *zEnd = memchr(zSql + i, '\n', n - i);

			i = zEnd ? (size_t)(zEnd - zSql) + 1 : n;
		} else if (c == '/' && i + 1 < n && zSql[i + 1] == '*') {
			size_t iBody = i + 2;
			const char *zEnd = memmem(zSql + iBody, n - iBody, "*/", 2);
			size_t nBody;

			if (!zEnd)
				break;  /* unterminated: runs to the end, not taken */
			nBody = (size_t)(zEnd - zSql) - iBody;
			if (walk_pairs(zSql + iBody, nBody, NULL))
				walk_pairs(zSql + iBody, nBody, &found);
			i = (size_t)(zEnd - zSql) + 2;
		} else {
			i++;
		}
	}

	if (found.nSeen == 0)
		return -ENOENT;
	if (found.rc != 0)
		return found.rc;
	memcpy(zTraceId, found.zTrace, sizeof(found.zTrace));
	memcpy(zSpanId, found.zSpan, sizeof(found.zSpan));
	if (pFlags)
		*pFlags = found.flags;
	return 0;
}
