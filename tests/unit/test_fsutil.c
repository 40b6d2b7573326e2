#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scratch.h"

/* A guest's tree in OUTDIR may be deeper than the fds vm may open. */
static void test_rm_rf_deep_tree(void **state)
{
	char *top = xasprintf("%s/deep", tmpdir);
	struct rlimit old, low;
	int fd, i;

	(void)state;
	assert_int_equal(mkdir(top, 0700), 0);
	fd = open(top, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	for (i = 0; i < 3000; i++) {
		int next;

		assert_int_equal(mkdirat(fd, "d", 0700), 0);
		if (i % 500 == 0) {
			int f = openat(fd, "file", O_WRONLY | O_CREAT, 0600);

			assert_true(f >= 0);
			close(f);
			assert_int_equal(mkdirat(fd, ".rm-0", 0700), 0);
		}
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		assert_true(next >= 0);
		close(fd);
		fd = next;
	}
	close(fd);
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(fs_rm_rf(top), 0);
	setrlimit(RLIMIT_NOFILE, &old);
	assert_false(fs_exists(top));
	free(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rm_rf_deep_tree),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
