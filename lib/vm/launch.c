#include "vm/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "util/fsutil.h"
#include "vm/cloudinit.h"
#include "util/proc.h"
#include "qemu/qmp.h"

int launch_resolve_accel(struct vm *vm, struct strbuf *note)
{
	char *bin;
	int r;

	if (vm->accel)
		return 0;
	vm->host_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	bin = qemu_binary(vm->conf.arch);
	r = qemu_pick_accel(vm->conf.accel, bin, vm->cache_dir, !vm->dry_run,
			    &vm->accel, note);
	free(bin);
	return r;
}

/*
 * For each -add-fd fd=N,set=S,opaque=PATH: N<PATH, so that the script
 * opens for QEMU what vm handed it (read-only, as vm did).
 */
static void add_fd_redirects(const struct strvec *argv, struct strbuf *sb)
{
	size_t i;

	for (i = 0; i + 1 < argv->nr; i++) {
		const char *v = argv->v[i + 1], *o;
		struct strbuf path = STRBUF_INIT;
		int fd;

		if (strcmp(argv->v[i], "-add-fd") || sscanf(v, "fd=%d", &fd) != 1)
			continue;
		o = strstr(v, ",opaque=");
		if (!o)
			continue;
		/* QEMU's option syntax doubles a comma */
		for (o += 8; *o; o++) {
			strbuf_addch(&path, *o);
			if (*o == ',' && o[1] == ',')
				o++;
		}
		/* sh takes one digit before < */
		if (fd <= 9) {
			strbuf_addf(sb, " %d<", fd);
			strbuf_add_shquoted(sb, path.buf);
		}
		strbuf_release(&path);
	}
}

int launch_write_script(const struct strvec *argv, const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	int r;

	strbuf_addstr(&sb, "#!/bin/sh\n# The QEMU command vm ran last; "
			   "run it again by hand if you like.\nexec");
	for (i = 0; i < argv->nr; i++) {
		strbuf_addstr(&sb, i && argv->v[i][0] == '-' ? " \\\n    " :
								" ");
		strbuf_add_shquoted(&sb, argv->v[i]);
	}
	strbuf_addstr(&sb, " \"$@\"");
	add_fd_redirects(argv, &sb);
	strbuf_addch(&sb, '\n');
	r = fs_write_atomic(path, sb.buf, sb.len, 0755);
	strbuf_release(&sb);
	return r;
}

int launch_spawn(const struct strvec *argv, const char *errlog,
		 const int keep[2], pid_t *pid)
{
	struct proc_opts o = PROC_OPTS_INIT;
	int fd, r;

	fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		  O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	o.stdin_fd = -1;
	o.stderr_fd = fd;
	/* QEMU's sockets are born private; vm widens them for a group */
	o.umask = 077;
	o.keep_fds[0] = keep[0];
	o.keep_fds[1] = keep[1];
	/* Our own process group: a terminal ^C reaches vm, which passes it
	 * on, so QEMU never dies before vm has noticed. */
	o.new_pgrp = true;
	r = proc_spawn(argv->v, &o, pid);
	close(fd);
	if (!r)
		proc_set_foreground(-*pid);
	return r;
}

/* A rescue booted from its kernel rather than as a CD. */
static void direct_boot(const struct vm *vm, const struct rescue_image *rb,
			struct vm_plan *plan, struct strbuf *note)
{
	struct qemu_plan *q = &plan->q;
	char *pvh;

	q->kernel = rb->kernel;
	q->initrd = rb->initrd;
	/* A kernel booted directly talks on the serial console only. */
	q->no_vga = true;
	q->append = rescue_append(false);
	/* OVMF boots only bzImages; SeaBIOS boots the PVH entry. */
	if (q->uefi)
		return;
	pvh = rescue_pvh_kernel(rb->kernel, vm->dry_run, note);
	strvec_push(&plan->owned, pvh);
	free(pvh);
	q->kernel = plan->owned.v[plan->owned.nr - 1];
	/* SeaBIOS's PCI routing table is the PIIX chipset's, not q35's */
	if (!q->q35)
		q->append = rescue_append(true);
}

/*
 * The base the disks lay over, opened read-only for QEMU: no monitor
 * command (commit, a reopen) can then write it, as promised.
 */
