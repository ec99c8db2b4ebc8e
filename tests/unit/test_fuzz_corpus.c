/* test_fuzz_corpus.c — runs the checks of every fuzz target over every file
 * of its seed corpus, and over a few hundred deterministic mutations of
 * each, so that every `make unit` (and the ASan/UBSan build of `make SAN=1
 * unit`) replays what the fuzzers found interesting:
 *   ingest    tests/fuzz/fuzz_ingest_decode.c  the ingest server's decoder
 *   elfsym    tests/fuzz/fuzz_elfsym.c         ELF files of targets
 *   procmaps  tests/fuzz/fuzz_procmaps.c       /proc/PID/maps text
 *   probepos  tests/fuzz/fuzz_probepos.c       function code
 *   codewalk  tests/fuzz/fuzz_codewalk.c       function code (layouts)
 *   fingerprint tests/fuzz/fuzz_fingerprint.c  SQL text (report, top)
 *   otlp_response  tests/fuzz/fuzz_otlp_response.c  an OTLP collector's answers
 *   sqltext   tests/fuzz/fuzz_sqltext_otlp.c   SQL text: traceparent, span names
 *   config    tests/fuzz/fuzz_config.c         config files (--config)
 *   gosym     tests/fuzz/fuzz_gosym.c          Go executables (function table)
 * The corpora live in tests/fuzz/corpus/NAME/, found from the repository
 * root (where tests/run.sh runs) or under $SQLTRACE_FUZZ_CORPUS (the
 * folder that holds the NAME/ folders). */
#include "harness.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz/fuzz_ingest_decode.c"
#define FUZZ_REPLAY   /* the targets below: no LLVMFuzzerTestOneInput */
#include "fuzz/fuzz_elfsym.c"
#include "fuzz/fuzz_procmaps.c"
#include "fuzz/fuzz_probepos.c"
#include "fuzz/fuzz_codewalk.c"
#include "fuzz/fuzz_fingerprint.c"
#include "fuzz/fuzz_otlp_response.c"
#include "fuzz/fuzz_sqltext_otlp.c"
#include "fuzz/fuzz_config.c"
#include "fuzz/fuzz_gosym.c"

#define MUTATIONS 400  /* per corpus file */
#define MAX_FILES 256

struct corpus {
	const char *name;                               /* folder name */
	const char *(*check)(const uint8_t *, size_t);  /* NULL = all held */
	size_t min_files;
	const char *const *pieces;                      /* inserted by mutate() */
	size_t npieces;
	char *data[MAX_FILES];
	size_t len[MAX_FILES];
	char *file[MAX_FILES];
	size_t n;
};

static const char *const json_pieces[] = {
	"[", "]", "{", "}", "\"", ",", ":", "\\", "\\u00", "null", "-", "0", "9", "e", ".",
	"\xff", "\xc5\xbf", "\\ud800", " ",
};
static const char *const maps_pieces[] = {
	" ", "\t", "\n", "-", ":", "0", "f", "ffffffffffffffff", " (deleted)", "/", "[heap]",
	"r-xp", "\\012", "\0",
};
/* bytes that steer the ELF headers: sizes, counts, offsets, types */
static const char *const elf_pieces[] = {
	"\xff", "\xff\xff\xff\xff", "\0\0\0\0", "\x7f" "ELF", "\x02", "\x01", "\x03",
	"\x0b", "\x80\0\0\0\0\0\0\0",
};
/* x86 bytes: prefixes, push, call, jmp, ret, endbr64 */
static const char *const code_pieces[] = {
	"\x55", "\xe8\0\0\0\0", "\xeb\xfe", "\xc3", "\xf3\x0f\x1e\xfa", "\xf0", "\x66",
	"\x41\x50", "\x48\x83\xec\x18", "\xff\x15\0\0\0\0", "\x0f\x1f\x44\0\0",
};
/* SQL: quotes, comments, parameters, signs, lists */
static const char *const sql_pieces[] = {
	"'", "\"", "`", "[", "]", "--", "/*", "*/", "x'", "?", "?12", ":a", "@b", "$c::d",
	"-", "+", "1e", ".5", "0x", "(", ")", ",", " IN (", "VALUES (1),(1)", ";", "\n", "\0",
	"\xc3\xa9",
};

/* protobuf tags and lengths, JSON bits of a partial success */
static const char *const otlp_pieces[] = {
	"\x0a", "\x08", "\x12", "\xff\xff\xff\xff\x0f", "\x80", "\x01", "\x7f",
	"\"rejectedSpans\":", "\"partialSuccess\":{", "}", "\"", "-", "9", "e99", "null",
};
/* SQL and sqlcommenter pieces */
static const char *const sqltext_pieces[] = {
	"/*", "*/", "'", "\"", "`", "[", "]", "--", "\n", "(", ")", ",", "=", "%2D", "%", "\\",
	"traceparent=", "-01", "-00", "FROM ", "INTO ", "JOIN ", "UNION ", ".", "\0", "\xc3\xa9",
};

