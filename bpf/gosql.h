/* gosql.h — constants and fixed-size types shared by bpf/gosql.bpf.c and
 * user space (user/attach/gosql_attach.c, user/find/gosql.c): probes on Go's
 * database/sql layer. Records are struct st_event (sqltrace.h), so the
 * consumer makes them ordinary entries. */
#ifndef SQLTRACE_GOSQL_H
#define SQLTRACE_GOSQL_H

#define GO_MAX_COPIES   32       /* Go executables probed at once */
#define GO_MAX_CALLS    16384    /* calls in progress (goroutines), all processes */
#define GO_MAX_ERRTYPES 256      /* error types whose message is read */
#define GO_MAX_ROWSETS  16384    /* open Rows whose rows are counted, all processes */
/* lib_id of a Go record: GOSQL_LIB_BASE + copy index (outside the C
 * copies' 0..ST_MAX_LIBS-1). */
#define GOSQL_LIB_BASE  0x100

/* What a probed function takes and returns (Go's register ABI on amd64:
 * arguments and results in RAX, RBX, RCX, RDI, RSI, R8..R11; a string is
 * two words, an interface two words). */
enum go_args {
	GO_ARG_CTX_QUERY = 0,  /* (recv, ctx, query string, ...): query in RDI, RSI */
	GO_ARG_QUERY = 1,      /* (recv, query string, ...): query in RBX, RCX */
	GO_ARG_STMT = 2,       /* (*Stmt, ...): query read from the Stmt */
};
enum go_res {
	GO_RES_EXEC = 0,       /* (Result, error): error in RCX, RDI */
	GO_RES_QUERY = 1,      /* (*Rows, error): error in RBX, RCX */
	GO_RES_ROW = 2,        /* *Row in RAX: error read from the Row */
	GO_RES_PREPARE = 3,    /* (*Stmt, error): error in RBX, RCX; a record
	                        * only when it failed (a failed prepare is an
	                        * entry, a prepare alone is not) */
};

/* A probe's cookie: copy (bits 0..7), function index in the plan (bits
 * 8..23: an entry and its returns match by it), args (24..25), result
 * (26..27), Op Query (bit 28; else Exec), wraps (bit 29: the function
 * calls another probed one, which follows the call when this one cannot),
 * and the probed instruction's virtual address in the file (bits 32..63;
 * 0 when it does not fit): the probe's address minus it is the load bias
 * (0 unless position-independent), by which the file's itabs moved. */
#define GO_COOKIE(copy, fn, args, res, query, wraps, vaddr) \
	((unsigned long long)(copy) | ((unsigned long long)(fn) << 8) | \
	 ((unsigned long long)(args) << 24) | ((unsigned long long)(res) << 26) | \
	 ((unsigned long long)!!(query) << 28) | ((unsigned long long)!!(wraps) << 29) | \
	 ((unsigned long long)(vaddr) >> 32 ? 0ULL : (unsigned long long)(vaddr) << 32))
#define GO_COOKIE_COPY(c)  ((unsigned int)((c) & 0xff))
#define GO_COOKIE_FN(c)    ((unsigned int)(((c) >> 8) & 0xffff))
#define GO_COOKIE_ARGS(c)  ((unsigned int)(((c) >> 24) & 3))
#define GO_COOKIE_RES(c)   ((unsigned int)(((c) >> 26) & 3))
#define GO_COOKIE_QUERY(c) ((unsigned int)(((c) >> 28) & 1))
#define GO_COOKIE_WRAPS(c) ((unsigned int)(((c) >> 29) & 1))
#define GO_COOKIE_VADDR(c) ((c) >> 32)

/* Per copy: where the objects read keep their fields (-1 unknown). */
struct go_cfg {
	int g_goid_off;        /* runtime.g.goid; -1: calls matched by depth only */
	int stmt_query_off;    /* database/sql.Stmt.query (a string) */
	int row_err_off;       /* database/sql.Row.err (an interface) */
	/* database/sql.Row.rows (the *Rows after err, since Go 1.0); -1: rows
	 * are not counted (Rows.Next or Rows.close not probed). */
	int row_rows_off;
	unsigned int follow_rows;  /* 1: Rows.Next and Rows.close are probed */
	int pad;
};

/* Error types whose message is read: key = the itab's address in the
 * file (the process's minus the load bias) and copy; value = offset of the message string in the
 * object the interface points to. */
struct go_err_key {
	unsigned long long itab;
	unsigned int copy;
	unsigned int pad;
};
struct go_err_rule {
	int msg_off;
	int pad;
};

#endif
