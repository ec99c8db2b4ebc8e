/* retsites.h — where a function returns (x86-64): for each of its ret
 * instructions, the instruction to probe to see that return without a
 * uretprobe. A probe on an ordinary instruction changes nothing on the
 * stack (a uretprobe replaces the return address, which kills programs
 * that switch stacks and loses returns left by longjmp), and is matched to
 * its call's entry by the stack pointer.
 *
 * The kernel emulates a probed push, nop, call, jmp or jcc (~1 µs a hit in
 * a tight loop) but single-steps a ret (~17 µs). So where the straight line
 * of code that leads to a ret (no branch lands inside it) holds an emulated
 * instruction, say the stack-protector check or the call that unlocks a
 * mutex just before the epilogue, that instruction is the exit site, with
 * the stack pointer's distance to the entry's computed from the pops and
 * stack adjustments between it and the ret. Otherwise the ret itself is.
 * Jumps through tables are not seen: a return reached by one past the
 * site is missed (callers fall back on later calls, see the BPF side). */
#ifndef SQLTRACE_RETSITES_H
#define SQLTRACE_RETSITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RETSITES_MAX 8

struct exit_site {
	uint64_t vaddr;      /* the instruction to probe */
	uint32_t sp_delta;   /* bytes: rsp there + sp_delta = rsp at entry
	                      * (pointing at the return address) */
	bool at_ret;         /* the ret itself: rax holds the result */
	/* Where the function's result can be read at the site: an enum
	 * arg_loc_reg index (probepos.h: rax at a ret; a callee-saved register
	 * that the epilogue moves into eax), or -1 when not known there. */
	int8_t result_reg;
};

/* Decodes code[0..len) (a whole function starting at address func) and
 * fills out with one exit site per ret instruction (sites shared by several
 * rets given once), at most max. rets_only: every site is the ret itself
 * (where the result must be read from rax). Decoding stops at the first
 * byte that does not decode. Returns the number of sites (0: the function
 * never returns by ret, e.g. a tail call), -E2BIG when there are more than
 * max, -EINVAL for bad arguments, -ENOMEM, -ENOSYS when capstone cannot be
 * opened. */
int retsites__find(const uint8_t *code, size_t len, uint64_t func, bool rets_only, struct exit_site *out,
		   size_t max);

/* For a thin wrapper (code[0..len), a function at func) that calls target:
 * the address right after its first direct call to target (the return
 * address target sees) in *ret_addr, and in *depth the bytes between the
 * stack pointer there and the wrapper's own entry stack pointer, from the
 * straight line that follows up to a ret (pops and stack adjustments only).
 * So, at target's entry, the wrapper's return address (its caller) is at
 * rsp + 8 + depth. Returns 0, -ENOENT when the wrapper is not shaped so
 * (no such call, a branch or an untracked stack write before the ret),
 * -EINVAL, -ENOMEM, -ENOSYS. */
int retsites__call_frame(const uint8_t *code, size_t len, uint64_t func, uint64_t target, uint64_t *ret_addr,
			 uint32_t *depth);

#endif
