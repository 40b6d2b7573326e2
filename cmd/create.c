/* @create NAME [ISO]: settings, empty disks and UEFI variables. */
#include "vm.h"

#include "vm/base.h"
#include "vm/catalog.h"
#include "qemu/iso.h"
#include "net/download.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QEMU_IMG_TIMEOUT_MS (120 * 1000)

static bool dir_has_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool any = false;

	if (!d)
		return false;
	while (!any && (e = readdir(d)))
		any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return any;
}

/* Say everything that is in the way, so one message is enough. */
static int check_fresh(struct vm_ctx *ctx)
{
	struct strbuf what = STRBUF_INIT, how = STRBUF_INIT;
	char *p;
	int disks = vm_count_disks(&ctx->vm), r = 0;

	p = vm_host_path(&ctx->vm, "guest.conf");
	if (fs_exists(p)) {
		strbuf_addstr(&what, "settings (guest.conf)");
		strbuf_addstr(&how, "remove guest.conf");
	}
	free(p);
	if (disks) {
		strbuf_addf(&what, "%s%d disk%s in %s", what.len ? ", " : "",
			    disks, disks == 1 ? "" : "s", ctx->vm.workdir);
		strbuf_addf(&how, "%srun vm @destroy", how.len ? ", " : "");
	}
	p = vm_host_path(&ctx->vm, "backups");
	if (dir_has_entries(p)) {
		strbuf_addf(&what, "%ssnapshots (backups/)",
			    what.len ? ", " : "");
		strbuf_addf(&how, "%smove backups/ away", how.len ? ", " : "");
	}
	free(p);
	if (what.len) {
		log_error(
			"cannot create %s: %s already has %s (%s first, or use another directory)",
			ctx->vm.conf.name, ctx->vm.hostdir, what.buf, how.buf);
		r = -EEXIST;
	}
	strbuf_release(&what);
	strbuf_release(&how);
	return r;
}

/* base: disk 0 lays over it (NULL: none) */
static int make_disks(struct vm_ctx *ctx, const struct base_found *base,
		      struct strvec *made)
{
	const struct disk_spec *d = ctx->vm.conf.disks.v;
	/* a disk on a base is the base's size unless -D asked for more */
	bool sized = conf_layer_of(&ctx->vm.conf, "vm", "disks") > LAYER_DEFAULT;
	size_t i;
	int r = 0;

	for (i = 0; i < ctx->vm.conf.disks.nr; i++) {
		char *path = xasprintf("%s/disk-%zu.img", ctx->vm.workdir, i);
		char *size = xasprintf("%llu",
				       (unsigned long long)d[i].size);
		struct strbuf out = STRBUF_INIT;
		struct strvec av = STRVEC_INIT;
		struct proc_opts o = PROC_OPTS_INIT;

		strvec_pushl(&av, "qemu-img", "create", "-q", "-f",
			     d[i].format ? d[i].format : "qcow2", NULL);
		if (i == 0 && base)
			strvec_pushl(&av, "-b", base->local, "-F", base->format,
				     NULL);
		strvec_pushl(&av, "--", path, NULL);
		if (!(i == 0 && base && !sized))
			strvec_push(&av, size);
		if (ctx->vm.dry_run) {
			char *j = strvec_join(&av, " ", true);

			say_dry(ctx, "%s", j);
			free(j);
			strvec_clear(&av);
			free(path);
			free(size);
			continue;
		}
		o.stdin_fd = -1;
		/* disks are the owner's alone */
		o.umask = 077;
		r = proc_capture(av.v, &o, QEMU_IMG_TIMEOUT_MS, &out);
		strvec_clear(&av);
		strbuf_release(&out);
		if (r) {
			log_error("cannot create disk %s: %s", path,
				  r == -ENOENT ? "qemu-img not found (install qemu-utils)" :
				  r < 0 ? strerror(-r) : "qemu-img failed");
			free(path);
			free(size);
			r = -EIO;
			break;
		}
		strvec_push(made, path);
		free(path);
		free(size);
	}
	return r;
}

/* An ISO or a base by path or URL, with a progress line for a download. */
static int fetch(struct vm_ctx *ctx, const char *what, const char *spec,
		 const char *want_sha, char **local, char **sha,
		 struct strbuf *err)
{
	struct strbuf note = STRBUF_INIT;
	struct log_progress bar;
	int r;

