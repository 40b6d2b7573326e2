/*
 * What a verb reports under --json: json-c objects, built with strings
 * that are always valid UTF-8 (a byte that is not becomes U+FFFD).
 * Every setter takes a NULL object and does nothing, so a verb reports
 * unconditionally and only --json pays for it.
 */
#ifndef VM_REPORT_H
#define VM_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util/str.h"

/* A JSON string of s made valid UTF-8; NULL gives JSON null. */
struct json_object *report_str(const char *s);
/* A JSON array of strings. */
struct json_object *report_strv(const char *const *v, size_t n);

/* o[key] = v; v is owned by o afterwards (freed when o is NULL). */
void report_set(struct json_object *o, const char *key, struct json_object *v);
void report_set_str(struct json_object *o, const char *key, const char *v);
void report_set_int(struct json_object *o, const char *key, int64_t v);
void report_set_bool(struct json_object *o, const char *key, bool v);
/* Append string s to the array o[key], making the array if needed. */
void report_push_str(struct json_object *o, const char *key, const char *s);
/* o's string member key, or NULL (none, or not a string). */
const char *report_get_str(struct json_object *o, const char *key);

/* o as one line of JSON ('/' not escaped); valid while o lives. */
const char *report_line(struct json_object *o);

/*
 * A step's line under --json, to fd: {"verb", "args", "status",
 * "result"[, "error"]}, the error the last one logged (or the signal
 * that interrupted vm) when status is a failure (3 is an answer where
 * answer).  result may be NULL ({}); it is not taken.  0 or -errno.
 */
int report_write_step(int fd, const char *verb, char *const *args,
		      int nargs, int status, bool answer,
		      struct json_object *result);

#endif
