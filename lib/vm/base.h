/*
 * A VM whose disk 0 is a qcow2 overlay on a base image (@create --base):
 * the base is never written; guest.conf records it by path (or URL) and
 * SHA-256, and every use checks both.
 */
#ifndef VM_BASE_H
#define VM_BASE_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "util/str.h"

/* What the checks need of the VM and of this run. */
struct base_env {
	const char *cache_dir; /* vm's cache ($XDG_CACHE_HOME/vm) */
	const char *workdir;   /* the VM's WORKDIR (its check stamp), or NULL */
	bool dry_run;	       /* download nothing, hash nothing */
	const char *hostdir;   /* the VM's, which pins a base by URL */
};

/* c's base image, or "" (only guest.conf and options name one). */
const char *base_of(const struct vm_conf *c);

/*
 * --base names the base of a VM already made (a chain after @create,
 * or a later command): it must be the one guest.conf records, which then
 * stands.  Anything else is an "option --base: ..." error.  guest: the
 * guest.conf read, or NULL when there is none yet (--base is @create's).
 */
int base_from_cli(struct vm_conf *c, const struct conf_file *guest,
		  struct strbuf *err);

/*
 * The base of a VM being made from spec (a path or a URL) whose file is
 * local (vm_fetch) with digest sha (NULL: computed here): what to record,
 * its format and size.  A base that is itself an overlay, or that
 * qemu-img cannot read, is refused.
 */
struct base_found {
	char *record;		/* absolute path, or the URL without #sha256 */
	char *local;		/* the file */
	char *format;
	char sha256[65];
	uint64_t size;		/* virtual size */
};
int base_find(const struct base_env *env, const char *spec, const char *local,
	      const char *sha, struct base_found *out, struct strbuf *err);
void base_found_release(struct base_found *b);

/*
 * The firmware an image boots with, read from its partition table
 * (the first 34 sectors as the guest sees them, through qemu-img dd):
 * UEFI when it has an EFI system partition and no BIOS boot partition
 * on GPT, BIOS when it has no EFI system partition; ANY when it has
 * both, no table vm knows, or cannot be read.
 */
enum base_fw { BASE_FW_ANY, BASE_FW_UEFI, BASE_FW_BIOS };
enum base_fw base_firmware(const char *local, const char *format);

/*
 * Check the disks c names in diskdir before QEMU, qemu-img or a restore
 * trusts them: a qcow2 disk may keep no data in another file and may
 * name a backing file only when it is disk 0 of a VM with a base, and
 * then only that base, whose digest must still be the recorded one (a
 * URL base's disk is pointed at this machine's cached copy).  The digest
 * is computed only when the base's file changed since the last check in
 * vm's WORKDIR.  *base: the base's file, or NULL when c has none.
 */
/*
 * An image a snapshot holds (restorable_image) is self-contained:
 * a qcow2 one names no backing or data file.  0, or -EINVAL with err.
 */
int base_check_image(const char *path, struct strbuf *err);

int base_check_disks(const struct base_env *env, const struct vm_conf *c,
		     const char *diskdir, char **base, struct strbuf *err);

#endif
