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

/* What a pull did, said and reported. */
static void said_pulled(struct vm_ctx *ctx, const char *where,
			const struct oci_pulled *p)
{
	char got[32];

	log_size(got, sizeof(got), p->bytes);
	log_info("pulled %s (%s): %d snapshot%s up to %s, %d fetched (%s), %d already here%s",
		 where, p->digest, p->layers, p->layers == 1 ? "" : "s", p->tip,
		 p->fetched, got, p->layers - p->fetched,
		 p->last_set ? "; LAST names it" : "");
	report_set_str(ctx->result, "ref", where);
	report_set_str(ctx->result, "digest", p->digest);
	report_set_str(ctx->result, "name", p->tip);
	report_set_int(ctx->result, "layers", p->layers);
	report_set_int(ctx->result, "fetched", p->fetched);
	report_set_int(ctx->result, "received", (int64_t)p->bytes);
	report_set_int(ctx->result, "size", (int64_t)p->size);
}

/*
 * The staged restore of what was pulled: the last layers' applying
 * waited for, then checked and swapped in.
 */
static int restore_pulled(struct vm_ctx *ctx, struct restore_stage *stage,
			  const struct oci_pulled *p, long long t0)
{
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct log_progress bar;
	int r;

	log_progress_start(&bar, "restore %s", p->tip);
	r = restore_stage_finish(stage, &note, &err);
	log_progress_end(&bar, !r);
	if (note.len)
		log_warn("%s", note.buf);
	if (r)
		log_error("%s", err.buf);
	else
		say_restored(ctx, p->tip, t0, p->size);
	strbuf_release(&err);
	strbuf_release(&note);
	return !r ? 0 : r == -EINTR ? 128 + proc_interrupted() : 1;
}

int pull_image(struct vm_ctx *ctx, const char *spec, bool restore)
{
	struct strbuf err = STRBUF_INIT;
	struct restore_stage *stage = NULL;
	struct oci_ref ref;
	struct oci_pulled p;
	struct reg_opts o;
	struct log_progress bar;
	char *where = NULL, *last;
	long long t0 = proc_now_ms();
	int r;

	r = registry_ref(ctx, spec, false, &ref, &o, &bar, &where);
	if (r)
		return r;
	if (ctx->vm.dry_run) {
		say_dry(ctx, "pull %s over %s into %s/backups", where,
			o.insecure ? "HTTP" : "HTTPS", ctx->vm.hostdir);
		if (restore)
			say_dry(ctx, "restore the image's newest snapshot into %s",
				ctx->vm.inplace ? ctx->vm.hostdir :
						  "a new working directory");
		r = 0;
		goto out;
	}
	/* each layer restored while the next one downloads */
	if (restore && restore_stage_start(&ctx->vm, where, &stage, &err)) {
		log_error("%s", err.buf);
		r = 1;
		goto out;
	}
	log_progress_start(&bar, "pull %s", where);
	r = oci_pull(&ctx->vm, &ref, &o, stage, &p, &err);
	log_progress_end(&bar, !r);
	if (r) {
		restore_stage_abort(stage);
		log_error("cannot pull %s: %s", where, err.buf);
		r = r == -EINTR ? 128 + proc_interrupted() : 1;
		goto out;
	}
	said_pulled(ctx, where, &p);
	last = p.last_set ? NULL : backups_last(&ctx->vm);
	if (last && strcmp(last, p.tip))
		log_info("LAST still names %s (vm @restore %s, or @last %s)",
			 last, p.tip, p.tip);
	free(last);
	if (restore)
		r = restore_pulled(ctx, stage, &p, t0);
	oci_pulled_release(&p);
out:
	free(where);
	oci_ref_release(&ref);
	strbuf_release(&err);
	return r;
}

int cmd_pull(struct vm_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	/* no VM here: it is made from the image, as @restore would */
	return pull_image(ctx, argv[0], !has_vm(ctx));
}
