/* fingerprint.c — the normalised form of a SQL statement (fingerprint.h):
 * one pass over the text with a tokenizer close to SQLite's own
 * (tokenize.c), writing the fingerprint as it goes; IN lists and repeated
 * VALUES rows are collapsed by rewinding the output once their closing
 * parenthesis shows what they held. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "fingerprint.h"

#define MAX_FRAMES 64   /* parentheses followed; deeper ones are only counted */

enum prev_kind { P_NONE, P_OPEN, P_OP, P_KEYWORD, P_IDENT, P_VALUE, P_CLOSE };
enum frame_kind { F_OTHER, F_IN, F_ROW };
enum values_state { V_NONE, V_EXPECT_ROW, V_AFTER_ROW };

struct frame {
	size_t start;          /* output offset of its '(' */
	enum frame_kind kind;
	bool pure;             /* only literals, parameters and commas so far */
	size_t nitems;
};

struct fp {
	const char *z;
	size_t n, i;           /* input and read position */
	char *out;
	size_t o;              /* output length */
	bool space;            /* whitespace or a comment since the last token */
	enum prev_kind prev;
	bool prev_in;          /* the last token was the keyword IN */
	struct frame frames[MAX_FRAMES];
	size_t depth;          /* open parentheses (may exceed MAX_FRAMES) */
	enum values_state vstate;
	size_t values_depth;
	bool has_row;
	size_t row_start, row_end;  /* the last VALUES row kept, in the output */
};

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_idchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
	       c == '$' || c >= 0x80;
}

