/* test_elfsym.c — unit tests for user/elfsym, checked against binutils
 * (nm, readelf, strip) on Debian's libsqlite3 (dynsym only) and on small
 * executables compiled at test time (non-PIE, PIE, stripped copy); and
 * hostile files: one truncated by its owner while it is open, headers that
 * claim more than the file holds (issue 11).
 */
#include "harness.h"
#include "elfsym.h"
#include "procmaps.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <elf.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inroot.h"

static char tmpdir[64];
static char lib_path[4096];     /* the libsqlite3 this process has mapped */
static bool have_cc;            /* fixtures compiled */

/* ---- helpers ------------------------------------------------------------ */

/* Runs cmd and returns its whole stdout (malloc'd) or NULL. */
static char *run_capture(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char *out = NULL;
	size_t cap = 0, len = 0;

	if (!p)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			char *n = realloc(out, cap + 65536);
			if (!n)
				break;
			out = n;
			cap += 65536;
		}
		size_t r = fread(out + len, 1, cap - len - 1, p);
		if (r == 0)
			break;
		len += r;
	}
	if (out)
		out[len] = '\0';
	if (pclose(p) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* Looks name up in `nm [-D] -S --defined-only path`: address, size, type. */
static bool nm_lookup(const char *path, bool dynamic, const char *name,
		      uint64_t *addr, uint64_t *size, char *type)
{
	char cmd[4400];
	char *out, *line, *save = NULL;
	bool found = false;

	snprintf(cmd, sizeof(cmd), "nm %s -S --defined-only '%s' 2>/dev/null",
		 dynamic ? "-D" : "", path);
	out = run_capture(cmd);
	if (!out)
		return false;
	for (line = strtok_r(out, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		uint64_t a, s;
		char t, nm[512];
		if (sscanf(line, "%" SCNx64 " %" SCNx64 " %c %511s", &a, &s, &t, nm) == 4 &&
		    strcmp(nm, name) == 0) {
			*addr = a;
			*size = s;
			if (type)
				*type = t;
			found = true;
		}
	}
	free(out);
	return found;
}

/* File offset of vaddr from `readelf -lW` LOAD lines, computed apart from
 * the code under test. */
static bool readelf_offset(const char *path, uint64_t vaddr, uint64_t *off)
{
	char cmd[4400];
	char *out, *line, *save = NULL;
	bool found = false;

	snprintf(cmd, sizeof(cmd), "readelf -lW '%s'", path);
	out = run_capture(cmd);
	if (!out)
		return false;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		uint64_t o, va, pa, fsz, msz;
		if (sscanf(line, " LOAD 0x%" SCNx64 " 0x%" SCNx64 " 0x%" SCNx64 " 0x%" SCNx64
			   " 0x%" SCNx64, &o, &va, &pa, &fsz, &msz) == 5 &&
		    vaddr >= va && vaddr < va + fsz) {
			*off = vaddr - va + o;
			found = true;
		}
	}
	free(out);
	return found;
}

/* Build id as lowercase hex from `readelf -n`. */
static bool readelf_build_id(const char *path, char *hex, size_t len)
{
	char cmd[4400];
	char *out, *p;
	bool ok = false;

	snprintf(cmd, sizeof(cmd), "readelf -n '%s'", path);
	out = run_capture(cmd);
	if (!out)
		return false;
	p = strstr(out, "Build ID: ");
	if (p && sscanf(p + 10, "%127s", hex) == 1 && strlen(hex) < len)
		ok = true;
	free(out);
	return ok;
}

static void to_hex(const unsigned char *b, int n, char *hex)
{
	for (int i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", b[i]);
	hex[2 * n] = '\0';
}

static bool file_bytes(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	bool ok;
	if (fd < 0)
		return false;
	ok = pread(fd, buf, len, (off_t)off) == (ssize_t)len;
	close(fd);
	return ok;
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

static void fixture(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static const char prog_src[] =
	"#include <stdio.h>\n"
	"const char sqltrace_fixture_str[] = \"fixture-string-42\";\n"
	"char sqltrace_fixture_rw[32] = \"writable-data\";\n"
	"static int __attribute__((noinline, used)) sqltrace_static_fn(int x)\n"
	"{ return x * 3 + 1; }\n"
	"int sqltrace_global_fn(int x) { return sqltrace_static_fn(x) + 2; }\n"
	"int main(int argc, char **argv)\n"
	"{ (void)argv; printf(\"%d %s %s\\n\", sqltrace_global_fn(argc),\n"
	"  sqltrace_fixture_str, sqltrace_fixture_rw); return 0; }\n";

/* Compiles the fixtures into tmpdir: nopie, pie, stripped (a stripped copy
 * of nopie). Returns false when cc is missing. */
static bool build_fixtures(void)
{
	char src[128], cmd[1024];

	fixture(src, sizeof(src), "prog.c");
	if (!write_file(src, prog_src))
		return false;
	snprintf(cmd, sizeof(cmd),
		 "cd %s && cc -O1 -g0 -fno-pie -no-pie -Wl,--build-id=sha1 -o nopie prog.c && "
		 "cc -O1 -g0 -fPIE -pie -Wl,--build-id=sha1 -o pie prog.c && "
		 "strip -o stripped nopie", tmpdir);
	return system(cmd) == 0;
}

/* ---- tests on Debian's libsqlite3 --------------------------------------- */

static bool test_sqlite_dynsym(void)
{
	struct elf_file *ef;
	uint64_t va, sz, off, nva, nsz, noff;
	unsigned char a[64], b[64];

	ef = elf_file__open(lib_path);
	ASSERT_TRUE(ef != NULL);
	ASSERT_TRUE(!elf_file__has_symtab(ef));     /* Debian strips .symtab */
	ASSERT_TRUE(elf_file__is_dyn(ef));
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_step", &va, &sz), 0);
	ASSERT_TRUE(nm_lookup(lib_path, true, "sqlite3_step", &nva, &nsz, NULL));
	ASSERT_EQ_INT(va, nva);
	ASSERT_EQ_INT(sz, nsz);
	ASSERT_EQ_INT(elf_file__vaddr_to_offset(ef, va, &off), 0);
	ASSERT_TRUE(readelf_offset(lib_path, va, &noff));
	ASSERT_EQ_INT(off, noff);
	/* the bytes at that vaddr are the bytes at that file offset */
	ASSERT_EQ_INT(elf_file__read_vaddr(ef, va, a, sizeof(a)), sizeof(a));
	ASSERT_TRUE(file_bytes(lib_path, noff, b, sizeof(b)));
	ASSERT_TRUE(memcmp(a, b, sizeof(a)) == 0);

	/* internal functions are exported too (see issue 7) */
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3VdbeHalt", &va, NULL), 0);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_no_such_fn", &va, &sz), -ENOENT);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_version", &va, &sz), -ENOENT);
	ASSERT_EQ_INT(elf_file__find_object(ef, "sqlite3_version", &va, &sz), 0);
	ASSERT_EQ_INT(elf_file__vaddr_to_offset(ef, 0x7fffffff0000ULL, &off), -ENOENT);
	ASSERT_EQ_INT(elf_file__read_vaddr(ef, 0x7fffffff0000ULL, a, 4), -ENOENT);
	elf_file__close(ef);
	return true;
}

/* Every function nm -D lists (T) is found at nm's address. */
static bool test_sqlite_all_exports(void)
{
	char cmd[4400];
	char *out, *line, *save = NULL;
	struct elf_file *ef;
	int n = 0, bad = 0;

	ef = elf_file__open(lib_path);
	ASSERT_TRUE(ef != NULL);
	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", lib_path);
	out = run_capture(cmd);
	if (!out)
		elf_file__close(ef);
	ASSERT_TRUE(out != NULL);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		uint64_t a, va;
		char t, name[512];
		if (sscanf(line, "%" SCNx64 " %c %511s", &a, &t, name) != 3 || t != 'T')
			continue;
		n++;
		if (elf_file__find_func(ef, name, &va, NULL) != 0 || va != a) {
			if (bad++ < 5)
				printf("    mismatch: %s\n", name);
		}
	}
	free(out);
	elf_file__close(ef);
	printf("    %d exported functions checked\n", n);
	ASSERT_TRUE(n > 1000);
	ASSERT_EQ_INT(bad, 0);
	return true;
}

/* The address chain a uprobe relies on: symbol → file offset → runtime
 * address through this process's own mapping of the library. */
static bool test_sqlite_runtime_address(void)
{
	struct map_entry *v;
	size_t n;
	struct elf_file *ef;
	uint64_t va, off;
	void *fn = dlsym(RTLD_DEFAULT, "sqlite3_libversion");

	ASSERT_TRUE(fn != NULL);
	ASSERT_EQ_INT(procmaps__read_pid(getpid(), &v, &n), 0);
	ssize_t i = procmaps__find_addr(v, n, (uint64_t)(uintptr_t)fn);
	ASSERT_TRUE(i >= 0);
	ASSERT_TRUE(v[i].path != NULL);
	ef = elf_file__open(v[i].path);
	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqlite3_libversion", &va, NULL), 0);
	ASSERT_EQ_INT(elf_file__vaddr_to_offset(ef, va, &off), 0);
	ASSERT_EQ_INT(v[i].start + (off - v[i].offset), (uint64_t)(uintptr_t)fn);
	elf_file__close(ef);
	procmaps__free(v, n);
	return true;
}

static bool test_sqlite_version_string(void)
{
	struct elf_file *ef = elf_file__open(lib_path);
	char buf[64], tiny[4];

	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(elf_file__read_string_symbol(ef, "sqlite3_version", buf, sizeof(buf)), 0);
	ASSERT_EQ_STR(buf, sqlite3_libversion());
	printf("    sqlite3_version = \"%s\"\n", buf);
	ASSERT_EQ_INT(elf_file__read_string_symbol(ef, "sqlite3_version", tiny, sizeof(tiny)),
		      -ERANGE);
	ASSERT_EQ_INT(elf_file__read_string_symbol(ef, "no_such_object", buf, sizeof(buf)),
		      -ENOENT);
	elf_file__close(ef);
	return true;
}

static bool test_sqlite_build_id(void)
{
	struct elf_file *ef = elf_file__open(lib_path);
	unsigned char id[64], small[4];
	char hex[160], want[160];
	int n;

	ASSERT_TRUE(ef != NULL);
	n = elf_file__build_id(ef, id, sizeof(id));
	ASSERT_EQ_INT(n, 20);
	to_hex(id, n, hex);
	ASSERT_TRUE(readelf_build_id(lib_path, want, sizeof(want)));
	ASSERT_EQ_STR(hex, want);
	/* a short buffer gets a prefix, the return value is the full length */
	ASSERT_EQ_INT(elf_file__build_id(ef, small, sizeof(small)), 20);
	ASSERT_TRUE(memcmp(small, id, sizeof(small)) == 0);
	elf_file__close(ef);
	return true;
}

/* ---- tests on compiled fixtures ----------------------------------------- */

static bool check_exe(const char *name, bool want_dyn)
{
	char path[128], hex[160], want[160], s[64];
	struct elf_file *ef;
	uint64_t va, sz, off, nva, nsz, noff;
	unsigned char a[32], b[32], id[64];
	char t;

	fixture(path, sizeof(path), name);
	ef = elf_file__open(path);
	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(elf_file__is_dyn(ef), want_dyn);
	ASSERT_TRUE(elf_file__has_symtab(ef));

	/* a static function: only in .symtab */
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqltrace_static_fn", &va, &sz), 0);
	ASSERT_TRUE(nm_lookup(path, false, "sqltrace_static_fn", &nva, &nsz, &t));
	ASSERT_EQ_INT(t, 't');
	ASSERT_EQ_INT(va, nva);
	ASSERT_EQ_INT(sz, nsz);
	ASSERT_EQ_INT(elf_file__vaddr_to_offset(ef, va, &off), 0);
	ASSERT_TRUE(readelf_offset(path, va, &noff));
	ASSERT_EQ_INT(off, noff);
	if (!want_dyn)
		ASSERT_TRUE(va != off);  /* non-PIE: 0x40xxxx vs a small offset */
	ASSERT_EQ_INT(elf_file__read_vaddr(ef, va, a, sizeof(a)), sizeof(a));
	ASSERT_TRUE(file_bytes(path, noff, b, sizeof(b)));
	ASSERT_TRUE(memcmp(a, b, sizeof(a)) == 0);

	ASSERT_EQ_INT(elf_file__find_func(ef, "main", &va, NULL), 0);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqltrace_global_fn", &va, NULL), 0);
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqltrace_fixture_str", &va, NULL), -ENOENT);

	/* strings in .rodata and in .data (where vaddr != offset in a PIE) */
	ASSERT_EQ_INT(elf_file__read_string_symbol(ef, "sqltrace_fixture_str", s, sizeof(s)), 0);
	ASSERT_EQ_STR(s, "fixture-string-42");
	ASSERT_EQ_INT(elf_file__read_string_symbol(ef, "sqltrace_fixture_rw", s, sizeof(s)), 0);
	ASSERT_EQ_STR(s, "writable-data");
	ASSERT_EQ_INT(elf_file__find_object(ef, "sqltrace_fixture_rw", &va, &sz), 0);
	ASSERT_EQ_INT(sz, 32);
	ASSERT_EQ_INT(elf_file__vaddr_to_offset(ef, va, &off), 0);
	ASSERT_TRUE(readelf_offset(path, va, &noff));
	ASSERT_EQ_INT(off, noff);

	int n = elf_file__build_id(ef, id, sizeof(id));
	ASSERT_EQ_INT(n, 20);
	to_hex(id, n, hex);
	ASSERT_TRUE(readelf_build_id(path, want, sizeof(want)));
	ASSERT_EQ_STR(hex, want);
	elf_file__close(ef);
	return true;
}

static bool test_exe_nopie(void)
{
	if (!have_cc)
		SKIP("cc/strip not available to build fixtures");
	return check_exe("nopie", false);
}

static bool test_exe_pie(void)
{
	if (!have_cc)
		SKIP("cc/strip not available to build fixtures");
	return check_exe("pie", true);
}

static bool test_exe_stripped(void)
{
	char path[128], orig[128];
	struct elf_file *ef, *of;
	unsigned char id[64], oid[64];
	uint64_t va;

	if (!have_cc)
		SKIP("cc/strip not available to build fixtures");
	fixture(path, sizeof(path), "stripped");
	fixture(orig, sizeof(orig), "nopie");
	ef = elf_file__open(path);
	ASSERT_TRUE(ef != NULL);
	ASSERT_TRUE(!elf_file__has_symtab(ef));
	ASSERT_EQ_INT(elf_file__find_func(ef, "sqltrace_static_fn", &va, NULL), -ENOENT);
	ASSERT_EQ_INT(elf_file__find_func(ef, "main", &va, NULL), -ENOENT);
	/* dynamic imports are undefined, so not found either */
	ASSERT_EQ_INT(elf_file__find_func(ef, "printf", &va, NULL), -ENOENT);
	/* strip keeps the build id: the key to a debug file */
	of = elf_file__open(orig);
	ASSERT_TRUE(of != NULL);
	ASSERT_EQ_INT(elf_file__build_id(ef, id, sizeof(id)), 20);
	ASSERT_EQ_INT(elf_file__build_id(of, oid, sizeof(oid)), 20);
	ASSERT_TRUE(memcmp(id, oid, 20) == 0);
	elf_file__close(of);
	elf_file__close(ef);
	return true;
}

/* A fake root with /usr/lib/debug/.build-id/xx/yyyy.debug for the stripped
 * fixture: its relative path, opened inside that root. */
static bool test_debug_path(void)
{
	char path[128], root[128], dir[512], dbg[600], hex[64], cmd[1400];
	unsigned char id[20];
	struct elf_file *ef;

	if (!have_cc)
		SKIP("cc/strip not available to build fixtures");
	fixture(path, sizeof(path), "stripped");
	fixture(root, sizeof(root), "root");
	ef = elf_file__open(path);
	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(elf_file__build_id(ef, id, sizeof(id)), 20);
	to_hex(id, 20, hex);

	char rel[256], want[256];
	snprintf(want, sizeof(want), "usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
	ASSERT_EQ_INT(elf_file__debug_relpath(ef, rel, sizeof(rel)), 0);
	ASSERT_EQ_STR(rel, want);
	ASSERT_EQ_INT(elf_file__debug_relpath(ef, rel, 20), -ENAMETOOLONG);

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", root);
	ASSERT_EQ_INT(system(cmd), 0);
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ASSERT_TRUE(rootfd >= 0);
	ASSERT_EQ_INT(inroot__open(rootfd, rel), -ENOENT);

	snprintf(dir, sizeof(dir), "%s/usr/lib/debug/.build-id/%.2s", root, hex);
	snprintf(dbg, sizeof(dbg), "%s/%s.debug", dir, hex + 2);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s/nopie' '%s'", dir, tmpdir, dbg);
	ASSERT_EQ_INT(system(cmd), 0);
	int fd = inroot__open(rootfd, rel);
	ASSERT_TRUE(fd >= 0);
	close(rootfd);
	/* the debug file has the symbols the stripped file lost */
	struct elf_file *df = elf_file__open_fd(fd, dbg);
	uint64_t va;
	ASSERT_TRUE(df != NULL);
	ASSERT_EQ_STR(elf_file__path(df), dbg);
	ASSERT_EQ_INT(elf_file__find_func(df, "sqltrace_static_fn", &va, NULL), 0);
	elf_file__close(df);
	elf_file__close(ef);
	return true;
}

/* ---- files under an owner's control (issue 11) ---------------------------- */

/* Runs fn in a child process and gives how it ended: its exit code, or 128
 * + the signal that killed it (a SIGBUS is 135). */
static int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		{ int rc = fn(arg); fflush(stdout); _exit(rc); }
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Copies src to dst. */
static bool copy_file(const char *src, const char *dst)
{
	char cmd[8400];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
	return system(cmd) == 0;
}

/* Opens the file, lets its owner truncate it to 4 KiB (the ELF header
 * and program headers stay), then looks symbols up: an error, no SIGBUS.
 * Exit code 0 when every lookup failed cleanly, 1 when one found a symbol,
 * 2 when the open failed. */
static int truncate_then_lookup(void *arg)
{
	const char *path = arg;
	struct elf_file *ef = elf_file__open(path);
	unsigned char id[64];
	uint64_t va, sz;
	char rel[256];
	int bad = 0;

	if (!ef)
		return 2;
	if (truncate(path, 4096) != 0)
		return 3;
	bad |= elf_file__find_func(ef, "sqlite3_step", &va, &sz) == 0;
	bad |= elf_file__find_func(ef, "sqltrace_global_fn", &va, &sz) == 0;
	bad |= elf_file__find_object(ef, "sqltrace_fixture_str", &va, &sz) == 0;
	(void)elf_file__build_id(ef, id, sizeof(id));
	(void)elf_file__debug_relpath(ef, rel, sizeof(rel));
	(void)elf_file__has_symtab(ef);
	char buf[64];
	(void)elf_file__read_string_symbol(ef, "sqlite3_version", buf, sizeof(buf));
	elf_file__close(ef);
	return bad;
}

static bool test_truncated_while_open(void)
{
	char copy[128];

	/* libsqlite3 (.dynsym, big) and the fixture (.symtab) */
	fixture(copy, sizeof(copy), "trunc-lib.so");
	ASSERT_TRUE(copy_file(lib_path, copy));
	ASSERT_EQ_INT(in_child(truncate_then_lookup, copy), 0);
	if (!have_cc)
		SKIP("cc/strip not available to build fixtures");
	fixture(copy, sizeof(copy), "trunc-exe");
	char src[128];
	fixture(src, sizeof(src), "nopie");
	ASSERT_TRUE(copy_file(src, copy));
	ASSERT_EQ_INT(in_child(truncate_then_lookup, copy), 0);
	return true;
}

/* Sets the sh_size of the first section of type type in an ELF64 file.
 * Returns false when there is none. */
static bool patch_section_size(const char *path, uint32_t type, uint64_t size)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDWR);
	bool ok = false;

	if (fd < 0)
		return false;
	if (pread(fd, &eh, sizeof(eh), 0) == sizeof(eh)) {
		for (unsigned i = 0; i < eh.e_shnum && !ok; i++) {
			Elf64_Shdr sh;
			off_t at = (off_t)(eh.e_shoff + (uint64_t)i * eh.e_shentsize);

			if (pread(fd, &sh, sizeof(sh), at) != sizeof(sh) || sh.sh_type != type)
				continue;
			sh.sh_size = size;
			ok = pwrite(fd, &sh, sizeof(sh), at) == sizeof(sh);
		}
	}
	close(fd);
	return ok;
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* In a child whose address space is capped at what it uses plus 256 MiB:
 * lookups in a file whose .symtab header claims 100 million symbols (2.4
 * GB, in a file of a few KiB) fail as malformed (-EINVAL, so nothing was
 * allocated from the claim: -ENOMEM would say it tried), every time.
 * Exit code 0 when so. */
static int lookup_capped(void *arg)
{
	const char *path = arg;
	struct elf_file *ef = elf_file__open(path);
	struct rlimit rl;
	uint64_t va;
	int r1, r2;

	if (!ef)
		return 2;
#ifndef UNDER_ASAN
	/* current size from /proc/self/statm (pages), plus 256 MiB */
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld", &pages) != 1)
		return 4;
	fclose(f);
	rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (256u << 20);
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return 5;
#else
	(void)rl;   /* ASan reserves terabytes of shadow: no RLIMIT_AS */
#endif
	r1 = elf_file__find_func(ef, "sqltrace_global_fn", &va, NULL);
	r2 = elf_file__find_func(ef, "main", &va, NULL);
	elf_file__close(ef);
	if (r1 != -EINVAL || r2 != -EINVAL) {
		printf("    lookups gave %d and %d, want %d (malformed)\n", r1, r2, -EINVAL);
		return 1;
	}
	return 0;
}

static bool test_header_claims_huge_symtab(void)
{
	char copy[128], src[128];

	if (!have_cc)
		SKIP("cc/strip not available to build fixtures");
	fixture(src, sizeof(src), "nopie");
	fixture(copy, sizeof(copy), "huge-symtab");
	ASSERT_TRUE(copy_file(src, copy));
	ASSERT_TRUE(patch_section_size(copy, SHT_SYMTAB, 24ull * 100000000ull));
	ASSERT_EQ_INT(in_child(lookup_capped, copy), 0);
	/* a claim just past the end of the file, too */
	ASSERT_TRUE(copy_file(src, copy));
	struct stat st;
	ASSERT_EQ_INT(stat(copy, &st), 0);
	ASSERT_TRUE(patch_section_size(copy, SHT_SYMTAB, (uint64_t)st.st_size));
	ASSERT_EQ_INT(in_child(lookup_capped, copy), 0);
	return true;
}

/* inroot__open() resolves inside the directory it is given: an absolute
 * symlink and a ../ symlink both stay in it, and a file outside it (the
 * "host") is never reached. */
static bool test_inroot_symlinks(void)
{
	char root[128], host[128], path[256], cmd[1024], buf[64];
	int rootfd, fd;
	ssize_t n;

	fixture(root, sizeof(root), "ctr");
	fixture(host, sizeof(host), "host-secret");
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/etc' '%s/a/b' '%s/%s' && echo host > '%s' && "
		 "echo inside > '%s/etc/shadow' && echo inside-tmp > '%s/%s/host-secret'",
		 root, root, root, tmpdir, host, root, root, tmpdir);
	ASSERT_EQ_INT(system(cmd), 0);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ASSERT_TRUE(rootfd >= 0);
	/* absolute symlink to the host file's path */
	snprintf(path, sizeof(path), "%s/a/abs", root);
	ASSERT_EQ_INT(symlink(host, path), 0);
	/* ../ walking far above the root */
	snprintf(path, sizeof(path), "%s/a/b/up", root);
	snprintf(cmd, sizeof(cmd), "../../../../../../../../../..%s", host);
	ASSERT_EQ_INT(symlink(cmd, path), 0);
	/* absolute symlink to /etc/shadow: the root's own */
	snprintf(path, sizeof(path), "%s/a/shadow", root);
	ASSERT_EQ_INT(symlink("/etc/shadow", path), 0);
	/* a dangling absolute one */
	snprintf(path, sizeof(path), "%s/a/gone", root);
	ASSERT_EQ_INT(symlink("/nonexistent-in-root", path), 0);
	/* a magic link */
	snprintf(path, sizeof(path), "%s/a/magic", root);
	ASSERT_EQ_INT(symlink("/proc/self/root/etc/hostname", path), 0);

	static const struct { const char *p; const char *want; } cases[] = {
		{ "a/abs", "inside-tmp\n" }, { "/a/abs", "inside-tmp\n" },
		{ "a/b/up", "inside-tmp\n" }, { "a/shadow", "inside\n" },
		{ "../../../../etc/shadow", "inside\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fd = inroot__open(rootfd, cases[i].p);
		ASSERT_TRUE(fd >= 0);
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		ASSERT_TRUE(n > 0);
		buf[n] = '\0';
		ASSERT_EQ_STR(buf, cases[i].want);
	}
	ASSERT_EQ_INT(inroot__open(rootfd, "a/gone"), -ENOENT);
	/* no /proc inside this root: the link does not resolve (and a magic
	 * link would be refused with ELOOP) */
	fd = inroot__open(rootfd, "a/magic");
	ASSERT_TRUE(fd < 0);
	ASSERT_EQ_INT(inroot__open(rootfd, ""), -EINVAL);
	ASSERT_EQ_INT(inroot__open(-1, "a"), -EINVAL);
	close(rootfd);

	/* a real magic link inside a process's root: refused */
	rootfd = inroot__open_root(0);
	ASSERT_TRUE(rootfd >= 0);
	ASSERT_EQ_INT(inroot__open(rootfd, "/proc/self/exe"), -ELOOP);
	close(rootfd);
	return true;
}

/* elf_file__open(path) fails with errno want. */
static bool open_fails(const char *path, int want)
{
	struct elf_file *ef;
	bool failed;

	errno = 0;
	ef = elf_file__open(path);
	failed = ef == NULL;
	elf_file__close(ef);
	ASSERT_TRUE(failed);
	ASSERT_EQ_INT(errno, want);
	return true;
}

static bool test_open_errors(void)
{
	char path[128];

	if (!open_fails("/nonexistent/file", ENOENT))
		return false;
	fixture(path, sizeof(path), "text.txt");
	ASSERT_TRUE(write_file(path, "this is not an ELF file\n"));
	if (!open_fails(path, ENOEXEC))
		return false;
	fixture(path, sizeof(path), "empty");
	ASSERT_TRUE(write_file(path, ""));
	if (!open_fails(path, ENOEXEC))
		return false;
	/* an ar archive (Debian ships libsqlite3.a next to the .so) */
	if (access("/usr/lib/x86_64-linux-gnu/libsqlite3.a", R_OK) == 0 &&
	    !open_fails("/usr/lib/x86_64-linux-gnu/libsqlite3.a", ENOEXEC))
		return false;
	elf_file__close(NULL);
	return true;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A shared object with 100k functions (the size of a Go binary's .symtab):
 * the index is built once and lookups stay fast. */
static bool test_many_symbols(void)
{
	enum { NFUNC = 100000 };
	char src[128], so[128], cmd[512], name[32];
	struct elf_file *ef;
	uint64_t va, first_va = 0;
	FILE *f;

	if (!have_cc)
		SKIP("cc/strip not available to build fixtures");
	fixture(src, sizeof(src), "many.s");
	fixture(so, sizeof(so), "many.so");
	f = fopen(src, "w");
	ASSERT_TRUE(f != NULL);
	fprintf(f, "\t.text\n");
	for (int i = 0; i < NFUNC; i++)
		fprintf(f, "\t.globl fn_%d\n\t.type fn_%d,@function\nfn_%d:\n\tret\n"
			"\t.size fn_%d,1\n", i, i, i, i);
	ASSERT_EQ_INT(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "cc -shared -nostdlib -o '%s' '%s'", so, src);
	ASSERT_EQ_INT(system(cmd), 0);

	ef = elf_file__open(so);
	ASSERT_TRUE(ef != NULL);
	ASSERT_TRUE(elf_file__has_symtab(ef));
	double t0 = now_s();
	ASSERT_EQ_INT(elf_file__find_func(ef, "fn_0", &first_va, NULL), 0);
	double t1 = now_s();
	for (int i = 0; i < NFUNC; i++) {
		snprintf(name, sizeof(name), "fn_%d", i);
		if (elf_file__find_func(ef, name, &va, NULL) != 0 || va != first_va + (uint64_t)i) {
			printf("    lookup of %s failed\n", name);
			elf_file__close(ef);
			return false;
		}
	}
	double t2 = now_s();
	ASSERT_EQ_INT(elf_file__find_func(ef, "fn_100000", &va, NULL), -ENOENT);
	printf("    index of %d+ symbols built in %.1f ms; %d lookups in %.1f ms\n",
	       2 * NFUNC, (t1 - t0) * 1e3, NFUNC, (t2 - t1) * 1e3);
	/* generous bounds (ASan builds are slower): a linear scan per lookup
	 * would take minutes */
	ASSERT_TRUE(t2 - t1 < 5.0);
	elf_file__close(ef);
	return true;
}

/* The shim's USDT notes read with pread: each probe's sites as file
 * offsets with their is-enabled counter and argument spec; a copy cut short
 * by its owner gives an error, never a crash. */
static bool test_usdt_sites_of_the_shim(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char path[512], cut[] = "/tmp/sqltrace-usdt-XXXXXX";
	struct usdt_site s[8];
	struct elf_file *ef;
	int n, m, fd, in;
	char buf[65536];
	ssize_t r;

	snprintf(path, sizeof(path), "%s/shim/libsqltrace.so", build);
	ef = elf_file__open(path);
	if (!ef)
		SKIP("the shim is not built");
	n = elf_file__usdt_sites(ef, "sqltrace", "set_trace_id", s, 8);
	ASSERT_TRUE(n >= 1);
	ASSERT_TRUE(s[0].pc_off > 0 && s[0].sema_off > 0);
	ASSERT_TRUE(strchr(s[0].args, '@') != NULL);
	m = elf_file__usdt_sites(ef, "sqltrace", "clear_trace_id", s, 8);
	ASSERT_TRUE(m >= 1);
	ASSERT_EQ_INT(elf_file__usdt_sites(ef, "sqltrace", "no_such_probe", s, 8), -ENOENT);
	ASSERT_EQ_INT(elf_file__usdt_sites(ef, "other", "set_trace_id", s, 8), -ENOENT);
	elf_file__close(ef);
	/* The same file cut in the middle of its notes. */
	in = open(path, O_RDONLY);
	fd = mkstemp(cut);
	ASSERT_TRUE(in >= 0 && fd >= 0);
	while ((r = read(in, buf, sizeof(buf))) > 0)
		ASSERT_TRUE(write(fd, buf, (size_t)r) == r);
	close(in);
	ef = elf_file__open(cut);
	ASSERT_TRUE(ef != NULL);
	ASSERT_EQ_INT(ftruncate(fd, 0x3000), 0);
	n = elf_file__usdt_sites(ef, "sqltrace", "set_trace_id", s, 8);
	ASSERT_TRUE(n < 0 || n >= 1);  /* an error or what was read before: no crash */
	elf_file__close(ef);
	close(fd);
	unlink(cut);
	return true;
}

int main(void)
{
	struct map_entry *v;
	size_t n;
	char cmd[128];

	harness_skip_reason = "";   /* see test_procmaps.c */
	/* The libsqlite3 this binary is linked against, as mapped. */
	void *fn = dlsym(RTLD_DEFAULT, "sqlite3_libversion");
	if (fn && procmaps__read_pid(getpid(), &v, &n) == 0) {
		ssize_t i = procmaps__find_addr(v, n, (uint64_t)(uintptr_t)fn);
		if (i >= 0 && v[i].path)
			snprintf(lib_path, sizeof(lib_path), "%s", v[i].path);
		procmaps__free(v, n);
	}
	if (!lib_path[0])
		snprintf(lib_path, sizeof(lib_path), "/lib/x86_64-linux-gnu/libsqlite3.so.0");
	printf("    libsqlite3: %s\n", lib_path);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sqltrace-elfsym-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	have_cc = build_fixtures();

	RUN(test_sqlite_dynsym);
	RUN(test_sqlite_all_exports);
	RUN(test_sqlite_runtime_address);
	RUN(test_sqlite_version_string);
	RUN(test_sqlite_build_id);
	RUN(test_exe_nopie);
	RUN(test_exe_pie);
	RUN(test_exe_stripped);
	RUN(test_debug_path);
	RUN(test_open_errors);
	RUN(test_many_symbols);
	RUN(test_truncated_while_open);
	RUN(test_header_claims_huge_symtab);
	RUN(test_inroot_symlinks);
	RUN(test_usdt_sites_of_the_shim);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return harness_done();
}
