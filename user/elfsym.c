/* elfsym.c — ELF symbol lookup, address translation and build ids with
 * libelf (elfutils).
 *
 * The file is opened with ELF_C_READ_MMAP, so symbol names returned by
 * elf_strptr() point into the mapping and stay valid until elf_end(); the
 * symbol index stores those pointers instead of copying names. The PT_LOAD
 * headers are read once at open. The symbol index (one open-addressing hash
 * table over .symtab and .dynsym) is built on the first lookup, because many
 * opened files are only asked for their build id or segments.
 */
#include "elfsym.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NT_GNU_BUILD_ID
#define NT_GNU_BUILD_ID 3
#endif

enum sym_class { SYM_FUNC = 1, SYM_OBJECT = 2 };

struct sym_ent {
	const char *name;       /* points into the ELF mapping */
	uint64_t value, size;
	uint32_t hash;
	uint8_t cls;            /* enum sym_class */
	uint8_t rank;           /* lower wins: table * 2 + is_local */
};

struct load_seg {
	uint64_t vaddr, filesz, offset;
};

struct elf_file {
	char *path;
	int fd;
	Elf *elf;
	GElf_Half e_type;
	struct load_seg *segs;
	size_t nsegs;
	bool has_symtab;
	/* symbol index, built lazily */
	bool indexed;
	struct sym_ent *syms;
	size_t nsyms;
	uint32_t *slots;        /* 0 = empty, else index into syms + 1 */
	size_t nslots;          /* power of two */
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;       /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* Returns the slot holding (name, cls) or the empty slot where it would go. */
static size_t slot_find(const struct elf_file *ef, const char *name, uint32_t h,
			uint8_t cls)
{
	size_t mask = ef->nslots - 1, i = h & mask;

	for (;;) {
		uint32_t s = ef->slots[i];
		if (s == 0)
			return i;
		const struct sym_ent *e = &ef->syms[s - 1];
		if (e->hash == h && e->cls == cls && strcmp(e->name, name) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

/* Adds the defined function and object symbols of one symbol table section.
 * Returns 0 or -EINVAL/-ENOMEM. */
static int index_table(struct elf_file *ef, Elf_Scn *scn, const GElf_Shdr *sh,
		       uint8_t table)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n;

	if (!data || sh->sh_entsize == 0)
		return -EINVAL;
	n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 1; i < n; i++) {
		GElf_Sym sym;
		uint8_t cls, rank;
		const char *name;

		if (!gelf_getsym(data, (int)i, &sym))
			return -EINVAL;
		switch (GELF_ST_TYPE(sym.st_info)) {
		case STT_FUNC:
		case STT_GNU_IFUNC:
			cls = SYM_FUNC;
			break;
		case STT_OBJECT:
			cls = SYM_OBJECT;
			break;
		default:
			continue;
		}
		if (sym.st_shndx == SHN_UNDEF || sym.st_shndx == SHN_COMMON ||
		    sym.st_value == 0)
			continue;
		name = elf_strptr(ef->elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		rank = (uint8_t)(table * 2 + (GELF_ST_BIND(sym.st_info) == STB_LOCAL));

		uint32_t h = name_hash(name);
		size_t slot = slot_find(ef, name, h, cls);
		if (ef->slots[slot]) {
			struct sym_ent *old = &ef->syms[ef->slots[slot] - 1];
			if (rank < old->rank) {
				old->value = sym.st_value;
				old->size = sym.st_size;
				old->rank = rank;
				old->name = name;
			}
			continue;
		}
		struct sym_ent *e = &ef->syms[ef->nsyms];
		e->name = name;
		e->value = sym.st_value;
		e->size = sym.st_size;
		e->hash = h;
		e->cls = cls;
		e->rank = rank;
		ef->slots[slot] = (uint32_t)++ef->nsyms;
	}
	return 0;
}

/* Builds the symbol index on first use. Returns 0 or -errno. */
static int build_index(struct elf_file *ef)
{
	Elf_Scn *scn = NULL, *tabs[2] = { NULL, NULL };
	GElf_Shdr shs[2];
	size_t total = 0;
	int err;

	if (ef->indexed)
		return 0;
	memset(shs, 0, sizeof(shs));
	while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
		GElf_Shdr sh;
		int t;
		if (!gelf_getshdr(scn, &sh))
			return -EINVAL;
		if (sh.sh_type == SHT_SYMTAB)
			t = 0;
		else if (sh.sh_type == SHT_DYNSYM)
			t = 1;
		else
			continue;
		if (tabs[t] || sh.sh_entsize == 0)
			continue;       /* ELF allows one of each */
		tabs[t] = scn;
		shs[t] = sh;
		total += sh.sh_size / sh.sh_entsize;
	}
	if (total >= UINT32_MAX / 4)
		return -EINVAL;

	size_t nslots = 16;
	while (nslots < total * 2)
		nslots <<= 1;
	ef->syms = calloc(total ? total : 1, sizeof(*ef->syms));
	ef->slots = calloc(nslots, sizeof(*ef->slots));
	if (!ef->syms || !ef->slots) {
		err = -ENOMEM;
		goto fail;
	}
	ef->nslots = nslots;
	ef->nsyms = 0;
	for (uint8_t t = 0; t < 2; t++) {
		if (!tabs[t])
			continue;
		err = index_table(ef, tabs[t], &shs[t], t);
		if (err)
			goto fail;
	}
	assert(ef->nsyms <= total);
	ef->indexed = true;
	return 0;

fail:
	free(ef->syms);
	free(ef->slots);
	ef->syms = NULL;
	ef->slots = NULL;
	ef->nsyms = ef->nslots = 0;
	return err;
}

static int find_sym(struct elf_file *ef, const char *name, uint8_t cls,
		    uint64_t *vaddr, uint64_t *size)
{
	int err;

	if (!ef || !name)
		return -EINVAL;
	err = build_index(ef);
	if (err)
		return err;
	size_t slot = slot_find(ef, name, name_hash(name), cls);
	if (!ef->slots[slot])
		return -ENOENT;
	const struct sym_ent *e = &ef->syms[ef->slots[slot] - 1];
	if (vaddr)
		*vaddr = e->value;
	if (size)
		*size = e->size;
	return 0;
}

int elf_file__find_func(struct elf_file *ef, const char *name, uint64_t *vaddr,
			uint64_t *size)
{
	return find_sym(ef, name, SYM_FUNC, vaddr, size);
}

int elf_file__func_span(struct elf_file *ef, const char *prefix, uint64_t *lo, uint64_t *hi)
{
	size_t plen;
	int err;

	if (!ef || !prefix || !lo || !hi)
		return -EINVAL;
	err = build_index(ef);
	if (err)
		return err;
	plen = strlen(prefix);
	*lo = UINT64_MAX;
	*hi = 0;
	for (size_t i = 0; i < ef->nsyms; i++) {
		const struct sym_ent *e = &ef->syms[i];

		/* foo.cold and other split-off parts live elsewhere in .text */
		if (e->cls != SYM_FUNC || strncmp(e->name, prefix, plen) != 0 || strchr(e->name, '.'))
			continue;
		if (e->value < *lo)
			*lo = e->value;
		if (e->value + e->size > *hi)
			*hi = e->value + e->size;
	}
	return *hi ? 0 : -ENOENT;
}

int elf_file__find_object(struct elf_file *ef, const char *name, uint64_t *vaddr,
			  uint64_t *size)
{
	return find_sym(ef, name, SYM_OBJECT, vaddr, size);
}

/* Reads the PT_LOAD headers. Returns 0 or -errno. */
static int read_segments(struct elf_file *ef)
{
	size_t phnum;

	if (elf_getphdrnum(ef->elf, &phnum) != 0)
		return -ENOEXEC;
	if (phnum == 0)
		return 0;
	ef->segs = calloc(phnum, sizeof(*ef->segs));
	if (!ef->segs)
		return -ENOMEM;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(ef->elf, (int)i, &ph))
			return -ENOEXEC;
		if (ph.p_type != PT_LOAD)
			continue;
		ef->segs[ef->nsegs].vaddr = ph.p_vaddr;
		ef->segs[ef->nsegs].filesz = ph.p_filesz;
		ef->segs[ef->nsegs].offset = ph.p_offset;
		ef->nsegs++;
	}
	return 0;
}

