/* retsites.c — exit sites of a function, found with capstone (see
 * retsites.h). */
#include "retsites.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "probepos.h"

#define WALK_MAX 32  /* instructions looked at before a ret */

struct insn_info {
	uint64_t addr;
	uint16_t size;
	bool ret, jmp, target;
	int32_t sp_effect;   /* bytes added to rsp by executing it */
	bool sp_unknown;     /* writes rsp in a way not tracked */
	bool call;
	bool jcc_inside;     /* a conditional jump to somewhere in the function:
	                      * taken, it may loop back before the ret */
	int8_t eax_src;      /* mov of a callee-saved register into eax/rax: its
	                      * arg_loc_reg; -1 does not write eax; -2 other */
	uint8_t saved_writes; /* callee-saved registers it writes (bit = index
	                       * in saved_regs) */
};

/* Callee-saved registers, as arg_loc_reg indexes. */
static const int8_t saved_regs[6] = { ARG_REG_RBX, ARG_REG_RBP, ARG_REG_R12, ARG_REG_R13, ARG_REG_R14,
				      ARG_REG_R15 };

/* The callee-saved register (index into saved_regs) that r is part of, or -1. */
static int saved_index(unsigned r)
{
	switch (r) {
	case X86_REG_RBX: case X86_REG_EBX: case X86_REG_BX: case X86_REG_BL: case X86_REG_BH: return 0;
	case X86_REG_RBP: case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL: return 1;
	case X86_REG_R12: case X86_REG_R12D: case X86_REG_R12W: case X86_REG_R12B: return 2;
	case X86_REG_R13: case X86_REG_R13D: case X86_REG_R13W: case X86_REG_R13B: return 3;
	case X86_REG_R14: case X86_REG_R14D: case X86_REG_R14W: case X86_REG_R14B: return 4;
	case X86_REG_R15: case X86_REG_R15D: case X86_REG_R15W: case X86_REG_R15B: return 5;
	default: return -1;
	}
}

static bool is_eax(unsigned r)
{
	return r == X86_REG_RAX || r == X86_REG_EAX || r == X86_REG_AX || r == X86_REG_AL || r == X86_REG_AH;
}

/* What one instruction does to eax and to the callee-saved registers. */
static void reg_effect(csh h, const cs_insn *in, struct insn_info *ii)
{
	const cs_x86 *x = &in->detail->x86;
	cs_regs rr, rw;
	uint8_t nr = 0, nw = 0, i;
	bool w_eax = false;

	ii->eax_src = -1;
	ii->saved_writes = 0;
	if (cs_regs_access(h, in, rr, &nr, rw, &nw) != CS_ERR_OK) {
		ii->eax_src = -2;
		ii->saved_writes = 0x3f;
		return;
	}
	for (i = 0; i < nw; i++) {
		int k = saved_index(rw[i]);

		if (k >= 0)
			ii->saved_writes |= (uint8_t)(1u << k);
		if (is_eax(rw[i]))
			w_eax = true;
	}
	if (in->id == X86_INS_CALL) {
		w_eax = true;  /* the callee's result; callee-saved preserved */
		ii->saved_writes = 0;
	}
	if (!w_eax)
		return;
	ii->eax_src = -2;
	if (in->id == X86_INS_MOV && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
	    (x->operands[0].reg == X86_REG_EAX || x->operands[0].reg == X86_REG_RAX) &&
	    x->operands[1].type == X86_OP_REG && saved_index(x->operands[1].reg) >= 0 &&
	    (x->operands[0].reg == X86_REG_EAX) ==
		    (x->operands[1].reg != X86_REG_RBX && x->operands[1].reg != X86_REG_RBP &&
		     x->operands[1].reg != X86_REG_R12 && x->operands[1].reg != X86_REG_R13 &&
		     x->operands[1].reg != X86_REG_R14 && x->operands[1].reg != X86_REG_R15))
		ii->eax_src = saved_regs[saved_index(x->operands[1].reg)];
}

/* Where the result is at the site (index k) of the ret at index r: the
 * callee-saved register the epilogue moves into eax, unwritten in between,
 * or rax itself when nothing after the site writes eax (and the site is not
 * a call). -1 when unknown. */
static int8_t result_at(const struct insn_info *v, size_t k, size_t r)
{
	int8_t loc = v[k].call ? -1 : ARG_REG_RAX;
	uint8_t written = 0;
	size_t i;

	for (i = k + 1; i < r; i++) {
		if (v[i].eax_src == -2)
			loc = -1;
		else if (v[i].eax_src >= 0) {
			int j;

			loc = v[i].eax_src;
			for (j = 0; j < 6; j++)
				if (saved_regs[j] == loc && (written & (1u << j)))
					loc = -1;
		}
		written |= v[i].saved_writes;
	}
	return loc;
}

