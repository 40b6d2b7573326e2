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
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include "util/fsutil.h"
#include "snapshot/gzpipe.h"
#include "snapshot/manifest.h"
#include "util/proc.h"
#include "util/sha256.h"

#define CHUNK (1u << 20)
#define MANIFEST "MANIFEST"
#define MAX_FILES 64

/*
 * A file's digest covers its data regions and its layout, not the
 * zeros in its holes, so a 20 GiB image with 200 MiB of data is hashed
 * in the time of 200 MiB: SHA-256 over the region bytes in order, then
 * the text "OFFSET LENGTH\n" for each region (adjacent ones merged) and
 * "SIZE\n".
 */
struct digest {
	struct sha256 sha;
	struct strbuf map;
	uint64_t run_start, run_len;
	bool in_run;
};

/* A failure of the hash is kept for digest_final() to return. */
static void digest_init(struct digest *d)
{
	sha256_init(&d->sha);
	d->map = (struct strbuf)STRBUF_INIT;
	d->in_run = false;
	d->run_start = d->run_len = 0;
}

static void digest_data(struct digest *d, uint64_t off, const void *p,
			size_t len)
{
	if (!len)
		return;
	if (d->in_run && d->run_start + d->run_len == off) {
		d->run_len += len;
	} else {
		if (d->in_run)
			strbuf_addf(&d->map, "%llu %llu\n",
				    (unsigned long long)d->run_start,
				    (unsigned long long)d->run_len);
		d->in_run = true;
		d->run_start = off;
		d->run_len = len;
	}
	sha256_update(&d->sha, p, len);
}

/* Returns 0, or -errno of the hash (hex is then empty). */
static int digest_final(struct digest *d, uint64_t size, char hex[65])
{
	if (d->in_run)
		strbuf_addf(&d->map, "%llu %llu\n",
			    (unsigned long long)d->run_start,
			    (unsigned long long)d->run_len);
	strbuf_addf(&d->map, "%llu\n", (unsigned long long)size);
	sha256_update(&d->sha, d->map.buf, d->map.len);
	return sha256_final_hex(&d->sha, hex);
}

/* After digest_init(), finished or not. */
static void digest_release(struct digest *d)
{
	sha256_release(&d->sha);
	strbuf_release(&d->map);
}

static void tick(const struct snap_progress *p, uint64_t done, uint64_t total)
{
	if (p && p->fn)
		p->fn(p->data, done, total);
}

struct region {
	uint64_t off, len;
};

static void no_space(const char *path, struct strbuf *err);

