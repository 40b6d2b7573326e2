#include "host/serve.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <json-c/json.h>
#include <microhttpd.h>

#include "host/access.h"
#include "host/act.h"
#include "host/metrics.h"
#include "host/page.h"
#include "host/status.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/proc.h"
#include "vm/vm.h"

/* Refused control requests logged in a second, at most. */
#define REFUSED_LINES 10
/* Threads answering each listening address. */
#define THREADS 4
/* A connection idle this long is closed (seconds). */
#define IDLE_S 10
/* The room for a request's line and headers (libmicrohttpd's default). */
#define HEADERS_MAX (32u << 10)
/* While clients asked within this long, the looker looks each second. */
#define KEEP_MS (60 * 1000)
/* A look older than this (no one asked for a while) is waited for. */
#define STALE_MS 3000
/* A look at the VMs serves every request of the next second. */
#define LOOK_MS 1000
/* QEMU gets this long to say whether it is paused. */
#define QMP_MS 500
/* /v1/vms/NAME/console?tail=N: N lines by default, at most the most. */
#define TAIL_DEFAULT 50
#define TAIL_MOST 1000
/* ...read from at most the file's last bytes */
#define TAIL_BYTES (256u << 10)


/* One VM served, as the last look saw it. */
struct served {
	char *name;		/* its directory's name: the URL's NAME */
	char *dir;		/* its HOSTDIR */
	char *json;		/* its @status --json record */
	char *console;		/* its console.log, or NULL */
	uid_t owner;		/* its HOSTDIR's: console.log must be its */
	char *snaps;		/* its @snapshots --json result, or NULL */
	long long snaps_at;	/* when that was read (proc_now_ms) */
	struct vm_metrics m;
};

struct serve {
	struct MHD_Daemon *d[SERVE_LISTEN_MAX];
	int nd;
	struct strvec dirs;
	struct netlist query;	/* query_from */
	struct netlist control;	/* control_from */
	struct tokens tokens;
	char *cert, *key, *trust;	/* PEM text, or NULL: plain HTTP */
	pthread_mutex_t mu;	/* the rest */
	long long looked;	/* proc_now_ms of the last look, 0: none */
	long long asked;	/* when a client last asked (proc_now_ms) */
	bool stopping;
	bool closing;		/* no new control request is taken */
	pthread_t looker;
	bool looker_on;
	pthread_cond_t look_wanted, look_done;
	unsigned long long looks;	/* how many there were */
	struct served **v;	/* by name */
	int n;
	char *list;		/* /v1/vms */
	char *metrics;		/* /metrics */
	int jobs;		/* control requests being done */
	long long refused_at;	/* this second of refusals began */
	int refused_lines;	/* lines logged in it */
	unsigned long refused_quiet;	/* refusals not logged since */
	pthread_cond_t jobs_done;
};

/* A control request, done in a thread of its own while its connection
 * waits (suspended). */
struct job {
	struct serve *s;
	struct MHD_Connection *c;
	enum act act;
	char *name, *dir;
	unsigned long long secs;
	bool has_secs;
	char *snapshot;		/* backup: its name, or NULL */
	char who[80], from[64];
	bool started, done;
	unsigned code;
	char *body;
};

static void served_free(struct served *e)
{
	if (!e)
		return;
	free(e->name);
	free(e->dir);
	free(e->json);
	free(e->console);
	free(e->snaps);
	vm_metrics_release(&e->m);
	free(e);
}

/* dir/name is a VM directory: a real directory with a guest.conf. */
static bool is_vm_dir(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	char *g = xasprintf("%s/guest.conf", p);
	struct stat st;
	bool yes = !lstat(p, &st) && S_ISDIR(st.st_mode) && !lstat(g, &st) &&
		   S_ISREG(st.st_mode);

	free(p);
	free(g);
	return yes;
}

static int by_name(const void *a, const void *b)
{
	const struct served *x = *(struct served *const *)a;
	const struct served *y = *(struct served *const *)b;

	return strcmp(x->name, y->name);
}

static struct served *find_in(struct served *const *v, int n,
			      const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i]->name, name))
			return v[i];
	return NULL;
}

/* With s->mu: the VM NAME of the last look, or NULL. */
static struct served *find(struct serve *s, const char *name)
{
	return find_in(s->v, s->n, name);
}

/* The VMs under dirs now, into *v (by name; each new, not looked at). */
static int scan(const struct strvec *dirs, struct served ***v)
{
	size_t k;
	int n = 0;

	*v = NULL;
	for (k = 0; k < dirs->nr; k++) {
		DIR *d = opendir(dirs->v[k]);
		struct dirent *de;

		while (d && (de = readdir(d))) {
			struct served *e;

			if (!name_is_valid(de->d_name) ||
			    !is_vm_dir(dirs->v[k], de->d_name) ||
			    find_in(*v, n, de->d_name))
				continue;	/* the first dir's wins */
			e = xcalloc(1, sizeof(*e));
			e->name = xstrdup(de->d_name);
			e->dir = xasprintf("%s/%s", dirs->v[k], de->d_name);
			*v = xrealloc(*v, (size_t)(n + 1) * sizeof(**v));
			(*v)[n++] = e;
		}
		if (d)
			closedir(d);
	}
	if (n)
		qsort(*v, (size_t)n, sizeof(**v), by_name);
	return n;
}

