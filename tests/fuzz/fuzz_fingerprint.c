/* fuzz_fingerprint.c — libFuzzer target for analysis/fingerprint.c, which
 * normalises the SQL text of any traced program (untrusted). Build and run:
 * `make fuzz-run-fingerprint` (analysis/module.mk); tests/unit/
 * test_fuzz_corpus.c replays tests/fuzz/corpus/fingerprint/ on every
 * `make unit`.
 *
 * Besides ASan and UBSan (nothing read past the input, nothing written past
 * n + 1 bytes of output), it checks:
 *   - the fingerprint is no longer than the input and NUL-terminated;
 *   - it has no leading or trailing blank and, outside quoted identifiers,
 *     no two blanks in a row and no newline or tab (whitespace collapsed);
 *   - fingerprinting is idempotent when the input has no quoted identifier
 *     (a fingerprint is its own fingerprint);
 *   - folding keeps the length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"

/* Runs one input through the fingerprinter and the checks above. Returns
 * NULL when all hold, else what failed. */
static const char *fuzz_fingerprint_check(const uint8_t *data, size_t size)
{
	/* exactly n + 1 bytes, so ASan sees any write past the contract */
	char *in = malloc(size ? size : 1), *out = malloc(size + 1), *again = NULL;
	const char *bad = NULL;
	size_t n, m;

	if (!in || !out) {
		free(in);
		free(out);
		return NULL;
	}
	if (size)
		memcpy(in, data, size);
	n = fingerprint__sql(in, size, out);
	if (n > size)
		bad = "fingerprint longer than the input";
	else if (out[n] != '\0')
		bad = "fingerprint not terminated";
	else if (n && (out[0] == ' ' || out[n - 1] == ' '))
		bad = "leading or trailing blank";
	else if (strstr(out, "  ") && !memchr(in, '"', size) && !memchr(in, '`', size) &&
		 !memchr(in, '[', size))
		bad = "two blanks in a row";
	else if (strpbrk(out, "\n\t\r") && !memchr(in, '"', size) && !memchr(in, '`', size) &&
		 !memchr(in, '[', size))
		bad = "whitespace other than one blank";
	if (!bad && !memchr(in, '"', size) && !memchr(in, '`', size) && !memchr(in, '[', size) &&
	    strlen(out) == n) {
		again = malloc(n + 1);
		if (again) {
			m = fingerprint__sql(out, n, again);
			if (m != n || memcmp(out, again, n) != 0)
				bad = "fingerprint of a fingerprint differs";
		}
	}
	if (!bad && strlen(out) == n) {
		fingerprint__fold(out);
		if (strlen(out) != n)
			bad = "folding changed the length";
	}
	free(again);
	free(in);
	free(out);
	return bad;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_fingerprint_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_fingerprint: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
