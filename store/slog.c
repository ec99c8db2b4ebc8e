/* slog.c — Go slog-compatible formatting of entries (see slog.h). */
#include "slog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum slog_level slog__entry_level(const struct st_entry *e, int64_t slow_us)
{
	if (e->error && e->error[0])
		return SLOG_ERROR;
	if (e->duration_us > slow_us)
		return SLOG_WARN;
	return SLOG_DEBUG;
}

const char *slog__level_name(enum slog_level l)
{
	switch (l) {
	case SLOG_DEBUG: return "DEBUG";
	case SLOG_INFO: return "INFO";
	case SLOG_WARN: return "WARN";
	default: return "ERROR";
	}
}

int slog__parse_level(const char *s, enum slog_level *out)
{
	static const struct { const char *name; enum slog_level l; } names[] = {
		{ "debug", SLOG_DEBUG }, { "info", SLOG_INFO },
		{ "warn", SLOG_WARN }, { "warning", SLOG_WARN }, { "error", SLOG_ERROR },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].l;
			return 0;
		}
	}
	return -EINVAL;
}

size_t slog__utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
	uint32_t c = s[0], min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		len = 2; c &= 0x1F; min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3; c &= 0x0F; min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4; c &= 0x07; min = 0x10000;
	} else {
		*cp = -1;
		return 1;
	}
	if (len > n) {
		*cp = -1;
		return 1;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80) {
			*cp = -1;
			return 1;
		}
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
		*cp = -1;
		return 1;
	}
	*cp = c;
	return len;
}

/* An approximation of Go's unicode.IsPrint for non-ASCII code points:
 * everything but C1 controls, soft hyphen, line/paragraph separators,
 * format characters commonly met (ZW*, BOM) and non-characters. */
static int is_print_rune(int32_t r)
{
	if (r < 0x20 || r == 0x7F)
		return 0;
	if (r < 0x7F)
		return 1;
	if (r >= 0x80 && r <= 0xA0)
		return 0;  /* C1 controls and no-break space (IsPrint excludes it) */
	if (r == 0xAD || r == 0x2028 || r == 0x2029 || (r >= 0x200B && r <= 0x200F) ||
	    (r >= 0x202A && r <= 0x202E) || (r >= 0x2060 && r <= 0x206F) || r == 0xFEFF ||
	    r == 0xFFFE || r == 0xFFFF || (r >= 0xE000 && r <= 0xF8FF))
		return 0;
	return 1;
}

static int is_space_rune(int32_t r)
{
	return r == 0x85 || r == 0xA0 || r == 0x1680 || (r >= 0x2000 && r <= 0x200A) ||
	       r == 0x2028 || r == 0x2029 || r == 0x202F || r == 0x205F || r == 0x3000;
}

static int needs_quoting(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;

	if (n == 0)
		return 1;
	while (i < n) {
		int32_t r;

		if (p[i] < 0x80) {
			unsigned char b = p[i];

			if (b != '\\' && (b == ' ' || b == '=' || b == '"' || b < 0x20))
				return 1;
			i++;
			continue;
		}
		i += slog__utf8_decode(p + i, n - i, &r);
		if (r < 0 || r == 0xFFFD || is_space_rune(r) || !is_print_rune(r))
			return 1;
	}
	return 0;
}

void slog__text_value(struct strbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;

	if (!needs_quoting(s)) {
		strbuf__putn(b, s, n);
		return;
	}
	strbuf__putc(b, '"');
	while (i < n) {
		int32_t r;
		size_t len = slog__utf8_decode(p + i, n - i, &r);

		if (r < 0) {
			strbuf__printf(b, "\\x%02x", p[i]);
		} else if (r == '"' || r == '\\') {
			strbuf__putc(b, '\\');
			strbuf__putc(b, (char)r);
		} else if (r < 0x80 && r >= 0x20 && r != 0x7F) {
			strbuf__putc(b, (char)r);
		} else if (r >= 0x80 && is_print_rune(r)) {
			strbuf__putn(b, s + i, len);
		} else {
			switch (r) {
			case '\a': strbuf__puts(b, "\\a"); break;
			case '\b': strbuf__puts(b, "\\b"); break;
			case '\f': strbuf__puts(b, "\\f"); break;
			case '\n': strbuf__puts(b, "\\n"); break;
			case '\r': strbuf__puts(b, "\\r"); break;
			case '\t': strbuf__puts(b, "\\t"); break;
			case '\v': strbuf__puts(b, "\\v"); break;
			default:
				if (r < 0x80)
					strbuf__printf(b, "\\x%02x", (unsigned)r);
				else if (r < 0x10000)
					strbuf__printf(b, "\\u%04x", (unsigned)r);
				else
					strbuf__printf(b, "\\U%08x", (unsigned)r);
			}
		}
		i += len;
	}
	strbuf__putc(b, '"');
}

