/* gosym.h — a Go executable's own function table, read from the file:
 * pclntab (function names and code ranges; kept by stripped executables),
 * moduledata (type and itab tables) and build info (the Go version).
 * Go 1.18 and newer formats (pclntab magic 0xfffffff0 and 0xfffffff1;
 * module data layouts of 1.18 to 1.27: the itabs through
 * moduledata.itablinks up to 1.26, laid out inline after the type
 * descriptors from 1.27), amd64 ELF only. Reusable by every finder that
 * needs Go's functions (database/sql, the cgo wrappers of a C SQLite).
 *
 * Everything is read from untrusted bytes with pread (or from a buffer):
 * every offset is bounds-checked; a malformed file is refused with a
 * one-line reason, never a crash. */
#ifndef SQLTRACE_GOSYM_H
#define SQLTRACE_GOSYM_H

#include <stddef.h>
#include <stdint.h>

struct gosym;

/* Layout facts of the executable's Go release: from its DWARF when it has
 * any, else from the table in gosym.c keyed by the version in its build
 * info. -1: unknown. */
struct gosym_layout {
	int md_types_off;      /* offsetof(runtime.moduledata, types) */
	int md_etypes_off;     /* offsetof(runtime.moduledata, etypes) */
	int md_itablinks_off;  /* offsetof(runtime.moduledata, itablinks); -1 from 1.27 */
	int md_itaboffset_off; /* offsetof(runtime.moduledata, itaboffset), itabsize
				* the word after (1.27+); -1 before */
	int g_goid_off;        /* offsetof(runtime.g, goid) */
	int stmt_query_off;    /* offsetof(database/sql.Stmt, query) */
	int row_err_off;       /* offsetof(database/sql.Row, err) */
	int from_dwarf;        /* 1: read from the executable's DWARF */
};

/* Reads the file open on fd (kept open by the caller while the gosym
 * lives; size bytes). Returns 0 and *out, -ENOEXEC when it is not a Go
 * executable (no pclntab), or another negative errno for a malformed one;
 * err says why in one line. */
int gosym__open_fd(int fd, uint64_t size, struct gosym **out, char *err, size_t errlen);

/* The same over a buffer (tests, fuzzing); buf must outlive the gosym. */
int gosym__open_buf(const void *buf, size_t len, struct gosym **out, char *err, size_t errlen);

void gosym__free(struct gosym *g);

/* "go1.19.8", or "" when the executable carries no build info. */
const char *gosym__version(const struct gosym *g);

/* The release's layout facts, or NULL when the version is not in the
 * table (why says so: an unknown version never gets guessed offsets). */
const struct gosym_layout *gosym__layout(const struct gosym *g, char *why, size_t whylen);

size_t gosym__nfuncs(const struct gosym *g);

/* Function i (sorted by address): its name (NUL-terminated, inside the
 * gosym) and code range [entry, end) as virtual addresses. Returns 0 or
 * -ERANGE / -EINVAL (a name out of bounds). */
int gosym__func(const struct gosym *g, size_t i, const char **name, uint64_t *entry, uint64_t *end);

/* Looks a function up by its full name ("database/sql.(*DB).ExecContext").
 * Returns 0 with its range, or -ENOENT. */
int gosym__find(const struct gosym *g, const char *name, uint64_t *entry, uint64_t *end);

/* Virtual address to file offset (through the program headers). Returns
 * 0 or -ENOENT when no file-backed segment holds [vaddr, vaddr + len). */
int gosym__vaddr_to_off(const struct gosym *g, uint64_t vaddr, uint64_t len, uint64_t *off);

/* Reads len bytes at virtual address vaddr from the file. 0 or -errno. */
int gosym__read(const struct gosym *g, uint64_t vaddr, void *buf, size_t len);

/* The itabs the linker laid out (moduledata.itablinks; from 1.27 the itabs
 * at moduledata.types + itaboffset, in the order laid out): count, and itab i's
 * address, its interface's and its dynamic type's names ("error",
 * "*sqlite.Error"), and the dynamic type's size (a pointer type's: the size
 * of what it points to). Needs the layout (the
 * version known). Returns 0, -ERANGE, or -EINVAL for a malformed entry. */
int gosym__nitabs(const struct gosym *g, size_t *n);
int gosym__itab(const struct gosym *g, size_t i, uint64_t *itab, char *iface, size_t ifacelen, char *type,
		size_t typelen, uint64_t *type_size);

/* The name of the type descriptor at vaddr (runtime._type.str resolved
 * through moduledata.types). Returns 0 or -errno. */
int gosym__type_name(const struct gosym *g, uint64_t type_vaddr, char *buf, size_t len);

#endif
