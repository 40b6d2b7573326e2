/* Putting a VM back as it was in a snapshot. */
#ifndef VM_RESTORE_H
#define VM_RESTORE_H

#include "snapshot/snapshot.h"
#include "util/str.h"
#include "vm/vm.h"

/*
 * The snapshot want names ("LAST" or NAME).  Returns 0 with *name
 * (caller frees), -ENOENT with err saying what is missing, or -errno.
 */
int restore_pick(const struct vm *vm, const char *want, char **name,
		 struct strbuf *err);

/*
 * Whether snapshots of a VM with settings c hold item i of its images,
 * as image-i.img: only a VM made from images only (no disks) has them
 * there, and of those only a local file (not a CD, not a URL's cached
 * copy, which is never written).
 */
bool restore_holds_image(const struct vm_conf *c, size_t i);

/* Where images item i is: its path, against HOSTDIR when relative. */
char *restore_image_path(const struct vm *vm, const struct vm_conf *c,
			 size_t i);

/*
 * What a snapshot must hold to be restored, checked on files before
 * anything depends on them: confdir/guest.conf is a regular file that
 * loads as vm loads it at its next start (every layer, with and without
 * this run's options), and confdir/vm.defaults, when there is one, reads
 * as QEMU arguments; diskdir holds each disk-N.img it names, as a
 * regular file, and at least one; no other disk-*.img is in diskdir (a
 * name vm does not make, such as disk-007.img, or one beyond the disks
 * guest.conf names).  A VM made from images only has image-N.img in
 * their place, for each item restore_holds_image says; checking the
 * VM's own files (@backup: confdir HOSTDIR, diskdir WORKDIR or HOSTDIR)
 * that is the image itself, and checking an extracted snapshot, the
 * VM's own guest.conf must name the same image at N (@restore writes
 * only where the VM's settings on this machine say, never where an
 * archive does).  @backup checks the VM's files with it before it
 * writes anything, @restore the extracted snapshot before the swap, so
 * the two accept the same VMs.  ndisks (may be NULL) gets the count.
 * Returns 0, or -EINVAL / -ENOENT / -errno with err in one line
 * (a guest.conf in confdir is named "guest.conf" when hide_dir).
 */
int restore_check(struct vm *vm, const char *confdir,
		  const char *diskdir, bool hide_dir, int *ndisks,
		  struct strbuf *err);

/*
 * Replace the VM's working files with snapshot name: extracted and
 * verified in a fresh private directory first, then swapped in, then
 * the settings reloaded (they may come from the snapshot).  Everything
 * is checked (restore_check) before the swap: on failure the working
 * files, guest.conf, vm.defaults and .work are as they were, and the
 * temporary directory is gone.  One killed with SIGKILL is removed by
 * the next restore of the same VM.  Returns 0, -EINTR when
 * interrupted, or -errno; err holds a one-line message.
 */
int restore_snapshot(struct vm *vm, const char *name,
		     const struct snap_progress *prog, struct strbuf *err);

#endif
