/* HOSTDIR/backups: naming, listing and the LAST link. */
#ifndef VM_BACKUPS_H
#define VM_BACKUPS_H

#include <stdbool.h>

#include "vm.h"

struct backup {
	char *name;		/* S0, 2023-05-10, ... */
	char *path;		/* backups/NAME.tar.gz or backups/NAME/ */
	bool legacy;		/* the reference's directory layout */
};

/*
 * Every snapshot in HOSTDIR/backups, in natural order (S2 before S10).
 * Returns the count (0 when there is no backups/) or -errno; the caller
 * frees with backups_free.
 */
int backups_list(const struct vm_ctx *ctx, struct backup **out);
void backups_free(struct backup *b, int n);

/* The snapshot LAST names, or NULL; caller frees. */
char *backups_last(const struct vm_ctx *ctx);

/* The next free S<n> after the highest one; caller frees. */
char *backups_next_name(const struct backup *b, int n);

/* Find NAME ("LAST" resolves the link) in the list, or NULL. */
const struct backup *backups_find(const struct vm_ctx *ctx,
				  const struct backup *b, int n,
				  const char *name);

/* Point LAST at name atomically (new link + rename). */
int backups_set_last(const struct vm_ctx *ctx, const struct backup *b);

#endif
