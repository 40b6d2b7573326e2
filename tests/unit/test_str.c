/* Unit tests for lib/str: strbuf, strvec, number parsing, names, splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/report.h"
#include "util/str.h"

/* strbuf_add_shquoted(s) as a new string. */
static char *shq(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_add_shquoted(&sb, s);
	return strbuf_detach(&sb);
}

static char *qesc(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_add_qemu_escaped(&sb, s);
	return strbuf_detach(&sb);
}

#define assert_shq(in, want) do { \
	char *got_ = shq(in); \
	assert_string_equal(got_, want); \
	free(got_); \
} while (0)

#define assert_qesc(in, want) do { \
	char *got_ = qesc(in); \
	assert_string_equal(got_, want); \
	free(got_); \
} while (0)

static void test_strbuf_init_is_empty(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	char *s;

	(void)state;
	assert_non_null(sb.buf);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
	strbuf_reset(&sb);
	assert_string_equal(sb.buf, "");
	s = strbuf_detach(&sb);
	assert_string_equal(s, "");
	free(s);
	assert_string_equal(sb.buf, "");
	strbuf_release(&sb);
	assert_int_equal(sb.alloc, 0);
}

static void test_strbuf_add(void **state)
{
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	strbuf_add(&sb, "abcdef", 3);
	assert_string_equal(sb.buf, "abc");
	assert_int_equal(sb.len, 3);
	strbuf_addstr(&sb, "-xyz");
	strbuf_addch(&sb, '!');
	assert_string_equal(sb.buf, "abc-xyz!");
	assert_int_equal(sb.len, 8);
	assert_true(sb.alloc > sb.len);
	strbuf_add(&sb, "", 0);
	assert_string_equal(sb.buf, "abc-xyz!");
	strbuf_reset(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	strbuf_addstr(&sb, "again");
	assert_string_equal(sb.buf, "again");
	strbuf_release(&sb);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
}

static void test_strbuf_grows_past_many_reallocs(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < 10000; i++)
		strbuf_addch(&sb, 'a' + (int)(i % 26));
	assert_int_equal(sb.len, 10000);
	assert_int_equal(strlen(sb.buf), 10000);
	assert_int_equal(sb.buf[0], 'a');
	assert_int_equal(sb.buf[25], 'z');
	assert_int_equal(sb.buf[9999], 'a' + 9999 % 26);
	strbuf_release(&sb);
}

static void test_strbuf_addf(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	char big[300];

	(void)state;
	strbuf_addf(&sb, "%s=%d", "cores", 4);
	assert_string_equal(sb.buf, "cores=4");
	strbuf_addf(&sb, ",%05u%c", 42u, 'x');
	assert_string_equal(sb.buf, "cores=4,00042x");
	assert_int_equal(sb.len, strlen("cores=4,00042x"));
	strbuf_addf(&sb, "%s", "");
	assert_string_equal(sb.buf, "cores=4,00042x");
	/* Longer than the first allocation. */
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	strbuf_reset(&sb);
	strbuf_addf(&sb, "[%s]", big);
	assert_int_equal(sb.len, sizeof(big) + 1);
	assert_int_equal(sb.buf[0], '[');
	assert_int_equal(sb.buf[sb.len - 1], ']');
	assert_int_equal(sb.buf[150], 'b');
	strbuf_release(&sb);
}

static void test_strbuf_trim_trailing(void **state)
{
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	strbuf_addstr(&sb, "kvm \t\n\n");
	strbuf_trim_trailing(&sb);
	assert_string_equal(sb.buf, "kvm");
	assert_int_equal(sb.len, 3);
	strbuf_reset(&sb);
	strbuf_addstr(&sb, " \n");
	strbuf_trim_trailing(&sb);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
	strbuf_release(&sb);
}

static void test_shquoted_plain_words_stay_plain(void **state)
{
	(void)state;
	assert_shq("vm", "vm");
	assert_shq("qemu-system-x86_64", "qemu-system-x86_64");
	assert_shq("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_CODE.fd");
	assert_shq("hostfwd=tcp::5555-:22", "hostfwd=tcp::5555-:22");
	assert_shq("if=none,id=disk0", "if=none,id=disk0");
	assert_shq("user@host", "user@host");
	assert_shq("100%", "100%");
	assert_shq("a+b", "a+b");
}

