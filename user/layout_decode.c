/* layout_decode.c — offsets of SQLite's objects decoded from a copy's own
 * accessor functions (see layout_decode.h).
 *
 * DESIGN. Each function is decoded with capstone and walked along its
 * paths (every branch inside the function, each instruction re-walked only
 * when it is reached with registers that say something new), keeping for
 * each register a symbolic value: an argument, a constant, a stack address,
 * or a field read from another value at a displacement (so
 * "mov 0x1a0(%rbx),%rdi" with rbx holding the first argument gives
 * field(arg0, 0x1a0, 8 bytes)). The walk notes what the code does with
 * those values: what it returns, compares with a constant, passes to a
 * call, stores where, and uses as a pointer. Each rule below looks for one
 * pattern in one function and takes an offset only when exactly one
 * candidate fits. Nothing is executed; a walk that meets what it does not
 * model forgets the registers involved, so unknown code can only make a
 * rule find nothing, never something else.
 *
 * The rules and the SQLite source each relies on (3.38 to 3.53; the
 * struct layouts differ between versions and builds, the code below does
 * not):
 *  - sqlite3_sql: `return p->zSql` (vdbeapi.c) → Vdbe.zSql.
 *  - sqlite3_db_handle: `return ((Vdbe*)pStmt)->db` → Vdbe.db.
 *  - sqlite3_db_mutex: `return db->mutex` (main.c): the one pointer
 *    sqlite3_errmsg passes to a call besides db->pErr.
 *  - sqlite3_errmsg: `sqlite3_value_text(db->pErr)` (main.c) → sqlite3.pErr:
 *    the pointer field of db passed to a call or dereferenced, other than
 *    db->mutex.
 *  - sqlite3_value_text / sqlite3ValueText: `return pVal->z` on the fast
 *    path (vdbemem.c) → sqlite3_value.z.
 *  - sqlite3_stmt_busy (3.38+): `v->eVdbeState==VDBE_RUN_STATE`: the byte
 *    compared and the constant → Vdbe.eVdbeState and its running value.
 *    Its ready and halted values are not in that code: vdbeInt.h defines
 *    VDBE_INIT_STATE 0, VDBE_READY_STATE 1, VDBE_RUN_STATE 2,
 *    VDBE_HALT_STATE 3 since 3.38.0 (when eVdbeState replaced
 *    Vdbe.magic), taken when sqlite3_libversion_number returns 3038000 or
 *    more and the decoded running value is 2.
 *  - sqlite3VdbeTransferError: `int rc = p->rc; ... return rc` → Vdbe.rc
 *    (the 4-byte field returned), `if( p->zErrMsg ) ...
 *    sqlite3ValueSetStr(db->pErr, -1, p->zErrMsg, ...)` → Vdbe.zErrMsg
 *    (the pointer field tested against 0 and passed to a call).
 *    sqlite3VdbeResetStepResult (`p->rc = SQLITE_OK`), where present,
 *    must agree.
 *  - sqlite3.pParse: sqlite3ParseObjectInit(pParse, db) (3.38+, prepare.c)
 *    stores `db->pParse = pParse` and `pParse->db = db`; sqlite3Prepare
 *    (where that is inlined) stores the address of its stack Parse in a
 *    field of db and db at that address; sqlite3ErrorToParser writes
 *    through `db->pParse`. Whichever of them the copy has must agree.
 *  - the file name: sqlite3_db_filename returns, when fully inlined,
 *    db->aDb[i].pBt->pBt->pPager->zFilename (Db.pBt at 8, Btree.pBt at 8,
 *    BtShared.pPager at 0, the offsets the BPF side follows, are checked
 *    too); else sqlite3DbNameToBtree (`db->aDb[iDb].pBt`),
 *    sqlite3BtreeGetFilename (`p->pBt->pPager`) and sqlite3PagerFilename
 *    (`pPager->zFilename`) together.
 */
#include "layout_decode.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfsym.h"

#define CODE_MAX     16384   /* bytes of one function decoded at most */
#define CODE_NOSIZE  4096    /* bytes read for a symbol without a size */
#define NODES_MAX    512
#define EVENTS_MAX   512
#define STEPS_MAX    10000   /* instructions walked per function */
#define WORK_MAX     4096    /* pending branches */
#define NREG         16
#define FIELD_MAX    65536   /* a struct field's offset is below this */

