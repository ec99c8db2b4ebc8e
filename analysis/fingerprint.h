/* fingerprint.h — the normalised form of a SQL statement that `report` and
 * `top` group entries by: literals and bound parameters as `?`, IN lists and
 * multi-row VALUES collapsed, comments removed, whitespace collapsed.
 *
 * The text is untrusted (any program's SQL): every byte sequence is
 * accepted, nothing is read past z[n), and the output is never longer than
 * the input (tests/fuzz/fuzz_fingerprint.c checks both). */
#ifndef SQLTRACE_FINGERPRINT_H
#define SQLTRACE_FINGERPRINT_H

#include <stddef.h>

/* Writes the fingerprint of z[0..n) into out, which must hold n + 1 bytes,
 * NUL-terminated; returns its length (<= n). Rules:
 *   - string literals '...', blobs x'...', numbers (decimal, hex, with an
 *     exponent, and a leading sign where the sign cannot be a binary
 *     operator) become `?`;
 *   - parameters ?, ?NNN, :name, @name, $name become `?`;
 *   - `IN (?, ?, ...)` becomes `IN (?)`; in `VALUES (..), (..)`, a row equal
 *     to the row before it is dropped;
 *   - comments (-- and slash-star) are removed; a run of whitespace and
 *     comments between two tokens becomes one space (none after '(', nor
 *     before ')' or ','); leading and trailing
 *     whitespace and trailing semicolons are dropped;
 *   - everything else (keywords and their case, identifiers, quoted
 *     identifiers "x" `x` [x], operators) is kept byte for byte.
 * This function can't fail. */
size_t fingerprint__sql(const char *z, size_t n, char *out);

/* Lowercases, in place, the ASCII letters of fp (a fingerprint) outside
 * quoted identifiers: the key under which fingerprints that differ only in
 * the case of keywords and bare identifiers (the same statement to SQLite)
 * are one group. This function can't fail. */
void fingerprint__fold(char *fp);

#endif
