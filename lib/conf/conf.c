#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fsutil.h"

enum ktype {
	K_STR, K_NAME, K_UINT, K_MEM, K_BOOL, K_LIST, K_FWDS, K_SHARES,
	K_DISKS, K_IMAGES, K_PORT, K_ACCEL, K_AGENT, K_BOOT, K_SECS, K_PROFILE, K_SHA,
	K_BYTES,	/* a size from 4K to 1T */
	K_READY,	/* auto, ssh, agent or tcp:PORT */
	K_CAP		/* a size, or 0 for none */
};

/*
 * Where a setting reaches: the guest alone, or the host (its files,
 * ports, programs, groups, policies).  A snapshot from elsewhere sets
 * only the first kind (conf_keep_host_settings).
 */
enum reach {
	R_GUEST,
	R_HOST,
	R_PATH,		/* the host when it names a local file outside HOSTDIR */
};

struct conf_key {
	const char *section;
	const char *name;
	enum ktype type;
	size_t off;
	unsigned min, max;
	bool identity;		/* always kept in guest.conf */
	bool transient;		/* about one run: an option never saves it */
	enum reach reach;	/* what a snapshot from elsewhere may set */
};

#define V(f) offsetof(struct vm_conf, f)
static const struct conf_key keys[] = {
	{ "vm", "name", K_NAME, V(name), 0, 0, true, false, R_GUEST },
	{ "vm", "arch", K_STR, V(arch), 0, 0, true, false, R_HOST },
	{ "vm", "cores", K_UINT, V(cores), 1, 1024, false, false, R_GUEST },
	{ "vm", "sockets", K_UINT, V(sockets), 1, 64, false, false, R_GUEST },
	{ "vm", "memory", K_MEM, V(memory), 0, 0, false, false, R_GUEST },
	{ "vm", "disks", K_DISKS, V(disks), 0, 0, true, false, R_GUEST },
	{ "vm", "images", K_IMAGES, V(images), 0, 0, false, false, R_PATH },
	{ "vm", "forwards", K_FWDS, V(forwards), 0, 0, false, false, R_HOST },
	{ "vm", "shares", K_SHARES, V(shares), 0, 0, false, false, R_HOST },
	{ "vm", "uefi", K_BOOL, V(uefi), 0, 0, true, false, R_GUEST },
	{ "vm", "keep_cd", K_BOOL, V(keep_cd), 0, 0, false, false, R_GUEST },
	{ "vm", "netdev", K_BOOL, V(netdev), 0, 0, false, false, R_HOST },
	{ "vm", "use_tmpdir", K_BOOL, V(use_tmpdir), 0, 0,
	  false, false, R_HOST },
	{ "vm", "port", K_PORT, V(port), 0, 0, false, false, R_HOST },
	{ "vm", "host", K_STR, V(host), 0, 0, false, false, R_HOST },
	{ "vm", "accel", K_ACCEL, V(accel), 0, 0, false, true, R_GUEST },
	{ "vm", "timeout", K_SECS, V(timeout), 0, 0, false, true, R_GUEST },
	{ "vm", "guest_agent", K_AGENT, V(guest_agent), 0, 0, false, false,
	  R_GUEST },
	{ "vm", "cloud_init", K_AGENT, V(cloud_init), 0, 0, false, false,
	  R_GUEST },
	{ "vm", "ready", K_READY, V(ready), 0, 0, false, false, R_GUEST },
	{ "vm", "initialize_timeout", K_SECS, V(initialize_timeout), 0, 0,
	  false, false, R_HOST },
	{ "vm", "bootimage", K_STR, V(bootimage), 0, 0, true, false, R_HOST },
	{ "vm", "bootimage_sha256", K_SHA, V(bootimage_sha256), 0, 0, true,
	  false, R_GUEST },
	{ "vm", "base", K_STR, V(base), 0, 0, false, false, R_PATH },
	{ "vm", "base_format", K_STR, V(base_format), 0, 0,
	  false, false, R_GUEST },
	{ "vm", "base_sha256", K_SHA, V(base_sha256), 0, 0,
	  false, false, R_GUEST },
	{ "vm", "firstboot", K_BOOL, V(firstboot), 0, 0, true, false, R_GUEST },
	{ "vm", "sshkeys", K_LIST, V(sshkeys), 0, 0, false, false, R_HOST },
	{ "vm", "media", K_STR, V(media), 0, 0, false, false, R_HOST },
	{ "vm", "media_mirror", K_STR, V(media_mirror), 0, 0,
	  false, false, R_HOST },
	{ "vm", "media_storage", K_STR, V(media_storage), 0, 0,
	  false, false, R_HOST },
	{ "vm", "rescue", K_PROFILE, V(rescue_profile), 0, 0,
	  false, true, R_GUEST },
	{ "vm", "compress_level", K_UINT, V(compress_level), 1, 9,
	  false, false, R_HOST },
	{ "vm", "full_every", K_UINT, V(full_every), 0, 100000,
	  false, false, R_HOST },
	{ "vm", "max_chain", K_UINT, V(max_chain), 1, 100000,
	  false, false, R_HOST },
	{ "vm", "shutdown_timeout", K_SECS, V(shutdown_timeout), 0, 0, false,
	  false, R_HOST },
	{ "vm", "control_group", K_PROFILE, V(control_group), 0, 0, false,
	  false, R_HOST },
	{ "vm", "ssh_user", K_NAME, V(ssh_user), 0, 0, false, false, R_GUEST },
	{ "vm", "download_max", K_CAP, V(download_max), 0, 0,
	  false, false, R_HOST },
	{ "vm", "download_cache_max", K_CAP, V(download_cache_max), 0, 0,
	  false, false, R_HOST },
	{ "vm", "download_timeout", K_SECS, V(download_timeout), 0, 0, false,
	  false, R_HOST },
	{ "vm", "registry_ca", K_STR, V(registry_ca), 0, 0, false, false,
	  R_HOST },
	{ "vm", "registry_insecure", K_LIST, V(registry_insecure), 0, 0,
	  false, false, R_HOST },
	{ "rescue", "iso", K_STR, V(rescue.iso), 0, 0, false, false, R_HOST },
	{ "rescue", "cores", K_UINT, V(rescue.cores), 1, 1024,
	  false, false, R_GUEST },
	{ "rescue", "memory", K_MEM, V(rescue.memory), 0, 0,
	  false, false, R_GUEST },
	{ "rescue", "forwards", K_FWDS, V(rescue.forwards), 0, 0,
	  false, false, R_HOST },
	{ "rescue", "shares", K_SHARES, V(rescue.shares), 0, 0,
	  false, false, R_HOST },
	{ "rescue", "boot", K_BOOT, V(rescue.boot), 0, 0,
	  false, false, R_GUEST },
	{ "rescue", "boot_timeout", K_SECS, V(rescue.boot_timeout), 1, 0, false,
	  true, R_GUEST },
	{ "rescue", "job_log_max", K_BYTES, V(rescue.job_log_max), 0, 0, false,
	  false, R_HOST },
	{ "serve", "listen", K_LIST, V(serve.listen), 0, 0, false, false,
	  R_HOST },
	{ "serve", "dirs", K_LIST, V(serve.dirs), 0, 0, false, false, R_HOST },
	{ "serve", "query_from", K_LIST, V(serve.query_from), 0, 0, false,
	  false, R_HOST },
	{ "serve", "tls_cert", K_STR, V(serve.tls_cert), 0, 0, false, false,
	  R_HOST },
	{ "serve", "tls_key", K_STR, V(serve.tls_key), 0, 0, false, false,
	  R_HOST },
	{ "serve", "client_ca", K_STR, V(serve.client_ca), 0, 0, false, false,
	  R_HOST },
	{ "serve", "control_from", K_LIST, V(serve.control_from), 0, 0, false,
	  false, R_HOST },
	{ "serve", "tokens", K_STR, V(serve.tokens), 0, 0, false, false,
	  R_HOST },
};
#undef V
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
/* Room for "key = " and quotes within inih's 199-character lines. */
#define CONF_VALUE_MAX 170

