/*
 * Persistent dirty bitmaps on a VM's qcow2 disks: what QEMU has marked
 * written since a snapshot, so that the next @backup reads only that.
 *
 * A disk carries one bitmap of ours, named after the STATE of the
 * snapshot it counts from (bitmap_name).  Every QEMU that opens the
 * disk for writing (the VM's, the rescue's, qemu-img's) keeps it and
 * saves it when it closes the disk; one that ends without closing
 * leaves it marked in use, and it is not trusted again.  The contents
 * are read over NBD (the "qemu:dirty-bitmap:NAME" meta context): from
 * qemu-nbd for a disk at rest, from the VM's QEMU for a running one.
 */
#ifndef VM_BITMAP_H
#define VM_BITMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "qemu/image.h"
#include "qemu/qmp.h"
#include "util/fsutil.h"
#include "util/str.h"

#define BITMAP_PREFIX "vm-"

/* The bitmap counting from the snapshot whose STATE is state (64 hex). */
char *bitmap_name(const char *state);

/* Whether name is one bitmap_name gives (BITMAP_PREFIX, 64 hex). */
bool bitmap_name_ok(const char *name);

/* What bitmap_unusable says of a disk with no such bitmap. */
#define BITMAP_NONE "it has no bitmap since that snapshot"

/*
 * Why the image's bitmap name cannot say what changed (a phrase such as
 * "it has no bitmap since that snapshot"), or NULL when it can.
 */
const char *bitmap_unusable(const struct image_info *info, const char *name);

/*
 * The runs of the guest's disk that bitmap name marks, in order, from
 * the NBD export named export (NULL: the server's default) at the unix
 * socket sock.  Every read is bounded in time.  Returns 0, or -errno
 * with err.
 */
int bitmap_read_nbd(const char *sock, const char *export, const char *name,
		     struct range **dirty, size_t *n, struct strbuf *err);

/*
 * The same of the qcow2 file at path, which no QEMU has open: qemu-nbd
 * serves it read-only at sock (which must not be in use) for the read.
 */
int bitmap_read_file(const char *path, const char *sock, const char *name,
		     struct range **dirty, size_t *n, struct strbuf *err);

/*
 * The runs of the image file that hold guest data (map, from
 * image_map) that dirty does not mark: bytes as they were when the
 * bitmap began.  In file order, merged; *n may be 0.
 */
struct range *bitmap_clean(const struct image_extent *map, size_t nmap,
			   const struct range *dirty, size_t ndirty,
			   size_t *n);

/*
 * Make name (NULL: none) the only bitmap of ours in the qcow2 file at
 * path, which no QEMU has open, empty: it counts from now.  info is
 * the file's, read before.  Returns 0, or -errno with err.
 */
int bitmap_restart(const char *path, const struct image_info *info,
		   const char *name, struct strbuf *err);

/*
 * A running VM's bitmaps, through its QEMU (a live @backup).  In the
 * transaction that puts the overlays on, each qcow2 disk's node gets
 * BITMAP_NEXT, which marks what is written from that instant on (the
 * commit of the overlay included), and BITMAP_FROZEN, a still copy of
 * the bitmap counting from the parent, which an NBD export offers (QEMU
 * exports no bitmap that still records).  Both live only in QEMU: gone
 * with it.  After the backup, BITMAP_NEXT becomes the disk's bitmap
 * named after the new snapshot, or, when it failed, goes.
 */
#define BITMAP_NEXT "vm-live-next"
#define BITMAP_FROZEN "vm-live-frozen"

/*
 * Why node's bitmap name (its query-block "dirty-bitmaps" list) cannot
 * say what changed, or NULL.
 */
const char *bitmap_qmp_unusable(struct json_object *bitmaps,
				const char *name);

/*
 * Remove what an earlier live backup may have left on node (its
 * dirty-bitmaps list): BITMAP_NEXT and BITMAP_FROZEN.
 */
int bitmap_qmp_sweep(struct qmp *q, const char *node,
		     struct json_object *bitmaps, struct strbuf *err);

/*
 * Add to the transaction acts, for node: BITMAP_NEXT, and when since is
 * not NULL, BITMAP_FROZEN as a copy of since.
 */
void bitmap_qmp_freeze(struct json_object *acts, const char *node,
		       const char *since);

/*
 * Offer node's BITMAP_FROZEN as NBD export name (the server listening
 * at sock first, private: QEMU's sockets are born so).  Returns 0 or
 * -errno with err.
 */
int bitmap_qmp_export(struct qmp *q, const char *sock, bool *serving,
		      const char *node, const char *name, struct strbuf *err);

/* Withdraw export name (NULL: none) and, when serving, the server. */
void bitmap_qmp_unexport(struct qmp *q, const char *name, bool *serving);

/*
 * After the commit: keep NULL, drop BITMAP_NEXT and BITMAP_FROZEN from
 * device's node; else make keep (persistent) of BITMAP_NEXT's marks,
 * the only bitmap of ours.  Returns 0 or -errno with err.
 */
int bitmap_qmp_settle(struct qmp *q, const char *device, const char *keep,
		      struct strbuf *err);

#endif