static int open_base(const struct vm *vm, struct vm_plan *plan,
		     struct strbuf *err)
{
	int i, fd;

	plan->q.base_fd = -1;
	for (i = 0; i < plan->ndisks && !vm->dry_run; i++) {
		if (!plan->disks[i].backing)
			continue;
		fd = open(plan->disks[i].backing, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;

			strbuf_addf(err, "base image %s: %s",
				    plan->disks[i].backing, strerror(e));
			return -e;
		}
		plan->q.base_fd = fd;
		break;
	}
	return 0;
}

/* No one listens on host:port now (SO_REUSEADDR, as QEMU binds). */
static bool port_free(const char *host, unsigned port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai = NULL;
	char serv[8];
	bool free_ = false;
	int fd, one = 1;

	snprintf(serv, sizeof(serv), "%u", port);
	if (getaddrinfo(*host ? host : NULL, serv, &hints, &ai) || !ai)
		return true;	/* QEMU will say what is wrong with it */
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		free_ = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
		close(fd);
	}
	freeaddrinfo(ai);
	return free_;
}

/*
 * A port vm's VMs have claimed: the lock CACHE/ports/PORT.lock, held by
 * the vm that runs QEMU (two @start at once see each other's claim
 * before either QEMU listens).  The fd, or -errno (-EBUSY: claimed).
 */
static int claim_port(const char *cache_dir, unsigned port)
{
	char *dir = xasprintf("%s/ports", cache_dir);
	char *p = xasprintf("%s/%u.lock", dir, port);
	int fd = fs_mkdir_p(dir, 0700);

	if (!fd)
		fd = proc_lock_file(p, 0);
	free(dir);
	free(p);
	return fd;
}

struct port_owner {
	char want[32];		/* "port=N," of its -spice */
	struct strbuf *who;
};

static int owner_of(pid_t pid, const char *cmdline, void *data)
{
	struct port_owner *o = data;
	const char *name = strstr(cmdline, " -name ");

	if (!strstr(cmdline, "qemu-system") || !strstr(cmdline, o->want) ||
	    !name)
		return 0;
	strbuf_addf(o->who, " (VM %.*s, QEMU pid %ld)",
		    (int)strcspn(name + 7, ", "), name + 7, (long)pid);
	return 1;
}

/* Which VM's QEMU serves SPICE on port, as " (VM NAME, QEMU pid N)". */
static void port_owner(unsigned port, struct strbuf *who)
{
	struct port_owner o = { .who = who };

	snprintf(o.want, sizeof(o.want), "port=%u,", port);
	proc_each_cmdline(owner_of, &o);
}

/*
 * The SPICE port: the one asked for, or by default the first free one
 * from it up (5900, 5901...), claimed for as long as the plan lives.
 */
static int pick_spice_port(const struct vm *vm, struct vm_plan *plan,
			   struct strbuf *err)
{
	struct qemu_plan *q = &plan->q;
	/* this VM's own port (guest.conf, -p) is asked for; a default,
	 * the system's or yours, is where the search starts */
	bool asked = conf_layer_of(&vm->conf, "vm", "port") >= LAYER_GUEST;
	unsigned p, last = asked ? q->spice_port : q->spice_port + 99;
	struct strbuf who = STRBUF_INIT;
	int fd;

	if (!q->spice_port || vm->dry_run)
		return 0;
	for (p = q->spice_port; p <= last && p <= 65535; p++) {
		fd = claim_port(vm->cache_dir, p);
		if (fd == -EBUSY)
			continue;
		if (port_free(q->spice_host ? q->spice_host : "", p)) {
			plan->spice_claim = fd > 0 ? fd : 0;
			q->spice_port = p;
			return 0;
		}
		if (fd >= 0)
			close(fd);
	}
	if (!asked) {
		strbuf_addf(err, "no free SPICE port from %u to %u (set port, or port = for none)",
			    q->spice_port, last);
		return -EADDRINUSE;
	}
	port_owner(q->spice_port, &who);
	strbuf_addf(err, "SPICE port %u on %s is taken%s (-p to pick another, -p '' for none)",
		    q->spice_port, q->spice_host ? q->spice_host : "",
		    who.len ? who.buf : "");
	strbuf_release(&who);
	return -EADDRINUSE;
}

