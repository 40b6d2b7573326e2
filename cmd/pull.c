/*
 * @pull REF: an image @push made (or one copied from it) into backups/
 * as snapshots; in a directory with no VM, the VM is made from it.
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/oci.h"
#include "snapshot/restore.h"

/* A VM is here: its guest.conf. */
static bool has_vm(const struct vm_ctx *ctx)
{
	char *p = vm_host_path(&ctx->vm, "guest.conf");
	bool there = fs_exists(p);

	free(p);
	return there;
}

int pull_image(struct vm_ctx *ctx, const char *spec, char **tip)
{
	struct strbuf err = STRBUF_INIT;
	struct oci_ref ref;
	struct oci_pulled p;
	struct reg_opts o;
	struct log_progress bar;
	char *where = NULL, got[32], *last;
	int r;

	*tip = NULL;
	r = registry_ref(ctx, spec, false, &ref, &o, &bar, &where);
	if (r)
		return r;
	if (ctx->vm.dry_run) {
		say_dry(ctx, "pull %s over %s into %s/backups", where,
			o.insecure ? "HTTP" : "HTTPS", ctx->vm.hostdir);
		r = 0;
		goto out;
	}
	log_progress_start(&bar, "pull %s", where);
	r = oci_pull(&ctx->vm, &ref, &o, &p, &err);
	log_progress_end(&bar, !r);
	if (r) {
		log_error("cannot pull %s: %s", where, err.buf);
		r = r == -EINTR ? 128 + proc_interrupted() : 1;
		goto out;
	}
	log_size(got, sizeof(got), p.bytes);
	log_info("pulled %s (%s): %d snapshot%s up to %s, %d fetched (%s), %d already here%s",
		 where, p.digest, p.layers, p.layers == 1 ? "" : "s", p.tip,
		 p.fetched, got, p.layers - p.fetched,
		 p.last_set ? "; LAST names it" : "");
	report_set_str(ctx->result, "ref", where);
	report_set_str(ctx->result, "digest", p.digest);
	report_set_str(ctx->result, "name", p.tip);
	report_set_int(ctx->result, "layers", p.layers);
	report_set_int(ctx->result, "fetched", p.fetched);
	report_set_int(ctx->result, "received", (int64_t)p.bytes);
	report_set_int(ctx->result, "size", (int64_t)p.size);
	last = p.last_set ? NULL : backups_last(&ctx->vm);
	if (last && strcmp(last, p.tip))
		log_info("LAST still names %s (vm @restore %s, or @last %s)",
			 last, p.tip, p.tip);
	free(last);
	*tip = p.tip;
	p.tip = NULL;
	oci_pulled_release(&p);
out:
	free(where);
	oci_ref_release(&ref);
	strbuf_release(&err);
	return r;
}

int cmd_pull(struct vm_ctx *ctx, int argc, char **argv)
{
	bool made = !has_vm(ctx);
	char *tip = NULL;
	char *rargv[1];
	int r;

	(void)argc;
	r = pull_image(ctx, argv[0], &tip);
	/* no VM here: it is made from the image, as @restore would */
	if (!r && made && tip) {
		rargv[0] = tip;
		r = cmd_restore(ctx, 1, rargv);
	}
	free(tip);
	return r;
}
