#include "jobwait.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "proc.h"
#include "str.h"

/* How long a finished guest may take to power itself off. */
#define POWEROFF_GRACE_MS 30000

static bool has_regular(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

/* Copy what job.log gained since last time to log_fd. */
static void drain_log(int dirfd, int *logfd, off_t *pos, int out)
{
	char buf[16384];
	struct stat st;
	ssize_t n;

	if (*logfd < 0) {
		int fd = openat(dirfd, "job.log", O_RDONLY | O_CLOEXEC |
				O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);

		if (fd < 0)
			return;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return;
		}
		*logfd = fd;
	}
	while ((n = pread(*logfd, buf, sizeof(buf), *pos)) > 0) {
		ssize_t w = 0;

		while (w < n) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			w += k;
		}
		*pos += n;
	}
}

static int read_status(int dirfd, int *status)
{
	struct strbuf sb = STRBUF_INIT;
	uint64_t v;
	int r;

	r = fs_read_file_at(dirfd, "STATUS", 64, &sb);
	if (!r) {
		strbuf_trim_trailing(&sb);
		r = parse_uint(sb.buf, 0, 255, &v);
		if (!r)
			*status = (int)v;
	}
	strbuf_release(&sb);
	return r;
}

void jobwait_run(pid_t qemu, const char *outdir, unsigned boot_timeout_s,
		 unsigned job_timeout_s, int log_fd, struct job_result *res)
{
	long long start = proc_now_ms(), started = 0, finished = 0;
	int dirfd = -1, ifd = -1, pidfd = -1, logfd = -1, st;
	off_t pos = 0;

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
		long long now, deadline;
		char evbuf[4096];
		pid_t w;

		drain_log(dirfd, &logfd, &pos, log_fd);
		now = proc_now_ms();
		if (!started && has_regular(dirfd, "STARTED"))
			started = now;
		if (!finished && has_regular(dirfd, "FINISHED"))
			finished = now;
		w = waitpid(qemu, &st, WNOHANG);
		if (w == qemu)
			res->qemu_exit = proc_exit_code(st);
		if (res->qemu_exit >= 0 || finished) {
			if (!read_status(dirfd, &res->status)) {
				res->outcome = JOB_DONE;
				/* let the guest power off by itself */
				if (res->qemu_exit < 0 &&
				    proc_wait(qemu, POWEROFF_GRACE_MS, &st) == 0)
					res->qemu_exit = proc_exit_code(st);
				drain_log(dirfd, &logfd, &pos, log_fd);
				break;
			}
			if (res->qemu_exit >= 0) {
				res->outcome = JOB_DIED;
				break;
			}
		}
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
		poll(p, pidfd >= 0 ? 2 : 1,
		     (int)(deadline - now < 1000 ? deadline - now : 1000));
		while (read(ifd, evbuf, sizeof(evbuf)) > 0)
			;
	}
out:
	if (logfd >= 0)
		close(logfd);
	if (pidfd >= 0)
		close(pidfd);
	if (ifd >= 0)
		close(ifd);
	if (dirfd >= 0)
		close(dirfd);
}
