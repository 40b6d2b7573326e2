#include "util/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

int fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, r = 0;

	if (!slash)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xasprintf("%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0)
			r = -errno;
		close(fd);
	}
	free(dir);
	return r;
}

int fs_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* fs_fsync_files, or (!wait) writeback started for each file alone. */
static int sync_files(const char *dir, bool wait)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;
	struct dirent *e;
	DIR *d;

	if (dfd < 0)
		return -errno;
	d = fdopendir(dup(dfd));
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while (!r && (e = readdir(d))) {
		struct stat st;
		int fd;

		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		fd = openat(dfd, e->d_name,
			    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (fd < 0 || (wait ? fsync(fd) :
			       sync_file_range(fd, 0, 0,
					       SYNC_FILE_RANGE_WRITE)) < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	if (!r && wait && fsync(dfd) < 0)
		r = -errno;
	close(dfd);
	return r;
}

int fs_fsync_files(const char *dir)
{
	return sync_files(dir, true);
}

void fs_writeback_files(const char *dir)
{
	(void)sync_files(dir, false);
}

void fs_write_behind(int fd, uint64_t *started, uint64_t end)
{
	if (end - *started < FS_WRITE_BEHIND)
		return;
	(void)sync_file_range(fd, (off_t)*started, (off_t)(end - *started),
			      SYNC_FILE_RANGE_WRITE);
	*started = end;
}

int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode)
{
	/* of this process's: a file two vm may write at once (the cache) */
	char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
	int fd = -1, r;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  mode);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = fs_write_all(fd, data, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	fd = -1;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (!r)
		r = fsync_parent(path);
out:
	if (r)
		unlink(tmp);
	free(tmp);
	return r;
}

static int read_file(int dirfd, const char *name, int flags, size_t max,
		     struct strbuf *out)
{
	struct stat st;
	int fd, r = 0;

	/* opening some devices does things: look before, check after */
	if (fstatat(dirfd, name, &st,
		    flags & O_NOFOLLOW ? AT_SYMLINK_NOFOLLOW : 0) == 0 &&
	    !S_ISREG(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR :
		       S_ISLNK(st.st_mode) ? -ELOOP : -EINVAL;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
		    O_NOCTTY | flags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	r = (uint64_t)st.st_size > max ? -EFBIG : fs_read_fd(fd, max, out);
out:
	close(fd);
	return r;
}

int fs_read_fd(int fd, size_t max, struct strbuf *out)
{
	char buf[8192];
	size_t total = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return 0;
		total += (size_t)n;
		if (total > max)
			return -EFBIG;
		strbuf_add(out, buf, (size_t)n);
	}
}

int fs_read_file_at(int dirfd, const char *name, size_t max,
		    struct strbuf *out)
{
	return read_file(dirfd, name, O_NOFOLLOW, max, out);
}

int fs_read_file(const char *path, size_t max, struct strbuf *out)
{
	return read_file(AT_FDCWD, path, 0, max, out);
}

const char *fs_read_strerror(int r)
{
	switch (r) {
	case -EISDIR:
		return "is a directory, not a file";
	case -EINVAL:
		return "not a regular file";
	case -EFBIG:
		return "too large";
	case -ELOOP:
		return "is a symlink";
	default:
		return strerror(-r);
	}
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path), *s;
	int r = 0;

	for (s = p + 1; ; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	if (!r && !fs_is_dir(path))
		r = -ENOTDIR;
	free(p);
	return r;
}

/*
 * Deeper than this, a directory is moved up into the top one (the guest
 * may leave a tree thousands of levels deep in OUTDIR: one fd and one
 * stack frame a level would run out), and removed from there.
 * Not nftw(): past 4096-byte paths it gets ENAMETOOLONG (FTW_CHDIR aborts).
 */
#define RM_DEPTH 16

static int rm_rf_at(int parent, const char *name, int depth, int top,
		    unsigned *moved)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int fd, r = 0;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0) < 0 && errno != ENOENT ?
			       -errno : 0;
	if (depth >= RM_DEPTH && top >= 0) {
		char up[32];

		snprintf(up, sizeof(up), ".rm-%u", (*moved)++);
		if (renameat(parent, name, top, up) == 0)
			return 0;	/* the top's next pass removes it */
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	for (;;) {
		unsigned before = *moved;

		while ((e = readdir(d))) {
			int rr;

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			rr = rm_rf_at(dirfd(d), e->d_name, depth + 1,
				      top >= 0 ? top : dirfd(d), moved);
			if (rr && !r)
				r = rr;
		}
		/* the top directory takes what was moved up: go again */
		if (top >= 0 || *moved == before || r)
			break;
		rewinddir(d);
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT &&
	    !r)
		r = -errno;
	return r;
}

int fs_rm_rf(const char *path)
{
	unsigned moved = 0;

	return rm_rf_at(AT_FDCWD, path, 0, -1, &moved);
}

/* Not copy_file_range(): the large copies cross file systems (EXDEV). */
int fs_copy_file(const char *src, const char *dst, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp", dst);
	char buf[65536];
	int in = -1, out = -1, r = 0;
	struct stat st;
	off_t pos = 0;

	in = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (in < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(in, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		   mode);
	if (out < 0) {
		r = -errno;
		goto out;
	}
	while (pos < st.st_size) {
		off_t data = lseek(in, pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno == ENXIO)
				break;
			r = -errno;
			goto out;
		}
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0) {
			r = -errno;
			goto out;
		}
		for (pos = data; pos < hole;) {
			size_t want = (size_t)(hole - pos) < sizeof(buf) ?
					      (size_t)(hole - pos) : sizeof(buf);
			ssize_t n = pread(in, buf, want, pos);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				goto out;
			}
			if (lseek(out, pos, SEEK_SET) < 0) {
				r = -errno;
				goto out;
			}
			r = fs_write_all(out, buf, (size_t)n);
			if (r)
				goto out;
			pos += n;
		}
	}
	if (ftruncate(out, st.st_size) < 0 || fsync(out) < 0) {
		r = -errno;
		goto out;
	}
	if (close(out) < 0) {
		out = -1;
		r = -errno;
		goto out;
	}
	out = -1;
	if (rename(tmp, dst) < 0)
		r = -errno;
