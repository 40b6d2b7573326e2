#include "snapshot/restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/backup.h"
#include "snapshot/backups.h"
#include "snapshot/fetch.h"
#include "vm/base.h"
#include "net/download.h"
#include "snapshot/seal.h"
#include "snapshot/snapint.h"
#include "util/fsutil.h"
#include "util/proc.h"
#include "qemu/qemu.h"
#include "qemu/runstate.h"

/* The reference's guest.env as a guest.conf, for a VM that has none. */
static int convert_guest_env(struct vm *vm, const char *env,
			     const char *dir, const char *dest, int ndisks)
{
	static const char *const map[][2] = {
		{ "GUESTNAME", "name" }, { "CORES", "cores" },
		{ "MEMORY", "memory" }, { "SOCKETS", "sockets" },
		{ "BOOTIMAGE", "bootimage" },
	};
	struct strbuf text = STRBUF_INIT, err = STRBUF_INIT, disks = STRBUF_INIT;
	struct vm_conf g;
	char *line, *save = NULL;
	int i, r;

	conf_init(&g);
	r = fs_read_file(env, 1 << 20, &text);
	for (line = r ? NULL : strtok_r(text.buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '='), *v;
		size_t k, len;

		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		len = strlen(v);
		if (len >= 2 && (v[0] == '"' || v[0] == '\'') &&
		    v[len - 1] == v[0]) {
			v[len - 1] = '\0';
			v++;
		}
		for (k = 0; k < sizeof(map) / sizeof(map[0]); k++)
			if (!strcmp(line, map[k][0]))
				conf_set(&g, "vm", map[k][1], v, LAYER_GUEST,
					 &err);
	}
	/* The reference made AHCI disks; the format is in the file. */
	for (i = 0; i < ndisks; i++) {
		char *p = xasprintf("%s/disk-%d.img", dir, i);
		struct strbuf head = STRBUF_INIT;
		struct stat st;
		bool qcow = false;
		int fd = open(p, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			char magic[4];

			qcow = read(fd, magic, 4) == 4 &&
			       !memcmp(magic, "QFI\xfb", 4);
			close(fd);
		}
		if (qcow || stat(p, &st) < 0)
			strbuf_addf(&disks, "%sAHCI=30G", i ? "," : "");
		else
			strbuf_addf(&disks, "%sAHCI=%lluK:raw", i ? "," : "",
				    (unsigned long long)st.st_size >> 10);
		strbuf_release(&head);
		free(p);
	}
	conf_set(&g, "vm", "disks", disks.buf, LAYER_GUEST, &err);
	if (!g.name || !strcmp(g.name, "vm"))
		conf_set(&g, "vm", "name", vm->conf.name, LAYER_GUEST, &err);
	r = conf_write_guest(&g, dest);
	conf_release(&g);
	strbuf_release(&text);
	strbuf_release(&err);
	strbuf_release(&disks);
	return r;
}

static int count_disks_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (str_starts_with(e->d_name, "disk-") &&
		    str_ends_with(e->d_name, ".img"))
			n++;
	closedir(d);
	return n;
}

/* Move name from dir to HOSTDIR (replacing), if dir has it. */
static int to_hostdir(struct vm *vm, const char *dir, const char *name)
{
	char *src = xasprintf("%s/%s", dir, name);
	char *dst = vm_host_path(vm, name);
	int r = 0;

	if (fs_exists(src)) {
		/* settings are for everyone to read; disks stay private */
		if (!strcmp(name, "guest.conf") || !strcmp(name, "vm.defaults"))
			chmod(src, 0644);
		if (rename(src, dst) < 0) {
			r = -errno;
			/* $TMPDIR may be another file system than HOSTDIR */
			if (r == -EXDEV) {
				r = fs_copy_file(src, dst,
						 str_starts_with(name, "disk-") ?
						 0600 : 0644);
				if (!r)
					unlink(src);
			}
		}
	}
	free(src);
	free(dst);
	return r;
}

/*
 * A directory whose name ends in NAME.doomed.tmp is garbage by its name
 * alone (vm_sweep_private): the old WORKDIR is renamed so before rm -rf.
 */
