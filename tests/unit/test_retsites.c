/* test_retsites.c — exit sites of functions (user/find/retsites.c): hand-made
 * code with known answers, and Debian's libsqlite3's sqlite3_step, whose
 * epilogue is known (the call that unlocks the connection's mutex). */
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "elfsym.h"
#include "probepos.h"
#include "retsites.h"

/* push %rbx; sub $0x20,%rsp; mov %edi,%ebx; call .+5; add $0x20,%rsp;
 * mov %ebx,%eax; pop %rbx; ret */
static const uint8_t f_call[] = { 0x53, 0x48, 0x83, 0xec, 0x20, 0x89, 0xfb, 0xe8, 0, 0, 0, 0,
				  0x48, 0x83, 0xc4, 0x20, 0x89, 0xd8, 0x5b, 0xc3 };

static bool test_call_before_epilogue_is_the_site(void)
{
	struct exit_site s[4];
	int n = retsites__find(f_call, sizeof(f_call), 0x1000, false, s, 4);

	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(s[0].vaddr, 0x1007);
	ASSERT_EQ_INT(s[0].sp_delta, 0x28);  /* 0x20 reserved + the pushed rbx */
	ASSERT_TRUE(!s[0].at_ret);
	ASSERT_EQ_INT(s[0].result_reg, ARG_REG_RBX);  /* mov %ebx,%eax after it */
	return true;
}

static bool test_rets_only(void)
{
	struct exit_site s[4];
	int n = retsites__find(f_call, sizeof(f_call), 0x1000, true, s, 4);

	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(s[0].vaddr, 0x1013);
	ASSERT_EQ_INT(s[0].sp_delta, 0);
	ASSERT_TRUE(s[0].at_ret);
	ASSERT_EQ_INT(s[0].result_reg, ARG_REG_RAX);
	return true;
}

/* push %rbx; test %edi,%edi; je 7; xor %eax,%eax; 7: pop %rbx; ret —
 * the pop is a branch target: nothing above it is on every path. */
static const uint8_t f_target[] = { 0x53, 0x85, 0xff, 0x74, 0x02, 0x31, 0xc0, 0x5b, 0xc3 };

static bool test_branch_target_keeps_the_site_below_it(void)
{
	struct exit_site s[4];
	int n = retsites__find(f_target, sizeof(f_target), 0x2000, false, s, 4);

	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(s[0].vaddr, 0x2008);
	ASSERT_TRUE(s[0].at_ret);
	return true;
}

/* sub $0x18,%rsp; xor %eax,%eax; jne <outside>; add $0x18,%rsp; ret —
 * a jcc that leaves the function (a stack-protector check's call of
 * __stack_chk_fail) is the ret's site. */
static const uint8_t f_chk[] = { 0x48, 0x83, 0xec, 0x18, 0x31, 0xc0, 0x75, 0x40, 0x48, 0x83, 0xc4, 0x18, 0xc3 };

static bool test_jcc_leaving_the_function_is_a_site(void)
{
	struct exit_site s[4];
	int n = retsites__find(f_chk, sizeof(f_chk), 0x3000, false, s, 4);

	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(s[0].vaddr, 0x3006);
	ASSERT_EQ_INT(s[0].sp_delta, 0x18);
	ASSERT_EQ_INT(s[0].result_reg, ARG_REG_RAX);
	return true;
}

/* sub $0x18,%rsp; xor %eax,%eax; jne d; add $0x18,%rsp; ret;
 * d: add $0x18,%rsp; mov $1,%eax; ret — a jcc taken inside the function
 * may go round a loop before the ret (it would fire more than once per
 * call): not a site; the first ret's line holds nothing else emulated (the
 * ret itself); the second starts at a branch target: the ret itself. */
static const uint8_t f_two[] = { 0x48, 0x83, 0xec, 0x18, 0x31, 0xc0, 0x75, 0x05, 0x48, 0x83, 0xc4, 0x18, 0xc3,
				 0x48, 0x83, 0xc4, 0x18, 0xb8, 0x01, 0, 0, 0, 0xc3 };

static bool test_jcc_inside_the_function_is_not_a_site(void)
{
	struct exit_site s[4];
	int n = retsites__find(f_two, sizeof(f_two), 0x3000, false, s, 4);

	ASSERT_EQ_INT(n, 2);
	ASSERT_EQ_INT(s[0].vaddr, 0x300c);
	ASSERT_TRUE(s[0].at_ret);
	ASSERT_EQ_INT(s[1].vaddr, 0x3016);
	ASSERT_TRUE(s[1].at_ret);
	return true;
}

/* An epilogue that restores rsp from rbp (leave): the distance is not
 * known past it, so the ret itself. push %rbp; mov %rsp,%rbp; call .+5;
 * leave; ret */
