/* vm images [NAME]: the catalogue of images @create knows by name. */
#include "vm.h"

#include "vm/catalog.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct json_object *entry_json(const struct catalog_entry *e)
{
	struct json_object *o = json_object_new_object();

	report_set_str(o, "name", e->name);
	report_set_str(o, "url", e->url);
	report_set_str(o, "sums", e->sums);
	report_set_str(o, "sig", e->sig);
	report_set_str(o, "key", e->key);
	report_set_str(o, "sha256", e->sha256);
	report_set_str(o, "sha512", e->sha512);
	report_set_str(o, "firmware", e->firmware ? e->firmware : "any");
	report_set_str(o, "user", e->user);
	report_set_str(o, "about", e->about);
	report_set_str(o, "file", e->file);
	return o;
}

/* How the entry's image is verified, in words. */
static void say_checks(const struct catalog_entry *e)
{
	if (e->sha512 || e->sha256)
		printf("  digest    %s %s\n", e->sha512 ? "sha512" : "sha256",
		       e->sha512 ? e->sha512 : e->sha256);
	if (e->sums)
		printf("  sums      %s\n", e->sums);
	if (e->key)
		printf("  signed    %s, checked with %s\n",
		       e->sig ? e->sig : "inline", e->key);
	else if (e->sums)
		printf("  signed    no (the checksum file is trusted as served)\n");
}

static void say_entry(const struct catalog_entry *e)
{
	printf("%s%s%s\n", e->name, e->about ? ": " : "",
	       e->about ? e->about : "");
	printf("  url       %s\n", e->url);
	say_checks(e);
	printf("  firmware  %s\n", e->firmware ? e->firmware : "any");
	printf("  user      %s\n", e->user ? e->user : "(none: root)");
	printf("  from      %s\n", e->file);
}

static void say_list(const struct catalog *cat)
{
	size_t i;

	printf("%-16s %-8s %-10s %s\n", "NAME", "FIRMWARE", "USER", "ABOUT");
	for (i = 0; i < cat->nr; i++) {
		const struct catalog_entry *e = &cat->v[i];

		printf("%-16s %-8s %-10s %s\n", e->name,
		       e->firmware ? e->firmware : "any",
		       e->user ? e->user : "-", e->about ? e->about : e->url);
	}
}

int cmd_images(struct vm_ctx *ctx, int argc, char **argv, int json_fd)
{
	struct catalog cat = CATALOG_INIT;
	struct strvec files = STRVEC_INIT;
	struct strbuf err = STRBUF_INIT;
	const struct catalog_entry *e = NULL;
	char *cfg = fs_config_home();
	int r;

	catalog_files(ctx->vm.datadir, cfg, &files);
	r = catalog_load(&cat, &files, &err);
	if (!r && argc > 1) {
		e = catalog_find(&cat, argv[1]);
		if (!e) {
			strbuf_addf(&err, "no image '%s' in the catalogue (vm images lists them)",
				    argv[1]);
			r = -ENOENT;
		}
	}
	if (r) {
		log_error("%s", err.buf);
		if (json_fd >= 0)
			report_write_step(json_fd, "images", argv + 1, argc - 1,
					  1, false, NULL);
		r = 1;
	} else if (json_fd >= 0) {
		struct json_object *res = json_object_new_object();
		struct json_object *all = json_object_new_array();

		for (size_t i = 0; i < cat.nr; i++)
			if (!e || e == &cat.v[i])
				json_object_array_add(all, entry_json(&cat.v[i]));
		report_set(res, "images", all);
		r = report_write_step(json_fd, "images", argv + 1, argc - 1, 0,
				      false, res) ? 1 : 0;
		if (r)
			log_error("cannot write the catalogue to stdout");
		json_object_put(res);
	} else if (e) {
		say_entry(e);
	} else {
		say_list(&cat);
	}
	catalog_release(&cat);
	strvec_clear(&files);
	strbuf_release(&err);
	free(cfg);
	return r;
}
