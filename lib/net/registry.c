/* The OCI distribution API through libcurl: blobs, manifests, auth. */
#include "net/registry.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "net/download.h"
#include "util/fsutil.h"
#include "util/proc.h"
#include "util/sha256.h"

#define CONNECT_TIMEOUT_S 30L
#define LOW_SPEED_TIME_S 60L
#define BODY_MAX (4u << 20)	/* answers that are not blobs */
#define DEFAULT_CHUNK (64ull << 20)
#define RETRY_MAX 3		/* 429 and 503 with Retry-After */
#define RETRY_WAIT_MAX_S 60
#define SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

struct registry {
	char *host;		/* as the reference names it */
	char *repo;
	char *root;		/* "https://HOST" */
	char *user, *pass;	/* or NULL: anonymous */
	char *auth_from;	/* the file they came from */
	char *token;		/* a bearer token, or NULL */
	bool basic;		/* the registry asked for basic auth */
	char *scope;		/* "repository:REPO:pull[,push]" */
	char *from_scope;	/* and one to mount from, or NULL */
	struct strbuf ca;	/* the system's CAs and ours, or empty */
	const struct reg_opts *o;
	uint64_t sent, received;
	uint64_t span_base, span_total;	/* progress: see reg_progress_span */
	CURL *c;
};

/* One request: what goes out, and where its answer's body goes. */
struct req {
	const char *method;
	char *url;
	const char *ctype;	/* Content-Type of the body */
	const char *accept;
	char *range;		/* a header line (Range:, Content-Range:) */
	const void *data;	/* body from memory, */
	int fd;			/* or from fd at off, len bytes */
	uint64_t off, len;
	bool has_body;
	int out_fd;		/* the answer's body: appended to out_fd, */
	struct sha256 *out_hash;	/* and hashed, or into resp.body */
	uint64_t out_max;	/* the most that may go to out_fd */
	uint64_t blob_off;	/* where in its blob this transfer starts */
	uint64_t pos;		/* body bytes sent so far */
};

#define REQ_INIT { .fd = -1, .out_fd = -1 }

struct resp {
	long status;
	struct strbuf body, location, digest, range, ctype, auth, retry;
	uint64_t written;	/* body bytes written to out_fd */
	uint64_t behind;	/* out_fd's writeback started up to here */
	bool write_failed, too_much;
};

static void resp_init(struct resp *p)
{
	const struct strbuf empty = STRBUF_INIT;

	memset(p, 0, sizeof(*p));
	p->body = p->location = p->digest = p->range = empty;
	p->ctype = p->auth = p->retry = empty;
}

static void resp_reset(struct resp *p)
{
	p->status = 0;
	p->written = 0;
	p->write_failed = p->too_much = false;
	strbuf_reset(&p->body);
	strbuf_reset(&p->location);
	strbuf_reset(&p->digest);
	strbuf_reset(&p->range);
	strbuf_reset(&p->ctype);
	strbuf_reset(&p->auth);
	strbuf_reset(&p->retry);
}

static void resp_release(struct resp *p)
{
	strbuf_release(&p->body);
	strbuf_release(&p->location);
	strbuf_release(&p->digest);
	strbuf_release(&p->range);
	strbuf_release(&p->ctype);
	strbuf_release(&p->auth);
	strbuf_release(&p->retry);
}

struct xfer {
	struct registry *g;
	struct req *q;
	struct resp *p;
};

static size_t on_header(char *h, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	size_t len = size * n;

	/* each answer (a redirect's too) starts with its status line */
	if (len > 5 && !strncmp(h, "HTTP/", 5)) {
		strbuf_reset(&x->p->location);
		strbuf_reset(&x->p->auth);
	}
	download_header_value(h, len, "Location:", &x->p->location);
	download_header_value(h, len, "Docker-Content-Digest:", &x->p->digest);
	download_header_value(h, len, "Range:", &x->p->range);
	download_header_value(h, len, "Content-Type:", &x->p->ctype);
	download_header_value(h, len, "WWW-Authenticate:", &x->p->auth);
	download_header_value(h, len, "Retry-After:", &x->p->retry);
	return len;
}

