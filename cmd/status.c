/*
 * @status: what the VM is doing, read from HOSTDIR without the lock and
 * without changing anything.  Exit 0 while it runs, 3 when it does not.
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/backups.h"
#include "qemu/qmp.h"
#include "qemu/runstate.h"
#include "snapshot/snapshot.h"

#define QMP_STATUS_TIMEOUT_MS 2000

struct facts {
	const char *state;
	struct runstate rs;
	bool running;
	char *job;		/* last job: name, status, time */
	int job_status;
	time_t job_time;
	int nsnap;
	char *last;
	char *last_desc;
	time_t last_time;
	bool saved;
};

/* paused (or anything QEMU says) when its control socket lets us ask. */
static const char *qemu_state(const struct runstate *rs)
{
	static char buf[32];
	struct strbuf err = STRBUF_INIT;
	struct json_object *ret = NULL, *v;
	const char *state = NULL;
	struct qmp q = QMP_INIT;

	if (!runstate_control(rs, &q, QMP_STATUS_TIMEOUT_MS, &err) &&
	    !qmp_execute(&q, "query-status", NULL, -1, QMP_STATUS_TIMEOUT_MS,
			 &ret, &err) &&
	    json_object_object_get_ex(ret, "status", &v)) {
		snprintf(buf, sizeof(buf), "%s", json_object_get_string(v));
		state = buf;
	}
	json_object_put(ret);
	qmp_close(&q);
	strbuf_release(&err);
	return state;
}

static void gather(struct vm_ctx *ctx, struct facts *f)
{
	struct strbuf err = STRBUF_INIT, text = STRBUF_INIT;
	struct backup *list = NULL;
	char *p;

	memset(f, 0, sizeof(f[0]));
	f->rs = (struct runstate)RUNSTATE_INIT;
	f->state = "stopped";
	if (runstate_running(ctx->vm.hostdir, &f->rs, &err) == 1) {
		const char *q = qemu_state(&f->rs);

		f->running = true;
		f->state = !strcmp(f->rs.state, "running") ? "running" :
			   !strcmp(f->rs.state, "stopping") ? "stopping" :
							      "starting";
		if (q && !strcmp(q, "paused"))
			f->state = "paused";
	} else if (runstate_stale(ctx->vm.hostdir, false) == 1) {
		/* its pids are other processes now: never signalled */
		f->state = "stale";
	} else if (ctx->vm.workdir) {
		p = vm_work_path(&ctx->vm, SAVED_STATE);
		f->saved = fs_exists(p);
		free(p);
		if (f->saved)
			f->state = "saved";
	}
	p = vm_host_path(&ctx->vm, "last-job");
	if (!fs_read_file(p, 4096, &text)) {
		char name[65];
		long long t;

		if (sscanf(text.buf, "%64s %d %lld", name, &f->job_status,
			   &t) == 3 && name_is_valid(name)) {
			f->job = xstrdup(name);
			f->job_time = (time_t)t;
		}
	}
	free(p);
	f->nsnap = backups_list(&ctx->vm, &list);
	f->last = backups_last(&ctx->vm);
	if (f->last) {
		const struct backup *b = backups_find(&ctx->vm, list, f->nsnap,
						      f->last);
		struct snap_meta m;

		if (b && !b->legacy && !snap_read_meta(b->path, &m, &err)) {
			f->last_desc = m.description;
			f->last_time = m.ts;
			m.description = NULL;
			snap_meta_release(&m);
		}
	}
	backups_free(list, f->nsnap > 0 ? f->nsnap : 0);
	if (f->nsnap < 0)
		f->nsnap = 0;
	strbuf_release(&err);
	strbuf_release(&text);
}

static void facts_release(struct facts *f)
{
	runstate_release(&f->rs);
	free(f->job);
	free(f->last);
	free(f->last_desc);
}

