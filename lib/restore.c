#include "restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backups.h"
#include "fsutil.h"

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

int restore_pick(const struct vm_ctx *ctx, const char *want, char **name,
		 struct strbuf *err)
{
	struct backup *list = NULL;
	const struct backup *b;
	char *last;
	int n, r = 0;

	*name = NULL;
	n = backups_list(ctx, &list);
	if (n < 0) {
		strbuf_addf(err, "cannot read %s/backups: %s", ctx->hostdir,
			    strerror(-n));
		return n;
	}
	b = backups_find(ctx, list, n, want);
	if (b) {
		*name = xstrdup(b->name);
		goto out;
	}
	r = -ENOENT;
	last = strcmp(want, "LAST") ? NULL : backups_last(ctx);
	if (last)
		strbuf_addf(err, "cannot restore: LAST points to %s, which does not exist (@last NAME moves it)",
			    last);
	else if (!strcmp(want, "LAST"))
		strbuf_addf(err, "cannot restore: %s has no snapshots (no backups/LAST)",
			    ctx->hostdir);
	else
		strbuf_addf(err, "cannot restore %s: no such snapshot in %s/backups (see @snapshots)",
			    want, ctx->hostdir);
	free(last);
out:
	backups_free(list, n);
	return r;
}

int restore_snapshot(struct vm_ctx *ctx, const char *name,
		     const struct snap_progress *prog, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	struct backup *list = NULL;
	const struct backup *b;
	char *dir = NULL;
	bool was_inplace;
	int n, r;

	n = backups_list(ctx, &list);
	if (n < 0) {
		strbuf_addf(err, "cannot read %s/backups: %s", ctx->hostdir,
			    strerror(-n));
		return n;
	}
	b = backups_find(ctx, list, n, name);
	if (!b) {
		strbuf_addf(err, "cannot restore %s: no such snapshot in %s/backups (see @snapshots)",
			    name, ctx->hostdir);
		r = -ENOENT;
		goto out;
	}
	r = vm_new_private_dir(ctx, &dir);
	if (r) {
		strbuf_addf(err, "cannot restore %s: %s", b->name, strerror(-r));
		goto out;
	}
	if (b->legacy)
		r = snap_extract_legacy(b->path, dir, prog, &e);
	else
		r = snap_extract(b->path, dir, prog, &e);
	if (r) {
		/* The working files were not touched. */
		fs_rm_rf(dir);
		strbuf_addf(err, "cannot restore %s: %s", b->name,
			    r == -ENOSPC ? "no space left on the device" : e.buf);
		goto out;
	}
	r = swap_in(ctx, dir, b->legacy);
	if (r) {
		strbuf_addf(err, "cannot put the restored files of %s in place: %s",
			    b->name, strerror(-r));
		goto out;
	}
	strbuf_reset(&e);
	was_inplace = ctx->inplace;
	r = vm_reload_conf(ctx, &e);
	if (r) {
		strbuf_addf(err, "restored %s, but its settings do not load: %s",
			    b->name, e.buf);
		goto out;
	}
	if (ctx->inplace != was_inplace) {
		/* The files are where this run put them, whatever the
		 * snapshot's guest.conf said. */
		ctx->inplace = was_inplace;
		strbuf_reset(&e);
		r = vm_guest_conf_set(ctx, "use_tmpdir",
				      was_inplace ? "no" : "yes", &e);
		if (r) {
			strbuf_addf(err, "restored %s, but: %s", b->name, e.buf);
			goto out;
		}
	}
	r = vm_find_workdir(ctx, err);
out:
	backups_free(list, n);
	strbuf_release(&e);
	free(dir);
	return r;
}
