/*
 * Unit tests for lib/proc: a child in its own process group ends with
 * its whole group on a timeout, also members that ignore SIGTERM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
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

static void group_ends(const char *bg, bool new_pgrp)
{
	char *pidfile = xasprintf("%s/bg.pid", tmpdir);
	char *script = xasprintf("%s & echo $! >%s; sleep 300", bg, pidfile);
	char bash[] = "bash", c[] = "-c";
	char *const argv[] = { bash, c, script, NULL };
	struct proc_opts o = PROC_OPTS_INIT;
	long long t0 = proc_now_ms();
	pid_t pid;
	int i;

	unlink(pidfile);
	o.stdin_fd = -1;
	o.new_pgrp = new_pgrp;
	assert_int_equal(proc_run(argv, &o, 500), -ETIMEDOUT);
	pid = read_pid(pidfile);
	/* killed, and reaped by init: gone within a moment */
	for (i = 0; i < 100 && kill(pid, 0) == 0; i++)
		usleep(20000);
	if (new_pgrp) {
		assert_int_equal(kill(pid, 0), -1);
		assert_true(proc_now_ms() - t0 < 500 + PROC_GRACE_MS + 2500);
	} else {
		/* without a group of its own the background child stays */
		assert_int_equal(kill(pid, 0), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeout_ends_group),
		cmocka_unit_test(test_timeout_kills_what_ignores_term),
		cmocka_unit_test(test_no_group_no_reach),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