static bool is_cond_jump(const cs_insn *in)
{
	uint8_t i;

	if (in->id == X86_INS_JMP)
		return false;
	for (i = 0; i < in->detail->groups_count; i++)
		if (in->detail->groups[i] == CS_GRP_JUMP)
			return true;
	return false;
}

/* The stack effect of one decoded instruction. */
static void stack_effect(csh h, const cs_insn *in, struct insn_info *ii)
{
	const cs_x86 *x = &in->detail->x86;
	cs_regs rr, rw;
	uint8_t nr = 0, nw = 0, i;
	bool writes_sp = false;

	ii->sp_effect = 0;
	ii->sp_unknown = false;
	switch (in->id) {
	case X86_INS_PUSH:
		ii->sp_effect = -8;
		return;
	case X86_INS_POP:
		ii->sp_effect = 8;
		if (x->op_count == 1 && x->operands[0].type == X86_OP_REG && x->operands[0].reg == X86_REG_RSP)
			ii->sp_unknown = true;
		return;
	case X86_INS_CALL:
	case X86_INS_JMP:
	case X86_INS_RET:
		return;  /* a call returns; the others end the straight line */
	default:
		break;
	}
	if (is_cond_jump(in))
		return;
	if (cs_regs_access(h, in, rr, &nr, rw, &nw) != CS_ERR_OK) {
		ii->sp_unknown = true;
		return;
	}
	for (i = 0; i < nw; i++)
		if (rw[i] == X86_REG_RSP || rw[i] == X86_REG_ESP || rw[i] == X86_REG_SP)
			writes_sp = true;
	if (!writes_sp)
		return;
	if ((in->id == X86_INS_ADD || in->id == X86_INS_SUB) && x->op_count == 2 &&
	    x->operands[0].type == X86_OP_REG && x->operands[0].reg == X86_REG_RSP &&
	    x->operands[1].type == X86_OP_IMM) {
		int64_t v = x->operands[1].imm;

		ii->sp_effect = (int32_t)(in->id == X86_INS_ADD ? v : -v);
		return;
	}
	if (in->id == X86_INS_LEA && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
	    x->operands[0].reg == X86_REG_RSP && x->operands[1].type == X86_OP_MEM &&
	    x->operands[1].mem.base == X86_REG_RSP && x->operands[1].mem.index == X86_REG_INVALID) {
		ii->sp_effect = (int32_t)x->operands[1].mem.disp;
		return;
	}
	ii->sp_unknown = true;
}

/* Marks the instruction at address a as a branch target, if it is one of
 * ours (binary search over the decoded list). */
static void mark_target(struct insn_info *v, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].addr == a) {
			v[mid].target = true;
			return;
		}
		if (v[mid].addr < a)
			lo = mid + 1;
		else
			hi = mid;
	}
}

static void mark_jcc_inside(struct insn_info *v, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].addr == a) {
			v[mid].jcc_inside = true;
			return;
		}
		if (v[mid].addr < a)
			lo = mid + 1;
		else
			hi = mid;
	}
}

/* The exit site for the ret at index r. A conditional jump qualifies only
 * when it leaves the function (the stack-protector check's call of
 * __stack_chk_fail): taken inside, it could go round a loop and fire
 * before the function returns. */
static struct exit_site site_for(const struct insn_info *v, size_t r, const uint8_t *code, uint64_t func,
				 size_t len, bool rets_only)
{
	struct exit_site s = { .vaddr = v[r].addr, .sp_delta = 0, .at_ret = true, .result_reg = ARG_REG_RAX };
	int64_t delta = 0;
	size_t j = r, steps;

	if (rets_only)
		return s;
	for (steps = 0; steps < WALK_MAX && j > 0; steps++) {
		const struct insn_info *p;
		size_t off;

		if (v[j].target)
			break;  /* something jumps in below this point */
		p = &v[j - 1];
		if (p->ret || p->jmp || p->sp_unknown)
			break;
		delta += p->sp_effect;
		off = (size_t)(p->addr - func);
		if (delta >= 0 && delta % 8 == 0 && delta < (1 << 19) && !p->jcc_inside &&
		    probepos__classify(code + off, len - off) == PROBE_INSN_EMULATED &&
		    probepos__probeable(code + off, len - off)) {
			s.vaddr = p->addr;
			s.sp_delta = (uint32_t)delta;
			s.at_ret = false;
			s.result_reg = result_at(v, j - 1, r);
			return s;
		}
		j--;
	}
	return s;
}

