/* probepos.h — chooses where in a function's prologue to put an entry uprobe
 * (x86-64), so the probe sits on an instruction the kernel emulates instead
 * of one it must single-step out of line, and says where each argument
 * register's entry value can be read at that point.
 *
 * Why: on kernel 6.18 a uprobe hit on an emulated instruction (push reg,
 * the canonical nops, jmp/jcc/call rel) costs ~6 µs here, a single-stepped
 * one (sub $imm,%rsp, mov, lea, endbr64, ...) ~22 µs. See
 * docs/probe-placement.md for the kernel's rules and the measured listing.
 *
 * Only for entry probes: a uretprobe must stay at the function's first byte
 * (the kernel hijacks the return address at [rsp] when it fires).
 */
#ifndef SQLTRACE_PROBEPOS_H
#define SQLTRACE_PROBEPOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where an argument can be read: the index of a 64-bit field of the x86-64
 * struct pt_regs (kernel and BPF view; the same order as user space's
 * struct user_regs_struct), i.e. byte offset / 8. A BPF program reads
 * ((const __u64 *)ctx)[index]; the values for argument registers are the
 * ones listed first. */
enum arg_loc_reg {
	ARG_REG_R15 = 0,
	ARG_REG_R14 = 1,
	ARG_REG_R13 = 2,
	ARG_REG_R12 = 3,
	ARG_REG_RBP = 4,
	ARG_REG_RBX = 5,
	ARG_REG_R11 = 6,
	ARG_REG_R10 = 7,
	ARG_REG_R9 = 8,
	ARG_REG_R8 = 9,
	ARG_REG_RAX = 10,
	ARG_REG_RCX = 11,
	ARG_REG_RDX = 12,
	ARG_REG_RSI = 13,
	ARG_REG_RDI = 14,
	ARG_REG_ORIG_RAX = 15,  /* not a location; for completeness */
	ARG_REG_RIP = 16,
	ARG_REG_CS = 17,
	ARG_REG_EFLAGS = 18,
	ARG_REG_RSP = 19,
	ARG_REG_SS = 20,
};
#define ARG_LOST (-1)

enum probe_insn_kind { PROBE_INSN_EMULATED, PROBE_INSN_SSTEP };

struct probe_pos {
	uint64_t vaddr;        /* where to put the probe */
	uint32_t delta;        /* vaddr - function start */
	enum probe_insn_kind kind;
	/* Where each of the first 6 integer arguments (rdi, rsi, rdx, rcx, r8,
	 * r9 at entry) can be read at vaddr: an enum arg_loc_reg value, or
	 * ARG_LOST when the prologue overwrote it before vaddr without a
	 * 64-bit register copy. Copies to the stack are not tracked. */
	int8_t arg_reg[6];
	/* Bytes subtracted from rsp before vaddr (pushes + sub $imm,%rsp): at
	 * vaddr the return address is at rsp + sp_delta, and the 7th
	 * argument at rsp + sp_delta + 8. */
	int32_t sp_delta;
};

/* Picks the probe position for the function starting at func, whose first
 * bytes are code[0..len) (pass the whole function, its symbol size, when
 * known: branch targets anywhere in the given bytes are checked, see below).
 *
 * Walks at most the first 16 instructions and returns the first one the
 * kernel emulates, provided everything before it is tracked: endbr64, nops,
 * push reg/imm, sub/add $imm,%rsp, 64-bit mov reg,reg (the destination
 * takes the source's argument), other register writes (the register's
 * argument is lost unless another register holds a copy), loads, and stores
 * into the frame the prologue allocated. The walk stops, without moving
 * past it, at any branch, call, ret, pop, other write to rsp, store anywhere
 * else, lock- or es/cs/ss/ds-prefixed instruction (except a nop), or
 * undecodable bytes. A direct
 * jmp/jcc/call is itself emulated, so it can be the chosen position (the
 * probe fires before it executes, on every entry).
 * A position is refused if any direct branch in code[0..len) lands in
 * (func, position]: the probe would then also fire on that path. Jumps into
 * the prologue from other functions cannot be seen here (compilers do not
 * emit them).
 * When nothing qualifies, returns the function start with kind = what the
 * first instruction is (EMULATED or SSTEP) and every argument in its own
 * register.
 * Returns 0 or -EINVAL (NULL pointer, len 0), -ENOMEM, -ENOSYS (capstone
 * could not be opened). */
