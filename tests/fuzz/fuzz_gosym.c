/* fuzz_gosym.c — libFuzzer target for user/find/gosym.c (a Go executable's
 * function table, module data and build info, read from a file another
 * user owns) and gosql__code_sites() in user/find/gosql.c (where to probe a
 * Go function's code). Input: an ELF file; its bytes are also given as one
 * function's code. Build and run: `make fuzz-run-files`;
 * tests/unit/test_fuzz_corpus.c replays tests/fuzz/corpus/gosym/ (seeds
 * written by tests/fuzz/gosym_seeds.py) on every `make unit`.
 *
 * Besides ASan and UBSan, it checks:
 *   - an accepted file: every function's range has entry <= end, names are
 *     NUL-terminated and found again by gosym__find; the version is
 *     printable; a layout is given only with a version; itab and type names
 *     are printable and NUL-terminated;
 *   - code sites: RETs and the entry lie inside the code, the entry moved
 *     only to a jbe after the stack check (at most 13 bytes in);
 *   - DWARF (user/find/godwarf.c): the input's first byte n, then n bytes
 *     of .debug_abbrev, then .debug_info: offsets found are >= 0 and the
 *     count returned matches them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "godwarf.h"
#include "gosql_find.h"
#include "gosym.h"

static int fuzz_printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

static const char *fuzz_gosym_check(const uint8_t *data, size_t size)
{
	struct gosym *g = NULL;
	char err[256], why[256];
	uint64_t entry, rets[8];
	size_t i, n = 0;
	int r;

	if (gosym__open_buf(data, size, &g, err, sizeof(err)) == 0) {
		const char *bad = NULL;

		if (!fuzz_printable(gosym__version(g)))
			bad = "version not printable";
		if (!bad && gosym__layout(g, why, sizeof(why)) && !gosym__version(g)[0])
			bad = "a layout without a version";
		for (i = 0; !bad && i < gosym__nfuncs(g) && i < 64; i++) {
			const char *name;
			uint64_t a, b, a2, b2;

			if (gosym__func(g, i, &name, &a, &b) != 0)
				continue;
			if (a > b)
				bad = "function ends before it starts";
			else if (gosym__find(g, name, &a2, &b2) != 0)
				bad = "a listed function not found by name";
		}
		if (!bad && gosym__nitabs(g, &n) == 0)
			for (i = 0; !bad && i < n && i < 64; i++) {
				char in[64], ty[64];
				uint64_t it, sz;

				if (gosym__itab(g, i, &it, in, sizeof(in), ty, sizeof(ty), &sz) == 0 &&
				    (!memchr(in, 0, sizeof(in)) || !memchr(ty, 0, sizeof(ty)) || !fuzz_printable(in) ||
				     !fuzz_printable(ty)))
					bad = "itab names not printable";
			}
		gosym__free(g);
		if (bad)
			return bad;
	}
	if (size > 0 && (size_t)data[0] + 1 <= size) {
		struct godwarf_query q[] = { { "runtime.g", "goid", 0 }, { "runtime.g", "stack", 0 },
					     { "database/sql.Stmt", "query", 0 } };
		size_t na = data[0], k, got = 0;

		r = godwarf__members(data + 1 + na, size - 1 - na, data + 1, na, q, 3);
		for (k = 0; k < 3; k++)
			got += q[k].off >= 0;
		if ((r >= 0 && (size_t)r != got) || (r < 0 && got))
			return "DWARF: count and offsets disagree";
	}
	r = gosql__code_sites(data, size < 4096 ? size : 4096, 0x1000, &entry, rets, 8);
	if (r > 8 || (r < 0 && r != -EINVAL && r != -E2BIG))
		return "code sites: bad result";
	for (i = 0; r > 0 && i < (size_t)r; i++)
		if (rets[i] < 0x1000 || rets[i] >= 0x1000 + size)
			return "a RET outside the code";
	if (r > 0 && (entry < 0x1000 || entry > 0x1000 + 13 || (entry != 0x1000 && data[entry - 0x1000] != 0x76 &&
							   data[entry - 0x1000] != 0x0f)))
		return "entry moved elsewhere than a jbe";
	return NULL;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_gosym_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_gosym: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
