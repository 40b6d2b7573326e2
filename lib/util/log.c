#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool use_color;
static bool quiet;
static bool banners = true;
static char *last_error;	/* the last log_error line, whole */
static bool journal[3];		/* fd 1, 2: systemd's journal stream */

/*
 * fd is the stream systemd connected to the journal (JOURNAL_STREAM is
 * its DEV:INO): a line there may start with its priority, <N>.
 */
bool log_fd_is_journal(int fd)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	       fstat(fd, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_init(bool no_colors)
{
	const char *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");

	use_color = !no_colors && !(nc && *nc) && isatty(STDERR_FILENO) &&
		    !(term && !*term) && !(term && !__builtin_strcmp(term, "dumb"));
	journal[1] = log_fd_is_journal(STDOUT_FILENO);
	journal[2] = log_fd_is_journal(STDERR_FILENO);
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

/* A progress line's start in the journal: info's priority. */
static const char *info_level(void)
{
	return journal[2] ? "<6>" : "";
}

/* level: the syslog priority a journal line starts with (<3> error). */
static void emit(FILE *f, int level, const char *color, const char *prefix,
		 const char *fmt, va_list ap)
{
	bool c = use_color && isatty(fileno(f));
	int fd = fileno(f);

	if (fd >= 1 && fd <= 2 && journal[fd])
		fprintf(f, "<%d>", level);
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

	free(last_error);
	va_start(ap, fmt);
	if (vasprintf(&last_error, fmt, ap) < 0)
		last_error = NULL;
	va_end(ap);
	va_start(ap, fmt);
	emit(stderr, 3, "\033[1;31m", "vm: ", fmt, ap);
	va_end(ap);
}

const char *log_last_error(void)
{
	return last_error;
}

void log_clear_error(void)
{
	free(last_error);
	last_error = NULL;
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(stderr, 4, "\033[33m", "vm: warning: ", fmt, ap);
	va_end(ap);
}

void log_warn_lines(const char *text)
{
	while (text && *text) {
		size_t n = strcspn(text, "\n");

		log_warn("%.*s", (int)n, text);
		text += n + (text[n] == '\n');
	}
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	emit(stderr, 6, "\033[36m", "vm: ", fmt, ap);
	va_end(ap);
}

void log_step(const char *fmt, ...)
{
	va_list ap;

	if (quiet || !banners)
		return;
	/* chatter, not data: on stderr, after what stdout has so far */
	fflush(stdout);
	va_start(ap, fmt);
	emit(stderr, 6, "\033[1;32m", "*** ", fmt, ap);
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

void log_size(char *buf, size_t n, uint64_t bytes)
{
	human(buf, n, (double)bytes);
}

void log_progress_format(char *buf, size_t n, const char *label,
			 uint64_t done, uint64_t base, uint64_t total,
			 long long elapsed_ms, bool eta)
{
	char d[32], tot[32], rate[32], left[32] = "", pct[8] = "";
	double bps = 0;

	/* what was there before this run (a resumed download) is no speed */
	if (elapsed_ms > 0 && done > base)
		bps = (double)(done - base) * 1000.0 / (double)elapsed_ms;
	human(d, sizeof(d), (double)done);
	human(rate, sizeof(rate), bps);
	if (total) {
		human(tot, sizeof(tot), (double)total);
		snprintf(pct, sizeof(pct), "%3d%%  ",
			 done >= total ? 100 : (int)(done * 100 / total));
	}
	if (eta && bps > 0 && total > done) {
		long long s = (long long)((double)(total - done) / bps);

		snprintf(left, sizeof(left), "  ETA %lld:%02lld", s / 60, s % 60);
	}
	snprintf(buf, n, "%s %s%s%s%s  %s/s%s", label, pct, d, total ? " / " : "",
		 total ? tot : "", rate, left);
}

/* Off a terminal a line is due after 10 s and 10% (or 10 s, no total). */
#define LOG_LINE_MS 10000

void log_progress_start(struct log_progress *p, const char *fmt, ...)
{
	va_list ap;

	memset(p, 0, sizeof(*p));
	va_start(ap, fmt);
	vsnprintf(p->label, sizeof(p->label), fmt, ap);
	va_end(ap);
	p->start_ms = now_ms();
	p->tty = isatty(STDERR_FILENO);
	p->active = !quiet;
}

void log_progress_update(struct log_progress *p, uint64_t done,
			 uint64_t total)
{
	long long t = now_ms();
	char line[160];

	if (!p->active)
		return;
	if (!p->seen) {
		p->seen = true;
		p->base = done;
		p->line_ms = t;
		p->line_done = done;
		if (!p->tty) {
			char tot[32] = "";

			if (total)
				human(tot, sizeof(tot), (double)total);
			fprintf(stderr, "%svm: %s: started%s%s%s\n", info_level(),
				p->label,
				total ? " (" : "", tot, total ? ")" : "");
			fflush(stderr);
		}
	}
	p->done = done;
	p->total = total;
	if (p->tty) {
		if (t - p->last_ms < 200 && (!total || done < total))
			return;
		p->last_ms = t;
		log_progress_format(line, sizeof(line), p->label, done, p->base,
				    total, t - p->start_ms, true);
		fprintf(stderr, "\r\033[K%s", line);
		fflush(stderr);
		p->drawn = true;
		return;
	}
	if (t - p->line_ms < LOG_LINE_MS ||
	    (total && (done - p->line_done) * 10 < total) ||
	    (total && done >= total))
		return;
	p->line_ms = t;
	p->line_done = done;
	log_progress_format(line, sizeof(line), p->label, done, p->base, total,
			    t - p->start_ms, true);
	fprintf(stderr, "%svm: %s\n", info_level(), line);
	fflush(stderr);
}

void log_progress_cb(void *data, uint64_t done, uint64_t total)
{
	log_progress_update(data, done, total);
}

void log_progress_end(struct log_progress *p, bool ok)
{
	long long el = now_ms() - p->start_ms;
	char d[32], rate[32];

	if (ok && p->total > p->done)
		p->done = p->total;	/* all of it, whatever was last drawn */
	if (p->active && p->drawn) {
		char line[160];

		/* the bar's last state: 100% (what came after the last
		 * update, a gzip trailer say, drew nothing) */
		if (ok) {
			log_progress_format(line, sizeof(line), p->label,
					    p->done, p->base, p->total, el,
					    false);
			fprintf(stderr, "\r\033[K%s", line);
		}
		fputc('\n', stderr);
		fflush(stderr);
	}
	if (p->active && p->seen && ok) {
		double bps = el > 0 && p->done > p->base ?
			(double)(p->done - p->base) * 1000.0 / (double)el : 0;

		human(d, sizeof(d), (double)p->done);
		human(rate, sizeof(rate), bps);
		if (!p->tty) {
			fprintf(stderr, "%svm: %s: %s in %lld.%01lld s (%s/s)\n",
				info_level(), p->label, d, el / 1000,
				(el % 1000) / 100, rate);
			fflush(stderr);
		}
	}
	p->active = false;
}