static const uint8_t f_leave[] = { 0x55, 0x48, 0x89, 0xe5, 0xe8, 0, 0, 0, 0, 0xc9, 0xc3 };

static bool test_untracked_stack_write_stops_the_walk(void)
{
	struct exit_site s[4];
	int n = retsites__find(f_leave, sizeof(f_leave), 0x4000, false, s, 4);

	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(s[0].vaddr, 0x400a);
	ASSERT_TRUE(s[0].at_ret);
	return true;
}

static bool test_too_many_rets_and_bad_input(void)
{
	uint8_t rets[12];
	struct exit_site s[4];

	memset(rets, 0xc3, sizeof(rets));
	ASSERT_EQ_INT(retsites__find(rets, sizeof(rets), 0, true, s, 4), -E2BIG);
	ASSERT_EQ_INT(retsites__find(NULL, 4, 0, true, s, 4), -EINVAL);
	ASSERT_EQ_INT(retsites__find(rets, 0, 0, true, s, 4), -EINVAL);
	/* A tail call only: no ret, no site. */
	{
		static const uint8_t tail[] = { 0xe9, 0, 0, 0, 0 };

		ASSERT_EQ_INT(retsites__find(tail, sizeof(tail), 0, false, s, 4), 0);
	}
	return true;
}

/* The system libsqlite3: sqlite3_step's site is on every return path, an
 * emulated instruction, and the entry's rsp is above it. */
static bool test_system_sqlite3_step(void)
{
	const char *path = "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0";
	struct elf_file *ef = elf_file__open(path);
	uint64_t vaddr, size;
	struct exit_site s[RETSITES_MAX];
	uint8_t *code;
	int n, i;

	if (!ef)
		SKIP("no system libsqlite3");
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_step", &vaddr, &size), 0);
	code = malloc(size);
	ASSERT_TRUE(code && elf_file__read_vaddr(ef, vaddr, code, size) == (ssize_t)size);
	n = retsites__find(code, size, vaddr, false, s, RETSITES_MAX);
	ASSERT_TRUE(n >= 1);
	for (i = 0; i < n; i++) {
		size_t off = s[i].vaddr - vaddr;

		ASSERT_TRUE(s[i].at_ret || probepos__classify(code + off, size - off) == PROBE_INSN_EMULATED);
		ASSERT_TRUE(s[i].sp_delta % 8 == 0);
	}
	ASSERT_TRUE(!s[0].at_ret);  /* Debian's build: the mutex_leave call */
	free(code);
	elf_file__close(ef);
	return true;
}

/* sub $0x10,%rsp; push %r8; call 0x5000; add $0x18,%rsp; ret — Debian's
 * sqlite3_prepare_v2: its callee finds the wrapper's return address at
 * rsp + 8 + 0x18. */
static const uint8_t f_wrap[] = { 0x48, 0x83, 0xec, 0x10, 0x41, 0x50, 0xe8, 0xf5, 0x0f, 0, 0,
				  0x48, 0x83, 0xc4, 0x18, 0xc3 };

static bool test_call_frame_of_a_wrapper(void)
{
	uint64_t r = 0;
	uint32_t depth = 0;

	ASSERT_EQ_INT(retsites__call_frame(f_wrap, sizeof(f_wrap), 0x4000, 0x5000, &r, &depth), 0);
	ASSERT_EQ_INT(r, 0x400b);
	ASSERT_EQ_INT(depth, 0x18);
	/* another callee: not found */
	ASSERT_EQ_INT(retsites__call_frame(f_wrap, sizeof(f_wrap), 0x4000, 0x6000, &r, &depth), -ENOENT);
	/* a branch after the call: not a thin wrapper */
	{
		uint8_t g[sizeof(f_wrap) + 2];

		memcpy(g, f_wrap, 11);
		g[11] = 0x74;  /* je .+0 */
		g[12] = 0x00;
		memcpy(g + 13, f_wrap + 11, sizeof(f_wrap) - 11);
		ASSERT_EQ_INT(retsites__call_frame(g, sizeof(g), 0x4000, 0x5000, &r, &depth), -ENOENT);
	}
	return true;
}

int main(void)
{
	RUN(test_call_before_epilogue_is_the_site);
	RUN(test_rets_only);
	RUN(test_branch_target_keeps_the_site_below_it);
	RUN(test_jcc_leaving_the_function_is_a_site);
	RUN(test_jcc_inside_the_function_is_not_a_site);
	RUN(test_untracked_stack_write_stops_the_walk);
	RUN(test_too_many_rets_and_bad_input);
	RUN(test_system_sqlite3_step);
	RUN(test_call_frame_of_a_wrapper);
	return harness_done();
}
