/* @backup [NAME [DESCRIPTION]]: a snapshot of the VM in backups/. */
#include "vm.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/backup.h"

/* What the VM's vm said when it held the disks, or the dry run. */
static void say_held(struct vm_ctx *ctx, const struct vm_backup *vb)
{
	say_recovered(ctx, vb->recovered);
	if (vb->running && ctx->vm.dry_run)
		say_dry(ctx, "live: %s freezes the disks of %s (control %s), then thaws them",
			"its vm", ctx->vm.conf.name,
			vb->control ? vb->control : "-");
	if (!vb->live)
		return;
	if (!strcmp(vb->b.taken, "frozen"))
		log_info("%s: its disks held still for a live backup (file systems frozen by its agent %lld ms, guest paused %lld ms)",
			 ctx->vm.conf.name, vb->b.fs_frozen_ms,
			 vb->b.paused_ms);
	else
		log_info("%s: its disks held still for a live backup (guest paused %lld ms); crash-consistent: %s",
			 ctx->vm.conf.name, vb->b.paused_ms,
			 vb->b.why ? vb->b.why : "no agent");
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

/* --json: how the snapshot is taken, and how long the guest paused. */
static void report_taken(struct vm_ctx *ctx, struct vm_backup *vb)
{
	if (vb->running && ctx->vm.dry_run)
		vb->job.taken = "crash-consistent";
	report_set_str(ctx->result, "taken",
		       vb->job.taken ? vb->job.taken : "offline");
	if (vb->live) {
		report_set_int(ctx->result, "paused_ms", vb->b.paused_ms);
		if (vb->b.fs_frozen_ms)
			report_set_int(ctx->result, "frozen_ms",
				       vb->b.fs_frozen_ms);
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
	struct vm_backup vb;
	struct backup_job *job = &vb.job;
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
	vm_backup_init(&vb);
	r = vm_backup_begin(&ctx->vm, name, &vb, &err);
	if (r) {
		log_error("%s", err.buf);
		goto out;
	}
	say_held(ctx, &vb);
	report_taken(ctx, &vb);
	report_job(ctx, job, description);
	if (job->why_full && job->why_full_warns)
		log_warn("%s", job->why_full);
	else if (job->why_full)
		log_info("%s", job->why_full);
	if (ctx->vm.dry_run) {
		char *list = strvec_join(&job->names, " ", true);

		say_dry(ctx, "snapshot %s (level %u%s%s): %s", job->file,
			ctx->vm.conf.compress_level,
			job->parent ? ", on " : ", full",
			job->parent ? job->parent : "", list);
		free(list);
		ret = 0;
		goto out;
	}
	pigz = fs_which("pigz");
	if (!pigz)
		log_warn("pigz not found: compressing with one thread (apt-get install pigz)");
	t0 = proc_now_ms();
	log_progress_start(&bar, "backup %s", job->name);
	r = vm_backup_store(&ctx->vm, &vb, description, pigz ? "pigz" : NULL,
			    &prog, &err);
	log_progress_end(&bar, !r);
	if (vb.end_error)
		log_warn("%s: its vm has not taken back its disks yet (%s); it does when QEMU ends",
			 ctx->vm.conf.name, vb.end_error);
	if (r) {
		log_error("%s", err.buf);
		if (r == -EINTR)
			ret = 128 + proc_interrupted();
		goto out;
	}
	report_stored(ctx, job, proc_now_ms() - t0);
	ret = 0;
out:
	vm_backup_release(&vb);
	strbuf_release(&err);
	free(pigz);
	return ret;
}