enum vkind { V_UNK = 0, V_ARG, V_IMM, V_FIELD, V_STACK };

/* A symbolic value; node 0 is "unknown". */
struct vnode {
	uint8_t kind;
	uint8_t size;      /* V_FIELD: bytes read */
	bool indexed;      /* V_FIELD: read with an index register (array element) */
	int16_t parent;    /* V_FIELD: the pointer it was read through */
	int64_t x;         /* ARG: number; IMM: value; FIELD: displacement;
	                    * STACK: offset from rsp at entry */
};

enum ev_kind { EV_RET, EV_CALL, EV_CMP, EV_STORE, EV_BASE };

struct event {
	uint8_t kind;
	uint8_t size;      /* EV_STORE: bytes written */
	int16_t a;         /* RET: rax; CALL: rdi; CMP: the value; STORE and
	                    * BASE: the pointer written or read through */
	int16_t b;         /* CALL: rsi; STORE: the value written */
	int16_t c;         /* CALL: rdx */
	int64_t x;         /* CMP: the constant; STORE: displacement;
	                    * CALL: target address (0 unknown) */
};

struct walk {
	struct vnode node[NODES_MAX];
	int nnodes;
	struct event ev[EVENTS_MAX];
	int nev;
};

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
static int16_t intern(struct walk *w, uint8_t kind, uint8_t size, bool indexed, int16_t parent, int64_t x)
{
	int i;

	if (kind == V_UNK)
		return 0;
	for (i = 1; i < w->nnodes; i++) {
		struct vnode *n = &w->node[i];

		if (n->kind == kind && n->size == size && n->indexed == indexed && n->parent == parent && n->x == x)
			return (int16_t)i;
	}
	if (w->nnodes >= NODES_MAX)
		return 0;
	w->node[w->nnodes] = (struct vnode){ .kind = kind, .size = size, .indexed = indexed, .parent = parent, .x = x };
	return (int16_t)w->nnodes++;
}

static void note(struct walk *w, uint8_t kind, uint8_t size, int16_t a, int16_t b, int16_t c, int64_t x)
{
	int i;

	for (i = 0; i < w->nev; i++) {
		struct event *e = &w->ev[i];

		if (e->kind == kind && e->size == size && e->a == a && e->b == b && e->c == c && e->x == x)
			return;
	}
	if (w->nev < EVENTS_MAX)
		w->ev[w->nev++] = (struct event){ .kind = kind, .size = size, .a = a, .b = b, .c = c, .x = x };
}

static bool is_kind(const struct walk *w, int16_t id, uint8_t kind)
{
	return id > 0 && w->node[id].kind == kind;
}

static bool is_arg(const struct walk *w, int16_t id, int n)
{
	return is_kind(w, id, V_ARG) && w->node[id].x == n;
}

/* A register's value read at width bytes: the whole value at 8; at less,
 * only a constant or a field no wider than that (what the narrower read
 * sees of a wider value is not modelled). */
static int16_t read_reg(const struct walk *w, const int16_t *st, unsigned capreg)
{
	int bytes, no = reg_no(capreg, &bytes);
	int16_t v;

	if (no < 0)
		return 0;
	v = st[no];
	if (bytes == 8 || v == 0)
		return v;
	if (w->node[v].kind == V_IMM || (w->node[v].kind == V_FIELD && w->node[v].size <= bytes))
		return v;
	return 0;
}

/* The pointer a memory operand goes through: *base and *disp (a stack
 * address is folded into one node with *disp 0). Returns false when the
 * address is not one the walk knows (rip-relative, a segment, unknown
 * base, an index into the stack). */
static bool mem_base(struct walk *w, const int16_t *st, const x86_op_mem *m, int16_t *base, int64_t *disp,
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
	if (w->node[b].kind == V_STACK) {
		if (*indexed)
			return false;
		*base = intern(w, V_STACK, 0, false, 0, w->node[b].x + m->disp);
		*disp = 0;
		return *base != 0;
	}
	if (w->node[b].kind != V_ARG && w->node[b].kind != V_FIELD)
		return false;
	*base = b;
	*disp = m->disp;
	return true;
}

