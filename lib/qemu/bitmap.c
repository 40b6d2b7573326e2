#include "qemu/bitmap.h"

#include <errno.h>
#include <json-c/json.h>
#include <libnbd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/proc.h"

/* No answer from an NBD server for this long is a failure. */
#define BITMAP_IO_TIMEOUT_S 30
/* qemu-nbd opens the image and listens within this. */
#define BITMAP_SERVE_TIMEOUT_MS (30 * 1000)
#define QEMU_IMG_BITMAP_TIMEOUT_MS (60 * 1000)
/* One NBD_CMD_BLOCK_STATUS asks about at most this much. */
#define BITMAP_STATUS_CHUNK (1ull << 30)

char *bitmap_name(const char *state)
{
	return xasprintf(BITMAP_PREFIX "%.64s", state);
}

bool bitmap_name_ok(const char *name)
{
	size_t i, n = strlen(BITMAP_PREFIX);

	if (strncmp(name, BITMAP_PREFIX, n) || strlen(name) != n + 64)
		return false;
	for (i = n; name[i]; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return false;
	return true;
}

/* Why bitmap b (NULL: there is none of that name) cannot serve, or NULL. */
static const char *why_not(const struct image_bitmap *b)
{
	if (!b)
		return BITMAP_NONE;
	if (b->in_use)
		return "its bitmap was not saved (QEMU ended without closing the disk)";
	if (!b->recording)
		return "its bitmap was stopped";
	return NULL;
}

const char *bitmap_unusable(const struct image_info *info, const char *name)
{
	size_t i;

	if (!info->format || strcmp(info->format, "qcow2"))
		return "a raw disk keeps no bitmap";
	for (i = 0; i < info->nbitmaps; i++)
		if (!strcmp(info->bitmaps[i].name, name))
			return why_not(&info->bitmaps[i]);
	return why_not(NULL);
}

struct status_read {
	const char *context;
	struct range *r;
	size_t n, cap;
	uint64_t next;		/* where the replies reached */
};

static void add_run(struct status_read *s, uint64_t off, uint64_t len)
{
	if (s->n && s->r[s->n - 1].off + s->r[s->n - 1].len == off) {
		s->r[s->n - 1].len += len;
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->r = xrealloc(s->r, s->cap * sizeof(*s->r));
	}
	s->r[s->n].off = off;
	s->r[s->n].len = len;
	s->n++;
}

/* One reply's extents: (length, flags) pairs from offset on. */
static int on_extents(void *data, const char *context, uint64_t offset,
		      uint32_t *entries, size_t n, int *error)
{
	struct status_read *s = data;
	size_t i;

	(void)error;
	if (strcmp(context, s->context))
		return 0;
	for (i = 0; i + 1 < n; i += 2) {
		/* bit 0 of qemu:dirty-bitmap: written since it began */
		if (entries[i + 1] & 1)
			add_run(s, offset, entries[i]);
		offset += entries[i];
	}
	if (offset > s->next)
		s->next = offset;
	return 0;
}

/* A connected socket whose every read and write is bounded in time. */
static int bounded_socket(const char *sock)
{
	struct timeval tv = { BITMAP_IO_TIMEOUT_S, 0 };
	long long deadline = proc_now_ms() + 2000;
	int fd;

	/* a server between bind() and listen() refuses for a moment */
	while ((fd = fs_unix_connect(sock, BITMAP_IO_TIMEOUT_S * 1000)) ==
		       -ECONNREFUSED &&
	       proc_now_ms() < deadline) {
		struct timespec ts = { 0, 10 * 1000000L };

		nanosleep(&ts, NULL);
	}
	if (fd < 0)
		return fd;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* Ask the server what the bitmap marks, chunk by chunk, to the end. */
static int read_status(struct nbd_handle *h, struct status_read *s,
		       struct strbuf *err)
{
	int64_t size = nbd_get_size(h);
	uint64_t pos = 0;

	if (size < 0) {
		strbuf_addf(err, "%s", nbd_get_error());
		return -EIO;
	}
	while (pos < (uint64_t)size) {
		uint64_t left = (uint64_t)size - pos;
		nbd_extent_callback cb = { .callback = on_extents, .user_data = s };

		s->next = pos;
		if (nbd_block_status(h, left < BITMAP_STATUS_CHUNK ? left :
					  BITMAP_STATUS_CHUNK,
				     pos, cb, 0) < 0) {
			strbuf_addf(err, "%s", nbd_get_error());
			return proc_interrupted() ? -EINTR : -EIO;
		}
		if (s->next <= pos) {
			strbuf_addstr(err, "the NBD server said nothing of the bitmap");
			return -EIO;
		}
		pos = s->next;
	}
	return 0;
}

int bitmap_read_nbd(const char *sock, const char *export, const char *name,
		    struct range **dirty, size_t *n, struct strbuf *err)
{
	struct status_read s = { NULL, NULL, 0, 0, 0 };
	struct nbd_handle *h;
	char *context = xasprintf("qemu:dirty-bitmap:%s", name);
	int fd, r = -EIO;

	*dirty = NULL;
	*n = 0;
	s.context = context;
	h = nbd_create();
	if (!h) {
		strbuf_addf(err, "%s", nbd_get_error());
		free(context);
		return -ENOMEM;
	}
	if (nbd_add_meta_context(h, context) < 0 ||
	    (export && nbd_set_export_name(h, export) < 0)) {
		strbuf_addf(err, "%s", nbd_get_error());
		goto out;
	}
	fd = bounded_socket(sock);
	if (fd < 0) {
		strbuf_addf(err, "cannot reach the NBD server: %s", strerror(-fd));
		r = fd;
		goto out;
	}
	/* libnbd owns fd from here, also when the connection fails */
	if (nbd_connect_socket(h, fd) < 0) {
		strbuf_addf(err, "%s", nbd_get_error());
		goto out;
	}
	if (nbd_can_meta_context(h, context) != 1) {
		strbuf_addf(err, "the NBD server does not offer bitmap %s", name);
		goto out;
	}
	r = read_status(h, &s, err);
	if (!r) {
		*dirty = s.r;
		*n = s.n;
		s.r = NULL;
	}
	nbd_shutdown(h, 0);
out:
	nbd_close(h);
	free(s.r);
	free(context);
	return r;
}

/* qemu-nbd's first line of complaint, from its stderr in fd. */
static void said(int fd, struct strbuf *err)
{
	char buf[512];
	ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
	char *nl;

	if (got <= 0)
		return;
	buf[got] = '\0';
	nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	strbuf_addf(err, ": %s", buf);
}

/* Wait until qemu-nbd (pid) listens at sock, or says why it cannot. */
static int wait_serving(pid_t pid, const char *sock, int errfd,
			struct strbuf *err)
{
	long long deadline = proc_now_ms() + BITMAP_SERVE_TIMEOUT_MS;

	for (;;) {
		struct timespec ts = { 0, 20 * 1000000L };
		int st, r = proc_wait(pid, 0, &st);

		if (r != -ETIMEDOUT) {
			strbuf_addstr(err, r ? strerror(-r) : "qemu-nbd ended");
			if (!r)
				said(errfd, err);
			return r ? r : -EIO;
		}
		if (fs_exists(sock))
			return 0;
		if (proc_now_ms() >= deadline) {
			strbuf_addstr(err, "qemu-nbd did not start serving in time");
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
	}
}

int bitmap_read_file(const char *path, const char *sock, const char *name,
		     struct range **dirty, size_t *n, struct strbuf *err)
{
	struct proc_opts o = PROC_OPTS_INIT;
	struct strvec av = STRVEC_INIT;
	char *image = image_qcow2_alone(path);
	int errfd = memfd_create("qemu-nbd-stderr", MFD_CLOEXEC), r;
	pid_t pid;

	*dirty = NULL;
	*n = 0;
	unlink(sock);
	o.stdin_fd = -1;
	o.stdout_fd = -1;
	o.stderr_fd = errfd >= 0 ? errfd : -1;
	o.new_pgrp = true;
	o.umask = 077;		/* its socket: ours alone */
	strvec_pushl(&av, "qemu-nbd", "--read-only", "--shared=1", NULL);
	strvec_pushf(&av, "--bitmap=%s", name);
	strvec_pushf(&av, "--socket=%s", sock);
	strvec_push(&av, image);
	r = proc_spawn(av.v, &o, &pid);
	if (r) {
		strbuf_addstr(err, r == -ENOENT ? "qemu-nbd not found (install qemu-utils)" :
				   strerror(-r));
		goto out;
	}
	r = wait_serving(pid, sock, errfd, err);
	if (!r)
		r = bitmap_read_nbd(sock, NULL, name, dirty, n, err);
	/* it serves one client, then ends; never left behind */
	proc_terminate(pid, PROC_GRACE_MS);
out:
	unlink(sock);
	if (errfd >= 0)
		close(errfd);
	free(image);
	strvec_clear(&av);
	return r;
}

static int cmp_off(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Add the file run for guest [g, g + len) of extent e, if any. */
static void add_clean(struct status_read *s, const struct image_extent *e,
		      uint64_t g, uint64_t len)
{
	if (len)
		add_run(s, e->offset + (g - e->start), len);
}

struct range *bitmap_clean(const struct image_extent *map, size_t nmap,
			   const struct range *dirty, size_t ndirty,
			   size_t *n)
{
	struct status_read s = { NULL, NULL, 0, 0, 0 };
	size_t i, d = 0, j;

	for (i = 0; i < nmap; i++) {
		const struct image_extent *e = &map[i];
		uint64_t g = e->start, end = e->start + e->len;

		/* the dirty runs wholly before this extent are behind us */
		while (d < ndirty && dirty[d].off + dirty[d].len <= g)
			d++;
		for (j = d; j < ndirty && dirty[j].off < end && g < end; j++) {
			uint64_t ds = dirty[j].off, de = ds + dirty[j].len;

			if (ds > g)
				add_clean(&s, e, g, ds - g);
			if (de > g)
				g = de < end ? de : end;
		}
		if (g < end)
			add_clean(&s, e, g, end - g);
	}
	/* in file order, adjacent runs as one */
	if (s.n > 1) {
		size_t k = 0;

		qsort(s.r, s.n, sizeof(*s.r), cmp_off);
		for (i = 1; i < s.n; i++) {
			if (s.r[k].off + s.r[k].len == s.r[i].off)
				s.r[k].len += s.r[i].len;
			else
				s.r[++k] = s.r[i];
		}
		s.n = k + 1;
	}
	*n = s.n;
	return s.r;
}

/* qemu-img bitmap OP on path's bitmap name. */
static int img_bitmap(const char *path, const char *op, const char *name,
		      struct strbuf *err)
{
	struct proc_opts o = PROC_OPTS_INIT;
	struct strvec av = STRVEC_INIT;
	char *image = image_qcow2_alone(path);
	int errfd = memfd_create("qemu-img-stderr", MFD_CLOEXEC), r;

	strvec_pushl(&av, "qemu-img", "bitmap", op, image, name, NULL);
	o.stdin_fd = -1;
	o.stdout_fd = -1;
	o.stderr_fd = errfd >= 0 ? errfd : -1;
	r = proc_run(av.v, &o, QEMU_IMG_BITMAP_TIMEOUT_MS);
	if (r) {
		strbuf_addf(err, "qemu-img bitmap %s %s: %s", op, name,
			    r < 0 ? strerror(-r) : "failed");
		if (r > 0 && errfd >= 0)
			said(errfd, err);
	}
	if (errfd >= 0)
		close(errfd);
	strvec_clear(&av);
	free(image);
	return r < 0 ? r : r ? -EIO : 0;
}

int bitmap_restart(const char *path, const struct image_info *info,
		   const char *name, struct strbuf *err)
{
	size_t i;
	int r;

	if (!info->format || strcmp(info->format, "qcow2"))
		return 0;
	/* what counted from another time goes, this one included */
	for (i = 0; i < info->nbitmaps; i++) {
		if (!str_starts_with(info->bitmaps[i].name, BITMAP_PREFIX))
			continue;
		r = img_bitmap(path, "--remove", info->bitmaps[i].name, err);
		if (r)
			return r;
	}
	return name ? img_bitmap(path, "--add", name, err) : 0;
}

#define BITMAP_QMP_MS 10000

const char *bitmap_qmp_unusable(struct json_object *bitmaps,
				const char *name)
{
	struct json_object *o = json_member_of(bitmaps, "name", name);
	struct image_bitmap b;

	if (!o)
		return why_not(NULL);
	b.name = NULL;
	b.in_use = json_is_true(o, "inconsistent");
	b.recording = json_is_true(o, "recording") &&
		      json_is_true(o, "persistent");
	return why_not(&b);
}

/* One action of a transaction, or a command's arguments: node, name. */
static struct json_object *node_name(const char *node, const char *name)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "node", json_object_new_string(node));
	json_object_object_add(d, "name", json_object_new_string(name));
	return d;
}

static void add_action(struct json_object *acts, const char *type,
		       struct json_object *data)
{
	struct json_object *a = json_object_new_object();

	json_object_object_add(a, "type", json_object_new_string(type));
	json_object_object_add(a, "data", data);
	json_object_array_add(acts, a);
}

/* The action that ORs bitmap from into target, both on node. */
static void add_merge(struct json_object *acts, const char *node,
		      const char *target, const char *from)
{
	struct json_object *d = json_object_new_object();
	struct json_object *srcs = json_object_new_array();

	json_object_array_add(srcs, json_object_new_string(from));
	json_object_object_add(d, "node", json_object_new_string(node));
	json_object_object_add(d, "target", json_object_new_string(target));
	json_object_object_add(d, "bitmaps", srcs);
	add_action(acts, "block-dirty-bitmap-merge", d);
}

static int remove_bitmap(struct qmp *q, const char *node, const char *name,
			 struct strbuf *err)
{
	struct json_object *args = node_name(node, name);
	int r = qmp_execute(q, "block-dirty-bitmap-remove", args, -1,
			    BITMAP_QMP_MS, NULL, err);

	json_object_put(args);
	return r;
}

int bitmap_qmp_sweep(struct qmp *q, const char *node,
		     struct json_object *bitmaps, struct strbuf *err)
{
	static const char *const ours[] = { BITMAP_NEXT, BITMAP_FROZEN };
	size_t i;
	int r;

	for (i = 0; i < 2; i++) {
		if (!json_member_of(bitmaps, "name", ours[i]))
			continue;
		r = remove_bitmap(q, node, ours[i], err);
		if (r)
			return r;
	}
	return 0;
}

void bitmap_qmp_freeze(struct json_object *acts, const char *node,
		       const char *since)
{
	struct json_object *d = node_name(node, BITMAP_NEXT);

	json_object_object_add(d, "persistent", json_object_new_boolean(false));
	add_action(acts, "block-dirty-bitmap-add", d);
	if (!since)
		return;
	d = node_name(node, BITMAP_FROZEN);
	json_object_object_add(d, "persistent", json_object_new_boolean(false));
	json_object_object_add(d, "disabled", json_object_new_boolean(true));
	add_action(acts, "block-dirty-bitmap-add", d);
	add_merge(acts, node, BITMAP_FROZEN, since);
}

int bitmap_qmp_export(struct qmp *q, const char *sock, bool *serving,
		      const char *node, const char *name, struct strbuf *err)
{
	struct json_object *args, *addr, *data, *bms;
	int r;

	if (!*serving) {
		unlink(sock);
		args = json_object_new_object();
		addr = json_object_new_object();
		data = json_object_new_object();
		json_object_object_add(data, "path", json_object_new_string(sock));
		json_object_object_add(addr, "type", json_object_new_string("unix"));
		json_object_object_add(addr, "data", data);
		json_object_object_add(args, "addr", addr);
		r = qmp_execute(q, "nbd-server-start", args, -1, BITMAP_QMP_MS,
				NULL, err);
		json_object_put(args);
		if (r)
			return r;
		*serving = true;
	}
	args = json_object_new_object();
	bms = json_object_new_array();
	json_object_array_add(bms, json_object_new_string(BITMAP_FROZEN));
	json_object_object_add(args, "type", json_object_new_string("nbd"));
	json_object_object_add(args, "id", json_object_new_string(name));
	json_object_object_add(args, "node-name", json_object_new_string(node));
	json_object_object_add(args, "name", json_object_new_string(name));
	json_object_object_add(args, "writable", json_object_new_boolean(false));
	json_object_object_add(args, "bitmaps", bms);
	r = qmp_execute(q, "block-export-add", args, -1, BITMAP_QMP_MS, NULL,
			err);
	json_object_put(args);
	return r;
}

void bitmap_qmp_unexport(struct qmp *q, const char *name, bool *serving)
{
	struct strbuf e = STRBUF_INIT;
	struct json_object *args;

	if (name) {
		args = json_object_new_object();
		json_object_object_add(args, "id", json_object_new_string(name));
		/* its one client, the backup, has gone or is done */
		json_object_object_add(args, "mode", json_object_new_string("hard"));
		qmp_execute(q, "block-export-del", args, -1, BITMAP_QMP_MS,
			    NULL, &e);
		json_object_put(args);
	}
	if (*serving && !qmp_execute(q, "nbd-server-stop", NULL, -1,
				     BITMAP_QMP_MS, NULL, &e))
		*serving = false;
	strbuf_release(&e);
}

/* device's node and its dirty-bitmaps list (a new reference). */
static int node_bitmaps(struct qmp *q, const char *device, char **node,
			struct json_object **bitmaps, struct strbuf *err)
{
	struct json_object *ret = NULL, *dev, *v, *ins;
	int r = qmp_execute(q, "query-block", NULL, -1, BITMAP_QMP_MS, &ret,
			    err);

	*node = NULL;
	*bitmaps = NULL;
	dev = r ? NULL : json_member_of(ret, "device", device);
	if (dev && json_object_object_get_ex(dev, "inserted", &ins)) {
		*node = json_str_dup(ins, "node-name");
		if (json_object_object_get_ex(ins, "dirty-bitmaps", &v))
			*bitmaps = json_object_get(v);
	}
	json_object_put(ret);
	if (!r && !*node) {
		strbuf_addf(err, "QEMU has no disk %s", device);
		r = -ENOENT;
	}
	return r;
}

int bitmap_qmp_settle(struct qmp *q, const char *device, const char *keep,
		      struct strbuf *err)
{
	struct json_object *bitmaps, *args, *acts, *d;
	char *node;
	size_t i;
	int r = node_bitmaps(q, device, &node, &bitmaps, err);

	if (r)
		return r;
	acts = json_object_new_array();
	if (keep && json_member_of(bitmaps, "name", BITMAP_NEXT)) {
		d = node_name(node, keep);
		json_object_object_add(d, "persistent", json_object_new_boolean(true));
		add_action(acts, "block-dirty-bitmap-add", d);
		add_merge(acts, node, keep, BITMAP_NEXT);
	}
	for (i = 0; bitmaps && i < json_object_array_length(bitmaps); i++) {
		struct json_object *v;
		const char *name;

		if (!json_object_object_get_ex(json_object_array_get_idx(bitmaps, i),
					       "name", &v))
			continue;
		name = json_object_get_string(v);
		/* ours go: the temporary two, and (keeping) every other */
		if (!strcmp(name, BITMAP_NEXT) || !strcmp(name, BITMAP_FROZEN) ||
		    (keep && str_starts_with(name, BITMAP_PREFIX) &&
		     strcmp(name, keep)))
			add_action(acts, "block-dirty-bitmap-remove",
				   node_name(node, name));
	}
	args = json_object_new_object();
	json_object_object_add(args, "actions", acts);
	r = json_object_array_length(acts) ?
		    qmp_execute(q, "transaction", args, -1, BITMAP_QMP_MS, NULL, err) :
		    0;
	json_object_put(args);
	json_object_put(bitmaps);
	free(node);
	return r;
}