	log_progress_start(&bar, "%s", what);
	r = vm_fetch(&ctx->vm, spec, want_sha, log_progress_cb, &bar, local,
		     sha, &note, err);
	log_progress_end(&bar, !r);
	if (note.len)
		log_warn("%s", note.buf);
	strbuf_release(&note);
	return r;
}

/*
 * --base: disk 0 will lay over it.  What is recorded (path or URL,
 * format, digest) goes to guest.conf.  got_local, got_sha: the file
 * fetched already (an image given where the ISO goes: the one that was
 * checked is the one used), or NULL to fetch it here.
 */
static int find_base(struct vm_ctx *ctx, struct base_found *b,
		     const char *got_local, const char *got_sha)
{
	struct vm_conf *c = &ctx->vm.conf;
	struct base_env env = vm_base_env(&ctx->vm);
	struct strbuf err = STRBUF_INIT;
	char *local = NULL, *sha = NULL;
	int r = 0;

	if (got_local) {
		local = xstrdup(got_local);
		sha = got_sha ? xstrdup(got_sha) : NULL;
	} else {
		r = fetch(ctx, "base", c->base, NULL, &local, &sha, &err);
	}
	if (!r)
		r = base_find(&env, c->base, local, sha, b, &err);
	/* disk 0 will lay over the cached copy: the cache keeps it */
	if (!r && !ctx->vm.dry_run && download_is_url(c->base))
		download_pin(local, ctx->vm.hostdir);
	if (!r && conf_layer_of(c, "vm", "disks") > LAYER_DEFAULT &&
	    c->disks.v[0].size < b->size) {
		strbuf_addf(&err, "%s is ", local);
		strbuf_add_size(&err, b->size);
		strbuf_addstr(&err, ", larger than disk 0 (");
		strbuf_add_size(&err, c->disks.v[0].size);
		strbuf_addstr(&err, "); give -D at least that size");
		base_found_release(b);
		r = -EINVAL;
	}
	free(local);
	free(sha);
	if (r) {
		log_error("cannot create %s: base %s", c->name, err.buf);
		strbuf_release(&err);
		return 1;
	}
	strbuf_reset(&err);
	conf_set(c, "vm", "base", b->record, LAYER_CLI, &err);
	conf_set(c, "vm", "base_format", b->format, LAYER_CLI, &err);
	if (!ctx->vm.dry_run)
		conf_set(c, "vm", "base_sha256", b->sha256, LAYER_CLI, &err);
	strbuf_release(&err);
	return 0;
}

/* --json: the VM made, and the files made for it. */
static void report(struct vm_ctx *ctx, const struct strvec *made)
{
	report_set_str(ctx->result, "name", ctx->vm.conf.name);
	report_set_str(ctx->result, "hostdir", ctx->vm.hostdir);
	report_set_str(ctx->result, "workdir", ctx->vm.workdir);
	report_set_str(ctx->result, "bootimage",
		       *ctx->vm.conf.bootimage ? ctx->vm.conf.bootimage : NULL);
	report_set_bool(ctx->result, "uefi", ctx->vm.conf.uefi);
	report_set(ctx->result, "files",
		   report_strv((const char *const *)made->v, made->nr));
}

/*
 * Usage errors (2) before what is in the way (1), so that a bad command
 * line is said as such whatever the directory holds.
 */
/* A base (what: --base, or a disk image given) needs a qcow2 disk 0. */
static int check_base_disk(struct vm_ctx *ctx, const char *name,
			   const char *what)
{
	const struct vm_conf *c = &ctx->vm.conf;
	const char *fmt0 = c->disks.nr ? c->disks.v[0].format : NULL;

	if (*c->base && (!c->disks.nr || (fmt0 && strcmp(fmt0, "qcow2")))) {
		log_error("cannot create %s: %s needs disk 0 to be qcow2, the overlay on it (-D %s)",
			  name, what, c->disks.nr ? "TYPE=SIZE" : "'' names none");
		return 2;
	}
	return 0;
}

static int check_create(struct vm_ctx *ctx, const char *name,
			struct strbuf *err)
{
	size_t i;

