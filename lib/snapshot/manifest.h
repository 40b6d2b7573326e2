/*
 * A snapshot's MANIFEST: what every file it restores to holds, and for
 * disks, the digest of every block, so that a snapshot can store only
 * the blocks that differ from its parent's and a restore can prove each
 * block of the result.  Pure: text in, text out, no files.
 *
 *   HEX SIZE NAME                 a file: its size, its digest
 *   blocks NAME BSIZE TOKEN...    a disk's blocks, in order
 *   parent NAME STATE             the snapshot this one builds on
 *
 * A TOKEN is a block's SHA-256 in hex, zN for N blocks that read as
 * zeros, or (with a parent) =N for N blocks the same as the parent's
 * blocks at the same places, so that the MANIFEST of a small change is
 * small whatever the disk's size.  A block-stored file's HEX is the
 * SHA-256 of its TOKEN text with no =N: digests and zN only, the text
 * of a snapshot without parent.
 * STATE, the digest of what a snapshot restores to, is the SHA-256 of
 * the MANIFEST text without its parent line and without the CHAIN file
 * (which names the parent): folding a parent into its child changes how
 * the child is stored, never its state, so grandchildren stay valid.
 */
#ifndef VM_MANIFEST_H
#define VM_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/sha256.h"
#include "util/str.h"

/* The qcow2 cluster size: a guest's write of one cluster is one block. */
#define MANIFEST_BLOCK (64u << 10)
/* What a reader takes: a hostile archive cannot make us allocate more. */
#define MANIFEST_MAX (256u << 20)
/* The files of one snapshot are a few dozen (disks, images, settings). */
#define MANIFEST_MAX_FILES 64
/*
 * Block digests of one snapshot: 16 TiB of disk at 64 KiB blocks (8 GiB
 * of address space, touched only where blocks are stored); @backup
 * refuses disks larger than that in all, so it never writes a snapshot
 * a restore refuses.
 */
#define MANIFEST_MAX_BLOCKS (1u << 28)

struct mf_file {
	char *name;
	uint64_t size;
	char hex[65];
	bool blocks;		/* stored by blocks: blk holds nblk digests */
	uint32_t bsize;
	size_t nblk;
	unsigned char (*blk)[32];	/* all zero bytes: a block of zeros */
	/* parsed =N runs whose digests are still the parent's to give */
	struct mf_run {
		size_t start, n;
	} *inherit;
	size_t ninherit;
};

struct manifest {
	struct mf_file *f;
	size_t n;
	char *parent;		/* NULL: a full snapshot */
	char parent_state[65];
};

void manifest_init(struct manifest *m);
void manifest_release(struct manifest *m);

/* Add a file (copied name); its blocks, when any, are set by the caller. */
struct mf_file *manifest_add(struct manifest *m, const char *name,
			     uint64_t size, const char *hex);
const struct mf_file *manifest_find(const struct manifest *m,
				    const char *name);

/* Blocks of a file of size bytes, and the length of block i. */
size_t manifest_nblocks(uint64_t size, uint32_t bsize);
uint32_t manifest_block_len(uint64_t size, uint32_t bsize, size_t i);

/* Set f->hex from f's block digests (the TOKEN text's SHA-256). */
int manifest_seal_blocks(struct mf_file *f);

/*
 * The text, with the parent line when m has a parent.  parent: the
 * parent's MANIFEST, whose blocks the text refers to (=N) where m's are
 * the same; NULL writes every digest.  Returns 0, or -EINVAL when m is
 * not resolved (see manifest_resolve).
 */
int manifest_format(const struct manifest *m, const struct manifest *parent,
		    struct strbuf *out);

/* STATE (see above) into hex.  Returns 0, -EIO, or -EINVAL (m not
 * resolved). */
int manifest_state(const struct manifest *m, char hex[65]);

/*
 * What a SEAL (snapshot/seal.h) covers: the digest of the MANIFEST's
 * lines but CHAIN's and SEAL's: TS, DESCRIPTION and every file with its
 * blocks, so a seal holds for exactly this content.
 */
int manifest_seal_digest(const struct manifest *m, char hex[65]);

/*
 * Parse MANIFEST text.  Every line is checked: hex digits, sizes, the
 * block count against the size, a block-stored file's HEX against its
 * tokens, one line per name.  A file with =N tokens is checked by
 * manifest_resolve(), which must follow before m is used.  Returns 0 or
 * -EINVAL with err in one line.
 */
int manifest_parse(const char *text, size_t len, struct manifest *m,
		   struct strbuf *err);

/* Whether every block of m is known: no =N of its parent's left. */
bool manifest_resolved(const struct manifest *m);

/*
 * Give m's =N blocks the digests of parent (the MANIFEST of the snapshot
 * m names as its parent, resolved), then check each such file's HEX:
 * a parent that is not the one m was written on gives other digests
 * and is caught, unless its blocks there are the same.  Returns 0 or
 * -EINVAL with err in one line.
 */
int manifest_resolve(struct manifest *m, const struct manifest *parent,
		     struct strbuf *err);

/* Whether two digests of blocks are the same, and whether one is zeros. */
bool manifest_block_zero(const unsigned char d[32]);

/*
 * Block digests of a file as its bytes arrive in order of offset: gaps
 * read as zeros when pad, else (a stored delta) each block fed must be
 * whole and gaps are blocks not stored.  seen[i] says block i was fed.
 */
struct blkhash {
	uint64_t size;
	uint32_t bsize;
	bool pad;
	size_t nblk, cur;
	uint64_t filled;	/* bytes of block cur fed so far */
	bool open, nonzero;
	struct sha256 sha;
	unsigned char (*blk)[32];
	bool *seen;
	int err;
};

void blkhash_init(struct blkhash *h, uint64_t size, uint32_t bsize, bool pad);
/* data NULL: len zero bytes.  Returns 0, -EINVAL (not in order, or a
 * partial block of a delta) or -EIO. */
int blkhash_feed(struct blkhash *h, uint64_t off, const void *data,
		 size_t len);
int blkhash_finish(struct blkhash *h);
void blkhash_release(struct blkhash *h);

#endif
