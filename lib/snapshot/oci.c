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

#include "net/download.h"
#include "snapshot/restore.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/report.h"
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

/* Each snapshot of the chain: its metadata and STATE (digests: read). */
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
		}
	}
	if (!r) {
		char (*d)[72] = xcalloc((size_t)k, sizeof(*d));
		char (*t)[72] = xcalloc((size_t)k, sizeof(*t));

		r = backups_chain_digests(chain, k, d, t, err);
		for (i = 0; !r && i < k; i++) {
			memcpy(im->l[i].digest, d[i], sizeof(d[i]));
			memcpy(im->l[i].diff_id, t[i], sizeof(t[i]));
		}
		free(d);
		free(t);
	}
	for (i = 0; !r && i < k; i++)
		r = read_layer(list, n, &im->l[i], err);
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

/* Send a blob the registry lacks (asked first): 0, or -errno with err. */
static int put_blob(struct registry *g, const char *digest, const char *path,
		    const char *data, uint64_t size, const char *from,
		    struct oci_pushed *out, bool layer, struct strbuf *err)
{
	bool mounted;
	int fd = -1, r;

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
	bool *there = NULL;
	uint64_t base, todo = 0;
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
	/* what the registry has first: the progress counts the rest */
	there = xcalloc((size_t)im.n + 1, sizeof(*there));
	for (i = 0; !r && i <= im.n; i++) {
		r = reg_blob_exists(g, i < im.n ? im.l[i].digest :
						  im.config_digest, err);
		there[i] = r == 1;
		r = r < 0 ? r : 0;
		if (i < im.n && !there[i])
			todo += im.l[i].size;
	}
	for (i = 0; i < im.n; i++)
		out->size += im.l[i].size;
	for (i = 0, base = 0; !r && i < im.n; i++) {
		if (there[i])
			continue;
		reg_progress_span(g, base, todo);
		r = put_blob(g, im.l[i].digest, im.l[i].b->path, NULL,
			     im.l[i].size, from, out, true, err);
		base += im.l[i].size;
	}
	if (!r && todo)
		reg_progress_span(g, todo, todo);
	if (!r && !there[im.n])
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
	free(there);
	free(from);
	reg_close(g);
	image_release(&im);
	backups_free(list, n < 0 ? 0 : n);
	return r;
}

/* ---- pull ---- */

#define CONFIG_MAX (1u << 20)
#define DOCKER_LAYER_GZIP_TYPE "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define DOCKER_CONFIG_TYPE "application/vnd.docker.container.image.v1+json"

/* One layer of the image being pulled. */
struct want {
	char *name, *parent;	/* from the config */
	char digest[72];
	uint64_t size;
	char *dest, *part;	/* backups/NAME.tar.gz, its .pull */
	bool have;		/* already in backups/, the same archive */
};

/* A descriptor's digest and size: 0, or -EINVAL. */
static int read_descriptor(struct json_object *d, char digest[72],
			   uint64_t *size)
{
	struct json_object *v;
	const char *dg = report_get_str(d, "digest");
	int64_t n;

	if (!oci_digest_valid(dg) || !json_object_object_get_ex(d, "size", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (n = json_object_get_int64(v)) <= 0)
		return -EINVAL;
	snprintf(digest, 72, "%s", dg);
	*size = (uint64_t)n;
	return 0;
}

static void wants_free(struct want *w, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(w[i].name);
		free(w[i].parent);
		free(w[i].dest);
		free(w[i].part);
	}
	free(w);
}

/*
 * The manifest's layers and config: *w (n) with their digests and
 * sizes, config's digest and size.  0, or -EINVAL with err.
 */
