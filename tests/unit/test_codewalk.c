/* test_codewalk.c — the symbolic walk of a function (user/find/codewalk.c) on
 * hand-made code: a call writes its result registers, unoptimised code
 * keeps values in its frame, paths that join keep their own values,
 * stack addresses are tracked through rsp, jumps out are tail calls, and
 * loops end. */
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "codewalk.h"

#define VADDR 0x10000

/* push %rbx; mov %rdi,%rbx; mov %rdi,%rax; call; mov 0x10(%rbx),%rdx;
 * mov 0x18(%rax),%rcx; mov %rdx,%rax; pop %rbx; ret */
static const uint8_t w_call[] = { 0x53, 0x48, 0x89, 0xfb, 0x48, 0x89, 0xf8, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x48,
				  0x8b, 0x53, 0x10, 0x48, 0x8b, 0x48, 0x18, 0x48, 0x89, 0xd0, 0x5b, 0xc3 };
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
/* unoptimised sqlite3_sql: push %rbp; mov %rsp,%rbp; mov %rdi,-0x18(%rbp);
 * mov -0x18(%rbp),%rax; mov %rax,-0x8(%rbp); cmpq $0,-0x8(%rbp); je 1f;
 * mov -0x8(%rbp),%rax; mov 0xf8(%rax),%rax; jmp 2f; 1: mov $0,%eax;
 * 2: pop %rbp; ret */
static const uint8_t w_o0[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x89, 0x7d, 0xe8, 0x48, 0x8b, 0x45, 0xe8, 0x48,
				0x89, 0x45, 0xf8, 0x48, 0x83, 0x7d, 0xf8, 0x00, 0x74, 0x0d, 0x48, 0x8b, 0x45,
				0xf8, 0x48, 0x8b, 0x80, 0xf8, 0x00, 0x00, 0x00, 0xeb, 0x05, 0xb8, 0x00, 0x00,
				0x00, 0x00, 0x5d, 0xc3 };
/* push %rbp; mov %rsp,%rbp; sub $0x20,%rsp; mov %rdi,-0x8(%rbp);
 * lea -0x8(%rbp),%rdi; call; mov -0x8(%rbp),%rax; mov 0x28(%rax),%rax;
 * leave; ret — the callee got the slot's address */
static const uint8_t w_escape[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x20, 0x48, 0x89, 0x7d, 0xf8, 0x48,
				    0x8d, 0x7d, 0xf8, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x45, 0xf8, 0x48,
				    0x8b, 0x40, 0x28, 0xc9, 0xc3 };
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

static bool test_call_writes_its_results_only(void)
{
	ASSERT_EQ_INT(codewalk__run(w_call, sizeof(w_call), VADDR, &w), 0);
	ASSERT_TRUE(field(arg(0), 0x10) > 0);
	ASSERT_TRUE(has_event(CW_RET, field(arg(0), 0x10), 0, 0, false, false));
	ASSERT_TRUE(has_event(CW_CALL, arg(0), 0, 0, false, false));  /* rdi at the call */
	ASSERT_EQ_INT(field(arg(0), 0x18), -1);  /* rax is the call's result, not arg0 */
	return true;
}

static bool test_unoptimised_code_through_the_frame(void)
{
	ASSERT_EQ_INT(codewalk__run(w_o0, sizeof(w_o0), VADDR, &w), 0);
	ASSERT_TRUE(has_event(CW_RET, field(arg(0), 0xf8), 0, 0, false, false));
	ASSERT_TRUE(has_event(CW_CMP, arg(0), 0, 0, false, true));  /* cmpq $0 of the slot */
	ASSERT_EQ_INT(codewalk__run(w_escape, sizeof(w_escape), VADDR, &w), 0);
	ASSERT_EQ_INT(field(arg(0), 0x28), -1);  /* the callee may have changed the slot */
	return true;
}

static bool test_join_keeps_each_paths_value(void)
{
	ASSERT_EQ_INT(codewalk__run(w_join, sizeof(w_join), VADDR, &w), 0);
	/* rax is arg0 on one path and arg2 on the other: the load after the
	 * join is walked with each (a few states per instruction), so neither
	 * path's fact is lost to the other */
	ASSERT_TRUE(has_event(CW_RET, field(arg(0), 0x8), 0, 0, false, false));
	ASSERT_TRUE(has_event(CW_RET, field(arg(2), 0x8), 0, 0, false, false));
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
	RUN(test_call_writes_its_results_only);
	RUN(test_unoptimised_code_through_the_frame);
	RUN(test_join_keeps_each_paths_value);
	RUN(test_stack_addresses);
	RUN(test_jump_out_is_a_tail_call);
	RUN(test_loop_ends);
	return harness_done();
}
