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
	r = qemu_pick_accel(ctx->conf.accel, bin, ctx->cache_dir, &ctx->accel,
			    note);
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
