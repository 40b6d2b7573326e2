/*
 * A point in time of a running VM's disks, for a live @backup: QEMU
 * goes on writing into a new overlay (an external snapshot taken in one
 * transaction, the guest paused only for it), so the disk files
 * themselves hold still and can be read as files, as an offline @backup
 * reads them, their blocks comparable with the last snapshot's.  Then
 * the overlay is committed back into each disk (an active block-commit)
 * and removed.  A copy of the UEFI variables is taken in the same pause.
 *
 * Why not a backup job or an NBD fleecing export: those give the guest's
 * blocks, laid out anew; a snapshot holds the image files byte for byte
 * (docs/snapshot-format.md), and an incremental one only the file blocks
 * that changed.  See docs/verbs.md, "Live snapshots".
 */
#ifndef VM_LIVE_H
#define VM_LIVE_H

#include <stdbool.h>

#include "qemu/qmp.h"
#include "util/str.h"

/* The overlays' and the variables' copy's names in WORKDIR. */
#define LIVE_PREFIX ".live-"
#define LIVE_VARS ".live-efivars.bin"
/* the control socket's commands (qemu/control.h): begin freezes the
 * disks and says where the variables' copy is; end, or the client's
 * going away, thaws them */
#define LIVE_BEGIN "vm-live-begin"
#define LIVE_END "vm-live-end"
/* how long the agent may take to freeze, or to thaw */
#define LIVE_AGENT_MS 10000
/* how long the vm whose QEMU has ended waits for a live backup that
 * still reads the disks, before it commits under it */
#define LIVE_HOLD_MS (6 * 3600 * 1000LL)
/* how long one commit may take before vm gives up on it */
#define LIVE_COMMIT_TIMEOUT_MS (600 * 1000)

/* One disk QEMU writes: its drive id and file. */
struct live_disk {
	char *id;		/* -drive id=, e.g. disk0 */
	char *path;		/* its file */
	char *node;		/* its node, while frozen */
	char *format;		/* and that node's format */
	unsigned long long size;	/* its virtual size */
	char *overlay;		/* WORKDIR/.live-ID.qcow2, while frozen */
	/* its dirty bitmaps (qemu/bitmap.h), while frozen: */
	bool tracked;		/* BITMAP_NEXT marks what is written now */
	bool copied;		/* BITMAP_FROZEN holds the since bitmap */
	char *export;		/* the NBD export offering it, or NULL */
	char *bm_why;		/* why no export, or NULL */
};

struct live {
	struct live_disk *d;
	int n;
	char *workdir;
	char *vars;		/* the UEFI variables' file, or NULL */
	char *agent;		/* the guest agent's socket, or NULL */
	bool agent_required;	/* guest_agent = yes: no freeze, no backup */
	bool frozen;
	/* the last freeze: */
	long long paused_ms;	/* the guest's pause */
	long long fs_frozen_ms;	/* its file systems', by its agent; or 0 */
	const char *taken;	/* "frozen" or "crash-consistent" */
	struct strbuf why;	/* crash-consistent with an agent: why */
	char *since;		/* the bitmap counting from the parent, or NULL */
	char *keep;		/* the bitmap to keep after the thaw, or NULL */
	bool serving;		/* QEMU's NBD server listens at LIVE_NBD */
};

#define LIVE_INIT { NULL, 0, NULL, NULL, NULL, false, false, 0, 0, \
		    "crash-consistent", STRBUF_INIT, NULL, NULL, false }

/* QEMU's NBD server, offering the bitmaps, in WORKDIR while frozen */
#define LIVE_NBD "nbd.sock"

/* A disk QEMU writes (id and path copied). */
void live_add_disk(struct live *l, const char *id, const char *path);
void live_release(struct live *l);

/*
 * Freeze: with an agent that answers, freeze the guest's file systems
 * (guest-fsfreeze-freeze, bounded by LIVE_AGENT_MS); pause the guest,
 * put an overlay on every disk in one transaction, copy the variables
 * to WORKDIR/LIVE_VARS, resume; thaw the file systems, whatever
 * happened.  The guest runs on whatever happens.  Returns 0 (l->frozen,
 * l->paused_ms, l->taken) or -errno with err; on failure nothing is
 * left.
 */
int live_freeze(struct live *l, struct qmp *q, struct strbuf *err);

/*
 * Thaw: withdraw the bitmaps' exports; commit each overlay back into
 * its disk, remove it and the variables' copy; then each disk's
 * BITMAP_NEXT becomes l->keep, or (keep NULL) goes.  Returns 0 or -errno with err; a disk whose commit
 * failed keeps its overlay (l->frozen stays set) for a later try.
 */
int live_thaw(struct live *l, struct qmp *q, struct strbuf *err);

/*
 * The other side, a live @backup: ask the vm that runs the VM, at its
 * control socket, to freeze the disks (require_agent: only with the
 * guest's file systems frozen by its agent).  Returns 0 with the guest's pause
 * and where the variables' copy is, how it was taken (b; release it
 * with live_begun_release), or -errno with err.  The disks stay frozen until live_remote_end, or
 * until q is closed (by vm's end too, SIGKILL included).
 */
struct live_bitmap {
	char *file;		/* the disk's file name, e.g. disk-0.img */
	char *export;		/* the NBD export offering BITMAP_FROZEN */
	char *why;		/* or why none */
};
struct live_begun {
	long long paused_ms;	/* the guest's pause */
	long long fs_frozen_ms;	/* its file systems' freeze, or 0 */
	char *taken;		/* "frozen" or "crash-consistent" */
	char *why;		/* crash-consistent: why, or NULL */
	char *efivars;		/* the variables' copy, or NULL */
	char *nbd;		/* the NBD server's socket, or NULL */
	struct live_bitmap *bm;	/* one per disk */
	int nbm;
};
/* since: the bitmap counting from the parent (NULL: none is asked) */
int live_remote_begin(struct qmp *q, const char *control,
		      bool require_agent, const char *since,
		      struct live_begun *b, struct strbuf *err);
void live_begun_release(struct live_begun *b);
/* keep: the bitmap the disks keep, counting from the new snapshot (NULL:
 * the backup failed, no bitmap counts from it) */
int live_remote_end(struct qmp *q, const char *keep, struct strbuf *err);


/* The overlays were committed by live_recover: nothing is frozen. */
void live_forget(struct live *l);

/*
 * QEMU has ended with the disks frozen, or an earlier vm was killed
 * with them so: commit what WORKDIR's overlays hold into their disks
 * with qemu-img and remove them, and the NBD socket (LIVE_NBD).  How many there were, or -errno with
 * err (an overlay that cannot be committed is kept).
 */
int live_recover(const char *workdir, struct strbuf *err);

#endif
