/*
 * SHA-256 speed: the same buffer through vm's own code of before (with
 * and without the x86 SHA extensions) and through libcrypto's EVP, in
 * one run.  Built and run by bench/sha256.sh, which brings the old code.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "old_sha256.h"

#define PIECE (1u << 20)

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double run_old(const unsigned char *buf, unsigned pieces, char *hex)
{
	struct old_sha256 s;
	unsigned char d[32];
	double t0 = now();
	unsigned i;

	old_sha256_init(&s);
	for (i = 0; i < pieces; i++)
		old_sha256_update(&s, buf, PIECE);
	old_sha256_final(&s, d);
	old_sha256_hex(d, hex);
	return now() - t0;
}

static double run_evp(const unsigned char *buf, unsigned pieces, char *hex)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char d[32];
	double t0 = now();
	unsigned i;

	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL))
		exit(1);
	for (i = 0; i < pieces; i++)
		if (!EVP_DigestUpdate(c, buf, PIECE))
			exit(1);
	if (!EVP_DigestFinal_ex(c, d, NULL))
		exit(1);
	EVP_MD_CTX_free(c);
	old_sha256_hex(d, hex);
	return now() - t0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned mib = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1024;
	int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3, i;
	const char *which = argc > 3 ? argv[3] : "old evp";
	unsigned char *buf = malloc(PIECE);
	double t[2][64];
	char hex[2][65];

	if (!buf || runs < 1 || runs > 64)
		return 2;
	for (i = 0; i < (int)PIECE; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	for (i = 0; i < runs; i++) {	/* interleaved: same conditions */
		t[0][i] = strstr(which, "old") ? run_old(buf, mib, hex[0]) : 1;
		t[1][i] = strstr(which, "evp") ? run_evp(buf, mib, hex[1]) : 1;
	}
	if (strstr(which, "old") && strstr(which, "evp") &&
	    strcmp(hex[0], hex[1])) {
		fprintf(stderr, "digests differ: %s %s\n", hex[0], hex[1]);
		return 1;
	}
	qsort(t[0], (size_t)runs, sizeof(double), cmp);
	qsort(t[1], (size_t)runs, sizeof(double), cmp);
	/* MB/s, 10^6 bytes a second, of the median run */
	if (strstr(which, "old"))
		printf("old %.0f\n", mib * 1048576.0 / 1e6 / t[0][runs / 2]);
	if (strstr(which, "evp"))
		printf("evp %.0f\n", mib * 1048576.0 / 1e6 / t[1][runs / 2]);
	free(buf);
	return 0;
}