/* The value read by a memory operand of size bytes (noting its pointer). */
static int16_t load(struct walk *w, const int16_t *st, const cs_x86_op *op)
{
	int16_t base;
	int64_t disp;
	bool idx;

	if (!mem_base(w, st, &op->mem, &base, &disp, &idx) || w->node[base].kind == V_STACK)
		return 0;
	note(w, EV_BASE, 0, base, 0, 0, 0);
	return intern(w, V_FIELD, op->size, idx, base, disp);
}

static void store(struct walk *w, const int16_t *st, const cs_x86_op *op, int16_t value)
{
	int16_t base;
	int64_t disp;
	bool idx;

	if (!mem_base(w, st, &op->mem, &base, &disp, &idx))
		return;
	if (w->node[base].kind != V_STACK)
		note(w, EV_BASE, 0, base, 0, 0, 0);
	if (!idx)
		note(w, EV_STORE, op->size, base, value, 0, disp);
}

static void set_reg(int16_t *st, unsigned capreg, int16_t v)
{
	int bytes, no = reg_no(capreg, &bytes);

	if (no >= 0)
		st[no] = bytes >= 4 ? v : 0;
}

/* A value written to a 32-bit register: constants and narrow fields keep
 * their meaning (zero-extended), pointers do not. */
static int16_t narrow(const struct walk *w, int16_t v, int bytes)
{
	if (bytes == 8 || v == 0)
		return v;
	if (w->node[v].kind == V_FIELD && w->node[v].size <= bytes)
		return v;
	if (w->node[v].kind == V_IMM)
		return v;
	return 0;
}

