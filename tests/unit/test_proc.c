/*
 * Unit tests for lib/proc: a child in its own process group ends with
 * its whole group on a timeout, also members that ignore SIGTERM; and
 * on a signal to vm, also when the group's leader went before vm saw it;
 * a child starts with default signals and never runs vm's handler.
 * A lock file removed by its holder leaves no file and no second
 * holder: who waited on the removed file takes the new one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/proc.h"
#include "scratch.h"

/* The pid bash wrote into path. */
static pid_t read_pid(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	uint64_t v = 0;

	assert_int_equal(fs_read_file(path, 64, &sb), 0);
	strbuf_trim_trailing(&sb);
	assert_int_equal(parse_uint(sb.buf, 1, 1u << 30, &v), 0);
	strbuf_release(&sb);
	return (pid_t)v;
}

/* Whether pid has ended: no such process, or a zombie init has not reaped. */
static bool gone(pid_t pid)
{
	char *path = xasprintf("/proc/%d/stat", (int)pid);
	struct strbuf sb = STRBUF_INIT;
	const char *paren;
	bool r = true;

	if (fs_read_file(path, 4096, &sb) == 0 &&
	    (paren = strrchr(sb.buf, ')')) && paren[1] == ' ')
		r = paren[2] == 'Z' || paren[2] == 'X';
	strbuf_release(&sb);
	free(path);
	return r;
}

/* Wait up to 2 s for pid to end; whether it did. */
static bool ends(pid_t pid)
{
	int i;

	for (i = 0; i < 100 && !gone(pid); i++)
		usleep(20000);
	return gone(pid);
}

static void group_ends(const char *bg, bool new_pgrp)
{
	char *pidfile = xasprintf("%s/bg.pid", tmpdir);
	char *script = xasprintf("%s & echo $! >%s; sleep 300", bg, pidfile);
	char bash[] = "bash", c[] = "-c";
	char *const argv[] = { bash, c, script, NULL };
	struct proc_opts o = PROC_OPTS_INIT;
	long long t0 = proc_now_ms();
	pid_t pid;

	unlink(pidfile);
	o.stdin_fd = -1;
	o.new_pgrp = new_pgrp;
	assert_int_equal(proc_run(argv, &o, 500), -ETIMEDOUT);
	pid = read_pid(pidfile);
	if (new_pgrp) {
		assert_true(ends(pid));
		assert_true(proc_now_ms() - t0 < 500 + PROC_GRACE_MS + 2500);
	} else {
		/* without a group of its own the background child stays */
		assert_false(gone(pid));
		kill(pid, SIGKILL);
	}
	free(script);
	free(pidfile);
}

static void test_timeout_ends_group(void **state)
{
	(void)state;
	group_ends("sleep 300", true);
}

static void test_timeout_kills_what_ignores_term(void **state)
{
	(void)state;
	group_ends("(trap '' TERM; sleep 300)", true);
}

static void test_no_group_no_reach(void **state)
{
	(void)state;
	group_ends("sleep 300", false);
}

/*
 * vm gets SIGTERM while the child runs; its handler passes it to the
 * child's group.  The leader ignores it and exits at once, so vm may reap
 * it before it sees the signal (the race a CI run lost): either way the
 * member that ignores SIGTERM is gone within the grace.
 */
static void test_signal_ends_group_when_leader_went_first(void **state)
{
	char *pidfile = xasprintf("%s/bg.pid", tmpdir);
	char *script = xasprintf("trap '' TERM; (trap '' TERM; sleep 300) & "
				 "echo $! >%s; kill -TERM $PPID; exit 0",
				 pidfile);
	char bash[] = "bash", c[] = "-c";
	char *const argv[] = { bash, c, script, NULL };
	int round, st;

	(void)state;
	/* a vm of its own each round: an interrupt is for good */
	for (round = 0; round < 6; round++) {
		pid_t vm, bg;

		unlink(pidfile);
		vm = fork();
		assert_true(vm >= 0);
		if (vm == 0) {
			struct proc_opts o = PROC_OPTS_INIT;

			proc_signals_init();
			o.stdin_fd = -1;
			o.new_pgrp = true;
			_exit(proc_run(argv, &o, 30000) == -EINTR ? 0 : 1);
		}
		assert_int_equal(waitpid(vm, &st, 0), vm);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
		bg = read_pid(pidfile);
		assert_true(ends(bg));
	}
	free(script);
	free(pidfile);
}

