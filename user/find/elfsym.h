/* elfsym.h — reads what target resolution needs from an ELF file (an
 * executable or a shared library) with libelf: function and data symbols from
 * .symtab and .dynsym, virtual address to file offset through the PT_LOAD
 * program headers (the offset a uprobe is attached at), file bytes at a
 * virtual address, the GNU build id and the matching debug file path.
 *
 * An elf_file is not thread-safe: use one per thread, or lock around it.
 */
#ifndef SQLTRACE_ELFSYM_H
#define SQLTRACE_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct elf_file;

/* Opens path read-only (the file stays open until close; it is read with
 * pread, never mapped, so a file truncated or rewritten by its owner while
 * it is read gives errors, not a crash). Returns NULL and sets errno on
 * failure: the open(2) errno, ENOEXEC when the file is not a regular file,
 * is empty, is not an ELF object (or is an archive), ENOMEM. */
struct elf_file *elf_file__open(const char *path);

/* As elf_file__open() on an fd the caller opened (e.g. with openat2 inside
 * a process's root): the elf_file takes the fd over and closes it, on
 * failure too. name is what elf_file__path() gives back. */
struct elf_file *elf_file__open_fd(int fd, const char *name);

/* Releases everything. NULL is fine. This function can't fail. */
void elf_file__close(struct elf_file *ef);

/* Looks up a defined function symbol (STT_FUNC or STT_GNU_IFUNC, st_shndx
 * != SHN_UNDEF, st_value != 0) by exact name, in .symtab first, then .dynsym.
 * Within one table a global or weak symbol wins over a local one of the same
 * name (static functions may repeat across translation units); among equals
 * the first in the table wins. For STT_GNU_IFUNC the address is the
 * resolver's, not the implementation's.
 * The first lookup builds a hash table over both tables (O(symbols)); later
 * lookups are O(1).
 * Returns 0 with *vaddr and *size (either pointer may be NULL), -ENOENT when
 * absent, -ENOMEM, -EINVAL on a malformed symbol table. */
int elf_file__find_func(struct elf_file *ef, const char *name, uint64_t *vaddr,
			uint64_t *size);

/* The span [*lo, *hi) of virtual addresses covered by the defined function
 * symbols whose name starts with prefix (e.g. "sqlite3": SQLite's API and,
 * in an unstripped build, its internal functions). Symbols with a '.' in
 * their name (GCC's split-off foo.cold parts) are left out. Returns 0, -ENOENT when
 * there is none, -ENOMEM, -EINVAL. */
int elf_file__func_span(struct elf_file *ef, const char *prefix, uint64_t *lo, uint64_t *hi);

/* As elf_file__find_func() for a defined data symbol (STT_OBJECT only; TLS
 * and common symbols are not looked at). */
int elf_file__find_object(struct elf_file *ef, const char *name, uint64_t *vaddr,
			  uint64_t *size);

/* Converts a virtual address to a file offset through the PT_LOAD program
 * headers: off = vaddr - p_vaddr + p_offset of the segment whose file-backed
 * part [p_vaddr, p_vaddr + p_filesz) holds vaddr. Returns 0, or -ENOENT when
 * no segment holds it (including addresses only in a segment's .bss part). */
int elf_file__vaddr_to_offset(struct elf_file *ef, uint64_t vaddr, uint64_t *off);

/* Reads up to len bytes of file content starting at virtual address vaddr,
 * stopping at the end of the file-backed part of its segment. Returns the
 * number of bytes read (> 0 unless len is 0), -ENOENT when vaddr is not in a
 * file-backed segment, or another -errno from pread. */
ssize_t elf_file__read_vaddr(struct elf_file *ef, uint64_t vaddr, void *buf, size_t len);

/* Copies the NT_GNU_BUILD_ID descriptor into buf (at most len bytes) and
 * returns its full length (which may exceed len; only len bytes are copied),
 * or -ENOENT when the file has no build id. Looks in PT_NOTE segments, then
 * SHT_NOTE sections. */
int elf_file__build_id(struct elf_file *ef, unsigned char *buf, size_t len);

/* True when the file has a .symtab (SHT_SYMTAB) section with at least one
 * symbol besides the null entry. */
