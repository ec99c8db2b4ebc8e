/* test_codewalk.c — the symbolic walk of a function (user/codewalk.c) on
 * hand-made code: callee-saved copies survive calls and caller-saved
 * registers do not, paths that join with different values forget them,
 * stack addresses are tracked through rsp, jumps out are tail calls, and
 * loops end. */
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "codewalk.h"

#define VADDR 0x10000

/* push %rbx; mov %rdi,%rbx; call; mov 0x10(%rbx),%rax; mov 0x18(%rdi),%rcx;
 * pop %rbx; ret */
static const uint8_t w_call[] = { 0x53, 0x48, 0x89, 0xfb, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x43, 0x10,
				  0x48, 0x8b, 0x4f, 0x18, 0x5b, 0xc3 };
/* test %esi,%esi; je 1f; mov %rdi,%rax; jmp 2f; 1: mov %rdx,%rax;
 * 2: mov 0x8(%rax),%rax; ret */
static const uint8_t w_join[] = { 0x85, 0xf6, 0x74, 0x05, 0x48, 0x89, 0xf8, 0xeb, 0x03, 0x48, 0x89, 0xd0, 0x48,
				  0x8b, 0x40, 0x08, 0xc3 };
/* sub $0x28,%rsp; lea 0x8(%rsp),%rax; mov %rdi,(%rax); mov %rax,0x40(%rdi);
 * add $0x28,%rsp; ret */
static const uint8_t w_stack[] = { 0x48, 0x83, 0xec, 0x28, 0x48, 0x8d, 0x44, 0x24, 0x08, 0x48, 0x89, 0x38, 0x48,
				   0x89, 0x47, 0x40, 0x48, 0x83, 0xc4, 0x28, 0xc3 };
/* mov 0x10(%rdi),%rdi; jmp .+0x1005 */
static const uint8_t w_tail[] = { 0x48, 0x8b, 0x7f, 0x10, 0xe9, 0x00, 0x10, 0x00, 0x00 };
/* 1: mov 0x8(%rdi),%rdi; test %rdi,%rdi; jne 1b; ret */
static const uint8_t w_loop[] = { 0x48, 0x8b, 0x7f, 0x08, 0x48, 0x85, 0xff, 0x75, 0xf7, 0xc3 };

static struct codewalk w;

/* The node of a field at disp read through node parent, or -1. */
static int field(int16_t parent, int64_t disp)
{
	int i;

	for (i = 1; i < w.nnodes; i++)
		if (w.node[i].kind == CW_FIELD && w.node[i].parent == parent && w.node[i].x == disp)
			return i;
	return -1;
}

static int16_t arg(int n)
{
	int i;

	for (i = 1; i < w.nnodes; i++)
		if (cw_is_arg(&w, (int16_t)i, n))
			return (int16_t)i;
	return -1;
}

static bool has_event(int kind, int a, int b, int64_t x, bool use_b, bool use_x)
{
	int i;

	for (i = 0; i < w.nev; i++)
		if (w.ev[i].kind == kind && w.ev[i].a == a && (!use_b || w.ev[i].b == b) && (!use_x || w.ev[i].x == x))
			return true;
	return false;
}

static bool test_call_keeps_callee_saved_only(void)
{
	ASSERT_EQ_INT(codewalk__run(w_call, sizeof(w_call), VADDR, &w), 0);
	ASSERT_TRUE(field(arg(0), 0x10) > 0);
	ASSERT_TRUE(has_event(CW_RET, field(arg(0), 0x10), 0, 0, false, false));
	ASSERT_TRUE(has_event(CW_CALL, arg(0), 0, 0, false, false));  /* rdi at the call */
	ASSERT_EQ_INT(field(arg(0), 0x18), -1);  /* rdi is not arg0 after the call */
	return true;
}

static bool test_join_forgets_what_differs(void)
{
	ASSERT_EQ_INT(codewalk__run(w_join, sizeof(w_join), VADDR, &w), 0);
	/* one path returns arg0->0x8; once both paths meet, rax is unknown:
	 * arg2->0x8 is never claimed */
	ASSERT_TRUE(has_event(CW_RET, field(arg(0), 0x8), 0, 0, false, false));
	ASSERT_EQ_INT(field(arg(2), 0x8), -1);
	ASSERT_TRUE(has_event(CW_RET, 0, 0, 0, false, false));
	return true;
}

static bool test_stack_addresses(void)
{
	int i, slot = -1;

	ASSERT_EQ_INT(codewalk__run(w_stack, sizeof(w_stack), VADDR, &w), 0);
	for (i = 1; i < w.nnodes; i++)
		if (w.node[i].kind == CW_STACK && w.node[i].x == -0x20)
			slot = i;
	ASSERT_TRUE(slot > 0);
	ASSERT_TRUE(has_event(CW_STORE, slot, arg(0), 0, true, true));      /* *slot = arg0 */
	ASSERT_TRUE(has_event(CW_STORE, arg(0), slot, 0x40, true, true));   /* arg0->0x40 = slot */
	return true;
}

static bool test_jump_out_is_a_tail_call(void)
{
	ASSERT_EQ_INT(codewalk__run(w_tail, sizeof(w_tail), VADDR, &w), 0);
	ASSERT_TRUE(has_event(CW_CALL, field(arg(0), 0x10), 0, VADDR + sizeof(w_tail) + 0x1000, false, true));
	return true;
}

static bool test_loop_ends(void)
{
	ASSERT_EQ_INT(codewalk__run(w_loop, sizeof(w_loop), VADDR, &w), 0);
	ASSERT_TRUE(field(arg(0), 0x8) > 0);
	ASSERT_EQ_INT(codewalk__run(w_loop, 0, VADDR, &w), -ENOENT);
	return true;
}

int main(void)
{
	RUN(test_call_keeps_callee_saved_only);
	RUN(test_join_forgets_what_differs);
	RUN(test_stack_addresses);
	RUN(test_jump_out_is_a_tail_call);
	RUN(test_loop_ends);
	return harness_done();
}
