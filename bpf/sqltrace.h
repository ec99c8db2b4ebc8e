/* sqltrace.h — types and constants shared by the BPF programs
 * (sqltrace.bpf.c) and user space (user/attach/probes.c, user/consume/records.c and event.c).
 * Fixed-size types only: this header is compiled by both clang -target bpf
 * and the host compiler.
 */
#ifndef SQLTRACE_BPF_SHARED_H
#define SQLTRACE_BPF_SHARED_H

#define ST_SQL_MAX      8192   /* bytes of SQL text carried per record (incl. NUL) */
#define ST_ERR_MAX      192    /* bytes of error message carried (incl. NUL) */
#define ST_COMM_LEN     16
#define ST_TRACE_ID_MAX 65     /* shim trace id: 64 bytes + NUL */
#define ST_MAX_LIBS     64     /* SQLite copies (files) probed at once */
#define ST_MAX_STMTS    65536  /* live statements tracked, all processes */
#define ST_SCAN_CHUNKS  256    /* length scan of cut text: 256 * 4 KiB = 1 MiB */
#define ST_STEP_SLOTS   4      /* step returns awaited per thread (return probes) */

/* A uprobe's cookie: which copy (lib id, bits 0..7), how many words the
 * function had pushed before the probed instruction (bits 8..23: the return
 * address is at rsp + 8 * words), and the probed instruction's file offset
 * (bits 32..63, to relocate SQLite's code range into the process). */
#define ST_COOKIE(lib, sp_words, off) \
	((unsigned long long)(lib) | ((unsigned long long)(sp_words) << 8) | \
	 ((unsigned long long)(off) << 32))
#define ST_COOKIE_LIB(c)   ((unsigned int)((c) & 0xff))
#define ST_COOKIE_SPW(c)   ((unsigned int)(((c) >> 8) & 0xffff))
#define ST_COOKIE_OFF(c)   ((c) >> 32)
/* Exit sites that read the result from a register: its pt_regs index + 1
 * in bits 24..31 (0: none). */
#define ST_COOKIE_RES(c)   ((int)(((c) >> 24) & 0xff) - 1)
#define ST_COOKIE_WITH_RES(c, reg) ((c) | ((unsigned long long)((reg) + 1) << 24))

/* Record kinds. */
enum st_kind {
	ST_EV_STMT = 1,        /* one execution of a prepared statement */
	ST_EV_EXEC = 2,        /* one sqlite3_exec() call, its whole text */
	ST_EV_PREPARE_FAIL = 3,/* a prepare that failed (bad SQL) */
	ST_EV_LEARN = 4,       /* a prepare seen while this copy's layout is
	                        * being learned: carries the prepared text */
	ST_EV_OPEN = 5,        /* sqlite3_open*() returned: db and file name */
	ST_EV_PROC_EXIT = 6,   /* a traced process ended (its last thread) */
	ST_EV_PROC_EXEC = 7,   /* a traced process ran execve(): re-examine it */
	ST_EV_GO_ROWS = 8,     /* Go's database/sql: a Rows closed, its rows
	                        * counted (db: the *Rows, rows, end_ns: when
	                        * closed, rc: 1 when not counted exactly) */
};

/* Control records (the `ctl` ring buffer, read even while entries wait for
 * room): a traced process loaded a file and is stopped until user space
 * has probed it. */
enum st_ctl_kind {
	ST_CTL_LOADED = 1,   /* a watched target loaded something or exec'd */
	ST_CTL_CGROUP = 2,   /* a process exec'd in a --cgroup cgroup (pad: stopped) */
};

#define ST_MAX_CGROUPS 64      /* cgroup ids in the cgroup_ids map */
#define ST_CGROUP_LEVELS 32    /* ancestors looked at */

struct st_ctl {
	unsigned int kind;              /* enum st_ctl_kind */
	unsigned int pid;               /* tgid, stopped (SIGSTOP) */
	unsigned int tid;
	unsigned int pad;
};

/* How a statement execution ended (ST_EV_STMT). */
enum st_end {
	ST_END_STEP = 0,       /* a step returned DONE or an error */
	ST_END_RESET = 1,      /* sqlite3_reset ended it early */
	ST_END_FINALIZE = 2,   /* sqlite3_finalize ended it early */
};

/* Op of an ST_EV_STMT record: from rows and text (AUTO), or as the probed
 * call says (Go's database/sql: Exec* or Query*). */
enum st_op { ST_OP_AUTO = 0, ST_OP_EXEC = 1, ST_OP_QUERY = 2 };

/* Text encoding of sql[]. */
enum st_enc { ST_ENC_UTF8 = 0, ST_ENC_UTF16LE = 1 };

/* Where this copy of SQLite keeps what we read from its objects; -1 when
 * unknown. One entry per probed file, indexed by the uprobe's cookie
 * (the lib id). Filled by user space before attach (calibration) or later
 * (learning, see user/find/layout.c). */
