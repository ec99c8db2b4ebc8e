/* ehframe.h — where functions end in a file without symbols: the call
 * frame information (.eh_frame) every x86-64 compiler emits for unwinding,
 * which strip leaves in place. One FDE covers one function (or the hot or
 * cold part GCC split it into), so the FDE that starts at a function's
 * first byte gives that function's extent. Read with libdw (elfutils). */
#ifndef SQLTRACE_EHFRAME_H
#define SQLTRACE_EHFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "elfsym.h"

/* One FDE: the code [start, start + size) it describes. */
struct ehframe_fn {
	uint64_t start, size;
};

/* Every FDE of the file, sorted by start, into *out (malloc'd; free it).
 * Returns 0 (possibly *n == 0), -ENOENT when the file has no .eh_frame,
 * -ENOMEM, -EINVAL. */
int ehframe__read(struct elf_file *ef, struct ehframe_fn **out, size_t *n);

/* The size of the FDE of v (sorted, n entries) that starts at start, 0
 * when none does. */
uint64_t ehframe__size_at(const struct ehframe_fn *v, size_t n, uint64_t start);

/* For each vaddr[i] (0 skipped): size[i] = the length of the FDE that
 * starts exactly there, 0 when none does (no unwind information for it,
 * or vaddr is not a function's start). Returns 0, or -ENOENT when the file
 * has no call frame information at all (sizes all 0). */
int ehframe__sizes(struct elf_file *ef, const uint64_t *vaddr, uint64_t *size, size_t n);

#endif
