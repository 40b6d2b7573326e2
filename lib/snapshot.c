#include "snapshot.h"

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

#include "fsutil.h"
#include "proc.h"
#include "sha256.h"

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

static int write_mem(struct archive *a, const char *name, const char *data,
		     time_t ts, struct strbuf *manifest, struct strbuf *err)
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
	if (manifest && !r) {
		digest_init(&d);
		digest_data(&d, 0, data, len);
		r = digest_final(&d, len, hex);
		digest_release(&d);
		if (r)
			strbuf_addf(err, "%s: SHA-256: %s", name, strerror(-r));
		else
			strbuf_addf(manifest, "%s %zu %s\n", hex, len, name);
	}
	return r;
}

static int write_file(struct archive *a, const struct snap_file *f,
		      char *buf, const char *zeros, uint64_t *done,
		      uint64_t total, const struct snap_progress *progress,
		      struct strbuf *manifest, struct strbuf *err)
{
	struct archive_entry *e = NULL;
	struct region *reg = NULL;
	struct digest d;
	struct stat st;
	uint64_t pos = 0, size;
	char hex[65];
	int fd, nreg = 0, i, r = 0;

	digest_init(&d);
	fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = fd < 0 ? -errno : -EINVAL;
		strbuf_addf(err, "%s: %s", f->path, strerror(-r));
		goto out;
	}
	size = (uint64_t)st.st_size;
	r = file_regions(fd, size, &reg, &nreg);
	if (r) {
		strbuf_addf(err, "%s: %s", f->path, strerror(-r));
		goto out;
	}
	e = archive_entry_new();
	archive_entry_set_pathname(e, f->name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, st.st_mode & 0777);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, st.st_mtime, 0);
	/* A sparse map unless the file is one region of data. */
	if (!(nreg == 1 && reg[0].off == 0 && reg[0].len == size)) {
		for (i = 0; i < nreg; i++)
			archive_entry_sparse_add_entry(e, (la_int64_t)reg[i].off,
						       (la_int64_t)reg[i].len);
		if (!nreg)
			archive_entry_sparse_add_entry(e, (la_int64_t)size, 0);
	}
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", f->name, archive_error_string(a));
		r = -EIO;
		goto out;
	}
	/*
	 * The pax writer takes the file's whole length and drops what falls
	 * in holes; holes are fed from a zero buffer, never read.
	 */
	for (i = 0; i <= nreg; i++) {
		uint64_t hole_end = i < nreg ? reg[i].off : size;

		while (pos < hole_end) {
			size_t n = hole_end - pos < CHUNK ? hole_end - pos : CHUNK;

			if (archive_write_data(a, zeros, n) != (la_ssize_t)n) {
				strbuf_addf(err, "%s: %s", f->name,
					    archive_error_string(a));
				r = -EIO;
				goto out;
			}
			pos += n;
		}
		if (i == nreg)
			break;
		while (pos < reg[i].off + reg[i].len) {
			uint64_t left = reg[i].off + reg[i].len - pos;
			size_t want = left < CHUNK ? left : CHUNK;
			ssize_t got = pread(fd, buf, want, (off_t)pos);

			if (got < 0 && errno == EINTR && !proc_interrupted())
				continue;
			if (proc_interrupted()) {
				strbuf_addstr(err, "interrupted");
				r = -EINTR;
				goto out;
			}
			if (got <= 0) {
				r = got < 0 ? -errno : -EIO;
				strbuf_addf(err, "%s: %s", f->path,
					    got < 0 ? strerror(errno) :
						      "file shrank while read");
				goto out;
			}
			digest_data(&d, pos, buf, (size_t)got);
			if (archive_write_data(a, buf, (size_t)got) != got) {
				strbuf_addf(err, "%s: %s", f->name,
					    archive_error_string(a));
				r = -EIO;
				goto out;
			}
			pos += (uint64_t)got;
			*done += (uint64_t)got;
			tick(progress, *done, total);
		}
	}
	r = digest_final(&d, size, hex);
	if (r) {
		strbuf_addf(err, "%s: SHA-256: %s", f->path, strerror(-r));
		goto out;
	}
	strbuf_addf(manifest, "%s %llu %s\n", hex, (unsigned long long)size,
		    f->name);
