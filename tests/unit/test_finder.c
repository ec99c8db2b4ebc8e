/* test_finder.c — the finders' one interface (user/find/finder.h): the
 * chain's order and its tagged answer for real files, by find__file and
 * find__process: a C program (symbols), a Go program with database/sql and
 * a C SQLite (the C finders answer, never the Go one), a pure-Go program
 * (Go's database/sql, stripped or not), one of a Go release the tool does
 * not know (refused, with the reason), and files with no SQLite. Uses the
 * test targets of $BUILD/targets (skips when they are not built). No BPF. */
#include "harness.h"
#include "finder.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char targets[256];

/* Path of test target name into buf; false when it is not built. */
static bool target_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", targets, name);
	return access(buf, X_OK) == 0;
}

/* find__file on test target name: its result, the answer in *f. */
static int ask_file(const char *path, struct sqlite_found *f, bool *shim, char *why, size_t whylen)
{
	int e = find__file(path, path, f, shim, why, whylen);

	printf("    %s: %d, layer %d, finder %s%s%s\n", strrchr(path, '/') + 1, e, f->layer,
	       f->finder ? f->finder : "-", e ? ": " : "", e ? why : "");
	return e;
}

static bool test_c_program(void)
{
	struct sqlite_found f;
	char path[300], why[512];
	struct stat st;
	bool shim;

	if (!target_path("static_errors", path, sizeof(path)))
		SKIP("the test targets are not built (make tests-build)");
	ASSERT_EQ_INT(ask_file(path, &f, &shim, why, sizeof(why)), 0);
	ASSERT_EQ_INT(f.layer, FOUND_C);
	ASSERT_EQ_STR(f.finder, "symbols");
	ASSERT_TRUE(f.c.fn_off[ST_FN_PREPARE_V2] != 0 && f.c.fn_off[ST_FN_STEP] != 0);
	ASSERT_EQ_STR(f.c.path, path);
	ASSERT_EQ_STR(f.c.open_path, path);
	ASSERT_EQ_INT(stat(path, &st), 0);
	ASSERT_TRUE(f.c.dev == st.st_dev && f.c.ino == st.st_ino);
	ASSERT_EQ_INT(f.go.nprobes, 0);
	find__release(&f);
	return true;
}

/* A Go program using database/sql with mattn/go-sqlite3's C SQLite: the C
 * finders come first (its C functions give exact entries), by its symbols
 * or, stripped, by SQLite's API table or its cgo wrappers. */
static bool test_go_with_c_sqlite(void)
{
	static const char *const names[] = { "mattnwork-static", "mattnwork-static-stripped" };
	struct sqlite_found f;
	char path[300], why[512];
	bool shim;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (!target_path(names[i], path, sizeof(path)))
			SKIP("the mattn test targets are not built (make tests-build)");
		ASSERT_EQ_INT(ask_file(path, &f, &shim, why, sizeof(why)), 0);
		ASSERT_EQ_INT(f.layer, FOUND_C);
		if (i == 0)
			ASSERT_EQ_STR(f.finder, "symbols");
		else
			ASSERT_TRUE(strcmp(f.finder, "extension API table") == 0 ||
				    strcmp(f.finder, "Go cgo wrappers") == 0);
		ASSERT_TRUE(f.c.fn_off[ST_FN_PREPARE_V2] != 0);
		ASSERT_EQ_INT(f.go.nprobes, 0);
		find__release(&f);
	}
	return true;
}

static bool test_pure_go(void)
{
	static const char *const names[] = { "go-puresql", "go-puresql-stripped", "go-puresql-pie" };
	struct sqlite_found f;
	char path[300], why[512];
	bool shim;
	size_t i;

	for (i = 0; i < 3; i++) {
		if (!target_path(names[i], path, sizeof(path)))
			SKIP("the pure-Go test targets are not built (make tests-build)");
		ASSERT_EQ_INT(ask_file(path, &f, &shim, why, sizeof(why)), 0);
		ASSERT_EQ_INT(f.layer, FOUND_GO_SQL);
		ASSERT_EQ_STR(f.finder, "Go function table");
		ASSERT_TRUE(f.go.nprobes > 0);
		ASSERT_TRUE(strncmp(f.go.lib, "database/sql (driver ", 21) == 0);
		ASSERT_EQ_STR(f.c.path, path);
		ASSERT_EQ_INT(f.c.fn_off[ST_FN_PREPARE_V2], 0);
		find__release(&f);
		ASSERT_TRUE(f.go.probes == NULL && f.c.path == NULL);
	}
	return true;
}

/* A copy of go-puresql-stripped whose build info says go1.99.0: no DWARF,
 * not in the release table: refused with the reason, never guessed. */
