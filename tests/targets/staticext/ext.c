/* ext.c — a statically linked SQLite extension, named as SQLite documents
 * for sqlite3_auto_extension (sqlite3_<name>_init), linked before the
 * program's own code (see main.c): SQLite's code range must not stretch
 * over the program's. */
#include <sqlite3.h>

static void halve(sqlite3_context *c, int n, sqlite3_value **v)
{
	(void)n;
	sqlite3_result_double(c, sqlite3_value_double(v[0]) / 2);
}

int sqlite3_halve_init(sqlite3 *db, char **err, const void *api);

int sqlite3_halve_init(sqlite3 *db, char **err, const void *api)
{
	(void)err; (void)api;
	return sqlite3_create_function(db, "halve", 1, SQLITE_UTF8, 0, halve, 0, 0);
}
