/* test_sqltext.c — unit tests of user/consume/sqltext.c: which Op a statement is
 * (the first keyword after blanks and comments, or rows > 0), UTF-16LE to
 * UTF-8 conversion (surrogates, U+0000, odd bytes, small buffers), cutting
 * on a UTF-8 character boundary, and trimming blanks. */
#include "harness.h"
#include "sqltext.h"

#include <stdlib.h>

/* sqltext__op on a NUL-terminated string, rows = 0. */
static const char *op(const char *sql)
{
	return sqltext__op(sql, strlen(sql), 0);
}

static bool test_op_query_keywords(void)
{
	ASSERT_EQ_STR(op("SELECT 1"), "Query");
	ASSERT_EQ_STR(op("select * from t"), "Query");
	ASSERT_EQ_STR(op("SeLeCt 1"), "Query");
	ASSERT_EQ_STR(op("WITH x AS (SELECT 1) SELECT * FROM x"), "Query");
	ASSERT_EQ_STR(op("with x as (select 1) select * from x"), "Query");
	ASSERT_EQ_STR(op("PRAGMA user_version"), "Query");
	ASSERT_EQ_STR(op("pragma table_info(t)"), "Query");
	ASSERT_EQ_STR(op("EXPLAIN QUERY PLAN SELECT 1"), "Query");
	ASSERT_EQ_STR(op("explain select 1"), "Query");
	ASSERT_EQ_STR(op("VALUES (1),(2)"), "Query");
	ASSERT_EQ_STR(op("values(1)"), "Query");
	/* The keyword alone, and followed by punctuation. */
	ASSERT_EQ_STR(op("SELECT"), "Query");
	ASSERT_EQ_STR(op("SELECT*FROM t"), "Query");
	ASSERT_EQ_STR(op("select(1)"), "Query");
	return true;
}

static bool test_op_after_blanks(void)
{
	ASSERT_EQ_STR(op("   SELECT 1"), "Query");
	ASSERT_EQ_STR(op("\n\t\r\f\v select 1"), "Query");
	ASSERT_EQ_STR(op("  \n INSERT INTO t VALUES (1)"), "Exec");
	return true;
}

static bool test_op_after_comments(void)
{
	ASSERT_EQ_STR(op("-- a comment\nSELECT 1"), "Query");
	ASSERT_EQ_STR(op("-- one\n  -- two\n\tselect 1"), "Query");
	ASSERT_EQ_STR(op("/* c */SELECT 1"), "Query");
	ASSERT_EQ_STR(op("/* multi\nline */ \n with x as (select 1) select 1"), "Query");
	ASSERT_EQ_STR(op("/**/select 1"), "Query");
	ASSERT_EQ_STR(op("/* a */ -- b\n /* c */ PRAGMA x"), "Query");
	ASSERT_EQ_STR(op("/* SELECT */ INSERT INTO t VALUES (1)"), "Exec");
	ASSERT_EQ_STR(op("-- SELECT\nDELETE FROM t"), "Exec");
	/* A line comment without a newline swallows everything. */
	ASSERT_EQ_STR(op("-- SELECT 1"), "Exec");
	/* Unterminated block comments: everything is comment, no overread. */
	ASSERT_EQ_STR(op("/* SELECT 1"), "Exec");
	ASSERT_EQ_STR(op("/* SELECT 1 *"), "Exec");
	ASSERT_EQ_STR(op("/*"), "Exec");
	ASSERT_EQ_STR(op("/"), "Exec");
	ASSERT_EQ_STR(op("-"), "Exec");
	/* Only blanks and comments. */
	ASSERT_EQ_STR(op("  /* x */ -- y"), "Exec");
	{
		/* len stops the scan: a heap copy without a NUL, exact size,
		 * so ASan catches any read past len. */
		static const char text[] = "/* unterminated comment SELECT";
		size_t n = sizeof(text) - 1;
		char *p = malloc(n);

		ASSERT_TRUE(p != NULL);
		memcpy(p, text, n);
		ASSERT_EQ_STR(sqltext__op(p, n, 0), "Exec");
		ASSERT_EQ_STR(sqltext__op(p + 24, n - 24, 0), "Query");  /* "SELECT" */
		free(p);
	}
	return true;
}