static bool has_symbols(Elf *elf)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB &&
		    sh.sh_entsize && sh.sh_size / sh.sh_entsize > 1)
			return true;
	}
	return false;
}

struct elf_file *elf_file__open(const char *path)
{
	struct elf_file *ef;
	GElf_Ehdr eh;
	int err;

	if (!path) {
		errno = EINVAL;
		return NULL;
	}
	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = ENOSYS;
		return NULL;
	}
	ef = calloc(1, sizeof(*ef));
	if (!ef) {
		errno = ENOMEM;
		return NULL;
	}
	ef->fd = -1;
	ef->path = strdup(path);
	if (!ef->path) {
		err = ENOMEM;
		goto fail;
	}
	ef->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ef->fd < 0) {
		err = errno;
		goto fail;
	}
	ef->elf = elf_begin(ef->fd, ELF_C_READ_MMAP, NULL);
	if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF || !gelf_getehdr(ef->elf, &eh)) {
		err = ENOEXEC;
		goto fail;
	}
	ef->e_type = eh.e_type;
	err = -read_segments(ef);
	if (err)
		goto fail;
	ef->has_symtab = has_symbols(ef->elf);
	return ef;

fail:
	elf_file__close(ef);
	errno = err;
	return NULL;
}

void elf_file__close(struct elf_file *ef)
{
	if (!ef)
		return;
	if (ef->elf)
		elf_end(ef->elf);
	if (ef->fd >= 0)
		close(ef->fd);
	free(ef->syms);
	free(ef->slots);
	free(ef->segs);
	free(ef->path);
	free(ef);
}

/* Returns the segment whose file-backed part holds vaddr, or NULL. */
static const struct load_seg *seg_of(const struct elf_file *ef, uint64_t vaddr)
{
	for (size_t i = 0; i < ef->nsegs; i++) {
		const struct load_seg *s = &ef->segs[i];
		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->filesz)
			return s;
	}
	return NULL;
}

