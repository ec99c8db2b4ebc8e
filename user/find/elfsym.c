/* elfsym.c — ELF symbol lookup, address translation and build ids with
 * libelf (elfutils).
 *
 * Files belong to other users (a target's libraries, a container's files),
 * who may truncate or rewrite them while we read. So the file is never
 * mapped: libelf is opened with ELF_C_READ, which reads headers and section
 * data with pread(2) into memory it allocates, and a file that shrank gives
 * a read error instead of a SIGBUS. Every size and count taken from a header
 * (program headers, the symbol tables and their string tables, notes) is
 * checked against the file's size at open before anything is allocated for
 * it; libelf itself bounds its own allocations by that size too.
 *
 * Symbol names returned by elf_strptr() point into libelf's copy of the
 * string table and stay valid until elf_end(); the symbol index stores those
 * pointers instead of copying names. The PT_LOAD headers are read once at
 * open. The symbol index (one open-addressing hash table over .symtab and
 * .dynsym) is built on the first lookup, because many opened files are only
 * asked for their build id or segments; a failure to build it is kept and
 * returned by every later lookup (not retried).
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
	bool exec;              /* PF_X */
};

/* A function named from outside the symbol tables (elf_file__add_funcs). */
struct extra_func {
	const char *name;       /* the caller's, outlives the elf_file */
	uint64_t value, size;
};