_Static_assert(NKEYS <= 64, "vm_conf.layer is too small");

#define FIELD(c, k, type) ((type *)(void *)((char *)(c) + (k)->off))
#define CFIELD(c, k, type) \
	((const type *)(const void *)((const char *)(c) + (k)->off))

/*
 * The keys that hold several items, each in a struct NAME_list of conf.h:
 * { T *v; size_t nr; }.  How one item is parsed, released and written
 * back as text.
 */
struct item_ops {
	size_t size;
	int (*parse)(const char *text, void *item, struct strbuf *err);
	void (*release)(void *item);
	void (*format)(const void *item, struct strbuf *out);
};

static void list_clear(struct vm_conf *c, const struct conf_key *k);

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

void conf_init(struct vm_conf *c)
{
	struct strbuf err = STRBUF_INIT;
	static const char *const defaults[][3] = {
		{ "vm", "name", "vm" },
		{ "vm", "arch", "x86_64" },
		{ "vm", "cores", "2" },
		{ "vm", "sockets", "1" },
		{ "vm", "memory", "2G" },
		{ "vm", "disks", "AHCI=30G" },
		{ "vm", "uefi", "yes" },
		{ "vm", "keep_cd", "no" },
		{ "vm", "netdev", "yes" },
		{ "vm", "use_tmpdir", "yes" },
		{ "vm", "port", "5900" },
		{ "vm", "host", "127.0.0.1" },
		{ "vm", "accel", "auto" },
		{ "vm", "timeout", "0" },
		{ "vm", "guest_agent", "auto" },
		{ "vm", "cloud_init", "auto" },
		{ "vm", "ready", "auto" },
		{ "vm", "initialize_timeout", "0" },
		{ "vm", "bootimage", "" },
		{ "vm", "bootimage_sha256", "" },
		{ "vm", "base", "" },
		{ "vm", "base_format", "" },
		{ "vm", "base_sha256", "" },
		{ "vm", "firstboot", "no" },
		{ "vm", "sshkeys", "~/.ssh/id_ed25519.pub" },
		{ "vm", "sshkeys", "~/.ssh/id_rsa.pub" },
		{ "vm", "media", "" },
		{ "vm", "media_mirror", "" },
		{ "vm", "media_storage", "" },
		{ "vm", "rescue", "" },
		{ "vm", "compress_level", "6" },
		{ "vm", "full_every", "8" },
		{ "vm", "max_chain", "256" },
		{ "vm", "shutdown_timeout", "60" },
		{ "vm", "control_group", "" },
		{ "vm", "ssh_user", "root" },
		{ "vm", "download_max", "0" },
		{ "vm", "download_cache_max", "20G" },
		{ "vm", "download_timeout", "6h" },
		{ "vm", "registry_ca", "" },
		{ "rescue", "iso", "" },
		{ "rescue", "cores", "2" },
		{ "rescue", "memory", "1G" },
		{ "rescue", "shares", "mirror:@MIRROR@" },
		{ "rescue", "shares", "in:@INDIR@" },
		{ "rescue", "shares", "out:rw:@DATADIR@" },
		{ "rescue", "boot", "kernel" },
		{ "rescue", "boot_timeout", "120" },
		{ "rescue", "job_log_max", "16M" },
		{ "serve", "listen", "127.0.0.1:9180" },
		{ "serve", "tls_cert", "" },
		{ "serve", "tls_key", "" },
		{ "serve", "client_ca", "" },
		{ "serve", "tokens", "" },
	};
	size_t i;

	/* Lists start out NULL and empty. */
	memset(c, 0, sizeof(*c));
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if (conf_set(c, defaults[i][0], defaults[i][1], defaults[i][2],
			     LAYER_DEFAULT, &err))
			abort();
	}
	strbuf_release(&err);
}

void conf_release(struct vm_conf *c)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		switch (keys[i].type) {
		case K_STR: case K_NAME: case K_PROFILE: case K_SHA:
			free(*FIELD(c, &keys[i], char *));
			break;
		case K_DISKS: case K_LIST: case K_FWDS: case K_SHARES:
		case K_IMAGES:
			list_clear(c, &keys[i]);
			break;
		default:
			break;
		}
	}
	memset(c, 0, sizeof(*c));
}

static const struct conf_key *find_key(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].section, section) &&
		    !strcmp(keys[i].name, key))
			return &keys[i];
	return NULL;
}

int conf_layer_of(const struct vm_conf *c, const char *section, const char *key)
{
	const struct conf_key *k = find_key(section, key);

	return k ? c->layer[k - keys] : -EINVAL;
}

const char *disk_bus_name(enum disk_bus b)
{
	static const char *const names[] = { "AHCI", "NVME", "SCSI", "VIRT",
					     "CDROM" };

	return names[b];
}

static int bus_parse(const char *s, size_t len, enum disk_bus *out)
{
	enum disk_bus b;

	for (b = BUS_AHCI; b <= BUS_CDROM; b++) {
		const char *n = disk_bus_name(b);

		if (strlen(n) == len && !strncasecmp(s, n, len)) {
			*out = b;
			return 0;
		}
	}
	return -EINVAL;
}

static void disk_release(void *item)
{
	struct disk_spec *d = item;

	free(d->format);
	free(d->path);
	free(d->backing);
	free(d->backing_format);
}

void disk_specs_free(struct disk_spec *d, int n)
{
	int i;

	for (i = 0; d && i < n; i++)
		disk_release(&d[i]);
	free(d);
}

void disk_spec_copy(struct disk_spec *dst, const struct disk_spec *src)
{
	*dst = *src;
	dst->format = src->format ? xstrdup(src->format) : NULL;
	dst->path = src->path ? xstrdup(src->path) : NULL;
	dst->backing = src->backing ? xstrdup(src->backing) : NULL;
	dst->backing_format = src->backing_format ?
			      xstrdup(src->backing_format) : NULL;
}

static bool format_is_valid(const char *f)
{
	static const char *const fmts[] = { "qcow2", "raw", "vmdk", "vdi",
					    "vhdx", "vpc", "qed", NULL };
	size_t i;

	for (i = 0; fmts[i]; i++)
		if (!strcmp(f, fmts[i]))
			return true;
	return false;
}

