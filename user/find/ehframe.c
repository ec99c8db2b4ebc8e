/* ehframe.c — function extents from .eh_frame (ehframe.h).
 *
 * libdw's dwarf_next_cfi() walks the section's entries and checks their
 * lengths against the section; it leaves the FDE's address fields encoded
 * as its CIE's augmentation says ('R': the pointer encoding). Those are
 * decoded here for the encodings compilers emit (absolute or pc-relative,
 * 2/4/8-byte signed or unsigned); an FDE in any other encoding is skipped,
 * which only leaves a size unknown. The section is read through the
 * elf_file's libelf handle (pread into libelf's memory, bounded by the
 * file's size: see elfsym.c). */
#include "ehframe.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CIES 64

struct cie_enc {
	Dwarf_Off off;
	int enc;        /* DW_EH_PE_* of FDE addresses, -1 unknown */
};

/* Bytes of a value in pointer format fmt (low nibble), 0 for one not read
 * here (uleb128/sleb128). */
static size_t enc_size(int fmt)
{
	switch (fmt & 0x0f) {
	case DW_EH_PE_absptr: return 8;
	case DW_EH_PE_udata2: case DW_EH_PE_sdata2: return 2;
	case DW_EH_PE_udata4: case DW_EH_PE_sdata4: return 4;
	case DW_EH_PE_udata8: case DW_EH_PE_sdata8: return 8;
	default: return 0;
	}
}

/* Reads a value in format fmt (no application: pcrel is the caller's). */
static bool read_enc(const uint8_t *p, const uint8_t *end, int fmt, uint64_t *v)
{
	size_t n = enc_size(fmt);
	uint64_t u = 0;

	if (!n || (size_t)(end - p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		u |= (uint64_t)p[i] << (8 * i);
	if ((fmt & 0x0f) == DW_EH_PE_sdata2)
		u = (uint64_t)(int64_t)(int16_t)u;
	else if ((fmt & 0x0f) == DW_EH_PE_sdata4)
		u = (uint64_t)(int64_t)(int32_t)u;
	*v = u;
	return true;
}

/* The FDE pointer encoding a CIE's augmentation gives, -1 when it cannot
 * be told. */
static int cie_encoding(const Dwarf_CIE *cie)
{
	const char *a = cie->augmentation;
	const uint8_t *d = cie->augmentation_data, *end;

	if (!a || a[0] != 'z')
		return a && a[0] == '\0' ? DW_EH_PE_absptr : -1;
	if (!d)
		return -1;
	end = d + cie->augmentation_data_size;
	for (a++; *a; a++) {
		switch (*a) {
		case 'R':
			return d < end ? *d : -1;
		case 'L':
			d++;
			break;
		case 'P': {
			int penc;

			if (d >= end)
				return -1;
			penc = *d++;
			if (!enc_size(penc))
				return -1;
			d += enc_size(penc);
			break;
		}
		case 'S': case 'B':
			break;
		default:
			return -1;
		}
		if (d > end)
			return -1;
	}
	return DW_EH_PE_absptr;
}

/* The .eh_frame section: its data and address. */
static Elf_Data *eh_frame(Elf *elf, uint64_t *addr)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && strcmp(name, ".eh_frame") == 0) {
			*addr = sh.sh_addr;
			return elf_getdata(scn, NULL);
		}
	}
	return NULL;
}

static int cmp_fn(const void *a, const void *b)
{
	const struct ehframe_fn *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int ehframe__read(struct elf_file *ef, struct ehframe_fn **out, size_t *n)
{
	Elf *elf = elf_file__libelf(ef);
	struct cie_enc cies[MAX_CIES];
	size_t ncies = 0, cap = 0;
	struct ehframe_fn *v = NULL;
	uint64_t base = 0;
	Elf_Data *data;
	Dwarf_Off off = 0, next;
	const unsigned char *ident;

	*out = NULL;
	*n = 0;
	if (!elf || !(ident = (const unsigned char *)elf_getident(elf, NULL)))
		return -EINVAL;
	data = eh_frame(elf, &base);
	if (!data || !data->d_buf || data->d_size == 0)
		return -ENOENT;
	for (;; off = next) {
		Dwarf_CFI_Entry e;
		const uint8_t *p, *end = (const uint8_t *)data->d_buf + data->d_size;
		uint64_t start, range;
		int enc = -1;

		if (dwarf_next_cfi(ident, data, true, off, &next, &e) != 0 || next <= off)
			break;
		if (dwarf_cfi_cie_p(&e)) {
			if (ncies < MAX_CIES) {
				cies[ncies].off = off;
				cies[ncies++].enc = cie_encoding(&e.cie);
			}
			continue;
		}
		for (size_t i = 0; i < ncies; i++)
			if (cies[i].off == e.fde.CIE_pointer)
				enc = cies[i].enc;
		if (enc < 0 || enc == DW_EH_PE_omit || (enc & 0xf0 & ~DW_EH_PE_pcrel))
			continue;
		p = e.fde.start;
		if (p < (const uint8_t *)data->d_buf || p > end || e.fde.end < p || e.fde.end > end)
			continue;
		end = e.fde.end;
		if (!read_enc(p, end, enc, &start) || !read_enc(p + enc_size(enc), end, enc & 0x0f, &range))
			continue;
		if (enc & DW_EH_PE_pcrel)
			start += base + (uint64_t)(p - (const uint8_t *)data->d_buf);
		if (!start || !range || range > (1u << 24))
			continue;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct ehframe_fn *g = ncap > SIZE_MAX / sizeof(*g) ? NULL : realloc(v, ncap * sizeof(*g));

			if (!g) {
				free(v);
				*n = 0;
				return -ENOMEM;
			}
			v = g;
			cap = ncap;
		}
		v[*n].start = start;
		v[*n].size = range;
		(*n)++;
	}
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_fn);
	*out = v;
	return 0;
}

uint64_t ehframe__size_at(const struct ehframe_fn *v, size_t n, uint64_t start)
{
	struct ehframe_fn key = { .start = start };
	const struct ehframe_fn *hit = v && n ? bsearch(&key, v, n, sizeof(*v), cmp_fn) : NULL;

	return hit ? hit->size : 0;
}

int ehframe__sizes(struct elf_file *ef, const uint64_t *vaddr, uint64_t *size, size_t n)
{
	struct ehframe_fn *v;
	size_t nv;
	int err = ehframe__read(ef, &v, &nv);

	for (size_t i = 0; i < n; i++)
		size[i] = err ? 0 : ehframe__size_at(v, nv, vaddr[i]);
	free(v);
	return err;
}
