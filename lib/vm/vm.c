#include "vm/vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/base.h"
#include "net/download.h"
#include "qemu/runstate.h"
#include "util/fsutil.h"

/* A guest.conf as read in this run, and what the file was then. */
struct vm_guest_file {
	struct conf_file f;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

void vm_init(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	conf_init(&vm->conf);
	vm->lock_fd = -1;
}

void vm_release(struct vm *vm)
{
	int i;

	for (i = 0; i < VM_FILES; i++)
		conf_file_release(&vm->files[i]);
	for (i = 0; i < (int)vm->nguests; i++) {
		conf_file_release(&vm->guests[i]->f);
		free(vm->guests[i]);
	}
	free(vm->guests);
	vm->guests = NULL;
	vm->nguests = 0;
	conf_release(&vm->conf);
	free(vm->hostdir);
	free(vm->workdir);
	free(vm->datadir);
	free(vm->cache_dir);
	if (vm->lock_fd >= 0)
		close(vm->lock_fd);
	vm->lock_fd = -1;
}

static bool has_jobs(const char *dir)
{
	char *jobs = xasprintf("%s/jobs", dir);
	bool ok = fs_is_dir(jobs);

	free(jobs);
	return ok;
}

char *vm_find_datadir(const char *env, const char *fallback)
{
	char self[PATH_MAX];
	char *slash, *share;
	ssize_t n;

	if (env && *env)
		return xstrdup(env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return xstrdup(fallback);
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return xstrdup(fallback);
	*slash = '\0';
	if (vm_datadir_is_tree(self) && has_jobs(self))
		return xstrdup(self);
	/* PREFIX/bin/vm has its data in PREFIX/share/vm. */
	share = xasprintf("%s/../share/vm", self);
	if (has_jobs(share)) {
		char *abs = fs_abspath(share);

		free(share);
		return abs;
	}
	free(share);
	return xstrdup(fallback);
}

bool vm_datadir_is_tree(const char *datadir)
{
	char *mk = xasprintf("%s/Makefile", datadir);
	char *rb = xasprintf("%s/rescue/build-rescue", datadir);
	bool tree = fs_exists(mk) && fs_exists(rb);

	free(mk);
	free(rb);
	return tree;
}

int vm_resolve_hostdir(const char *opt, char **hostdir)
{
	char buf[PATH_MAX];
	char *dir, *link, *guest;
	ssize_t n;

	/* One VM, one name: a symlink or .. must take the same lock. */
	dir = fs_realpath(opt && *opt ? opt : ".");
	link = xasprintf("%s/.host", dir);
	guest = xasprintf("%s/guest.conf", dir);
	n = readlink(link, buf, sizeof(buf) - 1);
	/* A WORKDIR (it has .host, no settings of its own) means its VM. */
	if (n > 0 && !fs_exists(guest)) {
		buf[n] = '\0';
		free(dir);
		dir = fs_realpath(buf);
	}
	free(guest);
	free(link);
	*hostdir = dir;
	return 0;
}

/*
 * The supervisor @start leaves is handed the lock it took (VM_LOCK_FD):
 * the same open file, so the flock goes on without a gap.  Only an fd
 * that is HOSTDIR/.lock is taken.
 */
static int inherited_lock(const char *path)
{
	const char *e = getenv("VM_LOCK_FD");
	struct stat a, b;
	uint64_t n;

	if (!e)
		return -1;
	unsetenv("VM_LOCK_FD");
	if (parse_uint(e, 3, INT_MAX, &n) || fstat((int)n, &a) < 0 ||
	    stat(path, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -1;
	if (fcntl((int)n, F_SETFD, FD_CLOEXEC) < 0)
		return -1;
	return (int)n;
}

int vm_lock(struct vm *vm)
{
	char *path = vm_host_path(vm, ".lock");
	int fd, r = 0;

	fd = inherited_lock(path);
	if (fd < 0)
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			  0644);
	free(path);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		r = -errno;
	/* a vm whose QEMU just ended lets go of the lock when it is done */
	if (r == -EWOULDBLOCK &&
	    !runstate_wait_ending(vm->hostdir, RUNSTATE_OWNER_GRACE_MS))
		r = flock(fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
	if (r) {
		close(fd);
		return r == -EWOULDBLOCK ? -EBUSY : r;
	}
	vm->lock_fd = fd;
	return 0;
}

int vm_control_gid(const struct vm *vm, gid_t *gid, struct strbuf *err)
{
	const char *name = vm->conf.control_group;
	struct group *g;

	*gid = (gid_t)-1;
	if (!name || !*name)
		return 0;
	g = getgrnam(name);
	if (!g) {
		strbuf_addf(err, "control_group '%s': no such group", name);
		return -ENOENT;
	}
	*gid = g->gr_gid;
	return 0;
}

/*
 * With WORKDIR 0710 a group member can open any file whose name it
 * knows: no file in it may be readable by anyone but the owner.
 */
static int workdir_private_files(const struct vm *vm)
{
	DIR *d = opendir(vm->workdir);
	struct dirent *e;
	int r = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		struct stat st;

		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || !(st.st_mode & 077))
			continue;
		if (fchmodat(dirfd(d), e->d_name, st.st_mode & 0700, 0) < 0)
			r = -errno;
	}
	closedir(d);
	return r;
}

int vm_share_socket(const struct vm *vm, const char *sock, gid_t gid)
{
	int r;

	if (gid == (gid_t)-1)
		return 0;
	r = workdir_private_files(vm);
	if (r)
		return r;
	/* the group may pass through WORKDIR, not list or read it */
	if (chown(vm->workdir, (uid_t)-1, gid) < 0 ||
	    chmod(vm->workdir, 0710) < 0 ||
	    chown(sock, (uid_t)-1, gid) < 0 || chmod(sock, 0660) < 0)
		return -errno;
	return 0;
}

void vm_key_files(const struct vm *vm, struct strvec *out)
{
	size_t i;

	for (i = 0; i < vm->conf.sshkeys.nr; i++) {
		char *k = fs_expand_home(vm->conf.sshkeys.v[i]);

		if (fs_exists(k))
			strvec_push(out, k);
		free(k);
	}
}

char *vm_work_path(const struct vm *vm, const char *name)
{
	return xasprintf("%s/%s", vm->workdir ? vm->workdir : vm->hostdir,
			 name);
}

char *vm_host_path(const struct vm *vm, const char *name)
{
	return xasprintf("%s/%s", vm->hostdir, name);
}

int vm_find_workdir(struct vm *vm, struct strbuf *err)
{
	struct stat st;
	char buf[PATH_MAX], back[PATH_MAX];
	char *link, *w, *hl, *b;
	ssize_t n, m;
	int r = 0;

	free(vm->workdir);
	vm->workdir = NULL;
	if (vm->inplace) {
		vm->workdir = xstrdup(vm->hostdir);
		return 0;
	}
	link = vm_host_path(vm, ".work");
	n = readlink(link, buf, sizeof(buf) - 1);
	free(link);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	w = fs_realpath(buf);
	if (stat(w, &st) < 0) {
		int e = errno;

		free(w);
		/* Gone (a reboot emptied TMPDIR): the snapshot is the VM. */
		if (e == ENOENT || e == ENOTDIR)
			return 0;
		/* there but out of reach (EIO, ESTALE): never a new one */
		strbuf_addf(err, "working directory %s: %s", buf, strerror(e));
		return -EIO;
	}
	if (!S_ISDIR(st.st_mode)) {
		strbuf_addf(err, "working directory %s is not a directory", w);
		free(w);
		return -EIO;
	}
	/* Only a directory that names us back is ours. */
	hl = xasprintf("%s/.host", w);
	m = readlink(hl, back, sizeof(back) - 1);
	free(hl);
	if (m <= 0 && errno == EACCES) {
		/* another user's VM: @status may look, not touch */
		free(w);
		return 0;
	}
	if (m <= 0) {
		strbuf_addf(err, "%s/.work names %s, which is not a working directory of a VM (no .host link in it)",
			    vm->hostdir, w);
		free(w);
		return -EXDEV;
	}
	back[m] = '\0';
	b = fs_realpath(back);
	if (!strcmp(b, vm->hostdir)) {
		vm->workdir = w;
	} else {
		strbuf_addf(err, "working directory %s belongs to %s, not %s (if the VM was moved: ln -sfn %s %s/.host)",
			    w, b, vm->hostdir, vm->hostdir, w);
		free(w);
		r = -EXDEV;
	}
	free(b);
	return r;
}

/* eight random letters and digits */
static int random_name(char name[9])
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[8];
	size_t i;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	for (i = 0; i < 8; i++)
		name[i] = al[rnd[i] % (sizeof(al) - 1)];
	name[8] = '\0';
	return 0;
}

/*
 * $TMPDIR/vm-NAMETAIL, or with --inplace HOSTDIR/.restore-NAMETAIL (not
 * mkdtemp's: that wants the X's last, and the name ends in .tmp)
 */
static char *private_path(const struct vm *vm, const char *name,
			  const char *tail)
{
	const char *tmp = getenv("TMPDIR");

	if (vm->inplace)
		return xasprintf("%s/.restore-%s%s", vm->hostdir, name, tail);
	return xasprintf("%s/vm-%s%s", tmp && *tmp ? tmp : "/tmp", name, tail);
}

/* part, made and marked, becomes path unless path is there already */
static int mark_and_move(const struct vm *vm, const char *part,
			 const char *path)
{
	char *mark = xasprintf("%s/" VM_MARK, part);
	struct stat st;
	int r;

	r = mkdir(part, 0700) < 0 ? -errno : 0;
	if (r)
		goto out;
	r = fs_write_atomic(mark, vm->hostdir, strlen(vm->hostdir), 0600);
	if (!r && renameat2(AT_FDCWD, part, AT_FDCWD, path,
			    RENAME_NOREPLACE) < 0) {
		r = -errno;
		/* a file system without RENAME_NOREPLACE (EINVAL) */
		if (r == -EINVAL)
			r = lstat(path, &st) == 0 ? -EEXIST :
			    rename(part, path) < 0 ? -errno : 0;
	}
	if (r)
		fs_rm_rf(part);
out:
	free(mark);
	return r;
}

/*
 * Made as NAME.PID.part.tmp and renamed once marked: a SIGKILL between
 * the mkdir and the mark leaves a name vm_sweep_private knows, never an
 * unmarked NAME.tmp nobody may remove.
 */
int vm_new_marked_dir(const struct vm *vm, char **path)
{
	char tail[48];
	int tries, r;

	snprintf(tail, sizeof(tail), ".%ld" VM_PART, (long)getpid());
	for (tries = 0;; tries++) {
		char name[9], *part;

		r = random_name(name);
		if (r)
			return r;
		part = private_path(vm, name, tail);
		*path = private_path(vm, name, ".tmp");
		r = mark_and_move(vm, part, *path);
		free(part);
		if (!r)
			return 0;
		free(*path);
		*path = NULL;
		if (r != -EEXIST || tries > 100)
			return r;
	}
}

/* NAME.PID.part.tmp whose PID has ended */
static bool part_abandoned(const char *name)
{
	size_t n = strlen(name) - strlen(VM_PART);
	const char *dot;
	char *end;
	long pid;

	dot = memrchr(name, '.', n);
	if (!dot || dot + 1 == name + n)
		return false;
	errno = 0;
	pid = strtol(dot + 1, &end, 10);
	if (errno || end != name + n || pid <= 0)
		return false;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* By inode: TMPDIR=/tmp/ or a symlinked TMPDIR must not fool it. */
static bool same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return !strcmp(a, b);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void vm_sweep_private(const struct vm *vm, const char *mine)
{
	char *parent = xstrdup(mine), *slash = strrchr(parent, '/');
	struct dirent *e;
	DIR *d;

	if (!slash) {
		free(parent);
		return;
	}
	*slash = '\0';
	d = opendir(parent);
	while (d && (e = readdir(d))) {
		struct strbuf who = STRBUF_INIT;
		struct stat st;
		char *p, *m;

		if (!str_ends_with(e->d_name, ".tmp") ||
		    (!str_starts_with(e->d_name, "vm-") &&
		     !str_starts_with(e->d_name, ".restore-")))
			continue;
		p = xasprintf("%s/%s", parent, e->d_name);
		m = xasprintf("%s/" VM_MARK, p);
		if ((str_ends_with(e->d_name, VM_DOOMED) ||
		     (str_ends_with(e->d_name, VM_PART) &&
		      part_abandoned(e->d_name))) && lstat(p, &st) == 0 &&
		    S_ISDIR(st.st_mode) && st.st_uid == geteuid())
			fs_rm_rf(p);
		else if (!same_dir(p, mine) &&
		    (!vm->workdir || !same_dir(p, vm->workdir)) &&
		    lstat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_uid == geteuid() && lstat(m, &st) == 0 &&
		    S_ISREG(st.st_mode) && st.st_size < 4096 &&
		    fs_read_file(m, 4096, &who) == 0 &&
		    !strcmp(who.buf, vm->hostdir))
			fs_rm_rf(p);
		strbuf_release(&who);
		free(m);
		free(p);
	}
	if (d)
		closedir(d);
	free(parent);
}

int vm_adopt_workdir(struct vm *vm, const char *dir)
{
	char *link = vm_host_path(vm, ".work");
	char *back = xasprintf("%s/.host", dir);
	int r;

	r = fs_symlink_replace(vm->hostdir, back);
	if (!r)
		r = fs_symlink_replace(dir, link);
	if (!r) {
		free(vm->workdir);
		vm->workdir = xstrdup(dir);
	}
	free(link);
	free(back);
	return r;
}

int vm_make_workdir(struct vm *vm)
{
	char *dir, *mark;
	int r;

	if (vm->inplace) {
		free(vm->workdir);
		vm->workdir = xstrdup(vm->hostdir);
		return 0;
	}
	/* marked until adopted: killed before, it is swept as garbage */
	r = vm_new_marked_dir(vm, &dir);
	if (r)
		return r;
	mark = xasprintf("%s/" VM_MARK, dir);
	r = vm_adopt_workdir(vm, dir);
	if (r)
		fs_rm_rf(dir);
	else
		unlink(mark);
	free(mark);
	free(dir);
	return r;
}

int vm_copy_efivars(const struct vm *vm, char **path, struct strbuf *err)
{
	const char *tmpl = qemu_ovmf_vars();
	int r;

	*path = vm_work_path(vm, "efivars.bin");
	r = tmpl ? fs_copy_file(tmpl, *path, 0600) : -ENOENT;
	if (r)
		strbuf_addf(err, "copy UEFI variables to %s: %s", *path,
			    tmpl ? strerror(-r) : VM_NO_OVMF);
	return r;
}

int vm_workdir_for_images(struct vm *vm, struct strbuf *err)
{
	char *vars;
	int r;

	if (vm->workdir || vm->conf.disks.nr || !vm->conf.images.nr ||
	    vm->dry_run)
		return 0;
	r = vm_make_workdir(vm);
	if (r) {
		strbuf_addf(err, "cannot make its working directory: %s",
			    strerror(-r));
		return r;
	}
	if (!vm->conf.uefi)
		return 1;
	r = vm_copy_efivars(vm, &vars, err);
	if (r) {
		char *link = vm_host_path(vm, ".work");

		/* as it was: the next try makes it whole, or says why */
		fs_rm_rf(vm->workdir);
		unlink(link);
		free(link);
		free(vm->workdir);
		vm->workdir = NULL;
	}
	free(vars);
	return r ? r : 1;
}

/* One file as "SIZE MTIME KEY" ("- - KEY" when it is not there). */
static void saved_line(const char *path, const char *key, struct strbuf *out)
{
	struct stat st;

	if (stat(path, &st) < 0)
		strbuf_addf(out, "- - %s\n", key);
	else
		strbuf_addf(out, "%lld %lld.%09ld %s\n", (long long)st.st_size,
			    (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			    key);
}

/*
 * The files a saved state depends on, by names that do not change when
 * the VM's directories move: WORKDIR's disks and UEFI variables, and
 * each local image as guest.conf names it.
 */
static void saved_files(struct vm *vm, struct strbuf *out)
{
	struct stat st;
	size_t i;

	for (i = 0; i < 64; i++) {
		char *name = xasprintf("disk-%zu.img", i);
		char *p = vm_work_path(vm, name);
		bool there = lstat(p, &st) == 0;

		if (there)
			saved_line(p, name, out);
		free(p);
		free(name);
		if (!there)
			break;
	}
	{
		char *p = vm_work_path(vm, "efivars.bin");

		saved_line(p, "efivars.bin", out);
		free(p);
	}
	for (i = 0; i < vm->conf.images.nr; i++)
		if (!download_is_url(vm->conf.images.v[i].path)) {
			char *p = vm_image_file(vm, vm->conf.images.v[i].path);

			saved_line(p, vm->conf.images.v[i].path, out);
			free(p);
		}
}

int vm_saved_bind(struct vm *vm)
{
	struct strbuf text = STRBUF_INIT;
	char *path;
	int r;

	if (!vm->workdir)
		return -ENOENT;
	saved_files(vm, &text);
	path = vm_work_path(vm, SAVED_DISKS);
	r = fs_write_atomic(path, text.buf, text.len, 0600);
	free(path);
	strbuf_release(&text);
	return r;
}

int vm_saved_check(struct vm *vm, struct strbuf *err)
{
	struct strbuf was = STRBUF_INIT, now = STRBUF_INIT;
	char *path = vm_work_path(vm, SAVED_DISKS);
	const char *a, *b;
	int r = fs_read_file(path, 1 << 20, &was);

	if (r) {
		/* none: a state saved before records were kept */
		if (r != -ENOENT)
			strbuf_addf(err, "%s: %s", path, fs_read_strerror(r));
		free(path);
		strbuf_release(&was);
		return r == -ENOENT ? 0 : r;
	}
	free(path);
	saved_files(vm, &now);
	for (a = was.buf, b = now.buf; *a || *b;) {
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");

		if (la != lb || memcmp(a, b, la)) {
			const char *line = *b ? b : a;
			const char *name = line;
			int k;

			/* the path is the third word of the line */
			for (k = 0; k < 2 && name; k++) {
				name = strchr(name, ' ');
				name = name ? name + 1 : NULL;
			}
			strbuf_addf(err, "%.*s changed since @stop --save saved its state",
				    name ? (int)strcspn(name, "\n") : 0,
				    name ? name : "");
			r = -ESTALE;
			break;
		}
		a += la + (a[la] == '\n');
		b += lb + (b[lb] == '\n');
	}
	strbuf_release(&was);
	strbuf_release(&now);
	return r;
}

int vm_saved_drop(struct vm *vm)
{
	char *state, *disks;
	int had;

	if (!vm->workdir)
		return 0;
	state = vm_work_path(vm, SAVED_STATE);
	disks = vm_work_path(vm, SAVED_DISKS);
	had = unlink(state) == 0;
	unlink(disks);
	free(state);
	free(disks);
	return had;
}

int vm_count_disks(const struct vm *vm)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	if (!vm->workdir)
		return 0;
	d = opendir(vm->workdir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (str_starts_with(e->d_name, "disk-") &&
		    str_ends_with(e->d_name, ".img"))
			n++;
	}
	closedir(d);
	return n;
}

static int apply_cli(struct vm_conf *c, const struct strvec *cli,
		     struct strbuf *err)
{
	size_t i;

	for (i = 0; i + 2 < cli->nr; i += 3) {
		/* triples: option name, "section.key", value */
		const char *opt = cli->v[i], *sk = cli->v[i + 1];
		const char *val = cli->v[i + 2];
		const char *dot = strchr(sk, '.');
		char *sect = xasprintf("%.*s", (int)(dot - sk), sk);
		struct strbuf e = STRBUF_INIT;
		int r;

		r = conf_set(c, sect, dot + 1, val, LAYER_CLI, &e);
		free(sect);
		if (r) {
			strbuf_addf(err, "option %s: %s", opt, e.buf);
			strbuf_release(&e);
			return r;
		}
		strbuf_release(&e);
	}
	return 0;
}

/*
 * The one merge of the settings layers, in one precedence: built-in
 * defaults < system file < user file < a job's NAME.rescue < guest.conf <
 * command line (conf_set keeps the higher layer whatever the order).
 */
static int merge_once(const struct conf_file *const *files, int n,
		      const struct strvec *cli, struct vm_conf *c,
		      struct strbuf *err)
{
	int i, r;

	/* The command line first: lower layers never override it. */
	r = apply_cli(c, cli, err);
	for (i = 0; !r && i < n; i++)
		if (files[i])
			r = conf_file_apply(files[i], c, err);
	return r;
}

/*
 * The one merge: files (n of them, NULL entries skipped), each read once
 * by the caller and never here, and cli; with a rescue profile chosen,
 * its [rescue.NAME] applies.  c (initialised) gets the result.
 */
static int settings_merge(const struct conf_file *const *files, int n,
			  const struct strvec *cli, struct vm_conf *c,
			  struct strbuf *err)
{
	char *profile;
	int r;

	/* Pass one learns the rescue profile; pass two applies [rescue.X]. */
	r = merge_once(files, n, cli, c, err);
	if (r)
		return r;
	profile = xstrdup(c->rescue_profile ? c->rescue_profile : "");
	if (*profile) {
		struct strbuf e = STRBUF_INIT;

		conf_release(c);
		conf_init(c);
		conf_set(c, "vm", "rescue", profile, LAYER_DEFAULT, &e);
		strbuf_release(&e);
		r = merge_once(files, n, cli, c, err);
	}
	free(profile);
	return r;
}

/* The system and user files, read once per vm. */
static int read_host_files(struct vm *vm, struct strbuf *err)
{
	const char *sys = getenv("VM_SYSTEM_CONFIG");
	char *cfg, *user = NULL;
	int r;

	if (vm->host_files_read)
		return 0;
	cfg = fs_config_home();
	conf_file_release(&vm->files[VM_FILE_SYSTEM]);
	conf_file_release(&vm->files[VM_FILE_USER]);
	r = conf_file_read(&vm->files[VM_FILE_SYSTEM],
			   sys ? sys : "/etc/vm.conf", LAYER_SYSTEM, NULL,
			   true, err);
	if (r) {
		free(cfg);
		return r;
	}
	if (cfg)
		user = xasprintf("%s/vm.conf", cfg);
	free(cfg);
	if (user) {
		r = conf_file_read(&vm->files[VM_FILE_USER], user, LAYER_USER,
				   NULL, true, err);
		free(user);
		if (r)
			return r;
	}
	vm->host_files_read = true;
	return 0;
}

static bool same_file(const struct vm_guest_file *g, const struct stat *st)
{
	return g->dev == st->st_dev && g->ino == st->st_ino &&
	       g->size == st->st_size &&
	       g->mtime.tv_sec == st->st_mtim.tv_sec &&
	       g->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void remember(struct vm_guest_file *g, const struct stat *st)
{
	g->dev = st->st_dev;
	g->ino = st->st_ino;
	g->size = st->st_size;
	g->mtime = st->st_mtim;
}

/*
 * confdir's guest.conf: *out NULL when there is none.  A file read in
 * this run and unchanged since (a restore renames the one it checked
 * into HOSTDIR) is not read again.
 */
static int guest_file(struct vm *vm, const char *confdir,
		      const struct conf_file **out, struct strbuf *err)
{
	char *path = xasprintf("%s/guest.conf", confdir);
	struct vm_guest_file *g;
	struct stat st;
	size_t i;
	int r;

	*out = NULL;
	if (stat(path, &st) < 0) {
		r = errno == ENOENT ? 0 : -errno;
		if (r)
			strbuf_addf(err, "%s: %s", path, strerror(-r));
		free(path);
		return r;
	}
	for (i = 0; i < vm->nguests; i++)
		if (same_file(vm->guests[i], &st)) {
			free(vm->guests[i]->f.path);
			vm->guests[i]->f.path = path;
			*out = &vm->guests[i]->f;
			return 0;
		}
	g = xcalloc(1, sizeof(*g));
	r = conf_file_read(&g->f, path, LAYER_GUEST, NULL, false, err);
	free(path);
	if (r) {
		conf_file_release(&g->f);
		free(g);
		return r;
	}
	remember(g, &st);
	vm->guests = xrealloc(vm->guests,
			      (vm->nguests + 1) * sizeof(*vm->guests));
	vm->guests[vm->nguests++] = g;
	*out = &g->f;
	return 0;
}

int vm_settings_for(struct vm *vm, const char *confdir, bool with_cli,
		    const char *job_file, struct vm_conf *c, struct strbuf *err)
{
	struct strvec none = STRVEC_INIT;
	struct conf_file job = CONF_FILE_INIT;
	const struct conf_file *files[4], *guest = NULL;
	int r = 0;

	/* the command line is told first, as when it was applied first */
	if (with_cli && vm->cli) {
		struct vm_conf scratch;

		conf_init(&scratch);
		r = apply_cli(&scratch, vm->cli, err);
		conf_release(&scratch);
	}
	/* then in the order of the layers: a bad user file before guest.conf */
	if (!r)
		r = read_host_files(vm, err);
	if (!r && job_file)
		r = conf_file_read(&job, job_file, LAYER_JOB, "rescue", false,
				   err);
	if (!r)
		r = guest_file(vm, confdir, &guest, err);
	files[0] = &vm->files[VM_FILE_SYSTEM];
	files[1] = &vm->files[VM_FILE_USER];
	files[2] = job_file ? &job : NULL;
	files[3] = guest;
	if (!r)
		r = settings_merge(files, 4,
				      with_cli && vm->cli ? vm->cli : &none, c,
				      err);
	if (!r)
		r = base_from_cli(c, guest, err);
	conf_file_release(&job);
	return r;
}

int vm_host_settings(struct vm *vm, struct vm_conf *c, struct strbuf *err)
{
	struct strvec none = STRVEC_INIT;
	const struct conf_file *files[2];
	int r = read_host_files(vm, err);

	files[0] = &vm->files[VM_FILE_SYSTEM];
	files[1] = &vm->files[VM_FILE_USER];
	if (!r)
		r = settings_merge(files, 2, &none, c, err);
	return r;
}

int vm_guest_settings(struct vm *vm, const char *confdir, struct vm_conf *g,
		      struct strbuf *err)
{
	const struct conf_file *f;
	int r = guest_file(vm, confdir, &f, err);

	if (!r && !f)
		return -ENOENT;
	return r ? r : conf_file_apply(f, g, err);
}

struct base_env vm_base_env(const struct vm *vm)
{
	struct base_env env = {vm->cache_dir, vm->workdir, vm->dry_run,
			       vm->hostdir};

	return env;
}

int vm_load_conf(struct vm *vm, const struct strvec *cli, struct strbuf *err)
{
	int r;

	vm->cli = cli;
	conf_release(&vm->conf);
	conf_init(&vm->conf);
	r = vm_settings_for(vm, vm->hostdir, true, NULL, &vm->conf, err);
	if (!r)
		vm->inplace = !vm->conf.use_tmpdir;
	return r;
}

int vm_guest_conf_set(struct vm *vm, const char *key, const char *value,
		      struct strbuf *err)
{
	char *path = vm_host_path(vm, "guest.conf");
	const struct conf_file *f;
	struct vm_guest_file *g = NULL;
	struct vm_conf c;
	struct stat st;
	size_t i;
	int r;

	conf_init(&c);
	r = guest_file(vm, vm->hostdir, &f, err);
	if (!r && !f) {
		strbuf_addf(err, "%s: %s", path, strerror(ENOENT));
		r = -ENOENT;
	}
	if (!r)
		r = conf_file_apply(f, &c, err);
	if (!r)
		r = conf_set(&c, "vm", key, value, LAYER_GUEST, err);
	if (!r) {
		r = conf_write_guest(&c, path);
		if (r)
			strbuf_addf(err, "cannot write %s: %s", path,
				    strerror(-r));
	}
	/* what was written is known: the next load need not read it */
	for (i = 0; !r && i < vm->nguests; i++)
		if (&vm->guests[i]->f == f)
			g = vm->guests[i];
	if (g && stat(path, &st) == 0) {
		conf_file_add(&g->f, "vm", key, value);
		remember(g, &st);
	}
	if (!r)
		conf_set(&vm->conf, "vm", key, value, LAYER_GUEST, err);
	conf_release(&c);
	free(path);
	return r;
}

int vm_reload_conf(struct vm *vm, struct strbuf *err)
{
	/* guest.conf may be another file now (a restore) */
	return vm_load_conf(vm, vm->cli, err);
}

void vm_download_opts(const struct vm *vm, struct dl_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cache_dir = vm->cache_dir;
	o->offline_ok = true;
	o->no_network = vm->dry_run;
	o->max_bytes = vm->conf.download_max;
	o->cache_max = vm->conf.download_cache_max;
	o->timeout_s = vm->conf.download_timeout;
}

int vm_fetch(const struct vm *vm, const char *spec, const char *want_sha,
	     void (*progress)(void *, uint64_t, uint64_t), void *pdata,
	     char **path, char **sha256, struct strbuf *note,
	     struct strbuf *err)
{
	struct dl_opts o;
	char *url = NULL, *frag = NULL, hex[65];
	int r;

	*path = NULL;
	if (sha256)
		*sha256 = NULL;
	if (!download_is_url(spec)) {
		if (access(spec, R_OK) < 0) {
			r = -errno;
			strbuf_addf(err, "%s: %s", spec, strerror(-r));
			return r;
		}
		*path = fs_abspath(spec);
		return 0;
	}
	if (download_split(spec, &url, &frag)) {
		strbuf_addf(err, "%s: a fragment must be #sha256= and 64 hex digits",
			    spec);
		return -EINVAL;
	}
	if (frag && want_sha && *want_sha && strcasecmp(frag, want_sha)) {
		strbuf_addf(err, "%s: two different SHA-256 digests given", url);
		free(url);
		free(frag);
		return -EINVAL;
	}
	vm_download_opts(vm, &o);
	o.sha256 = frag ? frag : want_sha && *want_sha ? want_sha : NULL;
	o.progress = progress;
	o.progress_data = pdata;
	hex[0] = '\0';
	if (sha256)
		o.sha256_out = hex;
	r = download_fetch(url, &o, path, note, err);
	if (!r && sha256 && *hex)
		*sha256 = xstrdup(hex);
	free(url);
	free(frag);
	return r;
}

char *vm_expand_macros(const struct vm *vm, const char *s, bool *empty)
{
	struct strbuf out = STRBUF_INIT;
	const struct vm_conf *c = &vm->conf;
	char *media = c->media && *c->media ? fs_expand_home(c->media) : NULL;

	*empty = false;
	while (*s) {
		const char *end;
		char *val = NULL;
		size_t len;

		if (*s != '@' || !(end = strchr(s + 1, '@'))) {
			strbuf_addch(&out, *s++);
			continue;
		}
		len = (size_t)(end - s - 1);
#define IS(n) (len == strlen(n) && !strncmp(s + 1, n, len))
		if (IS("HOSTDIR")) {
			val = xstrdup(vm->hostdir);
		} else if (IS("INDIR")) {
			val = vm_work_path(vm, ".in");
		} else if (IS("DATADIR") || IS("OUTDIR")) {
			val = vm_work_path(vm, ".out");
		} else if (IS("MEDIA") || IS("MIRROR")) {
			const char *sub = IS("MEDIA") ? c->media_storage :
							c->media_mirror;

			if (sub && *sub && (sub[0] == '/' || sub[0] == '~'))
				val = fs_expand_home(sub);
			else if (sub && *sub && media)
				val = xasprintf("%s/%s", media, sub);
			else if (IS("MEDIA") && media)
				val = xstrdup(media);
		} else {
			strbuf_addch(&out, *s++);
			continue;
		}
#undef IS
		if (!val)
			*empty = true;
		else
			strbuf_addstr(&out, val);
		free(val);
		s = end + 1;
	}
	free(media);
	return strbuf_detach(&out);
}

char *vm_image_file(const struct vm *vm, const char *spec)
{
	return spec[0] == '/' ? xstrdup(spec) :
				xasprintf("%s/%s", vm->hostdir, spec);
}

int vm_image_path(const struct vm *vm, const char *spec, char **abs,
		  struct strbuf *err)
{
	char *a;

	*abs = NULL;
	if (download_is_url(spec)) {
		struct strbuf note = STRBUF_INIT;
		int r = vm_fetch(vm, spec, NULL, NULL, NULL, &a, NULL, &note,
				 err);

		strbuf_release(&note);
		if (r)
			return r;
	} else {
		a = vm_image_file(vm, spec);
	}
	if (!vm->dry_run && !download_is_url(a) && access(a, R_OK) < 0) {
		strbuf_addf(err, "image %s: %s", a, strerror(errno));
		free(a);
		return -ENOENT;
	}
	*abs = a;
	return 0;
}

static int plan_disks(struct vm *vm, const char *base, struct vm_plan *p,
		      struct strbuf *err)
{
	const struct vm_conf *c = &vm->conf;
	size_t i;
	int r;

	/*
	 * What a failure leaves unfilled is all NULL and released alike.
	 * Images come first: the boot order follows them, then the disks
	 * (a VM made from an existing image boots that image).
	 */
	p->ndisks = (int)(c->disks.nr + c->images.nr);
	p->disks = xcalloc((size_t)p->ndisks, sizeof(*p->disks));
	for (i = 0; i < c->images.nr; i++) {
		struct disk_spec *d = &p->disks[i];
		char *abs;

		disk_spec_copy(d, &c->images.v[i]);
		r = vm_image_path(vm, c->images.v[i].path, &abs, err);
		if (r)
			return r;
		free(d->path);
		d->path = abs;
		/* the download cache's copy is never written */
		d->scratch = download_is_url(c->images.v[i].path);
	}
	for (i = 0; i < c->disks.nr; i++) {
		struct disk_spec *d = &p->disks[c->images.nr + i];

		disk_spec_copy(d, &c->disks.v[i]);
		d->path = xasprintf("%s/disk-%zu.img", vm->workdir, i);
		if (!vm->dry_run && !fs_exists(d->path)) {
			strbuf_addf(err, "disk %s is missing (was the VM created? try @create)",
				    d->path);
			return -ENOENT;
		}
	}
	if (!base || !c->disks.nr)
		return 0;
	p->disks[c->images.nr].backing = xstrdup(base);
	p->disks[c->images.nr].backing_format = xstrdup(c->base_format);
	return 0;
}

static int plan_shares(struct vm *vm, const struct share_list *specs,
		       struct vm_plan *p, struct strbuf *err)
{
	size_t i;

	p->shares = xcalloc(specs->nr + 1, sizeof(*p->shares));
	for (i = 0; i < specs->nr; i++) {
		struct share_spec *s = &p->shares[p->nshares];
		bool empty;
		char *dir;

		dir = vm_expand_macros(vm, specs->v[i].dir, &empty);
		if (empty) {
			/* an optional share, such as a mirror not set up */
			free(dir);
			continue;
		}
		s->id = xstrdup(specs->v[i].id);
		s->rw = specs->v[i].rw;
		s->dir = dir[0] == '/' ? dir : xasprintf("%s/%s", vm->hostdir,
							 dir);
		if (s->dir != dir)
			free(dir);
		/* In a dry run @job has not made .in and .out yet. */
		if (!fs_is_dir(s->dir) &&
		    !(vm->dry_run && str_starts_with(s->dir, vm->workdir))) {
			strbuf_addf(err, "share %s: directory %s does not exist",
				    s->id, s->dir);
			p->nshares++;
			return -ENOENT;
		}
		/*
		 * QEMU's mapped-xattr needs user xattrs; mapped-file not.  A
		 * dry run may come before @job made .out: ask its parent.
		 */
		if (s->rw) {
			char *probe = xstrdup(s->dir), *slash;

			if (!fs_is_dir(probe) && (slash = strrchr(probe, '/')) &&
			    slash != probe)
				*slash = '\0';
			s->mapped_file = fs_is_dir(probe) &&
					 !fs_has_user_xattrs(probe);
			free(probe);
		}
		p->nshares++;
	}
	return 0;
}

static const char *own(struct vm_plan *p, char *s)
{
	strvec_push(&p->owned, s);
	free(s);
	return p->owned.v[p->owned.nr - 1];
}

/* The firmware: UEFI (code and this boot's variables) or none (BIOS). */
static int plan_firmware(struct vm *vm, bool rescue, struct vm_plan *p,
			 struct strbuf *err)
{
	const struct vm_conf *c = &vm->conf;

	p->q.q35 = c->uefi;
	p->q.uefi = c->uefi &&
		    (!rescue || c->rescue.boot == RESCUE_BOOT_CDROM);
	if (!p->q.uefi)
		return 0;
	p->q.ovmf_code = qemu_ovmf_code();
	/* The rescue gets fresh variables: it must not add boot
	 * entries to the VM's own NVRAM. */
	p->q.ovmf_vars = own(p, vm_work_path(vm, rescue ?
			     "rescue-efivars.bin" : "efivars.bin"));
	if (!p->q.ovmf_code) {
		strbuf_addstr(err, VM_NO_OVMF);
		return -ENOENT;
	}
	if (!vm->dry_run && !rescue && !fs_exists(p->q.ovmf_vars)) {
		strbuf_addf(err, "UEFI variables %s are missing (use --no-uefi, or @create the VM again)",
			    p->q.ovmf_vars);
		return -ENOENT;
	}
	return 0;
}

/* The console and the monitor: the rescue's or the VM's own. */
static void plan_sockets(struct vm *vm, bool rescue, struct vm_plan *p)
{
	if (rescue) {
		p->q.console_log = own(p, vm_work_path(vm,
						      "rescue-console.log"));
		p->q.console_sock = own(p, vm_work_path(vm,
						       "rescue-console.sock"));
	} else {
		/* vm serves the console to many and keeps the log */
		p->q.console_sock = own(p, vm_work_path(vm,
						       "qemu-console.sock"));
		p->console_sock = own(p, vm_work_path(vm, "console.sock"));
		p->console_log = own(p, vm_work_path(vm, "console.log"));
		/* vm serves control to many; QEMU's monitor stays private */
		p->control_sock = own(p, vm_work_path(vm, "control.sock"));
		p->q.vm_qmp_sock = own(p, vm_work_path(vm, "vm-qmp.sock"));
		/* its file systems frozen for a live backup */
		if (vm->conf.guest_agent != AGENT_NO)
			p->q.agent_sock = own(p, vm_work_path(vm, "qga.sock"));
	}
	p->q.qmp_sock = own(p, vm_work_path(vm, rescue ? "rescue-qmp.sock" :
							 "qmp.sock"));
}

/* The VM's vm.defaults (the first found): QEMU words of the user's. */
static int plan_defaults(struct vm *vm, struct vm_plan *p,
			 struct strbuf *err)
{
	const char *dirs[5];
	char *cfg = fs_config_home();
	int r;

	dirs[0] = vm->workdir;
	dirs[1] = vm->hostdir;
	dirs[2] = cfg ? cfg : "/nonexistent";
	dirs[3] = "/etc";
	dirs[4] = NULL;
	r = qemu_read_defaults(dirs, &p->extra, &p->defaults_file, err);
	free(cfg);
	if (!r)
		p->q.extra = &p->extra;
	return r;
}

/*
 * The rescue's vCPUs: [rescue] cores, but one under TCG on a host of
 * fewer than 4 CPUs unless a settings file or option says otherwise.
 * There two vCPUs are about 5% faster for a job alone and 27% slower two
 * at once, and only they showed TCG's rare boot hang (bench/rescue-cores.sh,
 * docs/benchmarks.md).
 */
#define RESCUE_TCG_SMALL_HOST 4
static unsigned rescue_cores(const struct vm *vm)
{
	const char *accel = vm->accel ? vm->accel : "tcg";

	if (!strcmp(accel, "tcg") && vm->host_cpus > 0 &&
	    vm->host_cpus < RESCUE_TCG_SMALL_HOST &&
	    conf_layer_of(&vm->conf, "rescue", "cores") == LAYER_DEFAULT)
		return 1;
	return vm->conf.rescue.cores;
}

int vm_plan_build(struct vm *vm, enum plan_mode mode, const char *cdrom,
		  const char *base, struct vm_plan *p, struct strbuf *err)
{
	const struct vm_conf *c = &vm->conf;
	bool rescue = mode == PLAN_RESCUE;
	const struct forward_list *fwd;
	size_t i;
	int r;

	memset(p, 0, sizeof(*p));
	p->extra = (struct strvec)STRVEC_INIT;
	p->forwards = (struct strvec)STRVEC_INIT;
	p->owned = (struct strvec)STRVEC_INIT;
	if (!vm->workdir) {
		strbuf_addstr(err, "the VM has no working files (try @create)");
		return -ENOENT;
	}
	r = plan_disks(vm, base, p, err);
	if (r)
		return r;
	r = plan_shares(vm, rescue ? &c->rescue.shares : &c->shares, p, err);
	if (r)
		return r;
	fwd = rescue ? &c->rescue.forwards : &c->forwards;
	for (i = 0; i < fwd->nr; i++)
		strvec_push(&p->forwards, fwd->v[i].rule);

	p->q.binary = own(p, qemu_binary(c->arch));
	p->q.name = own(p, rescue ? xasprintf("%s-rescue", c->name) :
				    xstrdup(c->name));
	p->q.accel = vm->accel ? vm->accel : "tcg";
	r = plan_firmware(vm, rescue, p, err);
	if (r)
		return r;
	p->q.sockets = rescue ? 1 : c->sockets;
	p->q.cores = rescue ? rescue_cores(vm) : c->cores;
	p->q.memory_mib = (rescue ? c->rescue.memory : c->memory) >> 20;
	p->q.disks = p->disks;
	p->q.ndisks = p->ndisks;
	if (cdrom)
		p->q.cdrom = own(p, fs_abspath(cdrom));
	p->q.netdev = c->netdev;
	p->q.forwards = &p->forwards;
	p->q.shares = p->shares;
	p->q.nshares = p->nshares;
	p->q.spice_port = rescue ? 0 : c->port;
	p->q.spice_host = c->host;
	plan_sockets(vm, rescue, p);
	return rescue ? 0 : plan_defaults(vm, p, err);
}

void vm_plan_release(struct vm_plan *p)
{
	int i;

	if (p->q.base_fd > 2)
		close(p->q.base_fd);
	p->q.base_fd = -1;
	if (p->spice_claim > 0)
		close(p->spice_claim);
	p->spice_claim = 0;
	if (p->ssh_claim > 0)
		close(p->ssh_claim);
	p->ssh_claim = 0;
	disk_specs_free(p->disks, p->ndisks);
	for (i = 0; p->shares && i < p->nshares; i++)
		share_spec_release(&p->shares[i]);
	free(p->shares);
	strvec_clear(&p->extra);
	strvec_clear(&p->forwards);
	strvec_clear(&p->owned);
	free(p->defaults_file);
	memset(p, 0, sizeof(*p));
}