/* The data regions of fd (one region where holes cannot be seen). */
static int file_regions(int fd, uint64_t size, struct region **out, int *n)
{
	struct region *r = NULL;
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

/* Files kept by blocks (disks, UEFI variables, saved RAM), not whole. */
static bool block_stored(const char *name)
{
	return snap_disk_index(name) >= 0 || snap_image_index(name) >= 0 ||
	       !strcmp(name, "efivars.bin") || !strcmp(name, "saved-state");
}

static int write_mem(struct archive *a, const char *name, const char *data,
		     time_t ts, struct manifest *m, struct strbuf *err)
{
	struct archive_entry *e = archive_entry_new();
	struct digest d;
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
		digest_init(&d);
		digest_data(&d, 0, data, len);
		r = digest_final(&d, len, hex);
		digest_release(&d);
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
	return 0;
}

/*
 * The digests of every block of the file, reading only its data: the
 * first pass of a file stored as a delta, which must know which blocks
 * changed before the entry's header (its sparse map) is written.
 */
static int hash_blocks(struct wfile *w, const struct region *reg, int nreg,
		       struct blkhash *h)
{
	int i, r = 0;

	for (i = 0; !r && i < nreg; i++) {
		uint64_t pos = reg[i].off, end = reg[i].off + reg[i].len;

		while (!r && pos < end) {
			size_t n = end - pos < CHUNK ? (size_t)(end - pos) : CHUNK;

			r = read_at(w, pos, n);
			if (!r && blkhash_feed(h, pos, w->buf, n))
				r = -EIO;
			pos += n;
			*w->done += n;
			tick(w->progress, *w->done, w->total);
		}
	}
	if (!r && blkhash_finish(h))
		r = -EIO;
	if (r == -EIO && !w->err->len)
		strbuf_addf(w->err, "%s: SHA-256 failed", w->f->path);
	return r;
}

/*
 * The blocks to store of a file whose parent has it: those not zeros
 * that differ from the parent's (or lie where its blocks differ in
 * length), as runs of bytes.
 */
static struct region *changed_runs(const struct blkhash *h,
				   const struct mf_file *pf, int *n)
{
	struct region *r = NULL;
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
			 const struct region *reg, int nreg, struct digest *d,
			 struct blkhash *h, bool count)
{
	uint64_t pos = 0;
	int i;

	for (i = 0; i <= nreg; i++) {
		uint64_t hole_end = i < nreg ? reg[i].off : w->size;

		while (pos < hole_end) {
			size_t n = hole_end - pos < CHUNK ? hole_end - pos : CHUNK;

			if (archive_write_data(a, w->zeros, n) != (la_ssize_t)n)
				goto bad_archive;
			pos += n;
		}
		if (i == nreg)
			break;
		while (pos < reg[i].off + reg[i].len) {
			uint64_t left = reg[i].off + reg[i].len - pos;
			size_t n = left < CHUNK ? left : CHUNK;
			int r = read_at(w, pos, n);

			if (r)
				return r;
			if (d)
				digest_data(d, pos, w->buf, n);
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
				tick(w->progress, *w->done, w->total);
			}
		}
	}
	return 0;
bad_archive:
	strbuf_addf(w->err, "%s: %s", w->f->name, archive_error_string(a));
	return -EIO;
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
	struct region *reg = NULL, *runs = NULL;
	const struct region *store;
	struct blkhash first, check;
	struct digest d;
	struct stat st;
	bool by_blocks = block_stored(w->f->name);
	char hex[65];
	int nreg = 0, nruns = 0, nstore, i, r = 0;

	digest_init(&d);
	memset(&first, 0, sizeof(first));
	memset(&check, 0, sizeof(check));
	w->fd = open(w->f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (w->fd < 0 || fstat(w->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = w->fd < 0 ? -errno : -EINVAL;
		strbuf_addf(w->err, "%s: %s", w->f->path, strerror(-r));
		goto out;
	}
	w->size = (uint64_t)st.st_size;
	r = file_regions(w->fd, w->size, &reg, &nreg);
	if (r) {
		strbuf_addf(w->err, "%s: %s", w->f->path, strerror(-r));
		goto out;
	}
	store = reg;
	nstore = nreg;
	if (by_blocks && pf) {
		blkhash_init(&first, w->size, MANIFEST_BLOCK, true);
		r = hash_blocks(w, reg, nreg, &first);
		if (r)
			goto out;
		runs = changed_runs(&first, pf, &nruns);
		store = runs;
		nstore = nruns;
		blkhash_init(&check, w->size, MANIFEST_BLOCK, false);
	} else if (by_blocks) {
		blkhash_init(&first, w->size, MANIFEST_BLOCK, true);
	}
	e = archive_entry_new();
	archive_entry_set_pathname(e, w->f->name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, st.st_mode & 0777);
	archive_entry_set_size(e, (la_int64_t)w->size);
	archive_entry_set_mtime(e, st.st_mtime, 0);
	/* A sparse map unless the file is one region of data. */
	if (!(nstore == 1 && store[0].off == 0 && store[0].len == w->size)) {
		for (i = 0; i < nstore; i++)
			archive_entry_sparse_add_entry(e, (la_int64_t)store[i].off,
						       (la_int64_t)store[i].len);
		if (!nstore)
			archive_entry_sparse_add_entry(e, (la_int64_t)w->size, 0);
	}
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		strbuf_addf(w->err, "%s: %s", w->f->name,
			    archive_error_string(a));
		r = -EIO;
		goto out;
	}
	if (pf && by_blocks) {
		r = write_regions(a, w, store, nstore, NULL, &check, false);
		if (!r && blkhash_finish(&check))
			r = -EIO;
		/* what was stored is what the first pass saw */
		for (i = 0; !r && (size_t)i < check.nblk; i++)
			if (check.seen[i] && memcmp(check.blk[i], first.blk[i], 32))
				r = -EIO;
		if (r == -EIO && !w->err->len)
			strbuf_addf(w->err, "%s changed while it was read",
				    w->f->path);
	} else {
		r = write_regions(a, w, store, nstore, by_blocks ? NULL : &d,
				  by_blocks ? &first : NULL, true);
		if (!r && by_blocks && blkhash_finish(&first)) {
			strbuf_addf(w->err, "%s: SHA-256 failed", w->f->path);
			r = -EIO;
		}
	}
	if (r)
		goto out;
	if (by_blocks) {
		struct mf_file *mf = manifest_add(m, w->f->name, w->size, NULL);

		mf->blocks = true;
		mf->bsize = MANIFEST_BLOCK;
		mf->nblk = first.nblk;
		mf->blk = first.blk;
		first.blk = NULL;
		r = manifest_seal_blocks(mf);
	} else {
		r = digest_final(&d, w->size, hex);
		if (!r)
			manifest_add(m, w->f->name, w->size, hex);
	}
	if (r)
		strbuf_addf(w->err, "%s: SHA-256: %s", w->f->path, strerror(-r));
out:
	blkhash_release(&first);
	blkhash_release(&check);
	digest_release(&d);
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
		struct region *reg = NULL;
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
	       (uint64_t)sv.f_bavail * sv.f_frsize < 2 * CHUNK;
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

/*
 * Ctrl-C on a terminal reaches pigz too (it is in vm's process group):
 * whatever libarchive then says, the cause is the interrupt, not the
 * archive.
 */
static int interrupted_instead(int r, struct strbuf *err)
{
	if (!r || r == -EINTR || !proc_interrupted())
		return r;
	strbuf_reset(err);
	strbuf_addstr(err, "interrupted");
	return -EINTR;
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

int snap_write_opts(const char *path, const struct snap_file *files, int n,
		    struct snap_wopts *o, struct strbuf *err)
{
	struct strbuf text = STRBUF_INIT, opt = STRBUF_INIT, chain = STRBUF_INIT;
	struct archive *a = archive_write_new();
	struct gzpipe gz = GZPIPE_INIT;
	struct manifest m;
	char *buf = xmalloc(CHUNK), *zeros = xcalloc(1, CHUNK), *tmp = NULL;
	char tsbuf[32], pstate[65];
	uint64_t done = 0, all = 0, total = data_bytes(files, n, &all);
	bool opened = false;
	int i, r = 0, fd = -1;

	manifest_init(&m);
	o->state[0] = '\0';
	archive_write_set_format_pax_restricted(a);
	/*
	 * A compressor program is started by us (gzpipe, through
	 * proc_spawn), not by libarchive's program filter: one spawn path,
	 * signals reset in the child, killed if vm dies.
	 */
	if (o->compressor) {
		r = archive_write_add_filter_none(a);
	} else {
		r = archive_write_add_filter_gzip(a);
		if (r == ARCHIVE_OK) {
			strbuf_addf(&opt, "gzip:compression-level=%d", o->level);
			r = archive_write_set_options(a, opt.buf);
		}
	}
	if (r != ARCHIVE_OK) {
		strbuf_addf(err, "compressor: %s", archive_error_string(a));
		r = -EIO;
		goto out;
	}
	archive_write_set_bytes_in_last_block(a, 1);
	if (o->parent) {
		if (!o->parent_m || manifest_state(o->parent_m, pstate)) {
			strbuf_addf(err, "the MANIFEST of %s is not usable",
				    o->parent);
			r = -EINVAL;
			goto out;
		}
		m.parent = xstrdup(o->parent);
		memcpy(m.parent_state, pstate, sizeof(pstate));
		strbuf_addf(&chain, "parent %s %s\n", o->parent, pstate);
	}
	strbuf_addf(&chain, "block %u\nsize %llu\n", MANIFEST_BLOCK,
		    (unsigned long long)all);
	if (fs_exists(path)) {
		r = -EEXIST;
		strbuf_addf(err, "%s: %s", path, strerror(-r));
		goto out;
	}
	/* Disk images are private, like the WORKDIR they come from. */
	fd = open_unnamed(path, &tmp);
	if (fd < 0) {
		r = fd;
		strbuf_addf(err, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (o->compressor) {
		r = gzpipe_deflate(o->compressor, o->level, fd, &gz);
		if (r) {
			strbuf_addf(err, "cannot start %s: %s", o->compressor,
				    strerror(-r));
			goto out;
		}
	}
	if (archive_write_open_fd(a, gz.pid ? gz.fd : fd) != ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", path, archive_error_string(a));
		r = -EIO;
		goto out;
	}
	opened = true;
	snprintf(tsbuf, sizeof(tsbuf), "%lld\n", (long long)o->ts);
	r = write_mem(a, "TS", tsbuf, o->ts, &m, err);
	if (!r)
		r = write_mem(a, "DESCRIPTION",
			      o->description ? o->description : "", o->ts, &m,
			      err);
	if (!r)
		r = write_mem(a, "CHAIN", chain.buf, o->ts, &m, err);
	for (i = 0; !r && i < n; i++) {
		struct wfile w = { &files[i], -1, 0, buf, zeros, &done, total,
				   o->progress, err };
		const struct mf_file *pf = manifest_find(o->parent_m,
							 files[i].name);

		if (!o->parent || !pf || !pf->blocks ||
		    pf->bsize != MANIFEST_BLOCK)
			pf = NULL;	/* stored whole */
		r = write_file(a, &w, pf, &m);
	}
	if (!r)
		r = manifest_format(&m, true, &text);
	if (!r)
		r = manifest_state(&m, o->state);
	if (!r)
		r = write_mem(a, MANIFEST, text.buf, o->ts, NULL, err);
	if (!r && o->manifest)
		strbuf_add(o->manifest, text.buf, text.len);
	if (!r) {
		opened = false;
		if (archive_write_close(a) != ARCHIVE_OK) {
			strbuf_addf(err, "%s: %s", path,
				    archive_error_string(a));
			r = -EIO;
		}
	}
	if (!r) {
		struct strbuf why = STRBUF_INIT;

		r = gzpipe_finish(&gz, &why);
		if (r)
			strbuf_addf(err, "%s: %s", path, why.buf);
		strbuf_release(&why);
	}
	if (!r && proc_interrupted()) {
		strbuf_addstr(err, "interrupted");
		r = -EINTR;
	}
	if (!r && fsync(fd) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", path, strerror(-r));
	}
	if (!r) {
		r = link_unnamed(fd, tmp, path);
		if (r)
			strbuf_addf(err, "cannot store %s: %s", path,
				    strerror(-r));
	}
out:
	r = interrupted_instead(r, err);
	if (r == -EIO && (archive_errno(a) == ENOSPC || fs_full(path)))
		r = -ENOSPC;
	if (r == -ENOSPC || r == -EDQUOT) {
		r = -ENOSPC;
		no_space(path, err);
	}
	/*
	 * Close even after a failure: archive_write_fail() would skip the
	 * close callbacks and leak libarchive's file state and buffer.
	 */
	if (opened)
		archive_write_close(a);
	archive_write_free(a);
	gzpipe_release(&gz);
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	if (r)
		o->state[0] = '\0';
	manifest_release(&m);
	strbuf_release(&text);
	strbuf_release(&opt);
	strbuf_release(&chain);
	free(buf);
	free(zeros);
	free(tmp);
	return r;
}

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

/* N for PREFIX-N.img, written as vm writes it; -1 for anything else. */
static int name_index(const char *name, const char *prefix)
{
	size_t pl = strlen(prefix);
	const char *p = name + pl;
	int v = 0;

	if (strncmp(name, prefix, pl) || !*p)
		return -1;
	/* "disk-0.img", never "disk-00.img" or "disk-+1.img" */
	if (*p == '0' && p[1] != '.')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v >= SNAP_MAX_DISKS)
			return -1;
	}
	return p > name + pl && !strcmp(p, ".img") ? v : -1;
}

int snap_disk_index(const char *name)
{
	return name_index(name, "disk-");
}

int snap_image_index(const char *name)
{
	return name_index(name, "image-");
}

/* Only what @backup writes: a crafted archive cannot drop a job file. */
static bool plain_name(const char *s)
{
	static const char *const fixed[] = { "TS", "DESCRIPTION", "guest.conf",
					     "vm.defaults", "efivars.bin",
					     "saved-state", "CHAIN", MANIFEST,
					     NULL };
	size_t i;

	for (i = 0; fixed[i]; i++)
		if (!strcmp(s, fixed[i]))
			return true;
	return snap_disk_index(s) >= 0 || snap_image_index(s) >= 0;
}

/*
 * A full file system ends a pwrite short, without errno: the next call
 * says why (ENOSPC), where errno would hold a stale EAGAIN from
 * libarchive's pipe to pigz.
 */
static int pwrite_all(int fd, const void *p, size_t len, off_t off)
{
	const char *c = p;

	while (len) {
		ssize_t n = pwrite(fd, c, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		c += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int extract_entry(struct archive *a, struct archive_entry *e,
			 int dirfd, struct got_file *g,
			 const struct chain_info *c, const struct snap_base *base,
			 struct rprog *p, struct strbuf *err)
{
	struct digest d;
	uint64_t size = (uint64_t)archive_entry_size(e);
	const struct mf_file *bf = NULL;
	int fd = -1, r = 0;

	digest_init(&d);
	g->size = size;
	g->by_blocks = c->v2 && block_stored(g->name);
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
	if (dirfd >= 0 && bf) {
		fd = openat(dirfd, g->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	} else if (dirfd >= 0) {
		if (unlinkat(dirfd, g->name, 0) < 0 && errno != ENOENT) {
			r = -errno;
			strbuf_addf(err, "%s: %s", g->name, strerror(-r));
			goto out;
		}
		fd = openat(dirfd, g->name, O_WRONLY | O_CREAT | O_EXCL |
			    O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (dirfd >= 0 && fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", g->name, strerror(-r));
		goto out;
	}
	if (g->by_blocks)
		blkhash_init(&g->h, size, c->bsize, !bf);
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
			r = -EIO;
			goto out;
		}
		if (proc_interrupted()) {
			strbuf_addstr(err, "interrupted");
			r = -EINTR;
			goto out;
		}
		if (off < 0 || (uint64_t)off + len > size) {
			strbuf_addf(err, "archive is damaged at %s (data beyond its size)",
				    g->name);
			r = -EIO;
			goto out;
		}
		if (fd >= 0) {
			r = pwrite_all(fd, blk, len, (off_t)off);
			if (r) {
				strbuf_addf(err, "%s: %s", g->name, strerror(-r));
				goto out;
			}
		}
		if (!g->by_blocks) {
			digest_data(&d, (uint64_t)off, blk, len);
		} else if (blkhash_feed(&g->h, (uint64_t)off, blk, len)) {
			strbuf_addf(err, "archive is damaged at %s (a block stored in part)",
				    g->name);
			r = -EIO;
			goto out;
		}
		/* compressed bytes read against the archives' size */
		tick(p->progress, p->base + rprog_bytes(p, a), p->total);
	}
	if (g->by_blocks && blkhash_finish(&g->h)) {
		strbuf_addf(err, "archive is damaged at %s (a block stored in part)",
			    g->name);
		r = -EIO;
		goto out;
	}
	/* a delta is cut to size and has its holes made once checked */
	if (fd >= 0 && !bf &&
	    (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0)) {
		r = -errno;
		strbuf_addf(err, "%s: %s", g->name, strerror(-r));
		goto out;
	}
	if (!g->by_blocks) {
		r = digest_final(&d, size, g->hex);
		if (r)
			strbuf_addf(err, "%s: SHA-256: %s", g->name, strerror(-r));
	}
out:
	digest_release(&d);
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

enum gz_fault { GZ_OK, GZ_NOT_GZIP, GZ_TRUNCATED, GZ_DAMAGED, GZ_IO };

/*
 * pigz -d only says it failed ("Child process exited with status 1"),
 * and a tar error may be the echo of a corrupt deflate block.  On the
 * failure path only, inflate the file once more with zlib to find the
 * gzip-level fault and the compressed byte where it shows; *at gets that
 * offset.  Concatenated members are one stream, as gzip -d takes them.
 */
static enum gz_fault gzip_check(const char *path, uint64_t *at)
{
	unsigned char *in = xmalloc(1u << 16), *out = xmalloc(1u << 16);
	enum gz_fault f = GZ_OK;
	uint64_t base = 0;
	z_stream z;
	bool ended = false;	/* the last member is complete */
	int fd;
	ssize_t n = 0;

	*at = 0;
	memset(&z, 0, sizeof(z));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		f = GZ_IO;
		goto out;
	}
	if (pread(fd, in, 2, 0) != 2 || in[0] != 0x1f || in[1] != 0x8b) {
		f = GZ_NOT_GZIP;
		goto out;
	}
	for (;;) {
		int zr;

		if (!z.avail_in) {
			base += (uint64_t)n;
			n = read(fd, in, 1u << 16);
			if (n < 0 && errno == EINTR && !proc_interrupted())
				continue;
			if (n < 0 || proc_interrupted()) {
				f = GZ_IO;
				break;
			}
			if (n == 0) {
				f = ended ? GZ_OK : GZ_TRUNCATED;
				*at = base;
				break;
			}
			z.next_in = in;
			z.avail_in = (uInt)n;
		}
		z.next_out = out;
		z.avail_out = 1u << 16;
		zr = inflate(&z, Z_NO_FLUSH);
		ended = zr == Z_STREAM_END;
		if (ended) {
			inflateReset(&z);
		} else if (zr != Z_OK && zr != Z_BUF_ERROR) {
			/* bad data, a bad CRC or length, or trailing junk */
			f = GZ_DAMAGED;
			*at = base + (uint64_t)(z.next_in - in);
			break;
		}
	}
out:
	inflateEnd(&z);
	if (fd >= 0)
		close(fd);
	free(in);
	free(out);
	return f;
}

/*
 * After a failed read of path: replace err with the gzip-level cause
 * when there is one (the tar or MANIFEST message is its echo).  at:
 * the entry being read, or NULL.
 */
static void explain_gzip(const char *path, const char *at, struct strbuf *err)
{
	uint64_t off;

	switch (gzip_check(path, &off)) {
	case GZ_NOT_GZIP:
		strbuf_reset(err);
		strbuf_addstr(err, "not a gzip archive");
		break;
	case GZ_TRUNCATED:
		strbuf_reset(err);
		strbuf_addf(err, "archive is truncated%s%s", at ? " at " : "",
			    at ? at : "");
		break;
	case GZ_DAMAGED:
		strbuf_reset(err);
		strbuf_addf(err, "archive is damaged at byte %llu",
			    (unsigned long long)off);
		break;
	case GZ_OK:
	case GZ_IO:
		break;
	}
}

/* Refuse what does not start as gzip does, with the one-line reason. */
static int gzip_check_magic(const char *path, struct strbuf *err)
{
	unsigned char m[2];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	ssize_t n = fd < 0 ? -1 : pread(fd, m, 2, 0);
	struct stat st;
	int r = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", path, strerror(-r));
	} else if (!S_ISREG(st.st_mode)) {
		strbuf_addf(err, "%s is not a regular file", path);
		r = -EINVAL;
	} else if (n != 2 || m[0] != 0x1f || m[1] != 0x8b) {
		strbuf_addstr(err, n == 0 ? "not a gzip archive (empty file)" :
					    "not a gzip archive");
		r = -EINVAL;
	}
	if (fd >= 0)
		close(fd);
	return r;
}

/* "no space left on MOUNT" for the file system of path. */
static void no_space(const char *path, struct strbuf *err)
{
	char *m = fs_mount_point(path);

	strbuf_reset(err);
	strbuf_addf(err, "no space left on %s", m);
	free(m);
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
		int r = pwrite_all(fd, z, n, (off_t)off);

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
	if (!r && fd >= 0 && fsync(fd) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", g->name, strerror(-r));
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

int snap_apply(const char *path, const char *dir, const struct snap_base *base,
	       struct manifest *out, uint64_t *done, uint64_t total,
	       const struct snap_progress *progress, struct strbuf *err)
{
	struct got_file got[MAX_FILES];
	struct strbuf text = STRBUF_INIT;
	struct chain_info c;
	struct rprog p = { progress, done ? *done : 0, total, NULL };
	struct gzpipe gz = GZPIPE_INIT;
	struct manifest m;
	struct archive *a;
	struct archive_entry *e;
	struct stat st;
	bool have_manifest = false, have_files = false;
	int ngot = 0, dirfd = -1, r = 0, i;

	memset(got, 0, sizeof(got));
	memset(&c, 0, sizeof(c));
	manifest_init(&m);
	manifest_init(out);
	/* A plain tar would read as well; a snapshot is gzip or nothing. */
	if (gzip_check_magic(path, err))
		return -EINVAL;
	a = open_reader(path, true, &gz, err);
	if (!a) {
		r = -EIO;
		goto out;
	}
	p.gz = &gz;
	/* Progress counts compressed bytes read: the only total known. */
	if (!p.total && !stat(path, &st))
		p.total = (uint64_t)st.st_size;
	if (dir) {
		dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
			     O_NOFOLLOW);
		if (dirfd < 0) {
			r = -errno;
			strbuf_addf(err, "%s: %s", dir, strerror(-r));
			goto out;
		}
	}
	for (;;) {
		const char *name;
		int ar = archive_read_next_header(a, &e);

		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			const char *why = archive_error_string(a);

			strbuf_addf(err, "archive is %s%s%s",
				    why && strstr(why, "runcated") ? "truncated" :
								     "damaged",
				    ngot ? " after " : "",
				    ngot ? got[ngot - 1].name : "");
			r = -EIO;
			goto out;
		}
		if (have_manifest) {
			strbuf_addstr(err, "archive has entries after its MANIFEST");
			r = -EINVAL;
			goto out;
		}
		name = archive_entry_pathname(e);
		if (!name || !plain_name(name) ||
		    archive_entry_filetype(e) != AE_IFREG ||
		    archive_entry_hardlink(e) || archive_entry_symlink(e)) {
			strbuf_addf(err, "archive holds '%s', which is not a plain file name of a snapshot (links, paths, devices and other files are refused)",
				    name ? name : "?");
			r = -EINVAL;
			goto out;
		}
		for (i = 0; i < ngot; i++)
			if (!strcmp(got[i].name, name)) {
				strbuf_addf(err, "%s: stored twice", name);
				r = -EINVAL;
				goto out;
			}
		if (!strcmp(name, MANIFEST)) {
			r = read_small(a, MANIFEST_MAX, &text);
			if (r) {
				strbuf_addstr(err, r == -E2BIG ? "MANIFEST is too large" :
						  "archive is truncated at MANIFEST");
				r = r == -E2BIG ? -EINVAL : -EIO;
				goto out;
			}
			have_manifest = true;
			continue;
		}
		if (ngot == MAX_FILES) {
			strbuf_addstr(err, "archive holds too many files");
			r = -EINVAL;
			goto out;
		}
		got[ngot].name = xstrdup(name);
		if (!strcmp(name, "CHAIN")) {
			struct strbuf ct = STRBUF_INIT;
			struct digest d;

			ngot++;
			r = have_files ? -EINVAL : read_small(a, 4096, &ct);
			if (!r)
				r = parse_chain(ct.buf ? ct.buf : "", &c);
			if (r) {
				strbuf_addstr(err, have_files ? "archive holds CHAIN after its files" :
						    "CHAIN is malformed");
				strbuf_release(&ct);
				r = -EINVAL;
				goto out;
			}
			digest_init(&d);
			digest_data(&d, 0, ct.buf ? ct.buf : "", ct.len);
			got[ngot - 1].size = ct.len;
			r = digest_final(&d, ct.len, got[ngot - 1].hex);
			digest_release(&d);
			strbuf_release(&ct);
			if (r) {
				strbuf_addstr(err, "CHAIN: SHA-256 failed");
				goto out;
			}
			if (c.parent && !base) {
				strbuf_addf(err, "%s is incremental: it needs its parent %s",
					    base_of(path), c.parent);
				r = -ENOENT;
				goto out;
			}
			if (c.parent && strcmp(base->state, c.pstate)) {
				strbuf_addf(err, "its parent %s is not the snapshot it was made from (%s was replaced)",
					    c.parent, base->name);
				r = -EINVAL;
				goto out;
			}
			continue;
		}
		if (block_stored(name))
			have_files = true;
		r = extract_entry(a, e, dirfd, &got[ngot], &c, base, &p, err);
		ngot++;
		if (r)
			goto out;
	}
	/* the stream's end (its CRC and length) is only checked by pigz */
	r = gzpipe_finish(&gz, err);
	if (r)
		goto out;
	if (!have_manifest) {
		strbuf_addstr(err, ngot ? "archive is truncated: no MANIFEST at its end" :
					  "archive holds no files (no MANIFEST)");
		r = -EIO;
		goto out;
	}
	r = manifest_parse(text.buf ? text.buf : "", text.len, &m, err);
	if (!r)
		r = check_manifest(dirfd, &m, &c, c.parent ? base : NULL, got,
				   ngot, base_of(path), err);
	if (!r && dirfd >= 0 && fsync(dirfd) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", dir, strerror(-r));
	}
	if (!r) {
		*out = m;
		manifest_init(&m);
	}
out:
	r = interrupted_instead(r, err);
	if (r == -ENOSPC || r == -EDQUOT) {
		r = -ENOSPC;
		no_space(dir ? dir : path, err);
	} else if (r == -EIO || (r == -EINVAL && !c.v2)) {
		explain_gzip(path, ngot ? got[ngot - 1].name : NULL, err);
	}
	if (done && a)
		*done = p.base + rprog_bytes(&p, a);
	if (dirfd >= 0)
		close(dirfd);
	if (a)
		archive_read_free(a);
	gzpipe_release(&gz);
	for (i = 0; i < ngot; i++) {
		free(got[i].name);
		blkhash_release(&got[i].h);
	}
	manifest_release(&m);
	chain_release(&c);
	strbuf_release(&text);
	return r;
}

int snap_extract(const char *path, const char *dir,
		 const struct snap_progress *progress, struct strbuf *err)
{
	struct manifest m;
	int r = snap_apply(path, dir, NULL, &m, NULL, 0, progress, err);

	manifest_release(&m);
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
	/* TS, DESCRIPTION and CHAIN come first: no need to read the disks. */
	while (found < 3 && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		struct strbuf sb = STRBUF_INIT;

		if (!name || (strcmp(name, "TS") && strcmp(name, "DESCRIPTION") &&
			      strcmp(name, "CHAIN")))
			break;
		if (read_small(a, 4096, &sb)) {
			strbuf_release(&sb);
			r = -EIO;
			break;
		}
		if (!strcmp(name, "TS")) {
			meta->ts = (time_t)strtoll(sb.buf ? sb.buf : "0", NULL, 10);
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
	memset(meta, 0, sizeof(*meta));
}

/*
 * A raw gzip stream into a sparse file: zero blocks become holes.  With
 * dst NULL the stream is only read to its end and its trailer checked.
 */
static int gunzip_sparse(const char *src, const char *dst, uint64_t *done,
			 uint64_t total, const struct snap_progress *progress,
			 struct strbuf *err)
{
	static const char zero[4096];
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *buf = xmalloc(CHUNK);
	uint64_t pos = 0;
	int fd = -1, r = 0;

	archive_read_support_filter_gzip(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, src, 1 << 16) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", src, archive_error_string(a));
		r = -EIO;
		goto out;
	}
	fd = dst ? open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
	if (dst && fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", dst, strerror(-r));
		goto out;
	}
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, CHUNK);
		la_ssize_t o;

		if (n == 0)
			break;
		if (n < 0) {
			struct strbuf why = STRBUF_INIT;
			const char *base = strrchr(src, '/');

			strbuf_addf(&why, "damaged or truncated (%s)",
				    archive_error_string(a));
			explain_gzip(src, NULL, &why);
			strbuf_addf(err, "%s: %s", base ? base + 1 : src,
				    why.buf);
			strbuf_release(&why);
			r = -EIO;
			goto out;
		}
		for (o = 0; fd >= 0 && o < n; o += 4096) {
			size_t len = (size_t)(n - o) < 4096 ? (size_t)(n - o) :
							      4096;

			if (len == 4096 && !memcmp(buf + o, zero, 4096))
				continue;
			r = pwrite_all(fd, buf + o, len,
				       (off_t)(pos + (uint64_t)o));
			if (r) {
				strbuf_addf(err, "%s: %s", dst, strerror(-r));
				goto out;
			}
		}
		pos += (uint64_t)n;
		tick(progress, *done + (uint64_t)archive_filter_bytes(a, -1),
		     total);
		if (proc_interrupted()) {
			strbuf_addstr(err, "interrupted");
			r = -EINTR;
			goto out;
		}
	}
	if (fd >= 0 && (ftruncate(fd, (off_t)pos) < 0 || fsync(fd) < 0)) {
		r = -errno;
		strbuf_addf(err, "%s: %s", dst, strerror(-r));
		goto out;
	}
	*done += (uint64_t)archive_filter_bytes(a, -1);
	/* libarchive's gzip reader skips the CRC and length: zlib checks */
	{
		struct strbuf why = STRBUF_INIT;
		const char *base = strrchr(src, '/');

		explain_gzip(src, NULL, &why);
		if (why.len) {
			strbuf_addf(err, "%s: %s", base ? base + 1 : src,
				    why.buf);
			r = -EIO;
		}
		strbuf_release(&why);
	}
out:
	if (fd >= 0)
		close(fd);
	archive_read_free(a);
	free(buf);
	return r;
}

int snap_extract_legacy(const char *srcdir, const char *dir,
			const struct snap_progress *progress,
			struct strbuf *err)
{
	DIR *d = opendir(srcdir);
	struct dirent *e;
	uint64_t done = 0, total = 0;
	int r = 0, disks = 0;

	if (!d) {
		r = -errno;
		strbuf_addf(err, "%s: %s", srcdir, strerror(-r));
		return r;
	}
	/* progress: compressed bytes of all the disks */
	while ((e = readdir(d))) {
		struct stat st;
		char *p = xasprintf("%s/%s", srcdir, e->d_name);

		if (str_ends_with(e->d_name, ".img.gz") && !stat(p, &st))
			total += (uint64_t)st.st_size;
		free(p);
	}
	rewinddir(d);
	while (!r && (e = readdir(d))) {
		char *src, *dst, *plain;

		if (e->d_name[0] == '.')
			continue;
		src = xasprintf("%s/%s", srcdir, e->d_name);
		if (str_starts_with(e->d_name, "disk-") &&
		    str_ends_with(e->d_name, ".img.gz")) {
			plain = xasprintf("%.*s", (int)strlen(e->d_name) - 3,
					  e->d_name);
			dst = dir ? xasprintf("%s/%s", dir, plain) : NULL;
			/* a link to /dev/zero, a FIFO, a raw image: refused */
			{
				struct strbuf why = STRBUF_INIT;

				r = gzip_check_magic(src, &why);
				if (r)
					strbuf_addf(err, "%s: %s", e->d_name,
						    why.buf);
				strbuf_release(&why);
			}
			if (!r)
				r = gunzip_sparse(src, dst, &done, total,
						  progress, err);
			disks++;
			free(plain);
		} else if (dir && (!strcmp(e->d_name, "guest.env") ||
			   !strcmp(e->d_name, "TS") ||
			   !strcmp(e->d_name, "DESCRIPTION") ||
			   !strcmp(e->d_name, "efivars.bin") ||
			   !strcmp(e->d_name, "vm.defaults"))) {
			dst = xasprintf("%s/%s", dir, e->d_name);
			r = fs_copy_file(src, dst, 0644);
			if (r)
				strbuf_addf(err, "%s: %s", src, strerror(-r));
		} else {
			dst = NULL;	/* not ours: left alone */
		}
		free(src);
		free(dst);
	}
	closedir(d);
	if (!r && !disks) {
		strbuf_addf(err, "%s holds no disk-N.img.gz", srcdir);
		r = -EINVAL;
	}
	return r;
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
	if (gzip_check_magic(path, err))
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
		if (!name || strcmp(name, MANIFEST)) {
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
		explain_gzip(path, NULL, err);
out:
	if (close_reader(a, &gz, r, err) && !r) {
		/* the MANIFEST read, but the stream after it is not sound */
		manifest_release(m);
		r = -EIO;
		explain_gzip(path, NULL, err);
	}
	strbuf_release(&text);
	return r;
}
