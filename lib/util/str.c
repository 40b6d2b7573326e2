#include "util/str.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char strbuf_empty[1];
char *strvec_empty[1];

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (!p)
		abort();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	return strbuf_detach(&sb);
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	sb->buf = strbuf_empty;
	sb->len = sb->alloc = 0;
}

void strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->alloc)
		sb->buf[0] = '\0';
}

void strbuf_grow(struct strbuf *sb, size_t extra)
{
	size_t want = sb->len + extra + 1;

	if (want <= sb->alloc)
		return;
	if (want < 2 * sb->alloc)
		want = 2 * sb->alloc;
	if (want < 64)
		want = 64;
	if (!sb->alloc) {
		sb->buf = xmalloc(want);
		sb->buf[0] = '\0';
	} else {
		sb->buf = xrealloc(sb->buf, want);
	}
	sb->alloc = want;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	strbuf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void strbuf_addstr(struct strbuf *sb, const char *s)
{
	strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, int c)
{
	char ch = (char)c;

	strbuf_add(sb, &ch, 1);
}

void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		abort();
	strbuf_grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
}

void strbuf_add_shquoted(struct strbuf *sb, const char *s)
{
	const char *p;
	bool plain = *s != '\0';

	for (p = s; *p && plain; p++)
		plain = isalnum((unsigned char)*p) || strchr("@%+=:,./_-", *p);
	if (plain) {
		strbuf_addstr(sb, s);
		return;
	}
	strbuf_addch(sb, '\'');
	for (p = s; *p; p++) {
		if (*p == '\'')
			strbuf_addstr(sb, "'\\''");
		else
			strbuf_addch(sb, *p);
	}
	strbuf_addch(sb, '\'');
}

void strbuf_add_qemu_escaped(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == ',')
			strbuf_addch(sb, ',');
		strbuf_addch(sb, *s);
	}
}

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and beyond U+10FFFF are not UTF-8 */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

bool str_utf8_is_valid(const char *s)
{
	size_t n;

	for (; *s; s += n)
		if (!(n = utf8_len((const unsigned char *)s)))
			return false;
	return true;
}

char *str_utf8_valid(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	for (; *s; s++) {
		size_t n = utf8_len((const unsigned char *)s);

		if (n == 0) {
			strbuf_addstr(&sb, "\xef\xbf\xbd");	/* U+FFFD */
			continue;
		}
		strbuf_add(&sb, s, n);
		s += n - 1;
	}
	return strbuf_detach(&sb);
}

void strbuf_trim_trailing(struct strbuf *sb)
{
	while (sb->len && isspace((unsigned char)sb->buf[sb->len - 1]))
		sb->buf[--sb->len] = '\0';
}

char *strbuf_detach(struct strbuf *sb)
{
	char *r = sb->alloc ? sb->buf : xstrdup("");

	sb->buf = strbuf_empty;
	sb->len = sb->alloc = 0;
	return r;
}

void strvec_push(struct strvec *sv, const char *s)
{
	if (sv->nr + 2 > sv->alloc) {
		size_t n = sv->alloc ? 2 * sv->alloc : 8;

		sv->v = xrealloc(sv->alloc ? sv->v : NULL, n * sizeof(*sv->v));
		sv->alloc = n;
	}
	sv->v[sv->nr++] = xstrdup(s);
	sv->v[sv->nr] = NULL;
}

void strvec_pushf(struct strvec *sv, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	strvec_push(sv, sb.buf);
	strbuf_release(&sb);
}

void strvec_pushv(struct strvec *sv, char *const *v)
{
	for (; v && *v; v++)
		strvec_push(sv, *v);
}

void strvec_pushl(struct strvec *sv, ...)
{
	const char *s;
	va_list ap;

	va_start(ap, sv);
	while ((s = va_arg(ap, const char *)))
		strvec_push(sv, s);
	va_end(ap);
}

void strvec_clear(struct strvec *sv)
{
	size_t i;

	if (sv->alloc) {
		for (i = 0; i < sv->nr; i++)
			free(sv->v[i]);
		free(sv->v);
	}
	sv->v = strvec_empty;
	sv->nr = sv->alloc = 0;
}

char *strvec_join(const struct strvec *sv, const char *sep, bool quote)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; i < sv->nr; i++) {
		if (i)
			strbuf_addstr(&sb, sep);
		if (quote)
			strbuf_add_shquoted(&sb, sv->v[i]);
		else
			strbuf_addstr(&sb, sv->v[i]);
	}
	return strbuf_detach(&sb);
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p;

	if (!s || !*s)
		return -EINVAL;
	for (p = s; *p; p++) {
		unsigned d;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int unit_shift(char u)
{
	switch (toupper((unsigned char)u)) {
	case 'B':
		return 0;
	case 'K':
		return 10;
	case 'M':
		return 20;
	case 'G':
		return 30;
	case 'T':
		return 40;
	case 'P':
		return 50;
	default:
		return -1;
	}
}

int parse_size(const char *s, char default_unit, uint64_t *out)
{
	uint64_t ip = 0, frac = 0, fden = 1;
	const char *p = s;
	int shift;
	bool digits = false;

	if (!s)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (ip > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		ip = ip * 10 + (uint64_t)(*p - '0');
		digits = true;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (fden < 1000000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fden *= 10;
			}
			digits = true;
		}
	}
	if (!digits)
		return -EINVAL;
	if (*p) {
		shift = unit_shift(*p);
		if (shift < 0)
			return -EINVAL;
		p++;
		if (shift && (*p == 'i' || *p == 'I'))
			p++;
		if (shift && (*p == 'b' || *p == 'B'))
			p++;
		if (*p)
			return -EINVAL;
	} else {
		shift = default_unit ? unit_shift(default_unit) : 0;
	}
	if (shift < 0)
		return -EINVAL;
	if (ip > (UINT64_MAX >> shift) - 1)
		return -ERANGE;
	ip <<= shift;
	ip += (uint64_t)(((unsigned __int128)frac << shift) / fden);
	if (ip == 0)
		return -ERANGE;
	*out = ip;
	return 0;
}

