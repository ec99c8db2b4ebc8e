/* tracer_int.h — the tracer's state and the functions its parts share:
 * tracer.c (lifecycle and event loop), probes.c (attaching the probe set
 * the finders chose for a file), targets.c (the processes traced and their files), records.c (the
 * ring buffer consumer). Not for use outside user/trace/.
 */
#ifndef SQLTRACE_TRACER_INT_H
#define SQLTRACE_TRACER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "sqltrace.h"
#include "finder.h"
#include "target.h"
#include "tracer.h"

struct dbnames;
struct gosql;
struct watchdog;
struct sqltrace_bpf;
struct ring_buffer;
struct bpf_link;

#define LEARN_CACHE_SLOTS 1024

struct lib {
	char *path;                /* as the target sees it */
	dev_t dev;
	ino_t ino;
	bool same_build;           /* the build this tool links (calibrated) */
	bool global;               /* attached for every process (-b) */
	struct st_lib_cfg cfg;
};

struct file_id {
	dev_t dev;
	ino_t ino;
};

/* A process given by the user (-p, -n, the command): probes attached to it
 * alone, its exit watched through a pidfd. */
struct target {
	int pid;
	int pidfd;
	bool alive;
	bool is_command;
	char comm[32];
	uint64_t entries;
	struct file_id *files;     /* files probed for it (rescans skip them) */
	size_t nfiles;
	uint64_t maps_fp;          /* fingerprint of its mapped files */
	bool watched;              /* its dynamic linker is probed (later loads) */
	struct looked { uint32_t maj, min; uint64_t ino; } *looked;  /* files inspected */
	size_t nlooked, caplooked;
	size_t sqlite_files;       /* SQLite copies probed for it */
	size_t copies_mapped;      /* SQLite copies in its maps at the last scan */
	bool blind_said;           /* "no SQLite in it" said once */
	bool unlocatable;          /* it carries a SQLite whose functions
	                            * cannot be located (said once) */
	int64_t since_us;          /* when it became a target */
	uint64_t start_time;       /* --cgroup: its start time (pid reuse) */
};

#define SHIM_TAG ((dev_t)1 << 63)
#define CTL_EVENT UINT64_MAX   /* epoll data of the control ring buffer */
#define FILTER_EVENT (1ULL << 40)  /* + index: pidfd of a -p pid with -b */
#define RESCAN_US 1000000      /* look for newly mapped SQLite copies */
#define SEEN_SLOTS 8192
#define CGROUP_SCAN_US 100000  /* --cgroup: look for processes that joined */

/* Text of statements whose prepare was seen while their copy's layout was
 * still being learned (direct-mapped on pid and statement pointer). */
struct learn_slot {
	uint32_t pid;
	uint64_t stmt;
	char *text;
};

/* Processes seen through probes attached for every process (-b): entry
 * counts while they live; removed when they exit. */
struct seen {
	uint32_t pid;              /* 0 free, UINT32_MAX removed */
	uint64_t entries;
};

struct tracer {
	struct tracer_opts opts;
	struct dbnames *dbn;
	struct seen seen[SEEN_SLOTS];
	size_t nseen, seen_removed;
	uint64_t procs_exited;
	int64_t next_rescan_us;
	char **cgroup_dirs;           /* --cgroup, resolved */
	uint64_t *cgroup_ids;         /* their ids in the cgroup_ids map, 0 none */
	int64_t next_cgroup_us;
	bool adding_from_cgroup;      /* add_target: a --cgroup process (quiet when blind) */
	bool detached;                /* detach_all ran: no new target */
	uint64_t room_waited_us;      /* total time waited for room */
	struct st_entry *held;        /* made, waiting for the consumers' room */
	bool command_exited;
	struct sqltrace_bpf *skel;
	struct gosql *go;             /* database/sql probes, made on first need */
	bool go_rb;                   /* their ring buffer is read with ours */
	struct ring_buffer *rb;
	struct ring_buffer *ctl_rb;   /* control records: always read */
	int *filter_fds;              /* -b with -p: a pidfd per pid (-1 gone) */
	size_t nfilter, filter_alive;
	struct watchdog *wd;          /* continues stopped targets if we die */
	struct bpf_link **links;
	size_t nlinks;
	size_t *link_owner;           /* per link: target index + 1, 0 none (--cgroup) */
	size_t cur_owner;             /* owner of the links added now */
	struct lib libs[ST_MAX_LIBS];
	size_t nlibs;
	struct target *targets;
	size_t ntargets;
	size_t alive;
	int epfd;
	int64_t wall_offset_us;
	struct tracer_stats stats;
	struct learn_slot learn[LEARN_CACHE_SLOTS];
};

