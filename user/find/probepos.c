/* probepos.c — entry-probe placement on x86-64: classify instructions the way
 * the kernel's uprobe code does (arch/x86/kernel/uprobes.c, 6.18), walk the
 * prologue with capstone tracking where the argument registers went, and
 * stop at the first instruction the kernel emulates.
 *
 * What the 6.18 kernel emulates (no out-of-line single step):
 *  - branch_setup_xol_ops(): an instruction whose bytes equal the kernel's
 *    own nop of that length (x86_nops[1..8]), any opcode 0x90 whatever its
 *    prefixes (also, wrongly, REX.B 0x90 = xchg %r8,%rax — fixed after 6.18
 *    by insn_is_nop()), jmp rel8/rel32, call rel32, jcc rel8/rel32; a 0x66
 *    prefix on a branch makes the probe fail (-ENOTSUPP).
 *  - push_setup_xol_ops(): push %reg (50-57) and push %r8-%r15 with exactly
 *    the REX prefix 0x41.
 * Everything else (sub/add/mov/lea/endbr64/...) is single-stepped. Any
 * instruction with an es/cs/ss/ds segment or lock prefix is refused by
 * uprobe_init_insn() (is_prefix_bad()).
 */
#include "probepos.h"

#include <assert.h>
#include <capstone/capstone.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/user.h>

#define MAX_WALK_INSNS 16
#define MAX_SP_DELTA (1 << 20)

/* enum arg_loc_reg is the pt_regs field order; user_regs_struct has the
 * same layout on x86-64, so check against it at compile time. */
_Static_assert(offsetof(struct user_regs_struct, rdi) / 8 == ARG_REG_RDI, "rdi");
_Static_assert(offsetof(struct user_regs_struct, r9) / 8 == ARG_REG_R9, "r9");
_Static_assert(offsetof(struct user_regs_struct, r15) / 8 == ARG_REG_R15, "r15");
_Static_assert(offsetof(struct user_regs_struct, rsp) / 8 == ARG_REG_RSP, "rsp");
_Static_assert(offsetof(struct user_regs_struct, ss) / 8 == ARG_REG_SS, "ss");

/* General purpose registers by hardware number: 0 rax, 1 rcx, 2 rdx, 3 rbx,
 * 4 rsp, 5 rbp, 6 rsi, 7 rdi, 8..15 r8..r15. */
enum { GPR_RSP = 4, NGPR = 16 };

static const int8_t gpr_to_ptregs[NGPR] = {
	ARG_REG_RAX, ARG_REG_RCX, ARG_REG_RDX, ARG_REG_RBX,
	ARG_REG_RSP, ARG_REG_RBP, ARG_REG_RSI, ARG_REG_RDI,
	ARG_REG_R8, ARG_REG_R9, ARG_REG_R10, ARG_REG_R11,
	ARG_REG_R12, ARG_REG_R13, ARG_REG_R14, ARG_REG_R15,
};

/* SysV x86-64: rdi, rsi, rdx, rcx, r8, r9. */
static const int arg_gpr[6] = { 7, 6, 2, 1, 8, 9 };