static size_t on_data(char *d, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	size_t len = size * n;
	long code = 0;

	curl_easy_getinfo(x->g->c, CURLINFO_RESPONSE_CODE, &code);
	/* an error's body is the registry's JSON, never the blob */
	if (x->q->out_fd < 0 || code < 200 || code >= 300) {
		if (x->p->body.len + len > BODY_MAX)
			return 0;
		strbuf_add(&x->p->body, d, len);
		return len;
	}
	/* a registry that sends more than the manifest said is cut off */
	if (x->p->written + len > x->q->out_max) {
		x->p->too_much = true;
		return 0;
	}
	if (fs_write_all(x->q->out_fd, d, len)) {
		x->p->write_failed = true;
		return 0;
	}
	if (x->q->out_hash)
		sha256_update(x->q->out_hash, d, len);
	x->p->written += len;
	/* its fsync at the end then waits for little */
	fs_write_behind(x->q->out_fd, &x->p->behind,
			x->q->blob_off + x->p->written);
	x->g->received += len;
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	struct req *q = x->q;
	size_t want = size * n;
	ssize_t r;

	if (q->pos >= q->len)
		return 0;
	if (want > q->len - q->pos)
		want = (size_t)(q->len - q->pos);
	if (q->fd < 0) {
		memcpy(buf, (const char *)q->data + q->pos, want);
		r = (ssize_t)want;
	} else {
		do
			r = pread(q->fd, buf, want, (off_t)(q->off + q->pos));
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return CURL_READFUNC_ABORT;
	}
	q->pos += (uint64_t)r;
	x->g->sent += (uint64_t)r;
	return (size_t)r;
}

static int on_seek(void *data, curl_off_t off, int origin)
{
	struct xfer *x = data;

	/* curl rewinds to send the body again (after a 401, a redirect) */
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->q->len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->g->sent -= x->q->pos - (uint64_t)off;
	x->q->pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *data, curl_off_t dt, curl_off_t dn,
		       curl_off_t ut, curl_off_t un)
{
	struct xfer *x = data;
	const struct reg_opts *o = x->g->o;
	uint64_t now = x->q->out_fd >= 0 ? (uint64_t)dn : (uint64_t)un;

	(void)dt;
	(void)ut;
	/* a blob's bytes, within what the caller spans */
	if (o->progress && (x->q->fd >= 0 || x->q->out_fd >= 0) && now)
		o->progress(o->progress_data,
			    x->g->span_base + x->q->blob_off + now,
			    x->g->span_total);
	return proc_interrupted() ? 1 : 0;
}

/* The registry's own words for a failed request: its errors' first. */
static void say_status(const struct registry *g, const char *what,
		       const struct resp *p, struct strbuf *err)
{
	struct json_object *o = json_tokener_parse(p->body.buf),
			   *errs, *e, *code, *msg;
	const char *c = NULL, *m = NULL;

	if (o && json_object_object_get_ex(o, "errors", &errs) &&
	    json_object_is_type(errs, json_type_array) &&
	    json_object_array_length(errs) > 0) {
		e = json_object_array_get_idx(errs, 0);
		if (json_object_object_get_ex(e, "code", &code))
			c = json_object_get_string(code);
		if (json_object_object_get_ex(e, "message", &msg))
			m = json_object_get_string(msg);
	}
	strbuf_addf(err, "%s: %s: ", g->host, what);
	if (c) {
		char *pc = str_printable(c), *pm = str_printable(m ? m : "");

		strbuf_addf(err, "%s%s%s (HTTP %ld)", pc, *pm ? ": " : "", pm,
			    p->status);
		free(pc);
		free(pm);
	} else if (p->status == 401) {
		strbuf_addstr(err, "UNAUTHORIZED: authentication required (HTTP 401)");
	} else if (p->status == 403) {
		strbuf_addstr(err, "DENIED: access to the resource is denied (HTTP 403)");
	} else if (p->status == 413) {
		strbuf_addstr(err, "the registry refused the request as too large (HTTP 413)");
	} else if (p->status == 429) {
		strbuf_addstr(err, "too many requests; the registry asks to wait (HTTP 429)");
	} else {
		strbuf_addf(err, "the registry answered HTTP %ld", p->status);
	}
	if (p->status == 401 && !g->user)
		strbuf_addf(err, "; no credentials for %s in $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json (podman login or docker login writes them)",
			    g->host);
	else if (p->status == 401 && g->auth_from)
		strbuf_addf(err, "; the credentials are from %s", g->auth_from);
	json_object_put(o);
}

