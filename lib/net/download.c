#include "net/download.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/proc.h"
#include "util/sha256.h"

#include <openssl/evp.h>

#define ATTEMPTS 3
#define META_MAX (64u << 10)	/* what a .meta may hold */
#define CONNECT_TIMEOUT_S 30L
#define LOW_SPEED_TIME_S 60L

bool download_is_url(const char *s)
{
	return str_starts_with(s, "http://") || str_starts_with(s, "https://") ||
	       str_starts_with(s, "ftp://") || str_starts_with(s, "file://");
}

static bool is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[64] == '\0';
}

int download_split(const char *spec, char **url, char **sha256)
{
	const char *hash = strchr(spec, '#');

	*sha256 = NULL;
	if (!hash) {
		*url = xstrdup(spec);
		return 0;
	}
	*url = xasprintf("%.*s", (int)(hash - spec), spec);
	if (!str_starts_with(hash, "#sha256=") || !is_hex64(hash + 8)) {
		free(*url);
		*url = NULL;
		return -EINVAL;
	}
	*sha256 = xstrdup(hash + 8);
	for (char *p = *sha256; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* cache/downloads/KEY-NAME: a URL digest, then a readable name. */
static int cache_path(const char *dir, const char *url, char **path)
{
	char hex[65], name[65];
	const char *base = strrchr(url, '/');
	size_t i, n = 0;
	int r = sha256_hex_of(url, strlen(url), hex);

	*path = NULL;
	if (r)
		return r;
	for (base = base ? base + 1 : url; *base && *base != '?' && n < 64;
	     base++)
		if (isalnum((unsigned char)*base) || strchr("._-", *base))
			name[n++] = *base;
	name[n] = '\0';
	i = n ? 16 : 64;
	*path = xasprintf("%s/downloads/%.*s%s%s", dir, (int)i, hex,
			  n ? "-" : "", name);
	return 0;
}

struct xfer {
	int fd;
	bool resuming;
	bool truncated_once;
	CURL *curl;
	struct strbuf etag, modified;
	const struct dl_opts *o;
	curl_off_t base;
	uint64_t size;		/* of the .part as it stands */
	uint64_t cap;		/* it may not grow past this */
	bool len_checked;	/* Content-Length compared with cap */
	bool too_big;
	/* what the last answer announced: -1 when it did not say */
	long long length;	/* Content-Length */
	long long range_start, range_total;	/* Content-Range */
};

/* A download may not leave its file system with less than this free. */
static uint64_t fs_reserve(const struct statvfs *v)
{
	uint64_t total = (uint64_t)v->f_blocks * v->f_frsize;
	uint64_t pct = total / 20;

	return pct < (1ULL << 30) ? pct : 1ULL << 30;
}

uint64_t download_spare(const char *dir)
{
	struct statvfs v;
	uint64_t avail;

	if (statvfs(dir, &v) < 0)
		return UINT64_MAX;
	avail = (uint64_t)v.f_bavail * v.f_frsize;
	return avail > fs_reserve(&v) ? avail - fs_reserve(&v) : 0;
}

/* What the .part may grow to: the setting, and what the disk can spare. */
static uint64_t download_cap(const char *dir, const char *part,
			     const struct dl_opts *o)
{
	struct stat st;
	uint64_t cap = download_spare(dir), have = 0;

	if (cap != UINT64_MAX) {
		if (stat(part, &st) == 0)
			have = (uint64_t)st.st_size;
		cap += have;
	}
	if (o->max_bytes && o->max_bytes < cap)
		cap = o->max_bytes;
	return cap;
}

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	size_t len = size * n, off = 0;

	if (x->resuming && !x->truncated_once) {
		long code = 0;

		/* A server that ignores Range sends it all again. */
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
		if (code == 200) {
			if (ftruncate(x->fd, 0) < 0 ||
			    lseek(x->fd, 0, SEEK_SET) < 0)
				return 0;
			x->base = 0;
			x->size = 0;
		}
		x->truncated_once = true;
	}
	if (!x->len_checked) {
		curl_off_t cl = -1;

		/* A size the server announces is refused before it arrives. */
		curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
				  &cl);
		if (cl > 0 && x->size + (uint64_t)cl > x->cap)
			x->too_big = true;
		x->len_checked = true;
	}
	if (x->too_big || x->size + len > x->cap) {
		x->too_big = true;
		return 0;
	}
	while (off < len) {
		ssize_t w = write(x->fd, p + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		off += (size_t)w;
		x->size += (size_t)w;
	}
	return len;
}

void download_header_value(const char *line, size_t len, const char *name,
			   struct strbuf *out)
{
	size_t nl = strlen(name);

	if (len <= nl || strncasecmp(line, name, nl))
		return;
	strbuf_reset(out);
	strbuf_add(out, line + nl, len - nl);
	strbuf_trim_trailing(out);
	while (out->len && (out->buf[0] == ' ' || out->buf[0] == '\t')) {
		memmove(out->buf, out->buf + 1, out->len);
		out->len--;
	}
}

/* "Content-Length: N" or "Content-Range: bytes A-B/T": the numbers. */
static void announced(struct xfer *x, const char *line, size_t len)
{
	struct strbuf v = STRBUF_INIT;
	unsigned long long a, b, t;
	int used = 0;

	download_header_value(line, len, "Content-Length:", &v);
	if (v.len && sscanf(v.buf, "%llu%n", &a, &used) == 1 &&
	    (size_t)used == v.len && a <= LLONG_MAX)
		x->length = (long long)a;
	strbuf_reset(&v);
	download_header_value(line, len, "Content-Range:", &v);
	if (v.len && sscanf(v.buf, "bytes %llu-%llu/%llu%n", &a, &b, &t,
			    &used) == 3 && (size_t)used == v.len &&
	    a <= b && b < t && t <= LLONG_MAX) {
		x->range_start = (long long)a;
		x->range_total = (long long)t;
	} else if (v.len && (used = 0, sscanf(v.buf, "bytes %llu-%llu/*%n",
					      &a, &b, &used)) == 2 &&
		   used && (size_t)used == v.len && a <= b && b <= LLONG_MAX) {
		x->range_start = (long long)a;	/* the total unknown */
	}
	strbuf_release(&v);
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	size_t len = size * n;

	/* each answer (a redirect's too) starts with its status line */
	if (len > 5 && !strncmp(p, "HTTP/", 5)) {
		x->length = x->range_start = x->range_total = -1;
		strbuf_reset(&x->etag);
		strbuf_reset(&x->modified);
	}
	download_header_value(p, len, "ETag:", &x->etag);
	download_header_value(p, len, "Last-Modified:", &x->modified);
	announced(x, p, len);
	return len;
}

/*
 * A transfer curl calls complete, against what the server announced: a
 * whole file of Content-Length bytes, or the rest of one from where the
 * .part ended to its Content-Range total.  0, or -EIO with err.
 */
static int check_announced(const struct xfer *x, long http, const char *url,
			   struct strbuf *err)
{
	long long want = -1;

	if (http == 206) {
		if (x->range_start != x->base) {
			strbuf_addf(err, "cannot download %s: asked for the bytes from %lld on, the server sent them from %lld",
				    url, (long long)x->base, x->range_start);
			return -EIO;
		}
		want = x->range_total;
	} else if (http == 200) {
		want = x->length;
	}
	if (want >= 0 && (uint64_t)want != x->size) {
		strbuf_addf(err, "cannot download %s: the server announced %lld bytes, %llu arrived",
			    url, want, (unsigned long long)x->size);
		return -EIO;
	}
	return 0;
}

static int on_progress(void *data, curl_off_t total, curl_off_t now,
		       curl_off_t ut, curl_off_t un)
{
	struct xfer *x = data;

	(void)ut;
	(void)un;
	if (proc_interrupted())
		return 1;
	/* total 0: the server has not said (yet) */
	if (x->o->progress && (total > 0 || now > 0))
		x->o->progress(x->o->progress_data,
			       (uint64_t)(x->base + now),
			       total > 0 ? (uint64_t)(x->base + total) : 0);
	return 0;
}

bool download_curl_tls(int code)
{
	return code == CURLE_SSL_CONNECT_ERROR ||
	       code == CURLE_PEER_FAILED_VERIFICATION ||
	       code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_CACERT_BADFILE;
}

void download_curl_reason(int code, const char *curlerr, struct strbuf *err)
{
	CURLcode c = (CURLcode)code;

	if (download_curl_tls(code)) {
		strbuf_addf(err, "TLS error (%s)", curlerr);
		return;
	}
	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		strbuf_addstr(err, "the host name does not resolve (DNS)");
		break;
	case CURLE_COULDNT_CONNECT:
		strbuf_addstr(err, "connection refused or unreachable");
		break;
	case CURLE_OPERATION_TIMEDOUT:
		strbuf_addstr(err, "timed out");
		break;
	case CURLE_FILE_COULDNT_READ_FILE:
		strbuf_addstr(err, "no such file");
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		strbuf_addf(err, "the connection dropped (%s)",
			    *curlerr ? curlerr : curl_easy_strerror(c));
		break;
	default:
		strbuf_addstr(err, *curlerr ? curlerr : curl_easy_strerror(c));
		break;
	}
}

