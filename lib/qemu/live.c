#include "qemu/live.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qemu/bitmap.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/proc.h"

/* one QMP command of a freeze or a thaw */
#define LIVE_QMP_MS 10000
/* qemu-img commit of an overlay left behind */
#define LIVE_RECOVER_MS (600 * 1000)

void live_add_disk(struct live *l, const char *id, const char *path)
{
	l->d = xrealloc(l->d, (size_t)(l->n + 1) * sizeof(*l->d));
	memset(&l->d[l->n], 0, sizeof(l->d[0]));
	l->d[l->n].id = xstrdup(id);
	l->d[l->n].path = xstrdup(path);
	l->n++;
}

void live_release(struct live *l)
{
	int i;

	for (i = 0; i < l->n; i++) {
		free(l->d[i].id);
		free(l->d[i].path);
		free(l->d[i].node);
		free(l->d[i].format);
		free(l->d[i].overlay);
		free(l->d[i].export);
		free(l->d[i].bm_why);
	}
	free(l->d);
	free(l->since);
	free(l->keep);
	free(l->workdir);
	free(l->vars);
	free(l->agent);
	strbuf_release(&l->why);
	*l = (struct live)LIVE_INIT;
}

/*
 * What disk d's bitmaps allow (its query-block dirty-bitmaps): on a
 * qcow2 node, BITMAP_NEXT, and BITMAP_FROZEN when l->since can serve;
 * what an earlier live backup left goes first.
 */
static int plan_bitmaps(struct live *l, struct live_disk *d, struct qmp *q,
			struct json_object *bitmaps, struct strbuf *err)
{
	const char *why = NULL;

	d->tracked = d->copied = false;
	free(d->bm_why);
	d->bm_why = NULL;
	if (strcmp(d->format, "qcow2")) {
		d->bm_why = xstrdup("a raw disk keeps no bitmap");
		return 0;
	}
	if (bitmap_qmp_sweep(q, d->node, bitmaps, err))
		return -EIO;
	d->tracked = true;
	if (l->since)
		why = bitmap_qmp_unusable(bitmaps, l->since);
	d->copied = l->since && !why;
	if (why)
		d->bm_why = xstrdup(why);
	return 0;
}

/* Each disk's node (the format layer QEMU writes), from query-block. */
static int find_nodes(struct live *l, struct qmp *q, struct strbuf *err)
{
	struct json_object *ret = NULL, *dev, *v, *ins, *img;
	int i, r;

	r = qmp_execute(q, "query-block", NULL, -1, LIVE_QMP_MS, &ret, err);
	if (r)
		return r;
	for (i = 0; i < l->n; i++) {
		free(l->d[i].node);
		free(l->d[i].format);
		l->d[i].node = l->d[i].format = NULL;
		dev = json_member_of(ret, "device", l->d[i].id);
		if (dev && json_object_object_get_ex(dev, "inserted", &ins)) {
			l->d[i].node = json_str_dup(ins, "node-name");
			if (json_object_object_get_ex(ins, "image", &img)) {
				l->d[i].format = json_str_dup(img, "format");
				if (json_object_object_get_ex(img, "virtual-size",
							      &v))
					l->d[i].size = (unsigned long long)
						json_object_get_int64(v);
			}
		}
		if (!l->d[i].node || !l->d[i].format || !l->d[i].size) {
			strbuf_addf(err, "QEMU has no disk %s", l->d[i].id);
			r = -ENOENT;
			break;
		}
		if (!json_object_object_get_ex(ins, "dirty-bitmaps", &v))
			v = NULL;
		r = plan_bitmaps(l, &l->d[i], q, v, err);
		if (r)
			break;
	}
	json_object_put(ret);
	return r;
}

/*
 * Disk d's overlay, made by us before the pause: private (0600, as the
 * disks; WORKDIR may be its control_group's to enter), its header naming
 * the disk as its backing file, for a commit by qemu-img if need be.
 * -u: QEMU holds the disk, which is not opened.
 */
static int make_overlay(struct live_disk *d, const char *workdir,
			struct strbuf *err)
{
	struct proc_opts o = PROC_OPTS_INIT;
	struct strvec av = STRVEC_INIT;
	int r;

	char *path = xasprintf("%s/%s%s.qcow2", workdir, LIVE_PREFIX, d->id);

