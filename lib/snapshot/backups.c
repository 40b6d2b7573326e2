#include "snapshot/backups.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "snapshot/seal.h"
#include "snapshot/snapint.h"
#include "util/proc.h"
#include "util/sha256.h"
#include "util/fsutil.h"

#define SUFFIX ".tar.gz"

void backups_free(struct backup *b, int n)
{
	int i;

	for (i = 0; b && i < n; i++) {
		free(b[i].name);
		free(b[i].path);
	}
	free(b);
}

/* S2 before S10: compare digit runs as numbers. */
static int natural_cmp(const void *pa, const void *pb)
{
	const char *a = ((const struct backup *)pa)->name;
	const char *b = ((const struct backup *)pb)->name;

	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			char *ea, *eb;
			unsigned long long x = strtoull(a, &ea, 10);
			unsigned long long y = strtoull(b, &eb, 10);

			if (x != y)
				return x < y ? -1 : 1;
			a = ea;
			b = eb;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int backups_list(const struct vm *vm, struct backup **out)
{
	char *dir = vm_host_path(vm, "backups");
	struct backup *b = NULL;
	struct dirent *e;
	DIR *d;
	int n = 0;

	*out = NULL;
	d = opendir(dir);
	if (!d) {
		int r = errno == ENOENT ? 0 : -errno;

		free(dir);
		return r;
	}
	while ((e = readdir(d))) {
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		char *name = NULL;
		bool legacy = false;

		if (lstat(path, &st) == 0 && e->d_name[0] != '.' &&
		    strcmp(e->d_name, "LAST")) {
			if (S_ISREG(st.st_mode) &&
			    str_ends_with(e->d_name, SUFFIX)) {
				name = xasprintf("%.*s",
						 (int)(strlen(e->d_name) -
						       strlen(SUFFIX)),
						 e->d_name);
			} else if (S_ISDIR(st.st_mode)) {
				name = xstrdup(e->d_name);
				legacy = true;
			}
		}
		if (name && name_is_valid(name)) {
			b = xrealloc(b, (size_t)(n + 1) * sizeof(*b));
			b[n].name = name;
			b[n].path = path;
			b[n].legacy = legacy;
			n++;
		} else {
			free(name);
			free(path);
		}
	}
	closedir(d);
	free(dir);
	if (n)
		qsort(b, (size_t)n, sizeof(*b), natural_cmp);
	*out = b;
	return n;
}

/* LAST's target as it is written, into buf; false with no link. */
static bool read_last(const struct vm *vm, char buf[PATH_MAX])
{
	char *link = vm_host_path(vm, "backups/LAST");
	ssize_t n = readlink(link, buf, PATH_MAX - 1);

	free(link);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

char *backups_last(const struct vm *vm)
{
	char buf[PATH_MAX];
	size_t n;

	if (!read_last(vm, buf))
		return NULL;
	n = strlen(buf);
	if (str_ends_with(buf, SUFFIX))
		buf[n - strlen(SUFFIX)] = '\0';
	/* the link is ours: a plain name in backups/ */
	return name_is_valid(buf) ? xstrdup(buf) : NULL;
}

char *backups_last_stray(const struct vm *vm)
{
	char buf[PATH_MAX], *last;

	if (!read_last(vm, buf))
		return NULL;
	last = backups_last(vm);
	if (last) {
		free(last);
		return NULL;
	}
	return xstrdup(buf);
}

int backups_writable(const struct vm *vm, struct strbuf *err)
{
	char *dir = vm_host_path(vm, "backups");
	struct stat st;
	int r = 0;

	if (lstat(dir, &st) < 0) {
		r = errno == ENOENT ? 0 : -errno;
		if (r)
			strbuf_addf(err, "%s: %s", dir, strerror(-r));
	} else if (S_ISLNK(st.st_mode)) {
		strbuf_addf(err, "%s is a symbolic link: vm writes and removes snapshots only in a directory of the VM's own (mount another disk there instead)",
			    dir);
		r = -ELOOP;
	} else if (!S_ISDIR(st.st_mode)) {
		strbuf_addf(err, "%s is not a directory", dir);
		r = -ENOTDIR;
	}
	free(dir);
	return r;
}

char *backups_next_name(const struct backup *b, int n)
{
	unsigned long long next = 0;
	int i;

	for (i = 0; i < n; i++) {
		const char *s = b[i].name;
		char *end;
		unsigned long long v;

		if (s[0] != 'S' || !isdigit((unsigned char)s[1]))
			continue;
		v = strtoull(s + 1, &end, 10);
		if (!*end && v + 1 > next)
			next = v + 1;
	}
	return xasprintf("S%llu", next);
}

const struct backup *backups_find(const struct vm *vm,
				  const struct backup *b, int n,
				  const char *name)
{
	char *last = NULL;
	const struct backup *hit = NULL;
	int i;

	if (!strcmp(name, "LAST")) {
		last = backups_last(vm);
		if (!last)
			return NULL;
		name = last;
	}
	for (i = 0; i < n && !hit; i++)
		if (!strcmp(b[i].name, name))
			hit = &b[i];
	free(last);
	return hit;
}

int backups_set_last(const struct vm *vm, const struct backup *b)
{
	char *link = vm_host_path(vm, "backups/LAST");
	const char *base = strrchr(b->path, '/');
	int r = fs_symlink_replace(base ? base + 1 : b->path, link);

	free(link);
	return r;
}

const struct backup *backups_parent(const struct backup *list, int n,
				    const char *name)
{
	int i;

	for (i = 0; name && i < n; i++)
		if (!list[i].legacy && !strcmp(list[i].name, name))
			return &list[i];
	return NULL;
}

int backups_chain(const struct backup *list, int n, const struct backup *b,
		  const struct backup ***out, struct strbuf *err)
{
	const struct backup **c = NULL;
	const struct backup *at = b;
	int k = 0, i, r = 0;

	*out = NULL;
	while (at) {
		struct snap_meta m;
		struct strbuf e = STRBUF_INIT;
		const struct backup *up = NULL;

		if (k == n) {
			strbuf_addf(err, "the parents of %s form a loop", b->name);
			r = -ELOOP;
			break;
		}
		c = xrealloc(c, (size_t)(k + 1) * sizeof(*c));
		c[k++] = at;
		if (at->legacy)
			break;
		if (snap_read_meta(at->path, &m, &e)) {
			/* the archive's own read says what is wrong with it */
			snap_meta_release(&m);
			strbuf_release(&e);
			break;
		}
		strbuf_release(&e);
		up = backups_parent(list, n, m.parent);
		if (m.parent && !up) {
			strbuf_addf(err, "%s needs its parent %s, which is not in backups/",
				    at->name, m.parent);
			r = -ENOENT;
		}
		snap_meta_release(&m);
		if (r)
			break;
		at = up;
	}
	if (r) {
		free(c);
		return r;
	}
	/* oldest first */
	for (i = 0; i < k / 2; i++) {
		const struct backup *t = c[i];

		c[i] = c[k - 1 - i];
		c[k - 1 - i] = t;
	}
	*out = c;
	return k;
}

void backups_apply_start(struct backups_applying *a, const char *dir,
			 uint64_t total)
{
	memset(a, 0, sizeof(*a));
	a->dir = dir;
	a->total = total;
	manifest_init(&a->m);
}

int backups_apply_next(struct backups_applying *a, const struct backup *b,
		       const struct snap_progress *prog, struct strbuf *err)
{
	struct manifest m;
	struct snap_base base;
	int r = 0;

	manifest_init(&m);
	if (a->prev) {
		base.name = a->prev;
		base.m = &a->m;
		r = manifest_state(&a->m, base.state);
	}
	if (!r)
		r = snap_apply(b->path, a->dir, a->prev ? &base : NULL, &m,
			       &a->done, a->total, prog, err);
	/* written while the next one is read; snap_sync waits */
	if (!r && a->dir)
		fs_writeback_files(a->dir);
	manifest_release(&a->m);
	a->m = m;
	free(a->prev);
	a->prev = r ? NULL : xstrdup(b->name);
	return r;
}

void backups_apply_release(struct backups_applying *a)
{
	manifest_release(&a->m);
	free(a->prev);
	a->prev = NULL;
}

int backups_apply(const struct backup *const *chain, int k, const char *dir,
		  const struct snap_progress *prog, struct manifest *m,
		  struct strbuf *err)
{
	struct backups_applying a;
	uint64_t total = 0;
	struct stat st;
	int i, r = 0;

	for (i = 0; i < k; i++)
		if (!stat(chain[i]->path, &st))
			total += (uint64_t)st.st_size;
	backups_apply_start(&a, dir, total);
	for (i = 0; i < k && !r; i++) {
		struct strbuf e = STRBUF_INIT;

		r = backups_apply_next(&a, chain[i], prog, &e);
		if (r && i < k - 1)
			strbuf_addf(err, "%s (a parent of %s): %s", chain[i]->name,
				    chain[k - 1]->name, e.buf);
		else if (r)
			strbuf_add(err, e.buf ? e.buf : "", e.len);
		strbuf_release(&e);
	}
	if (!r && dir)
		r = snap_sync(dir, err);
	manifest_init(m);
	if (!r) {
		*m = a.m;
		manifest_init(&a.m);
	}
	backups_apply_release(&a);
	return r;
}

/*
 * Where the archive cannot be an unnamed file (no O_TMPFILE), a @backup
 * killed with SIGKILL leaves .NAME.tar.gz.tmpPID; we hold the VM's lock,
 * so any such file is a dead one's (and so is an interrupted fold of
 * @forget, which writes .NAME.tar.gz.tmpPID and renames it).
 */
void backups_sweep(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d))) {
		const char *t = strstr(e->d_name, ".tar.gz.tmp");

		if (e->d_name[0] == '.' && t && t[11] >= '0' && t[11] <= '9' &&
		    strspn(t + 11, "0123456789") == strlen(t + 11)) {
			char *p = xasprintf("%s/%s", dir, e->d_name);

			unlink(p);
			free(p);
		} else if (e->d_name[0] == '.' &&
			   (str_ends_with(e->d_name, ".manifest") ||
			    str_ends_with(e->d_name, ".digests"))) {
			/* the copy of a MANIFEST (or the digests) of a
			 * snapshot that is gone */
			size_t k = strlen(e->d_name) -
				   (str_ends_with(e->d_name, ".manifest") ? 10 : 9);
			char *p = xasprintf("%s/%s", dir, e->d_name);
			char *a = xasprintf("%s/%.*s.tar.gz", dir, (int)k,
					    e->d_name + 1);

			if (!fs_exists(a))
				unlink(p);
			free(p);
			free(a);
		}
	}
	if (d)
		closedir(d);
}