static void remove_old_workdir(const char *old)
{
	char *doomed = NULL;

	if (str_ends_with(old, ".tmp") && !str_ends_with(old, VM_DOOMED)) {
		doomed = xasprintf("%.*s" VM_DOOMED, (int)(strlen(old) - 4),
				   old);
		if (rename(old, doomed) < 0) {
			free(doomed);
			doomed = NULL;
		}
	}
	fs_rm_rf(doomed ? doomed : old);
	free(doomed);
}

/* A file of HOSTDIR that the swap replaces, kept until it is done. */
struct kept {
	char *path, *old;
	bool had;
};

static void keep_host_file(const struct vm *vm, const char *dir,
			   const char *name, struct kept *k)
{
	char *src = xasprintf("%s/%s", dir, name);

	k->path = NULL;
	k->old = NULL;
	k->had = false;
	if (fs_exists(src)) {
		k->path = vm_host_path(vm, name);
		k->old = xasprintf("%s/.%s.before-restore", vm->hostdir, name);
		unlink(k->old);
		k->had = link(k->path, k->old) == 0;
	}
	free(src);
}

/* Undo (failed) or forget (done) what keep_host_file kept. */
static void release_host_file(struct kept *k, bool undo)
{
	if (k->path && undo) {
		if (k->had)
			rename(k->old, k->path);
		else
			unlink(k->path);
	} else if (k->old) {
		unlink(k->old);
	}
	free(k->path);
	free(k->old);
}

/* "no space left on MOUNT" for -ENOSPC, else the errno's text. */
static const char *no_space_text(int r, const char *where)
{
	static char buf[4200];
	char *m;

	if (r != -ENOSPC && r != -EDQUOT)
		return strerror(-r);
	m = fs_mount_point(where && *where ? where : "/tmp");
	snprintf(buf, sizeof(buf), "no space left on %s", m);
	free(m);
	return buf;
}

/*
 * An image of a VM made from images only, put back where the snapshot's
 * guest.conf (checked against the VM's own) names it: copied next to it
 * first, the old one kept as a link until the whole swap is done.
 */
struct placed {
	char *dest, *tmp, *old;
	bool had, moved;
};

/* dir/.NAME.SUFFIX beside path */
static char *beside(const char *path, const char *suffix)
{
	const char *slash = strrchr(path, '/');

	return xasprintf("%.*s.%s.%s", (int)(slash - path + 1), path,
			 slash + 1, suffix);
}

/* What a restore killed while it copied images left beside them. */
static void sweep_images(const struct vm *vm)
{
	size_t i;

	for (i = 0; i < vm->conf.images.nr; i++) {
		char *at, *real, *tmp, *tmp2;

		if (!restorable_image(&vm->conf, i))
			continue;
		at = restorable_image_path(vm, &vm->conf, i);
		real = fs_realpath(at);
		tmp = beside(real, "vm-restore.tmp");
		tmp2 = xasprintf("%s.tmp", tmp);	/* fs_copy_file's */
		unlink(tmp);
		unlink(tmp2);
		free(tmp2);
		free(tmp);
		free(real);
		free(at);
	}
}