int disks_parse(const char *spec, struct disk_spec **out, struct strbuf *err)
{
	struct disk_spec *d = NULL;
	const char *p = spec;
	int n = 0;

	*out = NULL;
	while (*p) {
		const char *end = strchr(p, ',');
		const char *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *sz;
		int r;

		eq = memchr(p, '=', len);
		d = xrealloc(d, (size_t)(n + 1) * sizeof(*d));
		memset(&d[n], 0, sizeof(*d));
		if (!eq || bus_parse(p, (size_t)(eq - p), &d[n].bus) ||
		    d[n].bus == BUS_CDROM) {
			strbuf_addf(err, "'%.*s' is not TYPE=SIZE with TYPE one of AHCI, NVME, SCSI, VIRT",
				    (int)len, p);
			goto fail;
		}
		sz = xasprintf("%.*s", (int)(len - (size_t)(eq + 1 - p)),
			       eq + 1);
		/* TYPE=SIZE:FORMAT makes a disk of another format (raw). */
		if (strchr(sz, ':')) {
			char *fmt = strchr(sz, ':');

			*fmt++ = '\0';
			if (!format_is_valid(fmt)) {
				strbuf_addf(err, "unknown disk format '%s' (qcow2, raw, ...)",
					    fmt);
				free(sz);
				goto fail;
			}
			d[n].format = xstrdup(fmt);
		}
		r = parse_size(sz, 'G', &d[n].size);
		if (r || d[n].size < (1u << 20)) {
			strbuf_addf(err, "bad disk size '%s' (use e.g. 30G, at least 1M)",
				    sz);
			free(sz);
			goto fail;
		}
		free(sz);
		if (n == 16) {
			strbuf_addstr(err, "too many disks (at most 16)");
			goto fail;
		}
		n++;
		p = end ? end + 1 : p + len;
	}
	/* none at all is a VM whose disks are its images (-D '' -i) */
	*out = d;
	return n;
fail:
	disk_specs_free(d, n + 1);
	return -EINVAL;
}


int image_parse(const char *spec, struct disk_spec *out, struct strbuf *err)
{
	const char *eq = strchr(spec, '='), *rest, *eq2;

	memset(out, 0, sizeof(*out));
	if (!eq || bus_parse(spec, (size_t)(eq - spec), &out->bus)) {
		strbuf_addf(err, "'%s' is not TYPE=[FMT=]PATH with TYPE one of AHCI, NVME, SCSI, VIRT, CDROM",
			    spec);
		return -EINVAL;
	}
	rest = eq + 1;
	eq2 = strchr(rest, '=');
	if (eq2) {
		out->format = xasprintf("%.*s", (int)(eq2 - rest), rest);
		if (!format_is_valid(out->format)) {
			strbuf_addf(err, "unknown image format '%s'", out->format);
			free(out->format);
			out->format = NULL;
			return -EINVAL;
		}
		rest = eq2 + 1;
	}
	if (!*rest) {
		strbuf_addf(err, "'%s' names no image file", spec);
		free(out->format);
		out->format = NULL;
		return -EINVAL;
	}
	out->path = xstrdup(rest);
	return 0;
}

void share_spec_release(struct share_spec *s)
{
	free(s->id);
	free(s->dir);
	memset(s, 0, sizeof(*s));
}

int share_parse(const char *spec, struct share_spec *out, struct strbuf *err)
{
	const char *colon = strchr(spec, ':'), *dir;

	memset(out, 0, sizeof(*out));
	if (!colon || colon == spec) {
		strbuf_addf(err, "'%s' is not ID:[rw:]DIR", spec);
		return -EINVAL;
	}
	out->id = xasprintf("%.*s", (int)(colon - spec), spec);
	if (!name_is_valid(out->id) || strlen(out->id) > 31) {
		strbuf_addf(err, "bad share id '%s' (letters, digits, . _ -; at most 31)",
			    out->id);
		share_spec_release(out);
		return -EINVAL;
	}
	dir = colon + 1;
	if (str_starts_with(dir, "rw:")) {
		out->rw = true;
		dir += 3;
	} else if (str_starts_with(dir, "ro:")) {
		dir += 3;
	}
	if (!*dir) {
		strbuf_addf(err, "share '%s' names no directory", out->id);
		share_spec_release(out);
		return -EINVAL;
	}
	out->dir = xstrdup(dir);
	return 0;
}

void forward_spec_release(struct forward_spec *f)
{
	free(f->rule);
	free(f->host_addr);
	free(f->guest_addr);
	memset(f, 0, sizeof(*f));
}

/*
 * [ADDR]:PORT in s up to end.  PORT is plain decimal: QEMU would read a
 * leading 0 as octal.
 */
static int addr_port_parse(const char *s, const char *end, char **addr,
			   unsigned *port)
{
	const char *colon;
	char *num;
	uint64_t n;
	int r;

	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));

		if (!close || close + 1 == end || close[1] != ':')
			return -EINVAL;
		*addr = xasprintf("%.*s", (int)(close - s - 1), s + 1);
		colon = close + 1;
	} else {
		colon = memchr(s, ':', (size_t)(end - s));
		if (!colon)
			return -EINVAL;
		*addr = xasprintf("%.*s", (int)(colon - s), s);
	}
	num = xasprintf("%.*s", (int)(end - colon - 1), colon + 1);
	r = num[0] == '0' ? -EINVAL : parse_uint(num, 1, 65535, &n);
	free(num);
	if (r)
		return -EINVAL;
	*port = (unsigned)n;
	return 0;
}

/* A bare "tcp::5555-:22" is a hostfwd rule, as in the reference. */
int forward_parse(const char *spec, struct forward_spec *out,
		  struct strbuf *err)
{
	const char *body = spec, *dash;
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (strpbrk(spec, " \t"))
		goto out;
	if (str_starts_with(spec, "guestfwd=")) {
		if (strchr(spec + 9, '-')) {
			out->guestfwd = true;
			out->rule = xstrdup(spec);
			r = 0;
		}
		goto out;
	}
	if (str_starts_with(spec, "hostfwd="))
		body = spec + 8;
	if (str_starts_with(body, "tcp:"))
		out->proto = FWD_TCP;
	else if (str_starts_with(body, "udp:"))
		out->proto = FWD_UDP;
	else
		goto out;
	dash = strchr(body + 4, '-');
	if (!dash ||
	    addr_port_parse(body + 4, dash, &out->host_addr, &out->host_port) ||
	    addr_port_parse(dash + 1, dash + 1 + strlen(dash + 1),
			    &out->guest_addr, &out->guest_port))
		goto out;
	out->rule = xasprintf("hostfwd=%s", body);
	r = 0;
out:
	if (r) {
		forward_spec_release(out);
		strbuf_addf(err, "bad forward '%s' (use e.g. tcp::5555-:22)",
			    spec);
	}
	return r;
}

/* The first tcp rule to guest_port (local: one 127.0.0.1 reaches). */
static unsigned forward_port(const struct vm_conf *c, unsigned guest_port,
			     bool local)
{
	size_t i;

	for (i = 0; i < c->forwards.nr; i++) {
		const struct forward_spec *f = &c->forwards.v[i];

		if (!f->guestfwd && f->proto == FWD_TCP &&
		    f->guest_port == guest_port &&
		    (!local || !*f->host_addr ||
		     !strcmp(f->host_addr, "0.0.0.0") ||
		     !strncmp(f->host_addr, "127.", 4)))
			return f->host_port;
	}
	return 0;
}

unsigned conf_forward_host_port(const struct vm_conf *c, unsigned guest_port)
{
	return forward_port(c, guest_port, false);
}

unsigned conf_forward_local_port(const struct vm_conf *c, unsigned guest_port)
{
	return forward_port(c, guest_port, true);
}

/*
 * The item operations of each list key: parse one item, release it,
 * write it back as text that parses to the same item.
 */
