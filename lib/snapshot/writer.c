/* The snapshot writer: a tarball of whole files and changed blocks. */
#include "snapshot/snapshot.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/statvfs.h>

#include "snapshot/gzpipe.h"
#include "snapshot/manifest.h"
#include "snapshot/snapint.h"
#include "snapshot/seal.h"
#include "util/fsutil.h"
#include "util/proc.h"

/* The data regions of fd (one region where holes cannot be seen). */
static int file_regions(int fd, uint64_t size, struct range **out, int *n)
{
	struct range *r = NULL;
	uint64_t pos = 0;
	int count = 0;

	while (pos < size) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno == ENXIO)
				break;
			if (errno != EINVAL) {
				free(r);
				return -errno;
			}
			data = (off_t)pos;	/* no SEEK_DATA: all data */
			hole = (off_t)size;
		} else {
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0)
				hole = (off_t)size;
		}
		r = xrealloc(r, (size_t)(count + 1) * sizeof(*r));
		r[count].off = (uint64_t)data;
		r[count].len = (uint64_t)hole - (uint64_t)data;
		count++;
		pos = (uint64_t)hole;
	}
	*out = r;
	*n = count;
	return 0;
}


static int write_mem(struct archive *a, const char *name, const char *data,
		     time_t ts, struct manifest *m, struct strbuf *err)
{
	struct archive_entry *e = archive_entry_new();
	struct snap_digest d;
	char hex[65];
	size_t len = strlen(data);
	int r = 0;

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, ts, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (len && archive_write_data(a, data, len) != (la_ssize_t)len)) {
		strbuf_addf(err, "%s: %s", name, archive_error_string(a));
		r = -EIO;
	}
	archive_entry_free(e);
	if (m && !r) {
		snap_digest_init(&d);
		snap_digest_data(&d, 0, data, len);
		r = snap_digest_final(&d, len, hex);
		snap_digest_release(&d);
		if (r)
			strbuf_addf(err, "%s: SHA-256: %s", name, strerror(-r));
		else
			manifest_add(m, name, len, hex);
	}
	return r;
}

/* What one file of a snapshot is being written with. */
struct wfile {
	const struct snap_file *f;
	int fd;
	uint64_t size;
	char *buf;
	const char *zeros;
	uint64_t *done, total;
	const struct snap_progress *progress;
	struct strbuf *err;
	uint64_t *read;		/* bytes read, for the caller */
};

/* pread all of [off, off + len) into buf; shorter is "file shrank". */
static int read_at(struct wfile *w, uint64_t off, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t got = pread(w->fd, w->buf + have, len - have,
				    (off_t)(off + have));

		if (got < 0 && errno == EINTR && !proc_interrupted())
			continue;
		if (proc_interrupted()) {
			strbuf_addstr(w->err, "interrupted");
			return -EINTR;
		}
		if (got <= 0) {
			strbuf_addf(w->err, "%s: %s", w->f->path,
				    got < 0 ? strerror(errno) :
					      "file shrank while read");
			return got < 0 ? -errno : -EIO;
		}
		have += (size_t)got;
	}
	*w->read += len;
	return 0;
}

/*
 * The digests of every block of the file, reading only its data: the
 * first pass of a file stored as a delta, which must know which blocks
 * changed before the entry's header (its sparse map) is written.
 */
static int hash_blocks(struct wfile *w, const struct range *reg, int nreg,
		       struct blkhash *h)
{
	int i, r = 0;

	for (i = 0; !r && i < nreg; i++) {
		uint64_t pos = reg[i].off, end = reg[i].off + reg[i].len;

		while (!r && pos < end) {
			size_t n = end - pos < SNAP_CHUNK ? (size_t)(end - pos) : SNAP_CHUNK;

			r = read_at(w, pos, n);
			if (!r && blkhash_feed(h, pos, w->buf, n))
				r = -EIO;
			pos += n;
			*w->done += n;
			snap_tick(w->progress, *w->done, w->total);
		}
	}
	if (!r && blkhash_finish(h))
		r = -EIO;
	if (r == -EIO && !w->err->len)
		strbuf_addf(w->err, "%s: SHA-256 failed", w->f->path);
	return r;
}

