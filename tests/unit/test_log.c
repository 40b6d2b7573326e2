#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/log.h"

#define MiB (1024ULL * 1024)

static void test_format_fresh(void **state)
{
	char buf[160];

	(void)state;
	log_progress_format(buf, sizeof(buf), "ISO", 50 * MiB, 0, 100 * MiB,
			    5000, true);
	assert_string_equal(buf,
			    "ISO  50%  50.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:05");
}

/* A resumed download: what was there before is no speed. */
static void test_format_resumed(void **state)
{
	char buf[160];

	(void)state;
	log_progress_format(buf, sizeof(buf), "ISO", 90 * MiB, 80 * MiB,
			    100 * MiB, 1000, true);
	assert_string_equal(buf,
			    "ISO  90%  90.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:01");
}

static void test_format_no_total(void **state)
{
	char buf[160];

	(void)state;
	log_progress_format(buf, sizeof(buf), "ISO", 3 * MiB, 0, 0, 1000,
			    true);
	assert_string_equal(buf, "ISO 3.0 MiB  3.0 MiB/s");
	log_progress_format(buf, sizeof(buf), "x", 0, 0, 10, 0, true);
	assert_string_equal(buf, "x   0%  0 B / 10 B  0 B/s");
}

/* --json's "error" is the step's last log_error line, whole. */
static void test_last_error(void **state)
{
	char big[3000];

	(void)state;
	log_clear_error();
	assert_null(log_last_error());
	log_error("first %d", 1);
	log_error("second %s", "one");
	assert_string_equal(log_last_error(), "second one");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_error("%s", big);
	assert_int_equal(strlen(log_last_error()), sizeof(big) - 1);
	log_clear_error();
	assert_null(log_last_error());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_fresh),
		cmocka_unit_test(test_format_resumed),
		cmocka_unit_test(test_format_no_total),
		cmocka_unit_test(test_last_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
