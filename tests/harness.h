/* harness.h — the in-tree unit test harness: bool-returning asserts, one
 * PASS/FAIL/SKIP line per test, a closing "N passed, N failed, N skipped".
 *
 * Usage:
 *   static bool test_x(void) { ASSERT_EQ_INT(1 + 1, 2); return true; }
 *   int main(void) { RUN(test_x); return harness_done(); }
 * A test returns true on success; ASSERT_* print the failing expression and
 * return false from the test. SKIP("reason") marks the test skipped.
 * tests/run.sh adds up the closing lines of every test program.
 */
#ifndef SQLTRACE_TEST_HARNESS_H
#define SQLTRACE_TEST_HARNESS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>

static int harness_passed, harness_failed, harness_skipped;
static int harness_skip_flag;
static const char *harness_skip_reason = "";

#define ASSERT_TRUE(c) do { if (!(c)) { \
	printf("    %s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c); \
	return false; } } while (0)
#define ASSERT_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { printf("    %s:%d: %s == %lld, expected %s == %lld\n", \
		__FILE__, __LINE__, #a, _a, #b, _b); return false; } } while (0)
#define ASSERT_EQ_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (!_a || !_b || strcmp(_a, _b) != 0) { \
		printf("    %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
		       #a, _a ? _a : "(null)", _b ? _b : "(null)"); return false; } } while (0)
#define SKIP(reason) do { harness_skip_flag = 1; harness_skip_reason = (reason); \
	return true; } while (0)

#define RUN(fn) do { harness_skip_flag = 0; fflush(stdout); bool _ok = fn(); \
	if (harness_skip_flag) { harness_skipped++; \
		printf("SKIP %s: %s\n", #fn, harness_skip_reason); } \
	else if (_ok) { harness_passed++; printf("PASS %s\n", #fn); } \
	else { harness_failed++; printf("FAIL %s\n", #fn); } \
	fflush(stdout); } while (0)

static inline int harness_done(void)
{
	printf("%d passed, %d failed, %d skipped\n", harness_passed, harness_failed,
	       harness_skipped);
	return harness_failed ? 1 : 0;
}

#endif
