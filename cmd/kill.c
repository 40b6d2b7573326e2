/* @kill: end the VM's QEMU at once, no guest shutdown. */
#include "vm.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "qemu/qmp.h"
#include "qemu/runstate.h"

#define GONE_MS 10000

int cmd_kill(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate rs;
	int r, ret = 1;

	(void)argc;
	(void)argv;
	r = runstate_running(ctx->vm.hostdir, &rs, &err);
	if (r <= 0) {
		if (r < 0)
			log_error("cannot kill %s: %s", ctx->vm.conf.name, err.buf);
		else
			log_info("%s is not running", ctx->vm.conf.name);
		report_set_bool(ctx->result, "killed", false);
		strbuf_release(&err);
		return r < 0 ? 1 : 0;
	}
	if (ctx->vm.dry_run) {
		say_dry(ctx, "kill -KILL %ld", (long)rs.qemu_pid);
		ret = 0;
		goto out;
	}
	if (kill(rs.qemu_pid, SIGKILL) < 0) {
		/* the control_group may not signal, but may say quit */
		struct qmp q = QMP_INIT;
		int e = errno;

		r = -e;
		if (e == EPERM) {
			r = runstate_control(&rs, &q, GONE_MS, &err);
			if (!r)
				r = qmp_execute(&q, "quit", NULL, -1, GONE_MS,
						NULL, &err);
			qmp_close(&q);
		}
		if (r && r != -EPIPE) {
			log_error("cannot kill %s: %s", ctx->vm.conf.name,
				  r == -EACCES || r == -EPERM ?
				  "permission denied (only its owner, or the control_group, may)" :
				  err.len ? err.buf : strerror(-r));
			goto out;
		}
	}
	if (runstate_wait_gone(rs.qemu_pid, rs.qemu_start, GONE_MS)) {
		log_error("cannot kill %s: QEMU (pid %ld) is still there",
			  ctx->vm.conf.name, (long)rs.qemu_pid);
		goto out;
	}
	/* its vm may finish a live backup's reading first: not an error */
	if (runstate_wait_gone(rs.pid, rs.pid_start, GONE_MS))
		log_warn("QEMU has ended, but vm (pid %ld) is still there",
			 (long)rs.pid);
	if (ctx->supervisor == rs.pid)
		ctx->supervisor = 0;
	report_set_bool(ctx->result, "killed", true);
	report_set_int(ctx->result, "qemu_pid", rs.qemu_pid);
	log_info("%s killed", ctx->vm.conf.name);
	ret = 0;
out:
	runstate_release(&rs);
	strbuf_release(&err);
	return ret;
}
