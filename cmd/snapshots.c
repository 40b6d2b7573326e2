/* @snapshots: the snapshots in backups/, LAST marked. */
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/status.h"

static int64_t field_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) :
						       0;
}

/* One row of the table, from its JSON record. */
static void print_row(struct json_object *o)
{
	const char *desc = report_get_str(o, "description");
	const char *parent = report_get_str(o, "parent");
	char when[32] = "?", size[32] = "-", full[32] = "-";
	time_t t = (time_t)field_int(o, "time");
	struct json_object *v;
	char *d, *p;
	struct tm tm;

	if (t && localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (field_int(o, "size"))
		snprintf(size, sizeof(size), "%.1f MiB",
			 (double)field_int(o, "size") / (1 << 20));
	if (json_object_object_get_ex(o, "restore_size", &v))
		snprintf(full, sizeof(full), "%.1f MiB",
			 (double)json_object_get_int64(v) / (1 << 20));
	/* a snapshot's text is someone's: not for the terminal to act on */
	d = str_printable(desc ? desc : "");
	p = str_printable(parent ? parent : "-");
	printf("%-12s %-20s %10s %-12s %11s  %-16s  %s%s\n",
	       report_get_str(o, "name"), when, size, p, full, report_get_str(o, "taken"),
	       d, json_object_object_get_ex(o, "last", &v) &&
				  json_object_get_boolean(v) ?
			  "  <- LAST" :
			  "");
	free(d);
	free(p);
}

int cmd_snapshots(struct vm_ctx *ctx, int argc, char **argv)
{
	/* the records, also for the table (--json or not) */
	struct json_object *o = ctx->result ? ctx->result :
					      json_object_new_object();
	struct json_object *arr;
	size_t i, n;
	int r;

	(void)argc;
	(void)argv;
	r = vm_snapshots_json(&ctx->vm, o);
	if (r < 0) {
		log_error("cannot read %s/backups: %s", ctx->vm.hostdir,
			  strerror(-r));
	} else if (!ctx->json) {
		json_object_object_get_ex(o, "snapshots", &arr);
		n = json_object_array_length(arr);
		if (n)
			printf("%-12s %-20s %10s %-12s %11s  %-16s  %s\n",
			       "NAME", "TIME", "SIZE", "PARENT", "RESTORES",
			       "TAKEN", "DESCRIPTION");
		for (i = 0; i < n; i++)
			print_row(json_object_array_get_idx(arr, i));
		if (!n)
			log_info("%s has no snapshots", ctx->vm.hostdir);
		fflush(stdout);
	}
	if (o != ctx->result)
		json_object_put(o);
	return r < 0 ? 1 : 0;
}
