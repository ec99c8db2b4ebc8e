/* json_text.h — byte-level text helpers shared by json_encode.c and
 * json_decode.c: Go's UTF-8 validation, and scans of eight bytes at a time.
 * Internal to store/json_*.c (everything is static inline).
 */
#ifndef SQLTRACE_JSON_TEXT_H
#define SQLTRACE_JSON_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n > 0 bytes available, s[0] >=
 * 0x80) with its code point in *cp, or 0 when s[0] is an invalid byte. The
 * rules are Go's utf8.DecodeRune: no overlong forms, no surrogates, nothing
 * above U+10FFFF. */
static inline size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0], lo = 0x80, hi = 0xBF;

	if (c < 0xC2 || c > 0xF4)
		return 0;
	if (c < 0xE0) {
		if (n < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		*cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
		return 2;
	}
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
		return 0;
	if (c < 0xF0) {
		*cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
		return 3;
	}
	if (n < 4 || (s[3] & 0xC0) != 0x80)
		return 0;
	*cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
	      (s[3] & 0x3Fu);
	return 4;
}

/* ---- eight bytes at a time -------------------------------------------- */

/* Bit tricks over a uint64_t holding eight bytes of text (loaded with
 * memcpy). Each test is exact as a whole: non-zero iff some byte matches
 * (a borrow can only set extra bits above a byte that truly matches). */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Some byte of w equals c. */
static inline uint64_t has_byte(uint64_t w, unsigned char c)
{
	uint64_t x = w ^ (ONES * c);

	return (x - ONES) & ~x & HIGHS;
}

/* Some byte of w is below 0x20: bytes >= 0x80 have their high bit cleared
 * first (no carry into the next byte) and are masked out at the end. */
static inline uint64_t has_control(uint64_t w)
{
	return ~((w & ~HIGHS) + ONES * (0x80 - 0x20)) & ~w & HIGHS;
}

#endif
