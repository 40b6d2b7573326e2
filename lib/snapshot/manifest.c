#include "snapshot/manifest.h"
#include "snapshot/seal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/proc.h"

static const unsigned char zero32[32];
static const char zeros[1u << 16];

void manifest_init(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
}

void manifest_release(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->f[i].name);
		free(m->f[i].blk);
		free(m->f[i].inherit);
	}
	free(m->f);
	free(m->parent);
	manifest_init(m);
}

struct mf_file *manifest_add(struct manifest *m, const char *name,
			     uint64_t size, const char *hex)
{
	struct mf_file *f;

	m->f = xrealloc(m->f, (m->n + 1) * sizeof(*m->f));
	f = &m->f[m->n++];
	memset(f, 0, sizeof(*f));
	f->name = xstrdup(name);
	f->size = size;
	snprintf(f->hex, sizeof(f->hex), "%s", hex ? hex : "");
	return f;
}

const struct mf_file *manifest_find(const struct manifest *m,
				    const char *name)
{
	size_t i;

	for (i = 0; m && i < m->n; i++)
		if (!strcmp(m->f[i].name, name))
			return &m->f[i];
	return NULL;
}

bool manifest_resolved(const struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->f[i].ninherit)
			return false;
	return true;
}

size_t manifest_nblocks(uint64_t size, uint32_t bsize)
{
	return (size_t)((size + bsize - 1) / bsize);
}

uint32_t manifest_block_len(uint64_t size, uint32_t bsize, size_t i)
{
	uint64_t start = (uint64_t)i * bsize;

	return size - start < bsize ? (uint32_t)(size - start) : bsize;
}

bool manifest_block_zero(const unsigned char d[32])
{
	return !memcmp(d, zero32, 32);
}

/* Whether block i of f is pf's block i: the same digest and length. */
static bool same_block(const struct mf_file *f, const struct mf_file *pf,
		       size_t i)
{
	return pf && i < pf->nblk &&
	       manifest_block_len(f->size, f->bsize, i) ==
		       manifest_block_len(pf->size, pf->bsize, i) &&
	       !memcmp(f->blk[i], pf->blk[i], 32);
}

/*
 * Where a MANIFEST's text goes: into out whole (at most max bytes, else
 * over), or through sha, out then a window of the text that is hashed
 * and emptied as it fills: a list resolved from parents may be far
 * longer than any MANIFEST read, and its digest needs no copy of it.
 */
struct emit {
	struct strbuf *out;
	struct sha256 *sha;
	size_t max;
	bool over;
};

static void emit_flush(struct emit *e, bool all)
{
	if (e->sha && (all || e->out->len >= (1u << 20))) {
		sha256_update(e->sha, e->out->buf, e->out->len);
		strbuf_reset(e->out);
	} else if (!e->sha && e->out->len > e->max) {
		e->over = true;
		strbuf_reset(e->out);
	}
}

/*
 * The TOKEN text of f's blocks: hex digests, zN for runs of zeros, and
 * =N for runs (not of zeros) the same as pf's (NULL: none).
 */
static void add_tokens(const struct mf_file *f, const struct mf_file *pf,
		       struct emit *e)
{
	char hex[65];
	size_t i = 0, run;

	while (i < f->nblk && !e->over) {
		if (i)
			strbuf_addch(e->out, ' ');
		if (manifest_block_zero(f->blk[i])) {
			for (run = 0; i < f->nblk && manifest_block_zero(f->blk[i]);
			     i++)
				run++;
			strbuf_addf(e->out, "z%zu", run);
		} else if (same_block(f, pf, i)) {
			for (run = 0; i < f->nblk && same_block(f, pf, i) &&
				      !manifest_block_zero(f->blk[i]);
			     i++)
				run++;
			strbuf_addf(e->out, "=%zu", run);
		} else {
			sha256_to_hex(f->blk[i++], hex);
			strbuf_add(e->out, hex, 64);
		}
		emit_flush(e, false);
	}
}

/* The digest of f's TOKEN text written out (no =N), into hex. */
static int blocks_hex(const struct mf_file *f, char hex[65])
{
	struct strbuf t = STRBUF_INIT;
	struct sha256 sha;
	struct emit e = { &t, &sha, 0, false };
	int r = sha256_init(&sha);

	if (!r) {
		add_tokens(f, NULL, &e);
		emit_flush(&e, true);
		r = sha256_final_hex(&sha, hex);
	}
	strbuf_release(&t);
	return r;
}

