/* @backup [NAME [DESCRIPTION]]: a snapshot of the VM in backups/. */
#include "vm.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/backups.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"

/*
 * A file stored when it is there: a regular file, or (*r = -EINVAL) a
 * symlink, directory or other thing restore would not bring back.
 */
static bool optional_file(const char *path, int *r)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return false;
	if (!S_ISREG(st.st_mode)) {
		if (!*r)
			log_error("cannot back up %s: it is not a regular file",
				  path);
		*r = -EINVAL;
		return false;
	}
	return true;
}

/* guest.conf, the disks in order, efivars.bin, vm.defaults. */
static int collect(struct vm_ctx *ctx, struct strvec *names,
		   struct strvec *paths)
{
	const char *disks[SNAP_MAX_DISKS] = { NULL };
	char *p;
	DIR *d;
	struct dirent *e;
	int i, n = 0, r = 0;

	strvec_push(names, "guest.conf");
	p = vm_host_path(&ctx->vm, "guest.conf");
	strvec_push(paths, p);
	free(p);
	d = ctx->vm.workdir ? opendir(ctx->vm.workdir) : NULL;
	if (!d && ctx->vm.workdir)
		return -errno;
	while (d && (e = readdir(d))) {
		i = snap_disk_index(e->d_name);
		if (i >= 0 && !disks[i]) {
			disks[i] = xstrdup(e->d_name);
			n++;
		}
	}
	if (d)
		closedir(d);
	for (i = 0; i < SNAP_MAX_DISKS; i++) {
		if (!disks[i])
			continue;
		strvec_push(names, disks[i]);
		p = vm_work_path(&ctx->vm, disks[i]);
		strvec_push(paths, p);
		free(p);
		free((void *)(uintptr_t)disks[i]);
	}
	/* a VM made from images only: they are its disks */
	for (i = 0; i < (int)ctx->vm.conf.images.nr && i < SNAP_MAX_DISKS;
	     i++) {
		char name[32];

		if (!restore_holds_image(&ctx->vm.conf, (size_t)i))
			continue;
		snprintf(name, sizeof(name), "image-%d.img", i);
		strvec_push(names, name);
		p = restore_image_path(&ctx->vm, &ctx->vm.conf, (size_t)i);
		strvec_push(paths, p);
		free(p);
		n++;
	}
	if (!ctx->vm.workdir)
		return r ? r : n;
	p = vm_work_path(&ctx->vm, "efivars.bin");
	if (optional_file(p, &r)) {
		strvec_push(names, "efivars.bin");
		strvec_push(paths, p);
	}
	free(p);
	/* a VM stopped with --save keeps its state with the disks */
	p = vm_work_path(&ctx->vm, "saved-state");
	if (optional_file(p, &r)) {
		strvec_push(names, "saved-state");
		strvec_push(paths, p);
	}
	free(p);
	p = vm_host_path(&ctx->vm, "vm.defaults");
	if (optional_file(p, &r)) {
		strvec_push(names, "vm.defaults");
		strvec_push(paths, p);
	}
	free(p);
	return r ? r : n;
}


/* Whether names (a snapshot's files) and m hold the same disks. */
static bool same_disks(const struct strvec *names, const struct manifest *m)
{
	size_t i, mine = 0, theirs = 0;

	for (i = 0; i < names->nr; i++) {
		const char *nm = names->v[i];
		const struct mf_file *f;

		if (snap_disk_index(nm) < 0 && snap_image_index(nm) < 0)
			continue;
		mine++;
		f = manifest_find(m, nm);
		if (!f || !f->blocks)
			return false;
	}
	for (i = 0; i < m->n; i++)
		if (snap_disk_index(m->f[i].name) >= 0 ||
		    snap_image_index(m->f[i].name) >= 0)
			theirs++;
	return mine == theirs;
}

/*
 * The snapshot this one is stored on: LAST, unless the setting asks for
 * a full one, LAST's chain is full_every long, or LAST cannot serve (the
 * reference's layout, an old or unreadable MANIFEST, other disks).
 * Returns LAST with its MANIFEST in *pm, or NULL (a full snapshot).
 */