/* A file sshkeys names is there: the user has a key to log in with. */
static bool has_ssh_key(const struct vm *vm)
{
	struct strvec keys = STRVEC_INIT;
	bool there;

	vm_key_files(vm, &keys);
	there = keys.nr > 0;
	strvec_clear(&keys);
	return there;
}

/* A port of 127.0.0.1 no one listens on, as the kernel picks; or 0. */
static unsigned loopback_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/*
 * The host port to the guest's 22: a forward's the settings give; else,
 * for the VM itself (not a rescue) on the user network, when the user
 * has a key to log in with, one of vm's own on 127.0.0.1, a port the
 * kernel picks, claimed as SPICE's is (two @start at once never take
 * the same) for as long as the plan lives.
 */
static void pick_ssh_port(const struct vm *vm, const struct launch_req *req,
			  struct vm_plan *plan)
{
	unsigned port = conf_forward_host_port(&vm->conf, 22);
	int tries, fd;

	plan->ssh_port = port;
	if (port || req->mode == PLAN_RESCUE || !plan->q.netdev ||
	    !has_ssh_key(vm))
		return;
	for (tries = 0; tries < 20; tries++) {
		port = loopback_port();
		if (!port)
			return;
		fd = vm->dry_run ? 0 : claim_port(vm->cache_dir, port);
		if (fd == -EBUSY)
			continue;
		plan->ssh_claim = fd > 0 ? fd : 0;
		plan->ssh_port = port;
		plan->ssh_auto = true;
		strvec_pushf(&plan->forwards, "hostfwd=tcp:127.0.0.1:%u-:22",
			     port);
		return;
	}
}

int launch_ready_check(const struct vm *vm, struct strbuf *err)
{
	const struct vm_conf *c = &vm->conf;

	switch (c->ready.mode) {
	case READY_SSH:
		if (c->netdev && (conf_forward_local_port(c, 22) ||
				  (!conf_forward_host_port(c, 22) &&
				   has_ssh_key(vm))))
			return 0;
		strbuf_addstr(err, "ready = ssh, but nothing reaches the guest's port 22 from 127.0.0.1 (add a forward to it, or an SSH key to sshkeys for vm's own; netdev = yes)");
		return -EINVAL;
	case READY_TCP:
		if (c->netdev && conf_forward_local_port(c, c->ready.port))
			return 0;
		strbuf_addf(err, "ready = tcp:%u, but no forward reaches the guest's port %u from 127.0.0.1 (add one to forwards; netdev = yes)",
			    c->ready.port, c->ready.port);
		return -EINVAL;
	case READY_AGENT:
		if (c->guest_agent != AGENT_NO)
			return 0;
		strbuf_addstr(err, "ready = agent, but guest_agent = no (the guest has no agent's channel)");
		return -EINVAL;
	default:
		return 0;
	}
}

unsigned launch_ready_timeout(const struct vm_conf *c)
{
	return c->initialize_timeout ? c->initialize_timeout :
				       c->rescue.boot_timeout;
}

void launch_ready_describe(const struct vm_conf *c, struct strbuf *out)
{
	switch (c->ready.mode) {
	case READY_SSH:
		strbuf_addstr(out, "no sshd greeted on the guest's port 22");
		break;
	case READY_TCP:
		strbuf_addf(out, "nothing took a connection on the guest's port %u",
			    c->ready.port);
		break;
	case READY_AGENT:
		strbuf_addstr(out, "no guest agent answered");
		break;
	default:
		strbuf_addstr(out, "it did not come up");
		break;
	}
}

