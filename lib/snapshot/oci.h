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

/* What a pull did. */
struct oci_pulled {
	char digest[72];	/* the manifest's */
	char *tip;		/* the newest snapshot's name (caller frees) */
	int layers;		/* in the image */
	int fetched;		/* downloaded; the rest were in backups/ */
	uint64_t bytes;		/* blob bytes received */
	uint64_t size;		/* the layers' bytes in all */
	bool last_set;		/* LAST named nothing and now names tip */
};

/*
 * Bring the image ref names (a tag or a digest) into vm's backups/ as
 * snapshots, names kept: each layer whose name is not there yet is
 * downloaded (into backups/.NAME.tar.gz.pull, resumed by a later pull
 * when interrupted), its digest checked, its own parent checked against
 * the image's config; then all are put in place, parents first.  A
 * snapshot of that name already there must be the same archive.  LAST
 * is set to the tip when it named nothing.  stage (or NULL): a staged
 * restore (snapshot/restore.h) given each layer of the chain as soon as
 * it is here, and waited for before they are put in place; the caller
 * finishes or aborts it.  Returns 0, -EINTR, or -errno with err in one
 * line; backups/ then has no new snapshot.
 */
struct restore_stage;
int oci_pull(const struct vm *vm, const struct oci_ref *ref,
	     const struct reg_opts *o, struct restore_stage *stage,
	     struct oci_pulled *out, struct strbuf *err);
void oci_pulled_release(struct oci_pulled *p);

#endif
