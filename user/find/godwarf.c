/* godwarf.c — structure member offsets from DWARF (see godwarf.h). The
 * walk: each unit's header, its abbreviation table, then its DIEs in order
 * (a DIE with children opens a level, code 0 closes one); members are read
 * only as children of a structure whose name is asked for. Forms from the
 * DWARF 5 standard, table 7.6. */
#include "godwarf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ABBREV 1024   /* codes kept per unit (Go uses a few dozen) */
#define MAX_ATTRS 32

struct abbrev {
	uint64_t tag;
	uint8_t children;
	uint8_t nattr;
	uint16_t name[MAX_ATTRS];
	uint16_t form[MAX_ATTRS];
	int64_t implicit[MAX_ATTRS];
	bool used;
};

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t u(struct rd *r, size_t n)
{
	uint64_t v = 0;
	size_t i;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return 0;
	}
	for (i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static uint64_t uleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;

	while (!r->bad) {
		uint8_t b;

		if (r->p >= r->end) {
			r->bad = true;
			break;
		}
		b = *r->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	return v;
}

static int64_t sleb(struct rd *r)
{
	int64_t v = 0;
	unsigned shift = 0;
	uint8_t b = 0;

	while (!r->bad) {
		if (r->p >= r->end) {
			r->bad = true;
			break;
		}
		b = *r->p++;
		if (shift < 64)
			v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (shift < 64 && (b & 0x40))
		v = (int64_t)((uint64_t)v | (~(uint64_t)0 << shift));
	return v;
}

static void skip(struct rd *r, uint64_t n)
{
	if (r->bad || (uint64_t)(r->end - r->p) < n)
		r->bad = true;
	else
		r->p += n;
}

/* Reads one attribute value of form; *num gets a constant's value (-1 when
 * not a constant), *str an inline string (NULL otherwise). */
static void value(struct rd *r, unsigned form, int addr_size, int64_t implicit, int64_t *num, const char **str,
		  int depth)
{
	*num = -1;
	*str = NULL;
	switch (form) {
	case 0x01: skip(r, (uint64_t)addr_size); break;                 /* addr */
	case 0x03: skip(r, u(r, 2)); break;                            /* block2 */
	case 0x04: skip(r, u(r, 4)); break;                            /* block4 */
	case 0x05: *num = (int64_t)u(r, 2); break;                     /* data2 */
	case 0x06: *num = (int64_t)u(r, 4); break;                     /* data4 */
	case 0x07: *num = (int64_t)u(r, 8); break;                     /* data8 */
	case 0x08: {                                                   /* string */
		const uint8_t *z = memchr(r->p, 0, r->bad ? 0 : (size_t)(r->end - r->p));

		if (!z) {
			r->bad = true;
			break;
		}
		*str = (const char *)r->p;
		r->p = z + 1;
		break;
	}
	case 0x09: case 0x18: skip(r, uleb(r)); break;                 /* block, exprloc */
	case 0x0a: skip(r, u(r, 1)); break;                            /* block1 */
	case 0x0b: *num = (int64_t)u(r, 1); break;                     /* data1 */
	case 0x0c: case 0x11: case 0x25: case 0x29: skip(r, 1); break; /* flag, ref1, strx1, addrx1 */
	case 0x0d: *num = sleb(r); break;                              /* sdata */
	case 0x0f: *num = (int64_t)uleb(r); break;                     /* udata */
	case 0x0e: case 0x10: case 0x13: case 0x17: case 0x1c: case 0x1d: case 0x1f: case 0x28: case 0x2c:
		skip(r, 4); break;  /* strp, ref_addr, ref4, sec_offset, ref_sup4, strp_sup, line_strp, strx4, addrx4 */
	case 0x12: case 0x26: case 0x2a: skip(r, 2); break;            /* ref2, strx2, addrx2 */
	case 0x27: case 0x2b: skip(r, 3); break;                       /* strx3, addrx3 */
	case 0x14: case 0x20: case 0x24: skip(r, 8); break;            /* ref8, ref_sig8, ref_sup8 */
	case 0x15: case 0x1a: case 0x1b: case 0x22: case 0x23: uleb(r); break;
	case 0x16:                                                     /* indirect */
		if (depth > 2)
			r->bad = true;
		else
			value(r, (unsigned)uleb(r), addr_size, implicit, num, str, depth + 1);
		break;
	case 0x19: break;                                              /* flag_present */
	case 0x1e: skip(r, 16); break;                                 /* data16 */
	case 0x21: *num = implicit; break;                             /* implicit_const */
	default: r->bad = true;
	}
}

static int parse_abbrevs(const uint8_t *abbrev, size_t nabbrev, uint64_t off, struct abbrev *tab)
{
	struct rd r = { abbrev + (off < nabbrev ? off : nabbrev), abbrev + nabbrev, off >= nabbrev };

	memset(tab, 0, MAX_ABBREV * sizeof(*tab));
	while (!r.bad) {
		uint64_t code = uleb(&r), name, form;
		struct abbrev *a, dummy;

		if (code == 0 || r.bad)
			break;
		a = code < MAX_ABBREV ? &tab[code] : &dummy;
		memset(a, 0, sizeof(*a));
		a->tag = uleb(&r);
		a->children = (uint8_t)u(&r, 1);
		for (;;) {
			name = uleb(&r);
			form = uleb(&r);
			if (r.bad || (name == 0 && form == 0))
				break;
			if (a->nattr == MAX_ATTRS || form > 0xffff)
				return -EINVAL;
			a->name[a->nattr] = (uint16_t)(name > 0xffff ? 0xffff : name);
			a->form[a->nattr] = (uint16_t)form;
			a->implicit[a->nattr] = form == 0x21 ? sleb(&r) : 0;
			a->nattr++;
		}
		a->used = code < MAX_ABBREV;
	}
	return r.bad ? -EINVAL : 0;
}

int godwarf__members(const uint8_t *info, size_t ninfo, const uint8_t *abbrev, size_t nabbrev,
		     struct godwarf_query *q, size_t nq)
{
	struct abbrev *tab = calloc(MAX_ABBREV, sizeof(*tab));
	struct rd unit = { info, info + ninfo, false };
	size_t i, found = 0;
	int e = 0;

	if (!tab)
		return -ENOMEM;
	for (i = 0; i < nq; i++)
		q[i].off = -1;
	while (unit.p < unit.end && found < nq) {
		uint64_t len = u(&unit, 4), aoff;
		unsigned version;
		int addr_size, depth = 0, match_depth = -1;
		const char *match_type = NULL;
		struct rd r;

		if (unit.bad || len == 0xffffffff || len > (uint64_t)(unit.end - unit.p)) {
			e = -EINVAL;  /* 64-bit DWARF is not what Go writes */
			break;
		}
		r = (struct rd){ unit.p, unit.p + len, false };
		unit.p += len;
		version = (unsigned)u(&r, 2);
		if (version < 2 || version > 5) {
			e = -EINVAL;
			break;
		}
		if (version == 5) {
			uint64_t type = u(&r, 1);

			addr_size = (int)u(&r, 1);
			aoff = u(&r, 4);
			if (type != 1 && type != 3) /* compile or partial units only */
				continue;
		} else {
			aoff = u(&r, 4);
			addr_size = (int)u(&r, 1);
		}
		if (r.bad || (addr_size != 4 && addr_size != 8) || parse_abbrevs(abbrev, nabbrev, aoff, tab)) {
			e = -EINVAL;
			break;
		}
		while (!r.bad && r.p < r.end) {
			uint64_t code = uleb(&r);
			const struct abbrev *a;
			const char *name = NULL;
			int64_t loc = -1;

			if (code == 0) {
				if (depth == match_depth)
					match_type = NULL, match_depth = -1;
				depth--;
				if (depth < 0)
					break;
				continue;
			}
			if (code >= MAX_ABBREV || !tab[code].used) {
				r.bad = true;
				break;
			}
			a = &tab[code];
			for (i = 0; i < a->nattr && !r.bad; i++) {
				int64_t num;
				const char *str;

				value(&r, a->form[i], addr_size, a->implicit[i], &num, &str, 0);
				if (a->name[i] == 0x03 && str)       /* DW_AT_name */
					name = str;
				else if (a->name[i] == 0x38)         /* DW_AT_data_member_location */
					loc = num;
			}
			if (r.bad)
				break;
			if (a->tag == 0x13 && name && a->children && depth + 1 > match_depth) {  /* structure */
				for (i = 0; i < nq; i++)
					if (q[i].off < 0 && strcmp(q[i].type, name) == 0)
						break;
				if (i < nq) {
					match_type = q[i].type;
					match_depth = depth + 1;
				}
			} else if (a->tag == 0x0d && match_type && depth == match_depth && name && loc >= 0) {
				for (i = 0; i < nq; i++)
					if (q[i].off < 0 && strcmp(q[i].type, match_type) == 0 && strcmp(q[i].member, name) == 0) {
						q[i].off = loc;
						found++;
					}
			}
			if (a->children)
				depth++;
		}
		if (r.bad && !found) {
			e = -EINVAL;
			break;
		}
	}
	free(tab);
	return found ? (int)found : e;
}
