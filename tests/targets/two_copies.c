/* two_copies.c — test target with two copies of SQLite in one process: the
 * system libsqlite3 it links, and a second file (a copy of the library at
 * another path, given as argv[1]) loaded with dlopen(RTLD_LOCAL |
 * RTLD_DEEPBIND). Runs one statement through each, so a tracer must probe
 * both and say which one each entry came from.
 * Protocol: "ready PID", a line on stdin, the two statements, "done",
 * a line on stdin. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*open_fn)(const char *, sqlite3 **);
typedef int (*exec_fn)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *, char **);

int main(int argc, char **argv)
{
	sqlite3 *db1, *db2;
	void *h;
	open_fn open2;
	exec_fn exec2;
	sqlite3_stmt *st;
	char line[16];

	if (argc < 2) {
		fprintf(stderr, "usage: two_copies PATH-TO-A-COPY-OF-LIBSQLITE3\n");
		return 2;
	}
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	if (!h) {
		fprintf(stderr, "two_copies: %s\n", dlerror());
		return 1;
	}
	open2 = (open_fn)dlsym(h, "sqlite3_open");
	exec2 = (exec_fn)dlsym(h, "sqlite3_exec");
	if (!open2 || !exec2 || sqlite3_open(":memory:", &db1) != SQLITE_OK || open2(":memory:", &db2) != SQLITE_OK)
		return 1;
	printf("ready %d\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	if (sqlite3_prepare_v2(db1, "SELECT 'from-linked-copy'", -1, &st, NULL) != SQLITE_OK)
		return 1;
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	if (exec2(db2, "SELECT 'from-dlopened-copy'", NULL, NULL, NULL) != SQLITE_OK)
		return 1;
	printf("done\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	return 0;
}
