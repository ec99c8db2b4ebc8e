/* fuzz_config.c — libFuzzer target for user/config.c, the parser of the
 * config files (--config FILE, /etc/sqltrace/NAME.conf). The input is the
 * file's text, read through fmemopen() as config__load() reads the file.
 * Build and run: `make fuzz-run-files`; tests/unit/test_fuzz_corpus.c
 * replays tests/fuzz/corpus/config/ on every `make unit`.
 *
 * Besides ASan and UBSan, it checks:
 *   - a failure leaves no argument behind and says "NAME:LINE: " (or is
 *     out of memory);
 *   - every argument is "--name" or "--name=value" with name in [a-z0-9-],
 *     not config or help, and holds no newline;
 *   - writing the arguments back as config lines (`name=value`, quoted
 *     where blanks or quotes at the ends need it) and
 *     parsing them again gives the same arguments (parse . print . parse
 *     == parse).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *fuzz_config_args_ok(const struct config *c)
{
	for (int i = 0; i < c->argc; i++) {
		const char *a = c->argv[i], *p;

		if (strncmp(a, "--", 2) != 0)
			return "argument without --";
		if (strchr(a, '\n'))
			return "newline in an argument";
		for (p = a + 2; *p && *p != '='; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
				return "bad character in a name";
		if (p == a + 2 || a[2] == '-')
			return "empty name or name starting with -";
		if (*p == '=' && !p[1])
			return "empty value";
		if (strncmp(a, "--config", 8) == 0 && (a[8] == '=' || !a[8]))
			return "config accepted";
		if (strncmp(a, "--help", 6) == 0 && (a[6] == '=' || !a[6]))
			return "help accepted";
		if (!c->file[i] || c->line[i] <= 0)
			return "argument without its file and line";
	}
	return NULL;
}

/* Runs one input through the parser and the checks above. Returns NULL
 * when all hold, else what failed. */
static const char *fuzz_config_check(const uint8_t *data, size_t size)
{
	struct config c = {0}, d = {0};
	char err[512], *text = NULL;
	size_t textlen = 0;
	const char *bad = NULL;
	FILE *f;
	int rc;

	if (size == 0)
		return NULL;    /* fmemopen refuses an empty buffer */
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return NULL;
	err[0] = '\0';
	rc = config__parse(f, "f.conf", &c, err, sizeof(err));
	fclose(f);
	if (rc == -ENOMEM) {
		config__free(&c);
		return NULL;
	}
	if (rc) {
		if (rc != -EINVAL)
			bad = "unexpected error code";
		else if (strncmp(err, "f.conf:", 7) != 0 || strchr(err, '\n'))
			bad = "error without file:line, or on two lines";
		config__free(&c);
		return bad;
	}
	bad = fuzz_config_args_ok(&c);
	if (!bad && c.argc) {
		f = open_memstream(&text, &textlen);
		if (!f) {
			config__free(&c);
			return NULL;
		}
		for (int i = 0; i < c.argc; i++) {
			const char *eq = strchr(c.argv[i], '=');

			/* Quoted only where the parser needs it, so a printed line
			 * is never longer than the one it came from. */
			if (eq) {
				const char *v = eq + 1;
				size_t vl = strlen(v);
				int q = strchr(" \t\r\f\v", v[0]) || strchr(" \t\r\f\v", v[vl - 1]) ||
					(vl >= 2 && v[0] == '"' && v[vl - 1] == '"');

				fprintf(f, "%.*s=%s%s%s\n", (int)(eq - c.argv[i] - 2), c.argv[i] + 2, q ? "\"" : "", v,
					q ? "\"" : "");
			}
			else
				fprintf(f, "%s\n", c.argv[i] + 2);
		}
		fclose(f);
		f = fmemopen(text, textlen, "r");
		if (f) {
			rc = config__parse(f, "g.conf", &d, err, sizeof(err));
			fclose(f);
			if (rc)
				bad = "printed settings do not parse";
			else if (d.argc != c.argc)
				bad = "printed settings parse to another count";
			for (int i = 0; !bad && i < c.argc; i++)
				if (strcmp(c.argv[i], d.argv[i]) != 0)
					bad = "printed setting parses differently";
		}
		free(text);
	}
	config__free(&c);
	config__free(&d);
	return bad;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad = fuzz_config_check(data, size);

	if (bad) {
		fprintf(stderr, "fuzz_config: %s\n", bad);
		abort();
	}
	return 0;
}
#endif
