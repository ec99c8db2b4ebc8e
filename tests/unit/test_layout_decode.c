/* test_layout_decode.c — offsets decoded from SQLite's accessor functions
 * (user/find/layout_decode.c): hand-made code for each pattern (including
 * shapes that must find nothing), and Debian's libsqlite3, whose decoded
 * offsets must equal what user/find/layout.c calibrates by running it. */
#include <dlfcn.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "elfsym.h"
#include "layout.h"
#include "layout_decode.h"

/* Assembled from tests' own listings (as(1), then objdump -d); each
 * comment is the source. */
/* xor %eax,%eax; test %rdi,%rdi; je 1f; mov 0x30(%rdi),%rax; 1: ret */
static const uint8_t f_sql[] = { 0x31, 0xc0, 0x48, 0x85, 0xff, 0x74, 0x04, 0x48, 0x8b, 0x47, 0x30, 0xc3 };
/* mov 0x8(%rdi),%rax; ret */
static const uint8_t f_dbh[] = { 0x48, 0x8b, 0x47, 0x08, 0xc3 };
/* test %esi,%esi; je 1f; mov 0x10(%rdi),%rax; ret; 1: mov 0x18(%rdi),%rax; ret */
static const uint8_t f_two[] = { 0x85, 0xf6, 0x74, 0x05, 0x48, 0x8b, 0x47, 0x10, 0xc3, 0x48, 0x8b, 0x47, 0x18, 0xc3 };
/* mov 0x20(%rdi),%rax; ret */
static const uint8_t f_mutex[] = { 0x48, 0x8b, 0x47, 0x20, 0xc3 };
/* sqlite3_errmsg with sqlite3_value_text inlined: push %rbx; mov %rdi,%rbx;
 * mov 0x20(%rdi),%rdi; call; mov 0x100(%rbx),%rdx; xor %eax,%eax;
 * test %rdx,%rdx; je 1f; mov 0x8(%rdx),%rax; 1: mov %rax,%rsi;
 * mov 0x20(%rbx),%rdi; call; pop %rbx; ret */
static const uint8_t f_errmsg[] = { 0x53, 0x48, 0x89, 0xfb, 0x48, 0x8b, 0x7f, 0x20, 0xe8, 0x00, 0x00, 0x00, 0x00,
				    0x48, 0x8b, 0x93, 0x00, 0x01, 0x00, 0x00, 0x31, 0xc0, 0x48, 0x85, 0xd2, 0x74,
				    0x04, 0x48, 0x8b, 0x42, 0x08, 0x48, 0x89, 0xc6, 0x48, 0x8b, 0x7b, 0x20, 0xe8,
				    0x00, 0x00, 0x00, 0x00, 0x5b, 0xc3 };
/* two pointer fields passed to calls besides the mutex: push %rbx;
 * mov %rdi,%rbx; mov 0x100(%rdi),%rdi; call; mov 0x108(%rbx),%rdi; call;
 * pop %rbx; ret */
static const uint8_t f_errmsg2[] = { 0x53, 0x48, 0x89, 0xfb, 0x48, 0x8b, 0xbf, 0x00, 0x01, 0x00, 0x00, 0xe8, 0x00,
				     0x00, 0x00, 0x00, 0x48, 0x8b, 0xbb, 0x08, 0x01, 0x00, 0x00, 0xe8, 0x00, 0x00,
				     0x00, 0x00, 0x5b, 0xc3 };
/* test %rdi,%rdi; je 1f; movzwl 0x14(%rdi),%eax; and $0x202,%eax;
 * cmp $0x202,%eax; jne 2f; mov 0x8(%rdi),%rax; ret; 2: jmp; 1: xor %eax,%eax; ret */
static const uint8_t f_vtext[] = { 0x48, 0x85, 0xff, 0x74, 0x1a, 0x0f, 0xb7, 0x47, 0x14, 0x25, 0x02, 0x02,
				   0x00, 0x00, 0x3d, 0x02, 0x02, 0x00, 0x00, 0x75, 0x05, 0x48, 0x8b, 0x47,
				   0x08, 0xc3, 0xe9, 0x00, 0x00, 0x00, 0x00, 0x31, 0xc0, 0xc3 };
