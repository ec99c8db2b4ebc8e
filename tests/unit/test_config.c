/* test_config.c — unit tests of the config files (user/config.c: parsing,
 * the safe load, placing the settings before the command line, naming the
 * file and line of a bad setting) and of reading a cgroup's processes
 * (user/attach/cgroup.c) on fixture text and directories. No root needed. */
#include "harness.h"
#include "cgroup.h"
#include "config.h"
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_text(const char *text, struct config *c, char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int rc;

	memset(c, 0, sizeof(*c));
	if (!f)
		return -ENOMEM;
	rc = config__parse(f, "t.conf", c, err, errlen);
	fclose(f);
	return rc;
}

static bool test_parse_settings(void)
{
	struct config c;
	char err[512];

	ASSERT_EQ_INT(parse_text("# comment\n\n  output = /var/lib/x.db  \r\nquiet\n"
				 "remote=\"https://h/p\"\nname = \"  a b \"\nslow = 1s # not a comment\n",
				 &c, err, sizeof(err)), 0);
	ASSERT_EQ_INT(c.argc, 5);
	ASSERT_EQ_STR(c.argv[0], "--output=/var/lib/x.db");
	ASSERT_EQ_STR(c.argv[1], "--quiet");
	ASSERT_EQ_STR(c.argv[2], "--remote=https://h/p");
	ASSERT_EQ_STR(c.argv[3], "--name=  a b ");
	ASSERT_EQ_STR(c.argv[4], "--slow=1s # not a comment");
	ASSERT_EQ_INT(c.line[0], 3);
	ASSERT_EQ_INT(c.line[4], 7);
	ASSERT_EQ_STR(c.file[2], "t.conf");
	ASSERT_TRUE(c.argv[5] == NULL);
	config__free(&c);
	return true;
}

static bool test_parse_errors_name_file_and_line(void)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "quiet\nfoo bar\n", "t.conf:2: foo: expected '=' after the name" },
		{ "output =\n", "t.conf:1: output: empty value" },
		{ "output = \"\"\n", "t.conf:1: output: empty value" },
		{ "\n--output = x\n", "t.conf:2: expected `name = value`" },
		{ "= x\n", "t.conf:1: expected `name = value`" },
		{ "config = /etc/x.conf\n", "t.conf:1: config cannot be set" },
		{ "help\n", "t.conf:1: help cannot be set" },
		{ "Output = x\n", "t.conf:1: expected `name = value`" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config c;
		char err[512] = "";

		ASSERT_EQ_INT(parse_text(cases[i].text, &c, err, sizeof(err)), -EINVAL);
		if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
			printf("    case %zu: got \"%s\", want \"%s...\"\n", i, err, cases[i].want);
			return false;
		}
		config__free(&c);
	}
	{
		struct config c;
		char err[512] = "", nul[] = "quiet\nout\0put = x\n";
		FILE *f = fmemopen(nul, sizeof(nul) - 1, "r");

		memset(&c, 0, sizeof(c));
		ASSERT_EQ_INT(config__parse(f, "t.conf", &c, err, sizeof(err)), -EINVAL);
		fclose(f);
		ASSERT_EQ_STR(err, "t.conf:2: NUL byte in the line");
		config__free(&c);
	}
	return true;
}

static char dir[64];

static bool write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode) == 0;
}

static bool test_expand_puts_files_before_command_line(void)
{
	char a[128], b[128], err[512];
	char *argv[] = { "sqltrace-bpf", "--config", a, "--config=", "-p", "7", "--slow", "2s", NULL };
	struct config c;
	struct options o;

	snprintf(a, sizeof(a), "%s/a.conf", dir);
	snprintf(b, sizeof(b), "%s/b.conf", dir);
	argv[3] = malloc(strlen(b) + 10);
	ASSERT_TRUE(argv[3]);
	sprintf(argv[3], "--config=%s", b);
	ASSERT_TRUE(write_file(a, "slow = 1s\nmin-duration = 5ms\n", 0644));
	ASSERT_TRUE(write_file(b, "no-store\nmin-duration = 7ms\n", 0600));
	ASSERT_EQ_INT(config__expand(8, argv, &c, err, sizeof(err)), 0);
	ASSERT_EQ_INT(c.argc, 9);
	ASSERT_EQ_STR(c.argv[1], "--slow=1s");
	ASSERT_EQ_STR(c.argv[3], "--no-store");
	ASSERT_EQ_STR(c.argv[5], "-p");
	ASSERT_TRUE(c.file[5] == NULL);
	ASSERT_EQ_INT(options__parse(c.argc, c.argv, &o, err, sizeof(err)), 0);
	ASSERT_EQ_INT(o.slow_us, 2000000);           /* the command line wins */
	ASSERT_EQ_INT(o.min_duration_us, 7000);      /* the later file wins */
	ASSERT_TRUE(o.no_store);
	ASSERT_EQ_INT(o.npids, 1);
	config__free(&c);
	free(argv[3]);
	return true;
}

