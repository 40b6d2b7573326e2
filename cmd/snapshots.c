/* @snapshots: the snapshots in backups/, LAST marked; --json for scripts. */
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../lib/backups.h"
#include "../lib/snapshot.h"

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
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
	struct backup *list = NULL;
	char *last;
	int n, i;

	(void)argc;
	(void)argv;
	n = backups_list(ctx, &list);
	if (n < 0) {
		log_error("cannot read %s/backups: %s", ctx->hostdir,
			  strerror(-n));
		return 1;
	}
	last = backups_last(ctx);
	if (ctx->json)
		strbuf_addstr(&out, "[");
	else if (n)
		strbuf_addf(&out, "%-12s %-20s %10s  %s\n", "NAME", "TIME",
			    "SIZE", "DESCRIPTION");
	for (i = 0; i < n; i++) {
		struct snap_meta m;
		bool is_last = last && !strcmp(last, list[i].name);
		char when[32] = "?";
		struct tm tm;

		if (list[i].legacy)
			legacy_meta(&list[i], &m);
		else if (snap_read_meta(list[i].path, &m, &err))
			strbuf_reset(&err);	/* shown with what it has */
		if (list[i].legacy) {
			m.size = 0;
		}
		if (m.ts && localtime_r(&m.ts, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		if (ctx->json) {
			strbuf_addstr(&out, i ? ",\n {" : "\n {");
			strbuf_addstr(&out, "\"name\": ");
			strbuf_add_json(&out, list[i].name);
			strbuf_addf(&out, ", \"time\": %lld, \"size\": %llu, \"last\": %s, \"layout\": \"%s\", \"description\": ",
				    (long long)m.ts, (unsigned long long)m.size,
				    is_last ? "true" : "false",
				    list[i].legacy ? "directory" : "tarball");
			strbuf_add_json(&out, m.description ? m.description :
							      "");
			strbuf_addstr(&out, "}");
		} else {
			char size[32] = "-";

			if (m.size)
				snprintf(size, sizeof(size), "%.1f MiB",
					 (double)m.size / (1 << 20));
			strbuf_addf(&out, "%-12s %-20s %10s  %s%s\n",
				    list[i].name, when, size,
				    m.description ? m.description : "",
				    is_last ? "  <- LAST" : "");
		}
		free(m.description);
	}
	if (ctx->json)
		strbuf_addstr(&out, n ? "\n]\n" : "]\n");
	else if (!n)
		log_info("%s has no snapshots", ctx->hostdir);
	fputs(out.buf, stdout);
	fflush(stdout);
	backups_free(list, n);
	free(last);
	strbuf_release(&out);
	strbuf_release(&err);
	return 0;
}