static void describe(CURLcode c, long http, const char *url,
		     const char *curlerr, struct strbuf *err)
{
	strbuf_addf(err, "cannot download %s: ", url);
	if (c == CURLE_HTTP_RETURNED_ERROR)
		strbuf_addf(err, "the server answered HTTP %ld", http);
	else
		download_curl_reason(c, curlerr, err);
}

/* The server could not be reached at all: the cache may stand in. */
static bool unreachable(CURLcode c)
{
	return c == CURLE_COULDNT_RESOLVE_HOST || c == CURLE_COULDNT_CONNECT ||
	       c == CURLE_COULDNT_RESOLVE_PROXY ||
	       c == CURLE_OPERATION_TIMEDOUT;
}

static void read_meta(const char *path, struct strbuf *etag,
		      struct strbuf *modified)
{
	struct strbuf m = STRBUF_INIT;
	char *line, *save = NULL;

	if (fs_read_file(path, META_MAX, &m))
		return;
	for (line = strtok_r(m.buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (str_starts_with(line, "etag "))
			strbuf_addstr(etag, line + 5);
		else if (str_starts_with(line, "modified "))
			strbuf_addstr(modified, line + 9);
	}
	strbuf_release(&m);
}

/*
 * The digest by md of what fd reads from where it is to its end, as
 * lowercase hex into hex (size bytes: twice the digest and a NUL).
 * Returns 0 or -errno (-EIO: libcrypto).
 */
static int fd_digest(int fd, const EVP_MD *md, char *hex, size_t size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	char *buf = xmalloc(1 << 20);
	ssize_t got;
	int r = 0;

	hex[0] = '\0';
	if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL))
		r = -EIO;
	while (!r && (got = read(fd, buf, 1 << 20)) != 0) {
		if (got < 0)
			r = -errno;
		else if (!EVP_DigestUpdate(ctx, buf, (size_t)got))
			r = -EIO;
	}
	if (!r && (!EVP_DigestFinal_ex(ctx, d, &n) || 2 * (size_t)n >= size))
		r = -EIO;
	for (i = 0; !r && i < n; i++) {
		hex[2 * i] = "0123456789abcdef"[d[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
		hex[2 * i + 2] = '\0';
	}
	EVP_MD_CTX_free(ctx);
	free(buf);
	return r;
}

int download_file_sha256(const char *path, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = fd_digest(fd, EVP_sha256(), hex, 65);
	close(fd);
	return r;
}

void download_forget(const char *path)
{
	char *meta = xasprintf("%s.meta", path);

	unlink(path);
	unlink(meta);
	free(meta);
}

/* The hex of alg in a .meta's "digest ALG HEX KEY" for key; found. */
static bool memo_find(const char *metap, const char *alg, const char *key,
		      char *hex, size_t size)
{
	struct strbuf m = STRBUF_INIT, want = STRBUF_INIT;
	char *line, *save = NULL;
	size_t n;
	bool found = false;

	if (fs_read_file(metap, META_MAX, &m))
		return false;
	strbuf_addf(&want, "digest %s ", alg);
	for (line = strtok_r(m.buf, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!str_starts_with(line, want.buf))
			continue;
		line += want.len;
		n = strspn(line, "0123456789abcdef");
		found = n < size && line[n] == ' ' && (n == 64 || n == 128) &&
			!strcmp(line + n + 1, key);
		if (found)
			snprintf(hex, size, "%.*s", (int)n, line);
	}
	strbuf_release(&m);
	strbuf_release(&want);
	return found;
}

/* Keeps alg's hex for key in the .meta, in place of what it said. */
static void memo_add(const char *metap, const char *alg, const char *hex,
		     const char *key)
{
	struct strbuf m = STRBUF_INIT, out = STRBUF_INIT;
	char *line, *save = NULL, *p = xasprintf("digest %s ", alg);

	if (fs_read_file(metap, META_MAX, &m))
		goto out;	/* no .meta: not a file of the cache */
	for (line = strtok_r(m.buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (!str_starts_with(line, p))
			strbuf_addf(&out, "%s\n", line);
	strbuf_addf(&out, "%s%s %s\n", p, hex, key);
	fs_write_atomic(metap, out.buf, out.len, 0644);
out:
	strbuf_release(&m);
	strbuf_release(&out);
	free(p);
}

/*
 * A cached file's digest by md (named alg), while its entry's lock is
 * held: the .meta's when it is for this version of the file (see
 * fs_stat_key), else read through one fd (never a symlink) and kept,
 * when the file did not change meanwhile and its ctime is over a second
 * old (a change within one tick of the clock keeps the ctime: git's
 * "racy" rule).  0 or -errno.
 */
static int cached_digest(const char *file, const char *alg, const EVP_MD *md,
			 char *hex, size_t size)
{
	char *metap = xasprintf("%s.meta", file);
	char key[FS_STAT_KEY], after[FS_STAT_KEY];
	struct stat st;
	time_t t0 = time(NULL);
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	if (!r) {
		fs_stat_key(&st, key);
		if (memo_find(metap, alg, key, hex, size))
			goto out;
		r = fd_digest(fd, md, hex, size);
	}
	if (!r && fstat(fd, &st) == 0) {
		fs_stat_key(&st, after);
		if (!strcmp(key, after) && st.st_ctim.tv_sec + 1 < t0)
			memo_add(metap, alg, hex, key);
	}
out:
	if (fd >= 0)
		close(fd);
	free(metap);
	return r;
}

/*
 * A mismatch deletes the file: it must not be used by accident later.
 * fd < 0: file is in the cache (its digest kept in its .meta); else (a
 * .part, read through fd) the digest goes into out (129 bytes; NULL:
 * not wanted), "" when there was none to check.
 */
static int verify(const char *file, int fd, const char *url,
		  const struct dl_opts *o, char *out, struct strbuf *err)
{
	const char *alg = o->sha512 ? "sha512" : "sha256";
	const char *want = o->sha512 ? o->sha512 : o->sha256;
	const EVP_MD *md = o->sha512 ? EVP_sha512() : EVP_sha256();
	char hex[129];
	int r;

	if (out)
		out[0] = '\0';
	if (!want)
		return 0;
	r = fd < 0 ? cached_digest(file, alg, md, hex, 129) :
		     fd_digest(fd, md, hex, 129);
	if (r) {
		strbuf_addf(err, "%s: %s", file, strerror(-r));
		return r;
	}
	if (strcasecmp(hex, want)) {
		download_forget(file);
		strbuf_addf(err, "checksum mismatch for %s: expected %s %s, got %s (the download was deleted)",
			    url, alg, want, hex);
		return -EINVAL;
	}
	if (out)
		memcpy(out, hex, sizeof(hex));
	return 0;
}

enum outcome { GOT_NEW, NOT_MODIFIED, FAILED };

/*
 * One transfer into part (appended to when it has bytes).  With a cached
 * copy's validators, a 304 answer means "keep it".
 */
static enum outcome transfer(const char *url, const char *part,
			     const char *etag, const char *modified,
			     long long deadline_ms, struct xfer *x,
			     CURLcode *code, long *http, char *curlerr)
{
	struct curl_slist *hdrs = NULL;
	struct stat st;
	CURL *c = curl_easy_init();
	enum outcome out = FAILED;
	char *h;

	*http = 0;
	if (!c) {
		*code = CURLE_OUT_OF_MEMORY;
		return FAILED;
	}
	x->fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (x->fd < 0) {
		*code = CURLE_WRITE_ERROR;
		snprintf(curlerr, CURL_ERROR_SIZE, "%s: %s", part,
			 strerror(errno));
		curl_easy_cleanup(c);
		return FAILED;
	}
	fstat(x->fd, &st);
	x->curl = c;
	x->base = st.st_size;
	x->size = (uint64_t)st.st_size;
	x->len_checked = false;
	x->resuming = st.st_size > 0;
	x->truncated_once = false;
	x->length = x->range_start = x->range_total = -1;
	strbuf_reset(&x->etag);
	strbuf_reset(&x->modified);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
	if (deadline_ms) {
		long long left = deadline_ms - proc_now_ms();

		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left > 1 ? (long)left : 1L);
	}
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vm/" "0.1");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curlerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	if (x->resuming)
		curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE,
				 (curl_off_t)st.st_size);
	if (etag && *etag) {
		h = xasprintf("If-None-Match: %s", etag);
		hdrs = curl_slist_append(hdrs, h);
		free(h);
	}
	if (modified && *modified) {
		h = xasprintf("If-Modified-Since: %s", modified);
		hdrs = curl_slist_append(hdrs, h);
		free(h);
	}
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curlerr[0] = '\0';
	*code = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, http);
	if (*code == CURLE_OK)
		out = *http == 304 ? NOT_MODIFIED : GOT_NEW;
	if (fsync(x->fd) < 0 && out == GOT_NEW)
		out = FAILED;
	close(x->fd);
	x->fd = -1;
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return out;
}

