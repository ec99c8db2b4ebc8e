/* test_go_releases.c — user/find/gosym.c over real release builds of Go
 * programs, one per Go minor release 1.18 to 1.27 (npm packages that ship a
 * prebuilt Go CLI, fetched by tests/go_releases.sh into $BUILD/go-releases).
 * Per release: the build info's version; the function table (main.main,
 * runtime.goexit whose code starts NOP, CALL); the module data's types and
 * itablinks at the table's offsets (gosym cross-checks itablinks with the
 * .itablink section; here the itabs must name "error" / "*errors.errorString"
 * of size 16); and g.goid, found again in runtime.newproc1's code
 * ("newg.goid = pp.goidcache" right after the goidcache refill's LOCK XADD).
 * A release the table does not know (go1.27: its module data has no
 * itablinks any more) and a build without build info get a reason, never
 * offsets. Skipped only when the npm registry cannot be reached, and never
 * in CI (CI=true or SQLTRACE_REQUIRE_BPF=1: a failure there). */
#include "harness.h"

#include <capstone/capstone.h>
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

/* Readable, but no layout, and the reason says why; goid: what its
 * runtime.newproc1 shows. */
static bool check_refused(const char *name, const char *version, const char *want, int goid)
{
	struct opened o;
	char err[256], why[256] = "";
	size_t n;
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
	ASSERT_TRUE(gosym__layout(o.g, why, sizeof(why)) == NULL);
	if (!strstr(why, want))
		printf("    %s: \"%s\" lacks \"%s\"\n", name, why, want);
	ASSERT_TRUE(strstr(why, want) != NULL);
	ASSERT_EQ_INT(gosym__nitabs(o.g, &n), -ENOENT);
	ASSERT_EQ_INT(goid_from_newproc1(o.g), goid);  /* what a table row would need */
	close_rel(&o);
	return true;
}

/* go1.27 moved the itabs out of moduledata.itablinks: not in the table. */
static bool test_go127_refused(void)
{
	return check_refused("go1.27", "go1.27.0", "go1.27.0 is not in this tool's table", 152);
}

/* esbuild 0.27 (go1.25.7) carries no build info: no version, no layout. */
static bool test_no_buildinfo_refused(void)
{
	return check_refused("go1.25-nobuildinfo", "", "no Go build info", 152);
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
	RUN(test_go127_refused);
	RUN(test_no_buildinfo_refused);
	return harness_done();
}
