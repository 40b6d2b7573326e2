/* The snapshot reader: every entry checked, blocks proven, a chain applied. */
#include "snapshot/snapshot.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/gzpipe.h"
#include "snapshot/manifest.h"
#include "snapshot/snapint.h"
#include "snapshot/seal.h"
#include "util/fsutil.h"
#include "util/proc.h"

#define MAX_FILES 64

#define MAX_FILE_SIZE (1ull << 44)	/* 16 TiB: more is a damaged header */

struct got_file {
	char *name;
	uint64_t size;
	char hex[65];		/* a file stored whole: its digest */
	bool by_blocks;		/* else: its block digests in h */
	struct blkhash h;
	const struct mf_file *base;	/* a delta: the base's file */
};

/* What CHAIN says: the parent, the block size, the size restored. */
struct chain_info {
	bool v2;
	char *parent;
	char pstate[65];
	uint32_t bsize;
	uint64_t size;
};

/* Progress over the archives of a chain: compressed bytes read. */
struct rprog {
	const struct snap_progress *progress;
	uint64_t base, total;
	const struct gzpipe *gz;	/* pigz inflating, or NULL */
};

/* Compressed bytes of this archive read so far. */
static uint64_t rprog_bytes(const struct rprog *p, struct archive *a)
{
	if (p->gz && p->gz->src >= 0)
		return gzpipe_consumed(p->gz);
	return (uint64_t)archive_filter_bytes(a, -1);
}

/* Only what @backup writes: a crafted archive cannot drop a job file. */
static bool plain_name(const char *s)
{
	static const char *const fixed[] = { "TS", "DESCRIPTION", "guest.conf",
					     "vm.defaults", "efivars.bin",
					     "saved-state", "CHAIN", SNAP_MANIFEST,
					     SNAP_SEAL, SNAP_TAKEN, NULL };
	size_t i;

	for (i = 0; fixed[i]; i++)
		if (!strcmp(s, fixed[i]))
			return true;
	return snap_disk_index(s) >= 0 || snap_image_index(s) >= 0;
}


/*
 * With dirfd, the file an entry is written to: a delta's in place (its
 * base's blocks are kept), else a new one.  *fd stays -1 without dirfd.
 */
