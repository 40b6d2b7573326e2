/* ISOs and images by URL: a libcurl download into a cache. */
#ifndef VM_DOWNLOAD_H
#define VM_DOWNLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "util/str.h"

struct dl_opts {
	const char *cache_dir;	/* files go to cache_dir/downloads */
	const char *sha256;	/* expected digest (hex), or NULL */
	const char *sha512;	/* the same, SHA-512 (a checksum file's) */
	bool offline_ok;	/* use a cached copy when the server is gone */
	bool no_network;	/* dry run: only what the cache has */
	uint64_t max_bytes;	/* refuse a larger file; 0: no cap but space */
	uint64_t cache_max;	/* trim the cache to this; 0: no limit */
	const char *pin_dir;	/* a VM's HOSTDIR that needs the file for as
				 * long as its guest.conf names the URL (a
				 * base): never trimmed meanwhile; or NULL */
	unsigned timeout_s;	/* all attempts together; 0: none */
	char *sha256_out;	/* 65 bytes or NULL: sha256 when given,
				 * else the file's SHA-256, read once and
				 * kept beside it in the cache while it is
				 * unchanged ("" when it could not be read,
				 * or in a dry run) */
	void (*progress)(void *data, uint64_t done, uint64_t total);
	void *progress_data;
};

/* http://, https://, ftp:// or file:// */
bool download_is_url(const char *s);

/*
 * Split "URL#sha256=HEX" into the URL and the digest (either may be
 * given; *sha256 is NULL without a fragment).  Caller frees both.
 * Returns -EINVAL for a malformed digest.
 */
int download_split(const char *spec, char **url, char **sha256);

/*
 * Make url available as a local file and return its path (caller frees).
 * The cache is keyed by the URL; downloads go to NAME.part and are
 * renamed when complete and verified; a partial file is resumed with a
 * Range request (also after the server drops the connection: up to three
 * attempts).  A cached file is checked with ETag / Last-Modified; when
 * the server cannot be reached and offline_ok, it is used as it is and
 * *note says so.  A digest mismatch deletes the file.  Returns 0, or
 * -errno / -EIO with err a one-line reason (HTTP status, DNS, refused,
 * timeout, TLS), -EINTR when interrupted (the .part is kept), -EFBIG
 * when the file is larger than max_bytes or than the cache's file system
 * can spare (it always keeps 1 GiB or 5% free, the smaller; the .part is
 * deleted), -ETIMEDOUT past timeout_s.
 */
int download_fetch(const char *url, const struct dl_opts *o, char **path,
		   struct strbuf *note, struct strbuf *err);

/*
 * hostdir (a VM's) needs the cached file path for as long as its
 * guest.conf names the file's URL: a line of path.pin.
 */
void download_pin(const char *path, const char *hostdir);

/*
 * Trim cache_dir/downloads to max bytes: the files used least recently
 * go first (a use is a download or a cache hit), except keep and those
 * pinned (dl_opts.pin_dir) by a VM whose guest.conf still names their
 * URL.  Each removed file is added to removed (may be NULL).
 */
void download_trim(const char *cache_dir, uint64_t max, const char *keep,
		   struct strvec *removed);

/*
 * Why a libcurl transfer failed (code a CURLcode that is not an HTTP
 * status), appended to err: the host does not resolve, refused, timed
 * out, a TLS error in curlerr's (CURLOPT_ERRORBUFFER) words, or curl's.
 */
void download_curl_reason(int code, const char *curlerr, struct strbuf *err);
/*
 * An HTTP header line (len bytes, as curl hands it over) that is name
 * ("ETag:", case aside): its value, blanks around it trimmed, into out;
 * out is left as it was for another header.
 */
void download_header_value(const char *line, size_t len, const char *name,
			   struct strbuf *out);

/* code is a failure of TLS (a certificate, the handshake). */
bool download_curl_tls(int code);

/*
 * The bytes a download may add to dir's file system: what is free but
 * 1 GiB or 5% of it (the smaller); UINT64_MAX when it cannot be told.
 */
uint64_t download_spare(const char *dir);

/* SHA-256 of a whole file, as 64 hex digits.  Returns 0 or -errno. */
int download_file_sha256(const char *path, char hex[65]);

/* Drop a cached download: the file and what is kept about it. */
void download_forget(const char *path);

#endif
