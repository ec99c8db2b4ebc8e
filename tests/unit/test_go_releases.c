/* test_go_releases.c — user/find/gosym.c over real release builds of Go
 * programs, one per Go minor release 1.18 to 1.27 (npm packages that ship a
 * prebuilt Go CLI, fetched by tests/go_releases.sh into $BUILD/go-releases).
 * Per release: the build info's version; the function table (main.main,
 * runtime.goexit whose code starts NOP, CALL); the module data's types and
 * itabs at the table's offsets (up to go1.26 moduledata.itablinks, which
 * gosym cross-checks with the .itablink section; from go1.27 the itabs laid
 * out at types + itaboffset, whose offsets are found again in
 * runtime.addModuleItabs's code; either way the itabs must name "error" /
 * "*errors.errorString" of size 16); and g.goid, found again in
 * runtime.newproc1's code ("newg.goid = pp.goidcache" right after the
 * goidcache refill's LOCK XADD). A release the table does not know (the
 * go1.27 build with its version rewritten to go1.28.0), a build without
 * build info, and the go1.27 build with a wrong itabsize get a reason,
 * never offsets. Skipped only when the npm registry cannot be reached,
 * and never in CI (CI=true or SQLTRACE_REQUIRE_BPF=1: a failure there). */
#include "harness.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gosym.h"

#define MAX_REL 16

static struct rel {
	char name[32];
	char path[512];
} rels[MAX_REL];
static size_t nrels;
static char fetch_why[600];
static int fetch_rc = -1;

/* Runs tests/go_releases.sh once; 0, 77 (unreachable) or 1. */
static int fetch(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char cmd[1024], line[600];
	FILE *p;
	int st;

	if (fetch_rc >= 0)
		return fetch_rc;
	snprintf(cmd, sizeof(cmd), "tests/go_releases.sh '%s/go-releases' 2>&1", build);
	p = popen(cmd, "r");
	if (!p)
		return fetch_rc = 1;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = 0;
		if (nrels < MAX_REL && sscanf(line, "%31s %511s", rels[nrels].name, rels[nrels].path) == 2 &&
		    strncmp(rels[nrels].name, "go1.", 4) == 0)
			nrels++;
		else
			snprintf(fetch_why, sizeof(fetch_why), "%s", line);
	}
	st = pclose(p);
	fetch_rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	return fetch_rc;
}

static bool in_ci(void)
{
	const char *ci = getenv("CI"), *req = getenv("SQLTRACE_REQUIRE_BPF");

	return (ci && strcmp(ci, "true") == 0) || (req && strcmp(req, "1") == 0);
}

struct opened {
	int fd;
	struct gosym *g;
};

/* Opens release NAME's executable. 0, or -ENOENT (not fetched). */
static int open_rel(const char *name, struct opened *o, char *err, size_t errlen)
{
	struct stat st;
	size_t i;

	for (i = 0; i < nrels; i++)
		if (strcmp(rels[i].name, name) == 0)
			break;
	if (i == nrels)
		return -ENOENT;
	o->fd = open(rels[i].path, O_RDONLY);
	if (o->fd < 0 || fstat(o->fd, &st) != 0)
		return -errno;
	return gosym__open_fd(o->fd, (uint64_t)st.st_size, &o->g, err, errlen);
}

static void close_rel(struct opened *o)
{
	gosym__free(o->g);
	close(o->fd);
}

/* True when insn is "MOV [mem], reg" (8 bytes); *disp its displacement. */
static bool store64(const cs_insn *insn, int64_t *disp)
{
	const cs_x86 *x = &insn->detail->x86;

	if (insn->id != X86_INS_MOV || x->op_count != 2 || x->operands[0].type != X86_OP_MEM ||
	    x->operands[0].size != 8 || x->operands[1].type != X86_OP_REG)
		return false;
	*disp = x->operands[0].mem.disp;
	return true;
}

/* g.goid's offset from runtime.newproc1's code. The goidcache refill
 * (pp.goidcache = sched.goidgen.Add(batch) - batch + 1) is a LOCK XADD
 * followed within 4 instructions by the store to [P + C], C being
 * goidcache's offset; then, within 16, "MOV R, [P' + C]; MOV [N + D], R"
 * is newg.goid = pp.goidcache: D. Returns D, or -1 when the pattern is not
 * there. */