static int stage_image(const char *src, struct placed *pl)
{
	struct stat st;
	mode_t mode = 0600;
	int fd, r = 0;

	if (stat(pl->dest, &st) == 0)
		mode = st.st_mode & 07777;
	unlink(pl->tmp);
	if (rename(src, pl->tmp) == 0) {
		chmod(pl->tmp, mode);
		fd = open(pl->tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fsync(fd) < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
	} else if (errno == EXDEV) {
		/* $TMPDIR may be another file system than the image's */
		r = fs_copy_file(src, pl->tmp, mode);
	} else {
		r = -errno;
	}
	if (r)
		unlink(pl->tmp);
	return r;
}

/* Undo (failed) or forget (done) what place_images did. */
static void release_images(struct placed *pl, int n, bool undo)
{
	int i;

	for (i = 0; i < n; i++) {
		if (undo && pl[i].moved) {
			if (pl[i].had)
				rename(pl[i].old, pl[i].dest);
			else
				unlink(pl[i].dest);
		} else if (pl[i].had) {
			unlink(pl[i].old);
		}
		if (pl[i].tmp)
			unlink(pl[i].tmp);
		free(pl[i].dest);
		free(pl[i].tmp);
		free(pl[i].old);
	}
	free(pl);
}

static int place_images(struct vm *vm, const char *dir,
			struct placed **out, int *nout, struct strbuf *err)
{
	struct placed *pl = xcalloc(SNAP_MAX_DISKS, sizeof(*pl));
	struct vm_conf g;
	int n = 0, r = 0, i;

	conf_init(&g);
	/* checked (restorable_check) and not read again */
	r = vm_guest_settings(vm, dir, &g, err);
	if (r == -ENOENT)
		r = 0;
	for (i = 0; !r && i < SNAP_MAX_DISKS; i++) {
		char *src = xasprintf("%s/image-%d.img", dir, i), *at;

		if (!fs_exists(src) || !restorable_image(&g, (size_t)i)) {
			free(src);
			continue;
		}
		at = restorable_image_path(vm, &g, (size_t)i);
		pl[n].dest = fs_realpath(at);
		pl[n].tmp = beside(pl[n].dest, "vm-restore.tmp");
		pl[n].old = beside(pl[n].dest, "before-restore");
		r = stage_image(src, &pl[n]);
		if (r)
			strbuf_addf(err, "cannot write %s: %s", pl[n].tmp,
				    no_space_text(r, pl[n].dest));
		n++;
		free(at);
		free(src);
	}
	/* all copied: now the renames, each old one kept as a link */
	for (i = 0; !r && i < n; i++) {
		unlink(pl[i].old);
		pl[i].had = link(pl[i].dest, pl[i].old) == 0;
		if (rename(pl[i].tmp, pl[i].dest) < 0) {
			r = -errno;
			strbuf_addf(err, "cannot replace %s: %s", pl[i].dest,
				    strerror(-r));
			break;
		}
		pl[i].moved = true;
		free(pl[i].tmp);
		pl[i].tmp = NULL;
	}
	conf_release(&g);
	if (r) {
		release_images(pl, n, true);
		pl = NULL;
		n = 0;
	}
	*out = pl;
	*nout = n;
	return r;
}

/*
 * --inplace: the restored files move into HOSTDIR.  Old disks the
 * snapshot does not have must go too, and so must a saved-state of the
 * old disks: the next @run would resume that RAM on the restored disks.
 */
static int move_in_place(struct vm *vm, const char *dir)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	d = opendir(vm->hostdir);
	while (d && (e = readdir(d))) {
		if ((str_starts_with(e->d_name, "disk-") &&
		     str_ends_with(e->d_name, ".img")) ||
		    !strcmp(e->d_name, SAVED_STATE) ||
		    !strcmp(e->d_name, SAVED_DISKS)) {
			char *p = vm_host_path(vm, e->d_name);

			unlink(p);
			free(p);
		}
	}
	if (d)
		closedir(d);
	d = opendir(dir);
	while (d && (e = readdir(d)) && !r)
		if (e->d_name[0] != '.')
			r = to_hostdir(vm, dir, e->d_name);
	if (d)
		closedir(d);
	if (!r)
		fs_rm_rf(dir);
	return r;
}

/* dir becomes the WORKDIR; old (the one it replaces, or NULL) goes. */
static int adopt_workdir(struct vm *vm, const char *dir, const char *old)
{
	char *mine = xasprintf("%s/" VM_MARK, dir);
	char *theirs = old ? xasprintf("%s/" VM_MARK, old) : NULL;
	int r;

	/* killed from here on, the old WORKDIR is the one to sweep */
	if (theirs)
		fs_write_atomic(theirs, vm->hostdir,
				strlen(vm->hostdir), 0600);
	r = vm_adopt_workdir(vm, dir);
	if (!r) {
		unlink(mine);
		if (old)
			remove_old_workdir(old);
	} else if (theirs) {
		unlink(theirs);
	}
	free(mine);
	free(theirs);
	return r;
}