/* One download_fetch: the cache's names for url and what came of it. */
struct fetch {
	const char *url;
	const struct dl_opts *o;
	char *final, *part, *metap, *dir;
	bool cached;
	struct strbuf etag, modified;	/* the cached copy's validators */
	struct xfer x;
	char curlerr[CURL_ERROR_SIZE];
	CURLcode code;
	long http;
	long long deadline;
};

/* Transfer, resuming a dropped connection, starting over when need be. */
static enum outcome fetch_transfer(struct fetch *f)
{
	enum outcome got = FAILED;
	int attempt;

	for (attempt = 0; attempt < ATTEMPTS; attempt++) {
		got = transfer(f->url, f->part, f->cached ? f->etag.buf : NULL,
			       f->cached ? f->modified.buf : NULL, f->deadline,
			       &f->x, &f->code, &f->http, f->curlerr);
		if (got != FAILED || proc_interrupted() || f->x.too_big ||
		    (f->deadline && proc_now_ms() >= f->deadline))
			break;
		/* a dropped connection: resume what arrived */
		if (f->code != CURLE_PARTIAL_FILE &&
		    f->code != CURLE_RECV_ERROR &&
		    f->code != CURLE_GOT_NOTHING)
			break;
	}
	if (got == FAILED && f->code == CURLE_RANGE_ERROR) {
		unlink(f->part);	/* the server cannot resume: start over */
		got = transfer(f->url, f->part, NULL, NULL, f->deadline,
			       &f->x, &f->code, &f->http, f->curlerr);
	}
	return got;
}

