/*
 * Image references as container tools write them, and the credentials
 * container tools keep for registries.
 */
#ifndef VM_OCIREF_H
#define VM_OCIREF_H

#include <stdbool.h>

#include "util/str.h"

/* registry.example.com:5000/team/web:S2, or ...@sha256:HEX */
struct oci_ref {
	char *host;	/* "registry.example.com:5000"; "docker.io" */
	char *repo;	/* "team/web"; "library/debian" on docker.io */
	char *tag;	/* "S2"; "latest" when neither is given */
	char *digest;	/* "sha256:HEX", or NULL */
};

#define OCI_REF_INIT { NULL, NULL, NULL, NULL }

/*
 * Parse s by the grammar of the distribution project's reference
 * package: an optional registry host (the first part, when it has a dot
 * or a port or is localhost), the repository's path components
 * (lowercase letters and digits joined by . _ __ -), then :TAG and/or
 * @sha256:HEX.  Without a host, docker.io (and library/ for a single
 * component), as docker and podman read it.  Returns 0, or -EINVAL
 * with err saying what is wrong in one line.
 */
int oci_ref_parse(const char *s, struct oci_ref *r, struct strbuf *err);
void oci_ref_release(struct oci_ref *r);

/*
 * s is written as a reference to a registry (a host part with a dot or
 * port, or localhost, then a /), not a snapshot's name, a path or a URL:
 * what @restore REF tells from @restore NAME.
 */
bool oci_ref_is_remote(const char *s);

/* s is "sha256:" and 64 lowercase hex digits, as registries name blobs. */
bool oci_digest_valid(const char *s);

/* "host/repo:tag" or "host/repo@digest", for messages; caller frees. */
char *oci_ref_string(const struct oci_ref *r);

/* The host to talk to: docker.io's API is at registry-1.docker.io. */
const char *oci_ref_api_host(const struct oci_ref *r);

/*
 * The user and password container tools keep for r's registry: the
 * first of $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json
 * and $DOCKER_CONFIG/config.json (~/.docker/config.json) that has an
 * "auths" entry for it (the longest of "host/repo/...", "host", with or
 * without https://; docker.io also as https://index.docker.io/v1/),
 * whose "auth" is base64 of "user:password".  *from gets the file's
 * path.  Returns 1 (found), 0 (none: anonymous), or -EINVAL with err
 * when a file that is there cannot be read as JSON or an entry is bad.
 * Caller frees the strings.
 */
int oci_auth_find(const struct oci_ref *r, char **user, char **pass,
		  char **from, struct strbuf *err);

#endif
