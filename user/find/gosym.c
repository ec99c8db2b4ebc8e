/* gosym.c — Go's function table, module data and build info read from an
 * executable's file (see gosym.h). Layout facts come from Go's source
 * (src/runtime/symtab.go, runtime2.go, internal/abi, debug/buildinfo):
 *   pcHeader (1.18+): magic u32, pad u8 u8, minLC u8, ptrSize u8, nfunc,
 *     nfiles, textStart, funcnameOffset, cuOffset, filetabOffset,
 *     pctabOffset, pclnOffset (words); functab at pclnOffset: nfunc + 1
 *     pairs {entryoff u32, funcoff u32}, entries relative to textStart,
 *     the last one the end of text; _func: entryOff u32, nameOff i32.
 *   moduledata: pcHeader first, funcnametab second (a slice); types,
 *     etypes and the itabs (itablinks, or from 1.27 itaboffset/itabsize)
 *     at offsets that depend on the release (the table below).
 *   _type (abi.Type): size at 0, tflag at 20, str (nameOff from
 *     moduledata.types) at 40; a name is a flags byte, a uvarint length,
 *     the bytes (1.17+); tflagExtraStar (2) means drop a leading '*'.
 *   itab: inter (an interfacetype, which starts with its _type) at 0,
 *     _type at 8, hash u32 at 16, fun[n] at 24 (n: the interface's
 *     method count, interfacetype.Methods' length at 64; fun[0] == 0:
 *     the type does not implement it, one word).
 *   build info: "\xff Go buildinf:", ptr size, flags; flags & 2: the
 *     version inline at 32 as a uvarint-prefixed string (1.18+), else two
 *     pointers to Go string headers. */
#include "gosym.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "godwarf.h"

#define MAX_SEGS 16
#define MAX_PCLN (512u << 20)    /* pclntab bytes read at most */
#define MAX_FUNCS (4u << 20)
#define MAX_ITABS (1u << 20)
#define ITAB_FUN_OFF 24          /* offsetof(abi.ITab, Fun) */
#define ITYPE_NMETHODS_OFF 64    /* offsetof(abi.InterfaceType, Methods) + 8: its length */
#define SCAN_CHUNK (1u << 20)
#define MAX_DWARF (256u << 20)   /* decompressed DWARF section bytes */
#define MD_TEXT_OFF 176          /* offsetof(runtime.moduledata, text), 1.18 to 1.27 */

struct seg {
	uint64_t vaddr, memsz, off, filesz;
	uint32_t flags;
};

struct gosym {
	int fd;                    /* -1: buffer */
	const uint8_t *buf;
	uint64_t size;
	struct seg segs[MAX_SEGS];
	size_t nsegs;
	uint8_t *pcln;             /* the pclntab, read whole */
	uint64_t pcln_len, pcln_vaddr;
	uint32_t magic;
	uint64_t nfunc, text_start, funcname_off, pcln_off;
	uint64_t md;               /* moduledata vaddr, 0 not found */
	char version[64];
	bool layout_known;
	bool mismatch;             /* module data contradicts the release's layout */
	bool oom;                  /* out of memory listing the itabs */
	struct gosym_layout layout;
	uint64_t types;            /* moduledata.types */
	uint64_t itabs, nitabs;    /* moduledata.itablinks (up to 1.26); count */
	uint64_t *itab_at;         /* 1.27+: each inline itab's address, nitabs */
};

