/* @snapshots: the snapshots in backups/, LAST marked. */
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "snapshot/backups.h"
#include "snapshot/snapshot.h"

/* The reference layout keeps TS and DESCRIPTION as files. */
static void legacy_meta(const struct backup *b, struct snap_meta *m)
{
	struct strbuf sb = STRBUF_INIT;
	char *p = xasprintf("%s/TS", b->path);
	struct stat st;

	memset(m, 0, sizeof(*m));
	if (!fs_read_file(p, 4096, &sb))
		m->ts = (time_t)strtoll(sb.buf, NULL, 10);
	if (!m->ts && stat(b->path, &st) == 0)
		m->ts = st.st_mtime;
	free(p);
	strbuf_reset(&sb);
	p = xasprintf("%s/DESCRIPTION", b->path);
	fs_read_file(p, 4096, &sb);
	strbuf_trim_trailing(&sb);
	m->description = strbuf_detach(&sb);
	free(p);
}

int cmd_snapshots(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct json_object *arr;
	struct backup *list = NULL;
	char *last;
	int n, i;

	(void)argc;
	(void)argv;
	n = backups_list(&ctx->vm, &list);
	if (n < 0) {
		log_error("cannot read %s/backups: %s", ctx->vm.hostdir,
			  strerror(-n));
		return 1;
	}
	last = backups_last(&ctx->vm);
	arr = json_object_new_array();
	if (n && !ctx->json)
		printf("%-12s %-20s %10s %-12s %11s  %-16s  %s\n", "NAME",
		       "TIME", "SIZE", "PARENT", "RESTORES", "TAKEN",
		       "DESCRIPTION");
	for (i = 0; i < n; i++) {
		struct snap_meta m;
		bool is_last = last && !strcmp(last, list[i].name);
		struct json_object *o = json_object_new_object();
		char when[32] = "?", size[32] = "-", full[32] = "-";
		struct tm tm;

		if (list[i].legacy)
			legacy_meta(&list[i], &m);
		else if (snap_read_meta(list[i].path, &m, &err))
			strbuf_reset(&err);	/* shown with what it has */
		if (list[i].legacy)
			m.size = 0;
		if (!m.taken[0])
			snprintf(m.taken, sizeof(m.taken), "offline");
		if (m.ts && localtime_r(&m.ts, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		report_set_str(o, "name", list[i].name);
		report_set_int(o, "time", (int64_t)m.ts);
		report_set_int(o, "size", (int64_t)m.size);
		report_set_bool(o, "last", is_last);
		report_set_str(o, "layout",
			       list[i].legacy ? "directory" : "tarball");
		report_set_str(o, "description",
			       m.description ? m.description : "");
		/* the parent it restores with; the files a restore writes */
		report_set_str(o, "parent", m.parent);
		if (m.chained)
			report_set_int(o, "restore_size", (int64_t)m.data);
		report_set_str(o, "taken", m.taken);
		json_object_array_add(arr, o);
		if (m.size)
			snprintf(size, sizeof(size), "%.1f MiB",
				 (double)m.size / (1 << 20));
		if (m.chained)
			snprintf(full, sizeof(full), "%.1f MiB",
				 (double)m.data / (1 << 20));
		if (!ctx->json) {
			/* a snapshot's text is someone's: not for the
			 * terminal to act on */
			char *desc = str_printable(m.description ?
						   m.description : "");
			char *parent = str_printable(m.parent ? m.parent :
						     "-");

			printf("%-12s %-20s %10s %-12s %11s  %-16s  %s%s\n",
			       list[i].name, when, size, parent, full, m.taken,
			       desc, is_last ? "  <- LAST" : "");
			free(desc);
			free(parent);
		}
		snap_meta_release(&m);
	}
	if (!n && !ctx->json)
		log_info("%s has no snapshots", ctx->vm.hostdir);
	fflush(stdout);
	report_set(ctx->result, "snapshots", arr);
	report_set_str(ctx->result, "last", last);
	backups_free(list, n);
	free(last);
	strbuf_release(&err);
	return 0;
}