static void test_shquoted_special_words_are_quoted(void **state)
{
	(void)state;
	assert_shq("", "''");
	assert_shq("a b", "'a b'");
	assert_shq("tab\there", "'tab\there'");
	assert_shq("$HOME", "'$HOME'");
	assert_shq("a;rm -rf", "'a;rm -rf'");
	assert_shq("*", "'*'");
	assert_shq("say \"hi\"", "'say \"hi\"'");
	assert_shq("back\\slash", "'back\\slash'");
	assert_shq("line\nbreak", "'line\nbreak'");
	assert_shq("~/x", "'~/x'");
}

static void test_shquoted_single_quote_escaped(void **state)
{
	(void)state;
	assert_shq("it's", "'it'\\''s'");
	assert_shq("'", "''\\'''");
	assert_shq("''", "''\\'''\\'''");
	assert_shq("a 'b' c", "'a '\\''b'\\'' c'");
}

static void test_qemu_escaped_doubles_commas(void **state)
{
	(void)state;
	assert_qesc("/plain/path.img", "/plain/path.img");
	assert_qesc("a,b", "a,,b");
	assert_qesc(",", ",,");
	assert_qesc(",,", ",,,,");
	assert_qesc("/x/a,b,c.img", "/x/a,,b,,c.img");
	assert_qesc(",lead,trail,", ",,lead,,trail,,");
	assert_qesc("", "");
	assert_qesc("no=change here", "no=change here");
}

static void test_strvec_push_and_clear(void **state)
{
	struct strvec sv = STRVEC_INIT;
	char buf[8] = "abc";
	size_t i;

	(void)state;
	assert_int_equal(sv.nr, 0);
	assert_null(sv.v[0]);
	strvec_push(&sv, buf);
	buf[0] = 'X';		/* the vector keeps its own copy */
	assert_int_equal(sv.nr, 1);
	assert_string_equal(sv.v[0], "abc");
	assert_null(sv.v[1]);
	for (i = 0; i < 100; i++)
		strvec_pushf(&sv, "item%zu", i);
	assert_int_equal(sv.nr, 101);
	assert_string_equal(sv.v[1], "item0");
	assert_string_equal(sv.v[100], "item99");
	assert_null(sv.v[101]);
	strvec_clear(&sv);
	assert_int_equal(sv.nr, 0);
	assert_null(sv.v[0]);
	strvec_push(&sv, "reuse");
	assert_string_equal(sv.v[0], "reuse");
	strvec_release(&sv);
}

static void test_strvec_pushl_pushv(void **state)
{
	struct strvec a = STRVEC_INIT, b = STRVEC_INIT;

	(void)state;
	strvec_pushl(&a, "qemu", "-m", "2048M", NULL);
	assert_int_equal(a.nr, 3);
	assert_string_equal(a.v[0], "qemu");
	assert_string_equal(a.v[1], "-m");
	assert_string_equal(a.v[2], "2048M");
	assert_null(a.v[3]);
	strvec_pushl(&a, NULL);
	assert_int_equal(a.nr, 3);
	strvec_pushv(&b, a.v);
	strvec_pushv(&b, NULL);
	assert_int_equal(b.nr, 3);
	assert_string_equal(b.v[2], "2048M");
	assert_true(b.v[2] != a.v[2]);
	strvec_clear(&a);
	strvec_clear(&b);
}

static void test_strvec_join(void **state)
{
	struct strvec sv = STRVEC_INIT;
	char *s;

	(void)state;
	s = strvec_join(&sv, " ", false);
	assert_string_equal(s, "");
	free(s);
	strvec_pushl(&sv, "vm", "my disk.img", "", "it's", NULL);
	s = strvec_join(&sv, ",", false);
	assert_string_equal(s, "vm,my disk.img,,it's");
	free(s);
	s = strvec_join(&sv, " ", true);
	assert_string_equal(s, "vm 'my disk.img' '' 'it'\\''s'");
	free(s);
	strvec_clear(&sv);
	strvec_push(&sv, "one");
	s = strvec_join(&sv, " | ", true);
	assert_string_equal(s, "one");
	free(s);
	strvec_clear(&sv);
}