/* What backups_fold() holds across its steps. */
struct fold {
	const struct backup **chain;
	int k;
	const struct backup *pp;	/* p's parent, or NULL */
	struct manifest m, ppm;		/* the child's, pp's */
	struct snap_meta cm, pm;	/* the child's, p's */
	struct snap_file *files;
	int nf;
	struct strvec paths;
	struct strbuf desc, text, seal, taken;
	char *dir, *tmp, *bdir;
};

/* child is built on p; p's parent pp, when it has one, is in list. */
static int fold_parents(struct fold *f, const struct backup *list, int n,
			const struct backup *p, const struct backup *child,
			struct strbuf *err)
{
	int r;

	f->k = backups_chain(list, n, child, &f->chain, err);
	if (f->k < 0)
		return f->k;
	if (f->k < 2 || f->chain[f->k - 2] != p) {
		strbuf_addf(err, "%s is not built on %s", child->name, p->name);
		return -EINVAL;
	}
	r = snap_read_meta(child->path, &f->cm, err);
	if (!r)
		r = snap_read_meta(p->path, &f->pm, err);
	if (r)
		return r;
	f->pp = backups_parent(list, n, f->pm.parent);
	if (f->pm.parent && !f->pp) {
		strbuf_addf(err, "%s needs its parent %s, which is not in backups/",
			    p->name, f->pm.parent);
		return -ENOENT;
	}
	if (f->pp && (r = backups_read_manifest(list, n, f->pp, &f->ppm, err)))
		return r;
	return 0;
}

