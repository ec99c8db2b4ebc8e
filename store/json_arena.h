/* json_arena.h — the per-thread bump arena of the JSON decoder and the cJSON
 * allocation hooks that feed it (json_arena.c has the DESIGN comment).
 * Internal to store/: only json_decode.c uses it.
 *
 * Between json_arena__begin() and json_arena__end() on a thread, cJSON's
 * allocations on that thread come from its arena and frees of arena memory
 * are ignored; outside that window, and on other threads, cJSON gets plain
 * malloc/free.
 */
#ifndef SQLTRACE_JSON_ARENA_H
#define SQLTRACE_JSON_ARENA_H

#include <stddef.h>

/* Sets cJSON's global allocation hooks to the arena's and creates the key
 * that frees a thread's kept block when it exits. Call exactly once per
 * process, before anything else here (json_decode.c does, under
 * pthread_once). Nothing else may call cJSON_InitHooks. Can't fail: without
 * the key, no block is kept between decodes. */
void json_arena__init(void);

/* Starts a decode on this thread: cJSON's hooks allocate from the arena. */
void json_arena__begin(void);

/* n bytes (8-aligned) from this thread's arena, valid until
 * json_arena__end(); NULL when out of memory. */
void *json_arena__alloc(size_t n);

/* Ends the decode: drops everything allocated since json_arena__begin()
 * (keeping one block of up to 4 MiB for the thread's next decode) and
 * gives cJSON plain malloc/free again. */
void json_arena__end(void);

#endif
