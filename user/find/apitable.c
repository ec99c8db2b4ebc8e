/* apitable.c — SQLite's public API in a file without symbols, from its
 * extension API table (see apitable.h).
 *
 * How the table is found, in a file of any size without reading it whole:
 *  1. The executable segments are scanned (1 MiB at a time) for the body of
 *     sqlite3_libversion_number: "mov $VERSION,%eax; ret" (or "pop %rbp;
 *     ret" with a frame pointer), VERSION a plausible SQLite 3 version,
 *     with the function's possible starts (an endbr64 and/or a frame setup
 *     before it). There are few such places.
 *  2. Pointers to those starts are looked for: in a position-independent
 *     file, the R_X86_64_RELATIVE relocations (the bytes in the file are
 *     zero until loaded); in a fixed-address executable, the words of the
 *     data segments.
 *  3. Each pointer found is taken as member 67 of a table; the table is
 *     accepted when member 66 returns the address of the "X.Y.Z" string of
 *     that very version, and every member this version has is either null
 *     or a pointer to code.
 */
#include "apitable.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const apitable_names[APITABLE_NAMES] = {
	"sqlite3_aggregate_context", "sqlite3_aggregate_count", "sqlite3_bind_blob",
	"sqlite3_bind_double", "sqlite3_bind_int", "sqlite3_bind_int64", "sqlite3_bind_null",
	"sqlite3_bind_parameter_count", "sqlite3_bind_parameter_index", "sqlite3_bind_parameter_name",
	"sqlite3_bind_text", "sqlite3_bind_text16", "sqlite3_bind_value", "sqlite3_busy_handler",
	"sqlite3_busy_timeout", "sqlite3_changes", "sqlite3_close", "sqlite3_collation_needed",
	"sqlite3_collation_needed16", "sqlite3_column_blob", "sqlite3_column_bytes",
	"sqlite3_column_bytes16", "sqlite3_column_count", "sqlite3_column_database_name",
	"sqlite3_column_database_name16", "sqlite3_column_decltype", "sqlite3_column_decltype16",
	"sqlite3_column_double", "sqlite3_column_int", "sqlite3_column_int64", "sqlite3_column_name",
	"sqlite3_column_name16", "sqlite3_column_origin_name", "sqlite3_column_origin_name16",
	"sqlite3_column_table_name", "sqlite3_column_table_name16", "sqlite3_column_text",
	"sqlite3_column_text16", "sqlite3_column_type", "sqlite3_column_value", "sqlite3_commit_hook",
	"sqlite3_complete", "sqlite3_complete16", "sqlite3_create_collation",
	"sqlite3_create_collation16", "sqlite3_create_function", "sqlite3_create_function16",
	"sqlite3_create_module", "sqlite3_data_count", "sqlite3_db_handle", "sqlite3_declare_vtab",
	"sqlite3_enable_shared_cache", "sqlite3_errcode", "sqlite3_errmsg", "sqlite3_errmsg16",
	"sqlite3_exec", "sqlite3_expired", "sqlite3_finalize", "sqlite3_free", "sqlite3_free_table",
	"sqlite3_get_autocommit", "sqlite3_get_auxdata", "sqlite3_get_table", "sqlite3_global_recover",
	"sqlite3_interrupt", "sqlite3_last_insert_rowid", "sqlite3_libversion",
	"sqlite3_libversion_number", "sqlite3_malloc", "sqlite3_mprintf", "sqlite3_open",
	"sqlite3_open16", "sqlite3_prepare", "sqlite3_prepare16", "sqlite3_profile",
	"sqlite3_progress_handler", "sqlite3_realloc", "sqlite3_reset", "sqlite3_result_blob",
	"sqlite3_result_double", "sqlite3_result_error", "sqlite3_result_error16", "sqlite3_result_int",
	"sqlite3_result_int64", "sqlite3_result_null", "sqlite3_result_text", "sqlite3_result_text16",
	"sqlite3_result_text16be", "sqlite3_result_text16le", "sqlite3_result_value",
	"sqlite3_rollback_hook", "sqlite3_set_authorizer", "sqlite3_set_auxdata", "sqlite3_snprintf",
	"sqlite3_step", "sqlite3_table_column_metadata", "sqlite3_thread_cleanup",
	"sqlite3_total_changes", "sqlite3_trace", "sqlite3_transfer_bindings", "sqlite3_update_hook",
	"sqlite3_user_data", "sqlite3_value_blob", "sqlite3_value_bytes", "sqlite3_value_bytes16",
	"sqlite3_value_double", "sqlite3_value_int", "sqlite3_value_int64", "sqlite3_value_numeric_type",
	"sqlite3_value_text", "sqlite3_value_text16", "sqlite3_value_text16be", "sqlite3_value_text16le",
	"sqlite3_value_type", "sqlite3_vmprintf", "sqlite3_overload_function", "sqlite3_prepare_v2",
	"sqlite3_prepare16_v2", "sqlite3_clear_bindings", "sqlite3_create_module_v2",
	"sqlite3_bind_zeroblob", "sqlite3_blob_bytes", "sqlite3_blob_close", "sqlite3_blob_open",
	"sqlite3_blob_read", "sqlite3_blob_write", "sqlite3_create_collation_v2", "sqlite3_file_control",
	"sqlite3_memory_highwater", "sqlite3_memory_used", "sqlite3_mutex_alloc", "sqlite3_mutex_enter",
	"sqlite3_mutex_free", "sqlite3_mutex_leave", "sqlite3_mutex_try", "sqlite3_open_v2",
	"sqlite3_release_memory", "sqlite3_result_error_nomem", "sqlite3_result_error_toobig",
	"sqlite3_sleep", "sqlite3_soft_heap_limit", "sqlite3_vfs_find", "sqlite3_vfs_register",
	"sqlite3_vfs_unregister", "sqlite3_threadsafe", "sqlite3_result_zeroblob",
	"sqlite3_result_error_code", "sqlite3_test_control", "sqlite3_randomness",
	"sqlite3_context_db_handle", "sqlite3_extended_result_codes", "sqlite3_limit",
	"sqlite3_next_stmt", "sqlite3_sql", "sqlite3_status", "sqlite3_backup_finish",
	"sqlite3_backup_init", "sqlite3_backup_pagecount", "sqlite3_backup_remaining",
	"sqlite3_backup_step", "sqlite3_compileoption_get", "sqlite3_compileoption_used",
	"sqlite3_create_function_v2", "sqlite3_db_config", "sqlite3_db_mutex", "sqlite3_db_status",
	"sqlite3_extended_errcode", "sqlite3_log", "sqlite3_soft_heap_limit64", "sqlite3_sourceid",
	"sqlite3_stmt_status", "sqlite3_strnicmp", "sqlite3_unlock_notify", "sqlite3_wal_autocheckpoint",
	"sqlite3_wal_checkpoint", "sqlite3_wal_hook", "sqlite3_blob_reopen", "sqlite3_vtab_config",
	"sqlite3_vtab_on_conflict", "sqlite3_close_v2", "sqlite3_db_filename", "sqlite3_db_readonly",
	"sqlite3_db_release_memory", "sqlite3_errstr", "sqlite3_stmt_busy", "sqlite3_stmt_readonly",
	"sqlite3_stricmp", "sqlite3_uri_boolean", "sqlite3_uri_int64", "sqlite3_uri_parameter",
	"sqlite3_vsnprintf", "sqlite3_wal_checkpoint_v2", "sqlite3_auto_extension", "sqlite3_bind_blob64",
	"sqlite3_bind_text64", "sqlite3_cancel_auto_extension", "sqlite3_load_extension",
	"sqlite3_malloc64", "sqlite3_msize", "sqlite3_realloc64", "sqlite3_reset_auto_extension",
	"sqlite3_result_blob64", "sqlite3_result_text64", "sqlite3_strglob", "sqlite3_value_dup",
	"sqlite3_value_free", "sqlite3_result_zeroblob64", "sqlite3_bind_zeroblob64",
	"sqlite3_value_subtype", "sqlite3_result_subtype", "sqlite3_status64", "sqlite3_strlike",
	"sqlite3_db_cacheflush", "sqlite3_system_errno", "sqlite3_trace_v2", "sqlite3_expanded_sql",
	"sqlite3_set_last_insert_rowid", "sqlite3_prepare_v3", "sqlite3_prepare16_v3",
	"sqlite3_bind_pointer", "sqlite3_result_pointer", "sqlite3_value_pointer",
	"sqlite3_vtab_nochange", "sqlite3_value_nochange", "sqlite3_vtab_collation",
	"sqlite3_keyword_count", "sqlite3_keyword_name", "sqlite3_keyword_check", "sqlite3_str_new",
	"sqlite3_str_finish", "sqlite3_str_appendf", "sqlite3_str_vappendf", "sqlite3_str_append",
	"sqlite3_str_appendall", "sqlite3_str_appendchar", "sqlite3_str_reset", "sqlite3_str_errcode",
	"sqlite3_str_length", "sqlite3_str_value", "sqlite3_create_window_function",
	"sqlite3_normalized_sql", "sqlite3_stmt_isexplain", "sqlite3_value_frombind",
	"sqlite3_drop_modules", "sqlite3_hard_heap_limit64", "sqlite3_uri_key",
	"sqlite3_filename_database", "sqlite3_filename_journal", "sqlite3_filename_wal",
	"sqlite3_create_filename", "sqlite3_free_filename", "sqlite3_database_file_object",
	"sqlite3_txn_state", "sqlite3_changes64", "sqlite3_total_changes64", "sqlite3_autovacuum_pages",
	"sqlite3_error_offset", "sqlite3_vtab_rhs_value", "sqlite3_vtab_distinct", "sqlite3_vtab_in",
	"sqlite3_vtab_in_first", "sqlite3_vtab_in_next", "sqlite3_deserialize", "sqlite3_serialize",
	"sqlite3_db_name", "sqlite3_value_encoding",
};

