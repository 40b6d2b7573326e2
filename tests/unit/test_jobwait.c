/*
 * Unit tests for lib/jobwait: what a hostile guest can leave in the out
 * share (a 1 TB sparse job.log, a long one, a FIFO, a symlinked or
 * garbage STATUS) is read with bounds.  A `true` stands in for QEMU: it
 * has exited by the time STATUS is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu/jobwait.h"
#include "util/proc.h"
#include "scratch.h"

/* A fresh out directory: STARTED and FINISHED, STATUS as given. */
static char *out_dir(const char *name, const char *status)
{
	char *dir = xasprintf("%s/%s", tmpdir, name);
	char *p;

	assert_int_equal(mkdir(dir, 0700), 0);
	p = xasprintf("%s/STARTED", dir);
	assert_int_equal(fs_write_atomic(p, "1\n", 2, 0600), 0);
	free(p);
	if (status) {
		p = xasprintf("%s/STATUS", dir);
		assert_int_equal(fs_write_atomic(p, status, strlen(status),
						 0600), 0);
		free(p);
	}
	p = xasprintf("%s/FINISHED", dir);
	assert_int_equal(fs_write_atomic(p, "2\n", 2, 0600), 0);
	free(p);
	return dir;
}

/* Run jobwait on dir with a QEMU that has ended; the log goes to *log. */
static void run(const char *dir, uint64_t max, struct strbuf *log,
		struct job_result *res)
{
	char prog[] = "true";
	char *const argv[] = { prog, NULL };
	char *path = xasprintf("%s.stdout", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pid_t pid;
	int st;

	assert_true(fd >= 0);
	assert_int_equal(proc_spawn(argv, NULL, &pid), 0);
	jobwait_run(pid, dir, 10, 10, fd, max, res);
	if (res->qemu_exit < 0)
		assert_int_equal(proc_wait(pid, 5000, &st), 0);
	close(fd);
	strbuf_reset(log);
	assert_int_equal(fs_read_file(path, 1 << 24, log), 0);
	free(path);
}

static void test_sparse_log(void **state)
{
	char *dir = out_dir("sparse", "0\n");
	char *p = xasprintf("%s/job.log", dir);
	struct strbuf log = STRBUF_INIT;
	struct job_result res;
	long long t0 = proc_now_ms();
	struct stat st;
	int fd;

	(void)state;
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	assert_int_equal(ftruncate(fd, 1LL << 40), 0);
	assert_int_equal(pwrite(fd, "late\n", 5, (1LL << 40) - 5), 5);
	close(fd);
	run(dir, 16 << 20, &log, &res);
	assert_int_equal(res.outcome, JOB_DONE);
	assert_int_equal(res.status, 0);
	assert_true(res.log_cut);
	/* the hole is not copied as zeros, nor what lies past the cap */
	assert_string_equal(log.buf, "hello\n");
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size <= 16 << 20);
	assert_true(proc_now_ms() - t0 < 5000);
	strbuf_release(&log);
	free(p);
	free(dir);
}

static void test_long_log(void **state)
{
	char *dir = out_dir("long", "3\n");
	char *p = xasprintf("%s/job.log", dir);
	struct strbuf log = STRBUF_INIT, data = STRBUF_INIT;
	struct job_result res;
	struct stat st;
	int i;

	(void)state;
	for (i = 0; i < 10000; i++)
		strbuf_addf(&data, "line %05d\n", i);
	assert_int_equal(fs_write_atomic(p, data.buf, data.len, 0600), 0);
	run(dir, 4096, &log, &res);
	assert_int_equal(res.outcome, JOB_DONE);
	assert_int_equal(res.status, 3);
	assert_true(res.log_cut);
	assert_int_equal(log.len, 4096);
	assert_memory_equal(log.buf, data.buf, 4096);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 4096);

	/* under the cap: all of it, nothing cut */
	free(dir);
	dir = out_dir("short", "0\n");
	free(p);
	p = xasprintf("%s/job.log", dir);
	assert_int_equal(fs_write_atomic(p, data.buf, 4000, 0600), 0);
	run(dir, 4096, &log, &res);
	assert_int_equal(res.outcome, JOB_DONE);
	assert_false(res.log_cut);
	assert_int_equal(log.len, 4000);
	strbuf_release(&log);
	strbuf_release(&data);
	free(p);
	free(dir);
}

static void test_fifo_log(void **state)
{
	char *dir = out_dir("fifo", "0\n");
	char *p = xasprintf("%s/job.log", dir);
	struct strbuf log = STRBUF_INIT;
	struct job_result res;

	(void)state;
	assert_int_equal(mkfifo(p, 0600), 0);
	run(dir, 16 << 20, &log, &res);
	assert_int_equal(res.outcome, JOB_DONE);
	assert_int_equal(log.len, 0);
	strbuf_release(&log);
	free(p);
	free(dir);
}

static void test_bad_status(void **state)
{
	struct strbuf log = STRBUF_INIT;
	struct job_result res;
	char *dir, *p;

	(void)state;
	dir = out_dir("garbage", "0; rm -rf /\n");
	run(dir, 4096, &log, &res);
	assert_int_equal(res.outcome, JOB_BAD_STATUS);
	assert_int_equal(res.error, -EBADMSG);
	free(dir);

	dir = out_dir("link", NULL);
	p = xasprintf("%s/STATUS", dir);
	assert_int_equal(symlink("/etc/hostname", p), 0);
	run(dir, 4096, &log, &res);
	assert_int_equal(res.outcome, JOB_BAD_STATUS);
	assert_int_equal(res.error, -ELOOP);
	free(p);
	free(dir);

	dir = out_dir("fifo-status", NULL);
	p = xasprintf("%s/STATUS", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	run(dir, 4096, &log, &res);
	assert_int_equal(res.outcome, JOB_BAD_STATUS);
	assert_int_equal(res.error, -EINVAL);
	free(p);
	free(dir);

	/* no STATUS at all, QEMU gone: the rescue died */
	dir = out_dir("none", NULL);
	run(dir, 4096, &log, &res);
	assert_int_equal(res.outcome, JOB_DIED);
	free(dir);
	strbuf_release(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sparse_log),
		cmocka_unit_test(test_long_log),
		cmocka_unit_test(test_fifo_log),
		cmocka_unit_test(test_bad_status),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
