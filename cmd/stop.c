/*
 * @stop [SECS]: ACPI power-down, then QMP quit, then SIGKILL; says which
 * one ended the VM and fails when it had to force.
 */
#include "vm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/qmp.h"
#include "../lib/runstate.h"

#define QMP_TIMEOUT_MS 5000
#define QUIT_GRACE_MS 5000
/* after QEMU, the vm that ran it cleans up and lets go of the lock */
#define OWNER_GRACE_MS 10000

static int owner_gone(struct vm_ctx *ctx, const struct runstate *rs)
{
	int r = runstate_wait_gone(rs->pid, rs->pid_start, OWNER_GRACE_MS);

	if (r == -ETIMEDOUT)
		log_warn("QEMU has ended, but vm (pid %ld) is still there",
			 (long)rs->pid);
	if (ctx->supervisor == rs->pid)
		ctx->supervisor = 0;
	return r;
}

int cmd_stop(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate rs;
	struct qmp q;
	uint64_t secs = ctx->conf.shutdown_timeout;
	long long t0 = proc_now_ms();
	int r, ret = 1;

	if (argc > 0 && parse_uint(argv[0], 0, 86400, &secs)) {
		log_error("@stop SECS wants seconds from 0 to 86400, not '%s'",
			  argv[0]);
		return 2;
	}
	r = runstate_running(ctx->hostdir, &rs, &err);
	if (r < 0) {
		log_error("cannot stop %s: %s", ctx->conf.name, err.buf);
		goto out_err;
	}
	if (r == 0) {
		log_info("%s is not running", ctx->conf.name);
		strbuf_release(&err);
		return 0;
	}
	r = qmp_connect(&q, rs.monitor, QMP_TIMEOUT_MS, &err);
	if (r == -EACCES || r == -EPERM) {
		log_error("cannot stop %s: permission denied (only its owner, or the control_group, may)",
			  ctx->conf.name);
		goto out;
	}
	if (!r) {
		runstate_set_state(ctx->hostdir, rs.pid, "stopping");
		r = qmp_execute(&q, "system_powerdown", NULL, -1,
				QMP_TIMEOUT_MS, NULL, &err);
	}
	if (r) {
		log_warn("%s: cannot ask for an ACPI power-down: %s",
			 ctx->conf.name, err.buf);
		strbuf_reset(&err);
	} else if (runstate_wait_gone(rs.qemu_pid, rs.qemu_start,
				      (int)secs * 1000) == 0) {
		owner_gone(ctx, &rs);
		log_info("%s powered off (ACPI power-down) in %.1f s",
			 ctx->conf.name, (double)(proc_now_ms() - t0) / 1000);
		ret = 0;
		goto out;
	}
	if (proc_interrupted())
		goto out;
	if (!r || q.fd >= 0) {
		strbuf_reset(&err);
		if (!qmp_execute(&q, "quit", NULL, -1, QMP_TIMEOUT_MS, NULL,
				 &err) &&
		    runstate_wait_gone(rs.qemu_pid, rs.qemu_start,
				       QUIT_GRACE_MS) == 0) {
			owner_gone(ctx, &rs);
			log_error("%s did not power off within %llu s: stopped with QMP quit",
				  ctx->conf.name, (unsigned long long)secs);
			goto out;
		}
	}
	if (kill(rs.qemu_pid, SIGKILL) < 0) {
		log_error("cannot stop %s: kill QEMU (pid %ld): %s",
			  ctx->conf.name, (long)rs.qemu_pid, strerror(errno));
		goto out;
	}
	runstate_wait_gone(rs.qemu_pid, rs.qemu_start, QUIT_GRACE_MS);
	owner_gone(ctx, &rs);
	log_error("%s did not power off within %llu s and QMP quit did not end it: killed",
		  ctx->conf.name, (unsigned long long)secs);
out:
	qmp_close(&q);
	runstate_release(&rs);
out_err:
	strbuf_release(&err);
	return ret;
}