enum {
	IDX_LIBVERSION = APITABLE_IDX_LIBVERSION,
	IDX_LIBVERSION_NUMBER = APITABLE_IDX_LIBVERSION_NUMBER,
	IDX_SOURCEID = 169,
	MAX_CANDIDATES = 64,
	CHUNK = 1 << 20,
	CARRY = 128,            /* bytes a chunk repeats of the one before */
};

struct idscan {
	char *buf;
	size_t len;
	bool found;
};

/* Members each version has (named here): the table grows at its end. */
static size_t members_of(uint32_t version)
{
	if (version >= 3040000)
		return APITABLE_NAMES;
	if (version >= 3020000)
		return 219;     /* through prepare16_v3 */
	return 0;
}

struct search {
	struct elf_file *ef;
	uint64_t start[MAX_CANDIDATES];   /* candidate sqlite3_libversion_number */
	uint32_t version[MAX_CANDIDATES];
	size_t nstart;
	/* member 67 locations found, and the start each points to */
	uint64_t at[MAX_CANDIDATES], at_value[MAX_CANDIDATES];
	size_t nat;
	struct idscan *ids;           /* apitable__source_id's result */
	/* relocations inside one candidate table (position-independent file) */
	uint64_t lo, hi;
	uint64_t word[APITABLE_NAMES];
	bool have[APITABLE_NAMES];
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void add_start(struct search *s, uint64_t start, uint32_t version)
{
	for (size_t i = 0; i < s->nstart; i++)
		if (s->start[i] == start)
			return;
	if (s->nstart == MAX_CANDIDATES)
		return;         /* more are not looked at */
	s->start[s->nstart] = start;
	s->version[s->nstart++] = version;
}

static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
static const uint8_t frame_setup[4] = { 0x55, 0x48, 0x89, 0xe5 };   /* push %rbp; mov %rsp,%rbp */

/* Step 1 on buf (len bytes at vaddr base). */
static void scan_code(struct search *s, const uint8_t *buf, size_t len, uint64_t base)
{
	for (const uint8_t *q = buf; (q = memchr(q, 0xb8, (size_t)(buf + len - q))) != NULL; q++) {
		size_t i = (size_t)(q - buf), k;
		uint32_t v;

		if (i + 7 > len)
			break;
		v = le32(buf + i + 1);
		if (v < 3020000 || v > 3999999)
			continue;
		if (buf[i + 5] != 0xc3 && !(buf[i + 5] == 0x5d && buf[i + 6] == 0xc3))
			continue;
		/* the function starts at the mov, or before an endbr64 and/or
		 * a frame setup */
		k = i;
		if (k >= 4 && memcmp(buf + k - 4, frame_setup, 4) == 0)
			k -= 4;
		else if (buf[i + 5] == 0x5d)
			continue;       /* a pop without its push: not this function */
		add_start(s, base + i, v);
		if (k != i)
			add_start(s, base + k, v);
		if (k >= 4 && memcmp(buf + k - 4, endbr64, 4) == 0)
			add_start(s, base + k - 4, v);
	}
}

/* Calls fn over the file-backed bytes of every executable (exec) or
 * non-executable segment, CHUNK bytes at a time; each call's buffer starts
 * with the last CARRY bytes of the previous one (a match across two chunks
 * is seen; one inside those bytes may be seen twice). */
static int for_each_chunk(struct search *s, bool exec,
			  void (*fn)(struct search *, const uint8_t *, size_t, uint64_t))
{
	uint8_t *buf = malloc(CHUNK + CARRY);
	uint64_t vaddr, filesz;
	bool x;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; elf_file__segment(s->ef, i, &vaddr, &filesz, &x) == 0; i++) {
		size_t keep = 0;

		if (x != exec)
			continue;
		for (uint64_t done = 0; done < filesz;) {
			size_t want = filesz - done > CHUNK ? CHUNK : (size_t)(filesz - done), total;
			ssize_t got = elf_file__read_vaddr(s->ef, vaddr + done, buf + keep, want);

			if (got <= 0)
				break;
			total = keep + (size_t)got;
			fn(s, buf, total, vaddr + done - keep);
			done += (uint64_t)got;
			keep = total < CARRY ? total : CARRY;
			memmove(buf, buf + total - keep, keep);
		}
	}
	free(buf);
	return 0;
}