/* A transfer that failed: what is kept, and why, in err (or note). */
static int fetch_failed(struct fetch *f, char **path, struct strbuf *note,
			struct strbuf *err)
{
	const struct dl_opts *o = f->o;
	const char *url = f->url;
	int r;

	if (f->x.too_big) {
		/* it filled what it may: nothing of it is worth keeping */
		unlink(f->part);
		if (o->max_bytes && f->x.cap == o->max_bytes)
			strbuf_addf(err, "cannot download %s: larger than download_max (",
				    url);
		else
			strbuf_addf(err, "cannot download %s: larger than the space %s can spare (",
				    url, f->dir);
		strbuf_add_size(err, f->x.cap);
		strbuf_addstr(err, ")");
		return -EFBIG;
	}
	if (f->deadline && f->code == CURLE_OPERATION_TIMEDOUT &&
	    proc_now_ms() >= f->deadline) {
		strbuf_addf(err, "cannot download %s: not done within download_timeout (%u s; %s kept to resume)",
			    url, o->timeout_s, f->part);
		return -ETIMEDOUT;
	}
	if (proc_interrupted() || f->code == CURLE_ABORTED_BY_CALLBACK) {
		strbuf_addf(err, "download of %s interrupted (%s kept to resume)",
			    url, f->part);
		return -EINTR;
	}
	if (f->cached && o->offline_ok && unreachable(f->code)) {
		unlink(f->part);
		strbuf_addf(note, "%s cannot be reached: using the cached copy",
			    url);
		r = verify(f->final, -1, url, o, NULL, err);
		if (!r)
			*path = xstrdup(f->final);
		return r;
	}
	if (f->code == CURLE_HTTP_RETURNED_ERROR)
		unlink(f->part);	/* nothing of it is worth keeping */
	describe(f->code, f->http, url, f->curlerr, err);
	return -EIO;
}