void slog__json_string(struct strbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, start = 0;

	strbuf__putc(b, '"');
	while (i < n) {
		unsigned char c = p[i];
		int32_t r;
		size_t len;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		if (c < 0x80) {
			strbuf__putn(b, s + start, i - start);
			switch (c) {
			case '"': strbuf__puts(b, "\\\""); break;
			case '\\': strbuf__puts(b, "\\\\"); break;
			case '\n': strbuf__puts(b, "\\n"); break;
			case '\r': strbuf__puts(b, "\\r"); break;
			case '\t': strbuf__puts(b, "\\t"); break;
			default: strbuf__printf(b, "\\u%04x", c);
			}
			i++;
			start = i;
			continue;
		}
		len = slog__utf8_decode(p + i, n - i, &r);
		if (r < 0 || r == 0x2028 || r == 0x2029) {
			strbuf__putn(b, s + start, i - start);
			if (r < 0)
				strbuf__puts(b, "\\ufffd");
			else
				strbuf__printf(b, "\\u%04x", (unsigned)r);
			i += len;
			start = i;
			continue;
		}
		i += len;
	}
	strbuf__putn(b, s + start, n - start);
	strbuf__putc(b, '"');
}

/* Go's fmtFrac/fmtInt-based Duration.String, for ns >= 0 and < 0. */
void slog__duration(struct strbuf *b, int64_t ns)
{
	char buf[40];
	int w = sizeof(buf);
	uint64_t u = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;
	int neg = ns < 0;

	if (u < 1000000000ULL) {
		int prec;

		w--;
		buf[w] = 's';
		w--;
		if (u == 0) {
			strbuf__puts(b, "0s");
			return;
		} else if (u < 1000ULL) {
			prec = 0;
			buf[w] = 'n';
		} else if (u < 1000000ULL) {
			prec = 3;
			/* U+00B5 'µ' in UTF-8, written backwards */
			w--;
			memcpy(buf + w, "\xc2\xb5", 2);
		} else {
			prec = 6;
			buf[w] = 'm';
		}
		/* fmtFrac */
		{
			int print = 0, i;

			for (i = 0; i < prec; i++) {
				int digit = u % 10;

				print = print || digit != 0;
				if (print) {
					w--;
					buf[w] = digit + '0';
				}
				u /= 10;
			}
			if (print) {
				w--;
				buf[w] = '.';
			}
		}
		/* fmtInt */
		if (u == 0) {
			w--;
			buf[w] = '0';
		} else {
			while (u > 0) {
				w--;
				buf[w] = u % 10 + '0';
				u /= 10;
			}
		}
	} else {
		int print = 0, i;

		w--;
		buf[w] = 's';
		for (i = 0; i < 9; i++) {
			int digit = u % 10;

			print = print || digit != 0;
			if (print) {
				w--;
				buf[w] = digit + '0';
			}
			u /= 10;
		}
		if (print) {
			w--;
			buf[w] = '.';
		}
		/* u is now whole seconds */
		{
			uint64_t secs = u % 60, mins;

			if (secs == 0) {
				w--;
				buf[w] = '0';
			}
			while (secs > 0) {
				w--;
				buf[w] = secs % 10 + '0';
				secs /= 10;
			}
			u /= 60;
			if (u > 0) {
				w--;
				buf[w] = 'm';
				mins = u % 60;
				if (mins == 0) {
					w--;
					buf[w] = '0';
				}
				while (mins > 0) {
					w--;
					buf[w] = mins % 10 + '0';
					mins /= 10;
				}
				u /= 60;
				if (u > 0) {
					w--;
					buf[w] = 'h';
					while (u > 0) {
						w--;
						buf[w] = u % 10 + '0';
						u /= 10;
					}
				}
			}
		}
	}
	if (neg) {
		w--;
		buf[w] = '-';
	}
	strbuf__putn(b, buf + w, sizeof(buf) - w);
}

