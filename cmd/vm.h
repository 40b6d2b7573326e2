/* The verbs; each lives in cmd/<verb>.c. */
#ifndef VM_CMD_H
#define VM_CMD_H

#include "cli/chain.h"
#include "conf/conf.h"
#include "util/fsutil.h"
#include "util/report.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/str.h"
#include "vm/vm.h"

/*
 * One invocation of vm: the VM it works on, and the command line's own
 * state, which lib/ never sees.
 */
struct vm_ctx {
	struct vm vm;
	bool quiet;
	bool json;
	struct json_object *result; /* what this step reports under
				     * --json (see report.h), or NULL */
	bool color;
	int step, nsteps;	 /* position in the chain, for messages */
	const struct chain_step *cur; /* the step running: its options */
	struct strvec opt_words; /* the options as given, for @start */
	pid_t supervisor;	 /* the @run this vm started (@start), or 0 */
	char *made_dir;		 /* the top directory this run made for
				  * HOSTDIR (@create), removed if no VM
				  * came of it; or NULL */
};

void vm_ctx_init(struct vm_ctx *ctx);
void vm_ctx_release(struct vm_ctx *ctx);

/* The warning that n (> 0) overlays a killed live @backup left were
 * committed (cmd/vm.c). */
void say_recovered(const struct vm_ctx *ctx, int n);

/*
 * What --dry-run would do, one line: printed, or under --json added to
 * the step's "dry_run" list.
 */
__attribute__((format(printf, 2, 3))) void say_dry(struct vm_ctx *ctx,
						   const char *fmt, ...);

/*
 * The common start of @run and @job's rescue: QEMU with argv, started
 * as launch_start does (prefix, keep, *pid, *errlog), or in a dry
 * run its command said (say_dry) instead.  Returns 0 when QEMU runs, 1
 * after a dry run, or -errno after saying "cannot DOING NAME: ERR"
 * (err: launch_start's, appended to).
 */
int start_qemu(struct vm_ctx *ctx, const struct strvec *argv,
	       const char *prefix, const int keep[2], pid_t *pid, char **errlog,
	       const char *doing, struct strbuf *err);

int cmd_create(struct vm_ctx *ctx, int argc, char **argv);
/* vm images [NAME] (not a verb: no VM); JSON to json_fd when >= 0 */
int cmd_images(struct vm_ctx *ctx, int argc, char **argv, int json_fd);
int cmd_run(struct vm_ctx *ctx, int argc, char **argv);
int cmd_destroy(struct vm_ctx *ctx, int argc, char **argv);
int cmd_job(struct vm_ctx *ctx, int argc, char **argv);
int cmd_backup(struct vm_ctx *ctx, int argc, char **argv);
int cmd_restore(struct vm_ctx *ctx, int argc, char **argv);
int cmd_snapshots(struct vm_ctx *ctx, int argc, char **argv);
int cmd_forget(struct vm_ctx *ctx, int argc, char **argv);
int cmd_push(struct vm_ctx *ctx, int argc, char **argv);
int cmd_pull(struct vm_ctx *ctx, int argc, char **argv);

/*
 * Pull the image spec names into backups/ (@pull, @restore REF); with
 * restore, its newest snapshot restored too, each layer applied while
 * the next one downloads.  Returns an exit code, the error said.
 */
int pull_image(struct vm_ctx *ctx, const char *spec, bool restore);

/*
 * A restore of snapshot name done, said and reported: t0 when it began
 * (proc_now_ms), size the archives' bytes.
 */
void say_restored(struct vm_ctx *ctx, const char *name, long long t0,
		  uint64_t size);

struct oci_ref;
struct reg_opts;
/*
 * @push's and @pull's REF: parsed (a bad one said, exit code 2), *where
 * its full name for messages (caller frees), o the settings' TLS and
 * plain-HTTP choice for its registry, progress into bar.  0 or 2.
 */
int registry_ref(const struct vm_ctx *ctx, const char *spec, bool push,
		 struct oci_ref *ref, struct reg_opts *o,
		 struct log_progress *bar, char **where);
int cmd_verify(struct vm_ctx *ctx, int argc, char **argv);
/* vm serve [--listen=ADDR:PORT]... [DIR...] (not a verb: no VM, no chain) */
int cmd_serve(int argc, char **argv);
int cmd_last(struct vm_ctx *ctx, int argc, char **argv);
int cmd_inspect(struct vm_ctx *ctx, int argc, char **argv);
int cmd_inspect_worker(struct vm_ctx *ctx, int argc, char **argv);
int cmd_start(struct vm_ctx *ctx, int argc, char **argv);
int cmd_stop(struct vm_ctx *ctx, int argc, char **argv);
int cmd_kill(struct vm_ctx *ctx, int argc, char **argv);
int cmd_status(struct vm_ctx *ctx, int argc, char **argv);
int cmd_monitor(struct vm_ctx *ctx, int argc, char **argv);
int cmd_console(struct vm_ctx *ctx, int argc, char **argv);
int cmd_ssh(struct vm_ctx *ctx, int argc, char **argv);

#endif
