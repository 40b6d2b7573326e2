/*
 * What a VM is doing, read from HOSTDIR without its lock and without
 * changing anything: what @status prints and `vm serve` publishes.
 */
#ifndef VM_HOST_STATUS_H
#define VM_HOST_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "qemu/runstate.h"
#include "vm/vm.h"

struct vm_status {
	const char *state;	/* running, paused, starting, stopping,
				 * stopped, saved or stale */
	struct runstate rs;	/* its record, while it runs */
	bool running;
	char qstate[32];	/* what QEMU said, or "" */
	char *job;		/* the last job's name, or NULL */
	int job_status;
	time_t job_time;
	int nsnap;		/* snapshots in backups/ */
	uint64_t backups_bytes;	/* their archives' bytes */
	char *last;		/* the one LAST names, or NULL */
	char *last_desc;
	time_t last_time;
	bool saved;		/* its RAM and devices are kept */
};

/*
 * Read vm's state; QEMU is asked (paused or not) through its control
 * socket within qmp_timeout_ms.  Release with vm_status_release.
 */
void vm_status_read(const struct vm *vm, int qmp_timeout_ms,
		    struct vm_status *s);
void vm_status_release(struct vm_status *s);

/* The same as @status --json's fields, into o (docs/json.md). */
void vm_status_json(const struct vm *vm, const struct vm_status *s,
		    struct json_object *o);

/*
 * Each snapshot in vm's backups/ as @snapshots --json gives it: o gets
 * "snapshots" (an array in name order) and "last".  Returns how many,
 * or -errno when backups/ cannot be read.
 */
int vm_snapshots_json(const struct vm *vm, struct json_object *o);

#endif