out:
	digest_release(&d);
	if (e)
		archive_entry_free(e);
	free(reg);
	if (fd >= 0)
		close(fd);
	return r;
}

/* Bytes of data (not holes) in the files, for progress. */
static uint64_t data_bytes(const struct snap_file *files, int n)
{
	uint64_t total = 0;
	int i, j;

	for (i = 0; i < n; i++) {
		struct region *reg = NULL;
		struct stat st;
		int fd = open(files[i].path, O_RDONLY | O_CLOEXEC), nreg = 0;

		if (fd < 0)
			continue;
		if (!fstat(fd, &st) &&
		    !file_regions(fd, (uint64_t)st.st_size, &reg, &nreg))
			for (j = 0; j < nreg; j++)
				total += reg[j].len;
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
	struct strbuf manifest = STRBUF_INIT, opt = STRBUF_INIT;
	struct archive *a = archive_write_new();
	char *buf = xmalloc(CHUNK), *zeros = xcalloc(1, CHUNK), *tmp = NULL;
	char tsbuf[32];
	uint64_t done = 0, total = data_bytes(files, n);
	bool opened = false;
	int i, r = 0, fd = -1;

	archive_write_set_format_pax_restricted(a);
	if (compressor) {
		strbuf_addf(&opt, "%s -%d", compressor, level);
		r = archive_write_add_filter_program(a, opt.buf);
	} else {
		r = archive_write_add_filter_gzip(a);
		if (r == ARCHIVE_OK) {
			strbuf_addf(&opt, "gzip:compression-level=%d", level);
			r = archive_write_set_options(a, opt.buf);
		}
	}
	if (r != ARCHIVE_OK) {
		strbuf_addf(err, "compressor: %s", archive_error_string(a));
		r = -EIO;
		goto out;
	}
	archive_write_set_bytes_in_last_block(a, 1);
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
	if (archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", path, archive_error_string(a));
		r = -EIO;
		goto out;
	}
	opened = true;
	snprintf(tsbuf, sizeof(tsbuf), "%lld\n", (long long)ts);
	r = write_mem(a, "TS", tsbuf, ts, &manifest, err);
	if (!r)
		r = write_mem(a, "DESCRIPTION", description ? description : "",
			      ts, &manifest, err);
	for (i = 0; !r && i < n; i++)
		r = write_file(a, &files[i], buf, zeros, &done, total, progress,
			       &manifest, err);
	if (!r)
		r = write_mem(a, MANIFEST, manifest.buf, ts, NULL, err);
	if (!r) {
		opened = false;
		if (archive_write_close(a) != ARCHIVE_OK) {
			strbuf_addf(err, "%s: %s", path,
				    archive_error_string(a));
			r = -EIO;
		}
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
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	strbuf_release(&manifest);
	strbuf_release(&opt);
	free(buf);
	free(zeros);
	free(tmp);
	return r;
}

struct got_file {
	char *name;
	uint64_t size;
	char hex[65];
};

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
					     "saved-state", MANIFEST, NULL };
	size_t i;

	for (i = 0; fixed[i]; i++)
		if (!strcmp(s, fixed[i]))
			return true;
	return snap_disk_index(s) >= 0 || snap_image_index(s) >= 0;
}

/* The MANIFEST's lines against what was extracted. */
static int check_manifest(const char *text, struct got_file *got, int ngot,
			  struct strbuf *err)
{
	struct strvec lines = STRVEC_INIT;
	bool *seen = xcalloc((size_t)ngot + 1, sizeof(*seen));
	const char *p = text;
	int r = 0, i;
	size_t l;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = xasprintf("%.*s", (int)len, p);

