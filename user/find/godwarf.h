/* godwarf.h — member offsets of named structures, read from a Go
 * executable's DWARF (.debug_info and .debug_abbrev, versions 2 to 5, as
 * the Go linker writes them: names inline, DW_FORM_string). Used for the
 * offsets that differ between Go releases (runtime.g.goid,
 * runtime.moduledata.types, ...) when the executable has DWARF; the
 * release table of gosym.c is the fallback. Parses untrusted bytes:
 * bounds-checked, stops at anything it does not understand. */
#ifndef SQLTRACE_GODWARF_H
#define SQLTRACE_GODWARF_H

#include <stddef.h>
#include <stdint.h>

struct godwarf_query {
	const char *type;      /* "runtime.g" */
	const char *member;    /* "goid" */
	long off;              /* out: DW_AT_data_member_location, -1 not found */
};

/* Fills q[i].off for every query found (the first definition of each type
 * wins). Returns the number found, or -EINVAL when the DWARF is malformed
 * before any was found. */
int godwarf__members(const uint8_t *info, size_t ninfo, const uint8_t *abbrev, size_t nabbrev,
		     struct godwarf_query *q, size_t nq);

#endif
