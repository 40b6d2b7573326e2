#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static bool use_color;
static bool quiet;
static bool banners = true;

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

void log_set_banners(bool on)
{
	banners = on;
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

	if (quiet || !banners)
		return;
	fflush(stderr);
	va_start(ap, fmt);
	emit(stdout, "\033[1;32m", "*** ", fmt, ap);
	va_end(ap);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void human(char *buf, size_t n, double v)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void log_progress_start(struct log_progress *p, const char *label)
{
	p->label = label;
	p->start_ms = now_ms();
	p->last_ms = 0;
	p->active = !quiet && isatty(STDERR_FILENO);
}

void log_progress_update(struct log_progress *p, uint64_t done,
			 uint64_t total)
{
	long long t = now_ms(), el = t - p->start_ms;
	char d[32], tot[32], rate[32], eta[32] = "";
	double bps;

	if (!p->active || (t - p->last_ms < 200 && done < total))
		return;
	p->last_ms = t;
	bps = el > 0 ? (double)done * 1000.0 / (double)el : 0;
	human(d, sizeof(d), (double)done);
	human(tot, sizeof(tot), (double)total);
	human(rate, sizeof(rate), bps);
	if (bps > 0 && total > done) {
		long long s = (long long)((double)(total - done) / bps);

		snprintf(eta, sizeof(eta), "  ETA %lld:%02lld", s / 60, s % 60);
	}
	fprintf(stderr, "\r\033[K%s %3d%%  %s / %s  %s/s%s", p->label,
		total ? (int)(done * 100 / total) : 100, d, tot, rate, eta);
	fflush(stderr);
}

void log_progress_end(struct log_progress *p)
{
	if (p->active && p->last_ms) {
		fputc('\n', stderr);
		fflush(stderr);
	}
	p->active = false;
}