/* The kernel's 64-bit nops (arch/x86/include/asm/nops.h, x86_nops[]). */
static const uint8_t kernel_nops[9][8] = {
	[1] = { 0x90 },
	[2] = { 0x66, 0x90 },
	[3] = { 0x0f, 0x1f, 0x00 },
	[4] = { 0x0f, 0x1f, 0x40, 0x00 },
	[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	[6] = { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	[7] = { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
	[8] = { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
};

/* The prefix/opcode layout of one instruction, from its raw bytes. */
struct raw_insn {
	size_t npfx;            /* legacy prefix bytes */
	bool bad_pfx;           /* 26/2e/36/3e/f0: kernel refuses the probe */
	bool pfx66, pfxf3;
	bool has_rex;
	uint8_t rex;
	size_t op;              /* index of the first opcode byte */
	bool ok;                /* op < len */
};

static struct raw_insn raw_parse(const uint8_t *c, size_t len)
{
	struct raw_insn r = { 0 };
	size_t i = 0;

	for (; i < len && i < 14; i++) {
		switch (c[i]) {
		case 0x26: case 0x2e: case 0x36: case 0x3e: case 0xf0:
			r.bad_pfx = true;
			continue;
		case 0x66:
			r.pfx66 = true;
			continue;
		case 0xf3:
			r.pfxf3 = true;
			continue;
		case 0xf2: case 0x64: case 0x65: case 0x67:
			continue;
		}
		break;
	}
	r.npfx = i;
	if (i < len && (c[i] & 0xf0) == 0x40) {
		r.has_rex = true;
		r.rex = c[i];
		i++;
	}
	r.op = i;
	r.ok = i < len;
	return r;
}

/* Kernel handling of one instruction; *ilen gets its length when emulated
 * (0 otherwise). */
static enum probe_insn_kind classify_raw(const uint8_t *c, size_t len, size_t *ilen)
{
	struct raw_insn r;
	uint8_t op;

	*ilen = 0;
	if (!c || len == 0)
		return PROBE_INSN_SSTEP;
	for (size_t k = 8; k >= 1; k--) {
		if (k <= len && memcmp(c, kernel_nops[k], k) == 0) {
			*ilen = k;
			return PROBE_INSN_EMULATED;
		}
	}
	r = raw_parse(c, len);
	if (!r.ok || r.bad_pfx)
		return PROBE_INSN_SSTEP;
	op = c[r.op];
	size_t after = r.op + 1;    /* bytes up to and including opcode 1 */

	if (op == 0x90) {               /* prefix* + nop: emulated as a nop */
		*ilen = after;
		return PROBE_INSN_EMULATED;
	}
	if (op >= 0x50 && op <= 0x57) { /* push %reg */
		if (r.npfx == 0 && (!r.has_rex || r.rex == 0x41)) {
			*ilen = after;
			return PROBE_INSN_EMULATED;
		}
		return PROBE_INSN_SSTEP;
	}
	if (r.pfx66)                    /* 16-bit branches: refused */
		return PROBE_INSN_SSTEP;
	if (op == 0xeb || (op >= 0x70 && op <= 0x7f))
		*ilen = after + 1;
	else if (op == 0xe9 || op == 0xe8)
		*ilen = after + 4;
	else if (op == 0x0f && after < len && c[after] >= 0x80 && c[after] <= 0x8f)
		*ilen = after + 1 + 4;
	else
		return PROBE_INSN_SSTEP;
	if (*ilen > len) {
		*ilen = 0;
		return PROBE_INSN_SSTEP;
	}
	return PROBE_INSN_EMULATED;
}

enum probe_insn_kind probepos__classify(const uint8_t *code, size_t len)
{
	size_t ilen;
	return classify_raw(code, len, &ilen);
}

bool probepos__is_nop5(const uint8_t *code, size_t len)
{
	return code && len >= 5 && memcmp(code, kernel_nops[5], 5) == 0;
}

static int open_cs(csh *h, bool detail, bool att)
{
	if (cs_open(CS_ARCH_X86, CS_MODE_64, h) != CS_ERR_OK)
		return -ENOSYS;
	if (detail && cs_option(*h, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK)
		goto fail;
	if (att && cs_option(*h, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT) != CS_ERR_OK)
		goto fail;
	return 0;
fail:
	cs_close(h);
	return -ENOSYS;
}

/* Decodes one instruction into *insn (allocated by the caller with
 * cs_malloc). Returns false when it cannot be decoded. */
static bool decode_one(csh h, const uint8_t *code, size_t len, uint64_t addr, cs_insn *insn)
{
	const uint8_t *p = code;
	size_t n = len;
	uint64_t a = addr;

	return cs_disasm_iter(h, &p, &n, &a, insn);
}

bool probepos__probeable(const uint8_t *code, size_t len)
{
	struct raw_insn r;
	cs_insn *insn;
	csh h;
	bool ok;

	if (!code || len == 0)
		return false;
	r = raw_parse(code, len);
	if (!r.ok || r.bad_pfx)
		return false;
	if (open_cs(&h, false, false))
		return false;
	insn = cs_malloc(h);
	ok = insn && decode_one(h, code, len, 0, insn);
	if (ok && r.pfx66) {
		uint8_t op = code[r.op];
		if (op == 0xe8 || op == 0xe9 || op == 0xeb || (op >= 0x70 && op <= 0x7f) ||
		    (op == 0x0f && r.op + 1 < len && code[r.op + 1] >= 0x80 &&
		     code[r.op + 1] <= 0x8f))
			ok = false;
	}
	if (insn)
		cs_free(insn, 1);
	cs_close(&h);
	return ok;
}

int probepos__disasm(const uint8_t *code, size_t len, uint64_t addr, char *buf,
		     size_t buflen)
{
	cs_insn *insn;
	csh h;
	int ret = -EINVAL;

	if (buf && buflen)
		snprintf(buf, buflen, "(bad)");
	if (!code || len == 0)
		return -EINVAL;
	if (open_cs(&h, false, true))
		return -ENOSYS;
	insn = cs_malloc(h);
	if (insn && decode_one(h, code, len, addr, insn)) {
		if (buf && buflen)
			snprintf(buf, buflen, "%s%s%s", insn->mnemonic,
				 insn->op_str[0] ? " " : "", insn->op_str);
		ret = insn->size;
	}
	if (insn)
		cs_free(insn, 1);
	cs_close(&h);
	return ret;
}

const char *probepos__reg_name(int reg)
{
	static const char *const names[] = {
		"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
		"rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
		"rsp", "ss",
	};
	if (reg >= 0 && reg < (int)(sizeof(names) / sizeof(names[0])))
		return names[reg];
	return "lost";
}

/* Hardware number of the 64-bit register containing capstone register r, or
 * -1 when r is not a general purpose register. */
static int gpr_of(unsigned r)
{
	switch (r) {
	case X86_REG_RAX: case X86_REG_EAX: case X86_REG_AX: case X86_REG_AL: case X86_REG_AH:
		return 0;
	case X86_REG_RCX: case X86_REG_ECX: case X86_REG_CX: case X86_REG_CL: case X86_REG_CH:
		return 1;
	case X86_REG_RDX: case X86_REG_EDX: case X86_REG_DX: case X86_REG_DL: case X86_REG_DH:
		return 2;
	case X86_REG_RBX: case X86_REG_EBX: case X86_REG_BX: case X86_REG_BL: case X86_REG_BH:
		return 3;
	case X86_REG_RSP: case X86_REG_ESP: case X86_REG_SP: case X86_REG_SPL:
		return 4;
	case X86_REG_RBP: case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL:
		return 5;
	case X86_REG_RSI: case X86_REG_ESI: case X86_REG_SI: case X86_REG_SIL:
		return 6;
	case X86_REG_RDI: case X86_REG_EDI: case X86_REG_DI: case X86_REG_DIL:
		return 7;
	case X86_REG_R8: case X86_REG_R8D: case X86_REG_R8W: case X86_REG_R8B:
		return 8;
	case X86_REG_R9: case X86_REG_R9D: case X86_REG_R9W: case X86_REG_R9B:
		return 9;
	case X86_REG_R10: case X86_REG_R10D: case X86_REG_R10W: case X86_REG_R10B:
		return 10;
	case X86_REG_R11: case X86_REG_R11D: case X86_REG_R11W: case X86_REG_R11B:
		return 11;
	case X86_REG_R12: case X86_REG_R12D: case X86_REG_R12W: case X86_REG_R12B:
		return 12;
	case X86_REG_R13: case X86_REG_R13D: case X86_REG_R13W: case X86_REG_R13B:
		return 13;
	case X86_REG_R14: case X86_REG_R14D: case X86_REG_R14W: case X86_REG_R14B:
		return 14;
	case X86_REG_R15: case X86_REG_R15D: case X86_REG_R15W: case X86_REG_R15B:
		return 15;
	default:
		return -1;
	}
}

static bool is_gpr64(unsigned r)
{
	switch (r) {
	case X86_REG_RAX: case X86_REG_RCX: case X86_REG_RDX: case X86_REG_RBX:
	case X86_REG_RSP: case X86_REG_RBP: case X86_REG_RSI: case X86_REG_RDI:
	case X86_REG_R8: case X86_REG_R9: case X86_REG_R10: case X86_REG_R11:
	case X86_REG_R12: case X86_REG_R13: case X86_REG_R14: case X86_REG_R15:
		return true;
	default:
		return false;
	}
}

/* What the prologue walk knows at one point. */
struct track {
	int8_t holds[NGPR];     /* argument index (0..5) a register holds, or -1 */
	int32_t sp;             /* bytes subtracted from rsp so far */
};

static void track_init(struct track *t)
{
	memset(t->holds, -1, sizeof(t->holds));
	for (int a = 0; a < 6; a++)
		t->holds[arg_gpr[a]] = (int8_t)a;
	t->sp = 0;
}

/* Fills the argument locations of out from t. */
static void track_export(const struct track *t, struct probe_pos *out)
{
	for (int a = 0; a < 6; a++) {
		int g = -1;
		if (t->holds[arg_gpr[a]] == a)
			g = arg_gpr[a];         /* still in its own register */
		else
			for (int r = 0; r < NGPR && g < 0; r++)
				if (t->holds[r] == a)
					g = r;
		out->arg_reg[a] = (int8_t)(g < 0 ? ARG_LOST : gpr_to_ptregs[g]);
	}
	out->sp_delta = t->sp;
}

static bool has_group(csh h, const cs_insn *insn, int g)
{
	return cs_insn_group(h, insn, (unsigned)g);
}

/* Applies one non-emulated instruction to t. Returns false when its effect
 * cannot be tracked (the walk must stop before it). */
static bool track_apply(csh h, const cs_insn *insn, const uint8_t *code, size_t len,
			struct track *t)
{
	const cs_x86 *x = &insn->detail->x86;
	struct raw_insn r = raw_parse(code, len);
	cs_regs rd, wr;
	uint8_t nrd = 0, nwr = 0;

	if (!r.ok)
		return false;
	/* A nop has no effect, even with a segment prefix (gcc's "cs nopw"
	 * alignment padding): it cannot carry the probe, but we may pass it. */
	if (insn->id == X86_INS_NOP && !(len > 0 && memchr(code, 0xf0, r.npfx)))
		return true;
	if (r.bad_pfx)
		return false;

	/* endbr64 / endbr32: no effect. */
	if (len >= 4 && code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e &&
	    (code[3] == 0xfa || code[3] == 0xfb))
		return true;

	if (has_group(h, insn, X86_GRP_JUMP) || has_group(h, insn, X86_GRP_CALL) ||
	    has_group(h, insn, X86_GRP_RET) || has_group(h, insn, X86_GRP_INT) ||
	    has_group(h, insn, X86_GRP_IRET) || has_group(h, insn, X86_GRP_BRANCH_RELATIVE) ||
	    has_group(h, insn, X86_GRP_PRIVILEGE))
		return false;
	switch (insn->id) {
	case X86_INS_SYSCALL: case X86_INS_SYSENTER: case X86_INS_UD2: case X86_INS_HLT:
	case X86_INS_INT3: case X86_INS_INT: case X86_INS_INTO: case X86_INS_XBEGIN:
	case X86_INS_XABORT: case X86_INS_XEND: case X86_INS_ENTER: case X86_INS_LEAVE:
	case X86_INS_POP: case X86_INS_POPF: case X86_INS_POPFQ: case X86_INS_PUSHF:
	case X86_INS_PUSHFQ: case X86_INS_MASKMOVQ: case X86_INS_MASKMOVDQU:
	case X86_INS_VMASKMOVDQU:
		return false;
	case X86_INS_NOP:
		return true;
	default:
		break;
	}

	/* push: 8 bytes below rsp (a 0x66 push moves rsp by 2: not tracked). */
	if (insn->id == X86_INS_PUSH) {
		if (r.pfx66 || t->sp > MAX_SP_DELTA)
			return false;
		t->sp += 8;
		return true;
	}

	/* sub/add $imm, %rsp */
	if ((insn->id == X86_INS_SUB || insn->id == X86_INS_ADD) && x->op_count == 2 &&
	    x->operands[0].type == X86_OP_REG && x->operands[0].reg == X86_REG_RSP &&
	    x->operands[1].type == X86_OP_IMM) {
		int64_t imm = x->operands[1].imm;
		int64_t sp = t->sp + (insn->id == X86_INS_SUB ? imm : -imm);
		if (sp < 0 || sp > MAX_SP_DELTA)
			return false;
		t->sp = (int32_t)sp;
		return true;
	}

	/* Stores: only into the frame this prologue allocated. */
	for (int i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];
		if (op->type != X86_OP_MEM || insn->id == X86_INS_LEA)
			continue;
		/* capstone leaves access 0 for some instructions: treat an
		 * unknown access as a store. */
		if (op->access && !(op->access & CS_AC_WRITE))
			continue;
		if (op->mem.base != X86_REG_RSP || op->mem.index != X86_REG_INVALID ||
		    op->mem.segment != X86_REG_INVALID || op->mem.disp < 0 ||
		    op->mem.disp + op->size > t->sp)
			return false;
	}

	/* mov %reg64, %reg64: the destination now holds the source's value. */
	if (insn->id == X86_INS_MOV && x->op_count == 2 &&
	    x->operands[0].type == X86_OP_REG && x->operands[1].type == X86_OP_REG &&
	    is_gpr64(x->operands[0].reg) && is_gpr64(x->operands[1].reg)) {
		int d = gpr_of(x->operands[0].reg), s = gpr_of(x->operands[1].reg);
		if (d == GPR_RSP)
			return false;
		t->holds[d] = s == GPR_RSP ? -1 : t->holds[s];
		return true;
	}

	/* Anything else: every register it writes loses what it held. */
	if (cs_regs_access(h, insn, rd, &nrd, wr, &nwr) != CS_ERR_OK)
		return false;
	for (int i = 0; i < nwr; i++) {
		if (wr[i] == X86_REG_RIP || wr[i] == X86_REG_EIP)
			return false;
		int g = gpr_of(wr[i]);
		if (g == GPR_RSP)
			return false;
		if (g >= 0)
			t->holds[g] = -1;
	}
	return true;
}

/* Lowest direct branch target in (func, func + len), or UINT64_MAX. */
static uint64_t first_inner_target(csh h, cs_insn *insn, const uint8_t *code, size_t len,
				   uint64_t func)
{
	uint64_t best = UINT64_MAX;
	size_t off = 0;

	while (off < len) {
		if (!decode_one(h, code + off, len - off, func + off, insn)) {
			off++;          /* data or garbage: resync on the next byte */
			continue;
		}
		if ((has_group(h, insn, X86_GRP_JUMP) || has_group(h, insn, X86_GRP_CALL)) &&
		    insn->detail->x86.op_count == 1 &&
		    insn->detail->x86.operands[0].type == X86_OP_IMM) {
			uint64_t tgt = (uint64_t)insn->detail->x86.operands[0].imm;
			if (tgt > func && tgt - func < len && tgt < best)
				best = tgt;
		}
		off += insn->size;
	}
	return best;
}

int probepos__choose_mask(const uint8_t *code, size_t len, uint64_t func,
			  unsigned need_args, struct probe_pos *out)
{
	struct track t;
	cs_insn *insn;
	uint64_t limit;
	size_t off = 0, ilen;
	csh h;
	int err;

	if (!code || len == 0 || !out)
		return -EINVAL;

	/* Default: the function start, arguments where the ABI puts them. */
	memset(out, 0, sizeof(*out));
	track_init(&t);
	track_export(&t, out);
	out->vaddr = func;
	out->delta = 0;
	out->kind = classify_raw(code, len, &ilen);

	err = open_cs(&h, true, false);
	if (err)
		return err;
	insn = cs_malloc(h);
	if (!insn) {
		cs_close(&h);
		return -ENOMEM;
	}
	limit = first_inner_target(h, insn, code, len, func);

	for (int n = 0; n < MAX_WALK_INSNS && off < len; n++) {
		const uint8_t *c = code + off;
		size_t avail = len - off;

		if (off > 0 && func + off >= limit)
			break;          /* reachable by a jump, not only on entry */
		if (!decode_one(h, c, avail, func + off, insn))
			break;
		if (classify_raw(c, avail, &ilen) == PROBE_INSN_EMULATED &&
		    ilen == insn->size && probepos__probeable(c, avail) &&
		    insn->id != X86_INS_XCHG) {
			/* 6.18 "emulates" xchg %r8,%rax (REX.B 0x90) as a nop:
			 * never put a probe there. */
			bool have = true;
			for (int a = 0; a < 6; a++)
				if ((need_args & (1u << a)) &&
				    t.holds[arg_gpr[a]] != a) {
					bool found = false;
					for (int r = 0; r < NGPR; r++)
						found |= t.holds[r] == a;
					have &= found;
				}
			if (have && off > 0) {
				out->vaddr = func + off;
				out->delta = (uint32_t)off;
				out->kind = PROBE_INSN_EMULATED;
				track_export(&t, out);
			}
			break;  /* the first emulated one decides */
		}
		if (!track_apply(h, insn, c, avail, &t))
			break;
		off += insn->size;
	}

	cs_free(insn, 1);
	cs_close(&h);
	assert(out->delta == out->vaddr - func);
	return 0;
}

int probepos__choose(const uint8_t *code, size_t len, uint64_t func, struct probe_pos *out)
{
	return probepos__choose_mask(code, len, func, 0, out);
}

int probepos__first_call(const uint8_t *code, size_t len, uint64_t func, uint64_t *target)
{
	return probepos__first_call_in(code, len, func, 0, UINT64_MAX, target);
}

int probepos__first_call_in(const uint8_t *code, size_t len, uint64_t func, uint64_t lo,
			    uint64_t hi, uint64_t *target)
{
	cs_insn *insn;
	size_t off = 0;
	int err = -ENOENT, n;
	csh h;

	if (!code || !len || !target)
		return -EINVAL;
	if (open_cs(&h, true, false))
		return -ENOSYS;
	insn = cs_malloc(h);
	if (!insn) {
		cs_close(&h);
		return -ENOMEM;
	}
	for (n = 0; n < 16 && off < len; n++) {
		if (!decode_one(h, code + off, len - off, func + off, insn))
			break;
		if (has_group(h, insn, X86_GRP_RET) || has_group(h, insn, X86_GRP_JUMP))
			break;  /* a branch before any call: not a plain wrapper */
		if (has_group(h, insn, X86_GRP_CALL)) {
			const cs_x86_op *op = &insn->detail->x86.operands[0];
			bool imm, got;

			if (insn->detail->x86.op_count != 1)
				break;
			imm = op->type == X86_OP_IMM;
			if (imm && (uint64_t)op->imm >= lo && (uint64_t)op->imm < hi) {
				*target = (uint64_t)op->imm;
				err = 0;
				break;
			}
			/* out of the range: the profiler's mcount, direct to its
			 * PLT stub or through its GOT slot; stepped over only
			 * when a range was given */
			got = op->type == X86_OP_MEM && op->mem.base == X86_REG_RIP &&
			      op->mem.index == X86_REG_INVALID;
			if ((lo == 0 && hi == UINT64_MAX) || !(imm || got))
				break;
		}
		off += insn->size;
	}
	cs_free(insn, 1);
	cs_close(&h);
	return err;
}
