/*
 * Incremental snapshots in lib/snapshot and lib/manifest: chains of 1
 * to 6 with random writes between them, each restore compared byte for
 * byte with the disk as it was; one byte changed; a disk that shrank,
 * grew or was replaced; zeros written over data (holes again); a
 * damaged ancestor; a parent replaced by another of the same name; the
 * MANIFEST's own checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/fsutil.h"
#include "snapshot/manifest.h"
#include "snapshot/snapshot.h"
#include "util/str.h"

struct t {
	char dir[64];
	char *disk, *state;
	struct manifest m[8];	/* MANIFEST of snapshot i */
	char st[8][65];
	char *snap[8];
	unsigned seed;
};

static unsigned rnd(struct t *t)
{
	t->seed = t->seed * 1103515245u + 12345u;
	return t->seed >> 8;
}

static void setup_t(struct t *t, unsigned seed)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_increment.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	t->disk = xasprintf("%s/disk", t->dir);
	t->seed = seed;
}

static void teardown_t(struct t *t)
{
	int i;

	for (i = 0; i < 8; i++) {
		manifest_release(&t->m[i]);
		free(t->snap[i]);
	}
	fs_rm_rf(t->dir);
	free(t->disk);
}

/* Random bytes at random places: n writes of up to max bytes. */
static void scribble(struct t *t, uint64_t size, int n, size_t max)
{
	int fd = open(t->disk, O_WRONLY | O_CREAT, 0600), i;
	char *buf = xmalloc(max);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	for (i = 0; i < n; i++) {
		size_t len = 1 + rnd(t) % max, k;
		uint64_t off = ((uint64_t)rnd(t) << 8 | rnd(t) % 256) %
			       (size - len);

		for (k = 0; k < len; k++)
			buf[k] = (char)(rnd(t) | 1);
		assert_int_equal(pwrite(fd, buf, len, (off_t)off),
				 (ssize_t)len);
	}
	close(fd);
	free(buf);
}

/*
 * Snapshot i of t->disk, on snapshot i - 1 when inc, with clean runs
 * said to hold what they held in it; bytes read into *read if not NULL.
 */
static void backup_clean(struct t *t, int i, bool inc,
			 const struct range *clean, size_t nclean,
			 uint64_t *read)
{
	struct strbuf err = STRBUF_INIT;
	struct snap_file f = { .name = "disk-0.img", .path = t->disk,
			       .clean = clean, .nclean = nclean };
	struct snap_wopts o;
	char name[16];	/* "S" and any int */
	int r;

	memset(&o, 0, sizeof(o));
	o.description = "t";
	o.ts = 1;
	o.level = 1;
	snprintf(name, sizeof(name), "S%d", i - 1);
	if (inc) {
		o.parent = name;
		o.parent_m = &t->m[i - 1];
	}
	t->snap[i] = xasprintf("%s/S%d.tar.gz", t->dir, i);
	r = snap_write_opts(t->snap[i], &f, 1, &o, &err);
	if (r)
		fail_msg("backup %d: %s", i, err.buf);
	if (read)
		*read = o.read;
	memcpy(t->st[i], o.state, 65);
	/* what it wrote is what a reader finds */
	{
		struct snap_base b = { name, &t->m[i - 1 < 0 ? 0 : i - 1], "" };

		memcpy(b.state, t->st[i - 1 < 0 ? 0 : i - 1], 65);
		r = snap_apply(t->snap[i], NULL, inc ? &b : NULL, &t->m[i],
			       NULL, 0, NULL, &err);
	}
	if (r)
		fail_msg("verify %d: %s", i, err.buf);
	strbuf_release(&err);
}

static void backup(struct t *t, int i, bool inc)
{
	backup_clean(t, i, inc, NULL, 0, NULL);
}

/* Restore snapshots from..to into dir; returns 0 or the error. */
static int restore(struct t *t, int from, int to, const char *dir,
		   struct strbuf *err)
{
	struct manifest prev, cur;
	char name[16];
	int i, r = 0;

