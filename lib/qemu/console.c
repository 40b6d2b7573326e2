#include "qemu/console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/proc.h"

/* A client that lets this much pile up loses output, not the VM. */
#define CLIENT_BACKLOG (1u << 20)
#define INPUT_BACKLOG (64u << 10)

static int log_open(struct console_mux *m)
{
	struct stat st;

	m->log = open(m->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
		      O_NOFOLLOW, 0640);
	if (m->log < 0)
		return -errno;
	m->log_size = fstat(m->log, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

int console_mux_open(struct console_mux *m, const char *path, mode_t mode,
		     gid_t gid, const char *log_path, uint64_t log_max)
{
	int r;

	memset(m, 0, sizeof(*m));
	m->qemu = m->listen = m->log = -1;
	m->to_qemu = (struct strbuf)STRBUF_INIT;
	m->path = xstrdup(path);
	m->log_path = xstrdup(log_path);
	m->log_max = log_max;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	r = log_open(m);
	if (r)
		return r;
	m->listen = fs_unix_listen(path, mode, gid);
	if (m->listen < 0) {
		r = m->listen;
		m->listen = -1;
		return r;
	}
	return 0;
}

int console_mux_attach(struct console_mux *m, const char *qemu_sock,
		       int timeout_ms)
{
	long long deadline = proc_now_ms() + timeout_ms;

	for (;;) {
		struct timespec ts = { 0, 20 * 1000000L };
		long long left = deadline - proc_now_ms();
		int fd = fs_unix_connect(qemu_sock, left > 0 ? (int)left : 0);

		if (fd >= 0) {
			fcntl(fd, F_SETFL, O_NONBLOCK);
			m->qemu = fd;
			return 0;
		}
		if (fd != -ENOENT && fd != -ECONNREFUSED)
			return fd;
		if (proc_now_ms() >= deadline)
			return -ETIMEDOUT;
		if (proc_interrupted())
			return -EINTR;
		nanosleep(&ts, NULL);
	}
}

static void log_write(struct console_mux *m, const char *buf, size_t n)
{
	if (m->log < 0)
		return;
	if (m->log_max && m->log_size + n > m->log_max) {
		char *old = xasprintf("%s.1", m->log_path);

		close(m->log);
		rename(m->log_path, old);
		free(old);
		if (log_open(m))
			return;
	}
	while (n) {
		ssize_t w = write(m->log, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		m->log_size += (uint64_t)w;
		buf += w;
		n -= (size_t)w;
	}
}

/* Write what fits now; 0, or -1 when the peer is gone. */
static int flush(int fd, struct strbuf *sb)
{
	while (sb->len) {
		ssize_t w = send(fd, sb->buf, sb->len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w <= 0)
			return -1;
		memmove(sb->buf, sb->buf + w, sb->len - (size_t)w);
		sb->len -= (size_t)w;
		sb->buf[sb->len] = '\0';
	}
	return 0;
}

static void drop_client(struct console_mux *m, int i)
{
	close(m->clients[i].fd);
	strbuf_release(&m->clients[i].out);
	m->clients[i] = m->clients[--m->nclients];
}

static void from_qemu(struct console_mux *m)
{
	char buf[16384];
	int i;

	for (;;) {
		ssize_t n = read(m->qemu, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			close(m->qemu);
			m->qemu = -1;
			return;
		}
		log_write(m, buf, (size_t)n);
		for (i = 0; i < m->nclients; i++) {
			struct console_client *c = &m->clients[i];

			if (c->out.len + (size_t)n <= CLIENT_BACKLOG)
				strbuf_add(&c->out, buf, (size_t)n);
			if (flush(c->fd, &c->out) < 0)
				drop_client(m, i--);
		}
	}
}

static void accept_client(struct console_mux *m)
{
	int fd = accept4(m->listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	static const char full[] = "vm: too many console clients\r\n";

	if (fd < 0)
		return;
	if (m->nclients == CONSOLE_MAX_CLIENTS) {
		/* it is turned away whether this arrives or not */
		ssize_t w = send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL);

		(void)w;
		close(fd);
		return;
	}
	m->clients[m->nclients].fd = fd;
	m->clients[m->nclients].out = (struct strbuf)STRBUF_INIT;
	m->nclients++;
}

static void from_client(struct console_mux *m, int i)
{
	char buf[4096];
	ssize_t n = read(m->clients[i].fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		drop_client(m, i);
		return;
	}
	if (m->to_qemu.len + (size_t)n <= INPUT_BACKLOG)
		strbuf_add(&m->to_qemu, buf, (size_t)n);
	if (m->qemu >= 0)
		flush(m->qemu, &m->to_qemu);
}

int console_mux_pollfds(const struct console_mux *m, struct pollfd *p)
{
	int n = 0, i;

	if (m->qemu >= 0) {
		p[n].fd = m->qemu;
		p[n].events = POLLIN | (m->to_qemu.len ? POLLOUT : 0);
		p[n++].revents = 0;
	}
	if (m->listen >= 0) {
		p[n].fd = m->listen;
		p[n].events = POLLIN;
		p[n++].revents = 0;
	}
	for (i = 0; i < m->nclients; i++) {
		p[n].fd = m->clients[i].fd;
		p[n].events = POLLIN | (m->clients[i].out.len ? POLLOUT : 0);
		p[n++].revents = 0;
	}
	return n;
}

void console_mux_handle(struct console_mux *m, const struct pollfd *p, int n)
{
	int k, i;

	for (k = 0; k < n; k++) {
		if (!p[k].revents)
			continue;
		if (p[k].fd == m->qemu) {
			if (p[k].revents & POLLOUT)
				flush(m->qemu, &m->to_qemu);
			if (p[k].revents & (POLLIN | POLLHUP | POLLERR))
				from_qemu(m);
			continue;
		}
		if (p[k].fd == m->listen) {
			accept_client(m);
			continue;
		}
		/* clients move when one goes: find it by fd */
		for (i = 0; i < m->nclients; i++) {
			if (m->clients[i].fd != p[k].fd)
				continue;
			if ((p[k].revents & POLLOUT) &&
			    flush(m->clients[i].fd, &m->clients[i].out) < 0) {
				drop_client(m, i);
				break;
			}
			if (p[k].revents & (POLLIN | POLLHUP | POLLERR))
				from_client(m, i);
			break;
		}
	}
}

void console_mux_close(struct console_mux *m)
{
	int i;

	if (m->qemu >= 0)
		from_qemu(m);
	for (i = 0; i < m->nclients; i++) {
		flush(m->clients[i].fd, &m->clients[i].out);
		close(m->clients[i].fd);
		strbuf_release(&m->clients[i].out);
	}
	m->nclients = 0;
	if (m->qemu >= 0)
		close(m->qemu);
	if (m->listen >= 0) {
		close(m->listen);
		unlink(m->path);
	}
	if (m->log >= 0)
		close(m->log);
	free(m->path);
	free(m->log_path);
	strbuf_release(&m->to_qemu);
	memset(m, 0, sizeof(*m));
	m->qemu = m->listen = m->log = -1;
}