static void adjust_sp(struct walk *w, int16_t *st, int64_t delta)
{
	st[R_SP] = is_kind(w, st[R_SP], V_STACK) ? intern(w, V_STACK, 0, false, 0, w->node[st[R_SP]].x + delta) : 0;
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
static enum flow step(csh h, struct walk *w, const cs_insn *in, int16_t *st, uint64_t lo, uint64_t hi,
		      uint64_t *target)
{
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *o0 = x->op_count > 0 ? &x->operands[0] : NULL;
	const cs_x86_op *o1 = x->op_count > 1 ? &x->operands[1] : NULL;
	int bytes = 0, i;
	int16_t v;

	switch (in->id) {
	case X86_INS_RET:
		note(w, EV_RET, 0, st[R_AX], 0, 0, 0);
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
		note(w, EV_CALL, in->id == X86_INS_JMP, st[R_DI], st[R_SI], st[R_DX], (int64_t)t);
		if (in->id == X86_INS_JMP)
			return FLOW_END;
		st[R_AX] = st[R_CX] = st[R_DX] = st[R_SI] = st[R_DI] = 0;
		st[R_8] = st[R_9] = st[R_10] = st[R_11] = 0;
		return FLOW_NEXT;
	}
	case X86_INS_MOV: case X86_INS_MOVABS:
	case X86_INS_MOVZX: case X86_INS_MOVSX: case X86_INS_MOVSXD:
		if (!o0 || !o1)
			break;
		if (o0->type == X86_OP_MEM) {
			v = o1->type == X86_OP_IMM ? intern(w, V_IMM, 0, false, 0, o1->imm)
			    : o1->type == X86_OP_REG ? read_reg(w, st, o1->reg) : 0;
			store(w, st, o0, v);
			return FLOW_NEXT;
		}
		if (o0->type != X86_OP_REG || reg_no(o0->reg, &bytes) < 0)
			break;
		if (o1->type == X86_OP_IMM)
			v = intern(w, V_IMM, 0, false, 0, bytes == 4 ? (int64_t)(uint32_t)o1->imm : o1->imm);
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

			v = mem_base(w, st, &o1->mem, &base, &disp, &idx) && w->node[base].kind == V_STACK ? base : 0;
			reg_no(o0->reg, &bytes);
			set_reg(st, o0->reg, bytes == 8 ? v : 0);
		}
		return FLOW_NEXT;
	case X86_INS_XOR: case X86_INS_SUB:
		if (o0 && o1 && o0->type == X86_OP_REG && o1->type == X86_OP_REG && o0->reg == o1->reg) {
			set_reg(st, o0->reg, intern(w, V_IMM, 0, false, 0, 0));
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
		if (o0 && o0->type == X86_OP_MEM)
			load(w, st, o0);
		adjust_sp(w, st, -8);
		return FLOW_NEXT;
	case X86_INS_POP:
		if (o0 && o0->type == X86_OP_REG)
			set_reg(st, o0->reg, 0);
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
			note(w, EV_CMP, 0, v, 0, 0, o1->imm);
		else if (v && in->id == X86_INS_TEST && o1->type == X86_OP_REG && o0->type == X86_OP_REG &&
			 o1->reg == o0->reg)
			note(w, EV_CMP, 0, v, 0, 0, 0);
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
			note(w, EV_CALL, 1, st[R_DI], st[R_SI], st[R_DX], (int64_t)t);
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
	int16_t st[NREG];
};

/* Walks the n instructions in (a function at [lo, hi)) from the first. */
static int walk_code(csh h, const cs_insn *in, size_t n, uint64_t lo, uint64_t hi, struct walk *w)
{
	int16_t (*seen)[NREG] = calloc(n, sizeof(*seen));
	bool *visited = calloc(n, sizeof(*visited));
	struct pending *work = malloc(WORK_MAX * sizeof(*work));
	size_t nwork = 0, steps = 0;
	int err = 0;

	if (!seen || !visited || !work) {
		err = -ENOMEM;
		goto out;
	}
	work[nwork].i = 0;
	memset(work[nwork].st, 0, sizeof(work[nwork].st));
	work[nwork].st[R_DI] = intern(w, V_ARG, 0, false, 0, 0);
	work[nwork].st[R_SI] = intern(w, V_ARG, 0, false, 0, 1);
	work[nwork].st[R_DX] = intern(w, V_ARG, 0, false, 0, 2);
	work[nwork].st[R_CX] = intern(w, V_ARG, 0, false, 0, 3);
	work[nwork].st[R_8] = intern(w, V_ARG, 0, false, 0, 4);
	work[nwork].st[R_9] = intern(w, V_ARG, 0, false, 0, 5);
	work[nwork].st[R_SP] = intern(w, V_STACK, 0, false, 0, 0);
	nwork++;
	while (nwork > 0 && steps < STEPS_MAX) {
		struct pending p = work[--nwork];

		while (p.i >= 0 && (size_t)p.i < n && steps++ < STEPS_MAX) {
			uint64_t target = 0;
			enum flow f;
			int k;

			if (visited[p.i]) {
				bool same = true;

				for (k = 0; k < NREG; k++) {
					if (p.st[k] != seen[p.i][k]) {
						p.st[k] = 0;
						same = same && seen[p.i][k] == 0;
					}
				}
				if (same)
					break;
			}
			visited[p.i] = true;
			memcpy(seen[p.i], p.st, sizeof(p.st));
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
	free(visited);
	free(work);
	return err;
}

/* ---- rules ------------------------------------------------------------ */

struct ctx {
	layout_fetch_fn fetch;
	void *fctx;
	csh h;
};

/* Decodes and walks function name. Returns the walk (free() it) or NULL
 * when the copy does not have it or it cannot be decoded. */
static struct walk *walk_function(struct ctx *c, const char *name)
{
	uint8_t *code = NULL;
	size_t len = 0, n;
	uint64_t vaddr = 0;
	cs_insn *in = NULL;
	struct walk *w;

	if (c->fetch(c->fctx, name, &code, &len, &vaddr) != 0)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w) {
		free(code);
		return NULL;
	}
	w->nnodes = 1;
	n = len ? cs_disasm(c->h, code, len, vaddr, 0, &in) : 0;
	if (n == 0 || walk_code(c->h, in, n, vaddr, vaddr + len, w) != 0) {
		free(w);
		w = NULL;
	}
	if (in)
		cs_free(in, n);
	free(code);
	return w;
}

static bool plausible_off(int64_t x)
{
	return x >= 0 && x < FIELD_MAX;
}

static bool is_field(const struct walk *w, int16_t id, int16_t parent, int size)
{
	return is_kind(w, id, V_FIELD) && w->node[id].parent == parent && !w->node[id].indexed &&
	       (size == 0 || w->node[id].size == size) && plausible_off(w->node[id].x);
}

/* The displacement of the one field of the first argument, size bytes
 * wide, that the function returns; -1 when none or several. */
static int ret_field(const struct walk *w, int size)
{
	int i, found = -1;
	int16_t arg0 = 0;

	for (i = 1; i < w->nnodes; i++)
		if (w->node[i].kind == V_ARG && w->node[i].x == 0)
			arg0 = (int16_t)i;
	for (i = 0; i < w->nev; i++) {
		const struct event *e = &w->ev[i];

		if (e->kind != EV_RET || !is_field(w, e->a, arg0, size))
			continue;
		if (found >= 0 && found != w->node[e->a].x)
			return -1;
		found = (int)w->node[e->a].x;
	}
	return found;
}

static int16_t arg_node(const struct walk *w, int n)
{
	int i;

	for (i = 1; i < w->nnodes; i++)
		if (is_arg(w, (int16_t)i, n))
			return (int16_t)i;
	return -1;
}

/* Keeps one candidate value: returns false once two differ. */
static bool one(int *have, int v)
{
	if (*have >= 0 && *have != v) {
		*have = -2;
		return false;
	}
	if (*have != -2)
		*have = v;
	return true;
}

static bool field_used(const struct walk *w, int16_t id, bool as_call_arg, bool as_base, bool as_cmp0)
{
	int i;

	for (i = 0; i < w->nev; i++) {
		const struct event *e = &w->ev[i];

		if (as_call_arg && e->kind == EV_CALL && (e->a == id || e->b == id || e->c == id))
			return true;
		if (as_base && e->kind == EV_BASE && e->a == id)
			return true;
		if (as_cmp0 && e->kind == EV_CMP && e->a == id && e->x == 0)
			return true;
	}
	return false;
}

static void say(char *buf, size_t cap, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 2 >= cap)
		return;
	if (used)
		buf[used++] = ' ', buf[used] = '\0';
	va_start(ap, fmt);
	vsnprintf(buf + used, cap - used, fmt, ap);
	va_end(ap);
}

#define FOUND(o, ...) say((o)->found, sizeof((o)->found), __VA_ARGS__)
#define MISSING(o, ...) say((o)->missing, sizeof((o)->missing), __VA_ARGS__)

/* Agreement of two sources of one offset: a (already known, -1 none)
 * and b (-1 none). Returns the offset, -1 none, -2 disagreement. */
static int agree(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0 || a == b)
		return a;
	return -2;
}