static void test_xasprintf(void **state)
{
	char *s;

	(void)state;
	s = xasprintf("%s/disk-%d.img", "/W", 3);
	assert_string_equal(s, "/W/disk-3.img");
	free(s);
	s = xasprintf("%s", "");
	assert_string_equal(s, "");
	free(s);
}

static void test_parse_uint_ranges(void **state)
{
	uint64_t v = 99;

	(void)state;
	assert_int_equal(parse_uint("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("1", 1, 1, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_uint("007", 0, 10, &v), 0);
	assert_int_equal(v, 7);
	v = 99;
	assert_int_equal(parse_uint("11", 0, 10, &v), -ERANGE);
	assert_int_equal(parse_uint("0", 1, 10, &v), -ERANGE);
	assert_int_equal(parse_uint("65536", 1, 65535, &v), -ERANGE);
	assert_int_equal(v, 99);	/* untouched on failure */
	assert_int_equal(parse_uint("65535", 1, 65535, &v), 0);
	assert_int_equal(v, 65535);
}

static void test_parse_uint_overflow(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_uint("18446744073709551615", 0, UINT64_MAX, &v),
			 0);
	assert_true(v == UINT64_MAX);
	v = 5;
	assert_int_equal(parse_uint("18446744073709551616", 0, UINT64_MAX, &v),
			 -ERANGE);
	assert_int_equal(parse_uint("99999999999999999999999", 0, UINT64_MAX,
				    &v), -ERANGE);
	assert_int_equal(v, 5);
}

static void test_parse_uint_garbage(void **state)
{
	static const char *const bad[] = {
		"", "abc", "12a", "a12", "-1", "+1", " 1", "1 ", "1.0", "0x10",
		"1e3", "１",
	};
	uint64_t v = 77;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_uint(bad[i], 0, UINT64_MAX, &v) != -EINVAL)
			fail_msg("parse_uint(\"%s\") is not -EINVAL", bad[i]);
	}
	assert_int_equal(parse_uint(NULL, 0, 10, &v), -EINVAL);
	assert_int_equal(v, 77);
}

#define GiB (1ULL << 30)
#define MiB (1ULL << 20)

static void test_parse_size_units(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_size("30G", 0, &v), 0);
	assert_true(v == 30 * GiB);
	assert_int_equal(parse_size("512M", 0, &v), 0);
	assert_true(v == 512 * MiB);
	assert_int_equal(parse_size("1.5G", 0, &v), 0);
	assert_true(v == 3 * GiB / 2);
	assert_int_equal(parse_size("4GiB", 0, &v), 0);
	assert_true(v == 4 * GiB);
	assert_int_equal(parse_size("4GB", 0, &v), 0);
	assert_true(v == 4 * GiB);
	assert_int_equal(parse_size("4Gi", 0, &v), 0);
	assert_true(v == 4 * GiB);
	assert_int_equal(parse_size("100K", 0, &v), 0);
	assert_true(v == 102400);
	assert_int_equal(parse_size("2T", 0, &v), 0);
	assert_true(v == 2ULL << 40);
	assert_int_equal(parse_size("1P", 0, &v), 0);
	assert_true(v == 1ULL << 50);
	assert_int_equal(parse_size("30g", 0, &v), 0);
	assert_true(v == 30 * GiB);
	assert_int_equal(parse_size("8mib", 0, &v), 0);
	assert_true(v == 8 * MiB);
	assert_int_equal(parse_size("512B", 0, &v), 0);
	assert_true(v == 512);
	assert_int_equal(parse_size("0.5G", 0, &v), 0);
	assert_true(v == 512 * MiB);
	assert_int_equal(parse_size(".25M", 0, &v), 0);
	assert_true(v == 256 * 1024);
}

