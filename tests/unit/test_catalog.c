/* lib/vm/catalog: the catalogue of images and checksum files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vm/catalog.h"
#include "scratch.h"

/* unit tests run in the top of the source tree (tests/run.sh) */
#define SRCDIR "."

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H128 H64 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void lookup(const char *text, const char *file, int want,
		   const char *alg, const char *hex)
{
	char a[8] = "", h[129] = "";

	assert_int_equal(catalog_sums_lookup(text, file, a, h), want);
	if (!want) {
		assert_string_equal(a, alg);
		assert_string_equal(h, hex);
	}
}

/* GNU and BSD lines, SHA-256 and SHA-512, a signature's armour around */
static void test_sums(void **state)
{
	(void)state;
	lookup(H64 "  a.qcow2\n" H64 "  b.qcow2\n", "a.qcow2", 0, "sha256", H64);
	lookup(H64 " *a.img\n", "a.img", 0, "sha256", H64);
	lookup("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef  x\r\n",
	       "x", 0, "sha256", H64);
	lookup(H128 "  a.qcow2", "a.qcow2", 0, "sha512", H128);
	lookup("# Fedora-Cloud\nSHA256 (F.qcow2) = " H64 "\n", "F.qcow2", 0,
	       "sha256", H64);
	lookup("SHA512 (F.qcow2) = " H128 "\n", "F.qcow2", 0, "sha512", H128);
	/* SHA-512 wins where both are listed */
	lookup("SHA256 (F) = " H64 "\nSHA512 (F) = " H128 "\n", "F", 0,
	       "sha512", H128);
	lookup("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" H64
	       "  a.qcow2\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n",
	       "a.qcow2", 0, "sha256", H64);
	/* the whole name, not a part of it */
	lookup(H64 "  a.qcow2.sig\n" H64 "  xa.qcow2\n", "a.qcow2", -ENOENT,
	       NULL, NULL);
	lookup("", "a", -ENOENT, NULL, NULL);
	/* a short digest, a BSD line with junk after the digest */
	lookup("0123  a\nSHA256 (a) = " H64 " x\n", "a", -ENOENT, NULL, NULL);
	/* listed twice, two digests: which is the image's? */
	lookup(H64 "  a\n" "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  a\n",
	       "a", -EINVAL, NULL, NULL);
	/* twice, the same: fine */
	lookup(H64 "  a\n" H64 " *a\n", "a", 0, "sha256", H64);
}

static char *write_bytes(const char *name, const char *text, size_t len)
{
	char *p = xasprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
	return p;
}

static char *write_file(const char *name, const char *text)
{
	return write_bytes(name, text, strlen(text));
}

/* a later file's entry replaces the earlier one whole; a missing file */
static void test_load_merge(void **state)
{
	(void)state;
	struct catalog cat = CATALOG_INIT;
	struct strvec files = STRVEC_INIT;
	struct strbuf err = STRBUF_INIT;
	const struct catalog_entry *e;
	char *a = write_file("a.conf",
			     "# shipped\n[deb]\nurl = https://x/d.qcow2\n"
			     "sums = https://x/SHA512SUMS\nsig = https://x/S.sig\n"
			     "key = /k.gpg\nuser = debian\nfirmware = uefi\n"
			     "[alp]\nurl = https://x/a.qcow2\nsha256 = " H64 "\n");
	char *b = write_file("b.conf",
			     "[deb]\nurl = https://mirror/d.qcow2\n"
			     "sums = https://mirror/SHA512SUMS\n"
			     "[mine]\nurl = file:///srv/m.qcow2\nsha512 = " H128 "\n");

	strvec_pushl(&files, a, "/nonexistent/images.conf", b, NULL);
	assert_int_equal(catalog_load(&cat, &files, &err), 0);
	assert_int_equal(cat.nr, 3);
	e = catalog_find(&cat, "deb");
	assert_non_null(e);
	assert_string_equal(e->url, "https://mirror/d.qcow2");
	assert_null(e->sig);
	assert_null(e->key);
	assert_null(e->user);
	assert_null(e->firmware);
	assert_string_equal(e->file, b);
	e = catalog_find(&cat, "alp");
	assert_non_null(e);
	assert_string_equal(e->sha256, H64);
	assert_string_equal(e->file, a);
	assert_non_null(catalog_find(&cat, "mine"));
	assert_null(catalog_find(&cat, "nope"));
	catalog_release(&cat);
	strvec_clear(&files);
	strbuf_release(&err);
	free(a);
	free(b);
}

static void refused(const char *text, const char *why)
{
	struct catalog cat = CATALOG_INIT;
	struct strvec files = STRVEC_INIT;
	struct strbuf err = STRBUF_INIT;
	char *p = write_file("bad.conf", text);

	strvec_push(&files, p);
	assert_int_equal(catalog_load(&cat, &files, &err), -EINVAL);
	if (!strstr(err.buf, why))
		fail_msg("'%s' does not say '%s'", err.buf, why);
	assert_int_equal(cat.nr, 0);
	strvec_clear(&files);
	strbuf_release(&err);
	free(p);
}