static void add_at(struct search *s, uint64_t where, uint64_t value)
{
	for (size_t i = 0; i < s->nat; i++)
		if (s->at[i] == where)
			return;
	if (s->nat == MAX_CANDIDATES)
		return;
	s->at_value[s->nat] = value;
	s->at[s->nat++] = where;
}

static bool is_start(const struct search *s, uint64_t v)
{
	for (size_t i = 0; i < s->nstart; i++)
		if (s->start[i] == v)
			return true;
	return false;
}

/* Step 2, fixed-address file: aligned data words equal to a start. */
static void scan_data(struct search *s, const uint8_t *buf, size_t len, uint64_t base)
{
	for (size_t i = (8 - base % 8) % 8; i + 8 <= len; i += 8)
		if (is_start(s, le64(buf + i)))
			add_at(s, base + i, le64(buf + i));
}

/* Step 2, position-independent file. */
static int reloc_to_start(void *ctx, uint64_t where, uint64_t value)
{
	struct search *s = ctx;

	if (where % 8 == 0 && is_start(s, value))
		add_at(s, where, value);
	return 0;
}

/* Relocations inside [s->lo, s->hi): the candidate table's words. */
static int reloc_in_table(void *ctx, uint64_t where, uint64_t value)
{
	struct search *s = ctx;

	if (where >= s->lo && where < s->hi && (where - s->lo) % 8 == 0) {
		s->word[(where - s->lo) / 8] = value;
		s->have[(where - s->lo) / 8] = true;
	}
	return 0;
}

