/* test_gosym.c — unit tests of user/find/gosym.c (Go's function table,
 * module data, build info) and of the database/sql finder's code sites
 * (user/find/gosql.c): synthetic executables from the fuzz seeds
 * (tests/fuzz/gosym_seeds.py) read exactly, hostile ones refused with a
 * reason, and the pure-Go test targets (built by tests/module.mk) read the
 * same stripped and not. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwarf.h"
#include "gosql_find.h"
#include "gosym.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool check_valid(const char *seed, const char *version)
{
	char path[256], err[256];
	struct gosym *g;
	size_t len, n;
	char *buf;
	const char *name;
	uint64_t a, b, itab, sz;
	char in[64], ty[64];
	const struct gosym_layout *l;

	snprintf(path, sizeof(path), "tests/fuzz/corpus/gosym/%s", seed);
	buf = slurp(path, &len);
	ASSERT_TRUE(buf);
	ASSERT_EQ_INT(gosym__open_buf(buf, len, &g, err, sizeof(err)), 0);
	ASSERT_EQ_STR(gosym__version(g), version);
	ASSERT_EQ_INT(gosym__nfuncs(g), 3);
	ASSERT_EQ_INT(gosym__func(g, 1, &name, &a, &b), 0);
	ASSERT_EQ_STR(name, "database/sql.(*DB).ExecContext");
	ASSERT_EQ_INT(a, 0x400620);
	ASSERT_EQ_INT(b, 0x400640);
	ASSERT_EQ_INT(gosym__find(g, "main.helper", &a, &b), 0);
	ASSERT_EQ_INT(a, 0x400640);
	ASSERT_EQ_INT(b, 0x400660);
	ASSERT_EQ_INT(gosym__find(g, "main.nothere", &a, &b), -ENOENT);
	ASSERT_EQ_INT(gosym__func(g, 3, &name, &a, &b), -ERANGE);
	l = gosym__layout(g, err, sizeof(err));
	ASSERT_TRUE(l);
	ASSERT_EQ_INT(gosym__nitabs(g, &n), 0);
	ASSERT_EQ_INT(n, 1);
	ASSERT_EQ_INT(gosym__itab(g, 0, &itab, in, sizeof(in), ty, sizeof(ty), &sz), 0);
	ASSERT_EQ_INT(itab, 0x400900);
	ASSERT_EQ_STR(in, "error");
	ASSERT_EQ_STR(ty, "*sqlite.Error");
	ASSERT_EQ_INT(sz, 24);  /* what the pointer points to */
	ASSERT_EQ_INT(gosym__vaddr_to_off(g, 0x401100, 8, &a), 0);
	ASSERT_EQ_INT(a, 0x1100);
	ASSERT_EQ_INT(gosym__vaddr_to_off(g, 0x402000, 1, &a), -ENOENT);
	gosym__free(g);
	free(buf);
	return true;
}

static bool test_go119_format(void)
{
	return check_valid("valid-go119.elf", "go1.19.8");
}

static bool test_go121_format(void)
{
	return check_valid("valid-go121.elf", "go1.21.5");
}

/* Readable, but no layout: the version unknown or contradicted. */
static bool refused_layout(const char *seed, const char *want)
{
	char path[256], err[256], why[256] = "";
	struct gosym *g;
	size_t len, n;
	char *buf;

	snprintf(path, sizeof(path), "tests/fuzz/corpus/gosym/%s", seed);
	buf = slurp(path, &len);
	ASSERT_TRUE(buf);
	ASSERT_EQ_INT(gosym__open_buf(buf, len, &g, err, sizeof(err)), 0);
	ASSERT_TRUE(gosym__layout(g, why, sizeof(why)) == NULL);
	ASSERT_TRUE(strstr(why, want) != NULL);
	ASSERT_EQ_INT(gosym__nitabs(g, &n), -ENOENT);
	gosym__free(g);
	free(buf);
	return true;
}