/* One VM's state read again, without its lock: its settings afresh. */
static void look_at(struct served *e)
{
	struct stat hs;
	struct strbuf err = STRBUF_INIT;
	struct json_object *o = json_object_new_object();
	struct vm_status st;
	struct vm vm;

	vm_init(&vm);
	vm.hostdir = xstrdup(e->dir);
	e->owner = !stat(e->dir, &hs) ? hs.st_uid : (uid_t)-1;
	if (vm_load_conf(&vm, NULL, &err))
		strbuf_reset(&err);
	vm_find_workdir(&vm, &err);
	vm_status_read(&vm, QMP_MS, &st);
	vm_status_json(&vm, &st, o);
	free(e->json);
	e->json = xstrdup(json_object_to_json_string_ext(o,
				JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	free(e->console);
	e->console = st.running && st.rs.console_log ?
			     xstrdup(st.rs.console_log) :
		     vm.workdir ? vm_work_path(&vm, "console.log") : NULL;
	vm_metrics_release(&e->m);
	vm_metrics_from(&e->m, e->name, &st);
	vm_status_release(&st);
	vm_release(&vm);
	json_object_put(o);
	strbuf_release(&err);
}

/* With s->mu, called without it: one look, swapped in when done. */
static void look_now(struct serve *s)
{
	struct strbuf list = STRBUF_INIT, met = STRBUF_INIT;
	struct served **v, **old;
	struct vm_metrics *m;
	int i, n, nold;

	pthread_mutex_unlock(&s->mu);
	n = scan(&s->dirs, &v);
	m = xcalloc((size_t)n + 1, sizeof(*m));
	strbuf_addch(&list, '[');
	for (i = 0; i < n; i++) {
		look_at(v[i]);
		strbuf_addf(&list, "%s%s", i ? "," : "", v[i]->json);
		m[i] = v[i]->m;
	}
	strbuf_addstr(&list, "]\n");
	vm_metrics_text(m, n, &met);
	free(m);
	pthread_mutex_lock(&s->mu);
	strbuf_addf(&met, "# HELP vm_serve_looks_total Times vm serve read its VMs' state.\n"
		    "# TYPE vm_serve_looks_total counter\nvm_serve_looks_total %llu\n",
		    ++s->looks);
	old = s->v;
	nold = s->n;
	s->v = v;
	s->n = n;
	free(s->list);
	free(s->metrics);
	s->list = strbuf_detach(&list);
	s->metrics = strbuf_detach(&met);
	s->looked = proc_now_ms();
	pthread_cond_broadcast(&s->look_done);
	for (i = 0; i < nold; i++)
		served_free(old[i]);
	free(old);
}

/*
 * The looker: while clients ask (one did within KEEP_MS), a look each
 * LOOK_MS; else it waits to be asked.  Requests never look themselves,
 * so a look that waits on a slow QEMU holds no request up.
 */
static void *looker(void *arg)
{
	struct serve *s = arg;
	long long now, next;
	struct timespec ts;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		now = proc_now_ms();
		next = s->looked + LOOK_MS;
		if (s->asked && now - s->asked < KEEP_MS && now >= next) {
			look_now(s);
			continue;
		}
		/* until the next look is due, or someone asks */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&s->look_wanted, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/*
 * With s->mu: the last look is recent enough to answer from.  A look a
 * second old is answered from while the looker makes the next; one
 * older than STALE_MS (no client asked for a while) is waited for.
 */
static void look(struct serve *s)
{
	long long now = proc_now_ms();

	s->asked = now;
	if (s->looked && now - s->looked < LOOK_MS && now >= s->looked)
		return;
	pthread_cond_signal(&s->look_wanted);
	while (!s->stopping && (!s->looked || now - s->looked >= STALE_MS))
		pthread_cond_wait(&s->look_done, &s->mu);
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code,
			      const char *type, const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	/* the page runs its own script and reads this server, nothing else */
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; script-src 'self'; "
				"style-src 'self'; connect-src 'self'; "
				"base-uri 'none'; form-action 'none'; "
				"frame-ancestors 'none'");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	if (code == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"vm serve\"");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

#define JSON_TYPE "application/json"

__attribute__((format(printf, 3, 4))) static enum MHD_Result
answer_error(struct MHD_Connection *c, unsigned code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	struct strbuf sb = STRBUF_INIT;
	enum MHD_Result ret;
	const char *t;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(sb.buf));
	t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	strbuf_reset(&sb);
	strbuf_addf(&sb, "%s\n", t);
	ret = answer(c, code, JSON_TYPE, sb.buf, sb.len);
	json_object_put(o);
	strbuf_release(&sb);
	return ret;
}

/* The client's address, or NULL. */
static const struct sockaddr *client_addr(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return ci ? ci->client_addr : NULL;
}

/* query_from allows the client of c (none set: any). */
static bool may_read(const struct serve *s, struct MHD_Connection *c)
{
	return !s->query.n || netlist_has(&s->query, client_addr(c));
}

/*
 * With client_ca: the client of c presented a certificate that it
 * signed (libmicrohttpd asks for one; GnuTLS checks it against the CA
 * given as its trust).
 */
static bool client_certified(const struct serve *s, struct MHD_Connection *c)
{
	gnutls_typed_vdata_st purpose = {
		GNUTLS_DT_KEY_PURPOSE_OID,
		(unsigned char *)(uintptr_t)GNUTLS_KP_TLS_WWW_CLIENT, 0
	};
	const union MHD_ConnectionInfo *ci;
	unsigned int status = 1, n = 0;

	if (!s->trust)
		return true;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session ||
	    !gnutls_certificate_get_peers(ci->tls_session, &n) || !n)
		return false;
	/* a certificate for a client (one without the extension is for
	 * any purpose), not a server's of the same CA */
	return gnutls_certificate_verify_peers(ci->tls_session, &purpose, 1,
					       &status) == GNUTLS_E_SUCCESS &&
	       status == 0;
}

/*
 * The last n lines of path (at most its last TAIL_BYTES), control
 * characters escaped, as a JSON array.
 */
static int tail_lines(const char *path, uid_t owner, long n,
		      struct json_object **out, struct strbuf *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct json_object *a;
	struct stat st;
	char *buf, *p, *end, **line = NULL;
	ssize_t got;
	off_t from;
	long nl = 0, i;

	/* the path comes from files the VM's owner writes: a file not
	 * theirs (a link made to another's) is not read for them */
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != owner) {
		strbuf_addf(err, "no console log (%s)",
			    fd < 0 ? strerror(errno) :
			    !S_ISREG(st.st_mode) ? "not a file" :
						   "not the VM owner's file");
		if (fd >= 0)
			close(fd);
		return -ENOENT;
	}
	from = st.st_size > (off_t)TAIL_BYTES ? st.st_size - TAIL_BYTES : 0;
	buf = xmalloc(TAIL_BYTES + 1);
	got = pread(fd, buf, TAIL_BYTES, from);
	close(fd);
	if (got < 0)
		got = 0;
	buf[got] = '\0';
	end = buf + got;
	p = buf;
	/* a line cut by the window's start is not a line */
	if (from > 0)
		p = (p = memchr(buf, '\n', (size_t)got)) ? p + 1 : end;
	/* each line's start; a last one without its \n counts */
	while (p < end) {
		char *e = memchr(p, '\n', (size_t)(end - p));

		line = xrealloc(line, (size_t)(nl + 1) * sizeof(*line));
		line[nl++] = p;
		p = e ? e + 1 : end;
	}
	a = json_object_new_array();
	for (i = nl > n ? nl - n : 0; i < nl; i++) {
		char *e = i + 1 < nl ? line[i + 1] : end;
		struct strbuf sb = STRBUF_INIT;

		if (e > line[i] && e[-1] == '\n')
			e--;
		strbuf_add_printable(&sb, line[i], (size_t)(e - line[i]), "");
		json_object_array_add(a, json_object_new_string(sb.buf));
		strbuf_release(&sb);
	}
	free(line);
	free(buf);
	*out = a;
	return 0;
}