/* xor %eax,%eax; test %rdi,%rdi; je 1f; movzbl 0x9a(%rdi),%edx;
 * cmp $0x2,%dl; sete %al; 1: ret */
static const uint8_t f_busy[] = { 0x31, 0xc0, 0x48, 0x85, 0xff, 0x74, 0x0d, 0x0f, 0xb6, 0x97, 0x9a, 0x00, 0x00,
				  0x00, 0x80, 0xfa, 0x02, 0x0f, 0x94, 0xc0, 0xc3 };
/* xor %eax,%eax; cmpb $0x3,0x9a(%rdi); sete %al; ret */
static const uint8_t f_busy3[] = { 0x31, 0xc0, 0x80, 0xbf, 0x9a, 0x00, 0x00, 0x00, 0x03, 0x0f, 0x94, 0xc0, 0xc3 };
/* mov $3053002,%eax; ret */
static const uint8_t f_ver[] = { 0xb8, 0xca, 0x95, 0x2e, 0x00, 0xc3 };
/* mov $3039192,%eax; ret: a 3.39 build */
static const uint8_t f_ver39[] = { 0xb8, 0xd8, 0x5f, 0x2e, 0x00, 0xc3 };
/* sqlite3VdbeTransferError: push %r12; push %rbx; mov (%rdi),%rbx;
 * mov 0x40(%rdi),%r12d; cmpq $0,0x90(%rdi); je 1f; mov 0x90(%rdi),%rdx;
 * mov 0x100(%rbx),%rdi; mov $-1,%esi; call; 1: mov %r12d,0x50(%rbx);
 * mov %r12d,%eax; pop %rbx; pop %r12; ret */
static const uint8_t f_transfer[] = { 0x41, 0x54, 0x53, 0x48, 0x8b, 0x1f, 0x44, 0x8b, 0x67, 0x40, 0x48, 0x83,
				      0xbf, 0x90, 0x00, 0x00, 0x00, 0x00, 0x74, 0x18, 0x48, 0x8b, 0x97, 0x90,
				      0x00, 0x00, 0x00, 0x48, 0x8b, 0xbb, 0x00, 0x01, 0x00, 0x00, 0xbe, 0xff,
				      0xff, 0xff, 0xff, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x44, 0x89, 0x63, 0x50,
				      0x44, 0x89, 0xe0, 0x5b, 0x41, 0x5c, 0xc3 };
/* sqlite3ParseObjectInit(pParse, db): movq $0,0x8(%rdi); mov 0x128(%rsi),%rax;
 * mov %rax,0xf0(%rdi); mov %rdi,0x128(%rsi); mov %rsi,(%rdi); ret */
static const uint8_t f_parseinit[] = { 0x48, 0xc7, 0x47, 0x08, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x86, 0x28,
				       0x01, 0x00, 0x00, 0x48, 0x89, 0x87, 0xf0, 0x00, 0x00, 0x00, 0x48, 0x89,
				       0xbe, 0x28, 0x01, 0x00, 0x00, 0x48, 0x89, 0x37, 0xc3 };
/* sqlite3Prepare(db, ...) with a Parse on its stack: push %rbp; mov %rsp,%rbp;
 * push %rbx; sub $0x1b8,%rsp; mov %rdi,%rbx; lea -0x1c0(%rbp),%rsi;
 * mov 0x128(%rbx),%rax; mov %rbx,-0x1c0(%rbp); mov %rsi,0x128(%rbx);
 * mov %rsi,%rdi; call; add $0x1b8,%rsp; pop %rbx; pop %rbp; ret */
static const uint8_t f_prepare[] = { 0x55, 0x48, 0x89, 0xe5, 0x53, 0x48, 0x81, 0xec, 0xb8, 0x01, 0x00, 0x00, 0x48,
				     0x89, 0xfb, 0x48, 0x8d, 0xb5, 0x40, 0xfe, 0xff, 0xff, 0x48, 0x8b, 0x83, 0x28,
				     0x01, 0x00, 0x00, 0x48, 0x89, 0x9d, 0x40, 0xfe, 0xff, 0xff, 0x48, 0x89, 0xb3,
				     0x28, 0x01, 0x00, 0x00, 0x48, 0x89, 0xf7, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x48,
				     0x81, 0xc4, 0xb8, 0x01, 0x00, 0x00, 0x5b, 0x5d, 0xc3 };
