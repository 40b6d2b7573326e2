/*
 * One scratch directory per test group: tmpdir, made by
 * scratch_group_setup and removed with everything in it by
 * scratch_group_teardown.  Include after <cmocka.h>.
 */
#ifndef VM_TEST_SCRATCH_H
#define VM_TEST_SCRATCH_H

#include <stdlib.h>

#include "util/fsutil.h"
#include "util/str.h"

static char *tmpdir;

static int scratch_group_setup(void **state)
{
	char tmpl[] = "/tmp/vm-test.XXXXXX";

	(void)state;
	if (!mkdtemp(tmpl))
		return -1;
	tmpdir = xstrdup(tmpl);
	return 0;
}

static int scratch_group_teardown(void **state)
{
	(void)state;
	fs_rm_rf(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
	return 0;
}

#endif