void launch_watch_ready(struct launch_watch *w, const struct vm_conf *c,
			const struct vm_plan *plan)
{
	unsigned bt = launch_ready_timeout(c);

	w->ssh_port = w->ssh_wait_s = w->tcp_port = w->tcp_guest_port = 0;
	w->agent_sock = NULL;
	switch (c->ready.mode) {
	case READY_SSH:
		w->ssh_port = plan->ssh_port;
		break;
	case READY_TCP:
		w->tcp_guest_port = c->ready.port;
		w->tcp_port = conf_forward_local_port(c, c->ready.port);
		break;
	case READY_AGENT:
		w->agent_sock = plan->q.agent_sock;
		break;
	default:
		/*
		 * A forward of the settings is waited for.  vm's own only
		 * when a cloud-init seed goes with the boot (an image made
		 * for the cloud has sshd; an installer has none), and not
		 * past the timeout less 10 s (a disk image without sshd is
		 * up then all the same, before @start gives up); else @ssh
		 * waits for it.
		 */
		w->ssh_port = plan->ssh_auto && !plan->q.seed ? 0 :
							       plan->ssh_port;
		if (plan->ssh_auto)
			w->ssh_wait_s = bt > 20 ? bt - 10 : (bt + 1) / 2;
		break;
	}
}

static bool unconfined_told;

int launch_prepare(struct vm *vm, const struct launch_req *req,
		   struct vm_plan *plan, struct strvec *argv,
		   struct strbuf *note, struct strbuf *err)
{
	const struct rescue_image *rb = req->rescue;
	struct base_env env = vm_base_env(vm);
	char *base = NULL;
	int r;

	memset(plan, 0, sizeof(*plan));
	r = launch_resolve_accel(vm, note);
	if (r) {
		strbuf_addstr(err, note->len ? note->buf : "");
		strbuf_reset(note);
		return r;
	}
	/*
	 * The disks and the base they lay over are checked (and a moved
	 * base's path set in disk 0's header) before the plan, which only
	 * reads the settings.
	 */
	if (vm->workdir)
		r = base_check_disks(&env, &vm->conf, vm->workdir, &base, err);
	if (!r)
		r = vm_plan_build(vm, req->mode, req->cdrom, base, plan, err);
	free(base);
	if (r)
		return r;
	if (req->mode == PLAN_RESCUE && plan->q.uefi && !vm->dry_run) {
		r = qemu_ovmf_vars() ? fs_copy_file(qemu_ovmf_vars(),
						    plan->q.ovmf_vars, 0600) :
				       -ENOENT;
		if (r) {
			strbuf_addf(err, "cannot make UEFI variables for the rescue: %s",
				    strerror(-r));
			return r;
		}
	}
	r = open_base(vm, plan, err);
	if (!r)
		r = pick_spice_port(vm, plan, err);
	if (!r)
		pick_ssh_port(vm, req, plan);
	if (!r && req->mode != PLAN_RESCUE)
		r = launch_ready_check(vm, err);
	if (!r && req->mode != PLAN_RESCUE &&
	    vm->conf.ready.mode == READY_SSH && !plan->ssh_port) {
		strbuf_addstr(err, "ready = ssh, but no port of 127.0.0.1 could be claimed for the guest's 22");
		r = -EADDRINUSE;
	}
	if (!r && req->mode != PLAN_RESCUE && cloudinit_wanted(vm) &&
	    vm->conf.cloud_init == AGENT_AUTO && !cloudinit_can()) {
		if (note->len)
			strbuf_addch(note, '\n');
		strbuf_addstr(note, "no xorriso to make the cloud-init seed with: booting without one (install xorriso, or set cloud_init = no)");
	} else if (!r && req->mode != PLAN_RESCUE && cloudinit_wanted(vm)) {
		char *seed;

		r = cloudinit_seed(vm, &seed, err);
		if (!r) {
			strvec_push(&plan->owned, seed);
			plan->q.seed = plan->owned.v[plan->owned.nr - 1];
			free(seed);
		}
	}
	if (r)
		return r;
	/* what QEMU may do beyond emulating: not spawn, not setuid */
	plan->q.sandbox = qemu_has_sandbox(plan->q.binary);
	if (!plan->q.sandbox && !unconfined_told) {
		if (note->len)
			strbuf_addch(note, '\n');
		strbuf_addf(note, "%s takes no -sandbox (built without seccomp): it runs unconfined",
			    plan->q.binary);
		unconfined_told = true;	/* once a run, not a verb */
	}
	plan->q.cdrom_first = req->cdrom_first;
	plan->q.no_reboot = req->no_reboot;
	if (rb && rb->kernel)
		direct_boot(vm, rb, plan, note);
	if (req->resume_fd >= 0) {
		strvec_pushf(&plan->owned, "fd:%d", req->resume_fd);
		plan->q.incoming = plan->owned.v[plan->owned.nr - 1];
	}
	qemu_argv_build(&plan->q, argv);
	return 0;
}

