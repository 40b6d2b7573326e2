/*
 * What `vm serve` does for a client allowed to control: start, stop,
 * kill or back up one VM, by the library code the verbs use (vm_stop,
 * vm_kill, vm_backup_*) or, for start, the verb itself (it leaves a
 * supervisor running, a process of its own as @start's is).  The answer
 * is JSON and an HTTP status.
 */
#ifndef VM_HOST_ACT_H
#define VM_HOST_ACT_H

#include <stdbool.h>

enum act { ACT_START, ACT_STOP, ACT_KILL, ACT_BACKUP };

/* "start", ... <-> ACT_*; -1 for another word. */
int act_parse(const char *word);
const char *act_name(enum act a);

struct act_req {
	enum act act;
	const char *name;	/* the VM's NAME in URLs */
	const char *dir;	/* its directory */
	unsigned long long secs;	/* stop: its time */
	bool has_secs;		/* false: its shutdown_timeout */
	const char *snapshot;	/* backup: its name, or NULL: the next S<n> */
	const char *description;	/* backup: its description */
};

/*
 * Do what req asks.  *body (caller frees) gets the JSON answer; returns
 * the HTTP status: 200 done, 409 busy (a start of a running VM, its
 * lock held, a snapshot name taken), 504 a stop that had to force, 500
 * what failed.  summary (room for 128) says it in a few words for the
 * journal.
 */
unsigned act_run(const struct act_req *req, char **body, char *summary);

#endif