static int open_target(int dirfd, const struct got_file *g, bool in_place,
		       int *fd, struct strbuf *err)
{
	int r;

	if (dirfd >= 0 && in_place) {
		*fd = openat(dirfd, g->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	} else if (dirfd >= 0) {
		if (unlinkat(dirfd, g->name, 0) < 0 && errno != ENOENT) {
			r = -errno;
			strbuf_addf(err, "%s: %s", g->name, strerror(-r));
			return r;
		}
		*fd = openat(dirfd, g->name, O_WRONLY | O_CREAT | O_EXCL |
			     O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (dirfd >= 0 && *fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", g->name, strerror(-r));
		return r;
	}
	return 0;
}

/*
 * An entry's data, each block checked against the size its header gave
 * before it is written (fd >= 0) and hashed: into d (a file stored
 * whole) or g->h (by blocks).
 */
static int read_entry_data(struct archive *a, int fd, struct got_file *g,
			   struct snap_digest *d, struct rprog *p,
			   struct strbuf *err)
{
	int r;

	for (;;) {
		const void *blk;
		size_t len;
		la_int64_t off;
		int ar = archive_read_data_block(a, &blk, &len, &off);

		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			const char *why = archive_error_string(a);

			strbuf_addf(err, "archive is %s at %s",
				    why && strstr(why, "runcated") ? "truncated" :
								     "damaged",
				    g->name);
			if (why && !strstr(why, "runcated"))
				strbuf_addf(err, " (%s)", why);
			return -EIO;
		}
		if (proc_interrupted()) {
			strbuf_addstr(err, "interrupted");
			return -EINTR;
		}
		if (off < 0 || (uint64_t)off + len > g->size) {
			strbuf_addf(err, "archive is damaged at %s (data beyond its size)",
				    g->name);
			return -EIO;
		}
		if (fd >= 0) {
			r = snap_pwrite_all(fd, blk, len, (off_t)off);
			if (r) {
				strbuf_addf(err, "%s: %s", g->name, strerror(-r));
				return r;
			}
		}
		if (!g->by_blocks) {
			snap_digest_data(d, (uint64_t)off, blk, len);
		} else if (blkhash_feed(&g->h, (uint64_t)off, blk, len)) {
			strbuf_addf(err, "archive is damaged at %s (a block stored in part)",
				    g->name);
			return -EIO;
		}
		/* compressed bytes read against the archives' size */
		snap_tick(p->progress, p->base + rprog_bytes(p, a), p->total);
	}
	return 0;
}

static int extract_entry(struct archive *a, struct archive_entry *e,
			 int dirfd, struct got_file *g,
			 const struct chain_info *c, const struct snap_base *base,
			 struct rprog *p, struct strbuf *err)
{
	struct snap_digest d;
	uint64_t size = (uint64_t)archive_entry_size(e);
	const struct mf_file *bf = NULL;
	int fd = -1, r = 0;

	snap_digest_init(&d);
	g->size = size;
	g->by_blocks = c->v2 && snap_block_stored(g->name);
	if (g->by_blocks && c->parent && base)
		bf = manifest_find(base->m, g->name);
	if (bf && (!bf->blocks || bf->bsize != c->bsize))
		bf = NULL;
	g->base = bf;
	if (archive_entry_size(e) < 0 || size > MAX_FILE_SIZE) {
		strbuf_addf(err, "archive is damaged at %s (a size of %lld bytes)",
			    g->name, (long long)archive_entry_size(e));
		r = -EINVAL;
		goto out;
	}
	r = open_target(dirfd, g, bf != NULL, &fd, err);
	if (r)
		goto out;
	if (g->by_blocks)
		blkhash_init(&g->h, size, c->bsize, !bf);
	r = read_entry_data(a, fd, g, &d, p, err);
	if (r)
		goto out;
	if (g->by_blocks && blkhash_finish(&g->h)) {
		strbuf_addf(err, "archive is damaged at %s (a block stored in part)",
			    g->name);
		r = -EIO;
		goto out;
	}
	/* a delta is cut to size and has its holes made once checked */
	if (fd >= 0 && !bf && ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", g->name, strerror(-r));
		goto out;
	}
	if (!g->by_blocks) {
		r = snap_digest_final(&d, size, g->hex);
		if (r)
			strbuf_addf(err, "%s: SHA-256: %s", g->name, strerror(-r));
	}
out:
	snap_digest_release(&d);
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * A reader of the tar.gz at path.  fast: pigz -d in a process of ours
 * (gz) inflates while this one hashes and writes; otherwise (or without
 * pigz) libarchive's zlib does both in turn.  The caller has checked the
 * gzip magic.  End it with close_reader().
 */
static struct archive *open_reader(const char *path, bool fast,
				   struct gzpipe *gz, struct strbuf *err)
{
	struct archive *a = archive_read_new();
	char *pigz = fast ? fs_which("pigz") : NULL;
	int r = 0;

	*gz = (struct gzpipe)GZPIPE_INIT;
	if (pigz) {
		r = gzpipe_inflate(pigz, path, gz);
		if (r)
			strbuf_addf(err, "%s: cannot start pigz: %s", path,
				    strerror(-r));
	}
	free(pigz);
	if (r) {
		archive_read_free(a);
		return NULL;
	}
	if (!gz->pid)
		archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	if ((gz->pid ? archive_read_open_fd(a, gz->fd, 1 << 16) :
		       archive_read_open_filename(a, path, 1 << 16)) !=
	    ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", path, archive_error_string(a));
		archive_read_free(a);
		gzpipe_release(gz);
		return NULL;
	}
	return a;
}

/*
 * End a reader.  r: the outcome so far; when it is success, the
 * inflating pigz must have ended well too (a bad CRC at the stream's end
 * is only seen there).  Returns the outcome.
 */
static int close_reader(struct archive *a, struct gzpipe *gz, int r,
			struct strbuf *err)
{
	if (a)
		archive_read_free(a);
	if (!r)
		r = gzpipe_finish(gz, err);
	gzpipe_release(gz);
	return r;
}

/* Make [off, off + len) of fd read as zeros, as a hole where it can. */
static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const char z[1u << 16];

	if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)off, (off_t)len))
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	while (len) {
		size_t n = len < sizeof(z) ? (size_t)len : sizeof(z);
		int r = snap_pwrite_all(fd, z, n, (off_t)off);

		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * A file stored by blocks against its MANIFEST line.  Every block of
 * the result is proven: one stored here has the digest the MANIFEST
 * gives; one not stored is zeros (made a hole) or, in a delta, the
 * base's block of the same length and digest, which the base's own
 * check proved.  With dirfd, a delta is then cut to size.
 */
static int check_blocks(int dirfd, const struct got_file *g,
			const struct mf_file *f, const char *self,
			struct strbuf *err)
{
	const struct mf_file *bf = g->base;
	int fd = -1, r = 0;
	size_t i;

	if (dirfd >= 0 && bf) {
		fd = openat(dirfd, g->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || ftruncate(fd, (off_t)f->size) < 0) {
			r = -errno;
			strbuf_addf(err, "%s: %s", g->name, strerror(-r));
			goto out;
		}
	}
	for (i = 0; i < f->nblk && !r; i++) {
		uint32_t len = manifest_block_len(f->size, f->bsize, i);

		if (!bf || g->h.seen[i]) {
			if (memcmp(g->h.blk[i], f->blk[i], 32)) {
				strbuf_addf(err, "checksum mismatch in %s (block %zu)",
					    g->name, i);
				r = -EINVAL;
			}
		} else if (manifest_block_zero(f->blk[i])) {
			if (fd >= 0 && i < bf->nblk &&
			    !manifest_block_zero(bf->blk[i])) {
				r = zero_range(fd, (uint64_t)i * f->bsize, len);
				if (r)
					strbuf_addf(err, "%s: %s", g->name,
						    strerror(-r));
			}
		} else if (i >= bf->nblk ||
			   manifest_block_len(bf->size, bf->bsize, i) != len ||
			   memcmp(bf->blk[i], f->blk[i], 32)) {
			strbuf_addf(err, "block %zu of %s is neither in %s nor in its parent",
				    i, g->name, self);
			r = -EINVAL;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/* The MANIFEST against what was read; with dirfd, deltas finished. */
static int check_manifest(int dirfd, const struct manifest *m,
			  const struct chain_info *c,
			  const struct snap_base *base, struct got_file *got,
			  int ngot, const char *self, struct strbuf *err)
{
	bool *seen = xcalloc((size_t)ngot + 1, sizeof(*seen));
	size_t k;
	int r = 0, i;

	if (c->parent && (!m->parent || strcmp(m->parent, c->parent) ||
			  strcmp(m->parent_state, c->pstate))) {
		strbuf_addstr(err, "CHAIN and MANIFEST name different parents");
		r = -EINVAL;
	} else if (!c->parent && m->parent) {
		strbuf_addf(err, "MANIFEST names a parent (%s), CHAIN none",
			    m->parent);
		r = -EINVAL;
	}
	for (k = 0; k < m->n && !r; k++) {
		const struct mf_file *f = &m->f[k];

		for (i = 0; i < ngot; i++)
			if (!strcmp(got[i].name, f->name))
				break;
		if (i == ngot) {
			strbuf_addf(err, "%s is in the MANIFEST but not in the archive",
				    f->name);
			r = -EINVAL;
		} else if (got[i].size != f->size) {
			strbuf_addf(err, "%s has %llu bytes, the MANIFEST says %llu",
				    f->name, (unsigned long long)got[i].size,
				    (unsigned long long)f->size);
			r = -EINVAL;
		} else if (got[i].by_blocks != f->blocks ||
			   (f->blocks && f->bsize != c->bsize)) {
			strbuf_addf(err, "MANIFEST: %s is not stored as it says",
				    f->name);
			r = -EINVAL;
		} else if (f->blocks) {
			r = check_blocks(dirfd, &got[i], f, self, err);
			seen[i] = true;
		} else if (strcmp(got[i].hex, f->hex)) {
			strbuf_addf(err, "checksum mismatch in %s", f->name);
			r = -EINVAL;
		} else {
			seen[i] = true;
		}
	}
	for (i = 0; !r && i < ngot; i++) {
		if (!seen[i]) {
			strbuf_addf(err, "%s is not in the MANIFEST", got[i].name);
			r = -EINVAL;
		}
	}
	/* what the base had and this snapshot has not goes */
	for (k = 0; !r && dirfd >= 0 && base && k < base->m->n; k++)
		if (!manifest_find(m, base->m->f[k].name) &&
		    unlinkat(dirfd, base->m->f[k].name, 0) < 0 &&
		    errno != ENOENT) {
			r = -errno;
			strbuf_addf(err, "%s: %s", base->m->f[k].name,
				    strerror(-r));
		}
	free(seen);
	return r;
}

/* CHAIN: "parent NAME STATE", "block N", "size N", each at most once. */
static int parse_chain(const char *text, struct chain_info *c)
{
	const char *p = text;

	c->v2 = true;
	while (*p) {
		const char *nl = strchr(p, '\n');
		char *line = xasprintf("%.*s", (int)(nl ? nl - p : (long)strlen(p)),
				       p);
		char k[16], v1[128], v2[80], extra[2];
		int n = sscanf(line, "%15s %127s %79s %1s", k, v1, v2, extra);
		uint64_t x;
		bool ok = false;

		if (n == 3 && !strcmp(k, "parent") && !c->parent &&
		    name_is_valid(v1) && strlen(v2) == 64 &&
		    strspn(v2, "0123456789abcdef") == 64) {
			c->parent = xstrdup(v1);
			memcpy(c->pstate, v2, 65);
			ok = true;
		} else if (n == 2 && !strcmp(k, "block") && !c->bsize &&
			   !parse_uint(v1, 4096, 1u << 24, &x) && !(x & (x - 1))) {
			c->bsize = (uint32_t)x;
			ok = true;
		} else if (n == 2 && !strcmp(k, "size") &&
			   !parse_uint(v1, 0, UINT64_MAX, &x)) {
			c->size = x;
			ok = true;
		}
		free(line);
		if (!ok)
			return -EINVAL;
		p = nl ? nl + 1 : p + strlen(p);
	}
	return c->bsize ? 0 : -EINVAL;
}

/* A small entry (CHAIN, MANIFEST) into sb; -E2BIG past max. */
static int read_small(struct archive *a, size_t max, struct strbuf *sb)
{
	const void *blk;
	size_t len;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(a, &blk, &len, &off)) ==
	       ARCHIVE_OK) {
		if (sb->len + len > max)
			return -E2BIG;
		strbuf_add(sb, blk, len);
	}
	return r == ARCHIVE_EOF ? 0 : -EIO;
}

static void chain_release(struct chain_info *c)
{
	free(c->parent);
	memset(c, 0, sizeof(*c));
}

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* What snap_apply() holds while it reads one archive of a chain. */
struct apply {
	const char *path, *dir;
	const struct snap_base *base;
	struct got_file got[MAX_FILES];
	int ngot;
	struct chain_info c;
	struct strbuf text;	/* the MANIFEST as read */
	bool have_manifest, have_files;
	struct manifest m;
	struct rprog p;
	struct gzpipe gz;
	struct archive *a;
	int dirfd;
};

/* The archive opened (pigz inflating), and dir when there is one. */
static int apply_open(struct apply *s, struct strbuf *err)
{
	struct stat st;
	int r;

	s->a = open_reader(s->path, true, &s->gz, err);
	if (!s->a)
		return -EIO;
	s->p.gz = &s->gz;
	/* Progress counts compressed bytes read: the only total known. */
	if (!s->p.total && !stat(s->path, &st))
		s->p.total = (uint64_t)st.st_size;
	if (s->dir) {
		s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
				O_NOFOLLOW);
		if (s->dirfd < 0) {
			r = -errno;
			strbuf_addf(err, "%s: %s", s->dir, strerror(-r));
			return r;
		}
	}
	return 0;
}

/*
 * CHAIN (its name already in got[ngot]): before any file stored by
 * blocks, well formed, and naming the parent this archive is applied
 * on, when it has one.
 */
static int apply_chain(struct apply *s, struct strbuf *err)
{
	struct strbuf ct = STRBUF_INIT;
	struct snap_digest d;
	int r;

	s->ngot++;
	r = s->have_files ? -EINVAL : read_small(s->a, 4096, &ct);
	if (!r)
		r = parse_chain(ct.buf ? ct.buf : "", &s->c);
	if (r) {
		strbuf_addstr(err, s->have_files ?
				   "archive holds CHAIN after its files" :
				   "CHAIN is malformed");
		strbuf_release(&ct);
		return -EINVAL;
	}
	snap_digest_init(&d);
	snap_digest_data(&d, 0, ct.buf ? ct.buf : "", ct.len);
	s->got[s->ngot - 1].size = ct.len;
	r = snap_digest_final(&d, ct.len, s->got[s->ngot - 1].hex);
	snap_digest_release(&d);
	strbuf_release(&ct);
	if (r) {
		strbuf_addstr(err, "CHAIN: SHA-256 failed");
		return r;
	}
	if (s->c.parent && !s->base) {
		strbuf_addf(err, "%s is incremental: it needs its parent %s",
			    base_of(s->path), s->c.parent);
		return -ENOENT;
	}
	if (s->c.parent && strcmp(s->base->state, s->c.pstate)) {
		strbuf_addf(err, "its parent %s is not the snapshot it was made from (%s was replaced)",
			    s->c.parent, s->base->name);
		return -EINVAL;
	}
	return 0;
}

/* An entry's name: one @backup writes, a plain file, not seen before. */
static int check_name(const struct apply *s, struct archive_entry *e,
		      const char *name, struct strbuf *err)
{
	int i;

	if (!name || !plain_name(name) ||
	    archive_entry_filetype(e) != AE_IFREG ||
	    archive_entry_hardlink(e) || archive_entry_symlink(e)) {
		strbuf_addf(err, "archive holds '%s', which is not a plain file name of a snapshot (links, paths, devices and other files are refused)",
			    name ? name : "?");
		return -EINVAL;
	}
	for (i = 0; i < s->ngot; i++)
		if (!strcmp(s->got[i].name, name)) {
			strbuf_addf(err, "%s: stored twice", name);
			return -EINVAL;
		}
	return 0;
}

/* One entry whose name was checked: the MANIFEST, CHAIN or a file. */
static int apply_entry(struct apply *s, struct archive_entry *e,
		       const char *name, struct strbuf *err)
{
	int r;

	if (!strcmp(name, SNAP_MANIFEST)) {
		r = read_small(s->a, MANIFEST_MAX, &s->text);
		if (r) {
			strbuf_addstr(err, r == -E2BIG ?
					  "MANIFEST is too large" :
					  "archive is truncated at MANIFEST");
			return r == -E2BIG ? -EINVAL : -EIO;
		}
		s->have_manifest = true;
		return 0;
	}
	if (s->ngot == MAX_FILES) {
		strbuf_addstr(err, "archive holds too many files");
		return -EINVAL;
	}
	s->got[s->ngot].name = xstrdup(name);
	if (!strcmp(name, "CHAIN"))
		return apply_chain(s, err);
	if (snap_block_stored(name))
		s->have_files = true;
	r = extract_entry(s->a, e, s->dirfd, &s->got[s->ngot], &s->c, s->base,
			  &s->p, err);
	s->ngot++;
	return r;
}

/* Every entry to the archive's end; nothing may follow the MANIFEST. */
static int apply_entries(struct apply *s, struct strbuf *err)
{
	struct archive_entry *e;
	int r;

	for (;;) {
		const char *name;
		int ar = archive_read_next_header(s->a, &e);

		if (ar == ARCHIVE_EOF)
			return 0;
		if (ar != ARCHIVE_OK) {
			const char *why = archive_error_string(s->a);

			strbuf_addf(err, "archive is %s%s%s",
				    why && strstr(why, "runcated") ? "truncated" :
								     "damaged",
				    s->ngot ? " after " : "",
				    s->ngot ? s->got[s->ngot - 1].name : "");
			return -EIO;
		}
		if (s->have_manifest) {
			strbuf_addstr(err, "archive has entries after its MANIFEST");
			return -EINVAL;
		}
		name = archive_entry_pathname(e);
		r = check_name(s, e, name, err);
		if (!r)
			r = apply_entry(s, e, name, err);
		if (r)
			return r;
	}
}

/*
 * The stream's end, then what was read against the MANIFEST; on
 * success *out gets the MANIFEST.
 */
static int apply_finish(struct apply *s, struct manifest *out,
			struct strbuf *err)
{
	int r;

	/* the stream's end (its CRC and length) is only checked by pigz */
	r = gzpipe_finish(&s->gz, err);
	if (r)
		return r;
	if (!s->have_manifest) {
		strbuf_addstr(err, s->ngot ?
			      "archive is truncated: no MANIFEST at its end" :
			      "archive holds no files (no MANIFEST)");
		return -EIO;
	}
	r = manifest_parse(s->text.buf ? s->text.buf : "", s->text.len, &s->m,
			   err);
	/* blocks that are the parent's: base is that parent (apply_chain) */
	if (!r && !manifest_resolved(&s->m)) {
		if (s->c.parent && s->base)
			r = manifest_resolve(&s->m, s->base->m, err);
		else {
			strbuf_addstr(err, "MANIFEST refers to a parent's blocks, CHAIN names no parent");
			r = -EINVAL;
		}
	}
	if (!r)
		r = check_manifest(s->dirfd, &s->m, &s->c,
				   s->c.parent ? s->base : NULL, s->got,
				   s->ngot, base_of(s->path), err);
	if (!r) {
		*out = s->m;
		manifest_init(&s->m);
	}
	return r;
}

static void apply_release(struct apply *s)
{
	int i;

	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->a)
		archive_read_free(s->a);
	gzpipe_release(&s->gz);
	for (i = 0; i < s->ngot; i++) {
		free(s->got[i].name);
		blkhash_release(&s->got[i].h);
	}
	manifest_release(&s->m);
	chain_release(&s->c);
	strbuf_release(&s->text);
}

