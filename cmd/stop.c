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

#include "qemu/qmp.h"
#include "qemu/runstate.h"

#define QMP_TIMEOUT_MS 5000
#define QUIT_GRACE_MS 5000
/* after QEMU, the vm that ran it cleans up and lets go of the lock */
#define OWNER_GRACE_MS 10000
#define SAVE_TIMEOUT_MS (600 * 1000)

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

/*
 * Migrate the running state into WORKDIR/saved-state through an fd
 * handed over QMP (getfd), no shell: QEMU pauses the guest when done.
 */
static int save_state(struct qmp *q, const struct runstate *rs,
		      struct strbuf *err)
{
	char *path = xasprintf("%s/%s", rs->workdir, SAVED_STATE);
	char *tmp = xasprintf("%s.tmp", path);
	struct json_object *args, *ret = NULL, *v;
	long long deadline = proc_now_ms() + SAVE_TIMEOUT_MS;
	int fd, r;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", tmp, strerror(-r));
		goto out;
	}
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("vmsave"));
	r = qmp_execute(q, "getfd", args, fd, QMP_TIMEOUT_MS, NULL, err);
	json_object_put(args);
	close(fd);
	if (r)
		goto out;
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:vmsave"));
	r = qmp_execute(q, "migrate", args, -1, QMP_TIMEOUT_MS, NULL, err);
	json_object_put(args);
	while (!r) {
		const char *st = "";
		struct timespec ts = { 0, 200 * 1000000L };

		r = qmp_execute(q, "query-migrate", NULL, -1, QMP_TIMEOUT_MS,
				&ret, err);
		if (r)
			break;
		if (json_object_object_get_ex(ret, "status", &v))
			st = json_object_get_string(v);
		if (!strcmp(st, "completed")) {
			json_object_put(ret);
			break;
		}
		if (!strcmp(st, "failed") || !strcmp(st, "cancelled")) {
			strbuf_addstr(err, json_object_object_get_ex(
					   ret, "error-desc", &v) ?
					   json_object_get_string(v) :
					   "migration failed");
			r = -EIO;
		} else if (proc_now_ms() > deadline) {
			strbuf_addstr(err, "saving took too long");
			r = -ETIMEDOUT;
		}
		json_object_put(ret);
		ret = NULL;
		if (!r)
			nanosleep(&ts, NULL);
	}
	if (!r) {
		fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		r = fd >= 0 && fsync(fd) == 0 ? 0 : -errno;
		if (fd >= 0)
			close(fd);
	}
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (!r)
		fs_fsync_dir(rs->workdir);
out:
	if (r)
		unlink(tmp);
	free(path);
	free(tmp);
	return r;
}

/* --json: how it stopped, and how long that took. */
static void report(struct vm_ctx *ctx, const char *how, long long t0)
{
	report_set_str(ctx->result, "stopped", how);
	report_set(ctx->result, "seconds",
		   json_object_new_double((double)(proc_now_ms() - t0) / 1000));
}

int cmd_stop(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate rs;
	struct qmp q = QMP_INIT;
	uint64_t secs = ctx->vm.conf.shutdown_timeout;
	long long t0 = proc_now_ms();
	bool save = false;
	int i, r, ret = 1;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--save")) {
			save = true;
		} else if (parse_uint(argv[i], 0, 86400, &secs)) {
			log_error("@stop takes [--save] [SECS], seconds from 0 to 86400, not '%s'",
				  argv[i]);
			return 2;
		}
	}
	r = runstate_running(ctx->vm.hostdir, &rs, &err);
	if (r < 0) {
		log_error("cannot stop %s: %s", ctx->vm.conf.name, err.buf);
		goto out_err;
	}
	if (r == 0) {
		report_set_str(ctx->result, "stopped", "not_running");
		log_info("%s is not running", ctx->vm.conf.name);
		strbuf_release(&err);
		return 0;
	}
	if (ctx->vm.dry_run) {
		if (save)
			say_dry(ctx, "QMP %s: stop, migrate to %s/%s, quit",
				rs.monitor, rs.workdir, SAVED_STATE);
		else
			say_dry(ctx, "QMP %s: system_powerdown; after %llu s quit; then kill -KILL %ld",
				rs.monitor, (unsigned long long)secs,
				(long)rs.qemu_pid);
		ret = 0;
		goto out;
	}
	r = qmp_connect(&q, rs.monitor, QMP_TIMEOUT_MS, &err);
	if (r == -EACCES || r == -EPERM) {
		log_error("cannot stop %s: permission denied (only its owner, or the control_group, may)",
			  ctx->vm.conf.name);
		goto out;
	}
	if (!r && save) {
		runstate_set_state(ctx->vm.hostdir, rs.pid, "stopping");
		r = save_state(&q, &rs, &err);
		if (r) {
			log_error("cannot save the state of %s: %s (it goes on running)",
				  ctx->vm.conf.name, err.buf);
			qmp_execute(&q, "cont", NULL, -1, QMP_TIMEOUT_MS, NULL,
				    &err);
			runstate_set_state(ctx->vm.hostdir, rs.pid, "running");
			goto out;
		}
		strbuf_reset(&err);
		r = qmp_execute(&q, "quit", NULL, -1, QMP_TIMEOUT_MS, NULL,
				&err);
		if (r == -EPIPE)
			r = 0;
		if (!r && !runstate_wait_gone(rs.qemu_pid, rs.qemu_start,
					      QUIT_GRACE_MS)) {
			owner_gone(ctx, &rs);
			report(ctx, "saved", t0);
			log_info("%s saved its state in %.1f s and stopped; @run or @start resumes it",
				 ctx->vm.conf.name,
				 (double)(proc_now_ms() - t0) / 1000);
			ret = 0;
			goto out;
		}
		log_error("cannot stop %s after saving: %s", ctx->vm.conf.name,
			  err.len ? err.buf : "QEMU did not quit");
		goto out;
	}
	if (!r) {
		runstate_set_state(ctx->vm.hostdir, rs.pid, "stopping");
		r = qmp_execute(&q, "system_powerdown", NULL, -1,
				QMP_TIMEOUT_MS, NULL, &err);
	}
	if (r) {
		log_warn("%s: cannot ask for an ACPI power-down: %s",
			 ctx->vm.conf.name, err.buf);
		strbuf_reset(&err);
	} else if (runstate_wait_gone(rs.qemu_pid, rs.qemu_start,
				      (int)secs * 1000) == 0) {
		owner_gone(ctx, &rs);
		report(ctx, "powerdown", t0);
		log_info("%s powered off (ACPI power-down) in %.1f s",
			 ctx->vm.conf.name,
			 (double)(proc_now_ms() - t0) / 1000);
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
			report(ctx, "quit", t0);
			log_error("%s did not power off within %llu s: stopped with QMP quit",
				  ctx->vm.conf.name, (unsigned long long)secs);
			goto out;
		}
	}
	if (kill(rs.qemu_pid, SIGKILL) < 0) {
		log_error("cannot stop %s: kill QEMU (pid %ld): %s",
			  ctx->vm.conf.name, (long)rs.qemu_pid,
			  strerror(errno));
		goto out;
	}
	runstate_wait_gone(rs.qemu_pid, rs.qemu_start, QUIT_GRACE_MS);
	owner_gone(ctx, &rs);
	report(ctx, "killed", t0);
	log_error("%s did not power off within %llu s and QMP quit did not end it: killed",
		  ctx->vm.conf.name, (unsigned long long)secs);
out:
	qmp_close(&q);
	runstate_release(&rs);
out_err:
	strbuf_release(&err);
	return ret;
}
