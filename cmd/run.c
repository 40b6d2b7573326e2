/* @run [ISO]: boot the VM in the foreground. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/backups.h"
#include "../lib/console.h"
#include "../lib/launch.h"
#include "../lib/restore.h"
#include "../lib/runstate.h"

#include <systemd/sd-daemon.h>
#include <time.h>

/* QEMU opens its console and monitor sockets within this. */
#define QEMU_START_MS 30000

static void report_failure(const char *errlog, const char *what)
{
	struct strbuf tail = STRBUF_INIT;

	fs_tail(errlog, 5, &tail);
	if (tail.len)
		log_error("%s; QEMU said:\n%s", what, tail.buf);
	else
		log_error("%s", what);
	strbuf_release(&tail);
}

/* Attach to QEMU's console: 0, -ECHILD when QEMU ended first, -errno. */
static int attach_console(struct console_mux *mux, const char *sock,
			  pid_t pid, int *status)
{
	long long deadline = proc_now_ms() + QEMU_START_MS;
	int r;

	do {
		r = console_mux_attach(mux, sock, 100);
		if (r != -ETIMEDOUT)
			return r;
		if (waitpid(pid, status, WNOHANG) == pid)
			return -ECHILD;
	} while (proc_now_ms() < deadline);
	return -ETIMEDOUT;
}

