#include "qemu/image.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "util/proc.h"
#include "qemu/qmp.h"

#define QEMU_IMG_INFO_TIMEOUT_MS (60 * 1000)

int image_info_parse(const char *json, struct image_info *out,
		     struct strbuf *err)
{
	struct json_object *o, *v, *fs, *data;
	int64_t size;

	memset(out, 0, sizeof(*out));
	o = json_tokener_parse(json);
	if (!o || !json_object_is_type(o, json_type_object)) {
		strbuf_addstr(err, "qemu-img info gave no JSON object");
		json_object_put(o);
		return -EINVAL;
	}
	out->format = json_str_dup(o, "format");
	if (!out->format || !json_object_object_get_ex(o, "virtual-size", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (size = json_object_get_int64(v)) < 0) {
		strbuf_addstr(err, "qemu-img info names no format or size");
		json_object_put(o);
		image_info_release(out);
		return -EINVAL;
	}
	out->virtual_size = (uint64_t)size;
	/* as the header says, not as qemu-img resolved it */
	out->backing = json_str_dup(o, "backing-filename");
	out->backing_format = json_str_dup(o, "backing-filename-format");
	if (json_object_object_get_ex(o, "format-specific", &fs) &&
	    json_object_object_get_ex(fs, "data", &data))
		out->data_file = json_str_dup(data, "data-file");
	json_object_put(o);
	return 0;
}

int image_info(const char *path, const char *format, struct image_info *out,
	       struct strbuf *err)
{
	struct strvec av = STRVEC_INIT;
	struct strbuf json = STRBUF_INIT;
	struct proc_opts o = PROC_OPTS_INIT;
	int r;

	memset(out, 0, sizeof(*out));
	/* -U: a running VM's QEMU holds its disks; this reads only headers */
	strvec_pushl(&av, "qemu-img", "info", "-U", "--output=json", NULL);
	if (format)
		strvec_pushl(&av, "-f", format, NULL);
	strvec_pushl(&av, "--", path, NULL);
	o.stdin_fd = -1;
	o.stderr_fd = -1;	/* its message is said as ours */
	r = proc_capture(av.v, &o, QEMU_IMG_INFO_TIMEOUT_MS, &json);
	strvec_clear(&av);
	if (r) {
		strbuf_addstr(err, r == -ENOENT ?
			      "qemu-img not found (install qemu-utils)" :
			      r == -ETIMEDOUT ? "qemu-img info timed out" :
			      r == -EINTR ? strerror(EINTR) :
			      "qemu-img cannot read it as a disk image");
		strbuf_release(&json);
		return r < 0 ? r : -EINVAL;
	}
	r = image_info_parse(json.buf, out, err);
	strbuf_release(&json);
	return r;
}

void image_info_release(struct image_info *info)
{
	free(info->format);
	free(info->backing);
	free(info->backing_format);
	free(info->data_file);
	memset(info, 0, sizeof(*info));
}
