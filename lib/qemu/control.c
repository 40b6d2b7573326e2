#include "qemu/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qemu/bitmap.h"
#include "qemu/runstate.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/proc.h"

/* how long QEMU may take over one command passed on */
#define FORWARD_TIMEOUT_MS 10000
/* and a client to take its answer */
#define REPLY_TIMEOUT_MS 2000
#define SAVE_TIMEOUT_MS (600 * 1000)

/* Commands that can neither name a host file nor start a program. */
static const char *const passes[] = {
	"qmp_capabilities", "system_powerdown", "system_reset",
	"system_wakeup", "stop", "cont", "quit", NULL
};

/* HMP's words for the same (info shows; it changes nothing). */
static const char *const hmp_passes[] = {
	"info", "help", "system_powerdown", "system_reset", "system_wakeup",
	"stop", "cont", "c", "quit", "q", NULL
};

static bool listed(const char *const *list, const char *word)
{
	for (; *list; list++)
		if (!strcmp(*list, word))
			return true;
	return false;
}

/* The HMP command line's first word passes. */
static bool hmp_passes_line(struct json_object *args, struct strbuf *word)
{
	struct json_object *v;
	const char *line, *end;

	if (!args || !json_object_object_get_ex(args, "command-line", &v) ||
	    !json_object_is_type(v, json_type_string))
		return false;
	line = json_object_get_string(v);
	line += strspn(line, " \t");
	end = line + strcspn(line, " \t");
	strbuf_add(word, line, (size_t)(end - line));
	return listed(hmp_passes, word->buf);
}

const char *control_refusal(struct json_object *cmd, struct strbuf *why)
{
	struct json_object *v, *args = NULL;
	struct strbuf word = STRBUF_INIT;
	const char *name;

	strbuf_reset(why);
	if (!json_object_is_type(cmd, json_type_object) ||
	    !json_object_object_get_ex(cmd, "execute", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		strbuf_addstr(why, "not a QMP command (want {\"execute\": \"NAME\", ...})");
		return why->buf;
	}
	name = json_object_get_string(v);
	if (json_object_object_get_ex(cmd, "arguments", &args) &&
	    !json_object_is_type(args, json_type_object)) {
		strbuf_addf(why, "%s: arguments must be an object", name);
		return why->buf;
	}
	if (listed(passes, name) || !strncmp(name, "query-", 6) ||
	    !strcmp(name, CONTROL_SAVE) || !strcmp(name, LIVE_BEGIN) ||
	    !strcmp(name, LIVE_END))
		return NULL;
	if (!strcmp(name, "human-monitor-command")) {
		if (hmp_passes_line(args, &word)) {
			strbuf_release(&word);
			return NULL;
		}
		strbuf_addf(why, "the control socket refuses HMP '%s': only info, help, system_powerdown, system_reset, stop, cont and quit pass (the monitor itself is its owner's)",
			    word.buf);
		strbuf_release(&word);
		return why->buf;
	}
	strbuf_addf(why, "the control socket refuses '%s': only power, pause and resume, reset and query-* pass (the monitor itself is its owner's)",
		    name);
	return why->buf;
}

/*
 * Migrate the running state into dir/SAVED_STATE through an fd handed
 * over QMP (getfd), no shell: QEMU pauses the guest when done.  The file
 * is complete (synced, renamed into place) or absent.
 */
static int save_state(struct qmp *q, const char *dir, int timeout_ms,
		      struct strbuf *err)
{
	char *path = xasprintf("%s/%s", dir, SAVED_STATE);
	char *tmp = xasprintf("%s.tmp", path);
	struct json_object *args, *ret = NULL, *v;
	long long deadline = proc_now_ms() + timeout_ms;
	int fd, r;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", tmp, strerror(-r));
		goto out;
	}
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("vmsave"));
	r = qmp_execute(q, "getfd", args, fd, FORWARD_TIMEOUT_MS, NULL, err);
	json_object_put(args);
	close(fd);
	if (r)
		goto out;
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:vmsave"));
	r = qmp_execute(q, "migrate", args, -1, FORWARD_TIMEOUT_MS, NULL, err);
	json_object_put(args);
	while (!r) {
		const char *st = "";
		struct timespec ts = { 0, 200 * 1000000L };

		r = qmp_execute(q, "query-migrate", NULL, -1,
				FORWARD_TIMEOUT_MS, &ret, err);
		if (r)
			break;
		if (json_object_object_get_ex(ret, "status", &v))
			st = json_object_get_string(v);
		if (!strcmp(st, "completed")) {
			json_object_put(ret);
			break;
		}
		if (!strcmp(st, "failed") || !strcmp(st, "cancelled")) {
			strbuf_addstr(err, json_object_object_get_ex(
					   ret, "error-desc", &v) ?
					   json_object_get_string(v) :
					   "migration failed");
			r = -EIO;
		} else if (proc_now_ms() > deadline) {
			strbuf_addstr(err, "saving took too long");
			r = -ETIMEDOUT;
		}
		json_object_put(ret);
		ret = NULL;
		if (!r)
			nanosleep(&ts, NULL);
	}
	if (!r) {
		fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		r = fd >= 0 && fsync(fd) == 0 ? 0 : -errno;
		if (fd >= 0)
			close(fd);
	}
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (!r)
		fs_fsync_dir(dir);
