#include "util/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

int sha256_init(struct sha256 *s)
{
	s->err = 0;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx)
		s->err = -ENOMEM;
	else if (!EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL))
		s->err = -EIO;
	if (s->err)
		sha256_release(s);
	return s->err;
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	if (!s->err && len && !EVP_DigestUpdate(s->ctx, data, len))
		s->err = -EIO;
}

int sha256_final(struct sha256 *s, unsigned char out[32])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int r = s->err;

	if (!r && (!EVP_DigestFinal_ex(s->ctx, d, &n) || n != 32))
		r = -EIO;
	sha256_release(s);
	if (!r)
		memcpy(out, d, 32);
	return r;
}

void sha256_to_hex(const unsigned char d[32], char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[64] = '\0';
}

int sha256_final_hex(struct sha256 *s, char hex[65])
{
	unsigned char d[32];
	int r = sha256_final(s, d);

	hex[0] = '\0';
	if (!r)
		sha256_to_hex(d, hex);
	return r;
}

void sha256_release(struct sha256 *s)
{
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

int sha256_hex_of(const void *data, size_t len, char hex[65])
{
	struct sha256 s;

	sha256_init(&s);
	sha256_update(&s, data, len);
	return sha256_final_hex(&s, hex);
}