static bool test_unknown_release_has_no_layout(void)
{
	return refused_layout("unknown-release.elf", "go1.99.0 is not in this tool's table");
}

static bool test_no_buildinfo_has_no_layout(void)
{
	return refused_layout("no-buildinfo.elf", "no Go build info");
}

static bool test_contradicted_layout_is_refused(void)
{
	return refused_layout("layout-mismatch.elf", "does not match");
}

static bool test_hostile_files_refused(void)
{
	static const uint8_t notelf[] = "#!/bin/sh\necho hi\n";
	char err[256], path[] = "tests/fuzz/corpus/gosym/truncated.elf";
	struct gosym *g = (struct gosym *)1;
	size_t len;
	char *buf;

	ASSERT_EQ_INT(gosym__open_buf(notelf, sizeof(notelf), &g, err, sizeof(err)), -ENOEXEC);
	ASSERT_TRUE(g == NULL);
	ASSERT_EQ_STR(err, "not an ELF file");
	buf = slurp(path, &len);
	ASSERT_TRUE(buf);
	ASSERT_TRUE(gosym__open_buf(buf, len, &g, err, sizeof(err)) < 0);
	free(buf);
	buf = slurp("tests/fuzz/corpus/gosym/old-magic.elf", &len);
	ASSERT_TRUE(buf);
	ASSERT_EQ_INT(gosym__open_buf(buf, len, &g, err, sizeof(err)), -ENOEXEC);
	free(buf);
	return true;
}

static bool test_code_sites(void)
{
	/* cmp rsp,[r14+0x10]; jbe; xor eax,eax; ret; call; jmp; int3 padding */
	static const uint8_t go_fn[] = { 0x49, 0x3b, 0x66, 0x10, 0x76, 0x03, 0x31, 0xc0, 0xc3,
					 0xe8, 0, 0, 0, 0, 0xeb, 0xf0, 0xcc, 0xcc };
	/* lea r12,[rsp-0x98]; cmp r12,[r14+0x10]; jbe rel32; ret; ret */
	static const uint8_t big[] = { 0x4c, 0x8d, 0xa4, 0x24, 0x68, 0xff, 0xff, 0xff, 0x4d, 0x3b,
				       0x66, 0x10, 0x0f, 0x86, 0, 0, 0, 0, 0xc3, 0xc3 };
	/* no stack check: the probe stays at the entry */
	static const uint8_t plain[] = { 0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3 };
	static const uint8_t noret[] = { 0x49, 0x3b, 0x66, 0x10, 0x76, 0x03, 0x31, 0xc0, 0xcc };
	static const uint8_t cut[] = { 0x49, 0x3b, 0x66, 0x10, 0x76, 0x03, 0xc3, 0x48 };
	uint64_t entry, rets[4];

	ASSERT_EQ_INT(gosql__code_sites(go_fn, sizeof(go_fn), 0x1000, &entry, rets, 4), 1);
	ASSERT_EQ_INT(entry, 0x1004);
	ASSERT_EQ_INT(rets[0], 0x1008);
	ASSERT_EQ_INT(gosql__code_sites(big, sizeof(big), 0x1000, &entry, rets, 4), 2);
	ASSERT_EQ_INT(entry, 0x100c);
	ASSERT_EQ_INT(rets[1], 0x1013);
	ASSERT_EQ_INT(gosql__code_sites(big, sizeof(big), 0x1000, &entry, rets, 1), -E2BIG);
	ASSERT_EQ_INT(gosql__code_sites(plain, sizeof(plain), 0x1000, &entry, rets, 4), 1);
	ASSERT_EQ_INT(entry, 0x1000);
	ASSERT_EQ_INT(gosql__code_sites(noret, sizeof(noret), 0x1000, &entry, rets, 4), -EINVAL);
	/* a function that does not decode to its end is never probed */
	ASSERT_EQ_INT(gosql__code_sites(cut, sizeof(cut), 0x1000, &entry, rets, 4), -EINVAL);
	return true;
}