static void when(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (!t || !localtime_r(&t, &tm))
		snprintf(buf, len, "?");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void print_text(struct vm_ctx *ctx, const struct facts *f)
{
	const struct runstate *rs = &f->rs;
	char t[32];
	size_t i;

	printf("%s: %s\n", ctx->vm.conf.name, f->state);
	if (f->running) {
		long long up = (long long)(time(NULL) - rs->started);

		when(rs->started, t, sizeof(t));
		printf("  %-10s %ld (QEMU %ld)%s\n", "pid", (long)rs->pid,
		       (long)rs->qemu_pid,
		       rs->background ? ", in the background" : "");
		printf("  %-10s %s (up %lldh %02lldm %02llds)\n", "started", t,
		       up / 3600, up / 60 % 60, up % 60);
		printf("  %-10s %s\n", "accel", rs->accel ? rs->accel : "?");
		printf("  %-10s %u socket%s x %u core%s\n", "cpus", rs->sockets,
		       rs->sockets == 1 ? "" : "s", rs->cores,
		       rs->cores == 1 ? "" : "s");
		printf("  %-10s %llu MiB\n", "memory",
		       (unsigned long long)(rs->memory >> 20));
		for (i = 0; i < rs->forwards.nr; i++)
			printf("  %-10s %s\n", i ? "" : "forwards",
			       rs->forwards.v[i]);
		if (rs->ssh_port)
			printf("  %-10s 127.0.0.1:%u (vm @ssh)\n", "ssh",
			       rs->ssh_port);
		printf("  %-10s %s\n", "spice", rs->spice ? rs->spice : "none");
		printf("  %-10s %s\n", "console", rs->console);
		printf("  %-10s %s\n", "monitor", rs->monitor);
		if (rs->control)
			printf("  %-10s %s\n", "control", rs->control);
		printf("  %-10s %s\n", "workdir", rs->workdir);
	} else if (ctx->vm.workdir) {
		printf("  %-10s %s\n", "workdir", ctx->vm.workdir);
	}
	if (!strcmp(f->state, "stale"))
		printf("  %-10s names processes that are not this VM's running QEMU (the next vm that takes its lock removes it)\n",
		       RUNSTATE_FILE);
	if (f->job) {
		when(f->job_time, t, sizeof(t));
		printf("  %-10s %s, exit status %d, %s\n", "last job", f->job,
		       f->job_status, t);
	}
	printf("  %-10s %d", "snapshots", f->nsnap);
	if (f->last)
		printf(", LAST -> %s", f->last);
	printf("\n");
}

/* The same facts for --json; see docs/json.md for the fields. */
static void report(struct vm_ctx *ctx, const struct facts *f)
{
	const struct runstate *rs = &f->rs;
	struct json_object *o = ctx->result, *j = NULL, *l = NULL;

	report_set_str(o, "name", ctx->vm.conf.name);
	report_set_str(o, "state", f->state);
	report_set_str(o, "hostdir", ctx->vm.hostdir);
	report_set_str(o, "workdir", f->running ? rs->workdir : ctx->vm.workdir);
	if (f->running)
		runstate_report(rs, o);
	if (f->job) {
		j = json_object_new_object();
		report_set_str(j, "name", f->job);
		report_set_int(j, "status", f->job_status);
		report_set_int(j, "time", f->job_time);
	}
	report_set(o, "last_job", j);
	report_set_int(o, "snapshots", f->nsnap);
	if (f->last) {
		l = json_object_new_object();
		report_set_str(l, "name", f->last);
		report_set_str(l, "description",
			       f->last_desc ? f->last_desc : "");
		report_set_int(l, "time", f->last_time);
	}
	report_set(o, "last", l);
}

int cmd_status(struct vm_ctx *ctx, int argc, char **argv)
{
	struct facts f;
	bool up;

	(void)argc;
	(void)argv;
	gather(ctx, &f);
	report(ctx, &f);
	if (!ctx->json)
		print_text(ctx, &f);
	fflush(stdout);
	up = f.running;
	facts_release(&f);
	return up ? 0 : 3;
}
