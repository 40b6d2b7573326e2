/* @restore [NAME]: the VM's files from a snapshot (default LAST). */
#include "vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/backups.h"
#include "../lib/snapshot.h"

static void on_progress(void *data, uint64_t done, uint64_t total)
{
	log_progress_update(data, done, total);
}

/* The reference's guest.env as a guest.conf, for a VM that has none. */
static int convert_guest_env(struct vm_ctx *ctx, const char *env,
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
		conf_set(&g, "vm", "name", ctx->conf.name, LAYER_GUEST, &err);
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
static int to_hostdir(struct vm_ctx *ctx, const char *dir, const char *name)
{
	char *src = xasprintf("%s/%s", dir, name);
	char *dst = vm_host_path(ctx, name);
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

/* Put the restored files in place of the current ones. */
static int swap_in(struct vm_ctx *ctx, const char *dir, bool legacy)
{
	static const char *const drop[] = { "TS", "DESCRIPTION", "guest.env",
					    NULL };
	char *old = ctx->workdir && !ctx->inplace ? xstrdup(ctx->workdir) :
						    NULL;
	char *hostconf = vm_host_path(ctx, "guest.conf");
	int r = 0, i;

	if (legacy) {
		char *env = xasprintf("%s/guest.env", dir);

		if (!fs_exists(hostconf) && fs_exists(env))
			r = convert_guest_env(ctx, env, dir, hostconf,
					      count_disks_in(dir));
		free(env);
	} else {
		r = to_hostdir(ctx, dir, "guest.conf");
	}
	if (!r)
		r = to_hostdir(ctx, dir, "vm.defaults");
	for (i = 0; drop[i]; i++) {
		char *p = xasprintf("%s/%s", dir, drop[i]);

		unlink(p);
		free(p);
	}
	if (r)
		goto out;
	if (ctx->inplace) {
		DIR *d;
		struct dirent *e;

		/* Old disks the snapshot does not have must go too. */
		d = opendir(ctx->hostdir);
		while (d && (e = readdir(d))) {
			if (str_starts_with(e->d_name, "disk-") &&
			    str_ends_with(e->d_name, ".img")) {
				char *p = vm_host_path(ctx, e->d_name);

				unlink(p);
				free(p);
			}
		}
		if (d)
			closedir(d);
		d = opendir(dir);
		while (d && (e = readdir(d)) && !r)
			if (e->d_name[0] != '.')
				r = to_hostdir(ctx, dir, e->d_name);
		if (d)
			closedir(d);
		if (!r)
			rmdir(dir);
	} else {
		r = vm_adopt_workdir(ctx, dir);
		if (!r && old)
			fs_rm_rf(old);
	}
out:
	free(old);
	free(hostconf);
	return r;
}

int cmd_restore(struct vm_ctx *ctx, int argc, char **argv)
{
	const char *want = argc > 0 ? argv[0] : "LAST";
	struct strbuf err = STRBUF_INIT;
	struct backup *list = NULL;
	const struct backup *b;
	struct log_progress bar;
	struct snap_progress prog = { on_progress, &bar };
	char *dir = NULL, *last;
	bool was_inplace;
	int n, r, ret = 1;

	n = backups_list(ctx, &list);
	if (n < 0) {
		log_error("cannot read %s/backups: %s", ctx->hostdir,
			  strerror(-n));
		return 1;
	}
	b = backups_find(ctx, list, n, want);
	if (!b) {
		last = strcmp(want, "LAST") ? NULL : backups_last(ctx);
		if (last)
			log_error("cannot restore: LAST points to %s, which does not exist (@last NAME moves it)",
				  last);
		else if (!strcmp(want, "LAST"))
			log_error("cannot restore: %s has no snapshots (no backups/LAST)",
				  ctx->hostdir);
		else
			log_error("cannot restore %s: no such snapshot in %s/backups (see @snapshots)",
				  want, ctx->hostdir);
		free(last);
		goto out;
	}
	if (ctx->dry_run) {
		printf("restore %s into %s\n", b->path,
		       ctx->inplace ? ctx->hostdir : "a new working directory");
		ret = 0;
		goto out;
	}
	r = vm_new_private_dir(ctx, &dir);
	if (r) {
		log_error("cannot restore %s: %s", b->name, strerror(-r));
		goto out;
	}
	log_progress_start(&bar, b->name);
	if (b->legacy)
		r = snap_extract_legacy(b->path, dir, &prog, &err);
	else
		r = snap_extract(b->path, dir, &prog, &err);
	log_progress_end(&bar);
	if (r) {
		/* The working files were not touched. */
		fs_rm_rf(dir);
		log_error("cannot restore %s: %s", b->name,
			  r == -ENOSPC ? "no space left on the device" : err.buf);
		if (r == -EINTR)
			ret = 128 + proc_interrupted();
		goto out;
	}
	r = swap_in(ctx, dir, b->legacy);
	if (r) {
		log_error("cannot put the restored files of %s in place: %s",
			  b->name, strerror(-r));
		goto out;
	}
	strbuf_reset(&err);
	was_inplace = ctx->inplace;
	if (vm_reload_conf(ctx, &err)) {
		log_error("restored %s, but its settings do not load: %s",
			  b->name, err.buf);
		goto out;
	}
	if (ctx->inplace != was_inplace) {
		/* The files are where this run put them, whatever the
		 * snapshot's guest.conf said. */
		ctx->inplace = was_inplace;
		strbuf_reset(&err);
		if (vm_guest_conf_set(ctx, "use_tmpdir",
				      was_inplace ? "no" : "yes", &err)) {
			log_error("restored %s, but: %s", b->name, err.buf);
			goto out;
		}
	}
	vm_find_workdir(ctx);
	log_info("restored %s from snapshot %s (working files in %s)",
		 ctx->conf.name, b->name, ctx->workdir);
	ret = 0;
out:
	backups_free(list, n > 0 ? n : 0);
	strbuf_release(&err);
	free(dir);
	return ret;
}