	fs_rm_rf(dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	manifest_init(&prev);
	for (i = from; i <= to && !r; i++) {
		struct snap_base b = { name, &prev, "" };

		snprintf(name, sizeof(name), "S%d", i - 1);
		manifest_state(&prev, b.state);
		r = snap_apply(t->snap[i], dir, i == from ? NULL : &b, &cur,
			       NULL, 0, NULL, err);
		manifest_release(&prev);
		prev = cur;
	}
	manifest_release(&prev);
	return r;
}

static void assert_same(const char *a, const char *b)
{
	struct strbuf x = STRBUF_INIT, y = STRBUF_INIT;

	assert_int_equal(fs_read_file(a, 1 << 28, &x), 0);
	assert_int_equal(fs_read_file(b, 1 << 28, &y), 0);
	assert_int_equal(x.len, y.len);
	if (x.len && memcmp(x.buf, y.buf, x.len))
		fail_msg("%s differs from %s", a, b);
	strbuf_release(&x);
	strbuf_release(&y);
}

static off_t file_size(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

/* Write n bytes of c at off into t->disk. */
static void poke(struct t *t, uint64_t off, size_t n, char c)
{
	int fd = open(t->disk, O_WRONLY);
	char *buf = xmalloc(n);

	assert_true(fd >= 0);
	memset(buf, c, n);
	assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
	free(buf);
}

/*
 * What a dirty bitmap vouches for is taken as the parent's, unread: a
 * change inside a clean run is not seen (so a bitmap must be right, and
 * is trusted only when it counts from the parent), while everything
 * else is read and compared; a clean block that is now a hole is zeros.
 */
static void test_clean_runs_keep_the_parents_blocks(void **state)
{
	struct strbuf err = STRBUF_INIT;
	const uint64_t B = 64 << 10;
	/* blocks 0..15 are said clean but block 3; 16..31 are not */
	const struct range clean[] = { { 0, 3 * B }, { 4 * B, 12 * B } };
	char *s0 = NULL, *out, *got;
	uint64_t read = 0;
	struct t t;
	int fd;

	(void)state;
	setup_t(&t, 4242u);
	out = xasprintf("%s/out", t.dir);
	got = xasprintf("%s/disk-0.img", out);
	scribble(&t, 32 * B, 200, 20000);
	poke(&t, 0, 32 * B, 'a');
	backup(&t, 0, false);
	s0 = xasprintf("%s/s0", t.dir);
	assert_int_equal(fs_copy_file(t.disk, s0, 0600), 0);
	poke(&t, 3 * B, 10, 'b');	/* marked: read, stored */
	poke(&t, 10 * B, 10, 'c');	/* "clean": not read, not stored */
	poke(&t, 20 * B, 10, 'd');	/* not vouched for: read, stored */
	fd = open(t.disk, O_WRONLY);
	assert_true(fd >= 0);
	/* a hole where the bitmap says clean: taken as the zeros it is */
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   (off_t)(6 * B), (off_t)B), 0);
	close(fd);
	backup_clean(&t, 1, true, clean, 2, &read);
	/* the first pass read 17 blocks (the hole is zeros, unread), the
	 * second the 2 of data that changed */
	assert_int_equal(read, 17 * B + 2 * B);
	if (restore(&t, 0, 1, out, &err))
		fail_msg("restore S1: %s", err.buf);
	{
		struct strbuf x = STRBUF_INIT;

		assert_int_equal(fs_read_file(got, 1 << 28, &x), 0);
		assert_int_equal(x.buf[3 * B], 'b');
		assert_int_equal(x.buf[10 * B], 'a');
		assert_int_equal(x.buf[20 * B], 'd');
		assert_int_equal(x.buf[6 * B], 0);
		assert_int_equal(x.buf[7 * B], 'a');
		strbuf_release(&x);
	}
	free(s0);
	free(got);
	free(out);
	teardown_t(&t);
	strbuf_release(&err);
}

