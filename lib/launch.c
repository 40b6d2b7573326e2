#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "proc.h"

int launch_resolve_accel(struct vm_ctx *ctx, struct strbuf *note)
{
	char *bin;
	int r;

	if (ctx->accel)
		return 0;
	bin = qemu_binary(ctx->conf.arch);
	r = qemu_pick_accel(ctx->conf.accel, bin, ctx->cache_dir, !ctx->dry_run,
			    &ctx->accel, note);
	free(bin);
	return r;
}

int launch_write_script(const struct strvec *argv, const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	int r;

	strbuf_addstr(&sb, "#!/bin/sh\n# The QEMU command vm ran last; "
			   "run it again by hand if you like.\nexec");
	for (i = 0; i < argv->nr; i++) {
		strbuf_addstr(&sb, i && argv->v[i][0] == '-' ? " \\\n    " :
								" ");
		strbuf_add_shquoted(&sb, argv->v[i]);
	}
	strbuf_addstr(&sb, " \"$@\"\n");
	r = fs_write_atomic(path, sb.buf, sb.len, 0755);
	strbuf_release(&sb);
	return r;
}

int launch_spawn(const struct strvec *argv, const char *errlog, pid_t *pid)
{
	struct proc_opts o = PROC_OPTS_INIT;
	int fd, r;

	fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		  O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	o.stdin_fd = -1;
	o.stderr_fd = fd;
	/* Our own process group: a terminal ^C reaches vm, which passes it
	 * on, so QEMU never dies before vm has noticed. */
	o.new_pgrp = true;
	r = proc_spawn(argv->v, &o, pid);
	close(fd);
	if (!r)
		proc_set_foreground(*pid);
	return r;
}

int launch_start(struct vm_ctx *ctx, const struct strvec *argv,
		 const char *prefix, pid_t *pid, char **errlog, char **dry,
		 struct strbuf *err)
{
	char *name, *script;
	int r;

	*errlog = NULL;
	*dry = NULL;
	if (ctx->dry_run) {
		*dry = strvec_join(argv, " ", true);
		return 0;
	}
	name = xasprintf("run-%s.sh", prefix);
	script = vm_work_path(ctx, name);
	free(name);
	/* The script is for people; failing to write it stops nothing. */
	launch_write_script(argv, script);
	free(script);
	name = xasprintf("%s-qemu.log", prefix);
	*errlog = vm_work_path(ctx, name);
	free(name);
	r = launch_spawn(argv, *errlog, pid);
	if (r)
		strbuf_addf(err, "%s: %s", argv->v[0],
			    r == -ENOENT ? "not found (install qemu-system-x86)" :
			    strerror(-r));
	return r;
}

int launch_wait(pid_t pid, unsigned timeout_s)
{
	int st, r;

	r = proc_wait(pid, timeout_s ? (int)timeout_s * 1000 : -1, &st);
	if (r) {
		proc_terminate(pid, 3000);
		return r;
	}
	proc_set_foreground(0);
	return proc_exit_code(st);
}
