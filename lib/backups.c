#include "backups.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

#define SUFFIX ".tar.gz"

void backups_free(struct backup *b, int n)
{
	int i;

	for (i = 0; b && i < n; i++) {
		free(b[i].name);
		free(b[i].path);
	}
	free(b);
}

/* S2 before S10: compare digit runs as numbers. */
static int natural_cmp(const void *pa, const void *pb)
{
	const char *a = ((const struct backup *)pa)->name;
	const char *b = ((const struct backup *)pb)->name;

	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			char *ea, *eb;
			unsigned long long x = strtoull(a, &ea, 10);
			unsigned long long y = strtoull(b, &eb, 10);

			if (x != y)
				return x < y ? -1 : 1;
			a = ea;
			b = eb;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int backups_list(const struct vm_ctx *ctx, struct backup **out)
{
	char *dir = vm_host_path(ctx, "backups");
	struct backup *b = NULL;
	struct dirent *e;
	DIR *d;
	int n = 0;

	*out = NULL;
	d = opendir(dir);
	if (!d) {
		int r = errno == ENOENT ? 0 : -errno;

		free(dir);
		return r;
	}
	while ((e = readdir(d))) {
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		char *name = NULL;
		bool legacy = false;

		if (lstat(path, &st) == 0 && e->d_name[0] != '.' &&
		    strcmp(e->d_name, "LAST")) {
			if (S_ISREG(st.st_mode) &&
			    str_ends_with(e->d_name, SUFFIX)) {
				name = xasprintf("%.*s",
						 (int)(strlen(e->d_name) -
						       strlen(SUFFIX)),
						 e->d_name);
			} else if (S_ISDIR(st.st_mode)) {
				name = xstrdup(e->d_name);
				legacy = true;
			}
		}
		if (name && name_is_valid(name)) {
			b = xrealloc(b, (size_t)(n + 1) * sizeof(*b));
			b[n].name = name;
			b[n].path = path;
			b[n].legacy = legacy;
			n++;
		} else {
			free(name);
			free(path);
		}
	}
	closedir(d);
	free(dir);
	if (n)
		qsort(b, (size_t)n, sizeof(*b), natural_cmp);
	*out = b;
	return n;
}

char *backups_last(const struct vm_ctx *ctx)
{
	char *link = vm_host_path(ctx, "backups/LAST");
	char buf[PATH_MAX];
	ssize_t n = readlink(link, buf, sizeof(buf) - 1);

	free(link);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (str_ends_with(buf, SUFFIX))
		buf[n - (ssize_t)strlen(SUFFIX)] = '\0';
	/* the link is ours: a plain name in backups/ */
	return name_is_valid(buf) ? xstrdup(buf) : NULL;
}

char *backups_next_name(const struct backup *b, int n)
{
	unsigned long long next = 0;
	int i;

	for (i = 0; i < n; i++) {
		const char *s = b[i].name;
		char *end;
		unsigned long long v;

		if (s[0] != 'S' || !isdigit((unsigned char)s[1]))
			continue;
		v = strtoull(s + 1, &end, 10);
		if (!*end && v + 1 > next)
			next = v + 1;
	}
	return xasprintf("S%llu", next);
}

const struct backup *backups_find(const struct vm_ctx *ctx,
				  const struct backup *b, int n,
				  const char *name)
{
	char *last = NULL;
	const struct backup *hit = NULL;
	int i;

	if (!strcmp(name, "LAST")) {
		last = backups_last(ctx);
		if (!last)
			return NULL;
		name = last;
	}
	for (i = 0; i < n && !hit; i++)
		if (!strcmp(b[i].name, name))
			hit = &b[i];
	free(last);
	return hit;
}

int backups_set_last(const struct vm_ctx *ctx, const struct backup *b)
{
	char *link = vm_host_path(ctx, "backups/LAST");
	const char *base = strrchr(b->path, '/');
	int r = fs_symlink_replace(base ? base + 1 : b->path, link);

	free(link);
	return r;
}
