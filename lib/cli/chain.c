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

/* The entry of v->opts that word ("--name" or "--name=v") names, or NULL. */
static const char *verb_opt(const struct verb *v, const char *word,
			    size_t *namelen)
{
	const char *name = word + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	size_t k;

	if (strncmp(word, "--", 2) || !len || !v->opts)
		return NULL;
	for (k = 0; v->opts[k]; k++) {
		const char *o = v->opts[k];
		size_t ol = strcspn(o, "=");

		if (ol == len && !strncmp(o, name, len)) {
			*namelen = len;
			return o;
		}
	}
	return NULL;
}

const char *chain_opt_suggest(const struct verb *v, const char *word)
{
	static struct str_near n;
	size_t k;

	n = (struct str_near)STR_NEAR_INIT;
	while (*word == '-')
		word++;
	for (k = 0; v->opts && v->opts[k]; k++)
		str_near_try(&n, word, v->opts[k], strcspn(v->opts[k], "="));
	return str_near_pick(&n, word);
}

const char *chain_opt(const struct chain_step *s, const char *name)
{
	int k;

	for (k = 0; k < s->nopts; k++)
		if (!strcmp(s->opts[k].name, name))
			return s->opts[k].value ? s->opts[k].value : "";
	return NULL;
}

/*
 * Option word argv[*i] of step s: into its opts (the value's word too),
 * or -EINVAL with why in err.
 */
static int take_opt(const struct verb *table, size_t n,
		    struct chain_step *s, int argc, char **argv, int *i,
		    char *names, chain_bad_opt_fn *bad_opt, struct strbuf *err)
{
	const char *w = argv[*i], *o;
	struct chain_opt *co = &s->opts[s->nopts];
	size_t len = 0;

	if (!strcmp(w, "-h") || !strcmp(w, "--help")) {
		s->help = true;
		return 0;
	}
	o = verb_opt(s->verb, w, &len);
	if (!o) {
		bad_opt(s->verb, w, err);
		return -EINVAL;
	}
	/* the name, NUL-terminated, kept beside the words */
	memcpy(names, w + 2, len);
	names[len] = '\0';
	co->word = w;
	co->name = names;
	co->value = NULL;
	if (w[2 + len] == '=') {
		if (o[len] != '=') {
			strbuf_addf(err, "option --%s of @%s takes no value",
				    co->name, s->verb->name);
			return -EINVAL;
		}
		co->value = w + 3 + len;
	} else if (o[len] == '=') {
		const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;

		if (!v) {
			strbuf_addf(err, "option --%s of @%s needs a value",
				    co->name, s->verb->name);
			return -EINVAL;
		}
		/*
		 * "@create --base --inplace" is a missing value, not base =
		 * --inplace (nor "--base stop" a base named stop), as for the
		 * options before the verbs; --base=x says it is meant
		 */
		if (v[0] == '@' || (v[0] == '-' && v[1]) ||
		    chain_find(table, n, v)) {
			strbuf_addf(err, "option --%s of @%s needs a value, not '%s' (write --%s=%s if that is the value)",
				    co->name, s->verb->name, v, co->name, v);
			return -EINVAL;
		}
		co->value = argv[++*i];
	}
	s->nopts++;
	return 0;
}

/*
 * The words of step s from argv[*i] up to the next verb: its options
 * (with bad_opt: "--" ends them, and a raw verb's command is all its
 * own) and its arguments.  0, or -EINVAL with err.
 */
static int take_words(const struct verb *table, size_t n,
		      struct chain_step *s, int argc, char **argv, int *i,
		      char **names, chain_bad_opt_fn *bad_opt,
		      struct strbuf *err)
{
	bool opts_done = false;

	while (*i < argc && !ends_args(table, n, s->verb, argv[*i])) {
		const char *w = argv[*i];

		if (w[0] == '@') {
			strbuf_addf(err, "unknown command '%s'", w);
			chain_suggest(table, n, w, err);
			return -EINVAL;
		}
		if (bad_opt && !opts_done && !strcmp(w, "--")) {
			opts_done = true;
		} else if (bad_opt && !opts_done && w[0] == '-' && w[1] &&
			   (!(s->verb->flags & VERB_RAWARGS) || s->argc == 0)) {
			int before = s->nopts;

			if (take_opt(table, n, s, argc, argv, i, *names,
				     bad_opt, err))
				return -EINVAL;
			if (s->nopts > before)
				*names += strlen(*names) + 1;
		} else {
			s->argv[s->argc++] = argv[*i];
			/* a raw verb's command is all its own */
			if (s->verb->flags & VERB_RAWARGS)
				opts_done = true;
		}
		(*i)++;
	}
	return 0;
}

int chain_parse_opts(const struct verb *table, size_t n, int argc,
		     char **argv, chain_bad_opt_fn *bad_opt,
		     struct chain_step **out, struct strbuf *err)
{
	size_t slots = (size_t)argc + 1, namesz = 0;
	struct chain_step *steps;
	struct chain_opt *opts;
	const struct verb *run = NULL;
	char **words, *names;
	int nsteps = 0, i = 0, nw = 0, no = 0;
	struct strbuf count_err = STRBUF_INIT;
	bool any_help = false;
	size_t k;

	for (i = 0; i < argc; i++)
		namesz += strlen(argv[i]) + 1;
	i = 0;
	/* one block, so that free(steps) frees it all */
	steps = xcalloc(1, slots * (sizeof(*steps) + sizeof(*words) +
				    sizeof(*opts)) + namesz + 1);
	words = (char **)(steps + slots);
	opts = (struct chain_opt *)(words + slots);
	names = (char *)(opts + slots);
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
		steps[0].argv = words;
		steps[0].opts = opts;
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
		s->argv = &words[nw];
		s->opts = &opts[no];
		if (take_words(table, n, s, argc, argv, &i, &names, bad_opt,
			       err))
			goto fail;
		nw += s->argc + 1;	/* each step's words end in NULL */
		no += s->nopts;
		/* the first count that is wrong, unless a step asks for help */
		if (!s->help && !count_err.len)
			check_count(s, &count_err);
		any_help = any_help || s->help;
		nsteps++;
	}
	if (count_err.len && !any_help) {
		strbuf_addstr(err, count_err.buf);
		goto fail;
	}
	strbuf_release(&count_err);
	*out = steps;
	return nsteps;
fail:
	strbuf_release(&count_err);
	free(steps);
	return -EINVAL;
}

int chain_parse(const struct verb *table, size_t n, int argc, char **argv,
		struct chain_step **out, struct strbuf *err)
{
	return chain_parse_opts(table, n, argc, argv, NULL, out, err);
}