	/* one left behind holds the guest's writes: never replaced */
	if (fs_exists(path) || fs_is_symlink(path)) {
		strbuf_addf(err, "%s is still there from an earlier live backup (stop the VM: the next vm commits it)",
			    path);
		free(path);
		return -EEXIST;
	}
	free(d->overlay);
	d->overlay = path;
	strvec_pushl(&av, "qemu-img", "create", "-q", "-f", "qcow2", "-u",
		     "-F", d->format, "-b", d->path, d->overlay, NULL);
	strvec_pushf(&av, "%llu", d->size);
	o.stdin_fd = -1;
	o.stdout_fd = -1;
	o.umask = 077;
	r = proc_run(av.v, &o, LIVE_QMP_MS);
	strvec_clear(&av);
	if (r) {
		strbuf_addf(err, "qemu-img create %s failed (%s)", d->overlay,
			    r < 0 ? strerror(-r) : "see above");
		unlink(d->overlay);
		free(d->overlay);
		d->overlay = NULL;
		return r < 0 ? r : -EIO;
	}
	return 0;
}

/* The overlays made, unused, removed. */
static void drop_overlays(struct live *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (l->d[i].overlay) {
			unlink(l->d[i].overlay);
			free(l->d[i].overlay);
			l->d[i].overlay = NULL;
		}
}

/* The overlays made, each on its disk; 0 or -errno (none is left). */
static int make_overlays(struct live *l, struct strbuf *err)
{
	int i, r = 0;

	for (i = 0; i < l->n && !r; i++)
		r = make_overlay(&l->d[i], l->workdir, err);
	if (r)
		drop_overlays(l);
	return r;
}

/* The transaction: every disk on its overlay at once. */
static int snapshot_all(struct live *l, struct qmp *q, struct strbuf *err)
{
	struct json_object *args = json_object_new_object();
	struct json_object *acts = json_object_new_array();
	int i, r;

	for (i = 0; i < l->n; i++) {
		struct json_object *a = json_object_new_object();
		struct json_object *d = json_object_new_object();

		/* the bitmaps turn at the very instant the overlay begins */
		if (l->d[i].tracked)
			bitmap_qmp_freeze(acts, l->d[i].node,
					  l->d[i].copied ? l->since : NULL);
		json_object_object_add(d, "device",
				       json_object_new_string(l->d[i].id));
		json_object_object_add(d, "snapshot-file",
				       json_object_new_string(l->d[i].overlay));
		json_object_object_add(d, "format",
				       json_object_new_string("qcow2"));
		json_object_object_add(d, "mode",
				       json_object_new_string("existing"));
		json_object_object_add(a, "type",
				       json_object_new_string("blockdev-snapshot-sync"));
		json_object_object_add(a, "data", d);
		json_object_array_add(acts, a);
	}
	json_object_object_add(args, "actions", acts);
	r = qmp_execute(q, "transaction", args, -1, LIVE_QMP_MS, NULL, err);
	json_object_put(args);
	/* only QEMU's refusal says it rolled back; otherwise it may have
	 * switched: the overlays stay, frozen, to be committed */
	if (r == -EREMOTEIO)
		drop_overlays(l);
	return r;
}

/* Whether the guest runs (query-status), as opposed to paused. */
static bool guest_runs(struct qmp *q)
{
	struct strbuf e = STRBUF_INIT;
	struct json_object *ret = NULL, *v;
	bool running = true;

	if (!qmp_execute(q, "query-status", NULL, -1, LIVE_QMP_MS, &ret, &e) &&
	    json_object_object_get_ex(ret, "running", &v))
		running = json_object_get_boolean(v);
	json_object_put(ret);
	strbuf_release(&e);
	return running;
}

/*
 * The guest's file systems frozen by its agent (ga connected): 0, or
 * -errno with l->why saying why not (then nothing is frozen).
 */
static int fs_freeze(struct live *l, struct qmp *q, struct qmp *ga)
{
	struct strbuf e = STRBUF_INIT;
	int r;

	if (!qmp_agent_open(q, LIVE_QMP_MS)) {
		strbuf_addstr(&l->why, "no guest agent runs in it");
		return -ENOENT;
	}
	r = qmp_agent_connect(ga, l->agent, LIVE_AGENT_MS, &e);
	if (!r)
		r = qmp_execute(ga, "guest-fsfreeze-freeze", NULL, -1,
				LIVE_AGENT_MS, NULL, &e);
	if (r) {
		struct strbuf t = STRBUF_INIT;

		char *said = str_printable(e.buf ? e.buf : "");

		/* the agent's words are the guest's: escaped */
		strbuf_addf(&l->why, "its agent did not freeze it: %s", said);
		free(said);
		/* what it froze before it failed is thawed */
		if (ga->fd >= 0)
			qmp_execute(ga, "guest-fsfreeze-thaw", NULL, -1,
				    LIVE_AGENT_MS, NULL, &t);
		strbuf_release(&t);
	}
	strbuf_release(&e);
	return r;
}