static bool test_load_refuses_writable_by_others(void)
{
	char a[128], err[512];
	struct config c;

	snprintf(a, sizeof(a), "%s/w.conf", dir);
	ASSERT_TRUE(write_file(a, "quiet\n", 0666));
	memset(&c, 0, sizeof(c));
	ASSERT_EQ_INT(config__load(a, &c, err, sizeof(err)), -EPERM);
	ASSERT_TRUE(strstr(err, "writable by group or others") != NULL);
	ASSERT_TRUE(strncmp(err, "cannot use config file ", 23) == 0);
	ASSERT_EQ_INT(c.argc, 0);
	snprintf(a, sizeof(a), "%s/missing.conf", dir);
	ASSERT_EQ_INT(config__load(a, &c, err, sizeof(err)), -ENOENT);
	ASSERT_TRUE(strstr(err, "missing.conf") != NULL);
	config__free(&c);
	{
		/* "-FILE": skipped when missing, read (and checked) when there */
		char opt[160], w[140];
		char *argv[] = { "sqltrace-bpf", "--config", opt, "-p", "1", NULL };

		snprintf(opt, sizeof(opt), "-%s", a);
		ASSERT_EQ_INT(config__expand(5, argv, &c, err, sizeof(err)), 0);
		ASSERT_EQ_INT(c.argc, 3);
		config__free(&c);
		snprintf(w, sizeof(w), "%s/w.conf", dir);
		snprintf(opt, sizeof(opt), "-%s", w);
		ASSERT_EQ_INT(config__expand(5, argv, &c, err, sizeof(err)), -EPERM);
	}
	{
		char *argv[] = { "sqltrace-bpf", "--config", a, "ingest", "-o", "x.db", NULL };

		snprintf(a, sizeof(a), "%s/i.conf", dir);
		ASSERT_TRUE(write_file(a, "quiet\n", 0644));
		ASSERT_EQ_INT(config__expand(6, argv, &c, err, sizeof(err)), -EINVAL);
		ASSERT_TRUE(strstr(err, "ingest") != NULL);
	}
	return true;
}

static int trial(int argc, char **argv, char *err, size_t errlen)
{
	struct options o;
	int rc = options__parse(argc, argv, &o, err, errlen);

	return rc < 0 ? rc : 0;
}

static bool test_blame_names_the_line(void)
{
	char a[128], err[512];
	char *argv[] = { "sqltrace-bpf", "--config", a, "-p", "1", NULL };
	struct config c;
	struct options o;

	snprintf(a, sizeof(a), "%s/bad.conf", dir);
	ASSERT_TRUE(write_file(a, "# x\nquiet\nslow = soon\n", 0644));
	ASSERT_EQ_INT(config__expand(5, argv, &c, err, sizeof(err)), 0);
	ASSERT_TRUE(options__parse(c.argc, c.argv, &o, err, sizeof(err)) < 0);
	config__blame(&c, trial, err, sizeof(err));
	ASSERT_TRUE(strstr(err, "/bad.conf:3: invalid --slow 'soon'") != NULL);
	config__free(&c);
	/* an unknown name, and a conflict between lines (not one line's fault) */
	ASSERT_TRUE(write_file(a, "frobnicate = 1\n", 0644));
	ASSERT_EQ_INT(config__expand(5, argv, &c, err, sizeof(err)), 0);
	ASSERT_TRUE(options__parse(c.argc, c.argv, &o, err, sizeof(err)) < 0);
	config__blame(&c, trial, err, sizeof(err));
	ASSERT_TRUE(strstr(err, "/bad.conf:1: unknown option '--frobnicate=1'") != NULL);
	config__free(&c);
	ASSERT_TRUE(write_file(a, "no-store\noutput = x.db\n", 0644));
	ASSERT_EQ_INT(config__expand(5, argv, &c, err, sizeof(err)), 0);
	ASSERT_TRUE(options__parse(c.argc, c.argv, &o, err, sizeof(err)) < 0);
	config__blame(&c, trial, err, sizeof(err));
	ASSERT_EQ_STR(err, "--no-store and -o contradict each other");
	config__free(&c);
	return true;
}

