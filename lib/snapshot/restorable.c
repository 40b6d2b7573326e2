/*
 * What makes a VM's files restorable: the one check @backup makes on the
 * VM's own files before it writes a snapshot and @restore makes on an
 * extracted snapshot before the swap, so that the two accept the same
 * VMs; and which images a snapshot holds.
 */
#include "snapshot/restorable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/download.h"
#include "qemu/qemu.h"
#include "snapshot/snapshot.h"
#include "util/fsutil.h"
#include "vm/base.h"

bool restorable_image(const struct vm_conf *c, size_t i)
{
	return !c->disks.nr && i < c->images.nr &&
	       c->images.v[i].bus != BUS_CDROM &&
	       !download_is_url(c->images.v[i].path);
}

char *restorable_image_path(const struct vm *vm, const struct vm_conf *c,
			 size_t i)
{
	return vm_image_file(vm, c->images.v[i].path);
}

/*
 * vm's settings as the next start would load them with confdir's
 * guest.conf: the same code as every start (vm_settings_for).  *out
 * (initialised) is released and replaced, also on failure.
 */
static int load_as_next_start(struct vm *vm, const char *confdir,
			      bool with_cli, struct vm_conf *out,
			      struct strbuf *err)
{
	conf_release(out);
	conf_init(out);
	return vm_settings_for(vm, confdir, with_cli, NULL, out, err);
}

/* diskdir holds no image-N.img but those g names. */
static int check_stray_images(const struct vm_conf *g, const char *diskdir,
			      struct strbuf *err)
{
	struct dirent *de;
	DIR *d = opendir(diskdir);
	int r = 0;

	while (d && (de = readdir(d)) && !r) {
		int k;

		if (!str_starts_with(de->d_name, "image-"))
			continue;
		k = snap_image_index(de->d_name);
		if (k < 0 || !restorable_image(g, (size_t)k)) {
			strbuf_addf(err, "%s is there, but guest.conf names no such image",
				    de->d_name);
			r = -EINVAL;
		}
	}
	if (d)
		closedir(d);
	return r;
}

/*
 * The image-N.img of a VM made from images only (restorable_check): in
 * place (own) the images themselves, else the extracted ones, which go
 * back only where the VM's own guest.conf names the same image.  *n
 * gets how many there are.
 */
static int check_images(struct vm *vm, const struct vm_conf *g,
			const char *diskdir, bool own, size_t *n,
			struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	struct vm_conf cur;
	struct stat st;
	bool have_cur;
	size_t i;
	int r = 0;

	*n = 0;
	conf_init(&cur);
	have_cur = !own && !vm_guest_settings(vm, vm->hostdir, &cur, &e);
	for (i = 0; i < g->images.nr && !r; i++) {
		char *at, *p;

		if (!restorable_image(g, i))
			continue;
		at = restorable_image_path(vm, g, i);
		if (i >= SNAP_MAX_DISKS) {
			strbuf_addf(err, "image %s: a snapshot holds at most %d images",
				    at, SNAP_MAX_DISKS);
			r = -EINVAL;
		} else if (!own && (!have_cur || !restorable_image(&cur, i) ||
				    strcmp(cur.images.v[i].path,
					   g->images.v[i].path))) {
			strbuf_addf(err, "image-%zu.img is the image %s, which %s; it is restored only into the VM that names it",
				    i, at, have_cur ?
				    "this VM's guest.conf does not name there" :
				    "this VM has no guest.conf to name");
			r = -EINVAL;
		} else if (!own && stat(at, &st) == 0 && !S_ISREG(st.st_mode)) {
			strbuf_addf(err, "image %s is not a regular file; vm restores only into one",
				    at);
			r = -EINVAL;
		}
		p = own ? xstrdup(at) : xasprintf("%s/image-%zu.img", diskdir, i);
		if (!r && (own ? stat(p, &st) : lstat(p, &st)) < 0) {
			r = -errno;
			if (own)
				strbuf_addf(err, "image %s: %s", at,
					    strerror(-r));
			else
				strbuf_addf(err, "image-%zu.img (the image %s) is missing",
					    i, at);
		} else if (!r && !S_ISREG(st.st_mode)) {
			strbuf_addf(err, "image %s is not a regular file; snapshots hold only regular files",
				    at);
			r = -EINVAL;
		}
		if (!r)
			r = base_check_image(p, err);
		if (!r)
			(*n)++;
		free(p);
		free(at);
	}
	if (!r && !own)
		r = check_stray_images(g, diskdir, err);
	conf_release(&cur);
	strbuf_release(&e);
	return r;
}

/*
 * confdir/guest.conf is a regular file that loads into g as the next
 * start would load it, and each vm.defaults reads as QEMU's words.
 */
