/*
 * SHA-256 for snapshot manifests and download digests, from libcrypto
 * (EVP): on a CPU with the x86 SHA extensions it uses them, and it was
 * measured faster than our own code was (bench/sha256.sh).
 */
#ifndef VM_SHA256_H
#define VM_SHA256_H

#include <stddef.h>

struct evp_md_ctx_st;

struct sha256 {
	struct evp_md_ctx_st *ctx;	/* owned; NULL when not started */
	int err;			/* the first failure of an update */
};

/*
 * Start a digest.  Returns 0, or -ENOMEM or -EIO (libcrypto refused);
 * a failure is also kept, so updates do nothing and sha256_final_hex()
 * returns it.
 */
int sha256_init(struct sha256 *s);

/* Add len bytes.  A failure is kept for sha256_final_hex() to return. */
void sha256_update(struct sha256 *s, const void *data, size_t len);

/*
 * Finish: 64 lowercase hex digits and a NUL into hex, and release what
 * sha256_init() took.  Returns 0, or -EIO when an update or the end
 * failed (hex is then an empty string).
 */
int sha256_final_hex(struct sha256 *s, char hex[65]);

/* The same, as 32 bytes. */
int sha256_final(struct sha256 *s, unsigned char out[32]);

/* 32 bytes as 64 lowercase hex digits and a NUL. */
void sha256_to_hex(const unsigned char d[32], char hex[65]);

/* Release a digest that is not to be finished; harmless after the end. */
void sha256_release(struct sha256 *s);

/* The digest of one buffer, as sha256_final_hex() gives it. */
int sha256_hex_of(const void *data, size_t len, char hex[65]);

#endif
