/* lib/sha256: the FIPS 180-4 test vectors and split updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/sha256.h"
#include "util/str.h"

static void test_vectors(void **state)
{
	char hex[65];

	(void)state;
	assert_int_equal(sha256_hex_of("", 0, hex), 0);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(sha256_hex_of("abc", 3, hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(sha256_hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
				       56, hex), 0);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a_in_odd_pieces(void **state)
{
	struct sha256 s;
	unsigned char buf[997];
	char hex[65];
	size_t left = 1000000;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	assert_int_equal(sha256_init(&s), 0);
	while (left) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);

		sha256_update(&s, buf, n);
		left -= n;
	}
	assert_int_equal(sha256_final_hex(&s, hex), 0);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	sha256_release(&s);	/* harmless after the end */
}

static void test_block_boundaries(void **state)
{
	char one[65], split[65];
	unsigned char data[200];
	struct sha256 s;
	size_t len, cut;

	(void)state;
	for (len = 0; len < sizeof(data); len++)
		data[len] = (unsigned char)(len * 7 + 1);
	for (len = 50; len < 140; len += 7) {
		assert_int_equal(sha256_hex_of(data, len, one), 0);
		for (cut = 0; cut <= len; cut += 13) {
			assert_int_equal(sha256_init(&s), 0);
			sha256_update(&s, data, cut);
			sha256_update(&s, data + cut, len - cut);
			assert_int_equal(sha256_final_hex(&s, split), 0);
			assert_string_equal(one, split);
		}
	}
}

/* A digest given up half way frees what it took (ASan would say). */
static void test_release_unfinished(void **state)
{
	struct sha256 s;

	(void)state;
	assert_int_equal(sha256_init(&s), 0);
	sha256_update(&s, "abc", 3);
	sha256_release(&s);
	sha256_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_million_a_in_odd_pieces),
		cmocka_unit_test(test_block_boundaries),
		cmocka_unit_test(test_release_unfinished),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