/*
 * The child as it restores, in a private directory: its files listed
 * for the writer, its DESCRIPTION read.
 */
static int fold_restore(struct fold *f, const struct vm *vm,
			const struct backup *child, struct strbuf *err)
{
	char *d;
	int i, r;

	/* marked: what a SIGKILL leaves, the next restore or fold sweeps */
	r = vm_new_marked_dir(vm, &f->dir);
	if (r) {
		strbuf_addf(err, "cannot make a directory to fold in: %s",
			    strerror(-r));
		return r;
	}
	vm_sweep_private(vm, f->dir);
	r = backups_apply(f->chain, f->k, f->dir, NULL, &f->m, err);
	if (r)
		return r;
	f->files = xcalloc(f->m.n + 1, sizeof(*f->files));
	for (i = 0; i < (int)f->m.n; i++) {
		const char *name = f->m.f[i].name;

		if (!strcmp(name, "TS") || !strcmp(name, "DESCRIPTION") ||
		    !strcmp(name, "CHAIN") || !strcmp(name, SNAP_SEAL) ||
		    !strcmp(name, SNAP_TAKEN))
			continue;
		strvec_pushf(&f->paths, "%s/%s", f->dir, name);
		f->files[f->nf].name = name;
		f->files[f->nf].path = f->paths.v[f->paths.nr - 1];
		f->nf++;
	}
	d = xasprintf("%s/DESCRIPTION", f->dir);
	r = fs_read_file(d, 1 << 20, &f->desc);
	free(d);
	/* the settings do not change: their seal holds as it was */
	d = xasprintf("%s/%s", f->dir, SNAP_SEAL);
	if (!r && fs_read_file(d, 4096, &f->seal))
		strbuf_reset(&f->seal);
	free(d);
	/* how it was taken stays as the child says, byte for byte */
	d = xasprintf("%s/%s", f->dir, SNAP_TAKEN);
	if (!r && !fs_read_file(d, 64, &f->taken))
		strbuf_trim_trailing(&f->taken);
	free(d);
	if (r)
		strbuf_addf(err, "DESCRIPTION of %s: %s", child->name,
			    strerror(-r));
	return r;
}