/* A whole download: checked, then the cached copy, with its validators. */
static int fetch_keep(struct fetch *f, char **path, struct strbuf *err)
{
	struct strbuf meta = STRBUF_INIT;
	int r = check_announced(&f->x, f->http, f->url, err), fd;
	char hex[129], key[FS_STAT_KEY];
	struct stat st;

	if (r) {
		unlink(f->part);	/* not what was announced: not kept */
		return r;
	}
	fd = open(f->part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", f->part, strerror(-r));
		return r;
	}
	r = verify(f->part, fd, f->url, f->o, hex, err);
	if (!r && rename(f->part, f->final) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", f->final, strerror(-r));
	}
	if (!r) {
		strbuf_addf(&meta, "url %s\n", f->url);
		if (f->x.etag.len)
			strbuf_addf(&meta, "etag %s\n", f->x.etag.buf);
		if (f->x.modified.len)
			strbuf_addf(&meta, "modified %s\n",
				    f->x.modified.buf);
		/* the digest it was checked with, for the file we wrote
		 * (under the entry's lock) as renamed */
		if (*hex && fstat(fd, &st) == 0) {
			fs_stat_key(&st, key);
			strbuf_addf(&meta, "digest %s %s %s\n",
				    f->o->sha512 ? "sha512" : "sha256", hex,
				    key);
		}
		fs_write_atomic(f->metap, meta.buf, meta.len, 0644);
		*path = xstrdup(f->final);
	}
	close(fd);
	strbuf_release(&meta);
	return r;
}