static int simple_ret(struct ctx *c, const char *fn, int size)
{
	struct walk *w = walk_function(c, fn);
	int v = w ? ret_field(w, size) : -1;

	free(w);
	return v;
}

static int decode_version(struct ctx *c)
{
	struct walk *w = walk_function(c, "sqlite3_libversion_number");
	int i, v = 0;

	for (i = 0; w && i < w->nev; i++) {
		const struct event *e = &w->ev[i];

		if (e->kind == EV_RET && is_kind(w, e->a, V_IMM) && w->node[e->a].x > 3000000 &&
		    w->node[e->a].x < 4000000) {
			if (v && v != w->node[e->a].x) {
				v = 0;
				break;
			}
			v = (int)w->node[e->a].x;
		}
	}
	free(w);
	return v;
}

/* sqlite3_stmt_busy: the byte of the statement compared with a constant. */
static void decode_state(struct ctx *c, struct layout_decoded *o)
{
	struct walk *w = walk_function(c, "sqlite3_stmt_busy");
	int i, off = -1, run = -1;
	int16_t arg0;

	if (!w) {
		MISSING(o, "state (no sqlite3_stmt_busy)");
		return;
	}
	arg0 = arg_node(w, 0);
	for (i = 0; i < w->nev; i++) {
		const struct event *e = &w->ev[i];

		if (e->kind != EV_CMP || !is_field(w, e->a, arg0, 1))
			continue;
		if (!one(&off, (int)w->node[e->a].x) || !one(&run, (int)(e->x & 0xff)))
			break;
	}
	free(w);
	if (off < 0 || run < 0) {
		MISSING(o, "state (sqlite3_stmt_busy compares no single byte)");
		return;
	}
	/* vdbeInt.h, 3.38.0 and later: INIT 0, READY 1, RUN 2, HALT 3. */
	if (o->version < 3038000 || run != 2) {
		MISSING(o, "state (version %d: its state values are not known)", o->version);
		return;
	}
	o->cfg.vdbe_state_off = off;
	o->cfg.state_ready = 1;
	o->cfg.state_run = (unsigned char)run;
	o->cfg.state_halt = 3;
	FOUND(o, "state=%d(%d/%d/%d)", off, 1, run, 3);
	o->nfound++;
}