static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Reads n bytes at file offset off. 0 or -EIO (short: beyond the file). */
static int rd(const struct gosym *g, uint64_t off, void *dst, size_t n)
{
	if (off > g->size || n > g->size - off)
		return -EIO;
	if (g->fd < 0) {
		memcpy(dst, g->buf + off, n);
		return 0;
	}
	while (n) {
		ssize_t r = pread(g->fd, dst, n, (off_t)off);

		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		dst = (uint8_t *)dst + r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
	return 0;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

int gosym__vaddr_to_off(const struct gosym *g, uint64_t vaddr, uint64_t len, uint64_t *off)
{
	size_t i;

	for (i = 0; i < g->nsegs; i++) {
		const struct seg *s = &g->segs[i];

		if (vaddr >= s->vaddr && vaddr - s->vaddr <= s->filesz && len <= s->filesz - (vaddr - s->vaddr)) {
			*off = s->off + (vaddr - s->vaddr);
			return 0;
		}
	}
	return -ENOENT;
}

int gosym__read(const struct gosym *g, uint64_t vaddr, void *buf, size_t len)
{
	uint64_t off;

	if (gosym__vaddr_to_off(g, vaddr, len, &off))
		return -ENOENT;
	return rd(g, off, buf, len);
}

static int off_to_vaddr(const struct gosym *g, uint64_t off, uint64_t *vaddr)
{
	size_t i;

	for (i = 0; i < g->nsegs; i++)
		if (off >= g->segs[i].off && off - g->segs[i].off < g->segs[i].filesz) {
			*vaddr = g->segs[i].vaddr + (off - g->segs[i].off);
			return 0;
		}
	return -ENOENT;
}

/* ELF header, program headers; a section by name (0 when absent). */
static int read_elf(struct gosym *g, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	size_t i;

	if (rd(g, 0, &eh, sizeof(eh)) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
		say(err, errlen, "not an ELF file");
		return -ENOEXEC;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) {
		say(err, errlen, "not an x86-64 ELF file");
		return -ENOEXEC;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256) {
		say(err, errlen, "malformed ELF program headers");
		return -EINVAL;
	}
	for (i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (rd(g, eh.e_phoff + i * sizeof(ph), &ph, sizeof(ph))) {
			say(err, errlen, "malformed ELF program headers");
			return -EINVAL;
		}
		if (ph.p_type != PT_LOAD || g->nsegs == MAX_SEGS)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > g->size || ph.p_filesz > g->size - ph.p_offset)
			continue;  /* never read outside the file */
		g->segs[g->nsegs++] = (struct seg){ ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, ph.p_flags };
	}
	if (!g->nsegs) {
		say(err, errlen, "no loadable segment");
		return -ENOEXEC;
	}
	return 0;
}

/* Finds section name: its address, file offset and size. 0 or -ENOENT. */
static int find_section_flags(const struct gosym *g, const char *name, uint64_t *addr, uint64_t *off,
			      uint64_t *size, uint64_t *flags)
{
	Elf64_Ehdr eh;
	Elf64_Shdr strs;
	size_t i, nlen = strlen(name);

	if (rd(g, 0, &eh, sizeof(eh)) || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum > 4096 ||
	    eh.e_shstrndx >= eh.e_shnum ||
	    rd(g, eh.e_shoff + (uint64_t)eh.e_shstrndx * sizeof(strs), &strs, sizeof(strs)))
		return -ENOENT;
	for (i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr sh;
		char nm[32];

		if (rd(g, eh.e_shoff + i * sizeof(sh), &sh, sizeof(sh)) || sh.sh_type == SHT_NOBITS ||
		    sh.sh_name >= strs.sh_size || nlen + 1 > sizeof(nm) ||
		    rd(g, strs.sh_offset + sh.sh_name, nm, nlen + 1) || memcmp(nm, name, nlen + 1) != 0)
			continue;
		if (sh.sh_offset > g->size || sh.sh_size > g->size - sh.sh_offset)
			return -ENOENT;
		*addr = sh.sh_addr;
		*off = sh.sh_offset;
		*size = sh.sh_size;
		*flags = sh.sh_flags;
		return 0;
	}
	return -ENOENT;
}

static int find_section(const struct gosym *g, const char *name, uint64_t *addr, uint64_t *off, uint64_t *size)
{
	uint64_t flags;

	return find_section_flags(g, name, addr, off, size, &flags);
}

/* A DWARF section read whole, decompressed (SHF_COMPRESSED with zlib, or
 * the older .zdebug_ form: "ZLIB" and a big-endian size). Returns 0 with a
 * malloc'd *buf, or -errno. */
static int read_debug(const struct gosym *g, const char *name, uint8_t **buf, size_t *len)
{
	uint64_t addr, off, size, flags, want;
	char zname[32];
	uint8_t *raw, *out;
	size_t hdr;
	uLongf outlen;
	bool z = false;

	if (find_section_flags(g, name, &addr, &off, &size, &flags) != 0) {
		snprintf(zname, sizeof(zname), ".z%s", name + 1);
		if (find_section_flags(g, zname, &addr, &off, &size, &flags) != 0)
			return -ENOENT;
		z = true;
	}
	if (size < 12 || size > MAX_DWARF)
		return -EINVAL;
	raw = malloc(size);
	if (!raw)
		return -ENOMEM;
	if (rd(g, off, raw, size)) {
		free(raw);
		return -EIO;
	}
	if (z) {
		if (memcmp(raw, "ZLIB", 4) != 0) {
			free(raw);
			return -EINVAL;
		}
		want = 0;
		for (hdr = 4; hdr < 12; hdr++)
			want = want << 8 | raw[hdr];
	} else if (flags & SHF_COMPRESSED) {
		Elf64_Chdr ch;

		if (size < sizeof(ch)) {
			free(raw);
			return -EINVAL;
		}
		memcpy(&ch, raw, sizeof(ch));
		if (ch.ch_type != ELFCOMPRESS_ZLIB) {
			free(raw);
			return -ENOTSUP;
		}
		want = ch.ch_size;
		hdr = sizeof(ch);
	} else {
		*buf = raw;
		*len = (size_t)size;
		return 0;
	}
	if (want == 0 || want > MAX_DWARF || !(out = malloc(want))) {
		free(raw);
		return want > MAX_DWARF ? -EFBIG : -ENOMEM;
	}
	outlen = (uLongf)want;
	if (uncompress(out, &outlen, raw + hdr, (uLong)(size - hdr)) != Z_OK || outlen != want) {
		free(raw);
		free(out);
		return -EINVAL;
	}
	free(raw);
	*buf = out;
	*len = (size_t)want;
	return 0;
}

/* Scans the file-backed part of the segments (writable or not, as asked)
 * for an aligned match; match() looks at the bytes at a file offset.
 * Returns the file offset, or 0 when none. */
static uint64_t scan(const struct gosym *g, bool writable, unsigned align,
		     bool (*match)(const struct gosym *, uint64_t, const uint8_t *, size_t, void *), void *ctx)
{
	uint8_t *chunk = malloc(SCAN_CHUNK);
	uint64_t found = 0;
	size_t i;

	if (!chunk)
		return 0;
	for (i = 0; i < g->nsegs && !found; i++) {
		const struct seg *s = &g->segs[i];
		uint64_t pos = s->off, end = s->off + s->filesz;

		if (!!(s->flags & PF_W) != writable)
			continue;
		pos = (pos + align - 1) / align * align;
		while (pos < end && !found) {
			size_t n = end - pos < SCAN_CHUNK ? (size_t)(end - pos) : SCAN_CHUNK, j;

			if (rd(g, pos, chunk, n))
				break;
			for (j = 0; j + 16 <= n; j += align)
				if (match(g, pos + j, chunk + j, n - j, ctx)) {
					found = pos + j;
					break;
				}
			if (n < SCAN_CHUNK)
				break;  /* that was the segment's last chunk */
			pos += n - 64;  /* overlap: a match across chunks is seen whole */
		}
	}
	free(chunk);
	return found;
}

static bool pcln_magic(uint32_t m)
{
	return m == 0xfffffff0u || m == 0xfffffff1u;
}

static bool match_pcln(const struct gosym *g, uint64_t off, const uint8_t *p, size_t n, void *ctx)
{
	(void)g, (void)off, (void)ctx;
	return n >= 72 && pcln_magic(le32(p)) && p[4] == 0 && p[5] == 0 && p[6] == 1 && p[7] == 8;
}

static int read_pclntab(struct gosym *g, char *err, size_t errlen)
{
	uint64_t addr = 0, off, size = 0, end, i, prev = 0;
	uint8_t *h;

	/* A position-independent executable keeps it in .data.rel.ro.gopclntab
	 * (writable: relocated at load), where a scan looks too. */
	if (find_section(g, ".gopclntab", &addr, &off, &size) != 0 &&
	    find_section(g, ".data.rel.ro.gopclntab", &addr, &off, &size) != 0) {
		size_t k;

		off = scan(g, false, 8, match_pcln, NULL);
		if (!off)
			off = scan(g, true, 8, match_pcln, NULL);
		if (!off) {
			say(err, errlen, "not a Go executable (no pclntab)");
			return -ENOEXEC;
		}
		for (k = 0; k < g->nsegs; k++)
			if (off >= g->segs[k].off && off < g->segs[k].off + g->segs[k].filesz)
				size = g->segs[k].off + g->segs[k].filesz - off;
		if (off_to_vaddr(g, off, &addr))
			return -EINVAL;
	}
	if (size < 72 || size > MAX_PCLN) {
		say(err, errlen, "pclntab of %llu bytes: malformed", (unsigned long long)size);
		return -EINVAL;
	}
	g->pcln = malloc(size);
	if (!g->pcln)
		return -ENOMEM;
	if (rd(g, off, g->pcln, size)) {
		say(err, errlen, "cannot read the pclntab");
		return -EIO;
	}
	g->pcln_len = size;
	g->pcln_vaddr = addr;
	h = g->pcln;
	g->magic = le32(h);
	if (!pcln_magic(g->magic) || h[6] != 1 || h[7] != 8) {
		say(err, errlen, "pclntab magic 0x%x: a Go release older than 1.18 or not amd64 (not supported)",
		    g->magic);
		return -ENOTSUP;
	}
	g->nfunc = le64(h + 8);
	g->text_start = le64(h + 24);
	g->funcname_off = le64(h + 32);
	g->pcln_off = le64(h + 64);
	if (g->nfunc == 0 || g->nfunc > MAX_FUNCS || g->funcname_off >= size || g->pcln_off >= size ||
	    (g->nfunc + 1) * 8 > size - g->pcln_off) {
		say(err, errlen, "pclntab header out of bounds");
		return -EINVAL;
	}
	/* Every function's entry in order and its name within the table. */
	end = 0;
	for (i = 0; i <= g->nfunc; i++) {
		const uint8_t *ft = g->pcln + g->pcln_off + i * 8;
		uint32_t entry = le32(ft), funcoff = le32(ft + 4);

		if (entry < prev) {
			say(err, errlen, "pclntab functions out of order");
			return -EINVAL;
		}
		prev = entry;
		if (i < g->nfunc && (funcoff > size - g->pcln_off || size - g->pcln_off - funcoff < 8)) {
			say(err, errlen, "pclntab function %llu out of bounds", (unsigned long long)i);
			return -EINVAL;
		}
		end = entry;
	}
	(void)end;
	return 0;
}

static bool read_uvarint(const uint8_t *p, size_t n, uint64_t *v, size_t *used)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < n && i < 10; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = x;
			*used = i + 1;
			return true;
		}
	}
	return false;
}