out:
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	if (r)
		unlink(tmp);
	free(tmp);
	return r;
}

bool fs_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

bool fs_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool fs_is_symlink(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

void fs_stat_key(const struct stat *st, char key[FS_STAT_KEY])
{
	snprintf(key, FS_STAT_KEY, "%ju %ju %jd %lld.%09ld",
		 (uintmax_t)st->st_dev, (uintmax_t)st->st_ino,
		 (intmax_t)st->st_size, (long long)st->st_ctim.tv_sec,
		 st->st_ctim.tv_nsec);
}

int fs_symlink_replace(const char *target, const char *path)
{
	char *tmp = xasprintf("%s.tmp%ld", path, (long)getpid());
	int r = 0;

	unlink(tmp);
	if (symlink(target, tmp) < 0)
		r = -errno;
	else if (rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	else
		fsync_parent(path);
	free(tmp);
	return r;
}

char *fs_abspath(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	struct strvec parts = STRVEC_INIT;
	char cwd[PATH_MAX];
	char *copy, *s, *save = NULL;
	size_t i;

	if (path[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			return xstrdup(path);
		strbuf_addf(&sb, "%s/", cwd);
	}
	strbuf_addstr(&sb, path);
	copy = strbuf_detach(&sb);
	for (s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (!strcmp(s, "."))
			continue;
		if (!strcmp(s, "..")) {
			if (parts.nr) {
				free(parts.v[--parts.nr]);
				parts.v[parts.nr] = NULL;
			}
			continue;
		}
		strvec_push(&parts, s);
	}
	for (i = 0; i < parts.nr; i++)
		strbuf_addf(&sb, "/%s", parts.v[i]);
	if (!parts.nr)
		strbuf_addch(&sb, '/');
	strvec_clear(&parts);
	free(copy);
	return strbuf_detach(&sb);
}

int fs_mkdtemp(const char *prefix, char **dir)
{
	const char *tmp = getenv("TMPDIR");
	char *d = xasprintf("%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);

	if (!mkdtemp(d)) {
		int r = -errno;

		free(d);
		*dir = NULL;
		return r;
	}
	*dir = d;
	return 0;
}

char *fs_realpath(const char *path)
{
	char *abs, *slash, *parent, *real, *out;
	const char *base;

	abs = path[0] == '/' ? xstrdup(path) : NULL;
	if (!abs) {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)))
			return fs_abspath(path);
		abs = xasprintf("%s/%s", cwd, path);
	}
	real = realpath(abs, NULL);
	if (real || errno != ENOENT) {
		free(abs);
		return real ? real : fs_abspath(path);
	}
	/* Not there yet (@create makes it): resolve what exists above. */
	while ((slash = strrchr(abs, '/')) && slash != abs && !slash[1])
		*slash = '\0';
	slash = strrchr(abs, '/');
	if (!slash || slash == abs) {
		out = fs_abspath(abs);
		free(abs);
		return out;
	}
	*slash = '\0';
	base = slash + 1;
	parent = fs_realpath(abs);
	if (!strcmp(base, ".") || !*base)
		out = xstrdup(parent);
	else if (!strcmp(base, "..")) {
		char *up = xasprintf("%s/..", parent);

		out = fs_abspath(up);	/* parent is real: lexical is right */
		free(up);
	} else
		out = xasprintf("%s%s%s", parent,
				parent[strlen(parent) - 1] == '/' ? "" : "/",
				base);
	free(parent);
	free(abs);
	return out;
}

char *fs_config_home(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (xdg && *xdg)
		return xstrdup(xdg);
	if (home && *home)
		return xasprintf("%s/.config", home);
	return NULL;
}

char *fs_expand_home(const char *path)
{
	const char *home = getenv("HOME");

	if (path[0] == '~' && (path[1] == '/' || !path[1]) && home)
		return xasprintf("%s%s", home, path + 1);
	return xstrdup(path);
}

/* Enough for the last lines of any log; a huge one is not read whole. */
#define TAIL_MAX (64 << 10)

void fs_tail(const char *path, int n, struct strbuf *out)
{
	struct strbuf all = STRBUF_INIT;
	struct stat st;
	off_t from;
	size_t i;
	int fd, lines = 0;
	ssize_t got;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !st.st_size) {
		close(fd);
		return;
	}
	from = st.st_size > TAIL_MAX ? st.st_size - TAIL_MAX : 0;
	strbuf_grow(&all, TAIL_MAX);
	got = pread(fd, all.buf, TAIL_MAX, from);
	close(fd);
	if (got <= 0) {
		strbuf_release(&all);
		return;
	}
	all.len = (size_t)got;
	all.buf[all.len] = '\0';
	for (i = 0; i < all.len; i++)	/* the last lines, NULs or not */
		if (!all.buf[i])
			all.buf[i] = ' ';
	strbuf_trim_trailing(&all);
	for (i = all.len; i > 0; i--) {
		if (all.buf[i - 1] == '\n' && ++lines >= n)
			break;
	}
	strbuf_addstr(out, all.buf + i);
	strbuf_release(&all);
}