int manifest_seal_blocks(struct mf_file *f)
{
	return blocks_hex(f, f->hex);
}

/*
 * The MANIFEST's text; for_state leaves out CHAIN (and for_seal SEAL too,
 * which seals the rest); with_parent adds the parent line, and refers
 * to the blocks of pm (NULL: none) that are the same.
 */
static int format(const struct manifest *m, bool with_parent,
		  const struct manifest *pm, bool for_state, bool for_seal,
		  struct emit *e)
{
	size_t i;

	if (!manifest_resolved(m))
		return -EINVAL;
	for (i = 0; i < m->n; i++) {
		if ((for_state || for_seal) && !strcmp(m->f[i].name, "CHAIN"))
			continue;
		if (for_seal && !strcmp(m->f[i].name, SNAP_SEAL))
			continue;
		strbuf_addf(e->out, "%s %llu %s\n", m->f[i].hex,
			    (unsigned long long)m->f[i].size, m->f[i].name);
	}
	for (i = 0; i < m->n; i++) {
		const struct mf_file *f = &m->f[i];
		const struct mf_file *pf = with_parent && m->parent ?
						   manifest_find(pm, f->name) :
						   NULL;

		if (!f->blocks)
			continue;
		if (pf && (!pf->blocks || pf->bsize != f->bsize))
			pf = NULL;
		strbuf_addf(e->out, "blocks %s %u", f->name, f->bsize);
		if (f->nblk)
			strbuf_addch(e->out, ' ');
		add_tokens(f, pf, e);
		strbuf_addch(e->out, '\n');
		emit_flush(e, false);
	}
	if (with_parent && m->parent)
		strbuf_addf(e->out, "parent %s %s\n", m->parent, m->parent_state);
	emit_flush(e, false);
	return e->over ? -E2BIG : 0;
}

int manifest_format(const struct manifest *m, const struct manifest *parent,
		    struct strbuf *out)
{
	struct emit e = { out, NULL, MANIFEST_MAX, false };

	return format(m, true, parent, false, false, &e);
}

/* The digest of a format of m, hashed as it is made. */
static int digest_of(const struct manifest *m, bool for_state, bool for_seal,
		     char hex[65])
{
	struct strbuf t = STRBUF_INIT;
	struct sha256 sha;
	struct emit e = { &t, &sha, 0, false };
	int r = sha256_init(&sha);

	if (r) {
		strbuf_release(&t);
		return r;
	}
	r = format(m, false, NULL, for_state, for_seal, &e);
	emit_flush(&e, true);
	if (!r)
		r = sha256_final_hex(&sha, hex);
	else
		sha256_release(&sha);
	strbuf_release(&t);
	return r;
}

int manifest_seal_digest(const struct manifest *m, char hex[65])
{
	return digest_of(m, false, true, hex);
}

int manifest_state(const struct manifest *m, char hex[65])
{
	return digest_of(m, true, false, hex);
}

static bool is_hex64(const char *s, size_t len)
{
	size_t i;

	if (len != 64)
		return false;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * Lower-case hex digits: their value, anything else 0x10 and up.  A
 * table, as the digits of digests are random and a test per digit
 * mispredicts every other one.
 */
static unsigned char hexval[256];

static void hexval_init(void)
{
	int c;

	if (hexval[0])
		return;
	memset(hexval, 0x10, sizeof(hexval));
	for (c = 0; c < 10; c++)
		hexval['0' + c] = (unsigned char)c;
	for (c = 0; c < 6; c++)
		hexval['a' + c] = (unsigned char)(10 + c);
}

/* 64 hex digits at s into 32 bytes; false when one is not a digit. */
static bool unhex64(const char *s, unsigned char d[32])
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned bad = 0;
	size_t k;

	for (k = 0; k < 32; k++) {
		unsigned hi = hexval[u[2 * k]], lo = hexval[u[2 * k + 1]];

		bad |= hi | lo;
		d[k] = (unsigned char)(hi << 4 | lo);
	}
	return bad < 0x10;
}

