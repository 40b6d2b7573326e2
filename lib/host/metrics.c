#include "host/metrics.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fsutil.h"

static const char *const states[] = {
	"running", "paused", "starting", "stopping", "stopped", "saved", "stale",
};

/* utime + stime of /proc/PID/stat, and RSS of /proc/PID/statm. */
static void qemu_usage(pid_t pid, double *cpu, uint64_t *rss)
{
	struct strbuf sb = STRBUF_INIT;
	char path[64];
	unsigned long long ut, st, pages;
	const char *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	/* the command name may hold spaces and ')': fields after the last */
	if (!fs_read_file(path, 4096, &sb) && (p = strrchr(sb.buf, ')')) &&
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) == 2)
		*cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	strbuf_reset(&sb);
	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	if (!fs_read_file(path, 4096, &sb) &&
	    sscanf(sb.buf, "%*u %llu", &pages) == 1)
		*rss = pages * (uint64_t)sysconf(_SC_PAGESIZE);
	strbuf_release(&sb);
}

void vm_metrics_from(struct vm_metrics *m, const char *name,
		     const struct vm_status *s)
{
	memset(m, 0, sizeof(*m));
	m->name = xstrdup(name);
	m->state = s->state;
	m->up = s->running;
	if (s->running) {
		m->uptime = (double)(time(NULL) - s->rs.started);
		qemu_usage(s->rs.qemu_pid, &m->cpu_seconds, &m->rss);
	}
	m->has_job = s->job != NULL;
	m->job_status = s->job_status;
	m->job_time = s->job_time;
	m->snapshots = s->nsnap;
	m->last_time = s->last ? s->last_time : 0;
	m->backups_bytes = s->backups_bytes;
}

void vm_metrics_release(struct vm_metrics *m)
{
	free(m->name);
	m->name = NULL;
}

/* A label value as the format wants it: \\, \" and \n escaped. */
static void label(struct strbuf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			strbuf_addf(out, "\\%c", *v);
		else if (*v == '\n')
			strbuf_addstr(out, "\\n");
		else
			strbuf_addch(out, *v);
	}
}

/* The families, in the order they are written. */
enum which {
	W_UP, W_STATE, W_UPTIME, W_CPU, W_RSS, W_JOB_STATUS, W_JOB_TIME,
	W_SNAPSHOTS, W_LAST_TIME, W_BACKUPS,
};

static const struct family {
	const char *name, *type, *help;
	enum which w;
} families[] = {
	{ "vm_up", "gauge", "1 while the VM's QEMU runs.", W_UP },
	{ "vm_state", "gauge", "The VM's state: 1 for the one it is in.",
	  W_STATE },
	{ "vm_uptime_seconds", "gauge", "Seconds since the running VM started.",
	  W_UPTIME },
	{ "vm_cpu_seconds_total", "counter",
	  "CPU time of the running VM's QEMU, user and system.", W_CPU },
	{ "vm_memory_rss_bytes", "gauge",
	  "Resident memory of the running VM's QEMU.", W_RSS },
	{ "vm_last_job_exit_status", "gauge",
	  "Exit status of the VM's last @job.", W_JOB_STATUS },
	{ "vm_last_job_timestamp_seconds", "gauge",
	  "When the VM's last @job ended, in Unix time.", W_JOB_TIME },
	{ "vm_snapshots", "gauge", "Snapshots in the VM's backups/.",
	  W_SNAPSHOTS },
	{ "vm_last_snapshot_timestamp_seconds", "gauge",
	  "When the snapshot LAST names was made, in Unix time.", W_LAST_TIME },
	{ "vm_backups_bytes", "gauge",
	  "Bytes of the snapshot archives in the VM's backups/.", W_BACKUPS },
};

/* m's value of family w, or false when it has none (not running, ...). */
static bool value(const struct vm_metrics *m, enum which w, double *v)
{
	switch (w) {
	case W_UP:
		*v = m->up;
		return true;
	case W_UPTIME:
		*v = m->uptime;
		return m->up;
	case W_CPU:
		*v = m->cpu_seconds;
		return m->up;
	case W_RSS:
		*v = (double)m->rss;
		return m->up;
	case W_JOB_STATUS:
		*v = m->job_status;
		return m->has_job;
	case W_JOB_TIME:
		*v = (double)m->job_time;
		return m->has_job;
	case W_SNAPSHOTS:
		*v = m->snapshots;
		return true;
	case W_LAST_TIME:
		*v = (double)m->last_time;
		return m->last_time != 0;
	case W_BACKUPS:
		*v = (double)m->backups_bytes;
		return true;
	case W_STATE:
		break;
	}
	return false;
}

void vm_metrics_text(const struct vm_metrics *v, int n, struct strbuf *out)
{
	size_t f, k;
	double x;
	int i;

	for (f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		const struct family *fa = &families[f];

		strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", fa->name,
			    fa->help, fa->name, fa->type);
		for (i = 0; i < n; i++) {
			for (k = 0; fa->w == W_STATE &&
				    k < sizeof(states) / sizeof(states[0]); k++) {
				strbuf_addf(out, "%s{vm=\"", fa->name);
				label(out, v[i].name);
				strbuf_addf(out, "\",state=\"%s\"} %d\n",
					    states[k],
					    !strcmp(states[k], v[i].state));
			}
			if (!value(&v[i], fa->w, &x))
				continue;
			strbuf_addf(out, "%s{vm=\"", fa->name);
			label(out, v[i].name);
			strbuf_addf(out, "\"} %.17g\n", x);
		}
	}
}
