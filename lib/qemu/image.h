/* What qemu-img says of a disk image: format, size, files it names. */
#ifndef VM_IMAGE_H
#define VM_IMAGE_H

#include <stdint.h>

#include "util/str.h"

struct image_info {
	char *format;		/* "qcow2", "raw", ... */
	uint64_t virtual_size;	/* bytes the guest sees */
	char *backing;		/* backing file its header names, or NULL */
	char *backing_format;	/* and that file's format, or NULL */
	char *data_file;	/* qcow2's external data file, or NULL */
};

/*
 * `qemu-img info --output=json` of path, as format (NULL: qemu-img
 * probes).  qemu-img opens only path itself, never what it names.
 * Returns 0, or -errno with the reason in err (a path-less sentence).
 */
int image_info(const char *path, const char *format, struct image_info *out,
	       struct strbuf *err);

/* The JSON part of image_info(), for tests. */
int image_info_parse(const char *json, struct image_info *out,
		     struct strbuf *err);

void image_info_release(struct image_info *info);

#endif
