/*
 * @job NAME: NAME.pre on the host, NAME.job in a throw-away rescue guest
 * with the VM's disks and the in/out shares, NAME.post on the host.
 */
#include "vm.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qemu/jobwait.h"
#include "vm/launch.h"

/* Host scripts get an hour unless --timeout says otherwise. */
#define HOST_SCRIPT_TIMEOUT_S 3600

/*
 * A guest kernel under TCG now and then hangs while it boots (about one
 * boot in a few hundred on a loaded host), before the job has started:
 * the job has done nothing yet, so a second boot is safe, and it is
 * made once, said.  A rescue that misses the boot timeout twice is the
 * error.
 */
#define RESCUE_BOOTS 2

struct job {
	const char *name;
	char *script;		/* NAME.job */
	char *dir;		/* where it was found */
	char *indir, *outdir;
	struct strvec env;	/* for .pre and .post */
	char *dest;		/* INDIR/job.sh, once NAME.pre has passed */
};

static char *find_job(struct vm_ctx *ctx, const char *name, char **dir)
{
	char *jobs = xasprintf("%s/jobs", ctx->vm.datadir);
	const char *dirs[] = { ctx->vm.hostdir, jobs, NULL };
	char *path = NULL;
	size_t i;

	for (i = 0; dirs[i] && !path; i++) {
		char *p = xasprintf("%s/%s.job", dirs[i], name);

		if (access(p, R_OK) == 0) {
			path = p;
			*dir = xstrdup(dirs[i]);
		} else {
			free(p);
		}
	}
	free(jobs);
	return path;
}

static void env_add_setting(const char *section, const char *key,
			    const char *value, void *data)
{
	struct strvec *env = data;
	struct strbuf sb = STRBUF_INIT;
	const char *p;

	/* vm serve's settings are the host's, nothing of a job's */
	if (!strcmp(section, "serve"))
		return;
	strbuf_addstr(&sb, "VM_");
	if (strcmp(section, "vm")) {
		for (p = section; *p; p++)
			strbuf_addch(&sb, toupper((unsigned char)*p));
		strbuf_addch(&sb, '_');
	}
	for (p = key; *p; p++)
		strbuf_addch(&sb, toupper((unsigned char)*p));
	strbuf_addf(&sb, "=%s", value);
	strvec_push(env, sb.buf);
	strbuf_release(&sb);
}

static void build_env(struct vm_ctx *ctx, struct job *j)
{
	struct strbuf quoted = STRBUF_INIT;
	bool defaults;
	size_t i;

	strvec_pushf(&j->env, "HOSTDIR=%s", ctx->vm.hostdir);
	strvec_pushf(&j->env, "WORKDIR=%s", ctx->vm.workdir);
	strvec_pushf(&j->env, "INDIR=%s", j->indir);
	strvec_pushf(&j->env, "OUTDIR=%s", j->outdir);
	strvec_pushf(&j->env, "JOBSDIR=%s/jobs", ctx->vm.datadir);
	strvec_pushf(&j->env, "JOBDIR=%s", j->dir);
	strvec_pushf(&j->env, "JOBNAME=%s", j->name);
	strvec_pushf(&j->env, "LIBEXEC=%s", ctx->vm.datadir);
	strvec_pushf(&j->env, "GUESTNAME=%s", ctx->vm.conf.name);
	strvec_pushf(&j->env, "VM_FUNCTIONS=%s/jobs/functions.sh",
		     ctx->vm.datadir);
	/*
	 * The built-in sshkeys name the usual key files, of which a user has
	 * one or none: those that do not exist are left out, as ssh-copy-id
	 * does.  Keys the user named all go, so that a missing one is an error
	 * naming it.  They go shell-quoted in VM_SSHKEYS_QUOTED, from which
	 * functions.sh makes the bash array SSHKEYS (an array cannot be
	 * exported).
	 */
	defaults = conf_layer_of(&ctx->vm.conf, "vm", "sshkeys") == LAYER_DEFAULT;
	for (i = 0; i < ctx->vm.conf.sshkeys.nr; i++) {
		char *k = fs_expand_home(ctx->vm.conf.sshkeys.v[i]);

		if (!defaults || access(k, F_OK) == 0) {
			if (quoted.len)
				strbuf_addch(&quoted, ' ');
			strbuf_add_shquoted(&quoted, k);
		}
		free(k);
	}
	strvec_pushf(&j->env, "VM_SSHKEYS_QUOTED=%s", quoted.buf);
	strbuf_release(&quoted);
	conf_each(&ctx->vm.conf, env_add_setting, &j->env);
}

