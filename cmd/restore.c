/* @restore [NAME]: the VM's files from a snapshot (default LAST). */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/download.h"
#include "net/ociref.h"
#include "snapshot/restore.h"

int cmd_restore(struct vm_ctx *ctx, int argc, char **argv)
{
	const char *want = argc > 0 ? argv[0] : "LAST";
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct log_progress bar;
	struct snap_progress prog = { log_progress_cb, &bar };
	char *name = NULL, size[32], *pulled = NULL;
	long long t0, ms;
	int r, ret = 1;

	/* REF: an image in a registry, pulled into backups/ first */
	if (oci_ref_is_remote(want)) {
		ret = pull_image(ctx, want, &pulled);
		if (ret || ctx->vm.dry_run) {
			if (!ret)
				say_dry(ctx, "restore the image's newest snapshot into %s",
					ctx->vm.inplace ? ctx->vm.hostdir :
							  "a new working directory");
			return ret;
		}
		ret = 1;
		want = pulled;
	}
	if (restore_pick(&ctx->vm, want, &name, &err)) {
		log_error("%s", err.buf);
		goto out;
	}
	report_set_str(ctx->result, "name", name);
	if (ctx->vm.dry_run) {
		const char *into = ctx->vm.inplace ? ctx->vm.hostdir :
						  "a new working directory";

		if (download_is_url(name))
			say_dry(ctx, "restore %s (and its parents beside it) into %s",
				name, into);
		else
			say_dry(ctx, "restore %s/backups/%s into %s",
				ctx->vm.hostdir, name, into);
		ret = 0;
		goto out;
	}
	t0 = proc_now_ms();
	log_progress_start(&bar, "restore %s", name);
	r = restore_snapshot(&ctx->vm, name, &prog, &note, &err);
	log_progress_end(&bar, !r);
	if (note.len)
		log_warn("%s", note.buf);
	if (r) {
		log_error("%s", err.buf);
		if (r == -EINTR)
			ret = 128 + proc_interrupted();
		goto out;
	}
	report_set_str(ctx->result, "workdir", ctx->vm.workdir);
	ms = proc_now_ms() - t0;
	report_set(ctx->result, "seconds",
		   json_object_new_double((double)ms / 1000));
	/* the archives' size (a chain's are one), as the bar counts */
	log_size(size, sizeof(size), bar.total);
	log_info("restored %s from snapshot %s (%s read) in %lld.%01lld s (working files in %s)",
		 ctx->vm.conf.name, name, size, ms / 1000, ms % 1000 / 100,
		 ctx->vm.workdir);
	ret = 0;
out:
	strbuf_release(&err);
	strbuf_release(&note);
	free(name);
	free(pulled);
	return ret;
}