	if (conf_set(&ctx->vm.conf, "vm", "name", name, LAYER_CLI, err)) {
		log_error("cannot create '%s': %s", name, err->buf);
		return 2;	/* a usage error, as a bad option value is */
	}
	if (check_base_disk(ctx, name, "--base"))
		return 2;
	if (!ctx->vm.conf.disks.nr && !ctx->vm.conf.images.nr) {
		log_error("cannot create %s: no disks and no images (give -D TYPE=SIZE, or -i TYPE=PATH for an existing image)",
			  name);
		return 2;
	}
	if (check_fresh(ctx))
		return 1;
	/* An image that is not there is said now, not at the first @run. */
	for (i = 0; i < ctx->vm.conf.images.nr; i++) {
		char *img;

		if (vm_image_path(&ctx->vm, ctx->vm.conf.images.v[i].path, &img,
				  err)) {
			log_error("cannot create %s: %s", name, err->buf);
			return 1;
		}
		free(img);
	}
	return 0;
}

/*
 * [ISO] (spec, or NULL): the installer the first @run boots; local and
 * sha: what fetching it gave (taken).
 */
static int set_bootimage(struct vm_ctx *ctx, const char *name,
			 const char *spec, char *local, char *sha,
			 struct strbuf *err)
{
	char *iso = NULL;
	int r;

	if (!spec) {
		conf_set(&ctx->vm.conf, "vm", "bootimage", "", LAYER_CLI, err);
		conf_set(&ctx->vm.conf, "vm", "firstboot", "no", LAYER_CLI,
			 err);
		free(local);
		free(sha);
		return 0;
	}
	/* A URL is kept as the URL, pinned to what was fetched. */
	if (download_is_url(spec)) {
		char *frag;

		download_split(spec, &iso, &frag);
		free(frag);
		if (sha)	/* (the fetch gave it, but in a dry run) */
			conf_set(&ctx->vm.conf, "vm", "bootimage_sha256", sha,
				 LAYER_CLI, err);
	} else {
		iso = xstrdup(local);
	}
	free(local);
	free(sha);
	strbuf_reset(err);
	r = conf_set(&ctx->vm.conf, "vm", "bootimage", iso, LAYER_CLI, err);
	if (r)
		log_error("cannot create %s: ISO %s: %s", name, iso, err->buf);
	else
		conf_set(&ctx->vm.conf, "vm", "firstboot", "yes", LAYER_CLI,
			 err);
	free(iso);
	return r ? 1 : 0;
}

/*
 * The working directory, the disks (over bp, the base, or none), the
 * UEFI variables and guest.conf: all of them, or on a failure none.  A
 * dry run says what the disks would be.
 */
static int make_vm(struct vm_ctx *ctx, const char *name,
		   const struct base_found *bp)
{
	struct strbuf err = STRBUF_INIT;
	struct strvec made = STRVEC_INIT;
	char *conf_path = NULL, *vars = NULL;
	bool new_workdir = false, wrote_conf = false;
	size_t i;
	int r;

	if (ctx->vm.dry_run) {
		if (!ctx->vm.workdir) {
			free(ctx->vm.workdir);
			ctx->vm.workdir = vm_host_path(&ctx->vm, ".work");
		}
		r = make_disks(ctx, bp, &made) ? 1 : 0;
		goto out;
	}
	if (!ctx->vm.workdir || ctx->vm.inplace) {
		r = vm_make_workdir(&ctx->vm);
		if (r) {
			log_error("cannot create %s: working directory: %s",
				  name, strerror(-r));
			r = 1;
			goto out;
		}
		new_workdir = !ctx->vm.inplace;
	}
	r = 1;
	if (make_disks(ctx, bp, &made))
		goto fail;
	if (ctx->vm.conf.uefi) {
		r = vm_copy_efivars(&ctx->vm, &vars, &err);
		if (r) {
			log_error("cannot create %s: %s", name, err.buf);
			r = 1;
			goto fail;
		}
		strvec_push(&made, vars);
	}
	conf_path = vm_host_path(&ctx->vm, "guest.conf");
	r = conf_write_guest(&ctx->vm.conf, conf_path);
	if (r) {
		log_error("cannot create %s: write %s: %s", name, conf_path,
			  strerror(-r));
		r = 1;
		goto fail;
	}
	wrote_conf = true;
	report(ctx, &made);
	log_info("created %s in %s (working files in %s)", name, ctx->vm.hostdir,
		 ctx->vm.workdir);
	r = 0;
	goto out;
fail:
	/* Leave nothing half-created. */
	for (i = 0; i < made.nr; i++)
		unlink(made.v[i]);
	if (wrote_conf)
		unlink(conf_path);
	if (new_workdir) {
		char *link = vm_host_path(&ctx->vm, ".work");

		fs_rm_rf(ctx->vm.workdir);
		unlink(link);
		free(link);
		free(ctx->vm.workdir);
		ctx->vm.workdir = NULL;
	}
out:
	strbuf_release(&err);
	strvec_clear(&made);
	free(conf_path);
	free(vars);
	return r;
}

