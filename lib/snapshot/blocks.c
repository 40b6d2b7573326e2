/* What the snapshot writer and reader share: digests, progress, errors. */
#include "snapshot/snapint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/proc.h"

/* A failure of the hash is kept for snap_digest_final() to return. */
void snap_digest_init(struct snap_digest *d)
{
	sha256_init(&d->sha);
	d->map = (struct strbuf)STRBUF_INIT;
	d->in_run = false;
	d->run_start = d->run_len = 0;
}

void snap_digest_data(struct snap_digest *d, uint64_t off, const void *p,
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
int snap_digest_final(struct snap_digest *d, uint64_t size, char hex[65])
{
	if (d->in_run)
		strbuf_addf(&d->map, "%llu %llu\n",
			    (unsigned long long)d->run_start,
			    (unsigned long long)d->run_len);
	strbuf_addf(&d->map, "%llu\n", (unsigned long long)size);
	sha256_update(&d->sha, d->map.buf, d->map.len);
	return sha256_final_hex(&d->sha, hex);
}

/* After snap_digest_init(), finished or not. */
void snap_digest_release(struct snap_digest *d)
{
	sha256_release(&d->sha);
	strbuf_release(&d->map);
}

void snap_tick(const struct snap_progress *p, uint64_t done, uint64_t total)
{
	if (p && p->fn)
		p->fn(p->data, done, total);
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

/* Files kept by blocks (disks, UEFI variables, saved RAM), not whole. */
bool snap_block_stored(const char *name)
{
	return snap_disk_index(name) >= 0 || snap_image_index(name) >= 0 ||
	       !strcmp(name, "efivars.bin") || !strcmp(name, "saved-state");
}

/*
 * Ctrl-C on a terminal reaches pigz too (it is in vm's process group):
 * whatever libarchive then says, the cause is the interrupt, not the
 * archive.
 */
int snap_interrupted_instead(int r, struct strbuf *err)
{
	if (!r || r == -EINTR || !proc_interrupted())
		return r;
	strbuf_reset(err);
	strbuf_addstr(err, "interrupted");
	return -EINTR;
}

/*
 * A full file system ends a pwrite short, without errno: the next call
 * says why (ENOSPC), where errno would hold a stale EAGAIN from
 * libarchive's pipe to pigz.
 */
int snap_pwrite_all(int fd, const void *p, size_t len, off_t off)
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

/* "no space left on MOUNT" for the file system of path. */
void snap_no_space(const char *path, struct strbuf *err)
{
	char *m = fs_mount_point(path);

	strbuf_reset(err);
	strbuf_addf(err, "no space left on %s", m);
	free(m);
}

int snap_sync(const char *dir, struct strbuf *err)
{
	int r = fs_fsync_files(dir);

	if (r == -ENOSPC || r == -EDQUOT) {
		snap_no_space(dir, err);
		return -ENOSPC;
	}
	if (r)
		strbuf_addf(err, "%s: %s", dir, strerror(-r));
	return r;
}