static void test_parse_size_default_unit(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_size("30", 'G', &v), 0);
	assert_true(v == 30 * GiB);
	assert_int_equal(parse_size("30", 0, &v), 0);
	assert_true(v == 30);
	assert_int_equal(parse_size("512", 'M', &v), 0);
	assert_true(v == 512 * MiB);
	assert_int_equal(parse_size("1.5", 'G', &v), 0);
	assert_true(v == 3 * GiB / 2);
	/* An explicit unit beats the default. */
	assert_int_equal(parse_size("512M", 'G', &v), 0);
	assert_true(v == 512 * MiB);
	v = 1;
	assert_int_equal(parse_size("30", 'X', &v), -EINVAL);
	assert_true(v == 1);
}

static void test_parse_size_invalid(void **state)
{
	static const char *const bad[] = {
		"G", "12X", "", ".", "-1G", " 1G", "1G ", "1GG", "1GiBx",
		"1 G", "1,5G", "abc", "1.5.5G", "0x10M", "512BB", "1iB",
	};
	uint64_t v = 123;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_size(bad[i], 'G', &v) != -EINVAL)
			fail_msg("parse_size(\"%s\") is not -EINVAL", bad[i]);
	}
	assert_int_equal(parse_size(NULL, 'G', &v), -EINVAL);
	assert_true(v == 123);
}

static void test_parse_size_zero_and_overflow(void **state)
{
	uint64_t v = 123;

	(void)state;
	/* The size must be > 0. */
	assert_int_equal(parse_size("0", 'G', &v), -ERANGE);
	assert_int_equal(parse_size("0G", 0, &v), -ERANGE);
	assert_int_equal(parse_size("0.0000001G", 0, &v), -ERANGE);
	assert_int_equal(parse_size("99999999999999999999", 0, &v), -ERANGE);
	assert_int_equal(parse_size("99999999999999999999G", 0, &v), -ERANGE);
	assert_int_equal(parse_size("16384P", 0, &v), -ERANGE);
	assert_int_equal(parse_size("17179869184G", 0, &v), -ERANGE);
	assert_true(v == 123);
	assert_int_equal(parse_size("8191P", 0, &v), 0);
	assert_true(v == 8191ULL << 50);
}

/*
 * The fraction is shifted before it is divided: 123456 << 50 does not fit
 * in 64 bits, so "1.123456P" came out as about 1.0088P.
 */
static void test_parse_size_fraction_of_large_unit(void **state)
{
	const double pib = (double)(1ULL << 50);
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_size("1.123456P", 0, &v), 0);
	assert_in_range(v, (uint64_t)(1.1234 * pib), (uint64_t)(1.1235 * pib));
	assert_int_equal(parse_size("2.00001P", 0, &v), 0);
	assert_in_range(v, 2ULL << 50, (uint64_t)(2.0001 * pib));
}

/* Each size comes out shortest and exact, and parse_size reads it back. */
static void test_add_size_round_trip(void **state)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} sizes[] = {
		{ 4 * GiB, "4G" },
		{ 1536 * MiB, "1536M" },
		{ 512 * MiB, "512M" },
		{ 1000 * MiB, "1000M" },
		{ 1ULL << 40, "1T" },
		{ 16ULL << 40, "16T" },
		{ 8191ULL << 50, "8191P" },
		{ 100 * 1024, "100K" },
		{ 1000, "1000B" },
		{ 1, "1B" },
		{ 3 * GiB / 2 + 1, "1610612737B" },
		/* parse_size refuses the top count of a unit (16383P). */
		{ 16383ULL << 50, "16776192T" },
		{ UINT64_MAX - 1023, "18446744073709550592B" },
	};
	static const char units[] = { 0, 'M', 'G' };
	size_t i, u;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_add_size(&sb, sizes[i].bytes);
		assert_string_equal(sb.buf, sizes[i].text);
		for (u = 0; u < sizeof(units); u++) {
			uint64_t v = 0;

			if (parse_size(sb.buf, units[u], &v) ||
			    v != sizes[i].bytes)
				fail_msg("'%s' (default unit %c) read back as %llu",
					 sb.buf, units[u] ? units[u] : '-',
					 (unsigned long long)v);
		}
		strbuf_release(&sb);
	}
}

