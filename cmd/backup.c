/* @backup [NAME [DESCRIPTION]]: a snapshot of the VM in backups/. */
#include "vm.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qemu/live.h"
#include "qemu/runstate.h"
#include "snapshot/backup.h"

/* A live backup: the VM's vm keeps its disks still while we read them. */
struct live_side {
	bool on;
	bool dry;		/* a dry run would have gone live */
	struct qmp q;
	struct live_begun b;
};

/*
 * Whether the VM runs (then freeze its disks through its vm: 0, or 1
 * with the error said), or (-1) not: then take the lock it would hold.
 */
static int go_live(struct vm_ctx *ctx, struct backup_job *job,
		   struct live_side *l)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate rs;
	char *since;
	int i, r;

	r = runstate_running(ctx->vm.hostdir, &rs, &err);
	if (r != 1) {
		strbuf_release(&err);
		return -1;
	}
	if (ctx->vm.dry_run) {
		say_dry(ctx, "live: %s freezes the disks of %s (control %s), then thaws them",
			"its vm", ctx->vm.conf.name, rs.control ? rs.control : "-");
		l->dry = true;
		r = 0;
		goto out;
	}
	since = backup_since(job);
	r = rs.control ? live_remote_begin(&l->q, rs.control,
					   ctx->vm.conf.guest_agent == AGENT_YES,
					   since, &l->b, &err) : -ENOENT;
	free(since);
	if (!rs.control)
		strbuf_addstr(&err, "its vm serves no control socket");
	if (!r && l->b.efivars)
		r = backup_job_use(job, "efivars.bin", l->b.efivars);
	for (i = 0; !r && i < l->b.nbm; i++)
		backup_job_bitmap(job, l->b.bm[i].file, l->b.nbd,
				  l->b.bm[i].export, l->b.bm[i].why);
	if (r) {
		log_error("cannot back up %s while it runs: %s",
			  ctx->vm.conf.name, err.len ? err.buf : strerror(-r));
		qmp_close(&l->q);
		r = 1;
		goto out;
	}
	l->on = true;
	job->taken = l->b.taken;
	if (!strcmp(l->b.taken, "frozen"))
		log_info("%s: its disks held still for a live backup (file systems frozen by its agent %lld ms, guest paused %lld ms)",
			 ctx->vm.conf.name, l->b.fs_frozen_ms,
			 l->b.paused_ms);
	else
		log_info("%s: its disks held still for a live backup (guest paused %lld ms); crash-consistent: %s",
			 ctx->vm.conf.name, l->b.paused_ms,
			 l->b.why ? l->b.why : "no agent");
out:
	runstate_release(&rs);
	strbuf_release(&err);
	return r;
}

/*
 * The disks go on from where the guest is now.  The snapshot is whole
 * whatever this says: a thaw that fails (QEMU ended meanwhile) is for
 * the VM's vm to finish, and it does, through QEMU or when QEMU ends.
 */
static void end_live(struct vm_ctx *ctx, struct live_side *l,
		     const struct backup_job *job)
{
	struct strbuf err = STRBUF_INIT;
	char *keep;

	if (!l->on)
		return;
	/* the snapshot is LAST: the disks' bitmaps count from it */
	keep = backup_keep(job);
	if (live_remote_end(&l->q, keep, &err))
		log_warn("%s: its vm has not taken back its disks yet (%s); it does when QEMU ends",
			 ctx->vm.conf.name, err.buf);
	qmp_close(&l->q);
	l->on = false;
	free(keep);
	strbuf_release(&err);
}

static void live_side_release(struct live_side *l)
{
	live_begun_release(&l->b);
}

/* What --json says of how each disk's changes were found, and reads. */
static void report_reads(struct vm_ctx *ctx, const struct backup_job *job)
{
	struct json_object *disks = json_object_new_array();
	size_t i;

	for (i = 0; job->reads && i < job->names.nr; i++) {
		const struct backup_read *rd = &job->reads[i];
		struct json_object *d;

		if (!rd->by)
			continue;
		d = json_object_new_object();
		json_object_object_add(d, "file",
				       json_object_new_string(job->names.v[i]));
		json_object_object_add(d, "by", json_object_new_string(rd->by));
		if (rd->why)
			json_object_object_add(d, "why",
					       json_object_new_string(rd->why));
		else
			json_object_object_add(d, "marked",
					       json_object_new_int64((int64_t)rd->marked));
		json_object_array_add(disks, d);
	}
	report_set(ctx->result, "changes", disks);
	report_set_int(ctx->result, "read", (int64_t)job->read);
}

/* What --json says of the snapshot, before it is written. */
static void report_job(struct vm_ctx *ctx, const struct backup_job *job,
		       const char *description)
{
	report_set_str(ctx->result, "name", job->name);
	report_set_str(ctx->result, "file", job->file);
	report_set_str(ctx->result, "description", description);
	report_set(ctx->result, "files",
		   report_strv((const char *const *)job->names.v,
			       job->names.nr));
	report_set_str(ctx->result, "parent", job->parent);
}