static inline int64_t now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* ---- probes.c ---- */

/* Returns the lib id for a copy, registering it (and its layout) on first
 * sight. -ENOSPC when ST_MAX_LIBS files are already probed. */
int probes__lib_id(struct tracer *t, const struct sqlite_copy *c);

/* Keeps link (destroyed at detach, or with its target: t->cur_owner).
 * Returns 0, or -ENOMEM (the link is destroyed then). */
int probes__add_link(struct tracer *t, struct bpf_link *link);

/* Attaches the probe set that fits copy c (see bpf/sqltrace.bpf.c): no
 * uretprobe unless --mode return. Says with -v what is probed how, and
 * warns once per copy about what cannot be seen. */
int probes__attach_copy(struct tracer *t, int pid, const struct sqlite_copy *c, char *err, size_t errlen);

/* Attaches the shim's two USDT probes found in file path (a library or an
 * executable of process pid; for a process's file, its map_files link) as
 * plain uprobes: the notes are read here with pread (libbpf's USDT attach
 * would map the file, which its owner could truncate under us), each site
 * probed with its is-enabled counter, the trace id's register in the
 * cookie. */
int probes__attach_shim(struct tracer *t, int pid, const char *path, char *err, size_t errlen);

/* Attaches the probe set the finders chose for one file (user/find/finder.h),
 * for process pid or, -1, for every process that maps it (-b: a C copy
 * once per file): SQLite's C functions (probes__attach_copy) or Go's
 * database/sql (user/attach/gosql_attach.c, taking f's plan over); a file
 * refused gives its error. Returns 0 (nothing to do for FOUND_NONE) or
 * -errno with err set. */
int probes__attach_found(struct tracer *t, int pid, struct sqlite_found *f, char *err, size_t errlen);

/* ---- targets.c ---- */

/* Makes pid a target (-p, -n, the command, a --cgroup member): its SQLite
 * copies probed, its later loads watched, its exit seen through a pidfd.
 * Returns 0, or -errno with a one-line reason in err. */
int targets__add(struct tracer *t, int pid, bool is_command, char *err, size_t errlen);

/* -b PATH: probes the file for every process that runs or maps it. */
int targets__add_binary(struct tracer *t, const char *path, char *err, size_t errlen);

/* Looks again at the explicit targets whose mapped files changed (a
 * library loaded with dlopen, a new program after exec). */
void targets__rescan(struct tracer *t);

/* The -b process pid's slot (made when create), NULL when absent or the
 * table is full. */
struct seen *targets__seen_slot(struct tracer *t, uint32_t pid, bool create);

/* A traced process ended (or replaced its program, exec): free what was
 * kept for it. An explicit target that exec'd is rescanned at once. */
void targets__process_gone(struct tracer *t, int pid, bool exec);

/* Makes every process now in the --cgroup cgroups a target, once: a process
 * that joined since the last scan (moved in, forked by one there) is probed
 * like a -p target, its later loads and execs followed. (One that execs in
 * the cgroup is made a target at once, stopped by the BPF side: see
 * targets__handle_ctl.) Never fails: a cgroup that is gone (the service stopped) has
 * no processes until it comes back. */
void targets__scan_cgroups(struct tracer *t, bool at_open);

/* A watched target loaded something (its dynamic linker's rendezvous) or
 * exec'd, and is stopped: probe any new SQLite copy it maps, then let it
 * go on (the control ring buffer's callback; ctx is the tracer). */
int targets__handle_ctl(void *ctx, void *data, size_t size);

/* ---- records.c ---- */

/* The explicit target pid, or NULL. */
struct target *records__target_of(struct tracer *t, int pid);

/* Hands e to the consumers (opts.on_entry), counting it. */
void records__deliver(struct tracer *t, struct st_entry *e);

/* Hands the held entry over once the consumers have room, waiting at most
 * ms for it. Returns whether nothing is held any more. */
bool records__release_held(struct tracer *t, int ms);

/* The ring buffer callback (ctx is the tracer): one record, turned into an
 * entry and delivered, or held when the consumers have no room (then it
 * returns non-zero so that the ring is not read further). */
int records__handle(void *ctx, void *data, size_t size);

#endif
