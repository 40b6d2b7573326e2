/* Reading files out of ISO images with libarchive. */
#ifndef VM_ISO_H
#define VM_ISO_H

#include "util/str.h"

/*
 * Extract the regular files named in names (paths inside the ISO, no
 * leading '/') to the paths in dests, each via dest.tmp + rename.  All
 * must be found.  Returns 0, -ENOENT (err names the missing file) or
 * -EIO (err has libarchive's words).
 */
int iso_extract(const char *iso, const char *const *names,
		const char *const *dests, int n, struct strbuf *err);

#endif
