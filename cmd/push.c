/*
 * @push REF [NAME]: publish a snapshot (LAST by default) with its chain
 * to a container registry, as an OCI image whose layers are the
 * snapshots' archives; only the blobs the registry lacks are sent.
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "snapshot/oci.h"

/* The registry's host is one that registry_insecure names. */
static bool insecure(const struct vm_conf *c, const char *host)
{
	size_t i;

	for (i = 0; i < c->registry_insecure.nr; i++)
		if (!strcmp(c->registry_insecure.v[i], host))
			return true;
	return false;
}

int registry_ref(const struct vm_ctx *ctx, const char *spec, bool push,
		 struct oci_ref *ref, struct reg_opts *o,
		 struct log_progress *bar, char **where)
{
	struct strbuf err = STRBUF_INIT;

	if (oci_ref_parse(spec, ref, &err)) {
		log_error("%s", err.buf);
		strbuf_release(&err);
		return 2;
	}
	*where = oci_ref_string(ref);
	memset(o, 0, sizeof(*o));
	o->ca_file = *ctx->vm.conf.registry_ca ? ctx->vm.conf.registry_ca : NULL;
	o->insecure = insecure(&ctx->vm.conf, ref->host);
	o->push = push;
	o->progress = log_progress_cb;
	o->progress_data = bar;
	return 0;
}

int cmd_push(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	char sent[32];
	struct oci_ref ref;
	struct reg_opts o;
	struct oci_pushed p;
	struct log_progress bar;
	char *where = NULL;
	int r = registry_ref(ctx, argv[0], true, &ref, &o, &bar, &where);

	if (r)
		return r;
	if (ref.digest) {
		log_error("@push names a tag, not a digest: %s", argv[0]);
		r = 2;
		goto out;
	}
	if (ctx->vm.dry_run) {
		say_dry(ctx, "push %s and its chain to %s over %s", argc > 1 ?
			argv[1] : "LAST", where, o.insecure ? "HTTP" : "HTTPS");
		r = 0;
		goto out;
	}
	log_progress_start(&bar, "push %s", where);
	r = oci_push(&ctx->vm, argc > 1 ? argv[1] : NULL, &ref, &o, &p, &err);
	log_progress_end(&bar, !r);
	if (r) {
		log_error("cannot push to %s: %s", where, err.buf);
		r = r == -EINTR ? 128 + proc_interrupted() : 1;
		goto out;
	}
	log_size(sent, sizeof(sent), p.bytes);
	log_info("pushed %s (%s): %d snapshot%s, %d sent (%s), %d mounted, %d already there",
		 where, p.digest, p.layers, p.layers == 1 ? "" : "s",
		 p.uploaded, sent, p.mounted,
		 p.layers - p.uploaded - p.mounted);
	report_set_str(ctx->result, "ref", where);
	report_set_str(ctx->result, "digest", p.digest);
	report_set_int(ctx->result, "layers", p.layers);
	report_set_int(ctx->result, "uploaded", p.uploaded);
	report_set_int(ctx->result, "mounted", p.mounted);
	report_set_int(ctx->result, "sent", (int64_t)p.bytes);
	report_set_int(ctx->result, "size", (int64_t)p.size);
out:
	free(where);
	oci_ref_release(&ref);
	strbuf_release(&err);
	return r;
}