static int path_parse(const char *text, void *item, struct strbuf *err)
{
	(void)err;
	*(char **)item = xstrdup(text);
	return 0;
}

static void path_release(void *item)
{
	free(*(char **)item);
}

static void path_format(const void *item, struct strbuf *out)
{
	strbuf_addstr(out, *(char *const *)item);
}

static int fwd_item_parse(const char *text, void *item, struct strbuf *err)
{
	return forward_parse(text, item, err);
}

static void fwd_release(void *item)
{
	forward_spec_release(item);
}

static void fwd_format(const void *item, struct strbuf *out)
{
	const struct forward_spec *f = item;

	strbuf_addstr(out, f->rule);
}

static int share_item_parse(const char *text, void *item, struct strbuf *err)
{
	return share_parse(text, item, err);
}

static void share_release(void *item)
{
	share_spec_release(item);
}

static void share_format(const void *item, struct strbuf *out)
{
	const struct share_spec *s = item;

	strbuf_addf(out, "%s:", s->id);
	/* ro: keeps a directory named like "rw:x" from reading as rw. */
	if (s->rw)
		strbuf_addstr(out, "rw:");
	else if (str_starts_with(s->dir, "rw:") ||
		 str_starts_with(s->dir, "ro:"))
		strbuf_addstr(out, "ro:");
	strbuf_addstr(out, s->dir);
}

static int image_item_parse(const char *text, void *item, struct strbuf *err)
{
	return image_parse(text, item, err);
}

static void image_format(const void *item, struct strbuf *out)
{
	const struct disk_spec *d = item;

	strbuf_addf(out, "%s=", disk_bus_name(d->bus));
	if (d->format)
		strbuf_addf(out, "%s=", d->format);
	strbuf_addstr(out, d->path);
}

static void disk_format(const void *item, struct strbuf *out)
{
	const struct disk_spec *d = item;

	strbuf_addf(out, "%s=", disk_bus_name(d->bus));
	strbuf_add_size(out, d->size);
	if (d->format)
		strbuf_addf(out, ":%s", d->format);
}

static const struct item_ops item_ops_of[] = {
	[K_LIST] = { sizeof(char *), path_parse, path_release, path_format },
	[K_FWDS] = { sizeof(struct forward_spec), fwd_item_parse,
		     fwd_release, fwd_format },
	[K_SHARES] = { sizeof(struct share_spec), share_item_parse,
		       share_release, share_format },
	[K_IMAGES] = { sizeof(struct disk_spec), image_item_parse,
		       disk_release, image_format },
	/* One value, "AHCI=30G,NVME=10G", that disks_parse reads. */
	[K_DISKS] = { sizeof(struct disk_spec), NULL, disk_release,
		      disk_format },
};

/* NULL for a key that holds no list. */
static const struct item_ops *item_ops(const struct conf_key *k)
{
	if ((size_t)k->type >= sizeof(item_ops_of) / sizeof(item_ops_of[0]) ||
	    !item_ops_of[k->type].size)
		return NULL;
	return &item_ops_of[k->type];
}

/*
 * Every struct NAME_list of conf.h, seen as bytes: the lists are copied
 * in and out rather than reached through a pointer of another type.
 */
struct any_list {
	char *v;
	size_t nr;
};

#define IS_ANY_LIST(t) \
	_Static_assert(sizeof(struct t) == sizeof(struct any_list) && \
		       offsetof(struct t, nr) == \
		       offsetof(struct any_list, nr), \
		       #t " is not { T *v; size_t nr; }")
IS_ANY_LIST(disk_list);
IS_ANY_LIST(share_list);
IS_ANY_LIST(forward_list);
IS_ANY_LIST(path_list);
#undef IS_ANY_LIST

/* A list key: its value is items, which come one by one. */
static bool is_list(const struct conf_key *k)
{
	return item_ops(k) && item_ops(k)->parse;
}

static struct any_list list_get(const struct vm_conf *c,
				const struct conf_key *k)
{
	struct any_list l;

	memcpy(&l, CFIELD(c, k, char), sizeof(l));
	return l;
}

static void list_put(struct vm_conf *c, const struct conf_key *k,
		     const struct any_list *l)
{
	memcpy(FIELD(c, k, char), l, sizeof(*l));
}

/* Release the items of l and its array; l is left empty. */
static void list_free(const struct conf_key *k, struct any_list *l)
{
	const struct item_ops *o = item_ops(k);
	size_t i;

	for (i = 0; i < l->nr; i++)
		o->release(l->v + i * o->size);
	free(l->v);
	l->v = NULL;
	l->nr = 0;
}

static void list_clear(struct vm_conf *c, const struct conf_key *k)
{
	struct any_list l = list_get(c, k);

	list_free(k, &l);
	list_put(c, k, &l);
}

/* Move the items of add to the end of the list of k; add is left empty. */
static void list_append(struct vm_conf *c, const struct conf_key *k,
			struct any_list *add)
{
	const struct item_ops *o = item_ops(k);
	struct any_list l = list_get(c, k);

	if (add->nr) {
		l.v = xrealloc(l.v, (l.nr + add->nr) * o->size);
		memcpy(l.v + l.nr * o->size, add->v, add->nr * o->size);
		l.nr += add->nr;
		list_put(c, k, &l);
	}
	free(add->v);
	add->v = NULL;
	add->nr = 0;
}

/* Each item of l as text, in order. */
static void list_text(const struct conf_key *k, const struct any_list *l,
		      struct strvec *out)
{
	const struct item_ops *o = item_ops(k);
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; i < l->nr; i++) {
		strbuf_reset(&sb);
		o->format(l->v + i * o->size, &sb);
		strvec_push(out, sb.buf);
	}
	strbuf_release(&sb);
}

/* vm.disks as text: "AHCI=30G,NVME=10G:raw".  Caller frees. */
static char *disks_text(const struct conf_key *k, const struct any_list *l)
{
	struct strvec sv = STRVEC_INIT;
	char *j;

	list_text(k, l, &sv);
	j = strvec_join(&sv, ",", false);
	strvec_clear(&sv);
	return j;
}

static int parse_secs(const char *v, unsigned *out)
{
	struct strbuf num = STRBUF_INIT;
	uint64_t n, mult = 1;
	size_t len = strlen(v);
	int r;

	if (len && strchr("smh", v[len - 1])) {
		mult = v[len - 1] == 's' ? 1 : v[len - 1] == 'm' ? 60 : 3600;
		len--;
	}
	strbuf_add(&num, v, len);
	r = parse_uint(num.buf, 0, 30 * 86400, &n);
	strbuf_release(&num);
	if (r)
		return r;
	n *= mult;
	if (n > 30 * 86400)
		return -ERANGE;
	*out = (unsigned)n;
	return 0;
}

/*
 * guest.conf must read back what it is given: inih cuts lines at 199
 * characters.  text is the value as conf_write_guest would write it.
 */
static int check_written_back(const char *given, const char *text,
			      struct strbuf *err)
{
	if (strlen(text) <= CONF_VALUE_MAX)
		return 0;
	strbuf_addf(err, "'%s' is too long when written back as %s (at most %d characters)",
		    given, text, CONF_VALUE_MAX);
	return -EINVAL;
}