/* The next space-separated word of [*p, end) as a NUL-ended copy. */
static char *word(const char **p, const char *end)
{
	const char *s = *p, *e;

	while (s < end && *s == ' ')
		s++;
	for (e = s; e < end && *e != ' '; e++)
		;
	*p = e;
	return e > s ? xasprintf("%.*s", (int)(e - s), s) : NULL;
}

/*
 * The next space-separated word of [*p, end), in place: its start, and
 * its length in *len (0 at the end).  A block line has a word per block,
 * hundreds of thousands of them: none is copied.
 */
static const char *next_word(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *e;

	while (s < end && *s == ' ')
		s++;
	e = memchr(s, ' ', (size_t)(end - s));
	if (!e)
		e = end;
	*p = e;
	*len = (size_t)(e - s);
	return s;
}

/* "zN" (or "=N", as c says) with N from 1 (no leading zero) to max. */
static bool run_token(const char *t, size_t len, char c, size_t max,
		      size_t *n)
{
	char num[21];
	uint64_t v;

	if (len < 2 || len > sizeof(num) || t[0] != c || t[1] == '0')
		return false;
	memcpy(num, t + 1, len - 1);
	num[len - 1] = '\0';
	if (parse_uint(num, 1, max, &v))
		return false;
	*n = (size_t)v;
	return true;
}

/* f's HEX against its blocks. */
static int check_hex(const struct mf_file *f, struct strbuf *err)
{
	char got[65];

	if (blocks_hex(f, got) || strcmp(got, f->hex)) {
		strbuf_addf(err, "MANIFEST: the digest of %s does not match its blocks",
			    f->name);
		return -EINVAL;
	}
	return 0;
}

/* "blocks NAME BSIZE TOKEN..." after the first word. */
static int parse_blocks(const char *p, const char *end, struct manifest *m,
			size_t lineno, struct strbuf *err)
{
	char *name = word(&p, end), *bs = word(&p, end);
	struct mf_file *f = NULL;
	uint64_t bsize = 0;
	size_t i, n;
	bool bad = false;
	int r = -EINVAL;

	size_t held = 0, ntok = 0;

	for (i = 0; name && i < m->n; i++) {
		if (!strcmp(m->f[i].name, name))
			f = &m->f[i];
		held += m->f[i].nblk;
	}
	if (!name || !bs || !f || f->blocks ||
	    parse_uint(bs, 4096, 1u << 24, &bsize) || (bsize & (bsize - 1))) {
		strbuf_addf(err, "MANIFEST line %zu is malformed", lineno);
		goto out;
	}
	/* a size the MANIFEST claims must not make us allocate at will */
	if (f->size / bsize >= MANIFEST_MAX_BLOCKS - held) {
		strbuf_addf(err, "MANIFEST: %s has more blocks than vm holds for one snapshot (%u)",
			    f->name, MANIFEST_MAX_BLOCKS);
		goto out;
	}
	f->blocks = true;
	hexval_init();
	f->bsize = (uint32_t)bsize;
	f->nblk = manifest_nblocks(f->size, f->bsize);
	f->blk = xcalloc(f->nblk ? f->nblk : 1, 32);
	i = 0;
	for (;;) {
		size_t len;
		const char *tok = next_word(&p, end, &len);

		if (!len)
			break;
		if (!(++ntok & 0xffff) && proc_interrupted()) {
			strbuf_addstr(err, "interrupted");
			r = -EINTR;
			goto out;
		}
		if (run_token(tok, len, 'z', f->nblk - i, &n)) {
			i += n;	/* already zeros */
		} else if (m->parent && run_token(tok, len, '=', f->nblk - i, &n)) {
			/* the parent's, given by manifest_resolve() */
			if (f->ninherit &&
			    f->inherit[f->ninherit - 1].start +
					    f->inherit[f->ninherit - 1].n == i) {
				f->inherit[f->ninherit - 1].n += n;
			} else {
				/* doubling: a hostile "=1 z1 =1 z1 ..." stays linear */
				if (!(f->ninherit & (f->ninherit - 1)))
					f->inherit = xrealloc(
						f->inherit,
						(f->ninherit ? 2 * f->ninherit : 1) *
							sizeof(*f->inherit));
				f->inherit[f->ninherit++] =
					(struct mf_run){ .start = i, .n = n };
			}
			i += n;
		} else if (len == 64 && i < f->nblk && unhex64(tok, f->blk[i]) &&
			   /* that digest would mean zeros */
			   !manifest_block_zero(f->blk[i])) {
			i++;
		} else {
			bad = true;
			break;
		}
	}
	if (bad || p < end || i != f->nblk) {
		strbuf_addf(err, "MANIFEST: the blocks of %s do not match its size",
			    f->name);
		goto out;
	}
	/* with =N, once the parent's blocks are in (manifest_resolve) */
	r = f->ninherit ? 0 : check_hex(f, err);
out:
	free(name);
	free(bs);
	return r;
}

