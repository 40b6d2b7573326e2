#include "snapshot/backup.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "qemu/bitmap.h"
#include "qemu/image.h"
#include "snapshot/restorable.h"
#include "snapshot/seal.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/proc.h"

/*
 * A file stored when it is there: a regular file, or (*r = -EINVAL, the
 * first such file named in err) a symlink, directory or other thing
 * restore would not bring back.
 */
static bool optional_file(const char *path, int *r, struct strbuf *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return false;
	if (!S_ISREG(st.st_mode)) {
		if (!*r)
			strbuf_addf(err, "cannot back up %s: it is not a regular file",
				    path);
		*r = -EINVAL;
		return false;
	}
	return true;
}

static void add_file(struct backup_job *job, const char *name, char *path)
{
	strvec_push(&job->names, name);
	strvec_push(&job->paths, path);
	free(path);
}

/* The disk-N.img of WORKDIR in order; how many, or -errno. */
static int collect_disks(const struct vm *vm, struct backup_job *job)
{
	char *disks[SNAP_MAX_DISKS] = { NULL };
	struct dirent *e;
	DIR *d;
	int i, n = 0;

	if (!vm->workdir)
		return 0;
	d = opendir(vm->workdir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		i = snap_disk_index(e->d_name);
		if (i >= 0 && !disks[i]) {
			disks[i] = xstrdup(e->d_name);
			n++;
		}
	}
	closedir(d);
	for (i = 0; i < SNAP_MAX_DISKS; i++) {
		if (!disks[i])
			continue;
		add_file(job, disks[i], vm_work_path(vm, disks[i]));
		free(disks[i]);
	}
	return n;
}

/* guest.conf, the disks in order, efivars.bin, vm.defaults. */
static int collect(const struct vm *vm, struct backup_job *job,
		   struct strbuf *err)
{
	int i, n, r = 0;

	add_file(job, "guest.conf", vm_host_path(vm, "guest.conf"));
	n = collect_disks(vm, job);
	if (n < 0) {
		strbuf_addf(err, "cannot read %s: %s", vm->workdir,
			    strerror(-n));
		return n;
	}
	/* a VM made from images only: they are its disks */
	for (i = 0; i < (int)vm->conf.images.nr && i < SNAP_MAX_DISKS; i++) {
		char name[32];

		if (!restorable_image(&vm->conf, (size_t)i))
			continue;
		snprintf(name, sizeof(name), "image-%d.img", i);
		add_file(job, name, restorable_image_path(vm, &vm->conf, (size_t)i));
		n++;
	}
	if (vm->workdir) {
		static const char *const work[] = { "efivars.bin",
						    /* a VM stopped with --save
						     * keeps its state */
						    "saved-state" };
		char *p;

		for (i = 0; i < 2; i++) {
			p = vm_work_path(vm, work[i]);
			if (optional_file(p, &r, err))
				add_file(job, work[i], p);
			else
				free(p);
		}
		p = vm_host_path(vm, "vm.defaults");
		if (optional_file(p, &r, err))
			add_file(job, "vm.defaults", p);
		else
			free(p);
	}
	return r ? r : n;
}