bool elf_file__has_symtab(struct elf_file *ef);

/* True for ET_DYN (a PIE executable or a shared library). */
bool elf_file__is_dyn(struct elf_file *ef);

/* Writes into buf the path, relative to a root directory, of the separate
 * debug file for this file's build id:
 *   usr/lib/debug/.build-id/xx/yyyy….debug
 * It is to be opened inside that root (user/find/inroot.h), never by appending
 * it to "/proc/PID/root" and letting the host resolve symlinks. Does not
 * look whether the file exists. Returns 0, -ENOENT when the file has no
 * build id (or one shorter than 2 bytes), -ENAMETOOLONG (buf then left as
 * it was), -EINVAL. */
int elf_file__debug_relpath(struct elf_file *ef, char *buf, size_t len);

/* Reads the NUL-terminated string stored in a data symbol that is a char
 * array in the file's data (e.g. "sqlite3_version", const char[] in .rodata)
 * into buf (len bytes, always NUL-terminated on success).
 * Returns 0; -ENOENT when there is no such object symbol or its bytes are
 * not in the file (.bss); -EINVAL when no NUL lies within the symbol (or
 * within its first 4096 bytes when st_size is 0); -ERANGE when the string
 * does not fit in buf; other -errno from reading. */
int elf_file__read_string_symbol(struct elf_file *ef, const char *name, char *buf,
				 size_t len);

/* A USDT probe site (sys/sdt.h: a .note.stapsdt note), as a uprobe needs
 * it: the file offsets of the probed instruction and of its is-enabled
 * counter (0: none), and the argument spec ("8@%rax 8@%r8"). */
struct usdt_site {
	uint64_t pc_off;
	uint64_t sema_off;
	char args[96];
};

/* Fills out with the sites of probe provider:name (a probe may have
 * several: one per place the macro expands), at most max; addresses are
 * adjusted for prelinking (.stapsdt.base) and turned into file offsets.
 * Returns how many there are (which may exceed max), -ENOENT when none,
 * -EINVAL for a malformed note. */
int elf_file__usdt_sites(struct elf_file *ef, const char *provider, const char *name,
			 struct usdt_site *out, size_t max);

/* The path given to elf_file__open(). */
const char *elf_file__path(const struct elf_file *ef);

/* Names functions the symbol tables do not (a stripped file whose functions
 * were found another way, user/find/apitable.c): later lookups by
 * elf_file__find_func and elf_file__func_span see them after the symbol
 * tables' own. names[i] are not copied: they must outlive ef. Entries with
 * a NULL name or a zero address are skipped. Returns 0, -EINVAL, -ENOMEM. */
int elf_file__add_funcs(struct elf_file *ef, const char *const *names, const uint64_t *vaddr,
			const uint64_t *size, size_t n);

/* The i-th PT_LOAD segment's address, file-backed size and whether it is
 * executable. Returns 0, or -ENOENT past the last one. */
int elf_file__segment(const struct elf_file *ef, size_t i, uint64_t *vaddr, uint64_t *filesz, bool *exec);

/* True when vaddr lies in the file-backed part of an executable segment. */
bool elf_file__is_exec_addr(const struct elf_file *ef, uint64_t vaddr);

/* Calls fn(ctx, where, value) for every R_X86_64_RELATIVE relocation of the
 * file's SHT_RELA sections (a position-independent file's pointers to its
 * own code and data: the 8 bytes at vaddr `where` hold load base + value
 * once loaded). fn returns 0 to go on, > 0 to stop (this returns 0), < 0
 * to stop with that error. Returns 0 or -EINVAL on a malformed section. */
typedef int (*elf_reloc_fn)(void *ctx, uint64_t where, uint64_t value);
int elf_file__relative_relocs(struct elf_file *ef, elf_reloc_fn fn, void *ctx);

/* The libelf handle (for libdw's call frame reader, user/find/ehframe.c);
 * valid until elf_file__close. */
typedef struct Elf Elf;
Elf *elf_file__libelf(struct elf_file *ef);

/* The file's descriptor and size (for readers of their own, such as Go's
 * function table, user/find/gosym.h); valid until elf_file__close. */
int elf_file__fd(const struct elf_file *ef, uint64_t *size);

#endif
