/*
 * A client of the OCI distribution API (what container registries
 * speak), through libcurl: blobs and manifests of one repository, with
 * the registries' authentication (basic, or a bearer token from the
 * realm the registry names) and their errors said in one line.
 */
#ifndef VM_REGISTRY_H
#define VM_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "net/ociref.h"
#include "util/str.h"

#define OCI_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX_TYPE "application/vnd.oci.image.index.v1+json"
#define OCI_CONFIG_TYPE "application/vnd.oci.image.config.v1+json"
#define OCI_LAYER_GZIP_TYPE "application/vnd.oci.image.layer.v1.tar+gzip"
#define DOCKER_MANIFEST_TYPE \
	"application/vnd.docker.distribution.manifest.v2+json"

struct reg_opts {
	const char *ca_file;	/* trust this CA too; NULL: the host's
				 * certs.d/HOST/ca.crt in ~/.config/
				 * containers or /etc/containers, if any */
	bool insecure;		/* plain HTTP, no TLS */
	bool push;		/* ask for push rights too */
	uint64_t chunk;		/* blobs larger go up in PATCHes of this
				 * size; 0: the default (64 MiB) */
	/* as blobs move: done of total (reg_progress_span) */
	void (*progress)(void *data, uint64_t done, uint64_t total);
	void *progress_data;
};

struct registry;

/*
 * A session with r's repository; from (or NULL): another repository of
 * the registry that blobs may be mounted from, whose pull rights a
 * token is asked for too.  Credentials come from the files container
 * tools keep (oci_auth_find).  Nothing is sent yet.  Returns 0, or
 * -EINVAL with err (a bad credentials file).
 */
int reg_open(struct registry **g, const struct oci_ref *r,
	     const struct reg_opts *o, const char *from, struct strbuf *err);
void reg_close(struct registry *g);

/*
 * Progress is reported as base plus the bytes of the blob being moved,
 * of total: the caller moving several blobs sets base before each.
 */
void reg_progress_span(struct registry *g, uint64_t base, uint64_t total);

/* Blob bytes sent and received so far (not requests' overhead). */
uint64_t reg_sent(const struct registry *g);
uint64_t reg_received(const struct registry *g);

/* The registry holds blob digest ("sha256:HEX"): 1, 0, or -errno. */
int reg_blob_exists(struct registry *g, const char *digest,
		    struct strbuf *err);

/*
 * Upload a blob of size bytes: from fd (read from offset 0), or from
 * data when fd < 0.  from: a repository of the same registry that may
 * hold it, to mount instead (NULL: none).  *mounted says whether it was.
 * Returns 0, -EINTR, or -errno with err in one line.
 */
int reg_blob_put(struct registry *g, const char *digest, int fd,
		 const void *data, uint64_t size, const char *from,
		 bool *mounted, struct strbuf *err);

/*
 * Download blob digest of size bytes into the file part (appended to:
 * a part already there is resumed with a Range request when it is a
 * prefix of the blob), verifying the digest; a mismatch deletes part.
 * Returns 0, -EINTR (part kept), -EBADMSG (the digest does not match),
 * or -errno with err.
 */
int reg_blob_get(struct registry *g, const char *digest, uint64_t size,
		 const char *part, struct strbuf *err);

/* A small blob (up to max bytes) into body, its digest verified. */
int reg_blob_get_mem(struct registry *g, const char *digest, size_t max,
		     struct strbuf *body, struct strbuf *err);

/*
 * Put a manifest under reference (a tag).  digest gets its digest,
 * "sha256:HEX".  Returns 0 or -errno with err.
 */
int reg_manifest_put(struct registry *g, const char *reference,
		     const char *media_type, const char *data, size_t len,
		     char digest[72], struct strbuf *err);

/*
 * Get the manifest reference (a tag or a digest) names, up to 4 MiB:
 * its bytes, media type (caller frees) and digest (verified when the
 * reference is one).  Returns 0, -ENOENT (no such manifest or
 * repository), or -errno with err.
 */
int reg_manifest_get(struct registry *g, const char *reference,
		     struct strbuf *body, char **media_type, char digest[72],
		     struct strbuf *err);

#endif
