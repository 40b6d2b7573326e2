/* Following a rescue job from the host: STARTED, job.log, STATUS. */
#ifndef VM_JOBWAIT_H
#define VM_JOBWAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum job_outcome {
	JOB_DONE,		/* STATUS was written: status is valid */
	JOB_BOOT_TIMEOUT,	/* no STARTED within the boot timeout */
	JOB_TIMEOUT,		/* STARTED, but no STATUS within the timeout */
	JOB_DIED,		/* QEMU exited without a STATUS */
	JOB_BAD_STATUS,		/* STATUS is there but unusable: error says
				 * why (-ELOOP a symlink, -EINVAL not a
				 * regular file, -EFBIG too long, -EBADMSG
				 * not a number from 0 to 255) */
	JOB_INTERRUPTED,	/* vm was asked to stop */
	JOB_ERROR,		/* the host side failed (inotify, fds) */
};

struct job_result {
	enum job_outcome outcome;
	int status;		/* the job's exit status, JOB_DONE only */
	int qemu_exit;		/* QEMU's exit code, or -1 if still running */
	int error;		/* -errno for JOB_ERROR */
	bool log_cut;		/* job.log went beyond log_max */
};

/*
 * Watch outdir (the "out" share) while QEMU (pid) runs the job.  New
 * bytes of job.log are copied to log_fd as they arrive (inotify, no
 * polling): its first log_max bytes at most, holes skipped, and job.log
 * itself is cut back to log_max bytes (log_cut) whenever it grows past
 * them.  The boot timeout runs until STARTED appears, the job timeout
 * (0: none) from then on; both and our signals hold while the log is
 * copied, also when log_fd is slow to take it.  Files the guest writes
 * are opened without following symlinks, non-blocking and only when
 * regular.  QEMU is reaped when it exits but never killed here: the
 * caller stops it on any outcome but JOB_DONE with qemu_exit >= 0.
 */
void jobwait_run(pid_t qemu, const char *outdir, unsigned boot_timeout_s,
		 unsigned job_timeout_s, int log_fd, uint64_t log_max,
		 struct job_result *res);

#endif
