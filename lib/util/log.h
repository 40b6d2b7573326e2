/* Messages to the user: errors, warnings, step banners, with colours. */
#ifndef VM_LOG_H
#define VM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Colours are used only when stderr is a terminal, NO_COLOR is unset and
 * -n was not given; log_init decides once.
 */
void log_init(bool no_colors);

/*
 * fd is systemd's journal stream (JOURNAL_STREAM names it): then each
 * line vm writes there starts with its priority (<3> errors, <4>
 * warnings, <6> the rest), so journalctl -p warning works.
 */
bool log_fd_is_journal(int fd);
bool log_color(void);
void log_set_quiet(bool quiet);
/* Whether log_step prints its "***" banners (on stderr). */
void log_set_banners(bool on);

/* "vm: <msg>" on stderr, red on a terminal. */
__attribute__((format(printf, 1, 2))) void log_error(const char *fmt, ...);
/* The last log_error line, for --json (NULL when there was none). */
const char *log_last_error(void);
/* Forget it: a new step starts. */
void log_clear_error(void);
/* "vm: warning: <msg>" on stderr, yellow on a terminal. */
__attribute__((format(printf, 1, 2))) void log_warn(const char *fmt, ...);
/* A warning a line: text holds one or more, each ended or split by \n. */
void log_warn_lines(const char *text);
/* "vm: <msg>" on stderr unless quiet. */
__attribute__((format(printf, 1, 2))) void log_info(const char *fmt, ...);
/* A step banner on stderr: "*** <msg>", bold on a terminal. */
__attribute__((format(printf, 1, 2))) void log_step(const char *fmt, ...);

/*
 * Progress of long work (downloads, backups, restores), on stderr unless
 * quiet.  On a terminal: one line redrawn in place at most 5 times a
 * second ("label  45%  1.2 GiB / 2.6 GiB  120 MiB/s  ETA 0:12").  Off a
 * terminal, for logs: "vm: label: started (SIZE)", a line like the bar's
 * when 10 s and 10% have passed since the last (10 s without a total),
 * and at the end "vm: label: SIZE in T s (RATE/s)".  Rate and ETA count
 * only what moved in this run: the first update's done is where it began
 * (a resumed download starts at what it had).
 */
struct log_progress {
	char label[96];
	long long start_ms, last_ms, line_ms;
	uint64_t base, done, total, line_done;
	bool active, tty, seen, drawn;
};
__attribute__((format(printf, 2, 3))) void
log_progress_start(struct log_progress *p, const char *fmt, ...);
void log_progress_update(struct log_progress *p, uint64_t done,
			 uint64_t total);
/* The same, as a callback for download and snapshot progress. */
void log_progress_cb(void *data, uint64_t done, uint64_t total);
/* ok: the work finished (off a terminal, the summary line is printed). */
void log_progress_end(struct log_progress *p, bool ok);

/* bytes as people read them: "512 B", "28.6 MiB". */
void log_size(char *buf, size_t n, uint64_t bytes);

/* One progress line into buf; pure, for the tests. */
void log_progress_format(char *buf, size_t n, const char *label,
			 uint64_t done, uint64_t base, uint64_t total,
			 long long elapsed_ms, bool eta);

#endif
