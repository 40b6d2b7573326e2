/*
 * A snapshot of a VM into HOSTDIR/backups: what restore (restore.h) puts
 * back, as a library call of the same standing.  backup_prepare decides
 * everything (name, files, the snapshot it is stored on) and changes
 * nothing but a missing guest.conf; backup_store writes it and moves
 * LAST.  Errors are whole lines for the user (without "vm: ").
 */
#ifndef VM_BACKUP_H
#define VM_BACKUP_H

#include <stdbool.h>

#include "snapshot/backups.h"
#include "snapshot/manifest.h"
#include "snapshot/snapshot.h"
#include "util/str.h"
#include "vm/vm.h"

/* How the changes of one stored disk since the parent are found. */
struct backup_read {
	const char *by;		/* "bitmap", "digests"; NULL: stored whole */
	char *why;		/* why not by its bitmap, or NULL */
	struct range *clean;	/* by bitmap: file runs as in the parent */
	size_t nclean;
	uint64_t marked;	/* by bitmap: bytes of the disk it marks */
	char *export;		/* live: the NBD export offering its bitmap */
};

struct backup_job {
	char *name;		/* the snapshot's name */
	char *file;		/* HOSTDIR/backups/NAME.tar.gz */
	struct strvec names;	/* the files it holds, in order */
	struct strvec paths;	/* where each of them is */
	int ndisks;		/* disks and images among them */
	const char *parent;	/* stored on this snapshot, or NULL: full */
	char *why_full;		/* why not on LAST, or NULL */
	bool why_full_warns;	/* that is a warning, not only news */
	/* the backups/ listing and the parent's MANIFEST */
	struct backup *list;
	int n;
	struct manifest pm;
	bool sealed;		/* backup_store wrote a SEAL */
	const char *taken;	/* a live one: how (SNAP_TAKEN); NULL offline */
	struct backup_read *reads;	/* one per file */
	char *nbd;		/* live: the socket of the bitmaps' exports */
	uint64_t read;		/* by backup_store: bytes read of the files */
	char state[65];		/* by backup_store: the new snapshot's STATE,
				 * once LAST names it; else "" */
};

/*
 * Decide the snapshot name (NULL: the next free S<n>) of vm: its files
 * (guest.conf, the disks in order, the images it owns, efivars.bin,
 * saved-state, vm.defaults), checked as restore would check them, and
 * its parent (LAST, unless full_every, a broken chain, an unreadable
 * MANIFEST or other disks make it full).  Writes only a missing
 * guest.conf (not in a dry run).  Returns 0, -EEXIST (the name is
 * taken), -ENOENT (nothing to back up) or -errno, with err.  job is
 * set up here: release it with backup_job_release whatever this returns.
 */
int backup_prepare(struct vm *vm, const char *name, struct backup_job *job,
		   struct strbuf *err);

/*
 * Write the snapshot job prepared, with description, compressed by
 * compressor (argv[0] of pigz, or NULL for zlib) at vm's level, and
 * point LAST at it.  A disk whose dirty bitmap counts from the parent
 * is read only where the bitmap marks it (job->reads says, disk by
 * disk, how its changes were found and why not by bitmap); after the
 * snapshot every qcow2 disk gets a bitmap counting from it.  Returns 0, -EINTR when vm was interrupted, or
 * -errno, with err; nothing is left but a whole snapshot.
 */
int backup_store(struct vm *vm, struct backup_job *job,
		 const char *description, const char *compressor,
		 const struct snap_progress *progress, struct strbuf *err);

/*
 * The VM's disks came from snapshot, made elsewhere: the bitmaps of ours
 * they hold go, since only a bitmap vm's own QEMUs kept says truly what
 * did not change (one in a foreign file could claim anything).  A disk
 * whose bitmaps cannot be removed is said.
 */
void backup_drop_bitmaps(const struct vm *vm, const char *snapshot);

/*
 * Store the file named name from path instead (a live backup's copy of
 * the UEFI variables); -ENOENT when the job holds no such file.
 */
int backup_job_use(struct backup_job *job, const char *name,
		   const char *path);

/*
 * The bitmap counting from the job's parent (BITMAP_PREFIX and its
 * STATE), or NULL for a full one.  Caller frees.
 */
char *backup_since(const struct backup_job *job);

/*
 * The bitmap the disks keep after the job, counting from its snapshot
 * (once backup_store has made it LAST), or NULL.  Caller frees.
 */
char *backup_keep(const struct backup_job *job);

/*
 * A live backup: the file named file's bitmap since the parent is read
 * from export at the NBD server nbd (export NULL: none, why says why).
 */
void backup_job_bitmap(struct backup_job *job, const char *file,
		       const char *nbd, const char *export, const char *why);

void backup_job_release(struct backup_job *job);

#endif
