/* cgofind.c — a C SQLite in a Go executable located through Go's cgo
 * wrappers (see cgofind.h). Everything is read from the file: the Go
 * wrapper's code (gosym), the data word it loads, the C stub's code;
 * every address is checked to lie in the file's code before use. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>
#include <gelf.h>

#include "cgofind.h"
#include "ehframe.h"
#include "gosym.h"

#define STUB_MAX 512         /* bytes of a C stub decoded (they are ~64) */
#define WRAPPER_MAX 4096     /* bytes of a Go wrapper decoded */
#define CALLS_MAX 8          /* distinct call targets kept per stub */

struct wrapper {
	size_t idx;              /* apitable_names index */
	int guessed;
	uint64_t slot;           /* the data word holding the stub's address */
	uint64_t stub;
	uint64_t calls[CALLS_MAX];
	size_t ncalls;
};

int cgofind__api_name(const char *cname, size_t *idx, int *guessed)
{
	char buf[80];
	size_t i, n;

	*guessed = 0;
	if (cname[0] == '_') {
		/* a binding's helper: "_sqlite3_step_row_internal" */
		snprintf(buf, sizeof(buf), "%s", cname + 1);
		n = strlen(buf);
		if (n > 9 && strcmp(buf + n - 9, "_internal") == 0)
			buf[n -= 9] = '\0';
		if (n > 4 && strcmp(buf + n - 4, "_row") == 0)
			buf[n -= 4] = '\0';
		*guessed = 1;
		cname = buf;
	}
	if (strncmp(cname, "sqlite3_", 8) != 0)
		return -ENOENT;
	for (i = 0; i < APITABLE_NAMES; i++)
		if (apitable_names[i] && strcmp(apitable_names[i], cname) == 0) {
			*idx = i;
			return 0;
		}
	return -ENOENT;
}

/* The data word a wrapper passes to runtime.cgocall: the last
 * `mov disp(%rip), %rax` before the call. Returns 0 with *slot, or -ENOENT. */
static int wrapper_slot(csh h, const uint8_t *code, size_t len, uint64_t base, uint64_t cgocall, uint64_t *slot)
{
	cs_insn *insn = NULL;
	size_t n = cs_disasm(h, code, len, base, 0, &insn), i;
	uint64_t last = 0;
	int e = -ENOENT;

	for (i = 0; i < n; i++) {
		cs_x86 *x = &insn[i].detail->x86;

		if (insn[i].id == X86_INS_MOV && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
		    x->operands[0].reg == X86_REG_RAX && x->operands[1].type == X86_OP_MEM &&
		    x->operands[1].size == 8 && x->operands[1].mem.base == X86_REG_RIP &&
		    x->operands[1].mem.index == X86_REG_INVALID) {
			last = insn[i].address + insn[i].size + (uint64_t)x->operands[1].mem.disp;
		} else if (insn[i].id == X86_INS_CALL && x->op_count == 1 && x->operands[0].type == X86_OP_IMM) {
			if ((uint64_t)x->operands[0].imm == cgocall && last) {
				*slot = last;
				e = 0;
				break;
			}
			last = 0;   /* a call in between clobbers rax */
		}
	}
	cs_free(insn, n);
	return e;
}

/* The direct call targets of the stub at w->stub (decoded to its first
 * ret, within its .eh_frame extent, else STUB_MAX bytes; a jump out of it
 * is a tail call): distinct, in order, at most CALLS_MAX. */
static void stub_calls(csh h, struct elf_file *ef, const struct ehframe_fn *fde, size_t nfde, struct wrapper *w)
{
	uint8_t code[STUB_MAX];
	uint64_t size = ehframe__size_at(fde, nfde, w->stub);
	ssize_t got = elf_file__read_vaddr(ef, w->stub, code, size && size < sizeof(code) ? size : sizeof(code));
	cs_insn *insn = NULL;
	size_t n, i, k;

	w->ncalls = 0;
	if (got <= 0)
		return;
	n = cs_disasm(h, code, (size_t)got, w->stub, 0, &insn);
	for (i = 0; i < n; i++) {
		cs_x86 *x = &insn[i].detail->x86;
		uint64_t t;

		if (insn[i].id == X86_INS_RET)
			break;
		if ((insn[i].id != X86_INS_CALL && insn[i].id != X86_INS_JMP) || x->op_count != 1 ||
		    x->operands[0].type != X86_OP_IMM)
			continue;
		t = (uint64_t)x->operands[0].imm;
		if (insn[i].id == X86_INS_JMP && t >= w->stub && t < w->stub + (uint64_t)got)
			continue;   /* a branch inside the stub */
		for (k = 0; k < w->ncalls && w->calls[k] != t; k++)
			;
		if (k == w->ncalls && w->ncalls < CALLS_MAX)
			w->calls[w->ncalls++] = t;
		if (insn[i].id == X86_INS_JMP)
			break;      /* a tail call ends the stub */
	}
	cs_free(insn, n);
}

