#include "snapshot/gzpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/proc.h"

/* pigz ends at once when its input ends: its last block is in memory. */
#define GZPIPE_WAIT_MS 60000

#define GZPIPE_PIPE (1 << 20)

/* What the program says is kept, not printed: vm reports once. */
#define GZPIPE_SAID_MAX 200

static void gzpipe_close(struct gzpipe *g)
{
	if (g->fd >= 0)
		close(g->fd);
	if (g->src >= 0)
		close(g->src);
	if (g->errfd >= 0)
		close(g->errfd);
	g->fd = g->src = g->errfd = -1;
}

/*
 * Start argv with stdin and stdout as given and stderr into a pipe of
 * ours (read without blocking once the program has ended).
 */
static int gzpipe_spawn(char *const argv[], int in, int out, struct gzpipe *g)
{
	struct proc_opts o = PROC_OPTS_INIT;
	int efd[2], r;

	if (pipe2(efd, O_CLOEXEC) < 0)
		return -errno;
	if (fcntl(efd[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		close(efd[0]);
		close(efd[1]);
		return r;
	}
	o.stdin_fd = in;
	o.stdout_fd = out;
	o.stderr_fd = efd[1];
	r = proc_spawn(argv, &o, &g->pid);
	close(efd[1]);
	if (r) {
		g->pid = 0;
		close(efd[0]);
		return r;
	}
	g->errfd = efd[0];
	return 0;
}

/* The first line the program wrote to stderr, printable, into err. */
static void gzpipe_said(struct gzpipe *g, struct strbuf *err)
{
	char buf[GZPIPE_SAID_MAX + 1];
	ssize_t n = g->errfd >= 0 ? read(g->errfd, buf, GZPIPE_SAID_MAX) : -1;
	ssize_t i;

	if (n <= 0)
		return;
	strbuf_addstr(err, ": ");
	for (i = 0; i < n && buf[i] != '\n'; i++)
		strbuf_addch(err, buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?');
}

/*
 * A pipe of GZPIPE_PIPE bytes, not 64 KiB: far fewer turns between pigz
 * and vm for the same bytes.  Best effort (pipe-max-size may be lower).
 */
static void pipe_wide(int fd)
{
	(void)fcntl(fd, F_SETPIPE_SZ, GZPIPE_PIPE);
}

int gzpipe_inflate(const char *prog, const char *path, struct gzpipe *g)
{
	struct strvec av = STRVEC_INIT;
	int pfd[2], r;

	*g = (struct gzpipe)GZPIPE_INIT;
	g->src = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (g->src < 0)
		return -errno;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r = -errno;
		gzpipe_close(g);
		return r;
	}
	pipe_wide(pfd[0]);
	strvec_pushl(&av, prog, "-d", "-q", NULL);
	/* the file is pigz's stdin: its offset, shared, is pigz's progress */
	r = gzpipe_spawn(av.v, g->src, pfd[1], g);
	strvec_clear(&av);
	close(pfd[1]);
	if (r) {
		close(pfd[0]);
		gzpipe_close(g);
		return r;
	}
	g->fd = pfd[0];
	return 0;
}

int gzpipe_deflate(const char *prog, int level, int out_fd, struct gzpipe *g)
{
	struct strvec av = STRVEC_INIT;
	int pfd[2], r;

	*g = (struct gzpipe)GZPIPE_INIT;
	if (level < 1 || level > 9)
		return -EINVAL;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pipe_wide(pfd[1]);
	strvec_push(&av, prog);
	strvec_pushf(&av, "-%d", level);
	r = gzpipe_spawn(av.v, pfd[0], out_fd, g);
	strvec_clear(&av);
	close(pfd[0]);
	if (r) {
		close(pfd[1]);
		return r;
	}
	g->fd = pfd[1];
	return 0;
}

uint64_t gzpipe_consumed(const struct gzpipe *g)
{
	off_t at = g->src >= 0 ? lseek(g->src, 0, SEEK_CUR) : -1;

	return at > 0 ? (uint64_t)at : 0;
}

/*
 * Inflate: read what pigz still has to give (a tar reader stops at the
 * archive's end marker), so that it reaches the stream's end and checks
 * its trailer instead of dying of SIGPIPE.  Bounded by the wait's deadline.
 */
static void gzpipe_drain(struct gzpipe *g)
{
	long long deadline = proc_now_ms() + GZPIPE_WAIT_MS;
	char buf[1 << 16];

	for (;;) {
		struct pollfd p = { g->fd, POLLIN, 0 };
		long long left = deadline - proc_now_ms();
		ssize_t n;

		if (left <= 0 || proc_interrupted())
			return;
		if (poll(&p, 1, left > 1000 ? 1000 : (int)left) <= 0)
			continue;
		n = read(g->fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

int gzpipe_finish(struct gzpipe *g, struct strbuf *err)
{
	int st = 0, r;

	if (g->fd >= 0 && g->src >= 0 && g->pid)
		gzpipe_drain(g);
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
	if (!g->pid)
		return 0;
	r = proc_wait(g->pid, GZPIPE_WAIT_MS, &st);
	if (r == -ECHILD) {
		/* reaped by someone else: its end is not known */
		g->pid = 0;
		strbuf_addstr(err, "the compressor's end was lost");
		return -EIO;
	}
	if (r) {
		proc_terminate(g->pid, PROC_GRACE_MS);
		g->pid = 0;
		strbuf_addstr(err, r == -EINTR ? "interrupted" :
			      "the compressor did not end");
		return r == -EINTR ? -EINTR : -ETIMEDOUT;
	}
	g->pid = 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		strbuf_addf(err, "the compressor was killed by signal %d",
			    WTERMSIG(st));
	else
		strbuf_addf(err, "the compressor failed (status %d)",
			    WEXITSTATUS(st));
	gzpipe_said(g, err);
	return -EIO;
}

void gzpipe_release(struct gzpipe *g)
{
	gzpipe_close(g);
	if (g->pid)
		proc_terminate(g->pid, PROC_GRACE_MS);
	g->pid = 0;
}
