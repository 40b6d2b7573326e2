/*
 * Who may ask `vm serve` what: lists of addresses and ranges
 * (query_from, control_from), and bearer tokens kept as their SHA-256.
 */
#ifndef VM_HOST_ACCESS_H
#define VM_HOST_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util/str.h"

/* An address, or a range of ADDR/BITS. */
struct net {
	int family;		/* AF_INET, AF_INET6 */
	unsigned char a[16];
	int bits;
};

struct netlist {
	struct net *v;
	int n;
};

/*
 * Add an entry of setting what (for errors): ADDR, ADDR/BITS, or a host
 * name (each of its addresses, resolved now).  0, or -errno with err.
 */
int netlist_add(struct netlist *l, const char *what, const char *spec,
		struct strbuf *err);
/* sa is in l (an IPv4 client of a dual-stack socket counts as IPv4). */
bool netlist_has(const struct netlist *l, const struct sockaddr *sa);
/* sa is a loopback address (127/8, ::1). */
bool net_is_loopback(const struct sockaddr *sa);
void netlist_release(struct netlist *l);

/* The tokens file: NAME SHA256-HEX lines. */
struct tokens {
	char (*name)[65];
	unsigned char (*sum)[32];
	int n;
};

/*
 * Read path: its owner's alone (else -EPERM), each line NAME HEX64
 * ('#' comments and blank lines skipped).  0, or -errno with err.
 */
int tokens_read(struct tokens *t, const char *path, struct strbuf *err);
/*
 * The name of the token whose SHA-256 the bearer token's is (compared
 * in constant time), or NULL.
 */
const char *tokens_find(const struct tokens *t, const char *bearer);
void tokens_release(struct tokens *t);

#endif