int retsites__find(const uint8_t *code, size_t len, uint64_t func, bool rets_only, struct exit_site *out,
		   size_t max)
{
	const uint8_t *p = code;
	size_t left = len, n = 0, cap = 256, i;
	uint64_t addr = func;
	struct insn_info *v;
	cs_insn *insn;
	int found = 0, err = 0;
	csh h;

	if (!code || !len || !out)
		return -EINVAL;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -ENOSYS;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(h);
	v = malloc(cap * sizeof(*v));
	if (!insn || !v) {
		err = -ENOMEM;
		goto out;
	}
	while (left > 0 && cs_disasm_iter(h, &p, &left, &addr, insn)) {
		struct insn_info *ii;

		if (n == cap) {
			struct insn_info *g = realloc(v, 2 * cap * sizeof(*v));

			if (!g) {
				err = -ENOMEM;
				goto out;
			}
			v = g;
			cap *= 2;
		}
		ii = &v[n++];
		memset(ii, 0, sizeof(*ii));
		ii->addr = insn->address;
		ii->size = insn->size;
		ii->ret = insn->id == X86_INS_RET;
		ii->jmp = insn->id == X86_INS_JMP;
		ii->call = insn->id == X86_INS_CALL;
		stack_effect(h, insn, ii);
		reg_effect(h, insn, ii);
	}
	/* Second pass, once every address is known: the targets of direct
	 * jumps and conditional jumps inside the function (a call returns to
	 * the instruction after it: no other path). */
	p = code;
	left = len;
	addr = func;
	while (left > 0 && cs_disasm_iter(h, &p, &left, &addr, insn)) {
		const cs_x86 *x = &insn->detail->x86;

		if ((insn->id == X86_INS_JMP || is_cond_jump(insn)) &&
		    x->op_count == 1 && x->operands[0].type == X86_OP_IMM) {
			uint64_t t = (uint64_t)x->operands[0].imm;

			if (t >= func && t < func + len) {
				mark_target(v, n, t);
				if (is_cond_jump(insn))
					mark_jcc_inside(v, n, insn->address);
			}
		}
	}
	for (i = 0; i < n; i++) {
		struct exit_site s;
		int k;
		bool dup = false;

		if (!v[i].ret)
			continue;
		s = site_for(v, i, code, func, len, rets_only);
		for (k = 0; k < found; k++)
			if (out[k].vaddr == s.vaddr)
				dup = true;
		if (dup)
			continue;
		if ((size_t)found >= max) {
			err = -E2BIG;
			goto out;
		}
		out[found++] = s;
	}
out:
	free(v);
	if (insn)
		cs_free(insn, 1);
	cs_close(&h);
	return err ? err : found;
}

int retsites__call_frame(const uint8_t *code, size_t len, uint64_t func, uint64_t target, uint64_t *ret_addr,
			 uint32_t *depth)
{
	const uint8_t *p = code;
	size_t left = len;
	uint64_t addr = func;
	bool after = false;
	int64_t delta = 0;
	cs_insn *insn;
	int err = -ENOENT;
	csh h;

	if (!code || !len || !ret_addr || !depth)
		return -EINVAL;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -ENOSYS;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	insn = cs_malloc(h);
	if (!insn) {
		cs_close(&h);
		return -ENOMEM;
	}
	while (left > 0 && cs_disasm_iter(h, &p, &left, &addr, insn)) {
		const cs_x86 *x = &insn->detail->x86;
		struct insn_info ii;

		if (!after) {
			if (insn->id == X86_INS_CALL && x->op_count == 1 && x->operands[0].type == X86_OP_IMM &&
			    (uint64_t)x->operands[0].imm == target) {
				*ret_addr = insn->address + insn->size;
				after = true;
			}
			continue;
		}
		if (insn->id == X86_INS_RET) {
			if (delta >= 0 && delta < (1 << 19)) {
				*depth = (uint32_t)delta;
				err = 0;
			}
			break;
		}
		memset(&ii, 0, sizeof(ii));
		stack_effect(h, insn, &ii);
		if (insn->id == X86_INS_JMP || insn->id == X86_INS_CALL || is_cond_jump(insn) || ii.sp_unknown)
			break;
		delta += ii.sp_effect;
	}
	cs_free(insn, 1);
	cs_close(&h);
	return err;
}
