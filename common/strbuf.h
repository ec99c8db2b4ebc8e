/* strbuf.h — a growable byte buffer for building output lines. */
#ifndef SQLTRACE_STRBUF_H
#define SQLTRACE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *p;      /* NUL-terminated when len > 0 or after any append */
	size_t len;
	size_t cap;
	int oom;      /* set once an allocation failed; later appends are no-ops */
};

void strbuf__reset(struct strbuf *b);              /* len = 0, keeps memory */
void strbuf__free(struct strbuf *b);
void strbuf__putn(struct strbuf *b, const char *s, size_t n);
void strbuf__puts(struct strbuf *b, const char *s);
void strbuf__putc(struct strbuf *b, char c);
void strbuf__printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
