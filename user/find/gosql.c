/* gosql.c — the database/sql finder (see gosql_find.h). Which functions are
 * probed and what they take, from database/sql's exported API (Go 1.18 to
 * 1.26 alike): DB, Tx and Conn Exec*, Query*, QueryRow* take the query
 * string, Stmt's read it from the Stmt (its second field, after db *DB,
 * since Go 1.0); Exec* return (Result, error), Query* (*Rows, error),
 * QueryRow* a *Row whose first field is err, Prepare* (*Stmt, error) (an
 * entry only when it failed). The wrappers without Context
 * are often inlined; whichever of a pair exists is probed, and only the
 * outermost call of a goroutine becomes an entry (bpf/gosql.bpf.c). */
#include "gosql_find.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gosym.h"

static const struct {
	const char *name;
	unsigned args, res;
	bool query;
} fns[] = {
	{ "database/sql.(*DB).ExecContext", GO_ARG_CTX_QUERY, GO_RES_EXEC, false },
	{ "database/sql.(*DB).Exec", GO_ARG_QUERY, GO_RES_EXEC, false },
	{ "database/sql.(*DB).QueryContext", GO_ARG_CTX_QUERY, GO_RES_QUERY, true },
	{ "database/sql.(*DB).Query", GO_ARG_QUERY, GO_RES_QUERY, true },
	{ "database/sql.(*DB).QueryRowContext", GO_ARG_CTX_QUERY, GO_RES_ROW, true },
	{ "database/sql.(*DB).QueryRow", GO_ARG_QUERY, GO_RES_ROW, true },
	{ "database/sql.(*Tx).ExecContext", GO_ARG_CTX_QUERY, GO_RES_EXEC, false },
	{ "database/sql.(*Tx).Exec", GO_ARG_QUERY, GO_RES_EXEC, false },
	{ "database/sql.(*Tx).QueryContext", GO_ARG_CTX_QUERY, GO_RES_QUERY, true },
	{ "database/sql.(*Tx).Query", GO_ARG_QUERY, GO_RES_QUERY, true },
	{ "database/sql.(*Tx).QueryRowContext", GO_ARG_CTX_QUERY, GO_RES_ROW, true },
	{ "database/sql.(*Tx).QueryRow", GO_ARG_QUERY, GO_RES_ROW, true },
	{ "database/sql.(*Conn).ExecContext", GO_ARG_CTX_QUERY, GO_RES_EXEC, false },
	{ "database/sql.(*Conn).QueryContext", GO_ARG_CTX_QUERY, GO_RES_QUERY, true },
	{ "database/sql.(*Conn).QueryRowContext", GO_ARG_CTX_QUERY, GO_RES_ROW, true },
	{ "database/sql.(*DB).PrepareContext", GO_ARG_CTX_QUERY, GO_RES_PREPARE, false },
	{ "database/sql.(*DB).Prepare", GO_ARG_QUERY, GO_RES_PREPARE, false },
	{ "database/sql.(*Tx).PrepareContext", GO_ARG_CTX_QUERY, GO_RES_PREPARE, false },
	{ "database/sql.(*Tx).Prepare", GO_ARG_QUERY, GO_RES_PREPARE, false },
	{ "database/sql.(*Conn).PrepareContext", GO_ARG_CTX_QUERY, GO_RES_PREPARE, false },
	{ "database/sql.(*Stmt).ExecContext", GO_ARG_STMT, GO_RES_EXEC, false },
	{ "database/sql.(*Stmt).Exec", GO_ARG_STMT, GO_RES_EXEC, false },
	{ "database/sql.(*Stmt).QueryContext", GO_ARG_STMT, GO_RES_QUERY, true },
	{ "database/sql.(*Stmt).Query", GO_ARG_STMT, GO_RES_QUERY, true },
	{ "database/sql.(*Stmt).QueryRowContext", GO_ARG_STMT, GO_RES_ROW, true },
	{ "database/sql.(*Stmt).QueryRow", GO_ARG_STMT, GO_RES_ROW, true },
};
#define NFNS (sizeof(fns) / sizeof(fns[0]))

/* Error types whose message is a string at a known offset (from each
 * package's source), checked against the type's size in the executable. */
