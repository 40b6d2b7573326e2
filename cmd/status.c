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

#include "host/status.h"

#define QMP_STATUS_TIMEOUT_MS 2000

static void when(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (!t || !localtime_r(&t, &tm))
		snprintf(buf, len, "?");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void print_text(struct vm_ctx *ctx, const struct vm_status *f)
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

int cmd_status(struct vm_ctx *ctx, int argc, char **argv)
{
	struct vm_status f;
	bool up;

	(void)argc;
	(void)argv;
	vm_status_read(&ctx->vm, QMP_STATUS_TIMEOUT_MS, &f);
	vm_status_json(&ctx->vm, &f, ctx->result);
	if (!ctx->json)
		print_text(ctx, &f);
	fflush(stdout);
	up = f.running;
	vm_status_release(&f);
	return up ? 0 : 3;
}
