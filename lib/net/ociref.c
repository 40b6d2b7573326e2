/* Image references and registry credentials, as container tools keep them. */
#include "net/ociref.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "util/fsutil.h"

#define REF_MAX 255		/* a repository's name, host included */
#define TAG_MAX 128
#define AUTH_FILE_MAX (1 << 20)

static bool lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool path_component(const char *s, size_t len)
{
	size_t i = 0, run;

	for (;;) {
		run = 0;
		while (i < len && lower_alnum(s[i]))
			i++, run++;
		if (!run)
			return false;
		if (i == len)
			return true;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += i + 1 < len && s[i + 1] == '_' ? 2 : 1;
		else if (s[i] == '-')
			while (i < len && s[i] == '-')
				i++;
		else
			return false;
	}
}

/* host[:port]: labels of letters, digits and inner dashes; or [v6] */
static bool host_ok(const char *s, size_t len)
{
	const char *colon = memrchr(s, ':', len);
	size_t hl = len, i, label = 0;

	if (len && s[0] == '[') {
		const char *end = memchr(s, ']', len);

		if (!end || end - s < 3)
			return false;
		hl = (size_t)(end - s) + 1;
		for (i = 1; i + 1 < hl; i++)
			if (!isxdigit((unsigned char)s[i]) && s[i] != ':')
				return false;
		colon = hl < len ? s + hl : NULL;
		if (colon && *colon != ':')
			return false;
	} else if (colon) {
		hl = (size_t)(colon - s);
	}
	if (colon) {
		size_t p = (size_t)(colon - s) + 1;

		if (p == len || len - p > 5)
			return false;
		for (; p < len; p++)
			if (!isdigit((unsigned char)s[p]))
				return false;
	}
	if (!hl)
		return false;
	if (s[0] == '[')
		return true;
	for (i = 0; i <= hl; i++) {
		if (i == hl || s[i] == '.') {
			if (!label || s[i - 1] == '-')
				return false;
			label = 0;
		} else if (isalnum((unsigned char)s[i]) ||
			   (s[i] == '-' && label)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* The first part of a name is a registry host, as docker decides it. */
static bool names_host(const char *s, size_t len)
{
	size_t i;

	if (len == 9 && !memcmp(s, "localhost", 9))
		return true;
	for (i = 0; i < len; i++)
		if (s[i] == '.' || s[i] == ':' || s[i] == '[' ||
		    isupper((unsigned char)s[i]))
			return true;
	return false;
}

static bool tag_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n > TAG_MAX || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

bool oci_digest_valid(const char *s)
{
	size_t i;

	if (!s || !str_starts_with(s, "sha256:") || strlen(s) != 7 + 64)
		return false;
	for (i = 7; s[i]; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return true;
}

static int bad(struct strbuf *err, const char *s, const char *why)
{
	char *p = str_printable(s);

	strbuf_addf(err, "bad image reference '%s': %s", p, why);
	free(p);
	return -EINVAL;
}

int oci_ref_parse(const char *s, struct oci_ref *r, struct strbuf *err)
{
	const char *at = strchr(s, '@'), *end, *slash, *colon, *p, *name;
	size_t n;

	memset(r, 0, sizeof(*r));
	end = at ? at : s + strlen(s);
	if (at && !oci_digest_valid(at + 1))
		return bad(err, s, "a digest is sha256: and 64 lowercase hex digits");
	slash = memchr(s, '/', (size_t)(end - s));
	name = s;
	if (slash && names_host(s, (size_t)(slash - s))) {
		if (!host_ok(s, (size_t)(slash - s)))
			return bad(err, s, "the registry is not a host name or host:port");
		r->host = xasprintf("%.*s", (int)(slash - s), s);
		name = slash + 1;
	}
	/* :TAG after the last / */
	p = memrchr(name, '/', (size_t)(end - name));
	colon = memchr(p ? p : name, ':', (size_t)(end - (p ? p : name)));
	if (colon) {
		r->tag = xasprintf("%.*s", (int)(end - colon - 1), colon + 1);
		if (!tag_ok(r->tag)) {
			oci_ref_release(r);
			return bad(err, s, "a tag is up to 128 letters, digits, _ . - (not first . or -)");
		}
		end = colon;
	}
	for (p = name; p <= end; p = slash + 1) {
		slash = memchr(p, '/', (size_t)(end - p));
		if (!slash)
			slash = end;
		if (!path_component(p, (size_t)(slash - p))) {
			oci_ref_release(r);
			return bad(err, s, "a repository is lowercase letters and digits, parts joined by / . _ -");
		}
	}
	if (!r->host)
		r->host = xstrdup("docker.io");
	n = (size_t)(end - name);
	if (!strcmp(r->host, "docker.io") && !memchr(name, '/', n))
		r->repo = xasprintf("library/%.*s", (int)n, name);
	else
		r->repo = xasprintf("%.*s", (int)n, name);
	if (strlen(r->host) + 1 + strlen(r->repo) > REF_MAX) {
		oci_ref_release(r);
		return bad(err, s, "longer than 255 characters");
	}
	if (at)
		r->digest = xstrdup(at + 1);
	if (!r->tag && !r->digest)
		r->tag = xstrdup("latest");
	return 0;
}

void oci_ref_release(struct oci_ref *r)
{
	free(r->host);
	free(r->repo);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

bool oci_ref_is_remote(const char *s)
{
	const char *slash = strchr(s, '/');

	return slash && slash > s && names_host(s, (size_t)(slash - s)) &&
	       host_ok(s, (size_t)(slash - s));
}

char *oci_ref_string(const struct oci_ref *r)
{
	return r->digest ? xasprintf("%s/%s@%s", r->host, r->repo, r->digest) :
			   xasprintf("%s/%s:%s", r->host, r->repo, r->tag);
}

const char *oci_ref_api_host(const struct oci_ref *r)
{
	return strcmp(r->host, "docker.io") ? r->host : "registry-1.docker.io";
}

/* "https://host/v1/" and the like: the host and path docker kept. */
static const char *auth_key_plain(const char *key)
{
	if (str_starts_with(key, "https://"))
		return key + 8;
	if (str_starts_with(key, "http://"))
		return key + 7;
	return key;
}

/* How well key names r: 0 not, else the length of what it matched. */
static size_t auth_key_match(const char *key, const struct oci_ref *r)
{
	const char *k = auth_key_plain(key);
	size_t hl = strlen(r->host), kl = strlen(k);
	char *full;
	size_t m = 0;

	if (!strcmp(r->host, "docker.io") &&
	    (!strcmp(k, "index.docker.io/v1/") || !strcmp(k, "index.docker.io")))
		return hl;
	if (strncmp(k, r->host, hl) || (k[hl] && k[hl] != '/'))
		return 0;
	if (!k[hl] || (str_starts_with(key, "http") && !strcmp(k + hl, "/v1/")) ||
	    !strcmp(k + hl, "/"))
		return hl;
	/* host/ns/repo: a namespace of r's repository, or it */
	full = xasprintf("%s/%s", r->host, r->repo);
	if (!strncmp(full, k, kl) && (!full[kl] || full[kl] == '/'))
		m = kl;
	free(full);
	return m;
}

static int auth_decode(const char *b64, char **user, char **pass)
{
	size_t n = strlen(b64), pad = 0;
	unsigned char *out;
	char *colon;
	int len;

	if (!n || n % 4 || n > 16384)
		return -EINVAL;
	out = xmalloc(n / 4 * 3 + 1);
	len = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	if (len < 0) {
		free(out);
		return -EINVAL;
	}
	pad = (b64[n - 1] == '=') + (b64[n - 2] == '=');
	out[len - (int)pad] = '\0';
	colon = strchr((char *)out, ':');
	if (!colon || memchr(out, '\0', (size_t)len - pad)) {
		free(out);
		return -EINVAL;
	}
	*user = xasprintf("%.*s", (int)(colon - (char *)out), (char *)out);
	*pass = xstrdup(colon + 1);
	free(out);
	return 0;
}

/* 1 found, 0 none in this file (or no file), -EINVAL bad */
static int auth_in_file(const char *path, const struct oci_ref *r,
			char **user, char **pass, struct strbuf *err)
{
	struct strbuf text = STRBUF_INIT;
	struct json_object *o = NULL, *auths, *best = NULL, *a;
	size_t best_len = 0;
	int rc = fs_read_file(path, AUTH_FILE_MAX, &text);

	if (rc == -ENOENT || rc == -ENOTDIR) {
		strbuf_release(&text);
		return 0;
	}
	if (rc) {
		strbuf_addf(err, "%s: %s", path, fs_read_strerror(rc));
		strbuf_release(&text);
		return -EINVAL;
	}
	o = json_tokener_parse(text.buf);
	strbuf_release(&text);
	if (!o || !json_object_is_type(o, json_type_object)) {
		strbuf_addf(err, "%s: not a JSON object", path);
		json_object_put(o);
		return -EINVAL;
	}
	if (!json_object_object_get_ex(o, "auths", &auths) ||
	    !json_object_is_type(auths, json_type_object)) {
		json_object_put(o);
		return 0;
	}
	json_object_object_foreach(auths, key, val) {
		size_t m = auth_key_match(key, r);

		if (m > best_len) {
			best_len = m;
			best = val;
		}
	}
	rc = 0;
	if (best) {
		if (!json_object_object_get_ex(best, "auth", &a) ||
		    !json_object_is_type(a, json_type_string) ||
		    auth_decode(json_object_get_string(a), user, pass)) {
			strbuf_addf(err, "%s: the entry for %s has no \"auth\" of base64 user:password",
				    path, r->host);
			rc = -EINVAL;
		} else {
			rc = 1;
		}
	}
	json_object_put(o);
	return rc;
}

int oci_auth_find(const struct oci_ref *r, char **user, char **pass,
		  char **from, struct strbuf *err)
{
	const char *e;
	char *paths[3] = { NULL, NULL, NULL };
	int i, rc = 0;

	*user = *pass = *from = NULL;
	e = getenv("REGISTRY_AUTH_FILE");
	if (e && *e)
		paths[0] = xstrdup(e);
	e = getenv("XDG_RUNTIME_DIR");
	if (e && *e)
		paths[1] = xasprintf("%s/containers/auth.json", e);
	e = getenv("DOCKER_CONFIG");
	if (e && *e)
		paths[2] = xasprintf("%s/config.json", e);
	else
		paths[2] = fs_expand_home("~/.docker/config.json");
	for (i = 0; i < 3 && !rc; i++) {
		if (!paths[i])
			continue;
		rc = auth_in_file(paths[i], r, user, pass, err);
		if (rc == 1) {
			*from = paths[i];
			paths[i] = NULL;
		}
	}
	for (i = 0; i < 3; i++)
		free(paths[i]);
	return rc;
}
