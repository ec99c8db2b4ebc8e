/* fuzz_elfsym.c — libFuzzer target for user/find/elfsym.c, the ELF reader that
 * runs as root on files other users and containers own (a target's
 * executable, its libraries, their debug files). The input is the whole
 * file: it is written to a memfd and opened through elf_file__open_fd(),
 * the path the tool takes, then every query is made. Build and run:
 * `make fuzz-run-files` (see the Makefile); tests/unit/test_fuzz_corpus.c
 * replays tests/fuzz/corpus/elfsym/ on every `make unit`.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it checks:
 *   - a lookup gives the same answer twice (the index is built once, and a
 *     failure to build it is kept);
 *   - a found symbol's file offset lies within the file, and reading at
 *     its address never returns more than asked;
 *   - the build id is never longer than the note that holds it could be;
 *   - SQLite's API table (apitable.c), when one is found, lists only code
 *     addresses and a version string that fits; a source id found is
 *     terminated within the buffer;
 *   - the FDEs read from .eh_frame (ehframe.c) are sorted and non-empty;
 *   - SQLite's functions found through a Go program's cgo wrappers
 *     (cgofind.c) are code addresses, as many as it counts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "apitable.h"
#include "cgofind.h"
#include "ehframe.h"
#include "elfsym.h"

static const char *const fuzz_elf_names[] = {
	"sqlite3_prepare_v2", "sqlite3_step", "main", "_start", "f", "a", "",
};

/* The memfd the input is written into, made once per process. */
static int fuzz_elf_memfd(void)
{
	static int fd = -1;

	if (fd < 0)
		fd = memfd_create("fuzz_elfsym", MFD_CLOEXEC);
	return fd;
}

/* Runs one input through the reader and the checks above. Returns NULL
 * when all hold, else what failed. */
static const char *fuzz_elfsym_check(const uint8_t *data, size_t size)
{
	int mfd = fuzz_elf_memfd(), fd;
	struct elf_file *ef;
	const char *bad = NULL;
	unsigned char id[64];
	char rel[256], str[64];
	uint8_t buf[256];

	if (mfd < 0)
		return NULL;    /* no memfd here: nothing to check */
	if (ftruncate(mfd, 0) != 0 || (size && pwrite(mfd, data, size, 0) != (ssize_t)size))
		return NULL;
	fd = dup(mfd);
	if (fd < 0)
		return NULL;
	ef = elf_file__open_fd(fd, "fuzz-input");
	if (!ef)
		return NULL;    /* refused: fine */
	(void)elf_file__has_symtab(ef);
	(void)elf_file__is_dyn(ef);
	int n = elf_file__build_id(ef, id, sizeof(id));
	if (n > (int)size)
		bad = "build id longer than the file";
	(void)elf_file__debug_relpath(ef, rel, sizeof(rel));
	for (size_t i = 0; !bad && i < sizeof(fuzz_elf_names) / sizeof(fuzz_elf_names[0]); i++) {
		uint64_t va = 0, sz = 0, va2 = 0, sz2 = 0, off;
		int r1 = elf_file__find_func(ef, fuzz_elf_names[i], &va, &sz);
		int r2 = elf_file__find_func(ef, fuzz_elf_names[i], &va2, &sz2);

		if (r1 != r2 || (r1 == 0 && (va != va2 || sz != sz2))) {
			bad = "a lookup gave two answers";
			break;
		}
		if (r1 != 0 && r1 != -ENOENT && r1 != -EINVAL && r1 != -ENOMEM) {
			bad = "unexpected lookup error";
			break;
		}
		if (r1 == 0 && elf_file__vaddr_to_offset(ef, va, &off) == 0) {
			if (off >= size) {
				bad = "symbol offset beyond the file";
				break;
			}
			ssize_t got = elf_file__read_vaddr(ef, va, buf, sizeof(buf));
			if (got > (ssize_t)sizeof(buf))
				bad = "read more than asked";
		}
		(void)elf_file__find_object(ef, fuzz_elf_names[i], &va, &sz);
		(void)elf_file__read_string_symbol(ef, fuzz_elf_names[i], str, sizeof(str));
	}
	uint64_t lo, hi;
	if (!bad && elf_file__func_span(ef, "", &lo, &hi) == 0 && hi < lo)
		bad = "span ends before it starts";
	(void)elf_file__func_span(ef, "sqlite3", &lo, &hi);
	if (!bad) {
		struct apitable *t = malloc(sizeof(*t));
		char id[32];

		if (t && apitable__find(ef, t) == 0) {
			if (t->n > APITABLE_NAMES || !memchr(t->version_str, '\0', sizeof(t->version_str)))
				bad = "API table: count or version out of bounds";
			for (size_t i = 0; !bad && i < t->n; i++)
				if (t->fn[i] && !elf_file__is_exec_addr(ef, t->fn[i]))
					bad = "API table: a member that is not code";
		}
		free(t);
		if (!bad && apitable__source_id(ef, id, sizeof(id)) == 0 && !memchr(id, '\0', sizeof(id)))
			bad = "source id not terminated";
	}
	if (!bad) {
		struct cgofind *f = malloc(sizeof(*f));

		if (f && cgofind__find(ef, f) == 0) {
			size_t n = 0;

			for (size_t i = 0; !bad && i < APITABLE_NAMES; i++)
				if (f->fn[i] && (n++, !elf_file__is_exec_addr(ef, f->fn[i])))
					bad = "cgo wrappers: a function that is not code";
			if (!bad && (n != f->nfound || !memchr(f->pkg, '\0', sizeof(f->pkg))))
				bad = "cgo wrappers: count or package out of bounds";
		}
		free(f);
	}
	if (!bad) {
		struct ehframe_fn *v = NULL;
		size_t nv = 0;

		if (ehframe__read(ef, &v, &nv) == 0)
			for (size_t i = 0; !bad && i < nv; i++)
				if (!v[i].size || (i && v[i].start < v[i - 1].start))
					bad = "FDEs unsorted or empty";
		free(v);
	}
	elf_file__close(ef);
	return bad;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_elfsym_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_elfsym: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
