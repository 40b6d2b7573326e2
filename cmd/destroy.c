/* @destroy: remove the working files; settings and snapshots stay. */
#include "vm.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What vm itself puts in a WORKDIR; nothing else is touched in place. */
static bool is_work_file(const char *name)
{
	static const char *const exact[] = {
		"efivars.bin", "console.log", "console.log.1", "console.sock",
		"qemu-console.sock", "saved-state", "saved-state.disks",
		"vm-qemu.log",
		"qmp.sock", "run-vm.sh", "rescue-console.log",
		"rescue-console.sock", "rescue-qmp.sock", "rescue-qemu.log",
		"run-rescue.sh", "rescue-efivars.bin", ".in", ".out", ".host",
		NULL
	};
	size_t i;

	for (i = 0; exact[i]; i++)
		if (!strcmp(name, exact[i]))
			return true;
	return str_starts_with(name, "disk-") && (str_ends_with(name, ".img") ||
						  str_ends_with(name, ".img.tmp"));
}

static int destroy_inplace(struct vm_ctx *ctx, int *removed)
{
	/* In a dry run: say what would go, one file a line. */
	DIR *d = opendir(ctx->vm.workdir);
	struct dirent *e;
	int r = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char *p;
		int rr;

		if (!is_work_file(e->d_name))
			continue;
		p = vm_work_path(&ctx->vm, e->d_name);
		if (ctx->vm.dry_run) {
			say_dry(ctx, "rm -rf %s", p);
			free(p);
			continue;
		}
		rr = fs_rm_rf(p);
		if (rr && !r)
			r = rr;
		else if (!rr)
			(*removed)++;
		free(p);
	}
	closedir(d);
	return r;
}

int cmd_destroy(struct vm_ctx *ctx, int argc, char **argv)
{
	char *link = vm_host_path(&ctx->vm, ".work");
	int r = 0, removed = 0;

	(void)argc;
	(void)argv;
	if (!ctx->vm.workdir) {
		/* A .work link whose directory is gone (reboot, tmp cleaner). */
		if (fs_is_symlink(link) && !ctx->vm.dry_run)
			unlink(link);
		report_set_bool(ctx->result, "destroyed", false);
		log_info("%s has no working files: nothing to destroy",
			 ctx->vm.conf.name);
		free(link);
		return 0;
	}
	if (ctx->vm.inplace) {
		r = destroy_inplace(ctx, &removed);
		if (ctx->vm.dry_run)
			goto out;
		if (!r) {
			/* gone on purpose: @run may restore LAST */
			char *mark = vm_host_path(&ctx->vm, VM_DESTROYED);

			fs_write_atomic(mark, "", 0, 0644);
			free(mark);
		}
	} else if (ctx->vm.dry_run) {
		say_dry(ctx, "rm -rf %s", ctx->vm.workdir);
		say_dry(ctx, "rm -f %s", link);
		goto out;
	} else {
		r = fs_rm_rf(ctx->vm.workdir);
		if (!r && unlink(link) < 0 && errno != ENOENT)
			r = -errno;
		removed = 1;
	}
	if (r) {
		log_error("cannot destroy %s: %s: %s", ctx->vm.conf.name,
			  ctx->vm.workdir, strerror(-r));
		free(link);
		return 1;
	}
	report_set_bool(ctx->result, "destroyed", true);
	report_set_str(ctx->result, "workdir", ctx->vm.workdir);
	log_info("destroyed the working files of %s (%s)", ctx->vm.conf.name,
		 ctx->vm.workdir);
	free(ctx->vm.workdir);
	ctx->vm.workdir = NULL;
out:
	free(link);
	return 0;
}