int snap_apply(const char *path, const char *dir, const struct snap_base *base,
	       struct manifest *out, uint64_t *done, uint64_t total,
	       const struct snap_progress *progress, struct strbuf *err)
{
	struct apply s = { .path = path, .dir = dir, .base = base,
			   .text = STRBUF_INIT, .gz = GZPIPE_INIT, .dirfd = -1,
			   .p = { progress, done ? *done : 0, total, NULL } };
	int r;

	manifest_init(&s.m);
	manifest_init(out);
	/* A plain tar would read as well; a snapshot is gzip or nothing. */
	if (snap_gzip_check_magic(path, err))
		return -EINVAL;
	r = apply_open(&s, err);
	if (!r)
		r = apply_entries(&s, err);
	if (!r)
		r = apply_finish(&s, out, err);
	r = snap_interrupted_instead(r, err);
	if (r == -ENOSPC || r == -EDQUOT) {
		r = -ENOSPC;
		snap_no_space(dir ? dir : path, err);
	} else if (r == -EIO || (r == -EINVAL && !s.c.v2)) {
		snap_explain_gzip(path, s.ngot ? s.got[s.ngot - 1].name : NULL,
				  err);
	}
	if (done && s.a)
		*done = s.p.base + rprog_bytes(&s.p, s.a);
	apply_release(&s);
	return r;
}