static bool plan_of(const char *path, struct gosql_plan *p)
{
	struct stat st;
	char why[512];
	int fd = open(path, O_RDONLY), e;

	if (fd < 0)
		return false;
	fstat(fd, &st);
	e = gosql__plan(fd, (uint64_t)st.st_size, p, why, sizeof(why));
	close(fd);
	if (e)
		printf("    %s: %s\n", path, why);
	return e == 0;
}

/* The real test targets: stripped or not, the same plan. */
static bool test_pure_go_targets(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char plain[256], stripped[256], pie[256];
	struct gosql_plan a, b;
	size_t i, found = 0;

	snprintf(plain, sizeof(plain), "%s/targets/go-puresql", build);
	snprintf(stripped, sizeof(stripped), "%s/targets/go-puresql-stripped", build);
	snprintf(pie, sizeof(pie), "%s/targets/go-puresql-pie", build);
	if (access(plain, R_OK) || access(stripped, R_OK) || access(pie, R_OK))
		SKIP("the pure-Go targets are not built (make tests-build)");
	ASSERT_TRUE(plan_of(plain, &a));
	ASSERT_TRUE(plan_of(stripped, &b));
	ASSERT_TRUE(strncmp(a.version, "go1.", 4) == 0);
	ASSERT_EQ_STR(a.version, b.version);
	ASSERT_EQ_INT(a.nprobes, b.nprobes);
	ASSERT_TRUE(a.nprobes >= 4);
	for (i = 0; i < a.nprobes; i++) {
		ASSERT_EQ_STR(a.probes[i].name, b.probes[i].name);
		ASSERT_EQ_INT(a.probes[i].nrets, b.probes[i].nrets);
		ASSERT_TRUE(a.probes[i].nrets > 0);
	}
	for (i = 0; i < b.nerrs; i++)
		found += strcmp(b.errs[i].name, "*sqlite.Error") == 0 && b.errs[i].msg_off == 0;
	ASSERT_EQ_INT(found, 1);
	ASSERT_TRUE(strstr(b.lib, "memsqlite.drv") != NULL);
	ASSERT_TRUE(!a.pie);
	gosql__plan_free(&b);
	/* position-independent: its pclntab in .data.rel.ro; the same plan */
	ASSERT_TRUE(plan_of(pie, &b));
	ASSERT_TRUE(b.pie);
	ASSERT_EQ_INT(a.nprobes, b.nprobes);
	for (i = 0; i < a.nprobes; i++) {
		ASSERT_EQ_STR(a.probes[i].name, b.probes[i].name);
		ASSERT_EQ_INT(a.probes[i].nrets, b.probes[i].nrets);
		ASSERT_EQ_INT(a.probes[i].wraps, b.probes[i].wraps);
		ASSERT_TRUE(b.probes[i].ret_vaddrs[0] != 0 && b.probes[i].entry_vaddr != 0);
	}
	gosql__plan_free(&a);
	gosql__plan_free(&b);
	return true;
}

/* Offsets from DWARF: the unstripped target's equal the release table's
 * (used for the stripped one); a synthetic unit read exactly. */