		strvec_push(&lines, line);
		free(line);
		p += len + (nl ? 1 : 0);
	}
	for (l = 0; l < lines.nr && !r; l++) {
		char hex[65], name[128];
		unsigned long long size;

		if (sscanf(lines.v[l], "%64s %llu %127s", hex, &size, name) != 3) {
			strbuf_addf(err, "MANIFEST line %zu is malformed", l + 1);
			r = -EINVAL;
			break;
		}
		for (i = 0; i < ngot; i++)
			if (!strcmp(got[i].name, name))
				break;
		if (i == ngot) {
			strbuf_addf(err, "%s is in the MANIFEST but not in the archive",
				    name);
			r = -EINVAL;
		} else if (got[i].size != size) {
			strbuf_addf(err, "%s has %llu bytes, the MANIFEST says %llu",
				    name, (unsigned long long)got[i].size, size);
			r = -EINVAL;
		} else if (strcmp(got[i].hex, hex)) {
			strbuf_addf(err, "checksum mismatch in %s", name);
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
	free(seen);
	strvec_clear(&lines);
	return r;
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
			 int dirfd, struct got_file *g, uint64_t *done,
			 uint64_t total, const struct snap_progress *progress,
			 struct strbuf *err)
{
	struct digest d;
	uint64_t size = (uint64_t)archive_entry_size(e);
	int fd, r = 0;

	digest_init(&d);
	fd = openat(dirfd, g->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", g->name,
			    r == -EEXIST ? "stored twice" : strerror(-r));
		goto out;
	}
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
		r = pwrite_all(fd, blk, len, (off_t)off);
		if (r) {
			strbuf_addf(err, "%s: %s", g->name, strerror(-r));
			goto out;
		}
		digest_data(&d, (uint64_t)off, blk, len);
		/* compressed bytes read against the archive's size */
		*done = (uint64_t)archive_filter_bytes(a, -1);
		tick(progress, *done, total);
	}
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", g->name, strerror(-r));
		goto out;
	}
	g->size = size;
	r = digest_final(&d, size, g->hex);
	if (r)
		strbuf_addf(err, "%s: SHA-256: %s", g->name, strerror(-r));
out:
	digest_release(&d);
	if (fd >= 0)
		close(fd);
	return r;
}

static struct archive *open_reader(const char *path, bool fast,
				   struct strbuf *err)
{
	struct archive *a = archive_read_new();
	char *pigz = fast ? fs_which("pigz") : NULL;