/*
 * The child written again on pp, beside it and then over it: either
 * file restores, at every moment.
 */
static int fold_write(struct fold *f, const struct backup *child,
		      const char *compressor, int level, struct strbuf *err)
{
	struct snap_wopts o;
	char *slash, state[65];
	int r;

	f->bdir = xstrdup(child->path);
	slash = strrchr(f->bdir, '/');
	if (slash)
		*slash = '\0';
	f->tmp = xasprintf("%s/.%s.tmp%ld", f->bdir,
			   slash ? slash + 1 : f->bdir, (long)getpid());
	unlink(f->tmp);
	memset(&o, 0, sizeof(o));
	o.description = f->desc.buf ? f->desc.buf : "";
	o.seal_text = f->seal.len ? f->seal.buf : NULL;
	o.taken = f->taken.len ? f->taken.buf : NULL;
	o.ts = f->cm.ts;
	o.compressor = compressor;
	o.level = level;
	o.parent = f->pp ? f->pp->name : NULL;
	o.parent_m = f->pp ? &f->ppm : NULL;
	o.manifest = &f->text;
	r = snap_write_opts(f->tmp, f->files, f->nf, &o, err);
	if (r)
		return r;
	r = manifest_state(&f->m, state);
	if (!r && strcmp(state, o.state)) {
		strbuf_addf(err, "the folded %s would not restore as before",
			    child->name);
		r = -EIO;
	}
	if (!r && rename(f->tmp, child->path) < 0) {
		r = -errno;
		strbuf_addf(err, "cannot replace %s: %s", child->path,
			    strerror(-r));
	}
	if (!r) {
		fs_fsync_dir(f->bdir);
		backups_keep_manifest(child, f->text.buf ? f->text.buf : "",
				      f->text.len);
	}
	return r;
}

