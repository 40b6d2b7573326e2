/* Unit tests for lib/host/access: address lists and the tokens file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/access.h"

/* addr (v4 or v6 text) as a sockaddr in ss. */
static const struct sockaddr *sa_of(const char *addr,
				    struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
	}
	return (const struct sockaddr *)ss;
}

static bool has(const struct netlist *l, const char *addr)
{
	struct sockaddr_storage ss;

	return netlist_has(l, sa_of(addr, &ss));
}

static void add_ok(struct netlist *l, const char *spec)
{
	struct strbuf err = STRBUF_INIT;

	assert_int_equal(netlist_add(l, "query_from", spec, &err), 0);
	strbuf_release(&err);
}

static void test_ranges(void **state)
{
	struct netlist l = { NULL, 0 };

	(void)state;
	add_ok(&l, "10.1.0.0/16");
	add_ok(&l, "192.168.7.5");
	add_ok(&l, "172.16.0.9/31");
	add_ok(&l, "2001:db8::/32");
	assert_true(has(&l, "10.1.255.3"));
	assert_false(has(&l, "10.2.0.1"));
	assert_true(has(&l, "192.168.7.5"));
	assert_false(has(&l, "192.168.7.6"));
	/* a range not on a byte boundary: .8 and .9 */
	assert_true(has(&l, "172.16.0.8"));
	assert_true(has(&l, "172.16.0.9"));
	assert_false(has(&l, "172.16.0.10"));
	assert_true(has(&l, "2001:db8:1::7"));
	assert_false(has(&l, "2001:db9::1"));
	/* an IPv4 client of a dual-stack socket */
	assert_true(has(&l, "::ffff:10.1.2.3"));
	assert_false(has(&l, "::ffff:10.3.2.3"));
	netlist_release(&l);
	/* /0 is everyone of that family */
	add_ok(&l, "0.0.0.0/0");
	assert_true(has(&l, "203.0.113.9"));
	assert_false(has(&l, "::1"));
	netlist_release(&l);
}

static void test_bad_entries(void **state)
{
	static const char *const bad[] = { "10.0.0.0/33", "::/129", "1.2.3.4/",
					   "1.2.3.4/x", "300.1.1.1/8", "/8",
					   "1.2.3.4/-1" };
	struct netlist l = { NULL, 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct strbuf err = STRBUF_INIT;

		assert_int_equal(netlist_add(&l, "control_from", bad[i], &err),
				 -EINVAL);
		assert_non_null(strstr(err.buf, "bad control_from entry"));
		strbuf_release(&err);
	}
	assert_int_equal(l.n, 0);
}

static void test_loopback(void **state)
{
	struct sockaddr_storage ss;

	(void)state;
	assert_true(net_is_loopback(sa_of("127.0.0.1", &ss)));
	assert_true(net_is_loopback(sa_of("127.9.8.7", &ss)));
	assert_true(net_is_loopback(sa_of("::1", &ss)));
	assert_true(net_is_loopback(sa_of("::ffff:127.0.0.1", &ss)));
	assert_false(net_is_loopback(sa_of("10.0.0.1", &ss)));
	assert_false(net_is_loopback(sa_of("::2", &ss)));
	assert_false(net_is_loopback(NULL));
}

/* A tokens file of text in a temporary directory, mode mode. */
static char *tokens_file(const char *text, mode_t mode)
{
	char *dir = strdup("/tmp/vm-test-access.XXXXXX"), *p;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	p = xasprintf("%s/tokens", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	free(dir);
	return p;
}

static void remove_file(char *p)
{
	char *slash = strrchr(p, '/');

	unlink(p);
	*slash = '\0';
	rmdir(p);
	free(p);
}

static void test_tokens(void **state)
{
	/* sha256("s3cret") and sha256("other") */
	char *p = tokens_file("# who may control\n\n"
			      "ops 1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n"
			      "  ci D9298A10D1B0735837DC4BD85DAC641B0F3CEF27A47E5D53A54F2F3F5B2FCFFA\n",
			      0600);
	struct strbuf err = STRBUF_INIT;
	struct tokens t;

	(void)state;
	assert_int_equal(tokens_read(&t, p, &err), 0);
	assert_int_equal(t.n, 2);
	assert_string_equal(tokens_find(&t, "s3cret"), "ops");
	assert_string_equal(tokens_find(&t, "other"), "ci");
	assert_null(tokens_find(&t, "s3cret "));
	assert_null(tokens_find(&t, ""));
	assert_null(tokens_find(&t, NULL));
	tokens_release(&t);
	remove_file(p);
}

static void test_tokens_refused(void **state)
{
	static const char *const bad[] = {
		"ops\n", "ops 12ab\n", "../x 1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n",
		"ops 1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0 extra\n",
		"ops zzb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n",
	};
	struct strbuf err = STRBUF_INIT;
	struct tokens t;
	size_t i;
	char *p;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = tokens_file(bad[i], 0600);
		strbuf_reset(&err);
		assert_int_equal(tokens_read(&t, p, &err), -EINVAL);
		assert_non_null(strstr(err.buf, "line 1: not NAME SHA256-HEX"));
		assert_int_equal(t.n, 0);
		remove_file(p);
	}
	/* others may read it: refused whatever it holds */
	p = tokens_file("", 0640);
	strbuf_reset(&err);
	assert_int_equal(tokens_read(&t, p, &err), -EPERM);
	assert_non_null(strstr(err.buf, "chmod 600"));
	remove_file(p);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_bad_entries),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_tokens_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
