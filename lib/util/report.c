/* Results for --json, built with json-c; see report.h. */
#include "util/report.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/proc.h"

#include <stdlib.h>

struct json_object *report_str(const char *s)
{
	struct json_object *o;
	char *u;

	if (!s)
		return NULL;
	u = str_utf8_valid(s);
	o = json_object_new_string(u);
	free(u);
	return o;
}

struct json_object *report_strv(const char *const *v, size_t n)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, report_str(v[i]));
	return a;
}

void report_set(struct json_object *o, const char *key, struct json_object *v)
{
	if (!o) {
		json_object_put(v);
		return;
	}
	json_object_object_add(o, key, v);
}

void report_set_str(struct json_object *o, const char *key, const char *v)
{
	if (o)
		report_set(o, key, report_str(v));
}

void report_set_int(struct json_object *o, const char *key, int64_t v)
{
	if (o)
		report_set(o, key, json_object_new_int64(v));
}

void report_set_bool(struct json_object *o, const char *key, bool v)
{
	if (o)
		report_set(o, key, json_object_new_boolean(v));
}

void report_push_str(struct json_object *o, const char *key, const char *s)
{
	struct json_object *a;

	if (!o)
		return;
	if (!json_object_object_get_ex(o, key, &a) ||
	    !json_object_is_type(a, json_type_array)) {
		a = json_object_new_array();
		json_object_object_add(o, key, a);
	}
	json_object_array_add(a, report_str(s));
}

const char *report_line(struct json_object *o)
{
	return json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

int report_write_step(int fd, const char *verb, char *const *args,
		      int nargs, int status, bool answer,
		      struct json_object *result)
{
	struct json_object *o = json_object_new_object();
	const char *e = log_last_error();
	struct strbuf line = STRBUF_INIT, why = STRBUF_INIT;
	int r;

	report_set_str(o, "verb", verb);
	report_set(o, "args",
		   report_strv((const char *const *)args, (size_t)nargs));
	report_set_int(o, "status", status);
	report_set(o, "result",
		   result ? json_object_get(result) : json_object_new_object());
	if (!e && proc_interrupted())
		strbuf_addf(&why, "interrupted by signal %d",
			    proc_interrupted());
	if (status && (status != 3 || !answer))
		report_set_str(o, "error", e ? e : why.len ? why.buf : "failed");
	strbuf_addstr(&line, report_line(o));
	strbuf_addch(&line, '\n');
	r = fs_write_all(fd, line.buf, line.len);
	strbuf_release(&line);
	strbuf_release(&why);
	json_object_put(o);
	return r;
}

const char *report_get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) &&
	       json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) : NULL;
}