static int goid_from_newproc1(const struct gosym *g)
{
	uint64_t a, b;
	uint8_t *code;
	csh cs;
	cs_insn *in = NULL;
	size_t n = 0, i, j, k;
	int d = -1;

	if (gosym__find(g, "runtime.newproc1", &a, &b) || b <= a || b - a > 65536)
		return -1;
	code = malloc(b - a);
	if (!code || gosym__read(g, a, code, b - a) || cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		free(code);
		return -1;
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(cs, code, b - a, a, 0, &in);
	for (i = 0; i < n && d < 0; i++) {
		int64_t cache = 0, dd;
		bool found = false;

		if (in[i].id != X86_INS_XADD || in[i].detail->x86.prefix[0] != X86_PREFIX_LOCK)
			continue;
		for (j = i + 1; j < n && j <= i + 4 && !found; j++)
			found = store64(&in[j], &cache);
		for (k = j; found && k + 1 < n && k < j + 16 && d < 0; k++) {
			const cs_x86 *x = &in[k].detail->x86;

			size_t m;

			if (in[k].id != X86_INS_MOV || x->op_count != 2 || x->operands[0].type != X86_OP_REG ||
			    x->operands[1].type != X86_OP_MEM || x->operands[1].size != 8 ||
			    x->operands[1].mem.disp != cache)
				continue;
			/* R stored within 3 instructions (newg may be reloaded
			 * from the stack in between), R not written before. */
			for (m = k + 1; m < n && m <= k + 3 && d < 0; m++) {
				const cs_x86 *y = &in[m].detail->x86;

				if (store64(&in[m], &dd) && y->operands[1].reg == x->operands[0].reg)
					d = (int)dd;
				else if (y->op_count && y->operands[0].type == X86_OP_REG &&
					 y->operands[0].reg == x->operands[0].reg)
					break;
			}
		}
	}
	cs_free(in, n);
	cs_close(&cs);
	free(code);
	return d;
}

/* How runtime.addModuleItabs (go1.27+) walks the itabs: it loads
 * md.types, md.itaboffset and md.itabsize (the first three 8-byte loads,
 * from one base register: their displacements in *types, *itaboff,
 * *itabsize), tests fun[0] (a CMP of [itab + 24] with 0) and reads the
 * interface's method count ([inter + 64]) for the itab's size. Returns
 * true when all of that is there. */
static bool itab_walk_from_code(const struct gosym *g, int *types, int *itaboff, int *itabsize)
{
	uint64_t a, b;
	uint8_t *code;
	csh cs;
	cs_insn *in = NULL;
	size_t n = 0, i;
	int disp[3], nd = 0;
	x86_reg base = X86_REG_INVALID;
	bool fun0 = false, nmeth = false;

	if (gosym__find(g, "runtime.addModuleItabs", &a, &b) || b <= a || b - a > 4096)
		return false;
	code = malloc(b - a);
	if (!code || gosym__read(g, a, code, b - a) || cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		free(code);
		return false;
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(cs, code, b - a, a, 0, &in);
	for (i = 0; i < n; i++) {
		const cs_x86 *x = &in[i].detail->x86;
		const cs_x86_op *m;

		if (x->op_count != 2)
			continue;
		m = &x->operands[1];
		if ((in[i].id == X86_INS_MOV || in[i].id == X86_INS_ADD) && x->operands[0].type == X86_OP_REG &&
		    m->type == X86_OP_MEM && m->size == 8 && m->mem.index == X86_REG_INVALID) {
			if (nd < 3 && (nd == 0 || m->mem.base == base)) {
				base = m->mem.base;
				disp[nd++] = (int)m->mem.disp;
			} else if (nd == 3 && m->mem.disp == 64) {
				nmeth = true;
			}
		}
		if (in[i].id == X86_INS_CMP && x->operands[0].type == X86_OP_MEM && x->operands[0].mem.disp == 24 &&
		    x->operands[1].type == X86_OP_IMM && x->operands[1].imm == 0)
			fun0 = true;
	}
	cs_free(in, n);
	cs_close(&cs);
	free(code);
	if (nd < 3 || !fun0 || !nmeth)
		return false;
	*types = disp[0];
	*itaboff = disp[1];
	*itabsize = disp[2];
	return true;
}

/* The itab (error, *errors.errorString) is among the linker's itabs, with
 * errorString's size (one string: 16). */
static bool has_error_string_itab(const struct gosym *g)
{
	char in[128], ty[128];
	uint64_t itab, sz;
	size_t n, i;

	if (gosym__nitabs(g, &n) || n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (gosym__itab(g, i, &itab, in, sizeof(in), ty, sizeof(ty), &sz) == 0 && strcmp(in, "error") == 0 &&
		    strcmp(ty, "*errors.errorString") == 0)
			return sz == 16;
	return false;
}

/* Function table: main.main and runtime.goexit (its code: NOP, CALL
 * goexit1 — so the entry addresses are right, not just the names). */
static bool funcs_ok(const struct gosym *g)
{
	uint64_t a, b;
	uint8_t code[2];

	ASSERT_TRUE(gosym__nfuncs(g) > 1000);
	ASSERT_EQ_INT(gosym__find(g, "main.main", &a, &b), 0);
	ASSERT_TRUE(b > a);
	ASSERT_EQ_INT(gosym__find(g, "runtime.goexit", &a, &b), 0);
	ASSERT_EQ_INT(gosym__read(g, a, code, 2), 0);
	ASSERT_EQ_INT(code[0], 0x90);
	ASSERT_EQ_INT(code[1], 0xe8);
	return true;
}

/* A release in the table: version, functions, types/itablinks, goid. */
static bool check_known(const char *name, const char *version, int goid)
{
	struct opened o;
	char err[256];
	const struct gosym_layout *l;
	int rc = fetch();

	if (rc == 77 && !in_ci())
		SKIP(fetch_why);
	ASSERT_EQ_INT(rc, 0);
	ASSERT_EQ_INT(open_rel(name, &o, err, sizeof(err)), 0);
	ASSERT_EQ_STR(gosym__version(o.g), version);
	if (!funcs_ok(o.g)) {
		close_rel(&o);
		return false;
	}
	l = gosym__layout(o.g, err, sizeof(err));
	if (!l)
		printf("    %s: %s\n", name, err);
	ASSERT_TRUE(l);
	ASSERT_EQ_INT(l->from_dwarf, 0);  /* release builds are stripped */
	ASSERT_TRUE(has_error_string_itab(o.g));
	ASSERT_EQ_INT(l->g_goid_off, goid);
	ASSERT_EQ_INT(goid_from_newproc1(o.g), goid);
	if (l->md_itaboffset_off >= 0) {  /* 1.27+: no itablinks; the runtime's own walk */
		int t, io, is;

		ASSERT_EQ_INT(l->md_itablinks_off, -1);
		ASSERT_TRUE(itab_walk_from_code(o.g, &t, &io, &is));
		ASSERT_EQ_INT(t, l->md_types_off);
		ASSERT_EQ_INT(io, l->md_itaboffset_off);
		ASSERT_EQ_INT(is, l->md_itaboffset_off + 8);
	}
	close_rel(&o);
	return true;
}

static bool test_go118(void) { return check_known("go1.18", "go1.18.1", 152); }
static bool test_go119(void) { return check_known("go1.19", "go1.19.3", 152); }
static bool test_go120(void) { return check_known("go1.20", "go1.20.7", 152); }
static bool test_go121(void) { return check_known("go1.21", "go1.21.5", 152); }
static bool test_go122(void) { return check_known("go1.22", "go1.22.5", 152); }
static bool test_go123(void) { return check_known("go1.23", "go1.23.1", 160); }
static bool test_go124(void) { return check_known("go1.24", "go1.24.4", 160); }
static bool test_go125(void) { return check_known("go1.25", "go1.25.6", 152); }
static bool test_go126(void) { return check_known("go1.26", "go1.26.6", 152); }
static bool test_go127(void) { return check_known("go1.27", "go1.27.0", 152); }

/* Readable, but no layout, and the reason says why; goid: what its
 * runtime.newproc1 shows. */
static bool refused_ok(const struct gosym *g, const char *name, const char *version, const char *want, int goid)
{
	char why[256] = "";
	size_t n;

	ASSERT_EQ_STR(gosym__version(g), version);
	if (!funcs_ok(g))
		return false;
	ASSERT_TRUE(gosym__layout(g, why, sizeof(why)) == NULL);
	if (!strstr(why, want))
		printf("    %s: \"%s\" lacks \"%s\"\n", name, why, want);
	ASSERT_TRUE(strstr(why, want) != NULL);
	ASSERT_EQ_INT(gosym__nitabs(g, &n), -ENOENT);
	ASSERT_EQ_INT(goid_from_newproc1(g), goid);  /* what a table row would need */
	return true;
}

/* esbuild 0.27 (go1.25.7) carries no build info: no version, no layout. */
static bool test_no_buildinfo_refused(void)
{
	struct opened o;
	char err[256];
	bool ok;
	int rc = fetch();

	if (rc == 77 && !in_ci())
		SKIP(fetch_why);
	ASSERT_EQ_INT(rc, 0);
	ASSERT_EQ_INT(open_rel("go1.25-nobuildinfo", &o, err, sizeof(err)), 0);
	ok = refused_ok(o.g, "go1.25-nobuildinfo", "", "no Go build info", 152);
	close_rel(&o);
	return ok;
}

/* Release NAME's executable read whole into memory (malloc'd; *len its
 * size), or NULL. */
static uint8_t *read_rel(const char *name, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t i;
	int fd;

	for (i = 0; i < nrels && strcmp(rels[i].name, name) != 0; i++)
		;
	if (i == nrels || (fd = open(rels[i].path, O_RDONLY)) < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size)) &&
	    pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* A release the table does not know: the go1.27 build read from memory
 * with its build info's version rewritten to go1.28.0 (same length, the
 * rest untouched) is refused by name, with the releases that are known. */
static bool test_unknown_release_refused(void)
{
	static const char magic[] = "\xff Go buildinf:";
	struct gosym *g = NULL;
	char err[256];
	uint8_t *buf, *bi = NULL;
	size_t len = 0;
	bool ok = false;
	int rc = fetch();

	if (rc == 77 && !in_ci())
		SKIP(fetch_why);
	ASSERT_EQ_INT(rc, 0);
	buf = read_rel("go1.27", &len);
	ASSERT_TRUE(buf);
	if ((bi = memmem(buf, len, magic, sizeof(magic) - 1)) && (size_t)(bi - buf) + 41 <= len && (bi[15] & 2) &&
	    bi[32] == 8 && memcmp(bi + 33, "go1.27.0", 8) == 0) {
		memcpy(bi + 33, "go1.28.0", 8);  /* inline version: uvarint length 8, the bytes */
		ok = gosym__open_buf(buf, len, &g, err, sizeof(err)) == 0;
	}
	if (!ok)
		printf("    cannot rewrite and reopen the go1.27 build's version\n");
	ok = ok && refused_ok(g, "go1.28", "go1.28.0",
			      "go1.28.0 is not in this tool's table of Go runtime layouts (known: go1.18 to go1.27)", 152);
	gosym__free(g);
	free(buf);
	return ok;
}

/* The go1.27 build with moduledata.itabsize 8 bytes too long (the module
 * data is the .go.module section's start; itabsize at 328): the itab walk
 * no longer ends where the region does, so the layout is refused as not
 * matching, never used. */
static bool test_go127_bad_itabsize_refused(void)
{
	struct gosym *g = NULL;
	char err[256], why[256] = "";
	uint8_t *buf;
	uint64_t v;
	size_t len = 0, n, i;
	Elf64_Ehdr eh;
	Elf64_Shdr sh, strs;
	bool ok = false;
	int rc = fetch();

	if (rc == 77 && !in_ci())
		SKIP(fetch_why);
	ASSERT_EQ_INT(rc, 0);
	buf = read_rel("go1.27", &len);
	ASSERT_TRUE(buf && len > sizeof(eh));
	memcpy(&eh, buf, sizeof(eh));
	for (i = 0; i < eh.e_shnum && eh.e_shoff + (i + 1) * sizeof(sh) <= len &&
		    eh.e_shoff + (eh.e_shstrndx + 1) * sizeof(sh) <= len; i++) {
		memcpy(&strs, buf + eh.e_shoff + eh.e_shstrndx * sizeof(sh), sizeof(sh));
		memcpy(&sh, buf + eh.e_shoff + i * sizeof(sh), sizeof(sh));
		if (strs.sh_offset + sh.sh_name + 11 <= len &&
		    memcmp(buf + strs.sh_offset + sh.sh_name, ".go.module", 11) == 0 &&
		    sh.sh_offset + 336 <= len) {
			memcpy(&v, buf + sh.sh_offset + 328, 8);
			v += 8;
			memcpy(buf + sh.sh_offset + 328, &v, 8);
			ok = gosym__open_buf(buf, len, &g, err, sizeof(err)) == 0;
			break;
		}
	}
	if (!ok)
		printf("    no .go.module section to change in the go1.27 build\n");
	if (ok) {
		ok = gosym__layout(g, why, sizeof(why)) == NULL && gosym__nitabs(g, &n) == -ENOENT &&
		     strstr(why, "go1.27.0: its module data does not match that release's layout") != NULL;
		if (!ok)
			printf("    go1.27 with a wrong itabsize: \"%s\"\n", why);
	}
	gosym__free(g);
	free(buf);
	return ok;
}

int main(void)
{
	RUN(test_go118);
	RUN(test_go119);
	RUN(test_go120);
	RUN(test_go121);
	RUN(test_go122);
	RUN(test_go123);
	RUN(test_go124);
	RUN(test_go125);
	RUN(test_go126);
	RUN(test_go127);
	RUN(test_go127_bad_itabsize_refused);
	RUN(test_unknown_release_refused);
	RUN(test_no_buildinfo_refused);
	return harness_done();
}
