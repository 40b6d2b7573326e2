#include "snapshot/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "util/fsutil.h"
#include "util/sha256.h"
#include "util/str.h"

#define KEY_LEN 32
#define SEAL_MAX 4096

/* XDG_CONFIG_HOME/vm (or ~/.config/vm), or NULL. */
static char *key_dir(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (xdg && *xdg == '/')
		return xasprintf("%s/vm", xdg);
	if (home && *home == '/')
		return xasprintf("%s/.config/vm", home);
	return NULL;
}

/* The key, only when it is this user's alone. */
static int read_key(const char *path, unsigned char key[KEY_LEN])
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) ||
	    read(fd, key, KEY_LEN) != KEY_LEN)
		r = -EPERM;
	close(fd);
	return r;
}

static int make_key(const char *dir, const char *path)
{
	unsigned char key[KEY_LEN];
	int r;

	r = fs_mkdir_p(dir, 0700);
	if (r)
		return r;
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
		return -EIO;
	r = fs_write_atomic(path, key, sizeof(key), 0600);
	memset(key, 0, sizeof(key));
	return r;
}

static int get_key(bool create, unsigned char key[KEY_LEN])
{
	char *dir = key_dir(), *path;
	int r;

	if (!dir)
		return -ENOENT;
	path = xasprintf("%s/seal.key", dir);
	r = read_key(path, key);
	if (r == -ENOENT && create) {
		r = make_key(dir, path);
		if (!r)
			r = read_key(path, key);
	}
	free(path);
	free(dir);
	return r ? -ENOENT : 0;
}

/* "NAME HEX\n", or "NAME -\n" when the file is not there. */
static int add_digest(struct strbuf *sb, const char *name, const char *path)
{
	struct strbuf data = STRBUF_INIT;
	char hex[65];
	int r = path ? fs_read_file(path, 1u << 20, &data) : -ENOENT;

	if (r == -ENOENT) {
		strbuf_addf(sb, "%s -\n", name);
		r = 0;
	} else if (!r) {
		r = sha256_hex_of(data.buf, data.len, hex);
		if (!r)
			strbuf_addf(sb, "%s %s\n", name, hex);
	}
	strbuf_release(&data);
	return r;
}

int seal_make(const char *conf, const char *defaults, bool create,
	      char **text)
{
	unsigned char key[KEY_LEN], mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	struct strbuf what = STRBUF_INIT;
	char hex[65];
	int r;

	*text = NULL;
	r = get_key(create, key);
	if (!r)
		r = add_digest(&what, "guest.conf", conf);
	if (!r)
		r = add_digest(&what, "vm.defaults", defaults);
	if (!r && (!HMAC(EVP_sha256(), key, KEY_LEN,
			 (const unsigned char *)what.buf, what.len, mac,
			 &len) || len != 32))
		r = -EIO;
	if (!r) {
		sha256_to_hex(mac, hex);
		*text = xasprintf("vm-seal 1 %s\n", hex);
	}
	memset(key, 0, sizeof(key));
	strbuf_release(&what);
	return r;
}

bool seal_holds(const char *dir)
{
	char *seal = xasprintf("%s/%s", dir, SNAP_SEAL);
	char *conf = xasprintf("%s/guest.conf", dir);
	char *defs = xasprintf("%s/vm.defaults", dir);
	struct strbuf have = STRBUF_INIT;
	char *want = NULL;
	bool ok;

	ok = !fs_read_file(seal, SEAL_MAX, &have) &&
	     !seal_make(conf, defs, false, &want) &&
	     /* the same length, compared whole (no early exit) */
	     have.len == strlen(want) &&
	     CRYPTO_memcmp(have.buf, want, have.len) == 0;
	free(want);
	strbuf_release(&have);
	free(seal);
	free(conf);
	free(defs);
	return ok;
}