/* The string a "return <constant string>" function returns (after an
 * optional endbr64 and frame setup: lea disp(%rip),%rax, or the constant
 * address a fixed-address link turned it into), read into buf.
 * Returns 0 or -ENOENT. */
static int returned_string(struct elf_file *ef, uint64_t fn, char *buf, size_t len)
{
	uint8_t code[16];
	size_t i = 0;
	uint64_t str;
	ssize_t got;

	if (elf_file__read_vaddr(ef, fn, code, sizeof(code)) != (ssize_t)sizeof(code))
		return -ENOENT;
	if (memcmp(code, endbr64, 4) == 0)
		i += 4;
	if (memcmp(code + i, frame_setup, 4) == 0)
		i += 4;
	if (code[i] == 0x48 && code[i + 1] == 0x8d && code[i + 2] == 0x05)
		str = fn + i + 7 + (uint64_t)(int64_t)(int32_t)le32(code + i + 3);
	else if (code[i] == 0x48 && code[i + 1] == 0xc7 && code[i + 2] == 0xc0)   /* mov $imm32,%rax */
		str = (uint64_t)(int64_t)(int32_t)le32(code + i + 3);
	else if (code[i] == 0xb8)   /* mov $imm32,%eax (a linker's relaxed lea) */
		str = le32(code + i + 1);
	else
		return -ENOENT;
	got = elf_file__read_vaddr(ef, str, buf, len - 1);
	if (got <= 0)
		return -ENOENT;
	buf[got] = '\0';
	return memchr(buf, '\0', (size_t)got) ? 0 : -ENOENT;
}

