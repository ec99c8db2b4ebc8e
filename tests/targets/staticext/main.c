/* main.c — with ext.c and Debian's libsqlite3.a, the target of
 * test_targets.py's static-extension test: SQLite linked statically, an
 * extension's entry point placed before this code. Protocol as
 * script_target: "ready PID", a line, the statements, "done", a line. */
#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

int sqlite3_halve_init(sqlite3 *db, char **err, const void *api);

__attribute__((noinline)) static void run_queries(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT halve(10) AS static_ext", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			printf("row %g\n", sqlite3_column_double(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_exec(db, "CREATE TABLE static_exec(x)", 0, 0, 0);
}

int main(void)
{
	sqlite3 *db = NULL;
	char line[16];

	sqlite3_auto_extension((void (*)(void))sqlite3_halve_init);
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		return 1;
	printf("ready %d\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	run_queries(db);
	printf("done\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	sqlite3_close(db);
	return 0;
}