static bool test_op_identifier_follows(void)
{
	ASSERT_EQ_STR(op("SELECTED"), "Exec");
	ASSERT_EQ_STR(op("selected_rows"), "Exec");
	ASSERT_EQ_STR(op("SELECT_x"), "Exec");
	ASSERT_EQ_STR(op("SELECT1"), "Exec");
	ASSERT_EQ_STR(op("WITHOUT"), "Exec");
	ASSERT_EQ_STR(op("VALUESX"), "Exec");
	ASSERT_EQ_STR(op("PRAGMAS"), "Exec");
	ASSERT_EQ_STR(op("SELECT\xc3\xa9"), "Exec");  /* "SELECTé": non-ASCII is identifier */
	/* len cuts the word: "SELECTED" seen as its first 6 bytes is SELECT. */
	ASSERT_EQ_STR(sqltext__op("SELECTED", 6, 0), "Query");
	/* and a word cut short is not the keyword. */
	ASSERT_EQ_STR(sqltext__op("SELECT 1", 5, 0), "Exec");
	return true;
}

static bool test_op_exec_statements(void)
{
	ASSERT_EQ_STR(op("INSERT INTO t VALUES (1)"), "Exec");
	ASSERT_EQ_STR(op("insert into t select * from u"), "Exec");
	ASSERT_EQ_STR(op("UPDATE t SET a = 1"), "Exec");
	ASSERT_EQ_STR(op("CREATE TABLE t (a)"), "Exec");
	ASSERT_EQ_STR(op("DELETE FROM t"), "Exec");
	ASSERT_EQ_STR(op("BEGIN"), "Exec");
	ASSERT_EQ_STR(op("(SELECT 1)"), "Exec");
	return true;
}

static bool test_op_rows_make_query(void)
{
	ASSERT_EQ_STR(sqltext__op("INSERT INTO t VALUES (1) RETURNING id", 37, 1), "Query");
	ASSERT_EQ_STR(sqltext__op("UPDATE t SET a = 1", 18, 42), "Query");
	ASSERT_EQ_STR(sqltext__op("", 0, 1), "Query");
	ASSERT_EQ_STR(sqltext__op(NULL, 0, 3), "Query");
	/* rows <= 0 does not. */
	ASSERT_EQ_STR(sqltext__op("UPDATE t SET a = 1", 18, 0), "Exec");
	ASSERT_EQ_STR(sqltext__op("UPDATE t SET a = 1", 18, -1), "Exec");
	return true;
}

static bool test_op_empty_and_null(void)
{
	ASSERT_EQ_STR(sqltext__op("", 0, 0), "Exec");
	ASSERT_EQ_STR(sqltext__op("SELECT 1", 0, 0), "Exec");  /* len 0 reads nothing */
	ASSERT_EQ_STR(sqltext__op(NULL, 0, 0), "Exec");
	ASSERT_EQ_STR(sqltext__op(NULL, 10, 0), "Exec");
	ASSERT_EQ_STR(op("   "), "Exec");
	return true;
}

/* ---- UTF-16LE → UTF-8 ---------------------------------------------------- */

/* Converts n UTF-16 code units into out (cap bytes); returns the length. */
static size_t u16(const uint16_t *units, size_t n, char *out, size_t cap)
{
	uint8_t bytes[64];
	size_t i;

	for (i = 0; i < n; i++) {
		bytes[2 * i] = units[i] & 0xFF;
		bytes[2 * i + 1] = units[i] >> 8;
	}
	return sqltext__utf16le_to_utf8(bytes, 2 * n, out, cap);
}

static bool test_utf16_ascii(void)
{
	static const uint8_t in[] = { 'S', 0, 'E', 0, 'L', 0, 'E', 0, 'C', 0, 'T', 0, ' ', 0, '1', 0 };
	char out[32];

	memset(out, 'X', sizeof(out));
	ASSERT_EQ_INT(sqltext__utf16le_to_utf8(in, sizeof(in), out, sizeof(out)), 8);
	ASSERT_EQ_STR(out, "SELECT 1");
	/* Empty input: empty string, NUL-terminated. */
	memset(out, 'X', sizeof(out));
	ASSERT_EQ_INT(sqltext__utf16le_to_utf8(in, 0, out, sizeof(out)), 0);
	ASSERT_EQ_STR(out, "");
	return true;
}

