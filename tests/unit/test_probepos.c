/* test_probepos.c — unit tests for user/probepos: hand-written prologues
 * (x86-64 machine code with its AT&T disassembly beside each byte group) and
 * the real functions of Debian's libsqlite3 read through user/elfsym.
 *
 * SQLTRACE_TEST_VERBOSE=1 prints the first instructions of each libsqlite3
 * function with the chosen position (the listing in docs/probe-placement.md).
 */
#include "harness.h"
#include "elfsym.h"
#include "finder.h"
#include "probepos.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#define LOST ARG_LOST
#define R(x) ARG_REG_##x

static const char *lib_path = "/lib/x86_64-linux-gnu/libsqlite3.so.0";
static bool verbose;

/* Checks a probe_pos against expectations. */
static bool expect_pos(const struct probe_pos *p, uint64_t func, uint32_t delta,
		       enum probe_insn_kind kind, int32_t sp, const int8_t args[6])
{
	ASSERT_EQ_INT(p->delta, delta);
	ASSERT_EQ_INT(p->vaddr, func + delta);
	ASSERT_EQ_INT(p->kind, kind);
	ASSERT_EQ_INT(p->sp_delta, sp);
	for (int i = 0; i < 6; i++) {
		if (p->arg_reg[i] != args[i])
			printf("    arg%d in %s, expected %s\n", i,
			       probepos__reg_name(p->arg_reg[i]), probepos__reg_name(args[i]));
		ASSERT_EQ_INT(p->arg_reg[i], args[i]);
	}
	return true;
}

static const int8_t ARGS_INTACT[6] = { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) };

#define FUNC 0x401000ULL

/* ---- classification ------------------------------------------------------ */

