/* layout_check.c — test program: the offsets user/find/layout_decode.c decodes
 * from a file (default this program's own executable) against those
 * user/find/layout.c calibrates by running the SQLite this program is linked
 * with. Linked statically with Debian's libsqlite3.a (tests/module.mk)
 * and, by tests/e2e/test_layout_decode.py, with the SQLite better-sqlite3
 * builds (as it builds it, and unoptimised), so the file decoded is that
 * very build.
 *   layout_check [--partial] [FILE]
 * Prints one line per offset ("name calibrated decoded", -1: not decoded)
 * and exits 0 when each decoded offset equals its calibration and (without
 * --partial) all were decoded; 1 otherwise. */
#include <stdio.h>
#include <string.h>
#include <sqlite3.h>

#include "elfsym.h"
#include "layout.h"
#include "layout_decode.h"

static int bad, partial;

static void cmp(const char *name, int calibrated, int decoded)
{
	printf("%s %d %d\n", name, calibrated, decoded);
	if ((decoded < 0 && !partial) || (decoded >= 0 && calibrated != decoded))
		bad = 1;
}

int main(int argc, char **argv)
{
	const char *path = "/proc/self/exe";
	struct st_lib_cfg c;
	const unsigned char *id;
	int idlen, adb = -1, zf = -1, i;
	dev_t dev;
	ino_t ino;
	struct elf_file *ef;
	struct layout_decoded d;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--partial") == 0)
			partial = 1;
		else
			path = argv[i];
	}
	ef = elf_file__open(path);

	if (!ef) {
		perror(path);
		return 1;
	}
	layout_decode__elf(ef, ef, &d);
	elf_file__close(ef);
	if (layout__self(&c, &id, &idlen, &dev, &ino) != 0 || layout__self_dbfile(&adb, &zf) != 0)
		bad = 1;
	printf("version %d %d\n", sqlite3_libversion_number(), d.version);
	bad |= d.version != sqlite3_libversion_number();
	cmp("zSql", c.vdbe_zsql_off, d.cfg.vdbe_zsql_off);
	cmp("db", c.vdbe_db_off, d.cfg.vdbe_db_off);
	cmp("pErr", c.db_perr_off, d.cfg.db_perr_off);
	cmp("Mem.z", c.mem_z_off, d.cfg.mem_z_off);
	cmp("state", c.vdbe_state_off, d.cfg.vdbe_state_off);
	/* the values only mean something with the byte */
	cmp("state_ready", c.state_ready, d.cfg.vdbe_state_off < 0 ? -1 : d.cfg.state_ready);
	cmp("state_run", c.state_run, d.cfg.vdbe_state_off < 0 ? -1 : d.cfg.state_run);
	cmp("state_halt", c.state_halt, d.cfg.vdbe_state_off < 0 ? -1 : d.cfg.state_halt);
	cmp("rc", c.vdbe_rc_off, d.cfg.vdbe_rc_off);
	cmp("zErrMsg", c.vdbe_zerrmsg_off, d.cfg.vdbe_zerrmsg_off);
	cmp("pParse", c.db_pparse_off, d.cfg.db_pparse_off);
	cmp("aDb", adb, d.cfg.db_adb_off);
	cmp("Pager.zFilename", zf, d.cfg.pager_zfile_off);
	printf("missing: %s\n", d.missing);
	return bad;
}