static bool match_buildinfo(const struct gosym *g, uint64_t off, const uint8_t *p, size_t n, void *ctx)
{
	(void)g, (void)off, (void)ctx;
	return n >= 32 && memcmp(p, "\xff Go buildinf:", 14) == 0;
}

/* The Go version from the build info; "" when there is none. */
static void read_version(struct gosym *g)
{
	uint64_t addr, off = 0, size, len;
	uint8_t h[32 + 80];
	size_t used;

	if (find_section(g, ".go.buildinfo", &addr, &off, &size) != 0)
		off = scan(g, true, 16, match_buildinfo, NULL);
	if (!off || rd(g, off, h, 32) || memcmp(h, "\xff Go buildinf:", 14) != 0)
		return;
	if (h[15] & 2) {
		memset(h + 32, 0, sizeof(h) - 32);
		if (rd(g, off + 32, h + 32, sizeof(h) - 32) && rd(g, off + 32, h + 32, 16))
			return;
		if (!read_uvarint(h + 32, 10, &len, &used) || len == 0 || len >= sizeof(g->version) ||
		    32 + used + len > sizeof(h))
			return;
		memcpy(g->version, h + 32 + used, len);
		g->version[len] = 0;
	} else if (h[14] == 8) {
		uint8_t sh[16];
		uint64_t sp = le64(h + 16);

		if (gosym__read(g, sp, sh, 16) || le64(sh + 8) == 0 || le64(sh + 8) >= sizeof(g->version) ||
		    gosym__read(g, le64(sh), g->version, le64(sh + 8))) {
			g->version[0] = 0;
			return;
		}
		g->version[le64(sh + 8)] = 0;
	}
	for (len = 0; g->version[len]; len++)
		if (g->version[len] < 0x20 || g->version[len] > 0x7e)
			g->version[len] = '?';
}

