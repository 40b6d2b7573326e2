/* What qemu-img says of a disk image: format, size, files it names. */
#ifndef VM_IMAGE_H
#define VM_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/str.h"

struct image_info {
	char *format;		/* "qcow2", "raw", ... */
	uint64_t virtual_size;	/* bytes the guest sees */
	char *backing;		/* backing file its header names, or NULL */
	char *backing_format;	/* and that file's format, or NULL */
	char *data_file;	/* qcow2's external data file, or NULL */
	struct image_bitmap *bitmaps;	/* qcow2's persistent dirty bitmaps */
	size_t nbitmaps;
};

/* A persistent dirty bitmap as the image file holds it. */
struct image_bitmap {
	char *name;
	bool in_use;	/* a QEMU has it open, or ended without saving it */
	bool recording;	/* "auto": QEMU marks writes in it when it opens it */
};

/* A run of the guest's disk held in the image file itself, at offset. */
struct image_extent {
	uint64_t start, len, offset;
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

/*
 * The runs of the guest's disk whose data the qcow2 file at path holds
 * (not its backing file's, not zeros, not compressed), in guest order,
 * with where in the file each is (`qemu-img map`).  Returns 0, or
 * -errno with the reason in err.
 */
int image_map(const char *path, struct image_extent **out, size_t *n,
	      struct strbuf *err);

/* The JSON part of image_map(), for tests. */
int image_map_parse(const char *json, struct image_extent **out, size_t *n,
		    struct strbuf *err);

/*
 * path as a qcow2 image that QEMU and its tools open alone, whatever
 * backing file its header names (a "json:" file name).  Caller frees.
 */
char *image_qcow2_alone(const char *path);

#endif