int launch_start(struct vm *vm, const struct strvec *argv,
		 const char *prefix, const int keep[2], pid_t *pid, char **errlog,
		 char **dry, struct strbuf *err)
{
	char *name, *script;
	int r;

	*errlog = NULL;
	*dry = NULL;
	if (vm->dry_run) {
		*dry = strvec_join(argv, " ", true);
		return 0;
	}
	name = xasprintf("run-%s.sh", prefix);
	script = vm_work_path(vm, name);
	free(name);
	/* The script is for people; failing to write it stops nothing. */
	launch_write_script(argv, script);
	free(script);
	name = xasprintf("%s-qemu.log", prefix);
	*errlog = vm_work_path(vm, name);
	free(name);
	r = launch_spawn(argv, *errlog, keep, pid);
	if (r)
		strbuf_addf(err, "%s: %s", argv->v[0],
			    r == -ENOENT ? "not found (install qemu-system-x86)" :
			    strerror(-r));
	return r;
}

int launch_wait(pid_t pid, unsigned timeout_s)
{
	int st, r;

	r = proc_wait(pid, timeout_s ? (int)timeout_s * 1000 : -1, &st);
	if (r) {
		proc_terminate(pid, 3000);
		return r;
	}
	proc_set_foreground(0);
	return proc_exit_code(st);
}

/* A connection to 127.0.0.1:port under way (non-blocking), or -1. */
static int banner_connect(unsigned port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Read what fd has of a greeting into buf (*got of 4 bytes so far):
 * 1 when it is an SSH banner, 0 when more is to come, -1 when it is
 * none (user networking accepts at once, then forwards or hangs up:
 * only a banner says that sshd in the guest is there).
 */
static int banner_read(int fd, char buf[4], size_t *got)
{
	ssize_t n = read(fd, buf + *got, 4 - *got);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return -1;
	*got += (size_t)n;
	if (*got < 4)
		return 0;
	return memcmp(buf, "SSH-", 4) ? -1 : 1;
}

bool launch_ssh_banner(unsigned port, int timeout_ms)
{
	long long deadline = proc_now_ms() + timeout_ms;
	char buf[4];
	size_t got = 0;
	int fd = banner_connect(port), s = 0;

	while (fd >= 0 && !s) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - proc_now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		s = banner_read(fd, buf, &got);
	}
	if (fd >= 0)
		close(fd);
	return s == 1;
}

/*
 * The supervisor's probe of sshd: in its poll loop, never blocking it
 * (the console must be read all the while, or QEMU loses its output).
 */
struct ssh_probe {
	unsigned port;
	int fd;
	char buf[4];
	size_t got;
	long long end;		/* given up then */
	bool seen;		/* a banner came */
	bool any;		/* any byte will do (ready = tcp:PORT) */
};