/*
 * Which blocks of the file its clean runs cover whole, where the
 * parent's file has a block of the same length: those keep the
 * parent's digests and are not read.  NULL when none.
 */
static bool *clean_blocks(const struct wfile *w, const struct mf_file *pf,
			  size_t nblk)
{
	const struct snap_file *f = w->f;
	bool *clean = NULL;
	size_t i, c = 0;

	for (i = 0; i < nblk && i < pf->nblk && c < f->nclean; i++) {
		uint64_t off = (uint64_t)i * MANIFEST_BLOCK;
		uint32_t len = manifest_block_len(w->size, MANIFEST_BLOCK, i);

		while (c < f->nclean && f->clean[c].off + f->clean[c].len <= off)
			c++;
		if (c == f->nclean || f->clean[c].off > off ||
		    f->clean[c].off + f->clean[c].len < off + len ||
		    manifest_block_len(pf->size, pf->bsize, i) != len)
			continue;
		if (!clean)
			clean = xcalloc(nblk, sizeof(*clean));
		clean[i] = true;
	}
	return clean;
}

/*
 * The data regions less the clean blocks that lie whole in one of them:
 * what must be read.  Those left out are marked in skip (a clean block
 * that is even in part a hole is read: the file is as it is).
 */
static struct range *less_clean(const struct wfile *w, const struct range *reg,
				int nreg, const bool *clean, bool *skip,
				int *n)
{
	struct range *out = NULL;
	int i, count = 0;

	for (i = 0; i < nreg; i++) {
		uint64_t pos = reg[i].off, end = reg[i].off + reg[i].len;

		while (pos < end) {
			size_t b = (size_t)(pos / MANIFEST_BLOCK);
			uint64_t bstart = (uint64_t)b * MANIFEST_BLOCK;
			uint64_t bend = bstart + manifest_block_len(w->size, MANIFEST_BLOCK, b);
			uint64_t stop = bend < end ? bend : end;

			if (clean[b] && pos == bstart && stop == bend) {
				skip[b] = true;
			} else if (count && out[count - 1].off + out[count - 1].len == pos) {
				out[count - 1].len += stop - pos;
			} else {
				out = xrealloc(out, (size_t)(count + 1) * sizeof(*out));
				out[count].off = pos;
				out[count].len = stop - pos;
				count++;
			}
			pos = stop;
		}
	}
	*n = count;
	return out;
}

/*
 * The first pass over a file with a parent: the blocks read and hashed,
 * but those its clean runs vouch for, which take the parent's digests.
 */
static int hash_changed(struct wfile *w, const struct range *reg, int nreg,
			const struct mf_file *pf, struct blkhash *h)
{
	bool *clean = clean_blocks(w, pf, h->nblk), *skip;
	struct range *rd;
	size_t i;
	int nrd, r;

	if (!clean)
		return hash_blocks(w, reg, nreg, h);
	skip = xcalloc(h->nblk, sizeof(*skip));
	rd = less_clean(w, reg, nreg, clean, skip, &nrd);
	for (i = 0; i < h->nblk; i++)
		if (skip[i])
			*w->done += manifest_block_len(w->size, MANIFEST_BLOCK, i);
	r = hash_blocks(w, rd, nrd, h);
	for (i = 0; !r && i < h->nblk; i++)
		if (skip[i]) {
			memcpy(h->blk[i], pf->blk[i], 32);
			h->seen[i] = true;
		}
	free(rd);
	free(skip);
	free(clean);
	return r;
}

/*
 * The blocks to store of a file whose parent has it: those not zeros
 * that differ from the parent's (or lie where its blocks differ in
 * length), as runs of bytes.
 */