/* sqlite3_db_filename inlined: mov 0x28(%rdi),%rax; movslq %esi,%rsi;
 * shl $5,%rsi; mov 0x8(%rax,%rsi,1),%rax; test %rax,%rax; je 1f;
 * mov 0x8(%rax),%rax; mov (%rax),%rax; mov 0xe0(%rax),%rax; 1: ret */
static const uint8_t f_dbfile[] = { 0x48, 0x8b, 0x47, 0x28, 0x48, 0x63, 0xf6, 0x48, 0xc1, 0xe6, 0x05, 0x48,
				    0x8b, 0x44, 0x30, 0x08, 0x48, 0x85, 0xc0, 0x74, 0x0e, 0x48, 0x8b, 0x40,
				    0x08, 0x48, 0x8b, 0x00, 0x48, 0x8b, 0x80, 0xe0, 0x00, 0x00, 0x00, 0xc3 };
/* ret */
static const uint8_t f_ret[] = { 0xc3 };
/* bytes that do not decode */
static const uint8_t f_bad[] = { 0x0f, 0x0b + 0x30, 0xff, 0xff, 0xff };

struct fn { const char *name; const uint8_t *code; size_t len; };
#define FN(n, a) { n, a, sizeof(a) }

static int table_fetch(void *ctx, const char *name, uint8_t **code, size_t *len, uint64_t *vaddr)
{
	const struct fn *t = ctx;

	for (; t->name; t++) {
		if (strcmp(t->name, name) != 0)
			continue;
		*code = malloc(t->len);
		if (!*code)
			return -ENOMEM;
		memcpy(*code, t->code, t->len);
		*len = t->len;
		*vaddr = 0x40000;
		return 0;
	}
	return -ENOENT;
}

static bool test_every_pattern(void)
{
	static const struct fn t[] = {
		FN("sqlite3_sql", f_sql), FN("sqlite3_db_handle", f_dbh), FN("sqlite3_db_mutex", f_mutex),
		FN("sqlite3_errmsg", f_errmsg), FN("sqlite3_value_text", f_vtext), FN("sqlite3_stmt_busy", f_busy),
		FN("sqlite3_libversion_number", f_ver), FN("sqlite3VdbeTransferError", f_transfer),
		FN("sqlite3ParseObjectInit", f_parseinit), FN("sqlite3Prepare", f_prepare),
		FN("sqlite3_db_filename", f_dbfile), { NULL, NULL, 0 },
	};
	struct layout_decoded d;

	ASSERT_EQ_INT(layout_decode__run(table_fetch, (void *)t, &d), LAYOUT_DECODE_FIELDS);
	ASSERT_EQ_INT(d.version, 3053002);
	ASSERT_EQ_INT(d.cfg.vdbe_zsql_off, 0x30);
	ASSERT_EQ_INT(d.cfg.vdbe_db_off, 0x8);
	ASSERT_EQ_INT(d.cfg.db_perr_off, 0x100);
	ASSERT_EQ_INT(d.cfg.mem_z_off, 0x8);
	ASSERT_EQ_INT(d.cfg.vdbe_state_off, 0x9a);
	ASSERT_EQ_INT(d.cfg.state_ready, 1);
	ASSERT_EQ_INT(d.cfg.state_run, 2);
	ASSERT_EQ_INT(d.cfg.state_halt, 3);
	ASSERT_EQ_INT(d.cfg.vdbe_rc_off, 0x40);
	ASSERT_EQ_INT(d.cfg.vdbe_zerrmsg_off, 0x90);
	ASSERT_EQ_INT(d.cfg.db_pparse_off, 0x128);
	ASSERT_EQ_INT(d.cfg.db_adb_off, 0x28);
	ASSERT_EQ_INT(d.cfg.pager_zfile_off, 0xe0);
	ASSERT_EQ_STR(d.missing, "");
	ASSERT_TRUE(strstr(d.found, "pErr=256") != NULL);
	return true;
}

