#include "host/backup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu/runstate.h"
#include "util/proc.h"

void vm_backup_init(struct vm_backup *vb)
{
	memset(vb, 0, sizeof(*vb));
	vb->q = (struct qmp)QMP_INIT;
}

/* Hold a running VM's disks through its vm: 0, or -errno with err. */
static int hold_live(struct vm *vm, struct vm_backup *vb,
		     struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	char *since;
	int i, r;

	if (!vb->control) {
		strbuf_addf(err, "cannot back up %s while it runs: its vm serves no control socket",
			    vm->conf.name);
		return -ENOENT;
	}
	since = backup_since(&vb->job);
	r = live_remote_begin(&vb->q, vb->control,
			      vm->conf.guest_agent == AGENT_YES, since, &vb->b,
			      &e);
	free(since);
	if (!r && vb->b.efivars)
		r = backup_job_use(&vb->job, "efivars.bin", vb->b.efivars);
	for (i = 0; !r && i < vb->b.nbm; i++)
		backup_job_bitmap(&vb->job, vb->b.bm[i].file, vb->b.nbd,
				  vb->b.bm[i].export, vb->b.bm[i].why);
	if (r) {
		strbuf_addf(err, "cannot back up %s while it runs: %s",
			    vm->conf.name, e.len ? e.buf : strerror(-r));
		qmp_close(&vb->q);
	} else {
		vb->live = true;
		vb->job.taken = vb->b.taken;
	}
	strbuf_release(&e);
	return r;
}

int vm_backup_recover(struct vm *vm, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	int n = live_recover(vm->workdir, &e);

	if (n < 0)
		strbuf_addf(err, "%s: the overlays an interrupted live backup left in %s cannot be committed into its disks: %s",
			    vm->conf.name, vm->workdir, e.buf);
	strbuf_release(&e);
	return n;
}

/* A stopped VM: its lock (unless held), WORKDIR, an earlier live
 * backup's overlays committed. */
static int hold_stopped(struct vm *vm, struct vm_backup *vb,
			struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	int r = 0;

	if (vm->lock_fd < 0 && !vm->dry_run) {
		r = vm_lock(vm);
		if (r) {
			strbuf_addf(err, "cannot back up %s: %s", vm->conf.name,
				    r == -EBUSY ? "another vm is using it" :
						  strerror(-r));
			return r;
		}
	}
	if (!vm->workdir && vm_find_workdir(vm, &e)) {
		strbuf_addstr(err, e.buf);
		r = -EXDEV;
	}
	if (!r && vm->workdir && vm->lock_fd >= 0) {
		r = vm_backup_recover(vm, err);
		vb->recovered = r > 0 ? r : 0;
		r = r > 0 ? 0 : r;
	}
	strbuf_release(&e);
	return r;
}

int vm_backup_begin(struct vm *vm, const char *name, struct vm_backup *vb,
		    struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	struct runstate rs = RUNSTATE_INIT;
	int r;

	vb->running = runstate_running(vm->hostdir, &rs, &e) == 1;
	if (vb->running && rs.control)
		vb->control = strdup(rs.control);
	runstate_release(&rs);
	strbuf_reset(&e);
	if (!vb->running) {
		/* its lock first: nothing changes the VM while it is decided */
		r = hold_stopped(vm, vb, err);
		if (!r)
			r = backup_prepare(vm, name, &vb->job, err);
	} else if (!vm->workdir && (r = vm_find_workdir(vm, &e))) {
		strbuf_addstr(err, e.buf);
	} else {
		r = backup_prepare(vm, name, &vb->job, err);
		if (!r && !vm->dry_run)
			r = hold_live(vm, vb, err);
	}
	strbuf_release(&e);
	return r;
}

/* The disks go on from where the guest is now (keep: the bitmap they
 * keep, or NULL when no snapshot was stored). */
static void give_back(struct vm_backup *vb, const char *keep)
{
	struct strbuf e = STRBUF_INIT;

	if (!vb->live)
		return;
	if (live_remote_end(&vb->q, keep, &e) && !vb->end_error)
		vb->end_error = strbuf_detach(&e);
	qmp_close(&vb->q);
	vb->live = false;
	strbuf_release(&e);
}

int vm_backup_store(struct vm *vm, struct vm_backup *vb,
		    const char *description, const char *compressor,
		    const struct snap_progress *progress, struct strbuf *err)
{
	char *keep;
	int r;

	r = backup_store(vm, &vb->job, description, compressor, progress, err);
	/* the snapshot is LAST: the disks' bitmaps count from it */
	keep = r ? NULL : backup_keep(&vb->job);
	give_back(vb, keep);
	free(keep);
	return r;
}

void vm_backup_release(struct vm_backup *vb)
{
	give_back(vb, NULL);
	backup_job_release(&vb->job);
	live_begun_release(&vb->b);
	free(vb->control);
	free(vb->end_error);
	vm_backup_init(vb);
}
