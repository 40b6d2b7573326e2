#include "util/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/close_range.h>
#include <termios.h>
#include <unistd.h>

#include "util/fsutil.h"

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

void proc_set_interrupted(int sig)
{
	if (!interrupted)
		interrupted = sig;
}

int proc_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/*
 * Everything the child needs is prepared before fork: the child of a
 * process that may hold library locks (libcurl, libguestfs) can only make
 * async-signal-safe calls, so it gets a resolved path, a complete
 * environment and open fds, and does nothing but dup2, sigaction,
 * sigprocmask, setpgid, prctl, chdir, close_range/close, execve, _exit.
 * It starts with every signal blocked (proc_spawn) and unblocks them
 * only once each disposition is back to the default.
 */
struct spawn_prep {
	char *path;		/* the executable, resolved in PATH */
	struct strvec env;	/* environ with env_add applied */
	int devnull;		/* for fds that want /dev/null, or -1 */
	int maxfd;		/* highest fd to close without close_range */
};

static bool env_overrides(const char *entry, char *const *add)
{
	const char *eq = strchr(entry, '=');
	size_t len = eq ? (size_t)(eq - entry) : strlen(entry);
	size_t i;

	for (i = 0; add && add[i]; i++)
		if (!strncmp(add[i], entry, len) && add[i][len] == '=')
			return true;
	return false;
}

static int spawn_prepare(char *const argv[], const struct proc_opts *o,
			 struct spawn_prep *sp)
{
	struct rlimit rl;
	size_t i;

	memset(sp, 0, sizeof(*sp));
	sp->env = (struct strvec)STRVEC_INIT;
	sp->devnull = -1;
	if (!argv || !argv[0] || !*argv[0])
		return -EINVAL;
	sp->path = fs_which(o->exe ? o->exe : argv[0]);
	if (!sp->path)
		return -ENOENT;
	for (i = 0; environ && environ[i]; i++)
		if (!env_overrides(environ[i], o->env_add))
			strvec_push(&sp->env, environ[i]);
	for (i = 0; o->env_add && o->env_add[i]; i++)
		strvec_push(&sp->env, o->env_add[i]);
	if (o->stdin_fd == -1 || o->stdout_fd == -1 || o->stderr_fd == -1) {
		sp->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (sp->devnull < 0)
			return -errno;
	}
	sp->maxfd = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (1u << 20))
		sp->maxfd = (int)rl.rlim_cur;
	return 0;
}

static void spawn_release(struct spawn_prep *sp)
{
	free(sp->path);
	strvec_clear(&sp->env);
	if (sp->devnull >= 0)
		close(sp->devnull);
	memset(sp, 0, sizeof(*sp));
	sp->devnull = -1;
}

/* In the child: put want (an fd, -1 for /dev/null) at target. */
static int child_fd(int want, int target, int devnull)
{
	if (want == PROC_INHERIT)
		return 0;
	if (want < 0)
		want = devnull;
	if (want == target)
		return fcntl(want, F_SETFD, 0);
	return dup2(want, target) < 0 ? -1 : 0;
}

/* In the child: no fd above 2 survives exec but errfd until exec. */
static int child_close_fds(int errfd, int maxfd)
{
	int fd;

	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	/* Kernels before 5.11 have no CLOSE_RANGE_CLOEXEC. */
	for (fd = 3; fd < maxfd; fd++)
		if (fd != errfd && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 &&
		    errno != EBADF)
			return -1;
	return 0;
}

