#include "qemu/jobwait.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/proc.h"
#include "util/str.h"

/* How long a finished guest may take to power itself off. */
#define POWEROFF_GRACE_MS 30000

static bool has_regular(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

/* Bytes of job.log copied per pass, so deadlines and signals are seen. */
#define DRAIN_SLICE (1 << 20)

struct log_stream {
	int fd;			/* job.log once it is a regular file, or -1 */
	off_t pos;		/* read up to here */
	off_t max;		/* nothing at or beyond is read or kept */
	int out;		/* where it is copied */
	bool cut;		/* job.log went beyond max */
};

/*
 * Write buf to fd, waiting for room at most until deadline; *done says
 * how much was written, also on failure.
 */
static int write_until(int fd, const char *buf, size_t len,
		       long long deadline, size_t *done)
{
	*done = 0;
	while (*done < len) {
		struct pollfd p = { fd, POLLOUT, 0 };
		long long left = deadline - proc_now_ms();
		ssize_t k;

		if (proc_interrupted())
			return -EINTR;
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, left > 1000 ? 1000 : (int)left) == 0)
			continue;
		/*
		 * POLLOUT on a pipe promises room for PIPE_BUF bytes only: a
		 * larger write() to a stalled reader would block past the
		 * deadline.
		 */
		k = write(fd, buf + *done,
			  len - *done < PIPE_BUF ? len - *done : PIPE_BUF);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		*done += (size_t)k;
	}
	return 0;
}

/*
 * Copy at most DRAIN_SLICE bytes of what job.log gained to ls->out.
 * Holes are skipped, never copied as zeros (a guest can make job.log a
 * 1 TB sparse file), and what lies beyond ls->max is neither read nor
 * kept: job.log is cut back to max whenever it has grown past it.
 * Returns true when more is waiting.
 */
