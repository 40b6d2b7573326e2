/* Growable strings, string vectors, checked number parsing, name checks. */
#ifndef VM_STR_H
#define VM_STR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A growable, always NUL-terminated string.  buf is never NULL after
 * STRBUF_INIT; strbuf_detach() hands the storage to the caller.
 */
struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
};

extern char strbuf_empty[];
#define STRBUF_INIT { strbuf_empty, 0, 0 }

void strbuf_release(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
__attribute__((format(printf, 2, 3)))
void strbuf_addf(struct strbuf *sb, const char *fmt, ...);
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/*
 * Text from a guest, a snapshot or a server, safe for a terminal (as ls
 * and git print names): control characters (C0 but those in keep, DEL,
 * and C1 as UTF-8 encodes them) become \t, \r, \n or octal \ooo, and
 * a backslash before one of those stays readable as \\.  keep: control
 * characters let through as they are ("\n" for lines), or "".
 */
void strbuf_add_printable(struct strbuf *sb, const char *s, size_t len,
			  const char *keep);
/* The same into a new string (caller frees). */
char *str_printable(const char *s);

/* Shell-quote s (POSIX sh single quotes unless it is plainly safe). */
void strbuf_add_shquoted(struct strbuf *sb, const char *s);
/* Append s with every ',' doubled, as QEMU option values need. */
void strbuf_add_qemu_escaped(struct strbuf *sb, const char *s);
void strbuf_trim_trailing(struct strbuf *sb);
/* A copy of s that is valid UTF-8: a stray byte becomes U+FFFD. */
char *str_utf8_valid(const char *s);
bool str_utf8_is_valid(const char *s);

/* Returns the buffer, owned by the caller; sb is reset. */
char *strbuf_detach(struct strbuf *sb);

/* A NULL-terminated vector of owned strings. */
struct strvec {
	char **v;
	size_t nr;
	size_t alloc;
};

extern char *strvec_empty[];
#define STRVEC_INIT { strvec_empty, 0, 0 }

void strvec_push(struct strvec *sv, const char *s);
__attribute__((format(printf, 2, 3)))
void strvec_pushf(struct strvec *sv, const char *fmt, ...);
void strvec_pushv(struct strvec *sv, char *const *v);
/* Push each argument up to a NULL. */
void strvec_pushl(struct strvec *sv, ...) __attribute__((sentinel));
void strvec_clear(struct strvec *sv);
#define strvec_release strvec_clear
/* Join with sep; each element shell-quoted when quote is true. */
char *strvec_join(const struct strvec *sv, const char *sep, bool quote);

/* Allocation that aborts on exhaustion: the only sane reaction in a CLI. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
__attribute__((format(printf, 1, 2)))
char *xasprintf(const char *fmt, ...);

/*
 * Parse a whole decimal number in [min, max].  Returns 0, -EINVAL for
 * anything that is not a number, -ERANGE when out of range.
 */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/*
 * Parse a size such as 512, 30G, 4096M, 1.5T (binary units K M G T P,
 * optional trailing B or iB).  Bare numbers are bytes unless
 * default_unit (e.g. 'M') is given.  Result in bytes, must be > 0.
 */
int parse_size(const char *s, char default_unit, uint64_t *out);
/*
 * Append bytes (> 0) as the shortest exact text parse_size reads back to
 * the same number whatever its default unit: the largest of K M G T P
 * that divides it (4G, 1536M, 1000M), else a count with B (1000B).
 */
void strbuf_add_size(struct strbuf *sb, uint64_t bytes);
/* Parse yes/no/true/false/on/off/1/0. */
int parse_bool(const char *s, bool *out);

/*
 * Names users give to VMs, snapshots and jobs: [A-Za-z0-9._-]{1,64},
 * not starting with '-' or '.'.
 */
bool name_is_valid(const char *s);

/* Damerau-Levenshtein distance, for "did you mean". */
size_t str_distance(const char *a, const char *b);

/*
 * The name closest to a word, for "did you mean": offer each candidate
 * (its first len bytes) to str_near_try, then str_near_pick gives the
 * closest, when it is at most 2 edits away and fewer than the word has
 * letters, or NULL.
 */
struct str_near {
	size_t best;
	char name[64];
};
#define STR_NEAR_INIT { (size_t)-1, "" }
void str_near_try(struct str_near *n, const char *word, const char *cand,
		  size_t len);
const char *str_near_pick(const struct str_near *n, const char *word);

bool str_starts_with(const char *s, const char *prefix);
bool str_ends_with(const char *s, const char *suffix);

/*
 * Split a line of arguments the way vm.defaults documents it: white
 * space separates, '#' starts a comment outside quotes, single quotes
 * are literal, double quotes allow \" and \\.  Returns 0 or -EINVAL
 * (unterminated quote).
 */
int str_split_args(const char *line, struct strvec *out);

#endif