int manifest_parse(const char *text, size_t len, struct manifest *m,
		   struct strbuf *err)
{
	const char *p = text, *end = text + len;
	size_t lineno = 0;
	int r = 0;

	manifest_init(m);
	if (len > MANIFEST_MAX) {
		strbuf_addstr(err, "MANIFEST is too large");
		return -EINVAL;
	}
	/* files first, then their blocks: two passes over the lines */
	for (int pass = 0; pass < 2 && !r; pass++) {
		for (p = text, lineno = 0; p < end && !r;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end, *q = p;
			char *w1 = word(&q, le), *w2 = NULL, *w3 = NULL, *w4;
			uint64_t size;

			lineno++;
			w2 = word(&q, le);
			if (!w1 || !w2) {
				r = -EINVAL;
			} else if (!strcmp(w1, "blocks")) {
				if (pass == 1) {
					q = p + 6;	/* after "blocks" */
					r = parse_blocks(q, le, m, lineno, err);
					if (r)
						goto next_err_said;
				}
			} else if (!strcmp(w1, "parent")) {
				w3 = word(&q, le);
				w4 = word(&q, le);
				if (w4 || !w3 || !name_is_valid(w2) ||
				    !is_hex64(w3, strlen(w3)) ||
				    (pass == 0 && m->parent))
					r = -EINVAL;
				else if (pass == 0) {
					m->parent = xstrdup(w2);
					memcpy(m->parent_state, w3, 65);
				}
				free(w4);
			} else {
				w3 = word(&q, le);
				w4 = word(&q, le);
				if (!is_hex64(w1, strlen(w1)) || !w3 || w4 ||
				    parse_uint(w2, 0, UINT64_MAX, &size) ||
				    (pass == 0 && manifest_find(m, w3)))
					r = -EINVAL;
				else if (pass == 0 && m->n >= MANIFEST_MAX_FILES) {
					/* and so each lookup is short */
					strbuf_addf(err, "MANIFEST names more than %d files",
						    MANIFEST_MAX_FILES);
					r = -EINVAL;
					free(w4);
					goto next_err_said;
				} else if (pass == 0)
					manifest_add(m, w3, size, w1);
				free(w4);
			}
			if (r)
				strbuf_addf(err, "MANIFEST line %zu is malformed",
					    lineno);
next_err_said:
			free(w1);
			free(w2);
			free(w3);
			p = nl ? nl + 1 : end;
		}
	}
	if (r)
		manifest_release(m);
	return r;
}

int manifest_resolve(struct manifest *m, const struct manifest *parent,
		     struct strbuf *err)
{
	size_t k, j, i, seen = 0;

	for (k = 0; k < m->n; k++) {
		struct mf_file *f = &m->f[k];
		const struct mf_file *pf = manifest_find(parent, f->name);

		if (!f->ninherit)
			continue;
		if (!pf || !pf->blocks || pf->bsize != f->bsize || pf->ninherit)
			goto missing;
		for (j = 0; j < f->ninherit; j++) {
			for (i = f->inherit[j].start;
			     i < f->inherit[j].start + f->inherit[j].n; i++) {
				if (i >= pf->nblk ||
				    manifest_block_len(f->size, f->bsize, i) !=
					    manifest_block_len(pf->size,
							       pf->bsize, i))
					goto missing;
				if (!(++seen & 0xffff) && proc_interrupted()) {
					strbuf_addstr(err, "interrupted");
					return -EINTR;
				}
				/* zeros are there already, their pages untouched */
				if (!manifest_block_zero(pf->blk[i]))
					memcpy(f->blk[i], pf->blk[i], 32);
			}
		}
		/* resolved only once its HEX holds */
		if (check_hex(f, err))
			return -EINVAL;
		free(f->inherit);
		f->inherit = NULL;
		f->ninherit = 0;
	}
	return 0;
missing:
	strbuf_addf(err, "MANIFEST: %s refers to blocks its parent %s does not have",
		    m->f[k].name, m->parent ? m->parent : "(none)");
	return -EINVAL;
}