static void say_transport(const struct registry *g, const char *what,
			  CURLcode c, const char *curlerr, struct strbuf *err)
{
	strbuf_addf(err, "%s: %s: ", g->host, what);
	download_curl_reason(c, curlerr, err);
	if (download_curl_tls(c))
		strbuf_addf(err, "; a registry with its own CA: registry_ca, or certs.d/%s/ca.crt in ~/.config/containers or /etc/containers",
			    g->host);
}

/* The handle's options for q: callbacks into x, TLS, method, body. */
static void set_transfer(struct registry *g, struct req *q, struct xfer *x,
			 char *curlerr)
{
	curl_easy_reset(g->c);
	curl_easy_setopt(g->c, CURLOPT_URL, q->url);
	curl_easy_setopt(g->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(g->c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(g->c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(g->c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
	curl_easy_setopt(g->c, CURLOPT_USERAGENT, "vm/0.1");
	curl_easy_setopt(g->c, CURLOPT_ERRORBUFFER, curlerr);
	curl_easy_setopt(g->c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(g->c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(g->c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(g->c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(g->c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(g->c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(g->c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(g->c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(g->c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	if (g->ca.len) {
		struct curl_blob b = { g->ca.buf, g->ca.len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(g->c, CURLOPT_CAINFO_BLOB, &b);
	}
	/* blobs may be served from elsewhere (a redirect to storage): curl
	 * sends our Authorization only to the registry itself */
	if (!strcmp(q->method, "GET") || !strcmp(q->method, "HEAD")) {
		curl_easy_setopt(g->c, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(g->c, CURLOPT_MAXREDIRS, 10L);
	}
	if (!strcmp(q->method, "HEAD"))
		curl_easy_setopt(g->c, CURLOPT_NOBODY, 1L);
	else if (strcmp(q->method, "GET"))
		curl_easy_setopt(g->c, CURLOPT_CUSTOMREQUEST, q->method);
	if (q->has_body) {
		curl_easy_setopt(g->c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(g->c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)q->len);
		curl_easy_setopt(g->c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(g->c, CURLOPT_READDATA, x);
		curl_easy_setopt(g->c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(g->c, CURLOPT_SEEKDATA, x);
	} else if (strcmp(q->method, "GET") && strcmp(q->method, "HEAD")) {
		/* a POST or PUT without a body says so */
		curl_easy_setopt(g->c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(g->c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	if (!g->token && g->basic && g->user) {
		curl_easy_setopt(g->c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(g->c, CURLOPT_USERNAME, g->user);
		curl_easy_setopt(g->c, CURLOPT_PASSWORD, g->pass);
	}
}

/* q's header lines: its types, range, and a bearer token. */
static struct curl_slist *headers_for(const struct registry *g,
				      const struct req *q)
{
	struct curl_slist *h = NULL;
	char *line;

	if (q->has_body)
		h = curl_slist_append(h, "Expect:");
	if (q->ctype) {
		line = xasprintf("Content-Type: %s", q->ctype);
		h = curl_slist_append(h, line);
		free(line);
	} else if (q->has_body || strcmp(q->method, "GET")) {
		h = curl_slist_append(h, "Content-Type:");
	}
	if (q->accept) {
		line = xasprintf("Accept: %s", q->accept);
		h = curl_slist_append(h, line);
		free(line);
	}
	if (q->range)
		h = curl_slist_append(h, q->range);
	if (g->token) {
		line = xasprintf("Authorization: Bearer %s", g->token);
		h = curl_slist_append(h, line);
		free(line);
	}
	return h;
}

/* Send q once; 0 with p filled (any HTTP status), or -errno with err. */
static int send_once(struct registry *g, struct req *q, struct resp *p,
		     const char *what, struct strbuf *err)
{
	struct curl_slist *h;
	struct xfer x = { g, q, p };
	char curlerr[CURL_ERROR_SIZE] = "";
	CURLcode c;

	resp_reset(p);
	q->pos = 0;
	set_transfer(g, q, &x, curlerr);
	h = headers_for(g, q);
	curl_easy_setopt(g->c, CURLOPT_HTTPHEADER, h);
	c = curl_easy_perform(g->c);
	curl_easy_getinfo(g->c, CURLINFO_RESPONSE_CODE, &p->status);
	curl_slist_free_all(h);
	if (c == CURLE_ABORTED_BY_CALLBACK && proc_interrupted())
		return -EINTR;
	if (p->too_much) {
		strbuf_addf(err, "%s: %s: the registry sent more than the manifest says the blob holds",
			    g->host, what);
		return -EBADMSG;
	}
	if (p->write_failed) {
		strbuf_addf(err, "%s: %s: cannot write what arrives: %s",
			    g->host, what, strerror(errno));
		return -EIO;
	}
	if (c != CURLE_OK) {
		say_transport(g, what, c, curlerr, err);
		return -EIO;
	}
	return 0;
}

/* A quoted or bare value of key in a challenge's parameters; or NULL. */
static char *challenge_param(const char *s, const char *key)
{
	size_t kl = strlen(key);
	const char *p = s;

	while ((p = strcasestr(p, key))) {
		const char *v = p + kl;

		if ((p == s || p[-1] == ' ' || p[-1] == ',') && *v == '=') {
			v++;
			if (*v == '"') {
				const char *e = strchr(v + 1, '"');

				return e ? xasprintf("%.*s", (int)(e - v - 1), v + 1) :
					   NULL;
			}
			return xasprintf("%.*s", (int)strcspn(v, ", "), v);
		}
		p = v;
	}
	return NULL;
}

static char *url_escape(struct registry *g, const char *s)
{
	char *e = curl_easy_escape(g->c, s, 0), *r = xstrdup(e ? e : "");

	curl_free(e);
	return r;
}

/* Ask the realm of a Bearer challenge for a token for our scope. */
static int get_token(struct registry *g, const char *challenge,
		     const char *what, struct strbuf *err)
{
	char *realm = challenge_param(challenge, "realm");
	char *service = challenge_param(challenge, "service");
	struct strbuf url = STRBUF_INIT;
	struct req q = REQ_INIT;
	struct resp p;
	struct json_object *o = NULL, *t;
	char *esc;
	bool basic = g->basic;
	int r;

	if (!realm || !(str_starts_with(realm, "https://") ||
			str_starts_with(realm, "http://"))) {
		strbuf_addf(err, "%s: %s: the registry names no token realm to authenticate with",
			    g->host, what);
		free(realm);
		free(service);
		return -EACCES;
	}
	strbuf_addstr(&url, realm);
	strbuf_addch(&url, strchr(realm, '?') ? '&' : '?');
	if (service) {
		esc = url_escape(g, service);
		strbuf_addf(&url, "service=%s&", esc);
		free(esc);
	}
	esc = url_escape(g, g->scope);
	strbuf_addf(&url, "scope=%s", esc);
	free(esc);
	if (g->from_scope) {
		esc = url_escape(g, g->from_scope);
		strbuf_addf(&url, "&scope=%s", esc);
		free(esc);
	}
	q.method = "GET";
	q.url = url.buf;
	resp_init(&p);
	/* the realm takes the user's password, when there is one */
	free(g->token);
	g->token = NULL;
	g->basic = g->user != NULL;
	r = send_once(g, &q, &p, "authenticating", err);
	g->basic = basic;
	if (!r && p.status != 200) {
		say_status(g, "authenticating", &p, err);
		r = p.status == 401 || p.status == 403 ? -EACCES : -EIO;
	}
	if (!r) {
		o = json_tokener_parse(p.body.buf);
		if (o && ((json_object_object_get_ex(o, "token", &t) &&
			   json_object_is_type(t, json_type_string)) ||
			  (json_object_object_get_ex(o, "access_token", &t) &&
			   json_object_is_type(t, json_type_string))))
			g->token = xstrdup(json_object_get_string(t));
		if (!g->token || !*g->token) {
			strbuf_addf(err, "%s: %s: the token realm answered no token",
				    g->host, what);
			r = -EACCES;
		}
	}
	json_object_put(o);
	resp_release(&p);
	strbuf_release(&url);
	free(realm);
	free(service);
	return r;
}

/* Wait what Retry-After asks (seconds; at most a minute); -EINTR. */
static int wait_retry(const struct resp *p, int attempt)
{
	uint64_t s = 1u << attempt;
	long long until;

	if (p->retry.len)
		parse_uint(p->retry.buf, 0, RETRY_WAIT_MAX_S, &s);
	until = proc_now_ms() + (long long)s * 1000;
	while (proc_now_ms() < until) {
		struct timespec ts = { 0, 100 * 1000000L };

		if (proc_interrupted())
			return -EINTR;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/*
 * Send q; on a 401, authenticate as the registry asks and send it
 * again; on a 429 or 503, wait as it asks, up to RETRY_MAX times.
 */
static int call(struct registry *g, struct req *q, struct resp *p,
		const char *what, struct strbuf *err)
{
	bool authed = false;
	int r, attempt = 0;

	for (;;) {
		r = send_once(g, q, p, what, err);
		if (r)
			return r;
		if (p->status == 401 && !authed) {
			authed = true;
			if (!strncasecmp(p->auth.buf, "Bearer", 6)) {
				r = get_token(g, p->auth.buf, what, err);
				if (r)
					return r;
				continue;
			}
			if (!strncasecmp(p->auth.buf, "Basic", 5) &&
			    g->user && !g->basic) {
				g->basic = true;
				continue;
			}
		}
		if ((p->status == 429 || p->status == 503) &&
		    attempt < RETRY_MAX) {
			r = wait_retry(p, attempt++);
			if (r)
				return r;
			continue;
		}
		return 0;
	}
}

/* The answer's status is one of want (0-terminated), else say it. */
static int expect(const struct registry *g, const struct resp *p,
		  const char *what, const long *want, struct strbuf *err)
{
	for (; *want; want++)
		if (p->status == *want)
			return 0;
	say_status(g, what, p, err);
	if (p->status == 404)
		return -ENOENT;
	return p->status == 401 || p->status == 403 ? -EACCES : -EIO;
}

/* call(), then expect(): p is initialised here, released by the caller. */
static int request(struct registry *g, struct req *q, struct resp *p,
		   const char *what, const long *want, struct strbuf *err)
{
	int r;

	resp_init(p);
	r = call(g, q, p, what, err);
	return r ? r : expect(g, p, what, want, err);
}

static char *api_url(const struct registry *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *api_url(const struct registry *g, const char *fmt, ...)
{
	struct strbuf u = STRBUF_INIT;
	va_list ap;

	strbuf_addf(&u, "%s/v2/%s/", g->root, g->repo);
	va_start(ap, fmt);
	strbuf_vaddf(&u, fmt, ap);
	va_end(ap);
	return strbuf_detach(&u);
}

/* A Location header, absolute or relative to the registry. */
static char *resolve(const struct registry *g, const struct strbuf *loc)
{
	CURLU *u = curl_url();
	char *out = NULL, *r = NULL;

	if (u && !curl_url_set(u, CURLUPART_URL, g->root, 0) &&
	    !curl_url_set(u, CURLUPART_URL, loc->buf, 0) &&
	    !curl_url_get(u, CURLUPART_URL, &out, 0))
		r = xstrdup(out);
	curl_free(out);
	curl_url_cleanup(u);
	return r;
}

static void read_ca(struct registry *g, const char *file)
{
	struct strbuf mine = STRBUF_INIT;

	if (fs_read_file(file, 1 << 20, &mine))
		return;
	/* ours with the system's: both are trusted */
	if (fs_read_file(SYSTEM_CA, 16 << 20, &g->ca))
		strbuf_reset(&g->ca);
	strbuf_addch(&g->ca, '\n');
	strbuf_add(&g->ca, mine.buf, mine.len);
	strbuf_release(&mine);
}

int reg_open(struct registry **out, const struct oci_ref *r,
	     const struct reg_opts *o, const char *from, struct strbuf *err)
{
	struct registry *g = xcalloc(1, sizeof(*g));
	const struct strbuf empty = STRBUF_INIT;
	int rc;

	*out = NULL;
	g->ca = empty;
	g->o = o;
	g->host = xstrdup(r->host);
	g->repo = xstrdup(r->repo);
	g->root = xasprintf("%s://%s", o->insecure ? "http" : "https",
			    oci_ref_api_host(r));
	g->scope = xasprintf("repository:%s:%s", r->repo,
			     o->push ? "pull,push" : "pull");
	if (from)
		g->from_scope = xasprintf("repository:%s:pull", from);
	rc = oci_auth_find(r, &g->user, &g->pass, &g->auth_from, err);
	if (rc < 0) {
		reg_close(g);
		return rc;
	}
	if (!o->insecure) {
		/* as the containers tools: the user's certs.d, the system's */
		char *home = fs_expand_home("~/.config/containers/certs.d");
		char *mine = xasprintf("%s/%s/ca.crt", home, r->host);
		char *certs = xasprintf("/etc/containers/certs.d/%s/ca.crt",
					r->host);

		read_ca(g, o->ca_file ? o->ca_file :
			   fs_exists(mine) ? mine : certs);
		free(home);
		free(mine);
		free(certs);
		if (o->ca_file && !g->ca.len) {
			strbuf_addf(err, "registry_ca %s: cannot be read", o->ca_file);
			reg_close(g);
			return -EINVAL;
		}
	}
	g->c = curl_easy_init();
	if (!g->c) {
		reg_close(g);
		return -ENOMEM;
	}
	*out = g;
	return 0;
}

void reg_close(struct registry *g)
{
	if (!g)
		return;
	if (g->c)
		curl_easy_cleanup(g->c);
	free(g->host);
	free(g->repo);
	free(g->root);
	free(g->user);
	if (g->pass)
		explicit_bzero(g->pass, strlen(g->pass));
	free(g->pass);
	free(g->auth_from);
	free(g->token);
	free(g->scope);
	free(g->from_scope);
	strbuf_release(&g->ca);
	free(g);
}

void reg_progress_span(struct registry *g, uint64_t base, uint64_t total)
{
	g->span_base = base;
	g->span_total = total;
	if (g->o->progress && total)
		g->o->progress(g->o->progress_data, base, total);
}

uint64_t reg_sent(const struct registry *g)
{
	return g->sent;
}

uint64_t reg_received(const struct registry *g)
{
	return g->received;
}

int reg_blob_exists(struct registry *g, const char *digest,
		    struct strbuf *err)
{
	static const long ok[] = { 200, 404, 0 };
	struct req q = REQ_INIT;
	struct resp p;
	int r;

	q.method = "HEAD";
	q.url = api_url(g, "blobs/%s", digest);
	r = request(g, &q, &p, "asking for a blob", ok, err);
	if (!r)
		r = p.status == 200;
	resp_release(&p);
	free(q.url);
	return r;
}

/* PUT (the last part, or all) or PATCH (a part) of an upload. */
static int upload_part(struct registry *g, char **loc, const char *digest,
		       int fd, const void *data, uint64_t off, uint64_t len,
		       bool last, struct strbuf *err)
{
	static const long put_ok[] = { 201, 0 }, patch_ok[] = { 202, 0 };
	struct req q = REQ_INIT;
	struct resp p;
	char *next;
	int r;

	q.method = last ? "PUT" : "PATCH";
	q.url = last ? xasprintf("%s%cdigest=%s", *loc,
				 strchr(*loc, '?') ? '&' : '?', digest) :
		       xstrdup(*loc);
	q.fd = fd;
	q.data = data ? (const char *)data + off : NULL;
	q.off = off;
	q.blob_off = off;
	q.len = len;
	q.has_body = len > 0;
	q.ctype = "application/octet-stream";
	if (!last)
		q.range = xasprintf("Content-Range: %llu-%llu",
				    (unsigned long long)off,
				    (unsigned long long)(off + len - 1));
	r = request(g, &q, &p, "uploading a blob", last ? put_ok : patch_ok, err);
	if (!r && !last) {
		next = p.location.len ? resolve(g, &p.location) : NULL;
		if (!next) {
			strbuf_addf(err, "%s: uploading a blob: the registry named no place for the next part",
				    g->host);
			r = -EIO;
		} else {
			free(*loc);
			*loc = next;
		}
	}
	resp_release(&p);
	free(q.url);
	free(q.range);
	return r;
}

int reg_blob_put(struct registry *g, const char *digest, int fd,
		 const void *data, uint64_t size, const char *from,
		 bool *mounted, struct strbuf *err)
{
	static const long ok[] = { 201, 202, 0 };
	uint64_t chunk = g->o->chunk ? g->o->chunk : DEFAULT_CHUNK, off = 0;
	struct req q = REQ_INIT;
	struct resp p;
	char *loc = NULL, *f = NULL;
	int r;

	*mounted = false;
	q.method = "POST";
	if (from) {
		f = url_escape(g, from);
		q.url = api_url(g, "blobs/uploads/?mount=%s&from=%s", digest, f);
		free(f);
	} else {
		q.url = api_url(g, "blobs/uploads/");
	}
	r = request(g, &q, &p, "starting an upload", ok, err);
	if (!r && p.status == 201) {
		*mounted = true;
		goto out;
	}
	if (!r && !(loc = p.location.len ? resolve(g, &p.location) : NULL)) {
		strbuf_addf(err, "%s: starting an upload: the registry named no place for it",
			    g->host);
		r = -EIO;
	}
	/* a blob larger than a chunk goes in parts; the last with the PUT */
	while (!r && size - off > chunk) {
		r = upload_part(g, &loc, digest, fd, data, off, chunk, false, err);
		off += chunk;
	}
	if (!r)
		r = upload_part(g, &loc, digest, fd, data, off, size - off, true,
				err);
out:
	free(loc);
	resp_release(&p);
	free(q.url);
	return r;
}

static bool same_digest(const char *want, const char *hex)
{
	return str_starts_with(want, "sha256:") && !strcmp(want + 7, hex);
}

/*
 * The part a blob goes to, opened for appending: what a broken transfer
 * left (no larger than the blob) hashed into h and counted in *have,
 * anything else emptied.  The fd, or -errno with err.
 */
static int open_part(const char *part, uint64_t size, struct sha256 *h,
		     uint64_t *have, struct strbuf *err)
{
	struct stat st;
	int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int r;

	*have = 0;
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 &&
	    (uint64_t)st.st_size <= size) {
		char *buf = xmalloc(1 << 20);
		ssize_t n;

		while ((n = read(fd, buf, 1 << 20)) > 0) {
			sha256_update(h, buf, (size_t)n);
			*have += (uint64_t)n;
		}
		free(buf);
		if (n == 0)
			return fd;
	} else if (fd >= 0 && ftruncate(fd, 0) == 0) {
		return fd;
	}
	r = -errno;
	if (fd >= 0)
		close(fd);
	strbuf_addf(err, "%s: %s", part, strerror(-r));
	return r;
}

int reg_blob_get(struct registry *g, const char *digest, uint64_t size,
		 const char *part, struct strbuf *err)
{
	static const long ok[] = { 200, 206, 0 };
	struct req q = REQ_INIT;
	struct resp p;
	struct sha256 h;
	char hex[65];
	uint64_t have;
	int fd, r = 0;

	sha256_init(&h);
	fd = open_part(part, size, &h, &have, err);
	if (fd < 0) {
		sha256_release(&h);
		return fd;
	}
	q.method = "GET";
	q.url = api_url(g, "blobs/%s", digest);
	q.out_fd = fd;
	q.out_hash = &h;
	q.out_max = size - have;
	q.blob_off = have;
	if (have && have < size)
		q.range = xasprintf("Range: bytes=%llu-", (unsigned long long)have);
	if (have < size)
		r = request(g, &q, &p, "downloading a blob", ok, err);
	else
		resp_init(&p);
	if (!r && have + p.written != size) {
		strbuf_addf(err, "%s: blob %.19s: %llu bytes arrived, the manifest says %llu",
			    g->host, digest,
			    (unsigned long long)(have + p.written),
			    (unsigned long long)size);
		r = -EBADMSG;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (!r && (sha256_final_hex(&h, hex) || !same_digest(digest, hex))) {
		strbuf_addf(err, "%s: blob %.19s: what arrived has another digest (sha256:%.12s)",
			    g->host, digest, hex);
		r = -EBADMSG;
	}
	if (r == -EBADMSG)
		unlink(part);
	resp_release(&p);
	free(q.url);
	free(q.range);
	sha256_release(&h);
	close(fd);
	/*
	 * What an earlier pull left was not the blob's start, or the
	 * registry ignored the Range and sent it all (more than was left):
	 * once afresh.
	 */
	if (r == -EBADMSG && have) {
		strbuf_reset(err);
		return reg_blob_get(g, digest, size, part, err);
	}
	return r;
}

int reg_blob_get_mem(struct registry *g, const char *digest, size_t max,
		     struct strbuf *body, struct strbuf *err)
{
	static const long ok[] = { 200, 0 };
	struct req q = REQ_INIT;
	struct resp p;
	char hex[65];
	int r;

	q.method = "GET";
	q.url = api_url(g, "blobs/%s", digest);
	r = request(g, &q, &p, "downloading a blob", ok, err);
	if (!r && (p.body.len > max ||
		   sha256_hex_of(p.body.buf, p.body.len, hex) ||
		   !same_digest(digest, hex))) {
		strbuf_addf(err, "%s: blob %.19s: what arrived has another digest or is too large",
			    g->host, digest);
		r = -EBADMSG;
	}
	if (!r) {
		strbuf_reset(body);
		strbuf_add(body, p.body.buf, p.body.len);
	}
	resp_release(&p);
	free(q.url);
	return r;
}

int reg_manifest_put(struct registry *g, const char *reference,
		     const char *media_type, const char *data, size_t len,
		     char digest[72], struct strbuf *err)
{
	static const long ok[] = { 201, 0 };
	struct req q = REQ_INIT;
	struct resp p;
	char hex[65];
	int r;

	if (sha256_hex_of(data, len, hex))
		return -EIO;
	snprintf(digest, 72, "sha256:%s", hex);
	q.method = "PUT";
	q.url = api_url(g, "manifests/%s", reference);
	q.data = data;
	q.len = len;
	q.has_body = true;
	q.ctype = media_type;
	r = request(g, &q, &p, "putting the manifest", ok, err);
	resp_release(&p);
	free(q.url);
	return r;
}

int reg_manifest_get(struct registry *g, const char *reference,
		     struct strbuf *body, char **media_type, char digest[72],
		     struct strbuf *err)
{
	static const long ok[] = { 200, 0 };
	struct req q = REQ_INIT;
	struct resp p;
	char hex[65];
	int r;

	*media_type = NULL;
	q.method = "GET";
	q.url = api_url(g, "manifests/%s", reference);
	q.accept = OCI_MANIFEST_TYPE ", " DOCKER_MANIFEST_TYPE ", " OCI_INDEX_TYPE;
	r = request(g, &q, &p, "getting the manifest", ok, err);
	if (!r && sha256_hex_of(p.body.buf, p.body.len, hex))
		r = -EIO;
	if (!r && str_starts_with(reference, "sha256:") &&
	    !same_digest(reference, hex)) {
		strbuf_addf(err, "%s: the manifest that arrived is not %.19s",
			    g->host, reference);
		r = -EBADMSG;
	}
	if (!r) {
		snprintf(digest, 72, "sha256:%s", hex);
		strbuf_reset(body);
		strbuf_add(body, p.body.buf, p.body.len);
		*media_type = xstrdup(p.ctype.buf);
	}
	resp_release(&p);
	free(q.url);
	return r;
}
