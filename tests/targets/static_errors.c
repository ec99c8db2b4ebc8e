/* static_errors.c — test target with SQLite linked into the executable
 * (Debian's libsqlite3.a, tests/module.mk): another build than the
 * tracer's libsqlite3, whose failing statements must be reported with
 * SQLite's own message. After "ready PID" and a line on stdin it runs a
 * constraint failure (a step), a syntax error (a prepare) and a SELECT of
 * two rows, printing "err1 MESSAGE" and "err2 MESSAGE" with what
 * sqlite3_errmsg() returned, then "done" and waits for a line. */
#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

static int fail(sqlite3 *db, const char *what)
{
	fprintf(stderr, "static_errors: %s: %s\n", what, sqlite3_errmsg(db));
	return 1;
}

int main(void)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	char line[16];
	int rc;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db, "CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT);"
			     "INSERT INTO items VALUES (1, 'a'), (2, 'b')", NULL, NULL, NULL) != SQLITE_OK)
		return fail(db, "setup");
	printf("ready %d\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	if (sqlite3_prepare_v2(db, "INSERT INTO items(id, v) VALUES (1, 'dup')", -1, &st, NULL) != SQLITE_OK)
		return fail(db, "prepare insert");
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return fail(db, "the duplicate was inserted");
	printf("err1 %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELEC id FROM items", -1, &st, NULL) == SQLITE_OK)
		return fail(db, "bad SQL prepared");
	printf("err2 %s\n", sqlite3_errmsg(db));
	if (sqlite3_prepare_v2(db, "SELECT id, v FROM items ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return fail(db, "prepare select");
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	printf("done\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	sqlite3_close(db);
	return 0;
}
