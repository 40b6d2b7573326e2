/* Unit tests for lib/chain: splitting words into verb steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/chain.h"

static int dummy(struct vm_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return 0;
}

static const struct verb table[] = {
	{ "create", dummy, 1, 2, VERB_LOCK, "NAME [ISO]", "make a VM", NULL, "", NULL },
	{ "run", dummy, 0, 1, VERB_LOCK | VERB_DEFAULT, "[ISO]", "boot the VM", NULL, "", NULL },
	{ "destroy", dummy, 0, 0, VERB_LOCK, "", "remove the working files", NULL, "", NULL },
	{ "job", dummy, 1, 1, VERB_LOCK, "NAME", "run a job", NULL, "", NULL },
	{ "backup", dummy, 0, 2, VERB_LOCK, "[NAME [DIR]]", "save a snapshot", NULL, "", NULL },
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

#define NWORDS(w) ((int)(sizeof(w) / sizeof((w)[0])))

/* The chain parser takes char **, as main() gets it; keep copies. */
struct words {
	int argc;
	char *argv[16];
};

static void words_set(struct words *w, const char *const *src, int n)
{
	int i;

	assert_true(n < 16);
	w->argc = n;
	for (i = 0; i < n; i++)
		w->argv[i] = xstrdup(src[i]);
	w->argv[n] = NULL;
}

static void words_free(struct words *w)
{
	int i;

	for (i = 0; i < w->argc; i++)
		free(w->argv[i]);
	w->argc = 0;
}