static struct range *changed_runs(const struct blkhash *h,
				   const struct mf_file *pf, int *n)
{
	struct range *r = NULL;
	size_t i;
	int count = 0;

	for (i = 0; i < h->nblk; i++) {
		uint64_t off = (uint64_t)i * h->bsize;
		uint32_t len = manifest_block_len(h->size, h->bsize, i);

		if (manifest_block_zero(h->blk[i]))
			continue;
		if (i < pf->nblk &&
		    manifest_block_len(pf->size, pf->bsize, i) == len &&
		    !memcmp(pf->blk[i], h->blk[i], 32))
			continue;
		if (count && r[count - 1].off + r[count - 1].len == off) {
			r[count - 1].len += len;
			continue;
		}
		r = xrealloc(r, (size_t)(count + 1) * sizeof(*r));
		r[count].off = off;
		r[count].len = len;
		count++;
	}
	*n = count;
	return r;
}

/*
 * The entry's data: the pax writer takes the file's whole length and
 * drops what falls in holes, so holes are fed from a zero buffer, never
 * read.  What is read goes to d (a whole file's digest) or h (blocks).
 */
static int write_regions(struct archive *a, struct wfile *w,
			 const struct range *reg, int nreg, struct snap_digest *d,
			 struct blkhash *h, bool count)
{
	uint64_t pos = 0;
	int i;

	for (i = 0; i <= nreg; i++) {
		uint64_t hole_end = i < nreg ? reg[i].off : w->size;

		while (pos < hole_end) {
			size_t n = hole_end - pos < SNAP_CHUNK ? hole_end - pos : SNAP_CHUNK;

			if (archive_write_data(a, w->zeros, n) != (la_ssize_t)n)
				goto bad_archive;
			pos += n;
		}
		if (i == nreg)
			break;
		while (pos < reg[i].off + reg[i].len) {
			uint64_t left = reg[i].off + reg[i].len - pos;
			size_t n = left < SNAP_CHUNK ? left : SNAP_CHUNK;
			int r = read_at(w, pos, n);

			if (r)
				return r;
			if (d)
				snap_digest_data(d, pos, w->buf, n);
			if (h && blkhash_feed(h, pos, w->buf, n)) {
				strbuf_addf(w->err, "%s: SHA-256 failed",
					    w->f->path);
				return -EIO;
			}
			if (archive_write_data(a, w->buf, n) != (la_ssize_t)n)
				goto bad_archive;
			pos += n;
			if (count) {
				*w->done += n;
				snap_tick(w->progress, *w->done, w->total);
			}
		}
	}
	return 0;
bad_archive:
	strbuf_addf(w->err, "%s: %s", w->f->name, archive_error_string(a));
	return -EIO;
}

