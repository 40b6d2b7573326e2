/* @verify [NAME]: check snapshots end to end without restoring them. */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/backups.h"
#include "snapshot/snapshot.h"

/*
 * What was checked so far: a snapshot whose MANIFEST is here was read
 * to its end, every block proven, its parent checked before it.
 */
struct checked {
	struct manifest *m;	/* by index in the list; n = 0: not yet */
	bool *ok, *done;
	char **why;
};

/* Check list[i], its parents first (each once). */
static bool check_one(const struct backup *list, int n, int i,
		      struct checked *c, int depth)
{
	struct strbuf err = STRBUF_INIT;
	struct snap_meta meta;
	struct snap_base base;
	int p = -1, r;

	if (c->done[i])
		return c->ok[i];
	c->done[i] = true;
	if (snap_read_meta(list[i].path, &meta, &err)) {
		strbuf_reset(&err);
		/* snap_apply names the fault */
	}
	{
		const struct backup *up = backups_parent(list, n, meta.parent);

		if (up)
			p = (int)(up - list);
	}
	if (meta.parent && p < 0) {
		strbuf_addf(&err, "its parent %s is not in backups/", meta.parent);
		r = -ENOENT;
	} else if (p >= 0 && (depth > n || !check_one(list, n, p, c, depth + 1))) {
		strbuf_addf(&err, "its parent %s does not check out", meta.parent);
		r = -EINVAL;
	} else {
		if (p >= 0) {
			base.name = list[p].name;
			base.m = &c->m[p];
			manifest_state(&c->m[p], base.state);
		}
		r = snap_apply(list[i].path, NULL, p >= 0 ? &base : NULL,
			       &c->m[i], NULL, 0, NULL, &err);
	}
	c->ok[i] = !r;
	if (r)
		c->why[i] = strbuf_detach(&err);
	snap_meta_release(&meta);
	strbuf_release(&err);
	return c->ok[i];
}

int cmd_verify(struct vm_ctx *ctx, int argc, char **argv)
{
	struct backup *list = NULL;
	struct checked c;
	struct json_object *arr;
	int n, i, bad = 0, want = -1, count = 0;

	n = backups_list(&ctx->vm, &list);
	if (n < 0) {
		log_error("cannot read %s/backups: %s", ctx->vm.hostdir,
			  strerror(-n));
		return 1;
	}
	if (argc) {
		const struct backup *b =
			backups_find(&ctx->vm, list, n, argv[0]);

		if (!b) {
			log_error("cannot verify %s: no such snapshot (see @snapshots)",
				  argv[0]);
			backups_free(list, n);
			return 1;
		}
		want = (int)(b - list);
	}
	c.m = xcalloc((size_t)n + 1, sizeof(*c.m));
	c.ok = xcalloc((size_t)n + 1, sizeof(*c.ok));
	c.done = xcalloc((size_t)n + 1, sizeof(*c.done));
	c.why = xcalloc((size_t)n + 1, sizeof(*c.why));
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *o;

		if (want >= 0 && i != want)
			continue;
		o = json_object_new_object();
		report_set_str(o, "name", list[i].name);
		count++;
		if (list[i].legacy) {
			/* no MANIFEST: every disk's gzip stream and trailer */
			struct strbuf err = STRBUF_INIT;

			if (snap_extract_legacy(list[i].path, NULL, NULL, &err)) {
				c.why[i] = strbuf_detach(&err);
			} else {
				c.ok[i] = c.done[i] = true;
				report_set_str(o, "checked", "gzip streams (no MANIFEST)");
			}
			strbuf_release(&err);
		}
		if (list[i].legacy ? c.ok[i] : check_one(list, n, i, &c, 0)) {
			log_info("%s: ok", list[i].name);
		} else {
			log_error("%s: %s", list[i].name, c.why[i]);
			bad++;
		}
		report_set_bool(o, "ok", c.ok[i]);
		report_set_str(o, "error", c.why[i]);
		json_object_array_add(arr, o);
	}
	report_set(ctx->result, "snapshots", arr);
	if (!n)
		log_info("%s has no snapshots", ctx->vm.hostdir);
	else if (!bad && count)
		log_info("%d snapshot%s checked: every archive reads, every digest holds, every parent is there",
			 count, count == 1 ? "" : "s");
	for (i = 0; i < n; i++) {
		manifest_release(&c.m[i]);
		free(c.why[i]);
	}
	free(c.m);
	free(c.ok);
	free(c.done);
	free(c.why);
	backups_free(list, n);
	return bad ? 1 : 0;
}