static enum MHD_Result console(struct serve *s, struct MHD_Connection *c,
			       const char *name)
{
	const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						    "tail");
	struct strbuf err = STRBUF_INIT, body = STRBUF_INIT;
	struct json_object *o, *lines = NULL;
	struct served *e;
	char *path = NULL, *endp;
	uid_t owner;
	long n = TAIL_DEFAULT;
	enum MHD_Result ret;

	if (t) {
		errno = 0;
		n = strtol(t, &endp, 10);
		if (errno || *endp || endp == t || n < 1 || n > TAIL_MOST)
			return answer_error(c, MHD_HTTP_BAD_REQUEST,
					    "tail is a number of lines from 1 to %d",
					    TAIL_MOST);
	}
	pthread_mutex_lock(&s->mu);
	look(s);
	e = find(s, name);
	if (e && e->console)
		path = xstrdup(e->console);
	owner = e ? e->owner : (uid_t)-1;
	pthread_mutex_unlock(&s->mu);
	if (!e)
		return answer_error(c, MHD_HTTP_NOT_FOUND, "no VM named %s", name);
	if (!path || tail_lines(path, owner, n, &lines, &err)) {
		free(path);
		ret = answer_error(c, MHD_HTTP_NOT_FOUND, "%s has %s", name,
				   err.len ? err.buf : "no working directory");
		strbuf_release(&err);
		return ret;
	}
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "lines", lines);
	strbuf_addf(&body, "%s\n", json_object_to_json_string_ext(o,
				JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	ret = answer(c, MHD_HTTP_OK, JSON_TYPE, body.buf, body.len);
	json_object_put(o);
	strbuf_release(&body);
	free(path);
	return ret;
}

/* With s->mu: e's snapshots, read again when a second old. */
static const char *snapshots_of(struct served *e)
{
	long long now = proc_now_ms();
	struct json_object *o;
	struct vm vm;

	if (e->snaps && now - e->snaps_at < LOOK_MS && now >= e->snaps_at)
		return e->snaps;
	o = json_object_new_object();
	vm_init(&vm);
	vm.hostdir = xstrdup(e->dir);
	free(e->snaps);
	e->snaps = vm_snapshots_json(&vm, o) < 0 ? NULL :
		   xasprintf("%s\n", json_object_to_json_string_ext(o,
				JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	e->snaps_at = now;
	vm_release(&vm);
	json_object_put(o);
	return e->snaps;
}

/* What a request's path names. */
enum route { R_NONE, R_METRICS, R_LIST, R_VM, R_SNAPSHOTS, R_CONSOLE,
	     R_ACTION };

/*
 * url's route; name (room for NAME_MAX + 1) gets a VM's NAME, and for
 * /v1/vms/NAME/WORD that is no read, *word WORD (R_ACTION: a POST's).
 */
static enum route route(const char *url, char *name, const char **word)
{
	static const struct {
		const char *tail;
		enum route r;
	} tails[] = { { "", R_VM }, { "/snapshots", R_SNAPSHOTS },
		      { "/console", R_CONSOLE } };
	const char *p;
	size_t n, i;

	if (!strcmp(url, "/metrics"))
		return R_METRICS;
	if (!strcmp(url, "/v1/vms") || !strcmp(url, "/v1/vms/"))
		return R_LIST;
	if (!str_starts_with(url, "/v1/vms/"))
		return R_NONE;
	p = url + 8;
	n = strcspn(p, "/");
	if (n > NAME_MAX)
		return R_NONE;
	memcpy(name, p, n);
	name[n] = '\0';
	if (!name_is_valid(name))
		return R_NONE;
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++)
		if (!strcmp(p + n, tails[i].tail))
			return tails[i].r;
	*word = p + n + 1;
	return p[n] == '/' && !strchr(*word, '/') ? R_ACTION : R_NONE;
}

/* With s->mu: the answer to a read of r (name: its VM's). */
static enum MHD_Result read_locked(struct serve *s, struct MHD_Connection *c,
				   enum route r, const char *name)
{
	struct served *e;
	const char *t;
	char *body;
	enum MHD_Result ret;

	look(s);
	if (r == R_METRICS)
		return answer(c, MHD_HTTP_OK,
			      "text/plain; version=0.0.4; charset=utf-8",
			      s->metrics, strlen(s->metrics));
	if (r == R_LIST)
		return answer(c, MHD_HTTP_OK, JSON_TYPE, s->list,
			      strlen(s->list));
	e = find(s, name);
	if (!e)
		return answer_error(c, MHD_HTTP_NOT_FOUND, "no VM named %s",
				    name);
	if (r == R_SNAPSHOTS) {
		t = snapshots_of(e);
		return t ? answer(c, MHD_HTTP_OK, JSON_TYPE, t, strlen(t)) :
			   answer_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
					"cannot read the backups/ of %s", name);
	}
	body = xasprintf("%s\n", e->json);
	ret = answer(c, MHD_HTTP_OK, JSON_TYPE, body, strlen(body));
	free(body);
	return ret;
}

static void *job_thread(void *arg)
{
	struct job *j = arg;
	struct serve *s = j->s;
	struct MHD_Connection *c = j->c;
	char summary[128];

	struct act_req req = { j->act, j->name, j->dir, j->secs, j->has_secs,
			       j->snapshot, NULL };
	char *desc = xasprintf("taken through vm serve by %s from %s", j->who,
			       j->from);

	req.description = desc;
	j->code = act_run(&req, &j->body, summary);
	free(desc);
	/* every control request in the journal: who, from where, what, how */
	log_info("control: %s %s by %s from %s: %s", act_name(j->act),
		 j->name, j->who, j->from, summary);
	/* once resumed, j is the connection's (freed when it is done,
	 * which counts the job done): nothing of it is touched after */
	pthread_mutex_lock(&s->mu);
	j->done = true;
	MHD_resume_connection(c);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void job_free(void *cls, struct MHD_Connection *c, void **con_cls,
		     enum MHD_RequestTerminationCode toe)
{
	struct job *j = *con_cls;

	(void)c;
	(void)toe;
	if (!j)
		return;
	/* a job is done once its answer went (or its client did): only
	 * then may the server stop */
	if (j->started) {
		struct serve *s = cls;

		pthread_mutex_lock(&s->mu);
		s->jobs--;
		pthread_cond_broadcast(&s->jobs_done);
		pthread_mutex_unlock(&s->mu);
	}
	free(j->name);
	free(j->dir);
	free(j->snapshot);
	free(j->body);
	free(j);
	*con_cls = NULL;
}

/*
 * The request of j is whole: its connection set aside while a thread
 * does it (the thread resumes it with the answer ready).
 */
static enum MHD_Result job_start(struct job *j)
{
	pthread_attr_t at;
	pthread_t th;
	int r;

	j->started = true;
	/* counted from here: a request that never gets whole is not */
	pthread_mutex_lock(&j->s->mu);
	j->s->jobs++;
	pthread_mutex_unlock(&j->s->mu);
	MHD_suspend_connection(j->c);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&th, &at, job_thread, j);
	pthread_attr_destroy(&at);
	if (r) {
		struct serve *s = j->s;

		pthread_mutex_lock(&s->mu);
		j->code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		j->body = xstrdup("{\"error\":\"cannot start a thread\"}\n");
		j->done = true;
		MHD_resume_connection(j->c);
		pthread_mutex_unlock(&s->mu);
	}
	return MHD_YES;
}

/* The client's address as text. */
static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	if (!sa || getnameinfo(sa, sa->sa_family == AF_INET6 ?
					   sizeof(struct sockaddr_in6) :
					   sizeof(struct sockaddr_in),
			       buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST))
		snprintf(buf, len, "?");
}