/*
 * Put the restored (and checked) files in place of the current ones;
 * the images place_images put back are kept or undone with them.
 */
static int swap_in(struct vm *vm, const char *dir,
		   struct placed *images, int nimages)
{
	static const char *const drop[] = { "TS", "DESCRIPTION", "CHAIN",
					    "guest.env", SNAP_SEAL, SNAP_TAKEN,
					    NULL };
	char *old = vm->workdir && !vm->inplace ? xstrdup(vm->workdir) :
						    NULL;
	struct kept conf, defs;
	int r, i;

	keep_host_file(vm, dir, "guest.conf", &conf);
	keep_host_file(vm, dir, "vm.defaults", &defs);
	r = to_hostdir(vm, dir, "guest.conf");
	if (!r)
		r = to_hostdir(vm, dir, "vm.defaults");
	for (i = 0; drop[i]; i++) {
		char *p = xasprintf("%s/%s", dir, drop[i]);

		unlink(p);
		free(p);
	}
	if (r)
		goto out;
	if (vm->inplace)
		r = move_in_place(vm, dir);
	else
		r = adopt_workdir(vm, dir, old);
out:
	release_host_file(&conf, r != 0);
	release_host_file(&defs, r != 0);
	release_images(images, nimages, r != 0);
	free(old);
	return r;
}


static bool fs_exists_in(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	bool r = fs_exists(p);

	free(p);
	return r;
}

/*
 * A legacy snapshot brings guest.env, not guest.conf: for a VM that has
 * no guest.conf, convert it in dir, where it is checked like any other.
 */
static int legacy_conf(struct vm *vm, const char *dir, struct strbuf *err)
{
	char *hostconf = vm_host_path(vm, "guest.conf");
	char *env = xasprintf("%s/guest.env", dir);
	char *dest = xasprintf("%s/guest.conf", dir);
	int r = 0;

	if (!fs_exists(hostconf) && fs_exists(env)) {
		r = convert_guest_env(vm, env, dir, dest, count_disks_in(dir));
		if (r)
			strbuf_addf(err, "cannot convert guest.env: %s",
				    strerror(-r));
	}
	free(hostconf);
	free(env);
	free(dest);
	return r;
}

int restore_pick(const struct vm *vm, const char *want, char **name,
		 struct strbuf *err)
{
	struct backup *list = NULL;
	const struct backup *b;
	char *last;
	int n, r = 0;

	*name = NULL;
	n = backups_list(vm, &list);
	if (n < 0) {
		strbuf_addf(err, "cannot read %s/backups: %s", vm->hostdir,
			    strerror(-n));
		return n;
	}
	b = backups_find(vm, list, n, want);
	if (b || download_is_url(want)) {
		/* a URL is fetched by restore_snapshot */
		*name = xstrdup(b ? b->name : want);
		goto out;
	}
	r = -ENOENT;
	last = strcmp(want, "LAST") ? NULL : backups_last(vm);
	if (last)
		strbuf_addf(err, "cannot restore: LAST points to %s, which does not exist (@last NAME moves it)",
			    last);
	else if (!strcmp(want, "LAST") && (last = backups_last_stray(vm)))
		strbuf_addf(err, "cannot restore: backups/LAST points outside backups/ (to %s; @last NAME moves it)",
			    last);
	else if (!strcmp(want, "LAST"))
		strbuf_addf(err, "cannot restore: %s has no snapshots (no backups/LAST)",
			    vm->hostdir);
	else
		strbuf_addf(err, "cannot restore %s: no such snapshot in %s/backups (see @snapshots)",
			    want, vm->hostdir);
	free(last);
out:
	backups_free(list, n);
	return r;
}

/*
 * The chain that ends in b extracted into dir, e telling what failed;
 * seal: the digest its SEAL must seal ("" for the reference layout).
 */
static int extract_snapshot(struct vm *vm, const struct backup *list, int n,
			    const struct backup *b, const char *dir,
			    const struct snap_progress *prog, char seal[65],
			    struct strbuf *e)
{
	int r;