void strbuf_add_size(struct strbuf *sb, uint64_t bytes)
{
	static const char units[] = "PTGMK";
	int i;

	for (i = 0; units[i]; i++) {
		int shift = unit_shift(units[i]);
		uint64_t n = bytes >> shift;

		/* parse_size keeps the top count of a unit for a fraction. */
		if (n && !(bytes & ((1ULL << shift) - 1)) &&
		    n <= (UINT64_MAX >> shift) - 1) {
			strbuf_addf(sb, "%llu%c", (unsigned long long)n,
				    units[i]);
			return;
		}
	}
	strbuf_addf(sb, "%lluB", (unsigned long long)bytes);
}

int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on", NULL };
	static const char *const no[] = { "0", "no", "false", "off", NULL };
	size_t i;

	for (i = 0; yes[i]; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

bool name_is_valid(const char *s)
{
	size_t n = 0;

	if (!s || !*s || *s == '-' || *s == '.')
		return false;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
		if (n >= 64)
			return false;
	}
	return true;
}

size_t str_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, r;
	size_t *d;

	if (la > 64 || lb > 64)
		return (size_t)-1;
	d = xcalloc((la + 1) * (lb + 1), sizeof(*d));
#define D(x, y) d[(x) * (lb + 1) + (y)]
	for (i = 0; i <= la; i++)
		D(i, 0) = i;
	for (j = 0; j <= lb; j++)
		D(0, j) = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) !=
				      tolower((unsigned char)b[j - 1]);
			size_t best = D(i - 1, j) + 1;

			if (D(i, j - 1) + 1 < best)
				best = D(i, j - 1) + 1;
			if (D(i - 1, j - 1) + cost < best)
				best = D(i - 1, j - 1) + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && D(i - 2, j - 2) + 1 < best)
				best = D(i - 2, j - 2) + 1;
			D(i, j) = best;
		}
	}
	r = D(la, lb);
#undef D
	free(d);
	return r;
}

void str_near_try(struct str_near *n, const char *word, const char *cand,
		  size_t len)
{
	char buf[sizeof(n->name)];
	size_t d;

	if (len >= sizeof(buf))
		return;
	memcpy(buf, cand, len);
	buf[len] = '\0';
	d = str_distance(word, buf);
	if (d < n->best) {
		n->best = d;
		memcpy(n->name, buf, len + 1);
	}
}

const char *str_near_pick(const struct str_near *n, const char *word)
{
	return n->best <= 2 && n->best < strlen(word) ? n->name : NULL;
}

bool str_starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

bool str_ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

int str_split_args(const char *line, struct strvec *out)
{
	struct strbuf cur = STRBUF_INIT;
	const char *p = line;
	bool in_word = false;
	int ret = 0;

	while (*p) {
		if (isspace((unsigned char)*p)) {
			if (in_word)
				strvec_push(out, cur.buf);
			strbuf_reset(&cur);
			in_word = false;
			p++;
		} else if (*p == '#' && !in_word) {
			while (*p && *p != '\n')
				p++;
		} else if (*p == '\'') {
			const char *e = strchr(p + 1, '\'');

			if (!e) {
				ret = -EINVAL;
				goto out;
			}
			strbuf_add(&cur, p + 1, (size_t)(e - p - 1));
			in_word = true;
			p = e + 1;
		} else if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				strbuf_addch(&cur, *p);
			}
			if (!*p) {
				ret = -EINVAL;
				goto out;
			}
			in_word = true;
			p++;
		} else {
			if (*p == '\\' && p[1])
				p++;
			strbuf_addch(&cur, *p++);
			in_word = true;
		}
	}
	if (in_word)
		strvec_push(out, cur.buf);
out:
	strbuf_release(&cur);
	return ret;
}

/* One byte as a terminal should not see it. */
static void add_escape(struct strbuf *sb, unsigned char c)
{
	if (c == '\t')
		strbuf_addstr(sb, "\\t");
	else if (c == '\r')
		strbuf_addstr(sb, "\\r");
	else if (c == '\n')
		strbuf_addstr(sb, "\\n");
	else
		strbuf_addf(sb, "\\%03o", c);
}

void strbuf_add_printable(struct strbuf *sb, const char *s, size_t len,
			  const char *keep)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if ((c < 0x20 || c == 0x7f) && !(c && strchr(keep, c))) {
			add_escape(sb, c);
		} else if (c == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 &&
			   p[i + 1] <= 0x9f) {
			/* U+0080..U+009F: CSI and its kind, for a UTF-8
			 * terminal */
			add_escape(sb, c);
			add_escape(sb, p[++i]);
		} else if (c == '\\' && i + 1 < len &&
			   (p[i + 1] < 0x20 || p[i + 1] == 0x7f)) {
			strbuf_addstr(sb, "\\\\");
		} else {
			strbuf_addch(sb, (char)c);
		}
	}
}

char *str_printable(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_add_printable(&sb, s, strlen(s), "");
	return strbuf_detach(&sb);
}
