/* Starting QEMU for a VM: the readable script, the process, its end. */
#ifndef VM_LAUNCH_H
#define VM_LAUNCH_H

#include <sys/types.h>

#include "util/str.h"
#include "qemu/console.h"
#include "qemu/control.h"
#include "vm/rescue.h"
#include "vm/vm.h"

/*
 * Resolve vm->accel once per vm process (see qemu_pick_accel).  *note
 * receives a warning for the user when KVM was not usable, or on
 * failure the reason, for the error line.
 */
int launch_resolve_accel(struct vm *vm, struct strbuf *note);

/* What a boot asks beyond the VM's settings (launch_prepare). */
struct launch_req {
	enum plan_mode mode;
	const char *cdrom;	/* ISO to attach, or NULL */
	bool cdrom_first;	/* and boot from it */
	bool no_reboot;		/* a reboot ends QEMU */
	const struct rescue_image *rescue;	/* PLAN_RESCUE: how it boots */
	int resume_fd;		/* saved state to carry on from, or -1 */
};

/*
 * The one way a VM's QEMU is made ready, for @run (and so @start and
 * vm@.service) and for @job's rescue: resolve the accelerator, build
 * the plan (vm_plan_build), apply req to it (a rescue kernel booted
 * directly, fresh UEFI variables for the rescue, saved state), then
 * build QEMU's argv.  Start it with launch_start.  *plan is always left
 * for vm_plan_release, *note may hold warnings for the user; returns 0
 * or -errno with the reason in err.
 */
int launch_prepare(struct vm *vm, const struct launch_req *req,
		   struct vm_plan *plan, struct strvec *argv,
		   struct strbuf *note, struct strbuf *err);

/* Write argv, shell-quoted, as an executable sh script at path. */
int launch_write_script(const struct strvec *argv, const char *path);

/*
 * Start QEMU with stdin from /dev/null and stderr into errlog (created
 * anew), keeping keep's fds (-1: none) open for it.  The child dies with vm.
 * Returns 0 and the pid, or -errno.
 */
int launch_spawn(const struct strvec *argv, const char *errlog,
		 const int keep[2],
		 pid_t *pid);

/*
 * The common start of @run and @job: write WORKDIR/run-PREFIX.sh and
 * start QEMU with stderr into WORKDIR/PREFIX-qemu.log (its path returned
 * in *errlog, caller frees).  In a dry run, *dry gets the shell-quoted
 * command instead and nothing starts.  Returns 0 or -errno, with err
 * saying what failed.
 */
int launch_start(struct vm *vm, const struct strvec *argv,
		 const char *prefix, const int keep[2], pid_t *pid, char **errlog,
		 char **dry, struct strbuf *err);

/*
 * Wait for QEMU: up to timeout_s seconds (0: no limit, but still
 * interruptible).  On timeout or interrupt QEMU is stopped and reaped.
 * Returns QEMU's exit code, -ETIMEDOUT or -EINTR.
 */
int launch_wait(pid_t pid, unsigned timeout_s);

/*
 * What @run watches while QEMU runs.  The guest is "up" when QMP answers
 * and, with ssh_port, an SSH banner arrives there; on_ready is called
 * once then.
 */
struct launch_watch {
	pid_t qemu;
	const char *qmp_sock;
	unsigned ssh_port;		/* host port to guest 22, or 0 */
	unsigned ssh_wait_s;		/* 0: up only once it greets; else
					 * up after that long without */
	bool ssh_silent;		/* up, but no greeting came */
	/*
	 * ready = tcp:PORT: up once a service accepts there, through the
	 * forward from 127.0.0.1:tcp_port (then ssh_port is 0); ready =
	 * agent: once the guest agent at agent_sock answers.
	 */
	unsigned tcp_port, tcp_guest_port;
	const char *agent_sock;
	unsigned timeout_s;		/* 0: none */
	void (*on_ready)(void *data);
	void *data;
	bool ready;
	struct console_mux *mux;	/* the console to serve, or NULL */
	struct control *ctl;		/* the control socket, or NULL */
	const char *resume;	/* saved state being loaded: removed once
				 * the guest runs again; NULL: none */
};

/*
 * Wait for QEMU as launch_wait does, probing for "up" meanwhile.
 * Returns QEMU's exit code, -ETIMEDOUT or -EINTR (QEMU stopped and
 * reaped then).
 */
int launch_supervise(struct launch_watch *w);

/*
 * Whether the settings' ready can be met by the VM as it is set up
 * (a forward to the port it names, the agent's channel): 0, or -EINVAL
 * with err saying why.  launch_prepare checks it for the VM itself.
 */
int launch_ready_check(const struct vm *vm, struct strbuf *err);

/* How long @start waits for ready: initialize_timeout, or boot_timeout. */
unsigned launch_ready_timeout(const struct vm_conf *c);

/* Into out: what did not happen when ready never came. */
void launch_ready_describe(const struct vm_conf *c, struct strbuf *out);

/* Set w's probes for the settings' ready, on plan's ports. */
void launch_watch_ready(struct launch_watch *w, const struct vm_conf *c,
			const struct vm_plan *plan);

/* True when an SSH server greets on 127.0.0.1:port within timeout_ms. */
bool launch_ssh_banner(unsigned port, int timeout_ms);

/*
 * True when QMP at path answers query-status within timeout_ms; status
 * (may be NULL, 32 bytes) gets what QEMU says ("running", "inmigrate").
 */
bool launch_qmp_answers(const char *path, int timeout_ms, char *status);

#endif
