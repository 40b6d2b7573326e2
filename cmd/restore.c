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
	char *name = NULL;
	long long t0;
	int r, ret = 1;

	/* REF: an image in a registry, pulled into backups/ and restored */
	if (oci_ref_is_remote(want))
		return pull_image(ctx, want, true);
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
	say_restored(ctx, name, t0, bar.total);
	ret = 0;
out:
	strbuf_release(&err);
	strbuf_release(&note);
	free(name);
	return ret;
}
