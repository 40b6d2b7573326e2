/* @run [ISO]: boot the VM in the foreground. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snapshot/backups.h"
#include "qemu/console.h"
#include "qemu/control.h"
#include "vm/launch.h"
#include "snapshot/restore.h"
#include "qemu/runstate.h"

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
	rs->ssh_port = plan->ssh_port;
	if (q->spice_port && q->spice_host && *q->spice_host)
		rs->spice = xasprintf("%s:%u", q->spice_host, q->spice_port);
	rs->workdir = xstrdup(ctx->vm.workdir);
	rs->console = xstrdup(plan->console_sock);
	rs->monitor = xstrdup(q->qmp_sock);
	rs->control = xstrdup(plan->control_sock);
	rs->console_log = xstrdup(plan->console_log);
	if (runstate_write(ctx->vm.hostdir, rs))
		log_warn("cannot write %s/%s: @status will not see %s",
			 ctx->vm.hostdir, RUNSTATE_FILE, ctx->vm.conf.name);
}

struct ready {
	struct vm_ctx *ctx;
	struct runstate *rs;
	const bool *ssh_silent;	/* up without sshd's greeting */
};

/* The guest is up: say so in run.json, and to systemd or @start. */
static void on_ready(void *data)
{
	struct ready *rd = data;

	free(rd->rs->state);
	rd->rs->state = xstrdup("running");
	runstate_write(rd->ctx->vm.hostdir, rd->rs);
	/* X_VM_SSH: for @start to say (X_: a variable of our own) */
	sd_notifyf(0, "READY=1\nSTATUS=%s is running%s",
		   rd->ctx->vm.conf.name,
		   *rd->ssh_silent ? "\nX_VM_SSH=silent" : "");
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

/* One @run: what its steps share. */
struct run {
	struct vm_ctx *ctx;
	struct launch_req req;
	struct vm_plan plan;
	bool planned;
	struct strvec qargv;
	char *iso;		/* the ISO's local file, or NULL */
	bool firstboot;
	char *saved;		/* WORKDIR's saved state (may not exist) */
	int resume_fd;		/* it, open, when resuming; or -1 */
	struct console_mux mux;
	bool muxed;
	struct control ctl;	/* the control socket vm serves */
	gid_t gid;
	pid_t pid;
	char *errlog;
	struct runstate rs;
	long long t0;
};

/*
 * As the reference does: no working files, take LAST.  Working files
 * kept in place were meant to last: gone (not by @destroy), they are put
 * back from LAST only when --restore-last says so.  0, or the exit status after saying
 * why.
 */
static int restore_if_empty(struct vm_ctx *ctx)
{
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct log_progress bar;
	struct snap_progress prog = { log_progress_cb, &bar };
	char *last, *mark;
	int r;

	/* (a VM of images alone has them still: vm_workdir_for_images) */
	if ((ctx->vm.workdir &&
	     (vm_count_disks(&ctx->vm) || !ctx->vm.conf.disks.nr)) ||
	    ctx->vm.dry_run || !(last = backups_last(&ctx->vm)))
		return 0;
	free(last);
	mark = vm_host_path(&ctx->vm, VM_DESTROYED);
	r = restore_pick(&ctx->vm, "LAST", &last, &err);
	if (!r && ctx->vm.inplace && !ctx->vm.restore_last &&
	    !fs_exists(mark)) {
		log_error("cannot run %s: its working files are gone from %s, where it keeps them; vm puts snapshot %s back only when told: --restore-last",
			  ctx->vm.conf.name, ctx->vm.hostdir, last);
		free(last);
		free(mark);
		strbuf_release(&err);
		return 1;
	}
	if (!r) {
		log_info("%s has no working files: restoring snapshot %s first",
			 ctx->vm.conf.name, last);
		log_progress_start(&bar, "restore %s", last);
		r = restore_snapshot(&ctx->vm, last, &prog, &note, &err);
		log_progress_end(&bar, !r);
		if (note.len)
			log_warn("%s", note.buf);
		free(last);
	}
	if (r)
		log_error("%s", err.buf);
	else
		unlink(mark);
	free(mark);
	strbuf_release(&err);
	strbuf_release(&note);
	/* on success the settings are the snapshot's now */
	return !r ? 0 : r == -EINTR ? 128 + proc_interrupted() : 1;
}

/* The ISO to attach: @run's argument, the installer, or a kept CD. */
static int pick_cdrom(struct run *run, int argc, char **argv)
{
	const struct vm_conf *c = &run->ctx->vm.conf;
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct log_progress bar;
	const char *cdrom = NULL;
	int r;

	if (argc > 0) {
		cdrom = argv[0];
	} else if (c->firstboot && c->bootimage && *c->bootimage) {
		cdrom = c->bootimage;
		run->firstboot = true;
	} else if (c->keep_cd && c->bootimage && *c->bootimage) {
		cdrom = c->bootimage;
	}
	if (!cdrom)
		return 0;
	/* A URL comes from the cache (checked, or offline as is). */
	log_progress_start(&bar, "ISO");
	r = vm_fetch(&run->ctx->vm, cdrom,
		     argc > 0 ? NULL : c->bootimage_sha256, log_progress_cb,
		     &bar, &run->iso, NULL, &note, &err);
	log_progress_end(&bar, !r);
	if (note.len)
		log_warn("%s", note.buf);
	if (r)
		log_error("cannot run %s: ISO %s", c->name, err.buf);
	run->req.cdrom = run->iso;
	run->req.cdrom_first = run->iso && (run->firstboot || argc > 0);
	run->req.no_reboot = run->firstboot;
	strbuf_release(&err);
	strbuf_release(&note);
	return r;
}

/* The plan and QEMU's argv, resuming from saved state if there is one. */
static int prepare(struct run *run)
{
	struct vm_ctx *ctx = run->ctx;
	const char *name = ctx->vm.conf.name;
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	int r;

	if (!ctx->vm.workdir) {
		if (!ctx->vm.dry_run) {
			log_error("cannot run %s: it has no working files in %s (@create it first)",
				  name, ctx->vm.hostdir);
			return -ENOENT;
		}
		ctx->vm.workdir = vm_host_path(&ctx->vm, ".work");
	}
	run->saved = vm_work_path(&ctx->vm, SAVED_STATE);
	if (fs_exists(run->saved) && !ctx->vm.dry_run &&
	    vm_saved_check(&ctx->vm, &err)) {
		/* its RAM on other disks would wreck their file systems */
		log_error("cannot run %s: %s; to boot afresh, remove %s (the saved RAM is lost)",
			  name, err.buf, run->saved);
		strbuf_release(&err);
		return -ESTALE;
	}
	if (fs_exists(run->saved)) {
		/* @stop --save left the running state: carry on from it */
		run->resume_fd = open(run->saved,
				      O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (run->resume_fd < 0) {
			r = -errno;
			log_error("cannot run %s: %s: %s", name, run->saved,
				  strerror(-r));
			return r;
		}
	}
	run->req.resume_fd = run->resume_fd;
	r = launch_prepare(&ctx->vm, &run->req, &run->plan, &run->qargv,
			   &note, &err);
	run->planned = true;
	if (note.len)
		log_warn_lines(note.buf);
	if (r)
		log_error("cannot run %s: %s", name, err.buf);
	strbuf_release(&err);
	strbuf_release(&note);
	return r;
}

/* What a live @backup freezes: the disks QEMU writes, and the UEFI
 * variables. */
static void live_disks(struct run *run)
{
	const struct qemu_plan *q = &run->plan.q;
	int i;

	for (i = 0; i < q->ndisks; i++) {
		const struct disk_spec *d = &q->disks[i];
		char id[16];

		/* a CD is read-only; a scratch disk's file is never written */
		if (d->bus == BUS_CDROM || d->scratch)
			continue;
		snprintf(id, sizeof(id), "disk%d", i);
		live_add_disk(&run->ctl.live, id, d->path);
	}
	control_set_live(&run->ctl, run->ctx->vm.workdir,
			 q->uefi ? q->ovmf_vars : NULL, q->agent_sock,
			 run->ctx->vm.conf.guest_agent == AGENT_YES);
}

/*
 * The console (for @console) and the control socket (for @stop,
 * @status, @monitor...) vm serves, shared with the control_group;
 * QEMU's own monitor stays its owner's.
 */
static int open_console(struct run *run)
{
	struct vm *vm = &run->ctx->vm;
	const char *sock = run->plan.console_sock;
	struct strbuf err = STRBUF_INIT;
	int r;

	r = vm_control_gid(vm, &run->gid, &err);
	if (!r) {
		r = console_mux_open(&run->mux, sock,
				     run->gid == (gid_t)-1 ? 0600 : 0660,
				     run->gid, run->plan.console_log,
				     CONSOLE_LOG_MAX);
		/* closed at the end, whatever the open did */
		run->muxed = true;
	}
	if (!r)
		r = vm_share_socket(vm, sock, run->gid);
	if (r) {
		log_error("cannot run %s: console %s: %s", vm->conf.name, sock,
			  err.len ? err.buf : strerror(-r));
		goto out;
	}
	sock = run->plan.control_sock;
	r = control_open(&run->ctl, sock, run->gid == (gid_t)-1 ? 0600 : 0660,
			 run->gid, run->plan.q.vm_qmp_sock, vm->workdir);
	if (!r)
		live_disks(run);
	if (!r)
		r = vm_share_socket(vm, sock, run->gid);
	if (r)
		log_error("cannot run %s: control socket %s: %s",
			  vm->conf.name, sock, strerror(-r));
out:
	strbuf_release(&err);
	return r;
}

/*
 * QEMU runs: serve its console and watch it until it ends.  Returns how
 * it ended as launch_supervise says (QEMU's exit code, -ETIMEDOUT,
 * -EINTR), or -ECANCELED when it could not be watched (said already).
 */
static int supervise(struct run *run)
{
	struct vm_ctx *ctx = run->ctx;
	const struct qemu_plan *q = &run->plan.q;
	struct launch_watch w = { 0 };
	struct ready ready = { ctx, &run->rs, &w.ssh_silent };
	int st = 0, r;

	/* QEMU waits for its console client before it runs the guest; one
	 * that ends first (a bad option, say) is reported as it ended */
	r = attach_console(&run->mux, q->console_sock, run->pid, &st);
	if (r == -ECHILD) {
		proc_set_foreground(0);
		return proc_exit_code(st);
	}
	if (r) {
		proc_terminate(run->pid, 3000);
		report_failure(run->errlog, r == -ETIMEDOUT ?
			       "QEMU did not open its console in time" :
			       "cannot attach to QEMU's console");
		return -ECANCELED;
	}
	if (q->spice_port)
		log_info("%s is running (%s, SPICE display on spice://%s:%u); serial console: %s/console.log",
			 ctx->vm.conf.name, ctx->vm.accel, q->spice_host,
			 q->spice_port, ctx->vm.workdir);
	else
		log_info("%s is running (%s, headless); serial console: %s/console.log",
			 ctx->vm.conf.name, ctx->vm.accel, ctx->vm.workdir);
	record_start(ctx, &run->plan, run->pid, &run->rs);
	w.qemu = run->pid;
	w.qmp_sock = q->vm_qmp_sock;
	w.ctl = &run->ctl;
	launch_watch_ready(&w, &ctx->vm.conf, &run->plan);
	w.timeout_s = ctx->vm.conf.timeout;
	w.on_ready = on_ready;
	w.data = &ready;
	w.mux = &run->mux;
	w.resume = run->resume_fd >= 0 ? run->saved : NULL;
	if (run->resume_fd >= 0)
		log_info("%s resumes from its saved state", ctx->vm.conf.name);
	r = launch_supervise(&w);
	runstate_remove(ctx->vm.hostdir, getpid());
	return r;
}

/* QEMU has ended (r as supervise says): report; vm's exit status. */
static int ended(struct run *run, int r)
{
	struct vm_ctx *ctx = run->ctx;
	const char *name = ctx->vm.conf.name;
	struct strbuf err = STRBUF_INIT;

	console_mux_close(&run->mux);
	run->muxed = false;
	control_close(&run->ctl);
	unlink(run->plan.q.qmp_sock);
	unlink(run->plan.q.vm_qmp_sock);
	unlink(run->plan.q.console_sock);
	report_set_int(ctx->result, "seconds",
		       (proc_now_ms() - run->t0 + 500) / 1000);
	report_set_str(ctx->result, "ended", how_it_ended(r, run->saved));
	if (r == -ETIMEDOUT) {
		log_error("%s was stopped: --timeout of %u s expired", name,
			  ctx->vm.conf.timeout);
		return 1;
	}
	if (r == -EINTR) {
		/* (@start ends one not up within its boot timeout so) */
		log_error("%s was stopped: vm was interrupted (SIG%s)", name,
			  sigabbrev_np(proc_interrupted()) ?
				  sigabbrev_np(proc_interrupted()) : "?");
		return 128 + proc_interrupted();
	}
	if (r) {
		char *what = xasprintf("QEMU for %s exited with status %d",
				       name, r);

		report_failure(run->errlog, what);
		free(what);
		return 1;
	}
	if (fs_exists(run->saved)) {
		/* stopped with --save: the next run resumes, as it is now */
		if (vm_saved_bind(&ctx->vm))
			log_warn("%s: cannot record its disks beside the saved state: a change to them will not be noticed",
				 name);
		log_info("%s saved its state; the next @run or @start resumes it",
			 name);
	} else if (run->firstboot) {
		/* The installer has had its boot; later boots use the disks. */
		r = vm_guest_conf_set(&ctx->vm, "firstboot", "no", &err);
		if (r)
			log_error("cannot record the first boot: %s", err.buf);
	}
	strbuf_release(&err);
	return r ? 1 : 0;
}

int cmd_run(struct vm_ctx *ctx, int argc, char **argv)
{
	struct run run = { .ctx = ctx, .resume_fd = -1, .gid = (gid_t)-1,
			   .ctl = CONTROL_INIT };
	struct strbuf err = STRBUF_INIT;
	int r, ret = 1;

	run.req = (struct launch_req){ PLAN_RUN, NULL, false, false, NULL, -1 };
	run.qargv = (struct strvec)STRVEC_INIT;
	run.rs = (struct runstate)RUNSTATE_INIT;
	if (!ctx->vm.dry_run &&
	    runstate_running(ctx->vm.hostdir, &run.rs, &err) == 1) {
		log_error("cannot run %s: it is running already (pid %ld); stop it first with vm @stop",
			  ctx->vm.conf.name, (long)run.rs.pid);
		goto out;
	}
	strbuf_reset(&err);
	/* a VM of images alone has its disks still: no restore for it */
	if (vm_workdir_for_images(&ctx->vm, &err) < 0) {
		log_error("cannot run %s: %s", ctx->vm.conf.name, err.buf);
		goto out;
	}
	ret = restore_if_empty(ctx);
	if (ret)
		goto out;
	ret = 1;
	if (pick_cdrom(&run, argc, argv) || prepare(&run))
		goto out;
	if (!ctx->vm.dry_run && open_console(&run))
		goto out;
	run.t0 = proc_now_ms();
	r = start_qemu(ctx, &run.qargv, "vm",
		       (const int[2]){ run.resume_fd, run.plan.q.base_fd },
		       &run.pid,
		       &run.errlog, "run", &err);
	if (r) {
		ret = r > 0 ? 0 : 1;	/* > 0: a dry run, said */
		goto out;
	}
	report_set_str(ctx->result, "accel", ctx->vm.accel);
	report_set_int(ctx->result, "qemu_pid", run.pid);
	report_set_bool(ctx->result, "firstboot", run.firstboot);
	r = supervise(&run);
	if (r != -ECANCELED)
		ret = ended(&run, r);
out:
	if (run.muxed)
		console_mux_close(&run.mux);
	control_close(&run.ctl);
	if (run.resume_fd >= 0)
		close(run.resume_fd);
	free(run.saved);
	if (run.planned)
		vm_plan_release(&run.plan);
	runstate_release(&run.rs);
	strvec_clear(&run.qargv);
	strbuf_release(&err);
	free(run.errlog);
	free(run.iso);
	return ret;
}
