/*
 * @start [ISO]: boot the VM as @run does, in the background.  The @run
 * it leaves (the supervisor) owns QEMU and holds the VM's lock; @start
 * returns once the guest is up: QMP answers and, with a forward to the
 * guest's port 22 (vm's own only with a cloud-init seed), an SSH banner
 * arrives there.  The supervisor says so
 * the way it says so to systemd: READY=1 on $NOTIFY_SOCKET.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu/runstate.h"
#include "vm/launch.h"

#define LOG_NAME "vm.log"
#define LOG_MAX (1u << 20)
#define STOP_GRACE_MS 10000

/* The supervisor's log, HOSTDIR/vm.log, with one older copy kept. */
static int open_log(struct vm_ctx *ctx, char **path)
{
	struct stat st;
	int fd;

	*path = vm_host_path(&ctx->vm, LOG_NAME);
	if (stat(*path, &st) == 0 && st.st_size > LOG_MAX) {
		char *old = xasprintf("%s.1", *path);

		rename(*path, old);
		free(old);
	}
	fd = open(*path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
		  O_NOFOLLOW, 0640);
	return fd < 0 ? -errno : fd;
}

/* A datagram socket in a private directory: only our child can send. */
static int notify_socket(char **dir, char **path)
{
	struct sockaddr_un a;
	char *t;
	int fd, r;

	*dir = *path = NULL;
	r = fs_mkdtemp("vm-start", &t);
	if (r)
		return r;
	*dir = t;
	*path = xasprintf("%s/notify", t);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (strlen(*path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, *path, strlen(*path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* The last lines of path, what a guest wrote escaped, ending the line. */
static void show_tail(const char *what, const char *path)
{
	struct strbuf t = STRBUF_INIT, safe = STRBUF_INIT;

	fs_tail(path, 8, &t);
	strbuf_add_printable(&safe, t.buf ? t.buf : "", t.len, "\n\t");
	if (t.len)
		fprintf(stderr, "vm: %s (%s) ends with:\n%s\n", what, path,
			safe.buf);
	strbuf_release(&t);
	strbuf_release(&safe);
}

static void show_tails(struct vm_ctx *ctx, const char *log)
{
	struct strbuf t = STRBUF_INIT;
	char *con;

	show_tail("the supervisor's log", log);
	vm_find_workdir(&ctx->vm, &t);
	con = vm_work_path(&ctx->vm, "console.log");
	show_tail("the serial console", con);
	free(con);
	strbuf_release(&t);
}

/*
 * Wait for READY=1 from the supervisor: 0, or -ECHILD when it ended.
 * silent: it said the guest is up but its sshd did not greet.
 */
static int wait_ready(int nfd, pid_t pid, unsigned secs, int *status,
		      bool *silent)
{
	long long deadline = proc_now_ms() + (long long)secs * 1000;

	for (;;) {
		struct pollfd p = { nfd, POLLIN, 0 };
		long long left = deadline - proc_now_ms();
		char buf[4096];
		ssize_t n;

		if (waitpid(pid, status, WNOHANG) == pid)
			return -ECHILD;
		if (proc_interrupted())
			return -EINTR;
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, left > 250 ? 250 : (int)left) <= 0)
			continue;
		n = recv(nfd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (!strncmp(buf, "READY=1", 7) || strstr(buf, "\nREADY=1")) {
			*silent = strstr(buf, "\nX_VM_SSH=silent") != NULL;
			return 0;
		}
	}
}

/* --json: what @status would say of it now, and its log. */
static void report(struct vm_ctx *ctx, pid_t pid, const char *log)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate rs;

	if (runstate_running(ctx->vm.hostdir, &rs, &err) == 1) {
		runstate_report(&rs, ctx->result);
		runstate_release(&rs);
	} else {
		report_set_int(ctx->result, "pid", pid);
	}
	report_set_str(ctx->result, "log", log);
	strbuf_release(&err);
}

/*
 * The supervisor: av (this vm's @run), out of our session, holding
 * the VM's lock, its output into lfd, told to say READY=1 at npath.
 */
static int spawn_supervisor(struct vm_ctx *ctx, const struct strvec *av,
			    int lfd, const char *npath, pid_t *pid)
{
	struct strvec env = STRVEC_INIT;
	struct proc_opts o = PROC_OPTS_INIT;
	int r;

	strvec_pushf(&env, "NOTIFY_SOCKET=%s", npath);
	strvec_pushf(&env, "VM_LOCK_FD=%d", ctx->vm.lock_fd);
	strvec_push(&env, "VM_SUPERVISOR=1");
	o.exe = "/proc/self/exe";
	o.env_add = env.v;
	o.stdin_fd = -1;
	o.stdout_fd = o.stderr_fd = lfd;
	o.keep_fds[0] = ctx->vm.lock_fd;
	/* It must outlive this vm and its terminal. */
	o.die_with_parent = false;
	o.new_session = true;
	r = proc_spawn(av->v, &o, pid);
	strvec_clear(&env);
	return r;
}

/*
 * The supervisor did not say it was up (r as wait_ready says, st its
 * status if it ended): stop it, say why; vm's exit status.
 */
static int not_up(struct vm_ctx *ctx, pid_t pid, int r, int st,
		  unsigned secs, const char *log)
{
	if (r == -ECHILD) {
		ctx->supervisor = 0;
		log_error("cannot start %s: it ended before it was up (status %d)",
			  ctx->vm.conf.name, proc_exit_code(st));
	} else {
		struct runstate rs;
		struct strbuf e = STRBUF_INIT;
		unsigned long long start = runstate_proc_start(pid);

		/* the supervisor passes SIGTERM on to QEMU; each wait here is
		 * bounded, and ends what vm started also after an interrupt */
		kill(pid, SIGTERM);
		if (runstate_wait_killed(pid, start, STOP_GRACE_MS)) {
			kill(pid, SIGKILL);
			runstate_wait_killed(pid, start, STOP_GRACE_MS);
		}
		/* a supervisor killed leaves its QEMU a moment (the record
		 * says which): "stopped" is said once QEMU is gone too */
		if (!runstate_read(ctx->vm.hostdir, &rs, &e) && rs.pid == pid &&
		    runstate_qemu_alive(&rs) &&
		    runstate_wait_killed(rs.qemu_pid, rs.qemu_start,
					 STOP_GRACE_MS)) {
			kill(rs.qemu_pid, SIGKILL);
			runstate_wait_killed(rs.qemu_pid, rs.qemu_start,
					     STOP_GRACE_MS);
		}
		runstate_release(&rs);
		strbuf_reset(&e);
		ctx->supervisor = 0;
		if (r == -EINTR) {
			log_error("cannot start %s: interrupted; it was stopped",
				  ctx->vm.conf.name);
		} else if (ctx->vm.conf.ready.mode == READY_AUTO &&
			   !ctx->vm.conf.initialize_timeout) {
			log_error("cannot start %s: not up within %u s (--boot-timeout); it was stopped",
				  ctx->vm.conf.name, secs);
		} else {
			launch_ready_describe(&ctx->vm.conf, &e);
			log_error("cannot start %s: not ready within %u s (%s): %s; it was stopped",
				  ctx->vm.conf.name, secs,
				  ctx->vm.conf.initialize_timeout ?
					  "initialize_timeout" : "--boot-timeout",
				  e.buf);
		}
		strbuf_release(&e);
	}
	show_tails(ctx, log);
	if (r == -EINTR)
		return 128 + proc_interrupted();
	return 1;
}

int cmd_start(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct strvec av = STRVEC_INIT;
	struct runstate rs;
	char *log = NULL, *ndir = NULL, *npath = NULL;
	unsigned secs = launch_ready_timeout(&ctx->vm.conf);
	int lfd = -1, nfd = -1, r, st = 0, ret = 1;
	bool silent = false;
	pid_t pid;

	if (runstate_running(ctx->vm.hostdir, &rs, &err) == 1) {
		log_error("cannot start %s: it is running already (pid %ld)",
			  ctx->vm.conf.name, (long)rs.pid);
		runstate_release(&rs);
		goto out;
	}
	if (launch_ready_check(&ctx->vm, &err)) {
		log_error("cannot start %s: %s", ctx->vm.conf.name, err.buf);
		goto out;
	}
	strvec_push(&av, "vm");
	strvec_pushv(&av, ctx->opt_words.v);
	strvec_pushl(&av, "-d", ctx->vm.hostdir, "@run", NULL);
	if (argc > 0)	/* an ISO named -x.iso is no option */
		strvec_pushl(&av, "--", argv[0], NULL);
	if (ctx->vm.dry_run) {
		char *j = strvec_join(&av, " ", true);

		say_dry(ctx, "in the background: %s", j);
		free(j);
		ret = 0;
		goto out;
	}
	lfd = open_log(ctx, &log);
	if (lfd < 0) {
		log_error("cannot start %s: %s: %s", ctx->vm.conf.name, log,
			  strerror(-lfd));
		goto out;
	}
	nfd = notify_socket(&ndir, &npath);
	if (nfd < 0) {
		log_error("cannot start %s: notify socket: %s", ctx->vm.conf.name,
			  strerror(-nfd));
		goto out;
	}
	r = spawn_supervisor(ctx, &av, lfd, npath, &pid);
	if (r) {
		log_error("cannot start %s: %s", ctx->vm.conf.name, strerror(-r));
		goto out;
	}
	ctx->supervisor = pid;
	r = wait_ready(nfd, pid, secs, &st, &silent);
	if (!r) {
		report(ctx, pid, log);
		if (silent)
			log_warn("%s is up, but no sshd answered on the port vm forwards to its 22 (see vm @status); vm @ssh waits for one (with cloud_init = no, @start does not)",
				 ctx->vm.conf.name);
		log_info("%s is running in the background (supervisor pid %ld); see vm @status, stop with vm @stop",
			 ctx->vm.conf.name, (long)pid);
		ret = 0;
		goto out;
	}
	ret = not_up(ctx, pid, r, st, secs, log);
out:
	if (nfd >= 0)
		close(nfd);
	if (npath)
		unlink(npath);
	if (ndir)
		rmdir(ndir);
	if (lfd >= 0)
		close(lfd);
	free(log);
	free(npath);
	free(ndir);
	strvec_clear(&av);
	strbuf_release(&err);
	return ret;
}