/* NAME.pre / NAME.post under bash, with fatal and run defined. */
static int run_host_script(struct vm_ctx *ctx, struct job *j,
			   const char *suffix)
{
	char *path = xasprintf("%s/%s.%s", j->dir, j->name, suffix);
	struct strvec av = STRVEC_INIT;
	struct proc_opts o = PROC_OPTS_INIT;
	unsigned limit = ctx->vm.conf.timeout ? ctx->vm.conf.timeout :
					     HOST_SCRIPT_TIMEOUT_S;
	int r;

	if (access(path, R_OK) < 0) {
		free(path);
		return 0;
	}
	strvec_pushl(&av, "bash", "-c",
		     ". \"$VM_FUNCTIONS\" && . \"$0\"", path, NULL);
	o.stdin_fd = -1;
	/* What the script starts ends with it on a timeout or a signal. */
	o.new_pgrp = true;
	o.cwd = ctx->vm.hostdir;
	o.env_add = j->env.v;
	r = proc_run(av.v, &o, (int)limit * 1000);
	if (r == -ETIMEDOUT)
		log_error("%s.%s took longer than %u s and was stopped",
			  j->name, suffix, limit);
	else if (r == -EINTR)
		log_error("%s.%s was interrupted", j->name, suffix);
	else if (r < 0)
		log_error("cannot run %s: %s", path, strerror(-r));
	else if (r)
		log_error("%s.%s failed with status %d", j->name, suffix, r);
	strvec_clear(&av);
	free(path);
	return r;
}

/* What vm exits with, and last-job says, for a host script's result. */
static int host_script_status(int r)
{
	if (r == -EINTR && proc_interrupted())
		return 128 + proc_interrupted();
	if (r == -ETIMEDOUT)
		return 124;
	return r > 0 ? r : 1;
}

static int fresh_dir(const char *path, mode_t mode)
{
	int r = fs_rm_rf(path);

	if (!r && mkdir(path, mode) < 0)
		r = -errno;
	if (!r)
		chmod(path, mode);
	return r;
}

/* HOSTDIR/last-job: "NAME STATUS EPOCH", for @status. */
static void record_job(struct vm_ctx *ctx, const char *name, int status)
{
	char *path = vm_host_path(&ctx->vm, "last-job");
	char *line = xasprintf("%s %d %lld\n", name, status,
			       (long long)time(NULL));

	fs_write_atomic(path, line, strlen(line), 0644);
	free(line);
	free(path);
}

static void show_console_tail(struct vm_ctx *ctx)
{
	char *path = vm_work_path(&ctx->vm, "rescue-console.log");
	struct strbuf tail = STRBUF_INIT;

	fs_tail(path, 15, &tail);
	if (tail.len)
		fprintf(stderr, "--- last lines of %s:\n%s\n---\n", path,
			tail.buf);
	strbuf_release(&tail);
	free(path);
}

/* --json's "outcome": how the rescue's run ended. */
static const char *outcome_name(enum job_outcome o)
{
	static const char *const names[] = {
		[JOB_DONE] = "done",
		[JOB_BOOT_TIMEOUT] = "boot_timeout",
		[JOB_TIMEOUT] = "timeout",
		[JOB_DIED] = "died",
		[JOB_BAD_STATUS] = "bad_status",
		[JOB_INTERRUPTED] = "interrupted",
		[JOB_ERROR] = "error",
	};

	return names[o];
}