/* The file, opened (never through a link), and its data regions. */
static int open_source(struct wfile *w, struct stat *st, struct range **reg,
		       int *nreg)
{
	int r;

	w->fd = open(w->f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (w->fd < 0 || fstat(w->fd, st) < 0 || !S_ISREG(st->st_mode)) {
		r = w->fd < 0 ? -errno : -EINVAL;
		strbuf_addf(w->err, "%s: %s", w->f->path, strerror(-r));
		return r;
	}
	w->size = (uint64_t)st->st_size;
	r = file_regions(w->fd, w->size, reg, nreg);
	if (r)
		strbuf_addf(w->err, "%s: %s", w->f->path, strerror(-r));
	return r;
}

/* The entry of a file whose stored runs are store (caller frees it). */
static struct archive_entry *file_entry(const struct wfile *w,
					const struct stat *st,
					const struct range *store, int nstore)
{
	struct archive_entry *e = archive_entry_new();
	int i;

	archive_entry_set_pathname(e, w->f->name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, st->st_mode & 0777);
	archive_entry_set_size(e, (la_int64_t)w->size);
	archive_entry_set_mtime(e, st->st_mtime, 0);
	/* A sparse map unless the file is one region of data. */
	if (!(nstore == 1 && store[0].off == 0 && store[0].len == w->size)) {
		for (i = 0; i < nstore; i++)
			archive_entry_sparse_add_entry(e, (la_int64_t)store[i].off,
						       (la_int64_t)store[i].len);
		if (!nstore)
			archive_entry_sparse_add_entry(e, (la_int64_t)w->size, 0);
	}
	return e;
}

/*
 * A delta's second pass: the changed runs stored, their blocks hashed
 * into check, which must agree with the first pass.
 */
static int write_delta(struct archive *a, struct wfile *w,
		       const struct range *store, int nstore,
		       const struct blkhash *first, struct blkhash *check)
{
	int i, r;

	r = write_regions(a, w, store, nstore, NULL, check, false);
	if (!r && blkhash_finish(check))
		r = -EIO;
	/* what was stored is what the first pass saw */
	for (i = 0; !r && (size_t)i < check->nblk; i++)
		if (check->seen[i] && memcmp(check->blk[i], first->blk[i], 32))
			r = -EIO;
	if (r == -EIO && !w->err->len)
		strbuf_addf(w->err, "%s changed while it was read",
			    w->f->path);
	return r;
}

/* The file's line in m: its blocks' digests (taken from h) or d's. */
static int add_to_manifest(struct wfile *w, bool by_blocks, struct blkhash *h,
			   struct snap_digest *d, struct manifest *m)
{
	char hex[65];
	int r;

	if (by_blocks) {
		struct mf_file *mf = manifest_add(m, w->f->name, w->size, NULL);

		mf->blocks = true;
		mf->bsize = MANIFEST_BLOCK;
		mf->nblk = h->nblk;
		mf->blk = h->blk;
		h->blk = NULL;
		r = manifest_seal_blocks(mf);
	} else {
		r = snap_digest_final(d, w->size, hex);
		if (!r)
			manifest_add(m, w->f->name, w->size, hex);
	}
	if (r)
		strbuf_addf(w->err, "%s: SHA-256: %s", w->f->path, strerror(-r));
	return r;
}

/*
 * One file.  A block-stored file gets the digest of every block;
 * with pf (the parent's file of that name, by the same blocks), only
 * the blocks that differ from it are stored, found in a first pass.
 */
static int write_file(struct archive *a, struct wfile *w,
		      const struct mf_file *pf, struct manifest *m)
{
	struct archive_entry *e = NULL;
	struct range *reg = NULL, *runs = NULL;
	const struct range *store;
	struct blkhash first, check;
	struct snap_digest d;
	struct stat st;
	bool by_blocks = snap_block_stored(w->f->name);
	int nreg = 0, nruns = 0, nstore, r = 0;

	snap_digest_init(&d);
	memset(&first, 0, sizeof(first));
	memset(&check, 0, sizeof(check));
	r = open_source(w, &st, &reg, &nreg);
	if (r)
		goto out;
	store = reg;
	nstore = nreg;
	if (by_blocks && pf) {
		blkhash_init(&first, w->size, MANIFEST_BLOCK, true);
		r = hash_changed(w, reg, nreg, pf, &first);
		if (r)
			goto out;
		runs = changed_runs(&first, pf, &nruns);
		store = runs;
		nstore = nruns;
		blkhash_init(&check, w->size, MANIFEST_BLOCK, false);
	} else if (by_blocks) {
		blkhash_init(&first, w->size, MANIFEST_BLOCK, true);
	}
	e = file_entry(w, &st, store, nstore);
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		strbuf_addf(w->err, "%s: %s", w->f->name,
			    archive_error_string(a));
		r = -EIO;
		goto out;
	}
	if (pf && by_blocks) {
		r = write_delta(a, w, store, nstore, &first, &check);
	} else {
		r = write_regions(a, w, store, nstore, by_blocks ? NULL : &d,
				  by_blocks ? &first : NULL, true);
		if (!r && by_blocks && blkhash_finish(&first)) {
			strbuf_addf(w->err, "%s: SHA-256 failed", w->f->path);
			r = -EIO;
		}
	}
	if (!r)
		r = add_to_manifest(w, by_blocks, &first, &d, m);
out:
	blkhash_release(&first);
	blkhash_release(&check);
	snap_digest_release(&d);
	if (e)
		archive_entry_free(e);
	free(reg);
	free(runs);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	return r;
}

/* Bytes of data (not holes) in the files, for progress; and all bytes. */
static uint64_t data_bytes(const struct snap_file *files, int n,
			   uint64_t *all)
{
	uint64_t total = 0;
	int i, j;

	*all = 0;
	for (i = 0; i < n; i++) {
		struct range *reg = NULL;
		struct stat st;
		int fd = open(files[i].path, O_RDONLY | O_CLOEXEC), nreg = 0;

		if (fd < 0)
			continue;
		if (!fstat(fd, &st)) {
			*all += (uint64_t)st.st_size;
			if (!file_regions(fd, (uint64_t)st.st_size, &reg, &nreg))
				for (j = 0; j < nreg; j++)
					total += reg[j].len;
		}
		free(reg);
		close(fd);
	}
	return total;
}

