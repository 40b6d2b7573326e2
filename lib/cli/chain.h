/* The verb chain: "@create WS10 x.iso @job prepare @run" into steps. */
#ifndef VM_CHAIN_H
#define VM_CHAIN_H

#include <stddef.h>

#include "util/str.h"

struct vm_ctx;

enum verb_flags {
	VERB_LOCK = 1 << 0,	/* needs the VM's lock */
	VERB_HIDDEN = 1 << 1,	/* not listed in help */
	VERB_DEFAULT = 1 << 2,	/* what "vm" alone, or "vm ARG", runs */
	VERB_MKDIR = 1 << 3,	/* as the first verb, makes HOSTDIR */
	VERB_NOVM = 1 << 4,	/* needs no VM directory or settings */
	VERB_DISKS = 1 << 5,	/* uses the disks: refused while the VM runs */
	VERB_ANSWER = 1 << 6,	/* exit status 3 is an answer, no failure */
	VERB_RAWARGS = 1 << 7,	/* only an @verb ends its arguments */
	VERB_NOJSON = 1 << 8,	/* nothing to report: refused with --json */
};

struct verb {
	const char *name;
	int (*fn)(struct vm_ctx *ctx, int argc, char **argv);
	int min_args;
	int max_args;
	unsigned flags;
	const char *usage;	/* "NAME [ISO]" */
	const char *help;	/* one line */
};

struct chain_step {
	const struct verb *verb;
	int argc;
	char **argv;		/* points into the caller's argv */
};

/*
 * Split words into steps.  A word names a verb when it is "@name" or a
 * bare name in the table; arguments run to the next such word (for a
 * VERB_RAWARGS verb, to the next "@name": "@monitor info status").  No words
 * means the VERB_DEFAULT verb; a first word that is no verb is its
 * argument.
 * Returns the number of steps (steps owned by the caller, free()), or
 * -EINVAL with a one-line reason in err (with "did you mean" where a
 * verb is close).
 */
int chain_parse(const struct verb *table, size_t n, int argc, char **argv,
		struct chain_step **steps, struct strbuf *err);

/* The table entry for name (with or without '@'), or NULL. */
const struct verb *chain_find(const struct verb *table, size_t n,
			      const char *name);

/* Append " (did you mean @x?)" when a verb is close to name. */
void chain_suggest(const struct verb *table, size_t n, const char *name,
		   struct strbuf *err);

#endif
