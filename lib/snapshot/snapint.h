/*
 * What the snapshot writer (writer.c), reader (reader.c), the reference
 * layout (legacy.c) and the gzip diagnostics (gzcheck.c) share; not for
 * use outside lib/snapshot/.
 */
#ifndef VM_SNAPINT_H
#define VM_SNAPINT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot/snapshot.h"
#include "util/sha256.h"
#include "util/str.h"

/* The unit of reading and writing. */
#define SNAP_CHUNK (1u << 20)
/* The entry that lists every other, last in the archive. */
#define SNAP_MANIFEST "MANIFEST"

/*
 * A file's digest covers its data regions and its layout, not the
 * zeros in its holes, so a 20 GiB image with 200 MiB of data is hashed
 * in the time of 200 MiB: SHA-256 over the region bytes in order, then
 * the text "OFFSET LENGTH\n" for each region (adjacent ones merged) and
 * "SIZE\n".
 */
struct snap_digest {
	struct sha256 sha;
	struct strbuf map;
	uint64_t run_start, run_len;
	bool in_run;
};

void snap_digest_init(struct snap_digest *d);
void snap_digest_data(struct snap_digest *d, uint64_t off, const void *p,
		      size_t len);
/* Returns 0, or -errno of the hash (hex is then empty). */
int snap_digest_final(struct snap_digest *d, uint64_t size, char hex[65]);
/* After snap_digest_init(), finished or not. */
void snap_digest_release(struct snap_digest *d);

/* Tell progress (p may be NULL). */
void snap_tick(const struct snap_progress *p, uint64_t done, uint64_t total);

/* Files kept by blocks (disks, UEFI variables, saved RAM), not whole. */
bool snap_block_stored(const char *name);

/*
 * Ctrl-C on a terminal reaches pigz too (it is in vm's process group):
 * whatever libarchive then says, the cause is the interrupt.  Returns r,
 * or -EINTR with err saying "interrupted".
 */
int snap_interrupted_instead(int r, struct strbuf *err);

/* All of len bytes at off, retried on EINTR and short writes; -errno. */
int snap_pwrite_all(int fd, const void *p, size_t len, off_t off);

/* err becomes "no space left on MOUNT" for path's file system. */
void snap_no_space(const char *path, struct strbuf *err);

/*
 * What a restore wrote into dir made to last (fs_fsync_files): once,
 * after the last snapshot of a chain.  0, or -errno with err.
 */
int snap_sync(const char *dir, struct strbuf *err);

/*
 * After a failed read of path: replace err with the gzip-level cause
 * when there is one (the tar or MANIFEST message is its echo).  at: the
 * entry being read, or NULL.
 */
void snap_explain_gzip(const char *path, const char *at, struct strbuf *err);

/* Refuse what does not start as gzip does, with the one-line reason. */
int snap_gzip_check_magic(const char *path, struct strbuf *err);

#endif