/* each bad entry says where and why, and nothing is kept */
static void test_load_refused(void **state)
{
	(void)state;
	refused("url = https://x/a\n", "bad.conf:1: key 'url' outside an [image name]");
	refused("[a b]\nurl = https://x/a\n", "bad.conf:2: bad image name 'a b'");
	refused("[a]\nurl = /srv/a.qcow2\n", "bad.conf:2: url: '/srv/a.qcow2' is not a URL");
	refused("[a]\nurl = https://x/a#sha256=" H64 "\n", "not a URL");
	refused("[a]\nurl = https://x/a\nsha256 = 12\n", "bad.conf:3: sha256: not 64 hex digits");
	refused("[a]\nurl = https://x/a\nfirmware = coreboot\n", "firmware: 'coreboot' is not uefi, bios or any");
	refused("[a]\nurl = https://x/a\nuser = -x\n", "user: bad name '-x'");
	refused("[a]\nurl = https://x/a\nkey = k.gpg\n", "key: 'k.gpg' is not an absolute path");
	refused("[a]\nurl = https://x/a\ncolour = red\n", "unknown key 'colour'");
	refused("[a]\nsums = https://x/S\n", "bad.conf: [a]: no url");
	refused("[a]\nurl = https://x/a\n", "[a]: nothing to verify the image with");
	refused("[a]\nurl = https://x/a\nsums = https://x/S\nsig = https://x/S.gpg\n",
		"[a]: sig without the key");
	refused("[a]\nurl = https://x/a\nsha256 = " H64 "\nkey = /k\n",
		"[a]: key without sums");
	refused("[a]\nurl = https://x/a\nsha256 = " H64 "\n[b]\nurl = https://x/b\nsha256 = " H64 "\n[a]\nuser = x\n",
		"[a] a second time in one file");
}

static void test_load_binary(void **state)
{
	struct catalog cat = CATALOG_INIT;
	struct strvec files = STRVEC_INIT;
	struct strbuf err = STRBUF_INIT;
	static const char bin[] = "[a]\nurl = https://x/a\n\0\x01";
	char *p = write_bytes("bin.conf", bin, sizeof(bin));

	(void)state;
	strvec_push(&files, p);
	free(p);
	assert_int_equal(catalog_load(&cat, &files, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "binary data"));
	strvec_clear(&files);
	strbuf_release(&err);
}

/* the shipped file, then /etc's (or VM_SYSTEM_IMAGES), then the user's */
static void test_files(void **state)
{
	struct strvec f = STRVEC_INIT;

	(void)state;
	unsetenv("VM_SYSTEM_IMAGES");
	catalog_files("/usr/share/vm", "/home/u/.config", &f);
	assert_int_equal(f.nr, 3);
	assert_string_equal(f.v[0], "/usr/share/vm/images.conf");
	assert_string_equal(f.v[1], "/etc/vm/images.conf");
	assert_string_equal(f.v[2], "/home/u/.config/vm/images.conf");
	setenv("VM_SYSTEM_IMAGES", "/srv/images.conf", 1);
	catalog_files(SRCDIR, NULL, &f);
	assert_int_equal(f.nr, 2);
	assert_string_equal(f.v[0], SRCDIR "/conf/images.conf");
	assert_string_equal(f.v[1], "/srv/images.conf");
	unsetenv("VM_SYSTEM_IMAGES");
	strvec_clear(&f);
}

/* what vm ships is a catalogue vm reads: every name the issue lists */
static void test_shipped(void **state)
{
	struct catalog cat = CATALOG_INIT;
	struct strvec files = STRVEC_INIT;
	struct strbuf err = STRBUF_INIT;
	const char *names[] = { "debian-12", "debian-13", "ubuntu-22.04",
				"ubuntu-24.04", "fedora-41", "almalinux-9",
				"rocky-9", "alpine-3.20", "arch" };
	size_t i;

	(void)state;
	strvec_push(&files, SRCDIR "/conf/images.conf");
	assert_int_equal(catalog_load(&cat, &files, &err), 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct catalog_entry *e = catalog_find(&cat, names[i]);

		if (!e)
			fail_msg("no %s", names[i]);
		assert_non_null(e->sums);
		assert_non_null(e->user);
		assert_non_null(e->about);
		assert_true(!strncmp(e->url, "https://", 8));
		assert_true(!strncmp(e->sums, "https://", 8));
	}
	catalog_release(&cat);
	strvec_clear(&files);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sums),
		cmocka_unit_test(test_load_merge),
		cmocka_unit_test(test_load_refused),
		cmocka_unit_test(test_load_binary),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_shipped),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