/* Reads the table whose member 67 is at `at` into *t and checks it (step
 * 3). Returns 0, -ENOENT (not the table), -ENOTSUP (too old), -errno. */
static int try_table(struct search *s, uint64_t at, uint32_t version, struct apitable *t)
{
	bool pic = elf_file__is_dyn(s->ef);
	char str[96], want[16];
	size_t n = members_of(version), i;
	int err;

	if (at < IDX_LIBVERSION_NUMBER * 8)
		return -ENOENT;
	memset(t, 0, sizeof(*t));
	t->vaddr = at - IDX_LIBVERSION_NUMBER * 8;
	t->version = version;
	snprintf(want, sizeof(want), "%u.%u.%u", version / 1000000, version / 1000 % 1000, version % 1000);
	if (n == 0)
		return -ENOTSUP;
	memset(s->word, 0, sizeof(s->word));
	memset(s->have, 0, sizeof(s->have));
	if (pic) {
		s->lo = t->vaddr;
		s->hi = t->vaddr + n * 8;
		err = elf_file__relative_relocs(s->ef, reloc_in_table, s);
		if (err)
			return err;
	} else {
		uint8_t raw[APITABLE_NAMES * 8];

		if (elf_file__read_vaddr(s->ef, t->vaddr, raw, n * 8) != (ssize_t)(n * 8))
			return -ENOENT;
		for (i = 0; i < n; i++) {
			s->word[i] = le64(raw + i * 8);
			s->have[i] = s->word[i] != 0;
		}
	}
	for (i = 0; i < n; i++) {
		if (!s->have[i])
			continue;
		if (!elf_file__is_exec_addr(s->ef, s->word[i]))
			return -ENOENT;   /* a member that is not code: not the table */
		t->fn[i] = s->word[i];
	}
	if (!t->fn[IDX_LIBVERSION] ||
	    returned_string(s->ef, t->fn[IDX_LIBVERSION], str, sizeof(str)) != 0 || strcmp(str, want) != 0)
		return -ENOENT;
	snprintf(t->version_str, sizeof(t->version_str), "%s", want);
	if (t->fn[IDX_SOURCEID] && returned_string(s->ef, t->fn[IDX_SOURCEID], str, sizeof(str)) == 0 &&
	    str[0] >= '0' && str[0] <= '9')
		snprintf(t->source_id, sizeof(t->source_id), "%s", str);
	t->n = n;
	return 0;
}

