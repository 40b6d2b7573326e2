/*
 * Unit tests for lib/qemu/bitmap and image: which runs of a qcow2 file
 * a dirty bitmap vouches for (qemu-img map and the bitmap's marks, as
 * QEMU 7.2 gives them), and what qemu-img info says of bitmaps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "qemu/bitmap.h"
#include "qemu/image.h"

#define K (1ull << 10)
#define M (1ull << 20)

/* qemu-img map of a disk with a base: data here, zeros, its base's */
static const char map_json[] =
	"[{ \"start\": 0, \"length\": 4194304, \"depth\": 1, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 327680},\n"
	"{ \"start\": 4194304, \"length\": 2097152, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 1048576},\n"
	"{ \"start\": 6291456, \"length\": 65536, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false, \"offset\": 9000000},\n"
	"{ \"start\": 6356992, \"length\": 65536, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"compressed\": true},\n"
	"{ \"start\": 8388608, \"length\": 1048576, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 196608}]\n";

static void test_map_keeps_only_this_files_data(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct image_extent *e;
	size_t n;

	(void)state;
	assert_int_equal(image_map_parse(map_json, &e, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e[0].start, 4 * M);
	assert_int_equal(e[0].len, 2 * M);
	assert_int_equal(e[0].offset, 1 * M);
	assert_int_equal(e[1].start, 8 * M);
	assert_int_equal(e[1].offset, 192 * K);
	free(e);
	assert_int_equal(image_map_parse("{}", &e, &n, &err), -22);
	assert_non_null(strstr(err.buf, "no JSON list"));
	strbuf_release(&err);
}

static void test_clean_is_data_less_marks_in_file_order(void **state)
{
	/* guest 4M..6M at file 1M; guest 8M..9M at file 192K */
	const struct image_extent map[] = { { 4 * M, 2 * M, 1 * M },
					    { 8 * M, 1 * M, 192 * K } };
	/* marks: one before all, one inside the first, one spanning the
	 * end of the first, one covering the second whole */
	const struct range dirty[] = { { 0, 64 * K },
				       { 4 * M + 128 * K, 64 * K },
				       { 6 * M - 64 * K, 128 * K },
				       { 8 * M, 1 * M } };
	struct range *c;
	size_t n;

	(void)state;
	c = bitmap_clean(map, 2, dirty, 4, &n);
	assert_int_equal(n, 2);
	assert_int_equal(c[0].off, 1 * M);
	assert_int_equal(c[0].len, 128 * K);
	assert_int_equal(c[1].off, 1 * M + 192 * K);
	assert_int_equal(c[1].len, 2 * M - 192 * K - 64 * K);
	free(c);
	/* no marks: every data run, adjacent in the file merged */
	{
		const struct image_extent two[] = { { 0, 64 * K, 128 * K },
						    { 1 * M, 64 * K, 192 * K } };

		c = bitmap_clean(two, 2, NULL, 0, &n);
		assert_int_equal(n, 1);
		assert_int_equal(c[0].off, 128 * K);
		assert_int_equal(c[0].len, 128 * K);
		free(c);
	}
}

static const char info_json[] =
	"{ \"virtual-size\": 268435456, \"filename\": \"d.qcow2\", \"format\": \"qcow2\","
	" \"format-specific\": { \"type\": \"qcow2\", \"data\": { \"compat\": \"1.1\","
	" \"bitmaps\": [ { \"flags\": [ \"auto\" ], \"name\": \"vm-aa\", \"granularity\": 65536 },"
	" { \"flags\": [ \"in-use\", \"auto\" ], \"name\": \"vm-bb\", \"granularity\": 65536 },"
	" { \"flags\": [ ], \"name\": \"vm-cc\", \"granularity\": 65536 } ] } } }";

static void test_which_bitmap_serves(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct image_info info;
	char *name;

	(void)state;
	assert_int_equal(image_info_parse(info_json, &info, &err), 0);
	assert_int_equal(info.nbitmaps, 3);
	assert_null(bitmap_unusable(&info, "vm-aa"));
	assert_non_null(strstr(bitmap_unusable(&info, "vm-bb"), "not saved"));
	assert_non_null(strstr(bitmap_unusable(&info, "vm-cc"), "stopped"));
	assert_non_null(strstr(bitmap_unusable(&info, "vm-dd"), "no bitmap"));
	free(info.format);
	info.format = strdup("raw");
	assert_non_null(strstr(bitmap_unusable(&info, "vm-aa"), "raw"));
	image_info_release(&info);
	name = bitmap_name("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_string_equal(name, "vm-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	free(name);
	strbuf_release(&err);
}

static void test_alone_names_no_backing(void **state)
{
	char *s = image_qcow2_alone("/srv/vm/a \"b\",c/disk-0.img");

	(void)state;
	assert_string_equal(s, "json:{\"driver\":\"qcow2\",\"backing\":null,"
			       "\"file\":{\"driver\":\"file\",\"filename\":"
			       "\"/srv/vm/a \\\"b\\\",c/disk-0.img\"}}");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_keeps_only_this_files_data),
		cmocka_unit_test(test_clean_is_data_less_marks_in_file_order),
		cmocka_unit_test(test_which_bitmap_serves),
		cmocka_unit_test(test_alone_names_no_backing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
