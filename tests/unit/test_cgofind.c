/* test_cgofind.c — a C SQLite in a Go executable located through the cgo
 * wrappers (user/find/cgofind.c), checked against the symbols of the same
 * file: mattnwork-static (mattn/go-sqlite3 with Debian's libsqlite3.a
 * linked in; the cgo finder does not need its symbols, they are only the
 * answer key), and mattnwork-dynamic, whose stubs call libsqlite3.so
 * through the PLT: nothing of this file is SQLite. Both are built into
 * $BUILD/targets. `test_cgofind FILE` checks another unstripped cgo build
 * the same way (tests/e2e/test_go_cgo.py: one against SQLite 3.53 without
 * the API table). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apitable.h"
#include "cgofind.h"
#include "elfsym.h"
#include "ehframe.h"
#include "harness.h"
#include "layout_decode.h"

static const char *target(const char *name)
{
	static char path[512];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";

	snprintf(path, sizeof(path), "%s/targets/%s", build, name);
	return path;
}

static bool found(const struct cgofind *f, const char *name)
{
	for (size_t i = 0; i < APITABLE_NAMES; i++)
		if (apitable_names[i] && strcmp(apitable_names[i], name) == 0)
			return f->fn[i] != 0;
	return false;
}

/* Every function found equals the symbol of its name; the ones the probes
 * need are among them. */
static bool matches_symbols(const char *path)
{
	struct elf_file *ef = elf_file__open(path);
	struct cgofind *f = malloc(sizeof(*f));
	size_t i, checked = 0;
	uint32_t v;
	char ver[16];

	ASSERT_TRUE(ef != NULL && f != NULL);
	ASSERT_EQ_INT(cgofind__find(ef, f), 0);
	ASSERT_EQ_STR(f->pkg, "github.com/mattn/go-sqlite3");
	ASSERT_TRUE(strncmp(f->go_version, "go1.", 4) == 0);
	for (i = 0; i < APITABLE_NAMES; i++) {
		uint64_t va, sz;

		if (!f->fn[i])
			continue;
		ASSERT_EQ_INT(elf_file__find_func(ef, apitable_names[i], &va, &sz), 0);
		if (va != f->fn[i]) {
			printf("  %s: cgo wrappers give 0x%llx, its symbol 0x%llx\n", apitable_names[i],
			       (unsigned long long)f->fn[i], (unsigned long long)va);
			ASSERT_TRUE(false);
		}
		checked++;
	}
	ASSERT_TRUE(checked == f->nfound && checked >= 40);
	{
		static const char *const need[] = { "sqlite3_prepare_v2", "sqlite3_step", "sqlite3_reset",
						    "sqlite3_finalize", "sqlite3_errmsg", "sqlite3_exec" };

		for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
			if (!found(f, need[i])) {
				printf("  %s: not found\n", need[i]);
				ASSERT_TRUE(false);
			}
	}
	/* the copy's version, from the two functions that give it (found by
	 * symbol here: a program that never asks for the version has no
	 * wrapper of them) */
	{
		uint64_t num, str, sz;

		ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_libversion_number", &num, &sz), 0);
		ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_libversion", &str, &sz), 0);
		ASSERT_EQ_INT(apitable__version_of(ef, num, str, &v, ver, sizeof(ver)), 0);
		ASSERT_TRUE(v / 1000000 == 3 && ver[0] == '3' && ver[1] == '.');
		/* the wrong function for the number: no version */
		ASSERT_EQ_INT(apitable__version_of(ef, str, str, &v, ver, sizeof(ver)), -ENOENT);
	}
	free(f);
	elf_file__close(ef);
	return true;
}

static bool test_static_mattn(void)
{
	return matches_symbols(target("mattnwork-static"));
}

/* `test_cgofind FILE`: the same check on another unstripped cgo build
 * (tests/e2e/test_go_cgo.py passes its own SQLite build). */
static const char *extra;

static bool test_extra_build(void)
{
	return matches_symbols(extra);
}

/* The stripped twin of mattnwork-static: its SQLite's layout decoded from
 * the functions the cgo wrappers lead to equals the one decoded by symbols,
 * for every offset the program's calls give a source for (Vdbe.db and
 * db->mutex through sqlite3_reset, zSql through the sqlite3_sql call of
 * sqlite3Reprepare, as the program never calls sqlite3_db_handle or
 * sqlite3_sql); the state byte has none (sqlite3_stmt_busy): step outcomes
 * are taken at sqlite3_step's return. */
