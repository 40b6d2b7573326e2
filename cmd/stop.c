/*
 * @stop [--save] [SECS]: ACPI power-down, then QMP quit, then SIGKILL;
 * says which one ended the VM and fails when it had to force.  --save
 * keeps the running state instead, for the next @run or @start.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/control.h"
#include "qemu/qmp.h"
#include "qemu/runstate.h"

#define QMP_TIMEOUT_MS 5000
#define QUIT_GRACE_MS 5000
/* the supervisor's own limit is 600 s: its answer comes first */
#define SAVE_TIMEOUT_MS (610 * 1000)

static int owner_gone(struct vm_ctx *ctx, const struct runstate *rs)
{
	int r = runstate_wait_gone(rs->pid, rs->pid_start, RUNSTATE_OWNER_GRACE_MS);

	if (r == -ETIMEDOUT)
		log_warn("QEMU has ended, but vm (pid %ld) is still there",
			 (long)rs->pid);
	if (ctx->supervisor == rs->pid)
		ctx->supervisor = 0;
	return r;
}

/* --json: how it stopped, and how long that took. */
static void report(struct vm_ctx *ctx, const char *how, long long t0)
{
	report_set_str(ctx->result, "stopped", how);
	report_set(ctx->result, "seconds",
		   json_object_new_double((double)(proc_now_ms() - t0) / 1000));
}

/* One @stop: what its steps share. */
struct stop {
	struct vm_ctx *ctx;
	struct runstate rs;
	struct qmp q;
	struct strbuf err;
	uint64_t secs;		/* the ACPI power-down's time */
	long long t0;
};

/* QEMU has ended: wait for the vm that ran it; --json: how. */
static void stopped(struct stop *s, const char *how)
{
	owner_gone(s->ctx, &s->rs);
	report(s->ctx, how, s->t0);
}

/* --save: the running state into WORKDIR, then quit; vm's exit status. */
static int save_and_quit(struct stop *s)
{
	struct vm_ctx *ctx = s->ctx;
	const struct runstate *rs = &s->rs;
	int r;

	runstate_set_state(ctx->vm.hostdir, rs->pid, "stopping");
	/* the vm that runs QEMU saves and quits it: it owns WORKDIR */
	r = qmp_execute(&s->q, CONTROL_SAVE, NULL, -1, SAVE_TIMEOUT_MS, NULL,
			&s->err);
	if (r == -EPIPE)
		r = 0;
	if (r) {
		log_error("cannot save the state of %s: %s (it goes on running)",
			  ctx->vm.conf.name, s->err.buf);
		runstate_set_state(ctx->vm.hostdir, rs->pid, "running");
		return 1;
	}
	if (!runstate_wait_gone(rs->qemu_pid, rs->qemu_start,
				QUIT_GRACE_MS)) {
		stopped(s, "saved");
		log_info("%s saved its state in %.1f s and stopped; @run or @start resumes it",
			 ctx->vm.conf.name,
			 (double)(proc_now_ms() - s->t0) / 1000);
		return 0;
	}
	log_error("cannot stop %s after saving: %s", ctx->vm.conf.name,
		  s->err.len ? s->err.buf : "QEMU did not quit");
	return 1;
}

/*
 * ACPI power-down, then QMP quit, then SIGKILL; r: how connecting to
 * QMP went.  vm's exit status: only the power-down is a success.
 */