static bool test_cgroup_mount_and_procs(void)
{
	static const char mi[] =
		"25 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
		"31 25 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n";
	static const char procs[] = "12\n\n-3\nabc\n4x\n2147483648\n77\n";
	char out[256], path[128];
	int *pids = NULL;
	size_t n = 0, cap = 0;
	FILE *f = fmemopen((void *)mi, sizeof(mi) - 1, "r");

	ASSERT_EQ_INT(cgroup__v2_mount(f, out, sizeof(out)), 0);
	fclose(f);
	ASSERT_EQ_STR(out, "/sys/fs/cgroup/unified");
	f = fmemopen((void *)mi, 60, "r");  /* the sysfs line only */
	ASSERT_EQ_INT(cgroup__v2_mount(f, out, sizeof(out)), -ENOENT);
	fclose(f);
	f = fmemopen((void *)procs, sizeof(procs) - 1, "r");
	ASSERT_EQ_INT(cgroup__parse_procs(f, &pids, &n, &cap), 0);
	fclose(f);
	ASSERT_EQ_INT(n, 2);
	ASSERT_EQ_INT(pids[0], 12);
	ASSERT_EQ_INT(pids[1], 77);
	free(pids);
	/* a tree of fixture "cgroups": the processes of every level */
	snprintf(path, sizeof(path), "%s/cg", dir);
	ASSERT_EQ_INT(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/cg/cgroup.procs", dir);
	ASSERT_TRUE(write_file(path, "5\n6\n", 0644));
	snprintf(path, sizeof(path), "%s/cg/sub", dir);
	ASSERT_EQ_INT(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/cg/sub/cgroup.procs", dir);
	ASSERT_TRUE(write_file(path, "9\n", 0644));
	snprintf(path, sizeof(path), "%s/cg", dir);
	ASSERT_EQ_INT(cgroup__pids(path, &pids, &n), 0);
	ASSERT_EQ_INT(n, 3);
	ASSERT_EQ_INT(pids[0] + pids[1] + pids[2], 20);
	free(pids);
	ASSERT_EQ_INT(cgroup__resolve(path, out, sizeof(out), (char[256]){0}, 256), 0);
	ASSERT_EQ_STR(out, path);
	snprintf(path, sizeof(path), "%s/gone", dir);
	ASSERT_EQ_INT(cgroup__pids(path, &pids, &n), -ENOENT);
	ASSERT_EQ_INT(n, 0);
	return true;
}

static bool test_cgroup_option(void)
{
	char err[512];
	struct options o;
	char *ok[] = { "sqltrace-bpf", "--cgroup", "system.slice/a.service", "--cgroup=/sys/fs/cgroup/b", NULL };
	char *with_b[] = { "sqltrace-bpf", "--cgroup", "x", "-b", "/usr/bin/sqlite3", NULL };
	char *late[] = { "sqltrace-bpf", "-p", "1", "--config", "/etc/sqltrace/x.conf", NULL };
	char *empty[] = { "sqltrace-bpf", "--cgroup", "", NULL };

	ASSERT_EQ_INT(options__parse(4, ok, &o, err, sizeof(err)), 0);
	ASSERT_EQ_INT(o.ncgroups, 2);
	ASSERT_EQ_STR(o.cgroups[0], "system.slice/a.service");
	ASSERT_EQ_STR(o.cgroups[1], "/sys/fs/cgroup/b");
	ASSERT_EQ_INT(options__parse(5, with_b, &o, err, sizeof(err)), -EINVAL);
	ASSERT_TRUE(strstr(err, "--cgroup and -b cannot be combined") != NULL);
	ASSERT_EQ_INT(options__parse(5, late, &o, err, sizeof(err)), -EINVAL);
	ASSERT_EQ_STR(err, "--config must come before every other option");
	ASSERT_EQ_INT(options__parse(3, empty, &o, err, sizeof(err)), -EINVAL);
	return true;
}

int main(void)
{
	harness_skip_reason = "";
	snprintf(dir, sizeof(dir), "/tmp/test_config.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	chmod(dir, 0755);
	RUN(test_parse_settings);
	RUN(test_parse_errors_name_file_and_line);
	RUN(test_expand_puts_files_before_command_line);
	RUN(test_load_refuses_writable_by_others);
	RUN(test_blame_names_the_line);
	RUN(test_cgroup_mount_and_procs);
	RUN(test_cgroup_option);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("    cannot remove %s\n", dir);
	}
	return harness_done();
}