/*
 * A refused control request, in the log: at most REFUSED_LINES lines a
 * second (clients must not fill the journal), the ones left out counted.
 */
static void refused(struct serve *s, const char *act, const char *name,
		    const char *from, const char *why)
{
	long long now = proc_now_ms();
	unsigned long quiet = 0;
	bool say;

	pthread_mutex_lock(&s->mu);
	if (now - s->refused_at >= 1000 || now < s->refused_at) {
		s->refused_at = now;
		s->refused_lines = 0;
	}
	say = s->refused_lines < REFUSED_LINES;
	if (say) {
		s->refused_lines++;
		quiet = s->refused_quiet;
		s->refused_quiet = 0;
	} else {
		s->refused_quiet++;
	}
	pthread_mutex_unlock(&s->mu);
	if (say && quiet)
		log_info("control: %s %s refused to %s: %s (and %lu more refused, not logged)",
			 act, name, from, why, quiet);
	else if (say)
		log_info("control: %s %s refused to %s: %s", act, name, from,
			 why);
}

/*
 * A browser's request made by another site's page (a form that POSTs
 * here): its Origin names another host, or Sec-Fetch-Site says so.
 */
static bool cross_site(struct MHD_Connection *c)
{
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							 "Origin");
	const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       "Sec-Fetch-Site");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_HOST);
	const char *at;

	if (site && strcmp(site, "same-origin") && strcmp(site, "none"))
		return true;
	if (!origin)
		return false;
	at = strstr(origin, "://");
	return !at || !host || strcmp(at + 3, host);
}