/* sqlite3_errmsg: the pointer field of db passed on or dereferenced,
 * other than db->mutex. */
static void decode_perr(struct ctx *c, struct layout_decoded *o)
{
	int mutex = simple_ret(c, "sqlite3_db_mutex", 8), off = -1, i;
	struct walk *w;
	int16_t arg0;

	if (mutex < 0) {
		MISSING(o, "pErr (no sqlite3_db_mutex to tell the mutex apart)");
		return;
	}
	w = walk_function(c, "sqlite3_errmsg");
	if (!w) {
		MISSING(o, "pErr (no sqlite3_errmsg)");
		return;
	}
	arg0 = arg_node(w, 0);
	for (i = 1; i < w->nnodes; i++) {
		if (!is_field(w, (int16_t)i, arg0, 8) || w->node[i].x == mutex)
			continue;
		if (field_used(w, (int16_t)i, true, true, false) && !one(&off, (int)w->node[i].x))
			break;
	}
	free(w);
	if (off < 0) {
		MISSING(o, "pErr (sqlite3_errmsg: %s)", off == -1 ? "no candidate" : "several candidates");
		return;
	}
	o->cfg.db_perr_off = off;
	FOUND(o, "pErr=%d", off);
	o->nfound++;
}

static void decode_memz(struct ctx *c, struct layout_decoded *o)
{
	int a = simple_ret(c, "sqlite3_value_text", 8), b = simple_ret(c, "sqlite3ValueText", 8);
	int v = agree(a, b);

	if (v < 0) {
		MISSING(o, "Mem.z (%s)", v == -2 ? "sqlite3_value_text and sqlite3ValueText disagree"
					 : "no readable sqlite3_value_text/sqlite3ValueText");
		return;
	}
	o->cfg.mem_z_off = v;
	FOUND(o, "Mem.z=%d", v);
	o->nfound++;
}

/* sqlite3VdbeTransferError: rc (returned) and zErrMsg (tested and passed
 * on); sqlite3VdbeResetStepResult: rc (zeroed). */
static void decode_halt(struct ctx *c, struct layout_decoded *o)
{
	struct walk *w = walk_function(c, "sqlite3VdbeTransferError");
	int rc = -1, msg = -1, reset = -1, i;
	int16_t arg0;

	if (w) {
		rc = ret_field(w, 4);
		arg0 = arg_node(w, 0);
		for (i = 1; i < w->nnodes; i++) {
			if (!is_field(w, (int16_t)i, arg0, 8) || w->node[i].x == o->cfg.vdbe_db_off)
				continue;
			if (field_used(w, (int16_t)i, false, false, true) && field_used(w, (int16_t)i, true, false, false) &&
			    !one(&msg, (int)w->node[i].x))
				break;
		}
		free(w);
	}
	w = walk_function(c, "sqlite3VdbeResetStepResult");
	if (w) {
		arg0 = arg_node(w, 0);
		for (i = 0; i < w->nev; i++) {
			const struct event *e = &w->ev[i];

			if (e->kind == EV_STORE && e->a == arg0 && e->size == 4 && plausible_off(e->x) &&
			    is_kind(w, e->b, V_IMM) &&
			    w->node[e->b].x == 0 && !one(&reset, (int)e->x))
				break;
		}
		free(w);
	}
	rc = agree(rc, reset);
	if (rc >= 0 && o->cfg.vdbe_db_off >= 0) {
		o->cfg.vdbe_rc_off = rc;
		FOUND(o, "rc=%d", rc);
		o->nfound++;
	} else {
		MISSING(o, "rc (%s)", rc == -2 ? "sources disagree" : "no sqlite3VdbeTransferError pattern");
	}
	if (msg >= 0 && o->cfg.vdbe_db_off >= 0) {
		o->cfg.vdbe_zerrmsg_off = msg;
		FOUND(o, "zErrMsg=%d", msg);
		o->nfound++;
	} else {
		MISSING(o, "zErrMsg (%s)", msg == -2 ? "several candidates" : "no sqlite3VdbeTransferError pattern");
	}
}

/* A store of ptr into a field of db, and of db at ptr+0 (Parse.db): the
 * field's offset, -1 none, -2 several. */
