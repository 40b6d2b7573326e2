/* Messages to the user: errors, warnings, step banners, with colours. */
#ifndef VM_LOG_H
#define VM_LOG_H

#include <stdbool.h>

/*
 * Colours are used only when stderr is a terminal, NO_COLOR is unset and
 * -n was not given; log_init decides once.
 */
void log_init(bool no_colors);
bool log_color(void);
void log_set_quiet(bool quiet);

/* "vm: <msg>" on stderr, red on a terminal. */
__attribute__((format(printf, 1, 2))) void log_error(const char *fmt, ...);
/* "vm: warning: <msg>" on stderr, yellow on a terminal. */
__attribute__((format(printf, 1, 2))) void log_warn(const char *fmt, ...);
/* "vm: <msg>" on stderr unless quiet. */
__attribute__((format(printf, 1, 2))) void log_info(const char *fmt, ...);
/* A step banner on stdout: "*** <msg>", bold on a terminal. */
__attribute__((format(printf, 1, 2))) void log_step(const char *fmt, ...);

#endif