char *fs_which(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, *hit = NULL;

	if (strchr(prog, '/'))
		return xstrdup(prog);
	copy = xstrdup(path ? path : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir && !hit;
	     dir = strtok_r(NULL, ":", &save)) {
		char *c = xasprintf("%s/%s", dir, prog);

		if (access(c, X_OK) == 0)
			hit = c;
		else
			free(c);
	}
	free(copy);
	return hit;
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int sun_set(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	memcpy(a->sun_path, path, strlen(path) + 1);
	return 0;
}

/* A non-blocking stream socket and the address of path: fd or -errno. */
static int unix_socket(const char *path, struct sockaddr_un *a)
{
	int fd;

	if (sun_set(a, path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return fd < 0 ? -errno : fd;
}

int fs_unix_connect(const char *path, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct sockaddr_un a;
	int fd = unix_socket(path, &a), r;

	if (fd < 0)
		return fd;
	/* non-blocking, a full backlog is EAGAIN at once: try again */
	while ((r = connect(fd, (struct sockaddr *)&a, sizeof(a))) < 0 &&
	       errno == EAGAIN) {
		struct timespec ts = { 0, 20 * 1000000L };

		if (now_ms() >= deadline) {
			errno = ETIMEDOUT;
			break;
		}
		nanosleep(&ts, NULL);	/* a signal only shortens it */
	}
	if (r < 0 || fcntl(fd, F_SETFL, 0) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int fs_unix_listen(const char *path, mode_t mode, gid_t gid)
{
	struct sockaddr_un a;
	mode_t old;
	int fd = unix_socket(path, &a), r;

	if (fd < 0)
		return fd;
	unlink(path);
	/* never wider than asked, not even for a moment */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (r < 0 ||
	    (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) ||
	    chmod(path, mode) < 0 || listen(fd, 8) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

bool fs_has_user_xattrs(const char *dir)
{
	static const char name[] = "user.vm.probe";

	if (lsetxattr(dir, name, "1", 1, 0) < 0)
		return false;
	lremovexattr(dir, name);
	return true;
}

char *fs_mount_point(const char *path)
{
	char *cur = fs_abspath(path), *slash;
	struct stat st, up;

	/* the nearest part of path that exists */
	while (stat(cur, &st) < 0 && (slash = strrchr(cur, '/')) &&
	       slash != cur)
		*slash = '\0';
	if (stat(cur, &st) < 0)
		return xstrdup("/");
	/* then up while the parent is on the same device */
	while (strcmp(cur, "/")) {
		char *parent;

		slash = strrchr(cur, '/');
		parent = slash == cur ? xstrdup("/") :
					xasprintf("%.*s", (int)(slash - cur), cur);
		if (stat(parent, &up) < 0 || up.st_dev != st.st_dev) {
			free(parent);
			break;
		}
		free(cur);
		cur = parent;
	}
	return cur;
}
