/*
 * Golden files for the unit tests: compare text with tests/golden/NAME,
 * or write it there when UPDATE_GOLDEN=1.  Include after <cmocka.h>.
 */
#ifndef VM_TEST_GOLDEN_H
#define VM_TEST_GOLDEN_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

#ifdef SRCDIR
#define GOLDEN_DIR SRCDIR "/tests/golden"
#else
#define GOLDEN_DIR "tests/golden"	/* tests run from the repo root */
#endif

/* Replace every occurrence of from in text (owned) by to; returns new. */
static inline char *golden_replace(char *text, const char *from,
				   const char *to)
{
	struct strbuf sb = STRBUF_INIT;
	size_t flen = strlen(from);
	const char *p = text, *hit;

	if (!flen)
		return text;
	while ((hit = strstr(p, from))) {
		strbuf_add(&sb, p, (size_t)(hit - p));
		strbuf_addstr(&sb, to);
		p = hit + flen;
	}
	strbuf_addstr(&sb, p);
	free(text);
	return strbuf_detach(&sb);
}

/* argv one argument a line, with a final newline; caller frees. */
static inline char *golden_argv_text(const struct strvec *argv)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; i < argv->nr; i++) {
		strbuf_addstr(&sb, argv->v[i]);
		strbuf_addch(&sb, '\n');
	}
	return strbuf_detach(&sb);
}

/* Print the first line where want and got differ. */
static inline void golden_report(const char *path, const char *want,
				 const char *got)
{
	size_t line = 1;
	const char *w = want, *g = got;

	while (*w && *w == *g) {
		if (*w == '\n')
			line++;
		w++;
		g++;
	}
	while (w > want && w[-1] != '\n')
		w--;
	g = got + (w - want);
	print_error("%s differs at line %zu (UPDATE_GOLDEN=1 rewrites it)\n"
		    "  want: %.*s\n  got:  %.*s\n",
		    path, line, (int)strcspn(w, "\n"), w, (int)strcspn(g, "\n"),
		    g);
}

static inline void golden_check(const char *name, const char *got)
{
	struct strbuf want = STRBUF_INIT;
	const char *update = getenv("UPDATE_GOLDEN");
	char *path = xasprintf("%s/%s", GOLDEN_DIR, name);
	char buf[4096];
	size_t n;
	FILE *f;

	if (update && !strcmp(update, "1")) {
		f = fopen(path, "w");
		if (!f)
			fail_msg("cannot write %s: %s", path, strerror(errno));
		assert_int_equal(fwrite(got, 1, strlen(got), f), strlen(got));
		assert_int_equal(fclose(f), 0);
		free(path);
		return;
	}
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot read %s: %s (UPDATE_GOLDEN=1 writes it)", path,
			 strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&want, buf, n);
	fclose(f);
	if (strcmp(want.buf, got))
		golden_report(path, want.buf, got);
	assert_string_equal(want.buf, got);
	strbuf_release(&want);
	free(path);
}

#endif
