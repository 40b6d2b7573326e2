#include "host/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qemu/qmp.h"
#include "snapshot/backups.h"
#include "snapshot/snapshot.h"
#include "util/fsutil.h"
#include "util/report.h"

/* paused (or anything QEMU says) when its control socket lets us ask. */
static void qemu_state(const struct runstate *rs, int timeout_ms,
		       char out[32])
{
	struct strbuf err = STRBUF_INIT;
	struct json_object *ret = NULL, *v;
	struct qmp q = QMP_INIT;

	out[0] = '\0';
	if (!runstate_control(rs, &q, timeout_ms, &err) &&
	    !qmp_execute(&q, "query-status", NULL, -1, timeout_ms, &ret,
			 &err) &&
	    json_object_object_get_ex(ret, "status", &v))
		snprintf(out, 32, "%s", json_object_get_string(v));
	json_object_put(ret);
	qmp_close(&q);
	strbuf_release(&err);
}

/* The last job, as HOSTDIR/last-job says: NAME STATUS TIME. */
static void last_job(const struct vm *vm, struct vm_status *s)
{
	struct strbuf text = STRBUF_INIT;
	char *p = vm_host_path(vm, "last-job");
	char name[65];
	long long t;

	if (!fs_read_file(p, 4096, &text) &&
	    sscanf(text.buf, "%64s %d %lld", name, &s->job_status, &t) == 3 &&
	    name_is_valid(name)) {
		s->job = xstrdup(name);
		s->job_time = (time_t)t;
	}
	free(p);
	strbuf_release(&text);
}

static void snapshots(const struct vm *vm, struct vm_status *s)
{
	struct strbuf err = STRBUF_INIT;
	struct backup *list = NULL;
	struct stat st;
	int i;

	s->nsnap = backups_list(vm, &list);
	for (i = 0; i < s->nsnap; i++)
		if (!list[i].legacy && !lstat(list[i].path, &st) &&
		    S_ISREG(st.st_mode))
			s->backups_bytes += (uint64_t)st.st_size;
	s->last = backups_last(vm);
	if (s->last) {
		const struct backup *b = backups_find(vm, list, s->nsnap,
						      s->last);
		struct snap_meta m;

		if (b && !b->legacy && !snap_read_meta(b->path, &m, &err)) {
			s->last_desc = m.description;
			s->last_time = m.ts;
			m.description = NULL;
			snap_meta_release(&m);
		}
	}
	backups_free(list, s->nsnap > 0 ? s->nsnap : 0);
	if (s->nsnap < 0)
		s->nsnap = 0;
	strbuf_release(&err);
}

void vm_status_read(const struct vm *vm, int qmp_timeout_ms,
		    struct vm_status *s)
{
	struct strbuf err = STRBUF_INIT;
	char *p;

	memset(s, 0, sizeof(*s));
	s->rs = (struct runstate)RUNSTATE_INIT;
	s->state = "stopped";
	if (runstate_running(vm->hostdir, &s->rs, &err) == 1) {
		qemu_state(&s->rs, qmp_timeout_ms, s->qstate);
		s->running = true;
		s->state = !strcmp(s->rs.state, "running") ? "running" :
			   !strcmp(s->rs.state, "stopping") ? "stopping" :
							      "starting";
		if (!strcmp(s->qstate, "paused"))
			s->state = "paused";
	} else if (runstate_stale(vm->hostdir, false) == 1) {
		/* its pids are other processes now: never signalled */
		s->state = "stale";
	} else if (vm->workdir) {
		p = vm_work_path(vm, SAVED_STATE);
		s->saved = fs_exists(p);
		free(p);
		if (s->saved)
			s->state = "saved";
	}
	last_job(vm, s);
	snapshots(vm, s);
	strbuf_release(&err);
}

void vm_status_release(struct vm_status *s)
{
	runstate_release(&s->rs);
	free(s->job);
	free(s->last);
	free(s->last_desc);
	s->job = s->last = s->last_desc = NULL;
}

void vm_status_json(const struct vm *vm, const struct vm_status *s,
		    struct json_object *o)
{
	const struct runstate *rs = &s->rs;
	struct json_object *j = NULL, *l = NULL;

	report_set_str(o, "name", vm->conf.name);
	report_set_str(o, "state", s->state);
	report_set_str(o, "hostdir", vm->hostdir);
	report_set_str(o, "workdir", s->running ? rs->workdir : vm->workdir);
	if (s->running)
		runstate_report(rs, o);
	if (s->job) {
		j = json_object_new_object();
		report_set_str(j, "name", s->job);
		report_set_int(j, "status", s->job_status);
		report_set_int(j, "time", s->job_time);
	}
	report_set(o, "last_job", j);
	report_set_int(o, "snapshots", s->nsnap);
	if (s->last) {
		l = json_object_new_object();
		report_set_str(l, "name", s->last);
		report_set_str(l, "description",
			       s->last_desc ? s->last_desc : "");
		report_set_int(l, "time", s->last_time);
	}
	report_set(o, "last", l);
}

/* The reference layout keeps TS and DESCRIPTION as files. */
static void legacy_meta(const struct backup *b, struct snap_meta *m)
{
	struct strbuf sb = STRBUF_INIT;
	char *p = xasprintf("%s/TS", b->path);
	struct stat st;

	memset(m, 0, sizeof(*m));
	if (!fs_read_file(p, 4096, &sb))
		m->ts = (time_t)strtoll(sb.buf, NULL, 10);
	if (!m->ts && stat(b->path, &st) == 0)
		m->ts = st.st_mtime;
	free(p);
	strbuf_reset(&sb);
	p = xasprintf("%s/DESCRIPTION", b->path);
	fs_read_file(p, 4096, &sb);
	strbuf_trim_trailing(&sb);
	m->description = strbuf_detach(&sb);
	free(p);
}

int vm_snapshots_json(const struct vm *vm, struct json_object *o)
{
	struct strbuf err = STRBUF_INIT;
	struct json_object *arr;
	struct backup *list = NULL;
	char *last;
	int n = backups_list(vm, &list), i;

	if (n < 0)
		return n;
	last = backups_last(vm);
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_new_object();
		struct snap_meta m;

		if (list[i].legacy)
			legacy_meta(&list[i], &m);
		else if (snap_read_meta(list[i].path, &m, &err))
			strbuf_reset(&err);	/* shown with what it has */
		if (list[i].legacy)
			m.size = 0;
		if (!m.taken[0])
			snprintf(m.taken, sizeof(m.taken), "offline");
		report_set_str(e, "name", list[i].name);
		report_set_int(e, "time", (int64_t)m.ts);
		report_set_int(e, "size", (int64_t)m.size);
		report_set_bool(e, "last", last && !strcmp(last, list[i].name));
		report_set_str(e, "layout",
			       list[i].legacy ? "directory" : "tarball");
		report_set_str(e, "description",
			       m.description ? m.description : "");
		/* the parent it restores with; the files a restore writes */
		report_set_str(e, "parent", m.parent);
		if (m.chained)
			report_set_int(e, "restore_size", (int64_t)m.data);
		report_set_str(e, "taken", m.taken);
		json_object_array_add(arr, e);
		snap_meta_release(&m);
	}
	report_set(o, "snapshots", arr);
	report_set_str(o, "last", last);
	backups_free(list, n);
	free(last);
	strbuf_release(&err);
	return n;
}
