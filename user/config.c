/* config.c — config files (--config FILE) turned into command-line
 * arguments (see config.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safefile.h"

/* Makes room for one more argument. Returns 0 or -ENOMEM. */
static int grow(struct config *c)
{
	size_t need = (size_t)c->argc + 2;  /* + the NULL */

	if (need > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		char **argv;
		const char **file;
		int *line;

		while (cap < need)
			cap *= 2;
		argv = realloc(c->argv, cap * sizeof(*argv));
		if (!argv)
			return -ENOMEM;
		c->argv = argv;
		file = realloc(c->file, cap * sizeof(*file));
		if (!file)
			return -ENOMEM;
		c->file = file;
		line = realloc(c->line, cap * sizeof(*line));
		if (!line)
			return -ENOMEM;
		c->line = line;
		c->cap = cap;
	}
	return 0;
}

/* Appends arg (not copied) from file:line (file NULL: the command line). */
static int push(struct config *c, char *arg, const char *file, int line)
{
	int e = grow(c);

	if (e)
		return e;
	c->argv[c->argc] = arg;
	c->file[c->argc] = file;
	c->line[c->argc] = line;
	c->argc++;
	c->argv[c->argc] = NULL;
	return 0;
}

/* Appends an argument made here (freed by config__free). */
static int push_owned(struct config *c, char *arg, const char *file, int line)
{
	char **owned = realloc(c->owned, (c->nowned + 1) * sizeof(*owned));
	int e;

	if (!owned) {
		free(arg);
		return -ENOMEM;
	}
	c->owned = owned;
	c->owned[c->nowned++] = arg;
	e = push(c, arg, file, line);
	return e;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

int config__parse(FILE *f, const char *name, struct config *c, char *err, size_t errlen)
{
	char buf[CONFIG_MAX_LINE + 2];
	int lineno = 0;

	for (;;) {
		size_t len = 0, klen;
		char *p, *end, *key, *val = NULL, *arg;
		int ch;

		/* One line, NULs included (fgets would hide them). */
		while ((ch = getc(f)) != EOF && ch != '\n') {
			if (len < sizeof(buf) - 1)
				buf[len] = (char)ch;
			len++;
		}
		if (ch == EOF && len == 0)
			break;
		lineno++;
		if (len > CONFIG_MAX_LINE) {
			snprintf(err, errlen, "%s:%d: line longer than %d bytes", name, lineno, CONFIG_MAX_LINE);
			return -EINVAL;
		}
		buf[len] = '\0';
		if (memchr(buf, '\0', len)) {
			snprintf(err, errlen, "%s:%d: NUL byte in the line", name, lineno);
			return -EINVAL;
		}
		p = buf;
		while (is_blank(*p))
			p++;
		end = p + strlen(p);
		while (end > p && is_blank(end[-1]))
			*--end = '\0';
		if (!*p || *p == '#')
			continue;
		key = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')
			p++;
		klen = (size_t)(p - key);
		if (klen == 0 || key[0] == '-') {
			snprintf(err, errlen, "%s:%d: expected `name = value` or `name` (a long option "
				 "without --), not '%.40s'", name, lineno, key);
			return -EINVAL;
		}
		while (is_blank(*p))
			p++;
		if (*p == '=') {
			p++;
			while (is_blank(*p))
				p++;
			val = p;
			end = val + strlen(val);
			if (end - val >= 2 && val[0] == '"' && end[-1] == '"') {
				end[-1] = '\0';
				val++;
			}
			if (!*val) {
				snprintf(err, errlen, "%s:%d: %.*s: empty value", name, lineno, (int)klen, key);
				return -EINVAL;
			}
		} else if (*p) {
			snprintf(err, errlen, "%s:%d: %.*s: expected '=' after the name, not '%.40s'", name,
				 lineno, (int)klen, key, p);
			return -EINVAL;
		}
		key[klen] = '\0';
		if (strcmp(key, "config") == 0 || strcmp(key, "help") == 0) {
			snprintf(err, errlen, "%s:%d: %s cannot be set in a config file", name, lineno, key);
			return -EINVAL;
		}
		if (c->argc >= CONFIG_MAX_ARGS) {
			snprintf(err, errlen, "%s:%d: more than %d settings", name, lineno, CONFIG_MAX_ARGS);
			return -EINVAL;
		}
		if (val) {
			size_t n = 2 + klen + 1 + strlen(val) + 1;

			arg = malloc(n);
			if (arg)
				snprintf(arg, n, "--%s=%s", key, val);
		} else {
			arg = malloc(2 + klen + 1);
			if (arg)
				snprintf(arg, 2 + klen + 1, "--%s", key);
		}
		if (!arg || push_owned(c, arg, name, lineno)) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", name);
		return -EIO;
	}
	return 0;
}

int config__load(const char *path, struct config *c, char *err, size_t errlen)
{
	char name[256], why[1024];
	struct stat st;
	FILE *f;
	int dfd, fd, e;

	dfd = safefile__open_parent(path, SAFEFILE_FOLLOW, name, sizeof(name), NULL, 0, why, sizeof(why));
	if (dfd < 0) {
		snprintf(err, errlen, "cannot use config file %s: %s", path, why);
		return dfd;
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	e = -errno;
	close(dfd);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(-e));
		return e;
	}
	if (fstat(fd, &st) != 0) {
		e = -errno;
		close(fd);
		snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(-e));
		return e;
	}
	e = safefile__check_file(&st, path, SAFEFILE_ROOT_OK, why, sizeof(why));
	if (e) {
		close(fd);
		snprintf(err, errlen, "cannot use config file %s: %s", path, why);
		return e;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e = config__parse(f, path, c, err, errlen);
	fclose(f);
	return e;
}

int config__expand(int argc, char **argv, struct config *c, char *err, size_t errlen)
{
	int i = 1, e;

	memset(c, 0, sizeof(*c));
	if ((e = push(c, argc > 0 ? argv[0] : "sqltrace-bpf", NULL, 0)))
		goto nomem;
	while (i < argc) {
		const char *path;

		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option --config needs a value");
				config__free(c);
				return -EINVAL;
			}
			path = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
			i++;
		} else {
			break;
		}
		/* "-FILE": FILE may be missing (as systemd's EnvironmentFile=-). */
		if (path[0] == '-' && path[1]) {
			path++;
			if (access(path, F_OK) != 0 && errno == ENOENT)
				continue;
		}
		e = config__load(path, c, err, errlen);
		if (e) {
			config__free(c);
			return e;
		}
	}
	if (i > 1 && i < argc && strcmp(argv[i], "ingest") == 0) {
		snprintf(err, errlen, "--config is for tracing: `sqltrace-bpf ingest` takes its settings on "
			 "its command line");
		config__free(c);
		return -EINVAL;
	}
	for (; i < argc; i++)
		if ((e = push(c, argv[i], NULL, 0)))
			goto nomem;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	config__free(c);
	return -ENOMEM;
}

void config__blame(const struct config *c,
		   int (*parse)(int argc, char **argv, char *err, size_t errlen),
		   char *err, size_t errlen)
{
	char why[1024];
	int i;

	for (i = 1; i < c->argc; i++) {
		char *trial[5] = { c->argv[0], "-p", "1", c->argv[i], NULL };

		if (!c->file[i])
			continue;
		if (parse(4, trial, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", c->file[i], c->line[i], why);
			return;
		}
	}
}

void config__free(struct config *c)
{
	size_t i;

	for (i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	free(c->owned);
	free(c->argv);
	free(c->file);
	free(c->line);
	memset(c, 0, sizeof(*c));
}