static void probe_stop(struct ssh_probe *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Into p: the probe's fd while one is under way.  How many (0, 1). */
static int probe_pollfd(struct ssh_probe *s, struct pollfd *p)
{
	if (s->fd < 0)
		return 0;
	p->fd = s->fd;
	p->events = POLLIN;
	p->revents = 0;
	return 1;
}

static void probe_handle(struct ssh_probe *s, const struct pollfd *p)
{
	int r = 0;

	if (s->fd < 0)
		return;
	if (p->fd == s->fd && p->revents && s->any) {
		ssize_t n = read(s->fd, s->buf, 1);

		r = n > 0 ? 1 : n < 0 && (errno == EINTR || errno == EAGAIN) ?
				 0 : -1;
	} else if (p->fd == s->fd && p->revents) {
		r = banner_read(s->fd, s->buf, &s->got);
	}
	if (r == 1)
		s->seen = true;
	if (r || proc_now_ms() >= s->end)
		probe_stop(s);
}

/* A new probe, when none is under way. */
static void probe_start(struct ssh_probe *s)
{
	if (s->fd >= 0 || s->seen)
		return;
	s->fd = banner_connect(s->port);
	s->got = 0;
	/* a silent service's connection is held for a look at QEMU's */
	s->end = proc_now_ms() + (s->any ? 2500 : 1500);
}

/* How long one look at QEMU's or the agent's answers may block. */
#define PROBE_MS 250

/*
 * Whether QEMU's user network holds a connection through the forward
 * from host_port that the guest took (HMP's "info usernet": slirp
 * accepts on the host at once, whatever the guest does, so only its
 * state of the guest's side says).
 */
static bool usernet_established(const char *qmp_sock, unsigned host_port,
				unsigned guest_port, int timeout_ms)
{
	struct strbuf err = STRBUF_INIT;
	struct json_object *args = json_object_new_object(), *ret = NULL;
	struct qmp q = QMP_INIT;
	bool found = false;

	json_object_object_add(args, "command-line",
			       json_object_new_string("info usernet"));
	if (!qmp_connect(&q, qmp_sock, timeout_ms, &err) &&
	    !qmp_execute(&q, "human-monitor-command", args, -1, timeout_ms,
			 &ret, &err) && json_object_is_type(ret, json_type_string)) {
		const char *line = json_object_get_string(ret);

		/* "  TCP[ESTABLISHED]  9  127.0.0.1 2222  10.0.2.15 22 ..." */
		for (; line && *line && !found; line = strchr(line, '\n'),
		     line = line ? line + 1 : NULL) {
			char state[32];
			unsigned sp, dp;

			found = sscanf(line, " TCP[%31[^]]] %*d %*s %u %*s %u",
				       state, &sp, &dp) == 3 &&
				!strcmp(state, "ESTABLISHED") &&
				sp == host_port && dp == guest_port;
		}
	}
	json_object_put(args);
	json_object_put(ret);
	qmp_close(&q);
	strbuf_release(&err);
	return found;
}

/* Whether the guest agent at agent_sock answers (the guest opened its
 * port, as QMP at qmp_sock says, and it syncs). */
static bool agent_answers(const char *qmp_sock, const char *agent_sock,
			  int timeout_ms)
{
	struct strbuf err = STRBUF_INIT;
	struct qmp q = QMP_INIT, ga = QMP_INIT;
	bool ok;

	ok = !qmp_connect(&q, qmp_sock, timeout_ms, &err) &&
	     qmp_agent_open(&q, timeout_ms);
	qmp_close(&q);
	ok = ok && !qmp_agent_connect(&ga, agent_sock, timeout_ms, &err);
	qmp_close(&ga);
	strbuf_release(&err);
	return ok;
}

/* QEMU answers: whether the guest is up as w says (a probe started or
 * looked at when one is wanted). */
static bool guest_ready(struct launch_watch *w, struct ssh_probe *probe,
			long long ssh_until)
{
	/* (short: the console is not read meanwhile; a look that takes
	 * longer is tried again the next second) */
	if (w->agent_sock)
		return agent_answers(w->qmp_sock, w->agent_sock, PROBE_MS);
	if (w->tcp_port) {
		if (probe->seen ||
		    (probe->fd >= 0 &&
		     usernet_established(w->qmp_sock, w->tcp_port,
					 w->tcp_guest_port, PROBE_MS)))
			return true;
		probe_start(probe);
		return false;
	}
	if (w->ssh_port && !probe->seen) {
		probe_start(probe);
		if (ssh_until < 0 || proc_now_ms() < ssh_until)
			return false;
		w->ssh_silent = true;
	}
	return true;
}

bool launch_qmp_answers(const char *path, int timeout_ms, char *status)
{
	struct strbuf err = STRBUF_INIT;
	struct json_object *ret = NULL, *v;
	struct qmp q = QMP_INIT;
	bool ok;

	ok = !qmp_connect(&q, path, timeout_ms, &err) &&
	     !qmp_execute(&q, "query-status", NULL, -1, timeout_ms, &ret,
			  &err);
	if (ok && status) {
		status[0] = '\0';
		if (json_object_object_get_ex(ret, "status", &v))
			snprintf(status, 32, "%s", json_object_get_string(v));
	}
	json_object_put(ret);
	qmp_close(&q);
	strbuf_release(&err);
	return ok;
}

/*
 * Whether QEMU has ended (*r: its exit code, or -EINTR), vm was
 * interrupted or the deadline (-1: none) passed (QEMU stopped then,
 * *r -EINTR or -ETIMEDOUT).
 */
static bool qemu_ended(const struct launch_watch *w, long long deadline,
		       int *r)
{
	int st;

	if (waitpid(w->qemu, &st, WNOHANG) == w->qemu) {
		proc_set_foreground(0);
		/*
		 * Our handler passed a signal on to QEMU, which ended
		 * before we looked: that end is vm's interrupt.
		 */
		*r = proc_interrupted() ? -EINTR : proc_exit_code(st);
		return true;
	}
	if (proc_interrupted()) {
		proc_terminate(w->qemu, 3000);
		*r = -EINTR;
		return true;
	}
	if (deadline >= 0 && proc_now_ms() >= deadline) {
		proc_terminate(w->qemu, 3000);
		*r = -ETIMEDOUT;
		return true;
	}
	return false;
}

/*
 * Whether QEMU answers QMP; a resumed guest only once its state has
 * loaded (then the saved state and its record, SAVED_DISKS, go).
 */
static bool qemu_answers(const struct launch_watch *w)
{
	char status[32], *d;

	if (!launch_qmp_answers(w->qmp_sock, 1000, status))
		return false;
	if (!w->resume)
		return true;
	if (strcmp(status, "running"))
		return false;
	d = xasprintf("%s.disks", w->resume);
	unlink(w->resume);
	unlink(d);
	free(d);
	return true;
}

int launch_supervise(struct launch_watch *w)
{
	long long deadline = w->timeout_s ?
		proc_now_ms() + (long long)w->timeout_s * 1000 : -1;
	long long next_probe = 0;
	long long ssh_until = w->ssh_wait_s ?
		proc_now_ms() + (long long)w->ssh_wait_s * 1000 : -1;
	int pidfd = (int)syscall(SYS_pidfd_open, w->qemu, 0);
	struct ssh_probe probe = { .port = w->tcp_port ? w->tcp_port :
							 w->ssh_port,
				   .fd = -1, .any = w->tcp_port != 0 };
	bool qmp_ok = false;
	int r;

	for (;;) {
		/* the console's, the control socket's, QEMU's pidfd, the
		 * probe's */
		struct pollfd p[(2 + CONSOLE_MAX_CLIENTS) +
				(1 + CONTROL_MAX_CLIENTS) + 1 + 1];
		long long now = proc_now_ms();
		int n = 0, slice = 250, got;

		if (qemu_ended(w, deadline, &r))
			break;
		if (deadline >= 0 && deadline - now < slice)
			slice = (int)(deadline - now);
		if (w->mux)
			n = console_mux_pollfds(w->mux, p);
		if (w->ctl)
			n += control_pollfds(w->ctl, p + n);
		if (pidfd >= 0) {
			p[n].fd = pidfd;
			p[n].events = POLLIN;
			p[n++].revents = 0;
		}
		n += probe_pollfd(&probe, p + n);
		got = poll(p, (nfds_t)n, slice);
		if (probe.fd >= 0)	/* (its pollfd is the last) */
			probe_handle(&probe, &p[n - 1]);
		if (got > 0 && w->mux)
			console_mux_handle(w->mux, p, n);
		/* every turn: it lets idle clients go too */
		if (w->ctl)
			control_handle(w->ctl, p, got > 0 ? n : 0);
		/* a banner that came is taken at once */
		if (w->ready || (proc_now_ms() < next_probe && !probe.seen))
			continue;
		/* probes are short and spaced, so QEMU's end is seen soon */
		next_probe = proc_now_ms() + 1000;
		if (!qmp_ok)
			qmp_ok = qemu_answers(w);
		if (!qmp_ok || !guest_ready(w, &probe, ssh_until))
			continue;
		w->ready = true;
		probe_stop(&probe);
		if (w->on_ready)
			w->on_ready(w->data);
	}
	probe_stop(&probe);
	if (pidfd >= 0)
		close(pidfd);
	return r;
}
