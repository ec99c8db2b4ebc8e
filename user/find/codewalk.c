/* codewalk.c — symbolic walk of an x86-64 function's registers (see
 * codewalk.h).
 *
 * DESIGN. Each register, and each of a few stack slots written, holds a
 * value node (interned in w->node; node 0 is "unknown"). The walk follows
 * the instructions from the function's start; at a branch inside the
 * function the other side is queued with a copy of the state. Each
 * instruction keeps the states it was walked with: a few different ones
 * are walked as they are (so a fact of one path is not lost because
 * another path came first), then further ones are merged (what differs
 * becomes unknown) and walked only if that changed something. So every
 * instruction is walked a bounded number of times and every fact noted
 * holds on the path that noted it. What is not modelled forgets the
 * registers it writes.
 */
#include "codewalk.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STEPS_MAX    10000   /* instructions walked per function */
#define WORK_MAX     4096    /* pending branches */
#define NREG         16
/* The walk's state: the 16 registers, then NSLOT stack slots (a store to
 * a stack address remembered as address node, value node, size: code
 * built without optimisation keeps everything there), then whether a
 * stack address escaped (stored elsewhere: a store through an unknown
 * pointer may then change a slot). */
#define NSLOT        8
#define S_SLOTS      NREG
#define S_ESCAPED    (NREG + 3 * NSLOT)
#define NSTATE       (S_ESCAPED + 1)
#define NSEEN        3       /* states an instruction is walked with before
                              * they are merged */

/* Register numbers: rax rcx rdx rbx rsp rbp rsi rdi r8..r15. */
enum { R_AX, R_CX, R_DX, R_BX, R_SP, R_BP, R_SI, R_DI, R_8, R_9, R_10, R_11 };

/* The register (0..15) capstone register r is part of, and its width in
 * bytes; -1 for others (rip, segment, vector registers). */
