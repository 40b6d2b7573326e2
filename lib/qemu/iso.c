#include "qemu/iso.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int copy_data(struct archive *a, const char *dest, struct strbuf *err)
{
	/* the cache is shared by every VM: a temporary file of our own */
	char *tmp = xasprintf("%s.%ld.tmp", dest, (long)getpid());
	const void *buf;
	size_t size;
	la_int64_t off;
	int fd, r = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", tmp, strerror(-r));
		free(tmp);
		return r;
	}
	for (;;) {
		int ar = archive_read_data_block(a, &buf, &size, &off);

		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			strbuf_addstr(err, archive_error_string(a));
			r = -EIO;
			break;
		}
		if (pwrite(fd, buf, size, (off_t)off) != (ssize_t)size) {
			r = -errno;
			strbuf_addf(err, "%s: %s", tmp, strerror(-r));
			break;
		}
	}
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, dest) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	free(tmp);
	return r;
}

int iso_extract(const char *iso, const char *const *names,
		const char *const *dests, int n, struct strbuf *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	bool *done = xcalloc((size_t)n, sizeof(*done));
	int found = 0, r = 0, i;

	archive_read_support_format_iso9660(a);
	if (archive_read_open_filename(a, iso, 65536) != ARCHIVE_OK) {
		strbuf_addf(err, "%s: %s", iso, archive_error_string(a));
		r = -EIO;
		goto out;
	}
	while (found < n) {
		const char *path;
		int ar = archive_read_next_header(a, &e);

		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			strbuf_addf(err, "%s: %s", iso, archive_error_string(a));
			r = -EIO;
			goto out;
		}
		path = archive_entry_pathname(e);
		if (!path)
			continue;
		while (*path == '/' || (path[0] == '.' && path[1] == '/'))
			path += path[0] == '/' ? 1 : 2;
		for (i = 0; i < n; i++) {
			if (done[i] || strcmp(path, names[i]) ||
			    archive_entry_filetype(e) != AE_IFREG)
				continue;
			r = copy_data(a, dests[i], err);
			if (r)
				goto out;
			done[i] = true;
			found++;
			break;
		}
	}
	for (i = 0; i < n; i++) {
		if (!done[i]) {
			strbuf_addf(err, "%s has no /%s", iso, names[i]);
			r = -ENOENT;
			break;
		}
	}
out:
	archive_read_free(a);
	free(done);
	return r;
}

bool iso_is_disc(const char *path)
{
	char id[5];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool disc;

	if (fd < 0)
		return false;
	disc = pread(fd, id, sizeof(id), 32769) == (ssize_t)sizeof(id) &&
	       (!memcmp(id, "CD001", 5) || !memcmp(id, "BEA01", 5));
	close(fd);
	return disc;
}
