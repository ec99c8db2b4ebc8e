/* fuzz_procmaps.c — libFuzzer target for user/find/procmaps.c, the parser of
 * /proc/PID/maps (whose path column a process's owner chooses: file names
 * may hold spaces, tabs, "(deleted)"). The input is the maps text, read
 * through fmemopen() as procmaps__parse() reads /proc. Build and run:
 * `make fuzz-run-files`; tests/unit/test_fuzz_corpus.c replays
 * tests/fuzz/corpus/procmaps/ on every `make unit`.
 *
 * Besides ASan and UBSan, it checks:
 *   - every accepted entry has start <= end, valid perms, a path without a
 *     newline or leading blank, and deleted == the path ends in " (deleted)";
 *   - printing the entries back as maps lines and parsing them again gives
 *     the same entries (parse . print . parse == parse);
 *   - procmaps__find_addr() finds each entry's start in a non-empty entry.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procmaps.h"

static int fuzz_maps_same(const struct map_entry *a, const struct map_entry *b)
{
	return a->start == b->start && a->end == b->end && a->offset == b->offset &&
	       a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && strcmp(a->perms, b->perms) == 0 &&
	       ((!a->path && !b->path) || (a->path && b->path && strcmp(a->path, b->path) == 0)) &&
	       a->deleted == b->deleted;
}

/* Runs one input through the parser and the checks above. Returns NULL
 * when all hold, else what failed. */
static const char *fuzz_procmaps_check(const uint8_t *data, size_t size)
{
	struct map_entry *v = NULL, *w = NULL;
	size_t n = 0, m = 0;
	const char *bad = NULL;
	char *text = NULL;
	size_t textlen = 0;
	FILE *f;
	int rc;

	if (size == 0)
		return NULL;    /* fmemopen refuses an empty buffer */
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return NULL;
	rc = procmaps__parse(f, &v, &n);
	fclose(f);
	if (rc == -EINVAL || rc == -ENOMEM)
		return (v || n) ? "failure left entries behind" : NULL;
	if (rc)
		return "unexpected error code";
	f = open_memstream(&text, &textlen);
	if (!f) {
		procmaps__free(v, n);
		return NULL;
	}
	for (size_t i = 0; i < n && !bad; i++) {
		const struct map_entry *e = &v[i];
		static const char deleted[] = " (deleted)";

		if (e->end < e->start)
			bad = "end before start";
		else if (strspn(e->perms, "rwxps-") != 4 || e->perms[4])
			bad = "bad perms";
		else if (e->path && (!e->path[0] || strchr(e->path, '\n') ||
				     e->path[0] == ' ' || e->path[0] == '\t'))
			bad = "bad path";
		else if (e->deleted != (e->path && strlen(e->path) > sizeof(deleted) - 1 &&
					strcmp(e->path + strlen(e->path) - (sizeof(deleted) - 1), deleted) == 0))
			bad = "deleted flag disagrees with the path";
		else if (e->end > e->start && procmaps__find_addr(v, n, e->start) < 0)
			bad = "find_addr misses an entry's start";
		fprintf(f, "%" PRIx64 "-%" PRIx64 " %s %08" PRIx64 " %02x:%02x %" PRIu64 "%s%s\n",
			e->start, e->end, e->perms, e->offset, e->dev_major, e->dev_minor, e->inode,
			e->path ? " " : "", e->path ? e->path : "");
	}
	fclose(f);
	if (!bad && textlen) {
		f = fmemopen(text, textlen, "r");
		if (f) {
			rc = procmaps__parse(f, &w, &m);
			fclose(f);
			if (rc)
				bad = "printed entries do not parse";
			else if (m != n)
				bad = "printed entries parse to another count";
			for (size_t i = 0; !bad && i < n; i++)
				if (!fuzz_maps_same(&v[i], &w[i]))
					bad = "printed entry parses differently";
			procmaps__free(w, m);
		}
	}
	free(text);
	procmaps__free(v, n);
	return bad;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_procmaps_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_procmaps: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