int snap_extract(const char *path, const char *dir,
		 const struct snap_progress *progress, struct strbuf *err)
{
	struct manifest m;
	int r = snap_apply(path, dir, NULL, &m, NULL, 0, progress, err);

	manifest_release(&m);
	if (!r && dir)
		r = snap_sync(dir, err);
	return r;
}

int snap_read_meta(const char *path, struct snap_meta *meta,
		   struct strbuf *err)
{
	struct gzpipe gz;	/* unused: libarchive's zlib reads */
	struct archive *a;
	struct archive_entry *e;
	struct stat st;
	int found = 0, r = 0;

	memset(meta, 0, sizeof(*meta));
	if (stat(path, &st) == 0)
		meta->size = (uint64_t)st.st_size;
	a = open_reader(path, false, &gz, err);
	if (!a)
		return -EIO;
	snprintf(meta->taken, sizeof(meta->taken), "offline");
	/* TS, DESCRIPTION, CHAIN, TAKEN and guest.conf come first: no need
	 * to read the disks. */
	while (found < 5 && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		struct strbuf sb = STRBUF_INIT;

		if (!name || (strcmp(name, "TS") && strcmp(name, "DESCRIPTION") &&
			      strcmp(name, "CHAIN") && strcmp(name, SNAP_TAKEN) &&
			      strcmp(name, "guest.conf")))
			break;
		if (read_small(a, strcmp(name, "guest.conf") ? 4096 :
				  SNAP_META_CONF_MAX, &sb)) {
			strbuf_release(&sb);
			r = -EIO;
			break;
		}
		if (!strcmp(name, "TS")) {
			meta->ts = (time_t)strtoll(sb.buf ? sb.buf : "0", NULL, 10);
		} else if (!strcmp(name, SNAP_TAKEN)) {
			/* someone's text: only the words vm writes */
			snprintf(meta->taken, sizeof(meta->taken), "%s",
				 sb.buf && (!strcmp(sb.buf, "crash-consistent\n") ||
					    !strcmp(sb.buf, "frozen\n")) ?
				 sb.buf : "unknown\n");
			meta->taken[strcspn(meta->taken, "\n")] = '\0';
		} else if (!strcmp(name, "guest.conf")) {
			meta->guest_conf = strbuf_detach(&sb);
		} else if (!strcmp(name, "CHAIN")) {
			struct chain_info c;

			memset(&c, 0, sizeof(c));
			if (parse_chain(sb.buf ? sb.buf : "", &c)) {
				r = -EINVAL;
			} else {
				meta->chained = true;
				meta->parent = c.parent;
				c.parent = NULL;
				memcpy(meta->parent_state, c.pstate, 65);
				meta->data = c.size;
			}
			chain_release(&c);
		} else {
			char *nl = sb.buf ? strchr(sb.buf, '\n') : NULL;

			if (nl)
				*nl = '\0';
			meta->description = xstrdup(sb.buf ? sb.buf : "");
		}
		strbuf_release(&sb);
		found++;
	}
	if (!meta->description)
		meta->description = xstrdup("");
	archive_read_free(a);
	if (r)
		strbuf_addf(err, "%s: cannot read", path);
	return r;
}

