#include "qemu/image.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "util/proc.h"
#include "qemu/qmp.h"

#define QEMU_IMG_INFO_TIMEOUT_MS (60 * 1000)

/* A flag word in a bitmap's "flags" list. */
static bool has_flag(struct json_object *bm, const char *flag)
{
	struct json_object *flags;
	size_t i;

	if (!json_object_object_get_ex(bm, "flags", &flags) ||
	    !json_object_is_type(flags, json_type_array))
		return false;
	for (i = 0; i < json_object_array_length(flags); i++) {
		const char *f = json_object_get_string(
			json_object_array_get_idx(flags, i));

		if (f && !strcmp(f, flag))
			return true;
	}
	return false;
}

/* qcow2's "bitmaps" list (format-specific data). */
static void parse_bitmaps(struct json_object *data, struct image_info *out)
{
	struct json_object *list;
	size_t i, n;

	if (!json_object_object_get_ex(data, "bitmaps", &list) ||
	    !json_object_is_type(list, json_type_array))
		return;
	n = json_object_array_length(list);
	out->bitmaps = xcalloc(n ? n : 1, sizeof(*out->bitmaps));
	for (i = 0; i < n; i++) {
		struct json_object *bm = json_object_array_get_idx(list, i);
		char *name = json_str_dup(bm, "name");

		if (!name)
			continue;
		out->bitmaps[out->nbitmaps].name = name;
		out->bitmaps[out->nbitmaps].in_use = has_flag(bm, "in-use");
		out->bitmaps[out->nbitmaps].recording = has_flag(bm, "auto");
		out->nbitmaps++;
	}
}

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
	    json_object_object_get_ex(fs, "data", &data)) {
		out->data_file = json_str_dup(data, "data-file");
		parse_bitmaps(data, out);
	}
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
	while (info->nbitmaps)
		free(info->bitmaps[--info->nbitmaps].name);
	free(info->bitmaps);
	memset(info, 0, sizeof(*info));
}

char *image_qcow2_alone(const char *path)
{
	struct json_object *o = json_object_new_object(), *file;
	char *s;

	file = json_object_new_object();
	json_object_object_add(file, "driver", json_object_new_string("file"));
	json_object_object_add(file, "filename", json_object_new_string(path));
	json_object_object_add(o, "driver", json_object_new_string("qcow2"));
	/* its base is not read: what this file holds is all that is asked */
	json_object_object_add(o, "backing", NULL);
	json_object_object_add(o, "file", file);
	s = xasprintf("json:%s", json_object_to_json_string_ext(
					 o, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* An unsigned number member, or -1. */
static int64_t json_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

int image_map_parse(const char *json, struct image_extent **out, size_t *n,
		    struct strbuf *err)
{
	struct json_object *o = json_tokener_parse(json);
	size_t i, len;

	*out = NULL;
	*n = 0;
	if (!o || !json_object_is_type(o, json_type_array)) {
		strbuf_addstr(err, "qemu-img map gave no JSON list");
		json_object_put(o);
		return -EINVAL;
	}
	len = json_object_array_length(o);
	*out = xcalloc(len ? len : 1, sizeof(**out));
	for (i = 0; i < len; i++) {
		struct json_object *e = json_object_array_get_idx(o, i);
		int64_t start = json_u64(e, "start"), l = json_u64(e, "length");
		int64_t depth = json_u64(e, "depth"), off = json_u64(e, "offset");

		if (start < 0 || l < 0 || depth < 0) {
			strbuf_addstr(err, "qemu-img map gave a run without start, length or depth");
			json_object_put(o);
			free(*out);
			*out = NULL;
			*n = 0;
			return -EINVAL;
		}
		/* only data this file holds as it is, where the file says */
		if (depth || off < 0 || !json_is_true(e, "data") ||
		    json_is_true(e, "compressed"))
			continue;
		(*out)[*n].start = (uint64_t)start;
		(*out)[*n].len = (uint64_t)l;
		(*out)[*n].offset = (uint64_t)off;
		(*n)++;
	}
	json_object_put(o);
	return 0;
}

/* A map lists a run per fragment: 64 MiB holds 400,000 of them. */
#define IMAGE_MAP_MAX (64u << 20)
#define QEMU_IMG_MAP_TIMEOUT_MS (5 * 60 * 1000)

int image_map(const char *path, struct image_extent **out, size_t *n,
	      struct strbuf *err)
{
	struct proc_opts o = PROC_OPTS_INIT;
	struct strbuf json = STRBUF_INIT;
	struct strvec av = STRVEC_INIT;
	char *name = image_qcow2_alone(path);
	int r;

	strvec_pushl(&av, "qemu-img", "map", "-U", "--output=json", name, NULL);

	*out = NULL;
	*n = 0;
	o.stdin_fd = -1;
	o.stderr_fd = -1;
	r = proc_capture_max(av.v, &o, QEMU_IMG_MAP_TIMEOUT_MS, IMAGE_MAP_MAX,
			     &json);
	strvec_clear(&av);
	free(name);
	if (r) {
		strbuf_addstr(err, r == -ETIMEDOUT ? "qemu-img map timed out" :
				   r == -EINTR ? strerror(EINTR) :
				   "qemu-img cannot map it as a qcow2 image");
		strbuf_release(&json);
		return r < 0 ? r : -EINVAL;
	}
	r = image_map_parse(json.buf ? json.buf : "", out, n, err);
	strbuf_release(&json);
	return r;
}
