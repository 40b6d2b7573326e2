/*
 * A host's VMs in the Prometheus text format (version 0.0.4): what `vm
 * serve` answers on /metrics.  Names and labels follow Prometheus'
 * conventions: base units (seconds, bytes), _total for counters, one
 * series per state of vm_state with the current one 1.
 */
#ifndef VM_HOST_METRICS_H
#define VM_HOST_METRICS_H

#include <stdint.h>
#include <time.h>

#include "host/status.h"
#include "util/str.h"

/* One VM's figures, taken from its status and its QEMU's /proc. */
struct vm_metrics {
	char *name;		/* the label vm= */
	const char *state;	/* a vm_status state */
	int up;
	double uptime;		/* seconds, while up */
	double cpu_seconds;	/* QEMU's user and system time */
	uint64_t rss;		/* QEMU's resident memory, bytes */
	int has_job;
	int job_status;
	time_t job_time;
	int snapshots;
	time_t last_time;	/* 0: no LAST */
	uint64_t backups_bytes;
};

/* Fill m from s (and /proc of s's QEMU); name is copied. */
void vm_metrics_from(struct vm_metrics *m, const char *name,
		     const struct vm_status *s);
void vm_metrics_release(struct vm_metrics *m);

/* The exposition of n VMs, every family once (HELP, TYPE, samples). */
void vm_metrics_text(const struct vm_metrics *v, int n, struct strbuf *out);

#endif
