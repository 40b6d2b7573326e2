#include "host/power.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/control.h"
#include "qemu/qmp.h"
#include "qemu/runstate.h"
#include "util/proc.h"

#define QMP_TIMEOUT_MS 5000
#define QUIT_GRACE_MS 5000
/* the supervisor's own limit is 600 s: its answer comes first */
#define SAVE_TIMEOUT_MS (610 * 1000)
#define GONE_MS 10000

#define NOT_ALLOWED "permission denied (only its owner, or the control_group, may)"

const char *vm_ended_name(enum vm_ended how)
{
	static const char *const names[] = {
		[VM_NOT_RUNNING] = "not_running", [VM_POWERDOWN] = "powerdown",
		[VM_SAVED] = "saved", [VM_QUIT] = "quit", [VM_KILLED] = "killed",
	};

	return names[how];
}

void vm_stop_result_release(struct vm_stop_result *r)
{
	free(r->powerdown_error);
	r->powerdown_error = NULL;
}

/* One stop: what its steps share. */
struct stop {
	const struct vm *vm;
	struct runstate rs;
	struct qmp q;
	struct vm_stop_result *out;
	unsigned long long secs;	/* the ACPI power-down's time */
	long long t0;
};

/* QEMU has ended (how): wait a little for the vm that ran it. */
static void ended(struct stop *s, enum vm_ended how)
{
	s->out->how = how;
	s->out->owner_lingers = runstate_wait_gone(s->rs.pid, s->rs.pid_start,
						   RUNSTATE_OWNER_GRACE_MS) ==
				-ETIMEDOUT;
	s->out->seconds = (double)(proc_now_ms() - s->t0) / 1000;
}

/* save: the running state into WORKDIR, then quit. */
static int save_and_quit(struct stop *s, struct strbuf *err)
{
	const struct runstate *rs = &s->rs;
	int r;

	runstate_set_state(s->vm->hostdir, rs->pid, "stopping");
	/* the vm that runs QEMU saves and quits it: it owns WORKDIR */
	r = qmp_execute(&s->q, CONTROL_SAVE, NULL, -1, SAVE_TIMEOUT_MS, NULL,
			err);
	if (r == -EPIPE)
		r = 0;
	if (r) {
		runstate_set_state(s->vm->hostdir, rs->pid, "running");
		return -EIO;
	}
	if (!runstate_wait_gone(rs->qemu_pid, rs->qemu_start, QUIT_GRACE_MS)) {
		ended(s, VM_SAVED);
		return 0;
	}
	if (!err->len)
		strbuf_addstr(err, "QEMU did not quit");
	return -EBUSY;
}

/* ACPI power-down, then QMP quit, then SIGKILL; r: how connecting went. */
static int power_off(struct stop *s, int r, struct strbuf *err)
{
	const struct runstate *rs = &s->rs;

	if (!r) {
		runstate_set_state(s->vm->hostdir, rs->pid, "stopping");
		r = qmp_execute(&s->q, "system_powerdown", NULL, -1,
				QMP_TIMEOUT_MS, NULL, err);
	}
	if (r) {
		s->out->powerdown_error = xstrdup(err->buf);
		strbuf_reset(err);
	} else if (runstate_wait_gone(rs->qemu_pid, rs->qemu_start,
				      (int)s->secs * 1000) == 0) {
		ended(s, VM_POWERDOWN);
		return 0;
	}
	if (proc_interrupted())
		return -EINTR;
	if (!r || s->q.fd >= 0) {
		/* anew: the control socket lets a client idle longer than
		 * CONTROL_IDLE_MS go, and the wait may have been longer */
		qmp_close(&s->q);
		strbuf_reset(err);
		if (!runstate_control(&s->rs, &s->q, QMP_TIMEOUT_MS, err) &&
		    !qmp_execute(&s->q, "quit", NULL, -1, QMP_TIMEOUT_MS, NULL,
				 err) &&
		    runstate_wait_gone(rs->qemu_pid, rs->qemu_start,
				       QUIT_GRACE_MS) == 0) {
			ended(s, VM_QUIT);
			return -ETIMEDOUT;
		}
	}
	strbuf_reset(err);
	if (kill(rs->qemu_pid, SIGKILL) < 0) {
		r = -errno;
		strbuf_addf(err, "kill QEMU (pid %ld): %s", (long)rs->qemu_pid,
			    strerror(-r));
		return r;
	}
	runstate_wait_gone(rs->qemu_pid, rs->qemu_start, QUIT_GRACE_MS);
	ended(s, VM_KILLED);
	return -ETIMEDOUT;
}

/* vm's run state into rs; 1 when it runs, 0 (out says so), or -errno. */
static int running(const struct vm *vm, struct runstate *rs,
		   struct vm_stop_result *out, struct strbuf *err)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = runstate_running(vm->hostdir, rs, err);
	if (r == 1) {
		out->qemu_pid = rs->qemu_pid;
		out->owner = rs->pid;
	} else if (r == 0) {
		out->how = VM_NOT_RUNNING;
	}
	return r;
}

int vm_stop(const struct vm *vm, unsigned long long secs, bool save,
	    struct vm_stop_result *out, struct strbuf *err)
{
	struct stop s = { .vm = vm, .rs = RUNSTATE_INIT, .q = QMP_INIT,
			  .out = out, .secs = secs, .t0 = proc_now_ms() };
	int r = running(vm, &s.rs, out, err);

	if (r <= 0)
		goto out;
	r = runstate_control(&s.rs, &s.q, QMP_TIMEOUT_MS, err);
	if (r == -EACCES || r == -EPERM) {
		strbuf_reset(err);
		strbuf_addstr(err, NOT_ALLOWED);
		r = -EACCES;
	} else if (!r && save) {
		r = save_and_quit(&s, err);
	} else {
		r = power_off(&s, r, err);
	}
out:
	qmp_close(&s.q);
	runstate_release(&s.rs);
	return r < 0 ? r : 0;
}

int vm_kill(const struct vm *vm, struct vm_stop_result *out,
	    struct strbuf *err)
{
	struct runstate rs = RUNSTATE_INIT;
	long long t0 = proc_now_ms();
	int r = running(vm, &rs, out, err);

	if (r <= 0)
		goto out;
	r = 0;
	if (kill(rs.qemu_pid, SIGKILL) < 0) {
		/* the control_group may not signal, but may say quit */
		struct qmp q = QMP_INIT;
		int e = errno;

		r = -e;
		if (e == EPERM) {
			r = runstate_control(&rs, &q, GONE_MS, err);
			if (!r)
				r = qmp_execute(&q, "quit", NULL, -1, GONE_MS,
						NULL, err);
			qmp_close(&q);
		}
		if (r == -EPIPE)
			r = 0;
		if (r == -EACCES || r == -EPERM) {
			strbuf_reset(err);
			strbuf_addstr(err, NOT_ALLOWED);
			r = -EACCES;
		} else if (r && !err->len) {
			strbuf_addstr(err, strerror(-r));
		}
		if (r)
			goto out;
	}
	if (runstate_wait_gone(rs.qemu_pid, rs.qemu_start, GONE_MS)) {
		strbuf_addf(err, "QEMU (pid %ld) is still there",
			    (long)rs.qemu_pid);
		r = -ETIMEDOUT;
		goto out;
	}
	/* its vm may finish a live backup's reading first: not an error */
	out->owner_lingers = runstate_wait_gone(rs.pid, rs.pid_start, GONE_MS) != 0;
	out->how = VM_KILLED;
	out->seconds = (double)(proc_now_ms() - t0) / 1000;
out:
	runstate_release(&rs);
	return r;
}