/*
 * Through pigz a full disk reaches libarchive as a broken pipe; the
 * file system of the (not yet removed) partial archive tells the truth.
 */
static bool fs_full(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	struct statvfs sv;
	bool full;

	if (slash)
		*slash = '\0';
	full = statvfs(slash ? dir : ".", &sv) == 0 &&
	       (uint64_t)sv.f_bavail * sv.f_frsize < 2 * SNAP_CHUNK;
	free(dir);
	return full;
}

/*
 * The archive's file: unnamed (O_TMPFILE) in path's directory where the
 * file system can, so that no kill leaves a partial file; else a hidden
 * name beside path (*tmp, caller frees and unlinks).
 */
static int open_unnamed(const char *path, char **tmp)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : path;
	int fd;

	*tmp = NULL;
	if (slash)
		*slash = '\0';
	fd = open(slash ? dir : ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR ||
		       errno == EINVAL)) {
		*tmp = xasprintf("%s/.%s.tmp%ld", slash ? dir : ".", base,
				 (long)getpid());
		fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			free(*tmp);
			*tmp = NULL;
		}
	}
	free(dir);
	return fd < 0 ? -errno : fd;
}

/* Give the finished file its name; never over one that appeared. */
static int link_unnamed(int fd, const char *tmp, const char *path)
{
	char proc[64];

	if (tmp)
		return link(tmp, path) < 0 ? -errno : 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	/* no /proc: the fd itself (needs CAP_DAC_READ_SEARCH) */
	return linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

int snap_write(const char *path, const struct snap_file *files, int n,
	       const char *description, time_t ts, const char *compressor,
	       int level, const struct snap_progress *progress,
	       struct strbuf *err)
{
	struct snap_wopts o;

	memset(&o, 0, sizeof(o));
	o.description = description;
	o.ts = ts;
	o.compressor = compressor;
	o.level = level;
	o.progress = progress;
	return snap_write_opts(path, files, n, &o, err);
}

/* What snap_write_opts() holds while it writes one archive. */
struct wsnap {
	const char *path;
	struct snap_wopts *o;
	struct archive *a;
	struct gzpipe gz;
	struct manifest m;
	struct strbuf text, chain;	/* the MANIFEST, CHAIN */
	char *buf, *zeros, *tmp;
	uint64_t done, all, total;
	int fd;
	bool opened;			/* a has to be closed */
};

/*
 * The archive's format and filter.  A compressor program is started by
 * us (gzpipe, through proc_spawn), not by libarchive's program filter:
 * one spawn path, signals reset in the child, killed if vm dies.
 */
static int wsnap_filter(struct archive *a, const struct snap_wopts *o,
			struct strbuf *err)
{
	struct strbuf opt = STRBUF_INIT;
	int r;

	archive_write_set_format_pax_restricted(a);
	if (o->compressor) {
		r = archive_write_add_filter_none(a);
	} else {
		r = archive_write_add_filter_gzip(a);
		if (r == ARCHIVE_OK) {
			strbuf_addf(&opt, "gzip:compression-level=%d", o->level);
			r = archive_write_set_options(a, opt.buf);
		}
	}
	strbuf_release(&opt);
	if (r != ARCHIVE_OK) {
		strbuf_addf(err, "compressor: %s", archive_error_string(a));
		return -EIO;
	}
	archive_write_set_bytes_in_last_block(a, 1);
	return 0;
}

/* CHAIN's text, and the parent with its STATE in the MANIFEST. */
static int wsnap_chain(struct wsnap *s, struct strbuf *err)
{
	const struct snap_wopts *o = s->o;
	char pstate[65];

	if (o->parent) {
		if (!o->parent_m || manifest_state(o->parent_m, pstate)) {
			strbuf_addf(err, "the MANIFEST of %s is not usable",
				    o->parent);
			return -EINVAL;
		}
		s->m.parent = xstrdup(o->parent);
		memcpy(s->m.parent_state, pstate, sizeof(pstate));
		strbuf_addf(&s->chain, "parent %s %s\n", o->parent, pstate);
	}
	strbuf_addf(&s->chain, "block %u\nsize %llu\n", MANIFEST_BLOCK,
		    (unsigned long long)s->all);
	return 0;
}

/* The archive's file (never over one at path), and its compressor. */
static int wsnap_open(struct wsnap *s, struct strbuf *err)
{
	int r;

	if (fs_exists(s->path)) {
		r = -EEXIST;
		strbuf_addf(err, "%s: %s", s->path, strerror(-r));
		return r;
	}
	/* Disk images are private, like the WORKDIR they come from. */
	s->fd = open_unnamed(s->path, &s->tmp);
	if (s->fd < 0) {
		r = s->fd;
		strbuf_addf(err, "%s: %s", s->path, strerror(-r));
		return r;
	}
	if (s->o->compressor) {
		r = gzpipe_deflate(s->o->compressor, s->o->level, s->fd,
				   &s->gz);
		if (r) {
			strbuf_addf(err, "cannot start %s: %s",
				    s->o->compressor, strerror(-r));
			return r;
		}
	}
	if (archive_write_open_fd(s->a, s->gz.pid ? s->gz.fd : s->fd) !=
	    ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", s->path,
			    archive_error_string(s->a));
		return -EIO;
	}
	s->opened = true;
	return 0;
}

