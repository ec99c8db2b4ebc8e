/* test_fingerprint.c — analysis/fingerprint.c: every normalisation rule of
 * `report`/`top` grouping, and SQL that must come out unaltered. */
#include "harness.h"

#include <stdlib.h>

#include "fingerprint.h"

static char fpbuf[8192];

static const char *fp(const char *sql)
{
	size_t n = strlen(sql), m = fingerprint__sql(sql, n, fpbuf);

	if (m > n || strlen(fpbuf) != m)
		return "(length contract broken)";
	return fpbuf;
}

static bool test_numbers(void)
{
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE a = 42"), "SELECT * FROM t WHERE a = ?");
	ASSERT_EQ_STR(fp("SELECT 1.5, .25, 3., 1e10, 2.5E-3, 0x1F, 1_000"),
		      "SELECT ?, ?, ?, ?, ?, ?, ?");
	/* a leading sign is part of the literal where it cannot subtract */
	ASSERT_EQ_STR(fp("SELECT -1, +2 WHERE a = -3.5 AND b IN (-4) LIMIT -1"),
		      "SELECT ?, ? WHERE a = ? AND b IN (?) LIMIT ?");
	ASSERT_EQ_STR(fp("UPDATE t SET v = v - 1, w = w-2, x = (-5)"),
		      "UPDATE t SET v = v - ?, w = w-?, x = (?)");
	ASSERT_EQ_STR(fp("SELECT a-1, 3 -1 FROM t"), "SELECT a-?, ? -? FROM t");
	return true;
}

static bool test_strings_and_blobs(void)
{
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE s = 'abc' AND u = 'it''s' AND b = x'00FF' AND c = X'ab'"),
		      "SELECT * FROM t WHERE s = ? AND u = ? AND b = ? AND c = ?");
	ASSERT_EQ_STR(fp("INSERT INTO t VALUES('')"), "INSERT INTO t VALUES(?)");
	return true;
}

static bool test_parameters(void)
{
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE a = ? AND b = ?12 AND c = :name AND d = @n2 AND e = $v"),
		      "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ?");
	ASSERT_EQ_STR(fp("SELECT $a::b(x) FROM t"), "SELECT ?(x) FROM t");
	return true;
}

static bool test_in_lists(void)
{
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE id IN (1, 2, 3)"), "SELECT * FROM t WHERE id IN (?)");
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE id IN (?,?,?,?) AND k NOT IN ('a',:b,-3)"),
		      "SELECT * FROM t WHERE id IN (?) AND k NOT IN (?)");
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE id in(7)"), "SELECT * FROM t WHERE id in(?)");
	/* a subquery or an expression is not a list of literals */
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE v = 1)"),
		      "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE v = ?)");
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE id IN (1, a, 2)"), "SELECT * FROM t WHERE id IN (?, a, ?)");
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE id IN ()"), "SELECT * FROM t WHERE id IN ()");
	/* other parenthesised lists keep their arity */
	ASSERT_EQ_STR(fp("SELECT substr(a, 1, 2), max(1, 2) FROM t"),
		      "SELECT substr(a, ?, ?), max(?, ?) FROM t");
	/* lists of different lengths are one group */
	ASSERT_EQ_STR(fp("SELECT 1 FROM t WHERE x IN (1)"), fp("SELECT 1 FROM t WHERE x IN (1,2,3,4,5,6)"));
	return true;
}

static bool test_values_rows(void)
{
	ASSERT_EQ_STR(fp("INSERT INTO t(a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')"),
		      "INSERT INTO t(a, b) VALUES (?, ?)");
	ASSERT_EQ_STR(fp("INSERT INTO t VALUES(1,2),(3,4) ,( 5,6)"), "INSERT INTO t VALUES(?,?)");
	/* rows of different shapes are kept */
	ASSERT_EQ_STR(fp("INSERT INTO t VALUES (1, 2), (3, lower('A')), (5, 6)"),
		      "INSERT INTO t VALUES (?, ?), (?, lower(?)), (?, ?)");
	ASSERT_EQ_STR(fp("INSERT INTO t VALUES (1), (2) ON CONFLICT(a) DO UPDATE SET b = 3"),
		      "INSERT INTO t VALUES (?) ON CONFLICT(a) DO UPDATE SET b = ?");
	ASSERT_EQ_STR(fp("WITH c(x) AS (VALUES (1), (2)) SELECT x FROM c"),
		      "WITH c(x) AS (VALUES (?)) SELECT x FROM c");
	return true;
}

