#include "host/act.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "host/backup.h"
#include "host/power.h"
#include "qemu/runstate.h"
#include "util/fsutil.h"
#include "util/proc.h"
#include "util/report.h"
#include "vm/launch.h"
#include "vm/vm.h"

/* @start waits for ready up to its timeout, then stops the VM: the
 * verb is given that, and this for the rest */
#define START_MARGIN_S 120

static const char *const names[] = { [ACT_START] = "start",
				     [ACT_STOP] = "stop",
				     [ACT_KILL] = "kill",
				     [ACT_BACKUP] = "backup" };

int act_parse(const char *word)
{
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(word, names[i]))
			return (int)i;
	return -1;
}

const char *act_name(enum act a)
{
	return names[a];
}

/* @start, run as the verb: its exit status (or -errno). */
static int start(struct vm *vm, struct strbuf *err)
{
	struct proc_opts o = PROC_OPTS_INIT;
	struct runstate rs = RUNSTATE_INIT;
	struct strvec av = STRVEC_INIT;
	int r = runstate_running(vm->hostdir, &rs, err);

	runstate_release(&rs);
	if (r == 1) {
		strbuf_addstr(err, "it is running");
		return -EBUSY;
	}
	if (vm_lock(vm) == -EBUSY) {
		strbuf_addstr(err, "it is busy (its lock is held: a @job, a @backup, ...)");
		return -EBUSY;
	}
	/* the verb takes the lock itself */
	close(vm->lock_fd);
	vm->lock_fd = -1;
	o.stdin_fd = -1;
	o.stdout_fd = -1;
	o.die_with_parent = false;
	o.new_session = true;
	o.exe = "/proc/self/exe";
	strvec_pushl(&av, "vm", "-q", "-d", vm->hostdir, "@start", NULL);
	r = proc_run(av.v, &o,
		     (int)(launch_ready_timeout(&vm->conf) + START_MARGIN_S) *
			     1000);
	strvec_clear(&av);
	return r;
}

/* What @backup would have warned of, into o's "warnings". */
static void backup_warnings(const struct vm_backup *vb, struct json_object *o)
{
	struct json_object *w = json_object_new_array();

	if (vb->job.why_full && vb->job.why_full_warns)
		json_object_array_add(w, json_object_new_string(vb->job.why_full));
	if (!vb->job.sealed)
		json_object_array_add(w, json_object_new_string(
			"the snapshot is not sealed (vm serve's user has no key in $XDG_CONFIG_HOME/vm/seal.key): a restore takes it for one from elsewhere"));
	if (vb->end_error)
		json_object_array_add(w, json_object_new_string(
			"the VM's vm has not taken back its disks yet; it does when QEMU ends"));
	report_set(o, "warnings", w);
}

/* @backup: 0 or -errno with err; o gets what it stored. */
static int backup(struct vm *vm, const struct act_req *req,
		  struct json_object *o, struct strbuf *err)
{
	struct vm_backup vb;
	struct stat st;
	char *pigz = fs_which("pigz");
	long long t0 = proc_now_ms();
	int r;

	vm_backup_init(&vb);
	r = vm_backup_begin(vm, req->snapshot, &vb, err);
	if (!r)
		r = vm_backup_store(vm, &vb, req->description,
				    pigz ? "pigz" : NULL, NULL, err);
	if (!r) {
		report_set_str(o, "snapshot", vb.job.name);
		report_set_str(o, "file", vb.job.file);
		report_set_str(o, "parent", vb.job.parent);
		report_set_str(o, "taken",
			       vb.job.taken ? vb.job.taken : "offline");
		if (stat(vb.job.file, &st) == 0)
			report_set_int(o, "size", (int64_t)st.st_size);
		report_set(o, "seconds", json_object_new_double(
					 (double)(proc_now_ms() - t0) / 1000));
		backup_warnings(&vb, o);
	}
	vm_backup_release(&vb);
	free(pigz);
	return r;
}

/* What the HTTP status of a failed r is: the VM busy (its lock held,
 * a live backup under way: its vm refused), a name taken, or else. */
static unsigned failed_code(int r)
{
	return r == -EBUSY || r == -EEXIST || r == -EREMOTEIO ?
		       MHD_HTTP_CONFLICT : MHD_HTTP_INTERNAL_SERVER_ERROR;
}

unsigned act_run(const struct act_req *req, char **body, char *summary)
{
	struct json_object *o = json_object_new_object();
	struct strbuf err = STRBUF_INIT;
	struct vm_stop_result res;
	enum act a = req->act;
	unsigned code = MHD_HTTP_OK, secs;
	struct vm vm;
	int r;

	memset(&res, 0, sizeof(res));
	vm_init(&vm);
	vm.hostdir = xstrdup(req->dir);
	report_set_str(o, "name", req->name);
	report_set_str(o, "action", act_name(a));
	r = vm_load_conf(&vm, NULL, &err);
	secs = req->has_secs ? (unsigned)req->secs : vm.conf.shutdown_timeout;
	if (!r && a == ACT_STOP)
		r = vm_stop(&vm, secs, false, &res, &err);
	else if (!r && a == ACT_KILL)
		r = vm_kill(&vm, &res, &err);
	else if (!r && a == ACT_BACKUP)
		r = backup(&vm, req, o, &err);
	else if (!r)
		r = start(&vm, &err);
	if ((a == ACT_STOP || a == ACT_KILL) &&
	    (!r || (a == ACT_STOP && r == -ETIMEDOUT))) {
		report_set_str(o, "stopped", vm_ended_name(res.how));
		if (res.how != VM_NOT_RUNNING)
			report_set(o, "seconds", json_object_new_double(res.seconds));
		if (r) {
			code = MHD_HTTP_GATEWAY_TIMEOUT;
			strbuf_addf(&err, "it did not power off within %u s: %s",
				    secs,
				    res.how == VM_QUIT ? "stopped with QMP quit" :
							 "killed");
		}
	} else if (a == ACT_START && r == 0) {
		report_set_bool(o, "started", true);
	} else if (a == ACT_START && r > 0) {
		code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		strbuf_addf(&err, "@start failed (exit status %d; its messages are in vm serve's log)",
			    r);
	} else if (r) {
		code = failed_code(r);
	}
	if (code != MHD_HTTP_OK)
		report_set_str(o, "error", err.len ? err.buf : strerror(-r));
	snprintf(summary, 128, "%u %s", code,
		 code != MHD_HTTP_OK ? (err.len ? err.buf : "failed") :
		 a == ACT_START ? "started" :
		 a == ACT_BACKUP ? json_object_get_string(
					   json_object_object_get(o, "snapshot")) :
		 vm_ended_name(res.how));
	*body = xasprintf("%s\n", json_object_to_json_string_ext(o,
				JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	vm_stop_result_release(&res);
	vm_release(&vm);
	json_object_put(o);
	strbuf_release(&err);
	return code;
}