static int set_disks(struct vm_conf *c, const struct conf_key *k,
		     const char *v, struct strbuf *err)
{
	struct disk_spec *d;
	struct any_list l;
	char *text;
	int r;

	r = disks_parse(v, &d, err);
	if (r < 0)
		return r;
	l.v = (char *)d;
	l.nr = (size_t)r;
	/* 1.5G comes back as 1536M, which may be longer. */
	text = disks_text(k, &l);
	r = check_written_back(v, text, err);
	free(text);
	if (!r) {
		list_clear(c, k);
		list_append(c, k, &l);
	}
	list_free(k, &l);
	return r;
}

/*
 * Files hold several items a line; the CLI gives one.  Items append; an
 * empty value empties the list; the first value from a new layer
 * replaces the older layer's list.  A value with a bad item changes
 * nothing.
 */
static int set_list(struct vm_conf *c, const struct conf_key *k,
		    const char *v, enum conf_layer layer, struct strbuf *err)
{
	const struct item_ops *o = item_ops(k);
	unsigned char *list_layer = &c->list_layer[k - keys];
	struct strvec items = STRVEC_INIT;
	struct strbuf text = STRBUF_INIT, quoted = STRBUF_INIT;
	struct any_list add = { NULL, 0 };
	size_t i;
	int r = 0;

	if (!*v) {
		list_clear(c, k);
		*list_layer = (unsigned char)layer;
		return 0;
	}
	if (layer == LAYER_CLI) {
		strvec_push(&items, v);
	} else if (str_split_args(v, &items)) {
		strbuf_addf(err, "unterminated quote in '%s'", v);
		r = -EINVAL;
	}
	add.v = xcalloc(items.nr, o->size);
	for (i = 0; !r && i < items.nr; i++) {
		char *item = add.v + i * o->size;

		r = o->parse(items.v[i], item, err);
		if (r)
			break;
		add.nr++;
		/* guest.conf has an item a line, shell-quoted. */
		strbuf_reset(&text);
		strbuf_reset(&quoted);
		o->format(item, &text);
		strbuf_add_shquoted(&quoted, text.buf);
		r = check_written_back(items.v[i], quoted.buf, err);
	}
	if (!r) {
		if (*list_layer != layer)
			list_clear(c, k);
		*list_layer = (unsigned char)layer;
		list_append(c, k, &add);
	}
	list_free(k, &add);
	strbuf_release(&text);
	strbuf_release(&quoted);
	strvec_clear(&items);
	return r;
}

/* A string: free text, a name, a profile's name or a SHA-256. */
static int set_text(struct vm_conf *c, const struct conf_key *k,
		    const char *v, struct strbuf *err)
{
	switch (k->type) {
	case K_STR:
		set_str(FIELD(c, k, char *), v);
		return 0;
	case K_NAME:
		if (!name_is_valid(v)) {
			strbuf_addf(err, "bad name '%s' (letters, digits, . _ -, at most 64, not starting with - or .)",
				    v);
			return -EINVAL;
		}
		set_str(FIELD(c, k, char *), v);
		return 0;
	case K_SHA: {
		size_t i, len = strlen(v);

		for (i = 0; i < len; i++)
			if (!isxdigit((unsigned char)v[i]))
				break;
		if (len && (len != 64 || i != len)) {
			strbuf_addf(err, "'%s' is not a SHA-256 (64 hex digits)",
				    v);
			return -EINVAL;
		}
		set_str(FIELD(c, k, char *), v);
		return 0;
	}
	case K_PROFILE:
		if (*v && !name_is_valid(v)) {
			strbuf_addf(err, "bad name '%s' (letters, digits, . _ -, or empty)",
				    v);
			return -EINVAL;
		}
		set_str(FIELD(c, k, char *), v);
		return 0;
	default:
		return -EINVAL;
	}
}

/* A number: a count, a size, a port or a duration, each in its range. */
static int set_number(struct vm_conf *c, const struct conf_key *k,
		      const char *v, struct strbuf *err)
{
	uint64_t n;
	int r;

	switch (k->type) {
	case K_UINT:
		r = parse_uint(v, k->min, k->max, &n);
		if (r) {
			strbuf_addf(err, "'%s' is not a number from %u to %u", v,
				    k->min, k->max);
			return -EINVAL;
		}
		*FIELD(c, k, unsigned) = (unsigned)n;
		return 0;
	case K_MEM:
		r = parse_size(v, 'M', &n);
		if (r || n < (16u << 20) || n > (16ULL << 40)) {
			strbuf_addf(err, "bad memory size '%s' (use e.g. 512M or 4G, at least 16M)",
				    v);
			return -EINVAL;
		}
		*FIELD(c, k, uint64_t) = n;
		return 0;
	case K_CAP:
		n = 0;
		r = strcmp(v, "0") ? parse_size(v, 'M', &n) : 0;
		if (r) {
			strbuf_addf(err, "bad size '%s' (use e.g. 800M or 20G; 0 for none)",
				    v);
			return -EINVAL;
		}
		*FIELD(c, k, uint64_t) = n;
		return 0;
	case K_BYTES:
		/* a cap on what the guest can make vm print and keep */
		r = parse_size(v, 'M', &n);
		if (r || n < 4096 || n > (1ULL << 40)) {
			strbuf_addf(err, "bad size '%s' (use e.g. 64K or 16M, from 4K to 1T)",
				    v);
			return -EINVAL;
		}
		*FIELD(c, k, uint64_t) = n;
		return 0;
	case K_PORT:
		if (!*v) {
			*FIELD(c, k, unsigned) = 0;
			return 0;
		}
		if (parse_uint(v, 1, 65535, &n)) {
			strbuf_addf(err, "bad port '%s' (1 to 65535, or empty for none)",
				    v);
			return -EINVAL;
		}
		*FIELD(c, k, unsigned) = (unsigned)n;
		return 0;
	case K_SECS: {
		unsigned s;

		if (parse_secs(v, &s) || s < k->min) {
			strbuf_addf(err, "bad duration '%s' (seconds, or with s, m, h)",
				    v);
			return -EINVAL;
		}
		*FIELD(c, k, unsigned) = s;
		return 0;
	}
	default:
		return -EINVAL;
	}
}

/*
 * The words of an enumerated key, in the order of its enum's values
 * (accel_mode, agent_mode, rescue_boot), NULL-terminated.
 */
static const char *const *enum_words(enum ktype t)
{
	static const char *const accel[] = { "auto", "kvm", "tcg", NULL };
	static const char *const agent[] = { "auto", "yes", "no", NULL };
	static const char *const boot[] = { "kernel", "cdrom", NULL };

	return t == K_ACCEL ? accel : t == K_AGENT ? agent : boot;
}

_Static_assert(sizeof(enum accel_mode) == sizeof(unsigned) &&
	       sizeof(enum agent_mode) == sizeof(unsigned) &&
	       sizeof(enum rescue_boot) == sizeof(unsigned),
	       "enumerated keys are stored as unsigned");

/* An enumerated key from one of its words. */
static int set_word(struct vm_conf *c, const struct conf_key *k,
		    const char *v, struct strbuf *err)
{
	const char *const *w = enum_words(k->type);
	unsigned i, n;

	for (i = 0; w[i]; i++)
		if (!strcmp(v, w[i])) {
			*FIELD(c, k, unsigned) = i;
			return 0;
		}
	n = i;
	strbuf_addf(err, "'%s' is not ", v);
	for (i = 0; i < n; i++)
		strbuf_addf(err, "%s%s", w[i],
			    i + 2 < n ? ", " : i + 1 < n ? " or " : "");
	return -EINVAL;
}