static int reg_no(unsigned r, int *bytes)
{
	static const struct { unsigned r; int8_t no, bytes; } map[] = {
		{ X86_REG_RAX, 0, 8 }, { X86_REG_EAX, 0, 4 }, { X86_REG_AX, 0, 2 }, { X86_REG_AL, 0, 1 },
		{ X86_REG_AH, 0, 1 }, { X86_REG_RCX, 1, 8 }, { X86_REG_ECX, 1, 4 }, { X86_REG_CX, 1, 2 },
		{ X86_REG_CL, 1, 1 }, { X86_REG_CH, 1, 1 }, { X86_REG_RDX, 2, 8 }, { X86_REG_EDX, 2, 4 },
		{ X86_REG_DX, 2, 2 }, { X86_REG_DL, 2, 1 }, { X86_REG_DH, 2, 1 }, { X86_REG_RBX, 3, 8 },
		{ X86_REG_EBX, 3, 4 }, { X86_REG_BX, 3, 2 }, { X86_REG_BL, 3, 1 }, { X86_REG_BH, 3, 1 },
		{ X86_REG_RSP, 4, 8 }, { X86_REG_ESP, 4, 4 }, { X86_REG_SP, 4, 2 }, { X86_REG_SPL, 4, 1 },
		{ X86_REG_RBP, 5, 8 }, { X86_REG_EBP, 5, 4 }, { X86_REG_BP, 5, 2 }, { X86_REG_BPL, 5, 1 },
		{ X86_REG_RSI, 6, 8 }, { X86_REG_ESI, 6, 4 }, { X86_REG_SI, 6, 2 }, { X86_REG_SIL, 6, 1 },
		{ X86_REG_RDI, 7, 8 }, { X86_REG_EDI, 7, 4 }, { X86_REG_DI, 7, 2 }, { X86_REG_DIL, 7, 1 },
		{ X86_REG_R8, 8, 8 }, { X86_REG_R8D, 8, 4 }, { X86_REG_R8W, 8, 2 }, { X86_REG_R8B, 8, 1 },
		{ X86_REG_R9, 9, 8 }, { X86_REG_R9D, 9, 4 }, { X86_REG_R9W, 9, 2 }, { X86_REG_R9B, 9, 1 },
		{ X86_REG_R10, 10, 8 }, { X86_REG_R10D, 10, 4 }, { X86_REG_R10W, 10, 2 }, { X86_REG_R10B, 10, 1 },
		{ X86_REG_R11, 11, 8 }, { X86_REG_R11D, 11, 4 }, { X86_REG_R11W, 11, 2 }, { X86_REG_R11B, 11, 1 },
		{ X86_REG_R12, 12, 8 }, { X86_REG_R12D, 12, 4 }, { X86_REG_R12W, 12, 2 }, { X86_REG_R12B, 12, 1 },
		{ X86_REG_R13, 13, 8 }, { X86_REG_R13D, 13, 4 }, { X86_REG_R13W, 13, 2 }, { X86_REG_R13B, 13, 1 },
		{ X86_REG_R14, 14, 8 }, { X86_REG_R14D, 14, 4 }, { X86_REG_R14W, 14, 2 }, { X86_REG_R14B, 14, 1 },
		{ X86_REG_R15, 15, 8 }, { X86_REG_R15D, 15, 4 }, { X86_REG_R15W, 15, 2 }, { X86_REG_R15B, 15, 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (map[i].r == r) {
			if (bytes)
				*bytes = map[i].bytes;
			return map[i].no;
		}
	}
	return -1;
}

/* The node for a value, added when new. Returns 0 (unknown) when the
 * table is full. */
static int16_t intern(struct codewalk *w, uint8_t kind, uint8_t size, bool indexed, int16_t parent, int64_t x)
{
	int i;

	if (kind == CW_UNK)
		return 0;
	for (i = 1; i < w->nnodes; i++) {
		struct cw_value *n = &w->node[i];

		if (n->kind == kind && n->size == size && n->indexed == indexed && n->parent == parent && n->x == x)
			return (int16_t)i;
	}
	if (w->nnodes >= CW_VALUES_MAX)
		return 0;
	w->node[w->nnodes] = (struct cw_value){ .kind = kind, .size = size, .indexed = indexed, .parent = parent, .x = x };
	return (int16_t)w->nnodes++;
}

static void note(struct codewalk *w, uint8_t kind, uint8_t size, int16_t a, int16_t b, int16_t c, int64_t x)
{
	int i;

	for (i = 0; i < w->nev; i++) {
		struct cw_event *e = &w->ev[i];

		if (e->kind == kind && e->size == size && e->a == a && e->b == b && e->c == c && e->x == x)
			return;
	}
	if (w->nev < CW_EVENTS_MAX)
		w->ev[w->nev++] = (struct cw_event){ .kind = kind, .size = size, .a = a, .b = b, .c = c, .x = x };
}

/* A register's value read at width bytes: the whole value at 8; at less,
 * only a constant or a field no wider than that (what the narrower read
 * sees of a wider value is not modelled). */
static int16_t read_reg(const struct codewalk *w, const int16_t *st, unsigned capreg)
{
	int bytes, no = reg_no(capreg, &bytes);
	int16_t v;

	if (no < 0)
		return 0;
	v = st[no];
	if (bytes == 8 || v == 0)
		return v;
	if (w->node[v].kind == CW_IMM || (w->node[v].kind == CW_FIELD && w->node[v].size <= bytes))
		return v;
	return 0;
}

/* The pointer a memory operand goes through: *base and *disp (a stack
 * address is folded into one node with *disp 0). Returns false when the
 * address is not one the walk knows (rip-relative, a segment, unknown
 * base, an index into the stack). */
static bool mem_base(struct codewalk *w, const int16_t *st, const x86_op_mem *m, int16_t *base, int64_t *disp,
		     bool *indexed)
{
	int no;
	int16_t b;

	if (m->segment != X86_REG_INVALID || m->base == X86_REG_INVALID || m->base == X86_REG_RIP)
		return false;
	no = reg_no(m->base, NULL);
	if (no < 0 || (b = st[no]) == 0)
		return false;
	*indexed = m->index != X86_REG_INVALID;
	if (w->node[b].kind == CW_STACK) {
		if (*indexed)
			return false;
		*base = intern(w, CW_STACK, 0, false, 0, w->node[b].x + m->disp);
		*disp = 0;
		return *base != 0;
	}
	if (w->node[b].kind != CW_ARG && w->node[b].kind != CW_FIELD)
		return false;
	*base = b;
	*disp = m->disp;
	return true;
}

static void slots_clear(int16_t *st)
{
	memset(st + S_SLOTS, 0, 3 * NSLOT * sizeof(*st));
}

/* Remembers value v (0: unknown) stored at stack address node addr, size
 * bytes, forgetting the slots it overlaps. */
static void slot_store(const struct codewalk *w, int16_t *st, int16_t addr, int size, int16_t v)
{
	int64_t x = w->node[addr].x;
	int k, k_free = -1;

	for (k = 0; k < NSLOT; k++) {
		int16_t *s = st + S_SLOTS + 3 * k;

		if (s[0] && w->node[s[0]].x < x + size && x < w->node[s[0]].x + s[2])
			s[0] = s[1] = s[2] = 0;
		if (!s[0] && k_free < 0)
			k_free = k;
	}
	if (!v)
		return;
	if (k_free < 0)
		k_free = 0;  /* all taken: the first is forgotten */
	st[S_SLOTS + 3 * k_free] = addr;
	st[S_SLOTS + 3 * k_free + 1] = v;
	st[S_SLOTS + 3 * k_free + 2] = (int16_t)size;
}

static int16_t slot_load(const int16_t *st, int16_t addr, int size)
{
	int k;

	for (k = 0; k < NSLOT; k++) {
		const int16_t *s = st + S_SLOTS + 3 * k;

		if (s[0] == addr && s[2] == size)
			return s[1];
	}
	return 0;
}

/* The value read by a memory operand of size bytes (noting its pointer). */
static int16_t load(struct codewalk *w, const int16_t *st, const cs_x86_op *op)
{
	int16_t base;
	int64_t disp;
	bool idx;

	if (!mem_base(w, st, &op->mem, &base, &disp, &idx))
		return 0;
	if (w->node[base].kind == CW_STACK)
		return slot_load(st, base, op->size);
	note(w, CW_BASE, 0, base, 0, 0, 0);
	return intern(w, CW_FIELD, op->size, idx, base, disp);
}

static void store(struct codewalk *w, int16_t *st, const cs_x86_op *op, int16_t value)
{
	int16_t base;
	int64_t disp;
	bool idx;

	if (!mem_base(w, st, &op->mem, &base, &disp, &idx)) {
		if (st[S_ESCAPED])
			slots_clear(st);  /* it may point into the frame */
		return;
	}
	if (w->node[base].kind == CW_STACK) {
		slot_store(w, st, base, op->size, value);
	} else {
		note(w, CW_BASE, 0, base, 0, 0, 0);
		if (cw_is(w, value, CW_STACK))
			st[S_ESCAPED] = 1;
	}
	if (!idx)
		note(w, CW_STORE, op->size, base, value, 0, disp);
}

static void set_reg(int16_t *st, unsigned capreg, int16_t v)
{
	int bytes, no = reg_no(capreg, &bytes);

	if (no >= 0)
		st[no] = bytes >= 4 ? v : 0;
}

/* A value written to a 32-bit register: constants and narrow fields keep
 * their meaning (zero-extended), pointers do not. */
static int16_t narrow(const struct codewalk *w, int16_t v, int bytes)
{
	if (bytes == 8 || v == 0)
		return v;
	if (w->node[v].kind == CW_FIELD && w->node[v].size <= bytes)
		return v;
	if (w->node[v].kind == CW_IMM)
		return v;
	return 0;
}

static void adjust_sp(struct codewalk *w, int16_t *st, int64_t delta)
{
	st[R_SP] = cw_is(w, st[R_SP], CW_STACK) ? intern(w, CW_STACK, 0, false, 0, w->node[st[R_SP]].x + delta) : 0;
}

/* Forgets every register the instruction writes (what is not modelled). */
static void clobber_written(csh h, const cs_insn *in, int16_t *st)
{
	cs_regs rr, rw;
	uint8_t nr = 0, nw = 0, i;

	if (cs_regs_access(h, in, rr, &nr, rw, &nw) != CS_ERR_OK) {
		memset(st, 0, NREG * sizeof(*st));
		return;
	}
	for (i = 0; i < nw; i++) {
		int no = reg_no(rw[i], NULL);

		if (no >= 0)
			st[no] = 0;
	}
}

enum flow { FLOW_NEXT, FLOW_END, FLOW_JUMP, FLOW_BRANCH };

/* Executes one instruction on st, noting events. For a jump or a branch
 * inside the function, *target is where it goes. */
static enum flow step(csh h, struct codewalk *w, const cs_insn *in, int16_t *st, uint64_t lo, uint64_t hi,
		      uint64_t *target)
{
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *o0 = x->op_count > 0 ? &x->operands[0] : NULL;
	const cs_x86_op *o1 = x->op_count > 1 ? &x->operands[1] : NULL;
	int bytes = 0, i;
	int16_t v;

	switch (in->id) {
	case X86_INS_RET:
		note(w, CW_RET, 0, st[R_AX], 0, 0, 0);
		return FLOW_END;
	case X86_INS_INT3: case X86_INS_UD2: case X86_INS_HLT:
		return FLOW_END;
	case X86_INS_CALL:
	case X86_INS_JMP: {
		uint64_t t = o0 && o0->type == X86_OP_IMM ? (uint64_t)o0->imm : 0;

		if (in->id == X86_INS_JMP && t >= lo && t < hi) {
			*target = t;
			return FLOW_JUMP;
		}
		if (o0 && o0->type == X86_OP_MEM)
			load(w, st, o0);
		note(w, CW_CALL, in->id == X86_INS_JMP, st[R_DI], st[R_SI], st[R_DX], (int64_t)t);
		if (in->id == X86_INS_JMP)
			return FLOW_END;
		/* The callee may write the frame through a stack address it
		 * gets. Of the registers only the results are written: code
		 * reads another caller-saved register after a call only when
		 * its compiler knows the callee keeps it (gcc's -fipa-ra). */
		if (st[S_ESCAPED] || cw_is(w, st[R_DI], CW_STACK) || cw_is(w, st[R_SI], CW_STACK) ||
		    cw_is(w, st[R_DX], CW_STACK) || cw_is(w, st[R_CX], CW_STACK) || cw_is(w, st[R_8], CW_STACK) ||
		    cw_is(w, st[R_9], CW_STACK))
			slots_clear(st);
		st[R_AX] = st[R_DX] = 0;
		return FLOW_NEXT;
	}
	case X86_INS_MOV: case X86_INS_MOVABS:
	case X86_INS_MOVZX: case X86_INS_MOVSX: case X86_INS_MOVSXD:
		if (!o0 || !o1)
			break;
		if (o0->type == X86_OP_MEM) {
			v = o1->type == X86_OP_IMM ? intern(w, CW_IMM, 0, false, 0, o1->imm)
			    : o1->type == X86_OP_REG ? read_reg(w, st, o1->reg) : 0;
			store(w, st, o0, v);
			return FLOW_NEXT;
		}
		if (o0->type != X86_OP_REG || reg_no(o0->reg, &bytes) < 0)
			break;
		if (o1->type == X86_OP_IMM)
			v = intern(w, CW_IMM, 0, false, 0, bytes == 4 ? (int64_t)(uint32_t)o1->imm : o1->imm);
		else if (o1->type == X86_OP_REG)
			v = read_reg(w, st, o1->reg);
		else
			v = load(w, st, o1);
		set_reg(st, o0->reg, narrow(w, v, bytes));
		return FLOW_NEXT;
	case X86_INS_LEA:
		if (!o0 || !o1 || o0->type != X86_OP_REG || o1->type != X86_OP_MEM)
			break;
		{
			int16_t base;
			int64_t disp;
			bool idx;

			v = mem_base(w, st, &o1->mem, &base, &disp, &idx) && w->node[base].kind == CW_STACK ? base : 0;
			reg_no(o0->reg, &bytes);
			set_reg(st, o0->reg, bytes == 8 ? v : 0);
		}
		return FLOW_NEXT;
	case X86_INS_XOR: case X86_INS_SUB:
		if (o0 && o1 && o0->type == X86_OP_REG && o1->type == X86_OP_REG && o0->reg == o1->reg) {
			set_reg(st, o0->reg, intern(w, CW_IMM, 0, false, 0, 0));
			return FLOW_NEXT;
		}
		if (in->id == X86_INS_SUB && o0 && o1 && o0->type == X86_OP_REG && o0->reg == X86_REG_RSP &&
		    o1->type == X86_OP_IMM) {
			adjust_sp(w, st, -o1->imm);
			return FLOW_NEXT;
		}
		break;
	case X86_INS_ADD:
		if (o0 && o1 && o0->type == X86_OP_REG && o0->reg == X86_REG_RSP && o1->type == X86_OP_IMM) {
			adjust_sp(w, st, o1->imm);
			return FLOW_NEXT;
		}
		break;
	case X86_INS_PUSH:
		v = !o0 ? 0 : o0->type == X86_OP_MEM ? load(w, st, o0) : o0->type == X86_OP_REG ? read_reg(w, st, o0->reg)
		    : o0->type == X86_OP_IMM ? intern(w, CW_IMM, 0, false, 0, o0->imm) : 0;
		adjust_sp(w, st, -8);
		if (cw_is(w, st[R_SP], CW_STACK))
			slot_store(w, st, st[R_SP], 8, v);
		return FLOW_NEXT;
	case X86_INS_POP:
		v = cw_is(w, st[R_SP], CW_STACK) ? slot_load(st, st[R_SP], 8) : 0;
		if (o0 && o0->type == X86_OP_REG)
			set_reg(st, o0->reg, v);
		adjust_sp(w, st, 8);
		if (o0 && o0->type == X86_OP_REG && reg_no(o0->reg, NULL) == R_SP)
			st[R_SP] = 0;
		return FLOW_NEXT;
	case X86_INS_CMP: case X86_INS_TEST:
		if (!o0 || !o1)
			break;
		v = o0->type == X86_OP_REG ? read_reg(w, st, o0->reg) : o0->type == X86_OP_MEM ? load(w, st, o0) : 0;
		if (o1->type == X86_OP_MEM)
			load(w, st, o1);
		if (v && o1->type == X86_OP_IMM && in->id == X86_INS_CMP)
			note(w, CW_CMP, 0, v, 0, 0, o1->imm);
		else if (v && in->id == X86_INS_TEST && o1->type == X86_OP_REG && o0->type == X86_OP_REG &&
			 o1->reg == o0->reg)
			note(w, CW_CMP, 0, v, 0, 0, 0);
		return FLOW_NEXT;
	default:
		break;
	}
	/* Branches. */
	for (i = 0; i < in->detail->groups_count; i++) {
		if (in->detail->groups[i] == X86_GRP_JUMP) {
			uint64_t t = o0 && o0->type == X86_OP_IMM ? (uint64_t)o0->imm : 0;

			if (t >= lo && t < hi) {
				*target = t;
				return FLOW_BRANCH;
			}
			note(w, CW_CALL, 1, st[R_DI], st[R_SI], st[R_DX], (int64_t)t);
			return FLOW_NEXT;
		}
	}
	/* Anything else: its memory operands are pointers used (and written),
	 * the registers it writes are forgotten. */
	for (i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type != X86_OP_MEM)
			continue;
		if (in->id == X86_INS_LEA || in->id == X86_INS_NOP)
			continue;
		load(w, st, op);
		if (i == 0 && (op->access & CS_AC_WRITE))
			store(w, st, op, 0);
	}
	clobber_written(h, in, st);
	return FLOW_NEXT;
}