/* Thaw what fs_freeze froze: twice if need be; 0 or -errno with err. */
static int fs_thaw(struct qmp *ga, struct strbuf *err)
{
	int r = qmp_execute(ga, "guest-fsfreeze-thaw", NULL, -1,
			    LIVE_AGENT_MS, NULL, err);

	if (r) {
		strbuf_reset(err);
		r = qmp_execute(ga, "guest-fsfreeze-thaw", NULL, -1,
				LIVE_AGENT_MS, NULL, err);
	}
	return r;
}

/*
 * What the host still caches goes to the disks now, while the guest
 * runs: the overlays' creation in the transaction syncs WORKDIR's file
 * system, and with ext4's ordered data that writes out every file's
 * dirty data there first (a disk filled just before took the pause to
 * 165 ms).  Synced first (syncfs of the file systems of WORKDIR and of
 * each disk), the pause stays a few ms.
 */
static void preflush(const struct live *l)
{
	int i, fd;

	for (i = -1; i < l->n; i++) {
		fd = open(i < 0 ? l->workdir : l->d[i].path,
			  O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			syncfs(fd);
			close(fd);
		}
	}
}

/*
 * Offer each disk's still copy of its bitmap over NBD, after the
 * pause.  One that cannot be is read whole by the backup, which says
 * why.
 */
static void export_bitmaps(struct live *l, struct qmp *q)
{
	char *sock = xasprintf("%s/%s", l->workdir, LIVE_NBD);
	int i;

	for (i = 0; i < l->n; i++) {
		struct live_disk *d = &l->d[i];
		struct strbuf e = STRBUF_INIT;

		if (!d->copied)
			continue;
		if (bitmap_qmp_export(q, sock, &l->serving, d->node, d->id, &e)) {
			d->bm_why = xasprintf("QEMU cannot offer its bitmap (%s)",
					      e.buf);
		} else {
			d->export = xstrdup(d->id);
		}
		strbuf_release(&e);
	}
	free(sock);
}

/* Withdraw the exports, and the server. */
static void unexport_bitmaps(struct live *l, struct qmp *q)
{
	int i;

	for (i = 0; i < l->n; i++) {
		if (!l->d[i].export)
			continue;
		bitmap_qmp_unexport(q, l->d[i].export, &l->serving);
		free(l->d[i].export);
		l->d[i].export = NULL;
	}
	bitmap_qmp_unexport(q, NULL, &l->serving);
	if (!l->serving) {
		char *sock = xasprintf("%s/%s", l->workdir, LIVE_NBD);

		unlink(sock);
		free(sock);
	}
}

/* live_freeze but the thaw of the file systems (*fs: they are frozen). */
static int live_point(struct live *l, struct qmp *q, struct qmp *ga,
		      bool *fs, long long *f0, struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	char *copy = NULL;
	bool snapped, was_running;
	long long t0;
	int r;

	if (l->frozen) {
		strbuf_addstr(err, "a live backup of it is under way");
		return -EBUSY;
	}
	r = find_nodes(l, q, err);
	if (!r)
		r = make_overlays(l, err);
	if (r)
		return r;
	strbuf_reset(&l->why);
	l->fs_frozen_ms = 0;
	preflush(l);
	if (l->agent) {
		*f0 = proc_now_ms();
		*fs = fs_freeze(l, q, ga) == 0;
		if (!*fs && l->agent_required) {
			strbuf_addf(err, "guest_agent = yes, but %s", l->why.buf);
			r = -EAGAIN;
		} else if (*fs) {
			preflush(l);	/* what the freeze wrote */
		}
	} else {
		strbuf_addstr(&l->why, "guest_agent = no");
	}
	t0 = proc_now_ms();
	/* a guest paused already (by its owner, or an I/O error) stays so */
	was_running = guest_runs(q);
	if (!r && was_running)
		r = qmp_execute(q, "stop", NULL, -1, LIVE_QMP_MS, NULL, err);
	if (r) {
		drop_overlays(l);
		return r;
	}
	r = snapshot_all(l, q, err);
	snapped = r != -EREMOTEIO;
	if (!r && l->vars) {
		copy = xasprintf("%s/%s", l->workdir, LIVE_VARS);
		r = fs_copy_file(l->vars, copy, 0600);
		if (r)
			strbuf_addf(err, "cannot copy %s: %s", l->vars,
				    strerror(-r));
	}
	/* the guest runs on, whatever became of the rest */
	if (was_running &&
	    qmp_execute(q, "cont", NULL, -1, LIVE_QMP_MS, NULL, &e) && !r) {
		strbuf_addf(err, "cannot resume the guest: %s", e.buf);
		r = -EIO;
	}
	l->paused_ms = proc_now_ms() - t0;
	l->frozen = snapped;
	if (!r)
		export_bitmaps(l, q);
	if (r && l->frozen) {
		strbuf_reset(&e);
		live_thaw(l, q, &e);
	}
	if (r && copy)
		unlink(copy);
	free(copy);
	strbuf_release(&e);
	return r;
}