struct elf_file {
	char *path;
	int fd;
	uint64_t file_size;     /* st_size at open: the bound for header sizes */
	Elf *elf;
	GElf_Half e_type;
	struct load_seg *segs;
	size_t nsegs;
	bool has_symtab;
	/* symbol index, built lazily */
	bool indexed;
	int index_err;          /* -errno of a failed build, returned again */
	struct sym_ent *syms;
	size_t nsyms;
	uint32_t *slots;        /* 0 = empty, else index into syms + 1 */
	size_t nslots;          /* power of two */
	size_t cap;             /* entries allocated in syms */
	struct extra_func *extra;
	size_t nextra;
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

/* True when [off, off + len) lies within the file as it was at open. */
static bool in_file(const struct elf_file *ef, uint64_t off, uint64_t len)
{
	return off <= ef->file_size && len <= ef->file_size - off;
}

/* Checks a symbol table header and its string table's header against the
 * file before anything is read or allocated for them. Returns the number of
 * entries (0 for an empty table), or -1 when the table is malformed: an
 * entry size that is not a symbol's, a table or string table that does
 * not lie within the file, a link that is not a string table. */
static ssize_t sym_count(struct elf_file *ef, const GElf_Shdr *sh)
{
	Elf_Scn *str;
	GElf_Shdr ssh;

	if (sh->sh_size == 0)
		return 0;
	if (sh->sh_entsize != gelf_fsize(ef->elf, ELF_T_SYM, 1, EV_CURRENT) ||
	    !in_file(ef, sh->sh_offset, sh->sh_size))
		return -1;
	str = elf_getscn(ef->elf, sh->sh_link);
	if (!str || !gelf_getshdr(str, &ssh) || ssh.sh_type != SHT_STRTAB ||
	    !in_file(ef, ssh.sh_offset, ssh.sh_size))
		return -1;
	return (ssize_t)(sh->sh_size / sh->sh_entsize);
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
	for (size_t i = 1; i < n && ef->nsyms < ef->cap; i++) {
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
	if (ef->index_err)
		return ef->index_err;
	memset(shs, 0, sizeof(shs));
	while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
		GElf_Shdr sh;
		int t;
		if (!gelf_getshdr(scn, &sh)) {
			err = -EINVAL;
			goto fail;
		}
		if (sh.sh_type == SHT_SYMTAB)
			t = 0;
		else if (sh.sh_type == SHT_DYNSYM)
			t = 1;
		else
			continue;
		if (tabs[t])
			continue;       /* ELF allows one of each */
		/* sizes checked against the file before they size anything */
		ssize_t cnt = sym_count(ef, &sh);
		if (cnt < 0) {
			err = -EINVAL;
			goto fail;
		}
		if (cnt == 0)
			continue;
		tabs[t] = scn;
		shs[t] = sh;
		total += (size_t)cnt;
	}
	if (total >= UINT32_MAX / 4) {
		err = -EINVAL;
		goto fail;
	}

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
	ef->cap = total;
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
	ef->nsyms = ef->nslots = ef->cap = 0;
	ef->index_err = err;
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
	if (!ef->slots[slot]) {
		for (size_t i = 0; cls == SYM_FUNC && i < ef->nextra; i++) {
			if (strcmp(ef->extra[i].name, name) != 0)
				continue;
			if (vaddr)
				*vaddr = ef->extra[i].value;
			if (size)
				*size = ef->extra[i].size;
			return 0;
		}
		return -ENOENT;
	}
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

		size_t nlen;

		/* foo.cold and other split-off parts live elsewhere in .text */
		if (e->cls != SYM_FUNC || strncmp(e->name, prefix, plen) != 0 || strchr(e->name, '.'))
			continue;
		/* An extension's entry point (sqlite3_shathree_init, ...) is
		 * linked from the application's own objects, not the library's:
		 * it would stretch the span over the application's code. */
		nlen = strlen(e->name);
		if (e->name[plen] == '_' && nlen > plen + 5 && strcmp(e->name + nlen - 5, "_init") == 0)
			continue;
		if (e->size > UINT64_MAX - e->value)
			continue;       /* malformed: ends past the address space */
		if (e->value < *lo)
			*lo = e->value;
		if (e->value + e->size > *hi)
			*hi = e->value + e->size;
	}
	for (size_t i = 0; i < ef->nextra; i++) {
		const struct extra_func *e = &ef->extra[i];

		if (strncmp(e->name, prefix, plen) != 0 || e->size > UINT64_MAX - e->value)
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
	/* libelf read them already, but say it here: never more headers
	 * than the file holds */
	if (phnum > ef->file_size / gelf_fsize(ef->elf, ELF_T_PHDR, 1, EV_CURRENT))
		return -ENOEXEC;
	ef->segs = calloc(phnum, sizeof(*ef->segs));
	if (!ef->segs)
		return -ENOMEM;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(ef->elf, (int)i, &ph))
			return -ENOEXEC;
		if (ph.p_type != PT_LOAD)
			continue;
		/* the file-backed part is what the file holds, no more */
		if (ph.p_offset > ef->file_size)
			ph.p_filesz = 0;
		else if (ph.p_filesz > ef->file_size - ph.p_offset)
			ph.p_filesz = ef->file_size - ph.p_offset;
		if (ph.p_filesz && ph.p_vaddr + ph.p_filesz < ph.p_vaddr)
			ph.p_filesz = UINT64_MAX - ph.p_vaddr;  /* wraps: clamp */
		ef->segs[ef->nsegs].vaddr = ph.p_vaddr;
		ef->segs[ef->nsegs].filesz = ph.p_filesz;
		ef->segs[ef->nsegs].offset = ph.p_offset;
		ef->segs[ef->nsegs].exec = (ph.p_flags & PF_X) != 0;
		ef->nsegs++;
	}
	return 0;
}

static bool has_symbols(Elf *elf, uint64_t elf_size)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB &&
		    sh.sh_entsize && sh.sh_size / sh.sh_entsize > 1 && sh.sh_size <= elf_size)
			return true;
	}
	return false;
}

struct elf_file *elf_file__open_fd(int fd, const char *name)
{
	struct elf_file *ef;
	struct stat st;
	GElf_Ehdr eh;
	int err;