/* Shapes with no single answer, or answers the version does not vouch
 * for, give nothing — and say why. */
static bool test_ambiguous_or_unvouched_give_nothing(void)
{
	static const struct fn t[] = {
		FN("sqlite3_sql", f_two), FN("sqlite3_db_handle", f_dbh), FN("sqlite3_db_mutex", f_mutex),
		FN("sqlite3_errmsg", f_errmsg2), FN("sqlite3_stmt_busy", f_busy3),
		FN("sqlite3_libversion_number", f_ver), { NULL, NULL, 0 },
	};
	static const struct fn t2[] = {
		FN("sqlite3_stmt_busy", f_busy), FN("sqlite3_libversion_number", f_ver39),
		FN("sqlite3_errmsg", f_errmsg), { NULL, NULL, 0 },
	};
	struct layout_decoded d;

	ASSERT_EQ_INT(layout_decode__run(table_fetch, (void *)t, &d), 1);  /* db only */
	ASSERT_EQ_INT(d.cfg.vdbe_db_off, 8);
	ASSERT_EQ_INT(d.cfg.vdbe_zsql_off, -1);
	ASSERT_EQ_INT(d.cfg.db_perr_off, -1);
	ASSERT_EQ_INT(d.cfg.vdbe_state_off, -1);
	ASSERT_EQ_INT(d.cfg.mem_z_off, -1);
	ASSERT_EQ_INT(d.cfg.vdbe_rc_off, -1);
	ASSERT_TRUE(strstr(d.missing, "zSql") && strstr(d.missing, "pErr (sqlite3_errmsg: several candidates)"));
	ASSERT_TRUE(strstr(d.missing, "state (version 3053002") != NULL);
	/* 3.39 has eVdbeState, but RUN compared as 2 is needed; without
	 * sqlite3_db_mutex the errmsg pointer cannot be told apart. */
	ASSERT_EQ_INT(layout_decode__run(table_fetch, (void *)t2, &d), 1);
	ASSERT_EQ_INT(d.version, 0x2e5fd8);
	ASSERT_EQ_INT(d.cfg.vdbe_state_off, 0x9a);
	ASSERT_EQ_INT(d.cfg.db_perr_off, -1);
	ASSERT_TRUE(strstr(d.missing, "pErr (no sqlite3_db_mutex") != NULL);
	return true;
}

/* A state byte outside the versions whose values are known (before 3.38,
 * the Vdbe.magic era; after the last one checked) is never taken: the
 * values are the version's. */
static bool test_state_needs_a_known_version(void)
{
	static const uint8_t f_ver337[] = { 0xb8, 0x48, 0x57, 0x2e, 0x00, 0xc3 };  /* mov $3037000,%eax */
	static const uint8_t f_ver354[] = { 0xb8, 0xb0, 0x99, 0x2e, 0x00, 0xc3 };  /* mov $3054000,%eax */
	static const struct fn t[] = {
		FN("sqlite3_stmt_busy", f_busy), FN("sqlite3_libversion_number", f_ver337), { NULL, NULL, 0 },
	};
	static const struct fn t2[] = {
		FN("sqlite3_stmt_busy", f_busy), FN("sqlite3_libversion_number", f_ver354), { NULL, NULL, 0 },
	};
	struct layout_decoded d;

	ASSERT_EQ_INT(layout_decode__run(table_fetch, (void *)t, &d), 0);
	ASSERT_EQ_INT(d.version, 3037000);
	ASSERT_EQ_INT(d.cfg.vdbe_state_off, -1);
	ASSERT_TRUE(strstr(d.missing, "state (version 3037000") != NULL);
	ASSERT_EQ_INT(layout_decode__run(table_fetch, (void *)t2, &d), 0);
	ASSERT_EQ_INT(d.version, 3054000);
	ASSERT_EQ_INT(d.cfg.vdbe_state_off, -1);
	return true;
}