/*
 * Say how the rescue's run of job j ended (res); vm's exit status: the
 * job's own when it left one.
 */
static int job_outcome(struct vm_ctx *ctx, const struct job *j,
		       const struct job_result *r, const char *errlog)
{
	const struct vm_conf *c = &ctx->vm.conf;
	int ret = 1;

	switch (r->outcome) {
	case JOB_DONE:
		ret = r->status;
		report_set_int(ctx->result, "job_status", r->status);
		if (ret)
			log_error("job %s failed with status %d (log: %s/job.log)",
				  j->name, ret, j->outdir);
		break;
	case JOB_BOOT_TIMEOUT:
		log_error("the rescue did not start job %s within the boot timeout of %u s, in %d boots; QEMU was stopped",
			  j->name, c->rescue.boot_timeout, RESCUE_BOOTS);
		show_console_tail(ctx);
		break;
	case JOB_TIMEOUT:
		log_error("job %s was stopped: timeout of %u s expired",
			  j->name, c->timeout);
		ret = 124;
		break;
	case JOB_DIED: {
		struct strbuf tail = STRBUF_INIT;

		fs_tail(errlog, 5, &tail);
		log_error("the rescue for job %s ended without a status (QEMU exit %d)%s%s",
			  j->name, r->qemu_exit, tail.len ? "; QEMU said:\n" : "",
			  tail.buf);
		strbuf_release(&tail);
		show_console_tail(ctx);
		break;
	}
	case JOB_BAD_STATUS:
		log_error("job %s left a bad %s/STATUS: %s",
			  j->name, j->outdir,
			  r->error == -ELOOP ? "a symbolic link" :
			  r->error == -EINVAL ? "not a regular file" :
			  r->error == -EFBIG ? "longer than 64 bytes" :
			  r->error == -EBADMSG ? "not a number from 0 to 255" :
			  strerror(-r->error));
		break;
	case JOB_INTERRUPTED:
		log_error("job %s was interrupted; QEMU was stopped", j->name);
		ret = 128 + proc_interrupted();
		break;
	case JOB_ERROR:
		log_error("cannot follow job %s: %s", j->name,
			  strerror(-r->error));
		break;
	}
	return ret;
}

/*
 * One boot of the rescue for job j, followed until the job ends or a
 * deadline passes (*res); its QEMU has ended when this returns.  0; 1
 * for a dry run (said); -1 when QEMU could not start (said).  *errlog:
 * where QEMU's own messages went.  Notes (the accelerator's) are said
 * only when first.
 */
static int rescue_boot(struct vm_ctx *ctx, struct job *j,
		       struct rescue_image *rb, bool first,
		       struct job_result *res, char **errlog)
{
	struct vm_conf *c = &ctx->vm.conf;
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct strvec qargv = STRVEC_INIT;
	struct launch_req req = { PLAN_RESCUE, NULL, false, true, rb, -1 };
	struct vm_plan plan;
	pid_t pid;
	int r;

	req.cdrom = rb->cdrom ? rb->iso : NULL;
	req.cdrom_first = rb->cdrom;
	r = launch_prepare(&ctx->vm, &req, &plan, &qargv, &note, &err);
	if (note.len && first)
		log_warn_lines(note.buf);
	if (r) {
		log_error("cannot start the rescue for %s: %s", c->name, err.buf);
		r = -1;
		goto out;
	}
	if (!ctx->vm.dry_run) {
		char *log = vm_work_path(&ctx->vm, "rescue-console.log");

		unlink(log);	/* its tail must be this boot's */
		free(log);
	}
	free(*errlog);
	*errlog = NULL;
	r = start_qemu(ctx, &qargv, "rescue",
		       (const int[2]){ -1, plan.q.base_fd }, &pid, errlog,
		       "start the rescue for", &err);
	if (r) {
		r = r > 0 ? 1 : -1;	/* > 0: a dry run, said */
		goto out;
	}
	log_info("rescue for %s started (%s); job %s", c->name, ctx->vm.accel,
		 j->name);
	fflush(stdout);
	jobwait_run(pid, j->outdir, c->rescue.boot_timeout, c->timeout,
		    STDOUT_FILENO, c->rescue.job_log_max, res);
	/* Whatever happened, no rescue outlives the job. */
	if (res->qemu_exit < 0)
		proc_terminate(pid, 3000);
	proc_set_foreground(0);
out:
	vm_plan_release(&plan);
	strvec_clear(&qargv);
	strbuf_release(&err);
	strbuf_release(&note);
	return r;
}

