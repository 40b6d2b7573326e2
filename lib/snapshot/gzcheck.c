/* What is wrong with a gzip stream, told in one line. */
#include "snapshot/snapint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/proc.h"

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
void snap_explain_gzip(const char *path, const char *at, struct strbuf *err)
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
int snap_gzip_check_magic(const char *path, struct strbuf *err)
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