static void test_parse_bool(void **state)
{
	static const char *const yes[] = { "1", "yes", "true", "on", "YES",
					   "True", "oN" };
	static const char *const no[] = { "0", "no", "false", "off", "NO",
					  "False", "OFF" };
	static const char *const bad[] = { "", "2", "y", "n", "yess", "of",
					   " yes", "yes ", "enable" };
	size_t i;
	bool b;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_int_equal(parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		assert_int_equal(parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = true;
		if (parse_bool(bad[i], &b) != -EINVAL)
			fail_msg("parse_bool(\"%s\") is not -EINVAL", bad[i]);
		assert_true(b);
	}
}

static void test_name_is_valid(void **state)
{
	static const char *const good[] = {
		"vm", "WS10", "a", "0", "web-1", "my.vm", "a_b", "a..b", "x-",
		"x.", "A.b-C_d.9",
	};
	static const char *const bad[] = {
		"", "-vm", ".vm", "..", ".", "a/b", "/", "a b", " vm", "vm ",
		"a\tb", "vm\n", "a:b", "a@b", "a,b", "a$b", "a*b", "ä", "a'b",
	};
	char n64[65], n65[66];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!name_is_valid(good[i]))
			fail_msg("name \"%s\" is rejected", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (name_is_valid(bad[i]))
			fail_msg("name \"%s\" is accepted", bad[i]);
	assert_false(name_is_valid(NULL));
	memset(n64, 'a', 64);
	n64[64] = '\0';
	assert_true(name_is_valid(n64));
	memset(n65, 'a', 65);
	n65[65] = '\0';
	assert_false(name_is_valid(n65));
}

static void test_str_distance(void **state)
{
	char long65[66];

	(void)state;
	assert_int_equal(str_distance("", ""), 0);
	assert_int_equal(str_distance("run", "run"), 0);
	assert_int_equal(str_distance("", "abc"), 3);
	assert_int_equal(str_distance("abc", ""), 3);
	assert_int_equal(str_distance("kitten", "sitting"), 3);
	assert_int_equal(str_distance("creat", "create"), 1);
	assert_int_equal(str_distance("crate", "create"), 1);
	assert_int_equal(str_distance("destory", "destroy"), 1);
	assert_int_equal(str_distance("ab", "ba"), 1);
	assert_int_equal(str_distance("RUN", "run"), 0);
	assert_int_equal(str_distance("backup", "run"), 5);
	assert_int_equal(str_distance("flaw", "lawn"), 2);
	memset(long65, 'x', 65);
	long65[65] = '\0';
	assert_true(str_distance(long65, "x") == (size_t)-1);
	assert_true(str_distance("x", long65) == (size_t)-1);
}

static void test_str_starts_ends_with(void **state)
{
	(void)state;
	assert_true(str_starts_with("hostfwd=tcp", "hostfwd="));
	assert_true(str_starts_with("abc", ""));
	assert_false(str_starts_with("ab", "abc"));
	assert_false(str_starts_with("xabc", "abc"));
	assert_true(str_ends_with("disk-0.img", ".img"));
	assert_true(str_ends_with("abc", ""));
	assert_false(str_ends_with("img", ".img"));
	assert_false(str_ends_with("disk-0.img.tmp", ".img"));
}

/* Split line and compare with the expected words (NULL-terminated). */
static void check_split(const char *line, const char *const *want)
{
	struct strvec sv = STRVEC_INIT;
	size_t i;

	assert_int_equal(str_split_args(line, &sv), 0);
	for (i = 0; want[i]; i++) {
		if (i >= sv.nr)
			fail_msg("split of \"%s\": %zu words, wanted more", line,
				 sv.nr);
		assert_string_equal(sv.v[i], want[i]);
	}
	assert_int_equal(sv.nr, i);
	assert_null(sv.v[sv.nr]);
	strvec_clear(&sv);
}

static void test_split_whitespace(void **state)
{
	static const char *const w1[] = { "-m", "4G", "-usb", NULL };
	static const char *const w2[] = { "a", "b", "c", NULL };
	static const char *const none[] = { NULL };

	(void)state;
	check_split("-m 4G -usb", w1);
	check_split("  a\tb \n\n c  \n", w2);
	check_split("", none);
	check_split(" \t\n ", none);
}

static void test_split_comments(void **state)
{
	static const char *const w1[] = { "-usb", NULL };
	static const char *const w2[] = { "-a", "-b", "-c", NULL };
	static const char *const w3[] = { "a#b", "c", NULL };
	static const char *const w4[] = { "#not", "'#x'", NULL };
	static const char *const none[] = { NULL };

	(void)state;
	check_split("-usb # a comment 'with quote", w1);
	check_split("# only a comment", none);
	check_split("-a # one\n-b\n   # two\n-c", w2);
	/* '#' inside a word is part of it. */
	check_split("a#b c", w3);
	check_split("'#not' \"'#x'\"", w4);
}

static void test_split_single_quotes(void **state)
{
	static const char *const w1[] = { "a b", "c", NULL };
	static const char *const w2[] = { "pre mid post", NULL };
	static const char *const w3[] = { "x", "", "y", NULL };
	static const char *const w4[] = { "\\n \"x\" $HOME", NULL };
	static const char *const w5[] = { "it's", NULL };

	(void)state;
	check_split("'a b' c", w1);
	check_split("pre' mid 'post", w2);
	check_split("x '' y", w3);
	check_split("'\\n \"x\" $HOME'", w4);
	check_split("'it'\\''s'", w5);
}

static void test_split_double_quotes(void **state)
{
	static const char *const w1[] = { "a \"q\" b", NULL };
	static const char *const w2[] = { "back\\slash", NULL };
	static const char *const w3[] = { "keep\\n", "it's", NULL };
	static const char *const w4[] = { "", NULL };
	static const char *const w5[] = { "-append", "console=ttyS0 quiet",
					  NULL };

	(void)state;
	check_split("\"a \\\"q\\\" b\"", w1);
	check_split("\"back\\\\slash\"", w2);
	check_split("\"keep\\n\" \"it's\"", w3);
	check_split("\"\"", w4);
	check_split("-append \"console=ttyS0 quiet\"", w5);
}

static void test_split_backslash_outside_quotes(void **state)
{
	static const char *const w1[] = { "a b", NULL };
	static const char *const w2[] = { "x\"y", NULL };

	(void)state;
	check_split("a\\ b", w1);
	check_split("x\\\"y", w2);
}

static void test_split_unterminated(void **state)
{
	static const char *const bad[] = {
		"'abc", "a 'b c", "\"abc", "\"abc\\\"", "ok \"", "'",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct strvec sv = STRVEC_INIT;

		if (str_split_args(bad[i], &sv) != -EINVAL)
			fail_msg("split of \"%s\" is not -EINVAL", bad[i]);
		strvec_clear(&sv);
	}
}

/* in as a JSON string (json.h), as json-c writes it */
static void json_is(const char *in, const char *want)
{
	struct json_object *o = report_str(in);

	assert_string_equal(report_line(o), want);
	json_object_put(o);
}

#define FFFD "\xef\xbf\xbd"

static void test_json_escapes_and_utf8(void **state)
{
	struct json_object *o = json_object_new_object();

	(void)state;
	json_is("plain", "\"plain\"");
	json_is("q\"b\\n\nt\t\x01/", "\"q\\\"b\\\\n\\nt\\t\\u0001/\"");
	/* valid UTF-8 passes as it is: Cyrillic, CJK, an emoji */
	json_is("\xd0\x92\xd0\x9c", "\"\xd0\x92\xd0\x9c\"");
	json_is("\xe4\xb8\xad", "\"\xe4\xb8\xad\"");
	json_is("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
	/* stray, truncated, overlong, surrogate, too large: U+FFFD */
	json_is("a\xff" "b", "\"a" FFFD "b\"");
	json_is("\xd0", "\"" FFFD "\"");
	json_is("\xe4\xb8", "\"" FFFD FFFD "\"");
	json_is("\xc0\xaf", "\"" FFFD FFFD "\"");
	json_is("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"");
	json_is("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
	assert_true(str_utf8_is_valid("ok \xd0\x92"));
	assert_false(str_utf8_is_valid("\xd0"));
	/* the setters: NULL is JSON null, a NULL object takes nothing */
	report_set_str(o, "s", NULL);
	report_set_int(o, "i", -5);
	report_set_bool(o, "b", true);
	report_push_str(o, "l", "x");
	report_push_str(o, "l", "y\xff");
	assert_string_equal(
		report_line(o),
		"{\"s\":null,\"i\":-5,\"b\":true,\"l\":[\"x\",\"y" FFFD "\"]}");
	report_set_str(NULL, "s", "x");
	report_set(NULL, "o", json_object_new_object()); /* freed, no leak */
	report_push_str(NULL, "l", "x");
	json_object_put(o);
}

/* What a guest or a snapshot wrote, printed as ls and git print names. */
static void test_printable(void **state)
{
	static const struct { const char *in, *keep, *want; } cases[] = {
		{ "plain text, UTF-8: \xc3\xa9t\xc3\xa9", "", "plain text, UTF-8: \xc3\xa9t\xc3\xa9" },
		{ "red \x1b[31mX\x1b[0m", "", "red \\033[31mX\\033[0m" },
		{ "a\tb\rc\nd", "", "a\\tb\\rc\\nd" },
		{ "line1\nline2\n", "\n", "line1\nline2\n" },
		{ "bell\x07 del\x7f", "", "bell\\007 del\\177" },
		{ "csi \xc2\x9b" "2J", "", "csi \\302\\2332J" },
		{ "nbsp \xc2\xa0ok", "", "nbsp \xc2\xa0ok" },
		{ "back\\\x1bslash \\n", "", "back\\\\\\033slash \\n" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_add_printable(&sb, cases[i].in, strlen(cases[i].in),
				     cases[i].keep);
		assert_string_equal(sb.buf, cases[i].want);
		strbuf_release(&sb);
	}
}

static void test_str_near(void **state)
{
	static const char *const names[] = { "memory=", "cores=", "full" };
	struct str_near n = STR_NEAR_INIT;
	struct str_near none = STR_NEAR_INIT;
	size_t k;

	(void)state;
	for (k = 0; k < 3; k++)
		str_near_try(&n, "memroy", names[k], strcspn(names[k], "="));
	assert_string_equal(str_near_pick(&n, "memroy"), "memory");
	/* a word too short to correct, and no candidate */
	str_near_try(&none, "ab", "cd", 2);
	assert_null(str_near_pick(&none, "ab"));
	assert_null(str_near_pick(&none, "zz"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strbuf_init_is_empty),
		cmocka_unit_test(test_strbuf_add),
		cmocka_unit_test(test_strbuf_grows_past_many_reallocs),
		cmocka_unit_test(test_strbuf_addf),
		cmocka_unit_test(test_strbuf_trim_trailing),
		cmocka_unit_test(test_shquoted_plain_words_stay_plain),
		cmocka_unit_test(test_shquoted_special_words_are_quoted),
		cmocka_unit_test(test_shquoted_single_quote_escaped),
		cmocka_unit_test(test_qemu_escaped_doubles_commas),
		cmocka_unit_test(test_strvec_push_and_clear),
		cmocka_unit_test(test_strvec_pushl_pushv),
		cmocka_unit_test(test_strvec_join),
		cmocka_unit_test(test_xasprintf),
		cmocka_unit_test(test_parse_uint_ranges),
		cmocka_unit_test(test_parse_uint_overflow),
		cmocka_unit_test(test_parse_uint_garbage),
		cmocka_unit_test(test_parse_size_units),
		cmocka_unit_test(test_parse_size_default_unit),
		cmocka_unit_test(test_parse_size_invalid),
		cmocka_unit_test(test_parse_size_zero_and_overflow),
		cmocka_unit_test(test_parse_size_fraction_of_large_unit),
		cmocka_unit_test(test_add_size_round_trip),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_name_is_valid),
		cmocka_unit_test(test_str_distance),
		cmocka_unit_test(test_str_starts_ends_with),
		cmocka_unit_test(test_split_whitespace),
		cmocka_unit_test(test_split_comments),
		cmocka_unit_test(test_split_single_quotes),
		cmocka_unit_test(test_split_double_quotes),
		cmocka_unit_test(test_split_backslash_outside_quotes),
		cmocka_unit_test(test_split_unterminated),
		cmocka_unit_test(test_json_escapes_and_utf8),
		cmocka_unit_test(test_printable),
		cmocka_unit_test(test_str_near),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
