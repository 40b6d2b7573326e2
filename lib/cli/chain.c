#include "cli/chain.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const struct verb *chain_find(const struct verb *table, size_t n,
			      const char *name)
{
	size_t i;

	if (*name == '@')
		name++;
	for (i = 0; i < n; i++)
		if (!strcmp(table[i].name, name))
			return &table[i];
	return NULL;
}

void chain_suggest(const struct verb *table, size_t n, const char *name,
		   struct strbuf *err)
{
	size_t i, best = (size_t)-1, bi = 0;

	if (*name == '@')
		name++;
	for (i = 0; i < n; i++) {
		size_t d;

		if (table[i].flags & VERB_HIDDEN)
			continue;
		d = str_distance(name, table[i].name);
		if (*name && str_starts_with(table[i].name, name))
			d = 1;
		if (d < best) {
			best = d;
			bi = i;
		}
	}
	if (best <= 2 && best < strlen(name))
		strbuf_addf(err, " (did you mean @%s?)", table[bi].name);
}

static const struct verb *word_verb(const struct verb *table, size_t n,
				    const char *w)
{
	return chain_find(table, n, w);
}

/* Whether word w starts a new step after the arguments of verb v. */
static bool ends_args(const struct verb *table, size_t n,
		      const struct verb *v, const char *w)
{
	if ((v->flags & VERB_RAWARGS) && w[0] != '@')
		return false;
	return word_verb(table, n, w) != NULL;
}

static int check_count(const struct chain_step *s, struct strbuf *err)
{
	const struct verb *v = s->verb;

	if (s->argc >= v->min_args &&
	    (v->max_args < 0 || s->argc <= v->max_args))
		return 0;
	strbuf_addf(err, "@%s takes ", v->name);
	if (v->max_args == 0)
		strbuf_addstr(err, "no arguments");
	else if (v->min_args == v->max_args)
		strbuf_addf(err, "%d argument%s", v->min_args,
			    v->min_args == 1 ? "" : "s");
	else if (v->max_args < 0)
		strbuf_addf(err, "at least %d argument%s", v->min_args,
			    v->min_args == 1 ? "" : "s");
	else
		strbuf_addf(err, "%d to %d arguments", v->min_args,
			    v->max_args);
	strbuf_addf(err, ", got %d (usage: @%s%s%s)", s->argc, v->name,
		    *v->usage ? " " : "", v->usage);
	return -EINVAL;
}

int chain_parse(const struct verb *table, size_t n, int argc, char **argv,
		struct chain_step **out, struct strbuf *err)
{
	struct chain_step *steps = xcalloc((size_t)argc + 1, sizeof(*steps));
	const struct verb *run = NULL;
	int nsteps = 0, i = 0;
	size_t k;

	for (k = 0; k < n && !run; k++)
		if (table[k].flags & VERB_DEFAULT)
			run = &table[k];

	*out = NULL;
	if (argc == 0) {
		if (!run) {
			strbuf_addstr(err, "no command given");
			goto fail;
		}
		steps[0].verb = run;
		*out = steps;
		return 1;
	}
	while (i < argc) {
		const struct verb *v = word_verb(table, n, argv[i]);
		struct chain_step *s = &steps[nsteps];

		if (!v && argv[i][0] == '@') {
			strbuf_addf(err, "unknown command '%s'", argv[i]);
			chain_suggest(table, n, argv[i], err);
			goto fail;
		}
		if (!v && nsteps > 0) {
			/* cannot happen: arguments are consumed below */
			strbuf_addf(err, "unexpected '%s'", argv[i]);
			goto fail;
		}
		if (v) {
			s->verb = v;
			i++;
		} else if (run) {
			s->verb = run;	/* "vm image.iso" */
		} else {
			strbuf_addf(err, "'%s' is not a command", argv[i]);
			goto fail;
		}
		s->argv = &argv[i];
		while (i < argc && !ends_args(table, n, s->verb, argv[i])) {
			if (argv[i][0] == '@') {
				strbuf_addf(err, "unknown command '%s'",
					    argv[i]);
				chain_suggest(table, n, argv[i], err);
				goto fail;
			}
			s->argc++;
			i++;
		}
		if (check_count(s, err))
			goto fail;
		nsteps++;
	}
	*out = steps;
	return nsteps;
fail:
	free(steps);
	return -EINVAL;
}
