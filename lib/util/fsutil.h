/* Files and directories: atomic writes, safe reads, removal, copies. */
#ifndef VM_FSUTIL_H
#define VM_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/str.h"

/* A run of bytes of a file or a disk: [off, off + len). */
struct range {
	uint64_t off, len;
};

/* Write all of data to fd (EINTR retried): 0 or -errno. */
int fs_write_all(int fd, const void *data, size_t len);

/*
 * Write data to path via path.PID.tmp + fsync + rename (two processes
 * writing the same path at once each write their own; the last rename
 * wins).  Returns 0 or -errno.
 */
int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode);

/*
 * Read at most max bytes of a regular file of the host's (symlinks are
 * followed).  Opened non-blocking, so a FIFO or device never hangs us.
 * Returns 0, -EISDIR for a directory, -EINVAL for any other file that is
 * not regular, -EFBIG when larger than max, or -errno.
 */
int fs_read_file(const char *path, size_t max, struct strbuf *out);

/* Read fd to its end into out: 0, -EFBIG past max bytes, or -errno. */
int fs_read_fd(int fd, size_t max, struct strbuf *out);

/* What an error of fs_read_file() means, for "PATH: WHAT" messages. */
const char *fs_read_strerror(int r);

/*
 * Read a file the guest may have written: relative to a directory fd and
 * never through a symlink in its last component (-ELOOP).
 */
int fs_read_file_at(int dirfd, const char *name, size_t max,
		    struct strbuf *out);

/* mkdir -p; existing directories are fine. */
int fs_mkdir_p(const char *path, mode_t mode);

/*
 * Remove path and everything under it without following symlinks
 * (a link is removed, never its target).  Missing path is not an error.
 */
int fs_rm_rf(const char *path);

/*
 * Copy a regular file (sparse-aware), to dst.tmp then rename.  Anything
 * else is refused as fs_read_file() does.
 */
int fs_copy_file(const char *src, const char *dst, mode_t mode);

bool fs_exists(const char *path);
bool fs_is_dir(const char *path);
/* lstat-based: true for a symlink, even a dangling one. */
bool fs_is_symlink(const char *path);

/*
 * What tells one version of a file from another without reading it:
 * "DEV INO SIZE CTIME.NS" into key (FS_STAT_KEY bytes).  Nothing writes
 * or renames a file without changing its ctime (as git's index trusts).
 */
#define FS_STAT_KEY 96
void fs_stat_key(const struct stat *st, char key[FS_STAT_KEY]);

/*
 * Whether files in dir can carry user.* extended attributes (tried on dir
 * itself, left as it was).  False on file systems without them (older
 * tmpfs, some network file systems) and on any error.
 */
bool fs_has_user_xattrs(const char *dir);

/* fsync a directory, so names made or renamed in it last. */
int fs_fsync_dir(const char *path);

/*
 * fsync every regular file directly in dir (no symlink followed), then
 * dir itself: what was written there lasts.  0 or the first -errno.
 */
int fs_fsync_files(const char *dir);

/*
 * Start the kernel writing what dir's regular files hold, without
 * waiting: a later fs_fsync_files finds it (mostly) on disk, so the
 * writing overlaps with work done meanwhile.  Best effort.
 */
void fs_writeback_files(const char *dir);

/*
 * The same for what fd (a file being written, from *started to end)
 * got since the last call, in steps of FS_WRITE_BEHIND: *started moves
 * to end when writeback was started.
 */
#define FS_WRITE_BEHIND (8u << 20)
void fs_write_behind(int fd, uint64_t *started, uint64_t end);

/* Make a symlink atomically replacing whatever link was at path. */
int fs_symlink_replace(const char *target, const char *path);

/* Absolute, normalised form of path (need not exist).  Caller frees. */
char *fs_abspath(const char *path);

/*
 * A new private directory (0700) $TMPDIR/PREFIX-XXXXXX (/tmp without
 * TMPDIR) in *dir, caller frees.  Returns 0 or -errno.
 */
int fs_mkdtemp(const char *prefix, char **dir);

/*
 * The real path of path, symlinks and .. resolved; for a path that does
 * not exist yet, the real path of what exists above it plus the rest.
 * Caller frees.
 */
char *fs_realpath(const char *path);

/*
 * The user's settings directory: $XDG_CONFIG_HOME, else ~/.config; NULL
 * without either.  Caller frees.
 */
char *fs_config_home(void);

/* Expand a leading ~/ with $HOME.  Caller frees. */
char *fs_expand_home(const char *path);

/* The program's path in $PATH (or prog itself with a '/'); NULL if none. */
char *fs_which(const char *prog);

/*
 * Connect a stream socket to the unix socket at path (CLOEXEC), waiting
 * at most timeout_ms while the listener's backlog is full (a client that
 * holds it must not hang us).  Returns the fd (blocking), or -errno:
 * -ETIMEDOUT, -ENAMETOOLONG for a path too long for sun_path.
 */
int fs_unix_connect(const char *path, int timeout_ms);

/*
 * Listen on a unix socket at path (replacing a stale one), non-blocking
 * and CLOEXEC, never wider than mode, of group gid unless (gid_t)-1.
 * Returns the fd or -errno (-ENAMETOOLONG for too long a path).
 */
int fs_unix_listen(const char *path, mode_t mode, gid_t gid);

/* Write the last n lines of a file into out (for error reports). */
void fs_tail(const char *path, int n, struct strbuf *out);

/*
 * The mount point of the file system that holds path (or, when path does
 * not exist, its nearest existing parent), as an absolute path, for
 * "no space left on MOUNT".  Caller frees; never NULL.
 */
char *fs_mount_point(const char *path);

#endif