	seal[0] = '\0';
	if (b->legacy) {
		r = snap_extract_legacy(b->path, dir, prog, e);
	} else {
		const struct backup **chain = NULL;
		struct manifest m;
		int k = backups_chain(list, n, b, &chain, e);

		r = k < 0 ? k : backups_apply(chain, k, dir, prog, &m, e);
		if (!r && manifest_seal_digest(&m, seal))
			seal[0] = '\0';
		if (k >= 0)
			manifest_release(&m);
		free(chain);
	}
	if (!r && b->legacy)
		r = legacy_conf(vm, dir, e);
	return r;
}

/* Files a and b hold the same bytes (b may be missing: then not). */
static bool same_content(const char *a, const char *b)
{
	struct strbuf x = STRBUF_INIT, y = STRBUF_INIT;
	bool same = !fs_read_file(a, 1u << 20, &x) &&
		    !fs_read_file(b, 1u << 20, &y) && x.len == y.len &&
		    !memcmp(x.buf, y.buf, x.len);

	strbuf_release(&x);
	strbuf_release(&y);
	return same;
}

/* dir/vm.defaults reads as QEMU's words (else restorable_check says why). */
static bool defaults_parse(const char *dir)
{
	const char *const dirs[] = { dir, NULL };
	struct strvec words = STRVEC_INIT;
	struct strbuf e = STRBUF_INIT;
	char *found = NULL;
	bool ok = !qemu_read_defaults(dirs, &words, &found, &e);

	strvec_clear(&words);
	strbuf_release(&e);
	free(found);
	return ok;
}

/*
 * RAM and devices from elsewhere are a migration stream for QEMU's
 * parser, and bound to nothing of ours: a snapshot from elsewhere boots
 * afresh.
 */
static void drop_saved_state(const char *dir, struct strvec *dropped)
{
	char *p = xasprintf("%s/%s", dir, SAVED_STATE);
	char *d = xasprintf("%s/%s", dir, SAVED_DISKS);

	if (fs_exists(p)) {
		unlink(p);
		strvec_push(dropped, SAVED_STATE);
	}
	unlink(d);
	free(p);
	free(d);
}

/*
 * A snapshot from elsewhere is data: in dir, its guest.conf keeps this
 * host's value of every setting that reaches the host (in any section),
 * its vm.defaults (QEMU's words) goes unless it is this host's, and its
 * saved state goes.  note says what was not applied.
 */
static int keep_host_settings(struct vm *vm, const char *dir,
			      const char *name, struct strbuf *note,
			      struct strbuf *err)
{
	char *conf = xasprintf("%s/guest.conf", dir);
	char *defs = xasprintf("%s/vm.defaults", dir);
	char *hconf = vm_host_path(vm, "guest.conf");
	char *hdefs = vm_host_path(vm, "vm.defaults");
	struct conf_file snap = CONF_FILE_INIT, host = CONF_FILE_INIT;
	struct conf_file out = CONF_FILE_INIT;
	struct strvec dropped = STRVEC_INIT;
	struct strbuf e = STRBUF_INIT;
	int r = 0;

	/* one that does not read is refused by restorable_check */
	if (!conf_file_read(&snap, conf, LAYER_GUEST, NULL, false, &e)) {
		/* this host's, or none when it has none that reads */
		if (conf_file_read(&host, hconf, LAYER_GUEST, NULL, true, &e)) {
			conf_file_release(&host);
			host = (struct conf_file)CONF_FILE_INIT;
		}
		conf_file_keep_host(&snap, &host, vm->hostdir, &out, &dropped);
		/* written always: what it had in any section is filtered */
		r = conf_file_write(&out, conf);
		if (r)
			strbuf_addf(err, "%s: %s", conf, strerror(-r));
	}
	if (!r && fs_exists(defs) && !same_content(defs, hdefs) &&
	    defaults_parse(dir)) {
		r = unlink(defs) < 0 ? -errno : 0;
		strvec_push(&dropped, "vm.defaults");
	}
	if (!r)
		drop_saved_state(dir, &dropped);
	if (!r && dropped.nr) {
		char *list = strvec_join(&dropped, ", ", false);

		strbuf_addf(note, "%s is not a snapshot you made on this host: its %s %s not applied, this host's kept (--trust-snapshot applies them)",
			    name, list, dropped.nr == 1 ? "was" : "were");
		free(list);
	}
	conf_file_release(&snap);
	conf_file_release(&host);
	conf_file_release(&out);
	strvec_clear(&dropped);
	strbuf_release(&e);
	free(conf);
	free(defs);
	free(hconf);
	free(hdefs);
	return r;
}

