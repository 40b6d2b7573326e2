/*
 * Snapshots: one pax tarball (sparse-aware, gzip through pigz) holding a
 * VM's files and a MANIFEST of their sizes and SHA-256 digests.
 */
#ifndef VM_SNAPSHOT_H
#define VM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "snapshot/manifest.h"
#include "util/fsutil.h"
#include "util/str.h"

/*
 * TAKEN: how a live snapshot was taken, one word and a newline
 * ("crash-consistent", "frozen"); a snapshot of a stopped VM has none.
 */
#define SNAP_TAKEN "TAKEN"

/* guest.conf allows at most 16 disks: disk-0.img to disk-15.img. */
#define SNAP_MAX_DISKS 16

/*
 * N for a disk's file name as vm makes it, "disk-N.img" with N in
 * 0..SNAP_MAX_DISKS-1 written without leading zeros; -1 for any other
 * name.  @backup stores and @restore accepts exactly these names.
 */
int snap_disk_index(const char *name);

/*
 * The same for "image-N.img": the file of images item N of a VM made
 * from images only (-D ''), which snapshots hold in place of disks.
 */
int snap_image_index(const char *name);

/* Called as bytes are stored or restored; total is known up front. */
struct snap_progress {
	void (*fn)(void *data, uint64_t done, uint64_t total);
	void *data;
};

/* One file to put in a snapshot: its name in the archive and on disk. */
struct snap_file {
	const char *name;	/* plain name, e.g. "disk-0.img" */
	const char *path;
	/*
	 * Runs of the file known to hold what they held in the parent's
	 * file of this name (a dirty bitmap says so), in order: with a
	 * parent, their whole blocks keep the parent's digests unread.
	 */
	const struct range *clean;
	size_t nclean;
};

/*
 * Write files (in that order) plus TS, DESCRIPTION and a final MANIFEST
 * to the archive at path, which must not exist.  Holes in the files
 * are stored as holes.  compressor: argv[0] of a gzip-compatible program
 * such as "pigz" (run by libarchive), or NULL for libarchive's own gzip.
 * The archive is written as an unnamed file (O_TMPFILE) in path's
 * directory and linked at path only when complete and fsynced, so not
 * even SIGKILL leaves a partial file; where O_TMPFILE is not supported,
 * a hidden .NAME.tmpPID beside it, removed on failure or interrupt.
 * Returns 0, -EEXIST when path appeared meanwhile, -EINTR, -ENOSPC (err
 * says "no space left on MOUNT"), or -errno with err saying what failed.
 */
int snap_write(const char *path, const struct snap_file *files, int n,
	       const char *description, time_t ts, const char *compressor,
	       int level, const struct snap_progress *progress,
	       struct strbuf *err);

/*
 * snap_write with a parent: a snapshot that stores only the blocks of
 * each disk that differ from the parent's (parent_m, its MANIFEST) and
 * names it (parent) with its STATE; files the parent has not, or has
 * not by blocks, are stored whole.  parent NULL: a full snapshot.
 * state gets the new snapshot's STATE (manifest.h).
 */
struct snap_wopts {
	const char *description;
	time_t ts;
	const char *compressor;
	int level;
	const char *parent;
	const struct manifest *parent_m;
	const struct snap_progress *progress;
	char state[65];
	/* if not NULL: gets the MANIFEST text with every digest written out
	 * (no =N), which needs no parent to read (the copy beside it) */
	struct strbuf *manifest;
	bool seal;		/* write this user's SEAL (snapshot/seal.h) */
	const char *seal_text;	/* or carry this one (a fold); NULL: none */
	bool sealed;		/* out: a SEAL was written */
	const char *taken;	/* how it was taken (SNAP_TAKEN), or NULL:
				 * offline, and no TAKEN entry */
	uint64_t read;		/* out: bytes read from the files */
};
int snap_write_opts(const char *path, const struct snap_file *files, int n,
		    struct snap_wopts *o, struct strbuf *err);

/* The snapshot an incremental one is applied on, already restored. */
struct snap_base {
	const char *name;
	const struct manifest *m;	/* its MANIFEST */
	char state[65];			/* and its STATE */
};

/*
 * Apply one snapshot of a chain to dir, which holds base restored (or
 * is empty, base NULL, for a full one); dir NULL checks only, reading
 * the archive to its end.  Every block of every file is proven against
 * the MANIFEST (see check_blocks), an incremental one's parent must be
 * base with the STATE it names, files base has and this one has not
 * are removed.  out gets the MANIFEST (caller releases, also on
 * failure).  done/total: progress across the chain, in compressed
 * bytes (done may be NULL; total 0: this archive's size).  Nothing is
 * fsynced: the next snapshot of the chain rewrites what this one wrote,
 * so the caller makes the result last once, at the end
 * (fs_fsync_files).  Returns as snap_extract, and -ENOENT when an
 * incremental snapshot has no base.
 */
int snap_apply(const char *path, const char *dir, const struct snap_base *base,
	       struct manifest *out, uint64_t *done, uint64_t total,
	       const struct snap_progress *progress, struct strbuf *err);

/*
 * The MANIFEST of the archive at path, parsed but not checked against
 * the data (that is snap_apply's): what a new snapshot on this one
 * needs, once its blocks that are its parent's are given
 * (manifest_resolve).  Reads (and inflates) the whole archive.  Returns 0 or -errno
 * with err.
 */
int snap_read_manifest(const char *path, struct manifest *m,
		       struct strbuf *err);

/*
 * Extract a snapshot into the empty directory dir, checking everything:
 * gzip and tar integrity, only plain regular files named in the
 * MANIFEST (no paths, links or devices), and every size and SHA-256.
 * Holes are restored as holes, and what is written is fsynced.
 * Returns 0, or -EINVAL / -EIO / -ENOSPC
 * / -errno with err naming the file and the fault in one line ("not a
 * gzip archive", "archive is damaged at byte N", "no space left on
 * MOUNT", ...); dir may then hold debris the caller removes.
 */
int snap_extract(const char *path, const char *dir,
		 const struct snap_progress *progress, struct strbuf *err);

/* What @snapshots shows, read from the archive's first entries. */
struct snap_meta {
	time_t ts;
	char *description;	/* caller frees */
	uint64_t size;		/* of the archive file */
	uint64_t data;		/* bytes of the files it restores, from CHAIN */
	bool chained;		/* has CHAIN: made by a vm that knows chains */
	char *parent;		/* its parent, or NULL: a full snapshot */
	char parent_state[65];
	char taken[20];		/* "offline" (no TAKEN), "crash-consistent",
				 * "frozen", or "unknown" */
	char *guest_conf;	/* its guest.conf's text, or NULL */
};
/* The most of an entry snap_read_meta reads (a guest.conf's text). */
#define SNAP_META_CONF_MAX 65536
int snap_read_meta(const char *path, struct snap_meta *meta,
		   struct strbuf *err);
void snap_meta_release(struct snap_meta *meta);

/*
 * The reference's layout: a directory with disk-N.img.gz, guest.env,
 * TS and DESCRIPTION.  Decompress the disks into dir (sparse), copy the
 * rest.  With dir NULL only check: every disk-N.img.gz inflates to its
 * end and its gzip trailer holds, and there is at least one.  Returns 0
 * or -errno with err.
 */
int snap_extract_legacy(const char *srcdir, const char *dir,
			const struct snap_progress *progress,
			struct strbuf *err);

#endif
