/*
 * Whether a VM's files can be restored: the check @backup and @restore
 * share (restorable_check), and the images a snapshot holds.
 */
#ifndef VM_RESTORABLE_H
#define VM_RESTORABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "util/str.h"
#include "vm/vm.h"

/*
 * Whether snapshots of a VM with settings c hold item i of its images,
 * as image-i.img: only a VM made from images only (no disks) has them
 * there, and of those only a local file (not a CD, not a URL's cached
 * copy, which is never written).
 */
bool restorable_image(const struct vm_conf *c, size_t i);

/* Where images item i is: its path, against HOSTDIR when relative. */
char *restorable_image_path(const struct vm *vm, const struct vm_conf *c,
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
 * their place, for each item restorable_image says; checking the
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
int restorable_check(struct vm *vm, const char *confdir,
		  const char *diskdir, bool hide_dir, int *ndisks,
		  struct strbuf *err);

#endif