/* One of a few words: yes or no, an accelerator, a rescue's boot. */
static int set_choice(struct vm_conf *c, const struct conf_key *k,
		      const char *v, struct strbuf *err)
{
	bool b;

	switch (k->type) {
	case K_BOOL:
		if (parse_bool(v, &b)) {
			strbuf_addf(err, "'%s' is not yes or no", v);
			return -EINVAL;
		}
		*FIELD(c, k, bool) = b;
		return 0;
	case K_ACCEL:
	case K_AGENT:
	case K_BOOT:
		return set_word(c, k, v, err);
	default:
		return -EINVAL;
	}
}

static const char *const ready_words[] = { "auto", "ssh", "tcp", "agent" };

/* ready: auto, ssh, agent, or tcp:PORT (the guest's port). */
static int set_ready(struct vm_conf *c, const struct conf_key *k,
		     const char *v, struct strbuf *err)
{
	struct ready_conf *r = FIELD(c, k, struct ready_conf);
	uint64_t port;

	if (!strcmp(v, "auto") || !strcmp(v, "ssh") || !strcmp(v, "agent")) {
		r->mode = !strcmp(v, "auto") ? READY_AUTO :
			  !strcmp(v, "ssh") ? READY_SSH : READY_AGENT;
		r->port = 0;
		return 0;
	}
	if (str_starts_with(v, "tcp:") && !parse_uint(v + 4, 1, 65535, &port)) {
		r->mode = READY_TCP;
		r->port = (unsigned)port;
		return 0;
	}
	strbuf_addf(err, "'%s' is not auto, ssh, agent or tcp:PORT (the guest's port, 1 to 65535)",
		    v);
	return -EINVAL;
}

static int set_value(struct vm_conf *c, const struct conf_key *k,
		     const char *v, enum conf_layer layer, struct strbuf *err)
{
	switch (k->type) {
	case K_READY:
		return set_ready(c, k, v, err);
	case K_STR:
	case K_NAME:
	case K_SHA:
	case K_PROFILE:
		return set_text(c, k, v, err);
	case K_UINT:
	case K_MEM:
	case K_CAP:
	case K_BYTES:
	case K_PORT:
	case K_SECS:
		return set_number(c, k, v, err);
	case K_BOOL:
	case K_ACCEL:
	case K_AGENT:
	case K_BOOT:
		return set_choice(c, k, v, err);
	case K_DISKS:
		return set_disks(c, k, v, err);
	case K_LIST:
	case K_FWDS:
	case K_SHARES:
	case K_IMAGES:
		return set_list(c, k, v, layer, err);
	}
	return -EINVAL;
}

int conf_set(struct vm_conf *c, const char *section, const char *key,
	     const char *value, enum conf_layer layer, struct strbuf *err)
{
	const struct conf_key *k;
	const char *sect = section;
	size_t idx;
	int r;

	/* [rescue.NAME] applies only when profile NAME is selected. */
	if (str_starts_with(section, "rescue.")) {
		const char *prof = section + 7;

		if (!name_is_valid(prof)) {
			strbuf_addf(err, "bad rescue profile name '%s'", prof);
			return -ENOENT;
		}
		if (!c->rescue_profile || strcmp(c->rescue_profile, prof)) {
			struct vm_conf scratch;

			if (!find_key("rescue", key)) {
				strbuf_addf(err, "unknown key '%s' in [%s]", key,
					    section);
				return -ENOENT;
			}
			conf_init(&scratch);
			r = conf_set(&scratch, "rescue", key, value, layer, err);
			conf_release(&scratch);
			return r;
		}
		sect = "rescue";
	}
	k = find_key(sect, key);
	if (!k) {
		if (strcmp(sect, "vm") && strcmp(sect, "rescue"))
			strbuf_addf(err, "unknown section [%s]", section);
		else
			strbuf_addf(err, "unknown key '%s' in [%s]", key,
				    section);
		return -ENOENT;
	}
	/*
	 * guest.conf must read back: inih cuts lines at 199 characters and
	 * takes " ;" as the start of a comment.
	 */
	if (strlen(value) > CONF_VALUE_MAX) {
		strbuf_addf(err, "value of %s is too long (at most %d characters)",
			    key, CONF_VALUE_MAX);
		return -EINVAL;
	}
	if (strstr(value, " ;") || strstr(value, "\t;")) {
		strbuf_addf(err, "value of %s contains ' ;', which starts a comment",
			    key);
		return -EINVAL;
	}
	idx = (size_t)(k - keys);
	if (c->layer[idx] > layer) {
		/* Overridden by a higher layer: only check the value. */
		struct vm_conf scratch;

		conf_init(&scratch);
		r = set_value(&scratch, k, value, layer, err);
		conf_release(&scratch);
		return r;
	}
	r = set_value(c, k, value, layer, err);
	if (!r)
		c->layer[idx] = (unsigned char)layer;
	return r;
}

static unsigned files_read;

unsigned conf_files_read(void)
{
	return files_read;
}

struct load_ctx {
	struct conf_file *f;
	struct vm_conf scratch;	/* where each entry is checked */
	const char *only;	/* the one section allowed, or NULL */
	struct strbuf msg;
};

void conf_file_add(struct conf_file *f, const char *section,
		   const char *key, const char *value)
{
	struct conf_entry *e;

	if (f->nr == f->alloc) {
		f->alloc = f->alloc ? 2 * f->alloc : 16;
		f->v = xrealloc(f->v, f->alloc * sizeof(*f->v));
	}
	e = &f->v[f->nr++];
	e->section = xstrdup(section);
	e->key = xstrdup(key);
	e->value = xstrdup(value);
}

static int ini_cb(void *user, const char *section, const char *name,
		  const char *value)
{
	struct load_ctx *lc = user;
	struct strbuf err = STRBUF_INIT;
	int r;

	if (!*section) {
		strbuf_addf(&err, "key '%s' outside a section (use [vm])",
			    name);
		r = -EINVAL;
	} else if (lc->only && strcmp(section, lc->only)) {
		strbuf_addf(&err, "only [%s] belongs in this file, not [%s]",
			    lc->only, section);
		r = -EINVAL;
	} else {
		r = conf_set(&lc->scratch, section, name, value, lc->f->layer,
			     &err);
		/* a bad value names its key: "guest.conf:3: cores: ..." */
		if (r && !str_starts_with(err.buf, "unknown ") &&
		    !str_starts_with(err.buf, "bad rescue profile")) {
			struct strbuf k = STRBUF_INIT;

			strbuf_addf(&k, "%s: %s", name, err.buf);
			strbuf_reset(&err);
			strbuf_addstr(&err, k.buf);
			strbuf_release(&k);
		}
	}
	if (!r)
		conf_file_add(lc->f, section, name, value);
	if (r && !lc->msg.len)
		strbuf_addstr(&lc->msg, err.buf);
	strbuf_release(&err);
	return r ? 0 : 1;
}

/* No settings file of ours comes near this; /dev/zero never ends. */
#define CONF_FILE_MAX (1 << 20)

int conf_file_read(struct conf_file *f, const char *path,
		   enum conf_layer layer, const char *only, bool optional,
		   struct strbuf *err)
{
	struct load_ctx lc = { f, { 0 }, only, STRBUF_INIT };
	struct strbuf text = STRBUF_INIT;
	int r;