int apitable__find(struct elf_file *ef, struct apitable *t)
{
	struct search *s;
	int err, result = -ENOENT;

	if (!ef || !t)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ef = ef;
	err = for_each_chunk(s, true, scan_code);
	if (err || s->nstart == 0) {
		free(s);
		return err ? err : -ENOENT;
	}
	if (elf_file__is_dyn(ef))
		err = elf_file__relative_relocs(ef, reloc_to_start, s);
	else
		err = for_each_chunk(s, false, scan_data);
	for (size_t i = 0; !err && i < s->nat && result != 0; i++) {
		uint64_t v = s->at_value[i];
		uint32_t version = 0;

		for (size_t j = 0; j < s->nstart; j++)
			if (s->start[j] == v)
				version = s->version[j];
		if (!version)
			continue;
		int e = try_table(s, s->at[i], version, t);
		if (e != -ENOENT)
			result = e;
		if (e == -ENOMEM) {
			err = e;
			break;
		}
	}
	free(s);
	if (err)
		return err;
	return result;
}

/* "YYYY-MM-DD HH:MM:SS " followed by 40+ lowercase hex digits. */
static size_t source_id_at(const uint8_t *p, size_t len)
{
	static const char shape[] = "dddd-dd-dd dd:dd:dd ";
	size_t i, k;

	if (len < sizeof(shape) - 1 + 40)
		return 0;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd' ? (p[i] < '0' || p[i] > '9') : p[i] != (uint8_t)shape[i])
			return 0;
	}
	for (k = i; k < len && ((p[k] >= '0' && p[k] <= '9') || (p[k] >= 'a' && p[k] <= 'f')); k++)
		;
	return k - i >= 40 ? k : 0;
}

static void scan_ids(struct search *s, const uint8_t *buf, size_t len, uint64_t base)
{
	struct idscan *ids = s->ids;
	size_t i, n;

	(void)base;
	for (i = 0; !ids->found && i < len; i++) {
		if (buf[i] != '2' || !(n = source_id_at(buf + i, len - i)))
			continue;
		n = n < ids->len - 1 ? n : ids->len - 1;
		memcpy(ids->buf, buf + i, n);
		ids->buf[n] = '\0';
		ids->found = true;
	}
}

int apitable__source_id(struct elf_file *ef, char *buf, size_t len)
{
	struct search *s;
	struct idscan ids = { buf, len, false };
	int err;

	if (!ef || !buf || len < 2)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ef = ef;
	s->ids = &ids;
	err = for_each_chunk(s, false, scan_ids);
	free(s);
	if (err)
		return err;
	return ids.found ? 0 : -ENOENT;
}

int apitable__version_of(struct elf_file *ef, uint64_t number, uint64_t str, uint32_t *version, char *buf,
			 size_t len)
{
	uint8_t code[16];
	char s[32], want[32];
	size_t i = 0;
	uint32_t v;

	if (!number || !str || elf_file__read_vaddr(ef, number, code, sizeof(code)) != (ssize_t)sizeof(code))
		return -ENOENT;
	if (memcmp(code, endbr64, 4) == 0)
		i += 4;
	if (memcmp(code + i, frame_setup, 4) == 0)
		i += 4;
	if (code[i] != 0xb8 || (code[i + 5] != 0xc3 && !(code[i + 5] == 0x5d && code[i + 6] == 0xc3)))
		return -ENOENT;
	v = le32(code + i + 1);
	if (v < 3000000 || v > 3999999)
		return -ENOENT;
	snprintf(want, sizeof(want), "%u.%u.%u", v / 1000000, v / 1000 % 1000, v % 1000);
	if (returned_string(ef, str, s, sizeof(s)) != 0 || strcmp(s, want) != 0)
		return -ENOENT;
	*version = v;
	snprintf(buf, len, "%s", want);
	return 0;
}
