/*
 * A snapshot of a VM whether it runs or not, as @backup takes one and as
 * `vm serve` does for a client allowed to: the library calls both use.
 * A running VM's disks are held still through its own vm (qemu/live.h)
 * while they are read; a stopped VM's lock is taken (and what an
 * interrupted live backup left is committed first).  They say nothing:
 * what happened is in the struct, for the caller to tell.
 */
#ifndef VM_HOST_BACKUP_H
#define VM_HOST_BACKUP_H

#include <stdbool.h>

#include "qemu/live.h"
#include "qemu/qmp.h"
#include "snapshot/backup.h"
#include "util/str.h"
#include "vm/vm.h"

struct vm_backup {
	struct backup_job job;
	bool running;		/* the VM ran: a live backup */
	bool live;		/* its disks are held still through its vm */
	char *control;		/* its vm's control socket (dry run: said) */
	struct qmp q;		/* to that vm, while live */
	struct live_begun b;	/* how they were held */
	int recovered;		/* overlays of an earlier live backup
				 * committed before this one */
	char *end_error;	/* its vm had not taken back its disks: why
				 * (it does when QEMU ends), or NULL */
};

void vm_backup_init(struct vm_backup *vb);

/*
 * A vm killed during a live backup, with its QEMU, left the disks of vm
 * (whose lock is held, so it is not running) frozen: what the guest
 * wrote since is in overlays in WORKDIR.  Commit them before anything
 * reads the disks.  How many there were, or -errno with err as a whole
 * line: then nothing may read or run the disks.
 */
int vm_backup_recover(struct vm *vm, struct strbuf *err);

/*
 * Decide the snapshot (name NULL: the next free S<n>) of vm as
 * backup_prepare does, then hold its disks: when it runs, through its
 * vm (not in a dry run: vb->running says it would); else by taking its
 * lock unless vm holds it, finding its WORKDIR and committing what an
 * interrupted live backup left.  Returns 0, -EBUSY (another vm holds
 * the lock), -EEXIST, -ENOENT or -errno, with err as a whole line
 * (without "vm: ").  Release vb with vm_backup_release whatever this
 * returns.
 */
int vm_backup_begin(struct vm *vm, const char *name, struct vm_backup *vb,
		    struct strbuf *err);

/*
 * Store the snapshot begun (backup_store), then give a running VM's
 * disks back to its vm (the bitmap they keep counting from the new
 * snapshot).  Returns as backup_store does.
 */
int vm_backup_store(struct vm *vm, struct vm_backup *vb,
		    const char *description, const char *compressor,
		    const struct snap_progress *progress, struct strbuf *err);

/* Gives the disks back if still held; vb can be begun again after. */
void vm_backup_release(struct vm_backup *vb);

#endif
