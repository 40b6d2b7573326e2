/*
 * @stop [--save] [SECS]: ACPI power-down, then QMP quit, then SIGKILL;
 * says which one ended the VM and fails when it had to force.  --save
 * keeps the running state instead, for the next @run or @start.  The
 * work is vm_stop's (lib/host/power.c); this says how it went.
 */
#include "vm.h"

#include <errno.h>
#include <string.h>

#include "host/power.h"
#include "qemu/control.h"
#include "qemu/runstate.h"

/* --dry-run: what would be done; 0, or 1 when the state cannot be read. */
static int dry(struct vm_ctx *ctx, bool save, unsigned long long secs)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate rs = RUNSTATE_INIT;
	int r = runstate_running(ctx->vm.hostdir, &rs, &err);

	if (r < 0) {
		log_error("cannot stop %s: %s", ctx->vm.conf.name, err.buf);
	} else if (r == 0) {
		report_set_str(ctx->result, "stopped", "not_running");
		log_info("%s is not running", ctx->vm.conf.name);
	} else if (save) {
		say_dry(ctx, "control %s: %s into %s/%s, quit",
			rs.control ? rs.control : rs.monitor, CONTROL_SAVE,
			rs.workdir, SAVED_STATE);
	} else {
		say_dry(ctx, "control %s: system_powerdown; after %llu s quit; then kill -KILL %ld",
			rs.control ? rs.control : rs.monitor, secs,
			(long)rs.qemu_pid);
	}
	runstate_release(&rs);
	strbuf_release(&err);
	return r < 0 ? 1 : 0;
}

/* What vm_stop did (r, res, err), said as @stop says it; its exit status. */
static int told(struct vm_ctx *ctx, int r, const struct vm_stop_result *res,
		const struct strbuf *err, bool save, unsigned long long secs)
{
	const char *name = ctx->vm.conf.name;

	if (res->powerdown_error)
		log_warn("%s: cannot ask for an ACPI power-down: %s", name,
			 res->powerdown_error);
	if (res->owner_lingers)
		log_warn("QEMU has ended, but vm (pid %ld) is still there",
			 (long)res->owner);
	if (res->owner && ctx->supervisor == res->owner &&
	    (!r || r == -ETIMEDOUT))
		ctx->supervisor = 0;
	if (!r || r == -ETIMEDOUT) {
		report_set_str(ctx->result, "stopped", vm_ended_name(res->how));
		if (res->how != VM_NOT_RUNNING)
			report_set(ctx->result, "seconds",
				   json_object_new_double(res->seconds));
	}
	if (!r && res->how == VM_NOT_RUNNING)
		log_info("%s is not running", name);
	else if (!r && res->how == VM_SAVED)
		log_info("%s saved its state in %.1f s and stopped; @run or @start resumes it",
			 name, res->seconds);
	else if (!r)
		log_info("%s powered off (ACPI power-down) in %.1f s", name,
			 res->seconds);
	else if (r == -ETIMEDOUT && res->how == VM_QUIT)
		log_error("%s did not power off within %llu s: stopped with QMP quit",
			  name, secs);
	else if (r == -ETIMEDOUT)
		log_error("%s did not power off within %llu s and QMP quit did not end it: killed",
			  name, secs);
	else if (r == -EIO && save)
		log_error("cannot save the state of %s: %s (it goes on running)",
			  name, err->buf);
	else if (r == -EBUSY)
		log_error("cannot stop %s after saving: %s", name, err->buf);
	else if (r != -EINTR)
		log_error("cannot stop %s: %s", name, err->buf);
	return r ? 1 : 0;
}

int cmd_stop(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct vm_stop_result res;
	unsigned long long secs = ctx->vm.conf.shutdown_timeout;
	uint64_t v;
	bool save = ctx->cur && chain_opt(ctx->cur, "save");
	int i, r;

	for (i = 0; i < argc; i++) {
		if (parse_uint(argv[i], 0, 86400, &v)) {
			log_error("@stop takes [--save] [SECS], seconds from 0 to 86400, not '%s'",
				  argv[i]);
			return 2;
		}
		secs = v;
	}
	if (ctx->vm.dry_run)
		return dry(ctx, save, secs);
	r = vm_stop(&ctx->vm, secs, save, &res, &err);
	r = told(ctx, r, &res, &err, save, secs);
	vm_stop_result_release(&res);
	strbuf_release(&err);
	return r;
}