	if (fd < 0 || !name) {
		if (fd >= 0)
			close(fd);
		errno = EINVAL;
		return NULL;
	}
	ef = calloc(1, sizeof(*ef));
	if (!ef) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	ef->fd = fd;
	ef->path = strdup(name);
	if (!ef->path) {
		err = ENOMEM;
		goto fail;
	}
	if (elf_version(EV_CURRENT) == EV_NONE) {
		err = ENOSYS;
		goto fail;
	}
	if (fstat(fd, &st) != 0) {
		err = errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		err = ENOEXEC;
		goto fail;
	}
	ef->file_size = (uint64_t)st.st_size;
	/* ELF_C_READ: pread into libelf's memory, never a mapping */
	ef->elf = elf_begin(ef->fd, ELF_C_READ, NULL);
	if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF || !gelf_getehdr(ef->elf, &eh)) {
		err = ENOEXEC;
		goto fail;
	}
	ef->e_type = eh.e_type;
	err = -read_segments(ef);
	if (err)
		goto fail;
	ef->has_symtab = has_symbols(ef->elf, ef->file_size);
	return ef;

fail:
	elf_file__close(ef);
	errno = err;
	return NULL;
}

struct elf_file *elf_file__open(const char *path)
{
	int fd;

	if (!path) {
		errno = EINVAL;
		return NULL;
	}
	/* O_NONBLOCK: a FIFO planted at the path must not block the open
	 * (it is then refused as not a regular file) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	return elf_file__open_fd(fd, path);
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
	free(ef->extra);
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
			if (!gelf_getphdr(ef->elf, (int)i, &ph) || ph.p_type != PT_NOTE ||
			    !in_file(ef, ph.p_offset, ph.p_filesz))
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
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE ||
		    !in_file(ef, sh.sh_offset, sh.sh_size))
			continue;
		r = scan_notes(elf_getdata(scn, NULL), buf, len);
		if (r >= 0)
			return r;
	}
	return -ENOENT;
}

/* The address of the section named name, 0 when absent. */
static uint64_t section_addr(struct elf_file *ef, const char *name)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(ef->elf, &shstrndx) != 0)
		return 0;
	while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *n;

		if (!gelf_getshdr(scn, &sh))
			continue;
		n = elf_strptr(ef->elf, shstrndx, sh.sh_name);
		if (n && strcmp(n, name) == 0)
			return sh.sh_addr;
	}
	return 0;
}

int elf_file__usdt_sites(struct elf_file *ef, const char *provider, const char *name,
			 struct usdt_site *out, size_t max)
{
	uint64_t base = 0;
	Elf_Scn *scn = NULL;
	int found = 0;
	bool based = false;

	if (!ef || !provider || !name || (!out && max))
		return -EINVAL;
	while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
		size_t off = 0, name_off, desc_off, next;
		Elf_Data *data;
		GElf_Shdr sh;
		GElf_Nhdr nh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE || !in_file(ef, sh.sh_offset, sh.sh_size))
			continue;
		data = elf_getdata(scn, NULL);
		while (data && off < data->d_size &&
		       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
			const char *d = (const char *)data->d_buf + desc_off, *prov, *nm, *args, *end;
			uint64_t pc, nbase, sema;

			off = next;
			if (nh.n_type != 3 || nh.n_namesz != 8 ||
			    memcmp((const char *)data->d_buf + name_off, "stapsdt", 8) != 0)
				continue;
			if (nh.n_descsz < 3 * 8 + 3 || desc_off + nh.n_descsz > data->d_size)
				return -EINVAL;
			memcpy(&pc, d, 8);
			memcpy(&nbase, d + 8, 8);
			memcpy(&sema, d + 16, 8);
			end = d + nh.n_descsz;
			prov = d + 24;
			nm = memchr(prov, 0, (size_t)(end - prov));
			if (!nm++ || nm >= end)
				return -EINVAL;
			args = memchr(nm, 0, (size_t)(end - nm));
			if (!args++ || args >= end || !memchr(args, 0, (size_t)(end - args)))
				return -EINVAL;
			if (strcmp(prov, provider) != 0 || strcmp(nm, name) != 0)
				continue;
			if (!based) {
				base = section_addr(ef, ".stapsdt.base");
				based = true;
			}
			if (base && nbase)
				pc += base - nbase;
			if ((size_t)found < max) {
				struct usdt_site *u = &out[found];

				if (elf_file__vaddr_to_offset(ef, pc, &u->pc_off) != 0)
					return -EINVAL;
				u->sema_off = 0;
				if (sema && elf_file__vaddr_to_offset(ef, sema, &u->sema_off) != 0)
					return -EINVAL;
				snprintf(u->args, sizeof(u->args), "%s", args);
			}
			found++;
		}
	}
	return found ? found : -ENOENT;
}