/* QEMU made its monitor socket private; the control_group gets it. */
static int share_qmp(struct vm_ctx *ctx, const char *sock, gid_t gid)
{
	long long deadline = proc_now_ms() + QEMU_START_MS;

	if (gid == (gid_t)-1)
		return 0;
	while (!fs_exists(sock)) {
		struct timespec ts = { 0, 20 * 1000000L };

		if (proc_now_ms() > deadline)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
	return vm_share_socket(&ctx->vm, sock, gid);
}

/* HOSTDIR/run.json: this vm runs QEMU pid now. */
static void record_start(struct vm_ctx *ctx, const struct vm_plan *plan,
			 pid_t pid, struct runstate *rs)
{
	const struct qemu_plan *q = &plan->q;

	rs->state = xstrdup("starting");
	rs->pid = getpid();
	rs->pid_start = runstate_proc_start(rs->pid);
	rs->qemu_pid = pid;
	rs->qemu_start = runstate_proc_start(pid);
	rs->started = time(NULL);
	rs->background = getenv("VM_SUPERVISOR") != NULL;
	rs->accel = xstrdup(q->accel);
	rs->cores = q->cores;
	rs->sockets = q->sockets;
	rs->memory = q->memory_mib << 20;
	strvec_pushv(&rs->forwards, plan->forwards.v);
	rs->ssh_port = conf_forward_host_port(&ctx->vm.conf, 22);
	if (q->spice_port && q->spice_host && *q->spice_host)
		rs->spice = xasprintf("%s:%u", q->spice_host, q->spice_port);
	rs->workdir = xstrdup(ctx->vm.workdir);
	rs->console = xstrdup(plan->console_sock);
	rs->monitor = xstrdup(q->qmp_sock);
	rs->console_log = xstrdup(plan->console_log);
	if (runstate_write(ctx->vm.hostdir, rs))
		log_warn("cannot write %s/%s: @status will not see %s",
			 ctx->vm.hostdir, RUNSTATE_FILE, ctx->vm.conf.name);
}

struct ready {
	struct vm_ctx *ctx;
	struct runstate *rs;
};

/* The guest is up: say so in run.json, and to systemd or @start. */
static void on_ready(void *data)
{
	struct ready *rd = data;

	free(rd->rs->state);
	rd->rs->state = xstrdup("running");
	runstate_write(rd->ctx->vm.hostdir, rd->rs);
	sd_notifyf(0, "READY=1\nSTATUS=%s is running", rd->ctx->vm.conf.name);
}

/* --json's "ended": how QEMU's run ended (r as launch_supervise says). */
static const char *how_it_ended(int r, const char *saved)
{
	if (r == -ETIMEDOUT)
		return "timeout";
	if (r == -EINTR)
		return "interrupted";
	if (r)
		return "failed";
	return fs_exists(saved) ? "saved" : "poweroff";
}

int cmd_run(struct vm_ctx *ctx, int argc, char **argv)
{
	struct vm_conf *c = &ctx->vm.conf;
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct strvec qargv = STRVEC_INIT;
	struct vm_plan plan;
	char *saved = NULL, *incoming = NULL;
	int resume_fd = -1, st = 0;
	struct runstate rs = RUNSTATE_INIT;
	struct launch_watch w = { 0 };
	struct console_mux mux;
	bool muxed = false;
	gid_t gid = (gid_t)-1;
	struct ready ready;
	const char *cdrom = NULL;
	char *errlog = NULL, *dry, *last, *iso = NULL;
	bool firstboot = false, planned = false;
	pid_t pid;
	long long t0 = 0;
	int r, ret = 1;

	if (!ctx->vm.dry_run &&
	    runstate_running(ctx->vm.hostdir, &rs, &err) == 1) {
		log_error("cannot run %s: it is running already (pid %ld); stop it first with vm @stop",
			  c->name, (long)rs.pid);
		runstate_release(&rs);
		return 1;
	}
	strbuf_reset(&err);
	if ((!ctx->vm.workdir || !vm_count_disks(&ctx->vm)) &&
	    !ctx->vm.dry_run && (last = backups_last(&ctx->vm))) {
		/* As the reference does: no working files, take LAST. */
		free(last);
		r = restore_pick(&ctx->vm, "LAST", &last, &err);
		if (!r) {
			struct log_progress bar;
			struct snap_progress prog = { log_progress_cb, &bar };

			log_info("%s has no working files: restoring snapshot %s first",
				 c->name, last);
			log_progress_start(&bar, "restore %s", last);
			r = restore_snapshot(&ctx->vm, last, &prog, &err);
			log_progress_end(&bar, !r);
			free(last);
		}
		if (r) {
			log_error("%s", err.buf);
			ret = r == -EINTR ? 128 + proc_interrupted() : 1;
			goto out;
		}
		/* c now holds the snapshot's settings */
	}
	if (argc > 0) {
		cdrom = argv[0];
	} else if (c->firstboot && c->bootimage && *c->bootimage) {
		cdrom = c->bootimage;
		firstboot = true;
	} else if (c->keep_cd && c->bootimage && *c->bootimage) {
		cdrom = c->bootimage;
	}
	if (cdrom) {
		/* A URL comes from the cache (checked, or offline as is). */
		struct log_progress bar;

		log_progress_start(&bar, "ISO");
		r = vm_fetch(&ctx->vm, cdrom,
			     argc > 0 ? NULL : c->bootimage_sha256,
			     log_progress_cb, &bar, &iso, NULL, &note, &err);
		log_progress_end(&bar, !r);
		if (note.len)
			log_warn("%s", note.buf);
		strbuf_reset(&note);
		if (r) {
			log_error("cannot run %s: ISO %s", c->name, err.buf);
			goto out;
		}
		cdrom = iso;
	}
	if (!ctx->vm.workdir) {
		if (ctx->vm.dry_run) {
			ctx->vm.workdir = vm_host_path(&ctx->vm, ".work");
		} else {
			log_error("cannot run %s: it has no working files in %s (@create it first)",
				  c->name, ctx->vm.hostdir);
			goto out;
		}
	}
	r = launch_resolve_accel(&ctx->vm, &note);
	if (r) {
		log_error("cannot run %s: %s", c->name, note.buf);
		goto out;
	}
	if (note.len)
		log_warn("%s", note.buf);
	r = vm_plan_build(&ctx->vm, PLAN_RUN, cdrom, &plan, &err);
	planned = true;
	if (r) {
		log_error("cannot run %s: %s", c->name, err.buf);
		goto out;
	}
	plan.q.cdrom_first = cdrom && (firstboot || argc > 0);
	plan.q.no_reboot = firstboot;
	saved = vm_work_path(&ctx->vm, SAVED_STATE);
	if (fs_exists(saved)) {
		/* @stop --save left the running state: carry on from it */
		resume_fd = open(saved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (resume_fd < 0) {
			log_error("cannot run %s: %s: %s", c->name, saved,
				  strerror(errno));
			goto out;
		}
		incoming = xasprintf("fd:%d", resume_fd);
		plan.q.incoming = incoming;
	}
	qemu_argv_build(&plan.q, &qargv);
	if (!ctx->vm.dry_run) {
		r = vm_control_gid(&ctx->vm, &gid, &err);
		if (!r)
			r = console_mux_open(&mux, plan.console_sock,
					     gid == (gid_t)-1 ? 0600 : 0660,
					     gid, plan.console_log,
					     CONSOLE_LOG_MAX);
		muxed = true;
		if (!r)
			r = vm_share_socket(&ctx->vm, plan.console_sock, gid);
		if (r) {
			log_error("cannot run %s: console %s: %s", c->name,
				  plan.console_sock,
				  err.len ? err.buf : strerror(-r));
			goto out;
		}
	}
	t0 = proc_now_ms();
	r = launch_start(&ctx->vm, &qargv, "vm", resume_fd, &pid, &errlog, &dry,
			 &err);
	if (dry) {
		say_dry(ctx, "%s", dry);
		free(dry);
		ret = 0;
		goto out;
	}
	if (r) {
		log_error("cannot run %s: %s", c->name, err.buf);
		goto out;
	}
	report_set_str(ctx->result, "accel", ctx->vm.accel);
	report_set_int(ctx->result, "qemu_pid", pid);
	report_set_bool(ctx->result, "firstboot", firstboot);
	/* QEMU waits for its console client before it runs the guest; one
	 * that ends first (a bad option, say) is reported as it ended */
	r = attach_console(&mux, plan.q.console_sock, pid, &st);
	if (r == -ECHILD) {
		proc_set_foreground(0);
		r = proc_exit_code(st);
		goto ended;
	}
	if (!r)
		r = share_qmp(ctx, plan.q.qmp_sock, gid);
	if (r) {
		proc_terminate(pid, 3000);
		report_failure(errlog, r == -ETIMEDOUT ?
			       "QEMU did not open its console in time" :
			       "cannot attach to QEMU's console");
		goto out;
	}
	log_info("%s is running (%s%s); serial console: %s/console.log",
		 c->name, ctx->vm.accel,
		 plan.q.spice_port ? ", SPICE display" : ", headless",
		 ctx->vm.workdir);
	record_start(ctx, &plan, pid, &rs);
	w.qemu = pid;
	w.qmp_sock = plan.q.qmp_sock;
	w.ssh_port = rs.ssh_port;
	w.timeout_s = c->timeout;
	w.on_ready = on_ready;
	w.data = &ready;
	w.mux = &mux;
	w.resume = resume_fd >= 0 ? saved : NULL;
	if (resume_fd >= 0)
		log_info("%s resumes from its saved state", c->name);
	ready.ctx = ctx;
	ready.rs = &rs;
	r = launch_supervise(&w);
	runstate_remove(ctx->vm.hostdir, getpid());
ended:
	console_mux_close(&mux);
	muxed = false;
	unlink(plan.q.qmp_sock);
	unlink(plan.q.console_sock);
	report_set_int(ctx->result, "seconds",
		       (proc_now_ms() - t0 + 500) / 1000);
	report_set_str(ctx->result, "ended", how_it_ended(r, saved));
	if (r == -ETIMEDOUT) {
		log_error("%s was stopped: --timeout of %u s expired", c->name,
			  c->timeout);
		goto out;
	}
	if (r == -EINTR) {
		log_error("%s was stopped: vm was interrupted", c->name);
		ret = 128 + proc_interrupted();
		goto out;
	}
	if (r) {
		char *what = xasprintf("QEMU for %s exited with status %d",
				       c->name, r);

		report_failure(errlog, what);
		free(what);
		goto out;
	}
	if (fs_exists(saved)) {
		/* stopped with --save: the next run resumes, as it is now */
		log_info("%s saved its state; the next @run or @start resumes it",
			 c->name);
	} else if (firstboot) {
		/* The installer has had its boot; later boots use the disks. */
		r = vm_guest_conf_set(&ctx->vm, "firstboot", "no", &err);
		if (r) {
			log_error("cannot record the first boot: %s", err.buf);
			goto out;
		}
	}
	ret = 0;
out:
	if (muxed)
		console_mux_close(&mux);
	if (resume_fd >= 0)
		close(resume_fd);
	free(saved);
	free(incoming);
	if (planned)
		vm_plan_release(&plan);
	runstate_release(&rs);
	strvec_clear(&qargv);
	strbuf_release(&err);
	strbuf_release(&note);
	free(errlog);
	free(iso);
	return ret;
}