/*
 * @create NAME IMAGE, IMAGE (fetched into local) a disk image by its
 * content, not a disc's file system: without --base, disk 0 lays over
 * it as with --base.  True when it does (the base set); a disc, or what
 * is not there to read (a URL in a dry run), is the installer.
 */
static bool image_as_base(struct vm_ctx *ctx, const char *spec,
			  const char *local)
{
	struct strbuf err = STRBUF_INIT;

	if (*ctx->vm.conf.base || !local || !fs_exists(local) ||
	    iso_is_disc(local))
		return false;
	conf_set(&ctx->vm.conf, "vm", "base", spec, LAYER_CLI, &err);
	strbuf_release(&err);
	log_info("%s is a disk image, not an installer's disc: disk 0 lays over it (as --base)",
		 spec);
	return true;
}

/*
 * What a VM made from an image boots with.  Headless, unless a port
 * was asked for (-p, or port in a settings file): an image is reached
 * by SSH, not on a screen.  The firmware from its partition table,
 * unless the command line said (--no-uefi, --uefi): an image with no
 * EFI system partition gets BIOS, one that boots only from it UEFI.
 */
static void base_boot_to_conf(struct vm_ctx *ctx, const struct base_found *b)
{
	struct vm_conf *c = &ctx->vm.conf;
	struct strbuf err = STRBUF_INIT;
	enum base_fw fw;

	if (conf_layer_of(c, "vm", "port") == LAYER_DEFAULT)
		conf_set(c, "vm", "port", "", LAYER_CLI, &err);
	strbuf_reset(&err);
	if (ctx->vm.dry_run || conf_layer_of(c, "vm", "uefi") >= LAYER_CLI) {
		strbuf_release(&err);
		return;
	}
	fw = base_firmware(b->local, b->format);
	if (fw == BASE_FW_ANY || (fw == BASE_FW_UEFI) == c->uefi)
		return;
	conf_set(c, "vm", "uefi", fw == BASE_FW_UEFI ? "yes" : "no",
		 LAYER_CLI, &err);
	strbuf_release(&err);
	log_info("%s boots with %s only (its partition table says so): uefi = %s",
		 b->record, fw == BASE_FW_UEFI ? "UEFI" : "BIOS",
		 fw == BASE_FW_UEFI ? "yes" : "no");
}

/*
 * IMAGE as a name in the catalogue (vm images): a word that is no URL
 * and no file.  Its image fetched and verified into local (sha: its
 * SHA-256 when that is what was checked), *image its URL, the entry
 * into *e (from cat).  0; 1 when said why not; -1 when image is a path
 * or URL.
 */
static int fetch_named(struct vm_ctx *ctx, const char *name,
		       const char **image, struct catalog *cat,
		       const struct catalog_entry **e, char **local,
		       char **sha)
{
	struct strvec files = STRVEC_INIT;
	struct strbuf err = STRBUF_INIT, note = STRBUF_INIT;
	struct log_progress bar;
	char *cfg, hex[65];
	struct stat st;
	int r;

	/* a directory is no image: a VM's own may have the same name */
	if (download_is_url(*image) || strchr(*image, '/') ||
	    !name_is_valid(*image) ||
	    (!stat(*image, &st) && !S_ISDIR(st.st_mode)))
		return -1;
	cfg = fs_config_home();
	catalog_files(ctx->vm.datadir, cfg, &files);
	free(cfg);
	r = catalog_load(cat, &files, &err);
	strvec_clear(&files);
	if (!r && !(*e = catalog_find(cat, *image))) {
		strbuf_addf(&err, "%s is no file and no image of the catalogue (vm images lists them)",
			    *image);
		r = -ENOENT;
	}
	if (!r) {
		log_progress_start(&bar, "image %s", (*e)->name);
		r = catalog_fetch(&ctx->vm, *e, log_progress_cb, &bar, local,
				  hex, &note, &err);
		log_progress_end(&bar, !r);
		if (note.len)
			log_warn("%s", note.buf);
	}
	if (r) {
		log_error("cannot create %s: %s", name, err.buf);
	} else {
		*image = (*e)->url;
		*sha = *hex ? xstrdup(hex) : NULL;
		log_info("image %s: %s, verified", (*e)->name, *local);
	}
	strbuf_release(&err);
	strbuf_release(&note);
	return r ? 1 : 0;
}