static int parse_manifest(const char *text, const char *ctype,
			  struct want **w, int *n, char cdigest[72],
			  uint64_t *csize, struct strbuf *err)
{
	struct json_object *o = json_tokener_parse(text), *c, *layers;
	const char *mt = o ? report_get_str(o, "mediaType") : NULL;
	int i, r = 0;
	size_t k;

	*w = NULL;
	*n = 0;
	if (!mt)
		mt = ctype;
	if (mt && !strcmp(mt, OCI_INDEX_TYPE)) {
		strbuf_addstr(err, "it is an image index (an image for each platform), not a vm image");
		r = -EINVAL;
	} else if (!o || !mt || (strcmp(mt, OCI_MANIFEST_TYPE) &&
				 strcmp(mt, DOCKER_MANIFEST_TYPE))) {
		strbuf_addstr(err, "its manifest is not an OCI image manifest");
		r = -EINVAL;
	} else if (!json_object_object_get_ex(o, "config", &c) ||
		   read_descriptor(c, cdigest, csize) ||
		   !report_get_str(c, "mediaType") ||
		   (strcmp(report_get_str(c, "mediaType"), OCI_CONFIG_TYPE) &&
		    strcmp(report_get_str(c, "mediaType"), DOCKER_CONFIG_TYPE))) {
		strbuf_addstr(err, "its manifest has no image config");
		r = -EINVAL;
	} else if (*csize > CONFIG_MAX) {
		strbuf_addf(err, "its config is larger than %u KiB", CONFIG_MAX >> 10);
		r = -EINVAL;
	} else if (!json_object_object_get_ex(o, "layers", &layers) ||
		   !json_object_is_type(layers, json_type_array) ||
		   !json_object_array_length(layers)) {
		strbuf_addstr(err, "its manifest has no layers");
		r = -EINVAL;
	}
	k = r ? 0 : json_object_array_length(layers);
	if (!r && k > 100000) {
		strbuf_addstr(err, "its manifest has too many layers");
		r = -EINVAL;
	}
	if (!r)
		*w = xcalloc(k, sizeof(**w));
	for (i = 0; !r && (size_t)i < k; i++) {
		struct json_object *d = json_object_array_get_idx(layers, (size_t)i);
		const char *lt = report_get_str(d, "mediaType");

		if (!lt || (strcmp(lt, OCI_LAYER_GZIP_TYPE) &&
			    strcmp(lt, DOCKER_LAYER_GZIP_TYPE)) ||
		    read_descriptor(d, (*w)[i].digest, &(*w)[i].size)) {
			strbuf_addf(err, "its layer %d is not a gzip tar layer with a digest and size",
				    i + 1);
			r = -EINVAL;
		}
		*n = i + 1;
	}
	json_object_put(o);
	return r;
}

/*
 * The config's vm member: each layer's snapshot name and parent, a
 * chain in order.  0, or -EINVAL with err.
 */
static int parse_config(const char *text, struct want *w, int n,
			int max_chain, struct strbuf *err)
{
	struct json_object *o = json_tokener_parse(text), *v = NULL, *snaps,
			   *fmt;
	int i, j, r = 0;

	if (!o || !json_object_object_get_ex(o, "vm", &v) ||
	    !json_object_is_type(v, json_type_object)) {
		strbuf_addstr(err, "it is not a vm image (its config has no \"vm\" member)");
		r = -EINVAL;
	} else if (!json_object_object_get_ex(v, "format", &fmt) ||
		   json_object_get_int(fmt) != OCI_VM_FORMAT) {
		strbuf_addf(err, "its vm format is not %d (made by another version of vm?)",
			    OCI_VM_FORMAT);
		r = -EINVAL;
	} else if (!json_object_object_get_ex(v, "snapshots", &snaps) ||
		   !json_object_is_type(snaps, json_type_array) ||
		   json_object_array_length(snaps) != (size_t)n) {
		strbuf_addf(err, "its config does not name a snapshot for each of its %d layers",
			    n);
		r = -EINVAL;
	} else if (n > max_chain) {
		strbuf_addf(err, "its chain is longer than max_chain (%d snapshots)",
			    max_chain);
		r = -ELOOP;
	}
	for (i = 0; !r && i < n; i++) {
		struct json_object *s = json_object_array_get_idx(snaps, (size_t)i),
				   *pv;
		const char *name = report_get_str(s, "name"), *parent = report_get_str(s, "parent");
		bool has_parent = json_object_object_get_ex(s, "parent", &pv) &&
				  pv != NULL;

		if (!name || !name_is_valid(name) || !strcmp(name, "LAST")) {
			char *p = str_printable(name ? name : "");

			strbuf_addf(err, "its snapshot %d has a bad name '%s'", i + 1, p);
			free(p);
			r = -EINVAL;
			break;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(w[j].name, name))
				r = -EINVAL;
		if (r) {
			strbuf_addf(err, "its chain names %s twice", name);
			break;
		}
		/* oldest first, each on the one before */
		if ((i == 0 && has_parent) ||
		    (i > 0 && (!parent || strcmp(parent, w[i - 1].name)))) {
			strbuf_addf(err, "its snapshot %s is not on the one before it in the chain",
				    name);
			r = -EINVAL;
			break;
		}
		w[i].name = xstrdup(name);
		w[i].parent = parent ? xstrdup(parent) : NULL;
	}
	json_object_put(o);
	return r;
}