static int boot_rescue(struct vm_ctx *ctx, struct job *j)
{
	struct vm_conf *c = &ctx->vm.conf;
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct rescue_image rb = RESCUE_IMAGE_INIT;
	struct job_result res;
	char *errlog = NULL;
	int boots, r, ret = 1;

	r = rescue_find(&ctx->vm, &rb, &note, &err);
	if (note.len)
		log_warn("%s", note.buf);
	if (r) {
		log_error("%s", err.buf);
		goto out;
	}
	for (boots = 1;; boots++) {
		r = rescue_boot(ctx, j, &rb, boots == 1, &res, &errlog);
		if (r) {
			ret = r > 0 ? 0 : 1;
			goto out;
		}
		if (res.outcome != JOB_BOOT_TIMEOUT || boots == RESCUE_BOOTS)
			break;
		log_warn("the rescue did not start job %s within the boot timeout of %u s; QEMU was stopped, booting it once more",
			 j->name, c->rescue.boot_timeout);
		show_console_tail(ctx);
	}
	if (res.log_cut) {
		struct strbuf max = STRBUF_INIT;

		strbuf_add_size(&max, c->rescue.job_log_max);
		log_warn("job.log of job %s was cut at %s (job_log_max in [rescue])",
			 j->name, max.buf);
		strbuf_release(&max);
	}
	report_set_str(ctx->result, "accel", ctx->vm.accel);
	report_set_str(ctx->result, "outcome", outcome_name(res.outcome));
	report_set_int(ctx->result, "boots", boots);
	ret = job_outcome(ctx, j, &res, errlog);
out:
	strbuf_release(&err);
	strbuf_release(&note);
	rescue_image_release(&rb);
	free(errlog);
	return ret;
}

/*
 * The job says what rescue it needs: the VM's layers with NAME.rescue
 * among them, merged into a copy for this job alone; the VM's settings
 * (in *saved, *own true) come back untouched after.  0, or -1 after
 * saying why.
 */
static int job_settings(struct vm_ctx *ctx, const struct job *j,
			struct vm_conf *saved, bool *own)
{
	struct strbuf err = STRBUF_INIT;
	char *rescue_conf = xasprintf("%s/%s.rescue", j->dir, j->name);
	int r = 0;

	if (access(rescue_conf, R_OK) == 0) {
		struct vm_conf jc;

		conf_init(&jc);
		if (vm_settings_for(&ctx->vm, ctx->vm.hostdir, true,
				    rescue_conf, &jc, &err)) {
			log_error("%s", err.buf);
			conf_release(&jc);
			r = -1;
		} else {
			*saved = ctx->vm.conf;
			ctx->vm.conf = jc;
			*own = true;
		}
	}
	free(rescue_conf);
	strbuf_release(&err);
	return r;
}

/*
 * NAME.pre, NAME.job into INDIR (unless .pre put one there), the
 * rescue, NAME.post; vm's exit status.
 */