int backups_fold(const struct vm *vm, const struct backup *list, int n,
		 const struct backup *p, const struct backup *child,
		 const char *compressor, int level, struct strbuf *err)
{
	struct fold f = { .paths = STRVEC_INIT, .desc = STRBUF_INIT,
			  .seal = STRBUF_INIT, .taken = STRBUF_INIT,
			  .text = STRBUF_INIT };
	int r;

	manifest_init(&f.m);
	manifest_init(&f.ppm);
	r = fold_parents(&f, list, n, p, child, err);
	if (!r)
		r = fold_restore(&f, vm, child, err);
	if (!r)
		r = fold_write(&f, child, compressor, level, err);
	if (f.tmp)
		unlink(f.tmp);
	if (f.dir)
		fs_rm_rf(f.dir);
	free(f.dir);
	free(f.tmp);
	free(f.bdir);
	free(f.files);
	free(f.chain);
	strvec_clear(&f.paths);
	strbuf_release(&f.desc);
	strbuf_release(&f.seal);
	strbuf_release(&f.taken);
	strbuf_release(&f.text);
	manifest_release(&f.m);
	manifest_release(&f.ppm);
	snap_meta_release(&f.cm);
	snap_meta_release(&f.pm);
	return r;
}

/*
 * The MANIFEST of a snapshot is at the end of its archive: reading it
 * means inflating the whole archive.  @backup keeps a copy beside the
 * archive, .NAME.manifest, with every digest written out (no =N: no
 * parent is read to read it), headed by the archive's identity (device,
 * inode, size, change and modification times, as git's index does), and
 * takes it only while the archive is that same file.  A copy is only a
 * shortcut: a restore and @verify read the archives themselves.
 */
static char *cache_path_of(const struct backup *b, const char *suffix)
{
	const char *slash = strrchr(b->path, '/');

	return xasprintf("%.*s/.%s.%s", slash ? (int)(slash - b->path) : 1,
			 slash ? b->path : ".", b->name, suffix);
}

static char *cache_path(const struct backup *b)
{
	return cache_path_of(b, "manifest");
}

