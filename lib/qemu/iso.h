/* Reading files out of ISO images with libarchive. */
#ifndef VM_ISO_H
#define VM_ISO_H

#include <stdbool.h>

#include "util/str.h"

/*
 * path holds an optical disc's file system: ISO 9660 ("CD001") or UDF
 * ("BEA01") in the first volume descriptor, 32 KiB in, hybrid images
 * included.  False for a disk image, or a file that cannot be read.
 */
bool iso_is_disc(const char *path);

/*
 * Extract the regular files named in names (paths inside the ISO, no
 * leading '/') to the paths in dests, each via dest.tmp + rename.  All
 * must be found.  Returns 0, -ENOENT (err names the missing file) or
 * -EIO (err has libarchive's words).
 */
int iso_extract(const char *iso, const char *const *names,
		const char *const *dests, int n, struct strbuf *err);

#endif
