/*
 * The record of a running VM: HOSTDIR/run.json, written by the vm that
 * runs QEMU (a foreground @run, or the supervisor @start leaves) and
 * read by @status, @stop, @kill, @monitor and @console without the lock.
 */
#ifndef VM_RUNSTATE_H
#define VM_RUNSTATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "util/str.h"

struct json_object;

#define RUNSTATE_FILE "run.json"
/* WORKDIR/saved-state: RAM and devices, left by @stop --save */
#define SAVED_STATE "saved-state"
/* WORKDIR/saved-state.disks: what the disks were when it was saved */
#define SAVED_DISKS SAVED_STATE ".disks"

struct runstate {
	char *state;		/* starting, running, stopping */
	pid_t pid;		/* the vm that owns QEMU */
	unsigned long long pid_start;	/* its start time (/proc, ticks) */
	pid_t qemu_pid;
	unsigned long long qemu_start;
	time_t started;		/* wall clock, when QEMU started */
	bool background;	/* left by @start */
	char *accel;
	unsigned cores, sockets;
	uint64_t memory;	/* bytes */
	struct strvec forwards;	/* QEMU rules, hostfwd=tcp::5555-:22 */
	unsigned ssh_port;	/* host port forwarded to guest 22, or 0 */
	char *spice;		/* host:port, or NULL when headless */
	char *workdir;
	char *console;		/* console socket to attach to */
	char *monitor;		/* QEMU's QMP socket: its owner's */
	char *control;		/* vm's control socket (qemu/control.h):
				 * everyone's way to power, pause, ask */
	char *console_log;
};

#define RUNSTATE_INIT { .forwards = STRVEC_INIT }

void runstate_release(struct runstate *s);

/* The record's facts as fields of the JSON object o (see docs/json.md). */
void runstate_report(const struct runstate *s, struct json_object *o);

/* Start time of pid from /proc/PID/stat (ticks since boot); 0 when it
 * is gone or a zombie. */
unsigned long long runstate_proc_start(pid_t pid);

/* Write s to HOSTDIR/run.json atomically (mode 0644). */
int runstate_write(const char *hostdir, const struct runstate *s);

/*
 * Read HOSTDIR/run.json.  Returns 0, -ENOENT when there is none, or
 * -EINVAL when it does not parse (err says why).  Says nothing about
 * whether the VM still runs: see runstate_alive.
 */
int runstate_read(const char *hostdir, struct runstate *s,
		  struct strbuf *err);

/*
 * True when the owner and its QEMU are the processes the file names:
 * each alive with the start time recorded, and the QEMU a qemu-system-*
 * named vm-NAME.  A record that fails is never a reason to signal.
 */
bool runstate_alive(const struct runstate *s);

/*
 * HOSTDIR/run.json that names no running VM: 1 when it is stale (its
 * pids are taken by processes that are not the ones it recorded, or
 * not a QEMU vm started), 0 when there is none, it is alive or its
 * processes are gone (a stopped VM's leftover).  With remove (a vm that
 * holds the VM's lock, so no run of it is writing the record) any record
 * that is not alive is removed, one that does not parse too.
 */
int runstate_stale(const char *hostdir, bool remove);

/* Remove HOSTDIR/run.json if it is the record of pid. */
void runstate_remove(const char *hostdir, pid_t pid);

/*
 * Read the record and tell whether that VM runs now: 1 (s filled), 0
 * (not running; s released), or -errno.
 */
int runstate_running(const char *hostdir, struct runstate *s,
		     struct strbuf *err);

/*
 * Wait up to timeout_ms for the process pid (started at start) to be
 * gone; a child of ours is reaped.  Returns 0, -ETIMEDOUT or -EINTR.
 */
int runstate_wait_gone(pid_t pid, unsigned long long start, int timeout_ms);
/*
 * The same, but an interrupt of vm does not end it: for the bounded
 * waits of stopping what vm started (after SIGTERM or SIGKILL), which
 * must be over before vm says it is stopped.
 */
int runstate_wait_killed(pid_t pid, unsigned long long start, int timeout_ms);

/*
 * After its QEMU ended, the vm that ran it cleans up and lets go of the
 * VM's lock: give it this long.
 */
#define RUNSTATE_OWNER_GRACE_MS 10000
/*
 * The record in hostdir is of a vm whose QEMU has ended: wait up to
 * timeout_ms for that vm to be gone too.  0 when it is gone, -EAGAIN
 * when no such vm is recorded (none, or its QEMU runs), -ETIMEDOUT,
 * -EINTR, or another -errno of reading the record.
 */
int runstate_wait_ending(const char *hostdir, int timeout_ms);

/* The QEMU s records runs (its owner may be gone): pid, start time, name. */
bool runstate_qemu_alive(const struct runstate *s);

/*
 * Connect to the running VM's control socket (QEMU's monitor for a
 * record written before there was one), as qmp_connect does.
 */
struct qmp;
int runstate_control(const struct runstate *s, struct qmp *q,
		     int timeout_ms, struct strbuf *err);

/* Rewrite the record's state (e.g. "stopping"), if it is still pid's. */
void runstate_set_state(const char *hostdir, pid_t pid, const char *state);

#endif