static bool test_unknown_go_release_refused(void)
{
	static const char magic[] = "\xff Go buildinf:";
	char src[300], dst[] = "/tmp/sqltrace-finder-XXXXXX", why[512];
	struct sqlite_found f;
	unsigned char *data, *at = NULL;
	struct stat st;
	bool shim;
	size_t i;
	int fd;

	if (!target_path("go-puresql-stripped", src, sizeof(src)))
		SKIP("the pure-Go test targets are not built (make tests-build)");
	ASSERT_EQ_INT(stat(src, &st), 0);
	data = malloc((size_t)st.st_size);
	ASSERT_TRUE(data != NULL);
	fd = open(src, O_RDONLY);
	ASSERT_TRUE(fd >= 0 && read(fd, data, (size_t)st.st_size) == st.st_size);
	close(fd);
	for (i = 0; !at && i + 48 < (size_t)st.st_size; i++)
		if (memcmp(data + i, magic, sizeof(magic) - 1) == 0)
			at = data + i;
	ASSERT_TRUE(at && memcmp(at + 33, "go1.", 4) == 0);
	for (i = 0; i < at[32]; i++)  /* the version string, its length kept */
		at[33 + i] = i < 8 ? (unsigned char)"go1.99.0"[i] : '.';
	fd = mkstemp(dst);
	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(write(fd, data, (size_t)st.st_size) == st.st_size);
	close(fd);
	free(data);
	i = (size_t)ask_file(dst, &f, &shim, why, sizeof(why));
	unlink(dst);
	ASSERT_EQ_INT(i, 0);
	ASSERT_EQ_INT(f.layer, FOUND_REFUSED);
	ASSERT_EQ_INT(f.refused, -ENOTSUP);
	printf("    refused: %s\n", f.why);
	ASSERT_TRUE(strstr(f.why, "go1.99") && strstr(f.why, "not in this tool's table"));
	find__release(&f);
	return true;
}

static bool test_no_sqlite(void)
{
	struct sqlite_found f;
	char why[512];
	bool shim;

	/* a C program with no SQLite: not Go either, the C finders' reason */
	ASSERT_TRUE(ask_file("/bin/true", &f, &shim, why, sizeof(why)) < 0);
	ASSERT_EQ_INT(f.layer, FOUND_NONE);
	ASSERT_TRUE(strncmp(why, "/bin/true: ", 11) == 0);
	ASSERT_TRUE(f.c.path == NULL);
	ASSERT_EQ_INT(ask_file("/tmp", &f, &shim, why, sizeof(why)), -EINVAL);
	ASSERT_EQ_STR(why, "/tmp: not a regular file");
	ASSERT_TRUE(ask_file("/nonexistent-sqltrace", &f, &shim, why, sizeof(why)) == -ENOENT);
	return true;
}

/* Runs test target path (one argument: arg, or none), until it says
 * "ready PID". Returns its pid, or -1. */
static pid_t start(const char *path, const char *arg)
{
	char line[64] = "";
	int in[2], out[2];
	pid_t pid;
	ssize_t k;

	if (pipe(in) != 0 || pipe(out) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(path, path, arg, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	k = pid > 0 ? read(out[0], line, sizeof(line) - 1) : -1;
	close(out[0]);  /* its stdin stays open (leaked to the end): it waits */
	if (k <= 0 || strncmp(line, "ready", 5) != 0) {
		if (pid > 0)
			kill(pid, SIGKILL);
		return -1;
	}
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static bool skip_all(void *ctx, uint32_t maj, uint32_t min, uint64_t ino)
{
	(void)ctx, (void)maj, (void)min, (void)ino;
	return true;
}

/* Running programs: the executable is answered by the C finders (SQLite
 * linked in) or by the Go finder (a pure-Go program), as in_exe, probed
 * through its map_files link; files skipped are not looked at, and why
 * then says nothing answered. */
static bool test_process(void)
{
	static const struct { const char *name, *arg; enum found_layer layer; } cases[] = {
		{ "static_errors", NULL, FOUND_C },
		{ "go-puresql-stripped", "/dev/null", FOUND_GO_SQL },
	};
	struct sqlite_found *v = NULL;
	char path[300], real[4096], why[2048];
	size_t n = 0, i, k, hits, answered;
	pid_t pid;
	int e;

	for (k = 0; k < 2; k++) {
		if (!target_path(cases[k].name, path, sizeof(path)) || !realpath(path, real))
			SKIP("the test targets are not built (make tests-build)");
		pid = start(path, cases[k].arg);
		ASSERT_TRUE(pid > 0);
		e = find__process(pid, NULL, NULL, &v, &n, NULL, NULL, why, sizeof(why));
		if (e) {
			stop(pid);
			ASSERT_EQ_INT(e, 0);
		}
		for (i = hits = 0; i < n; i++) {
			printf("    %s: layer %d, finder %s, through %s\n", v[i].c.path, v[i].layer, v[i].finder,
			       v[i].c.open_path);
			if (v[i].layer == cases[k].layer && v[i].c.in_exe && strcmp(v[i].c.path, real) == 0 &&
			    strstr(v[i].c.open_path, "/map_files/"))
				hits++;
		}
		find__free(v, n);
		answered = n;
		e = find__process(pid, skip_all, NULL, &v, &n, NULL, NULL, why, sizeof(why));
		stop(pid);
		ASSERT_EQ_INT(hits, 1);
		ASSERT_EQ_INT(answered, 1);  /* only its executable */
		ASSERT_EQ_INT(e, 0);
		ASSERT_EQ_INT(n, 0);
		ASSERT_TRUE(strncmp(why, "no mapped libsqlite3", 20) == 0);
		find__free(v, n);
	}
	ASSERT_TRUE(find__process(-5, NULL, NULL, &v, &n, NULL, NULL, why, sizeof(why)) < 0);
	return true;
}

int main(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";

	snprintf(targets, sizeof(targets), "%s/targets", build);
	RUN(test_c_program);
	RUN(test_go_with_c_sqlite);
	RUN(test_pure_go);
	RUN(test_unknown_go_release_refused);
	RUN(test_no_sqlite);
	RUN(test_process);
	return harness_done();
}
