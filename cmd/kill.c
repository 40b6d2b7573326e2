/* @kill: end the VM's QEMU at once, no guest shutdown. */
#include "vm.h"

#include <errno.h>
#include <string.h>

#include "host/power.h"
#include "qemu/runstate.h"

int cmd_kill(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct vm_stop_result res;
	struct runstate rs;
	int r;

	(void)argc;
	(void)argv;
	if (ctx->vm.dry_run) {
		r = runstate_running(ctx->vm.hostdir, &rs, &err);
		if (r == 1)
			say_dry(ctx, "kill -KILL %ld", (long)rs.qemu_pid);
		else if (r == 0)
			log_info("%s is not running", ctx->vm.conf.name);
		else
			log_error("cannot kill %s: %s", ctx->vm.conf.name,
				  err.buf);
		if (r != 1)
			report_set_bool(ctx->result, "killed", false);
		runstate_release(&rs);
		strbuf_release(&err);
		return r < 0 ? 1 : 0;
	}
	r = vm_kill(&ctx->vm, &res, &err);
	if (!r && res.how == VM_NOT_RUNNING) {
		log_info("%s is not running", ctx->vm.conf.name);
		report_set_bool(ctx->result, "killed", false);
	} else if (!r) {
		if (res.owner_lingers)
			log_warn("QEMU has ended, but vm (pid %ld) is still there",
				 (long)res.owner);
		if (ctx->supervisor == res.owner)
			ctx->supervisor = 0;
		report_set_bool(ctx->result, "killed", true);
		report_set_int(ctx->result, "qemu_pid", res.qemu_pid);
		log_info("%s killed", ctx->vm.conf.name);
	} else {
		log_error("cannot kill %s: %s", ctx->vm.conf.name, err.buf);
		if (!res.qemu_pid)	/* its state could not be read */
			report_set_bool(ctx->result, "killed", false);
	}
	vm_stop_result_release(&res);
	strbuf_release(&err);
	return r ? 1 : 0;
}
