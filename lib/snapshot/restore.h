/* Putting a VM back as it was in a snapshot. */
#ifndef VM_RESTORE_H
#define VM_RESTORE_H

#include "snapshot/restorable.h"
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
 * Replace the VM's working files with snapshot name: extracted and
 * verified in a fresh private directory first, then swapped in, then
 * the settings reloaded (they may come from the snapshot).  Everything
 * is checked (restorable_check) before the swap: on failure the working
 * files, guest.conf, vm.defaults and .work are as they were, and the
 * temporary directory is gone.  One killed with SIGKILL is removed by
 * the next restore of the same VM.  Returns 0, -EINTR when
 * interrupted, or -errno; err holds a one-line message.  A snapshot
 * that is not sealed by this user (snapshot/seal.h) and not trusted
 * (vm->trust_snapshot) sets only its guest's settings: note then names
 * the settings and vm.defaults it had and that were not applied.
 */
int restore_snapshot(struct vm *vm, const char *name,
		     const struct snap_progress *prog, struct strbuf *note,
		     struct strbuf *err);

/*
 * A restore whose chain arrives one archive at a time (a pull): each
 * link given is applied in a thread of its own into the private
 * directory restore_snapshot would use, while the caller fetches the
 * next.  start: the directory made (what: the name for its errors);
 * add: the chain's next link, oldest first, its archive complete and
 * verified at path; wait: every link given applied (or one failed),
 * none read after; finish: waits, then restores the last link given as
 * restore_snapshot does (checked, swapped in, reloaded; the same
 * errors) and frees s; abort (s may be NULL): stops, removes the
 * directory, frees s.  The thread sees no signals; an interrupt stops
 * its link (proc_interrupted) and finish says so.
 */
struct restore_stage;
int restore_stage_start(struct vm *vm, const char *what,
			struct restore_stage **s, struct strbuf *err);
void restore_stage_add(struct restore_stage *s, const char *name,
		       const char *path);
void restore_stage_wait(struct restore_stage *s);
int restore_stage_finish(struct restore_stage *s, struct strbuf *note,
			 struct strbuf *err);
void restore_stage_abort(struct restore_stage *s);

#endif
