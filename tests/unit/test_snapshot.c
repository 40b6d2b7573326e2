/*
 * lib/snapshot: the one rule for disk file names (what @backup stores and
 * @restore accepts), and a round trip through snap_write / snap_extract
 * with the faults that must be named: not gzip, damaged, empty.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/fsutil.h"
#include "snapshot/snapshot.h"
#include "util/str.h"

static void test_disk_names(void **state)
{
	static const char *const bad[] = {
		"disk-.img", "disk-00.img", "disk-007.img", "disk-01.img",
		"disk-16.img", "disk-99.img", "disk-+1.img", "disk- 1.img",
		"disk-1.img.gz", "disk-1.imgx", "disk-1", "disk-a.img",
		"Disk-1.img", "disk-1.IMG", "disk--1.img", "disk-1x.img",
		"disk-4294967296.img", "", "disk-", NULL,
	};
	size_t i;

	(void)state;
	assert_int_equal(snap_disk_index("disk-0.img"), 0);
	assert_int_equal(snap_disk_index("disk-9.img"), 9);
	assert_int_equal(snap_disk_index("disk-10.img"), 10);
	assert_int_equal(snap_disk_index("disk-15.img"), SNAP_MAX_DISKS - 1);
	for (i = 0; bad[i]; i++) {
		if (snap_disk_index(bad[i]) != -1)
			fail_msg("%s taken as a disk name", bad[i]);
	}
	/* image-N.img follows the same rules, and neither takes the other */
	assert_int_equal(snap_image_index("image-0.img"), 0);
	assert_int_equal(snap_image_index("image-15.img"), SNAP_MAX_DISKS - 1);
	assert_int_equal(snap_image_index("image-16.img"), -1);
	assert_int_equal(snap_image_index("image-01.img"), -1);
	assert_int_equal(snap_image_index("image-.img"), -1);
	assert_int_equal(snap_image_index("image-1.img.gz"), -1);
	assert_int_equal(snap_image_index("disk-1.img"), -1);
	assert_int_equal(snap_disk_index("image-1.img"), -1);
}

/* A scratch directory with one small file, and its snapshot. */
struct scratch {
	char dir[64];
	char *file, *snap, *out;
};

static void make_scratch(struct scratch *s)
{
	struct strbuf err = STRBUF_INIT;
	struct snap_file f;
	FILE *fp;
	int i;

	snprintf(s->dir, sizeof(s->dir), "/tmp/test_snapshot.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	s->file = xasprintf("%s/disk", s->dir);
	s->snap = xasprintf("%s/s.tar.gz", s->dir);
	s->out = xasprintf("%s/out", s->dir);
	fp = fopen(s->file, "w");
	assert_non_null(fp);
	for (i = 0; i < 20000; i++)
		fprintf(fp, "%d\n", i * 7919);
	fclose(fp);
	f.name = "disk-0.img";
	f.path = s->file;
	assert_int_equal(snap_write(s->snap, &f, 1, "d", 1, NULL, 6, NULL,
				    &err), 0);
	/* never over an existing file */
	assert_int_equal(snap_write(s->snap, &f, 1, "d", 1, NULL, 6, NULL,
				    &err), -EEXIST);
	strbuf_release(&err);
}

static void free_scratch(struct scratch *s)
{
	fs_rm_rf(s->dir);
	free(s->file);
	free(s->snap);
	free(s->out);
}

/* Extract s->snap into a fresh s->out; returns the error text. */
static int extract(struct scratch *s, struct strbuf *err)
{
	fs_rm_rf(s->out);
	assert_int_equal(mkdir(s->out, 0700), 0);
	strbuf_reset(err);
	return snap_extract(s->snap, s->out, NULL, err);
}

static void test_faults_are_named(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct scratch s;
	FILE *fp;
	long size;
	int c;

	(void)state;
	make_scratch(&s);
	assert_int_equal(extract(&s, &err), 0);
	/* a byte in the middle of the deflate data */
	fp = fopen(s.snap, "r+b");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	fseek(fp, size / 2, SEEK_SET);
	c = fgetc(fp);
	fseek(fp, size / 2, SEEK_SET);
	fputc(c ^ 0xff, fp);
	fclose(fp);
	assert_int_not_equal(extract(&s, &err), 0);
	if (!strstr(err.buf, "archive is damaged at byte "))
		fail_msg("damaged: %s", err.buf);
	assert_null(strchr(err.buf, '\n'));
	/* not gzip at all, and empty */
	fp = fopen(s.snap, "w");
	fputs("plain text, not an archive", fp);
	fclose(fp);
	assert_int_equal(extract(&s, &err), -EINVAL);
	assert_string_equal(err.buf, "not a gzip archive");
	fp = fopen(s.snap, "w");
	fclose(fp);
	assert_int_equal(extract(&s, &err), -EINVAL);
	assert_string_equal(err.buf, "not a gzip archive (empty file)");
	strbuf_release(&err);
	free_scratch(&s);
}

static void test_mount_point(void **state)
{
	char *m;

	(void)state;
	m = fs_mount_point("/");
	assert_string_equal(m, "/");
	free(m);
	/* a path that does not exist: its nearest existing parent's */
	m = fs_mount_point("/proc/self/no/such/file");
	assert_string_equal(m, "/proc");
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disk_names),
		cmocka_unit_test(test_faults_are_named),
		cmocka_unit_test(test_mount_point),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