/* Parse src expecting failure; return the error text (caller frees). */
static char *parse_fails(const char *const *src, int n)
{
	struct strbuf err = STRBUF_INIT;
	struct chain_step *steps = (struct chain_step *)(uintptr_t)1;
	struct words w;
	int r;

	words_set(&w, src, n);
	r = chain_parse(table, NTABLE, w.argc, w.argv, &steps, &err);
	assert_int_equal(r, -EINVAL);
	assert_null(steps);
	assert_true(err.len > 0);
	words_free(&w);
	return strbuf_detach(&err);
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static void test_no_words_is_run(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct chain_step *steps = NULL;
	char *argv[] = { NULL };
	int r;

	(void)state;
	r = chain_parse(table, NTABLE, 0, argv, &steps, &err);
	assert_int_equal(r, 1);
	assert_non_null(steps);
	assert_ptr_equal(steps[0].verb, &table[1]);
	assert_string_equal(steps[0].verb->name, "run");
	assert_int_equal(steps[0].argc, 0);
	assert_int_equal(err.len, 0);
	free(steps);
	strbuf_release(&err);
}

static void test_bare_argument_is_run(void **state)
{
	static const char *const src[] = { "image.iso" };
	struct strbuf err = STRBUF_INIT;
	struct chain_step *steps = NULL;
	struct words w;
	int r;

	(void)state;
	words_set(&w, src, NWORDS(src));
	r = chain_parse(table, NTABLE, w.argc, w.argv, &steps, &err);
	assert_int_equal(r, 1);
	assert_string_equal(steps[0].verb->name, "run");
	assert_int_equal(steps[0].argc, 1);
	assert_ptr_equal(steps[0].argv[0], w.argv[0]);
	assert_string_equal(steps[0].argv[0], "image.iso");
	assert_int_equal(err.len, 0);
	free(steps);
	words_free(&w);
	strbuf_release(&err);
}

static void test_full_chain(void **state)
{
	static const char *const src[] = {
		"@create", "WS10", "/iso/x.iso", "@job", "prepare", "@run",
		"@backup",
	};
	struct strbuf err = STRBUF_INIT;
	struct chain_step *steps = NULL;
	struct words w;
	int r;

	(void)state;
	words_set(&w, src, NWORDS(src));
	r = chain_parse(table, NTABLE, w.argc, w.argv, &steps, &err);
	assert_int_equal(r, 4);
	assert_int_equal(err.len, 0);

	assert_ptr_equal(steps[0].verb, &table[0]);
	assert_int_equal(steps[0].argc, 2);
	assert_ptr_equal(steps[0].argv[0], w.argv[1]);
	assert_string_equal(steps[0].argv[0], "WS10");
	assert_string_equal(steps[0].argv[1], "/iso/x.iso");

	assert_ptr_equal(steps[1].verb, &table[3]);
	assert_int_equal(steps[1].argc, 1);
	assert_ptr_equal(steps[1].argv[0], w.argv[4]);
	assert_string_equal(steps[1].argv[0], "prepare");

	assert_ptr_equal(steps[2].verb, &table[1]);
	assert_int_equal(steps[2].argc, 0);

	assert_ptr_equal(steps[3].verb, &table[4]);
	assert_int_equal(steps[3].argc, 0);

	/* The words themselves are untouched. */
	assert_string_equal(w.argv[0], "@create");
	assert_string_equal(w.argv[5], "@run");
	free(steps);
	words_free(&w);
	strbuf_release(&err);
}

static void test_bare_verb_names_start_steps(void **state)
{
	static const char *const src[] = { "create", "X", "run" };
	static const char *const src2[] = { "backup", "daily", "/b", "destroy" };
	struct strbuf err = STRBUF_INIT;
	struct chain_step *steps = NULL;
	struct words w;
	int r;

	(void)state;
	words_set(&w, src, NWORDS(src));
	r = chain_parse(table, NTABLE, w.argc, w.argv, &steps, &err);
	assert_int_equal(r, 2);
	assert_string_equal(steps[0].verb->name, "create");
	assert_int_equal(steps[0].argc, 1);
	assert_string_equal(steps[0].argv[0], "X");
	assert_string_equal(steps[1].verb->name, "run");
	assert_int_equal(steps[1].argc, 0);
	free(steps);
	words_free(&w);

	words_set(&w, src2, NWORDS(src2));
	r = chain_parse(table, NTABLE, w.argc, w.argv, &steps, &err);
	assert_int_equal(r, 2);
	assert_string_equal(steps[0].verb->name, "backup");
	assert_int_equal(steps[0].argc, 2);
	assert_string_equal(steps[0].argv[1], "/b");
	assert_string_equal(steps[1].verb->name, "destroy");
	assert_int_equal(steps[1].argc, 0);
	assert_int_equal(err.len, 0);
	free(steps);
	words_free(&w);
	strbuf_release(&err);
}

static void test_run_with_image_then_verbs(void **state)
{
	static const char *const src[] = { "image.iso", "@backup", "nightly" };
	struct strbuf err = STRBUF_INIT;
	struct chain_step *steps = NULL;
	struct words w;
	int r;

	(void)state;
	words_set(&w, src, NWORDS(src));
	r = chain_parse(table, NTABLE, w.argc, w.argv, &steps, &err);
	assert_int_equal(r, 2);
	assert_string_equal(steps[0].verb->name, "run");
	assert_int_equal(steps[0].argc, 1);
	assert_string_equal(steps[0].argv[0], "image.iso");
	assert_string_equal(steps[1].verb->name, "backup");
	assert_int_equal(steps[1].argc, 1);
	assert_string_equal(steps[1].argv[0], "nightly");
	free(steps);
	words_free(&w);
	strbuf_release(&err);
}

static void test_unknown_verb_suggests(void **state)
{
	static const char *const src[] = { "@creat", "WS10" };
	static const char *const src2[] = { "@detsroy" };
	static const char *const src3[] = { "@bakup" };
	char *e;

	(void)state;
	e = parse_fails(src, NWORDS(src));
	assert_contains(e, "unknown command '@creat'");
	assert_contains(e, "did you mean @create");
	free(e);
	e = parse_fails(src2, NWORDS(src2));
	assert_contains(e, "'@detsroy'");
	assert_contains(e, "did you mean @destroy");
	free(e);
	e = parse_fails(src3, NWORDS(src3));
	assert_contains(e, "did you mean @backup");
	free(e);
}

static void test_unknown_verb_far_from_all(void **state)
{
	static const char *const src[] = { "@frobnicate" };
	static const char *const src2[] = { "@" };
	char *e;

	(void)state;
	e = parse_fails(src, NWORDS(src));
	assert_contains(e, "unknown command '@frobnicate'");
	assert_null(strstr(e, "did you mean"));
	free(e);
	e = parse_fails(src2, NWORDS(src2));
	assert_contains(e, "unknown command '@'");
	assert_null(strstr(e, "did you mean"));
	free(e);
}

static void test_too_many_args(void **state)
{
	static const char *const src[] = { "@destroy", "x" };
	static const char *const src2[] = { "@create", "a", "b", "c" };
	static const char *const src3[] = { "@job", "a", "b" };
	static const char *const src4[] = { "a.iso", "b.iso" };
	char *e;

	(void)state;
	e = parse_fails(src, NWORDS(src));
	assert_contains(e, "@destroy takes no arguments");
	assert_contains(e, "got 1");
	assert_contains(e, "usage: @destroy)");
	free(e);
	e = parse_fails(src2, NWORDS(src2));
	assert_contains(e, "@create takes 1 to 2 arguments");
	assert_contains(e, "got 3");
	assert_contains(e, "usage: @create NAME [ISO]");
	free(e);
	e = parse_fails(src3, NWORDS(src3));
	assert_contains(e, "@job takes 1 argument,");
	assert_contains(e, "usage: @job NAME");
	free(e);
	/* "vm a.iso b.iso" is run with two arguments. */
	e = parse_fails(src4, NWORDS(src4));
	assert_contains(e, "@run takes 0 to 1 arguments");
	assert_contains(e, "usage: @run [ISO]");
	free(e);
}

static void test_too_few_args(void **state)
{
	static const char *const src[] = { "@create" };
	static const char *const src2[] = { "@create", "X", "@job", "@run" };
	char *e;

	(void)state;
	e = parse_fails(src, NWORDS(src));
	assert_contains(e, "@create takes 1 to 2 arguments, got 0");
	assert_contains(e, "usage: @create NAME [ISO]");
	free(e);
	/* The whole chain is checked, not only the first step. */
	e = parse_fails(src2, NWORDS(src2));
	assert_contains(e, "@job takes 1 argument, got 0");
	assert_null(strstr(e, "@create takes"));
	free(e);
}

static void test_unknown_word_in_argument_position(void **state)
{
	static const char *const src[] = { "@create", "X", "@bogus", "y" };
	static const char *const src2[] = { "@run", "@jb", "prepare" };
	static const char *const src3[] = { "image.iso", "@nope" };
	char *e;

	(void)state;
	e = parse_fails(src, NWORDS(src));
	assert_contains(e, "unknown command '@bogus'");
	free(e);
	e = parse_fails(src2, NWORDS(src2));
	assert_contains(e, "unknown command '@jb'");
	assert_contains(e, "did you mean @job");
	free(e);
	e = parse_fails(src3, NWORDS(src3));
	assert_contains(e, "unknown command '@nope'");
	free(e);
}

static void test_chain_find(void **state)
{
	(void)state;
	assert_ptr_equal(chain_find(table, NTABLE, "create"), &table[0]);
	assert_ptr_equal(chain_find(table, NTABLE, "@create"), &table[0]);
	assert_ptr_equal(chain_find(table, NTABLE, "@backup"), &table[4]);
	assert_null(chain_find(table, NTABLE, "@creat"));
	assert_null(chain_find(table, NTABLE, "Create"));
	assert_null(chain_find(table, NTABLE, "@"));
	assert_null(chain_find(table, NTABLE, ""));
	assert_null(chain_find(table, NTABLE, "runx"));
}

static void test_suggest_skips_hidden_verbs(void **state)
{
	static const struct verb hidden[] = {
		{ "run", dummy, 0, 1, 0, "[ISO]", "boot", NULL, "", NULL },
		{ "debug", dummy, 0, 0, VERB_HIDDEN, "", "internal", NULL, "", NULL },
	};
	struct strbuf err = STRBUF_INIT;

	(void)state;
	chain_suggest(hidden, 2, "@debg", &err);
	assert_string_equal(err.buf, "");
	chain_suggest(hidden, 2, "@rn", &err);
	assert_string_equal(err.buf, " (did you mean @run?)");
	strbuf_reset(&err);
	chain_suggest(table, NTABLE, "ceate", &err);
	assert_string_equal(err.buf, " (did you mean @create?)");
	strbuf_reset(&err);
	/* A prefix of a verb counts as close. */
	chain_suggest(table, NTABLE, "@back", &err);
	assert_string_equal(err.buf, " (did you mean @backup?)");
	strbuf_release(&err);
}

/* "@monitor info status": only an @verb ends a raw verb's arguments. */
static void test_raw_arguments(void **state)
{
	static const struct verb raw[] = {
		{ "status", dummy, 0, 0, 0, "", "status", NULL, "", NULL },
		{ "monitor", dummy, 1, -1, VERB_RAWARGS, "CMD...", "hmp", NULL, "", NULL },
		{ "stop", dummy, 0, 1, 0, "[SECS]", "stop", NULL, "", NULL },
	};
	static const char *const src[] = { "@monitor", "info", "status",
					   "stop", "@stop", "5" };
	struct strbuf err = STRBUF_INIT;
	struct chain_step *steps = NULL;
	struct words w;

	(void)state;
	words_set(&w, src, NWORDS(src));
	assert_int_equal(chain_parse(raw, 3, w.argc, w.argv, &steps, &err), 2);
	assert_string_equal(steps[0].verb->name, "monitor");
	assert_int_equal(steps[0].argc, 3);
	assert_string_equal(steps[0].argv[1], "status");
	assert_string_equal(steps[0].argv[2], "stop");
	assert_string_equal(steps[1].verb->name, "stop");
	assert_int_equal(steps[1].argc, 1);
	free(steps);
	words_free(&w);
	strbuf_release(&err);
}

/* The default verb is a flag in the table, not a name in the parser. */
static void test_default_verb_is_a_flag(void **state)
{
	static const struct verb other[] = {
		{ "run", dummy, 0, 1, 0, "[ISO]", "boot", NULL, "", NULL },
		{ "start", dummy, 0, 1, VERB_DEFAULT, "[ISO]", "start", NULL, "", NULL },
	};
	static const struct verb none[] = {
		{ "run", dummy, 0, 1, 0, "[ISO]", "boot", NULL, "", NULL },
	};
	static const char *const src[] = { "image.iso" };
	struct strbuf err = STRBUF_INIT;
	struct chain_step *steps = NULL;
	char *argv[] = { NULL };
	struct words w;

	(void)state;
	assert_int_equal(chain_parse(other, 2, 0, argv, &steps, &err), 1);
	assert_ptr_equal(steps[0].verb, &other[1]);
	free(steps);
	words_set(&w, src, NWORDS(src));
	assert_int_equal(chain_parse(other, 2, w.argc, w.argv, &steps, &err),
			 1);
	assert_string_equal(steps[0].verb->name, "start");
	assert_int_equal(steps[0].argc, 1);
	free(steps);
	steps = NULL;
	assert_int_equal(chain_parse(none, 1, 0, argv, &steps, &err), -EINVAL);
	assert_null(steps);
	assert_string_equal(err.buf, "no command given");
	strbuf_reset(&err);
	assert_int_equal(chain_parse(none, 1, w.argc, w.argv, &steps, &err),
			 -EINVAL);
	assert_string_equal(err.buf, "'image.iso' is not a command");
	words_free(&w);
	strbuf_release(&err);
}

static const char *const bk_opts[] = { "full", "base=", NULL };

static const struct verb opt_table[] = {
	{ "backup", dummy, 0, 2, VERB_LOCK, "[NAME [DESCRIPTION]]", "save",
	  bk_opts, "", NULL },
	{ "ssh", dummy, 0, -1, VERB_RAWARGS, "[CMD...]", "ssh", NULL, "",
	  NULL },
	{ "run", dummy, 0, 1, VERB_DEFAULT, "[ISO]", "boot", NULL, "", NULL },
};

static void bad_opt_said(const struct verb *v, const char *word,
			 struct strbuf *err)
{
	strbuf_addf(err, "said: %s %s", v->name, word);
}

/* Parse src with opt_table; the steps (caller frees) or NULL, and err. */
static struct chain_step *parse_opts(const char *const *src, int n,
				     struct words *w, int *nsteps,
				     struct strbuf *err)
{
	struct chain_step *steps = NULL;

	words_set(w, src, n);
	*nsteps = chain_parse_opts(opt_table, 3, w->argc, w->argv,
				   bad_opt_said, &steps, err);
	return steps;
}

static void test_options_after_a_verb(void **state)
{
	static const char *const src[] = {
		"@backup", "ci1", "--full", "desc", "--base", "x.img",
		"@backup", "--base=y.img", "--", "--full",
	};
	struct strbuf err = STRBUF_INIT;
	struct chain_step *s;
	struct words w;
	int n;

	(void)state;
	s = parse_opts(src, NWORDS(src), &w, &n, &err);
	assert_non_null(s);
	assert_int_equal(n, 2);
	assert_int_equal(s[0].argc, 2);
	assert_string_equal(s[0].argv[0], "ci1");
	assert_string_equal(s[0].argv[1], "desc");
	assert_int_equal(s[0].nopts, 2);
	assert_string_equal(chain_opt(&s[0], "full"), "");
	assert_string_equal(chain_opt(&s[0], "base"), "x.img");
	assert_false(s[0].help);
	/* after "--" a word that looks like an option is an argument */
	assert_int_equal(s[1].argc, 1);
	assert_string_equal(s[1].argv[0], "--full");
	assert_string_equal(chain_opt(&s[1], "base"), "y.img");
	assert_null(chain_opt(&s[1], "full"));
	free(s);
	words_free(&w);
	strbuf_release(&err);
}

static void test_option_errors(void **state)
{
	static const char *const unknown[] = { "@backup", "--memory=4G" };
	static const char *const novalue[] = { "@backup", "--base" };
	static const char *const flagval[] = { "@backup", "--full=yes" };
	static const char *const optval[] = { "@backup", "--base", "--full" };
	static const char *const verbval[] = { "@backup", "--base", "run" };
	struct strbuf err = STRBUF_INIT;
	struct words w;
	int n;

	(void)state;
	assert_null(parse_opts(unknown, 2, &w, &n, &err));
	assert_int_equal(n, -EINVAL);
	assert_string_equal(err.buf, "said: backup --memory=4G");
	words_free(&w);
	strbuf_reset(&err);
	assert_null(parse_opts(novalue, 2, &w, &n, &err));
	assert_string_equal(err.buf, "option --base of @backup needs a value");
	words_free(&w);
	strbuf_reset(&err);
	assert_null(parse_opts(flagval, 2, &w, &n, &err));
	assert_string_equal(err.buf, "option --full of @backup takes no value");
	words_free(&w);
	/* a value word that looks like an option or a verb is not taken */
	strbuf_reset(&err);
	assert_null(parse_opts(optval, 3, &w, &n, &err));
	assert_string_equal(err.buf, "option --base of @backup needs a value, not '--full' (write --base=--full if that is the value)");
	words_free(&w);
	strbuf_reset(&err);
	assert_null(parse_opts(verbval, 3, &w, &n, &err));
	assert_string_equal(err.buf, "option --base of @backup needs a value, not 'run' (write --base=run if that is the value)");
	words_free(&w);
	strbuf_release(&err);
	assert_string_equal(chain_opt_suggest(&opt_table[0], "--ful"), "full");
	assert_null(chain_opt_suggest(&opt_table[0], "--memory"));
}

static void test_help_skips_the_count(void **state)
{
	static const char *const src[] = { "@backup", "a", "b", "c", "-h" };
	static const char *const later[] = { "@backup", "a", "b", "c", "@run", "-h" };
	static const char *const raw[] = { "@ssh", "-h", "ls", "-la", "--help" };
	struct strbuf err = STRBUF_INIT;
	struct chain_step *s;
	struct words w;
	int n;

	(void)state;
	s = parse_opts(src, NWORDS(src), &w, &n, &err);
	assert_non_null(s);
	assert_true(s[0].help);
	free(s);
	words_free(&w);
	/* help asked for anywhere in the chain wins over a count */
	s = parse_opts(later, NWORDS(later), &w, &n, &err);
	assert_non_null(s);
	assert_int_equal(n, 2);
	assert_true(s[1].help);
	assert_int_equal(err.len, 0);
	free(s);
	words_free(&w);
	/* a raw verb's command keeps its own options */
	s = parse_opts(raw, NWORDS(raw), &w, &n, &err);
	assert_non_null(s);
	assert_true(s[0].help);
	assert_int_equal(s[0].argc, 3);
	assert_string_equal(s[0].argv[1], "-la");
	assert_string_equal(s[0].argv[2], "--help");
	free(s);
	words_free(&w);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_words_is_run),
		cmocka_unit_test(test_bare_argument_is_run),
		cmocka_unit_test(test_full_chain),
		cmocka_unit_test(test_bare_verb_names_start_steps),
		cmocka_unit_test(test_run_with_image_then_verbs),
		cmocka_unit_test(test_unknown_verb_suggests),
		cmocka_unit_test(test_unknown_verb_far_from_all),
		cmocka_unit_test(test_too_many_args),
		cmocka_unit_test(test_too_few_args),
		cmocka_unit_test(test_unknown_word_in_argument_position),
		cmocka_unit_test(test_chain_find),
		cmocka_unit_test(test_suggest_skips_hidden_verbs),
		cmocka_unit_test(test_default_verb_is_a_flag),
		cmocka_unit_test(test_options_after_a_verb),
		cmocka_unit_test(test_option_errors),
		cmocka_unit_test(test_help_skips_the_count),
		cmocka_unit_test(test_raw_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