static void identity_as(const struct stat *st, const char *tag,
			struct strbuf *out)
{
	strbuf_addf(out, "%s %llu %llu %llu %lld.%09ld %lld.%09ld\n", tag,
		    (unsigned long long)st->st_dev,
		    (unsigned long long)st->st_ino,
		    (unsigned long long)st->st_size,
		    (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
		    (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static void identity(const struct stat *st, struct strbuf *out)
{
	identity_as(st, "vm-manifest", out);
}

void backups_keep_manifest(const struct backup *b, const char *text,
			   size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	struct stat st;
	char *p = cache_path(b);

	/* no text (too large to keep): no copy, not an old one either */
	if (!len)
		unlink(p);
	else if (stat(b->path, &st) == 0 && !b->legacy) {
		identity(&st, &sb);
		strbuf_add(&sb, text, len);
		fs_write_atomic(p, sb.buf, sb.len, 0600);
	}
	strbuf_release(&sb);
	free(p);
}

/*
 * backups_read_manifest; seen: the snapshots of list on the way here
 * (a chain that loops ends when it comes back to one).
 */
static int read_manifest(const struct backup *list, int n,
			 const struct backup *b, bool *seen,
			 struct manifest *m, struct strbuf *err)
{
	struct strbuf sb = STRBUF_INIT, id = STRBUF_INIT, e = STRBUF_INIT;
	const struct backup *pb;
	struct manifest pm;
	struct stat st;
	char *p = cache_path(b);
	bool cached = false;
	int r = -ENOENT;

	manifest_init(m);
	manifest_init(&pm);
	if (stat(b->path, &st) == 0 && !fs_read_file(p, MANIFEST_MAX, &sb)) {
		identity(&st, &id);
		if (sb.len >= id.len && !memcmp(sb.buf, id.buf, id.len))
			r = manifest_parse(sb.buf + id.len, sb.len - id.len, m,
					   &e);
		cached = !r;
	}
	if (r)
		r = snap_read_manifest(b->path, m, err);
	if (!r && !manifest_resolved(m)) {
		pb = backups_parent(list, n, m->parent);
		if (!pb) {
			strbuf_addf(err, "%s needs its parent %s, which is not in backups/",
				    b->name, m->parent);
			r = -ENOENT;
		} else if (seen[pb - list]) {
			strbuf_addf(err, "the chain of %s loops", b->name);
			r = -ELOOP;
		} else {
			seen[pb - list] = true;
			r = read_manifest(list, n, pb, seen, &pm, err);
		}
		if (!r)
			r = manifest_resolve(m, &pm, err);
	}
	if (!r && !cached) {
		strbuf_reset(&sb);
		if (!manifest_format(m, NULL, &sb))
			backups_keep_manifest(b, sb.buf, sb.len);
	}
	if (r)
		manifest_release(m);
	manifest_release(&pm);
	strbuf_release(&sb);
	strbuf_release(&id);
	strbuf_release(&e);
	free(p);
	return r;
}

int backups_read_manifest(const struct backup *list, int n,
			  const struct backup *b, struct manifest *m,
			  struct strbuf *err)
{
	bool *seen = xcalloc((size_t)n + 1, sizeof(*seen));
	int r;

	if (b >= list && b < list + n)
		seen[b - list] = true;
	r = read_manifest(list, n, b, seen, m, err);
	free(seen);
	return r;
}

/* The SHA-256 of the archive and of the tar inside it, in one read. */
static int hash_layer(const char *path, char digest[72], char diff_id[72],
		      struct strbuf *err)
{
	unsigned char *in = xmalloc(1 << 20), *out = xmalloc(1 << 20);
	struct sha256 zh, th;
	z_stream z;
	char hex[65];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = 0, zr = Z_OK;

	if (fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", path, strerror(-r));
		free(in);
		free(out);
		return r;
	}
	memset(&z, 0, sizeof(z));
	sha256_init(&zh);
	sha256_init(&th);
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		r = -ENOMEM;
	while (!r && (n = read(fd, in, 1 << 20)) > 0) {
		sha256_update(&zh, in, (size_t)n);
		z.next_in = in;
		z.avail_in = (uInt)n;
		while (!r && z.avail_in) {
			/* pigz may write several gzip members */
			if (zr == Z_STREAM_END && inflateReset(&z) != Z_OK)
				r = -EIO;
			z.next_out = out;
			z.avail_out = 1 << 20;
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END)
				r = -EIO;
			sha256_update(&th, out, (1 << 20) - z.avail_out);
		}
		if (proc_interrupted())
			r = -EINTR;
	}
	if (!r && n < 0)
		r = -errno;
	if (!r && zr != Z_STREAM_END)
		r = -EIO;
	if (r == -EIO)
		strbuf_addf(err, "%s: not a whole gzip stream", path);
	else if (r && r != -EINTR)
		strbuf_addf(err, "%s: %s", path, strerror(-r));
	inflateEnd(&z);
	close(fd);
	free(in);
	free(out);
	if (!r && !sha256_final_hex(&zh, hex))
		snprintf(digest, 72, "sha256:%s", hex);
	else
		r = r ? r : -EIO;
	if (!r && !sha256_final_hex(&th, hex))
		snprintf(diff_id, 72, "sha256:%s", hex);
	else
		r = r ? r : -EIO;
	sha256_release(&zh);
	sha256_release(&th);
	return r;
}

int backups_layer_digests(const struct backup *b, char digest[72],
			  char diff_id[72], struct strbuf *err)
{
	struct strbuf sb = STRBUF_INIT, id = STRBUF_INIT;
	struct stat st;
	char *p = cache_path_of(b, "digests");
	int r = -ENOENT;

	if (b->legacy) {
		strbuf_addf(err, "%s is in the old directory layout, not an archive",
			    b->name);
		free(p);
		return -EINVAL;
	}
	if (stat(b->path, &st) == 0 && !fs_read_file(p, 4096, &sb)) {
		identity_as(&st, "vm-digests", &id);
		if (sb.len == id.len + 2 * 72 && !memcmp(sb.buf, id.buf, id.len) &&
		    sscanf(sb.buf + id.len, "%71s %71s", digest, diff_id) == 2 &&
		    strlen(digest) == 71 && strlen(diff_id) == 71)
			r = 0;
	}
	if (r) {
		r = hash_layer(b->path, digest, diff_id, err);
		strbuf_reset(&id);
		if (!r && stat(b->path, &st) == 0) {
			identity_as(&st, "vm-digests", &id);
			strbuf_addf(&id, "%s\n%s\n", digest, diff_id);
			fs_write_atomic(p, id.buf, id.len, 0600);
		}
	}
	strbuf_release(&sb);
	strbuf_release(&id);
	free(p);
	return r;
}

/* backups_chain_digests' work: the next layer to read, under mu. */
struct hash_work {
	const struct backup *const *chain;
	int k, next;
	char (*digest)[72], (*diff_id)[72];
	int *res;
	struct strbuf *errs;
	pthread_mutex_t mu;
};

static void *hash_worker(void *data)
{
	struct hash_work *w = data;

	for (;;) {
		int i;

		pthread_mutex_lock(&w->mu);
		i = w->next++;
		pthread_mutex_unlock(&w->mu);
		if (i >= w->k)
			return NULL;
		w->res[i] = backups_layer_digests(w->chain[i], w->digest[i],
						  w->diff_id[i], &w->errs[i]);
	}
}

int backups_chain_digests(const struct backup *const *chain, int k,
			  char (*digest)[72], char (*diff_id)[72],
			  struct strbuf *err)
{
	struct hash_work w = { chain, k, 0, digest, diff_id, NULL, NULL,
			       PTHREAD_MUTEX_INITIALIZER };
	pthread_t t[BACKUPS_HASH_THREADS];
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int i, n = 0, want, r = 0;

	w.res = xcalloc((size_t)k, sizeof(*w.res));
	w.errs = xcalloc((size_t)k, sizeof(*w.errs));
	for (i = 0; i < k; i++)
		w.errs[i] = (struct strbuf)STRBUF_INIT;
	/* this thread is one of them */
	want = (int)(cores < 1 ? 1 : cores > BACKUPS_HASH_THREADS ?
		     BACKUPS_HASH_THREADS : cores);
	if (want > k)
		want = k;
	while (n < want - 1 && !pthread_create(&t[n], NULL, hash_worker, &w))
		n++;
	hash_worker(&w);
	while (n > 0)
		pthread_join(t[--n], NULL);
	for (i = 0; i < k; i++) {
		if (!r && w.res[i]) {
			r = w.res[i];
			strbuf_add(err, w.errs[i].buf, w.errs[i].len);
		}
		strbuf_release(&w.errs[i]);
	}
	free(w.res);
	free(w.errs);
	return r;
}