static bool drain_log(int dirfd, struct log_stream *ls, long long deadline)
{
	char buf[16384];
	size_t budget = DRAIN_SLICE, done;
	struct stat st;
	off_t end;
	int r;

	if (ls->fd < 0) {
		const int fl = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
		int fd;

		/* Not even opened unless regular: no device, FIFO, link. */
		if (!has_regular(dirfd, "job.log"))
			return false;
		/* read-write to cut it back */
		fd = openat(dirfd, "job.log", O_RDWR | fl);
		if (fd < 0 && errno == EACCES)
			fd = openat(dirfd, "job.log", O_RDONLY | fl);
		if (fd < 0)
			return false;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return false;
		}
		ls->fd = fd;
	}
	if (fstat(ls->fd, &st) < 0)
		return false;
	if (st.st_size > ls->max) {
		ls->cut = true;
		/* our file (the share is mapped): keep no more than max */
		if (ftruncate(ls->fd, ls->max) == 0)
			st.st_size = ls->max;
	}
	end = st.st_size < ls->max ? st.st_size : ls->max;
	while (ls->pos < end && budget) {
		off_t data = lseek(ls->fd, ls->pos, SEEK_DATA), hole;
		ssize_t n;
		size_t want;

		if (data < 0 && errno == ENXIO)
			data = end;	/* a hole up to the end */
		else if (data < 0)
			data = ls->pos;	/* no SEEK_DATA here: all data */
		if (data > ls->pos) {
			ls->pos = data < end ? data : end;
			continue;
		}
		hole = lseek(ls->fd, ls->pos, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		want = (size_t)(hole - ls->pos);
		if (want > sizeof(buf))
			want = sizeof(buf);
		if (want > budget)
			want = budget;
		n = pread(ls->fd, buf, want, ls->pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		r = write_until(ls->out, buf, (size_t)n, deadline, &done);
		ls->pos += (off_t)done;
		if (r < 0)
			return false;
		budget -= done;
	}
	return ls->pos < end;
}

static int read_status(int dirfd, int *status)
{
	struct strbuf sb = STRBUF_INIT;
	uint64_t v;
	int r;

	r = fs_read_file_at(dirfd, "STATUS", 64, &sb);
	if (!r) {
		strbuf_trim_trailing(&sb);
		r = parse_uint(sb.buf, 0, 255, &v) ? -EBADMSG : 0;
		if (!r)
			*status = (int)v;
	}
	strbuf_release(&sb);
	return r;
}

/*
 * QEMU ended or the guest wrote FINISHED: true when that ends the wait
 * (res->outcome set), false while STATUS is still to come.
 */
static bool job_ended(pid_t qemu, int dirfd, struct log_stream *ls,
		      struct job_result *res)
{
	int r = read_status(dirfd, &res->status), st;
	long long deadline;

	if (r && r != -ENOENT) {
		res->outcome = JOB_BAD_STATUS;
		res->error = r;
		return true;
	}
	if (!r) {
		res->outcome = JOB_DONE;
		/* let the guest power off by itself */
		if (res->qemu_exit < 0 &&
		    proc_wait(qemu, POWEROFF_GRACE_MS, &st) == 0)
			res->qemu_exit = proc_exit_code(st);
		/* the rest of the log, still bounded */
		deadline = proc_now_ms() + POWEROFF_GRACE_MS;
		while (drain_log(dirfd, ls, deadline) && !proc_interrupted() &&
		       proc_now_ms() < deadline)
			;
		return true;
	}
	if (res->qemu_exit >= 0) {
		/* QEMU that ended of the signal vm passed on */
		res->outcome = proc_interrupted() ? JOB_INTERRUPTED : JOB_DIED;
		return true;
	}
	return false;
}

void jobwait_run(pid_t qemu, const char *outdir, unsigned boot_timeout_s,
		 unsigned job_timeout_s, int log_fd, uint64_t log_max,
		 struct job_result *res)
{
	long long start = proc_now_ms(), started = 0, finished = 0;
	long long deadline = start + (long long)boot_timeout_s * 1000;
	int dirfd = -1, ifd = -1, pidfd = -1, st;
	struct log_stream ls = { -1, 0, 0, log_fd, false };
	bool more = false;

	ls.max = log_max > (uint64_t)INT64_MAX ? INT64_MAX : (off_t)log_max;
	memset(res, 0, sizeof(*res));
	res->qemu_exit = -1;
	dirfd = open(outdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (dirfd < 0 || ifd < 0 ||
	    inotify_add_watch(ifd, outdir, IN_CREATE | IN_MODIFY |
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB) < 0) {
		res->outcome = JOB_ERROR;
		res->error = -errno;
		goto out;
	}
	pidfd = (int)syscall(SYS_pidfd_open, qemu, 0);

	for (;;) {
		struct pollfd p[2];
		long long now;
		char evbuf[4096];
		pid_t w;

		more = drain_log(dirfd, &ls, deadline);
		now = proc_now_ms();
		if (!started && has_regular(dirfd, "STARTED"))
			started = now;
		if (!finished && has_regular(dirfd, "FINISHED"))
			finished = now;
		w = waitpid(qemu, &st, WNOHANG);
		if (w == qemu)
			res->qemu_exit = proc_exit_code(st);
		if ((res->qemu_exit >= 0 || finished) &&
		    job_ended(qemu, dirfd, &ls, res))
			break;
		if (proc_interrupted()) {
			res->outcome = JOB_INTERRUPTED;
			break;
		}
		if (!started)
			deadline = start + (long long)boot_timeout_s * 1000;
		else if (job_timeout_s)
			deadline = started + (long long)job_timeout_s * 1000;
		else
			deadline = now + 1000;
		if (now >= deadline) {
			res->outcome = started ? JOB_TIMEOUT : JOB_BOOT_TIMEOUT;
			break;
		}
		p[0].fd = ifd;
		p[0].events = POLLIN;
		p[1].fd = pidfd;
		p[1].events = POLLIN;
		/* Events wake us; the cap only bounds a lost wake-up. */
		poll(p, pidfd >= 0 ? 2 : 1, more ? 0 :
		     (int)(deadline - now < 1000 ? deadline - now : 1000));
		while (read(ifd, evbuf, sizeof(evbuf)) > 0)
			;
	}
out:
	res->log_cut = ls.cut;
	if (ls.fd >= 0)
		close(ls.fd);
	if (pidfd >= 0)
		close(pidfd);
	if (ifd >= 0)
		close(ifd);
	if (dirfd >= 0)
		close(dirfd);
}