/* config lines: names, separators, quotes, comments, line ends */
static const char *const config_pieces[] = {
	"=", " = ", "\"", "#", "\n", "\r\n", "\t", "-", "--", "output", "no-store", "config",
	"help", "\0", "\xc3\xa9",
};

#define PIECES(a) a, sizeof(a) / sizeof(a[0])
static struct corpus corpora[] = {
	{ "ingest", fuzz_check_one, 15, PIECES(json_pieces) },
	{ "elfsym", fuzz_elfsym_check, 10, PIECES(elf_pieces) },
	{ "procmaps", fuzz_procmaps_check, 10, PIECES(maps_pieces) },
	{ "probepos", fuzz_probepos_check, 10, PIECES(code_pieces) },
	{ "codewalk", fuzz_codewalk_check, 10, PIECES(code_pieces) },
	{ "fingerprint", fuzz_fingerprint_check, 10, PIECES(sql_pieces) },
	{ "otlp_response", fuzz_otlp_response_check, 12, PIECES(otlp_pieces) },
	{ "sqltext", fuzz_sqltext_check, 12, PIECES(sqltext_pieces) },
	{ "config", fuzz_config_check, 10, PIECES(config_pieces) },
	{ "gosym", fuzz_gosym_check, 5, PIECES(elf_pieces) },
};
#define NCORPORA (sizeof(corpora) / sizeof(corpora[0]))

static bool load_corpus(struct corpus *c)
{
	const char *base = getenv("SQLTRACE_FUZZ_CORPUS");
	char dir[512], path[1024];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", base && base[0] ? base : "tests/fuzz/corpus", c->name);
	d = opendir(dir);
	if (!d) {
		printf("    cannot open %s (run from the repository root or set "
		       "SQLTRACE_FUZZ_CORPUS)\n", dir);
		return false;
	}
	while ((de = readdir(d)) && c->n < MAX_FILES) {
		struct stat st;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		f = fopen(path, "rb");
		if (!f)
			continue;
		c->data[c->n] = malloc((size_t)st.st_size + 1);
		if (!c->data[c->n]) {
			fclose(f);
			break;
		}
		c->len[c->n] = fread(c->data[c->n], 1, (size_t)st.st_size, f);
		c->file[c->n] = strdup(de->d_name);
		fclose(f);
		c->n++;
	}
	closedir(d);
	return true;
}

static void free_corpus(struct corpus *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->data[i]);
		free(c->file[i]);
	}
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Writes a mutation of src into dst (room for len + 64) using the corpus's
 * pieces. Returns its length. */
static size_t mutate(const struct corpus *c, const char *src, size_t len, char *dst)
{
	size_t n = len, k = 1 + next_rand() % 3;

	memcpy(dst, src, len);
	while (k--) {
		size_t at = n ? next_rand() % n : 0;

		switch (next_rand() % 5) {
		case 0: /* flip a bit */
			if (n)
				dst[at] ^= (char)(1u << (next_rand() % 8));
			break;
		case 1: /* delete a byte */
			if (n) {
				memmove(dst + at, dst + at + 1, n - at - 1);
				n--;
			}
			break;
		case 2: { /* insert a piece */
			const char *p = c->pieces[next_rand() % c->npieces];
			size_t pl = strlen(p) ? strlen(p) : 1;  /* "\0" is one NUL */

			if (n + pl <= len + 64) {
				memmove(dst + at + pl, dst + at, n - at);
				memcpy(dst + at, p, pl);
				n += pl;
			}
			break;
		}
		case 3: { /* overwrite with a piece (sizes, counts in headers) */
			const char *p = c->pieces[next_rand() % c->npieces];
			size_t pl = strlen(p) ? strlen(p) : 1;

			if (at + pl <= n)
				memcpy(dst + at, p, pl);
			break;
		}
		default: /* truncate */
			n = at;
		}
	}
	return n;
}

