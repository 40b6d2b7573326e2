/*
 * Ending a running VM, as @stop and @kill do and as `vm serve` does for a
 * client allowed to: the library calls both use.  They say nothing;
 * what happened is in the result, for the caller to tell.
 */
#ifndef VM_HOST_POWER_H
#define VM_HOST_POWER_H

#include <stdbool.h>
#include <sys/types.h>

#include "util/str.h"
#include "vm/vm.h"

/* How a VM ended (or did not). */
enum vm_ended {
	VM_NOT_RUNNING,		/* it was not */
	VM_POWERDOWN,		/* the guest powered off (ACPI) in time */
	VM_SAVED,		/* --save: its state kept, QEMU quit */
	VM_QUIT,		/* forced: QMP quit after the power-down's time */
	VM_KILLED,		/* forced: SIGKILL */
};

struct vm_stop_result {
	enum vm_ended how;
	double seconds;		/* from the call to the end */
	pid_t qemu_pid;		/* its QEMU, 0 when it was not running */
	pid_t owner;		/* the vm that ran it */
	bool owner_lingers;	/* QEMU ended, but that vm was still there */
	char *powerdown_error;	/* the ACPI request failed: why (caller frees) */
};

/* "powerdown", "quit", ... as --json says it. */
const char *vm_ended_name(enum vm_ended how);

/*
 * Stop vm: an ACPI power-down and secs seconds for it, then QMP quit,
 * then SIGKILL; with save, its state kept instead (CONTROL_SAVE) and
 * QEMU quit.  Returns 0 when it was not running, powered off or saved;
 * -ETIMEDOUT when it had to be forced (how says which); -EACCES when
 * this user may not; -EIO when saving failed (it runs on) or QEMU would
 * not end; other -errno.  err: why, in one line, without the VM's name.
 */
int vm_stop(const struct vm *vm, unsigned long long secs, bool save,
	    struct vm_stop_result *out, struct strbuf *err);

/*
 * End vm's QEMU at once (SIGKILL, or QMP quit for a control_group
 * member who may not signal it).  Returns 0 (how: VM_KILLED or
 * VM_NOT_RUNNING), -EACCES, -ETIMEDOUT when QEMU is still there, or
 * -errno; err says why.
 */
int vm_kill(const struct vm *vm, struct vm_stop_result *out,
	    struct strbuf *err);

void vm_stop_result_release(struct vm_stop_result *r);

#endif