static bool test_utf16_bmp(void)
{
	static const uint16_t e_acute[] = { 'c', 'a', 'f', 0x00E9 };
	static const uint16_t snowman[] = { 0x2603 };
	static const uint16_t nihon[] = { 0x65E5, 0x672C };
	static const uint16_t mixed[] = { 'x', 0x00E9, 0x2603, 'y' };
	char out[32];

	ASSERT_EQ_INT(u16(e_acute, 4, out, sizeof(out)), 5);
	ASSERT_EQ_STR(out, "caf\xc3\xa9");
	ASSERT_EQ_INT(u16(snowman, 1, out, sizeof(out)), 3);
	ASSERT_EQ_STR(out, "\xe2\x98\x83");
	ASSERT_EQ_INT(u16(nihon, 2, out, sizeof(out)), 6);
	ASSERT_EQ_STR(out, "\xe6\x97\xa5\xe6\x9c\xac");
	ASSERT_EQ_INT(u16(mixed, 4, out, sizeof(out)), 7);
	ASSERT_EQ_STR(out, "x\xc3\xa9\xe2\x98\x83y");
	return true;
}

static bool test_utf16_surrogate_pair(void)
{
	static const uint16_t grin[] = { 0xD83D, 0xDE00 };               /* U+1F600 */
	static const uint16_t around[] = { 'a', 0xD83D, 0xDE00, 'b' };
	static const uint16_t max[] = { 0xDBFF, 0xDFFF };                /* U+10FFFF */
	char out[32];

	ASSERT_EQ_INT(u16(grin, 2, out, sizeof(out)), 4);
	ASSERT_EQ_STR(out, "\xf0\x9f\x98\x80");
	ASSERT_EQ_INT(u16(around, 4, out, sizeof(out)), 6);
	ASSERT_EQ_STR(out, "a\xf0\x9f\x98\x80" "b");
	ASSERT_EQ_INT(u16(max, 2, out, sizeof(out)), 4);
	ASSERT_EQ_STR(out, "\xf4\x8f\xbf\xbf");
	return true;
}

static bool test_utf16_lone_surrogates(void)
{
	static const uint16_t hi_then_a[] = { 0xD83D, 'a' };
	static const uint16_t hi_at_end[] = { 'a', 0xD83D };
	static const uint16_t lo_alone[] = { 'a', 0xDE00, 'b' };
	static const uint16_t hi_hi_lo[] = { 0xD83D, 0xD83D, 0xDE00 };
	static const uint16_t lo_hi[] = { 0xDE00, 0xD83D };
	char out[32];

	/* U+FFFD is EF BF BD; the unit after a lone high surrogate is kept. */
	ASSERT_EQ_INT(u16(hi_then_a, 2, out, sizeof(out)), 4);
	ASSERT_EQ_STR(out, "\xef\xbf\xbd" "a");
	ASSERT_EQ_INT(u16(hi_at_end, 2, out, sizeof(out)), 4);
	ASSERT_EQ_STR(out, "a\xef\xbf\xbd");
	ASSERT_EQ_INT(u16(lo_alone, 3, out, sizeof(out)), 5);
	ASSERT_EQ_STR(out, "a\xef\xbf\xbd" "b");
	ASSERT_EQ_INT(u16(hi_hi_lo, 3, out, sizeof(out)), 7);
	ASSERT_EQ_STR(out, "\xef\xbf\xbd\xf0\x9f\x98\x80");
	ASSERT_EQ_INT(u16(lo_hi, 2, out, sizeof(out)), 6);
	ASSERT_EQ_STR(out, "\xef\xbf\xbd\xef\xbf\xbd");
	{
		/* A high surrogate followed by an odd single byte: no pair. */
		static const uint8_t in[] = { 0x3D, 0xD8, 0x00 };

		ASSERT_EQ_INT(sqltext__utf16le_to_utf8(in, sizeof(in), out, sizeof(out)), 3);
		ASSERT_EQ_STR(out, "\xef\xbf\xbd");
	}
	return true;
}

