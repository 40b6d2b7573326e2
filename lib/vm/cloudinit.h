/*
 * A cloud-init NoCloud seed for the VM's boot: a read-only virtio disk
 * labelled cidata with meta-data and user-data, made afresh from the
 * settings each time (cloud_init: auto is for a VM made on a disk
 * image).
 */
#ifndef VM_CLOUDINIT_H
#define VM_CLOUDINIT_H

#include "vm/vm.h"

/* The VM boots with a seed (cloud_init yes, or auto and a base). */
bool cloudinit_wanted(const struct vm *vm);

/* xorriso, which makes the seed, is installed. */
bool cloudinit_can(void);

/*
 * Write the seed's files into dir (made, mode 0700): meta-data with an
 * instance-id that changes only with the seed's content and the VM's
 * name as local-hostname; user-data from HOSTDIR/user-data when there
 * is one, else a #cloud-config giving ssh_user the keys sshkeys names
 * (root: disable_root false), with sudo.  0 or -errno with err.
 */
int cloudinit_files(const struct vm *vm, const char *dir, struct strbuf *err);

/*
 * The seed for this boot: WORKDIR/cidata.iso made from cloudinit_files
 * with xorriso (ISO 9660, Joliet, Rock Ridge, volume cidata).  In a dry
 * run only the path.  0 and *path (caller frees), or -errno with err.
 */
int cloudinit_seed(const struct vm *vm, char **path, struct strbuf *err);

#endif