	*f = (struct conf_file)CONF_FILE_INIT;
	f->path = xstrdup(path);
	f->layer = layer;
	r = fs_read_file(path, CONF_FILE_MAX, &text);
	if (r) {
		if (r == -ENOENT && optional)
			return 0;
		if (r == -EFBIG)
			strbuf_addf(err, "%s: larger than %d KiB, not a settings file",
				    path, CONF_FILE_MAX >> 10);
		else
			strbuf_addf(err, "%s: %s", path, fs_read_strerror(r));
		strbuf_release(&text);
		return r;
	}
	files_read++;
	if (memchr(text.buf, '\0', text.len)) {
		strbuf_addf(err, "%s: binary data, not a settings file", path);
		strbuf_release(&text);
		return -EINVAL;
	}
	conf_init(&lc.scratch);
	r = ini_parse_string(text.buf, ini_cb, &lc);
	conf_release(&lc.scratch);
	strbuf_release(&text);
	if (r > 0) {
		strbuf_addf(err, "%s:%d: %s", path, r,
			    lc.msg.len ? lc.msg.buf : "syntax error");
		r = -EINVAL;
	} else if (r < 0) {
		strbuf_addf(err, "%s: cannot parse", path);
		r = -EINVAL;
	}
	strbuf_release(&lc.msg);
	return r;
}

int conf_file_apply(const struct conf_file *f, struct vm_conf *c,
		    struct strbuf *err)
{
	size_t i;

	for (i = 0; i < f->nr; i++) {
		const struct conf_entry *e = &f->v[i];
		struct strbuf e2 = STRBUF_INIT;
		int r = conf_set(c, e->section, e->key, e->value, f->layer,
				 &e2);

		/* checked when read: only a change since could fail here */
		if (r) {
			strbuf_addf(err, "%s: %s: %s", f->path, e->key, e2.buf);
			strbuf_release(&e2);
			return r;
		}
		strbuf_release(&e2);
	}
	return 0;
}

const char *conf_file_value(const struct conf_file *f, const char *section,
			    const char *key)
{
	size_t i = f->nr;

	while (i-- > 0)
		if (!strcmp(f->v[i].section, section) &&
		    !strcmp(f->v[i].key, key))
			return f->v[i].value;
	return NULL;
}

void conf_file_release(struct conf_file *f)
{
	size_t i;

	for (i = 0; i < f->nr; i++) {
		free(f->v[i].section);
		free(f->v[i].key);
		free(f->v[i].value);
	}
	free(f->v);
	free(f->path);
	*f = (struct conf_file)CONF_FILE_INIT;
}

int conf_load_file(struct vm_conf *c, const char *path, enum conf_layer layer,
		   bool optional, struct strbuf *err)
{
	struct conf_file f;
	int r = conf_file_read(&f, path, layer, NULL, optional, err);

	if (!r)
		r = conf_file_apply(&f, c, err);
	conf_file_release(&f);
	return r;
}

static void key_to_text(const struct vm_conf *c, const struct conf_key *k,
			struct strbuf *out, struct strvec *items)
{
	switch (k->type) {
	case K_STR: case K_NAME: case K_PROFILE: case K_SHA: {
		const char *s = *CFIELD(c, k, char *const);

		strbuf_addstr(out, s ? s : "");
		break;
	}
	case K_UINT: case K_SECS:
		strbuf_addf(out, "%u", *CFIELD(c, k, unsigned));
		break;
	case K_MEM: case K_BYTES:
		strbuf_add_size(out, *CFIELD(c, k, uint64_t));
		break;
	case K_CAP:
		if (*CFIELD(c, k, uint64_t))
			strbuf_add_size(out, *CFIELD(c, k, uint64_t));
		else
			strbuf_addch(out, '0');
		break;
	case K_DISKS: {
		struct any_list l = list_get(c, k);
		char *j = disks_text(k, &l);

		strbuf_addstr(out, j);
		free(j);
		break;
	}
	case K_PORT: {
		unsigned p = *CFIELD(c, k, unsigned);

		if (p)
			strbuf_addf(out, "%u", p);
		break;
	}
	case K_BOOL:
		strbuf_addstr(out, *CFIELD(c, k, bool) ? "yes" : "no");
		break;
	case K_READY: {
		const struct ready_conf *r = CFIELD(c, k, struct ready_conf);

		strbuf_addstr(out, ready_words[r->mode]);
		if (r->mode == READY_TCP)
			strbuf_addf(out, ":%u", r->port);
		break;
	}
	case K_ACCEL:
	case K_AGENT:
	case K_BOOT:
		strbuf_addstr(out, enum_words(k->type)[*CFIELD(c, k, unsigned)]);
		break;
	case K_LIST: case K_FWDS: case K_SHARES: case K_IMAGES: {
		struct any_list l = list_get(c, k);
		struct strvec sv = STRVEC_INIT;
		char *j;

		list_text(k, &l, &sv);
		j = strvec_join(&sv, " ", true);
		strbuf_addstr(out, j);
		free(j);
		if (items)
			strvec_pushv(items, sv.v);
		strvec_clear(&sv);
		break;
	}
	}
}

void conf_each(const struct vm_conf *c,
	       void (*fn)(const char *section, const char *key,
			  const char *value, void *data),
	       void *data)
{
	struct strbuf v = STRBUF_INIT;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		strbuf_reset(&v);
		key_to_text(c, &keys[i], &v, NULL);
		fn(keys[i].section, keys[i].name, v.buf, data);
	}
	strbuf_release(&v);
}

int conf_write_guest(const struct vm_conf *c, const char *path)
{
	struct strbuf out = STRBUF_INIT, v = STRBUF_INIT;
	const char *section = NULL;
	size_t i, j;
	int r;

	strbuf_addstr(&out, "# Written by vm @create; settings of this VM.\n"
			    "# See vm(1) and conf/vm.conf for every key.\n");
	for (i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &keys[i];
		struct strvec items = STRVEC_INIT;

		if (!k->identity && (c->layer[i] < LAYER_GUEST ||
				     (k->transient && c->layer[i] == LAYER_CLI)))
			continue;
		if (!section || strcmp(section, k->section)) {
			section = k->section;
			strbuf_addf(&out, "\n[%s]\n", section);
		}
		strbuf_reset(&v);
		key_to_text(c, k, &v, &items);
		if (is_list(k)) {
			/* One item a line keeps lines short for inih. */
			if (!items.nr)
				strbuf_addf(&out, "%s =\n", k->name);
			for (j = 0; j < items.nr; j++) {
				struct strbuf q = STRBUF_INIT;

				strbuf_add_shquoted(&q, items.v[j]);
				strbuf_addf(&out, "%s = %s\n", k->name, q.buf);
				strbuf_release(&q);
			}
		} else {
			strbuf_addf(&out, "%s = %s\n", k->name, v.buf);
		}
		strvec_clear(&items);
	}
	r = fs_write_atomic(path, out.buf, out.len, 0644);
	strbuf_release(&out);
	strbuf_release(&v);
	return r;
}

/* A path that names a local file outside dir (a file under it does not). */
static bool path_outside(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (!*path)
		return false;
	if (strstr(path, "/../") || str_starts_with(path, "../") ||
	    str_ends_with(path, "/..") || !strcmp(path, ".."))
		return true;
	if (path[0] != '/')
		return false;	/* relative: to HOSTDIR */
	return strncmp(path, dir, n) || path[n] != '/';
}