static bool test_classify(void)
{
	static const struct { uint8_t b[12]; size_t n; enum probe_insn_kind k; } c[] = {
		{ { 0x55 }, 1, PROBE_INSN_EMULATED },                    /* push %rbp */
		{ { 0x41, 0x57 }, 2, PROBE_INSN_EMULATED },              /* push %r15 */
		{ { 0x48, 0x53 }, 2, PROBE_INSN_SSTEP },                 /* rex.W push %rbx */
		{ { 0x40, 0x53 }, 2, PROBE_INSN_SSTEP },                 /* rex push %rbx */
		{ { 0x66, 0x53 }, 2, PROBE_INSN_SSTEP },                 /* pushw %bx */
		{ { 0x6a, 0x00 }, 2, PROBE_INSN_SSTEP },                 /* push $0 */
		{ { 0x48, 0x83, 0xec, 0x10 }, 4, PROBE_INSN_SSTEP },     /* sub $0x10,%rsp */
		{ { 0x48, 0x89, 0xe5 }, 3, PROBE_INSN_SSTEP },           /* mov %rsp,%rbp */
		{ { 0xf3, 0x0f, 0x1e, 0xfa }, 4, PROBE_INSN_SSTEP },     /* endbr64 */
		{ { 0x90 }, 1, PROBE_INSN_EMULATED },                    /* nop */
		{ { 0x66, 0x90 }, 2, PROBE_INSN_EMULATED },              /* xchg %ax,%ax */
		{ { 0xf3, 0x90 }, 2, PROBE_INSN_EMULATED },              /* pause: 0x90 */
		{ { 0x0f, 0x1f, 0x00 }, 3, PROBE_INSN_EMULATED },        /* nopl (%rax) */
		{ { 0x0f, 0x1f, 0x44, 0, 0 }, 5, PROBE_INSN_EMULATED },  /* nopl 0(%rax,%rax) */
		{ { 0x66, 0x0f, 0x1f, 0x44, 0, 0 }, 6, PROBE_INSN_EMULATED },
		{ { 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 8, PROBE_INSN_EMULATED },
		/* gcc's 10-byte padding: cs prefix, refused by the kernel */
		{ { 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 10, PROBE_INSN_SSTEP },
		{ { 0x0f, 0x1f, 0x40, 0x08 }, 4, PROBE_INSN_SSTEP },     /* not the kernel's */
		{ { 0xeb, 0x10 }, 2, PROBE_INSN_EMULATED },              /* jmp rel8 */
		{ { 0xe9, 1, 2, 3, 4 }, 5, PROBE_INSN_EMULATED },        /* jmp rel32 */
		{ { 0xe8, 1, 2, 3, 4 }, 5, PROBE_INSN_EMULATED },        /* call rel32 */
		{ { 0x74, 0x05 }, 2, PROBE_INSN_EMULATED },              /* je rel8 */
		{ { 0x0f, 0x85, 1, 2, 3, 4 }, 6, PROBE_INSN_EMULATED },  /* jne rel32 */
		{ { 0xf2, 0xe9, 1, 2, 3, 4 }, 6, PROBE_INSN_EMULATED },  /* bnd jmp */
		{ { 0x66, 0xe9, 1, 2 }, 4, PROBE_INSN_SSTEP },           /* jmpw: refused */
		{ { 0x3e, 0x74, 0x05 }, 3, PROBE_INSN_SSTEP },           /* ds je: refused */
		{ { 0xff, 0xe0 }, 2, PROBE_INSN_SSTEP },                 /* jmp *%rax */
		{ { 0xff, 0x25, 0, 0, 0, 0 }, 6, PROBE_INSN_SSTEP },     /* jmp *(%rip) */
		{ { 0xc3 }, 1, PROBE_INSN_SSTEP },                       /* ret */
		{ { 0xe9, 1, 2 }, 3, PROBE_INSN_SSTEP },                 /* truncated */
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		enum probe_insn_kind k = probepos__classify(c[i].b, c[i].n);
		if (k != c[i].k)
			printf("    case %zu (first byte %02x)\n", i, c[i].b[0]);
		ASSERT_EQ_INT(k, c[i].k);
	}
	ASSERT_EQ_INT(probepos__classify(NULL, 0), PROBE_INSN_SSTEP);
	return true;
}

static bool test_probeable_and_nop5(void)
{
	static const uint8_t nop5[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	static const uint8_t cs_nop[] = { 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 };
	static const uint8_t jmpw[] = { 0x66, 0xe9, 1, 2 };
	static const uint8_t lock_add[] = { 0xf0, 0x48, 0x01, 0x07 };
	static const uint8_t sub[] = { 0x48, 0x83, 0xec, 0x10 };
	static const uint8_t bad[] = { 0x06 };  /* push %es: invalid in 64-bit mode */
	char text[64];

	ASSERT_TRUE(probepos__is_nop5(nop5, sizeof(nop5)));
	ASSERT_TRUE(!probepos__is_nop5(nop5, 4));
	ASSERT_TRUE(!probepos__is_nop5(sub, sizeof(sub)));
	ASSERT_TRUE(probepos__probeable(nop5, sizeof(nop5)));
	ASSERT_TRUE(probepos__probeable(sub, sizeof(sub)));
	ASSERT_TRUE(!probepos__probeable(cs_nop, sizeof(cs_nop)));
	ASSERT_TRUE(!probepos__probeable(jmpw, sizeof(jmpw)));
	ASSERT_TRUE(!probepos__probeable(lock_add, sizeof(lock_add)));
	ASSERT_TRUE(!probepos__probeable(bad, sizeof(bad)));

	ASSERT_EQ_INT(probepos__disasm(sub, sizeof(sub), 0, text, sizeof(text)), 4);
	ASSERT_EQ_STR(text, "subq $0x10, %rsp");
	ASSERT_EQ_INT(probepos__disasm(bad, sizeof(bad), 0, text, sizeof(text)), -EINVAL);
	ASSERT_EQ_STR(text, "(bad)");
	ASSERT_EQ_STR(probepos__reg_name(ARG_REG_RDI), "rdi");
	ASSERT_EQ_STR(probepos__reg_name(ARG_REG_R9), "r9");
	ASSERT_EQ_STR(probepos__reg_name(ARG_LOST), "lost");
	return true;
}

/* ---- choosing ------------------------------------------------------------ */

static bool test_push_first(void)
{
	static const uint8_t code[] = {
		0x55,                           /* push %rbp */
		0x48, 0x89, 0xe5,               /* mov %rsp,%rbp */
		0x5d,                           /* pop %rbp */
		0xc3,                           /* ret */
	};
	struct probe_pos p;
	ASSERT_EQ_INT(probepos__choose(code, sizeof(code), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 0, PROBE_INSN_EMULATED, 0, ARGS_INTACT);
}

static bool test_sub_then_push(void)
{
	static const uint8_t code[] = {
		0x48, 0x83, 0xec, 0x10,         /* sub $0x10,%rsp */
		0x53,                           /* push %rbx */
		0x5b,                           /* pop %rbx */
		0x48, 0x83, 0xc4, 0x10,         /* add $0x10,%rsp */
		0xc3,
	};
	struct probe_pos p;
	ASSERT_EQ_INT(probepos__choose(code, sizeof(code), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 4, PROBE_INSN_EMULATED, 16, ARGS_INTACT);
}

static bool test_mov_copies_arg(void)
{
	/* mov %rdi,%rbx alone: rdi still holds arg0 (own register preferred) */
	static const uint8_t keep[] = {
		0x48, 0x83, 0xec, 0x08,         /* sub $0x8,%rsp */
		0x48, 0x89, 0xfb,               /* mov %rdi,%rbx */
		0x41, 0x54,                     /* push %r12 */
		0xc3,
	};
	/* then rdi is overwritten: arg0 is found in rbx */
	static const uint8_t moved[] = {
		0x48, 0x83, 0xec, 0x08,         /* sub $0x8,%rsp */
		0x48, 0x89, 0xfb,               /* mov %rdi,%rbx */
		0x31, 0xff,                     /* xor %edi,%edi */
		0x49, 0x89, 0xf0,               /* mov %rsi,%r8  (arg4 lost, arg1 also in r8) */
		0x41, 0x54,                     /* push %r12 */
		0xc3,
	};
	const int8_t want[6] = { R(RBX), R(RSI), R(RDX), R(RCX), LOST, R(R9) };
	struct probe_pos p;

	ASSERT_EQ_INT(probepos__choose(keep, sizeof(keep), FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 7, PROBE_INSN_EMULATED, 8, ARGS_INTACT))
		return false;
	ASSERT_EQ_INT(probepos__choose(moved, sizeof(moved), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 12, PROBE_INSN_EMULATED, 8, want);
}

static bool test_arg_overwritten(void)
{
	static const uint8_t code[] = {
		0x48, 0x83, 0xec, 0x08,         /* sub $0x8,%rsp */
		0xbf, 0x01, 0, 0, 0,            /* mov $1,%edi */
		0x80, 0xc9, 0x80,               /* or $0x80,%cl */
		0x53,                           /* push %rbx */
		0xc3,
	};
	const int8_t lost03[6] = { LOST, R(RSI), R(RDX), LOST, R(R8), R(R9) };
	struct probe_pos p;

	/* default: move to the push, report what is lost */
	ASSERT_EQ_INT(probepos__choose(code, sizeof(code), FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 12, PROBE_INSN_EMULATED, 8, lost03))
		return false;
	/* arguments 1 and 2 needed: still fine there */
	ASSERT_EQ_INT(probepos__choose_mask(code, sizeof(code), FUNC, 0x6, &p), 0);
	ASSERT_EQ_INT(p.delta, 12);
	/* argument 0 needed: stay at the start, single-stepped */
	ASSERT_EQ_INT(probepos__choose_mask(code, sizeof(code), FUNC, 0x1, &p), 0);
	return expect_pos(&p, FUNC, 0, PROBE_INSN_SSTEP, 0, ARGS_INTACT);
}

static bool test_endbr64(void)
{
	static const uint8_t code[] = {
		0xf3, 0x0f, 0x1e, 0xfa,         /* endbr64 */
		0x55,                           /* push %rbp */
		0x48, 0x89, 0xe5,               /* mov %rsp,%rbp */
		0xc3,
	};
	static const uint8_t sub_after[] = {
		0xf3, 0x0f, 0x1e, 0xfa,         /* endbr64 */
		0x48, 0x83, 0xec, 0x18,         /* sub $0x18,%rsp */
		0x41, 0x56,                     /* push %r14 */
		0xc3,
	};
	struct probe_pos p;

	ASSERT_EQ_INT(probepos__choose(code, sizeof(code), FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 4, PROBE_INSN_EMULATED, 0, ARGS_INTACT))
		return false;
	ASSERT_EQ_INT(probepos__choose(sub_after, sizeof(sub_after), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 8, PROBE_INSN_EMULATED, 0x18, ARGS_INTACT);
}

/* Non-emulated branches, ret, and untracked stack changes stop the walk:
 * the probe stays at the start. */
static bool test_stops_at_start(void)
{
	static const uint8_t jmp_ind[] = {
		0x48, 0x83, 0xec, 0x08,         /* sub $0x8,%rsp */
		0xff, 0xe0,                     /* jmp *%rax */
		0x55,                           /* push %rbp (never reached) */
	};
	static const uint8_t ret[] = {
		0x48, 0x89, 0xf8,               /* mov %rdi,%rax */
		0xc3,                           /* ret */
		0x55,
	};
	static const uint8_t align_sp[] = {
		0x48, 0x89, 0xe5,               /* mov %rsp,%rbp */
		0x48, 0x83, 0xe4, 0xf0,         /* and $-16,%rsp */
		0x55,
	};
	static const uint8_t store_arg[] = {
		0x48, 0xc7, 0x06, 0, 0, 0, 0,   /* movq $0,(%rsi): writes the caller's memory */
		0x55,
	};
	static const uint8_t store_above_frame[] = {
		0x48, 0x83, 0xec, 0x08,         /* sub $0x8,%rsp */
		0x48, 0x89, 0x7c, 0x24, 0x08,   /* mov %rdi,0x8(%rsp): the return address */
		0x55,
	};
	static const uint8_t pop[] = {
		0x48, 0x89, 0xf8,               /* mov %rdi,%rax */
		0x5b,                           /* pop %rbx */
		0x55,
	};
	static const uint8_t *const cases[] = { jmp_ind, ret, align_sp, store_arg,
						store_above_frame, pop };
	static const size_t lens[] = { sizeof(jmp_ind), sizeof(ret), sizeof(align_sp),
				       sizeof(store_arg), sizeof(store_above_frame),
				       sizeof(pop) };
	struct probe_pos p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ASSERT_EQ_INT(probepos__choose(cases[i], lens[i], FUNC, &p), 0);
		if (p.delta != 0)
			printf("    case %zu moved to +%u\n", i, p.delta);
		if (!expect_pos(&p, FUNC, 0, PROBE_INSN_SSTEP, 0, ARGS_INTACT))
			return false;
	}
	return true;
}

/* A direct branch is itself emulated: the probe may sit on it (it fires
 * before the branch, on every entry) but never moves past it. */
static bool test_branch_is_the_limit(void)
{
	static const uint8_t jcc[] = {
		0x48, 0x83, 0xec, 0x08,         /* sub $0x8,%rsp */
		0x85, 0xff,                     /* test %edi,%edi */
		0x74, 0x01,                     /* je +1 */
		0x55,                           /* push %rbp */
		0x53,                           /* push %rbx */
	};
	static const uint8_t tail_call[] = {
		0x4d, 0x89, 0xc1,               /* mov %r8,%r9 */
		0x49, 0x89, 0xc8,               /* mov %rcx,%r8 */
		0xb9, 0x80, 0, 0, 0,            /* mov $0x80,%ecx */
		0xe9, 0x10, 0, 0, 0,            /* jmp +0x10 */
	};
	static const uint8_t call[] = {
		0x48, 0x83, 0xec, 0x08,         /* sub $0x8,%rsp */
		0xe8, 0, 0, 0, 0,               /* call next */
		0x55,
	};
	const int8_t shifted[6] = { R(RDI), R(RSI), R(RDX), R(R8), R(R9), LOST };
	struct probe_pos p;

	ASSERT_EQ_INT(probepos__choose(jcc, sizeof(jcc), FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 6, PROBE_INSN_EMULATED, 8, ARGS_INTACT))
		return false;
	ASSERT_EQ_INT(probepos__choose(tail_call, sizeof(tail_call), FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 11, PROBE_INSN_EMULATED, 0, shifted))
		return false;
	ASSERT_EQ_INT(probepos__choose(call, sizeof(call), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 4, PROBE_INSN_EMULATED, 8, ARGS_INTACT);
}

/* A position some branch in the function lands on (or after) would fire on
 * that path too: refused. */
static bool test_jump_target_in_prologue(void)
{
	static const uint8_t loop_back[] = {
		0x48, 0x83, 0xec, 0x08,         /* 0: sub $0x8,%rsp */
		0x31, 0xc0,                     /* 4: xor %eax,%eax */
		0x53,                           /* 6: push %rbx */
		0x5b,                           /* 7: pop %rbx */
		0xeb, 0xfa,                     /* 8: jmp 4 */
	};
	static const uint8_t later_target[] = {
		0x48, 0x83, 0xec, 0x08,         /* 0: sub $0x8,%rsp */
		0x31, 0xc0,                     /* 4: xor %eax,%eax */
		0x53,                           /* 6: push %rbx */
		0x5b,                           /* 7: pop %rbx */
		0xeb, 0xfd,                     /* 8: jmp 7 */
	};
	static const uint8_t to_start[] = {
		0x48, 0x83, 0xec, 0x08,         /* 0: sub $0x8,%rsp */
		0x53,                           /* 4: push %rbx */
		0x5b,                           /* 5: pop %rbx */
		0xeb, 0xf8,                     /* 6: jmp 0 (a loop over the whole body) */
	};
	struct probe_pos p;

	ASSERT_EQ_INT(probepos__choose(loop_back, sizeof(loop_back), FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 0, PROBE_INSN_SSTEP, 0, ARGS_INTACT))
		return false;
	/* only the bytes given are checked: cut before the jmp, it moves */
	ASSERT_EQ_INT(probepos__choose(loop_back, 8, FUNC, &p), 0);
	ASSERT_EQ_INT(p.delta, 6);
	ASSERT_EQ_INT(probepos__choose(later_target, sizeof(later_target), FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 6, PROBE_INSN_EMULATED, 8, ARGS_INTACT))
		return false;
	ASSERT_EQ_INT(probepos__choose(to_start, sizeof(to_start), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 4, PROBE_INSN_EMULATED, 8, ARGS_INTACT);
}

/* gcc's cs-prefixed padding nop on the path: passed, never chosen. */
static bool test_cs_nop_passed(void)
{
	static const uint8_t code[] = {
		0x48, 0x83, 0xec, 0x08,                                 /* sub $0x8,%rsp */
		0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0,            /* cs nopw 0(%rax,%rax) */
		0x53,                                                   /* push %rbx */
	};
	struct probe_pos p;

	ASSERT_EQ_INT(probepos__choose(code, sizeof(code), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 14, PROBE_INSN_EMULATED, 8, ARGS_INTACT);
}

static bool test_xchg_r8_not_chosen(void)
{
	static const uint8_t code[] = {
		0x48, 0x83, 0xec, 0x08,         /* sub $0x8,%rsp */
		0x41, 0x90,                     /* xchg %eax,%r8d: 6.18 would "emulate" it as a nop */
		0x55,                           /* push %rbp */
	};
	const int8_t want[6] = { R(RDI), R(RSI), R(RDX), R(RCX), LOST, R(R9) };
	struct probe_pos p;

	ASSERT_EQ_INT(probepos__choose(code, sizeof(code), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 6, PROBE_INSN_EMULATED, 8, want);
}

static bool test_frame_store_and_loads(void)
{
	static const uint8_t code[] = {
		0x48, 0x83, 0xec, 0x58,                         /* sub $0x58,%rsp */
		0x48, 0x89, 0x3c, 0x24,                         /* mov %rdi,(%rsp) */
		0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0,    /* mov %fs:0x28,%rax */
		0x48, 0x89, 0x44, 0x24, 0x48,                   /* mov %rax,0x48(%rsp) */
		0x48, 0x8b, 0x1f,                               /* mov (%rdi),%rbx */
		0x0f, 0x29, 0x44, 0x24, 0x10,                   /* movaps %xmm0,0x10(%rsp) */
		0x41, 0x55,                                     /* push %r13 */
	};
	struct probe_pos p;

	ASSERT_EQ_INT(probepos__choose(code, sizeof(code), FUNC, &p), 0);
	return expect_pos(&p, FUNC, 30, PROBE_INSN_EMULATED, 0x58, ARGS_INTACT);
}

static bool test_walk_limit_and_truncation(void)
{
	uint8_t code[64];
	struct probe_pos p;

	/* 17 single-stepped instructions before the push: too far */
	for (int i = 0; i < 17; i++) {
		code[3 * i] = 0x48;     /* mov %rax,%r10... */
		code[3 * i + 1] = 0x89;
		code[3 * i + 2] = 0xc0; /* mov %rax,%rax */
	}
	code[51] = 0x55;
	ASSERT_EQ_INT(probepos__choose(code, 52, FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 0, PROBE_INSN_SSTEP, 0, ARGS_INTACT))
		return false;
	/* 15 are fine */
	ASSERT_EQ_INT(probepos__choose(code + 6, 46, FUNC, &p), 0);
	ASSERT_EQ_INT(p.delta, 45);

	/* the bytes end inside an instruction */
	static const uint8_t cut[] = { 0x48, 0x83, 0xec, 0x10, 0x48, 0x89 };
	ASSERT_EQ_INT(probepos__choose(cut, sizeof(cut), FUNC, &p), 0);
	if (!expect_pos(&p, FUNC, 0, PROBE_INSN_SSTEP, 0, ARGS_INTACT))
		return false;
	ASSERT_EQ_INT(probepos__choose(NULL, 4, FUNC, &p), -EINVAL);
	ASSERT_EQ_INT(probepos__choose(cut, 0, FUNC, &p), -EINVAL);
	ASSERT_EQ_INT(probepos__choose(cut, sizeof(cut), FUNC, NULL), -EINVAL);
	return true;
}

/* ---- Debian's libsqlite3 ------------------------------------------------- */

/* Build id of libsqlite3.so.0.8.6 from libsqlite3-0 3.40.1-2+deb12u2, the
 * file the expectations below were read from (docs/probe-placement.md). */
static const char known_build_id[] = "5221b80bd99650e3e55370b0e24f4b4dbe81264f";

struct expect {
	const char *fn;
	uint32_t delta;
	int32_t sp;
	int8_t args[6];
};

static const struct expect debian[] = {
	{ "sqlite3_prepare_v2", 0xc, 16, { R(RDI), R(RSI), R(RDX), R(R9), R(R8), LOST } },
	{ "sqlite3_prepare_v3", 0x7, 16, { R(RDI), R(RSI), R(RDX), LOST, R(R8), R(R9) } },
	{ "sqlite3_prepare16_v2", 0xb, 0, { R(RDI), R(RSI), R(RDX), R(R8), R(R9), LOST } },
	{ "sqlite3_prepare16_v3", 0x6, 0, { R(RDI), R(RSI), R(RDX), LOST, R(R8), R(R9) } },
	{ "sqlite3_prepare", 0x9, 16, { R(RDI), R(RSI), R(RDX), R(R9), R(R8), LOST } },
	{ "sqlite3_prepare16", 0x8, 0, { R(RDI), R(RSI), R(RDX), R(R8), R(R9), LOST } },
	{ "sqlite3_step", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
	{ "sqlite3_reset", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
	{ "sqlite3_finalize", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
	{ "sqlite3_exec", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
	{ "sqlite3_open", 0x7, 0, { R(RDI), R(RSI), LOST, LOST, R(R8), R(R9) } },
	{ "sqlite3_open_v2", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
	{ "sqlite3_open16", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
	{ "sqlite3VdbeHalt", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
	{ "sqlite3VdbeExec", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
	{ "sqlite3VdbeReset", 0, 0, { R(RDI), R(RSI), R(RDX), R(RCX), R(R8), R(R9) } },
};

/* Prints the first instructions of fn and the chosen position. */
static void print_listing(const char *fn, uint64_t va, const uint8_t *code, size_t len,
			  const struct probe_pos *p)
{
	size_t off = 0;

	printf("    %s @ 0x%" PRIx64 ":\n", fn, va);
	for (int i = 0; i < 8 && off < len; i++) {
		char text[96];
		int n = probepos__disasm(code + off, len - off, va + off, text, sizeof(text));
		if (n <= 0)
			break;
		printf("      %s+0x%-3zx %-6s %s\n", off == p->delta ? "=>" : "  ", off,
		       probepos__classify(code + off, len - off) == PROBE_INSN_EMULATED ?
		       "emul" : "sstep", text);
		off += (size_t)n;
		if (text[0] == 'j' || !strncmp(text, "call", 4) || !strncmp(text, "ret", 3))
			if (off > p->delta)
				break;
	}
}

static bool test_debian_libsqlite3(void)
{
	struct elf_file *ef = elf_file__open(lib_path);
	unsigned char id[20];
	char hex[41];
	bool exact;

	if (!ef)
		SKIP("Debian's libsqlite3.so.0 not installed");
	if (elf_file__build_id(ef, id, sizeof(id)) == 20) {
		for (int i = 0; i < 20; i++)
			sprintf(hex + 2 * i, "%02x", id[i]);
	} else {
		hex[0] = '\0';
	}
	exact = strcmp(hex, known_build_id) == 0;
	if (!exact)
		printf("    build id %s is not the one the listing was made from: "
		       "checking invariants only\n", hex);

	for (size_t i = 0; i < sizeof(debian) / sizeof(debian[0]); i++) {
		const struct expect *e = &debian[i];
		uint64_t va, sz;
		struct probe_pos p;
		uint8_t *code;

		if (elf_file__find_func(ef, e->fn, &va, &sz) != 0) {
			printf("    %s not found\n", e->fn);
			elf_file__close(ef);
			return false;
		}
		/* the whole function, so branch targets are checked */
		code = malloc(sz);
		ASSERT_TRUE(code != NULL);
		ssize_t got = elf_file__read_vaddr(ef, va, code, sz);
		ASSERT_EQ_INT(got, (ssize_t)sz);
		ASSERT_EQ_INT(probepos__choose(code, sz, va, &p), 0);
		if (verbose)
			print_listing(e->fn, va, code, sz, &p);
		printf("    %-22s +0x%-3x %-5s sp_delta %-3d args", e->fn, p.delta,
		       p.kind == PROBE_INSN_EMULATED ? "emul" : "sstep", p.sp_delta);
		for (int a = 0; a < 6; a++)
			printf(" %s", probepos__reg_name(p.arg_reg[a]));
		printf("\n");

		/* invariants on any build: emulated, classified so at vaddr */
		bool ok = p.kind == PROBE_INSN_EMULATED &&
			  probepos__classify(code + p.delta, sz - p.delta) == PROBE_INSN_EMULATED;
		if (exact)
			ok = ok && expect_pos(&p, va, e->delta, PROBE_INSN_EMULATED, e->sp, e->args);
		free(code);
		if (!ok) {
			printf("    unexpected position for %s\n", e->fn);
			elf_file__close(ef);
			return false;
		}
	}
	elf_file__close(ef);
	return true;
}

/* What the tool will ask for prepare_v2: db, zSql, nByte, ppStmt (0-3). */
static bool test_debian_prepare_v2_mask(void)
{
	struct elf_file *ef = elf_file__open(lib_path);
	uint64_t va, sz;
	uint8_t code[256];
	struct probe_pos p;

	if (!ef)
		SKIP("Debian's libsqlite3.so.0 not installed");
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_prepare_v2", &va, &sz), 0);
	ASSERT_TRUE(sz <= sizeof(code));
	ASSERT_EQ_INT(elf_file__read_vaddr(ef, va, code, sz), (ssize_t)sz);
	ASSERT_EQ_INT(probepos__choose_mask(code, sz, va, 0x1f, &p), 0);
	/* pzTail (arg 4) is still in r8: all five readable on the push */
	ASSERT_EQ_INT(p.kind, PROBE_INSN_EMULATED);
	ASSERT_TRUE(p.delta > 0);
	ASSERT_EQ_INT(p.arg_reg[0], ARG_REG_RDI);
	ASSERT_EQ_INT(p.arg_reg[1], ARG_REG_RSI);
	ASSERT_TRUE(p.arg_reg[3] != ARG_LOST);
	/* the return address stays reachable: rsp + sp_delta */
	ASSERT_TRUE(p.sp_delta >= 0 && p.sp_delta % 8 == 0);
	/* asking for the 6th argument (which prepare_v2 does not have) keeps
	 * it at the start */
	ASSERT_EQ_INT(probepos__choose_mask(code, sz, va, 0x3f, &p), 0);
	ASSERT_EQ_INT(p.delta, 0);
	ASSERT_EQ_INT(p.kind, PROBE_INSN_SSTEP);
	elf_file__close(ef);
	return true;
}

/* Every exported function of the library: no failure, and each result is
 * either the start or an emulated instruction inside the function. */
static bool test_debian_all_functions(void)
{
	struct elf_file *ef = elf_file__open(lib_path);
	char cmd[256];
	FILE *p;
	char line[512];
	int n = 0, at_start_emul = 0, moved = 0, stays_sstep = 0;

	if (!ef)
		SKIP("Debian's libsqlite3.so.0 not installed");
	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s' 2>/dev/null", lib_path);
	p = popen(cmd, "r");
	if (!p) {
		elf_file__close(ef);
		SKIP("nm not available");
	}
	while (fgets(line, sizeof(line), p)) {
		uint64_t a, va, sz;
		char t, name[256];
		struct probe_pos pos;
		if (sscanf(line, "%" SCNx64 " %c %255s", &a, &t, name) != 3 || t != 'T')
			continue;
		if (elf_file__find_func(ef, name, &va, &sz) != 0 || sz == 0)
			continue;
		uint8_t *code = malloc(sz);
		ASSERT_TRUE(code != NULL);
		ssize_t got = elf_file__read_vaddr(ef, va, code, sz);
		bool ok = got == (ssize_t)sz && probepos__choose(code, sz, va, &pos) == 0 &&
			  pos.delta < sz && pos.vaddr == va + pos.delta &&
			  (pos.delta == 0 || (pos.kind == PROBE_INSN_EMULATED &&
					      probepos__classify(code + pos.delta, sz - pos.delta) ==
					      PROBE_INSN_EMULATED));
		free(code);
		if (!ok) {
			printf("    bad result for %s\n", name);
			pclose(p);
			elf_file__close(ef);
			return false;
		}
		n++;
		if (pos.delta)
			moved++;
		else if (pos.kind == PROBE_INSN_EMULATED)
			at_start_emul++;
		else
			stays_sstep++;
	}
	pclose(p);
	elf_file__close(ef);
	printf("    %d functions: %d emulated at +0, %d moved to an emulated insn, "
	       "%d stay single-stepped at +0\n", n, at_start_emul, moved, stays_sstep);
	ASSERT_TRUE(n > 1000);
	return true;
}

/* A library built the Ubuntu/Fedora way (-fcf-protection): functions start
 * with endbr64, single-stepped; the probe moves to the push after it. */
static bool test_cf_protection_library(void)
{
	static const char src[] =
		"extern int g(long, long, long);\n"
		"int f(long a, long b, long c) {\n"
		"  int x = g(a, b, c); int y = g(c, b, a); return x + y + (int)a; }\n";
	char dir[] = "/tmp/sqltrace-probepos-XXXXXX", path[128], cmd[512];
	struct elf_file *ef;
	uint64_t va, sz;
	uint8_t code[256];
	struct probe_pos p;
	FILE *f;

	if (!mkdtemp(dir))
		SKIP("mkdtemp failed");
	snprintf(path, sizeof(path), "%s/f.c", dir);
	f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	fputs(src, f);
	ASSERT_EQ_INT(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "cd %s && cc -O2 -fPIC -shared -fcf-protection=full "
		 "-o f.so f.c 2>/dev/null", dir);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0) { /* nothing more to do */ }
		SKIP("cc with -fcf-protection not available");
	}
	snprintf(path, sizeof(path), "%s/f.so", dir);
	ef = elf_file__open(path);
	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(elf_file__find_func(ef, "f", &va, &sz), 0);
	ASSERT_TRUE(sz <= sizeof(code));
	ASSERT_EQ_INT(elf_file__read_vaddr(ef, va, code, sz), (ssize_t)sz);
	elf_file__close(ef);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ASSERT_EQ_INT(system(cmd), 0);

	static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };
	ASSERT_TRUE(memcmp(code, endbr64, 4) == 0);
	ASSERT_EQ_INT(probepos__classify(code, sz), PROBE_INSN_SSTEP);
	ASSERT_EQ_INT(probepos__choose(code, sz, va, &p), 0);
	if (verbose)
		print_listing("f (-fcf-protection)", va, code, sz, &p);
	ASSERT_EQ_INT(p.kind, PROBE_INSN_EMULATED);
	ASSERT_TRUE(p.delta >= 4);
	/* a, b, c still readable */
	ASSERT_TRUE(p.arg_reg[0] != ARG_LOST && p.arg_reg[1] != ARG_LOST &&
		    p.arg_reg[2] != ARG_LOST);
	printf("    f: endbr64, probe at +0x%x (%s)\n", p.delta, "emulated");
	return true;
}

/* A -pg wrapper: the first call is the profiler's (mcount, outside SQLite's
 * code), the second the real one. first_call_in() skips the first. */
static bool test_first_call_skips_outside(void)
{
	static const uint8_t code[] = {
		0x55,                           /* push %rbp */
		0x48, 0x89, 0xe5,               /* mov %rsp,%rbp */
		0xe8, 0xf7, 0xef, 0xff, 0xff,   /* call func+9-0x1009 (mcount@plt) */
		0x41, 0x50,                     /* push %r8 */
		0xb9, 0x80, 0, 0, 0,            /* mov $0x80,%ecx */
		0xe8, 0xeb, 0xff, 0xff, 0xff,   /* call func+21-0x15 = func */
		0x5a,                           /* pop %rdx */
		0xc9,                           /* leave */
		0xc3,                           /* ret */
	};
	/* as the -fPIC build does it: call *mcount@GOTPCREL(%rip) */
	static const uint8_t got[] = {
		0x55, 0x48, 0x89, 0xe5,
		0xff, 0x15, 0x96, 0x2e, 0x00, 0x00,   /* call *0x2e96(%rip) */
		0xe8, 0xf1, 0xff, 0xff, 0xff,         /* call func+15-0xf = func */
		0xc9, 0xc3,
	};
	const uint64_t func = 0x401220;
	uint64_t t;

	ASSERT_EQ_INT(probepos__first_call(code, sizeof(code), func, &t), 0);
	ASSERT_EQ_INT(t, func + 9 - 0x1009);       /* the old answer: mcount */
	ASSERT_EQ_INT(probepos__first_call_in(code, sizeof(code), func, 0x401000, 0x402000, &t), 0);
	ASSERT_EQ_INT(t, func);
	ASSERT_EQ_INT(probepos__first_call_in(got, sizeof(got), func, 0x401000, 0x402000, &t), 0);
	ASSERT_EQ_INT(t, func);
	/* nothing inside: -ENOENT */
	ASSERT_EQ_INT(probepos__first_call_in(code, sizeof(code), func, 0x500000, 0x600000, &t), -ENOENT);
	/* a branch before the call still ends the walk */
	static const uint8_t jmp_first[] = { 0xeb, 0x00, 0xe8, 0, 0, 0, 0 };
	ASSERT_EQ_INT(probepos__first_call_in(jmp_first, sizeof(jmp_first), func, 0, UINT64_MAX, &t),
		      -ENOENT);
	return true;
}

/* Runs cmd through the shell; true on exit status 0. */
static bool sh(const char *cmd)
{
	return system(cmd) == 0;
}

/* `nm` address of a symbol of path (static ones too), or 0. */
static uint64_t nm_addr(const char *path, const char *name)
{
	char cmd[512], line[512];
	uint64_t a = 0, v;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm '%s'", path);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	while (fgets(line, sizeof(line), p)) {
		char t, nm[256];
		if (sscanf(line, "%" SCNx64 " %c %255s", &v, &t, nm) == 3 && strcmp(nm, name) == 0)
			a = v;
	}
	pclose(p);
	return a;
}

/* A stripped executable built with -pg (gprof): every function starts with
 * `call mcount@plt`. The internal prepare found from sqlite3_prepare_v2
 * and _v3 must be the static sqlite3LockAndPrepare, not the PLT stub. */
static bool test_pg_build_internal_prepare(void)
{
	static const char src[] =
		"int sqlite3_libversion_number(void) { return 3040001; }\n"
		"static int __attribute__((noinline, noclone)) sqlite3LockAndPrepare(void *db,\n"
		"    const char *z, int n, unsigned f, void *o, void **pp, const char **t)\n"
		"{ return db ? n + (int)f + (z ? 1 : 0) + (o ? 1 : 0) + (pp ? 1 : 0) + (t ? 1 : 0) : 0; }\n"
		"int sqlite3_prepare_v2(void *db, const char *z, int n, void **pp, const char **t)\n"
		"{ int rc = sqlite3LockAndPrepare(db, z, n, 0x80, 0, pp, t); return rc; }\n"
		"int sqlite3_prepare_v3(void *db, const char *z, int n, unsigned f, void **pp,\n"
		"    const char **t)\n"
		"{ int rc = sqlite3LockAndPrepare(db, z, n, 0x80 | f, 0, pp, t); return rc; }\n"
		"int sqlite3_step(void *p) { return p ? 100 : 21; }\n"
		"int main(int c, char **v) { return sqlite3_prepare_v2(v, v[0], c, 0, 0) +\n"
		"    sqlite3_step(v) + sqlite3_libversion_number(); }\n";
	char dir[] = "/tmp/sqltrace-probepos-pg-XXXXXX", path[128], cmd[1024], why[256];
	struct sqlite_found found;
	const struct sqlite_copy *c = &found.c;
	bool shim;
	FILE *f;

	if (!mkdtemp(dir))
		SKIP("mkdtemp failed");
	snprintf(path, sizeof(path), "%s/pg.c", dir);
	f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	fputs(src, f);
	ASSERT_EQ_INT(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "cd %s && cc -O2 -pg -fno-pie -no-pie -rdynamic "
		 "-fno-toplevel-reorder -o pg pg.c 2>/dev/null && strip -o pg.stripped pg", dir);
	if (!sh(cmd)) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (!sh(cmd)) { /* nothing more to do */ }
		SKIP("cc -pg not available");
	}
	snprintf(path, sizeof(path), "%s/pg", dir);
	uint64_t lap = nm_addr(path, "sqlite3LockAndPrepare");
	snprintf(cmd, sizeof(cmd), "objdump -d %s/pg | grep -c 'call.*<mcount@plt>' >/dev/null", dir);
	bool has_mcount_plt = sh(cmd);
	snprintf(path, sizeof(path), "%s/pg.stripped", dir);
	struct elf_file *ef = elf_file__open(path);
	ASSERT_TRUE(ef != NULL);
	ASSERT_TRUE(!elf_file__has_symtab(ef));
	uint64_t lap_off = 0;
	ASSERT_EQ_INT(elf_file__vaddr_to_offset(ef, lap, &lap_off), 0);
	elf_file__close(ef);

	int err = find__file(path, path, &found, &shim, why, sizeof(why));
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ASSERT_EQ_INT(system(cmd), 0);
	ASSERT_EQ_INT(err, 0);
	ASSERT_TRUE(has_mcount_plt);
	ASSERT_TRUE(lap != 0);
	printf("    sqlite3LockAndPrepare at file offset 0x%" PRIx64 ", found 0x%" PRIx64 "\n",
	       lap_off, c->fn_off[ST_FN_LOCK_AND_PREPARE]);
	ASSERT_EQ_INT(c->fn_off[ST_FN_LOCK_AND_PREPARE], lap_off);
	ASSERT_EQ_INT(found.layer, FOUND_C);
	find__release(&found);
	return true;
}

int main(void)
{
	const char *v = getenv("SQLTRACE_TEST_VERBOSE");
	verbose = v && *v && strcmp(v, "0") != 0;
	harness_skip_reason = "";   /* see test_procmaps.c */

	RUN(test_classify);
	RUN(test_probeable_and_nop5);
	RUN(test_push_first);
	RUN(test_sub_then_push);
	RUN(test_mov_copies_arg);
	RUN(test_arg_overwritten);
	RUN(test_endbr64);
	RUN(test_stops_at_start);
	RUN(test_branch_is_the_limit);
	RUN(test_jump_target_in_prologue);
	RUN(test_cs_nop_passed);
	RUN(test_xchg_r8_not_chosen);
	RUN(test_frame_store_and_loads);
	RUN(test_walk_limit_and_truncation);
	RUN(test_debian_libsqlite3);
	RUN(test_debian_prepare_v2_mask);
	RUN(test_debian_all_functions);
	RUN(test_cf_protection_library);
	RUN(test_first_call_skips_outside);
	RUN(test_pg_build_internal_prepare);
	return harness_done();
}
