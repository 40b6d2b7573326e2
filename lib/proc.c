#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t interrupted;
static volatile pid_t foreground;

long long proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	pid_t fg = foreground;

	if (!interrupted)
		interrupted = sig;
	/* a negative pid is a process group, as for kill(2) */
	if (fg != 0)
		kill(fg, sig == SIGHUP ? SIGTERM : sig);
}

void proc_signals_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void proc_set_foreground(pid_t pid)
{
	foreground = pid;
}

int proc_interrupted(void)
{
	return interrupted;
}

int proc_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

static void child_fd(int want, int target)
{
	int fd;

	if (want == PROC_INHERIT)
		return;
	if (want < 0) {
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0 && fd != target) {
			dup2(fd, target);
			close(fd);
		}
		return;
	}
	if (want == target)
		fcntl(want, F_SETFD, 0);
	else
		dup2(want, target);
}

static void __attribute__((noreturn))
child_exec(char *const argv[], const struct proc_opts *o, int errfd,
	   pid_t parent)
{
	struct sigaction sa;
	sigset_t none;
	int sig, e;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (o->die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
	}
	if (o->new_pgrp)
		setpgid(0, 0);
	/* Move errfd out of the way of 0-2 before the dup2s. */
	if (errfd <= 2) {
		int n = fcntl(errfd, F_DUPFD_CLOEXEC, 3);

		errfd = n;
	}
	child_fd(o->stdin_fd, 0);
	child_fd(o->stdout_fd, 1);
	child_fd(o->stderr_fd, 2);
	syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
	if (o->cwd && chdir(o->cwd) < 0)
		goto fail;
	for (i = 0; o->env_add && o->env_add[i]; i++)
		putenv(o->env_add[i]);
	execvp(argv[0], argv);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

int proc_spawn(char *const argv[], const struct proc_opts *o, pid_t *pid)
{
	struct proc_opts def = PROC_OPTS_INIT;
	pid_t parent = getpid(), p;
	int pfd[2], e = 0;
	ssize_t n;

	if (!o)
		o = &def;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	p = fork();
	if (p < 0) {
		e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -e;
	}
	if (p == 0) {
		close(pfd[0]);
		child_exec(argv, o, pfd[1], parent);
	}
	close(pfd[1]);
	do {
		n = read(pfd[0], &e, sizeof(e));
	} while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(e)) {
		int st;

		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
		return -e;
	}
	*pid = p;
	return 0;
}

int proc_wait(pid_t pid, int timeout_ms, int *status)
{
	long long deadline = timeout_ms < 0 ? -1 : proc_now_ms() + timeout_ms;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int r;

	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		long long left;
		struct pollfd pfd;

		if (w == pid) {
			r = 0;
			break;
		}
		if (w < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (interrupted) {
			r = -EINTR;
			break;
		}
		left = deadline < 0 ? 1000 : deadline - proc_now_ms();
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		if (left > 1000)
			left = 1000;
		if (pidfd >= 0) {
			pfd.fd = pidfd;
			pfd.events = POLLIN;
			poll(&pfd, 1, (int)left);
		} else {
			/* Old kernels: short sleeps, still bounded. */
			struct timespec ts = { 0, 20 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return r;
}

void proc_terminate(pid_t pid, int grace_ms)
{
	int st;
	sig_atomic_t saved = interrupted;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	/* Wait even if vm was interrupted: the child must be reaped. */
	interrupted = 0;
	if (proc_wait(pid, grace_ms, &st) != 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (saved)
		interrupted = saved;
	if (foreground == pid)
		foreground = 0;
}

int proc_run(char *const argv[], const struct proc_opts *o, int timeout_ms)
{
	pid_t pid;
	int r, st;

	r = proc_spawn(argv, o, &pid);
	if (r)
		return r;
	proc_set_foreground(pid);
	r = proc_wait(pid, timeout_ms, &st);
	proc_set_foreground(0);
	if (r) {
		proc_terminate(pid, 2000);
		return r;
	}
	return proc_exit_code(st);
}

int proc_read_until(int fd, long long deadline, size_t max,
		    struct strbuf *out)
{
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - proc_now_ms();
		char buf[4096];
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (interrupted)
			return -EINTR;
		if (poll(&p, 1, left > 500 ? 500 : (int)left) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		if (out->len < max)
			strbuf_add(out, buf, (size_t)n);
	}
}

int proc_capture(char *const argv[], const struct proc_opts *o,
		 int timeout_ms, struct strbuf *out)
{
	struct proc_opts po = PROC_OPTS_INIT;
	long long deadline = proc_now_ms() + timeout_ms;
	int pfd[2], r, st;
	pid_t pid;

	if (o)
		po = *o;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	po.stdout_fd = pfd[1];
	r = proc_spawn(argv, &po, &pid);
	close(pfd[1]);
	if (r) {
		close(pfd[0]);
		return r;
	}
	r = proc_read_until(pfd[0], deadline, 1u << 20, out);
	close(pfd[0]);
	if (r) {
		proc_terminate(pid, 2000);
		return r;
	}
	r = proc_wait(pid, (int)(deadline - proc_now_ms()) > 0 ?
				   (int)(deadline - proc_now_ms()) : 1, &st);
	if (r) {
		proc_terminate(pid, 2000);
		return r;
	}
	return proc_exit_code(st);
}