/* A snapshot of that name in backups/ already: the same archive, or -EEXIST. */
static int have_already(struct want *w, struct strbuf *err)
{
	struct backup b = { w->name, w->dest, false };
	struct stat st;
	char d[72], t[72];
	int r;

	if (lstat(w->dest, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(st.st_mode) ||
	    (r = backups_layer_digests(&b, d, t, err)) || strcmp(d, w->digest)) {
		strbuf_reset(err);
		strbuf_addf(err, "backups/%s.tar.gz is another snapshot than the image's %s (@forget it, or pull into another VM)",
			    w->name, w->name);
		return -EEXIST;
	}
	w->have = true;
	return 0;
}

/* The archive's own CHAIN names the parent the config does. */
static int check_parent(const struct want *w, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	struct snap_meta m;
	int r = snap_read_meta(w->part, &m, &e);

	if (!r && (!m.chained ? w->parent != NULL :
		   (!m.parent != !w->parent ||
		    (m.parent && strcmp(m.parent, w->parent))))) {
		strbuf_addf(err, "its layer %s is a snapshot on %s, the config says on %s",
			    w->name, m.parent ? m.parent : "nothing",
			    w->parent ? w->parent : "nothing");
		r = -EINVAL;
	} else if (r) {
		strbuf_addf(err, "its layer %s is not a snapshot: %s", w->name,
			    e.buf);
	}
	snap_meta_release(&m);
	strbuf_release(&e);
	return r;
}

/* Put each downloaded layer in place, parents first; never over a file. */
static int place(struct want *w, int n, const char *dir, struct strbuf *err)
{
	int i;

	for (i = 0; i < n; i++) {
		if (w[i].have)
			continue;
		if (link(w[i].part, w[i].dest) < 0) {
			strbuf_addf(err, "cannot put %s in place: %s", w[i].dest,
				    strerror(errno));
			return -errno;
		}
		unlink(w[i].part);
	}
	fs_fsync_dir(dir);
	return 0;
}

/* The missing layers fit in what backups/'s file system can spare. */
static int room_for(const struct want *w, int n, const char *dir,
		    struct strbuf *err)
{
	uint64_t need = 0, spare = download_spare(dir);
	struct stat st;
	char a[32], b[32];
	int i;

	for (i = 0; i < n; i++)
		if (!w[i].have)
			need += w[i].size - (stat(w[i].part, &st) == 0 &&
					     (uint64_t)st.st_size <= w[i].size ?
					     (uint64_t)st.st_size : 0);
	if (need <= spare)
		return 0;
	log_size(a, sizeof(a), need);
	log_size(b, sizeof(b), spare);
	strbuf_addf(err, "its snapshots need %s more in %s, which can spare %s (it keeps 1 GiB or 5%% free)",
		    a, dir, b);
	return -ENOSPC;
}

static int fetch_layers(struct registry *g, struct want *w, int n,
			struct restore_stage *stage, struct oci_pulled *out,
			struct strbuf *err)
{
	uint64_t base = 0, todo = 0;
	int i, r = 0;

	for (i = 0; i < n; i++) {
		out->size += w[i].size;
		todo += w[i].have ? 0 : w[i].size;
	}
	for (i = 0; !r && i < n; base += w[i].have ? 0 : w[i].size, i++) {
		if (!w[i].have) {
			reg_progress_span(g, base, todo);
			r = reg_blob_get(g, w[i].digest, w[i].size, w[i].part,
					 err);
			if (!r)
				r = check_parent(&w[i], err);
			if (!r)
				out->fetched++;
			else if (r != -EINTR && r != -EIO)
				unlink(w[i].part);
		}
		/* restored while the next one downloads */
		if (!r && stage)
			restore_stage_add(stage, w[i].name,
					  w[i].have ? w[i].dest : w[i].part);
	}
	if (!r && todo)
		reg_progress_span(g, todo, todo);
	return r;
}

int oci_pull(const struct vm *vm, const struct oci_ref *ref,
	     const struct reg_opts *o, struct restore_stage *stage,
	     struct oci_pulled *out, struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT, e = STRBUF_INIT;
	struct registry *g = NULL;
	struct want *w = NULL;
	char *ctype = NULL, *dir = vm_host_path(vm, "backups"), *last = NULL;
	char cdigest[72];
	uint64_t csize;
	int n = 0, i, r;

	memset(out, 0, sizeof(*out));
	r = backups_writable(vm, err);
	if (!r && (r = fs_mkdir_p(dir, 0755)))
		strbuf_addf(err, "cannot make %s: %s", dir, strerror(-r));
	if (!r)
		r = reg_open(&g, ref, o, NULL, err);
	if (!r)
		r = reg_manifest_get(g, ref->digest ? ref->digest : ref->tag,
				     &body, &ctype, out->digest, err);
	if (!r && (r = parse_manifest(body.buf, ctype, &w, &n, cdigest, &csize,
				      &e)))
		strbuf_addstr(err, e.buf);
	if (!r)
		r = reg_blob_get_mem(g, cdigest, CONFIG_MAX, &body, err);
	if (!r && (r = parse_config(body.buf, w, n, (int)vm->conf.max_chain,
				    &e)))
		strbuf_addstr(err, e.buf);
	for (i = 0; !r && i < n; i++) {
		w[i].dest = xasprintf("%s/%s.tar.gz", dir, w[i].name);
		w[i].part = xasprintf("%s/.%s.tar.gz.pull", dir, w[i].name);
		r = have_already(&w[i], err);
	}
	if (!r)
		r = room_for(w, n, dir, err);
	if (!r)
		r = fetch_layers(g, w, n, stage, out, err);
	/* the staged restore reads the .pull files no more */
	if (!r && stage)
		restore_stage_wait(stage);
	if (!r)
		r = place(w, n, dir, err);
	if (!r) {
		out->layers = n;
		out->tip = xstrdup(w[n - 1].name);
		last = backups_last(vm);
		if (!last) {
			struct backup b = { w[n - 1].name, w[n - 1].dest, false };

			out->last_set = !backups_set_last(vm, &b);
		}
	}
	if (g)
		out->bytes = reg_received(g);
	if (r == -EINTR && !err->len)
		strbuf_addstr(err, "interrupted (a later pull goes on from where this one stopped)");
	free(last);
	free(ctype);
	free(dir);
	wants_free(w, n);
	reg_close(g);
	strbuf_release(&body);
	strbuf_release(&e);
	return r;
}

void oci_pulled_release(struct oci_pulled *p)
{
	free(p->tip);
	p->tip = NULL;
}
