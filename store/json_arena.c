/* json_arena.c — the per-thread bump arena of json_decode.c and the cJSON
 * allocation hooks that route cJSON's allocations into it (contract in
 * json_arena.h).
 *
 * DESIGN
 * Everything a decode allocates and drops by its end (the check's arrays,
 * the patched copy, cJSON's whole tree) comes from a bump arena of the
 * calling thread: no free() per node, and the tree is dropped in one go
 * instead of walked by cJSON_Delete. cJSON reaches it through its global
 * hooks (see json_arena__init): while this thread's arena is active they
 * allocate from it and ignore frees of its memory; otherwise, and for any
 * other pointer, they are malloc/free. Only the entries and their array, which
 * outlive the decode, are malloc'd.
 *
 * Blocks double in size as a decode needs more. Between decodes a thread
 * keeps its newest (largest) block for the next one, unless it is larger
 * than ARENA_KEEP; that block is freed when the thread exits (a pthread key
 * destructor). Under ASan the unused space and a redzone after every
 * allocation are poisoned, so overruns are still caught. */
#include "json_arena.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>
#include <sanitizer/asan_interface.h> /* no-op macros without ASan */

#define ARENA_FIRST ((size_t)64 << 10)
#define ARENA_KEEP ((size_t)4 << 20)
#define ARENA_ALIGN 8          /* cJSON nodes hold pointers and doubles */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_REDZONE 16
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_REDZONE 16
#endif
#endif
#ifndef ARENA_REDZONE
#define ARENA_REDZONE 0
#endif

struct arena_block {
	struct arena_block *next;   /* older blocks of the same decode */
	size_t cap, used;           /* bytes of data[] */
	_Alignas(16) char data[];
};

struct arena {
	struct arena_block *head;   /* the block being filled, newest first */
	struct arena_block *kept;   /* what the thread-exit key holds */
	bool active;
};

static __thread struct arena tl_arena;
static pthread_key_t arena_key;     /* value: the thread's kept block */
static bool arena_key_ok;

static void arena_block_free(struct arena_block *b)
{
	ASAN_UNPOISON_MEMORY_REGION(b->data, b->cap);
	free(b);
}

static void arena_thread_exit(void *kept)
{
	arena_block_free(kept);
}

static struct arena_block *arena_block_new(size_t cap)
{
	struct arena_block *b = malloc(sizeof(*b) + cap);

	if (!b)
		return NULL;
	b->next = NULL;
	b->cap = cap;
	b->used = 0;
	ASAN_POISON_MEMORY_REGION(b->data, cap);
	return b;
}

/* n bytes from this thread's arena, or NULL when out of memory. */
void *json_arena__alloc(size_t n)
{
	struct arena *a = &tl_arena;
	struct arena_block *b = a->head;
	size_t need = (n + ARENA_REDZONE + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	void *p;

	if (need < n || need > SIZE_MAX / 4)
		return NULL;
	if (!b || b->cap - b->used < need) {
		size_t cap = b ? b->cap * 2 : ARENA_FIRST;

		while (cap < need)
			cap *= 2;
		if (cap > SIZE_MAX - sizeof(*b))
			return NULL;
		b = arena_block_new(cap);
		if (!b)
			return NULL;
		b->next = a->head;
		a->head = b;
	}
	p = b->data + b->used;
	b->used += need;
	ASAN_UNPOISON_MEMORY_REGION(p, n);
	return p;
}

static bool arena_owns(const void *p)
{
	for (const struct arena_block *b = tl_arena.head; b; b = b->next)
		if ((const char *)p >= b->data && (const char *)p < b->data + b->cap)
			return true;
	return false;
}

void json_arena__begin(void)
{
	tl_arena.active = true;
}

/* Drops everything allocated since json_arena__begin(), keeping the newest
 * (the largest) block for the next decode when it is not too large. */
void json_arena__end(void)
{
	struct arena_block *keep = tl_arena.head, *b, *next;

	tl_arena.active = false;
	if (!keep)
		return;
	for (b = keep->next; b; b = next) {
		next = b->next;
		arena_block_free(b);
	}
	keep->next = NULL;
	if (keep->cap > ARENA_KEEP || !arena_key_ok ||
	    (keep != tl_arena.kept && pthread_setspecific(arena_key, keep) != 0)) {
		arena_block_free(keep);
		keep = NULL;
		if (arena_key_ok)
			pthread_setspecific(arena_key, NULL);
	} else {
		keep->used = 0;
		ASAN_POISON_MEMORY_REGION(keep->data, keep->cap);
	}
	tl_arena.head = tl_arena.kept = keep;
}

static void *hook_malloc(size_t n)
{
	return tl_arena.active ? json_arena__alloc(n) : malloc(n);
}

static void hook_free(void *p)
{
	if (tl_arena.active && arena_owns(p))
		return;
	free(p);
}

/* cJSON allocates with its global hooks: they are set here, once, to the
 * arena hooks above. Nothing else in sqltrace-bpf may call cJSON_InitHooks
 * (anyone else's cJSON calls get plain malloc/free through them). */
void json_arena__init(void)
{
	cJSON_Hooks h = { .malloc_fn = hook_malloc, .free_fn = hook_free };

	arena_key_ok = pthread_key_create(&arena_key, arena_thread_exit) == 0;
	cJSON_InitHooks(&h);
}