bool elf_file__has_symtab(struct elf_file *ef)
{
	return ef && ef->has_symtab;
}

bool elf_file__is_dyn(struct elf_file *ef)
{
	return ef && ef->e_type == ET_DYN;
}

int elf_file__debug_relpath(struct elf_file *ef, char *buf, size_t len)
{
	unsigned char id[64];
	char hex[2 * sizeof(id) + 1];
	int n;

	if (!ef || !buf || !len)
		return -EINVAL;
	n = elf_file__build_id(ef, id, sizeof(id));
	if (n < 2 || (size_t)n > sizeof(id))
		return -ENOENT;
	for (int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	char path[sizeof(hex) + 40];
	n = snprintf(path, sizeof(path), "usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;   /* buf left as it was */
	memcpy(buf, path, (size_t)n + 1);
	return 0;
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

int elf_file__add_funcs(struct elf_file *ef, const char *const *names, const uint64_t *vaddr,
			const uint64_t *size, size_t n)
{
	struct extra_func *grown;

	if (!ef || (n && (!names || !vaddr || !size)) || n > SIZE_MAX / sizeof(*grown) - ef->nextra)
		return -EINVAL;
	grown = realloc(ef->extra, (ef->nextra + n) * sizeof(*grown) + 1);
	if (!grown)
		return -ENOMEM;
	ef->extra = grown;
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !vaddr[i])
			continue;
		ef->extra[ef->nextra].name = names[i];
		ef->extra[ef->nextra].value = vaddr[i];
		ef->extra[ef->nextra].size = size[i];
		ef->nextra++;
	}
	return 0;
}

int elf_file__segment(const struct elf_file *ef, size_t i, uint64_t *vaddr, uint64_t *filesz, bool *exec)
{
	if (!ef || i >= ef->nsegs)
		return -ENOENT;
	*vaddr = ef->segs[i].vaddr;
	*filesz = ef->segs[i].filesz;
	*exec = ef->segs[i].exec;
	return 0;
}

bool elf_file__is_exec_addr(const struct elf_file *ef, uint64_t vaddr)
{
	const struct load_seg *s = ef ? seg_of(ef, vaddr) : NULL;

	return s && s->exec;
}

int elf_file__relative_relocs(struct elf_file *ef, elf_reloc_fn fn, void *ctx)
{
	Elf_Scn *scn = NULL;

	if (!ef || !fn)
		return -EINVAL;
	while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t n;

		if (!gelf_getshdr(scn, &sh))
			return -EINVAL;
		if (sh.sh_type != SHT_RELA || sh.sh_size == 0)
			continue;
		if (sh.sh_entsize != gelf_fsize(ef->elf, ELF_T_RELA, 1, EV_CURRENT) ||
		    !in_file(ef, sh.sh_offset, sh.sh_size))
			return -EINVAL;
		data = elf_getdata(scn, NULL);
		if (!data)
			return -EINVAL;
		n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			GElf_Rela r;
			int stop;

			if (!gelf_getrela(data, (int)i, &r))
				return -EINVAL;
			if (GELF_R_TYPE(r.r_info) != R_X86_64_RELATIVE)
				continue;
			stop = fn(ctx, r.r_offset, (uint64_t)r.r_addend);
			if (stop)
				return stop < 0 ? stop : 0;
		}
	}
	return 0;
}

Elf *elf_file__libelf(struct elf_file *ef)
{
	return ef ? ef->elf : NULL;
}

int elf_file__fd(const struct elf_file *ef, uint64_t *size)
{
	*size = ef->file_size;
	return ef->fd;
}
