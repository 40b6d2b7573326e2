/* Messages to the user: errors, warnings, step banners, with colours. */
#ifndef VM_LOG_H
#define VM_LOG_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Colours are used only when stderr is a terminal, NO_COLOR is unset and
 * -n was not given; log_init decides once.
 */
void log_init(bool no_colors);
bool log_color(void);
void log_set_quiet(bool quiet);
/* Whether log_step prints its "***" banners (on stdout). */
void log_set_banners(bool on);

/* "vm: <msg>" on stderr, red on a terminal. */
__attribute__((format(printf, 1, 2))) void log_error(const char *fmt, ...);
/* "vm: warning: <msg>" on stderr, yellow on a terminal. */
__attribute__((format(printf, 1, 2))) void log_warn(const char *fmt, ...);
/* "vm: <msg>" on stderr unless quiet. */
__attribute__((format(printf, 1, 2))) void log_info(const char *fmt, ...);
/* A step banner on stdout: "*** <msg>", bold on a terminal. */
__attribute__((format(printf, 1, 2))) void log_step(const char *fmt, ...);

/*
 * A one-line progress bar on stderr ("label  45%  1.2 GiB / 2.6 GiB
 * 120 MiB/s  ETA 0:12"), redrawn in place at most 5 times a second, only
 * on a terminal and unless quiet.  done == total ends the line.
 */
struct log_progress {
	const char *label;
	long long start_ms, last_ms;
	bool active;
};
void log_progress_start(struct log_progress *p, const char *label);
void log_progress_update(struct log_progress *p, uint64_t done,
			 uint64_t total);
void log_progress_end(struct log_progress *p);

#endif
