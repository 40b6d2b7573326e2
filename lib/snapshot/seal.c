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

/* XDG_CONFIG_HOME/vm (or ~/.config/vm) when absolute, or NULL. */
static char *key_dir(void)
{
	char *cfg = fs_config_home(), *dir = NULL;

	if (cfg && cfg[0] == '/')
		dir = xasprintf("%s/vm", cfg);
	free(cfg);
	return dir;
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
	char *tmp;
	int r;

	r = fs_mkdir_p(dir, 0700);
	if (r)
		return r;
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
		return -EIO;
	tmp = xasprintf("%s.%ld", path, (long)getpid());
	r = fs_write_atomic(tmp, key, sizeof(key), 0600);
	memset(key, 0, sizeof(key));
	/* the first key made stands: two @backup at once share it */
	if (!r && link(tmp, path) < 0 && errno != EEXIST)
		r = -errno;
	unlink(tmp);
	free(tmp);
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

int seal_make(const char *digest, bool create, char **text)
{
	unsigned char key[KEY_LEN], mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char *what = xasprintf("vm-seal 2\n%s\n", digest), hex[65];
	int r;

	*text = NULL;
	r = get_key(create, key);
	if (!r && (!HMAC(EVP_sha256(), key, KEY_LEN,
			 (const unsigned char *)what, strlen(what), mac,
			 &len) || len != 32))
		r = -EIO;
	if (!r) {
		sha256_to_hex(mac, hex);
		*text = xasprintf("vm-seal 2 %s\n", hex);
	}
	memset(key, 0, sizeof(key));
	free(what);
	return r;
}

bool seal_holds(const char *dir, const char *digest)
{
	char *seal = xasprintf("%s/%s", dir, SNAP_SEAL);
	struct strbuf have = STRBUF_INIT;
	char *want = NULL;
	bool ok;

	ok = !fs_read_file(seal, SEAL_MAX, &have) &&
	     !seal_make(digest, false, &want) &&
	     /* the same length, compared whole (no early exit) */
	     have.len == strlen(want) &&
	     CRYPTO_memcmp(have.buf, want, have.len) == 0;
	free(want);
	strbuf_release(&have);
	free(seal);
	return ok;
}