/* Layouts per release (amd64), from Go's source and checked against real
 * release builds (tests/unit/test_go_releases.c; docs/go-releases.md):
 *   moduledata: pcHeader 0, six slices 8..152, findfunctab 152, minpc,
 *     maxpc, text 176, etext, noptrdata, enoptrdata, data, edata, bss,
 *     ebss, noptrbss, enoptrbss (248); 1.20 added covctrs, ecovctrs (+16);
 *     then end, gcdata, gcbss, types (280; 296 from 1.20), etypes, rodata,
 *     gofunc; 1.26 added epclntab (+8); textsectmap, typelinks, itablinks
 *     (360; 376 from 1.20; 384 from 1.26). Release builds: types is the
 *     .rodata start, itablinks the .itablink section, in 1.18 to 1.26.
 *     1.27 dropped typelinks and itablinks: types 296, typedesclen,
 *     etypes 312, itaboffset 320, itabsize 328, rodata, gofunc, epclntab,
 *     textsectmap (360); types..etypes is the .go.type section, the itabs
 *     lie at types + itaboffset, itabsize bytes (runtime.addModuleItabs
 *     of the go1.27.0 build reads md+0x128, md+0x140, md+0x148).
 *   g: stack 0, stackguard0 16, stackguard1 24, _panic 32, _defer 40,
 *     m 48, sched (gobuf: sp pc g ctxt ret lr bp = 56; 1.25 dropped ret:
 *     48), syscallsp, syscallpc, syscallbp (1.23+), stktopsp, param,
 *     atomicstatus u32, stackLock u32, goid: 152 (1.18-1.22), 160
 *     (1.23-1.24), 152 (1.25+). Each release build's runtime.newproc1
 *     stores newg.goid at that offset.
 *   database/sql: Stmt{db *DB; query string} (query 8), Row{err error;
 *     rows *Rows} (err 0), unchanged 1.18 to 1.27. */
