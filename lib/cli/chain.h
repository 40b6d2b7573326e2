/* The verb chain: "@create WS10 x.iso @job prepare @run" into steps. */
#ifndef VM_CHAIN_H
#define VM_CHAIN_H

#include <stdbool.h>
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
	VERB_LIVE = 1 << 9,	/* with VERB_DISKS: works on a running VM too,
				 * without the lock its vm holds */
};

struct verb {
	const char *name;
	int (*fn)(struct vm_ctx *ctx, int argc, char **argv);
	int min_args;
	int max_args;
	unsigned flags;
	const char *usage;	/* "NAME [ISO]" */
	const char *help;	/* one line */
	/*
	 * The options that may follow the verb, without "--"; a name that
	 * ends in '=' takes a value ("base=": --base=IMAGE or --base IMAGE).
	 * NULL-terminated, or NULL for none.
	 */
	const char *const *opts;
	const char *args;	/* "NAME\twhat it is\n" per argument */
	const char *example;	/* one command line, or NULL */
};

/* An option given after a verb: --name, --name=value or --name value. */
struct chain_opt {
	const char *word;	/* as given: "--base" or "--base=x.img" */
	const char *name;	/* its name in the verb's opts, without '=' */
	const char *value;	/* or NULL */
};

struct chain_step {
	const struct verb *verb;
	int argc;
	char **argv;		/* the arguments, options taken out */
	int nopts;
	struct chain_opt *opts;
	bool help;		/* -h or --help after the verb */
};

/*
 * What to say of an option word verb v's opts do not name: one line into
 * err (e.g. that an option of vm itself goes before the first verb).
 */
typedef void chain_bad_opt_fn(const struct verb *v, const char *word,
			      struct strbuf *err);

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

/*
 * The same, where words that start with '-' after a verb are options
 * (up to "--"; for a VERB_RAWARGS verb only those before its first
 * argument): -h and --help set the step's help, the verb's own go to
 * its opts, any other is refused (bad_opt says why).  An option's value
 * in the next word may not look like an option or a verb.  Argument
 * counts are not checked for a step that asks for help.  chain_parse()
 * takes no options: every word is an argument.
 */
int chain_parse_opts(const struct verb *table, size_t n, int argc,
		     char **argv, chain_bad_opt_fn *bad_opt,
		     struct chain_step **steps, struct strbuf *err);

/* The value of option name given to step s ("" for a flag), or NULL. */
const char *chain_opt(const struct chain_step *s, const char *name);

/*
 * The verb option name (without '=') of verb v closest to word, for a
 * "did you mean", or NULL.
 */
const char *chain_opt_suggest(const struct verb *v, const char *word);

/* The table entry for name (with or without '@'), or NULL. */
const struct verb *chain_find(const struct verb *table, size_t n,
			      const char *name);

/* Append " (did you mean @x?)" when a verb is close to name. */
void chain_suggest(const struct verb *table, size_t n, const char *name,
		   struct strbuf *err);

#endif
