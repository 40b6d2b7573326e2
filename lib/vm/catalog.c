/* The catalogue of images: names for cloud images, read from files. */
#include "vm/catalog.h"

#include "net/download.h"
#include "util/fsutil.h"
#include "util/proc.h"
#include "util/str.h"
#include "vm/vm.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CATALOG_FILE_MAX (1 << 20)

void catalog_files(const char *datadir, const char *config_home,
		   struct strvec *files)
{
	const char *sys = getenv("VM_SYSTEM_IMAGES");
	char *tree = xasprintf("%s/conf/images.conf", datadir);

	strvec_clear(files);
	/* a source tree keeps it in conf/, an installed vm in DATADIR */
	if (fs_exists(tree))
		strvec_push(files, tree);
	else
		strvec_pushf(files, "%s/images.conf", datadir);
	free(tree);
	strvec_push(files, sys && *sys ? sys : "/etc/vm/images.conf");
	if (config_home && *config_home)
		strvec_pushf(files, "%s/vm/images.conf", config_home);
}

static void entry_release(struct catalog_entry *e)
{
	free(e->name);
	free(e->url);
	free(e->sums);
	free(e->sig);
	free(e->key);
	free(e->sha256);
	free(e->sha512);
	free(e->firmware);
	free(e->user);
	free(e->about);
	free(e->file);
	memset(e, 0, sizeof(*e));
}

void catalog_release(struct catalog *cat)
{
	size_t i;

	for (i = 0; i < cat->nr; i++)
		entry_release(&cat->v[i]);
	free(cat->v);
	*cat = (struct catalog)CATALOG_INIT;
}

const struct catalog_entry *catalog_find(const struct catalog *cat,
					 const char *name)
{
	size_t i;

	for (i = 0; i < cat->nr; i++)
		if (!strcmp(cat->v[i].name, name))
			return &cat->v[i];
	return NULL;
}

/* Room for one more entry. */
static struct catalog_entry *grow(struct catalog *c)
{
	if (c->nr == c->alloc) {
		c->alloc = c->alloc ? 2 * c->alloc : 16;
		c->v = xrealloc(c->v, c->alloc * sizeof(*c->v));
	}
	memset(&c->v[c->nr], 0, sizeof(c->v[0]));
	return &c->v[c->nr++];
}

static bool is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return !s[n];
}

struct load {
	struct catalog *cat;	/* entries of this file */
	const char *file;
	struct strbuf msg;	/* why a line was refused */
};

/* The entry named section (the last one: a file's own), made if new. */
static struct catalog_entry *entry_for(struct load *l, const char *section)
{
	struct catalog *c = l->cat;
	struct catalog_entry *e;

	if (c->nr && !strcmp(c->v[c->nr - 1].name, section))
		return &c->v[c->nr - 1];
	if (catalog_find(c, section)) {
		strbuf_addf(&l->msg, "[%s] a second time in one file", section);
		return NULL;
	}
	e = grow(c);
	e->name = xstrdup(section);
	e->file = xstrdup(l->file);
	return e;
}

