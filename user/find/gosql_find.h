/* gosql_find.h — the finder for Go's database/sql layer: in a Go executable
 * (stripped or not) it finds database/sql's statement calls in Go's own
 * function table (gosym.h), where to probe each (entry, and every RET
 * instruction: Go functions are never given uretprobes), the runtime
 * layout of the executable's Go release, the error types whose message can
 * be read, and which driver the program registers. The plan is what
 * user/attach/gosql_attach.c attaches. */
#ifndef SQLTRACE_GOSQL_FIND_H
#define SQLTRACE_GOSQL_FIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gosql.h"

#define GOSQL_MAX_RETS 64

/* One probed function. */
struct gosql_probe {
	const char *name;          /* static: "database/sql.(*DB).ExecContext" */
	uint64_t entry_off;        /* file offset of the entry probe */
	unsigned moved;            /* bytes past the function's first (0: not moved) */
	uint64_t entry_vaddr;      /* its virtual address in the file */
	uint64_t rets[GOSQL_MAX_RETS];  /* file offsets of its RET instructions */
	uint64_t ret_vaddrs[GOSQL_MAX_RETS];  /* and their virtual addresses */
	size_t nrets;
	unsigned args, res;        /* enum go_args, enum go_res */
	bool query;                /* Op Query (else Exec) */
	bool wraps;                /* calls another probed function (DB.Exec: DB.ExecContext) */
};

/* An error type whose message is read (msg_off >= 0), or only named. */
struct gosql_errtype {
	uint64_t itab;             /* address of its itab (error) */
	int msg_off;               /* offset of the message string, -1 none */
	char name[96];             /* Go type name, "*sqlite.Error" */
};

struct gosql_plan {
	char version[64];          /* "go1.19.8" */
	char lib[256];             /* "database/sql (driver modernc.org/sqlite.Driver, go1.21.5)" */
	struct go_cfg cfg;
	char layout_from[32];      /* "its DWARF" or "the release table" */
	struct gosql_probe *probes;
	size_t nprobes;
	struct gosql_probe rows_next;   /* (*Rows).Next: entry and RETs */
	struct gosql_probe rows_close;  /* (*Rows).close: entry only */
	struct gosql_errtype *errs;
	size_t nerrs;
	bool pie;                  /* position-independent: itab addresses move
	                            * (by the load bias, which BPF computes) */
	char notes[512];           /* what the plan lacks, for -v */
};

/* Makes the plan for the executable open on fd (size bytes). Returns 0;
 * -ENOEXEC: not a Go executable; -ENOENT: it does not use database/sql, or it
 * carries a cgo SQLite (`._Cfunc_sqlite3_*`: its C functions are the ones
 * to probe, by the cgo finder);
 * -ENOTSUP: its Go release's layout is unknown (never guessed); other
 * negative errno: malformed. why says which, in one line. */
int gosql__plan(int fd, uint64_t size, struct gosql_plan *out, char *why, size_t whylen);

void gosql__plan_free(struct gosql_plan *p);

/* The name of the error type whose itab is at addr, or NULL. */
const char *gosql__err_name(const struct gosql_plan *p, uint64_t itab);

/* Where to probe one Go function, from its code (len bytes at virtual
 * address base): every RET instruction's address in rets (at most max),
 * and the entry probe's address: past Go's stack-bound check (`cmp
 * rsp|r12, [r14+0x10]` or `lea r12, [rsp-N]` first) onto its `jbe`, which
 * the kernel emulates instead of single-stepping; registers are unchanged
 * there. The whole function must decode (to its end, int3 padding
 * included): returns the number of RETs, or -EINVAL when it does not
 * decode cleanly or has no RET, -E2BIG past max. */
int gosql__code_sites(const uint8_t *code, size_t len, uint64_t base, uint64_t *entry, uint64_t *rets, size_t max);

#endif
