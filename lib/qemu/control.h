/*
 * A VM's control socket: what vm serves to those who may control a VM
 * (its owner and its control_group) in place of QEMU's own monitor.  It
 * speaks QMP (a greeting, qmp_capabilities, one command per message) and
 * lets through only commands that cannot name a host file or start a
 * program: power, pause and resume, reset, query-*, HMP's info.  Those
 * go to QEMU through a monitor only vm uses.  libvirt draws the same
 * line for its read-only and unprivileged clients.
 */
#ifndef VM_CONTROL_H
#define VM_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "qemu/qmp.h"
#include "util/str.h"

/* one more makes the longest idle one go */
#define CONTROL_MAX_CLIENTS 8
/* a request bigger than this is not a control request */
#define CONTROL_MAX_REQUEST (64u << 10)
/* a client that sends no whole request in this long is let go */
#define CONTROL_IDLE_MS 60000
/* the command that saves the running state (see qmp_save_state) */
#define CONTROL_SAVE "vm-save"
/* the error class of a refusal, so clients can tell it from QEMU's */
#define CONTROL_REFUSED "VmRefused"

struct control_client {
	int fd;
	struct json_tokener *tok;
	size_t fed;		/* bytes of the request being read */
	long long since;	/* when it connected or last asked */
};

struct control {
	int listen;
	char *path;
	char *qmp_sock;		/* QEMU's monitor that vm alone uses */
	char *save_dir;		/* where CONTROL_SAVE writes SAVED_STATE */
	struct control_client clients[CONTROL_MAX_CLIENTS];
	int nclients;
};

#define CONTROL_INIT { .listen = -1 }

/*
 * Serve path (mode, group gid unless (gid_t)-1), passing what is allowed
 * to the QMP socket qmp_sock; CONTROL_SAVE saves into save_dir.
 * Returns 0 or -errno.  Release with control_close, after a failure too.
 */
int control_open(struct control *c, const char *path, mode_t mode,
		 gid_t gid, const char *qmp_sock, const char *save_dir);

/* The fds to poll (at most 1 + CONTROL_MAX_CLIENTS); returns the count. */
int control_pollfds(const struct control *c, struct pollfd *p);

/*
 * Serve what the polled fds are ready for, and let idle clients go.
 * Call it on every turn of the loop: it blocks only while QEMU answers.
 */
void control_handle(struct control *c, const struct pollfd *p, int n);

void control_close(struct control *c);

/*
 * NULL when cmd (a QMP command object) may pass to QEMU, else a line
 * saying why not.  The policy, apart for the tests.
 */
const char *control_refusal(struct json_object *cmd, struct strbuf *why);

/*
 * Migrate the running state into dir/SAVED_STATE through an fd handed
 * over QMP (getfd), no shell: QEMU pauses the guest when done.  The file
 * is complete (synced, renamed into place) or absent.  Returns 0 or
 * -errno with err.
 */
int qmp_save_state(struct qmp *q, const char *dir, int timeout_ms,
		   struct strbuf *err);

#endif