/* In a process of its own (a "vm"): exit 0 when check() returned 0. */
static void in_child(int (*check)(void))
{
	pid_t p = fork();
	int st;

	assert_true(p >= 0);
	if (p == 0)
		_exit(check());
	assert_int_equal(waitpid(p, &st, 0), p);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/*
 * The signals set in /proc/PID/status line "NAME:\tHEX" of text, but 32
 * and 33: glibc keeps those for itself (its sigaction refuses them), so
 * what the parent of vm set there (GNU make ignores them) stays.
 */
static unsigned long long sig_line(const char *text, const char *name)
{
	const char *at = strstr(text, name);
	unsigned long long v = ~0ULL;

	if (!at || sscanf(at + strlen(name), ":\t%llx", &v) != 1)
		return ~0ULL;
	return v & ~((1ULL << 31) | (1ULL << 32));
}

/*
 * A child starts with every signal unblocked, none ignored and none
 * caught, while vm ignores SIGPIPE, catches SIGINT/TERM/HUP and has
 * SIGUSR2 blocked; vm's own mask is as it was after the spawn.
 */
static int child_signals(void)
{
	struct proc_opts o = PROC_OPTS_INIT;
	struct strbuf out = STRBUF_INIT;
	char cat[] = "cat", status[] = "/proc/self/status";
	char *const argv[] = { cat, status, NULL };
	sigset_t usr2, now;

	proc_signals_init();
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	if (proc_capture(argv, &o, 10000, &out) != 0)
		return 1;
	if (sig_line(out.buf, "\nSigBlk") != 0)
		return 2;
	if (sig_line(out.buf, "\nSigIgn") != 0)
		return 3;
	if (sig_line(out.buf, "\nSigCgt") != 0)
		return 4;
	sigprocmask(SIG_SETMASK, NULL, &now);
	if (!sigismember(&now, SIGUSR2) || sigismember(&now, SIGINT))
		return 5;
	strbuf_release(&out);
	return 0;
}

static void test_child_signals_reset(void **state)
{
	(void)state;
	in_child(child_signals);
}

static pid_t vm_pid;
static int ran_in_child = -1;	/* write end: pids that ran the handler */

static void on_usr1(int sig)
{
	pid_t me = getpid();

	(void)sig;
	if (me != vm_pid && write(ran_in_child, &me, sizeof(me)) < 0)
		_exit(99);
}

/*
 * While signals rain on vm and its children, no child runs vm's handler
 * between fork() and exec() (signals are blocked across fork).
 */
static int no_handler_in_child(void)
{
	char t[] = "true";
	char *const argv[] = { t, NULL };
	struct sigaction sa;
	pid_t rain;
	int pfd[2], i, hits = 0;

	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0 || setpgid(0, 0) < 0)
		return 1;
	vm_pid = getpid();
	ran_in_child = pfd[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	rain = fork();
	if (rain == 0) {
		/* the rain is in the group too: it must not count itself */
		signal(SIGUSR1, SIG_IGN);
		for (;;)
			kill(-vm_pid, SIGUSR1);
	}
	for (i = 0; i < 60; i++) {
		struct proc_opts o = PROC_OPTS_INIT;

		o.die_with_parent = false;
		/* true may well die of the rain after its exec: no matter */
		proc_run(argv, &o, 10000);
	}
	kill(rain, SIGKILL);
	waitpid(rain, NULL, 0);
	while (read(pfd[0], &rain, sizeof(rain)) == sizeof(rain))
		hits++;
	return hits ? 2 : 0;
}

static void test_no_handler_in_child(void **state)
{
	(void)state;
	in_child(no_handler_in_child);
}

/* Whether pid has path open. */
static bool holds_open(pid_t pid, const char *path)
{
	char *dir = xasprintf("/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	struct dirent *e;
	bool yes = false;

	while (d && !yes && (e = readdir(d))) {
		char *l = xasprintf("%s/%s", dir, e->d_name), to[4096];
		ssize_t n = readlink(l, to, sizeof(to) - 1);

		if (n > 0) {
			to[n] = '\0';
			yes = !strcmp(to, path);
		}
		free(l);
	}
	if (d)
		closedir(d);
	free(dir);
	return yes;
}

/*
 * The holder removes its lock file while a child waits on it: the
 * child ends up holding the file now at the path, so a third taker is
 * refused (with the old file's lock it would get a second lock).
 */
static void test_lock_file_removed_while_waited(void **state)
{
	char *p = xasprintf("%s/entry.lock", tmpdir);
	int fd = proc_lock_file(p, 0), go[2], st;
	pid_t pid;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(proc_lock_file(p, 0), -EBUSY);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int c;
		struct stat a, b;
		char x;

		close(fd);	/* the parent's lock, which a fork shares */
		close(go[1]);
		c = proc_lock_file(p, proc_now_ms() + 5000);
		if (c < 0 || fstat(c, &a) < 0 || stat(p, &b) < 0 ||
		    a.st_ino != b.st_ino)
			_exit(1);
		/* hold it until the parent has tried */
		_exit(read(go[0], &x, 1) == 0 ? 0 : 2);
	}
	close(go[0]);
	/* the child has opened p (the file we hold) and waits */
	for (int i = 0; i < 250 && !holds_open(pid, p); i++)
		usleep(20 * 1000);
	assert_true(holds_open(pid, p));
	proc_unlock_file(p, fd);
	fd = -1;
	for (int i = 0; i < 50 && access(p, F_OK) < 0; i++)
		usleep(20 * 1000);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(proc_lock_file(p, 0), -EBUSY);
	close(go[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	fd = proc_lock_file(p, 0);
	assert_true(fd >= 0);
	proc_unlock_file(p, fd);
	assert_int_equal(access(p, F_OK), -1);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeout_ends_group),
		cmocka_unit_test(test_timeout_kills_what_ignores_term),
		cmocka_unit_test(test_no_group_no_reach),
		cmocka_unit_test(test_signal_ends_group_when_leader_went_first),
		cmocka_unit_test(test_child_signals_reset),
		cmocka_unit_test(test_no_handler_in_child),
		cmocka_unit_test(test_lock_file_removed_while_waited),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
