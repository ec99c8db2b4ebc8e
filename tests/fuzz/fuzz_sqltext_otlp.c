/* fuzz_sqltext_otlp.c — libFuzzer target for the readers of a statement's
 * SQL text, which the traced program chooses: user/consume/traceparent.c
 * (traceparent__extract_flags, the sqlcommenter traceparent comment) and
 * otlp__sql_summary (store/otlp_encode.c: the span name's operation and
 * table). The input is the SQL text. Build and run: `make fuzz-run-otlp`;
 * tests/unit/test_fuzz_corpus.c replays tests/fuzz/corpus/sqltext/ on
 * every `make unit`.
 *
 * Besides ASan and UBSan, it checks:
 *   - a traceparent found has 32 + 16 lowercase hex digits, the trace id
 *     not all zeros, and the same ids with and without the flags;
 *   - no byte after the given length is read (the text is copied into a
 *     buffer of exactly its size, not NUL-terminated: ASan sees a read
 *     past it);
 *   - the operation is one word, upper case (no lower case letter, space,
 *     quote or punctuation), both
 *     strings are NUL-terminated within their buffers, and a table is only
 *     named when an operation is.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_encode.h"
#include "traceparent.h"

static const char *fuzz_sqltext_check(const uint8_t *data, size_t size)
{
	char trace[33], span[17], trace2[33], span2[17], op[16], table[24];
	unsigned flags = 0;
	char *copy = malloc(size ? size : 1), *z;
	const char *bad = NULL;
	int rc, rc2;

	if (!copy)
		return NULL;
	memcpy(copy, data, size);
	rc = traceparent__extract_flags(copy, size, trace, span, &flags);
	rc2 = traceparent__extract(copy, size, trace2, span2);
	free(copy);
	if (rc != rc2)
		return "extract and extract_flags disagree";
	if (rc == 0) {
		if (strlen(trace) != 32 || strspn(trace, "0123456789abcdef") != 32 ||
		    strspn(trace, "0") == 32 || strlen(span) != 16 ||
		    strspn(span, "0123456789abcdef") != 16)
			return "malformed ids accepted";
		if (strcmp(trace, trace2) || strcmp(span, span2))
			return "ids differ with the flags";
		if (flags > 255)
			return "flags out of range";
	} else if (rc != -ENOENT && rc != -EINVAL) {
		return "unexpected error code";
	} else if (trace[0] || span[0]) {
		return "ids left on error";
	}

	z = malloc(size + 1);
	if (!z)
		return NULL;
	memcpy(z, data, size);
	z[size] = '\0';
	memset(op, 'x', sizeof(op));
	memset(table, 'x', sizeof(table));
	otlp__sql_summary(z, op, sizeof(op), table, sizeof(table));
	if (!memchr(op, '\0', sizeof(op)) || !memchr(table, '\0', sizeof(table)))
		bad = "summary not terminated";
	else if (strpbrk(op, "abcdefghijklmnopqrstuvwxyz \t\r\n'\"`[]();,.*/-="))
		bad = "operation is not a keyword";
	else if (table[0] && !op[0])
		bad = "a table without an operation";
	free(z);
	return bad;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_sqltext_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_sqltext_otlp: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
