/* test_apitable.c — SQLite's API recovered from its extension API table
 * (user/find/apitable.c) and function extents from .eh_frame
 * (user/find/ehframe.c), checked against the symbols of the same files:
 * Debian's libsqlite3.a linked into a position-independent C program
 * (static_errors: the table's words are relocations) and into a static Go
 * executable at fixed addresses (goapp-static: the words are in the file).
 * Both are built by `make` into $BUILD/targets. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apitable.h"
#include "ehframe.h"
#include "elfsym.h"
#include "harness.h"
#include "layout_decode.h"

static const char *target(const char *name)
{
	static char path[512];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";

	snprintf(path, sizeof(path), "%s/targets/%s", build, name);
	return path;
}

/* The member names of struct sqlite3_api_routines in the installed
 * sqlite3ext.h, in order, equal ours ("sqlite3_" + member; four members
 * carry another name). */
static bool test_names_follow_sqlite3ext_h(void)
{
	static const char *const renamed[][2] = {
		{ "interruptx", "sqlite3_interrupt" }, { "xsnprintf", "sqlite3_snprintf" },
		{ "xthreadsafe", "sqlite3_threadsafe" }, { "xvsnprintf", "sqlite3_vsnprintf" },
	};
	FILE *f = fopen("/usr/include/sqlite3ext.h", "r");
	char *text, *p, *end;
	size_t n = 0, len;
	long size;

	ASSERT_TRUE(f != NULL);
	ASSERT_TRUE(fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0);
	rewind(f);
	text = calloc(1, (size_t)size + 1);
	ASSERT_TRUE(text && fread(text, 1, (size_t)size, f) == (size_t)size);
	fclose(f);
	p = strstr(text, "struct sqlite3_api_routines {");
	ASSERT_TRUE(p != NULL);
	end = strstr(p, "\n};");
	ASSERT_TRUE(end != NULL);
	/* each member: "... (*name)(" at the start of a declaration; the
	 * function-pointer parameters inside are "(*)" without a name */
	for (p = strchr(p, '{'); p && (p = strstr(p, "(*")) && p < end; p += 2) {
		char name[64], want[80];
		size_t i = 0;
		const char *q = p + 2;

		while (*q == ' ')
			q++;
		while ((isalnum((unsigned char)*q) || *q == '_') && i < sizeof(name) - 1)
			name[i++] = *q++;
		name[i] = '\0';
		if (!i)
			continue;
		snprintf(want, sizeof(want), "sqlite3_%s", name);
		for (size_t k = 0; k < sizeof(renamed) / sizeof(renamed[0]); k++)
			if (strcmp(name, renamed[k][0]) == 0)
				snprintf(want, sizeof(want), "%s", renamed[k][1]);
		if (n >= APITABLE_NAMES)
			break;     /* a newer header: its extra members stay unnamed */
		/* the rest of this declaration may hold "(*xFunc)" parameters */
		if ((q = strchr(q, ';')) != NULL)
			p = (char *)q - 1;
		if (strcmp(apitable_names[n], want) != 0) {
			printf("    member %zu: header %s, ours %s\n", n, want, apitable_names[n]);
			free(text);
			return false;
		}
		n++;
	}
	len = n;
	free(text);
	ASSERT_EQ_INT(len, APITABLE_NAMES);
	return true;
}

/* Every member found equals the symbol of that name (when the build
 * defines it), the version matches, and the FDE sizes equal the symbols'. */
static bool table_matches_symbols(const char *name, bool pic)
{
	struct elf_file *ef = elf_file__open(target(name));
	struct apitable *t = malloc(sizeof(*t));
	uint64_t size[APITABLE_NAMES];
	size_t checked = 0, sized = 0, i;

	ASSERT_TRUE(ef != NULL && t != NULL);
	ASSERT_EQ_INT(elf_file__is_dyn(ef), pic);
	ASSERT_EQ_INT(apitable__find(ef, t), 0);
	ASSERT_EQ_INT(t->version / 1000000, 3);
	ASSERT_TRUE(t->n >= 219 && t->n <= APITABLE_NAMES);
	ASSERT_TRUE(strncmp(t->source_id, "20", 2) == 0);
	ASSERT_EQ_INT(ehframe__sizes(ef, t->fn, size, t->n), 0);
	for (i = 0; i < t->n; i++) {
		uint64_t va, sz;

		/* a member may be null (loadext.c leaves deprecated and omitted
		 * functions out) */
		if (!t->fn[i] || elf_file__find_func(ef, apitable_names[i], &va, &sz) != 0)
			continue;
		if (t->fn[i] != va) {
			printf("    %s: table 0x%llx, symbol 0x%llx\n", apitable_names[i],
			       (unsigned long long)t->fn[i], (unsigned long long)va);
			ASSERT_TRUE(false);
		}
		checked++;
		if (sz && size[i]) {
			ASSERT_EQ_INT(size[i], sz);
			sized++;
		}
	}
	/* the members the tracer uses are all there */
	for (i = 0; i < t->n; i++)
		if (!strcmp(apitable_names[i], "sqlite3_step") || !strcmp(apitable_names[i], "sqlite3_prepare_v2") ||
		    !strcmp(apitable_names[i], "sqlite3_prepare_v3") || !strcmp(apitable_names[i], "sqlite3_exec") ||
		    !strcmp(apitable_names[i], "sqlite3_reset") || !strcmp(apitable_names[i], "sqlite3_finalize"))
			ASSERT_TRUE(t->fn[i] != 0 && size[i] != 0);
	printf("    %s: %zu members equal their symbols, %zu sizes equal\n", name, checked, sized);
	ASSERT_TRUE(checked > 200 && sized > 200);
	free(t);
	elf_file__close(ef);
	return true;
}

