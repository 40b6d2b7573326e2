/*
 * @console: the VM's serial console on this terminal (raw, Ctrl-]
 * detaches), shared with whoever else is attached.  Without a terminal:
 * standard input goes in, output comes out, until the VM stops or -t.
 */
#include "vm.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "qemu/runstate.h"

#define DETACH 0x1d	/* Ctrl-] */
/* vm serves the console to many: a full backlog is a brief one */
#define CONNECT_TIMEOUT_MS 5000

static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1 when the user detached, 0 when the console closed, -ETIMEDOUT. */
static int relay(int sock, bool tty, unsigned timeout_s)
{
	long long deadline = timeout_s ?
		proc_now_ms() + (long long)timeout_s * 1000 : -1;
	bool in_open = true;

	for (;;) {
		struct pollfd p[2] = { { sock, POLLIN, 0 }, { 0, POLLIN, 0 } };
		long long left = deadline < 0 ? 500 : deadline - proc_now_ms();
		char buf[4096];
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (proc_interrupted())
			return -EINTR;
		if (poll(p, in_open ? 2 : 1, left > 500 ? 500 : (int)left) <= 0)
			continue;
		if (p[0].revents) {
			n = read(sock, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0;
			if (write_all(1, buf, (size_t)n) < 0)
				return 0;
		}
		if (in_open && p[1].revents) {
			char *esc;

			n = read(0, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* no more input; output goes on */
				in_open = false;
				continue;
			}
			esc = tty ? memchr(buf, DETACH, (size_t)n) : NULL;
			if (write_all(sock, buf,
				      esc ? (size_t)(esc - buf) : (size_t)n) < 0)
				return 0;
			if (esc)
				return 1;
		}
	}
}

int cmd_console(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct termios saved, raw;
	struct runstate rs;
	bool tty = isatty(0) && isatty(1);
	int fd, r, ret = 1;

	(void)argc;
	(void)argv;
	r = runstate_running(ctx->vm.hostdir, &rs, &err);
	if (r <= 0) {
		log_error("cannot attach to the console of %s: %s",
			  ctx->vm.conf.name, r < 0 ? err.buf : "it is not running");
		strbuf_release(&err);
		return 1;
	}
	fd = fs_unix_connect(rs.console, CONNECT_TIMEOUT_MS);
	if (fd < 0) {
		log_error("cannot attach to the console of %s: %s",
			  ctx->vm.conf.name,
			  fd == -EACCES ? "permission denied (only its owner, or the control_group, may)" :
			  strerror(-fd));
		goto out;
	}
	if (tty && tcgetattr(0, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
		fprintf(stderr, "vm: attached to the console of %s; Ctrl-] detaches\r\n",
			ctx->vm.conf.name);
	} else {
		tty = false;
	}
	r = relay(fd, tty, ctx->vm.conf.timeout);
	if (tty) {
		tcsetattr(0, TCSANOW, &saved);
		fprintf(stderr, "\r\n");
	}
	close(fd);
	if (r == 0)
		log_info("the console of %s closed: it stopped", ctx->vm.conf.name);
	else if (r == 1)
		log_info("detached from the console of %s", ctx->vm.conf.name);
	ret = r == -EINTR ? 128 + proc_interrupted() : 0;
out:
	runstate_release(&rs);
	strbuf_release(&err);
	return ret;
}