struct st_lib_cfg {
	int vdbe_db_off;       /* offsetof(Vdbe, db) */
	int vdbe_zsql_off;     /* offsetof(Vdbe, zSql) */
	int db_perr_off;       /* offsetof(sqlite3, pErr) */
	int mem_z_off;         /* offsetof(sqlite3_value, z) */
	unsigned int learn;    /* non-zero: send ST_EV_LEARN records */
	int vdbe_rc_off;       /* offsetof(Vdbe, rc) */
	int vdbe_zerrmsg_off;  /* offsetof(Vdbe, zErrMsg) */
	/* The statement's state byte (Vdbe.eVdbeState in 3.38+) and its values
	 * while ready, running (the last step returned a row) and halted (the
	 * last step returned DONE or an error). state_off -1: unknown, and
	 * step returns are probed instead (step_ret). */
	int vdbe_state_off;
	unsigned char state_ready, state_run, state_halt, pad0;
	/* offsetof(Vdbe, pResultRow): set when a step returns a row, cleared
	 * when it returns anything else (sqlite3Step): the step's outcome at
	 * its exit, EXPLAIN included. -1 unknown. */
	int vdbe_resrow_off;
	/* 1: a step's outcome is the result it returns (rax at its ret
	 * instructions, or a uretprobe); 0: read from the statement's state
	 * at its exit site (an instruction before the ret). */
	unsigned int step_ret;
	/* SQLite's own code [lo, hi) as file offsets: a call returning into it
	 * is SQLite's own (the statements of sqlite3_exec, schema loading),
	 * never the program's. 0 = unknown. */
	unsigned long long text_lo, text_hi;
	/* Prepares: 1 when the prepare's return is probed (timed prepares,
	 * learning, no sqlite3ErrorWithMsg); 0 when only its entry is,
	 * failures being caught at sqlite3ErrorWithMsg. */
	unsigned int prepare_ret;
	/* The API prepares that call sqlite3LockAndPrepare directly
	 * (sqlite3_prepare_v2, _v3): the return address it sees from each
	 * (file offset; 0 unknown) and the wrapper's frame there, so that
	 * whose prepare it is comes from the wrapper's own caller. */
	unsigned long long wrap_ret[2];
	unsigned int wrap_depth[2];
	/* offsetof(sqlite3, pParse): the Parse of the prepare in progress,
	 * whose second field is zErrMsg (the message sqlite3Prepare hands to
	 * sqlite3ErrorWithMsg). -1 unknown: prepares keep their return probe. */
	int db_pparse_off;
	/* A connection's file name: db->aDb[0].pBt->pBt->pPager->zFilename */
	int db_adb_off;        /* offsetof(sqlite3, aDb), -1 unknown */
	int pager_zfile_off;   /* offsetof(Pager, zFilename) */
};

/* Counters kept by BPF (per-CPU array, index below), read by user space. */
enum st_counter {
	ST_CNT_EVENTS = 0,     /* records submitted */
	ST_CNT_RB_DROPS,       /* ring buffer full: record lost */
	ST_CNT_STMT_FULL,      /* statement map full: execution not tracked */
	ST_CNT_READ_FAULTS,    /* user memory read failed */
	ST_CNT_TASK_FULL,      /* no per-thread storage */
	ST_CNT_PROCS_FULL,     /* --max-targets reached: a process not traced */
	ST_CNT_UNSETTLED,      /* a thread exited before the outcome of its
	                        * last step could be read: execution lost */
	ST_CNT_UNSEEN_END,     /* an execution found reset by a call not seen
	                        * (ended when noticed) */
	ST_CNT_SLOTS_FULL,     /* more nested calls than return slots */
	ST_CNT_CTL_FULL,       /* a load not reported (control ring full): the
	                        * process was not stopped, its new copy is
	                        * found by the next rescan */
	ST_CNT_MAX,
};

/* One ring buffer record. Variable length: sql[] holds sql_len bytes plus a
 * NUL; the record is submitted with offsetof(sql) + sql_len + 1 bytes. */
struct st_event {
	unsigned long long end_ns;      /* CLOCK_MONOTONIC at finish */
	unsigned long long duration_ns; /* first step .. finish (EXEC: call) */
	unsigned long long prepare_ns;  /* prepare preceding it, 0 if none */
	unsigned long long stmt;        /* sqlite3_stmt* in the target */
	unsigned long long db;          /* sqlite3* in the target, 0 unknown */
	unsigned long long rows;        /* SQLITE_ROW results */
	unsigned int pid;               /* tgid */
	unsigned int tid;
	unsigned int kind;              /* enum st_kind */
	int rc;                         /* SQLite result code, 0 on success */
	unsigned int lib_id;
	unsigned int sql_len;           /* bytes in sql[] before the NUL */
	unsigned int sql_total;         /* original text length, 0 unknown */
	unsigned short err_len;         /* bytes in err[] before the NUL */
	unsigned char sql_enc;          /* enum st_enc */
	unsigned char end;              /* enum st_end */
	unsigned char rows_unknown;     /* rows are not counted (Go's database/sql) */
	unsigned char op;               /* enum st_op: Op given by the probe */
	unsigned char pad[6];
	char comm[ST_COMM_LEN];         /* process (group leader) name */
	char trace_id[ST_TRACE_ID_MAX]; /* the thread's shim trace id, "" none */
	char err[ST_ERR_MAX];
	char sql[ST_SQL_MAX];
};

/* ST_EV_LEARN: the statement object's first ST_LEARN_WORDS words, looked at
 * when its prepare returned (while it surely lives): bit i of `rows` set
 * when word i points to a copy of its text (the same first 8 bytes, the
 * prepared text being 8 bytes or longer, at another address), bit i of
 * `duration_ns` when word i is its connection (`db`). */
#define ST_LEARN_WORDS 64

#endif