/* One more use of a cached file: its .meta's time is its last use. */
static void used(const char *metap)
{
	int fd = open(metap, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0) {
		futimens(fd, NULL);
		close(fd);
	}
}

void download_pin(const char *final, const char *hostdir)
{
	char *p = xasprintf("%s.pin", final);
	struct strbuf have = STRBUF_INIT, line = STRBUF_INIT;

	strbuf_addch(&have, '\n');
	strbuf_addf(&line, "\n%s\n", hostdir);
	fs_read_file(p, 1u << 20, &have);
	if (!strstr(have.buf, line.buf)) {
		strbuf_addstr(&have, line.buf + 1);
		/* (the first byte is ours, not the file's) */
		fs_write_atomic(p, have.buf + 1, have.len - 1, 0600);
	}
	strbuf_release(&have);
	strbuf_release(&line);
	free(p);
}

/* A VM that pinned file still names its URL in its guest.conf. */
static bool pinned(const char *file)
{
	char *p = xasprintf("%s.pin", file), *m = xasprintf("%s.meta", file);
	struct strbuf pins = STRBUF_INIT, meta = STRBUF_INIT;
	char *url = NULL, *nl, *line, *next;
	bool yes = false;

	if (fs_read_file(p, 1u << 20, &pins))
		goto out;
	if (fs_read_file(m, META_MAX, &meta) ||
	    !str_starts_with(meta.buf, "url ")) {
		yes = true;	/* pinned, and no URL to tell for how long */
		goto out;
	}
	nl = strchr(meta.buf, '\n');
	url = xasprintf("%.*s", nl ? (int)(nl - meta.buf - 4) :
			(int)meta.len - 4, meta.buf + 4);
	for (line = pins.buf; url && !yes && line && *line; line = next) {
		struct strbuf conf = STRBUF_INIT;
		char *c;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		c = xasprintf("%s/guest.conf", line);
		yes = !fs_read_file(c, 1u << 20, &conf) && strstr(conf.buf, url);
		strbuf_release(&conf);
		free(c);
	}
out:
	free(url);
	strbuf_release(&pins);
	strbuf_release(&meta);
	free(p);
	free(m);
	return yes;
}

