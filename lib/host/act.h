/*
 * What `vm serve` does for a client allowed to control: start, stop or
 * kill one VM, by the library code the verbs use (vm_stop, vm_kill) or,
 * for start, the verb itself (it leaves a supervisor running, a process
 * of its own as @start's is).  The answer is JSON and an HTTP status.
 */
#ifndef VM_HOST_ACT_H
#define VM_HOST_ACT_H

#include <stdbool.h>

enum act { ACT_START, ACT_STOP, ACT_KILL };

/* "start", ... <-> ACT_*; -1 for another word. */
int act_parse(const char *word);
const char *act_name(enum act a);

/*
 * Do a to the VM in dir (name: its NAME in URLs); secs: @stop's time
 * (has_secs false: its shutdown_timeout).  *body (caller frees) gets
 * the JSON answer; returns the HTTP status: 200 done, 409 busy (a
 * start of a running VM, or its lock held), 504 a stop that had to
 * force, 500 what failed.  summary (room for 128) says it in a few
 * words for the journal.
 */
unsigned act_run(enum act a, const char *name, const char *dir,
		 unsigned long long secs, bool has_secs, char **body,
		 char *summary);

#endif