static void __attribute__((noreturn))
child_exec(char *const argv[], const struct proc_opts *o,
	   const struct spawn_prep *sp, int errfd, pid_t parent)
{
	struct sigaction sa;
	sigset_t none;
	int sig, e, k;

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
	if (o->new_pgrp && setpgid(0, 0) < 0)
		goto fail;
	if (o->new_session && setsid() < 0)
		goto fail;
	/* Move errfd out of the way of 0-2 before the dup2s. */
	if (errfd <= 2) {
		errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 3);
		if (errfd < 0)
			_exit(127);
	}
	if (child_fd(o->stdin_fd, 0, sp->devnull) < 0 ||
	    child_fd(o->stdout_fd, 1, sp->devnull) < 0 ||
	    child_fd(o->stderr_fd, 2, sp->devnull) < 0)
		goto fail;
	if (child_close_fds(errfd, sp->maxfd) < 0)
		goto fail;
	for (k = 0; k < 2; k++)
		if (o->keep_fds[k] > 2 && fcntl(o->keep_fds[k], F_SETFD, 0) < 0)
			goto fail;
	if (o->cwd && chdir(o->cwd) < 0)
		goto fail;
	if (o->umask >= 0)
		umask((mode_t)o->umask);
	execve(sp->path, argv, sp->env.v);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