static bool check_corpus(struct corpus *c)
{
	if (c->n < c->min_files) {
		printf("    %s: %zu seed files, want at least %zu\n", c->name, c->n, c->min_files);
		return false;
	}
	for (size_t i = 0; i < c->n; i++) {
		const char *bad = c->check((const uint8_t *)c->data[i], c->len[i]);

		if (bad) {
			printf("    %s/%s: %s\n", c->name, c->file[i], bad);
			return false;
		}
	}
	for (size_t i = 0; i < c->n; i++) {
		char *buf = malloc(c->len[i] + 64);

		ASSERT_TRUE(buf);
		for (int m = 0; m < MUTATIONS; m++) {
			size_t n = mutate(c, c->data[i], c->len[i], buf);
			const char *bad = c->check((const uint8_t *)buf, n);

			if (bad) {
				printf("    mutation %d of %s/%s (%zu bytes): %s\n", m, c->name,
				       c->file[i], n, bad);
				free(buf);
				return false;
			}
		}
		free(buf);
	}
	return true;
}

/* The ingest decoder: both sides (accepted and refused) are seeded. */
static bool test_ingest_corpus(void)
{
	struct corpus *c = &corpora[0];
	int accepted = 0, rejected = 0;

	for (size_t i = 0; i < c->n; i++) {
		struct st_entry **v;
		size_t n;
		char err[200];

		if (json__decode_batch(c->data[i], c->len[i], &v, &n, err, sizeof(err)) == 0) {
			accepted++;
			json__free_batch(v, n);
		} else {
			rejected++;
		}
	}
	ASSERT_TRUE(accepted >= 5);
	ASSERT_TRUE(rejected >= 5);
	return check_corpus(c);
}

/* ELF files: some open and have symbols, some are refused. */
static bool test_elfsym_corpus(void)
{
	struct corpus *c = &corpora[1];
	int opened = 0, refused = 0, found = 0;

	for (size_t i = 0; i < c->n; i++) {
		int fd = fuzz_elf_memfd(), dfd;
		struct elf_file *ef;
		uint64_t va;

		ASSERT_TRUE(fd >= 0);
		ASSERT_EQ_INT(ftruncate(fd, 0), 0);
		ASSERT_EQ_INT(pwrite(fd, c->data[i], c->len[i], 0), (ssize_t)c->len[i]);
		dfd = dup(fd);
		ASSERT_TRUE(dfd >= 0);
		ef = elf_file__open_fd(dfd, c->file[i]);
		if (!ef) {
			refused++;
			continue;
		}
		opened++;
		found += elf_file__find_func(ef, "sqlite3_step", &va, NULL) == 0;
		elf_file__close(ef);
	}
	ASSERT_TRUE(opened >= 5);
	ASSERT_TRUE(refused >= 2);
	ASSERT_TRUE(found >= 3);
	return check_corpus(c);
}

static bool test_procmaps_corpus(void)
{
	return check_corpus(&corpora[2]);
}

static bool test_probepos_corpus(void)
{
	return check_corpus(&corpora[3]);
}

static bool test_codewalk_corpus(void)
{
	return check_corpus(&corpora[4]);
}

static bool test_fingerprint_corpus(void)
{
	return check_corpus(&corpora[5]);
}

static bool test_otlp_response_corpus(void)
{
	return check_corpus(&corpora[6]);
}

static bool test_sqltext_corpus(void)
{
	return check_corpus(&corpora[7]);
}

/* Config files: both sides (accepted and refused) are seeded. */
static bool test_config_corpus(void)
{
	struct corpus *c = &corpora[8];
	int accepted = 0, refused = 0;

	for (size_t i = 0; i < c->n; i++) {
		struct config cf = {0};
		char err[512];
		FILE *f = c->len[i] ? fmemopen(c->data[i], c->len[i], "r") : NULL;

		if (!f)
			continue;
		if (config__parse(f, c->file[i], &cf, err, sizeof(err)) == 0)
			accepted++;
		else
			refused++;
		fclose(f);
		config__free(&cf);
	}
	ASSERT_TRUE(accepted >= 5);
	ASSERT_TRUE(refused >= 5);
	return check_corpus(c);
}

static bool test_gosym_corpus(void)
{
	return check_corpus(&corpora[9]);
}

int main(void)
{
	bool loaded = true;

	harness_skip_reason = ""; /* see test_batcher.c: gcc -O2 and RUN's %s */
	for (size_t i = 0; i < NCORPORA; i++)
		loaded &= load_corpus(&corpora[i]);
	if (loaded) {
		RUN(test_ingest_corpus);
		RUN(test_elfsym_corpus);
		RUN(test_procmaps_corpus);
		RUN(test_probepos_corpus);
		RUN(test_codewalk_corpus);
		RUN(test_fingerprint_corpus);
		RUN(test_otlp_response_corpus);
		RUN(test_sqltext_corpus);
		RUN(test_config_corpus);
		RUN(test_gosym_corpus);
	} else {
		harness_failed++;
		printf("FAIL load_corpus\n");
	}
	for (size_t i = 0; i < NCORPORA; i++)
		free_corpus(&corpora[i]);
	return harness_done();
}
