/* HOSTDIR/backups: naming, listing and the LAST link. */
#ifndef VM_BACKUPS_H
#define VM_BACKUPS_H

#include <stdbool.h>

#include "snapshot/snapshot.h"
#include "vm/vm.h"

struct backup {
	char *name;		/* S0, 2023-05-10, ... */
	char *path;		/* backups/NAME.tar.gz or backups/NAME/ */
	bool legacy;		/* the reference's directory layout */
};

/*
 * Every snapshot in HOSTDIR/backups, in natural order (S2 before S10).
 * Returns the count (0 when there is no backups/) or -errno; the caller
 * frees with backups_free.
 */
int backups_list(const struct vm *vm, struct backup **out);
void backups_free(struct backup *b, int n);

/* The snapshot LAST names, or NULL; caller frees. */
char *backups_last(const struct vm *vm);

/*
 * LAST's target when it is not a snapshot's plain name in backups/ (a
 * link that leads elsewhere), else NULL.  Caller frees.
 */
char *backups_last_stray(const struct vm *vm);

/*
 * HOSTDIR/backups may be written and cleaned: a directory, or none yet.
 * A symbolic link (or anything else) is refused with err, -ELOOP or
 * -ENOTDIR: vm never writes or removes files where a link leads.
 */
int backups_writable(const struct vm *vm, struct strbuf *err);

/* The next free S<n> after the highest one; caller frees. */
char *backups_next_name(const struct backup *b, int n);

/* Find NAME ("LAST" resolves the link) in the list, or NULL. */
const struct backup *backups_find(const struct vm *vm,
				  const struct backup *b, int n,
				  const char *name);

/* Point LAST at name atomically (new link + rename). */
int backups_set_last(const struct vm *vm, const struct backup *b);

/* The snapshot in list a CHAIN's parent NAME is (never the reference
 * layout, which has no MANIFEST), or NULL; NULL name: NULL. */
const struct backup *backups_parent(const struct backup *list, int n,
				    const char *name);

/*
 * The chain b restores with: its parents up to a full snapshot (or one
 * of the reference's layout, or one that cannot be read, which
 * restoring then names), oldest first, b last.  *out (caller frees)
 * points into list.  Returns the count, or -ENOENT when a parent is
 * not in backups/ (err names both), -ELOOP.
 */
int backups_chain(const struct backup *list, int n, const struct backup *b,
		  const struct backup ***out, struct strbuf *err);

/*
 * Restore a chain (backups_chain) into the empty directory dir, each
 * link on the one before; dir NULL: check every archive without
 * writing.  m gets the MANIFEST of the last (caller releases, also on
 * failure).  A fault of a parent is named: "S1 (a parent of S3): ...".
 */
int backups_apply(const struct backup *const *chain, int k, const char *dir,
		  const struct snap_progress *prog, struct manifest *m,
		  struct strbuf *err);

/*
 * The same one link at a time, for a chain whose archives arrive one by
 * one (a pull): start, then next for each link oldest first (b->name
 * and b->path), then snap_sync(dir) and m is the last one's MANIFEST.
 * A failed link leaves the rest to the caller (err is its own).
 */
struct backups_applying {
	const char *dir;
	char *prev;		/* the link applied last, or NULL */
	struct manifest m;	/* its MANIFEST */
	uint64_t done, total;
};
void backups_apply_start(struct backups_applying *a, const char *dir,
			 uint64_t total);
int backups_apply_next(struct backups_applying *a, const struct backup *b,
		       const struct snap_progress *prog, struct strbuf *err);
void backups_apply_release(struct backups_applying *a);

/*
 * Store child (built on p) again so that it no longer needs p: what it
 * takes of p goes into it, it names p's parent instead (or none: a full
 * snapshot), and it restores exactly as before (its STATE is checked),
 * so its own children stay valid.  Written beside it and renamed over
 * it: at every moment the old or the new file restores.  Needs room for
 * the child's files in a private directory (TMPDIR).  Returns 0 or
 * -errno with err.
 */
int backups_fold(const struct vm *vm, const struct backup *list, int n,
		 const struct backup *p, const struct backup *child,
		 const char *compressor, int level, struct strbuf *err);

/*
 * The MANIFEST of snapshot b (in list), from the copy @backup keeps
 * beside it (.NAME.manifest, every digest written out) while the
 * archive is the same file, else from the archive (read to its end, its
 * blocks that are its parent's (=N) taken from the parent's MANIFEST,
 * read the same way, and the copy made again).  Returns 0 or -errno
 * with err.
 */
int backups_read_manifest(const struct backup *list, int n,
			  const struct backup *b, struct manifest *m,
			  struct strbuf *err);
void backups_keep_manifest(const struct backup *b, const char *text,
			   size_t len);

/*
 * The SHA-256 of snapshot b's archive and of the tar inside it (what an
 * OCI image calls a layer's digest and its diff_id), as "sha256:HEX",
 * from .NAME.digests beside it while the archive is the same file (as
 * for .NAME.manifest), else read and kept there.  Returns 0, -EINTR,
 * or -errno with err.
 */
int backups_layer_digests(const struct backup *b, char digest[72],
			  char diff_id[72], struct strbuf *err);

/*
 * The same for each of the k snapshots of chain into digest[i] and
 * diff_id[i], the ones not kept yet read side by side (a thread per
 * core, at most BACKUPS_HASH_THREADS): reading them is a push's first
 * and longest step.  Returns 0 or the first layer's error, with err.
 */
#define BACKUPS_HASH_THREADS 4
int backups_chain_digests(const struct backup *const *chain, int k,
			  char (*digest)[72], char (*diff_id)[72],
			  struct strbuf *err);

/* Remove what a killed @backup or @forget left in backups/ (dir). */
void backups_sweep(const char *dir);

#endif
