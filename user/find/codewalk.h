/* codewalk.h — a symbolic walk of one x86-64 function (capstone): which
 * values its registers hold along its paths (an argument, a constant, a
 * stack address, or a field read through another value at a displacement)
 * and what the code does with them: returns, compares with a constant,
 * passes to a call, stores where, uses as a pointer. Nothing is executed.
 * user/find/layout_decode.c reads SQLite's object layouts from these facts.
 */
#ifndef SQLTRACE_CODEWALK_H
#define SQLTRACE_CODEWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_VALUES_MAX 512
#define CW_EVENTS_MAX 512

enum cw_kind { CW_UNK = 0, CW_ARG, CW_IMM, CW_FIELD, CW_STACK };

/* A symbolic value; node 0 is "unknown". */
struct cw_value {
	uint8_t kind;
	uint8_t size;      /* CW_FIELD: bytes read */
	bool indexed;      /* CW_FIELD: read with an index register (array element) */
	int16_t parent;    /* CW_FIELD: the pointer it was read through */
	int64_t x;         /* ARG: number; IMM: value; FIELD: displacement;
	                    * STACK: offset from rsp at entry */
};

enum cw_event_kind { CW_RET, CW_CALL, CW_CMP, CW_STORE, CW_BASE };

struct cw_event {
	uint8_t kind;
	uint8_t size;      /* CW_STORE: bytes written */
	int16_t a;         /* RET: rax; CALL: rdi; CMP: the value; STORE and
	                    * BASE: the pointer written or read through */
	int16_t b;         /* CALL: rsi; STORE: the value written */
	int16_t c;         /* CALL: rdx */
	int64_t x;         /* CMP: the constant; STORE: displacement;
	                    * CALL: target address (0 unknown) */
};

struct codewalk {
	struct cw_value node[CW_VALUES_MAX];
	int nnodes;
	struct cw_event ev[CW_EVENTS_MAX];
	int nev;
};

/* Walks the function at vaddr whose code is code[0..len) along every
 * path inside it (an instruction is walked again only when reached with
 * registers that say something new; bounded). A call writes rax and rdx
 * (other caller-saved registers are read after a call only by code whose
 * compiler knew the callee keeps them); a jump out of the function is a
 * tail call. Stack slots are followed (unoptimised code), forgotten when
 * a stack address reaches a callee or escapes.
 * Fills *w; every fact noted holds on some path. Returns 0, -ENOENT when
 * nothing decodes, -ENOMEM, -EINVAL when capstone cannot be opened. */
int codewalk__run(const uint8_t *code, size_t len, uint64_t vaddr, struct codewalk *w);

static inline bool cw_is(const struct codewalk *w, int16_t id, uint8_t kind)
{
	return id > 0 && w->node[id].kind == kind;
}

/* Value id is argument n (0: rdi, 1: rsi, ...) as the function got it. */
static inline bool cw_is_arg(const struct codewalk *w, int16_t id, int n)
{
	return cw_is(w, id, CW_ARG) && w->node[id].x == n;
}

#endif
