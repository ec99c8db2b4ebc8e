/* sqltrace.c — the sqltrace shim: a per-thread trace id plus the USDT probes
 * through which sqltrace-bpf learns it (API and contract in sqltrace.h).
 *
 * DESIGN
 * Each thread owns a thread-local buffer holding its id. A set copies the
 * sanitised id into it, a clear empties it; sqltrace_get_trace_id() returns
 * it. The buffer is kept up to date whether a tracer listens or not, so get
 * works everywhere and a probe can hand out a pointer to a stable,
 * NUL-terminated copy (never the caller's buffer, which may be freed as soon
 * as set returns). Skipping the copy without a listener would save a few ns
 * but make get lie, so it is not done.
 *
 * Probes (sys/sdt.h, ELF notes in .note.stapsdt, one nop each):
 *   sqltrace:set_trace_id(const char *id, size_t len)
 *       id  = the thread-local copy, NUL-terminated, len bytes before the NUL
 *       len = 1..SQLTRACE_TRACE_ID_MAX
 *   sqltrace:clear_trace_id()
 * Each probe has an is-enabled semaphore (sqltrace_<probe>_semaphore, an
 * unsigned short in section .probes, address recorded in the note). The
 * kernel increments it while a uprobe with that ref_ctr_offset is attached
 * (libbpf's bpf_program__attach_usdt does this), and the probe site is only
 * reached when it is non-zero; with no tracer a call is the copy plus one
 * load and a not-taken branch.
 *
 * Ordering: the copy is complete before the probe fires, and a thread only
 * ever writes its own record, so a tracer reading `id` at the probe sees
 * exactly the id just set. Nothing here is shared between threads: no locks.
 *
 * The semaphores have hidden visibility like everything but the API: the
 * tracer finds them through the note, not the symbol table.
 *
 * The probe site is a 5-byte nop (0f 1f 44 00 00), not sdt.h's 1-byte nop:
 * from Linux 6.18 on x86-64 the kernel rewrites a uprobe on exactly that
 * instruction into a call to a uprobe trampoline after its first hit, which
 * costs about a quarter of the int3 trap a 1-byte nop keeps taking
 * (measured on our VM with bpftrace attached: ~1.5 µs against ~5.5 µs per
 * call; shared/design/architecture.md has the same ratio). Older
 * kernels emulate or single-step it like any nop. That call pushes a return
 * address at rsp-8, inside the x86-64 red zone, so this file must be built
 * with -mno-red-zone (shim/module.mk does): no live data may sit below rsp
 * at a probe site. libbpf and bpftrace attach at the address in the note
 * whatever the nop's length, so nothing changes on the tracer's side.
 *
 * TLS: built with -mtls-dialect=gnu2 (TLS descriptors). Loaded at startup,
 * or dlopen'ed while glibc still has static TLS room, reaching the buffer is
 * a load; otherwise glibc allocates the thread's block once, on the
 * thread's first call — never on later calls.
 */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
/* sdt.h defines _SDT_NOP unconditionally and only expands it inside
 * STAP_PROBE*, so replacing it after the include is enough. Spelled as bytes:
 * the assembler shortens `nopl 0x0(%rax,%rax,1)` to a 4-byte form, and a
 * comma-separated .byte list would split the macro's argument. */
#undef _SDT_NOP
#define _SDT_NOP .ascii "\017\037\104\000\000"
#endif

#include "sqltrace.h"

#define SQLTRACE_API __attribute__((visibility("default")))

/* Is-enabled semaphores, named as sys/sdt.h expects (<provider>_<probe>_
 * semaphore). volatile: the kernel changes them behind the compiler's back.
 */
__extension__ volatile unsigned short sqltrace_set_trace_id_semaphore
	__attribute__((unused, section(".probes")));
__extension__ volatile unsigned short sqltrace_clear_trace_id_semaphore
	__attribute__((unused, section(".probes")));

/* The calling thread's current id, NUL-terminated, "" when none. Sized and
 * aligned for whole 8-byte words: a set checks ceil(n / 8) words of it. */
#define TLS_ID_SIZE (SQLTRACE_TRACE_ID_MAX + 8)
static __thread char tls_zId[TLS_ID_SIZE] __attribute__((aligned(8)));

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Returns non-zero when some byte of w is outside printable ASCII, i.e.
 * < 0x20 or > 0x7e (the classic "hasless"/"hasmore" word tests; a borrow or
 * carry can only mark bytes above a byte that really matches, so the answer
 * for the word as a whole is exact). This function can't fail. */
static inline uint64_t word_has_unprintable(uint64_t w)
{
	uint64_t below = (w - ONES * 0x20) & ~w & HIGHS;
	uint64_t above = ((w + ONES) | w) & HIGHS;

	return below | above;
}

/* Empties the calling thread's id and fires clear_trace_id. A static helper
 * so that set(NULL) does not go through the PLT to the exported clear. */
static inline void clear_tls(char *zDst)
{
	zDst[0] = '\0';
	if (__builtin_expect(sqltrace_clear_trace_id_semaphore, 0))
		STAP_PROBE(sqltrace, clear_trace_id);
}

SQLTRACE_API void sqltrace_clear_trace_id(void)
{
	clear_tls(tls_zId);
}

/* Copy first (strnlen and memcpy are vectorised in libc), then check the
 * copy a word at a time; the byte-by-byte repair runs only for an id that
 * needs it. */
SQLTRACE_API int sqltrace_set_trace_id(const char *zId)
{
	char *zDst = tls_zId;   /* one TLS address computation */
	uint64_t bad = 0;
	int altered;
	size_t n, i;

	if (!zId || !zId[0]) {
		clear_tls(zDst);
		return 0;
	}
	n = strnlen(zId, SQLTRACE_TRACE_ID_MAX);
	/* zId[n] is readable: the NUL strnlen stopped at, or at n == MAX a byte
	 * of a string that has not ended yet. */
	altered = zId[n] != '\0';
	memcpy(zDst, zId, n);
	memset(zDst + n, ' ', 8);           /* pad the last word: printable */
	for (i = 0; i < n; i += 8) {
		uint64_t w;

		memcpy(&w, zDst + i, sizeof(w));
		bad |= word_has_unprintable(w);
	}
	if (__builtin_expect(bad != 0, 0)) {
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)zDst[i];

			if (c < 0x20 || c > 0x7e)
				zDst[i] = '_';
		}
		altered = 1;
	}
	zDst[n] = '\0';
	if (__builtin_expect(sqltrace_set_trace_id_semaphore, 0))
		STAP_PROBE2(sqltrace, set_trace_id, zDst, n);
	return altered;
}

SQLTRACE_API const char *sqltrace_get_trace_id(void)
{
	return tls_zId;
}