/* True when t lies in a section whose name starts with ".plt" (.plt,
 * .plt.got, .plt.sec) or the code at t is a PLT-style entry (an indirect
 * jump through the GOT, after an optional endbr64): a function of another
 * file, not this one's. */
static bool is_plt(csh h, struct elf_file *ef, uint64_t t)
{
	Elf *elf = elf_file__libelf(ef);
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	uint8_t code[16];
	cs_insn *insn = NULL;
	size_t n, i;
	bool plt = false;

	if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0)
		while ((scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr sh;
			const char *name;

			if (!gelf_getshdr(scn, &sh) || t < sh.sh_addr || t - sh.sh_addr >= sh.sh_size)
				continue;
			name = elf_strptr(elf, shstrndx, sh.sh_name);
			if (name && strncmp(name, ".plt", 4) == 0)
				return true;
		}
	if (elf_file__read_vaddr(ef, t, code, sizeof(code)) != (ssize_t)sizeof(code))
		return true;
	n = cs_disasm(h, code, sizeof(code), t, 2, &insn);
	for (i = 0; i < n; i++) {
		cs_x86 *x = &insn[i].detail->x86;

		if (insn[i].id == X86_INS_ENDBR64)
			continue;
		plt = insn[i].id == X86_INS_JMP && x->op_count == 1 && x->operands[0].type == X86_OP_MEM;
		break;
	}
	cs_free(insn, n);
	return plt;
}

struct slot_fill {
	struct wrapper *w;
	size_t n;
};

/* A position-independent file keeps the stubs' addresses in relocations. */
static int fill_from_reloc(void *ctx, uint64_t where, uint64_t value)
{
	struct slot_fill *f = ctx;

	for (size_t i = 0; i < f->n; i++)
		if (f->w[i].slot == where && !f->w[i].stub)
			f->w[i].stub = value;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define NEAR_FNS 8           /* functions on either side looked at */
#define HOPS_MAX 3           /* helpers followed down */

/* True when t is a function of the binding's own C code: a stub (stubs[0..
 * n), sorted) is among the NEAR_FNS functions before or after it (by
 * .eh_frame order). cgo compiles a binding's helpers into the objects of
 * its stubs; SQLite's API functions sit deep among SQLite's own. */
static bool beside_stubs(const struct ehframe_fn *fde, size_t nfde, const uint64_t *stubs, size_t n, uint64_t t)
{
	size_t lo = 0, hi = nfde, k;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fde[mid].start < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == nfde || fde[lo].start != t)
		return true;    /* not a function start: never believed */
	for (k = 1; k <= NEAR_FNS; k++)
		if ((lo >= k && bsearch(&fde[lo - k].start, stubs, n, sizeof(*stubs), cmp_u64)) ||
		    (lo + k < nfde && bsearch(&fde[lo + k].start, stubs, n, sizeof(*stubs), cmp_u64)))
			return true;
	return false;
}

/* The address every stub calls (_cgo_topofstack): the target most stubs
 * call, which must be called by at least two. 0 when none. */
static uint64_t common_target(const struct wrapper *w, size_t n)
{
	uint64_t best = 0;
	size_t bestn = 0, i, j, k, c;

	for (i = 0; i < n; i++)
		for (j = 0; j < w[i].ncalls; j++) {
			uint64_t t = w[i].calls[j];

			for (c = 0, k = 0; k < n; k++)
				for (size_t m = 0; m < w[k].ncalls; m++)
					c += w[k].calls[m] == t;
			if (c > bestn) {
				bestn = c;
				best = t;
			}
		}
	return bestn >= 2 ? best : 0;
}

/* The one target w calls besides common, 0 when none or several. */
static uint64_t one_call(const struct wrapper *w, uint64_t common)
{
	uint64_t t = 0;
	size_t k, others = 0;

	for (k = 0; k < w->ncalls; k++)
		if (w->calls[k] != common) {
			t = w->calls[k];
			others++;
		}
	return others == 1 ? t : 0;
}

static void record(struct cgofind *out, const struct wrapper *w, uint64_t t, uint8_t *conflict)
{
	size_t i = w->idx;

	if (conflict[i])
		return;
	if (!out->fn[i] || (out->guessed[i] && !w->guessed)) {
		out->fn[i] = t;
		out->guessed[i] = (uint8_t)w->guessed;
	} else if (out->fn[i] != t && out->guessed[i] == w->guessed) {
		conflict[i] = 1;   /* two wrappers disagree: neither is believed */
		out->fn[i] = 0;
	}
}