static int check_settings(struct vm *vm, const char *confdir,
			  const char *diskdir, bool hide_dir,
			  struct vm_conf *g, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	char *conf = xasprintf("%s/guest.conf", confdir);
	struct stat st;
	size_t i;
	int r;

	r = lstat(conf, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
	if (r) {
		strbuf_addf(err, "%s %s", hide_dir ? "guest.conf" : conf,
			    r == -ENOENT ? "is missing" :
			    r == -EINVAL ? "is not a regular file" :
			    strerror(-r));
		goto out;
	}
	/* with this run's options, as the reload after the swap does */
	r = load_as_next_start(vm, confdir, true, g, &e);
	if (!r) {
		/* and without, as a later start may: that one counts disks */
		r = load_as_next_start(vm, confdir, false, g, &e);
	}
	if (r) {
		const char *m = e.buf;
		size_t dl = strlen(confdir);

		if (hide_dir && !strncmp(m, confdir, dl) && m[dl] == '/')
			m += dl + 1;
		strbuf_addf(err, "its settings do not load: %s", m);
		goto out;
	}
	/*
	 * vm.defaults, when there is one, splits into QEMU's words: that of
	 * confdir and the one the snapshot brings (a legacy snapshot's
	 * settings are checked in HOSTDIR, its vm.defaults comes with it).
	 */
	for (i = 0; i < 2 && !r; i++) {
		const char *const dirs[] = { i ? diskdir : confdir, NULL };
		struct strvec words = STRVEC_INIT;
		char *found = NULL;

		if (i && !strcmp(diskdir, confdir))
			break;
		r = qemu_read_defaults(dirs, &words, &found, &e);
		strvec_clear(&words);
		free(found);
		if (r) {
			const char *m = e.buf, *base = dirs[0];
			size_t dl = strlen(base);

			if ((hide_dir || i) && !strncmp(m, base, dl) &&
			    m[dl] == '/')
				m += dl + 1;
			strbuf_addstr(err, m);
			goto out;
		}
	}
out:
	strbuf_release(&e);
	free(conf);
	return r;
}

/*
 * diskdir holds disk-0.img to disk-(nr - 1).img as regular files, and
 * no other disk-*.img.
 */
static int check_disk_files(const char *diskdir, size_t nr,
			    struct strbuf *err)
{
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	size_t i;
	char *p;
	int r = 0;

	for (i = 0; i < nr; i++) {
		p = xasprintf("%s/disk-%zu.img", diskdir, i);
		r = lstat(p, &st) < 0 ? -errno :
		    !S_ISREG(st.st_mode) ? -EINVAL : 0;
		free(p);
		if (r) {
			strbuf_addf(err, "disk-%zu.img %s (guest.conf names %zu disk%s)",
				    i, r == -ENOENT ? "is missing" :
				    r == -EINVAL ? "is not a regular file" :
				    strerror(-r), nr, nr == 1 ? "" : "s");
			goto out;
		}
	}
	d = opendir(diskdir);
	if (!d) {
		r = -errno;
		strbuf_addf(err, "%s: %s", diskdir, strerror(-r));
		goto out;
	}
	while ((de = readdir(d))) {
		int k;

		if (!str_starts_with(de->d_name, "disk-") ||
		    !str_ends_with(de->d_name, ".img"))
			continue;
		k = snap_disk_index(de->d_name);
		if (k < 0) {
			strbuf_addf(err, "%s is not a disk name vm uses (disk-0.img to disk-%d.img)",
				    de->d_name, SNAP_MAX_DISKS - 1);
			r = -EINVAL;
			goto out;
		}
		if ((size_t)k >= nr) {
			strbuf_addf(err, "%s is there, but guest.conf names %zu disk%s",
				    de->d_name, nr, nr == 1 ? "" : "s");
			r = -EINVAL;
			goto out;
		}
	}
out:
	if (d)
		closedir(d);
	return r;
}

int restorable_check(struct vm *vm, const char *confdir,
		  const char *diskdir, bool hide_dir, int *ndisks,
		  struct strbuf *err)
{
	struct base_env env = vm_base_env(vm);
	struct vm_conf g;
	size_t nr = 0, nimages = 0;
	char *p;
	bool own;
	int r;

	conf_init(&g);
	r = check_settings(vm, confdir, diskdir, hide_dir, &g, err);
	if (r)
		goto out;
	nr = g.disks.nr;
	own = !strcmp(confdir, vm->hostdir) &&
	      !strcmp(diskdir, vm->workdir ? vm->workdir : vm->hostdir);
	r = check_images(vm, &g, diskdir, own, &nimages, err);
	if (r)
		goto out;
	if (!nr && !nimages) {
		strbuf_addstr(err, "guest.conf names no disks");
		r = -EINVAL;
		goto out;
	}
	r = check_disk_files(diskdir, nr, err);
	if (r)
		goto out;
	/* what QEMU would open through the disks, and the base they need */
	r = base_check_disks(&env, &g, diskdir, &p, err);
	free(p);
	if (r)
		goto out;
	if (ndisks)
		*ndisks = (int)(nr + nimages);
out:
	conf_release(&g);
	return r;
}
