/*
 * A VM's control socket: what vm serves to those who may control a VM
 * (its owner and its control_group) in place of QEMU's own monitor.  It
 * speaks QMP (a greeting, qmp_capabilities, one command per message) and
 * lets through only commands that cannot name a host file or start a
 * program: power, pause and resume, reset, query-*, HMP's info; and
 * vm-save, which vm carries out itself into the VM's own WORKDIR.  Those
 * go to QEMU through a monitor only vm uses.  libvirt draws the same
 * line for its read-only and unprivileged clients.
 */
#ifndef VM_CONTROL_H
#define VM_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "qemu/live.h"
#include "qemu/qmp.h"
#include "util/str.h"

/* one more makes the longest idle one go */
#define CONTROL_MAX_CLIENTS 8
/* a request bigger than this is not a control request */
#define CONTROL_MAX_REQUEST (64u << 10)
/* requests one read may bring; a client that queues more is let go */
#define CONTROL_MAX_QUEUED 4
/* a client that sends no whole request in this long is let go */
#define CONTROL_IDLE_MS 60000
/* the command that saves the running state and ends QEMU, as one step
 * (migrated into WORKDIR/saved-state through a descriptor, then quit; on
 * failure the guest runs on) */
#define CONTROL_SAVE "vm-save"
/* and LIVE_BEGIN, LIVE_END (qemu/live.h): a live backup's point in
 * time, for the VM's owner alone */
/* the error class of a refusal, so clients can tell it from QEMU's */
#define CONTROL_REFUSED "VmRefused"

struct control_client {
	int fd;
	struct json_tokener *tok;
	size_t fed;		/* bytes of the request being read */
	long long since;	/* when it connected or last asked */
	uid_t uid;		/* who it is */
};

struct control {
	int listen;
	char *path;
	char *qmp_sock;		/* QEMU's monitor that vm alone uses */
	char *save_dir;		/* where CONTROL_SAVE writes SAVED_STATE */
	struct control_client clients[CONTROL_MAX_CLIENTS];
	int nclients;
	struct live live;	/* the disks a live backup freezes */
	int live_holder;	/* the client that froze them, or -1 */
	bool qemu_gone;		/* QEMU has ended: thaw offline */
};

#define CONTROL_INIT { .listen = -1, .live = LIVE_INIT, .live_holder = -1 }

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
 * Call it on every turn of the loop.  It blocks while QEMU answers what
 * it was passed (up to 10 s a request, CONTROL_MAX_QUEUED a client a
 * turn; a save up to 600 s), and up to 2 s for a client to take a
 * reply; meanwhile the owner's @stop and @status ask QEMU's monitor.
 */
void control_handle(struct control *c, const struct pollfd *p, int n);

/*
 * What a live backup freezes: the disks QEMU writes (live_add_disk on
 * c->live), their WORKDIR, the variables' file and the guest agent's
 * socket (NULL: none), and whether the agent must freeze the guest.
 */
void control_set_live(struct control *c, const char *workdir,
		      const char *vars, const char *agent, bool required);

/*
 * Call once QEMU has ended.  A live backup still reading the frozen
 * disks is waited for (up to LIVE_HOLD_MS: until it says it is done or
 * goes away), then what the guest wrote into the overlays is committed
 * with qemu-img: never under a reader, never beside a running QEMU.
 */
void control_close(struct control *c);

/*
 * NULL when cmd (a QMP command object) may pass to QEMU, else a line
 * saying why not.  The policy, apart for the tests.
 */
const char *control_refusal(struct json_object *cmd, struct strbuf *why);

#endif
