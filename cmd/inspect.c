/*
 * @inspect [PATH]: what is on the VM's disks, without booting it
 * (libguestfs, read-only); with PATH, one file from the guest.
 */
#include "vm.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/launch.h"

#if WITH_GUESTFS
#include <guestfs.h>

/* libguestfs is given this long unless --timeout says otherwise. */
#define INSPECT_TIMEOUT_S 600

/* Text for people, or (json) one object per OS or filesystem. */
struct out {
	struct strbuf text;
	bool json;
	struct json_object *cur;
};

static void field(struct out *o, const char *key, const char *val)
{
	if (!val)
		val = "";
	if (o->json)
		report_set_str(o->cur, key, val);
	else
		strbuf_addf(&o->text, "  %-13s %s\n", key, val);
}

static void num_field(struct out *o, const char *key, long long v)
{
	if (o->json)
		report_set_int(o->cur, key, v);
	else
		strbuf_addf(&o->text, "  %-13s %lld\n", key, v);
}

static void free_list(char **l)
{
	size_t i;

	for (i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

/* Mount an OS's filesystems read-only, shortest mount point first. */
static void mount_os(guestfs_h *g, const char *root)
{
	char **mp = guestfs_inspect_get_mountpoints(g, root);
	size_t n, i, j;

	for (n = 0; mp && mp[n]; n += 2)
		;
	for (i = 0; i + 2 < n; i += 2)
		for (j = i + 2; j < n; j += 2)
			if (strlen(mp[j]) < strlen(mp[i])) {
				char *t0 = mp[i], *t1 = mp[i + 1];

				mp[i] = mp[j];
				mp[i + 1] = mp[j + 1];
				mp[j] = t0;
				mp[j + 1] = t1;
			}
	for (i = 0; i < n; i += 2)
		guestfs_mount_ro(g, mp[i + 1], mp[i]);
	free_list(mp);
}

static void describe_os(guestfs_h *g, const char *root, struct out *o)
{
	char **mp = guestfs_inspect_get_mountpoints(g, root);
	char *s;
	struct strbuf mounts = STRBUF_INIT;
	size_t i;

	if (!o->json)
		strbuf_addf(&o->text, "os %s\n", root);
	field(o, "root", root);
#define STR(key, call)                                                       \
	do {                                                                 \
		s = call;                                                    \
		field(o, key, s && strcmp(s, "unknown") ? s : "");           \
		free(s);                                                     \
	} while (0)
	STR("type", guestfs_inspect_get_type(g, root));
	STR("distribution", guestfs_inspect_get_distro(g, root));
	s = xasprintf("%d.%d", guestfs_inspect_get_major_version(g, root),
		      guestfs_inspect_get_minor_version(g, root));
	field(o, "version", s);
	free(s);
	STR("product", guestfs_inspect_get_product_name(g, root));
	STR("hostname", guestfs_inspect_get_hostname(g, root));
	STR("arch", guestfs_inspect_get_arch(g, root));
#undef STR
	if (o->json) {
		/* {"/": "/dev/sda1", "/boot": "/dev/sda2"} */
		struct json_object *m = json_object_new_object();

		for (i = 0; mp && mp[i] && mp[i + 1]; i += 2)
			json_object_object_add(m, mp[i],
					       json_object_new_string(mp[i + 1]));
		report_set(o->cur, "mountpoints", m);
	} else {
		for (i = 0; mp && mp[i]; i += 2)
			strbuf_addf(&mounts, "%s%s=%s", i ? " " : "", mp[i],
				    mp[i + 1]);
		field(o, "mountpoints", mounts.buf);
	}
	strbuf_release(&mounts);
	free_list(mp);
}

static void describe_fs(guestfs_h *g, const char *dev, const char *type,
			struct out *o)
{
	struct guestfs_statvfs *sv = NULL;
	char *label, *uuid;
	long long size;

	if (!o->json)
		strbuf_addf(&o->text, "filesystem %s\n", dev);
	field(o, "device", dev);
	field(o, "type", type);
	label = guestfs_vfs_label(g, dev);
	uuid = guestfs_vfs_uuid(g, dev);
	field(o, "label", label);
	field(o, "uuid", uuid);
	free(label);
	free(uuid);
	size = guestfs_blockdev_getsize64(g, dev);
	num_field(o, "size", size < 0 ? 0 : size);
	if (strcmp(type, "swap") && strcmp(type, "unknown") &&
	    guestfs_mount_ro(g, dev, "/") == 0) {
		sv = guestfs_statvfs(g, "/");
		guestfs_umount_all(g);
	}
	num_field(o, "used", sv ? (long long)((sv->blocks - sv->bfree) *
					      sv->bsize) : 0);
	guestfs_free_statvfs(sv);
}

/*
 * The disks (FMT=PATH) read-only, then the appliance: 0, or -1 with
 * what libguestfs said on fd.
 */
static int add_disks(guestfs_h *g, const char *accel, int ndisks,
		     char **disks, int fd)
{
	const char *tcg[] = { "force_tcg", NULL };
	int i;

	guestfs_set_error_handler(g, NULL, NULL);
	if (!strcmp(accel, "tcg"))
		guestfs_set_backend_settings(g, (char *const *)(uintptr_t)tcg);
	for (i = 0; i < ndisks; i++) {
		char *eq = strchr(disks[i], '=');
		char *fmt;

		if (!eq)
			return -1;
		fmt = xasprintf("%.*s", (int)(eq - disks[i]), disks[i]);
		if (guestfs_add_drive_opts(g, eq + 1,
					   GUESTFS_ADD_DRIVE_OPTS_FORMAT, fmt,
					   GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
					   -1) < 0) {
			dprintf(fd, "cannot add %s: %s\n", eq + 1,
				guestfs_last_error(g));
			free(fmt);
			return -1;
		}
		free(fmt);
	}
	if (guestfs_launch(g) < 0) {
		dprintf(fd, "libguestfs could not start: %s\n",
			guestfs_last_error(g));
		return -1;
	}
	return 0;
}

/* PATH from the first OS found, into text; the worker's exit code. */
static int read_guest_file(guestfs_h *g, char **roots, const char *path,
			   struct strbuf *text, int fd)
{
	char *data;
	size_t size;

	if (!roots || !roots[0])
		return 3;
	mount_os(g, roots[0]);
	data = guestfs_read_file(g, path, &size);
	if (!data) {
		dprintf(fd, "%s: %s\n", path, guestfs_last_error(g));
		return 1;
	}
	strbuf_add(text, data, size);
	free(data);
	return 0;
}

/* Each OS and each filesystem into o; the worker's exit code. */
static int describe_all(guestfs_h *g, char **roots, struct out *o)
{
	struct json_object *all = o->json ? json_object_new_object() : NULL;
	struct json_object *oses = json_object_new_array();
	struct json_object *fsa = json_object_new_array();
	char **fss;
	size_t k;
	int i;

	for (i = 0; roots && roots[i]; i++) {
		o->cur = json_object_new_object();
		describe_os(g, roots[i], o);
		json_object_array_add(oses, o->cur);
	}
	if ((!roots || !roots[0]) && !o->json)
		strbuf_addstr(&o->text, "no operating system found\n");
	fss = guestfs_list_filesystems(g);
	for (k = 0; fss && fss[k]; k += 2) {
		o->cur = json_object_new_object();
		describe_fs(g, fss[k], fss[k + 1], o);
		json_object_array_add(fsa, o->cur);
	}
	if (all) {
		report_set(all, "os", json_object_get(oses));
		report_set(all, "filesystems", json_object_get(fsa));
		strbuf_addf(&o->text, "%s\n", report_line(all));
	}
	free_list(fss);
	json_object_put(all);
	json_object_put(oses);
	json_object_put(fsa);
	return roots && roots[0] ? 0 : 3;
}

/*
 * The worker: all libguestfs work, in a vm of its own that the verb
 * started (so it can be stopped at the deadline with everything it
 * started).  Output on fd; exit 0, 1 or 3 (no OS).  disks: FMT=PATH.
 */
static int inspect_worker(const char *accel, bool json, const char *path,
			  int ndisks, char **disks, int fd)
{
	struct out o = { STRBUF_INIT, json, NULL };
	guestfs_h *g = guestfs_create();
	char **roots = NULL;
	int ret = 1;

	if (!g)
		return 1;
	if (add_disks(g, accel, ndisks, disks, fd))
		goto out;
	roots = guestfs_inspect_os(g);
	if (path)
		ret = read_guest_file(g, roots, path, &o.text, fd);
	else
		ret = describe_all(g, roots, &o);
out:
	if (o.text.len && write(fd, o.text.buf, o.text.len) < 0)
		ret = 1;
	free_list(roots);
	guestfs_shutdown(g);
	guestfs_close(g);
	strbuf_release(&o.text);
	return ret;
}

/* @inspect-worker ACCEL json|text PATH|- FMT=DISK...: see above. */
int cmd_inspect_worker(struct vm_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	return inspect_worker(argv[0], !strcmp(argv[1], "json"),
			      strcmp(argv[2], "-") ? argv[2] : NULL, argc - 3,
			      argv + 3, 1);
}

/*
 * The worker's command line: this vm binary, the images (not CD-ROMs)
 * and the disks with their formats, in the order the VM sees them.
 */
static int worker_argv(struct vm_ctx *ctx, const char *path, struct strvec *av,
		       struct strbuf *err)
{
	size_t k;

	strvec_pushl(av, "vm", "@inspect-worker", ctx->vm.accel,
		     ctx->json ? "json" : "text", path ? path : "-", NULL);
	for (k = 0; k < ctx->vm.conf.images.nr; k++) {
		const struct disk_spec *d = &ctx->vm.conf.images.v[k];
		char *img;
		int r;

		if (d->bus == BUS_CDROM)
			continue;
		r = vm_image_path(&ctx->vm, d->path, &img, err);
		if (r)
			return r;
		strvec_pushf(av, "%s=%s", d->format ? d->format : "qcow2", img);
		free(img);
	}
	for (k = 0; k < ctx->vm.conf.disks.nr; k++) {
		const struct disk_spec *d = &ctx->vm.conf.disks.v[k];
		char *disk = xasprintf("%s/disk-%zu.img", ctx->vm.workdir, k);

		if (!fs_exists(disk)) {
			free(disk);
			break;
		}
		strvec_pushf(av, "%s=%s", d->format ? d->format : "qcow2",
			     disk);
		free(disk);
	}
	return 0;
}

/*
 * libguestfs keeps its sockets in XDG_RUNTIME_DIR (else /tmp) and its
 * scratch files in LIBGUESTFS_TMPDIR (else TMPDIR): both go into one
 * directory of ours, removed whatever becomes of the worker.  The
 * appliance cache stays where libguestfs would keep it anyway.
 */
static int worker_tmpdir(const struct vm *vm, char **dir,
			 struct strvec *env)
{
	const char *tmp = getenv("TMPDIR"), *cache = getenv("LIBGUESTFS_CACHEDIR");
	char *d, *elf = NULL, *version = NULL;
	bool pvh_set = false;
	int r = fs_mkdtemp("vm-inspect", &d);

	*dir = NULL;
	if (r)
		return r;
	if (!cache || !*cache)
		cache = tmp && *tmp ? tmp : "/var/tmp";
	/* the user's SUPERMIN_KERNEL stands; else the PVH one, whose
	 * appliance is cached apart from one built with the bzImage */
	if (!getenv("SUPERMIN_KERNEL") &&
	    !rescue_appliance_kernel(vm, &elf, &version)) {
		char *pvh = xasprintf("%s/vm-pvh-%s", cache, version);

		if (!fs_mkdir_p(pvh, 0700)) {
			strvec_pushf(env, "SUPERMIN_KERNEL=%s", elf);
			strvec_pushf(env, "SUPERMIN_KERNEL_VERSION=%s", version);
			strvec_pushf(env, "SUPERMIN_MODULES=/lib/modules/%s",
				     version);
			strvec_pushf(env, "LIBGUESTFS_CACHEDIR=%s", pvh);
			pvh_set = true;
		}
		free(pvh);
	}
	if (!pvh_set)
		strvec_pushf(env, "LIBGUESTFS_CACHEDIR=%s", cache);
	free(elf);
	free(version);
	strvec_pushf(env, "LIBGUESTFS_TMPDIR=%s", d);
	strvec_pushf(env, "TMPDIR=%s", d);
	/* a socket path has 108 bytes: a long TMPDIR keeps the default */
	if (strlen(d) + sizeof("/libguestfsXXXXXX/guestfsd.sock") <= 108)
		strvec_pushf(env, "XDG_RUNTIME_DIR=%s", d);
	*dir = d;
	return 0;
}

/*
 * For root, libguestfs puts its socket directory in /tmp whatever the
 * environment says.  The appliance's QEMU names it on its command line
 * (chardev path=/tmp/libguestfsXXXXXX/guestfsd.sock): read it there,
 * from the processes of the worker's group, before the group is ended.
 */
struct sockdirs {
	pid_t pgrp;
	struct strvec *dirs;
};

static int sockdirs_of(pid_t pid, const char *cmdline, void *data)
{
	static const char pre[] = "/tmp/libguestfs";
	struct sockdirs *s = data;
	const char *hit;

	if (getpgid(pid) != s->pgrp)
		return 0;
	for (hit = cmdline; (hit = strstr(hit, pre)); hit++) {
		size_t n = strlen(pre);

		while (isalnum((unsigned char)hit[n]))
			n++;
		if (n == strlen(pre) + 6 && hit[n] == '/')
			strvec_pushf(s->dirs, "%.*s", (int)n, hit);
	}
	return 0;
}

static void group_sockdirs(pid_t pgrp, struct strvec *dirs)
{
	struct sockdirs s = { pgrp, dirs };

	proc_each_cmdline(sockdirs_of, &s);
}

/* Only a directory of ours, of sockets, that libguestfs made. */
static void remove_sockdirs(const struct strvec *dirs)
{
	size_t i;

	for (i = 0; i < dirs->nr; i++) {
		char *sock = xasprintf("%s/guestfsd.sock", dirs->v[i]);
		struct stat st;

		if (lstat(dirs->v[i], &st) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_uid == geteuid()) {
			unlink(sock);
			rmdir(dirs->v[i]);
		}
		free(sock);
	}
}

/*
 * --json: the worker's {"os": [...], "filesystems": [...]} as the result;
 * for PATH, the file as text (see docs/json.md: "binary" when it was not).
 */
static int report(struct vm_ctx *ctx, const char *path,
		  const struct strbuf *out)
{
	struct json_object *w;

	if (path) {
		report_set_str(ctx->result, "path", path);
		report_set_int(ctx->result, "size", (int64_t)out->len);
		report_set_str(ctx->result, "content", out->buf);
		report_set_bool(ctx->result, "binary",
				strlen(out->buf) != out->len ||
					!str_utf8_is_valid(out->buf));
		return 0;
	}
	w = json_tokener_parse(out->buf);
	if (!w || !json_object_is_type(w, json_type_object)) {
		json_object_put(w);
		return -1;
	}
	json_object_object_foreach(w, key, val)
		report_set(ctx->result, key, json_object_get(val));
	json_object_put(w);
	return 0;
}

/* What must hold before the worker starts: 0, or vm's exit status. */
static int check_inspect(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf note = STRBUF_INIT;
	int r;

	if (argc > 0 && argv[0][0] != '/') {
		log_error("@inspect PATH wants an absolute path in the guest, not '%s'",
			  argv[0]);
		return 2;
	}
	if (vm_workdir_for_images(&ctx->vm, &note) < 0) {
		log_error("cannot inspect %s: %s", ctx->vm.conf.name, note.buf);
		strbuf_release(&note);
		return 1;
	}
	if (!ctx->vm.workdir ||
	    (!vm_count_disks(&ctx->vm) && !ctx->vm.conf.images.nr)) {
		log_error("cannot inspect %s: it has no disks (@create it, or @restore a snapshot)",
			  ctx->vm.conf.name);
		return 1;
	}
	r = launch_resolve_accel(&ctx->vm, &note);
	if (r)
		log_error("cannot inspect %s: %s", ctx->vm.conf.name, note.buf);
	else if (note.len)
		log_warn("%s", note.buf);
	strbuf_release(&note);
	return r ? 1 : 0;
}

/*
 * The worker, with env, until the deadline; what it wrote in out.
 * Returns 0 with its exit code in *code, or vm's exit status after
 * saying why.
 */
static int run_worker(struct vm_ctx *ctx, const char *path,
		      const struct strvec *env, struct strbuf *out, int *code)
{
	struct strbuf err = STRBUF_INIT;
	struct strvec av = STRVEC_INIT;
	struct proc_opts o = PROC_OPTS_INIT;
	unsigned limit = ctx->vm.conf.timeout ? ctx->vm.conf.timeout :
						INSPECT_TIMEOUT_S;
	long long deadline;
	int pfd[2], st, r, ret = 1;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return 1;
	r = worker_argv(ctx, path, &av, &err);
	if (r) {
		log_error("cannot inspect %s: %s", ctx->vm.conf.name, err.buf);
		close(pfd[0]);
		close(pfd[1]);
		strvec_clear(&av);
		goto out;
	}
	/*
	 * libguestfs runs its appliance and waits as long as it likes; in a
	 * process group of its own it can be stopped at the deadline with
	 * everything it started.
	 */
	o.exe = "/proc/self/exe";
	o.stdin_fd = -1;
	o.stdout_fd = pfd[1];
	o.new_pgrp = true;
	o.env_add = env->v;
	r = proc_spawn(av.v, &o, &pid);
	close(pfd[1]);
	strvec_clear(&av);
	if (r) {
		close(pfd[0]);
		log_error("cannot inspect %s: %s", ctx->vm.conf.name, strerror(-r));
		goto out;
	}
	proc_set_foreground(-pid);
	deadline = proc_now_ms() + (long long)limit * 1000;
	/* a guest file may be large: keep up to 1 GiB of it */
	proc_read_until(pfd[0], deadline, 1u << 30, out);
	close(pfd[0]);
	r = proc_wait(pid, (int)(deadline - proc_now_ms()) > 0 ?
				   (int)(deadline - proc_now_ms()) : 1, &st);
	proc_set_foreground(0);
	if (r) {
		struct strvec dirs = STRVEC_INIT;

		group_sockdirs(pid, &dirs);
		proc_kill_group(pid);
		remove_sockdirs(&dirs);
		strvec_clear(&dirs);
		log_error(r == -EINTR ? "@inspect was interrupted" :
					"@inspect took longer than %u s and was stopped",
			  limit);
		ret = r == -EINTR ? 128 + proc_interrupted() : 1;
		goto out;
	}
	*code = proc_exit_code(st);
	ret = 0;
out:
	strbuf_release(&err);
	return ret;
}

/*
 * What the worker said (out) as it ended (r; 3: no OS found), shown or
 * reported; vm's exit status.
 */
static int show(struct vm_ctx *ctx, const char *path, int r,
		struct strbuf *out)
{
	int ret = 1;

	if ((r == 0 || (r == 3 && !path)) && ctx->json &&
	    report(ctx, path, out)) {
		log_error("cannot inspect %s: the worker's answer is not JSON",
			  ctx->vm.conf.name);
	} else if (r == 0 || r == 3) {
		if (!ctx->json && path) {
			/* the file asked for, as it is (as cat prints it) */
			fwrite(out->buf, 1, out->len, stdout);
		} else if (!ctx->json) {
			/* names and labels the guest chose: escaped */
			struct strbuf safe = STRBUF_INIT;

			strbuf_add_printable(&safe, out->buf, out->len, "\n\t");
			fwrite(safe.buf, 1, safe.len, stdout);
			strbuf_release(&safe);
		}
		if (r == 3 && path)
			log_error("no operating system found on the disks of %s",
				  ctx->vm.conf.name);
		else if (r == 3 && !ctx->json)
			log_info("no operating system found on the disks of %s",
				 ctx->vm.conf.name);
		ret = r == 3 && path ? 1 : 0;
	} else {
		strbuf_trim_trailing(out);
		log_error("cannot inspect %s: %s", ctx->vm.conf.name,
			  out->len ? out->buf : "libguestfs failed");
	}
	return ret;
}

int cmd_inspect(struct vm_ctx *ctx, int argc, char **argv)
{
	const char *path = argc > 0 ? argv[0] : NULL;
	struct strvec env = STRVEC_INIT;
	struct strbuf out = STRBUF_INIT;
	char *tmp = NULL;
	int ret, r, code = 0;

	ret = check_inspect(ctx, argc, argv);
	if (ret)
		return ret;
	if (ctx->vm.dry_run) {
		say_dry(ctx, "inspect %s read-only with libguestfs (%s)",
			ctx->vm.workdir, ctx->vm.accel);
		return 0;
	}
	r = worker_tmpdir(&ctx->vm, &tmp, &env);
	if (r) {
		log_error("cannot inspect %s: temporary directory: %s",
			  ctx->vm.conf.name, strerror(-r));
		return 1;
	}
	ret = run_worker(ctx, path, &env, &out, &code);
	if (!ret)
		ret = show(ctx, path, code, &out);
	/* libguestfs killed at a deadline leaves its sockets behind */
	fs_rm_rf(tmp);
	free(tmp);
	strvec_clear(&env);
	strbuf_release(&out);
	return ret;
}
#else
int cmd_inspect_worker(struct vm_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return 1;
}

int cmd_inspect(struct vm_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	log_error("@inspect is not available: vm was built without libguestfs (make WITH_GUESTFS=1 with libguestfs-dev)");
	(void)ctx;
	return 1;
}
#endif