#define LAYOUT(types, etypes, itablinks, itaboffset, goid) \
	{ .md_types_off = (types), .md_etypes_off = (etypes), .md_itablinks_off = (itablinks), \
	  .md_itaboffset_off = (itaboffset), .g_goid_off = (goid), .stmt_query_off = 8, .row_err_off = 0 }
static const struct {
	int minor_lo, minor_hi;
	struct gosym_layout l;
} layouts[] = {
	{ 18, 19, LAYOUT(280, 288, 360, -1, 152) },
	{ 20, 22, LAYOUT(296, 304, 376, -1, 152) },
	{ 23, 24, LAYOUT(296, 304, 376, -1, 160) },
	{ 25, 25, LAYOUT(296, 304, 376, -1, 152) },
	{ 26, 26, LAYOUT(296, 304, 384, -1, 152) },
	{ 27, 27, LAYOUT(296, 312, -1, 320, 152) },
};
#define KNOWN_RELEASES "go1.18 to go1.27"

static bool version_minor(const char *v, int *minor)
{
	int major, n = 0;

	if (sscanf(v, "go%d.%d%n", &major, minor, &n) != 2 || n == 0 || major != 1)
		return false;
	return true;
}

/* A DWARF member offset usable as one: found and small. */
static bool dwarf_off_ok(long off)
{
	return off >= 0 && off < 4096;
}

/* The layout from the executable's own DWARF, when it has it: every
 * offset found there (the itabs through itablinks, or from 1.27
 * itaboffset), or -ENOENT (the release table is used instead). */
