/* Child processes: one spawn helper, waits with deadlines, signals. */
#ifndef VM_PROC_H
#define VM_PROC_H

#include <stdbool.h>
#include <signal.h>
#include <sys/types.h>

#include "util/str.h"

struct proc_opts {
	int stdin_fd;		/* -1: /dev/null; PROC_INHERIT: ours */
	int stdout_fd;		/* -1: /dev/null; PROC_INHERIT: ours */
	int stderr_fd;
	const char *cwd;	/* NULL: ours */
	char *const *env_add;	/* NAME=VALUE entries added to ours */
	bool die_with_parent;	/* SIGKILL when vm dies */
	bool new_pgrp;		/* own process group (not sent tty ^C) */
	bool new_session;	/* own session, no controlling terminal */
	const char *exe;	/* program to run; NULL: argv[0] in PATH */
	int keep_fds[2];	/* more fds the child keeps, or -1 */
	int umask;		/* the child's umask, or -1 for ours */
};

#define PROC_INHERIT (-2)
#define PROC_OPTS_INIT { PROC_INHERIT, PROC_INHERIT, PROC_INHERIT, NULL, \
			 NULL, true, false, false, NULL, { -1, -1 }, -1 }

/*
 * Start argv[0] (searched in PATH) with argv: the one way vm starts a
 * program.  Path, environment (ours with env_add applied) and fds are
 * prepared before fork; the child makes only async-signal-safe calls.
 * It has default signal dispositions, an empty signal mask and no fds
 * but 0-2.  Returns 0 and the pid, or -errno (exec failure included:
 * -ENOENT when the program does not exist).
 */
int proc_spawn(char *const argv[], const struct proc_opts *o, pid_t *pid);

/*
 * Wait for pid for at most timeout_ms (<0: no deadline, used only where
 * another deadline bounds the wait).  Returns 0 with the wait status,
 * -ETIMEDOUT (child still running), -EINTR when vm was asked to stop
 * (proc_interrupted() tells which signal), or -errno.
 */
int proc_wait(pid_t pid, int timeout_ms, int *status);

/*
 * SIGTERM, wait up to grace_ms, then SIGKILL and reap.  A child that
 * leads its own process group (new_pgrp, new_session) is ended with its
 * whole group: SIGTERM to the group, up to grace_ms for all of it, then
 * SIGKILL to whatever is left.
 */
void proc_terminate(pid_t pid, int grace_ms);

/* The grace proc_run gives a child (and its group) after SIGTERM. */
#define PROC_GRACE_MS 2000

/* SIGKILL the process group pid leads (new_pgrp) and reap pid. */
void proc_kill_group(pid_t pid);

/*
 * Spawn, wait with a deadline, kill on timeout or interrupt (with its
 * process group when new_pgrp; our signals then go to the group too).
 * Returns the
 * exit code (0..255, 128+N for a signal), or -errno / -ETIMEDOUT / -EINTR.
 */
int proc_run(char *const argv[], const struct proc_opts *o, int timeout_ms);

/* Like proc_run, with the child's stdout collected (capped at 1 MiB). */
int proc_capture(char *const argv[], const struct proc_opts *o,
		 int timeout_ms, struct strbuf *out);
/* The same, keeping up to max bytes of stdout (the rest is dropped). */
int proc_capture_max(char *const argv[], const struct proc_opts *o,
		     int timeout_ms, size_t max, struct strbuf *out);

/*
 * Read fd into out (at most max bytes kept) until end of file, the
 * deadline (proc_now_ms() time) or an interrupt.  Returns 0, -ETIMEDOUT
 * or -EINTR.
 */
int proc_read_until(int fd, long long deadline, size_t max,
		    struct strbuf *out);

/* Turn a wait status into an exit code (128+signal for a signal). */
int proc_exit_code(int status);

/*
 * Install SIGINT/SIGTERM/SIGHUP handlers that record the signal and pass
 * it on to the registered child.  SIGPIPE is ignored.
 */
void proc_signals_init(void);
/* The child that receives forwarded signals (0: none). */
void proc_set_foreground(pid_t pid);
/* The signal that asked vm to stop, or 0. */
int proc_interrupted(void);

/*
 * Mark vm as interrupted by sig, as its handler would: for a process
 * that takes its signals with sigwait (vm serve), so that the work its
 * threads do (a backup) stops as it would on Ctrl-C.
 */
void proc_set_interrupted(int sig);

/*
 * Call fn for each process whose command line can be read, with its
 * pid and its words joined by spaces (at most 1 MiB); fn returns
 * nonzero to stop.  For finding our own QEMUs by what they were told.
 */
void proc_each_cmdline(int (*fn)(pid_t pid, const char *cmdline, void *data),
		       void *data);

/* Milliseconds on the monotonic clock. */
long long proc_now_ms(void);

/*
 * An exclusive flock on path (made 0600 when missing, never through a
 * symlink), another process's meanwhile: deadline 0 tries once
 * (-EBUSY when it is held); else it waits until deadline (proc_now_ms
 * time: -ETIMEDOUT) or an interrupt (-EINTR).  Returns the fd, which
 * holds the lock until it is closed, or -errno.  A file removed by
 * proc_unlock_file while we waited is opened again.
 */
int proc_lock_file(const char *path, long long deadline);

/* Releases proc_lock_file's fd and removes path, still holding it, so
 * that a lock taken for one task leaves no file behind. */
void proc_unlock_file(const char *path, int fd);

#endif