/*
 * A file the host gives the guest: a local path outside dir, a file://
 * URL, or (digest) a URL whose download no #sha256= pins.
 */
static bool file_reaches_host(const char *spec, const char *dir, bool digest)
{
	if (str_starts_with(spec, "file:"))
		return true;
	if (strstr(spec, "://"))
		return digest && !strstr(spec, "#sha256=");
	return path_outside(spec, dir);
}

/* What section.key = value of a snapshot's guest.conf reaches. */
static bool entry_reaches_host(const struct conf_entry *e, const char *dir)
{
	const char *sect = str_starts_with(e->section, "rescue.") ? "rescue" :
								     e->section;
	const struct conf_key *k = find_key(sect, e->key);
	struct strvec items = STRVEC_INIT;
	bool yes = false;
	size_t i;

	if (!k || k->reach == R_GUEST)
		return false;	/* an unknown key is refused when loaded */
	if (k->reach == R_HOST)
		return true;
	if (k->type != K_IMAGES)	/* base: its digest is recorded */
		return file_reaches_host(e->value, dir, false);
	if (str_split_args(e->value, &items))
		yes = true;
	for (i = 0; !yes && i < items.nr; i++) {
		struct disk_spec d;
		struct strbuf err = STRBUF_INIT;
		int bad = image_parse(items.v[i], &d, &err);

		yes = bad || file_reaches_host(d.path, dir, true);
		if (!bad) {
			free(d.format);
			free(d.path);
		}
		strbuf_release(&err);
	}
	strvec_clear(&items);
	return yes;
}

/* The values f gives section.key, in order, as one text. */
static char *values_of(const struct conf_file *f, const char *sect,
		       const char *key)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; i < f->nr; i++)
		if (!strcmp(f->v[i].section, sect) && !strcmp(f->v[i].key, key))
			strbuf_addf(&sb, "%s\n", f->v[i].value);
	return strbuf_detach(&sb);
}

/* The built-in value of section.key as values_of gives a file's. */
static char *default_values(const char *sect, const char *key)
{
	const struct conf_key *k = find_key(str_starts_with(sect, "rescue.") ?
					    "rescue" : sect, key);
	struct strbuf v = STRBUF_INIT;
	struct strvec items = STRVEC_INIT;
	struct vm_conf d;
	size_t i;

	if (!k)
		return xstrdup("");
	conf_init(&d);
	key_to_text(&d, k, &v, &items);
	if (is_list(k)) {
		strbuf_reset(&v);
		for (i = 0; i < items.nr; i++)
			strbuf_addf(&v, "%s\n", items.v[i]);
	} else {
		strbuf_addch(&v, '\n');
	}
	conf_release(&d);
	strvec_clear(&items);
	return strbuf_detach(&v);
}

/* The key that decides for key: base for base_sha256, else key. */
static const char *leader(const char *sect, const char *key)
{
	size_t i;

	if (str_starts_with(sect, "rescue."))
		sect = "rescue";
	for (i = 0; i < NKEYS; i++) {
		size_t n = strlen(keys[i].name);

		if (!strcmp(keys[i].section, sect) && keys[i].reach != R_GUEST &&
		    !strncmp(key, keys[i].name, n) && key[n] == '_')
			return keys[i].name;
	}
	return key;
}

/* Whether the snapshot's section.key stays, or this host's takes it. */
static bool host_decides(const struct conf_file *snap, const char *sect,
			 const char *key, const char *dir)
{
	size_t i;

	for (i = 0; i < snap->nr; i++)
		if (!strcmp(snap->v[i].section, sect) &&
		    !strcmp(snap->v[i].key, key) &&
		    entry_reaches_host(&snap->v[i], dir))
			return true;
	return false;
}

static bool listed(const struct strvec *v, const char *s)
{
	size_t i;

	for (i = 0; i < v->nr; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

/* Every section.key either file sets, each once, as "section\nkey". */
static void keys_set(const struct conf_file *a, const struct conf_file *b,
		     struct strvec *out)
{
	const struct conf_file *f[2] = { a, b };
	size_t i, j;

	for (j = 0; j < 2; j++)
		for (i = 0; i < f[j]->nr; i++) {
			char *id = xasprintf("%s\n%s", f[j]->v[i].section,
					     f[j]->v[i].key);

			if (!listed(out, id))
				strvec_push(out, id);
			free(id);
		}
}

void conf_file_keep_host(const struct conf_file *snap,
			 const struct conf_file *host, const char *hostdir,
			 struct conf_file *out, struct strvec *dropped)
{
	struct strvec ids = STRVEC_INIT, hosts = STRVEC_INIT;
	size_t i;

	keys_set(snap, host, &ids);
	/* the keys this host decides: those whose leader reaches it */
	for (i = 0; i < ids.nr; i++) {
		char *sect = xstrdup(ids.v[i]), *key = strchr(sect, '\n');
		const char *lead;
		char *a, *b;

		*key++ = '\0';
		lead = leader(sect, key);
		if (host_decides(snap, sect, lead, hostdir) ||
		    host_decides(host, sect, lead, hostdir)) {
			strvec_push(&hosts, ids.v[i]);
			a = values_of(snap, sect, key);
			b = values_of(host, sect, key);
			/* what this host has without a value of its own */
			if (!*b) {
				free(b);
				b = default_values(sect, key);
			}
			if (*a && strcmp(a, b) && !strcmp(lead, key))
				strvec_pushf(dropped, "%s%s%s",
					     strcmp(sect, "vm") ? sect : "",
					     strcmp(sect, "vm") ? "." : "", key);
			free(a);
			free(b);
		}
		free(sect);
	}
	for (i = 0; i < snap->nr; i++) {
		char *id = xasprintf("%s\n%s", snap->v[i].section,
				     snap->v[i].key);

		if (!listed(&hosts, id))
			conf_file_add(out, snap->v[i].section, snap->v[i].key,
				      snap->v[i].value);
		free(id);
	}
	for (i = 0; i < host->nr; i++) {
		char *id = xasprintf("%s\n%s", host->v[i].section,
				     host->v[i].key);

		if (listed(&hosts, id))
			conf_file_add(out, host->v[i].section, host->v[i].key,
				      host->v[i].value);
		free(id);
	}
	strvec_clear(&ids);
	strvec_clear(&hosts);
}

int conf_file_write(const struct conf_file *f, const char *path)
{
	struct strbuf out = STRBUF_INIT;
	struct strvec sections = STRVEC_INIT;
	size_t i, j;
	int r;

	strbuf_addstr(&out, "# Settings of this VM (a snapshot's, this host's where they reach it).\n");
	for (i = 0; i < f->nr; i++)
		if (!listed(&sections, f->v[i].section))
			strvec_push(&sections, f->v[i].section);
	for (j = 0; j < sections.nr; j++) {
		strbuf_addf(&out, "\n[%s]\n", sections.v[j]);
		for (i = 0; i < f->nr; i++)
			if (!strcmp(f->v[i].section, sections.v[j]))
				strbuf_addf(&out, "%s = %s\n", f->v[i].key,
					    f->v[i].value);
	}
	r = fs_write_atomic(path, out.buf, out.len, 0644);
	strvec_clear(&sections);
	strbuf_release(&out);
	return r;
}