static const struct {
	const char *name;
	uint64_t size;
	int msg_off;
} msg_types[] = {
	{ "*errors.errorString", 16, 0 },   /* struct { s string } */
	{ "*fmt.wrapError", 32, 0 },        /* struct { msg string; err error } */
	{ "*fmt.wrapErrors", 40, 0 },       /* struct { msg string; errs []error } (1.20+) */
	{ "*sqlite.Error", 24, 0 },         /* modernc.org/sqlite: struct { msg string; code int } */
	{ "sqlite3.Error", 40, 24 },        /* mattn: { Code, ExtendedCode, SystemErrno; err string } */
};

int gosql__code_sites(const uint8_t *code, size_t len, uint64_t base, uint64_t *entry, uint64_t *rets, size_t max)
{
	csh h;
	cs_insn *insn = NULL;
	size_t n, i, covered = 0, nrets = 0;
	int e = 0;

	*entry = base;
	if (len == 0 || cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -EINVAL;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(h, code, len, base, 0, &insn);
	for (i = 0; i < n; i++) {
		covered += insn[i].size;
		if (insn[i].id == X86_INS_RET) {
			if (nrets == max) {
				e = -E2BIG;
				break;
			}
			rets[nrets++] = insn[i].address;
		}
	}
	if (!e && (covered != len || nrets == 0))
		e = -EINVAL;
	/* The stack-bound check: [lea r12, [rsp - N];] cmp rsp|r12, [r14 + 0x10]; jbe. */
	if (!e) {
		size_t k = 0;
		x86_reg cmp_reg = X86_REG_RSP;

		if (n > 0 && insn[0].id == X86_INS_LEA && insn[0].detail->x86.op_count == 2 &&
		    insn[0].detail->x86.operands[0].type == X86_OP_REG &&
		    insn[0].detail->x86.operands[0].reg == X86_REG_R12 &&
		    insn[0].detail->x86.operands[1].type == X86_OP_MEM &&
		    insn[0].detail->x86.operands[1].mem.base == X86_REG_RSP) {
			cmp_reg = X86_REG_R12;
			k = 1;
		}
		if (k + 1 < n && insn[k].id == X86_INS_CMP && insn[k].detail->x86.op_count == 2 &&
		    insn[k].detail->x86.operands[0].type == X86_OP_REG &&
		    insn[k].detail->x86.operands[0].reg == cmp_reg &&
		    insn[k].detail->x86.operands[1].type == X86_OP_MEM &&
		    insn[k].detail->x86.operands[1].mem.base == X86_REG_R14 &&
		    insn[k].detail->x86.operands[1].mem.index == X86_REG_INVALID &&
		    insn[k].detail->x86.operands[1].mem.disp == 0x10 && insn[k + 1].id == X86_INS_JBE)
			*entry = insn[k + 1].address;
	}
	cs_free(insn, n);
	cs_close(&h);
	return e ? e : (int)nrets;
}

/* Whether the function's code (len bytes at base) makes a direct call to
 * one of the n addresses in targets (0: none there). */
static bool calls_any(const uint8_t *code, size_t len, uint64_t base, const uint64_t *targets, size_t n)
{
	csh h;
	cs_insn *insn = NULL;
	size_t count, i, k;
	bool hit = false;

	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return false;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	count = cs_disasm(h, code, len, base, 0, &insn);
	for (i = 0; i < count && !hit; i++) {
		const cs_x86 *x = &insn[i].detail->x86;

		if (insn[i].id != X86_INS_CALL || x->op_count != 1 || x->operands[0].type != X86_OP_IMM)
			continue;
		for (k = 0; k < n; k++)
			if (targets[k] && (uint64_t)x->operands[0].imm == targets[k])
				hit = true;
	}
	cs_free(insn, count);
	cs_close(&h);
	return hit;
}

static void note(struct gosql_plan *p, const char *fmt, const char *a)
{
	size_t l = strlen(p->notes);

	snprintf(p->notes + l, sizeof(p->notes) - l, fmt, l ? "; " : "", a);
}

/* Where to probe the function called name (entry, RETs, whether it calls
 * one of the n functions at starts) into *pr. Returns 0; 1 when it cannot
 * be probed (not in the table, or its code does not decode cleanly: noted
 * in p); -ENOMEM. */
static int probe_of(struct gosym *gs, const char *name, const uint64_t *starts, size_t n,
		    struct gosql_probe *pr, struct gosql_plan *p)
{
	uint64_t a, b, entry, rets[GOSQL_MAX_RETS], off;
	uint8_t *code;
	int nrets, k;

	memset(pr, 0, sizeof(*pr));
	if (gosym__find(gs, name, &a, &b) != 0)
		return 1;
	if (b <= a || b - a > (1u << 20)) {
		note(p, "%s%s: no code range", name);
		return 1;
	}
	code = malloc(b - a);
	if (!code)
		return -ENOMEM;
	if (gosym__read(gs, a, code, b - a) != 0) {
		note(p, "%s%s: code not in the file", name);
		free(code);
		return 1;
	}
	nrets = gosql__code_sites(code, b - a, a, &entry, rets, GOSQL_MAX_RETS);
	if (nrets <= 0) {
		note(p, "%s%s: its code does not decode cleanly: not probed", name);
		free(code);
		return 1;
	}
	pr->name = name;
	pr->wraps = n && calls_any(code, b - a, a, starts, n);
	free(code);
	pr->moved = (unsigned)(entry - a);
	pr->entry_vaddr = entry;
	if (gosym__vaddr_to_off(gs, entry, 1, &pr->entry_off))
		return 1;
	for (k = 0; k < nrets; k++) {
		if (gosym__vaddr_to_off(gs, rets[k], 1, &off))
			return 1;
		pr->ret_vaddrs[pr->nrets] = rets[k];
		pr->rets[pr->nrets++] = off;
	}
	return 0;
}

/* The driver the program registers: the dynamic type of its
 * driver.Driver itab, named with its package path when its Open method is
 * in the function table. */
static void driver_name(const struct gosym *gs, const char *type, char *out, size_t len)
{
	const char *base = strrchr(type, '.'), *star = type[0] == '*' ? "*" : "";
	char want1[128], want2[128];
	size_t i;

	snprintf(out, len, "%s", type);
	if (!base)
		return;
	base++;
	snprintf(want1, sizeof(want1), ".(%s%s).Open", star, base);
	snprintf(want2, sizeof(want2), ".%s.Open", base);
	for (i = 0; i < gosym__nfuncs(gs); i++) {
		const char *n;
		uint64_t a, b;
		size_t nl;
		const char *hit;

		if (gosym__func(gs, i, &n, &a, &b))
			continue;
		nl = strlen(n);
		if (((hit = strstr(n, want1)) && hit + strlen(want1) == n + nl) ||
		    (!star[0] && (hit = strstr(n, want2)) && hit + strlen(want2) == n + nl)) {
			snprintf(out, len, "%s%.*s.%s", star, (int)(hit - n), n, base);
			return;
		}
	}
}

int gosql__plan(int fd, uint64_t size, struct gosql_plan *p, char *why, size_t whylen)
{
	const struct gosym_layout *l;
	struct gosym *gs = NULL;
	char driver[128] = "";
	uint64_t starts[NFNS];     /* each probed function's address, 0 absent */
	size_t i, nit = 0;
	int e;

	memset(p, 0, sizeof(*p));
	e = gosym__open_fd(fd, size, &gs, why, whylen);
	if (e)
		return e;
	snprintf(p->version, sizeof(p->version), "%s", gosym__version(gs));
	{
		uint64_t a, b;

		if (gosym__find(gs, "database/sql.(*DB).conn", &a, &b) != 0 &&
		    gosym__find(gs, "database/sql.(*DB).ExecContext", &a, &b) != 0 &&
		    gosym__find(gs, "database/sql.(*DB).QueryContext", &a, &b) != 0) {
			snprintf(why, whylen, "a Go program (%s) that does not use database/sql",
				 p->version[0] ? p->version : "version unknown");
			e = -ENOENT;
			goto out;
		}
	}
	/* A cgo SQLite (mattn/go-sqlite3 or another binding): its C functions
	 * are what to probe (the cgo finder's job), even where they could not
	 * be found: never traced one level up instead, silently. */
	for (i = 0; i < gosym__nfuncs(gs); i++) {
		const char *n;
		uint64_t a, b;

		if (gosym__func(gs, i, &n, &a, &b) == 0 && strstr(n, "._Cfunc_sqlite3_")) {
			snprintf(why, whylen, "a Go program (%s) with a cgo SQLite (%s): its C functions are "
				 "the ones to probe", p->version[0] ? p->version : "version unknown", n);
			e = -ENOENT;
			goto out;
		}
	}
	l = gosym__layout(gs, why, whylen);
	if (!l) {
		e = -ENOTSUP;
		goto out;
	}
	p->cfg.g_goid_off = l->g_goid_off;
	p->cfg.stmt_query_off = l->stmt_query_off;
	p->cfg.row_err_off = l->row_err_off;
	snprintf(p->layout_from, sizeof(p->layout_from), "%s", l->from_dwarf ? "its DWARF" : "the release table");
	if (l->g_goid_off < 0)
		note(p, "%s%s", "goroutine ids: unknown for this release (calls matched by stack depth only)");
	{
		uint8_t eh[18];

		/* ET_DYN: a PIE, its itabs relocated by the load address. */
		if (pread(fd, eh, sizeof(eh), 0) == (ssize_t)sizeof(eh) && eh[16] == 3 && eh[17] == 0)
			p->pie = true;
	}
	p->probes = calloc(NFNS, sizeof(*p->probes));
	if (!p->probes) {
		e = -ENOMEM;
		goto out;
	}
	for (i = 0; i < NFNS; i++) {
		uint64_t b;

		if (gosym__find(gs, fns[i].name, &starts[i], &b) != 0)
			starts[i] = 0;
	}
	for (i = 0; i < NFNS; i++) {
		struct gosql_probe *pr = &p->probes[p->nprobes];

		e = probe_of(gs, fns[i].name, starts, NFNS, pr, p);
		if (e < 0)
			goto out;
		if (e)
			continue;
		pr->args = fns[i].args;
		pr->res = fns[i].res;
		pr->query = fns[i].query;
		p->nprobes++;
	}
	/* Rows counted: Next's returns and close's entry, both or neither. */
	e = probe_of(gs, "database/sql.(*Rows).Next", NULL, 0, &p->rows_next, p);
	if (e == 0)
		e = probe_of(gs, "database/sql.(*Rows).close", NULL, 0, &p->rows_close, p);
	if (e < 0)
		goto out;
	p->cfg.follow_rows = e == 0;
	p->cfg.row_rows_off = l->row_err_off >= 0 ? l->row_err_off + 16 : -1;  /* err (16 bytes), then rows */
	if (!p->cfg.follow_rows)
		note(p, "%s%s", "rows not counted");
	if (!p->nprobes) {
		snprintf(why, whylen, "%s: no database/sql statement function could be probed (%s)", p->version,
			 p->notes[0] ? p->notes : "none in the function table");
		e = -ENOENT;
		goto out;
	}
	/* The load bias is computed from the probes' addresses, carried in 32
	 * bits of the cookie (bpf/gosql.h). */
	for (i = 0; p->pie && i < p->nprobes; i++)
		if (p->probes[i].ret_vaddrs[0] >> 32) {
			note(p, "%s%s", "position-independent executable linked above 4 GiB: error messages not "
			     "read (type names only)");
			break;
		}
	if (gosym__nitabs(gs, &nit) == 0 && nit) {
		p->errs = calloc(nit, sizeof(*p->errs));
		if (!p->errs) {
			e = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < nit; i++) {
		char iface[64], type[96];
		uint64_t itab, tsize;
		size_t k;

		if (gosym__itab(gs, i, &itab, iface, sizeof(iface), type, sizeof(type), &tsize))
			continue;
		if (strcmp(iface, "driver.Driver") == 0 && !driver[0]) {
			driver_name(gs, type, driver, sizeof(driver));
			continue;
		}
		if (strcmp(iface, "error") != 0)
			continue;
		p->errs[p->nerrs].itab = itab;
		p->errs[p->nerrs].msg_off = -1;
		snprintf(p->errs[p->nerrs].name, sizeof(p->errs[p->nerrs].name), "%s", type);
		for (k = 0; k < sizeof(msg_types) / sizeof(msg_types[0]); k++)
			if (strcmp(type, msg_types[k].name) == 0 && tsize == msg_types[k].size)
				p->errs[p->nerrs].msg_off = msg_types[k].msg_off;
		p->nerrs++;
	}
	snprintf(p->lib, sizeof(p->lib), "database/sql (driver %s, %s)", driver[0] ? driver : "unknown",
		 p->version);
	e = 0;
out:
	gosym__free(gs);
	if (e)
		gosql__plan_free(p);
	return e;
}

void gosql__plan_free(struct gosql_plan *p)
{
	free(p->probes);
	free(p->errs);
	p->probes = NULL;
	p->errs = NULL;
	p->nprobes = p->nerrs = 0;
}

const char *gosql__err_name(const struct gosql_plan *p, uint64_t itab)
{
	size_t i;

	for (i = 0; i < p->nerrs; i++)
		if (p->errs[i].itab == itab)
			return p->errs[i].name;
	return NULL;
}
