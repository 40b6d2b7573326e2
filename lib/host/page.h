/* The web page of `vm serve`: its few files, compiled in. */
#ifndef VM_HOST_PAGE_H
#define VM_HOST_PAGE_H

#include <stddef.h>

struct page_file {
	const char *path;	/* "/", "/app.js", ... */
	const char *type;	/* its Content-Type */
	const char *body;
	size_t len;
};

/* The file served at path, or NULL. */
const struct page_file *page_find(const char *path);

#endif