void blkhash_init(struct blkhash *h, uint64_t size, uint32_t bsize, bool pad)
{
	memset(h, 0, sizeof(*h));
	h->size = size;
	h->bsize = bsize;
	h->pad = pad;
	h->nblk = manifest_nblocks(size, bsize);
	h->blk = xcalloc(h->nblk ? h->nblk : 1, 32);
	h->seen = xcalloc(h->nblk ? h->nblk : 1, sizeof(*h->seen));
}

/* Finish block cur (padded with zeros when pad). */
static int close_block(struct blkhash *h)
{
	uint32_t want = manifest_block_len(h->size, h->bsize, h->cur);
	int r;

	if (!h->open)
		return 0;
	if (h->filled < want) {
		if (!h->pad) {
			sha256_release(&h->sha);
			h->open = false;
			return -EINVAL;
		}
		while (h->filled < want) {
			size_t n = want - h->filled < sizeof(zeros) ?
					   want - h->filled : sizeof(zeros);

			sha256_update(&h->sha, zeros, n);
			h->filled += n;
		}
	}
	h->open = false;
	h->seen[h->cur] = true;
	if (!h->nonzero) {
		sha256_release(&h->sha);
		memset(h->blk[h->cur], 0, 32);
		return 0;
	}
	r = sha256_final(&h->sha, h->blk[h->cur]);
	/* a digest of all zero bytes would read as zeros: never seen */
	if (!r && manifest_block_zero(h->blk[h->cur]))
		r = -EIO;
	return r;
}

static bool all_zero(const unsigned char *p, size_t len)
{
	while (len >= sizeof(zeros)) {
		if (memcmp(p, zeros, sizeof(zeros)))
			return false;
		p += sizeof(zeros);
		len -= sizeof(zeros);
	}
	return !len || !memcmp(p, zeros, len);
}

int blkhash_feed(struct blkhash *h, uint64_t off, const void *data,
		 size_t len)
{
	const unsigned char *p = data;

	if (h->err)
		return h->err;
	if (off + len > h->size || off + len < off) {
		h->err = -EINVAL;
		return h->err;
	}
	while (len) {
		size_t i = (size_t)(off / h->bsize);
		uint64_t in = off - (uint64_t)i * h->bsize;
		uint32_t blen = manifest_block_len(h->size, h->bsize, i);
		size_t n = blen - in < len ? (size_t)(blen - in) : len;

		if (!h->open || h->cur != i) {
			if ((h->open && i < h->cur) || (!h->open && h->seen[i]) ||
			    (h->open && (h->err = close_block(h))))
				goto bad;
			if (h->seen[i])
				goto bad;
			h->cur = i;
			h->filled = 0;
			h->nonzero = false;
			h->open = true;
			if ((h->err = sha256_init(&h->sha)))
				return h->err;
		}
		if (in != h->filled) {
			if (!h->pad || in < h->filled)
				goto bad;
			while (h->filled < in) {
				size_t z = in - h->filled < sizeof(zeros) ?
						   in - h->filled : sizeof(zeros);

				sha256_update(&h->sha, zeros, z);
				h->filled += z;
			}
		}
		if (data) {
			if (!h->nonzero && !all_zero(p, n))
				h->nonzero = true;
			sha256_update(&h->sha, p, n);
			p += n;
		} else {
			size_t done = 0;

			while (done < n) {
				size_t z = n - done < sizeof(zeros) ? n - done :
								      sizeof(zeros);

				sha256_update(&h->sha, zeros, z);
				done += z;
			}
		}
		h->filled += n;
		off += n;
		len -= n;
	}
	return 0;
bad:
	if (h->open) {
		sha256_release(&h->sha);
		h->open = false;
	}
	if (!h->err)
		h->err = -EINVAL;
	return h->err;
}

int blkhash_finish(struct blkhash *h)
{
	if (!h->err && h->open)
		h->err = close_block(h);
	return h->err;
}

void blkhash_release(struct blkhash *h)
{
	if (h->open)
		sha256_release(&h->sha);
	free(h->blk);
	free(h->seen);
	memset(h, 0, sizeof(*h));
}
