/* A snapshot chain fetched by URL through the download cache. */
#include "snapshot/fetch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/download.h"
#include "util/fsutil.h"

/*
 * A chain that failed leaves nothing it downloaded in the cache: each
 * file this run put there (changed since start) goes, with its .meta.
 */
static void forget_new(const struct backup *list, int k,
		       const struct timespec *start)
{
	struct stat st;
	int i;

	for (i = 0; i < k; i++) {
		char *meta;

		if (lstat(list[i].path, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_ctim.tv_sec < start->tv_sec ||
		    (st.st_ctim.tv_sec == start->tv_sec &&
		     st.st_ctim.tv_nsec < start->tv_nsec))
			continue;
		unlink(list[i].path);
		meta = xasprintf("%s.meta", list[i].path);
		unlink(meta);
		free(meta);
	}
}

int snap_fetch_chain(struct vm *vm, const char *spec, struct backup **list,
		     int *n, struct strbuf *err)
{
	struct timespec start;
	struct strbuf note = STRBUF_INIT;
	char *url = NULL, *frag = NULL, *base, *slash, *at;
	int r, k = 0, i;

	*list = NULL;
	*n = 0;
	clock_gettime(CLOCK_REALTIME_COARSE, &start);	/* as inodes are stamped */
	if (download_split(spec, &url, &frag)) {
		strbuf_addf(err, "%s: a fragment must be #sha256= and 64 hex digits",
			    spec);
		return -EINVAL;
	}
	slash = strrchr(url, '/');
	if (!slash || !str_ends_with(slash + 1, ".tar.gz") ||
	    strlen(slash + 1) <= 7) {
		strbuf_addf(err, "%s: a snapshot's URL names its NAME.tar.gz",
			    url);
		r = -EINVAL;
		goto out;
	}
	base = xasprintf("%.*s", (int)(slash - url), url);
	at = xstrdup(spec);
	for (r = 0; !r;) {
		const char *file = strrchr(at, '/') + 1;
		char *name = xasprintf("%.*s", (int)(strcspn(file, "#") - 7),
				       file);
		struct snap_meta m;
		char *path = NULL;

		for (i = 0; i < k; i++)
			if (!strcmp((*list)[i].name, name))
				r = -ELOOP;
		if (!r && (unsigned)k >= vm->conf.max_chain) {
			strbuf_addf(err, "the chain of %s is longer than max_chain (%u snapshots)",
				    (*list)[0].name, vm->conf.max_chain);
			r = -ELOOP;
			free(name);
			break;
		}
		if (r || !name_is_valid(name)) {
			strbuf_addf(err, r ? "the parents of %s form a loop" :
					     "bad snapshot name '%s' in the URL",
				    r ? (*list)[0].name : name);
			r = r ? r : -EINVAL;
			free(name);
			break;
		}
		strbuf_reset(&note);
		r = vm_fetch(vm, at, NULL, NULL, NULL, &path, NULL, &note, err);
		if (r) {
			free(name);
			break;
		}
		*list = xrealloc(*list, (size_t)(k + 1) * sizeof(**list));
		(*list)[k].name = name;
		(*list)[k].path = path;
		(*list)[k].legacy = false;
		k++;
		r = snap_read_meta(path, &m, err);
		free(at);
		at = NULL;
		if (!r && m.parent)
			at = xasprintf("%s/%s.tar.gz", base, m.parent);
		snap_meta_release(&m);
		if (!at)
			break;
	}
	free(at);
	free(base);
	*n = k;
	if (r && !vm->dry_run)
		forget_new(*list, k, &start);
out:
	free(url);
	free(frag);
	strbuf_release(&note);
	return r;
}