/* a cached file used this recently is not trimmed */
#define IN_USE_S 60

struct cached {
	char *path;
	uint64_t size;
	time_t used;
};

static int by_use(const void *a, const void *b)
{
	const struct cached *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

/* The cache's files (not .meta, .pin, .part), with sizes and last uses. */
static size_t list_cached(const char *dir, struct cached **out)
{
	DIR *d = opendir(dir);
	struct cached *v = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *e;

	while (d && (e = readdir(d))) {
		struct stat st, ms;
		char *p, *m;

		if (e->d_name[0] == '.' || str_ends_with(e->d_name, ".meta") ||
		    str_ends_with(e->d_name, ".pin") ||
		    str_ends_with(e->d_name, ".part"))
			continue;
		p = xasprintf("%s/%s", dir, e->d_name);
		if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(p);
			continue;
		}
		m = xasprintf("%s.meta", p);
		if (lstat(m, &ms) == 0 && ms.st_mtime > st.st_mtime)
			st.st_mtime = ms.st_mtime;
		free(m);
		if (n == alloc) {
			alloc = alloc ? 2 * alloc : 16;
			v = xrealloc(v, alloc * sizeof(*v));
		}
		v[n].path = p;
		v[n].size = (uint64_t)st.st_blocks * 512;
		v[n++].used = st.st_mtime;
	}
	if (d)
		closedir(d);
	*out = v;
	return n;
}

void download_trim(const char *cache_dir, uint64_t max, const char *keep,
		   struct strvec *removed)
{
	char *dir = xasprintf("%s/downloads", cache_dir);
	time_t now = time(NULL);
	struct cached *v;
	uint64_t total = 0;
	size_t n = list_cached(dir, &v), i;

	for (i = 0; i < n; i++)
		total += v[i].size;
	qsort(v, n, sizeof(*v), by_use);
	for (i = 0; i < n && max && total > max; i++) {
		char *side;

		/* one used this minute may be about to open (this run's
		 * other images, another vm's start): it stays */
		if ((keep && !strcmp(v[i].path, keep)) ||
		    now - v[i].used < IN_USE_S || pinned(v[i].path))
			continue;
		if (unlink(v[i].path) < 0)
			continue;
		side = xasprintf("%s.meta", v[i].path);
		unlink(side);
		free(side);
		side = xasprintf("%s.pin", v[i].path);
		unlink(side);
		free(side);
		total -= v[i].size;
		if (removed)
			strvec_push(removed, v[i].path);
	}
	for (i = 0; i < n; i++)
		free(v[i].path);
	free(v);
	free(dir);
}

/* What a fetch that gave *path leaves in the cache: used, pinned, trimmed. */
static void after_fetch(const struct fetch *f, const char *path)
{
	if (!path || strcmp(path, f->final))
		return;
	used(f->metap);
	if (f->o->pin_dir)
		download_pin(f->final, f->o->pin_dir);
	if (f->o->cache_max)
		download_trim(f->o->cache_dir, f->o->cache_max, f->final, NULL);
}