static bool test_utf16_stops_at_nul(void)
{
	static const uint16_t units[] = { 'a', 'b', 0, 'c', 'd' };
	static const uint16_t hi_nul[] = { 'a', 0xD83D, 0, 'z' };
	char out[32];

	ASSERT_EQ_INT(u16(units, 5, out, sizeof(out)), 2);
	ASSERT_EQ_STR(out, "ab");
	ASSERT_EQ_INT(u16(units + 2, 3, out, sizeof(out)), 0);
	ASSERT_EQ_STR(out, "");
	ASSERT_EQ_INT(u16(hi_nul, 4, out, sizeof(out)), 4);
	ASSERT_EQ_STR(out, "a\xef\xbf\xbd");
	return true;
}

static bool test_utf16_odd_byte_ignored(void)
{
	/* Exact-size heap input so ASan sees any read of the byte after. */
	static const uint8_t src[] = { 'a', 0, 'b', 0, 'c' };
	uint8_t *in = malloc(sizeof(src));
	char out[16];

	ASSERT_TRUE(in != NULL);
	memcpy(in, src, sizeof(src));
	ASSERT_EQ_INT(sqltext__utf16le_to_utf8(in, sizeof(src), out, sizeof(out)), 2);
	ASSERT_EQ_STR(out, "ab");
	ASSERT_EQ_INT(sqltext__utf16le_to_utf8(in, 1, out, sizeof(out)), 0);
	ASSERT_EQ_STR(out, "");
	free(in);
	return true;
}

static bool test_utf16_small_outcap(void)
{
	static const uint16_t units[] = { 'a', 0x00E9, 0x2603, 0xD83D, 0xDE00, 'z' };
	/* "a" "é" "☃" "😀" "z" = 1 + 2 + 3 + 4 + 1 bytes; the length that fits in
	 * cap - 1 bytes without splitting a character: */
	static const size_t fits[] = { 0, 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11, 11 };
	size_t cap;

	for (cap = 0; cap < sizeof(fits) / sizeof(fits[0]); cap++) {
		char *out = malloc(cap ? cap : 1);  /* exact size: ASan checks the bound */
		char full[32];
		size_t n;

		ASSERT_TRUE(out != NULL);
		out[0] = 'X';
		n = u16(units, 6, out, cap);
		if (cap == 0) {
			ASSERT_EQ_INT(n, 0);
			ASSERT_TRUE(out[0] == 'X');  /* nothing written at all */
			free(out);
			continue;
		}
		ASSERT_EQ_INT(n, fits[cap]);
		ASSERT_EQ_INT(out[n], '\0');
		ASSERT_EQ_INT(strlen(out), n);
		u16(units, 6, full, sizeof(full));
		ASSERT_TRUE(memcmp(out, full, n) == 0);
		free(out);
	}
	return true;
}

/* ---- UTF-8 boundary -------------------------------------------------------- */

static bool test_boundary_complete_kept(void)
{
	ASSERT_EQ_INT(sqltext__utf8_boundary("", 0), 0);
	ASSERT_EQ_INT(sqltext__utf8_boundary("abc", 3), 3);
	ASSERT_EQ_INT(sqltext__utf8_boundary("a\xc3\xa9", 3), 3);             /* é */
	ASSERT_EQ_INT(sqltext__utf8_boundary("a\xe2\x98\x83", 4), 4);         /* ☃ */
	ASSERT_EQ_INT(sqltext__utf8_boundary("a\xf0\x9f\x98\x80", 5), 5);     /* 😀 */
	ASSERT_EQ_INT(sqltext__utf8_boundary("\xc3\xa9", 2), 2);
	ASSERT_EQ_INT(sqltext__utf8_boundary("\xf0\x9f\x98\x80", 4), 4);
	ASSERT_EQ_INT(sqltext__utf8_boundary("\xe6\x97\xa5\xe6\x9c\xac", 6), 6);
	return true;
}