static int read_dwarf_layout(struct gosym *g)
{
	struct godwarf_query q[] = {
		{ "runtime.moduledata", "types", -1 },
		{ "runtime.moduledata", "etypes", -1 },
		{ "runtime.moduledata", "itablinks", -1 },
		{ "runtime.moduledata", "itaboffset", -1 },
		{ "runtime.g", "goid", -1 },
		{ "database/sql.Stmt", "query", -1 },
		{ "database/sql.Row", "err", -1 },
	};
	uint8_t *info = NULL, *abbrev = NULL;
	size_t ninfo, nabbrev;
	int n = -ENOENT;

	if (read_debug(g, ".debug_info", &info, &ninfo) == 0 && read_debug(g, ".debug_abbrev", &abbrev, &nabbrev) == 0)
		n = godwarf__members(info, ninfo, abbrev, nabbrev, q, sizeof(q) / sizeof(q[0]));
	free(info);
	free(abbrev);
	if (n < 0 || !dwarf_off_ok(q[0].off) || !dwarf_off_ok(q[1].off) || !dwarf_off_ok(q[4].off) ||
	    dwarf_off_ok(q[2].off) == dwarf_off_ok(q[3].off))
		return -ENOENT;
	g->layout.md_types_off = (int)q[0].off;
	g->layout.md_etypes_off = (int)q[1].off;
	g->layout.md_itablinks_off = dwarf_off_ok(q[2].off) ? (int)q[2].off : -1;
	g->layout.md_itaboffset_off = dwarf_off_ok(q[3].off) ? (int)q[3].off : -1;
	g->layout.g_goid_off = (int)q[4].off;
	g->layout.stmt_query_off = dwarf_off_ok(q[5].off) ? (int)q[5].off : 8;
	g->layout.row_err_off = dwarf_off_ok(q[6].off) ? (int)q[6].off : 0;
	g->layout.from_dwarf = 1;
	return 0;
}

static bool match_md(const struct gosym *g, uint64_t off, const uint8_t *p, size_t n, void *ctx)
{
	(void)off, (void)ctx;
	return n >= 16 && le64(p) == g->pcln_vaddr && le64(p + 8) == g->pcln_vaddr + g->funcname_off;
}

/* moduledata.itablinks (1.18 to 1.26), the module data at file offset
 * md_off: a slice of itab pointers, cross-checked with the .itablink
 * section when there is one. 0 or -EINVAL. */
static int read_itablinks(struct gosym *g, uint64_t md_off)
{
	uint64_t a, o, s;
	uint8_t w[24];

	if (rd(g, md_off + (uint64_t)g->layout.md_itablinks_off, w, 24))
		return -EINVAL;
	g->itabs = le64(w);
	g->nitabs = le64(w + 8);
	if (g->nitabs > le64(w + 16) || g->nitabs > MAX_ITABS ||
	    (g->nitabs && gosym__vaddr_to_off(g, g->itabs, g->nitabs * 8, &o)))
		return -EINVAL;
	if (find_section(g, ".itablink", &a, &o, &s) == 0 && (a != g->itabs || s != g->nitabs * 8))
		return -EINVAL;
	return 0;
}

/* From 1.27: the itabs laid out one after another at moduledata.types +
 * itaboffset, itabsize bytes, inside types..etypes; each as long as
 * runtime.addModuleItabs steps over it (itab.Size()): fun[0] == 0, 32
 * bytes, else 24 + 8 per method of its interface. Records each one's
 * address. Returns 0, -EINVAL when the region does not walk exactly to its
 * end (or holds more than MAX_ITABS), or -ENOMEM. */
static int walk_itabs(struct gosym *g, uint64_t md_off, uint64_t etypes)
{
	uint64_t off, len, p, end, size, nmeth, cap = 0;
	uint8_t w[16], it[32];

	if (rd(g, md_off + (uint64_t)g->layout.md_itaboffset_off, w, 16))
		return -EINVAL;
	off = le64(w);
	len = le64(w + 8);
	if (off > etypes - g->types || len > etypes - g->types - off)
		return -EINVAL;
	p = g->types + off;
	end = p + len;
	while (p < end) {
		if (end - p < sizeof(it) || gosym__read(g, p, it, sizeof(it)))
			return -EINVAL;
		if (le64(it + ITAB_FUN_OFF) == 0) {
			size = sizeof(it);
		} else {
			if (gosym__read(g, le64(it) + ITYPE_NMETHODS_OFF, w, 8))
				return -EINVAL;
			nmeth = le64(w);
			if (nmeth == 0 || nmeth > (end - p - ITAB_FUN_OFF) / 8)
				return -EINVAL;
			size = ITAB_FUN_OFF + nmeth * 8;
		}
		if (g->nitabs == cap) {
			uint64_t *grown;

			if (cap == MAX_ITABS)
				return -EINVAL;
			cap = cap ? cap * 2 : 256;
			grown = realloc(g->itab_at, cap * sizeof(*grown));
			if (!grown)
				return -ENOMEM;
			g->itab_at = grown;
		}
		g->itab_at[g->nitabs++] = p;
		p += size;
	}
	return 0;
}

