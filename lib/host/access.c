#include "host/access.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "util/fsutil.h"

/* sa as a struct net of full length; false for another family. */
static bool client_net(const struct sockaddr *sa, struct net *n)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
						  0, 0, 0xff, 0xff };

	memset(n, 0, sizeof(*n));
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		n->family = AF_INET;
		memcpy(n->a, &in->sin_addr, 4);
		n->bits = 32;
		return true;
	}
	if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		/* an IPv4 client of a dual-stack socket is an IPv4 one */
		if (!memcmp(in6->sin6_addr.s6_addr, mapped, 12)) {
			n->family = AF_INET;
			memcpy(n->a, in6->sin6_addr.s6_addr + 12, 4);
			n->bits = 32;
		} else {
			n->family = AF_INET6;
			memcpy(n->a, in6->sin6_addr.s6_addr, 16);
			n->bits = 128;
		}
		return true;
	}
	return false;
}

static bool in_net(const struct net *range, const struct net *a)
{
	int full = range->bits / 8, rest = range->bits % 8;

	if (range->family != a->family || memcmp(range->a, a->a, (size_t)full))
		return false;
	return !rest || ((range->a[full] ^ a->a[full]) &
			 (unsigned char)(0xff << (8 - rest))) == 0;
}

static void push(struct netlist *l, const struct net *n)
{
	l->v = xrealloc(l->v, (size_t)(l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = *n;
}

int netlist_add(struct netlist *l, const char *what, const char *spec,
		struct strbuf *err)
{
	const char *slash = strchr(spec, '/');
	char *addr = xasprintf("%.*s",
			       (int)(slash ? slash - spec : (long)strlen(spec)),
			       spec);
	struct addrinfo hints, *res = NULL, *ai;
	struct net n;
	long bits = -1;
	char *end;
	int r = 0;

	memset(&n, 0, sizeof(n));
	if (slash) {
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || bits < 0)
			bits = 1000;
	}
	if (inet_pton(AF_INET, addr, n.a) == 1) {
		n.family = AF_INET;
		n.bits = bits < 0 ? 32 : (int)bits;
	} else if (inet_pton(AF_INET6, addr, n.a) == 1) {
		n.family = AF_INET6;
		n.bits = bits < 0 ? 128 : (int)bits;
	}
	if (n.family && n.bits <= (n.family == AF_INET ? 32 : 128)) {
		push(l, &n);
		goto out;
	}
	if (n.family || slash || !*addr) {
		strbuf_addf(err, "bad %s entry '%s' (an address, ADDR/BITS or a host name)",
			    what, spec);
		r = -EINVAL;
		goto out;
	}
	/* a name: resolved now, as camvirtd does */
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(addr, NULL, &hints, &res);
	if (r) {
		strbuf_addf(err, "%s: cannot resolve %s: %s", what, addr,
			    gai_strerror(r));
		r = -ENOENT;
		goto out;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if (client_net(ai->ai_addr, &n))
			push(l, &n);
	freeaddrinfo(res);
out:
	free(addr);
	return r;
}

bool netlist_has(const struct netlist *l, const struct sockaddr *sa)
{
	struct net a;
	int i;

	if (!client_net(sa, &a))
		return false;
	for (i = 0; i < l->n; i++)
		if (in_net(&l->v[i], &a))
			return true;
	return false;
}

bool net_is_loopback(const struct sockaddr *sa)
{
	static const unsigned char one[16] = { [15] = 1 };
	struct net a;

	if (!client_net(sa, &a))
		return false;
	return a.family == AF_INET ? a.a[0] == 127 : !memcmp(a.a, one, 16);
}

void netlist_release(struct netlist *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' :
	       c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int tokens_read(struct tokens *t, const char *path, struct strbuf *err)
{
	struct strbuf sb = STRBUF_INIT;
	struct stat st;
	char *line, *next;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = 0, no = 0;

	memset(t, 0, sizeof(*t));
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		strbuf_addf(err, "tokens %s: %s", path, strerror(-r));
		goto out;
	}
	if ((st.st_mode & 077) || st.st_uid != geteuid()) {
		strbuf_addf(err, "tokens %s may be read by others than its owner, or is not this user's (chmod 600 it)",
			    path);
		r = -EPERM;
		goto out;
	}
	r = fs_read_fd(fd, 1u << 20, &sb);
	if (r) {
		strbuf_addf(err, "tokens %s: %s", path, strerror(-r));
		goto out;
	}
	for (line = sb.buf; !r && line && *line; line = next) {
		char name[65], hex[65], extra;
		int i, k;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		no++;
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#')
			continue;
		k = sscanf(line, "%64s %64s %c", name, hex, &extra);
		if (k != 2 || !name_is_valid(name) || strlen(hex) != 64 ||
		    strspn(hex, "0123456789abcdefABCDEF") != 64) {
			strbuf_addf(err, "tokens %s, line %d: not NAME SHA256-HEX",
				    path, no);
			r = -EINVAL;
			break;
		}
		t->name = xrealloc(t->name, (size_t)(t->n + 1) * sizeof(*t->name));
		t->sum = xrealloc(t->sum, (size_t)(t->n + 1) * sizeof(*t->sum));
		snprintf(t->name[t->n], sizeof(t->name[t->n]), "%s", name);
		for (i = 0; i < 32; i++)
			t->sum[t->n][i] = (unsigned char)(hexval(hex[2 * i]) << 4 |
							  hexval(hex[2 * i + 1]));
		t->n++;
	}
out:
	if (fd >= 0)
		close(fd);
	if (sb.buf)
		OPENSSL_cleanse(sb.buf, sb.len);
	strbuf_release(&sb);
	if (r)
		tokens_release(t);
	return r;
}

const char *tokens_find(const struct tokens *t, const char *bearer)
{
	unsigned char sum[32];
	const char *found = NULL;
	int i;

	if (!bearer || !*bearer)
		return NULL;
	SHA256((const unsigned char *)bearer, strlen(bearer), sum);
	/* every entry compared, in constant time each */
	for (i = 0; i < t->n; i++)
		if (!CRYPTO_memcmp(sum, t->sum[i], 32) && !found)
			found = t->name[i];
	return found;
}

void tokens_release(struct tokens *t)
{
	free(t->name);
	free(t->sum);
	memset(t, 0, sizeof(*t));
}
