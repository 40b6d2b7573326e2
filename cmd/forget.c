/*
 * @forget NAME: delete a snapshot; never the one LAST points to.  The
 * snapshots built on it first take what they need of it (a fold), one
 * by one, each renamed over its old file: interrupted at any point,
 * every snapshot left still restores.
 */
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/backups.h"
#include "snapshot/snapshot.h"

/* The snapshots whose parent is b, into kids (indexes); their count. */
static int children(const struct backup *list, int n, const struct backup *b,
		    int *kids)
{
	int i, k = 0;

	for (i = 0; i < n; i++) {
		struct strbuf err = STRBUF_INIT;
		struct snap_meta m;

		if (list[i].legacy || &list[i] == b)
			continue;
		if (!snap_read_meta(list[i].path, &m, &err) && m.parent &&
		    !strcmp(m.parent, b->name))
			kids[k++] = i;
		snap_meta_release(&m);
		strbuf_release(&err);
	}
	return k;
}

/* Fold b into each of its children; 0, or 1 with the error said. */
static int fold_children(struct vm_ctx *ctx, const struct backup *list,
			 int n, const struct backup *b)
{
	struct strbuf err = STRBUF_INIT;
	int *kids = xcalloc((size_t)n + 1, sizeof(*kids));
	int k = children(list, n, b, kids), i, r = 0;
	char *pigz = k ? fs_which("pigz") : NULL, *dir;

	dir = vm_host_path(&ctx->vm, "backups");
	backups_sweep(dir);
	for (i = 0; i < k && !r; i++) {
		const struct backup *c = &list[kids[i]];

		if (ctx->vm.dry_run) {
			say_dry(ctx, "store %s again with what it needs of %s",
				c->name, b->name);
			continue;
		}
		log_info("%s is built on %s: storing it again with what it needs of %s",
			 c->name, b->name, b->name);
		strbuf_reset(&err);
		r = backups_fold(&ctx->vm, list, n, b, c, pigz ? "pigz" : NULL,
				 (int)ctx->vm.conf.compress_level, &err);
		if (r)
			log_error("cannot forget %s: %s depends on it and could not take what it needs of it: %s",
				  b->name, c->name, err.buf);
	}
	free(dir);
	free(pigz);
	free(kids);
	strbuf_release(&err);
	return r ? 1 : 0;
}

int cmd_forget(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct backup *list = NULL;
	const struct backup *b;
	char *last;
	int n, r, ret = 1;

	(void)argc;
	if (backups_writable(&ctx->vm, &err)) {
		log_error("cannot forget %s: %s", argv[0], err.buf);
		strbuf_release(&err);
		return 1;
	}
	n = backups_list(&ctx->vm, &list);
	if (n < 0) {
		log_error("cannot read %s/backups: %s", ctx->vm.hostdir,
			  strerror(-n));
		return 1;
	}
	b = strcmp(argv[0], "LAST") ? backups_find(&ctx->vm, list, n, argv[0]) :
				      NULL;
	last = backups_last(&ctx->vm);
	if (!b) {
		log_error("cannot forget %s: no such snapshot (see @snapshots)",
			  argv[0]);
	} else if (last && !strcmp(last, b->name)) {
		log_error("cannot forget %s: LAST points to it (make a newer snapshot, or point LAST elsewhere with @last NAME)",
			  b->name);
	} else if (fold_children(ctx, list, n, b)) {
		ret = proc_interrupted() ? 128 + proc_interrupted() : 1;
	} else if (ctx->vm.dry_run) {
		say_dry(ctx, "rm -rf %s", b->path);
		ret = 0;
	} else {
		r = fs_rm_rf(b->path);
		if (!r) {
			char *dir = vm_host_path(&ctx->vm, "backups");

			backups_sweep(dir);	/* and so its MANIFEST's copy */
			free(dir);
		}
		if (r)
			log_error("cannot forget %s: %s", b->name, strerror(-r));
		else
			log_info("forgot snapshot %s", b->name);
		report_set_str(ctx->result, "name", b->name);
		report_set_str(ctx->result, "removed", b->path);
		ret = r ? 1 : 0;
	}
	free(last);
	backups_free(list, n);
	return ret;
}