static int power_off(struct stop *s, int r)
{
	struct vm_ctx *ctx = s->ctx;
	const struct runstate *rs = &s->rs;

	if (!r) {
		runstate_set_state(ctx->vm.hostdir, rs->pid, "stopping");
		r = qmp_execute(&s->q, "system_powerdown", NULL, -1,
				QMP_TIMEOUT_MS, NULL, &s->err);
	}
	if (r) {
		log_warn("%s: cannot ask for an ACPI power-down: %s",
			 ctx->vm.conf.name, s->err.buf);
		strbuf_reset(&s->err);
	} else if (runstate_wait_gone(rs->qemu_pid, rs->qemu_start,
				      (int)s->secs * 1000) == 0) {
		stopped(s, "powerdown");
		log_info("%s powered off (ACPI power-down) in %.1f s",
			 ctx->vm.conf.name,
			 (double)(proc_now_ms() - s->t0) / 1000);
		return 0;
	}
	if (proc_interrupted())
		return 1;
	if (!r || s->q.fd >= 0) {
		/* anew: the control socket lets a client idle longer than
		 * CONTROL_IDLE_MS go, and the wait may have been longer */
		qmp_close(&s->q);
		strbuf_reset(&s->err);
		if (!runstate_control(&s->rs, &s->q, QMP_TIMEOUT_MS, &s->err) &&
		    !qmp_execute(&s->q, "quit", NULL, -1, QMP_TIMEOUT_MS, NULL,
				 &s->err) &&
		    runstate_wait_gone(rs->qemu_pid, rs->qemu_start,
				       QUIT_GRACE_MS) == 0) {
			stopped(s, "quit");
			log_error("%s did not power off within %llu s: stopped with QMP quit",
				  ctx->vm.conf.name,
				  (unsigned long long)s->secs);
			return 1;
		}
	}
	if (kill(rs->qemu_pid, SIGKILL) < 0) {
		log_error("cannot stop %s: kill QEMU (pid %ld): %s",
			  ctx->vm.conf.name, (long)rs->qemu_pid,
			  strerror(errno));
		return 1;
	}
	runstate_wait_gone(rs->qemu_pid, rs->qemu_start, QUIT_GRACE_MS);
	stopped(s, "killed");
	log_error("%s did not power off within %llu s and QMP quit did not end it: killed",
		  ctx->vm.conf.name, (unsigned long long)s->secs);
	return 1;
}

int cmd_stop(struct vm_ctx *ctx, int argc, char **argv)
{
	struct stop s = { .ctx = ctx, .rs = RUNSTATE_INIT, .q = QMP_INIT,
			  .err = STRBUF_INIT };
	bool save = false;
	int i, r, ret = 1;

	s.secs = ctx->vm.conf.shutdown_timeout;
	s.t0 = proc_now_ms();
	save = ctx->cur && chain_opt(ctx->cur, "save");
	for (i = 0; i < argc; i++) {
		if (parse_uint(argv[i], 0, 86400, &s.secs)) {
			log_error("@stop takes [--save] [SECS], seconds from 0 to 86400, not '%s'",
				  argv[i]);
			return 2;
		}
	}
	r = runstate_running(ctx->vm.hostdir, &s.rs, &s.err);
	if (r < 0) {
		log_error("cannot stop %s: %s", ctx->vm.conf.name, s.err.buf);
		goto out_err;
	}
	if (r == 0) {
		report_set_str(ctx->result, "stopped", "not_running");
		log_info("%s is not running", ctx->vm.conf.name);
		strbuf_release(&s.err);
		return 0;
	}
	if (ctx->vm.dry_run) {
		if (save)
			say_dry(ctx, "control %s: %s into %s/%s, quit",
				s.rs.control ? s.rs.control : s.rs.monitor,
				CONTROL_SAVE, s.rs.workdir, SAVED_STATE);
		else
			say_dry(ctx, "control %s: system_powerdown; after %llu s quit; then kill -KILL %ld",
				s.rs.control ? s.rs.control : s.rs.monitor, (unsigned long long)s.secs,
				(long)s.rs.qemu_pid);
		ret = 0;
		goto out;
	}
	r = runstate_control(&s.rs, &s.q, QMP_TIMEOUT_MS, &s.err);
	if (r == -EACCES || r == -EPERM) {
		log_error("cannot stop %s: permission denied (only its owner, or the control_group, may)",
			  ctx->vm.conf.name);
		goto out;
	}
	if (!r && save)
		ret = save_and_quit(&s);
	else
		ret = power_off(&s, r);
out:
	qmp_close(&s.q);
	runstate_release(&s.rs);
out_err:
	strbuf_release(&s.err);
	return ret;
}