static bool test_stripped_layout_equals_symbols(void)
{
	struct elf_file *sym = elf_file__open(target("mattnwork-static"));
	struct elf_file *ef = elf_file__open(target("mattnwork-static-stripped"));
	struct cgofind *f = malloc(sizeof(*f));
	struct layout_decoded a, b;
	uint64_t size[APITABLE_NAMES];

	ASSERT_TRUE(sym && ef && f);
	ASSERT_TRUE(!elf_file__has_symtab(ef));
	ASSERT_EQ_INT(cgofind__find(ef, f), 0);
	ASSERT_EQ_INT(ehframe__sizes(ef, f->fn, size, APITABLE_NAMES), 0);
	ASSERT_EQ_INT(elf_file__add_funcs(ef, apitable_names, f->fn, size, APITABLE_NAMES), 0);
	layout_decode__elf(sym, sym, &a);
	layout_decode__elf(ef, ef, &b);
	printf("    symbols: %s\n    cgo wrappers: %s; missing: %s\n", a.found, b.found, b.missing);
	ASSERT_TRUE(a.cfg.vdbe_db_off >= 0 && a.cfg.db_perr_off >= 0 && a.cfg.vdbe_rc_off >= 0 &&
		    a.cfg.vdbe_zerrmsg_off >= 0);
	ASSERT_EQ_INT(b.cfg.vdbe_db_off, a.cfg.vdbe_db_off);
	ASSERT_EQ_INT(b.cfg.db_perr_off, a.cfg.db_perr_off);
	ASSERT_EQ_INT(b.cfg.mem_z_off, a.cfg.mem_z_off);
	ASSERT_EQ_INT(b.cfg.vdbe_rc_off, a.cfg.vdbe_rc_off);
	ASSERT_EQ_INT(b.cfg.vdbe_zerrmsg_off, a.cfg.vdbe_zerrmsg_off);
	ASSERT_EQ_INT(b.cfg.db_pparse_off, a.cfg.db_pparse_off);
	ASSERT_EQ_INT(b.cfg.db_adb_off, a.cfg.db_adb_off);
	ASSERT_EQ_INT(b.cfg.pager_zfile_off, a.cfg.pager_zfile_off);
	ASSERT_EQ_INT(b.cfg.vdbe_zsql_off, a.cfg.vdbe_zsql_off);
	ASSERT_EQ_INT(b.cfg.vdbe_state_off, -1);
	free(f);
	elf_file__close(ef);
	elf_file__close(sym);
	return true;
}

/* Stubs that call libsqlite3.so through the PLT: not this file's SQLite. */
static bool test_dynamic_mattn_finds_nothing(void)
{
	struct elf_file *ef = elf_file__open(target("mattnwork-dynamic"));
	struct cgofind *f = malloc(sizeof(*f));

	ASSERT_TRUE(ef != NULL && f != NULL);
	if (cgofind__find(ef, f) != -ENOENT)
		for (size_t i = 0; i < APITABLE_NAMES; i++)
			if (f->fn[i])
				printf("  %s: found at 0x%llx\n", apitable_names[i], (unsigned long long)f->fn[i]);
	ASSERT_EQ_INT(cgofind__find(ef, f), -ENOENT);
	free(f);
	elf_file__close(ef);
	return true;
}

/* A C program: not Go. */
static bool test_c_program_is_not_go(void)
{
	struct elf_file *ef = elf_file__open(target("static_errors"));
	struct cgofind *f = malloc(sizeof(*f));

	ASSERT_TRUE(ef != NULL && f != NULL);
	ASSERT_EQ_INT(cgofind__find(ef, f), -ENOENT);
	free(f);
	elf_file__close(ef);
	return true;
}

static bool test_names(void)
{
	static const struct {
		const char *cname, *api;
		int guessed;
	} cases[] = {
		{ "sqlite3_reset", "sqlite3_reset", 0 },
		{ "_sqlite3_step_internal", "sqlite3_step", 1 },
		{ "_sqlite3_step_row_internal", "sqlite3_step", 1 },
		{ "_sqlite3_prepare_v2_internal", "sqlite3_prepare_v2", 1 },
		{ "_sqlite3_open_v2", "sqlite3_open_v2", 1 },
		{ "sqlite3_no_such_function", NULL, 0 },
		{ "free", NULL, 0 },
		{ "_Cmalloc", NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t idx = 0;
		int g = -1, e = cgofind__api_name(cases[i].cname, &idx, &g);

		if (!cases[i].api) {
			ASSERT_EQ_INT(e, -ENOENT);
			continue;
		}
		ASSERT_EQ_INT(e, 0);
		ASSERT_EQ_STR(apitable_names[idx], cases[i].api);
		ASSERT_EQ_INT(g, cases[i].guessed);
	}
	return true;
}

int main(int argc, char **argv)
{
	if (argc == 2) {
		extra = argv[1];
		RUN(test_extra_build);
		return harness_done();
	}
	RUN(test_names);
	RUN(test_static_mattn);
	RUN(test_stripped_layout_equals_symbols);
	RUN(test_dynamic_mattn_finds_nothing);
	RUN(test_c_program_is_not_go);
	return harness_done();
}
