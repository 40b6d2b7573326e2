#include "qemu/runstate.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "util/fsutil.h"
#include "util/report.h"
#include "util/proc.h"
#include "qemu/qmp.h"

void runstate_release(struct runstate *s)
{
	free(s->state);
	free(s->accel);
	strvec_clear(&s->forwards);
	free(s->spice);
	free(s->workdir);
	free(s->console);
	free(s->monitor);
	free(s->control);
	free(s->console_log);
	memset(s, 0, sizeof(*s));
	s->forwards = (struct strvec)STRVEC_INIT;
}

unsigned long long runstate_proc_start(pid_t pid)
{
	struct strbuf st = STRBUF_INIT;
	unsigned long long t = 0;
	char *path, *p;
	int field;

	if (pid <= 0)
		return 0;
	path = xasprintf("/proc/%ld/stat", (long)pid);
	if (fs_read_file(path, 4096, &st)) {
		free(path);
		return 0;
	}
	free(path);
	/* The command name may hold spaces and ')': count after the last. */
	p = strrchr(st.buf, ')');
	/* a zombie has ended: it counts as gone */
	if (p && p[1] == ' ' && p[2] == 'Z')
		p = NULL;
	for (field = 2; p && *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (p && field == 22)
		t = strtoull(p, NULL, 10);
	strbuf_release(&st);
	return t;
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

int runstate_write(const char *hostdir, const struct runstate *s)
{
	struct json_object *o = json_object_new_object();
	struct json_object *fw = json_object_new_array();
	char *path = xasprintf("%s/%s", hostdir, RUNSTATE_FILE);
	const char *text;
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	int r;

	add_str(o, "state", s->state);
	json_object_object_add(o, "pid", json_object_new_int64(s->pid));
	json_object_object_add(o, "pid_start",
			       json_object_new_uint64(s->pid_start));
	json_object_object_add(o, "qemu_pid",
			       json_object_new_int64(s->qemu_pid));
	json_object_object_add(o, "qemu_start",
			       json_object_new_uint64(s->qemu_start));
	json_object_object_add(o, "started",
			       json_object_new_int64((int64_t)s->started));
	json_object_object_add(o, "background",
			       json_object_new_boolean(s->background));
	add_str(o, "accel", s->accel);
	json_object_object_add(o, "cores", json_object_new_int64(s->cores));
	json_object_object_add(o, "sockets", json_object_new_int64(s->sockets));
	json_object_object_add(o, "memory", json_object_new_uint64(s->memory));
	for (i = 0; i < s->forwards.nr; i++)
		json_object_array_add(fw,
				      json_object_new_string(s->forwards.v[i]));
	json_object_object_add(o, "forwards", fw);
	json_object_object_add(o, "ssh_port", json_object_new_int64(s->ssh_port));
	add_str(o, "spice", s->spice);
	add_str(o, "workdir", s->workdir);
	add_str(o, "console", s->console);
	add_str(o, "monitor", s->monitor);
	add_str(o, "control", s->control);
	add_str(o, "console_log", s->console_log);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	strbuf_addstr(&sb, text);
	strbuf_addch(&sb, '\n');
	r = fs_write_atomic(path, sb.buf, sb.len, 0644);
	strbuf_release(&sb);
	json_object_put(o);
	free(path);
	return r;
}

static long long get_int(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return 0;
	return json_object_get_int64(v);
}

int runstate_read(const char *hostdir, struct runstate *s,
		  struct strbuf *err)
{
	char *path = xasprintf("%s/%s", hostdir, RUNSTATE_FILE);
	struct strbuf text = STRBUF_INIT;
	struct json_object *o = NULL, *v;
	size_t i;
	int r;

	memset(s, 0, sizeof(*s));
	s->forwards = (struct strvec)STRVEC_INIT;
	r = fs_read_file(path, 1 << 20, &text);
	if (r) {
		if (r != -ENOENT)
			strbuf_addf(err, "%s: %s", path, strerror(-r));
		goto out;
	}
	o = json_tokener_parse(text.buf);
	if (!o || !json_object_is_type(o, json_type_object)) {
		strbuf_addf(err, "%s: not the record of a running VM", path);
		r = -EINVAL;
		goto out;
	}
	s->state = json_str_dup(o, "state");
	s->pid = (pid_t)get_int(o, "pid");
	if (json_object_object_get_ex(o, "pid_start", &v))
		s->pid_start = json_object_get_uint64(v);
	s->qemu_pid = (pid_t)get_int(o, "qemu_pid");
	if (json_object_object_get_ex(o, "qemu_start", &v))
		s->qemu_start = json_object_get_uint64(v);
	s->started = (time_t)get_int(o, "started");
	if (json_object_object_get_ex(o, "background", &v))
		s->background = json_object_get_boolean(v);
	s->accel = json_str_dup(o, "accel");
	s->cores = (unsigned)get_int(o, "cores");
	s->sockets = (unsigned)get_int(o, "sockets");
	if (json_object_object_get_ex(o, "memory", &v))
		s->memory = json_object_get_uint64(v);
	if (json_object_object_get_ex(o, "forwards", &v) &&
	    json_object_is_type(v, json_type_array))
		for (i = 0; i < json_object_array_length(v); i++)
			strvec_push(&s->forwards, json_object_get_string(
				json_object_array_get_idx(v, i)));
	s->ssh_port = (unsigned)get_int(o, "ssh_port");
	s->spice = json_str_dup(o, "spice");
	s->workdir = json_str_dup(o, "workdir");
	s->console = json_str_dup(o, "console");
	s->monitor = json_str_dup(o, "monitor");
	s->control = json_str_dup(o, "control");
	s->console_log = json_str_dup(o, "console_log");
	if (!s->state || s->pid <= 0) {
		strbuf_addf(err, "%s: not the record of a running VM", path);
		r = -EINVAL;
	}
out:
	json_object_put(o);
	strbuf_release(&text);
	free(path);
	return r;
}

static bool same_process(pid_t pid, unsigned long long start)
{
	if (pid <= 0 || !start)
		return false;
	if (kill(pid, 0) < 0 && errno != EPERM)
		return false;
	/* A pid can be reused: the start time tells them apart. */
	return runstate_proc_start(pid) == start;
}

/*
 * A QEMU that vm started: qemu-system-* named vm-NAME by its -name
 * ...,process= (what any user may read of it: its comm and argv[0];
 * /proc/PID/exe is its owner's alone, and the control_group asks too).
 */
static bool is_vm_qemu(pid_t pid)
{
	struct strbuf comm = STRBUF_INIT, cmd = STRBUF_INIT;
	char *path = xasprintf("/proc/%ld/comm", (long)pid);
	const char *base;
	bool ok = false;

	if (!fs_read_file(path, 4096, &comm) &&
	    str_starts_with(comm.buf, "vm-")) {
		free(path);
		path = xasprintf("/proc/%ld/cmdline", (long)pid);
		if (!fs_read_file(path, 65536, &cmd) && cmd.len) {
			base = strrchr(cmd.buf, '/');
			ok = str_starts_with(base ? base + 1 : cmd.buf,
					     "qemu-system-");
		}
	}
	free(path);
	strbuf_release(&comm);
	strbuf_release(&cmd);
	return ok;
}

bool runstate_alive(const struct runstate *s)
{
	if (!same_process(s->pid, s->pid_start))
		return false;
	/* No QEMU yet is fine while starting. */
	return !s->qemu_pid || runstate_qemu_alive(s);
}

/* Another process than the one recorded holds pid now. */
static bool pid_taken(pid_t pid, unsigned long long start)
{
	return pid > 0 && runstate_proc_start(pid) != 0 &&
	       !same_process(pid, start);
}

int runstate_stale(const char *hostdir, bool remove)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate s = RUNSTATE_INIT;
	int r = runstate_read(hostdir, &s, &err), stale = 0;

	if (r == -ENOENT) {
		r = 0;
	} else if (r || !runstate_alive(&s)) {
		/* processes gone: a stopped VM's leftover; alive: not ours */
		stale = !r && (pid_taken(s.pid, s.pid_start) ||
			       pid_taken(s.qemu_pid, s.qemu_start) ||
			       (s.qemu_pid > 0 &&
				same_process(s.qemu_pid, s.qemu_start) &&
				!is_vm_qemu(s.qemu_pid)));
		if (remove) {
			char *path = xasprintf("%s/%s", hostdir,
					       RUNSTATE_FILE);

			unlink(path);
			free(path);
		}
		r = 0;
	}
	runstate_release(&s);
	strbuf_release(&err);
	return r ? r : stale;
}

void runstate_remove(const char *hostdir, pid_t pid)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate s;

	if (!runstate_read(hostdir, &s, &err) && s.pid == pid) {
		char *path = xasprintf("%s/%s", hostdir, RUNSTATE_FILE);

		unlink(path);
		free(path);
	}
	runstate_release(&s);
	strbuf_release(&err);
}

