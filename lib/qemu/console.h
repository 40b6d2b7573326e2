/*
 * The serial console, shared: the vm that runs QEMU is QEMU's one
 * console client and serves the console to any number of clients of its
 * own (as procServ and conserver do).  Each client sees all output; what
 * any client types goes in.  Everything is kept in console.log, capped
 * and rotated once (console.log.1).
 */
#ifndef VM_CONSOLE_H
#define VM_CONSOLE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/str.h"

#define CONSOLE_MAX_CLIENTS 16
/* console.log grows to this, then becomes console.log.1 */
#define CONSOLE_LOG_MAX (8u << 20)

struct console_client {
	int fd;
	struct strbuf out;	/* output it has not taken yet */
};

struct console_mux {
	int qemu;		/* QEMU's console socket, or -1 */
	int listen;		/* our socket, or -1 */
	int log;		/* console.log, or -1 */
	char *log_path;
	uint64_t log_size;
	uint64_t log_max;
	char *path;		/* our socket's path */
	struct console_client clients[CONSOLE_MAX_CLIENTS];
	int nclients;
	struct strbuf to_qemu;	/* input not yet taken by QEMU */
};

/*
 * Serve path (created with mode, group gid unless -1) and append to
 * log_path.  Returns 0 or -errno.  QEMU is attached with
 * console_mux_attach once its socket is there.
 */
int console_mux_open(struct console_mux *m, const char *path, mode_t mode,
		     gid_t gid, const char *log_path, uint64_t log_max);

/* Connect to QEMU's console socket, retrying until the deadline. */
int console_mux_attach(struct console_mux *m, const char *qemu_sock,
		       int timeout_ms);

/* The fds to poll (at most 2 + CONSOLE_MAX_CLIENTS); returns the count. */
int console_mux_pollfds(const struct console_mux *m, struct pollfd *p);

/* Do what the polled fds are ready for. */
void console_mux_handle(struct console_mux *m, const struct pollfd *p,
			int n);

/* Take what QEMU still has for us (at its end), then close everything. */
void console_mux_close(struct console_mux *m);

#endif
