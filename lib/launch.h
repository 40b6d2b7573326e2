/* Starting QEMU for a VM: the readable script, the process, its end. */
#ifndef VM_LAUNCH_H
#define VM_LAUNCH_H

#include <sys/types.h>

#include "str.h"
#include "vm.h"

/*
 * Resolve ctx->accel once per vm process (see qemu_pick_accel).  *note
 * receives a warning for the user when KVM was not usable, or on
 * failure the reason, for the error line.
 */
int launch_resolve_accel(struct vm_ctx *ctx, struct strbuf *note);

/* Write argv, shell-quoted, as an executable sh script at path. */
int launch_write_script(const struct strvec *argv, const char *path);

/*
 * Start QEMU with stdin from /dev/null and stderr into errlog (created
 * anew).  The child dies with vm.  Returns 0 and the pid, or -errno.
 */
int launch_spawn(const struct strvec *argv, const char *errlog, pid_t *pid);

/*
 * The common start of @run and @job: write WORKDIR/run-PREFIX.sh and
 * start QEMU with stderr into WORKDIR/PREFIX-qemu.log (its path returned
 * in *errlog, caller frees).  In a dry run, *dry gets the shell-quoted
 * command instead and nothing starts.  Returns 0 or -errno, with err
 * saying what failed.
 */
int launch_start(struct vm_ctx *ctx, const struct strvec *argv,
		 const char *prefix, pid_t *pid, char **errlog, char **dry,
		 struct strbuf *err);

/*
 * Wait for QEMU: up to timeout_s seconds (0: no limit, but still
 * interruptible).  On timeout or interrupt QEMU is stopped and reaped.
 * Returns QEMU's exit code, -ETIMEDOUT or -EINTR.
 */
int launch_wait(pid_t pid, unsigned timeout_s);

#endif
