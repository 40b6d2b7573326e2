#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static bool use_color;
static bool quiet;

void log_init(bool no_colors)
{
	const char *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");

	use_color = !no_colors && !(nc && *nc) && isatty(STDERR_FILENO) &&
		    !(term && !*term) && !(term && !__builtin_strcmp(term, "dumb"));
}

bool log_color(void)
{
	return use_color;
}

void log_set_quiet(bool q)
{
	quiet = q;
}

static void emit(FILE *f, const char *color, const char *prefix,
		 const char *fmt, va_list ap)
{
	bool c = use_color && isatty(fileno(f));

	if (c)
		fputs(color, f);
	fputs(prefix, f);
	vfprintf(f, fmt, ap);
	if (c)
		fputs("\033[0m", f);
	fputc('\n', f);
	fflush(f);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(stderr, "\033[1;31m", "vm: ", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(stderr, "\033[33m", "vm: warning: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	emit(stderr, "\033[36m", "vm: ", fmt, ap);
	va_end(ap);
}

void log_step(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	fflush(stderr);
	va_start(ap, fmt);
	emit(stdout, "\033[1;32m", "*** ", fmt, ap);
	va_end(ap);
}
