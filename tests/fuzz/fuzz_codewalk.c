/* fuzz_codewalk.c — libFuzzer target for user/find/codewalk.c and
 * user/find/layout_decode.c, which walk the code of functions in files other
 * users own (a target's SQLite copy) to read its object layout.
 * Input: a function's code; it is walked alone, then given as every
 * function the layout rules ask for. Build and run: `make fuzz-run-files`;
 * tests/unit/test_fuzz_corpus.c replays tests/fuzz/corpus/codewalk/ on
 * every `make unit`.
 *
 * Besides ASan and UBSan, it checks:
 *   - the walk answers 0 or -ENOENT (no allocation failure expected) and
 *     stays within its tables; every value's parent is an earlier pointer
 *     value (an argument or a field), every event names known values;
 *   - the decoded layout has offsets in [-1, 65536), state values 1/2/3
 *     when a state byte is taken, and NUL-terminated notes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codewalk.h"
#include "layout_decode.h"

#define FUZZ_FUNC 0x401000ull

struct fuzz_code {
	const uint8_t *data;
	size_t size;
};

static int fuzz_fetch(void *ctx, const char *name, uint8_t **code, size_t *len, uint64_t *vaddr)
{
	const struct fuzz_code *f = ctx;

	(void)name;
	*code = malloc(f->size ? f->size : 1);
	if (!*code)
		return -ENOMEM;
	memcpy(*code, f->data, f->size);
	*len = f->size;
	*vaddr = FUZZ_FUNC;
	return 0;
}

static int off_ok(int v)
{
	return v >= -1 && v < 65536;
}

/* Runs one input through the walk and the layout rules and the checks
 * above. Returns NULL when all hold, else what failed. */
static const char *fuzz_codewalk_check(const uint8_t *data, size_t size)
{
	static struct codewalk w;
	struct fuzz_code f = { data, size };
	struct layout_decoded d;
	const struct st_lib_cfg *c = &d.cfg;
	int rc, i;

	rc = codewalk__run(data, size, FUZZ_FUNC, &w);
	if (rc != 0 && rc != -ENOENT)
		return "walk failed other than -ENOENT";
	if (w.nnodes < 1 || w.nnodes > CW_VALUES_MAX || w.nev < 0 || w.nev > CW_EVENTS_MAX)
		return "walk tables overflowed";
	for (i = 1; i < w.nnodes; i++) {
		const struct cw_value *v = &w.node[i];

		if (v->kind < CW_ARG || v->kind > CW_STACK)
			return "value of no kind";
		if (v->kind == CW_FIELD && (v->parent < 1 || v->parent >= i ||
					    (w.node[v->parent].kind != CW_ARG && w.node[v->parent].kind != CW_FIELD)))
			return "field read through something not a pointer value";
	}
	for (i = 0; i < w.nev; i++) {
		const struct cw_event *e = &w.ev[i];

		if (e->a < 0 || e->a >= w.nnodes || e->b < 0 || e->b >= w.nnodes || e->c < 0 || e->c >= w.nnodes)
			return "event names an unknown value";
	}
	if (layout_decode__run(fuzz_fetch, &f, &d) < 0)
		return "layout decode failed";
	if (!off_ok(c->vdbe_db_off) || !off_ok(c->vdbe_zsql_off) || !off_ok(c->db_perr_off) || !off_ok(c->mem_z_off) ||
	    !off_ok(c->vdbe_rc_off) || !off_ok(c->vdbe_zerrmsg_off) || !off_ok(c->vdbe_state_off) ||
	    !off_ok(c->db_pparse_off) || !off_ok(c->db_adb_off) || !off_ok(c->pager_zfile_off))
		return "offset out of range";
	if (c->vdbe_state_off >= 0 && (c->state_ready != 1 || c->state_run != 2 || c->state_halt != 3))
		return "state values other than the version's";
	if (d.nfound < 0 || d.nfound > LAYOUT_DECODE_FIELDS || !memchr(d.found, 0, sizeof(d.found)) ||
	    !memchr(d.missing, 0, sizeof(d.missing)))
		return "bad notes";
	return NULL;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_codewalk_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_codewalk: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