static int run_steps(struct vm_ctx *ctx, struct job *j)
{
	int ret, r;

	r = run_host_script(ctx, j, "pre");
	if (r)
		return host_script_status(r);
	j->dest = xasprintf("%s/job.sh", j->indir);
	if (!fs_exists(j->dest)) {
		r = fs_copy_file(j->script, j->dest, 0644);
		if (r) {
			log_error("cannot copy %s to %s: %s", j->script,
				  j->dest, fs_read_strerror(r));
			return 1;
		}
	}
	/* the job writes the disks: RAM saved against them is void now */
	if (!ctx->vm.dry_run && vm_saved_drop(&ctx->vm) > 0)
		log_warn("%s: the state @stop --save saved is dropped, as job %s writes its disks (the next @run or @start boots afresh)",
			 ctx->vm.conf.name, j->name);
	ret = boot_rescue(ctx, j);
	if (ret == 0) {
		r = run_host_script(ctx, j, "post");
		if (r)
			ret = host_script_status(r);
	}
	return ret;
}

/* However the job ended (ret): INDIR goes; last-job and --json say. */
static void finish_job(struct vm_ctx *ctx, const struct job *j, int ret,
		       long long t0)
{
	fs_rm_rf(j->indir);
	record_job(ctx, j->name, ret);
	report_set_int(ctx->result, "seconds",
		       (proc_now_ms() - t0 + 500) / 1000);
	report_set_str(ctx->result, "outdir", j->outdir);
	if (j->dest) {
		char *log = xasprintf("%s/job.log", j->outdir);

		if (fs_exists(log))
			report_set_str(ctx->result, "log", log);
		free(log);
	}
}

int cmd_job(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct job j;
	struct vm_conf vm_conf;
	long long t0 = proc_now_ms();
	bool own_conf = false;
	int ret = 1, r;

	(void)argc;
	memset(&j, 0, sizeof(j));
	j.name = argv[0];
	j.env = (struct strvec)STRVEC_INIT;
	if (!name_is_valid(j.name)) {
		log_error("bad job name '%s'", j.name);
		return 2;
	}
	j.script = find_job(ctx, j.name, &j.dir);
	if (!j.script) {
		log_error("job %s not found: no %s/%s.job nor %s/jobs/%s.job",
			  j.name, ctx->vm.hostdir, j.name, ctx->vm.datadir,
			  j.name);
		return 1;
	}
	if (vm_workdir_for_images(&ctx->vm, &err) < 0) {
		log_error("cannot run job %s: %s", j.name, err.buf);
		goto out;
	}
	if (!ctx->vm.workdir) {
		log_error("cannot run job %s: %s has no working files (@create it first)",
			  j.name, ctx->vm.conf.name);
		goto out;
	}
	j.indir = vm_work_path(&ctx->vm, ".in");
	j.outdir = vm_work_path(&ctx->vm, ".out");
	if (job_settings(ctx, &j, &vm_conf, &own_conf))
		goto out;
	build_env(ctx, &j);
	report_set_str(ctx->result, "job", j.name);
	report_set_str(ctx->result, "script", j.script);
	if (ctx->vm.dry_run) {
		ret = boot_rescue(ctx, &j);
		goto out;
	}
	/*
	 * Both are ours alone: QEMU runs as us, and what the guest writes
	 * into out reaches nobody else (the share is mapped, see qemu.c).
	 */
	r = fresh_dir(j.indir, 0700);
	if (!r)
		r = fresh_dir(j.outdir, 0700);
	if (r) {
		log_error("cannot prepare %s and %s: %s", j.indir, j.outdir,
			  strerror(-r));
		goto out;
	}
	ret = run_steps(ctx, &j);
	finish_job(ctx, &j, ret, t0);
out:
	/* What NAME.rescue set was for this job alone. */
	if (own_conf) {
		conf_release(&ctx->vm.conf);
		ctx->vm.conf = vm_conf;
	}
	free(j.dest);
	free(j.script);
	free(j.dir);
	free(j.indir);
	free(j.outdir);
	strvec_clear(&j.env);
	strbuf_release(&err);
	return ret;
}