out:
	if (r)
		unlink(tmp);
	free(path);
	free(tmp);
	return r;
}

/*
 * The state saved and QEMU ended, as one step: a guest that ran on after
 * its state was saved would have that RAM resumed later over disks it
 * has written since.  On failure the guest runs on and no state stays.
 */
static int save_and_quit(struct qmp *q, const char *dir, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	char *path;
	int r = save_state(q, dir, SAVE_TIMEOUT_MS, err);

	if (!r) {
		r = qmp_execute(q, "quit", NULL, -1, FORWARD_TIMEOUT_MS, NULL,
				err);
		if (r == -EPIPE)
			return 0;	/* QEMU went as it was asked to */
		if (!r)
			return 0;
		path = xasprintf("%s/%s", dir, SAVED_STATE);
		unlink(path);
		free(path);
	}
	qmp_execute(q, "cont", NULL, -1, FORWARD_TIMEOUT_MS, NULL, &e);
	strbuf_release(&e);
	return r;
}

int control_open(struct control *c, const char *path, mode_t mode,
		 gid_t gid, const char *qmp_sock, const char *save_dir)
{
	memset(c, 0, sizeof(*c));
	c->live = (struct live)LIVE_INIT;
	c->live_holder = -1;
	c->path = xstrdup(path);
	c->qmp_sock = xstrdup(qmp_sock);
	c->save_dir = xstrdup(save_dir);
	c->listen = fs_unix_listen(path, mode, gid);
	if (c->listen < 0) {
		int r = c->listen;

		c->listen = -1;
		return r;
	}
	return 0;
}

/*
 * Thaw what a live backup froze: through QEMU while it runs (a failure
 * keeps the overlays, for a later try), with qemu-img once it has ended
 * (never beside a running QEMU).  0, or -errno when still frozen.
 */
static int live_end(struct control *c)
{
	struct strbuf err = STRBUF_INIT;
	struct qmp q = QMP_INIT;
	int r;

	c->live_holder = -1;
	if (!c->live.frozen) {
		free(c->live.keep);
		c->live.keep = NULL;
		return 0;
	}
	if (!c->qemu_gone) {
		r = qmp_connect(&q, c->qmp_sock, FORWARD_TIMEOUT_MS, &err);
		if (!r)
			r = live_thaw(&c->live, &q, &err);
		qmp_close(&q);
	} else {
		r = live_recover(c->live.workdir, &err);
		if (r >= 0) {
			live_forget(&c->live);
			r = 0;
		}
	}
	if (r)
		log_warn("the disks a live backup froze are not committed back yet: %s",
			 err.buf);
	/* a later try of the thaw keeps no bitmap: nothing vouches for it */
	free(c->live.keep);
	c->live.keep = NULL;
	strbuf_release(&err);
	return r;
}

static void drop_client(struct control *c, int i)
{
	if (c->clients[i].fd == c->live_holder)
		live_end(c);
	close(c->clients[i].fd);
	json_tokener_free(c->clients[i].tok);
	c->clients[i] = c->clients[--c->nclients];
}

