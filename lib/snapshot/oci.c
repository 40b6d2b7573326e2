/* Snapshot chains as OCI images: the layout, and the push. */
#include "snapshot/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "util/fsutil.h"
#include "util/proc.h"
#include "util/sha256.h"

/* One snapshot of the chain, as a layer. */
struct layer {
	const struct backup *b;
	struct snap_meta meta;
	char digest[72], diff_id[72], state[65];
	uint64_t size;
};

/* The image's parts, as they go to the registry. */
struct image {
	struct layer *l;
	int n;
	char *config, *manifest;
	char config_digest[72];
};

static void image_release(struct image *im)
{
	int i;

	for (i = 0; i < im->n; i++)
		snap_meta_release(&im->l[i].meta);
	free(im->l);
	free(im->config);
	free(im->manifest);
	memset(im, 0, sizeof(*im));
}

static const char *oci_arch(const char *arch)
{
	if (!strcmp(arch, "x86_64"))
		return "amd64";
	if (!strcmp(arch, "aarch64"))
		return "arm64";
	if (!strcmp(arch, "i386"))
		return "386";
	return arch;
}

static char *iso_time(time_t t)
{
	struct tm tm;
	char buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(buf);
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static char *to_text(struct json_object *o)
{
	char *s = xstrdup(json_object_to_json_string_ext(o,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

/*
 * The config: an OCI image config (so that skopeo and registries' UIs
 * show it as an image), whose "vm" member holds what a restore needs.
 */
static char *build_config(const struct vm *vm, const struct image *im)
{
	const struct layer *tip = &im->l[im->n - 1];
	struct json_object *o = json_object_new_object(), *rootfs, *ids, *v,
			   *snaps, *cfg, *labels;
	char *created = iso_time(tip->meta.ts);
	int i;

	add_str(o, "created", created);
	add_str(o, "architecture", oci_arch(vm->conf.arch));
	add_str(o, "os", "linux");
	cfg = json_object_new_object();
	labels = json_object_new_object();
	add_str(labels, "org.opencontainers.image.title", tip->b->name);
	if (tip->meta.description && *tip->meta.description)
		add_str(labels, "org.opencontainers.image.description",
			tip->meta.description);
	json_object_object_add(cfg, "Labels", labels);
	json_object_object_add(o, "config", cfg);
	rootfs = json_object_new_object();
	add_str(rootfs, "type", "layers");
	ids = json_object_new_array();
	for (i = 0; i < im->n; i++)
		json_object_array_add(ids, json_object_new_string(im->l[i].diff_id));
	json_object_object_add(rootfs, "diff_ids", ids);
	json_object_object_add(o, "rootfs", rootfs);
	v = json_object_new_object();
	json_object_object_add(v, "format", json_object_new_int(OCI_VM_FORMAT));
	snaps = json_object_new_array();
	for (i = 0; i < im->n; i++) {
		const struct layer *l = &im->l[i];
		struct json_object *s = json_object_new_object();
		char *t = iso_time(l->meta.ts);

		add_str(s, "name", l->b->name);
		add_str(s, "parent", l->meta.parent);
		add_str(s, "state", l->state);
		add_str(s, "created", t);
		add_str(s, "taken", l->meta.taken);
		add_str(s, "description", l->meta.description);
		json_object_array_add(snaps, s);
		free(t);
	}
	json_object_object_add(v, "snapshots", snaps);
	add_str(v, "guest.conf", tip->meta.guest_conf ? tip->meta.guest_conf : "");
	json_object_object_add(o, "vm", v);
	free(created);
	return to_text(o);
}

static struct json_object *descriptor(const char *type, const char *digest,
				      uint64_t size)
{
	struct json_object *d = json_object_new_object();

	add_str(d, "mediaType", type);
	add_str(d, "digest", digest);
	json_object_object_add(d, "size", json_object_new_int64((int64_t)size));
	return d;
}

static char *build_manifest(const struct image *im)
{
	struct json_object *o = json_object_new_object(), *layers, *ann;
	int i;

	json_object_object_add(o, "schemaVersion", json_object_new_int(2));
	add_str(o, "mediaType", OCI_MANIFEST_TYPE);
	json_object_object_add(o, "config",
			       descriptor(OCI_CONFIG_TYPE, im->config_digest,
					  strlen(im->config)));
	layers = json_object_new_array();
	for (i = 0; i < im->n; i++) {
		struct json_object *d = descriptor(OCI_LAYER_GZIP_TYPE,
						   im->l[i].digest,
						   im->l[i].size);
		char *title = xasprintf("%s.tar.gz", im->l[i].b->name);

		ann = json_object_new_object();
		add_str(ann, "org.opencontainers.image.title", title);
		json_object_object_add(d, "annotations", ann);
		json_object_array_add(layers, d);
		free(title);
	}
	json_object_object_add(o, "layers", layers);
	ann = json_object_new_object();
	add_str(ann, "vm.snapshot", im->l[im->n - 1].b->name);
	json_object_object_add(o, "annotations", ann);
	return to_text(o);
}

/* Each snapshot of the chain: its metadata, STATE and digests. */
static int read_layer(const struct backup *list, int n, struct layer *l,
		      struct strbuf *err)
{
	struct manifest m;
	struct stat st;
	int r;

	if (stat(l->b->path, &st) < 0) {
		strbuf_addf(err, "%s: %s", l->b->path, strerror(errno));
		return -errno;
	}
	l->size = (uint64_t)st.st_size;
	r = snap_read_meta(l->b->path, &l->meta, err);
	if (!r)
		r = backups_layer_digests(l->b, l->digest, l->diff_id, err);
	if (!r) {
		r = backups_read_manifest(list, n, l->b, &m, err);
		if (!r && manifest_state(&m, l->state))
			r = -EIO;
		manifest_release(&m);
	}
	return r;
}

static int build_image(const struct vm *vm, const struct backup *list, int n,
		       const struct backup *b, struct image *im,
		       struct strbuf *err)
{
	const struct backup **chain = NULL;
	char hex[65];
	int k, i, r = 0;

	memset(im, 0, sizeof(*im));
	k = backups_chain(list, n, b, &chain, err);
	if (k < 0)
		return k;
	im->l = xcalloc((size_t)k, sizeof(*im->l));
	im->n = k;
	for (i = 0; !r && i < k; i++) {
		im->l[i].b = chain[i];
		if (chain[i]->legacy) {
			strbuf_addf(err, "%s is in the old directory layout: back it up again to push it",
				    chain[i]->name);
			r = -EINVAL;
		} else {
			r = read_layer(list, n, &im->l[i], err);
		}
	}
	free(chain);
	if (r)
		return r;
	im->config = build_config(vm, im);
	if (sha256_hex_of(im->config, strlen(im->config), hex))
		return -EIO;
	snprintf(im->config_digest, sizeof(im->config_digest), "sha256:%s", hex);
	im->manifest = build_manifest(im);
	return 0;
}

/*
 * backups/.pushed: "HOST REPO" lines, the repositories this VM's
 * snapshots were pushed to, newest last.  A push to another repository
 * of the same registry asks it to mount a blob from there (a blob the
 * registry holds already, linked, not sent again).
 */
#define PUSHED_FILE ".pushed"
#define PUSHED_MAX 64

static char *pushed_path(const struct vm *vm)
{
	return vm_host_path(vm, "backups/" PUSHED_FILE);
}

/* The newest other repository of ref's registry pushed to, or NULL. */
static char *pushed_from(const struct vm *vm, const struct oci_ref *ref)
{
	struct strbuf sb = STRBUF_INIT;
	char *p = pushed_path(vm), *line, *save = NULL, *from = NULL;
	size_t hl = strlen(ref->host);

	if (!fs_read_file(p, 1 << 20, &sb))
		for (line = strtok_r(sb.buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (!strncmp(line, ref->host, hl) && line[hl] == ' ' &&
			    strcmp(line + hl + 1, ref->repo)) {
				free(from);
				from = xstrdup(line + hl + 1);
			}
	free(p);
	strbuf_release(&sb);
	return from;
}

/* Note ref's repository as pushed to (the last PUSHED_MAX kept). */
static void pushed_add(const struct vm *vm, const struct oci_ref *ref)
{
	struct strbuf sb = STRBUF_INIT, out = STRBUF_INIT;
	char *p = pushed_path(vm), *me = xasprintf("%s %s", ref->host, ref->repo);
	char *line, *save = NULL;
	struct strvec keep = STRVEC_INIT;
	size_t i;

	if (!fs_read_file(p, 1 << 20, &sb))
		for (line = strtok_r(sb.buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (strcmp(line, me))
				strvec_push(&keep, line);
	strvec_push(&keep, me);
	for (i = keep.nr > PUSHED_MAX ? keep.nr - PUSHED_MAX : 0; i < keep.nr; i++)
		strbuf_addf(&out, "%s\n", keep.v[i]);
	fs_write_atomic(p, out.buf, out.len, 0600);
	strvec_clear(&keep);
	strbuf_release(&sb);
	strbuf_release(&out);
	free(me);
	free(p);
}

/* Send a blob the registry lacks: 0, or -errno with err. */
static int put_blob(struct registry *g, const char *digest, const char *path,
		    const char *data, uint64_t size, const char *from,
		    struct oci_pushed *out, bool layer, struct strbuf *err)
{
	bool mounted;
	int fd = -1, r = reg_blob_exists(g, digest, err);

	if (r)
		return r < 0 ? r : 0;
	if (path) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			strbuf_addf(err, "%s: %s", path, strerror(errno));
			return -errno;
		}
	}
	r = reg_blob_put(g, digest, fd, data, size, from, &mounted, err);
	if (fd >= 0)
		close(fd);
	if (!r && layer)
		(*(mounted ? &out->mounted : &out->uploaded))++;
	return r;
}

int oci_push(const struct vm *vm, const char *name, const struct oci_ref *ref,
	     const struct reg_opts *o, struct oci_pushed *out,
	     struct strbuf *err)
{
	struct backup *list = NULL;
	const struct backup *b;
	struct registry *g = NULL;
	struct image im;
	char *from = NULL;
	int n, i, r;

	memset(out, 0, sizeof(*out));
	memset(&im, 0, sizeof(im));
	n = backups_list(vm, &list);
	if (n < 0) {
		strbuf_addf(err, "cannot list backups/: %s", strerror(-n));
		return n;
	}
	b = backups_find(vm, list, n, name ? name : "LAST");
	if (!b) {
		strbuf_addf(err, name ? "no snapshot %s in backups/" :
					"no snapshot to push: backups/ has no LAST",
			    name ? name : "");
		r = -ENOENT;
		goto out;
	}
	r = build_image(vm, list, n, b, &im, err);
	if (!r)
		r = reg_open(&g, ref, o, from = pushed_from(vm, ref), err);
	for (i = 0; !r && i < im.n; i++) {
		r = put_blob(g, im.l[i].digest, im.l[i].b->path, NULL,
			     im.l[i].size, from, out, true, err);
		out->size += im.l[i].size;
	}
	if (!r)
		r = put_blob(g, im.config_digest, NULL, im.config,
			     strlen(im.config), from, out, false, err);
	if (g)
		out->bytes = reg_sent(g);
	/* the tag last: until it is there, nothing names the image */
	if (!r)
		r = reg_manifest_put(g, ref->tag, OCI_MANIFEST_TYPE,
				     im.manifest, strlen(im.manifest),
				     out->digest, err);
	if (!r)
		pushed_add(vm, ref);
	out->layers = im.n;
	if (r == -EINTR && !err->len)
		strbuf_addstr(err, "interrupted");
out:
	free(from);
	reg_close(g);
	image_release(&im);
	backups_free(list, n < 0 ? 0 : n);
	return r;
}