/*
 * SEAL: the one to carry (a fold's), or this user's of what is written;
 * none, with o->sealed false, when there is no key for it.
 */
static int write_seal(struct wsnap *s, struct strbuf *err)
{
	struct snap_wopts *o = s->o;
	char hex[65], *text = NULL;
	int r = 0;

	if (!o->seal_text && (manifest_seal_digest(&s->m, hex) ||
			      seal_make(hex, true, &text)))
		return 0;
	r = write_mem(s->a, SNAP_SEAL, o->seal_text ? o->seal_text : text,
		      o->ts, &s->m, err);
	o->sealed = !r;
	free(text);
	return r;
}

/*
 * TS, DESCRIPTION, CHAIN, TAKEN (live ones), the files, SEAL, and last
 * the MANIFEST of them all.
 */
static int wsnap_entries(struct wsnap *s, const struct snap_file *files,
			 int n, struct strbuf *err)
{
	const struct snap_wopts *o = s->o;
	char tsbuf[32];
	int i, r;

	snprintf(tsbuf, sizeof(tsbuf), "%lld\n", (long long)o->ts);
	r = write_mem(s->a, "TS", tsbuf, o->ts, &s->m, err);
	if (!r)
		r = write_mem(s->a, "DESCRIPTION",
			      o->description ? o->description : "", o->ts,
			      &s->m, err);
	if (!r)
		r = write_mem(s->a, "CHAIN", s->chain.buf, o->ts, &s->m, err);
	if (!r && o->taken) {
		char *t = xasprintf("%s\n", o->taken);

		r = write_mem(s->a, SNAP_TAKEN, t, o->ts, &s->m, err);
		free(t);
	}
	for (i = 0; !r && i < n; i++) {
		struct wfile w = { &files[i], -1, 0, s->buf, s->zeros,
				   &s->done, s->total, o->progress, err,
				   &s->o->read };
		const struct mf_file *pf = manifest_find(o->parent_m,
							 files[i].name);

		if (!o->parent || !pf || !pf->blocks ||
		    pf->bsize != MANIFEST_BLOCK)
			pf = NULL;	/* stored whole */
		r = write_file(s->a, &w, pf, &s->m);
	}
	if (!r && (o->seal || o->seal_text))
		r = write_seal(s, err);
	if (!r) {
		r = manifest_format(&s->m, o->parent ? o->parent_m : NULL,
				    &s->text);
		/* a restore would refuse it: none is written */
		if (r == -E2BIG)
			strbuf_addf(err, "its MANIFEST would be larger than the %u MiB a restore reads",
				    MANIFEST_MAX >> 20);
	}
	if (!r)
		r = manifest_state(&s->m, s->o->state);
	if (!r)
		r = write_mem(s->a, SNAP_MANIFEST, s->text.buf, o->ts, NULL,
			      err);
	/* the copy beside it: none when too large to be read back */
	if (!r && o->manifest && manifest_format(&s->m, NULL, o->manifest))
		strbuf_reset(o->manifest);
	return r;
}

