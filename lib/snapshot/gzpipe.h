/*
 * A gzip program (pigz) in a process of ours, joined to libarchive by a
 * pipe: started through proc_spawn like every other child, so it has
 * default signal dispositions, no fd of ours but its stdin and stdout,
 * and is killed if vm dies.
 */
#ifndef VM_GZPIPE_H
#define VM_GZPIPE_H

#include <stdint.h>
#include <sys/types.h>

#include "util/str.h"

struct gzpipe {
	pid_t pid;	/* the program, or 0 */
	int fd;		/* our end of the pipe, or -1 */
	int src;	/* inflate: the archive, the program's stdin, or -1 */
	int errfd;	/* the program's stderr (read end), or -1 */
};

#define GZPIPE_INIT { 0, -1, -1, -1 }

/*
 * Inflate the file at path with `prog -d -q`: read the stream from
 * g->fd.  The file is opened here (never through a symlink).  Returns 0
 * or -errno (-ENOENT: no such program).
 */
int gzpipe_inflate(const char *prog, const char *path, struct gzpipe *g);

/*
 * Deflate into out_fd with `prog -LEVEL`: write the stream to g->fd.
 * out_fd stays ours.  Returns 0 or -errno.
 */
int gzpipe_deflate(const char *prog, int level, int out_fd,
		   struct gzpipe *g);

/* Inflate: compressed bytes the program has read so far. */
uint64_t gzpipe_consumed(const struct gzpipe *g);

/*
 * Close our end of the pipe and wait (bounded) for the program; an
 * inflating one is first read to its end (a tar reader stops at the
 * archive's end marker), so that it checks the stream's trailer: only
 * an exit status of 0 is success.  Returns 0, -EIO with the
 * reason in err when it failed (the first line of what it said, which
 * is never printed: the caller reports once), -EINTR when vm was interrupted,
 * -ETIMEDOUT.  The program is gone either way; gzpipe_consumed() still
 * answers until gzpipe_release().
 */
int gzpipe_finish(struct gzpipe *g, struct strbuf *err);

/* Close every fd and end the program if it still runs (after a failure). */
void gzpipe_release(struct gzpipe *g);

#endif
