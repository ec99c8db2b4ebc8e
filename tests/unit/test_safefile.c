/* test_safefile.c — unit tests of the trusted-path resolution and file
 * checks (common/safefile.c): relative paths and "..", symbolic links
 * followed only where root or we put them, loops, untrusted directories
 * above the one asked for, and the checks of a file's owner, links and mode.
 * Each test works under its own mkdtemp() directory; the foreign-owner
 * cases need root (chown) and SKIP without it. */
#include "harness.h"
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[64];

static void path_of(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", top, rel);
}

static bool same_dir(int fd, const char *path)
{
	struct stat a, b;

	return fd >= 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

static bool test_relative_path_and_dotdot(void)
{
	char name[NAME_MAX + 1], real[PATH_MAX], why[512], cwd[PATH_MAX], sub[128], want[160];
	int fd;

	path_of(sub, sizeof(sub), "rel");
	ASSERT_EQ_INT(mkdir(sub, 0700), 0);
	ASSERT_TRUE(getcwd(cwd, sizeof(cwd)));
	ASSERT_EQ_INT(chdir(sub), 0);
	fd = safefile__open_parent("./x/../f.db", 0, name, sizeof(name), real, sizeof(real), why,
				   sizeof(why));
	ASSERT_EQ_INT(chdir(cwd), 0);
	/* "x" does not exist: the walk stops there */
	ASSERT_TRUE(fd < 0);
	ASSERT_EQ_INT(mkdir(strcat(strcpy(want, sub), "/x"), 0700), 0);
	ASSERT_EQ_INT(chdir(sub), 0);
	fd = safefile__open_parent("./x/../f.db", 0, name, sizeof(name), real, sizeof(real), why,
				   sizeof(why));
	ASSERT_EQ_INT(chdir(cwd), 0);
	if (fd < 0)
		printf("    %s\n", why);
	ASSERT_TRUE(same_dir(fd, sub));
	close(fd);
	ASSERT_EQ_STR(name, "f.db");
	snprintf(want, sizeof(want), "%s/f.db", sub);
	ASSERT_EQ_STR(real, want);
	return true;
}

static bool test_not_a_file_name(void)
{
	char name[NAME_MAX + 1], why[512], p[128];

	path_of(p, sizeof(p), "dir/");
	ASSERT_EQ_INT(safefile__open_parent(p, 0, name, sizeof(name), NULL, 0, why, sizeof(why)),
		      -EISDIR);
	path_of(p, sizeof(p), "..");
	ASSERT_EQ_INT(safefile__open_parent(p, 0, name, sizeof(name), NULL, 0, why, sizeof(why)),
		      -EISDIR);
	ASSERT_EQ_INT(safefile__open_dir("", 0, why, sizeof(why)), -EINVAL);
	return true;
}

static bool test_our_symlinks_followed_loops_refused(void)
{
	char real[128], link[128], a[128], b[128], p[160], why[512];
	int fd;

	path_of(real, sizeof(real), "real");
	path_of(link, sizeof(link), "link");
	ASSERT_EQ_INT(mkdir(real, 0700), 0);
	ASSERT_EQ_INT(symlink("real", link), 0);  /* relative target */
	fd = safefile__open_dir(link, 0, why, sizeof(why));
	ASSERT_TRUE(same_dir(fd, real));
	close(fd);
	path_of(a, sizeof(a), "loop-a");
	path_of(b, sizeof(b), "loop-b");
	ASSERT_EQ_INT(symlink(b, a), 0);
	ASSERT_EQ_INT(symlink(a, b), 0);
	ASSERT_EQ_INT(safefile__open_dir(a, 0, why, sizeof(why)), -ELOOP);
	/* a file where a directory is needed */
	snprintf(p, sizeof(p), "%s/file", real);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	ASSERT_EQ_INT(safefile__open_dir(p, 0, why, sizeof(why)), -ENOTDIR);
	return true;
}

static bool test_create_makes_0700(void)
{
	char p[128], why[512];
	struct stat st;
	int fd;

	path_of(p, sizeof(p), "c1/c2");
	ASSERT_TRUE(safefile__open_dir(p, 0, why, sizeof(why)) == -ENOENT);
	fd = safefile__open_dir(p, SAFEFILE_CREATE, why, sizeof(why));
	ASSERT_TRUE(fd >= 0);
	close(fd);
	ASSERT_EQ_INT(stat(p, &st), 0);
	ASSERT_EQ_INT(st.st_mode & 07777, 0700);
	return true;
}

static bool test_writable_dirs(void)
{
	char pub[128], sub[160], why[512];
	int fd;

	path_of(pub, sizeof(pub), "pub");
	snprintf(sub, sizeof(sub), "%s/sub", pub);
	ASSERT_EQ_INT(mkdir(pub, 0700), 0);
	ASSERT_EQ_INT(mkdir(sub, 0700), 0);
	ASSERT_EQ_INT(chmod(pub, 0777), 0);
	/* above the directory asked for, too */
	ASSERT_EQ_INT(safefile__open_dir(sub, 0, why, sizeof(why)), -EPERM);
	ASSERT_TRUE(strstr(why, pub) && strstr(why, "not sticky"));
	ASSERT_EQ_INT(chmod(pub, 01777), 0);
	fd = safefile__open_dir(sub, 0, why, sizeof(why));
	ASSERT_TRUE(fd >= 0);  /* sticky on the way: fine */
	close(fd);
	ASSERT_EQ_INT(safefile__open_dir(pub, 0, why, sizeof(why)), -EPERM);
	fd = safefile__open_dir(pub, SAFEFILE_STICKY, why, sizeof(why));
	ASSERT_TRUE(fd >= 0);
	close(fd);
	return true;
}

static bool test_foreign_owners(void)
{
	char nob[128], sub[160], st_dir[128], l[160], p[200], why[512], name[NAME_MAX + 1];
	struct stat st;

	if (geteuid() != 0)
		SKIP("needs root (chown)");
	path_of(nob, sizeof(nob), "nobodys");
	snprintf(sub, sizeof(sub), "%s/sub", nob);
	ASSERT_EQ_INT(mkdir(nob, 0755), 0);
	ASSERT_EQ_INT(mkdir(sub, 0700), 0);
	ASSERT_EQ_INT(chown(nob, 65534, 65534), 0);
	ASSERT_EQ_INT(safefile__open_dir(sub, 0, why, sizeof(why)), -EPERM);
	ASSERT_TRUE(strstr(why, nob) && strstr(why, "owned by uid 65534"));

	/* a link another user made in a sticky directory is not followed */
	path_of(st_dir, sizeof(st_dir), "sticky");
	ASSERT_EQ_INT(mkdir(st_dir, 01777), 0);
	ASSERT_EQ_INT(chmod(st_dir, 01777), 0);
	snprintf(l, sizeof(l), "%s/l", st_dir);
	ASSERT_EQ_INT(symlink(top, l), 0);
	ASSERT_EQ_INT(lchown(l, 65534, 65534), 0);
	snprintf(p, sizeof(p), "%s/x.db", l);
	ASSERT_EQ_INT(safefile__open_parent(p, 0, name, sizeof(name), NULL, 0, why, sizeof(why)),
		      -EPERM);
	ASSERT_TRUE(strstr(why, "symbolic link owned by uid 65534"));
	ASSERT_EQ_INT(lchown(l, 0, 0), 0);
	int fd = safefile__open_parent(p, 0, name, sizeof(name), NULL, 0, why, sizeof(why));
	ASSERT_TRUE(same_dir(fd, top));
	close(fd);

	/* files */
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0600;
	st.st_nlink = 1;
	st.st_uid = 65534;
	ASSERT_EQ_INT(safefile__check_file(&st, "f", SAFEFILE_ROOT_OK, why, sizeof(why)), -EPERM);
	ASSERT_TRUE(strstr(why, "owned by uid 65534, not by root or uid 0"));
	return true;
}

static bool test_check_file(void)
{
	struct stat st = { .st_mode = S_IFREG | 0600, .st_nlink = 1, .st_uid = geteuid() };
	char why[256];

	ASSERT_EQ_INT(safefile__check_file(&st, "f", SAFEFILE_SECRET, why, sizeof(why)), 0);
	st.st_mode = S_IFREG | 0640;
	ASSERT_EQ_INT(safefile__check_file(&st, "f", 0, why, sizeof(why)), 0);
	ASSERT_EQ_INT(safefile__check_file(&st, "f", SAFEFILE_SECRET, why, sizeof(why)), -EPERM);
	ASSERT_TRUE(strstr(why, "chmod 600 f"));
	st.st_mode = S_IFREG | 0602;
	ASSERT_EQ_INT(safefile__check_file(&st, "f", 0, why, sizeof(why)), -EPERM);
	ASSERT_TRUE(strstr(why, "writable by group or others"));
	st.st_mode = S_IFREG | 0600;
	st.st_nlink = 2;
	ASSERT_EQ_INT(safefile__check_file(&st, "f", 0, why, sizeof(why)), -EPERM);
	ASSERT_TRUE(strstr(why, "2 hard links"));
	st.st_nlink = 1;
	st.st_mode = S_IFIFO | 0600;
	ASSERT_EQ_INT(safefile__check_file(&st, "f", 0, why, sizeof(why)), -EPERM);
	ASSERT_TRUE(strstr(why, "not a regular file"));
	return true;
}

int main(void)
{
	char cmd[128];

	harness_skip_reason = "";
	strcpy(top, "/tmp/test_safefile.XXXXXX");
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_relative_path_and_dotdot);
	RUN(test_not_a_file_name);
	RUN(test_our_symlinks_followed_loops_refused);
	RUN(test_create_makes_0700);
	RUN(test_writable_dirs);
	RUN(test_foreign_owners);
	RUN(test_check_file);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	if (system(cmd) != 0)
		printf("cannot remove %s\n", top);
	return harness_done();
}