void snap_meta_release(struct snap_meta *meta)
{
	free(meta->description);
	free(meta->parent);
	free(meta->guest_conf);
	memset(meta, 0, sizeof(*meta));
}

int snap_read_manifest(const char *path, struct manifest *m,
		       struct strbuf *err)
{
	struct strbuf text = STRBUF_INIT;
	struct gzpipe gz;
	struct archive *a;
	struct archive_entry *e;
	int r = -EIO, ar;

	manifest_init(m);
	if (snap_gzip_check_magic(path, err))
		return -EINVAL;
	a = open_reader(path, true, &gz, err);
	if (!a)
		return -EIO;
	while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);

		if (proc_interrupted()) {
			r = -EINTR;
			break;
		}
		if (!name || strcmp(name, SNAP_MANIFEST)) {
			if (archive_read_data_skip(a) != ARCHIVE_OK)
				break;
			continue;
		}
		r = read_small(a, MANIFEST_MAX, &text);
		if (r) {
			r = -EIO;
			break;
		}
		r = manifest_parse(text.buf ? text.buf : "", text.len, m, err);
		goto out;
	}
	if (r == -EINTR)
		strbuf_addstr(err, "interrupted");
	else
		strbuf_addstr(err, "no MANIFEST could be read");
	if (r == -EIO)
		snap_explain_gzip(path, NULL, err);
out:
	if (close_reader(a, &gz, r, err) && !r) {
		/* the MANIFEST read, but the stream after it is not sound */
		manifest_release(m);
		r = -EIO;
		snap_explain_gzip(path, NULL, err);
	}
	strbuf_release(&text);
	return r;
}