/*
 * After the swap: the VM's settings loaded again, the files where this
 * run put them whatever the snapshot's guest.conf said, the WORKDIR
 * found.
 */
static int reload_restored(struct vm *vm, const struct backup *b,
			   struct strbuf *e, struct strbuf *err)
{
	bool was_inplace;
	int r;

	strbuf_reset(e);
	was_inplace = vm->inplace;
	r = vm_reload_conf(vm, e);
	if (r) {
		strbuf_addf(err, "restored %s, but its settings do not load: %s",
			    b->name, e->buf);
		return r;
	}
	if (vm->inplace != was_inplace) {
		/* The files are where this run put them, whatever the
		 * snapshot's guest.conf said. */
		vm->inplace = was_inplace;
		strbuf_reset(e);
		r = vm_guest_conf_set(vm, "use_tmpdir",
				      was_inplace ? "no" : "yes", e);
		if (r) {
			strbuf_addf(err, "restored %s, but: %s", b->name,
				    e->buf);
			return r;
		}
	}
	return vm_find_workdir(vm, err);
}

static void unprintable_as_marks(struct strbuf *sb);

/*
 * A new private directory for a restore of name (*dir, caller frees),
 * after what killed restores left is swept.
 */
static int restore_begin(struct vm *vm, const char *name, char **dir,
			 struct strbuf *err)
{
	int r = vm_new_marked_dir(vm, dir);

	if (r) {
		strbuf_addf(err, "cannot restore %s: %s", name,
			    no_space_text(r, vm->inplace ? vm->hostdir :
					  getenv("TMPDIR")));
		return r;
	}
	vm_sweep_private(vm, *dir);
	sweep_images(vm);
	return 0;
}

/* An extraction into dir failed with r, e saying why: as restore says it. */
static void extract_failed(const char *name, int r, const char *dir,
			   const struct strbuf *e, struct strbuf *err)
{
	strbuf_addf(err, "cannot restore %s: %s", name,
		    r == -ENOSPC && !str_starts_with(e->buf, "no space") ?
		    no_space_text(r, dir) : e->buf);
}

/*
 * b extracted into the private directory dir (seal: the digest its
 * SEAL must seal, "" for none): checked, swapped in, reloaded.  dir is
 * removed on failure, unless the swap had begun (then err names it).
 * e: what came before (a fetch's text).
 */
static int restore_dir(struct vm *vm, const struct backup *b, const char *dir,
		       const char *seal, struct strbuf *e, struct strbuf *note,
		       struct strbuf *err)
{
	struct strbuf e2 = STRBUF_INIT;
	const char *confdir;
	struct placed *images = NULL;
	bool foreign = !*seal || !seal_holds(dir, seal);
	int r, nimages = 0;

