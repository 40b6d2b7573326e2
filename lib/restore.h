/* Putting a VM back as it was in a snapshot. */
#ifndef VM_RESTORE_H
#define VM_RESTORE_H

#include "snapshot.h"
#include "str.h"
#include "vm.h"

/*
 * The snapshot want names ("LAST" or NAME).  Returns 0 with *name
 * (caller frees), -ENOENT with err saying what is missing, or -errno.
 */
int restore_pick(const struct vm_ctx *ctx, const char *want, char **name,
		 struct strbuf *err);

/*
 * Replace the VM's working files with snapshot name: extracted and
 * verified in a fresh private directory first, then swapped in, then
 * the settings reloaded (they may come from the snapshot).  On failure
 * the working files are as they were.  Returns 0, -EINTR when
 * interrupted, or -errno; err holds a one-line message.
 */
int restore_snapshot(struct vm_ctx *ctx, const char *name,
		     const struct snap_progress *prog, struct strbuf *err);

#endif