/*
 * What the catalogue says of the image beyond its file: the firmware
 * (unless the command line said) and the default user (unless a
 * settings file or the command line named one).  Disk 0 is virtio,
 * the bus every cloud image boots from (Debian's cloud kernel has no
 * SATA driver), of the default size, unless disks was set somewhere.
 */
static void named_to_conf(struct vm_ctx *ctx, const struct catalog_entry *e)
{
	struct vm_conf *c = &ctx->vm.conf;
	struct strbuf err = STRBUF_INIT;

	if (conf_layer_of(c, "vm", "disks") == LAYER_DEFAULT && c->disks.nr) {
		unsigned long long size = c->disks.v[0].size;
		char *d = size % (1ULL << 30) ?
			xasprintf("VIRT=%llu", size) :
			xasprintf("VIRT=%lluG", size >> 30);

		conf_set(c, "vm", "disks", d, LAYER_CLI, &err);
		strbuf_reset(&err);
		free(d);
	}

	if (e->firmware && strcmp(e->firmware, "any") &&
	    conf_layer_of(c, "vm", "uefi") < LAYER_CLI)
		conf_set(c, "vm", "uefi",
			 strcmp(e->firmware, "uefi") ? "no" : "yes",
			 LAYER_CLI, &err);
	if (e->user && conf_layer_of(c, "vm", "ssh_user") == LAYER_DEFAULT)
		conf_set(c, "vm", "ssh_user", e->user, LAYER_CLI, &err);
	strbuf_release(&err);
}

int cmd_create(struct vm_ctx *ctx, int argc, char **argv)
{
	struct catalog cat = CATALOG_INIT;
	const struct catalog_entry *named = NULL;
	struct strbuf err = STRBUF_INIT;
	struct base_found base = { 0 }, *bp;
	const char *name = argv[0];
	const char *iso = argc > 1 ? argv[1] : NULL;
	char *local = NULL, *sha = NULL;
	struct stat st;
	int r;

	r = check_create(ctx, name, &err);
	if (r)
		goto out;
	if (iso) {
		r = fetch_named(ctx, name, &iso, &cat, &named, &local, &sha);
		if (r > 0)
			goto out;
		r = 0;
	}
	if (iso && !named && fetch(ctx, "ISO", iso,
				   ctx->vm.conf.bootimage_sha256, &local,
				   &sha, &err)) {
		log_error("cannot create %s: ISO %s", name, err.buf);
		r = 1;
		goto out;
	}
	if (iso && local && !stat(local, &st) && S_ISREG(st.st_mode) &&
	    !st.st_size) {
		log_error("cannot create %s: %s is empty: neither an installer's disc nor a disk image",
			  name, iso);
		r = 1;
		goto out;
	}
	if (iso && image_as_base(ctx, iso, local)) {
		iso = NULL;
		/* its --sha256 was checked by the fetch: base_sha256 now */
		conf_set(&ctx->vm.conf, "vm", "bootimage_sha256", "",
			 LAYER_CLI, &err);
		strbuf_reset(&err);
		if (named)
			named_to_conf(ctx, named);
		r = check_base_disk(ctx, name, "a disk image");
		if (r)
			goto out;
		r = find_base(ctx, &base, local, sha);
		if (r)
			goto out;
		base_boot_to_conf(ctx, &base);
	} else if (*ctx->vm.conf.base) {
		r = find_base(ctx, &base, NULL, NULL);
		if (r)
			goto out;
		base_boot_to_conf(ctx, &base);
	}
	r = set_bootimage(ctx, name, iso, local, sha, &err);
	local = sha = NULL;
	if (r)
		goto out;
	bp = *ctx->vm.conf.base ? &base : NULL;
	r = 1;	/* every failure from here on */
	if (ctx->vm.conf.uefi && !qemu_ovmf_vars()) {
		log_error("cannot create %s: " VM_NO_OVMF, name);
		goto out;
	}
	r = make_vm(ctx, name, bp);
out:
	free(local);
	free(sha);
	catalog_release(&cat);
	base_found_release(&base);
	strbuf_release(&err);
	return r == 2 ? 2 : r ? 1 : 0;
}