static bool test_dwarf_layout(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	const struct gosym_layout *l1, *l2;
	struct godwarf_query q[] = { { "runtime.g", "goid", 0 }, { "runtime.g", "stack", 0 },
				     { "runtime.m", "g0", 0 } };
	struct gosym *a, *b;
	char path[256], err[256];
	struct stat st;
	size_t len;
	char *buf = slurp("tests/fuzz/corpus/gosym/dwarf-runtime-g.bin", &len);
	int fa, fb;

	ASSERT_TRUE(buf && len > 1);
	ASSERT_EQ_INT(godwarf__members((uint8_t *)buf + 1 + (uint8_t)buf[0], len - 1 - (uint8_t)buf[0],
				       (uint8_t *)buf + 1, (uint8_t)buf[0], q, 3), 2);
	ASSERT_EQ_INT(q[0].off, 152);
	ASSERT_EQ_INT(q[1].off, 0);
	ASSERT_EQ_INT(q[2].off, -1);
	/* cut short: refused, never a wrong offset */
	ASSERT_TRUE(godwarf__members((uint8_t *)buf + 1 + (uint8_t)buf[0], 20, (uint8_t *)buf + 1, (uint8_t)buf[0],
				     q, 3) < 0);
	ASSERT_EQ_INT(q[0].off, -1);
	free(buf);
	snprintf(path, sizeof(path), "%s/targets/go-puresql", build);
	fa = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "%s/targets/go-puresql-stripped", build);
	fb = open(path, O_RDONLY);
	if (fa < 0 || fb < 0) {
		if (fa >= 0)
			close(fa);
		if (fb >= 0)
			close(fb);
		SKIP("the pure-Go targets are not built (make tests-build)");
	}
	fstat(fa, &st);
	ASSERT_EQ_INT(gosym__open_fd(fa, (uint64_t)st.st_size, &a, err, sizeof(err)), 0);
	fstat(fb, &st);
	ASSERT_EQ_INT(gosym__open_fd(fb, (uint64_t)st.st_size, &b, err, sizeof(err)), 0);
	l1 = gosym__layout(a, err, sizeof(err));
	l2 = gosym__layout(b, err, sizeof(err));
	ASSERT_TRUE(l1 && l2);
	ASSERT_EQ_INT(l1->from_dwarf, 1);
	ASSERT_EQ_INT(l2->from_dwarf, 0);
	ASSERT_EQ_INT(l1->md_types_off, l2->md_types_off);
	ASSERT_EQ_INT(l1->md_itablinks_off, l2->md_itablinks_off);
	ASSERT_EQ_INT(l1->g_goid_off, l2->g_goid_off);
	ASSERT_EQ_INT(l1->stmt_query_off, l2->stmt_query_off);
	ASSERT_EQ_INT(l1->row_err_off, l2->row_err_off);
	gosym__free(a);
	gosym__free(b);
	close(fa);
	close(fb);
	return true;
}

/* A Go program without database/sql, one with a cgo SQLite, and a C
 * program: not ours. */
static bool test_not_ours(void)
{
	struct gosql_plan p;
	struct stat st;
	char why[512];
	int fd = open("/bin/sh", O_RDONLY);

	ASSERT_TRUE(fd >= 0);
	fstat(fd, &st);
	ASSERT_EQ_INT(gosql__plan(fd, (uint64_t)st.st_size, &p, why, sizeof(why)), -ENOEXEC);
	close(fd);
	{
		/* mattn/go-sqlite3 inside: its C functions are the cgo finder's */
		const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
		char path[256];

		snprintf(path, sizeof(path), "%s/targets/goapp-static", build);
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			fstat(fd, &st);
			ASSERT_EQ_INT(gosql__plan(fd, (uint64_t)st.st_size, &p, why, sizeof(why)), -ENOENT);
			ASSERT_TRUE(strstr(why, "with a cgo SQLite") != NULL);
			close(fd);
		}
	}
	fd = open("/usr/lib/go-1.19/bin/gofmt", O_RDONLY);
	if (fd < 0)
		return true;
	fstat(fd, &st);
	ASSERT_EQ_INT(gosql__plan(fd, (uint64_t)st.st_size, &p, why, sizeof(why)), -ENOENT);
	ASSERT_TRUE(strstr(why, "does not use database/sql") != NULL);
	close(fd);
	return true;
}

int main(void)
{
	harness_skip_reason = "";
	RUN(test_go119_format);
	RUN(test_go121_format);
	RUN(test_unknown_release_has_no_layout);
	RUN(test_no_buildinfo_has_no_layout);
	RUN(test_contradicted_layout_is_refused);
	RUN(test_hostile_files_refused);
	RUN(test_code_sites);
	RUN(test_pure_go_targets);
	RUN(test_dwarf_layout);
	RUN(test_not_ours);
	return harness_done();
}