/*
 * A VM that ran when this chain began and has stopped since is backed
 * up offline: take the lock the chain did not, and recover what its
 * live side left.  0, or -1 after saying why.
 */
static int lock_stopped(struct vm_ctx *ctx)
{
	int r;

	if (ctx->vm.lock_fd >= 0 || ctx->vm.dry_run)
		return 0;
	r = vm_lock(&ctx->vm);
	if (r) {
		log_error("cannot back up %s: %s", ctx->vm.conf.name,
			  r == -EBUSY ? "another vm is using it" :
			  strerror(-r));
		return -1;
	}
	return vm_recover_live(ctx) ? -1 : 0;
}

/* --json: how the snapshot is taken, and how long the guest paused. */
static void report_taken(struct vm_ctx *ctx, struct backup_job *job,
			 const struct live_side *live)
{
	if (live->dry)
		job->taken = "crash-consistent";
	report_set_str(ctx->result, "taken", job->taken ? job->taken : "offline");
	if (live->on) {
		report_set_int(ctx->result, "paused_ms", live->b.paused_ms);
		if (live->b.fs_frozen_ms)
			report_set_int(ctx->result, "frozen_ms",
				       live->b.fs_frozen_ms);
	}
}

/* What was stored, in ms: --json and the summary line. */
static void report_stored(struct vm_ctx *ctx, const struct backup_job *job,
			  long long ms)
{
	struct stat st;
	char size[32];

	report_reads(ctx, job);
	if (stat(job->file, &st) == 0)
		report_set_int(ctx->result, "size", (int64_t)st.st_size);
	else
		st.st_size = 0;
	report_set(ctx->result, "seconds",
		   json_object_new_double((double)ms / 1000));
	if (!job->sealed)
		log_warn("snapshot %s is not sealed (no key of yours in $XDG_CONFIG_HOME/vm/seal.key, and none could be made): a restore takes it for one from elsewhere",
			 job->name);
	log_size(size, sizeof(size), (uint64_t)st.st_size);
	log_info("snapshot %s of %s stored in %s (%s, %d disk%s, %s%s) in %lld.%01lld s",
		 job->name, ctx->vm.conf.name, job->file, size, job->ndisks,
		 job->ndisks == 1 ? "" : "s",
		 job->parent ? "what changed since " : "full",
		 job->parent ? job->parent : "", ms / 1000, ms % 1000 / 100);
}

int cmd_backup(struct vm_ctx *ctx, int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : NULL;
	const char *description = argc > 1 ? argv[1] : "";
	struct backup_job job;
	struct live_side live = { false, false, QMP_INIT,
				  { 0, 0, NULL, NULL, NULL, NULL, NULL, 0 } };
	struct strbuf err = STRBUF_INIT;
	struct log_progress bar;
	struct snap_progress prog = { log_progress_cb, &bar };
	char *pigz = NULL;
	long long t0;
	int r, ret = 1;

	if (name && (!name_is_valid(name) || !strcmp(name, "LAST"))) {
		log_error("bad snapshot name '%s' (letters, digits, . _ -; not LAST)",
			  name);
		return 2;	/* a usage error */
	}
	r = backup_prepare(&ctx->vm, name, &job, &err);
	if (r) {
		log_error("%s", err.buf);
		goto out;
	}
	r = go_live(ctx, &job, &live);
	if (r > 0 || (r < 0 && lock_stopped(ctx)))
		goto out;
	report_taken(ctx, &job, &live);
	report_job(ctx, &job, description);
	if (job.why_full && job.why_full_warns)
		log_warn("%s", job.why_full);
	else if (job.why_full)
		log_info("%s", job.why_full);
	if (ctx->vm.dry_run) {
		char *list = strvec_join(&job.names, " ", true);

		say_dry(ctx, "snapshot %s (level %u%s%s): %s", job.file,
			ctx->vm.conf.compress_level,
			job.parent ? ", on " : ", full",
			job.parent ? job.parent : "", list);
		free(list);
		ret = 0;
		goto out;
	}
	pigz = fs_which("pigz");
	if (!pigz)
		log_warn("pigz not found: compressing with one thread (apt-get install pigz)");
	t0 = proc_now_ms();
	log_progress_start(&bar, "backup %s", job.name);
	r = backup_store(&ctx->vm, &job, description, pigz ? "pigz" : NULL,
			 &prog, &err);
	log_progress_end(&bar, !r);
	end_live(ctx, &live, &job);
	if (r) {
		log_error("%s", err.buf);
		if (r == -EINTR)
			ret = 128 + proc_interrupted();
		goto out;
	}
	report_stored(ctx, &job, proc_now_ms() - t0);
	ret = 0;
out:
	end_live(ctx, &live, &job);
	backup_job_release(&job);
	live_side_release(&live);
	strbuf_release(&err);
	free(pigz);
	return ret;
}