/*
 * Who the client of c is, when it may control: control_from lists it,
 * it came over TLS or from the loopback, and it gave a token of the
 * tokens file (or a certificate client_ca signed).  0 with who filled,
 * or the HTTP status that refuses it, with why.
 */
static unsigned may_control(struct serve *s, struct MHD_Connection *c,
			    char *who, size_t len, const char **why)
{
	const struct sockaddr *sa = client_addr(c);
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);
	const char *name;

	if (!s->control.n || !netlist_has(&s->control, sa)) {
		*why = s->control.n ? "this address may not control (control_from)" :
				      "control is off (no control_from in [serve])";
		return MHD_HTTP_FORBIDDEN;
	}
	if (!s->cert && !net_is_loopback(sa)) {
		*why = "control without TLS is for the loopback only";
		return MHD_HTTP_FORBIDDEN;
	}
	if (cross_site(c)) {
		*why = "a request from another site's page";
		return MHD_HTTP_FORBIDDEN;
	}
	if (auth && !strncasecmp(auth, "Bearer ", 7) &&
	    (name = tokens_find(&s->tokens, auth + 7))) {
		snprintf(who, len, "token %s", name);
		return 0;
	}
	if (s->trust && client_certified(s, c)) {
		snprintf(who, len, "a client_ca certificate");
		return 0;
	}
	*why = auth ? "the token is not one of the tokens file" :
		      "a bearer token is needed (Authorization: Bearer TOKEN)";
	return MHD_HTTP_UNAUTHORIZED;
}