static long find_insn(const cs_insn *in, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (in[mid].address == addr)
			return (long)mid;
		if (in[mid].address < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

struct pending {
	long i;
	int16_t st[NSTATE];
};

/* Walks the n instructions in (a function at [lo, hi)) from the first. */
/* Whether an instruction reached with state st needs walking (again), and
 * with what: a state not seen there before is walked as it is, up to
 * NSEEN of them; then it is merged into the last one (what differs becomes
 * unknown; escaped if either escaped), walked only if that changed it. */
static bool arrive(int16_t (*seen)[NSTATE], uint8_t *nseen, int16_t *st)
{
	int16_t *last;
	bool same = true;
	int j, k;

	for (j = 0; j < *nseen; j++)
		if (memcmp(seen[j], st, NSTATE * sizeof(*st)) == 0)
			return false;
	if (*nseen < NSEEN) {
		memcpy(seen[(*nseen)++], st, NSTATE * sizeof(*st));
		return true;
	}
	last = seen[NSEEN - 1];
	for (k = 0; k < NSTATE; k++) {
		if (st[k] == last[k])
			continue;
		if (k == S_ESCAPED) {
			same = same && last[k];
			st[k] = 1;
			continue;
		}
		st[k] = 0;
		same = same && last[k] == 0;
	}
	if (same)
		return false;
	memcpy(last, st, NSTATE * sizeof(*st));
	return true;
}

/* Walks the n instructions in (a function at [lo, hi)) from the first. */
static int walk_code(csh h, const cs_insn *in, size_t n, uint64_t lo, uint64_t hi, struct codewalk *w)
{
	int16_t (*seen)[NSEEN][NSTATE] = calloc(n, sizeof(*seen));
	uint8_t *nseen = calloc(n, sizeof(*nseen));
	struct pending *work = malloc(WORK_MAX * sizeof(*work));
	size_t nwork = 0, steps = 0;
	int err = 0;

	if (!seen || !nseen || !work) {
		err = -ENOMEM;
		goto out;
	}
	work[nwork].i = 0;
	memset(work[nwork].st, 0, sizeof(work[nwork].st));
	work[nwork].st[R_DI] = intern(w, CW_ARG, 0, false, 0, 0);
	work[nwork].st[R_SI] = intern(w, CW_ARG, 0, false, 0, 1);
	work[nwork].st[R_DX] = intern(w, CW_ARG, 0, false, 0, 2);
	work[nwork].st[R_CX] = intern(w, CW_ARG, 0, false, 0, 3);
	work[nwork].st[R_8] = intern(w, CW_ARG, 0, false, 0, 4);
	work[nwork].st[R_9] = intern(w, CW_ARG, 0, false, 0, 5);
	work[nwork].st[R_SP] = intern(w, CW_STACK, 0, false, 0, 0);
	nwork++;
	while (nwork > 0 && steps < STEPS_MAX) {
		struct pending p = work[--nwork];

		while (p.i >= 0 && (size_t)p.i < n && steps++ < STEPS_MAX) {
			uint64_t target = 0;
			enum flow f;

			if (!arrive(seen[p.i], &nseen[p.i], p.st))
				break;
			f = step(h, w, &in[p.i], p.st, lo, hi, &target);
			if (f == FLOW_END)
				break;
			if (f == FLOW_JUMP) {
				p.i = find_insn(in, n, target);
				continue;
			}
			if (f == FLOW_BRANCH) {
				long t = find_insn(in, n, target);

				if (t >= 0 && nwork < WORK_MAX) {
					work[nwork].i = t;
					memcpy(work[nwork].st, p.st, sizeof(p.st));
					nwork++;
				}
			}
			p.i++;
		}
	}
out:
	free(seen);
	free(nseen);
	free(work);
	return err;
}

int codewalk__run(const uint8_t *code, size_t len, uint64_t vaddr, struct codewalk *w)
{
	cs_insn *in = NULL;
	size_t n;
	csh h;
	int err;

	memset(w, 0, sizeof(*w));
	w->nnodes = 1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -EINVAL;
	if (cs_option(h, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
		cs_close(&h);
		return -EINVAL;
	}
	n = len ? cs_disasm(h, code, len, vaddr, 0, &in) : 0;
	err = n ? walk_code(h, in, n, vaddr, vaddr + len, w) : -ENOENT;
	if (in)
		cs_free(in, n);
	cs_close(&h);
	return err;
}