int cgofind__find(struct elf_file *ef, struct cgofind *out)
{
	struct gosym *gs = NULL;
	struct wrapper *w = NULL;
	struct ehframe_fn *fde = NULL;
	uint64_t *stubs = NULL;
	size_t nfde = 0, nstubs = 0;
	uint8_t conflict[APITABLE_NAMES] = { 0 };
	uint8_t *code = NULL;
	uint64_t size, cgocall, end, common;
	size_t nw = 0, capw = 0, i;
	char err[256];
	csh h;
	int fd, e;
	bool unfilled = false;

	memset(out, 0, sizeof(*out));
	fd = elf_file__fd(ef, &size);
	if (fd < 0)
		return -ENOENT;
	e = gosym__open_fd(fd, size, &gs, err, sizeof(err));
	if (e)
		return e == -ENOMEM ? e : -ENOENT;
	snprintf(out->go_version, sizeof(out->go_version), "%s", gosym__version(gs));
	if (gosym__find(gs, "runtime.cgocall", &cgocall, &end) != 0) {
		gosym__free(gs);
		return -ENOENT;
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) {
		gosym__free(gs);
		return -EINVAL;
	}
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	code = malloc(WRAPPER_MAX);
	if (!code) {
		e = -ENOMEM;
		goto out;
	}
	for (i = 0; i < gosym__nfuncs(gs); i++) {
		const char *name, *c;
		uint64_t lo, hi;
		struct wrapper x = { 0 };

		if (gosym__func(gs, i, &name, &lo, &hi) != 0 || !(c = strstr(name, "._Cfunc_")))
			continue;
		if (cgofind__api_name(c + 8, &x.idx, &x.guessed) != 0 || hi <= lo || hi - lo > WRAPPER_MAX)
			continue;
		if (gosym__read(gs, lo, code, hi - lo) != 0 ||
		    wrapper_slot(h, code, hi - lo, lo, cgocall, &x.slot) != 0)
			continue;
		if (gosym__read(gs, x.slot, &x.stub, sizeof(x.stub)) != 0)
			continue;
		if (!out->pkg[0] && c > name) {
			size_t l = (size_t)(c - name);

			snprintf(out->pkg, sizeof(out->pkg), "%.*s", (int)(l < sizeof(out->pkg) ? l : sizeof(out->pkg) - 1), name);
		}
		if (!x.stub)
			unfilled = true;
		if (nw == capw) {
			size_t cap = capw ? 2 * capw : 64;
			struct wrapper *g = realloc(w, cap * sizeof(*g));

			if (!g) {
				e = -ENOMEM;
				goto out;
			}
			w = g;
			capw = cap;
		}
		w[nw++] = x;
	}
	if (unfilled) {
		struct slot_fill f = { w, nw };

		elf_file__relative_relocs(ef, fill_from_reloc, &f);
	}
	if (ehframe__read(ef, &fde, &nfde) != 0 || !(stubs = malloc((nw + 1) * sizeof(*stubs)))) {
		e = -ENOENT;   /* no call frame information: helpers cannot be told */
		goto out;
	}
	for (i = 0; i < nw; i++)
		if (w[i].stub && elf_file__is_exec_addr(ef, w[i].stub))
			stub_calls(h, ef, fde, nfde, &w[i]);
	common = common_target(w, nw);
	for (i = 0; i < nw; i++)
		stubs[nstubs++] = w[i].stub;
	qsort(stubs, nstubs, sizeof(*stubs), cmp_u64);
	for (i = 0; i < nw; i++) {
		uint64_t t = one_call(&w[i], common);
		int hops;

		/* A helper the compiler did not inline into its stub (only a
		 * guessed name can be one: a wrapper named after an API function
		 * calls it): its own one call, up to HOPS_MAX levels down. */
		for (hops = 0; t && !is_plt(h, ef, t) && beside_stubs(fde, nfde, stubs, nstubs, t); hops++) {
			struct wrapper helper = { .stub = t };

			if (!w[i].guessed || hops == HOPS_MAX) {
				t = 0;
				break;
			}
			stub_calls(h, ef, fde, nfde, &helper);
			t = one_call(&helper, common);
		}
		if (!t || !common || !elf_file__is_exec_addr(ef, t) || is_plt(h, ef, t))
			continue;
		out->nwrappers++;
		record(out, &w[i], t, conflict);
	}
	for (i = 0; i < APITABLE_NAMES; i++)
		out->nfound += out->fn[i] != 0;
	e = out->nfound ? 0 : -ENOENT;
out:
	cs_close(&h);
	free(code);
	free(w);
	free(fde);
	free(stubs);
	gosym__free(gs);
	return e;
}