/* Two sources of pParse that disagree: neither is taken. */
static bool test_sources_must_agree(void)
{
	uint8_t moved[sizeof(f_prepare)];
	static const uint8_t store[] = { 0x48, 0x89, 0xb3, 0x28, 0x01 };  /* mov %rsi,0x128(%rbx) */
	uint8_t *at;
	struct fn t[] = {
		FN("sqlite3ParseObjectInit", f_parseinit), { "sqlite3Prepare", moved, sizeof(moved) },
		{ NULL, NULL, 0 },
	};
	struct layout_decoded d;

	memcpy(moved, f_prepare, sizeof(moved));
	at = memmem(moved, sizeof(moved), store, sizeof(store));
	ASSERT_TRUE(at != NULL);
	at[3] = 0x30;  /* db->pParse at 0x130 in this "build" */
	ASSERT_EQ_INT(layout_decode__run(table_fetch, t, &d), 0);
	ASSERT_EQ_INT(d.cfg.db_pparse_off, -1);
	ASSERT_TRUE(strstr(d.missing, "pParse (sources disagree)") != NULL);
	t[1].code = f_prepare;  /* the same offset: taken */
	ASSERT_EQ_INT(layout_decode__run(table_fetch, t, &d), 1);
	ASSERT_EQ_INT(d.cfg.db_pparse_off, 0x128);
	return true;
}

/* Functions that are only a ret, or do not decode, or are absent: nothing,
 * no crash. */
static bool test_garbage_finds_nothing(void)
{
	static const char *const names[] = {
		"sqlite3_sql", "sqlite3_db_handle", "sqlite3_db_mutex", "sqlite3_errmsg", "sqlite3_value_text",
		"sqlite3ValueText", "sqlite3_stmt_busy", "sqlite3_libversion_number", "sqlite3VdbeTransferError",
		"sqlite3VdbeResetStepResult", "sqlite3ParseObjectInit", "sqlite3Prepare", "sqlite3ErrorToParser",
		"sqlite3_db_filename", "sqlite3DbNameToBtree", "sqlite3BtreeGetFilename", "sqlite3PagerFilename",
	};
	struct fn t[sizeof(names) / sizeof(names[0]) + 1];
	struct layout_decoded d;
	size_t i;
	int k;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			t[i] = (struct fn){ names[i], k ? f_bad : f_ret, k ? sizeof(f_bad) : sizeof(f_ret) };
		t[i] = (struct fn){ NULL, NULL, 0 };
		ASSERT_EQ_INT(layout_decode__run(table_fetch, t, &d), 0);
		ASSERT_EQ_INT(d.cfg.vdbe_zsql_off, -1);
		ASSERT_EQ_INT(d.cfg.db_adb_off, -1);
		ASSERT_TRUE(d.missing[0] != '\0');
	}
	t[0] = (struct fn){ NULL, NULL, 0 };
	ASSERT_EQ_INT(layout_decode__run(table_fetch, t, &d), 0);
	ASSERT_EQ_INT(d.version, 0);
	return true;
}

/* Pseudo-random code, and real patterns with random bytes flipped, as every
 * function: no crash (ASan in make SAN=1), bounded time, and whatever is
 * taken is a plausible field offset. */
