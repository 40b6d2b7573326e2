/*
 * The catalogue of images: names (debian-12, ubuntu-24.04...) for
 * cloud images by URL, each with the checksum file it is verified
 * against, the signature of that file where the distribution publishes
 * one, the firmware it boots with and its default user.  Data, not
 * code: vm's own file (DATADIR/images.conf), then /etc/vm/images.conf,
 * then the user's ($XDG_CONFIG_HOME/vm/images.conf); an entry of a
 * later file replaces one of the same name whole.
 */
#ifndef VM_CATALOG_H
#define VM_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "util/str.h"

struct catalog_entry {
	char *name;
	char *url;	/* the image */
	char *sums;	/* its checksum file (SHA256SUMS, CHECKSUM...), or NULL */
	char *sig;	/* the detached signature of sums, or NULL */
	char *key;	/* the keyring gpgv checks the signature with, or NULL */
	char *sha256;	/* or a digest given in the entry itself */
	char *sha512;
	char *firmware;	/* "uefi", "bios" or "any" (its partition table) */
	char *user;	/* the image's default user, or NULL */
	char *about;	/* one line for vm images, or NULL */
	char *file;	/* the catalogue file it is from */
};

struct catalog {
	struct catalog_entry *v;
	size_t nr, alloc;
};
#define CATALOG_INIT { NULL, 0, 0 }

/*
 * The catalogue files, in the order read: the shipped one (in datadir,
 * or conf/ of a source tree), /etc/vm/images.conf (VM_SYSTEM_IMAGES
 * instead when set), the user's.  Into files (cleared first).
 */
void catalog_files(const char *datadir, const char *config_home,
		   struct strvec *files);

/*
 * Read files in order (a missing one is skipped).  A bad entry is an
 * error "FILE:LINE: reason" (or "FILE: [NAME]: reason") and nothing is
 * kept.  Returns 0 or -errno.
 */
int catalog_load(struct catalog *cat, const struct strvec *files,
		 struct strbuf *err);

/* The entry called name, or NULL. */
const struct catalog_entry *catalog_find(const struct catalog *cat,
					 const char *name);

void catalog_release(struct catalog *cat);

/*
 * The digest a checksum file's text gives for file (a file name, no
 * directory): GNU lines ("HEX  NAME", "HEX *NAME") and BSD ones
 * ("SHA256 (NAME) = HEX"), SHA-256 or SHA-512 (by the tag or the
 * length).  alg gets "sha256" or "sha512", hex the lowercase digits.
 * Returns 0, -ENOENT when file is not listed, -EINVAL when it is
 * listed twice with different digests of one kind.
 */
int catalog_sums_lookup(const char *text, const char *file, char alg[8],
			char hex[129]);

struct vm;

/*
 * The entry's image, verified before it is used: its checksum file is
 * fetched (and its signature checked with gpgv against the entry's
 * keyring: a file that fails is dropped from the cache), the digest it
 * lists for the image's file name is the one the download must have
 * (one that does not is deleted).  Everything goes through the
 * download cache.  *path: the image's file (caller frees); sha256: its
 * SHA-256 when that is what was checked, else "".  0 or -errno with err.
 */
int catalog_fetch(const struct vm *vm, const struct catalog_entry *e,
		  void (*progress)(void *, uint64_t, uint64_t), void *pdata,
		  char **path, char sha256[65], struct strbuf *note,
		  struct strbuf *err);

#endif