int proc_spawn(char *const argv[], const struct proc_opts *o, pid_t *pid)
{
	struct proc_opts def = PROC_OPTS_INIT;
	struct spawn_prep sp;
	sigset_t all, old;
	pid_t parent = getpid(), p;
	int pfd[2] = { -1, -1 }, e = 0, r;
	ssize_t n;

	if (!o)
		o = &def;
	r = spawn_prepare(argv, o, &sp);
	if (r)
		goto out;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	/*
	 * Every signal is blocked across fork(), as git's run-command does:
	 * the child resets the dispositions before it unblocks them, so it
	 * never runs vm's handler (which would pass the signal on to vm's
	 * foreground child, or mark the child as interrupted).  The parent
	 * gets its mask back at once; what arrived meanwhile is delivered.
	 */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	p = fork();
	if (p == 0)
		child_exec(argv, o, &sp, pfd[1], parent);
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (p < 0) {
		r = -e;
		goto out;
	}
	e = 0;
	/* Also here, so the group exists before we may signal it. */
	if (o->new_pgrp && !o->new_session)
		setpgid(p, p);
	close(pfd[1]);
	pfd[1] = -1;
	do {
		n = read(pfd[0], &e, sizeof(e));
	} while (n < 0 && errno == EINTR);
	if (n == sizeof(e)) {
		int st;

		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
		r = -e;
		goto out;
	}
	*pid = p;
	r = 0;
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	spawn_release(&sp);
	return r;
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

/* Whether anything is left in process group pgid. */
static bool group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

/*
 * The leader of group pgid is reaped: the rest of its group gets until
 * deadline to go after the SIGTERM it had, then SIGKILL.
 */
static void end_group_rest(pid_t pgid, long long deadline)
{
	while (group_alive(pgid) && proc_now_ms() < deadline) {
		struct timespec ts = { 0, 20 * 1000000L };

		nanosleep(&ts, NULL);
	}
	/* an empty group's id may be anyone's again: leave it alone */
	if (group_alive(pgid))
		kill(-pgid, SIGKILL);
}

void proc_terminate(pid_t pid, int grace_ms)
{
	sig_atomic_t saved = interrupted;
	long long deadline = proc_now_ms() + grace_ms;
	bool group;
	int st;

	if (pid <= 0)
		return;
	/*
	 * A child that leads its own group (new_pgrp, new_session) takes
	 * its group with it: a script's sleep must not outlive its bash.
	 */
	group = getpgid(pid) == pid;
	kill(group ? -pid : pid, SIGTERM);
	/* Wait even if vm was interrupted: the child must be reaped. */
	interrupted = 0;
	if (proc_wait(pid, grace_ms, &st) == 0) {
		/* The leader is gone; the rest of its group gets the grace. */
		if (group)
			end_group_rest(pid, deadline);
	} else {
		kill(group ? -pid : pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (saved)
		interrupted = saved;
	if (foreground == pid || foreground == -pid)
		foreground = 0;
}

void proc_kill_group(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (foreground == pid || foreground == -pid)
		foreground = 0;
}

/*
 * A child in a group of its own that uses the terminal (a password
 * prompt, read </dev/tty) would be stopped by SIGTTIN: while it runs, its
 * group is the terminal's foreground, as a shell's job is.  Only when we
 * are the foreground ourselves.  Returns the terminal's fd, or -1.
 */
static int give_terminal(pid_t pgrp)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -1;
	if (tcgetpgrp(fd) != getpgrp() || tcsetpgrp(fd, pgrp) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void take_terminal_back(int fd)
{
	sigset_t ttou, old;

	if (fd < 0)
		return;
	/* from the background, tcsetpgrp() would stop us with SIGTTOU */
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	tcsetpgrp(fd, getpgrp());
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(fd);
}

int proc_run(char *const argv[], const struct proc_opts *o, int timeout_ms)
{
	bool group = o && o->new_pgrp && !o->new_session;
	pid_t pid;
	int r, st, tty = -1;

	r = proc_spawn(argv, o, &pid);
	if (r)
		return r;
	/* A child in its own group gets our signals with its group. */
	proc_set_foreground(group ? -pid : pid);
	if (group)
		tty = give_terminal(pid);
	r = proc_wait(pid, timeout_ms, &st);
	take_terminal_back(tty);
	proc_set_foreground(0);
	if (r) {
		proc_terminate(pid, PROC_GRACE_MS);
		return r;
	}
	/* Ctrl-C went to the child's group, not to us: it is ours too. */
	if (!interrupted && tty >= 0 && WIFSIGNALED(st) &&
	    (WTERMSIG(st) == SIGINT || WTERMSIG(st) == SIGQUIT))
		interrupted = SIGINT;
	/*
	 * A signal to vm that ended the child before vm saw it: the child's
	 * "killed by SIGTERM" is vm's interrupt, not the script's failure.
	 * The signal reached the whole group and its leader went at once:
	 * what ignored it ends as on a timeout.
	 */
	if (interrupted) {
		if (group)
			end_group_rest(pid, proc_now_ms() + PROC_GRACE_MS);
		return -EINTR;
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
	return proc_capture_max(argv, o, timeout_ms, 1u << 20, out);
}

int proc_capture_max(char *const argv[], const struct proc_opts *o,
		     int timeout_ms, size_t max, struct strbuf *out)
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
	r = proc_read_until(pfd[0], deadline, max, out);
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

void proc_each_cmdline(int (*fn)(pid_t pid, const char *cmdline, void *data),
		       void *data)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int stop = 0;

	while (d && !stop && (e = readdir(d))) {
		struct strbuf sb = STRBUF_INIT;
		uint64_t pid;
		char *p;
		size_t i;

		if (parse_uint(e->d_name, 1, INT32_MAX, &pid))
			continue;
		p = xasprintf("/proc/%s/cmdline", e->d_name);
		if (!fs_read_file(p, 1u << 20, &sb) && sb.len) {
			for (i = 0; i < sb.len; i++)
				if (!sb.buf[i])
					sb.buf[i] = ' ';
			stop = fn((pid_t)pid, sb.buf, data);
		}
		strbuf_release(&sb);
		free(p);
	}
	if (d)
		closedir(d);
}

int proc_lock_file(const char *path, long long deadline)
{
	for (;;) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			      0600);
		struct stat held, now;
		int r = 0;

		if (fd < 0)
			return -errno;
		while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK && errno != EINTR)
				r = -errno;
			else if (!deadline)
				r = -EBUSY;
			else if (proc_interrupted())
				r = -EINTR;
			else if (proc_now_ms() >= deadline)
				r = -ETIMEDOUT;
			if (r) {
				close(fd);
				return r;
			}
			usleep(100 * 1000);
		}
		/* the holder before us may have removed the file it held
		 * (proc_unlock_file): then ours is a lock on nothing */
		if (fstat(fd, &held) < 0 || lstat(path, &now) < 0) {
			r = errno == ENOENT ? 0 : -errno;
			close(fd);
			if (r)
				return r;
			continue;	/* removed: open it again */
		}
		if (held.st_nlink && held.st_dev == now.st_dev &&
		    held.st_ino == now.st_ino)
			return fd;
		close(fd);
	}
}

void proc_unlock_file(const char *path, int fd)
{
	if (fd < 0)
		return;
	unlink(path);
	close(fd);
}