/* Whether the job's disks are those m holds. */
static bool same_disks(const struct backup_job *job, const struct manifest *m)
{
	size_t i, mine = 0, theirs = 0;

	for (i = 0; i < job->names.nr; i++) {
		const char *nm = job->names.v[i];
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
 * reference's layout, an old or unreadable MANIFEST, other disks): then
 * job->parent stays NULL and why_full says why.
 */
static void pick_parent(const struct vm *vm, struct backup_job *job)
{
	struct strbuf err = STRBUF_INIT;
	const struct backup **chain = NULL;
	const struct backup *b = NULL;
	unsigned every = vm->conf.full_every;
	char *last = NULL;
	int k;

	if (every == 1)
		goto out;
	last = backups_last(vm);
	b = last ? backups_find(vm, job->list, job->n, last) : NULL;
	if (!b || b->legacy) {
		b = NULL;
		goto out;
	}
	k = backups_chain(job->list, job->n, b, &chain, &err);
	if (k < 0) {
		job->why_full = xasprintf("a full snapshot: LAST's chain is broken (%s)",
					  err.buf);
		job->why_full_warns = true;
	} else if (every && (unsigned)k >= every) {
		job->why_full = xasprintf("a full snapshot: the chain of %s holds %d (full_every = %u)",
					  b->name, k, every);
	} else if (backups_read_manifest(job->list, job->n, b, &job->pm, &err)) {
		job->why_full = xasprintf("a full snapshot: the MANIFEST of %s cannot be read (%s)",
					  b->name, err.buf);
		job->why_full_warns = true;
	} else if (!same_disks(job, &job->pm)) {
		job->why_full = xasprintf("a full snapshot: the disks are not those of %s",
					  b->name);
	} else {
		job->parent = b->name;
	}
	if (!job->parent) {
		manifest_release(&job->pm);
		manifest_init(&job->pm);
	}
out:
	free(chain);
	free(last);
	strbuf_release(&err);
}

/* Whether vm has anything to back up; err says why not. */
static int has_disks(const struct vm *vm, struct strbuf *err)
{
	const struct vm_conf *c = &vm->conf;
	size_t i, nimages = 0;

	for (i = 0; i < c->images.nr; i++)
		if (restorable_image(c, i))
			nimages++;
	if (!nimages && c->images.nr && !c->disks.nr) {
		strbuf_addf(err, "nothing to back up: the images of %s are CDs or downloads (-i %s), which it never writes",
			    c->name, c->images.v[0].path);
		return -ENOENT;
	}
	if (!nimages && (!vm->workdir || !vm_count_disks(vm))) {
		strbuf_addf(err, "nothing to back up: %s has no disks (@create it, or @restore a snapshot)",
			    c->name);
		return -ENOENT;
	}
	return 0;
}

/*
 * What restore would refuse is refused here, before anything is
 * written: the same check on the VM's own files.  The snapshot must say
 * what the disks are: a missing guest.conf is written first.
 */
static int check_as_restore(struct vm *vm, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	char *conf = vm_host_path(vm, "guest.conf");
	int r = 0;

	if (!fs_exists(conf) && !vm->dry_run) {
		r = conf_write_guest(&vm->conf, conf);
		if (r)
			strbuf_addf(err, "cannot write %s: %s", conf,
				    strerror(-r));
	}
	if (!r && (!vm->dry_run || fs_exists(conf))) {
		r = restorable_check(vm, vm->hostdir,
				  vm->workdir ? vm->workdir : vm->hostdir,
				  false, NULL, &e);
		if (r)
			strbuf_addf(err, "cannot back up %s: %s", vm->conf.name,
				    e.buf);
	}
	strbuf_release(&e);
	free(conf);
	return r;
}

/* What restore takes (MANIFEST_MAX_BLOCKS): never write more. */
static int within_blocks(const struct backup_job *job, struct strbuf *err)
{
	uint64_t blocks = 0;
	struct stat st;
	size_t i;

	for (i = 0; i < job->paths.nr; i++)
		if (stat(job->paths.v[i], &st) == 0)
			blocks += ((uint64_t)st.st_size + MANIFEST_BLOCK - 1) /
				  MANIFEST_BLOCK;
	if (blocks < MANIFEST_MAX_BLOCKS)
		return 0;
	strbuf_addf(err, "its disks are larger than a snapshot holds (16 TiB in all)");
	return -EFBIG;
}

int backup_prepare(struct vm *vm, const char *name, struct backup_job *job,
		   struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	char *dir;
	int r;

	memset(job, 0, sizeof(*job));
	job->names = (struct strvec)STRVEC_INIT;
	job->paths = (struct strvec)STRVEC_INIT;
	manifest_init(&job->pm);
	if (backups_writable(vm, &e)) {
		strbuf_addf(err, "cannot back up %s: %s", vm->conf.name, e.buf);
		strbuf_release(&e);
		return -EINVAL;
	}
	job->n = backups_list(vm, &job->list);
	if (job->n < 0) {
		r = job->n;
		job->n = 0;
		strbuf_addf(err, "cannot read %s/backups: %s", vm->hostdir,
			    strerror(-r));
		return r;
	}
	if (name && backups_find(vm, job->list, job->n, name)) {
		strbuf_addf(err, "snapshot %s already exists (@forget it first, or pick another name)",
			    name);
		return -EEXIST;
	}
	job->name = name ? xstrdup(name) :
			   backups_next_name(job->list, job->n);
	r = has_disks(vm, err);
	if (!r)
		r = check_as_restore(vm, err);
	if (r)
		return r;
	job->ndisks = collect(vm, job, err);
	if (job->ndisks < 0)
		return job->ndisks;
	if (!job->ndisks) {
		strbuf_addf(err, "nothing to back up in %s", vm->workdir);
		return -ENOENT;
	}
	r = within_blocks(job, err);
	if (r)
		return r;
	job->reads = xcalloc(job->names.nr, sizeof(*job->reads));
	dir = vm_host_path(vm, "backups");
	job->file = xasprintf("%s/%s.tar.gz", dir, job->name);
	free(dir);
	pick_parent(vm, job);
	return 0;
}

/* How vm opens the stored file name (a disk or image), or NULL. */
static const char *stored_format(const struct vm *vm, const char *name)
{
	const struct vm_conf *c = &vm->conf;
	int i = snap_disk_index(name);
	const struct disk_spec *d;

	if (i >= 0)
		d = (size_t)i < c->disks.nr ? &c->disks.v[i] : NULL;
	else if ((i = snap_image_index(name)) >= 0)
		d = (size_t)i < c->images.nr ? &c->images.v[i] : NULL;
	else
		return NULL;
	if (!d)
		return "qcow2";	/* as restore checked it */
	return d->format ? d->format : d->bus == BUS_CDROM ? "raw" : "qcow2";
}

/*
 * A bitmap of ours on the disk (info) that counts from a snapshot X in
 * backups/ other than the parent (the disks of an older one restored
 * brought it): its name, with X's MANIFEST in xm and its name in *x; or
 * NULL.  What changed since the parent is then what it marks and what
 * X and the parent differ in.
 */
static const char *older_bitmap(const struct backup_job *job,
				const struct image_info *info,
				struct manifest *xm, const char **x)
{
	size_t i, plen = strlen(BITMAP_PREFIX);
	int k;

	for (i = 0; i < info->nbitmaps; i++) {
		const struct image_bitmap *b = &info->bitmaps[i];

		if (b->in_use || !b->recording || !bitmap_name_ok(b->name))
			continue;
		for (k = 0; k < job->n; k++) {
			struct strbuf e = STRBUF_INIT;
			char st[65];
			bool found;

			if (job->list[k].legacy)
				continue;
			manifest_release(xm);
			manifest_init(xm);
			found = !backups_read_manifest(job->list, job->n, &job->list[k], xm,
						      &e) &&
				!manifest_state(xm, st) &&
				!strcmp(st, b->name + plen);
			strbuf_release(&e);
			if (found) {
				*x = job->list[k].name;
				return b->name;
			}
		}
	}
	manifest_release(xm);
	manifest_init(xm);
	return NULL;
}

/*
 * Of the clean runs (as they were in X, file x), the whole blocks that
 * X and the parent (l) hold alike: only those are as in the parent.
 */
static void same_in_both(struct backup_read *rd, const struct mf_file *x,
			 const struct mf_file *l)
{
	struct range *out = NULL;
	size_t i, n = 0;

	for (i = 0; x && l && x->blocks && l->blocks &&
		    x->bsize == MANIFEST_BLOCK && l->bsize == MANIFEST_BLOCK &&
		    i < rd->nclean; i++) {
		uint64_t end = rd->clean[i].off + rd->clean[i].len;
		size_t b = (size_t)((rd->clean[i].off + MANIFEST_BLOCK - 1) /
				    MANIFEST_BLOCK);

		for (; ((uint64_t)b + 1) * MANIFEST_BLOCK <= end; b++) {
			uint64_t off = (uint64_t)b * MANIFEST_BLOCK;

			if (b >= x->nblk || b >= l->nblk ||
			    manifest_block_len(x->size, MANIFEST_BLOCK, b) != MANIFEST_BLOCK ||
			    manifest_block_len(l->size, MANIFEST_BLOCK, b) != MANIFEST_BLOCK ||
			    memcmp(x->blk[b], l->blk[b], 32))
				continue;
			if (n && out[n - 1].off + out[n - 1].len == off) {
				out[n - 1].len += MANIFEST_BLOCK;
				continue;
			}
			out = xrealloc(out, (n + 1) * sizeof(*out));
			out[n].off = off;
			out[n].len = MANIFEST_BLOCK;
			n++;
		}
	}
	free(rd->clean);
	rd->clean = out;
	rd->nclean = n;
}

/*
 * What bitmap name marks on the job's file k, as file runs that hold
 * what they held then (rd->clean): through its QEMU's export (live), or
 * qemu-nbd (at rest); or rd->why says why not.
 * Returns 0, or -EINTR.
 */
static int read_bitmap(const struct vm *vm, const struct backup_job *job,
		       size_t k, const char *name, struct backup_read *rd)
{
	const char *file = job->names.v[k], *path = job->paths.v[k];
	struct strbuf e = STRBUF_INIT;
	struct image_info info;
	struct image_extent *map = NULL;
	struct range *dirty = NULL;
	struct manifest xm;
	size_t i, nmap = 0, ndirty = 0;
	char *sock = NULL, size[32];
	const char *why, *x = NULL;
	int r;

	memset(&info, 0, sizeof(info));
	manifest_init(&xm);
	if (rd->export) {
		/* its QEMU offers a still copy; the file holds still too */
		r = bitmap_read_nbd(job->nbd, rd->export, name, &dirty, &ndirty,
				    &e);
	} else {
		r = image_info(path, stored_format(vm, file), &info, &e);
		if (r) {
			rd->why = xasprintf("qemu-img cannot read it (%s)", e.buf);
			goto out;
		}
		why = bitmap_unusable(&info, name);
		/* none from the parent: one from another snapshot may do */
		if (why && !strcmp(why, BITMAP_NONE) &&
		    (name = older_bitmap(job, &info, &xm, &x)))
			why = NULL;
		if (why) {
			rd->why = xstrdup(why);
			goto out;
		}
		sock = vm_work_path(vm, "nbd.sock");
		r = bitmap_read_file(path, sock, name, &dirty, &ndirty, &e);
	}
	if (!r)
		r = image_map(path, &map, &nmap, &e);
	if (r) {
		rd->why = xasprintf("its bitmap cannot be read (%s)", e.buf);
		goto out;
	}
	rd->by = "bitmap";
	for (i = 0; i < ndirty; i++)
		rd->marked += dirty[i].len;
	rd->clean = bitmap_clean(map, nmap, dirty, ndirty, &rd->nclean);
	log_size(size, sizeof(size), rd->marked);
	if (x) {
		same_in_both(rd, manifest_find(&xm, file),
			     manifest_find(&job->pm, file));
		log_info("%s: its bitmap marks %s written since %s; what %s and %s differ in is read too",
			 file, size, x, x, job->parent);
	} else {
		log_info("%s: its bitmap marks %s written since the parent",
			 file, size);
	}
out:
	manifest_release(&xm);
	image_info_release(&info);
	free(map);
	free(dirty);
	free(sock);
	strbuf_release(&e);
	return proc_interrupted() ? -EINTR : 0;
}

/*
 * For each disk, how its changes since the parent are found: by its
 * bitmap where one counts from the parent, else by comparing every
 * block's digest (exact too, only slower).  Returns 0 or -EINTR.
 */
static int find_changes(const struct vm *vm, struct backup_job *job)
{
	char *name;
	size_t i;
	int r = 0;

	if (!job->parent)
		return 0;
	name = backup_since(job);
	for (i = 0; !r && i < job->names.nr; i++) {
		struct backup_read *rd = &job->reads[i];
		const char *format = stored_format(vm, job->names.v[i]);

		if (!format)
			continue;
		rd->by = "digests";
		if (job->taken && rd->export)
			r = read_bitmap(vm, job, i, BITMAP_FROZEN, rd);
		else if (job->taken && !rd->why)
			rd->why = xstrdup("the VM's vm offers no bitmap");
		else if (!job->taken && name)
			r = read_bitmap(vm, job, i, name, rd);
		else if (!job->taken)
			rd->why = xstrdup("the parent's STATE cannot be computed");
		if (!r && rd->why)
			log_info("%s: read whole and compared with %s block by block: %s",
				 job->names.v[i], job->parent, rd->why);
	}
	free(name);
	return r;
}

/*
 * Every qcow2 disk of the stopped VM (job's files) gets one bitmap,
 * counting from snapshot (whose STATE is state); state NULL: none, the
 * bitmaps of ours go.  One that fails is said.
 */
static void restart_bitmaps(const struct vm *vm, const struct backup_job *job,
			    const char *snapshot, const char *state)
{
	char *name = state ? bitmap_name(state) : NULL;
	size_t i;
	int r;

	for (i = 0; i < job->names.nr; i++) {
		const char *format = stored_format(vm, job->names.v[i]);
		struct strbuf e = STRBUF_INIT;
		struct image_info info;

		if (!format || strcmp(format, "qcow2"))
			continue;
		r = image_info(job->paths.v[i], format, &info, &e);
		if (!r)
			r = bitmap_restart(job->paths.v[i], &info, name, &e);
		if (r && name)
			log_warn("%s: no bitmap counts from snapshot %s (%s): the next @backup reads it whole",
				 job->names.v[i], snapshot, e.buf);
		else if (r)
			log_warn("%s: the bitmaps snapshot %s brought could not be removed (%s): take the next @backup with --full",
				 job->names.v[i], snapshot, e.buf);
		image_info_release(&info);
		strbuf_release(&e);
	}
	free(name);
}

/*
 * Whether the job stores the file name.  A VM stopped with --save keeps
 * its disks as its saved RAM knows them, bitmaps too: they are not
 * restarted (their bitmap counts on from an older snapshot, which serves
 * too), or the next @start would find the disks changed and refuse.
 */
static bool holds(const struct backup_job *job, const char *name)
{
	size_t i;

	for (i = 0; i < job->names.nr; i++)
		if (!strcmp(job->names.v[i], name))
			return true;
	return false;
}

int backup_store(struct vm *vm, struct backup_job *job,
		 const char *description, const char *compressor,
		 const struct snap_progress *progress, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT, mtext = STRBUF_INIT;
	struct snap_file *files = xcalloc(job->names.nr, sizeof(*files));
	char *dir = vm_host_path(vm, "backups");
	struct backup made;
	struct snap_wopts o;
	size_t i;
	int r;

	r = fs_mkdir_p(dir, 0755);
	if (r) {
		strbuf_addf(err, "cannot make %s: %s", dir, strerror(-r));
		goto out;
	}
	r = find_changes(vm, job);
	if (r) {
		strbuf_addf(err, "cannot back up %s: interrupted", vm->conf.name);
		goto out;
	}
	for (i = 0; i < job->names.nr; i++) {
		files[i].name = job->names.v[i];
		files[i].path = job->paths.v[i];
		files[i].clean = job->reads[i].clean;
		files[i].nclean = job->reads[i].nclean;
	}
	backups_sweep(dir);
	memset(&o, 0, sizeof(o));
	o.description = description ? description : "";
	o.ts = time(NULL);
	o.compressor = compressor;
	o.level = (int)vm->conf.compress_level;
	o.parent = job->parent;
	o.parent_m = job->parent ? &job->pm : NULL;
	o.progress = progress;
	o.manifest = &mtext;
	/* yours, from here: what a restore may apply as it is */
	o.seal = true;
	o.taken = job->taken;
	r = snap_write_opts(job->file, files, (int)job->names.nr, &o, &e);
	job->sealed = o.sealed;
	job->read = o.read;
	if (r) {
		strbuf_addf(err, "cannot back up %s as %s: %s", vm->conf.name,
			    job->name, e.buf);
		goto out;
	}
	fs_fsync_dir(dir);
	made.name = job->name;
	made.path = job->file;
	made.legacy = false;
	/* the next @backup on this one need not inflate it to read it */
	backups_keep_manifest(&made, mtext.buf ? mtext.buf : "", mtext.len);
	r = backups_set_last(vm, &made);
	if (r)
		strbuf_addf(err, "snapshot %s is stored, but LAST could not be moved: %s",
			    job->name, strerror(-r));
	else if (!job->taken && !holds(job, "saved-state"))
		restart_bitmaps(vm, job, job->name, o.state);
	if (!r)
		memcpy(job->state, o.state, sizeof(job->state));
out:
	strbuf_release(&e);
	strbuf_release(&mtext);
	free(files);
	free(dir);
	return r;
}

void backup_drop_bitmaps(const struct vm *vm, const char *snapshot)
{
	struct backup_job job;
	struct strbuf e = STRBUF_INIT;

	memset(&job, 0, sizeof(job));
	job.names = (struct strvec)STRVEC_INIT;
	job.paths = (struct strvec)STRVEC_INIT;
	manifest_init(&job.pm);
	if (collect(vm, &job, &e) >= 0)
		restart_bitmaps(vm, &job, snapshot, NULL);
	backup_job_release(&job);
	strbuf_release(&e);
}

int backup_job_use(struct backup_job *job, const char *name,
		   const char *path)
{
	size_t i;

	for (i = 0; i < job->names.nr; i++)
		if (!strcmp(job->names.v[i], name)) {
			free(job->paths.v[i]);
			job->paths.v[i] = xstrdup(path);
			return 0;
		}
	return -ENOENT;
}

char *backup_since(const struct backup_job *job)
{
	char state[65];

	if (!job->parent || manifest_state(&job->pm, state))
		return NULL;
	return bitmap_name(state);
}

char *backup_keep(const struct backup_job *job)
{
	return job->state[0] ? bitmap_name(job->state) : NULL;
}

void backup_job_bitmap(struct backup_job *job, const char *file,
		       const char *nbd, const char *export, const char *why)
{
	size_t i;

	for (i = 0; i < job->names.nr; i++) {
		struct backup_read *rd = &job->reads[i];

		if (strcmp(job->names.v[i], file))
			continue;
		free(rd->export);
		free(rd->why);
		rd->export = export && nbd ? xstrdup(export) : NULL;
		rd->why = rd->export ? NULL :
			  xstrdup(why ? why : "the VM's vm offers no bitmap");
		if (rd->export && !job->nbd)
			job->nbd = xstrdup(nbd);
	}
}

void backup_job_release(struct backup_job *job)
{
	size_t i;

	for (i = 0; job->reads && i < job->names.nr; i++) {
		free(job->reads[i].why);
		free(job->reads[i].clean);
		free(job->reads[i].export);
	}
	free(job->reads);
	free(job->nbd);
	free(job->name);
	free(job->file);
	strvec_clear(&job->names);
	strvec_clear(&job->paths);
	free(job->why_full);
	manifest_release(&job->pm);
	backups_free(job->list, job->n);
	memset(job, 0, sizeof(*job));
}