int runstate_running(const char *hostdir, struct runstate *s,
		     struct strbuf *err)
{
	int r = runstate_read(hostdir, s, err);

	if (r == -ENOENT) {
		runstate_release(s);
		return 0;
	}
	if (r) {
		runstate_release(s);
		return r;
	}
	if (!runstate_alive(s)) {
		runstate_release(s);
		return 0;
	}
	return 1;
}

bool runstate_qemu_alive(const struct runstate *s)
{
	return s->qemu_pid > 0 && same_process(s->qemu_pid, s->qemu_start) &&
	       is_vm_qemu(s->qemu_pid);
}

/* runstate_wait_gone; heed: an interrupt of vm ends the wait. */
static int wait_gone(pid_t pid, unsigned long long start, int timeout_ms,
		     bool heed)
{
	long long deadline = proc_now_ms() + timeout_ms;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int r = 0;

	for (;;) {
		long long left = deadline - proc_now_ms();
		int st;

		/* our own child (the supervisor @start left) is reaped */
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		if (!same_process(pid, start))
			break;
		if (heed && proc_interrupted()) {
			r = -EINTR;
			break;
		}
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		if (left > 200)
			left = 200;
		if (pidfd >= 0) {
			struct pollfd p = { pidfd, POLLIN, 0 };

			poll(&p, 1, (int)left);
		} else {
			struct timespec ts = { 0, left * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return r;
}

int runstate_wait_gone(pid_t pid, unsigned long long start, int timeout_ms)
{
	return wait_gone(pid, start, timeout_ms, true);
}

int runstate_wait_killed(pid_t pid, unsigned long long start, int timeout_ms)
{
	return wait_gone(pid, start, timeout_ms, false);
}

int runstate_wait_ending(const char *hostdir, int timeout_ms)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate s = RUNSTATE_INIT;
	int r = runstate_read(hostdir, &s, &err);

	/* its QEMU gone, the vm that ran it is still cleaning up */
	if (!r && (s.qemu_pid <= 0 || runstate_qemu_alive(&s) ||
		   !same_process(s.pid, s.pid_start)))
		r = -EAGAIN;
	if (!r)
		r = runstate_wait_gone(s.pid, s.pid_start, timeout_ms);
	runstate_release(&s);
	strbuf_release(&err);
	return r;
}

void runstate_set_state(const char *hostdir, pid_t pid, const char *state)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate s;

	if (!runstate_read(hostdir, &s, &err) && s.pid == pid) {
		free(s.state);
		s.state = xstrdup(state);
		runstate_write(hostdir, &s);
	}
	runstate_release(&s);
	strbuf_release(&err);
}

void runstate_report(const struct runstate *s, struct json_object *o)
{
	report_set_int(o, "pid", s->pid);
	report_set_int(o, "qemu_pid", s->qemu_pid);
	report_set_int(o, "started", s->started);
	report_set_int(o, "uptime", time(NULL) - s->started);
	report_set_bool(o, "background", s->background);
	report_set_str(o, "accel", s->accel);
	report_set_int(o, "cpu_sockets", s->sockets);
	/* the old name, beside the socket paths: kept one release */
	report_set_int(o, "sockets", s->sockets);
	report_set_int(o, "cores", s->cores);
	report_set_int(o, "memory", (int64_t)s->memory);
	report_set(o, "forwards",
		   report_strv((const char *const *)s->forwards.v,
			       s->forwards.nr));
	report_set(o, "ssh_port",
		   s->ssh_port ? json_object_new_int((int)s->ssh_port) : NULL);
	report_set_str(o, "spice", s->spice);
	report_set_str(o, "console", s->console);
	report_set_str(o, "monitor", s->monitor);
	report_set_str(o, "control", s->control);
}

int runstate_control(const struct runstate *s, struct qmp *q,
		     int timeout_ms, struct strbuf *err)
{
	const char *path = s->control ? s->control : s->monitor;
	int r;

	if (!path) {
		*q = (struct qmp)QMP_INIT;
		strbuf_addstr(err, "its record names no control socket");
		return -ENOENT;
	}
	r = qmp_connect(q, path, timeout_ms, err);
	/* a vm busy with a client of its control socket (or gone): its
	 * owner, who may, asks QEMU's own monitor instead */
	if (r && r != -EACCES && s->control && s->monitor &&
	    access(s->monitor, R_OK | W_OK) == 0) {
		qmp_close(q);
		strbuf_reset(err);
		r = qmp_connect(q, s->monitor, timeout_ms, err);
	}
	return r;
}
