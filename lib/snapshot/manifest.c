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

/* The TOKEN text of f's blocks: hex digests, zN for runs of zeros. */
static void add_tokens(const struct mf_file *f, struct strbuf *out)
{
	char hex[65];
	size_t i = 0, run;

	while (i < f->nblk) {
		if (out->len && out->buf[out->len - 1] != ' ')
			strbuf_addch(out, ' ');
		if (manifest_block_zero(f->blk[i])) {
			for (run = 0; i < f->nblk && manifest_block_zero(f->blk[i]);
			     i++)
				run++;
			strbuf_addf(out, "z%zu", run);
		} else {
			sha256_to_hex(f->blk[i++], hex);
			strbuf_addstr(out, hex);
		}
	}
}

int manifest_seal_blocks(struct mf_file *f)
{
	struct strbuf t = STRBUF_INIT;
	int r;

	add_tokens(f, &t);
	r = sha256_hex_of(t.buf ? t.buf : "", t.len, f->hex);
	strbuf_release(&t);
	return r;
}

/*
 * The MANIFEST's text; for_state leaves out CHAIN (and for_seal SEAL too,
 * which seals the rest).
 */
static int format(const struct manifest *m, bool with_parent, bool for_state,
		  bool for_seal, struct strbuf *out)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		if ((for_state || for_seal) && !strcmp(m->f[i].name, "CHAIN"))
			continue;
		if (for_seal && !strcmp(m->f[i].name, SNAP_SEAL))
			continue;
		strbuf_addf(out, "%s %llu %s\n", m->f[i].hex,
			    (unsigned long long)m->f[i].size, m->f[i].name);
	}
	for (i = 0; i < m->n; i++) {
		const struct mf_file *f = &m->f[i];

		if (!f->blocks)
			continue;
		strbuf_addf(out, "blocks %s %u", f->name, f->bsize);
		if (f->nblk)
			strbuf_addch(out, ' ');
		add_tokens(f, out);
		strbuf_addch(out, '\n');
	}
	if (with_parent && m->parent)
		strbuf_addf(out, "parent %s %s\n", m->parent, m->parent_state);
	return 0;
}

int manifest_format(const struct manifest *m, bool with_parent,
		    struct strbuf *out)
{
	return format(m, with_parent, false, false, out);
}

/* The digest of a format of m. */
static int digest_of(const struct manifest *m, bool for_state, bool for_seal,
		     char hex[65])
{
	struct strbuf t = STRBUF_INIT;
	int r = format(m, false, for_state, for_seal, &t);

	if (!r)
		r = sha256_hex_of(t.buf ? t.buf : "", t.len, hex);
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

static int unhex(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
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

/* "blocks NAME BSIZE TOKEN..." after the first word. */
static int parse_blocks(const char *p, const char *end, struct manifest *m,
			size_t lineno, struct strbuf *err)
{
	char *name = word(&p, end), *bs = word(&p, end), *tok;
	struct mf_file *f = NULL;
	uint64_t bsize = 0, n;
	size_t i;
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
	f->bsize = (uint32_t)bsize;
	f->nblk = manifest_nblocks(f->size, f->bsize);
	f->blk = xcalloc(f->nblk ? f->nblk : 1, 32);
	i = 0;
	while ((tok = word(&p, end))) {
		size_t len = strlen(tok);

		if (!(++ntok & 0xffff) && proc_interrupted()) {
			free(tok);
			strbuf_addstr(err, "interrupted");
			r = -EINTR;
			goto out;
		}
		if (tok[0] == 'z' && !parse_uint(tok + 1, 1, f->nblk, &n) &&
		    tok[1] != '0' && n <= f->nblk - i) {
			i += n;	/* already zeros */
		} else if (is_hex64(tok, len) && i < f->nblk) {
			size_t k;

			for (k = 0; k < 32; k++)
				f->blk[i][k] = (unsigned char)(unhex(tok[2 * k]) << 4 |
							       unhex(tok[2 * k + 1]));
			if (manifest_block_zero(f->blk[i])) {
				free(tok);
				bad = true;	/* that digest means zeros */
				break;
			}
			i++;
		} else {
			free(tok);
			bad = true;
			break;
		}
		free(tok);
	}
	if (bad || p < end || i != f->nblk) {
		strbuf_addf(err, "MANIFEST: the blocks of %s do not match its size",
			    f->name);
		goto out;
	}
	{
		char want[65];

		memcpy(want, f->hex, sizeof(want));
		if (manifest_seal_blocks(f) || strcmp(want, f->hex)) {
			strbuf_addf(err, "MANIFEST: the digest of %s does not match its blocks",
				    f->name);
			goto out;
		}
	}
	r = 0;
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