static int parse_link(const struct walk *w, int16_t db, bool ptr_is_stack, int16_t ptr_arg)
{
	int i, j, off = -1;

	for (i = 0; i < w->nev; i++) {
		const struct event *e = &w->ev[i];
		bool back = false;

		if (e->kind != EV_STORE || e->a != db || e->size != 8 || e->b <= 0 || !plausible_off(e->x))
			continue;
		if (ptr_is_stack ? !is_kind(w, e->b, V_STACK) : e->b != ptr_arg)
			continue;
		for (j = 0; j < w->nev; j++) {
			const struct event *f = &w->ev[j];

			if (f->kind == EV_STORE && f->a == e->b && f->x == 0 && f->size == 8 && f->b == db)
				back = true;
		}
		if (back && !one(&off, (int)e->x))
			break;
	}
	return off;
}

static void decode_pparse(struct ctx *c, struct layout_decoded *o)
{
	struct walk *w;
	int v = -1, a = -1, i;

	if ((w = walk_function(c, "sqlite3ParseObjectInit"))) {
		a = parse_link(w, arg_node(w, 1), false, arg_node(w, 0));
		v = agree(v, a);
		free(w);
	}
	if (v != -2 && (w = walk_function(c, "sqlite3Prepare"))) {
		a = parse_link(w, arg_node(w, 0), true, 0);
		v = agree(v, a);
		free(w);
	}
	if (v != -2 && (w = walk_function(c, "sqlite3ErrorToParser"))) {
		int16_t arg0 = arg_node(w, 0);

		a = -1;
		for (i = 0; i < w->nev; i++) {
			const struct event *e = &w->ev[i];

			if (e->kind == EV_STORE && is_field(w, e->a, arg0, 8) && !one(&a, (int)w->node[e->a].x))
				break;
		}
		v = agree(v, a);
		free(w);
	}
	if (v < 0) {
		MISSING(o, "pParse (%s)", v == -2 ? "sources disagree" : "no sqlite3ParseObjectInit/sqlite3Prepare/"
									"sqlite3ErrorToParser pattern");
		return;
	}
	o->cfg.db_pparse_off = v;
	FOUND(o, "pParse=%d", v);
	o->nfound++;
}

/* The chain node = F(F(...)) from the innermost: returns the parent node
 * of id when id is a field at disp (any disp when disp < 0, stored in
 * *got) of size 8 with the given indexing, else -1. */
static int16_t unfield(const struct walk *w, int16_t id, long disp, bool indexed, long *got)
{
	if (!is_kind(w, id, V_FIELD) || w->node[id].size != 8 || w->node[id].indexed != indexed ||
	    !plausible_off(w->node[id].x))
		return -1;
	if (disp >= 0 && w->node[id].x != disp)
		return -1;
	if (got)
		*got = (long)w->node[id].x;
	return w->node[id].parent;
}