static bool test_random_code_is_harmless(void)
{
	static const char *const names[] = {
		"sqlite3_sql", "sqlite3_db_handle", "sqlite3_db_mutex", "sqlite3_errmsg", "sqlite3_value_text",
		"sqlite3ValueText", "sqlite3_stmt_busy", "sqlite3_libversion_number", "sqlite3VdbeTransferError",
		"sqlite3VdbeResetStepResult", "sqlite3ParseObjectInit", "sqlite3Prepare", "sqlite3ErrorToParser",
		"sqlite3_db_filename", "sqlite3DbNameToBtree", "sqlite3BtreeGetFilename", "sqlite3PagerFilename",
	};
	static const struct fn seeds[] = {
		FN("", f_errmsg), FN("", f_transfer), FN("", f_prepare), FN("", f_dbfile), FN("", f_vtext),
	};
	enum { N = sizeof(names) / sizeof(names[0]) };
	static uint8_t buf[N][512];
	struct fn t[N + 1];
	struct layout_decoded d;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int iter;
	size_t i, j;

	for (iter = 0; iter < 300; iter++) {
		for (i = 0; i < N; i++) {
			size_t len;

			if (iter % 2) {
				const struct fn *s = &seeds[(iter / 2 + i) % 5];

				len = s->len;
				memcpy(buf[i], s->code, len);
				for (j = 0; j < 3; j++) {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17;
					buf[i][x % len] ^= (uint8_t)(x >> 32);
				}
			} else {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				len = 1 + x % sizeof(buf[i]);
				for (j = 0; j < len; j++) {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17;
					buf[i][j] = (uint8_t)x;
				}
			}
			t[i] = (struct fn){ names[i], buf[i], len };
		}
		t[N] = (struct fn){ NULL, NULL, 0 };
		ASSERT_TRUE(layout_decode__run(table_fetch, t, &d) >= 0);
		ASSERT_TRUE(d.cfg.vdbe_zsql_off >= -1 && d.cfg.vdbe_zsql_off < 65536);
		ASSERT_TRUE(d.cfg.db_perr_off >= -1 && d.cfg.db_perr_off < 65536);
		ASSERT_TRUE(d.cfg.db_pparse_off >= -1 && d.cfg.db_pparse_off < 65536);
		ASSERT_TRUE(d.cfg.db_adb_off >= -1 && d.cfg.db_adb_off < 65536);
		ASSERT_TRUE(strlen(d.found) < sizeof(d.found) && strlen(d.missing) < sizeof(d.missing));
	}
	return true;
}

/* Debian's libsqlite3 (the one this test links): every offset decoded from
 * its code equals what running it calibrates. */
static bool test_debian_library_matches_calibration(void)
{
	struct st_lib_cfg self;
	const unsigned char *id;
	int idlen, adb, zf;
	dev_t dev;
	ino_t ino;
	Dl_info info;
	struct elf_file *ef;
	struct layout_decoded d;

	ASSERT_TRUE(dladdr((void *)sqlite3_libversion, &info) && info.dli_fname);
	ASSERT_EQ_INT(layout__self(&self, &id, &idlen, &dev, &ino), 0);
	ASSERT_EQ_INT(layout__self_dbfile(&adb, &zf), 0);
	ef = elf_file__open(info.dli_fname);
	ASSERT_TRUE(ef != NULL);
	layout_decode__elf(ef, ef, &d);
	elf_file__close(ef);
	printf("    %s: %s%s%s\n", info.dli_fname, d.found, d.missing[0] ? "; missing: " : "", d.missing);
	ASSERT_EQ_INT(d.version, sqlite3_libversion_number());
	ASSERT_EQ_INT(d.nfound, LAYOUT_DECODE_FIELDS);
	ASSERT_EQ_INT(d.cfg.vdbe_zsql_off, self.vdbe_zsql_off);
	ASSERT_EQ_INT(d.cfg.vdbe_db_off, self.vdbe_db_off);
	ASSERT_EQ_INT(d.cfg.db_perr_off, self.db_perr_off);
	ASSERT_EQ_INT(d.cfg.mem_z_off, self.mem_z_off);
	ASSERT_EQ_INT(d.cfg.vdbe_state_off, self.vdbe_state_off);
	ASSERT_EQ_INT(d.cfg.state_ready, self.state_ready);
	ASSERT_EQ_INT(d.cfg.state_run, self.state_run);
	ASSERT_EQ_INT(d.cfg.state_halt, self.state_halt);
	ASSERT_EQ_INT(d.cfg.vdbe_rc_off, self.vdbe_rc_off);
	ASSERT_EQ_INT(d.cfg.vdbe_zerrmsg_off, self.vdbe_zerrmsg_off);
	ASSERT_EQ_INT(d.cfg.db_pparse_off, self.db_pparse_off);
	ASSERT_EQ_INT(d.cfg.db_adb_off, adb);
	ASSERT_EQ_INT(d.cfg.pager_zfile_off, zf);
	return true;
}

int main(void)
{
	RUN(test_every_pattern);
	RUN(test_ambiguous_or_unvouched_give_nothing);
	RUN(test_state_needs_a_known_version);
	RUN(test_sources_must_agree);
	RUN(test_garbage_finds_nothing);
	RUN(test_random_code_is_harmless);
	RUN(test_debian_library_matches_calibration);
	return harness_done();
}