static int set_value(struct load *l, struct catalog_entry *e,
		     const char *key, const char *v)
{
	char **field = NULL;

	if (!strcmp(key, "url") || !strcmp(key, "sums") ||
	    !strcmp(key, "sig")) {
		field = !strcmp(key, "url") ? &e->url :
			!strcmp(key, "sums") ? &e->sums : &e->sig;
		if (!download_is_url(v) || strchr(v, '#')) {
			strbuf_addf(&l->msg, "%s: '%s' is not a URL (http, https, ftp, file)",
				    key, v);
			return -EINVAL;
		}
	} else if (!strcmp(key, "key")) {
		field = &e->key;
		if (v[0] != '/' && v[0] != '~') {
			strbuf_addf(&l->msg, "key: '%s' is not an absolute path (a keyring gpgv reads)",
				    v);
			return -EINVAL;
		}
	} else if (!strcmp(key, "sha256") || !strcmp(key, "sha512")) {
		size_t n = !strcmp(key, "sha256") ? 64 : 128;

		field = n == 64 ? &e->sha256 : &e->sha512;
		if (!is_hex(v, n)) {
			strbuf_addf(&l->msg, "%s: not %zu hex digits", key, n);
			return -EINVAL;
		}
	} else if (!strcmp(key, "firmware")) {
		field = &e->firmware;
		if (strcmp(v, "uefi") && strcmp(v, "bios") && strcmp(v, "any")) {
			strbuf_addf(&l->msg, "firmware: '%s' is not uefi, bios or any",
				    v);
			return -EINVAL;
		}
	} else if (!strcmp(key, "user")) {
		field = &e->user;
		if (!name_is_valid(v)) {
			strbuf_addf(&l->msg, "user: bad name '%s'", v);
			return -EINVAL;
		}
	} else if (!strcmp(key, "about")) {
		field = &e->about;
	} else {
		strbuf_addf(&l->msg, "unknown key '%s' (url, sums, sig, key, sha256, sha512, firmware, user, about)",
			    key);
		return -EINVAL;
	}
	free(*field);
	*field = xstrdup(v);
	if (field == &e->sha256 || field == &e->sha512)
		for (char *p = *field; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return 0;
}

static int catalog_cb(void *user, const char *section, const char *key,
		      const char *value)
{
	struct load *l = user;
	struct catalog_entry *e;

	if (!*section) {
		strbuf_addf(&l->msg, "key '%s' outside an [image name]", key);
		return 0;
	}
	if (!name_is_valid(section)) {
		strbuf_addf(&l->msg, "bad image name '%s' (letters, digits, . _ -, at most 64, not starting with - or .)",
			    section);
		return 0;
	}
	e = entry_for(l, section);
	return e && !set_value(l, e, key, value);
}

/* What an entry needs whole: 0, or -EINVAL with err. */
static int entry_check(const struct catalog_entry *e, struct strbuf *err)
{
	const char *why = NULL;

	if (!e->url)
		why = "no url";
	else if (!e->sums && !e->sha256 && !e->sha512)
		why = "nothing to verify the image with (sums, sha256 or sha512)";
	else if (e->sig && !e->key)
		why = "sig without the key to check it with";
	else if (e->sig && !e->sums)
		why = "sig without sums, the file it signs";
	else if (e->key && !e->sums)
		why = "key without sums, the file it checks";
	if (!why)
		return 0;
	strbuf_addf(err, "%s: [%s]: %s", e->file, e->name, why);
	return -EINVAL;
}

/* One file's entries into cat, replacing those of the same name. */
static void merge(struct catalog *cat, struct catalog *add)
{
	size_t i, k;

	for (i = 0; i < add->nr; i++) {
		for (k = 0; k < cat->nr; k++)
			if (!strcmp(cat->v[k].name, add->v[i].name))
				break;
		if (k == cat->nr)
			grow(cat);
		else
			entry_release(&cat->v[k]);
		cat->v[k] = add->v[i];
	}
	free(add->v);
	*add = (struct catalog)CATALOG_INIT;
}

static int load_file(struct catalog *cat, const char *path,
		     struct strbuf *err)
{
	struct catalog mine = CATALOG_INIT;
	struct load l = { &mine, path, STRBUF_INIT };
	struct strbuf text = STRBUF_INIT;
	size_t i;
	int r = fs_read_file(path, CATALOG_FILE_MAX, &text);

	if (r == -ENOENT)
		return 0;
	if (r) {
		strbuf_addf(err, "%s: %s", path, fs_read_strerror(r));
		goto out;
	}
	if (memchr(text.buf, '\0', text.len)) {
		strbuf_addf(err, "%s: binary data, not a catalogue of images",
			    path);
		r = -EINVAL;
		goto out;
	}
	r = ini_parse_string(text.buf, catalog_cb, &l);
	if (r) {
		if (r > 0)
			strbuf_addf(err, "%s:%d: %s", path, r,
				    l.msg.len ? l.msg.buf : "syntax error");
		else
			strbuf_addf(err, "%s: cannot parse", path);
		r = -EINVAL;
		goto out;
	}
	for (i = 0; !r && i < mine.nr; i++)
		r = entry_check(&mine.v[i], err);
	if (!r)
		merge(cat, &mine);
out:
	catalog_release(&mine);
	strbuf_release(&l.msg);
	strbuf_release(&text);
	return r;
}

int catalog_load(struct catalog *cat, const struct strvec *files,
		 struct strbuf *err)
{
	size_t i;
	int r = 0;

	for (i = 0; !r && i < files->nr; i++)
		r = load_file(cat, files->v[i], err);
	if (r)
		catalog_release(cat);
	return r;
}

/*
 * One line of a checksum file: the digest's kind (by a BSD tag, else by
 * its length), its hex and the file it names.  False for any other line
 * (comments, a signature's armour, blank).
 */
static bool sums_line(const char *line, char alg[8], char hex[129],
		      const char **name, size_t *name_len)
{
	const char *p = line, *h;
	size_t n;

	/* BSD: SHA256 (NAME) = HEX */
	if (!strncmp(p, "SHA256 (", 8) || !strncmp(p, "SHA512 (", 8)) {
		const char *end = strstr(p + 8, ") = ");

		if (!end)
			return false;
		h = end + 4;
		n = strcspn(h, " \t\r");
		if (n != (p[3] == '2' ? 64u : 128u) || h[n + strspn(h + n, " \t\r")])
			return false;
		*name = p + 8;
		*name_len = (size_t)(end - *name);
	} else {
		/* GNU: HEX  NAME or HEX *NAME */
		h = p;
		n = strspn(h, "0123456789abcdefABCDEF");
		if ((n != 64 && n != 128) || h[n] != ' ')
			return false;
		p = h + n + 1;
		if (*p == ' ' || *p == '*')
			p++;
		*name = p;
		*name_len = strcspn(p, "\r");
	}
	for (size_t i = 0; i < n; i++)
		hex[i] = (char)tolower((unsigned char)h[i]);
	hex[n] = '\0';
	snprintf(alg, 8, "%s", n == 64 ? "sha256" : "sha512");
	return true;
}

int catalog_sums_lookup(const char *text, const char *file, char alg[8],
			char hex[129])
{
	char best_alg[8] = "", best[129] = "";
	char *copy = xstrdup(text), *line, *save = NULL;
	int r = 0;

	for (line = strtok_r(copy, "\n", &save); line && !r;
	     line = strtok_r(NULL, "\n", &save)) {
		char a[8], h[129];
		const char *name;
		size_t len;

		if (!sums_line(line, a, h, &name, &len) ||
		    len != strlen(file) || memcmp(name, file, len))
			continue;
		if (!strcmp(best_alg, a) && strcmp(best, h))
			r = -EINVAL;
		/* SHA-512 where both are given */
		else if (!*best_alg || !strcmp(a, "sha512")) {
			snprintf(best_alg, sizeof(best_alg), "%s", a);
			snprintf(best, sizeof(best), "%s", h);
		}
	}
	free(copy);
	if (!r && !*best_alg)
		r = -ENOENT;
	if (!r) {
		snprintf(alg, 8, "%s", best_alg);
		snprintf(hex, 129, "%s", best);
	}
	return r;
}

/* The last part of a URL's path: the name a checksum file lists. */
static char *url_file(const char *url)
{
	size_t n = strcspn(url, "?#");
	const char *p = url + n;

	while (p > url && p[-1] != '/')
		p--;
	return xasprintf("%.*s", (int)(url + n - p), p);
}

static int fetch_plain(const struct vm *vm, const char *url, char **path,
		       struct strbuf *note, struct strbuf *err)
{
	struct dl_opts o;

	vm_download_opts(vm, &o);
	o.max_bytes = 16 << 20;	/* a checksum file or a signature */
	return download_fetch(url, &o, path, note, err);
}

/* What gpgv's status lines (--status-fd 1) say went wrong. */
static const char *gpgv_why(const char *status)
{
	if (strstr(status, "[GNUPG:] BADSIG"))
		return "a bad signature";
	if (strstr(status, "[GNUPG:] ERRSIG") || strstr(status, "[GNUPG:] NO_PUBKEY"))
		return "signed by a key the keyring does not have";
	if (strstr(status, "[GNUPG:] NODATA"))
		return "no signature in it";
	if (strstr(status, "[GNUPG:] EXPKEYSIG") || strstr(status, "[GNUPG:] REVKEYSIG"))
		return "signed by an expired or revoked key";
	return "it does not verify";
}

/*
 * gpgv checks sums (signed by sig, or cleartext-signed when sig is
 * NULL: then the signed text is written to out) against keyring.
 * 0, or -EPERM / -errno with err.
 */
static int gpgv_check(const struct catalog_entry *e, const char *keyring,
		      const char *sums, const char *sig, const char *out,
		      struct strbuf *err)
{
	struct strvec av = STRVEC_INIT;
	struct strbuf status = STRBUF_INIT;
	struct proc_opts po = PROC_OPTS_INIT;
	int r;

	strvec_pushl(&av, "gpgv", "--quiet", "--status-fd", "1", "--keyring",
		     keyring, NULL);
	if (!sig)
		strvec_pushl(&av, "--output", out, sums, NULL);
	else
		strvec_pushl(&av, sig, sums, NULL);
	po.stdin_fd = -1;
	po.stderr_fd = -1;
	r = proc_capture(av.v, &po, 60 * 1000, &status);
	if (r == -ENOENT) {
		strbuf_addstr(err, "gpgv not found (install gpgv)");
	} else if (r < 0) {
		strbuf_addf(err, "gpgv: %s", strerror(-r));
	} else if (r || !strstr(status.buf, "[GNUPG:] VALIDSIG")) {
		strbuf_addf(err, "%s%s%s: %s (keyring %s)",
			    sig ? "signature " : "", sig ? e->sig : e->sums,
			    sig ? " of the checksum file" : "",
			    gpgv_why(status.buf), keyring);
		r = -EPERM;
	}
	strvec_clear(&av);
	strbuf_release(&status);
	return r;
}

/*
 * The entry's checksum file, its signature checked when it has one:
 * its text into text.  A file that fails the check is dropped from the
 * cache.  0 or -errno with err.
 */
static int verified_sums(const struct vm *vm, const struct catalog_entry *e,
			 struct strbuf *text, struct strbuf *note,
			 struct strbuf *err)
{
	char *sums = NULL, *sig = NULL, *key = NULL, *out = NULL;
	const char *read_from;
	int r = fetch_plain(vm, e->sums, &sums, note, err);

	if (r || vm->dry_run)
		goto out;
	read_from = sums;
	if (e->key) {
		key = fs_expand_home(e->key);
		if (!fs_exists(key)) {
			strbuf_addf(err, "keyring %s (for [%s] in %s): no such file",
				    key, e->name, e->file);
			r = -ENOENT;
			goto out;
		}
		if (e->sig)
			r = fetch_plain(vm, e->sig, &sig, note, err);
		/* signed inline: the signed text goes to a file of this
		 * run's own beside it, hidden from the cache's listing */
		if (!r && !sig) {
			const char *b = strrchr(sums, '/');

			out = xasprintf("%.*s/.%s.%ld.signed", (int)(b - sums),
					sums, b + 1, (long)getpid());
			unlink(out);
		}
		if (!r) {
			r = gpgv_check(e, key, sums, sig, out, err);
			read_from = out ? out : sums;
		}
		if (r) {
			download_forget(sums);
			if (sig)
				download_forget(sig);
			goto out;
		}
	}
	r = fs_read_file(read_from, 16 << 20, text);
	if (r)
		strbuf_addf(err, "%s: %s", read_from, fs_read_strerror(r));
out:
	if (out)
		unlink(out);
	free(out);
	free(key);
	free(sig);
	free(sums);
	return r;
}

int catalog_fetch(const struct vm *vm, const struct catalog_entry *e,
		  void (*progress)(void *, uint64_t, uint64_t), void *pdata,
		  char **path, char sha256[65], struct strbuf *note,
		  struct strbuf *err)
{
	struct strbuf text = STRBUF_INIT;
	char alg[8] = "", hex[129] = "";
	char *file = url_file(e->url);
	struct dl_opts o;
	int r = 0;

	*path = NULL;
	sha256[0] = '\0';
	if (e->sha512 || e->sha256) {
		snprintf(alg, sizeof(alg), "%s", e->sha512 ? "sha512" : "sha256");
		snprintf(hex, sizeof(hex), "%s", e->sha512 ? e->sha512 : e->sha256);
	} else {
		r = verified_sums(vm, e, &text, note, err);
		if (!r && !vm->dry_run) {
			r = catalog_sums_lookup(text.buf, file, alg, hex);
			if (r == -ENOENT)
				strbuf_addf(err, "%s does not list %s", e->sums,
					    file);
			else if (r)
				strbuf_addf(err, "%s lists %s twice, with different digests",
					    e->sums, file);
		}
	}
	if (r)
		goto out;
	vm_download_opts(vm, &o);
	if (!strcmp(alg, "sha512"))
		o.sha512 = hex;
	else if (*alg)
		o.sha256 = hex;
	o.progress = progress;
	o.progress_data = pdata;
	o.sha256_out = sha256;	/* (the one checked, when it is SHA-256) */
	r = download_fetch(e->url, &o, path, note, err);
out:
	strbuf_release(&text);
	free(file);
	return r;
}