	/* its settings as they are only when it is provably yours */
	if (!vm->trust_snapshot && foreign) {
		r = keep_host_settings(vm, dir, b->name, note, &e2);
		if (r) {
			strbuf_addf(err, "cannot restore %s: %s", b->name,
				    e2.buf);
			goto fail;
		}
	}
	/* Everything it brings must work before anything is replaced. */
	confdir = b->legacy && !fs_exists_in(dir, "guest.conf") ?
			  vm->hostdir : dir;
	r = restorable_check(vm, confdir, dir, confdir == dir, NULL, &e2);
	if (r) {
		strbuf_addf(err, "cannot restore %s: %s", b->name, e2.buf);
		goto fail;
	}
	if (proc_interrupted()) {
		strbuf_addf(err, "cannot restore %s: interrupted", b->name);
		r = -EINTR;
		goto fail;
	}
	r = place_images(vm, dir, &images, &nimages, &e2);
	if (r) {
		/* each image is as it was */
		strbuf_addf(err, "cannot restore %s: %s", b->name, e2.buf);
		goto fail;
	}
	r = swap_in(vm, dir, images, nimages);
	if (r) {
		/* kept: --inplace, the old disks may be gone already */
		strbuf_addf(err, "cannot put the restored files of %s in place (they are in %s): %s",
			    b->name, dir, strerror(-r));
		goto out;
	}
	r = reload_restored(vm, b, e, err);
	/* its disks' bitmaps too (trust_snapshot is for its settings) */
	if (!r && foreign)
		backup_drop_bitmaps(vm, b->name);
	if (!r) {
		/* working files again: any that vanish now did not go by
		 * @destroy */
		char *mark = vm_host_path(vm, VM_DESTROYED);

		unlink(mark);
		free(mark);
	}
	goto out;
fail:
	/* The working files were not touched. */
	fs_rm_rf(dir);
out:
	strbuf_release(&e2);
	return r;
}

/*
 * Restore b (of list) through a private directory: extracted, checked,
 * swapped in, reloaded.  e: what came before (a fetch's text).
 */
static int restore_from(struct vm *vm, const struct backup *list, int n,
			const struct backup *b,
			const struct snap_progress *prog, struct strbuf *e,
			struct strbuf *note, struct strbuf *err)
{
	char *dir = NULL;
	char seal[65];
	int r = restore_begin(vm, b->name, &dir, err);

	if (r)
		return r;
	r = extract_snapshot(vm, list, n, b, dir, prog, seal, e);
	if (r) {
		extract_failed(b->name, r, dir, e, err);
		fs_rm_rf(dir);
	} else {
		r = restore_dir(vm, b, dir, seal, e, note, err);
	}
	free(dir);
	return r;
}

/*
 * A staged restore: the links of a chain applied in a thread of its
 * own, in the order they are given, while the caller fetches the next.
 */
struct restore_stage {
	struct vm *vm;
	char *dir;		/* the private directory */
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct backup *q;	/* the links given, oldest first */
	int nq, alloc, taken;	/* given, room, taken by the thread */
	bool closed;		/* no more will be given */
	bool stop;		/* and those given are not wanted */
	struct backups_applying a;
	int r, failed;		/* the first fault and its link */
	struct strbuf e;	/* what it said */
};