/* Finds the moduledata (the word pointing at the pclntab, followed by
 * funcnametab pointing into it) and, with the layout, types and the
 * itabs. A layout the module data contradicts is dropped (mismatch). */
static void read_moduledata(struct gosym *g)
{
	uint64_t off = scan(g, true, 8, match_md, NULL), etypes, a, o, s;
	uint8_t w[8];
	int minor, e;
	size_t i;

	if (!off || off_to_vaddr(g, off, &g->md))
		return;
	/* Go 1.26 stopped filling pcHeader.textStart (0 in the file): the
	 * function entries are then relative to moduledata.text (at 176 in
	 * every release 1.18 to 1.27), else to the .text section. */
	if (!g->text_start && rd(g, off + MD_TEXT_OFF, w, 8) == 0)
		g->text_start = le64(w);
	if (read_dwarf_layout(g) == 0) {
		g->layout_known = true;
	} else {
		if (!version_minor(g->version, &minor))
			return;
		for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
			if (minor >= layouts[i].minor_lo && minor <= layouts[i].minor_hi) {
				g->layout = layouts[i].l;
				g->layout_known = true;
			}
		if (!g->layout_known)
			return;
	}
	if (rd(g, off + (uint64_t)g->layout.md_types_off, w, 8))
		goto bad;
	g->types = le64(w);
	if (rd(g, off + (uint64_t)g->layout.md_etypes_off, w, 8))
		goto bad;
	etypes = le64(w);
	if (etypes <= g->types || gosym__vaddr_to_off(g, g->types, etypes - g->types, &o))
		goto bad;
	if (g->layout.md_itaboffset_off >= 0) {
		/* 1.27: types..etypes lies in the .go.type section, when named. */
		if (find_section(g, ".go.type", &a, &o, &s) == 0 && (g->types < a || etypes - a > s))
			goto bad;
		e = walk_itabs(g, off, etypes);
	} else {
		e = read_itablinks(g, off);
	}
	if (e == -ENOMEM)
		g->oom = true;
	if (e)
		goto bad;
	return;
bad:
	g->layout_known = false;
	g->mismatch = !g->oom;
	g->types = g->itabs = g->nitabs = 0;
	free(g->itab_at);
	g->itab_at = NULL;
}

static int open_common(struct gosym *g, struct gosym **out, char *err, size_t errlen)
{
	int e = read_elf(g, err, errlen);

	if (!e)
		e = read_pclntab(g, err, errlen);
	if (e) {
		gosym__free(g);
		return e;
	}
	read_version(g);
	read_moduledata(g);
	if (!g->text_start) {  /* no module data either: the section's address */
		uint64_t a, o, n;

		if (find_section(g, ".text", &a, &o, &n) == 0)
			g->text_start = a;
	}
	*out = g;
	return 0;
}

int gosym__open_fd(int fd, uint64_t size, struct gosym **out, char *err, size_t errlen)
{
	struct gosym *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->fd = fd;
	g->size = size;
	return open_common(g, out, err, errlen);
}

int gosym__open_buf(const void *buf, size_t len, struct gosym **out, char *err, size_t errlen)
{
	struct gosym *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->fd = -1;
	g->buf = buf;
	g->size = len;
	return open_common(g, out, err, errlen);
}

void gosym__free(struct gosym *g)
{
	if (!g)
		return;
	free(g->pcln);
	free(g->itab_at);
	free(g);
}

const char *gosym__version(const struct gosym *g)
{
	return g->version;
}

const struct gosym_layout *gosym__layout(const struct gosym *g, char *why, size_t whylen)
{
	int minor;

	if (g->layout_known)
		return &g->layout;
	if (!g->version[0])
		say(why, whylen, "no Go build info: the Go version, and so the runtime's layout, is unknown");
	else if (g->mismatch)
		say(why, whylen, "%s: its module data does not match that release's layout", g->version);
	else if (g->oom)
		say(why, whylen, "%s: out of memory listing its itabs", g->version);
	else if (!version_minor(g->version, &minor))
		say(why, whylen, "Go version \"%s\" not understood: its runtime layout is unknown", g->version);
	else if (!g->md)
		say(why, whylen, "%s: no module data found", g->version);
	else
		say(why, whylen, "%s is not in this tool's table of Go runtime layouts (known: " KNOWN_RELEASES ")",
		    g->version);
	return NULL;
}

