/* lib/net/ociref: image references and registry credentials. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/ociref.h"
#include "scratch.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void parses(const char *s, const char *host, const char *repo,
		   const char *tag, const char *digest)
{
	struct oci_ref r;
	struct strbuf err = STRBUF_INIT;

	assert_int_equal(oci_ref_parse(s, &r, &err), 0);
	assert_string_equal(r.host, host);
	assert_string_equal(r.repo, repo);
	if (tag)
		assert_string_equal(r.tag, tag);
	else
		assert_null(r.tag);
	if (digest)
		assert_string_equal(r.digest, digest);
	else
		assert_null(r.digest);
	assert_int_equal(err.len, 0);
	oci_ref_release(&r);
	strbuf_release(&err);
}

static void refused(const char *s, const char *why)
{
	struct oci_ref r;
	struct strbuf err = STRBUF_INIT;

	assert_int_equal(oci_ref_parse(s, &r, &err), -EINVAL);
	assert_non_null(strstr(err.buf, why));
	assert_null(r.host);
	strbuf_release(&err);
}

static void test_references(void **state)
{
	(void)state;
	parses("registry.example.com:5000/team/web:S2",
	       "registry.example.com:5000", "team/web", "S2", NULL);
	parses("127.0.0.1:5000/vm/golden", "127.0.0.1:5000", "vm/golden",
	       "latest", NULL);
	parses("localhost/a", "localhost", "a", "latest", NULL);
	parses("debian", "docker.io", "library/debian", "latest", NULL);
	parses("team/web:v1.2_x-y", "docker.io", "team/web", "v1.2_x-y", NULL);
	parses("ghcr.io/o/r@sha256:" D64, "ghcr.io", "o/r", NULL,
	       "sha256:" D64);
	parses("ghcr.io/o/r:t@sha256:" D64, "ghcr.io", "o/r", "t",
	       "sha256:" D64);
	parses("h.io/a.b__c--d_e/f", "h.io", "a.b__c--d_e/f", "latest", NULL);
	parses("[::1]:5000/x", "[::1]:5000", "x", "latest", NULL);
	refused("h.io/Team/web", "a repository is lowercase");
	refused("h.io/web:", "a tag is");
	refused("h.io/web:-x", "a tag is");
	refused("h.io/web@sha256:abc", "a digest is");
	refused("h.io/web@md5:" D64, "a digest is");
	refused("h.io//web", "a repository is");
	refused("h.io/web/", "a repository is");
	refused("h.io/we..b", "a repository is");
	refused("h.io/we___b", "a repository is");
	refused("-h.io/web", "the registry is not");
	refused("h.io:99999999/web", "the registry is not");
	refused("", "a repository is");
}

static void test_remote_or_not(void **state)
{
	(void)state;
	assert_true(oci_ref_is_remote("registry.example.com:5000/team/web:S2"));
	assert_true(oci_ref_is_remote("localhost/x"));
	assert_true(oci_ref_is_remote("127.0.0.1:5000/x"));
	assert_false(oci_ref_is_remote("S2"));
	assert_false(oci_ref_is_remote("team/web"));
	assert_false(oci_ref_is_remote("/srv/S2.tar.gz"));
	assert_false(oci_ref_is_remote("./S2.tar.gz"));
	assert_false(oci_ref_is_remote("https://h.io/S2.tar.gz"));
}

static void write_file(const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", tmpdir, name);

	assert_int_equal(fs_write_atomic(p, text, strlen(text), 0600), 0);
	free(p);
}

static int finds(const char *ref, char **user, char **pass, char **from,
		 struct strbuf *err)
{
	struct oci_ref r;
	int rc;

	assert_int_equal(oci_ref_parse(ref, &r, err), 0);
	rc = oci_auth_find(&r, user, pass, from, err);
	oci_ref_release(&r);
	return rc;
}

static void expect_user(const char *ref, const char *user, const char *pass,
			const char *file)
{
	struct strbuf err = STRBUF_INIT;
	char *u, *p, *f, *want = xasprintf("%s/%s", tmpdir, file);

	assert_int_equal(finds(ref, &u, &p, &f, &err), 1);
	assert_string_equal(u, user);
	assert_string_equal(p, pass);
	assert_string_equal(f, want);
	free(u);
	free(p);
	free(f);
	free(want);
	strbuf_release(&err);
}

static void test_auth_files(void **state)
{
	struct strbuf err = STRBUF_INIT;
	char *u, *p, *f, *dc = xasprintf("%s/docker", tmpdir);
	char *xdg = xasprintf("%s/run", tmpdir), *d;

	(void)state;
	d = xasprintf("%s/containers", xdg);
	assert_int_equal(fs_mkdir_p(d, 0700), 0);
	free(d);
	assert_int_equal(fs_mkdir_p(dc, 0700), 0);
	setenv("DOCKER_CONFIG", dc, 1);
	setenv("XDG_RUNTIME_DIR", xdg, 1);
	unsetenv("REGISTRY_AUTH_FILE");
	/* nothing anywhere: anonymous */
	assert_int_equal(finds("h.io/a/b", &u, &p, &f, &err), 0);
	assert_null(u);
	/* docker's file: "https://host", and index.docker.io for docker.io */
	/* dTE6cDE= is u1:p1, dTI6cDI6eA== u2:p2:x, dTM6 u3: */
	write_file("docker/config.json",
		   "{\"auths\": {\"https://h.io\": {\"auth\": \"dTE6cDE=\"},"
		   " \"https://index.docker.io/v1/\": {\"auth\": \"dTI6cDI6eA==\"}}}");
	expect_user("h.io/a/b", "u1", "p1", "docker/config.json");
	expect_user("debian", "u2", "p2:x", "docker/config.json");
	assert_int_equal(finds("other.io/a", &u, &p, &f, &err), 0);
	/* the containers' file comes first; its namespace entry is more
	 * specific than the host's, and h.io/a does not match h.io/ab */
	write_file("run/containers/auth.json",
		   "{\"auths\": {\"h.io\": {\"auth\": \"dTM6\"},"
		   " \"h.io/a\": {\"auth\": \"dTE6cDE=\"}}}");
	expect_user("h.io/a/b", "u1", "p1", "run/containers/auth.json");
	expect_user("h.io/ab", "u3", "", "run/containers/auth.json");
	/* $REGISTRY_AUTH_FILE first of all */
	write_file("mine.json", "{\"auths\": {\"h.io\": {\"auth\": \"dTI6cDI6eA==\"}}}");
	d = xasprintf("%s/mine.json", tmpdir);
	setenv("REGISTRY_AUTH_FILE", d, 1);
	free(d);
	expect_user("h.io/a/b", "u2", "p2:x", "mine.json");
	/* bad files are said, with their path */
	write_file("mine.json", "{\"auths\": {\"h.io\": {\"auth\": \"!!\"}}}");
	assert_int_equal(finds("h.io/a", &u, &p, &f, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "mine.json: the entry for h.io has no \"auth\""));
	strbuf_reset(&err);
	write_file("mine.json", "{\"auths\": {\"h.io\": {\"auth\": \"dTE=\"}}}");
	assert_int_equal(finds("h.io/a", &u, &p, &f, &err), -EINVAL);
	strbuf_reset(&err);
	write_file("mine.json", "not json");
	assert_int_equal(finds("h.io/a", &u, &p, &f, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "mine.json: not a JSON object"));
	unsetenv("REGISTRY_AUTH_FILE");
	unsetenv("DOCKER_CONFIG");
	unsetenv("XDG_RUNTIME_DIR");
	strbuf_release(&err);
	free(dc);
	free(xdg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_references),
		cmocka_unit_test(test_remote_or_not),
		cmocka_unit_test(test_auth_files),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
