/*
 * `vm serve`: a host's VMs over HTTP/1.1 (libmicrohttpd) for dashboards
 * and monitoring: their state as @status --json gives it, their
 * console's last lines, and Prometheus metrics (docs/serve.md).  What it
 * reads it reads without any VM's lock, at most once a second however
 * many clients ask.
 */
#ifndef VM_HOST_SERVE_H
#define VM_HOST_SERVE_H

#include <stddef.h>

#include "util/str.h"

#define SERVE_LISTEN_MAX 16

struct serve_opts {
	char *const *listen;	/* ADDR:PORT or [ADDR6]:PORT */
	size_t nlisten;
	char *const *dirs;	/* each subdirectory with a guest.conf */
	size_t ndirs;
	char *const *query_from;	/* addresses, ADDR/BITS, names; none:
					 * any client may read */
	size_t nquery;
	const int *fds;		/* listening sockets given (systemd's socket
				 * activation): used instead of listen */
	size_t nfds;
	const char *tls_cert;	/* NULL or "": plain HTTP; else HTTPS */
	const char *tls_key;
	const char *client_ca;	/* NULL or "": no client certificates */
	char *const *control_from;	/* who may control; none: no one */
	size_t ncontrol;
	const char *tokens;	/* NULL or "": no tokens */
};

struct serve;

/*
 * Listen on every address of o and serve, in threads of libmicrohttpd's
 * (the caller's signals should be blocked first).  *bound gets the
 * addresses as they are bound ("127.0.0.1:9180", the port a :0 got),
 * one per line.  Returns 0, or -errno with err in one line.
 */
int serve_start(const struct serve_opts *o, struct serve **s,
		struct strbuf *bound, struct strbuf *err);
/* The VMs found at the last look (one is made when none was). */
int serve_count(struct serve *s);
void serve_stop(struct serve *s);

#endif