int elf_file__vaddr_to_offset(struct elf_file *ef, uint64_t vaddr, uint64_t *off)
{
	const struct load_seg *s;

	if (!ef || !off)
		return -EINVAL;
	s = seg_of(ef, vaddr);
	if (!s)
		return -ENOENT;
	*off = vaddr - s->vaddr + s->offset;
	return 0;
}

ssize_t elf_file__read_vaddr(struct elf_file *ef, uint64_t vaddr, void *buf, size_t len)
{
	const struct load_seg *s;
	size_t done = 0;

	if (!ef || (!buf && len))
		return -EINVAL;
	s = seg_of(ef, vaddr);
	if (!s)
		return -ENOENT;
	uint64_t avail = s->filesz - (vaddr - s->vaddr);
	if (len > avail)
		len = (size_t)avail;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	off_t off = (off_t)(vaddr - s->vaddr + s->offset);
	while (done < len) {
		ssize_t r = pread(ef->fd, (char *)buf + done, len - done, off + (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;          /* file shorter than its headers say */
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Scans one block of notes for the GNU build id. Returns its length and
 * copies it, or -ENOENT. */
static int scan_notes(Elf_Data *data, unsigned char *buf, size_t len)
{
	size_t off = 0, name_off, desc_off, next;
	GElf_Nhdr nh;

	while (data && off < data->d_size &&
	       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const char *nm = (const char *)data->d_buf + name_off;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp(nm, "GNU", 4) == 0 && nh.n_descsz > 0 &&
		    nh.n_descsz <= INT32_MAX) {
			size_t c = nh.n_descsz < len ? nh.n_descsz : len;
			if (c)
				memcpy(buf, (const char *)data->d_buf + desc_off, c);
			return (int)nh.n_descsz;
		}
		off = next;
	}
	return -ENOENT;
}

int elf_file__build_id(struct elf_file *ef, unsigned char *buf, size_t len)
{
	size_t phnum;
	Elf_Scn *scn = NULL;
	int r;

	if (!ef || (!buf && len))
		return -EINVAL;
	if (elf_getphdrnum(ef->elf, &phnum) == 0) {
		for (size_t i = 0; i < phnum; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(ef->elf, (int)i, &ph) || ph.p_type != PT_NOTE)
				continue;
			Elf_Data *d = elf_getdata_rawchunk(ef->elf, (int64_t)ph.p_offset,
							   ph.p_filesz,
							   ph.p_align == 8 ? ELF_T_NHDR8
									   : ELF_T_NHDR);
			r = scan_notes(d, buf, len);
			if (r >= 0)
				return r;
		}
	}
	/* Separate debug files keep the note section but their PT_NOTE may
	 * point at nothing useful; look at the sections too. */
	while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		r = scan_notes(elf_getdata(scn, NULL), buf, len);
		if (r >= 0)
			return r;
	}
	return -ENOENT;
}

bool elf_file__has_symtab(struct elf_file *ef)
{
	return ef && ef->has_symtab;
}

bool elf_file__is_dyn(struct elf_file *ef)
{
	return ef && ef->e_type == ET_DYN;
}

char *elf_file__debug_path(struct elf_file *ef, const char *root)
{
	unsigned char id[64];
	char hex[2 * sizeof(id) + 1];
	char *path = NULL;
	struct stat st;
	int n;

	n = elf_file__build_id(ef, id, sizeof(id));
	if (n < 2 || (size_t)n > sizeof(id)) {
		errno = ENOENT;
		return NULL;
	}
	for (int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	if (asprintf(&path, "%s/usr/lib/debug/.build-id/%.2s/%s.debug",
		     root ? root : "", hex, hex + 2) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		free(path);
		errno = ENOENT;
		return NULL;
	}
	return path;
}

int elf_file__read_string_symbol(struct elf_file *ef, const char *name, char *buf,
				 size_t len)
{
	uint64_t vaddr, size;
	size_t want;
	char *tmp;
	ssize_t got;
	int err;

	if (!buf || len == 0)
		return -EINVAL;
	err = elf_file__find_object(ef, name, &vaddr, &size);
	if (err)
		return err;
	want = size ? (size > 65536 ? 65536 : (size_t)size) : 4096;
	tmp = malloc(want);
	if (!tmp)
		return -ENOMEM;
	got = elf_file__read_vaddr(ef, vaddr, tmp, want);
	if (got < 0) {
		free(tmp);
		return (int)got;
	}
	const char *nul = memchr(tmp, '\0', (size_t)got);
	if (!nul) {
		free(tmp);
		return -EINVAL;
	}
	size_t slen = (size_t)(nul - tmp);
	if (slen + 1 > len) {
		free(tmp);
		return -ERANGE;
	}
	memcpy(buf, tmp, slen + 1);
	free(tmp);
	return 0;
}

const char *elf_file__path(const struct elf_file *ef)
{
	return ef ? ef->path : NULL;
}
