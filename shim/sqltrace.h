/* sqltrace.h — the sqltrace shim: a program tells sqltrace-bpf which trace id
 * the SQLite statements run by the calling thread belong to.
 *
 * Link with `pkg-config --cflags --libs sqltrace` (libsqltrace.so.0) or with
 * libsqltrace.a. The library depends on libc only, starts no thread, takes
 * no lock and never allocates (only glibc may, once per thread, for the
 * thread-local buffer of a library loaded late with dlopen).
 *
 * Model: every thread has one current trace id, "" until it sets one. A set
 * replaces it, a clear empties it; statements the thread runs in between are
 * attributed to it by an attached sqltrace-bpf. Each call fires a USDT probe
 * (provider "sqltrace", probes "set_trace_id" and "clear_trace_id") that a
 * tracer attaches to; when no tracer listens the probe is skipped and a call
 * costs a few nanoseconds (shim/README.md has the numbers).
 *
 * A tracer sees only the sets and clears that happen while it is attached:
 * an id set before it attached is unknown to it until the thread's next set.
 */
#ifndef SQLTRACE_H
#define SQLTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Longest trace id kept, in bytes, not counting the terminating NUL. */
#define SQLTRACE_TRACE_ID_MAX 64

/* Makes zId the calling thread's current trace id.
 *
 * zId is copied (the caller keeps ownership) into a per-thread buffer after
 * sanitising it for storage and JSON:
 *   - only the first SQLTRACE_TRACE_ID_MAX bytes are kept, the rest is cut;
 *   - every byte outside printable ASCII (0x20..0x7e) — control characters,
 *     DEL, and any byte of a non-ASCII character — is replaced by '_'.
 *     Trace ids are ASCII in every propagation format (W3C trace-context,
 *     B3, UUIDs, request ids), so a replaced byte means a malformed id.
 * NULL or "" clears the id exactly as sqltrace_clear_trace_id() does.
 *
 * Returns 0 when the id was stored as given (or cleared), 1 when it was
 * stored altered (cut or with bytes replaced). It never fails. */
int sqltrace_set_trace_id(const char *zId);

/* Empties the calling thread's current trace id. This function can't fail. */
void sqltrace_clear_trace_id(void);

/* Returns the calling thread's current trace id as stored (sanitised), or ""
 * when it has none. The pointer refers to per-thread storage: it stays valid
 * until the thread exits, and its contents change with the thread's next set
 * or clear. Never NULL. */
const char *sqltrace_get_trace_id(void);

#ifdef __cplusplus
}
#endif

#endif /* SQLTRACE_H */
