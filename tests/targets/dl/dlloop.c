/* dlloop.c — loads and unloads libsqlite3 with dlopen/dlclose in a loop,
 * running one statement each time (not linked with SQLite: every dlopen
 * is a load the tracer stops the process for). Usage: dlloop N US: N
 * rounds, US microseconds of sleep between them; prints "rounds N" at the
 * end. For test_late_loads.py. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000, us = argc > 2 ? atoi(argv[2]) : 0, i;

	for (i = 0; i < n; i++) {
		void *h = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL), *db = NULL;
		int (*op)(const char *, void **);
		int (*ex)(void *, const char *, void *, void *, char **);
		int (*cl)(void *);
		char q[64];

		if (!h) {
			fprintf(stderr, "dlloop: %s\n", dlerror());
			return 1;
		}
		op = (int (*)(const char *, void **))dlsym(h, "sqlite3_open");
		ex = (int (*)(void *, const char *, void *, void *, char **))dlsym(h, "sqlite3_exec");
		cl = (int (*)(void *))dlsym(h, "sqlite3_close");
		if (!op || !ex || !cl || op(":memory:", &db) != 0)
			return 1;
		snprintf(q, sizeof(q), "SELECT %d", i);
		ex(db, q, NULL, NULL, NULL);
		cl(db);
		dlclose(h);
		if (us)
			usleep((useconds_t)us);
	}
	printf("rounds %d\n", n);
	return 0;
}
