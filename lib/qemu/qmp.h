/*
 * A small QMP client: the greeting, capabilities negotiation, one
 * command at a time, asynchronous events skipped.  QEMU's JSON is read
 * with json-c; every read and write has a deadline.
 */
#ifndef VM_QMP_H
#define VM_QMP_H

#include <stdbool.h>
#include <json-c/json.h>

#include "util/str.h"

struct qmp {
	int fd;
	struct json_tokener *tok;
	struct strbuf in;	/* bytes read, not yet parsed */
	size_t pos;		/* parsed up to here */
	int events;		/* events skipped so far */
};

#define QMP_INIT { -1, NULL, STRBUF_INIT, 0, 0 }

/* Longest message accepted from QEMU (HMP output can be long). */
#define QMP_MAX_MESSAGE (16u << 20)

/*
 * Connect to the QMP socket at path, read the greeting and leave
 * negotiation mode (qmp_capabilities).  Returns 0, -ETIMEDOUT, -EPROTO
 * (not QMP), -EACCES / -ENOENT / -ECONNREFUSED (nobody there), or -errno;
 * err says which.  Release with qmp_close, after a failure too.
 */
int qmp_connect(struct qmp *q, const char *path, int timeout_ms,
		struct strbuf *err);

/*
 * Connect to a guest agent's socket (qemu-guest-agent through QEMU's
 * virtio-serial port): no greeting, but a guest-sync-delimited, so that
 * what an earlier client left half said is dropped on both sides.  Then
 * qmp_execute runs the agent's commands.  Returns as qmp_connect does;
 * -ETIMEDOUT when no agent answers.
 */
int qmp_agent_connect(struct qmp *q, const char *path, int timeout_ms,
		      struct strbuf *err);

/*
 * Whether the guest has opened the agent's port (QEMU's query-chardev
 * on q, a QMP connection): a guest agent may run, not that it answers.
 */
bool qmp_agent_open(struct qmp *q, int timeout_ms);

/* The same on an fd already connected (taken over; tests use this). */
int qmp_attach(struct qmp *q, int fd, int timeout_ms, struct strbuf *err);

/*
 * Run command with arguments (may be NULL; not taken over).  With fd >=
 * 0 the descriptor goes along in SCM_RIGHTS (for getfd).  Returns 0 and
 * the "return" value in *ret (caller puts it; ret may be NULL),
 * -EREMOTEIO with QEMU's error text in err, -ETIMEDOUT, -EPIPE when QEMU
 * went away, or -EPROTO.
 */
int qmp_execute(struct qmp *q, const char *command, struct json_object *args,
		int fd, int timeout_ms, struct json_object **ret,
		struct strbuf *err);

/*
 * Send one command given as JSON text (checked to be a JSON object with
 * "execute") and give back QEMU's whole reply object ({"return": ...} or
 * {"error": ...}) in *reply (caller puts).  Returns 0 or -EINVAL (not a
 * command) / -ETIMEDOUT / -EPIPE / -EPROTO.
 */
int qmp_execute_json(struct qmp *q, const char *json, int timeout_ms,
		     struct json_object **reply, struct strbuf *err);

/* An HMP command through human-monitor-command; *out gets its text. */
int qmp_hmp(struct qmp *q, const char *cmdline, int timeout_ms,
	    struct strbuf *out, struct strbuf *err);

void qmp_close(struct qmp *q);

/*
 * A copy of o's member key when it is a string (caller frees), else
 * NULL: for JSON that vm reads from QEMU, qemu-img and its own files.
 */
char *json_str_dup(struct json_object *o, const char *key);

/* Whether o's member key is there and true. */
bool json_is_true(struct json_object *o, const char *key);

/* The object of array arr whose member key is the string value, or NULL
 * (also when arr is NULL or no array). */
struct json_object *json_member_of(struct json_object *arr, const char *key,
				   const char *value);

#endif