/*
 * One fetch of an entry at a time: two vm run at once on one URL (two
 * VMs made from one image) would append to one .part, or one would
 * delete the part the other writes.  dir/.NAME.lock (*lockp) is held
 * until the fetch ends, then removed; the second waits (until
 * deadline, 0: a day, or an interrupt), then finds the file there.
 * The fd, or -errno.
 */
static int lock_entry(const char *dir, const char *final,
		      long long deadline, char **lockp)
{
	const char *base = strrchr(final, '/');

	*lockp = xasprintf("%s/.%s.lock", dir, base ? base + 1 : final);
	return proc_lock_file(*lockp, deadline ? deadline :
			      proc_now_ms() + 24LL * 3600 * 1000);
}

int download_fetch(const char *url, const struct dl_opts *o, char **path,
		   struct strbuf *note, struct strbuf *err)
{
	struct fetch f = { .url = url, .o = o, .etag = STRBUF_INIT,
			   .modified = STRBUF_INIT,
			   .x = { .fd = -1, .etag = STRBUF_INIT,
				  .modified = STRBUF_INIT, .o = o } };
	enum outcome got;
	int r, lock = -1;
	char *lockp = NULL;

	*path = NULL;
	if (o->sha256_out)
		snprintf(o->sha256_out, 65, "%s", o->sha256 ? o->sha256 : "");
	r = cache_path(o->cache_dir, url, &f.final);
	if (r) {
		strbuf_addf(err, "cannot hash %s: %s", url, strerror(-r));
		return r;
	}
	f.part = xasprintf("%s.part", f.final);
	f.metap = xasprintf("%s.meta", f.final);
	f.dir = xasprintf("%s/downloads", o->cache_dir);
	f.cached = fs_exists(f.final);
	if (o->no_network) {
		/* a dry run: the cached file, or the URL itself */
		*path = xstrdup(f.cached ? f.final : url);
		if (f.cached && o->pin_dir)
			download_pin(f.final, o->pin_dir);
		goto out;
	}
	r = fs_mkdir_p(f.dir, 0700);
	if (r) {
		strbuf_addf(err, "cannot make %s: %s", f.dir, strerror(-r));
		goto out;
	}
	if (o->timeout_s)
		f.deadline = proc_now_ms() + (long long)o->timeout_s * 1000;
	lock = lock_entry(f.dir, f.final, f.deadline, &lockp);
	if (lock < 0) {
		r = lock;
		strbuf_addf(err, "%s: %s while another vm downloads it", url,
			    r == -ETIMEDOUT ? "timed out" :
			    r == -EINTR ? "interrupted" : strerror(-r));
		goto out;
	}
	/* what another vm fetched meanwhile is in the cache now */
	f.cached = fs_exists(f.final);
	if (f.cached) {
		read_meta(f.metap, &f.etag, &f.modified);
		unlink(f.part);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	f.x.cap = download_cap(f.dir, f.part, o);
	got = fetch_transfer(&f);
	if (got == NOT_MODIFIED) {
		unlink(f.part);
		r = verify(f.final, -1, url, o, NULL, err);
		if (!r)
			*path = xstrdup(f.final);
	} else if (got == FAILED) {
		r = fetch_failed(&f, path, note, err);
	} else {
		r = fetch_keep(&f, path, err);
	}
	if (!r)
		after_fetch(&f, *path);
	/* its SHA-256 as well, under the lock that keeps the .meta ours */
	if (!r && o->sha256_out && !o->sha256 &&
	    cached_digest(*path, "sha256", EVP_sha256(), o->sha256_out, 65))
		o->sha256_out[0] = '\0';
out:
	proc_unlock_file(lockp, lock);
	free(lockp);
	strbuf_release(&f.etag);
	strbuf_release(&f.modified);
	strbuf_release(&f.x.etag);
	strbuf_release(&f.x.modified);
	free(f.final);
	free(f.part);
	free(f.metap);
	free(f.dir);
	return r;
}
