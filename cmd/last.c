/* @last NAME: point LAST at another snapshot. */
#include "vm.h"

#include <stdio.h>
#include <string.h>

#include "snapshot/backups.h"

int cmd_last(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct backup *list = NULL;
	const struct backup *b;
	int n, ret = 1;

	(void)argc;
	if (backups_writable(&ctx->vm, &err)) {
		log_error("cannot move LAST: %s", err.buf);
		strbuf_release(&err);
		return 1;
	}
	n = backups_list(&ctx->vm, &list);
	if (n < 0) {
		log_error("cannot read %s/backups: %s", ctx->vm.hostdir,
			  strerror(-n));
		return 1;
	}
	b = backups_find(&ctx->vm, list, n, argv[0]);
	if (!b)
		log_error("no snapshot %s (see @snapshots)", argv[0]);
	else if (ctx->vm.dry_run) {
		say_dry(ctx, "ln -sfn %s %s/backups/LAST", b->path,
			ctx->vm.hostdir);
		ret = 0;
	}
	else if (backups_set_last(&ctx->vm, b))
		log_error("cannot move LAST to %s", b->name);
	else {
		log_info("LAST is now %s", b->name);
		report_set_str(ctx->result, "last", b->name);
		ret = 0;
	}
	backups_free(list, n);
	return ret;
}
