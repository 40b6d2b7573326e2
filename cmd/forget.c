/* @forget NAME: delete a snapshot; never the one LAST points to. */
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/backups.h"

int cmd_forget(struct vm_ctx *ctx, int argc, char **argv)
{
	struct backup *list = NULL;
	const struct backup *b;
	char *last;
	int n, r, ret = 1;

	(void)argc;
	n = backups_list(ctx, &list);
	if (n < 0) {
		log_error("cannot read %s/backups: %s", ctx->hostdir,
			  strerror(-n));
		return 1;
	}
	b = strcmp(argv[0], "LAST") ? backups_find(ctx, list, n, argv[0]) :
				      NULL;
	last = backups_last(ctx);
	if (!b) {
		log_error("cannot forget %s: no such snapshot (see @snapshots)",
			  argv[0]);
	} else if (last && !strcmp(last, b->name)) {
		log_error("cannot forget %s: LAST points to it (make a newer snapshot, or point LAST elsewhere with @last NAME)",
			  b->name);
	} else if (ctx->dry_run) {
		say_dry(ctx, "rm -rf %s", b->path);
		ret = 0;
	} else {
		r = fs_rm_rf(b->path);
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