size_t gosym__nfuncs(const struct gosym *g)
{
	return (size_t)g->nfunc;
}

int gosym__func(const struct gosym *g, size_t i, const char **name, uint64_t *entry, uint64_t *end)
{
	const uint8_t *ft;
	uint64_t fo, no;
	int32_t nameoff;

	if (i >= g->nfunc)
		return -ERANGE;
	ft = g->pcln + g->pcln_off + i * 8;
	*entry = g->text_start + le32(ft);
	*end = g->text_start + le32(ft + 8);
	fo = g->pcln_off + le32(ft + 4);
	nameoff = (int32_t)le32(g->pcln + fo + 4);
	if (nameoff < 0)
		return -EINVAL;
	no = g->funcname_off + (uint64_t)nameoff;
	if (no >= g->pcln_len || !memchr(g->pcln + no, 0, g->pcln_len - no))
		return -EINVAL;
	*name = (const char *)g->pcln + no;
	return 0;
}

int gosym__find(const struct gosym *g, const char *name, uint64_t *entry, uint64_t *end)
{
	size_t i;

	for (i = 0; i < g->nfunc; i++) {
		const char *n;

		if (gosym__func(g, i, &n, entry, end) == 0 && strcmp(n, name) == 0)
			return 0;
	}
	return -ENOENT;
}

int gosym__type_name(const struct gosym *g, uint64_t type_vaddr, char *buf, size_t len)
{
	uint8_t t[48], nb[16];
	uint64_t nlen;
	size_t used;
	int32_t str;
	bool star;

	if (!g->layout_known || len == 0)
		return -ENOENT;
	if (gosym__read(g, type_vaddr, t, sizeof(t)))
		return -ENOENT;
	star = t[20] & 2;
	str = (int32_t)le32(t + 40);
	if (str < 0 || gosym__read(g, g->types + (uint64_t)str, nb, sizeof(nb)) ||
	    !read_uvarint(nb + 1, sizeof(nb) - 1, &nlen, &used) || nlen == 0 || nlen > 4096)
		return -EINVAL;
	if (nlen >= len + (star ? 1 : 0))
		nlen = len - 1 + (star ? 1 : 0);
	{
		char tmp[4097];

		if (gosym__read(g, g->types + (uint64_t)str + 1 + used, tmp, nlen))
			return -EINVAL;
		tmp[nlen] = 0;
		snprintf(buf, len, "%s", tmp + (star && tmp[0] == '*' ? 1 : 0));
	}
	for (used = 0; buf[used]; used++)
		if (buf[used] < 0x20 || buf[used] > 0x7e)
			buf[used] = '?';
	return 0;
}

int gosym__nitabs(const struct gosym *g, size_t *n)
{
	if (!g->layout_known)
		return -ENOENT;
	*n = (size_t)g->nitabs;
	return 0;
}

int gosym__itab(const struct gosym *g, size_t i, uint64_t *itab, char *iface, size_t ifacelen, char *type,
		size_t typelen, uint64_t *type_size)
{
	uint8_t p[8], it[16], ts[56];
	uint64_t inter, typ;

	if (!g->layout_known || i >= g->nitabs)
		return -ERANGE;
	if (g->itab_at) {
		*itab = g->itab_at[i];
	} else {
		if (gosym__read(g, g->itabs + i * 8, p, 8))
			return -EINVAL;
		*itab = le64(p);
	}
	if (gosym__read(g, *itab, it, 16))
		return -EINVAL;
	inter = le64(it);
	typ = le64(it + 8);
	if (gosym__type_name(g, inter, iface, ifacelen) || gosym__type_name(g, typ, type, typelen) ||
	    gosym__read(g, typ, ts, sizeof(ts)))
		return -EINVAL;
	*type_size = le64(ts);
	if ((ts[23] & 0x1f) == 22) {  /* kind Pointer: ptrType.elem at 48 */
		uint8_t es[8];

		if (gosym__read(g, le64(ts + 48), es, 8))
			return -EINVAL;
		*type_size = le64(es);
	}
	return 0;
}