/* One message to a client, whole, within REPLY_TIMEOUT_MS. */
static int send_message(int fd, struct json_object *o)
{
	long long deadline = proc_now_ms() + REPLY_TIMEOUT_MS;
	size_t len;
	const char *text = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN, &len);
	struct strbuf sb = STRBUF_INIT;
	size_t off = 0;
	int r = 0;

	strbuf_add(&sb, text, len);
	strbuf_add(&sb, "\r\n", 2);
	while (off < sb.len) {
		struct pollfd p = { fd, POLLOUT, 0 };
		long long left = deadline - proc_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		n = send(fd, sb.buf + off, sb.len - off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	strbuf_release(&sb);
	return r;
}

static struct json_object *error_reply(const char *class, const char *desc)
{
	struct json_object *e = json_object_new_object();
	struct json_object *o = json_object_new_object();

	json_object_object_add(e, "class", json_object_new_string(class));
	json_object_object_add(e, "desc", json_object_new_string(desc));
	json_object_object_add(o, "error", e);
	return o;
}

/* The uid at the other end of fd, or (uid_t)-1. */
static uid_t peer_uid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return (uid_t)-1;
	return cr.uid;
}

static void accept_client(struct control *c)
{
	int fd = accept4(c->listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct json_object *greet;

	if (fd < 0)
		return;
	if (c->nclients == CONTROL_MAX_CLIENTS) {
		/* the longest idle goes: clients that hold on block no one
		 * (but the one a live backup waits for) */
		int i, old = c->clients[0].fd == c->live_holder ? 1 : 0;

		for (i = old + 1; i < c->nclients; i++)
			if (c->clients[i].fd != c->live_holder &&
			    c->clients[i].since < c->clients[old].since)
				old = i;
		drop_client(c, old);
	}
	greet = json_tokener_parse("{\"QMP\": {\"version\": {}, \"capabilities\": []},"
				   " \"vm\": \"control\"}");
	if (send_message(fd, greet)) {
		json_object_put(greet);
		close(fd);
		return;
	}
	json_object_put(greet);
	c->clients[c->nclients].fd = fd;
	c->clients[c->nclients].tok = json_tokener_new();
	c->clients[c->nclients].fed = 0;
	c->clients[c->nclients].since = proc_now_ms();
	c->clients[c->nclients].uid = peer_uid(fd);
	c->nclients++;
}

/* Pass a command that may pass to QEMU's monitor; QEMU's reply. */
static struct json_object *forward(struct control *c, const char *name,
				   struct json_object *args)
{
	struct strbuf err = STRBUF_INIT;
	struct json_object *ret = NULL, *o;
	struct qmp q = QMP_INIT;
	bool save = !strcmp(name, CONTROL_SAVE);
	int r;

	r = qmp_connect(&q, c->qmp_sock, FORWARD_TIMEOUT_MS, &err);
	if (!r && save)
		r = save_and_quit(&q, c->save_dir, &err);
	else if (!r)
		r = qmp_execute(&q, name, args, -1, FORWARD_TIMEOUT_MS, &ret,
				&err);
	qmp_close(&q);
	if (!r) {
		o = json_object_new_object();
		json_object_object_add(o, "return",
				       ret ? ret : json_object_new_object());
	} else if (r == -EPIPE && (!strcmp(name, "quit") || save)) {
		/* QEMU went as it was asked to */
		o = json_tokener_parse("{\"return\": {}}");
	} else {
		o = error_reply(r == -EREMOTEIO ? "GenericError" :
				"VmUnreachable", err.buf);
	}
	strbuf_release(&err);
	return o;
}

/*
 * The optional bitmap name args holds as key into *out (replacing it);
 * false when it is not a name of ours.
 */
static bool bitmap_arg(struct json_object *args, const char *key, char **out)
{
	struct json_object *v;

	free(*out);
	*out = NULL;
	if (!args || !json_object_object_get_ex(args, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_string) ||
	    !bitmap_name_ok(json_object_get_string(v)))
		return false;
	*out = xstrdup(json_object_get_string(v));
	return true;
}

/* The begin reply's bitmaps: per disk, its export or why none. */
static void begin_bitmaps(const struct live *l, struct json_object *ret)
{
	struct json_object *arr = json_object_new_array();
	int i;

	for (i = 0; i < l->n; i++) {
		struct json_object *o = json_object_new_object();
		const char *slash = strrchr(l->d[i].path, '/');

		json_object_object_add(o, "file", json_object_new_string(
						       slash ? slash + 1 : l->d[i].path));
		json_object_object_add(o, "export", l->d[i].export ?
				       json_object_new_string(l->d[i].export) : NULL);
		json_object_object_add(o, "why", l->d[i].bm_why ?
				       json_object_new_string(l->d[i].bm_why) : NULL);
		json_object_array_add(arr, o);
	}
	json_object_object_add(ret, "bitmaps", arr);
	if (l->serving) {
		char *sock = xasprintf("%s/%s", l->workdir, LIVE_NBD);

		json_object_object_add(ret, "nbd", json_object_new_string(sock));
		free(sock);
	}
}

/*
 * vm-live-begin and vm-live-end from client i: only the VM's owner (the
 * uid vm runs as) may freeze its disks, one live backup at a time, and
 * only the client that froze them thaws them (or its going away does).
 */
static struct json_object *live_request(struct control *c, int i,
					const char *name,
					struct json_object *args)
{
	struct strbuf err = STRBUF_INIT;
	struct json_object *o, *ret;
	struct qmp q = QMP_INIT;
	bool begin = !strcmp(name, LIVE_BEGIN);
	char *vars;
	int r;

	if (c->clients[i].uid != geteuid())
		return error_reply(CONTROL_REFUSED,
				   "only the VM's owner may back it up live");
	if (!c->live.n)
		return error_reply(CONTROL_REFUSED,
				   "this VM has no disks QEMU writes");
	if (begin && c->live_holder >= 0)
		return error_reply(CONTROL_REFUSED,
				   "a live backup of it is under way");
	/* an earlier one whose thaw failed: try it again first */
	if (begin && c->live.frozen && live_end(c))
		return error_reply("VmUnreachable",
				   "an earlier live backup's overlays could not be committed back yet");
	if (!begin && c->live_holder != c->clients[i].fd)
		return error_reply(CONTROL_REFUSED,
				   "no live backup of yours is under way");
	/* done reading: thawed as when the client goes (a failure is for
	 * the next begin, or QEMU's end, to try again); its snapshot made,
	 * the bitmaps count from it */
	if (!begin && args && !bitmap_arg(args, "keep", &c->live.keep))
		return error_reply(CONTROL_REFUSED, "not a bitmap name of vm's");
	if (!begin)
		return live_end(c) ?
			error_reply("VmUnreachable",
				    "the overlays could not be committed back yet; vm tries again") :
			json_tokener_parse("{\"return\": {}}");
	r = qmp_connect(&q, c->qmp_sock, FORWARD_TIMEOUT_MS, &err);
	if (!r) {
		bool required = c->live.agent_required;

		/* the client's settings may ask for the agent too */
		if (args && json_is_true(args, "require-agent"))
			c->live.agent_required = true;
		if (!bitmap_arg(args, "since", &c->live.since)) {
			strbuf_addstr(&err, "not a bitmap name of vm's");
			r = -EINVAL;
		}
		if (!r)
			r = live_freeze(&c->live, &q, &err);
		c->live.agent_required = required;
		if (!r)
			c->live_holder = c->clients[i].fd;
	}
	qmp_close(&q);
	if (r) {
		o = error_reply(r == -EREMOTEIO ? "GenericError" :
				"VmUnreachable", err.buf);
		strbuf_release(&err);
		return o;
	}
	ret = json_object_new_object();
	vars = c->live.vars ? xasprintf("%s/%s", c->live.workdir, LIVE_VARS) :
			      NULL;
	json_object_object_add(ret, "paused-ms",
			       json_object_new_int64(c->live.paused_ms));
	json_object_object_add(ret, "fs-frozen-ms",
			       json_object_new_int64(c->live.fs_frozen_ms));
	json_object_object_add(ret, "taken",
			       json_object_new_string(c->live.taken));
	json_object_object_add(ret, "why", c->live.why.len ?
			       json_object_new_string(c->live.why.buf) : NULL);
	json_object_object_add(ret, "efivars", vars ?
			       json_object_new_string(vars) : NULL);
	free(vars);
	begin_bitmaps(&c->live, ret);
	o = json_object_new_object();
	json_object_object_add(o, "return", ret);
	strbuf_release(&err);
	return o;
}

/* One request from client i; false when the client must go. */
static bool serve(struct control *c, int i, struct json_object *cmd)
{
	struct strbuf why = STRBUF_INIT;
	struct json_object *reply, *v, *args = NULL;
	const char *name;
	bool ok;

	if (control_refusal(cmd, &why)) {
		reply = error_reply(CONTROL_REFUSED, why.buf);
	} else {
		json_object_object_get_ex(cmd, "execute", &v);
		name = json_object_get_string(v);
		json_object_object_get_ex(cmd, "arguments", &args);
		if (!strcmp(name, "qmp_capabilities"))
			reply = json_tokener_parse("{\"return\": {}}");
		else if (!strcmp(name, LIVE_BEGIN) ||
			 !strcmp(name, LIVE_END))
			reply = live_request(c, i, name, args);
		else
			reply = forward(c, name, args);
	}
	if (json_object_object_get_ex(cmd, "id", &v))
		json_object_object_add(reply, "id", json_object_get(v));
	ok = !send_message(c->clients[i].fd, reply);
	json_object_put(reply);
	strbuf_release(&why);
	c->clients[i].since = proc_now_ms();
	return ok;
}

/* What client i sent: each whole request served.  False: it must go. */
static bool from_client(struct control *c, int i)
{
	struct control_client *cl = &c->clients[i];
	char buf[4096];
	ssize_t n = read(cl->fd, buf, sizeof(buf));
	size_t off = 0;
	int served = 0;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	while (off < (size_t)n) {
		struct json_object *o;
		enum json_tokener_error e;

		o = json_tokener_parse_ex(cl->tok, buf + off, (int)(n - off));
		e = json_tokener_get_error(cl->tok);
		if (!o && e == json_tokener_continue) {
			/* json-c keeps what it has seen: bound it */
			cl->fed += (size_t)n - off;
			return cl->fed <= CONTROL_MAX_REQUEST;
		}
		if (!o && e != json_tokener_success)
			return false;	/* not JSON: not a QMP client */
		off += json_tokener_get_parse_end(cl->tok);
		json_tokener_reset(cl->tok);
		cl->fed = 0;
		/* one client may not hold the others off with a queue */
		if (o && (++served > CONTROL_MAX_QUEUED || !serve(c, i, o))) {
			json_object_put(o);
			return false;
		}
		json_object_put(o);
		/* whitespace between messages */
		while (off < (size_t)n && strchr(" \t\r\n", buf[off]))
			off++;
	}
	return true;
}

int control_pollfds(const struct control *c, struct pollfd *p)
{
	int n = 0, i;

	if (c->listen < 0)
		return 0;
	p[n].fd = c->listen;
	p[n].events = POLLIN;
	p[n++].revents = 0;
	for (i = 0; i < c->nclients; i++) {
		p[n].fd = c->clients[i].fd;
		p[n].events = POLLIN;
		p[n++].revents = 0;
	}
	return n;
}

void control_handle(struct control *c, const struct pollfd *p, int n)
{
	long long now = proc_now_ms();
	int k, i;

	for (k = 0; k < n; k++) {
		if (!p[k].revents)
			continue;
		if (p[k].fd == c->listen) {
			accept_client(c);
			continue;
		}
		for (i = 0; i < c->nclients; i++)
			if (c->clients[i].fd == p[k].fd) {
				if (!from_client(c, i))
					drop_client(c, i);
				break;
			}
	}
	for (i = 0; i < c->nclients; i++)
		if (now - c->clients[i].since > CONTROL_IDLE_MS &&
		    c->clients[i].fd != c->live_holder)
			drop_client(c, i--);
}

void control_set_live(struct control *c, const char *workdir,
		      const char *vars, const char *agent, bool required)
{
	free(c->live.workdir);
	free(c->live.vars);
	free(c->live.agent);
	c->live.workdir = xstrdup(workdir);
	c->live.vars = vars ? xstrdup(vars) : NULL;
	c->live.agent = agent ? xstrdup(agent) : NULL;
	c->live.agent_required = required;
}

/* QEMU has ended: serve the client a live backup is for until it is done. */
static void wait_holder(struct control *c)
{
	long long deadline = proc_now_ms() + LIVE_HOLD_MS;
	int i;

	while (c->live_holder >= 0 && proc_now_ms() < deadline) {
		struct pollfd p;

		for (i = 0; i < c->nclients; i++)
			if (c->clients[i].fd == c->live_holder)
				break;
		if (i == c->nclients)
			break;
		p.fd = c->live_holder;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, 1000) > 0 && !from_client(c, i))
			drop_client(c, i);
	}
}

void control_close(struct control *c)
{
	c->qemu_gone = true;
	wait_holder(c);
	while (c->nclients)
		drop_client(c, 0);
	/* (a holder dropped above thawed it; this is for none) */
	live_end(c);
	live_release(&c->live);
	if (c->listen >= 0) {
		close(c->listen);
		unlink(c->path);
	}
	c->listen = -1;
	free(c->path);
	free(c->qmp_sock);
	free(c->save_dir);
	c->path = c->qmp_sock = c->save_dir = NULL;
}