	/*
	 * pigz -d in its own process inflates while this one hashes and
	 * writes; without it, libarchive's zlib does both in turn.
	 */
	if (pigz)
		archive_read_support_filter_program_signature(
			a, "pigz -d -q", "\x1f\x8b", 2);
	else
		archive_read_support_filter_gzip(a);
	free(pigz);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", path, archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
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

int snap_extract(const char *path, const char *dir,
		 const struct snap_progress *progress, struct strbuf *err)
{
	struct got_file got[MAX_FILES];
	struct strbuf manifest = STRBUF_INIT;
	struct archive *a;
	struct archive_entry *e;
	struct stat st;
	uint64_t done = 0, total = 0;
	bool have_manifest = false;
	int ngot = 0, dirfd = -1, r = 0, i;

	memset(got, 0, sizeof(got));
	/* A plain tar would read as well; a snapshot is gzip or nothing. */
	if (gzip_check_magic(path, err))
		return -EINVAL;
	a = open_reader(path, true, err);
	if (!a) {
		r = -EIO;
		goto out;
	}
	/* Progress counts compressed bytes read: the only total known. */
	if (!stat(path, &st))
		total = (uint64_t)st.st_size;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dirfd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", dir, strerror(-r));
		goto out;
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
		if (!strcmp(name, MANIFEST)) {
			const void *blk;
			size_t len;
			la_int64_t off;

			while ((r = archive_read_data_block(a, &blk, &len,
							    &off)) ==
			       ARCHIVE_OK) {
				if (manifest.len + len > (1u << 20))
					break;
				strbuf_add(&manifest, blk, len);
			}
			if (r == ARCHIVE_OK) {
				strbuf_addstr(err, "MANIFEST is larger than 1 MiB");
				r = -EINVAL;
				goto out;
			}
			if (r != ARCHIVE_EOF) {
				strbuf_addstr(err, "archive is truncated at MANIFEST");
				r = -EIO;
				goto out;
			}
			r = 0;
			have_manifest = true;
			continue;
		}
		if (ngot == MAX_FILES) {
			strbuf_addstr(err, "archive holds too many files");
			r = -EINVAL;
			goto out;
		}
		got[ngot].name = xstrdup(name);
		r = extract_entry(a, e, dirfd, &got[ngot], &done, total,
				  progress, err);
		ngot++;
		if (r)
			goto out;
	}
	if (!have_manifest) {
		strbuf_addstr(err, ngot ? "archive is truncated: no MANIFEST at its end" :
					  "archive holds no files (no MANIFEST)");
		r = -EIO;
		goto out;
	}
	r = check_manifest(manifest.buf, got, ngot, err);
	if (!r && fsync(dirfd) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", dir, strerror(-r));
	}
out:
	r = interrupted_instead(r, err);
	if (r == -ENOSPC || r == -EDQUOT) {
		r = -ENOSPC;
		no_space(dir, err);
	} else if (r == -EIO || r == -EINVAL) {
		explain_gzip(path, ngot ? got[ngot - 1].name : NULL, err);
	}
	if (dirfd >= 0)
		close(dirfd);
	if (a)
		archive_read_free(a);
	for (i = 0; i < ngot; i++)
		free(got[i].name);
	strbuf_release(&manifest);
	return r;
}

int snap_read_meta(const char *path, struct snap_meta *meta,
		   struct strbuf *err)
{
	struct archive *a;
	struct archive_entry *e;
	struct stat st;
	int found = 0, r = 0;

	memset(meta, 0, sizeof(*meta));
	if (stat(path, &st) == 0)
		meta->size = (uint64_t)st.st_size;
	a = open_reader(path, false, err);
	if (!a)
		return -EIO;
	/* TS and DESCRIPTION come first: no need to read the disks. */
	while (found < 2 && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		char buf[4096];
		la_ssize_t n;

		if (!name || (strcmp(name, "TS") && strcmp(name, "DESCRIPTION")))
			break;
		n = archive_read_data(a, buf, sizeof(buf) - 1);
		if (n < 0) {
			r = -EIO;
			break;
		}
		buf[n] = '\0';
		if (!strcmp(name, "TS")) {
			meta->ts = (time_t)strtoll(buf, NULL, 10);
		} else {
			char *nl = strchr(buf, '\n');

			if (nl)
				*nl = '\0';
			meta->description = xstrdup(buf);
		}
		found++;
	}
	if (!meta->description)
		meta->description = xstrdup("");
	archive_read_free(a);
	if (r)
		strbuf_addf(err, "%s: cannot read", path);
	return r;
}

/* A raw gzip stream into a sparse file: zero blocks become holes. */
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
	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
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
		for (o = 0; o < n; o += 4096) {
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
	if (ftruncate(fd, (off_t)pos) < 0 || fsync(fd) < 0) {
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
			dst = xasprintf("%s/%s", dir, plain);
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
		} else if (!strcmp(e->d_name, "guest.env") ||
			   !strcmp(e->d_name, "TS") ||
			   !strcmp(e->d_name, "DESCRIPTION") ||
			   !strcmp(e->d_name, "efivars.bin") ||
			   !strcmp(e->d_name, "vm.defaults")) {
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