void slog__time(struct strbuf *b, int64_t unix_us, enum slog_format fmt)
{
	time_t secs = unix_us / 1000000;
	int64_t us = unix_us % 1000000;
	struct tm tm;
	char date[32];
	long off;

	if (us < 0) {
		us += 1000000;
		secs -= 1;
	}
	localtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	strbuf__puts(b, date);
	if (fmt == SLOG_TEXT) {
		strbuf__printf(b, ".%03d", (int)(us / 1000));
	} else if (us) {
		char frac[8];
		int n = snprintf(frac, sizeof(frac), "%06d", (int)us);

		while (n > 0 && frac[n - 1] == '0')
			frac[--n] = '\0';
		strbuf__printf(b, ".%s", frac);
	}
	off = tm.tm_gmtoff;
	if (off == 0) {
		strbuf__putc(b, 'Z');
	} else {
		char sign = off < 0 ? '-' : '+';

		if (off < 0)
			off = -off;
		strbuf__printf(b, "%c%02ld:%02ld", sign, off / 3600, (off / 60) % 60);
	}
}

/* One attribute, in either format. */
static void attr_str(struct strbuf *b, enum slog_format fmt, const char *key, const char *val)
{
	if (fmt == SLOG_TEXT) {
		strbuf__printf(b, " %s=", key);
		slog__text_value(b, val);
	} else {
		strbuf__printf(b, ",\"%s\":", key);
		slog__json_string(b, val);
	}
}

static void attr_int(struct strbuf *b, enum slog_format fmt, const char *key, int64_t v)
{
	if (fmt == SLOG_TEXT)
		strbuf__printf(b, " %s=%" PRId64, key, v);
	else
		strbuf__printf(b, ",\"%s\":%" PRId64, key, v);
}

static void attr_dur(struct strbuf *b, enum slog_format fmt, const char *key, int64_t ns)
{
	if (fmt == SLOG_TEXT) {
		strbuf__printf(b, " %s=", key);
		slog__duration(b, ns);
	} else {
		strbuf__printf(b, ",\"%s\":%" PRId64, key, ns);
	}
}

void slog__format_entry(struct strbuf *b, enum slog_format fmt, const struct st_entry *e,
			int64_t slow_us)
{
	const char *level = slog__level_name(slog__entry_level(e, slow_us));

	if (fmt == SLOG_TEXT) {
		strbuf__puts(b, "time=");
		slog__time(b, e->timestamp_us, fmt);
		strbuf__printf(b, " level=%s msg=SQL", level);
	} else {
		strbuf__puts(b, "{\"time\":\"");
		slog__time(b, e->timestamp_us, fmt);
		strbuf__printf(b, "\",\"level\":\"%s\",\"msg\":\"SQL\"", level);
	}
	attr_str(b, fmt, "component", "sql");
	attr_str(b, fmt, "op", e->op);
	attr_str(b, fmt, "query", e->query);
	attr_dur(b, fmt, "duration", e->duration_us * 1000);
	if (e->trace_id[0])
		attr_str(b, fmt, "trace_id", e->trace_id);
	if (e->error[0])
		attr_str(b, fmt, "error", e->error);
	if (e->pid >= 0)
		attr_int(b, fmt, "pid", e->pid);
	if (e->tid >= 0)
		attr_int(b, fmt, "tid", e->tid);
	if (e->process)
		attr_str(b, fmt, "process", e->process);
	if (e->rows >= 0)
		attr_int(b, fmt, "rows", e->rows);
	if (e->prepare_us >= 0)
		attr_dur(b, fmt, "prepare", e->prepare_us * 1000);
	if (e->query_len >= 0 && (size_t)e->query_len > strlen(e->query))
		attr_int(b, fmt, "query_len", e->query_len);
	if (e->db_file && e->db_file[0])
		attr_str(b, fmt, "db", e->db_file);
	if (e->parent_span_id && e->parent_span_id[0])
		attr_str(b, fmt, "parent_span_id", e->parent_span_id);
	strbuf__puts(b, fmt == SLOG_TEXT ? "\n" : "}\n");
}

void slog__line_begin(struct strbuf *b, enum slog_level lvl, const char *msg)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	strbuf__puts(b, "time=");
	slog__time(b, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, SLOG_TEXT);
	strbuf__printf(b, " level=%s msg=", slog__level_name(lvl));
	slog__text_value(b, msg);
}

void slog__line_str(struct strbuf *b, const char *key, const char *val)
{
	strbuf__printf(b, " %s=", key);
	slog__text_value(b, val ? val : "");
}

void slog__line_int(struct strbuf *b, const char *key, int64_t v)
{
	strbuf__printf(b, " %s=%" PRId64, key, v);
}

void slog__line_end(struct strbuf *b)
{
	strbuf__putc(b, '\n');
	if (!b->oom)
		fwrite(b->p, 1, b->len, stderr);
	strbuf__free(b);
}