/* Chains of 1 to 6: every snapshot restores to its disk exactly. */
static void test_chains(void **state)
{
	struct strbuf err = STRBUF_INIT;
	int len, i;

	(void)state;
	for (len = 1; len <= 6; len++) {
		struct t t;
		char *copy[8] = { NULL }, *out;

		setup_t(&t, (unsigned)len * 7919u);
		out = xasprintf("%s/out", t.dir);
		for (i = 0; i < len; i++) {
			scribble(&t, 3u << 20, i ? 8 : 400, i ? 2000 : 20000);
			copy[i] = xasprintf("%s/copy%d", t.dir, i);
			assert_int_equal(fs_copy_file(t.disk, copy[i], 0600), 0);
			backup(&t, i, i > 0);
		}
		for (i = 0; i < len; i++) {
			char *got = xasprintf("%s/disk-0.img", out);

			strbuf_reset(&err);
			if (restore(&t, 0, i, out, &err))
				fail_msg("restore S%d of %d: %s", i, len, err.buf);
			assert_same(got, copy[i]);
			free(got);
		}
		/* an incremental one stores far less than the full one */
		if (len > 1 && file_size(t.snap[1]) * 2 > file_size(t.snap[0]))
			fail_msg("S1 is %lld bytes, S0 %lld",
				 (long long)file_size(t.snap[1]),
				 (long long)file_size(t.snap[0]));
		for (i = 0; i < len; i++)
			free(copy[i]);
		free(out);
		teardown_t(&t);
	}
	strbuf_release(&err);
}

/* One byte; zeros over data; a disk that grew, then shrank, then another. */
static void test_edges(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct t t;
	char *out, *got, *copy;
	int fd, i;

	(void)state;
	setup_t(&t, 42);
	out = xasprintf("%s/out", t.dir);
	got = xasprintf("%s/out/disk-0.img", t.dir);
	copy = xasprintf("%s/copy", t.dir);
	scribble(&t, (1u << 20) + 4097, 30, 50000);	/* not whole blocks */
	backup(&t, 0, false);
	for (i = 1; i <= 5; i++) {
		fd = open(t.disk, O_RDWR);
		assert_true(fd >= 0);
		switch (i) {
		case 1:	/* one byte */
			assert_int_equal(pwrite(fd, "\x5a", 1, 70000), 1);
			break;
		case 2:	/* zeros over data: the block becomes a hole again */
		{
			char *z = xcalloc(1, 1u << 17);

			assert_int_equal(pwrite(fd, z, 1u << 17, 0), 1 << 17);
			free(z);
			break;
		}
		case 3:	/* grew */
			assert_int_equal(ftruncate(fd, (5 << 20) + 3), 0);
			assert_int_equal(pwrite(fd, "end", 3, 5 << 20), 3);
			break;
		case 4:	/* shrank, to the middle of a block */
			assert_int_equal(ftruncate(fd, 300001), 0);
			break;
		case 5:	/* replaced by another disk */
			close(fd);
			unlink(t.disk);
			t.seed = 99;
			scribble(&t, 2u << 20, 20, 30000);
			fd = open(t.disk, O_RDONLY);
			break;
		}
		close(fd);
		assert_int_equal(fs_copy_file(t.disk, copy, 0600), 0);
		backup(&t, i, true);
		strbuf_reset(&err);
		if (restore(&t, 0, i, out, &err))
			fail_msg("restore S%d: %s", i, err.buf);
		assert_same(got, copy);
		unlink(copy);
	}
	/* the one-byte change stored one block (of random bytes) */
	if (file_size(t.snap[1]) > 65536 + 8192)
		fail_msg("one byte took %lld bytes", (long long)file_size(t.snap[1]));
	/* zeros written over data are a hole once restored */
	assert_int_equal(restore(&t, 0, 2, out, &err), 0);
	fd = open(got, O_RDONLY);
	assert_true(fd >= 0);
	if (lseek(fd, 0, SEEK_DATA) < (off_t)(1u << 17))
		fail_msg("data at %lld: the zeroed blocks are not a hole",
			 (long long)lseek(fd, 0, SEEK_DATA));
	close(fd);
	free(out);
	free(got);
	free(copy);
	teardown_t(&t);
	strbuf_release(&err);
}

