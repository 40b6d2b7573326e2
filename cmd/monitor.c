/*
 * @monitor CMD...: an HMP command through QMP (@monitor info status);
 * with --json, CMD is a QMP command in JSON and the reply is the result.
 * The owner talks to QEMU's monitor; a control_group member to vm's
 * control socket, which passes only what cannot reach the host.
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "qemu/control.h"
#include "qemu/qmp.h"
#include "qemu/runstate.h"

#define MONITOR_TIMEOUT_MS 30000

int cmd_monitor(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT, out = STRBUF_INIT;
	struct runstate rs;
	struct qmp q = QMP_INIT;
	char *line = NULL;
	int r, i, ret = 1;

	r = runstate_running(ctx->vm.hostdir, &rs, &err);
	if (r <= 0) {
		log_error("cannot reach the monitor of %s: %s", ctx->vm.conf.name,
			  r < 0 ? err.buf : "it is not running");
		strbuf_release(&err);
		return 1;
	}
	for (i = 0; i < argc; i++)
		strbuf_addf(&out, "%s%s", i ? " " : "", argv[i]);
	line = strbuf_detach(&out);
	/* QEMU's monitor is its owner's; the rest go through vm's control */
	r = qmp_connect(&q, rs.monitor, MONITOR_TIMEOUT_MS, &err);
	if (r == -EACCES || r == -EPERM) {
		qmp_close(&q);
		strbuf_reset(&err);
		r = runstate_control(&rs, &q, MONITOR_TIMEOUT_MS, &err);
	}
	if (r) {
		log_error("cannot reach the monitor of %s: %s", ctx->vm.conf.name,
			  r == -EACCES ? "permission denied (only its owner, or the control_group, may)" :
			  err.buf);
		goto out;
	}
	if (ctx->json) {
		struct json_object *reply = NULL, *e;

		r = qmp_execute_json(&q, line, MONITOR_TIMEOUT_MS, &reply, &err);
		if (r) {
			log_error("@monitor: %s", err.buf);
			ret = r == -EINVAL ? 2 : 1;
			goto out;
		}
		ret = 0;
		if (json_object_object_get_ex(reply, "error", &e)) {
			struct json_object *d = NULL, *c = NULL;

			json_object_object_get_ex(e, "desc", &d);
			json_object_object_get_ex(e, "class", &c);
			log_error("@monitor: %s%s",
				  c && !strcmp(json_object_get_string(c),
					       CONTROL_REFUSED) ? "" :
				  "QEMU says: ",
				  d ? json_object_get_string(d) : "error");
			ret = 1;
		}
		/* the reply as QEMU gave it: {"return": ...} or {"error": ...} */
		report_set(ctx->result, "reply", reply);
		goto out;
	}
	r = qmp_hmp(&q, line, MONITOR_TIMEOUT_MS, &out, &err);
	if (r) {
		log_error("@monitor %s: %s", line, err.buf);
		goto out;
	}
	/* HMP ends its lines with \r\n */
	for (i = 0; out.buf[i]; i++)
		if (out.buf[i] != '\r' || out.buf[i + 1] != '\n')
			putchar(out.buf[i]);
	ret = 0;
out:
	fflush(stdout);
	qmp_close(&q);
	runstate_release(&rs);
	strbuf_release(&err);
	strbuf_release(&out);
	free(line);
	return ret;
}
