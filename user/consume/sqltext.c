/* sqltext.c — Op classification, UTF-16 conversion and safe cutting of SQL
 * text (see sqltext.h). */
#include "sqltext.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Skips blanks and SQL comments; returns the offset of the first token. */
static size_t skip_blanks_comments(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			i++;
		} else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && s[i] != '\n')
				i++;
		} else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
			i += 2;
			while (i + 1 < len && !(s[i] == '*' && s[i + 1] == '/'))
				i++;
			i = i + 1 < len ? i + 2 : len;
		} else {
			break;
		}
	}
	return i;
}

static int is_ident(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

const char *sqltext__op(const char *sql, size_t len, int64_t rows)
{
	static const char *const query_words[] = { "SELECT", "WITH", "PRAGMA", "EXPLAIN", "VALUES" };
	size_t i, w;

	if (rows > 0)
		return "Query";
	if (!sql)
		return "Exec";
	i = skip_blanks_comments(sql, len);
	for (w = 0; w < sizeof(query_words) / sizeof(query_words[0]); w++) {
		size_t n = strlen(query_words[w]);

		if (i + n <= len && strncasecmp(sql + i, query_words[w], n) == 0 &&
		    (i + n == len || !is_ident((unsigned char)sql[i + n])))
			return "Query";
	}
	return "Exec";
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = 0xC0 | (cp >> 6);
		out[1] = 0x80 | (cp & 0x3F);
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = 0xE0 | (cp >> 12);
		out[1] = 0x80 | ((cp >> 6) & 0x3F);
		out[2] = 0x80 | (cp & 0x3F);
		return 3;
	}
	out[0] = 0xF0 | (cp >> 18);
	out[1] = 0x80 | ((cp >> 12) & 0x3F);
	out[2] = 0x80 | ((cp >> 6) & 0x3F);
	out[3] = 0x80 | (cp & 0x3F);
	return 4;
}

size_t sqltext__utf16le_to_utf8(const uint8_t *in, size_t inlen, char *out, size_t outcap)
{
	size_t i = 0, o = 0;
	char tmp[4];

	if (outcap == 0)
		return 0;
	while (i + 1 < inlen) {
		uint32_t cp = in[i] | (in[i + 1] << 8);
		size_t n;

		i += 2;
		if (cp == 0)
			break;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			uint32_t lo = i + 1 < inlen ? (uint32_t)(in[i] | (in[i + 1] << 8)) : 0;

			if (lo >= 0xDC00 && lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i += 2;
			} else {
				cp = 0xFFFD;
			}
		} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
			cp = 0xFFFD;
		}
		n = put_utf8(tmp, cp);
		if (o + n > outcap - 1)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

size_t sqltext__utf8_boundary(const char *s, size_t len)
{
	size_t i = len, back = 0;

	/* Walk back over continuation bytes to the last lead byte. */
	while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0)
		return len;
	{
		unsigned char lead = s[i - 1];
		size_t need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3
			      : (lead & 0xF8) == 0xF0 ? 4 : 1;

		if (need > 1 && back + 1 < need)
			return i - 1;  /* the last character is incomplete */
	}
	return len;
}

static int is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t sqltext__trim(char *s, size_t len, int trim_end, size_t *lead)
{
	size_t start = 0;

	while (start < len && is_blank((unsigned char)s[start]))
		start++;
	if (start)
		memmove(s, s + start, len - start);
	len -= start;
	while (trim_end && len > 0 && is_blank((unsigned char)s[len - 1]))
		len--;
	s[len] = '\0';
	*lead = start;
	return len;
}
