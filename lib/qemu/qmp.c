#include "qemu/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/proc.h"

static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		long long left = deadline - proc_now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			return 0;
	}
}

static int send_all(struct qmp *q, const char *buf, size_t len, int pass_fd,
		    long long deadline)
{
	while (len) {
		struct iovec iov = { (void *)(uintptr_t)buf, len };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct msghdr m;
		ssize_t n;
		int r;

		memset(&m, 0, sizeof(m));
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		if (pass_fd >= 0) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			m.msg_control = ctl.buf;
			m.msg_controllen = sizeof(ctl.buf);
			c = CMSG_FIRSTHDR(&m);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
		}
		r = wait_fd(q->fd, POLLOUT, deadline);
		if (r)
			return r;
		n = sendmsg(q->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? -EPIPE : -errno;
		}
		pass_fd = -1;	/* sent with the first byte */
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The next JSON object QEMU sent, whole. */
static int read_object(struct qmp *q, long long deadline,
		       struct json_object **obj)
{
	size_t fed = 0;

	*obj = NULL;
	for (;;) {
		char buf[65536];
		ssize_t n;
		int r;

		while (q->pos < q->in.len) {
			size_t len = q->in.len - q->pos;
			struct json_object *o;
			enum json_tokener_error e;

			o = json_tokener_parse_ex(q->tok, q->in.buf + q->pos,
						  (int)len);
			e = json_tokener_get_error(q->tok);
			if (o) {
				q->pos += json_tokener_get_parse_end(q->tok);
				json_tokener_reset(q->tok);
				if (!json_object_is_type(o, json_type_object)) {
					json_object_put(o);
					return -EPROTO;
				}
				*obj = o;
				return 0;
			}
			if (e != json_tokener_continue)
				return -EPROTO;
			fed += len;
			q->pos = q->in.len;
		}
		strbuf_reset(&q->in);
		q->pos = 0;
		if (fed > QMP_MAX_MESSAGE)
			return -EPROTO;
		r = wait_fd(q->fd, POLLIN, deadline);
		if (r)
			return r;
		n = read(q->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -EPIPE : -errno;
		if (n == 0)
			return -EPIPE;
		strbuf_add(&q->in, buf, (size_t)n);
	}
}

/* The reply to the command just sent; events on the way are skipped. */
static int read_reply(struct qmp *q, long long deadline,
		      struct json_object **reply)
{
	for (;;) {
		struct json_object *o, *v;
		int r = read_object(q, deadline, &o);

		if (r)
			return r;
		if (json_object_object_get_ex(o, "return", &v) ||
		    json_object_object_get_ex(o, "error", &v)) {
			*reply = o;
			return 0;
		}
		if (json_object_object_get_ex(o, "event", &v)) {
			q->events++;
			json_object_put(o);
			continue;
		}
		json_object_put(o);
		return -EPROTO;
	}
}

static void say(struct strbuf *err, int r, const char *what)
{
	strbuf_addf(err, "%s: %s", what,
		    r == -ETIMEDOUT ? "QEMU did not answer in time" :
		    r == -EPIPE ? "QEMU closed the connection" :
		    r == -EPROTO ? "not a QMP message" : strerror(-r));
}

/* Unwrap a reply: 0 with its "return", or -EREMOTEIO with the error. */
static int unwrap(struct json_object *reply, struct json_object **ret,
		  struct strbuf *err)
{
	struct json_object *v, *d;

	if (json_object_object_get_ex(reply, "return", &v)) {
		if (ret)
			*ret = json_object_get(v);
		return 0;
	}
	json_object_object_get_ex(reply, "error", &v);
	if (v && json_object_object_get_ex(v, "desc", &d))
		strbuf_addstr(err, json_object_get_string(d));
	else
		strbuf_addstr(err, "QEMU refused the command");
	return -EREMOTEIO;
}

static int send_object(struct qmp *q, struct json_object *cmd, int pass_fd,
		       long long deadline, struct json_object **reply)
{
	size_t len;
	const char *text = json_object_to_json_string_length(
		cmd, JSON_C_TO_STRING_PLAIN, &len);
	struct strbuf line = STRBUF_INIT;
	int r;

	strbuf_add(&line, text, len);
	strbuf_addch(&line, '\n');
	r = send_all(q, line.buf, line.len, pass_fd, deadline);
	strbuf_release(&line);
	if (!r)
		r = read_reply(q, deadline, reply);
	return r;
}

int qmp_attach(struct qmp *q, int fd, int timeout_ms, struct strbuf *err)
{
	long long deadline = proc_now_ms() + timeout_ms;
	struct json_object *greet = NULL, *v, *cmd;
	struct json_object *reply = NULL;
	int r;

	memset(q, 0, sizeof(*q));
	q->in = (struct strbuf)STRBUF_INIT;
	q->fd = fd;
	q->tok = json_tokener_new();
	if (!q->tok)
		return -ENOMEM;
	r = read_object(q, deadline, &greet);
	if (!r && !json_object_object_get_ex(greet, "QMP", &v))
		r = -EPROTO;
	json_object_put(greet);
	if (r) {
		say(err, r, "QMP greeting");
		return r;
	}
	cmd = json_object_new_object();
	json_object_object_add(cmd, "execute",
			       json_object_new_string("qmp_capabilities"));
	r = send_object(q, cmd, -1, deadline, &reply);
	json_object_put(cmd);
	if (r) {
		say(err, r, "QMP capabilities");
		return r;
	}
	r = unwrap(reply, NULL, err);
	json_object_put(reply);
	return r;
}

int qmp_connect(struct qmp *q, const char *path, int timeout_ms,
		struct strbuf *err)
{
	int fd;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	q->in = (struct strbuf)STRBUF_INIT;
	fd = fs_unix_connect(path, timeout_ms);
	if (fd == -ETIMEDOUT) {
		strbuf_addf(err, "%s: busy: other clients hold QEMU's monitor (no connection within %d ms)",
			    path, timeout_ms);
		return fd;
	}
	if (fd < 0) {
		strbuf_addf(err, "%s: %s", path, strerror(-fd));
		return fd;
	}
	return qmp_attach(q, fd, timeout_ms, err);
}

/* Drop what comes before the agent's 0xFF (its answer to a delimited
 * sync), which starts its reply. */
static int skip_to_delimiter(struct qmp *q, long long deadline)
{
	for (;;) {
		char buf[4096], *ff;
		ssize_t n;
		int r = wait_fd(q->fd, POLLIN, deadline);

		if (r)
			return r;
		n = read(q->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		ff = memrchr(buf, 0xff, (size_t)n);
		if (ff) {
			strbuf_reset(&q->in);
			q->pos = 0;
			strbuf_add(&q->in, ff + 1, (size_t)(buf + n - ff - 1));
			return 0;
		}
	}
}

int qmp_agent_connect(struct qmp *q, const char *path, int timeout_ms,
		      struct strbuf *err)
{
	long long deadline = proc_now_ms() + timeout_ms;
	long long id = (long long)getpid() * 1000 + (proc_now_ms() % 1000);
	struct json_object *reply = NULL, *v;
	struct strbuf line = STRBUF_INIT;
	int fd, r;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	q->in = (struct strbuf)STRBUF_INIT;
	fd = fs_unix_connect(path, timeout_ms);
	if (fd < 0) {
		strbuf_addf(err, "%s: %s", path, strerror(-fd));
		return fd;
	}
	q->fd = fd;
	q->tok = json_tokener_new();
	if (!q->tok)
		return -ENOMEM;
	strbuf_addf(&line, "\xff{\"execute\": \"guest-sync-delimited\", \"arguments\": {\"id\": %lld}}\n",
		    id);
	r = send_all(q, line.buf, line.len, -1, deadline);
	strbuf_release(&line);
	if (!r)
		r = skip_to_delimiter(q, deadline);
	while (!r) {
		r = read_reply(q, deadline, &reply);
		if (r)
			break;
		if (json_object_object_get_ex(reply, "return", &v) &&
		    json_object_get_int64(v) == id) {
			json_object_put(reply);
			return 0;
		}
		json_object_put(reply);	/* an answer to someone before us */
	}
	strbuf_addf(err, "%s: %s", path,
		    r == -ETIMEDOUT ? "no guest agent answers" :
		    r == -EPIPE ? "the agent's channel closed" :
		    r == -EPROTO ? "not a guest agent" : strerror(-r));
	return r;
}

bool qmp_agent_open(struct qmp *q, int timeout_ms)
{
	struct strbuf e = STRBUF_INIT;
	struct json_object *ret = NULL, *c, *v;
	bool open = false;

	if (!qmp_execute(q, "query-chardev", NULL, -1, timeout_ms, &ret, &e)) {
		c = json_member_of(ret, "label", "qga0");
		open = c && json_object_object_get_ex(c, "frontend-open", &v) &&
		       json_object_get_boolean(v);
	}
	json_object_put(ret);
	strbuf_release(&e);
	return open;
}

int qmp_execute(struct qmp *q, const char *command, struct json_object *args,
		int fd, int timeout_ms, struct json_object **ret,
		struct strbuf *err)
{
	long long deadline = proc_now_ms() + timeout_ms;
	struct json_object *cmd = json_object_new_object(), *reply = NULL;
	int r;

	if (ret)
		*ret = NULL;
	json_object_object_add(cmd, "execute", json_object_new_string(command));
	if (args)
		json_object_object_add(cmd, "arguments", json_object_get(args));
	r = send_object(q, cmd, fd, deadline, &reply);
	json_object_put(cmd);
	if (r) {
		say(err, r, command);
		return r;
	}
	r = unwrap(reply, ret, err);
	json_object_put(reply);
	return r;
}

int qmp_execute_json(struct qmp *q, const char *json, int timeout_ms,
		     struct json_object **reply, struct strbuf *err)
{
	long long deadline = proc_now_ms() + timeout_ms;
	struct json_tokener *tok = json_tokener_new();
	struct json_object *cmd, *v;
	int r;

	*reply = NULL;
	if (!tok)
		return -ENOMEM;
	cmd = json_tokener_parse_ex(tok, json, (int)strlen(json));
	if (!cmd || json_tokener_get_parse_end(tok) != strlen(json) ||
	    !json_object_is_type(cmd, json_type_object) ||
	    !json_object_object_get_ex(cmd, "execute", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		strbuf_addstr(err, cmd ? "not a QMP command (want {\"execute\": \"NAME\", ...})" :
					 "not valid JSON");
		json_object_put(cmd);
		json_tokener_free(tok);
		return -EINVAL;
	}
	json_tokener_free(tok);
	r = send_object(q, cmd, -1, deadline, reply);
	if (r)
		say(err, r, json_object_get_string(v));
	json_object_put(cmd);
	return r;
}

int qmp_hmp(struct qmp *q, const char *cmdline, int timeout_ms,
	    struct strbuf *out, struct strbuf *err)
{
	struct json_object *args = json_object_new_object(), *ret = NULL;
	int r;

	json_object_object_add(args, "command-line",
			       json_object_new_string(cmdline));
	r = qmp_execute(q, "human-monitor-command", args, -1, timeout_ms, &ret,
			err);
	json_object_put(args);
	if (!r) {
		if (json_object_is_type(ret, json_type_string))
			strbuf_addstr(out, json_object_get_string(ret));
		else
			r = -EPROTO;
	}
	json_object_put(ret);
	return r;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	if (q->tok)
		json_tokener_free(q->tok);
	strbuf_release(&q->in);
	q->fd = -1;
	q->tok = NULL;
	q->pos = 0;
}

bool json_is_true(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) &&
	       json_object_get_boolean(v);
}

struct json_object *json_member_of(struct json_object *arr, const char *key,
				   const char *value)
{
	struct json_object *o, *v;
	size_t k;

	if (!arr || !json_object_is_type(arr, json_type_array))
		return NULL;
	for (k = 0; k < json_object_array_length(arr); k++) {
		o = json_object_array_get_idx(arr, k);
		if (json_object_object_get_ex(o, key, &v) &&
		    json_object_is_type(v, json_type_string) &&
		    !strcmp(json_object_get_string(v), value))
			return o;
	}
	return NULL;
}

char *json_str_dup(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return xstrdup(json_object_get_string(v));
}