static bool is_idstart(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static unsigned char at(const struct fp *s, size_t i)
{
	return i < s->n ? (unsigned char)s->z[i] : 0;
}

/* Words after which a '-' or '+' starts a signed number, not a subtraction. */
static bool sign_keyword(const char *w, size_t n)
{
	static const char *const kw[] = {
		"SELECT", "WHERE", "AND", "OR", "NOT", "IN", "IS", "LIKE", "GLOB", "BETWEEN",
		"WHEN", "THEN", "ELSE", "CASE", "VALUES", "SET", "LIMIT", "OFFSET", "BY", "ON",
		"HAVING", "RETURNING", "DEFAULT", "ESCAPE", "MATCH", "REGEXP", "EXISTS",
		"DISTINCT", "ALL", "RETURN",
	};
	size_t k;

	for (k = 0; k < sizeof(kw) / sizeof(kw[0]); k++)
		if (strlen(kw[k]) == n && strncasecmp(kw[k], w, n) == 0)
			return true;
	return false;
}

/* Appends z[0..n) as one token, after one space when the input had one
 * (none after '(' nor before ')' and ',': "( 1 , 2 )" is "(1, 2)"). */
static void emit(struct fp *s, const char *z, size_t n)
{
	if (s->space && s->o > 0 && s->out[s->o - 1] != '(' && z[0] != ')' && z[0] != ',')
		s->out[s->o++] = ' ';
	s->space = false;
	memcpy(s->out + s->o, z, n);
	s->o += n;
}

static struct frame *top_frame(struct fp *s)
{
	return s->depth > 0 && s->depth <= MAX_FRAMES ? &s->frames[s->depth - 1] : NULL;
}

/* Bookkeeping for a token at the current depth that is neither a literal
 * nor a comma, nor a parenthesis: the enclosing list is not a plain list,
 * and a VALUES clause ends when the token is not inside one of its rows. */
static void other_token(struct fp *s)
{
	struct frame *f = top_frame(s);

	if (f)
		f->pure = false;
	if (s->vstate != V_NONE && s->depth == s->values_depth)
		s->vstate = V_NONE;
}

/* Skips a quoted run starting at s->i (the opening quote q, closing quote
 * qe, doubled qe as an escape when esc). Unterminated: to the end. */
static void skip_quoted(struct fp *s, unsigned char qe, bool esc)
{
	s->i++;
	while (s->i < s->n) {
		if ((unsigned char)s->z[s->i] == qe) {
			if (esc && at(s, s->i + 1) == qe) {
				s->i += 2;
				continue;
			}
			s->i++;
			return;
		}
		s->i++;
	}
}

/* Skips a number starting at s->i (a digit, or '.' and a digit). */
static void skip_number(struct fp *s)
{
	if (at(s, s->i) == '0' && (at(s, s->i + 1) == 'x' || at(s, s->i + 1) == 'X')) {
		s->i += 2;
	} else {
		while (is_digit(at(s, s->i)) || at(s, s->i) == '_')
			s->i++;
		if (at(s, s->i) == '.') {
			s->i++;
			while (is_digit(at(s, s->i)) || at(s, s->i) == '_')
				s->i++;
		}
		if ((at(s, s->i) == 'e' || at(s, s->i) == 'E') &&
		    (is_digit(at(s, s->i + 1)) ||
		     ((at(s, s->i + 1) == '+' || at(s, s->i + 1) == '-') && is_digit(at(s, s->i + 2)))))
			s->i += 2;
	}
	/* The rest of the token, as SQLite reads it (hex digits, an exponent's
	 * digits, or junk glued to the number). */
	while (is_idchar(at(s, s->i)) && at(s, s->i) != '$')
		s->i++;
}

/* A literal or a parameter, written as `?`. */
static void value(struct fp *s)
{
	struct frame *f = top_frame(s);

	emit(s, "?", 1);
	if (f)
		f->nitems++;
	if (s->vstate != V_NONE && s->depth == s->values_depth)
		s->vstate = V_NONE;
	s->prev = P_VALUE;
	s->prev_in = false;
}

static void open_paren(struct fp *s)
{
	struct frame *parent = top_frame(s);
	enum frame_kind kind = F_OTHER;

	if (parent)
		parent->pure = false;
	if (s->prev_in)
		kind = F_IN;
	else if (s->vstate == V_EXPECT_ROW && s->depth == s->values_depth)
		kind = F_ROW;
	else if (s->vstate != V_NONE && s->depth == s->values_depth)
		s->vstate = V_NONE;
	emit(s, "(", 1);
	s->depth++;
	if (s->depth <= MAX_FRAMES)
		s->frames[s->depth - 1] = (struct frame){ .start = s->o - 1, .kind = kind, .pure = true };
	s->prev = P_OPEN;
	s->prev_in = false;
}

static void close_paren(struct fp *s)
{
	struct frame *f = top_frame(s);

	emit(s, ")", 1);
	s->prev = P_CLOSE;
	s->prev_in = false;
	if (s->depth == 0) {
		other_token(s);
		return;
	}
	s->depth--;
	if (!f)
		return;
	if (f->kind == F_IN && f->pure && f->nitems > 0) {
		/* "(?, ?, ?)" -> "(?)": never longer, as the list held an item */
		s->o = f->start;
		memcpy(s->out + s->o, "(?)", 3);
		s->o += 3;
	} else if (f->kind == F_ROW) {
		size_t len = s->o - f->start;
		bool dup = false;

		if (s->has_row && s->row_end - s->row_start == len &&
		    memcmp(s->out + s->row_start, s->out + f->start, len) == 0) {
			size_t k, commas = 0;

			dup = true;
			for (k = s->row_end; k < f->start; k++) {
				if (s->out[k] == ',')
					commas++;
				else if (s->out[k] != ' ')
					dup = false;
			}
			dup = dup && commas == 1;
		}
		if (dup) {
			s->o = s->row_end;
		} else {
			s->has_row = true;
			s->row_start = f->start;
			s->row_end = s->o;
		}
		s->vstate = V_AFTER_ROW;
	}
}

size_t fingerprint__sql(const char *z, size_t n, char *out)
{
	struct fp s = { .z = z, .n = n, .out = out };

	while (s.i < s.n) {
		unsigned char c = (unsigned char)z[s.i];

		if (is_space(c)) {
			s.space = true;
			s.i++;
		} else if (c == '-' && at(&s, s.i + 1) == '-') {
			while (s.i < s.n && z[s.i] != '\n')
				s.i++;
			s.space = true;
		} else if (c == '/' && at(&s, s.i + 1) == '*') {
			s.i += 2;
			while (s.i < s.n && !(z[s.i] == '*' && at(&s, s.i + 1) == '/'))
				s.i++;
			s.i = s.i < s.n ? s.i + 2 : s.n;
			s.space = true;
		} else if (c == '\'') {
			skip_quoted(&s, '\'', true);
			value(&s);
		} else if ((c == 'x' || c == 'X') && at(&s, s.i + 1) == '\'') {
			s.i++;
			skip_quoted(&s, '\'', true);
			value(&s);
		} else if (is_digit(c) || (c == '.' && is_digit(at(&s, s.i + 1)))) {
			skip_number(&s);
			value(&s);
		} else if ((c == '-' || c == '+') &&
			   (is_digit(at(&s, s.i + 1)) || (at(&s, s.i + 1) == '.' && is_digit(at(&s, s.i + 2)))) &&
			   (s.prev == P_NONE || s.prev == P_OPEN || s.prev == P_OP || s.prev == P_KEYWORD)) {
			s.i++;
			skip_number(&s);
			value(&s);
		} else if (c == '?') {
			s.i++;
			while (is_digit(at(&s, s.i)))
				s.i++;
			value(&s);
		} else if ((c == ':' || c == '@' || c == '$') && is_idchar(at(&s, s.i + 1)) &&
			   at(&s, s.i + 1) != '$') {
			s.i++;
			while (is_idchar(at(&s, s.i)) ||
			       (c == '$' && at(&s, s.i) == ':' && at(&s, s.i + 1) == ':')) {
				s.i += at(&s, s.i) == ':' ? 2 : 1;
			}
			value(&s);
		} else if (c == '"' || c == '`' || c == '[') {
			size_t start = s.i;

			skip_quoted(&s, c == '[' ? ']' : c, c != '[');
			other_token(&s);
			emit(&s, z + start, s.i - start);
			s.prev = P_IDENT;
			s.prev_in = false;
		} else if (is_idstart(c)) {
			size_t start = s.i, len;

			while (s.i < s.n && is_idchar((unsigned char)z[s.i]))
				s.i++;
			len = s.i - start;
			other_token(&s);
			emit(&s, z + start, len);
			s.prev_in = len == 2 && strncasecmp(z + start, "IN", 2) == 0;
			s.prev = sign_keyword(z + start, len) ? P_KEYWORD : P_IDENT;
			if (len == 6 && strncasecmp(z + start, "VALUES", 6) == 0) {
				s.vstate = V_EXPECT_ROW;
				s.values_depth = s.depth;
				s.has_row = false;
			}
		} else if (c == '(') {
			s.i++;
			open_paren(&s);
		} else if (c == ')') {
			s.i++;
			close_paren(&s);
		} else if (c == ',') {
			s.i++;
			emit(&s, ",", 1);
			if (s.vstate == V_AFTER_ROW && s.depth == s.values_depth)
				s.vstate = V_EXPECT_ROW;
			else if (s.vstate != V_NONE && s.depth == s.values_depth)
				s.vstate = V_NONE;
			s.prev = P_OP;
			s.prev_in = false;
		} else {
			s.i++;
			other_token(&s);
			emit(&s, (const char *)&c, 1);
			s.prev = P_OP;
			s.prev_in = false;
			if (c == ';')
				s.vstate = V_NONE;
		}
	}
	while (s.o > 0 && (out[s.o - 1] == ' ' || out[s.o - 1] == ';'))
		s.o--;
	out[s.o] = '\0';
	return s.o;
}

void fingerprint__fold(char *fp)
{
	char close = 0;

	for (; *fp; fp++) {
		char c = *fp;

		if (close) {
			if (c == close)
				close = 0;
		} else if (c == '"' || c == '`') {
			close = c;
		} else if (c == '[') {
			close = ']';
		} else if (c >= 'A' && c <= 'Z') {
			*fp = (char)(c - 'A' + 'a');
		}
	}
}
