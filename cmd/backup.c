/* @backup [NAME [DESCRIPTION]]: a snapshot of the VM in backups/. */
#include "vm.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snapshot/backup.h"

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

int cmd_backup(struct vm_ctx *ctx, int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : NULL;
	const char *description = argc > 1 ? argv[1] : "";
	struct backup_job job;
	struct strbuf err = STRBUF_INIT;
	struct log_progress bar;
	struct snap_progress prog = { log_progress_cb, &bar };
	struct stat st;
	char *pigz = NULL, size[32];
	long long t0, ms;
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
	if (r) {
		log_error("%s", err.buf);
		if (r == -EINTR)
			ret = 128 + proc_interrupted();
		goto out;
	}
	if (stat(job.file, &st) == 0)
		report_set_int(ctx->result, "size", (int64_t)st.st_size);
	else
		st.st_size = 0;
	ms = proc_now_ms() - t0;
	report_set(ctx->result, "seconds",
		   json_object_new_double((double)ms / 1000));
	if (!job.sealed)
		log_warn("snapshot %s is not sealed (no key of yours in $XDG_CONFIG_HOME/vm/seal.key, and none could be made): a restore takes it for one from elsewhere",
			 job.name);
	log_size(size, sizeof(size), (uint64_t)st.st_size);
	log_info("snapshot %s of %s stored in %s (%s, %d disk%s, %s%s) in %lld.%01lld s",
		 job.name, ctx->vm.conf.name, job.file, size, job.ndisks,
		 job.ndisks == 1 ? "" : "s",
		 job.parent ? "what changed since " : "full",
		 job.parent ? job.parent : "", ms / 1000, ms % 1000 / 100);
	ret = 0;
out:
	backup_job_release(&job);
	strbuf_release(&err);
	free(pigz);
	return ret;
}