static void *stage_thread(void *arg)
{
	struct restore_stage *s = arg;
	struct backup b;
	int r = 0;

	while (!r) {
		pthread_mutex_lock(&s->mu);
		while (s->taken == s->nq && !s->closed)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->taken == s->nq || s->stop) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		b = s->q[s->taken];
		pthread_mutex_unlock(&s->mu);
		r = backups_apply_next(&s->a, &b, NULL, &s->e);
		pthread_mutex_lock(&s->mu);
		if (r) {
			s->r = r;
			s->failed = s->taken;
		}
		s->taken++;
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

int restore_stage_start(struct vm *vm, const char *what,
			struct restore_stage **out, struct strbuf *err)
{
	struct restore_stage *s = xcalloc(1, sizeof(*s));
	sigset_t all, old;
	int r;

	*out = NULL;
	r = restore_begin(vm, what, &s->dir, err);
	if (r) {
		free(s);
		return r;
	}
	s->vm = vm;
	s->e = (struct strbuf)STRBUF_INIT;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	backups_apply_start(&s->a, s->dir, 0);
	/* signals are the main thread's (its waits must see them) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&s->thread, NULL, stage_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	s->running = !r;
	*out = s;
	return 0;
}

void restore_stage_add(struct restore_stage *s, const char *name,
		       const char *path)
{
	pthread_mutex_lock(&s->mu);
	if (s->nq == s->alloc) {
		s->alloc = s->alloc ? 2 * s->alloc : 8;
		s->q = xrealloc(s->q, (size_t)s->alloc * sizeof(*s->q));
	}
	s->q[s->nq].name = xstrdup(name);
	s->q[s->nq].path = xstrdup(path);
	s->q[s->nq].legacy = false;
	s->nq++;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void restore_stage_wait(struct restore_stage *s)
{
	int i;

	pthread_mutex_lock(&s->mu);
	s->closed = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->running)
		pthread_join(s->thread, NULL);
	s->running = false;
	/* no thread (it could not start): the links here, one by one */
	for (i = s->taken; !s->r && !s->stop && i < s->nq; i++, s->taken++)
		if ((s->r = backups_apply_next(&s->a, &s->q[i], NULL, &s->e)))
			s->failed = i;
}

static void stage_free(struct restore_stage *s)
{
	int i;

	backups_apply_release(&s->a);
	for (i = 0; i < s->nq; i++) {
		free(s->q[i].name);
		free(s->q[i].path);
	}
	free(s->q);
	free(s->dir);
	strbuf_release(&s->e);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

void restore_stage_abort(struct restore_stage *s)
{
	if (!s)
		return;
	/* the link being applied ends (an interrupt ends it at once) */
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_mutex_unlock(&s->mu);
	restore_stage_wait(s);
	fs_rm_rf(s->dir);
	stage_free(s);
}

int restore_stage_finish(struct restore_stage *s, struct strbuf *note,
			 struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	const struct backup *b;
	char seal[65];
	int r;

	restore_stage_wait(s);
	if (!s->nq) {
		strbuf_addstr(err, "cannot restore: no snapshot was given");
		fs_rm_rf(s->dir);
		stage_free(s);
		return -EINVAL;
	}
	b = &s->q[s->nq - 1];
	r = s->r;
	if (r && s->failed < s->nq - 1)
		strbuf_addf(&e, "%s (a parent of %s): %s", s->q[s->failed].name,
			    b->name, s->e.buf);
	else if (r)
		strbuf_add(&e, s->e.buf, s->e.len);
	if (!r)
		r = snap_sync(s->dir, &e);
	if (r) {
		extract_failed(b->name, r, s->dir, &e, err);
		fs_rm_rf(s->dir);
	} else {
		if (manifest_seal_digest(&s->a.m, seal))
			seal[0] = '\0';
		strbuf_reset(&e);
		r = restore_dir(s->vm, b, s->dir, seal, &e, note, err);
		unprintable_as_marks(err);
		unprintable_as_marks(note);
	}
	strbuf_release(&e);
	stage_free(s);
	return r;
}

/* A hostile guest.conf must not write to the terminal: controls as ?. */
static void unprintable_as_marks(struct strbuf *sb)
{
	size_t i;

	for (i = 0; i < sb->len; i++)
		if ((unsigned char)sb->buf[i] < 0x20 || sb->buf[i] == 0x7f)
			sb->buf[i] = '?';
}

int restore_snapshot(struct vm *vm, const char *name,
		     const struct snap_progress *prog, struct strbuf *note,
		     struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	struct backup *list = NULL;
	const struct backup *b;
	int n, r;

	if (download_is_url(name)) {
		r = snap_fetch_chain(vm, name, &list, &n, &e);
		if (r) {
			strbuf_addf(err, "cannot restore %s: %s", name, e.buf);
			goto out;
		}
		b = &list[0];
	} else {
		n = backups_list(vm, &list);
		if (n < 0) {
			strbuf_addf(err, "cannot read %s/backups: %s",
				    vm->hostdir, strerror(-n));
			return n;
		}
		b = backups_find(vm, list, n, name);
	}
	if (!b) {
		strbuf_addf(err, "cannot restore %s: no such snapshot in %s/backups (see @snapshots)",
			    name, vm->hostdir);
		r = -ENOENT;
		goto out;
	}
	r = restore_from(vm, list, n, b, prog, &e, note, err);
out:
	/* a hostile guest.conf must not write to the terminal */
	unprintable_as_marks(err);
	unprintable_as_marks(note);
	backups_free(list, n);
	strbuf_release(&e);
	return r;
}