static bool test_table_of_a_pie_c_program(void)
{
	return table_matches_symbols("static_errors", true);
}

static bool test_table_of_a_static_go_program(void)
{
	return table_matches_symbols("goapp-static", false);
}

/* A file without SQLite has no table; a file whose table lost one of its
 * confirming members (sqlite3_libversion) is not taken for one. */
static bool test_no_table(void)
{
	char tmp[] = "/tmp/sqltrace-apitable-XXXXXX", id[96];
	struct elf_file *ef = elf_file__open("/bin/true");
	struct apitable *t = malloc(sizeof(*t));
	uint64_t lv, lvn, sz;
	unsigned char *data;
	FILE *f;
	long size;
	int fd, hits = 0;

	ASSERT_TRUE(ef != NULL && t != NULL);
	ASSERT_EQ_INT(apitable__find(ef, t), -ENOENT);
	ASSERT_EQ_INT(apitable__source_id(ef, id, sizeof(id)), -ENOENT);
	elf_file__close(ef);
	/* goapp-static's table words are in the file: zero member 66 */
	ef = elf_file__open(target("goapp-static"));
	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_libversion", &lv, &sz), 0);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_libversion_number", &lvn, &sz), 0);
	elf_file__close(ef);
	f = fopen(target("goapp-static"), "rb");
	ASSERT_TRUE(f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0);
	rewind(f);
	data = malloc((size_t)size);
	ASSERT_TRUE(data && fread(data, 1, (size_t)size, f) == (size_t)size);
	fclose(f);
	for (long i = 0; i + 16 <= size; i += 8) {
		if (memcmp(data + i, &lv, 8) == 0 && memcmp(data + i + 8, &lvn, 8) == 0) {
			memset(data + i, 0, 8);
			hits++;
		}
	}
	ASSERT_EQ_INT(hits, 1);
	fd = mkstemp(tmp);
	ASSERT_TRUE(fd >= 0 && write(fd, data, (size_t)size) == (ssize_t)size);
	close(fd);
	free(data);
	ef = elf_file__open(tmp);
	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(apitable__find(ef, t), -ENOENT);
	/* still evidently SQLite */
	ASSERT_EQ_INT(apitable__source_id(ef, id, sizeof(id)), 0);
	ASSERT_TRUE(strlen(id) > 60 && id[4] == '-');
	elf_file__close(ef);
	unlink(tmp);
	free(t);
	return true;
}

/* ehframe: a symbol's FDE gives its size; an address inside a function is
 * no function's start. */
static bool test_fde_sizes(void)
{
	struct elf_file *ef = elf_file__open("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0");
	uint64_t va[2], sz[2], want;

	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_step", &va[0], &want), 0);
	va[1] = va[0] + 1;
	ASSERT_EQ_INT(ehframe__sizes(ef, va, sz, 2), 0);
	ASSERT_EQ_INT(sz[0], want);
	ASSERT_EQ_INT(sz[1], 0);
	elf_file__close(ef);
	return true;
}

/* sqlite3ErrorWithMsg is told from the functions sqlite3_prepare_v2 leads
 * to by its shape alone (what a stripped copy needs): the one found is the
 * symbol of that name, in both builds. */
static bool error_with_msg_found(const char *name)
{
	struct elf_file *ef = elf_file__open(target(name));
	struct layout_decoded d;
	uint64_t va = 0, want, sz;

	ASSERT_TRUE(ef != NULL);
	layout_decode__elf(ef, ef, &d);
	ASSERT_TRUE(d.cfg.db_perr_off > 0);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3ErrorWithMsg", &want, &sz), 0);
	ASSERT_EQ_INT(layout_decode__error_with_msg_elf(ef, ef, d.cfg.db_perr_off, &va), 0);
	ASSERT_EQ_INT(va, want);
	/* with a wrong pErr offset nothing fits */
	ASSERT_EQ_INT(layout_decode__error_with_msg_elf(ef, ef, d.cfg.db_perr_off + 8, &va), -ENOENT);
	elf_file__close(ef);
	return true;
}

static bool test_error_with_msg_by_its_shape(void)
{
	return error_with_msg_found("static_errors") && error_with_msg_found("goapp-static");
}

int main(void)
{
	RUN(test_names_follow_sqlite3ext_h);
	RUN(test_table_of_a_pie_c_program);
	RUN(test_table_of_a_static_go_program);
	RUN(test_no_table);
	RUN(test_fde_sizes);
	RUN(test_error_with_msg_by_its_shape);
	return harness_done();
}
