/* @run [ISO]: boot the VM in the foreground. */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/backups.h"
#include "../lib/launch.h"

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

static void on_progress(void *data, uint64_t done, uint64_t total)
{
	log_progress_update(data, done, total);
}

int cmd_run(struct vm_ctx *ctx, int argc, char **argv)
{
	struct vm_conf *c = &ctx->conf;
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct strvec qargv = STRVEC_INIT;
	struct vm_plan plan;
	const char *cdrom = NULL;
	char *errlog = NULL, *dry, *last, *iso = NULL;
	bool firstboot = false, planned = false;
	pid_t pid;
	int r, ret = 1;

	if ((!ctx->workdir || !vm_count_disks(ctx)) && !ctx->dry_run &&
	    (last = backups_last(ctx))) {
		/* As the reference does: no working files, take LAST. */
		log_info("%s has no working files: restoring snapshot %s first",
			 c->name, last);
		free(last);
		r = cmd_restore(ctx, 0, NULL);
		if (r)
			return r;
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
		r = vm_fetch(ctx, cdrom, argc > 0 ? NULL : c->bootimage_sha256,
			     on_progress, &bar, &iso, NULL, &note, &err);
		log_progress_end(&bar);
		if (note.len)
			log_warn("%s", note.buf);
		strbuf_reset(&note);
		if (r) {
			log_error("cannot run %s: ISO %s", c->name, err.buf);
			goto out;
		}
		cdrom = iso;
	}
	if (!ctx->workdir) {
		if (ctx->dry_run) {
			ctx->workdir = vm_host_path(ctx, ".work");
		} else {
			log_error("cannot run %s: it has no working files in %s (@create it first)",
				  c->name, ctx->hostdir);
			goto out;
		}
	}
	r = launch_resolve_accel(ctx, &note);
	if (r) {
		log_error("cannot run %s: %s", c->name, note.buf);
		goto out;
	}
	if (note.len)
		log_warn("%s", note.buf);
	r = vm_plan_build(ctx, PLAN_RUN, cdrom, &plan, &err);
	planned = true;
	if (r) {
		log_error("cannot run %s: %s", c->name, err.buf);
		goto out;
	}
	plan.q.cdrom_first = cdrom && (firstboot || argc > 0);
	plan.q.no_reboot = firstboot;
	qemu_argv_build(&plan.q, &qargv);
	r = launch_start(ctx, &qargv, "vm", &pid, &errlog, &dry, &err);
	if (dry) {
		printf("%s\n", dry);
		free(dry);
		ret = 0;
		goto out;
	}
	if (r) {
		log_error("cannot run %s: %s", c->name, err.buf);
		goto out;
	}
	log_info("%s is running (%s%s); serial console: %s/console.log",
		 c->name, ctx->accel,
		 plan.q.spice_port ? ", SPICE display" : ", headless",
		 ctx->workdir);
	r = launch_wait(pid, c->timeout);
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
	if (firstboot) {
		/* The installer has had its boot; later boots use the disks. */
		r = vm_guest_conf_set(ctx, "firstboot", "no", &err);
		if (r) {
			log_error("cannot record the first boot: %s", err.buf);
			goto out;
		}
	}
	ret = 0;
out:
	if (planned)
		vm_plan_release(&plan);
	strvec_clear(&qargv);
	strbuf_release(&err);
	strbuf_release(&note);
	free(errlog);
	free(iso);
	return ret;
}