int live_freeze(struct live *l, struct qmp *q, struct strbuf *err)
{
	struct qmp ga = QMP_INIT;
	bool fs = false;
	long long f0 = 0;
	int r = live_point(l, q, &ga, &fs, &f0, err);

	if (fs) {
		struct strbuf e = STRBUF_INIT;

		if (fs_thaw(&ga, &e)) {
			char *said = str_printable(e.buf ? e.buf : "");

			log_warn("the guest's agent did not thaw its file systems: %s",
				 said);
			free(said);
			fs = false;
		}
		l->fs_frozen_ms = proc_now_ms() - f0;
		strbuf_release(&e);
	}
	qmp_close(&ga);
	l->taken = !r && fs ? "frozen" : "crash-consistent";
	return r;
}

/* job's state: "ready", "gone", or the status QEMU says. */
static int job_state(struct qmp *q, const char *job, char *st, size_t n,
		     struct strbuf *err)
{
	struct json_object *ret = NULL, *j, *v;
	size_t k;
	int r;

	r = qmp_execute(q, "query-block-jobs", NULL, -1, LIVE_QMP_MS, &ret,
			err);
	if (r)
		return r;
	snprintf(st, n, "gone");
	for (k = 0; k < json_object_array_length(ret); k++) {
		j = json_object_array_get_idx(ret, k);
		if (!json_object_object_get_ex(j, "device", &v) ||
		    strcmp(json_object_get_string(v), job))
			continue;
		if (json_object_object_get_ex(j, "ready", &v) &&
		    json_object_get_boolean(v))
			snprintf(st, n, "ready");
		else if (json_object_object_get_ex(j, "status", &v))
			snprintf(st, n, "%s", json_object_get_string(v));
	}
	json_object_put(ret);
	return 0;
}

