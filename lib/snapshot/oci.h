/*
 * A snapshot chain as an OCI image in a container registry: each
 * snapshot's archive a layer (the same bytes), oldest first, and a
 * config that says what a restore needs (docs/registry.md).
 */
#ifndef VM_OCI_H
#define VM_OCI_H

#include <stdbool.h>
#include <stdint.h>

#include "net/registry.h"
#include "snapshot/backups.h"
#include "vm/vm.h"

/* The config's own part: a member "vm" holding this format's number. */
#define OCI_VM_FORMAT 1

/* What a push did. */
struct oci_pushed {
	char digest[72];	/* the manifest's */
	int layers;		/* in the image */
	int uploaded;		/* layers sent */
	int mounted;		/* layers the registry took from another
				 * repository of its own */
	uint64_t bytes;		/* blob bytes sent (layers and config) */
	uint64_t size;		/* the layers' bytes in all */
};

/*
 * Push snapshot name (NULL: LAST) of vm with its chain to ref, as an
 * image whose layers are the archives in backups/, oldest first.  Only
 * the blobs the registry lacks are sent; the manifest goes last, so an
 * interrupted push tags nothing.  Returns 0, -EINTR, or -errno with err
 * in one line.
 */
int oci_push(const struct vm *vm, const char *name, const struct oci_ref *ref,
	     const struct reg_opts *o, struct oci_pushed *out,
	     struct strbuf *err);

#endif