/* POST /v1/vms/NAME/ACTION[?timeout=SECS | ?name=SNAPSHOT]: checked,
 * then done in a thread. */
static enum MHD_Result control(struct serve *s, struct MHD_Connection *c,
			       const char *url, void **con_cls)
{
	const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						    "timeout");
	const char *snap = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						       "name");
	char name[NAME_MAX + 1], who[80], *end;
	const char *why = NULL, *word = NULL;
	struct served *e;
	struct job *j;
	unsigned long long secs = 0;
	unsigned code;
	enum route r = route(url, name, &word);
	int a = r == R_ACTION ? act_parse(word) : -1;

	if (a < 0 && ((r != R_NONE && r != R_ACTION) || page_find(url)))
		return answer_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "POST is not allowed here");
	if (a < 0)
		return answer_error(c, MHD_HTTP_NOT_FOUND,
				    "no such action (POST /v1/vms/NAME/start, stop, kill or backup)");
	code = may_control(s, c, who, sizeof(who), &why);
	if (code) {
		char from[64];

		addr_text(client_addr(c), from, sizeof(from));
		refused(s, act_name((enum act)a), name, from, why);
		return answer_error(c, code, "%s", why);
	}
	if (t) {
		errno = 0;
		secs = strtoull(t, &end, 10);
		if (errno || *end || end == t || secs > 86400 || a != ACT_STOP)
			return answer_error(c, MHD_HTTP_BAD_REQUEST,
					    "timeout is for stop, seconds from 0 to 86400");
	}
	if (snap && (a != ACT_BACKUP || !name_is_valid(snap) ||
		     !strcmp(snap, "LAST")))
		return answer_error(c, MHD_HTTP_BAD_REQUEST,
				    "name is for backup: a snapshot name (letters, digits, . _ -; not LAST)");
	pthread_mutex_lock(&s->mu);
	if (s->closing) {
		pthread_mutex_unlock(&s->mu);
		return answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				    "vm serve is stopping");
	}
	look(s);
	e = find(s, name);
	j = e ? xcalloc(1, sizeof(*j)) : NULL;
	if (j)
		j->dir = xstrdup(e->dir);
	pthread_mutex_unlock(&s->mu);
	if (!j)
		return answer_error(c, MHD_HTTP_NOT_FOUND, "no VM named %s", name);
	j->s = s;
	j->c = c;
	j->act = (enum act)a;
	j->name = xstrdup(name);
	j->secs = secs;
	j->has_secs = t != NULL;
	j->snapshot = snap ? xstrdup(snap) : NULL;
	snprintf(j->who, sizeof(j->who), "%s", who);
	addr_text(client_addr(c), j->from, sizeof(j->from));
	/* done once the request is whole (the next call), not from here */
	*con_cls = j;
	return MHD_YES;
}

/*
 * On a loopback address, the Host a browser sent names this machine (an
 * address, or localhost): a page of another site whose name was made to
 * point at 127.0.0.1 (DNS rebinding) does not read the VMs through it.
 */
static bool host_ok(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_HOST);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned char a[16];
	char name[256];
	const char *end;
	size_t n;

	if (!host || !ci ||
	    getsockname(ci->connect_fd, (struct sockaddr *)&ss, &sl) ||
	    !net_is_loopback((struct sockaddr *)&ss))
		return true;
	if (host[0] == '[') {
		end = strchr(host, ']');
		n = end ? (size_t)(end - host - 1) : 0;
		host++;
	} else {
		end = strrchr(host, ':');
		n = end ? (size_t)(end - host) : strlen(host);
	}
	if (!n || n >= sizeof(name))
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	return inet_pton(AF_INET, name, a) == 1 ||
	       inet_pton(AF_INET6, name, a) == 1 ||
	       !strcasecmp(name, "localhost");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct serve *s = cls;
	const struct page_file *pg;
	char name[NAME_MAX + 1];
	const char *word;
	enum MHD_Result ret;
	enum route r;

	(void)version;
	(void)upload;
	if (*con_cls) {
		/* a control request again: its body (ignored), its answer */
		struct job *j = *con_cls;

		if (upload_size && *upload_size) {
			*upload_size = 0;
			return MHD_YES;
		}
		if (!j->started)	/* the request is whole: do it */
			return job_start(j);
		return j->done ? answer(c, j->code, JSON_TYPE, j->body,
					strlen(j->body)) :
				 MHD_YES;
	}
	if (upload_size && *upload_size)
		*upload_size = 0;	/* no request here takes a body */
	if (!may_read(s, c))
		return answer_error(c, MHD_HTTP_FORBIDDEN,
				    "this address may not read (query_from)");
	if (!host_ok(c))
		return answer_error(c, MHD_HTTP_FORBIDDEN,
				    "Host does not name this machine (on a loopback address only an address or localhost does)");
	if (!client_certified(s, c))
		return answer_error(c, MHD_HTTP_FORBIDDEN,
				    "a client certificate signed by client_ca is needed");
	if (!strcmp(method, MHD_HTTP_METHOD_POST))
		return control(s, c, url, con_cls);
	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return answer_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "%s is not allowed here", method);
	pg = page_find(url);
	if (pg)
		return answer(c, MHD_HTTP_OK, pg->type, pg->body, pg->len);
	r = route(url, name, &word);
	if (r == R_NONE || r == R_ACTION)
		return answer_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
	if (r == R_CONSOLE)
		return console(s, c, name);
	pthread_mutex_lock(&s->mu);
	ret = read_locked(s, c, r, name);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* "ADDR:PORT" or "[ADDR6]:PORT" as a listening socket. */
