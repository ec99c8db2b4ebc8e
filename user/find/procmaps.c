/* procmaps.c — strict parser for /proc/PID/maps lines:
 *
 *   start-end perms offset major:minor inode [padding path]
 *   7f0c1e600000-7f0c1e62b000 r--p 00000000 fd:01 1311 /usr/lib/libx.so
 *
 * The kernel prints start, end, offset, major and minor in hex, the inode in
 * decimal, and pads before the path; the path runs to the end of the line
 * (spaces included; a newline in a file name is printed as "\012").
 */
#include "procmaps.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char deleted_suffix[] = " (deleted)";

/* Parses a hex number of 1..16 digits at *p; advances *p. Returns false when
 * there is no digit or the number does not fit in 64 bits. */
static bool parse_hex(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	int nd = 0;

	for (;; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (++nd > 16)
			return false;
		x = x << 4 | (uint64_t)d;
	}
	if (nd == 0)
		return false;
	*v = x;
	*p = s;
	return true;
}

/* Parses a decimal number at *p; advances *p. False on no digit/overflow. */
static bool parse_dec(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*v = x;
	*p = s;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* Parses one line (without its newline) into *e. Returns 0, -EINVAL or
 * -ENOMEM. On success e->path is malloc'd or NULL. */
static int parse_line(const char *line, struct map_entry *e)
{
	const char *p = line;
	uint64_t maj, min;

	memset(e, 0, sizeof(*e));
	if (!parse_hex(&p, &e->start) || !expect(&p, '-') ||
	    !parse_hex(&p, &e->end) || !expect(&p, ' '))
		return -EINVAL;
	if (e->end < e->start)
		return -EINVAL;

	/* perms: exactly r|-, w|-, x|-, p|s */
	if ((p[0] != 'r' && p[0] != '-') || (p[1] != 'w' && p[1] != '-') ||
	    (p[2] != 'x' && p[2] != '-') || (p[3] != 'p' && p[3] != 's'))
		return -EINVAL;
	memcpy(e->perms, p, 4);
	e->perms[4] = '\0';
	p += 4;

	if (!expect(&p, ' ') || !parse_hex(&p, &e->offset) || !expect(&p, ' ') ||
	    !parse_hex(&p, &maj) || !expect(&p, ':') || !parse_hex(&p, &min) ||
	    !expect(&p, ' ') || !parse_dec(&p, &e->inode))
		return -EINVAL;
	if (maj > UINT32_MAX || min > UINT32_MAX)
		return -EINVAL;
	e->dev_major = (uint32_t)maj;
	e->dev_minor = (uint32_t)min;

	if (*p == '\0')
		return 0;               /* anonymous, no padding */
	if (*p != ' ' && *p != '\t')
		return -EINVAL;         /* garbage glued to the inode */
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 0;               /* anonymous with trailing padding */

	e->path = strdup(p);
	if (!e->path)
		return -ENOMEM;
	size_t len = strlen(e->path), sl = sizeof(deleted_suffix) - 1;
	e->deleted = len > sl && strcmp(e->path + len - sl, deleted_suffix) == 0;
	return 0;
}

int procmaps__parse(FILE *f, struct map_entry **out, size_t *n)
{
	struct map_entry *v = NULL;
	size_t cnt = 0, cap = 0;
	char *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	int err = 0;

	*out = NULL;
	*n = 0;
	if (!f)
		return -EINVAL;

	errno = 0;
	while ((len = getline(&line, &linecap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if ((size_t)len != strlen(line)) {  /* embedded NUL */
			err = -EINVAL;
			goto fail;
		}
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct map_entry *nv = reallocarray(v, ncap, sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				goto fail;
			}
			v = nv;
			cap = ncap;
		}
		err = parse_line(line, &v[cnt]);
		if (err)
			goto fail;
		cnt++;
		errno = 0;
	}
	if (ferror(f)) {
		err = errno ? -errno : -EIO;
		goto fail;
	}
	free(line);
	*out = v;
	*n = cnt;
	return 0;

fail:
	free(line);
	procmaps__free(v, cnt);
	return err;
}

int procmaps__read_pid(int pid, struct map_entry **out, size_t *n)
{
	char path[64];
	FILE *f;
	int err;

	*out = NULL;
	*n = 0;
	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	err = procmaps__parse(f, out, n);
	fclose(f);
	/* A process that exits while we read makes read() fail with ESRCH;
	 * keep that errno, it already says the right thing. */
	return err;
}

void procmaps__free(struct map_entry *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

bool procmaps__same_file(const struct map_entry *a, const struct map_entry *b)
{
	return a->inode != 0 && a->inode == b->inode &&
	       a->dev_major == b->dev_major && a->dev_minor == b->dev_minor;
}

ssize_t procmaps__find_addr(const struct map_entry *v, size_t n, uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= v[i].start && addr < v[i].end)
			return (ssize_t)i;
	return -1;
}