/* Poll job until its state is want (or gone); 0, -ETIMEDOUT or -errno. */
static int job_wait(struct qmp *q, const char *job, const char *want,
		    long long deadline, struct strbuf *err)
{
	struct timespec ts = { 0, 20 * 1000000L };
	char st[32];
	int r;

	for (;;) {
		r = job_state(q, job, st, sizeof(st), err);
		if (r)
			return r;
		if (!strcmp(st, want) || !strcmp(st, "gone"))
			return !strcmp(st, want) ? 0 : -ECANCELED;
		if (proc_now_ms() > deadline) {
			strbuf_addf(err, "%s is still %s", job, st);
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
	}
}

/* Whether disk d's device is on its own node again (query-block). */
static bool back_on_disk(const struct live_disk *d, struct qmp *q)
{
	struct strbuf e = STRBUF_INIT;
	struct json_object *ret = NULL, *dev, *v, *ins;
	bool back = false;

	if (!qmp_execute(q, "query-block", NULL, -1, LIVE_QMP_MS, &ret, &e)) {
		dev = json_member_of(ret, "device", d->id);
		back = dev && json_object_object_get_ex(dev, "inserted", &ins) &&
		       json_object_object_get_ex(ins, "node-name", &v) &&
		       !strcmp(json_object_get_string(v), d->node);
	}
	json_object_put(ret);
	strbuf_release(&e);
	return back;
}

/* Commit disk d's overlay back into it (an active commit, pivoted). */
static int commit_one(struct live_disk *d, struct qmp *q, struct strbuf *err)
{
	long long deadline = proc_now_ms() + LIVE_COMMIT_TIMEOUT_MS;
	struct json_object *args = json_object_new_object();
	char *job = xasprintf("vm-commit-%s", d->id);
	int r;

	json_object_object_add(args, "job-id", json_object_new_string(job));
	json_object_object_add(args, "device", json_object_new_string(d->id));
	/* into the disk, not further down into a base it has */
	json_object_object_add(args, "base-node",
			       json_object_new_string(d->node));
	r = qmp_execute(q, "block-commit", args, -1, LIVE_QMP_MS, NULL, err);
	json_object_put(args);
	if (!r)
		r = job_wait(q, job, "ready", deadline, err);
	if (!r) {
		args = json_object_new_object();
		json_object_object_add(args, "device",
				       json_object_new_string(job));
		r = qmp_execute(q, "block-job-complete", args, -1, LIVE_QMP_MS,
				NULL, err);
		json_object_put(args);
	}
	if (!r) {
		r = job_wait(q, job, "gone", deadline, err);
		if (r == -ECANCELED)
			r = 0;	/* gone is what was waited for */
	}
	/* gone is no proof: a pivot that failed leaves the overlay on top */
	if (!r && !back_on_disk(d, q)) {
		strbuf_addf(err, "the commit of %s ended, but QEMU still writes its overlay",
			    d->id);
		r = -EIO;
	}
	if (r == -ECANCELED)
		strbuf_addf(err, "the commit of %s ended before it was ready",
			    d->id);
	if (!r) {
		unlink(d->overlay);
		free(d->overlay);
		d->overlay = NULL;
	}
	free(job);
	return r;
}

/*
 * Disk d is back on its file: its bitmap now counts from l->keep's
 * snapshot (what was written since the instant, the commit included),
 * or (no keep) the temporary ones go and the old one counts on.
 */
static void settle_bitmaps(struct live *l, struct live_disk *d, struct qmp *q)
{
	struct strbuf e = STRBUF_INIT;

	if (d->tracked && bitmap_qmp_settle(q, d->id, l->keep, &e))
		log_warn("%s: its bitmap could not be kept (%s): the next @backup reads it whole",
			 d->path, e.buf);
	d->tracked = d->copied = false;
	strbuf_release(&e);
}

int live_thaw(struct live *l, struct qmp *q, struct strbuf *err)
{
	char *copy;
	int i, r, ret = 0;

	if (!l->frozen)
		return 0;
	unexport_bitmaps(l, q);
	for (i = 0; i < l->n; i++) {
		if (!l->d[i].overlay)
			continue;
		struct strbuf e = STRBUF_INIT;

		r = commit_one(&l->d[i], q, &e);
		if (r && !ret) {
			strbuf_addf(err, "%s: %s", l->d[i].id, e.buf);
			ret = r;
		}
		if (!r)
			settle_bitmaps(l, &l->d[i], q);
		strbuf_release(&e);
	}
	copy = xasprintf("%s/%s", l->workdir, LIVE_VARS);
	unlink(copy);
	free(copy);
	for (i = 0; i < l->n; i++)
		if (l->d[i].overlay)
			return ret;
	l->frozen = false;
	return ret;
}

/* The begin reply's "bitmaps": one per disk, as the client reads them. */
static void begun_bitmaps(struct json_object *ret, struct live_begun *b)
{
	struct json_object *arr, *o;
	size_t i, n;

	b->nbd = json_str_dup(ret, "nbd");
	if (!json_object_object_get_ex(ret, "bitmaps", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return;
	n = json_object_array_length(arr);
	b->bm = xcalloc(n ? n : 1, sizeof(*b->bm));
	for (i = 0; i < n; i++) {
		o = json_object_array_get_idx(arr, i);
		b->bm[b->nbm].file = json_str_dup(o, "file");
		if (!b->bm[b->nbm].file)
			continue;
		b->bm[b->nbm].export = json_str_dup(o, "export");
		b->bm[b->nbm].why = json_str_dup(o, "why");
		b->nbm++;
	}
}

int live_remote_begin(struct qmp *q, const char *control,
		      bool require_agent, const char *since,
		      struct live_begun *b, struct strbuf *err)
{
	struct json_object *ret = NULL, *v, *args;
	int r;

	memset(b, 0, sizeof(*b));
	r = qmp_connect(q, control, LIVE_QMP_MS, err);
	if (r)
		return r;
	/* QEMU's commands, each up to LIVE_QMP_MS, and the agent's two */
	args = json_object_new_object();
	json_object_object_add(args, "require-agent",
			       json_object_new_boolean(require_agent));
	if (since)
		json_object_object_add(args, "since",
				       json_object_new_string(since));
	r = qmp_execute(q, LIVE_BEGIN, args, -1,
			4 * LIVE_QMP_MS + 4 * LIVE_AGENT_MS, &ret, err);
	json_object_put(args);
	if (r)
		return r;
	if (json_object_object_get_ex(ret, "paused-ms", &v))
		b->paused_ms = json_object_get_int64(v);
	if (json_object_object_get_ex(ret, "fs-frozen-ms", &v))
		b->fs_frozen_ms = json_object_get_int64(v);
	b->efivars = json_str_dup(ret, "efivars");
	b->why = json_str_dup(ret, "why");
	b->taken = json_str_dup(ret, "taken");
	begun_bitmaps(ret, b);
	/* only the words this side knows go into a snapshot */
	if (!b->taken || strcmp(b->taken, "frozen")) {
		free(b->taken);
		b->taken = xstrdup("crash-consistent");
	}
	json_object_put(ret);
	return 0;
}

void live_begun_release(struct live_begun *b)
{
	int i;

	for (i = 0; i < b->nbm; i++) {
		free(b->bm[i].file);
		free(b->bm[i].export);
		free(b->bm[i].why);
	}
	free(b->bm);
	free(b->nbd);
	free(b->taken);
	free(b->why);
	free(b->efivars);
	memset(b, 0, sizeof(*b));
}

int live_remote_end(struct qmp *q, const char *keep, struct strbuf *err)
{
	struct json_object *args = NULL;
	int r;

	if (keep) {
		args = json_object_new_object();
		json_object_object_add(args, "keep", json_object_new_string(keep));
	}
	r = qmp_execute(q, LIVE_END, args, -1,
			LIVE_COMMIT_TIMEOUT_MS + LIVE_QMP_MS, NULL, err);
	json_object_put(args);
	return r;
}

void live_forget(struct live *l)
{
	int i;

	for (i = 0; i < l->n; i++) {
		free(l->d[i].overlay);
		free(l->d[i].export);
		l->d[i].overlay = l->d[i].export = NULL;
		l->d[i].tracked = l->d[i].copied = false;
	}
	/* what QEMU held of bitmaps and exports went with it */
	l->serving = false;
	l->frozen = false;
}

/* qemu-img commit of one overlay into its disk, then its removal. */
static int recover_one(const char *path, struct strbuf *err)
{
	struct proc_opts o = PROC_OPTS_INIT;
	struct strvec av = STRVEC_INIT;
	int r;

	strvec_pushl(&av, "qemu-img", "commit", "-q", "-f", "qcow2", "--",
		     path, NULL);

	o.stdin_fd = -1;
	o.stdout_fd = -1;
	r = proc_run(av.v, &o, LIVE_RECOVER_MS);
	strvec_clear(&av);
	if (r) {
		strbuf_addf(err, "qemu-img commit %s failed (%s)", path,
			    r < 0 ? strerror(-r) : "see above");
		return r < 0 ? r : -EIO;
	}
	if (unlink(path) < 0)
		return -errno;
	return 0;
}

/* e is a regular file (not a link), whatever d_type says. */
static bool regular_at(int dfd, const struct dirent *e)
{
	struct stat st;

	if (e->d_type != DT_UNKNOWN)
		return e->d_type == DT_REG;
	return fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

int live_recover(const char *workdir, struct strbuf *err)
{
	struct dirent *e;
	DIR *d = opendir(workdir);
	char *sock;
	int n = 0, r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	/* the socket of the bitmaps' exports, left by a QEMU that ended */
	sock = xasprintf("%s/%s", workdir, LIVE_NBD);
	unlink(sock);
	free(sock);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char *p;

		if (strncmp(e->d_name, LIVE_PREFIX, strlen(LIVE_PREFIX)))
			continue;
		p = xasprintf("%s/%s", workdir, e->d_name);
		/* only the regular files vm made; never through a link */
		if (!strcmp(e->d_name, LIVE_VARS)) {
			unlink(p);
		} else if (len > 6 && !strcmp(e->d_name + len - 6, ".qcow2") &&
			   regular_at(dirfd(d), e)) {
			int k = recover_one(p, err);

			if (k && !r)
				r = k;
			n++;
		}
		free(p);
	}
	closedir(d);
	return r ? r : n;
}