static const struct backup *pick_parent(struct vm_ctx *ctx,
					const struct backup *list, int n,
					const struct strvec *names,
					struct manifest *pm)
{
	struct strbuf err = STRBUF_INIT;
	const struct backup **chain = NULL;
	const struct backup *b = NULL;
	char *last = NULL;
	int k;

	manifest_init(pm);
	if (ctx->vm.conf.full_every == 1)
		goto out;
	last = backups_last(&ctx->vm);
	b = last ? backups_find(&ctx->vm, list, n, last) : NULL;
	if (!b || b->legacy) {
		b = NULL;
		goto out;
	}
	k = backups_chain(list, n, b, &chain, &err);
	if (k < 0) {
		log_warn("a full snapshot: LAST's chain is broken (%s)", err.buf);
		b = NULL;
	} else if (ctx->vm.conf.full_every &&
		   (unsigned)k >= ctx->vm.conf.full_every) {
		log_info("a full snapshot: the chain of %s holds %d (full_every = %u)",
			 b->name, k, ctx->vm.conf.full_every);
		b = NULL;
	} else if (backups_read_manifest(b, pm, &err)) {
		log_warn("a full snapshot: the MANIFEST of %s cannot be read (%s)",
			 b->name, err.buf);
		b = NULL;
	} else if (!same_disks(names, pm)) {
		log_info("a full snapshot: the disks are not those of %s",
			 b->name);
		b = NULL;
	}
	if (!b)
		manifest_release(pm);
out:
	free(chain);
	free(last);
	strbuf_release(&err);
	return b;
}