static int listen_on(const char *spec, int *fd, struct strbuf *err)
{
	struct addrinfo hints, *res = NULL;
	char host[256], serv[16], *colon = strrchr(spec, ':');
	const char *h = spec;
	size_t hl;
	int one = 1, r;

	*fd = -1;
	if (!colon || !colon[1] || strlen(colon + 1) > 5) {
		strbuf_addf(err, "bad listen address '%s' (ADDR:PORT, or [ADDR6]:PORT)",
			    spec);
		return -EINVAL;
	}
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		h = spec + 1;
		hl -= 2;
	}
	if (!hl || hl >= sizeof(host)) {
		strbuf_addf(err, "bad listen address '%s' (ADDR:PORT, or [ADDR6]:PORT)",
			    spec);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(serv, sizeof(serv), "%s", colon + 1);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(host, serv, &hints, &res);
	if (r) {
		strbuf_addf(err, "cannot listen on %s: %s", spec,
			    gai_strerror(r));
		return -EINVAL;
	}
	*fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
		     res->ai_protocol);
	if (*fd >= 0) {
		setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (res->ai_family == AF_INET6)
			setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				   sizeof(one));
	}
	if (*fd < 0 || bind(*fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(*fd, SOMAXCONN) < 0) {
		r = -errno;
		strbuf_addf(err, "cannot listen on %s: %s", spec, strerror(-r));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	return 0;
}

/* libmicrohttpd serving on the listening socket fd (closed on failure). */
static int serve_fd(struct serve *s, int fd, struct strbuf *bound,
		    struct strbuf *err)
{
	struct MHD_OptionItem opt[12];
	struct rlimit nofile;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], serv[16];
	int k = 0;

	if (s->nd == SERVE_LISTEN_MAX) {
		strbuf_addf(err, "at most %d listening sockets", SERVE_LISTEN_MAX);
		close(fd);
		return -EINVAL;
	}
	if (!getsockname(fd, (struct sockaddr *)&ss, &sl) &&
	    !getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv,
			 sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV))
		strbuf_addf(bound, ss.ss_family == AF_INET6 ? "[%s]:%s\n" :
							      "%s:%s\n",
			    host, serv);
	opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
	opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
					    IDLE_S, NULL };
	/* a request's headers get this much room, and no more */
	opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
					    HEADERS_MAX, NULL };
	/* as many connections as the descriptors allow (idle ones must not
	 * lock the others out), less a few for the VMs' files */
	if (getrlimit(RLIMIT_NOFILE, &nofile) || nofile.rlim_cur < 256)
		nofile.rlim_cur = 256;
	if (nofile.rlim_cur > (1u << 20))
		nofile.rlim_cur = 1u << 20;
	opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
					    (intptr_t)nofile.rlim_cur - 128,
					    NULL };
	if (s->cert) {
		opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
						    s->key };
		opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT,
						    0, s->cert };
	}
	if (s->trust)
		opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST,
						    0, s->trust };
	opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
					    (intptr_t)job_free, s };
	/* a look that waits on a slow QEMU holds one thread; the others
	 * answer from the look before */
	opt[k++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE,
					    THREADS, NULL };
	opt[k] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	/* no MHD_USE_ERROR_LOG: a line per bad client would let clients
	 * fill the journal */
	s->d[s->nd] = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
					       MHD_USE_EPOLL |
					       MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
					       (s->cert ? MHD_USE_TLS : 0),
				       0, NULL, NULL, handle, s,
				       MHD_OPTION_ARRAY, opt, MHD_OPTION_END);
	if (!s->d[s->nd]) {
		/* fd is libmicrohttpd's now (it closes it on most failures) */
		strbuf_addstr(err, "libmicrohttpd did not start (a bad tls_cert or tls_key?)");
		return -EIO;
	}
	s->nd++;
	return 0;
}