/* A damaged ancestor and a replaced parent are named; nothing passes. */
static void test_broken_chains(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct t t;
	char *out, *keep;
	FILE *fp;
	long size;
	int c;

	(void)state;
	setup_t(&t, 7);
	out = xasprintf("%s/out", t.dir);
	keep = xasprintf("%s/keep", t.dir);
	scribble(&t, 2u << 20, 30, 30000);
	backup(&t, 0, false);
	scribble(&t, 2u << 20, 3, 30000);
	backup(&t, 1, true);
	scribble(&t, 2u << 20, 3, 30000);
	backup(&t, 2, true);
	/* no parent given: refused, named */
	assert_int_equal(restore(&t, 2, 2, out, &err), -ENOENT);
	if (!strstr(err.buf, "needs its parent S1"))
		fail_msg("no parent: %s", err.buf);
	/* S1 replaced by a snapshot of another disk, same name */
	assert_int_equal(fs_copy_file(t.snap[1], keep, 0600), 0);
	unlink(t.snap[1]);
	free(t.snap[1]);
	manifest_release(&t.m[1]);
	scribble(&t, 2u << 20, 3, 30000);
	backup(&t, 1, true);
	strbuf_reset(&err);
	assert_int_not_equal(restore(&t, 0, 2, out, &err), 0);
	if (!strstr(err.buf, "not the snapshot it was made from"))
		fail_msg("replaced parent: %s", err.buf);
	/* the right S1 back, then damaged in its middle */
	unlink(t.snap[1]);
	assert_int_equal(rename(keep, t.snap[1]), 0);
	strbuf_reset(&err);
	assert_int_equal(restore(&t, 0, 2, out, &err), 0);
	fp = fopen(t.snap[1], "r+b");
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	fseek(fp, size / 2, SEEK_SET);
	c = fgetc(fp);
	fseek(fp, size / 2, SEEK_SET);
	fputc(c ^ 0x55, fp);
	fclose(fp);
	strbuf_reset(&err);
	assert_int_not_equal(restore(&t, 0, 2, out, &err), 0);
	assert_true(err.len > 0);
	assert_null(strchr(err.buf, '\n'));
	free(out);
	free(keep);
	teardown_t(&t);
	strbuf_release(&err);
}

static void test_manifest_text(void **state)
{
	static const char *const bad[] = {
		"abc 1 TS\n",
		"blocks disk-0.img 65536 z1\n",	/* no file line */
		"parent S0 123\n",
		"parent ../x 0000000000000000000000000000000000000000000000000000000000000001\n",
		NULL,
	};
	struct strbuf err = STRBUF_INIT, text = STRBUF_INIT;
	struct manifest m, back;
	struct mf_file *f;
	char a[65], b[65];
	size_t i;

	(void)state;
	manifest_init(&m);
	f = manifest_add(&m, "disk-0.img", 3 * 65536 + 5, NULL);
	f->blocks = true;
	f->bsize = 65536;
	f->nblk = manifest_nblocks(f->size, f->bsize);
	assert_int_equal(f->nblk, 4);
	f->blk = xcalloc(4, 32);
	memset(f->blk[2], 7, 32);
	assert_int_equal(manifest_seal_blocks(f), 0);
	m.parent = xstrdup("S0");
	memset(m.parent_state, 'a', 64);
	assert_int_equal(manifest_format(&m, NULL, &text), 0);
	if (!strstr(text.buf, " z2 0707") || !strstr(text.buf, " z1\nparent S0 aaaa"))
		fail_msg("text: %s", text.buf);
	assert_int_equal(manifest_parse(text.buf, text.len, &back, &err), 0);
	assert_int_equal(manifest_state(&m, a), 0);
	assert_int_equal(manifest_state(&back, b), 0);
	assert_string_equal(a, b);
	assert_string_equal(back.parent, "S0");
	/* the state does not depend on the parent */
	free(back.parent);
	back.parent = NULL;
	assert_int_equal(manifest_state(&back, b), 0);
	assert_string_equal(a, b);
	manifest_release(&back);
	/* a token changed: the file's digest no longer matches */
	text.buf[strstr(text.buf, " z2 07") - text.buf + 4] = '8';
	assert_int_equal(manifest_parse(text.buf, text.len, &back, &err),
			 -EINVAL);
	if (!strstr(err.buf, "does not match its blocks"))
		fail_msg("token: %s", err.buf);
	for (i = 0; bad[i]; i++) {
		strbuf_reset(&err);
		if (!manifest_parse(bad[i], strlen(bad[i]), &back, &err))
			fail_msg("taken: %s", bad[i]);
		assert_null(strchr(err.buf, '\n'));
	}
	manifest_release(&m);
	strbuf_release(&err);
	strbuf_release(&text);
}