static bool test_comments_and_whitespace(void)
{
	const char *a = "SELECT * FROM t WHERE id = 1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-"
			"00f067aa0ba902b7-01'*/";
	const char *b = "/* traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' */"
			"SELECT * FROM t\n\tWHERE   id = 2";

	ASSERT_EQ_STR(fp(a), "SELECT * FROM t WHERE id = ?");
	ASSERT_EQ_STR(fp(b), "SELECT * FROM t WHERE id = ?");
	ASSERT_EQ_STR(fp("SELECT a -- the a column\nFROM t; "), "SELECT a FROM t");
	ASSERT_EQ_STR(fp("SELECT a/*x*/FROM t"), "SELECT a FROM t");
	ASSERT_EQ_STR(fp("SELECT f( a , b ) FROM t"), "SELECT f(a, b) FROM t");
	ASSERT_EQ_STR(fp("  SELECT 1 /* sqltrace: text cut */"), "SELECT ?");
	ASSERT_EQ_STR(fp(""), "");
	ASSERT_EQ_STR(fp("  -- only a comment"), "");
	return true;
}

static bool test_unaltered(void)
{
	static const char *const same[] = {
		/* identifiers with digits, quoted identifiers, operators */
		"SELECT t1.col2, \"Column 3\", `x4`, [my col5] FROM t1 JOIN t2 ON t1.a=t2.a",
		"SELECT \"it's\" FROM \"t\"\"q\" WHERE a || b <> c AND d >= e",
		"CREATE TABLE IF NOT EXISTS Orders(id INTEGER PRIMARY KEY, total REAL)",
		"PRAGMA journal_mode",
		"select Lower(Name) from Users order by 1e",
	};
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]) - 1; i++)
		ASSERT_EQ_STR(fp(same[i]), same[i]);
	/* `--`, quotes and keywords inside strings do not leak out */
	ASSERT_EQ_STR(fp("SELECT * FROM t WHERE s = '-- not a comment' AND u = 'a /* b' AND v = 'SELECT IN (1,2)'"),
		      "SELECT * FROM t WHERE s = ? AND u = ? AND v = ?");
	ASSERT_EQ_STR(fp("SELECT 'a\"b', \"c'd\" FROM t"), "SELECT ?, \"c'd\" FROM t");
	return true;
}

static bool test_keyword_case_and_fold(void)
{
	char a[128], b[128];

	fingerprint__sql("SELECT * FROM T WHERE \"Q\" = 1", 29, a);
	fingerprint__sql("select * from t where \"Q\" = 2", 29, b);
	ASSERT_EQ_STR(a, "SELECT * FROM T WHERE \"Q\" = ?");  /* case kept */
	fingerprint__fold(a);
	fingerprint__fold(b);
	ASSERT_EQ_STR(a, b);
	ASSERT_EQ_STR(a, "select * from t where \"Q\" = ?");  /* quoted kept */
	return true;
}

static bool test_hostile_bytes(void)
{
	static const char z[] = "SELECT 'x\0y' FROM t\0 WHERE a = \"b";
	char out[sizeof(z) + 1];
	size_t n;

	n = fingerprint__sql(z, sizeof(z) - 1, out);
	ASSERT_TRUE(n <= sizeof(z) - 1);
	ASSERT_EQ_STR(out, "SELECT ? FROM t WHERE a = \"b");
	n = fingerprint__sql("'", 1, out);
	ASSERT_EQ_STR(out, "?");
	n = fingerprint__sql("x'", 2, out);
	ASSERT_EQ_STR(out, "?");
	n = fingerprint__sql("-", 1, out);
	ASSERT_EQ_STR(out, "-");
	n = fingerprint__sql("/*", 2, out);
	ASSERT_EQ_INT(n, 0);
	return true;
}

int main(void)
{
	RUN(test_numbers);
	RUN(test_strings_and_blobs);
	RUN(test_parameters);
	RUN(test_in_lists);
	RUN(test_values_rows);
	RUN(test_comments_and_whitespace);
	RUN(test_unaltered);
	RUN(test_keyword_case_and_fold);
	RUN(test_hostile_bytes);
	return harness_done();
}