/* A PEM file of tls_cert, tls_key or client_ca; key: its owner's alone. */
static int read_pem(const char *what, const char *path, bool key, char **out,
		    struct strbuf *err)
{
	struct strbuf sb = STRBUF_INIT;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	*out = NULL;
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		strbuf_addf(err, "%s %s: %s", what, path, strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (key && (st.st_mode & 077)) {
		close(fd);
		strbuf_addf(err, "%s %s may be read by others than its owner (chmod 600 it)",
			    what, path);
		return -EPERM;
	}
	/* the file that was checked, not one put there since */
	r = fs_read_fd(fd, 1u << 20, &sb);
	close(fd);
	if (!r && !strstr(sb.buf, "-----BEGIN "))
		r = -EINVAL;
	if (r) {
		strbuf_addf(err, "%s %s: %s", what, path,
			    r == -EINVAL ? "not PEM" : strerror(-r));
		strbuf_release(&sb);
		return r;
	}
	*out = strbuf_detach(&sb);
	return 0;
}

/* tls_cert, tls_key and client_ca: read, or told what is missing. */
static int read_tls(struct serve *s, const struct serve_opts *o,
		    struct strbuf *err)
{
	bool cert = o->tls_cert && *o->tls_cert, key = o->tls_key && *o->tls_key;
	int r = 0;

	if (cert != key || (o->client_ca && *o->client_ca && !cert)) {
		strbuf_addstr(err, cert != key ?
			      "tls_cert and tls_key go together" :
			      "client_ca needs tls_cert and tls_key (HTTPS)");
		return -EINVAL;
	}
	if (cert)
		r = read_pem("tls_cert", o->tls_cert, false, &s->cert, err);
	if (!r && key)
		r = read_pem("tls_key", o->tls_key, true, &s->key, err);
	if (!r && o->client_ca && *o->client_ca)
		r = read_pem("client_ca", o->client_ca, false, &s->trust, err);
	return r;
}

int serve_start(const struct serve_opts *o, struct serve **out,
		struct strbuf *bound, struct strbuf *err)
{
	struct serve *s = xcalloc(1, sizeof(*s));
	size_t i;
	int r = 0;

	*out = NULL;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->jobs_done, NULL);
	pthread_cond_init(&s->look_done, NULL);
	pthread_cond_init(&s->look_wanted, NULL);
	if (o->nlisten > SERVE_LISTEN_MAX) {
		strbuf_addf(err, "at most %d listen addresses", SERVE_LISTEN_MAX);
		r = -EINVAL;
	}
	for (i = 0; !r && i < o->ndirs; i++) {
		char *d = fs_realpath(o->dirs[i]);
		struct stat st;

		if (!d || stat(d, &st) < 0 || !S_ISDIR(st.st_mode)) {
			strbuf_addf(err, "%s is not a directory", o->dirs[i]);
			r = -ENOTDIR;
		} else {
			strvec_push(&s->dirs, d);
		}
		free(d);
	}
	for (i = 0; !r && i < o->nquery; i++)
		r = netlist_add(&s->query, "query_from", o->query_from[i], err);
	for (i = 0; !r && i < o->ncontrol; i++)
		r = netlist_add(&s->control, "control_from", o->control_from[i],
				err);
	if (!r && o->tokens && *o->tokens)
		r = tokens_read(&s->tokens, o->tokens, err);
	if (!r)
		r = read_tls(s, o, err);
	if (!r) {
		r = -pthread_create(&s->looker, NULL, looker, s);
		s->looker_on = !r;
		if (r)
			strbuf_addf(err, "cannot start a thread: %s", strerror(-r));
	}
	for (i = 0; !r && i < o->nfds; i++)
		r = serve_fd(s, o->fds[i], bound, err);
	for (i = 0; !r && !o->nfds && i < o->nlisten; i++) {
		int fd;

		r = listen_on(o->listen[i], &fd, err);
		if (!r)
			r = serve_fd(s, fd, bound, err);
	}
	if (r) {
		serve_stop(s);
		return r;
	}
	pthread_mutex_lock(&s->mu);
	look(s);
	pthread_mutex_unlock(&s->mu);
	*out = s;
	return 0;
}

int serve_count(struct serve *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void serve_stop(struct serve *s)
{
	int i;

	if (!s)
		return;
	/* a control request being done ends first (its connection waits) */
	pthread_mutex_lock(&s->mu);
	s->closing = true;
	while (s->jobs)
		pthread_cond_wait(&s->jobs_done, &s->mu);
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->nd; i++)
		MHD_stop_daemon(s->d[i]);
	if (s->looker_on) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_broadcast(&s->look_wanted);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->looker, NULL);
	}
	for (i = 0; i < s->n; i++)
		served_free(s->v[i]);
	free(s->v);
	netlist_release(&s->query);
	netlist_release(&s->control);
	tokens_release(&s->tokens);
	free(s->list);
	free(s->metrics);
	free(s->cert);
	free(s->trust);
	if (s->key)
		explicit_bzero(s->key, strlen(s->key));
	free(s->key);
	strvec_clear(&s->dirs);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->jobs_done);
	pthread_cond_destroy(&s->look_done);
	pthread_cond_destroy(&s->look_wanted);
	free(s);
}