/* A disk of n blocks (the last one len bytes) with digests d[i] (0: zeros). */
static struct mf_file *disk_of(struct manifest *m, size_t n, uint32_t len,
			       const int *d)
{
	struct mf_file *f = manifest_add(m, "disk-0.img",
					 (uint64_t)(n - 1) * 65536 + len, NULL);
	size_t i;

	f->blocks = true;
	f->bsize = 65536;
	f->nblk = n;
	f->blk = xcalloc(n, 32);
	for (i = 0; i < n; i++)
		memset(f->blk[i], d[i], 32);
	assert_int_equal(manifest_seal_blocks(f), 0);
	return f;
}

/*
 * The text of a small change is small: the blocks that are the parent's
 * are =N, parsed as unknown until the parent gives them, and the STATE
 * is that of the whole list.
 */
static void test_manifest_refers_to_parent(void **state)
{
	static const int pd[] = { 1, 2, 0, 3, 4, 5 }, cd[] = { 1, 9, 0, 3, 4, 5 };
	struct strbuf err = STRBUF_INIT, text = STRBUF_INIT, t2 = STRBUF_INIT;
	struct manifest pm, m, back, other;
	char a[65], b[65];

	(void)state;
	manifest_init(&pm);
	manifest_init(&m);
	manifest_init(&other);
	disk_of(&pm, 6, 65536, pd);
	disk_of(&m, 6, 65536, cd);
	m.parent = xstrdup("S0");
	assert_int_equal(manifest_state(&pm, m.parent_state), 0);
	assert_int_equal(manifest_format(&m, &pm, &text), 0);
	/* one digest written, zeros as zeros, the rest the parent's */
	if (!strstr(text.buf, " 65536 =1 0909") || !strstr(text.buf, " z1 =3\nparent S0 "))
		fail_msg("text: %s", text.buf);
	assert_int_equal(manifest_parse(text.buf, text.len, &back, &err), 0);
	assert_false(manifest_resolved(&back));
	/* nothing reads an unresolved MANIFEST */
	assert_int_equal(manifest_state(&back, b), -EINVAL);
	assert_int_equal(manifest_format(&back, NULL, &t2), -EINVAL);
	assert_int_equal(manifest_resolve(&back, &pm, &err), 0);
	assert_true(manifest_resolved(&back));
	assert_int_equal(manifest_state(&m, a), 0);
	assert_int_equal(manifest_state(&back, b), 0);
	assert_string_equal(a, b);
	/* its STATE is that of the same blocks written out */
	strbuf_reset(&t2);
	assert_int_equal(manifest_format(&m, NULL, &t2), 0);
	assert_null(strchr(t2.buf, '='));
	manifest_release(&back);

	/* a parent whose blocks differ where they are taken: caught */
	{
		static const int od[] = { 1, 2, 0, 3, 7, 5 };

		disk_of(&other, 6, 65536, od);
		assert_int_equal(manifest_parse(text.buf, text.len, &back, &err), 0);
		strbuf_reset(&err);
		assert_int_equal(manifest_resolve(&back, &other, &err), -EINVAL);
		assert_string_equal(err.buf, "MANIFEST: the digest of disk-0.img does not match its blocks");
		/* and it stays unresolved, its HEX the one it was written with */
		assert_false(manifest_resolved(&back));
		assert_string_equal(back.f[0].hex, m.f[0].hex);
		assert_int_equal(manifest_state(&back, b), -EINVAL);
		manifest_release(&back);
		manifest_release(&other);
	}
	/* a parent without the disk, or shorter: refused */
	{
		static const int sd[] = { 1, 2, 0, 3, 4, 5 };

		manifest_init(&other);
		assert_int_equal(manifest_parse(text.buf, text.len, &back, &err), 0);
		strbuf_reset(&err);
		assert_int_equal(manifest_resolve(&back, &other, &err), -EINVAL);
		assert_string_equal(err.buf, "MANIFEST: disk-0.img refers to blocks its parent S0 does not have");
		manifest_release(&back);
		/* the same blocks, but the parent's last is shorter */
		disk_of(&other, 6, 4096, sd);
		assert_int_equal(manifest_parse(text.buf, text.len, &back, &err), 0);
		strbuf_reset(&err);
		assert_int_equal(manifest_resolve(&back, &other, &err), -EINVAL);
		assert_string_equal(err.buf, "MANIFEST: disk-0.img refers to blocks its parent S0 does not have");
		manifest_release(&back);
		manifest_release(&other);
	}
	/* a grown disk: its last block is not the parent's short one */
	{
		static const int gd[] = { 1, 2, 0, 3, 4, 5, 6 };

		manifest_init(&other);
		disk_of(&other, 7, 65536, gd);
		other.parent = xstrdup("S0");
		strbuf_reset(&t2);
		manifest_release(&pm);
		disk_of(&pm, 6, 100, pd);
		assert_int_equal(manifest_format(&other, &pm, &t2), 0);
		if (!strstr(t2.buf, " 65536 =2 z1 =2 0505"))
			fail_msg("grown: %s", t2.buf);
		manifest_release(&other);
	}
	/* =N needs a parent line, and stays within the file */
	{
		char *no_parent = xstrdup(text.buf);
		char *over = xstrdup(text.buf);

		*strstr(no_parent, "parent S0") = '\0';
		strbuf_reset(&err);
		assert_int_equal(manifest_parse(no_parent, strlen(no_parent), &back, &err),
				 -EINVAL);
		assert_non_null(strstr(err.buf, "do not match its size"));
		strstr(over, " =3\n")[2] = '4';
		strbuf_reset(&err);
		assert_int_equal(manifest_parse(over, strlen(over), &back, &err),
				 -EINVAL);
		free(no_parent);
		free(over);
	}
	manifest_release(&pm);
	manifest_release(&m);
	strbuf_release(&err);
	strbuf_release(&text);
	strbuf_release(&t2);
}

