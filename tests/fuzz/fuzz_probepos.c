/* fuzz_probepos.c — libFuzzer target for user/find/probepos.c, which decodes
 * the first bytes of functions in files other users own to place probes.
 * Input: one byte of options (bits 0-5: the arguments that must stay
 * readable), then the function's code. Build and run: `make
 * fuzz-run-files`; tests/unit/test_fuzz_corpus.c replays
 * tests/fuzz/corpus/probepos/ on every `make unit`.
 *
 * Besides ASan and UBSan, it checks:
 *   - the chosen position lies within the code given (delta < len) and
 *     vaddr == func + delta; argument locations are registers or ARG_LOST;
 *   - a position away from the start is on an emulated instruction, and
 *     every argument asked for is still readable there;
 *   - first_call_in() only answers with a target inside its range.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probepos.h"

#define FUZZ_FUNC 0x401000ull

/* Runs one input through the placement code and the checks above.
 * Returns NULL when all hold, else what failed. */
static const char *fuzz_probepos_check(const uint8_t *data, size_t size)
{
	const uint8_t *code = data + 1;
	size_t len;
	unsigned need;
	struct probe_pos p;
	uint64_t t;
	char dis[160];
	int rc;

	if (size < 2)
		return NULL;
	need = data[0] & 0x3f;
	len = size - 1;
	(void)probepos__classify(code, len);
	(void)probepos__probeable(code, len);
	(void)probepos__is_nop5(code, len);
	(void)probepos__disasm(code, len, FUZZ_FUNC, dis, sizeof(dis));
	rc = probepos__choose_mask(code, len, FUZZ_FUNC, need, &p);
	if (rc == 0) {
		if (p.delta >= len || p.vaddr != FUZZ_FUNC + p.delta)
			return "position outside the code";
		for (int i = 0; i < 6; i++)
			if (p.arg_reg[i] != ARG_LOST && (p.arg_reg[i] < 0 || p.arg_reg[i] > ARG_REG_SS))
				return "argument location out of range";
		if (p.delta > 0 && p.kind != PROBE_INSN_EMULATED)
			return "moved to an instruction that is not emulated";
		for (int i = 0; i < 6; i++)
			if ((need & (1u << i)) && p.delta > 0 && p.arg_reg[i] == ARG_LOST)
				return "an argument asked for is lost at the position";
	} else if (rc != -ENOSYS && rc != -ENOMEM) {
		return "choose failed on non-empty code";
	}
	rc = probepos__first_call(code, len, FUZZ_FUNC, &t);
	if (rc && rc != -ENOENT && rc != -ENOSYS && rc != -ENOMEM)
		return "first_call: unexpected error";
	rc = probepos__first_call_in(code, len, FUZZ_FUNC, FUZZ_FUNC - 0x800, FUZZ_FUNC + 0x800, &t);
	if (rc == 0 && (t < FUZZ_FUNC - 0x800 || t >= FUZZ_FUNC + 0x800))
		return "first_call_in answered outside its range";
	return NULL;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_probepos_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_probepos: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