int probepos__choose(const uint8_t *code, size_t len, uint64_t func, struct probe_pos *out);

/* As probepos__choose(), but a position is only taken if every argument
 * whose bit is set in need_args (bit i = argument i, 0..5) is still
 * readable there; otherwise the function start is returned. need_args 0
 * is probepos__choose(). */
int probepos__choose_mask(const uint8_t *code, size_t len, uint64_t func,
			  unsigned need_args, struct probe_pos *out);

/* Classifies one instruction at code (len bytes available) as the kernel
 * 6.18 would handle a uprobe on it: EMULATED for push reg (50-57, 41 50-57),
 * the kernel's canonical nops (90, 66 90, 0f 1f 00 … 0f 1f 84 00 00 00 00
 * 00), prefixed 0x90 nops, jmp rel8/rel32, call rel32, jcc rel8/rel32
 * (without a 66 prefix); SSTEP for everything else, including instructions
 * the kernel refuses to probe at all (see probepos__probeable). */
enum probe_insn_kind probepos__classify(const uint8_t *code, size_t len);

/* False when the kernel would refuse a uprobe on this instruction because
 * of its prefixes (es/cs/ss/ds segment or lock, 0x66 on a branch) or when it
 * cannot be decoded. True does not guarantee acceptance (the kernel also
 * rejects some opcodes such as int3, hlt, in/out, syscall). */
bool probepos__probeable(const uint8_t *code, size_t len);

/* True for the 5-byte nop (0f 1f 44 00 00) the 6.18 kernel can turn into a
 * call to a trampoline after the first hit (~1.6 µs per hit instead of ~6,
 * when the nop does not cross a page boundary). Never found in ordinary
 * prologues; USDT sites use it. */
bool probepos__is_nop5(const uint8_t *code, size_t len);

/* Disassembles one instruction at code (as at address addr) into buf as
 * "mnemonic operands" (AT&T syntax, like objdump). Returns its length in
 * bytes, or -EINVAL when it cannot be decoded (buf then holds "(bad)"). */
int probepos__disasm(const uint8_t *code, size_t len, uint64_t addr, char *buf,
		     size_t buflen);

/* Name of an enum arg_loc_reg value ("rdi", "r9", ...) or "lost". */
const char *probepos__reg_name(int reg);

/* For a thin wrapper (a function whose first branch, within its first 16
 * instructions, is a direct call), returns that call's target in *target.
 * Used to find SQLite's unexported sqlite3LockAndPrepare from the
 * sqlite3_prepare_v2 wrapper. Returns 0, -ENOENT when the function does not
 * start that way, or -errno. */
int probepos__first_call(const uint8_t *code, size_t len, uint64_t func, uint64_t *target);

/* As probepos__first_call(), but only a call into [lo, hi) counts: a direct
 * call elsewhere and an indirect call through a RIP-relative slot (a GOT
 * entry: an imported function) are stepped over. That is the profiler's
 * `call mcount@plt` / `call *mcount@GOTPCREL(%rip)` that a -pg build puts
 * at the start of every function, before the call the wrapper exists for.
 * Returns 0, -ENOENT when no call into the range comes first (a branch,
 * a ret, another indirect call, 16 instructions), or -errno. */
int probepos__first_call_in(const uint8_t *code, size_t len, uint64_t func, uint64_t lo,
			    uint64_t hi, uint64_t *target);

#endif
