/* The reference layout: backups/NAME/ of gzip-compressed files. */
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
#include <zlib.h>

#include "snapshot/snapint.h"
#include "util/fsutil.h"
#include "util/proc.h"

/* n bytes of buf at pos of fd; blocks of zeros are left as holes. */
static int write_sparse(int fd, const char *buf, la_ssize_t n, uint64_t pos,
			const char *dst, struct strbuf *err)
{
	static const char zero[4096];
	la_ssize_t o;
	int r;

	for (o = 0; fd >= 0 && o < n; o += 4096) {
		size_t len = (size_t)(n - o) < 4096 ? (size_t)(n - o) : 4096;

		if (len == 4096 && !memcmp(buf + o, zero, 4096))
			continue;
		r = snap_pwrite_all(fd, buf + o, len,
				    (off_t)(pos + (uint64_t)o));
		if (r) {
			strbuf_addf(err, "%s: %s", dst, strerror(-r));
			return r;
		}
	}
	return 0;
}

/* libarchive's gzip reader skips the CRC and length: zlib checks */
static int check_trailer(const char *src, struct strbuf *err)
{
	struct strbuf why = STRBUF_INIT;
	const char *base = strrchr(src, '/');
	int r = 0;

	snap_explain_gzip(src, NULL, &why);
	if (why.len) {
		strbuf_addf(err, "%s: %s", base ? base + 1 : src, why.buf);
		r = -EIO;
	}
	strbuf_release(&why);
	return r;
}

/*
 * A raw gzip stream into a sparse file: zero blocks become holes.  With
 * dst NULL the stream is only read to its end and its trailer checked.
 */
static int gunzip_sparse(const char *src, const char *dst, uint64_t *done,
			 uint64_t total, const struct snap_progress *progress,
			 struct strbuf *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *buf = xmalloc(SNAP_CHUNK);
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
		la_ssize_t n = archive_read_data(a, buf, SNAP_CHUNK);

		if (n == 0)
			break;
		if (n < 0) {
			struct strbuf why = STRBUF_INIT;
			const char *base = strrchr(src, '/');

			strbuf_addf(&why, "damaged or truncated (%s)",
				    archive_error_string(a));
			snap_explain_gzip(src, NULL, &why);
			strbuf_addf(err, "%s: %s", base ? base + 1 : src,
				    why.buf);
			strbuf_release(&why);
			r = -EIO;
			goto out;
		}
		r = write_sparse(fd, buf, n, pos, dst, err);
		if (r)
			goto out;
		pos += (uint64_t)n;
		snap_tick(progress, *done + (uint64_t)archive_filter_bytes(a, -1),
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
	r = check_trailer(src, err);
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

				r = snap_gzip_check_magic(src, &why);
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