static void decode_dbfile(struct ctx *c, struct layout_decoded *o)
{
	struct walk *w;
	int adb = -1, zf = -1, i;
	long a, z;
	bool chain = false;

	/* Fully inlined: db->aDb[i].pBt->pBt->pPager->zFilename returned. */
	if ((w = walk_function(c, "sqlite3_db_filename"))) {
		int16_t arg0 = arg_node(w, 0);

		for (i = 0; i < w->nev; i++) {
			const struct event *e = &w->ev[i];
			int16_t p;

			if (e->kind != EV_RET)
				continue;
			p = unfield(w, e->a, -1, false, &z);         /* Pager.zFilename */
			p = p > 0 ? unfield(w, p, 0, false, NULL) : -1;   /* BtShared.pPager */
			p = p > 0 ? unfield(w, p, 8, false, NULL) : -1;   /* Btree.pBt */
			p = p > 0 ? unfield(w, p, 8, true, NULL) : -1;    /* aDb[i].pBt */
			p = p > 0 ? unfield(w, p, -1, false, &a) : -1;    /* db->aDb */
			if (p > 0 && p == arg0 && one(&adb, (int)a) && one(&zf, (int)z))
				chain = true;
		}
		free(w);
	}
	if (!chain) {
		bool bt = false;

		adb = zf = -1;
		if ((w = walk_function(c, "sqlite3DbNameToBtree"))) {
			int16_t arg0 = arg_node(w, 0);

			for (i = 0; i < w->nev; i++) {
				const struct event *e = &w->ev[i];
				int16_t p;

				if (e->kind != EV_RET)
					continue;
				p = unfield(w, e->a, 8, true, NULL);
				p = p > 0 ? unfield(w, p, -1, false, &a) : -1;
				if (p > 0 && p == arg0)
					one(&adb, (int)a);
			}
			free(w);
		}
		if ((w = walk_function(c, "sqlite3BtreeGetFilename"))) {
			int16_t arg0 = arg_node(w, 0);

			for (i = 0; i < w->nev; i++) {
				const struct event *e = &w->ev[i];
				int16_t p = e->kind == EV_CALL ? unfield(w, e->a, 0, false, NULL) : -1;

				p = p > 0 ? unfield(w, p, 8, false, NULL) : -1;
				if (p > 0 && p == arg0)
					bt = true;
			}
			free(w);
		}
		zf = simple_ret(c, "sqlite3PagerFilename", 8);
		if (!bt)
			adb = -1;
	}
	if (adb < 0 || zf < 0) {
		MISSING(o, "file name (no sqlite3_db_filename chain, nor sqlite3DbNameToBtree, "
			   "sqlite3BtreeGetFilename and sqlite3PagerFilename)");
		return;
	}
	o->cfg.db_adb_off = adb;
	o->cfg.pager_zfile_off = zf;
	FOUND(o, "aDb=%d Pager.zFilename=%d", adb, zf);
	o->nfound += 2;
}

int layout_decode__run(layout_fetch_fn fetch, void *fctx, struct layout_decoded *o)
{
	struct ctx c = { .fetch = fetch, .fctx = fctx };
	int v;

	memset(o, 0, sizeof(*o));
	o->cfg.vdbe_db_off = o->cfg.vdbe_zsql_off = o->cfg.db_perr_off = o->cfg.mem_z_off = -1;
	o->cfg.vdbe_rc_off = o->cfg.vdbe_zerrmsg_off = o->cfg.vdbe_state_off = -1;
	o->cfg.db_pparse_off = o->cfg.db_adb_off = o->cfg.pager_zfile_off = -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &c.h) != CS_ERR_OK)
		return -EINVAL;
	if (cs_option(c.h, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
		cs_close(&c.h);
		return -EINVAL;
	}
	o->version = decode_version(&c);
	if ((v = simple_ret(&c, "sqlite3_sql", 8)) >= 0) {
		o->cfg.vdbe_zsql_off = v;
		FOUND(o, "zSql=%d", v);
		o->nfound++;
	} else {
		MISSING(o, "zSql (sqlite3_sql)");
	}
	if ((v = simple_ret(&c, "sqlite3_db_handle", 8)) >= 0) {
		o->cfg.vdbe_db_off = v;
		FOUND(o, "db=%d", v);
		o->nfound++;
	} else {
		MISSING(o, "db (sqlite3_db_handle)");
	}
	decode_perr(&c, o);
	decode_memz(&c, o);
	decode_state(&c, o);
	decode_halt(&c, o);
	decode_pparse(&c, o);
	decode_dbfile(&c, o);
	cs_close(&c.h);
	return o->nfound;
}

/* ---- from an ELF file ------------------------------------------------- */

struct elf_src {
	struct elf_file *sym, *ef;
};

static int elf_fetch(void *ctx, const char *name, uint8_t **code, size_t *len, uint64_t *vaddr)
{
	struct elf_src *s = ctx;
	uint64_t size;
	ssize_t n;
	int err = elf_file__find_func(s->sym, name, vaddr, &size);

	if (err)
		return err;
	if (size == 0)
		size = CODE_NOSIZE;
	if (size > CODE_MAX)
		return -E2BIG;
	*code = malloc(size);
	if (!*code)
		return -ENOMEM;
	n = elf_file__read_vaddr(s->ef, *vaddr, *code, size);
	if (n <= 0) {
		free(*code);
		*code = NULL;
		return n < 0 ? (int)n : -ENOENT;
	}
	*len = (size_t)n;
	return 0;
}

int layout_decode__elf(struct elf_file *sym, struct elf_file *ef, struct layout_decoded *out)
{
	struct elf_src s = { .sym = sym, .ef = ef };

	return layout_decode__run(elf_fetch, &s, out);
}
