/* Snapshots by URL. */
#ifndef VM_FETCH_H
#define VM_FETCH_H

#include "snapshot/backups.h"
#include "util/str.h"
#include "vm/vm.h"

/*
 * A snapshot by URL (http, https, ftp, file; "#sha256=HEX" pins it) and
 * the parents it names, fetched through the download cache from the
 * same base URL (BASE/PARENT.tar.gz): *list (caller frees) gets them as
 * snapshots, the one asked for first, each path the cached copy.  The
 * parents need no digest of their own: each child names its parent's
 * STATE, which the restore checks.  Returns 0 or -errno with err
 * (-ELOOP: the parents name one another, or there are more than
 * max_chain); what a failed call downloaded is removed from the cache.
 */
int snap_fetch_chain(struct vm *vm, const char *spec, struct backup **list,
		     int *n, struct strbuf *err);

#endif