int cmd_backup(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strvec names = STRVEC_INIT, paths = STRVEC_INIT;
	struct strbuf err = STRBUF_INIT, mtext = STRBUF_INIT;
	struct snap_file *files = NULL;
	struct backup *list = NULL, made;
	const struct backup *parent = NULL;
	struct manifest pm;
	struct snap_wopts o;
	struct log_progress bar;
	struct snap_progress prog = { log_progress_cb, &bar };
	char *name = NULL, *dir = NULL, *final = NULL;
	char *pigz = NULL, *conf = NULL;
	int n, ndisks, ret = 1, r;
	size_t i, nimages = 0;

	manifest_init(&pm);
	n = backups_list(&ctx->vm, &list);
	if (n < 0) {
		log_error("cannot read %s/backups: %s", ctx->vm.hostdir,
			  strerror(-n));
		return 1;
	}
	if (argc > 0) {
		name = xstrdup(argv[0]);
		if (!name_is_valid(name) || !strcmp(name, "LAST")) {
			log_error("bad snapshot name '%s' (letters, digits, . _ -; not LAST)",
				  name);
			ret = 2;	/* a usage error */
			goto out;
		}
		if (backups_find(&ctx->vm, list, n, name)) {
			log_error("snapshot %s already exists (@forget it first, or pick another name)",
				  name);
			goto out;
		}
	} else {
		name = backups_next_name(list, n);
	}
	for (i = 0; i < ctx->vm.conf.images.nr; i++)
		if (restore_holds_image(&ctx->vm.conf, i))
			nimages++;
	if (!nimages && ctx->vm.conf.images.nr && !ctx->vm.conf.disks.nr) {
		log_error("nothing to back up: the images of %s are CDs or downloads (-i %s), which it never writes",
			  ctx->vm.conf.name, ctx->vm.conf.images.v[0].path);
		goto out;
	}
	if (!nimages && (!ctx->vm.workdir || !vm_count_disks(&ctx->vm))) {
		log_error("nothing to back up: %s has no disks (@create it, or @restore a snapshot)",
			  ctx->vm.conf.name);
		goto out;
	}
	conf = vm_host_path(&ctx->vm, "guest.conf");
	if (!fs_exists(conf) && !ctx->vm.dry_run) {
		/* The snapshot must say what the disks are. */
		r = conf_write_guest(&ctx->vm.conf, conf);
		if (r) {
			log_error("cannot write %s: %s", conf, strerror(-r));
			goto out;
		}
	}
	/*
	 * What restore would refuse is refused here, before anything is
	 * written: the same check on the VM's own files.
	 */
	if (!ctx->vm.dry_run || fs_exists(conf)) {
		r = restore_check(&ctx->vm, ctx->vm.hostdir,
				  ctx->vm.workdir ? ctx->vm.workdir
						  : ctx->vm.hostdir,
				  false, NULL, &err);
		if (r) {
			log_error("cannot back up %s: %s", ctx->vm.conf.name,
				  err.buf);
			goto out;
		}
	}
	ndisks = collect(ctx, &names, &paths);
	if (ndisks < 0) {
		if (ndisks != -EINVAL)	/* else collect said which file */
			log_error("cannot read %s: %s", ctx->vm.workdir,
				  strerror(-ndisks));
		goto out;
	}
	if (!ndisks) {
		log_error("nothing to back up in %s", ctx->vm.workdir);
		goto out;
	}
	dir = vm_host_path(&ctx->vm, "backups");
	final = xasprintf("%s/%s.tar.gz", dir, name);
	report_set_str(ctx->result, "name", name);
	report_set_str(ctx->result, "file", final);
	report_set_str(ctx->result, "description", argc > 1 ? argv[1] : "");
	report_set(ctx->result, "files",
		   report_strv((const char *const *)names.v, names.nr));
	parent = pick_parent(ctx, list, n, &names, &pm);
	report_set_str(ctx->result, "parent", parent ? parent->name : NULL);
	if (ctx->vm.dry_run) {
		char *list_s = strvec_join(&names, " ", true);

		say_dry(ctx, "snapshot %s (level %u%s%s): %s", final,
			ctx->vm.conf.compress_level, parent ? ", on " : ", full",
			parent ? parent->name : "", list_s);
		free(list_s);
		ret = 0;
		goto out;
	}
	r = fs_mkdir_p(dir, 0755);
	if (r) {
		log_error("cannot make %s: %s", dir, strerror(-r));
		goto out;
	}
	files = xcalloc(names.nr, sizeof(*files));
	for (i = 0; i < names.nr; i++) {
		files[i].name = names.v[i];
		files[i].path = paths.v[i];
	}
	pigz = fs_which("pigz");
	if (!pigz)
		log_warn("pigz not found: compressing with one thread (apt-get install pigz)");
	backups_sweep(dir);
	log_progress_start(&bar, "backup %s", name);
	memset(&o, 0, sizeof(o));
	o.description = argc > 1 ? argv[1] : "";
	o.ts = time(NULL);
	o.compressor = pigz ? "pigz" : NULL;
	o.level = (int)ctx->vm.conf.compress_level;
	o.parent = parent ? parent->name : NULL;
	o.parent_m = parent ? &pm : NULL;
	o.progress = &prog;
	o.manifest = &mtext;
	r = snap_write_opts(final, files, (int)names.nr, &o, &err);
	log_progress_end(&bar, !r);
	if (r) {
		log_error("cannot back up %s as %s: %s", ctx->vm.conf.name, name,
			  err.buf);
		if (r == -EINTR)
			ret = 128 + proc_interrupted();
		goto out;
	}
	fs_fsync_dir(dir);
	made.name = name;
	made.path = final;
	made.legacy = false;
	/* the next @backup on this one need not inflate it to read it */
	backups_keep_manifest(&made, mtext.buf ? mtext.buf : "", mtext.len);
	r = backups_set_last(&ctx->vm, &made);
	if (r) {
		log_error("snapshot %s is stored, but LAST could not be moved: %s",
			  name, strerror(-r));
		goto out;
	}
	{
		struct stat st;

		if (stat(final, &st) == 0)
			report_set_int(ctx->result, "size",
				       (int64_t)st.st_size);
	}
	log_info("snapshot %s of %s stored in %s (%d disk%s, %s%s)", name,
		 ctx->vm.conf.name, final, ndisks, ndisks == 1 ? "" : "s",
		 parent ? "what changed since " : "full",
		 parent ? parent->name : "");
	ret = 0;
out:
	manifest_release(&pm);
	backups_free(list, n > 0 ? n : 0);
	strvec_clear(&names);
	strvec_clear(&paths);
	strbuf_release(&err);
	strbuf_release(&mtext);
	free(files);
	free(name);
	free(dir);
	free(final);
	free(pigz);
	free(conf);
	return ret;
}