/* A hostile MANIFEST: a bounded number of files and of blocks. */
static void test_manifest_bounds(void **state)
{
	struct strbuf text = STRBUF_INIT, err = STRBUF_INIT;
	struct manifest m;
	char zeros[65];
	int i;

	(void)state;
	memset(zeros, '0', 64);
	zeros[64] = '\0';
	/* the 65th file is refused: no line count makes the lookups long */
	for (i = 0; i < 200000; i++)
		strbuf_addf(&text, "%s 1 f%d\n", zeros, i);
	assert_int_equal(manifest_parse(text.buf, text.len, &m, &err),
			 -EINVAL);
	assert_string_equal(err.buf, "MANIFEST names more than 64 files");
	/* a claimed size whose blocks would not fit in memory */
	strbuf_reset(&text);
	strbuf_reset(&err);
	strbuf_addf(&text, "%s %llu disk-0.img\nblocks disk-0.img 4096 z%llu\n",
		    zeros, 1ULL << 52, 1ULL << 40);
	assert_int_equal(manifest_parse(text.buf, text.len, &m, &err),
			 -EINVAL);
	assert_string_equal(err.buf, "MANIFEST: disk-0.img has more blocks than vm holds for one snapshot (268435456)");
	/* a million runs of the parent's blocks, one block each: parsed in
	 * linear time, not a copy of all runs so far for every new one */
	strbuf_reset(&text);
	strbuf_reset(&err);
	strbuf_addf(&text, "%s %llu disk-0.img\nblocks disk-0.img 65536", zeros,
		    (unsigned long long)(2u << 20) * 65536);
	for (i = 0; i < (1 << 20); i++)
		strbuf_addstr(&text, " =1 z1");
	strbuf_addf(&text, "\nparent S0 %s\n", zeros);
	assert_int_equal(manifest_parse(text.buf, text.len, &m, &err), 0);
	assert_int_equal(m.f[0].ninherit, 1 << 20);
	assert_false(manifest_resolved(&m));
	manifest_release(&m);
	strbuf_release(&text);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_runs_keep_the_parents_blocks),
		cmocka_unit_test(test_manifest_text),
		cmocka_unit_test(test_manifest_refers_to_parent),
		cmocka_unit_test(test_manifest_bounds),
		cmocka_unit_test(test_chains),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_broken_chains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