/* The archive ended, its compressor done, the file synced and named. */
static int wsnap_close(struct wsnap *s, struct strbuf *err)
{
	struct strbuf why = STRBUF_INIT;
	int r;

	s->opened = false;
	if (archive_write_close(s->a) != ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", s->path,
			    archive_error_string(s->a));
		return -EIO;
	}
	r = gzpipe_finish(&s->gz, &why);
	if (r)
		strbuf_addf(err, "%s: %s", s->path, why.buf);
	strbuf_release(&why);
	if (!r && proc_interrupted()) {
		strbuf_addstr(err, "interrupted");
		r = -EINTR;
	}
	if (!r && fsync(s->fd) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", s->path, strerror(-r));
	}
	if (!r) {
		r = link_unnamed(s->fd, s->tmp, s->path);
		if (r)
			strbuf_addf(err, "cannot store %s: %s", s->path,
				    strerror(-r));
	}
	return r;
}

/*
 * After a failure, the cause where it is known better than libarchive
 * knew it (aerr: its errno): pigz's own word, an interrupt, a full disk.
 */
static int wsnap_explain(struct wsnap *s, int r, int aerr, struct strbuf *err)
{
	/* pigz that failed (a full disk, a quota) says why; libarchive only
	 * met the pipe's end */
	if (r == -EIO && s->gz.pid && !proc_interrupted()) {
		struct strbuf why = STRBUF_INIT;

		if (gzpipe_finish(&s->gz, &why) == -EIO) {
			strbuf_reset(err);
			strbuf_addf(err, "%s: %s", s->path, why.buf);
			if (strstr(why.buf, "No space left") ||
			    strstr(why.buf, "quota exceeded"))
				r = -ENOSPC;
		}
		strbuf_release(&why);
	}
	r = snap_interrupted_instead(r, err);
	if (r == -EIO && (aerr == ENOSPC || fs_full(s->path)))
		r = -ENOSPC;
	if (r == -ENOSPC || r == -EDQUOT) {
		r = -ENOSPC;
		snap_no_space(s->path, err);
	}
	return r;
}

int snap_write_opts(const char *path, const struct snap_file *files, int n,
		    struct snap_wopts *o, struct strbuf *err)
{
	struct wsnap s = { .path = path, .o = o, .gz = GZPIPE_INIT,
			   .text = STRBUF_INIT, .chain = STRBUF_INIT,
			   .fd = -1 };
	int r, aerr;

	s.a = archive_write_new();
	s.buf = xmalloc(SNAP_CHUNK);
	s.zeros = xcalloc(1, SNAP_CHUNK);
	s.total = data_bytes(files, n, &s.all);
	manifest_init(&s.m);
	o->state[0] = '\0';
	r = wsnap_filter(s.a, o, err);
	if (!r)
		r = wsnap_chain(&s, err);
	if (!r)
		r = wsnap_open(&s, err);
	if (!r)
		r = wsnap_entries(&s, files, n, err);
	if (!r)
		r = wsnap_close(&s, err);
	aerr = archive_errno(s.a);
	/*
	 * Close even after a failure: archive_write_fail() would skip the
	 * close callbacks and leak libarchive's file state and buffer.
	 */
	if (s.opened)
		archive_write_close(s.a);
	archive_write_free(s.a);
	r = wsnap_explain(&s, r, aerr, err);
	gzpipe_release(&s.gz);
	if (s.fd >= 0)
		close(s.fd);
	if (s.tmp)
		unlink(s.tmp);
	if (r)
		o->state[0] = '\0';
	manifest_release(&s.m);
	strbuf_release(&s.text);
	strbuf_release(&s.chain);
	free(s.buf);
	free(s.zeros);
	free(s.tmp);
	return r;
}