static bool test_boundary_cut_backs_off(void)
{
	/* 2-byte sequence cut after its lead byte. */
	ASSERT_EQ_INT(sqltext__utf8_boundary("a\xc3\xa9", 2), 1);
	ASSERT_EQ_INT(sqltext__utf8_boundary("\xc3\xa9", 1), 0);
	/* 3-byte sequence cut after 1 and 2 bytes. */
	ASSERT_EQ_INT(sqltext__utf8_boundary("a\xe2\x98\x83", 2), 1);
	ASSERT_EQ_INT(sqltext__utf8_boundary("a\xe2\x98\x83", 3), 1);
	/* 4-byte sequence cut after 1, 2 and 3 bytes. */
	ASSERT_EQ_INT(sqltext__utf8_boundary("ab\xf0\x9f\x98\x80", 3), 2);
	ASSERT_EQ_INT(sqltext__utf8_boundary("ab\xf0\x9f\x98\x80", 4), 2);
	ASSERT_EQ_INT(sqltext__utf8_boundary("ab\xf0\x9f\x98\x80", 5), 2);
	ASSERT_EQ_INT(sqltext__utf8_boundary("\xf0\x9f\x98\x80", 3), 0);
	/* After a complete multi-byte character. */
	ASSERT_EQ_INT(sqltext__utf8_boundary("\xe6\x97\xa5\xe6\x9c\xac", 5), 3);
	ASSERT_EQ_INT(sqltext__utf8_boundary("\xe6\x97\xa5\xe6\x9c\xac", 4), 3);
	ASSERT_EQ_INT(sqltext__utf8_boundary("\xe6\x97\xa5\xe6\x9c\xac", 3), 3);
	return true;
}

/* ---- trim ------------------------------------------------------------------ */

static bool test_trim(void)
{
	char s[64];
	size_t lead = 99, n;

	strcpy(s, "  \t\nSELECT 1 \r\n\f\v");
	n = sqltext__trim(s, strlen(s), 1, &lead);
	ASSERT_EQ_INT(n, 8);
	ASSERT_EQ_INT(lead, 4);
	ASSERT_EQ_STR(s, "SELECT 1");

	strcpy(s, "  SELECT 1  ");
	n = sqltext__trim(s, strlen(s), 0, &lead);  /* front only */
	ASSERT_EQ_INT(n, 10);
	ASSERT_EQ_INT(lead, 2);
	ASSERT_EQ_STR(s, "SELECT 1  ");

	strcpy(s, "x");
	n = sqltext__trim(s, 1, 1, &lead);
	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(lead, 0);
	ASSERT_EQ_STR(s, "x");

	strcpy(s, " \t \n ");
	n = sqltext__trim(s, strlen(s), 1, &lead);
	ASSERT_EQ_INT(n, 0);
	ASSERT_EQ_INT(lead, 5);
	ASSERT_EQ_STR(s, "");

	s[0] = '\0';
	n = sqltext__trim(s, 0, 1, &lead);
	ASSERT_EQ_INT(n, 0);
	ASSERT_EQ_INT(lead, 0);

	/* Inner blanks and non-ASCII are kept; only ASCII blanks trimmed. */
	strcpy(s, " a  b\xc2\xa0 ");
	n = sqltext__trim(s, strlen(s), 1, &lead);
	ASSERT_EQ_INT(n, 6);
	ASSERT_EQ_STR(s, "a  b\xc2\xa0");

	/* len bounds the work: blanks beyond len are not seen. */
	strcpy(s, "ab   cd");
	n = sqltext__trim(s, 4, 1, &lead);
	ASSERT_EQ_INT(n, 2);
	ASSERT_EQ_STR(s, "ab");
	return true;
}

int main(void)
{
	/* harness.h prints harness_skip_reason with %s; in a program that never
	 * calls SKIP, gcc -O2 proves it NULL and -Werror=format-overflow fails
	 * the build. */
	harness_skip_reason = "";
	RUN(test_op_query_keywords);
	RUN(test_op_after_blanks);
	RUN(test_op_after_comments);
	RUN(test_op_identifier_follows);
	RUN(test_op_exec_statements);
	RUN(test_op_rows_make_query);
	RUN(test_op_empty_and_null);
	RUN(test_utf16_ascii);
	RUN(test_utf16_bmp);
	RUN(test_utf16_surrogate_pair);
	RUN(test_utf16_lone_surrogates);
	RUN(test_utf16_stops_at_nul);
	RUN(test_utf16_odd_byte_ignored);
	RUN(test_utf16_small_outcap);
	RUN(test_boundary_complete_kept);
	RUN(test_boundary_cut_backs_off);
	RUN(test_trim);
	return harness_done();
}
