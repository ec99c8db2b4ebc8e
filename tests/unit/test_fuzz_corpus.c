/* test_fuzz_corpus.c — runs the ingest decoder's fuzz checks
 * (tests/fuzz/fuzz_ingest_decode.c) over every file of its corpus,
 * tests/fuzz/corpus/ingest/, and over a few thousand deterministic
 * mutations of them, so that every `make unit` (and the ASan/UBSan build of
 * `make SAN=1 unit`) replays what the fuzzer found interesting. The corpus
 * folder is found from the repository root (where tests/run.sh runs), or
 * at $SQLTRACE_FUZZ_CORPUS. */
#include "harness.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz/fuzz_ingest_decode.c"

#define MUTATIONS 400  /* per corpus file */

struct corpus {
	char *data[256];
	size_t len[256];
	char *name[256];
	size_t n;
};

static struct corpus corpus;

static const char *corpus_dir(void)
{
	const char *d = getenv("SQLTRACE_FUZZ_CORPUS");

	return d && d[0] ? d : "tests/fuzz/corpus/ingest";
}

static bool load_corpus(void)
{
	DIR *d = opendir(corpus_dir());
	struct dirent *de;
	char path[512];

	if (!d) {
		printf("    cannot open %s (run from the repository root or set "
		       "SQLTRACE_FUZZ_CORPUS)\n", corpus_dir());
		return false;
	}
	while ((de = readdir(d)) && corpus.n < 256) {
		struct stat st;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", corpus_dir(), de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		f = fopen(path, "rb");
		if (!f)
			continue;
		corpus.data[corpus.n] = malloc((size_t)st.st_size + 1);
		corpus.len[corpus.n] = fread(corpus.data[corpus.n], 1, (size_t)st.st_size, f);
		corpus.name[corpus.n] = strdup(de->d_name);
		fclose(f);
		corpus.n++;
	}
	closedir(d);
	return true;
}

static void free_corpus(void)
{
	for (size_t i = 0; i < corpus.n; i++) {
		free(corpus.data[i]);
		free(corpus.name[i]);
	}
}

static bool test_corpus_files(void)
{
	int accepted = 0, rejected = 0;

	ASSERT_TRUE(corpus.n >= 15);
	for (size_t i = 0; i < corpus.n; i++) {
		const char *bad = fuzz_check_one((const uint8_t *)corpus.data[i], corpus.len[i]);
		struct st_entry **v;
		size_t n;
		char err[200];

		if (bad) {
			printf("    %s: %s\n", corpus.name[i], bad);
			return false;
		}
		if (json__decode_batch(corpus.data[i], corpus.len[i], &v, &n, err, sizeof(err)) == 0) {
			accepted++;
			json__free_batch(v, n);
		} else {
			rejected++;
		}
	}
	/* both sides of the decoder are seeded */
	ASSERT_TRUE(accepted >= 5);
	ASSERT_TRUE(rejected >= 5);
	return true;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Writes a mutation of src into dst (room for len + 64). Returns its length. */
static size_t mutate(const char *src, size_t len, char *dst)
{
	static const char pieces[][8] = { "[", "]", "{", "}", "\"", ",", ":", "\\", "\\u00",
					  "null", "-", "0", "9", "e", ".", "\xff", "\xc5\xbf",
					  "\\ud800", " " };
	size_t n = len, k = 1 + next_rand() % 3;

	memcpy(dst, src, len);
	while (k--) {
		size_t at = n ? next_rand() % n : 0;

		switch (next_rand() % 4) {
		case 0: /* flip a byte */
			if (n)
				dst[at] ^= (char)(1u << (next_rand() % 8));
			break;
		case 1: /* delete a byte */
			if (n) {
				memmove(dst + at, dst + at + 1, n - at - 1);
				n--;
			}
			break;
		case 2: { /* insert a token */
			const char *p = pieces[next_rand() % (sizeof(pieces) / sizeof(pieces[0]))];
			size_t pl = strlen(p);

			if (n + pl <= len + 64) {
				memmove(dst + at + pl, dst + at, n - at);
				memcpy(dst + at, p, pl);
				n += pl;
			}
			break;
		}
		default: /* truncate */
			n = at;
		}
	}
	return n;
}

static bool test_corpus_mutations(void)
{
	for (size_t i = 0; i < corpus.n; i++) {
		char *buf = malloc(corpus.len[i] + 64);

		ASSERT_TRUE(buf);
		for (int m = 0; m < MUTATIONS; m++) {
			size_t n = mutate(corpus.data[i], corpus.len[i], buf);
			const char *bad = fuzz_check_one((const uint8_t *)buf, n);

			if (bad) {
				printf("    mutation %d of %s (%zu bytes): %s: %.*s\n", m,
				       corpus.name[i], n, bad, (int)n, buf);
				free(buf);
				return false;
			}
		}
		free(buf);
	}
	return true;
}

int main(void)
{
	bool loaded = load_corpus();

	harness_skip_reason = ""; /* see test_batcher.c: gcc -O2 and RUN's %s */
	if (loaded) {
		RUN(test_corpus_files);
		RUN(test_corpus_mutations);
	} else {
		harness_failed++;
		printf("FAIL load_corpus\n");
	}
	free_corpus();
	return harness_done();
}
