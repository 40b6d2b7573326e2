/*
 * The kernel a bzImage carries, uncompressed, for QEMU's PVH boot.
 *
 * A bzImage decompresses itself before Linux starts; under TCG that is
 * the slowest part of a rescue's boot (Debian's xz kernel: about 3 s of
 * the guest's CPU, docs/benchmarks.md).  Booted as the ELF it holds,
 * through the PVH entry point QEMU finds in its notes, the kernel runs at
 * once.  The payload is found by the boot protocol's header fields and
 * decompressed with libarchive's filters (gzip, xz, lzma, bzip2, lz4,
 * zstd: whatever the kernel was built with).
 */
#include "qemu/kernel.h"

#include <archive.h>
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "util/fsutil.h"

/* Larger than any kernel, compressed or not. */
#define BZIMAGE_MAX (64u << 20)
#define VMLINUX_MAX (512u << 20)

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int kernel_payload(const unsigned char *buf, size_t size, size_t *off,
		   size_t *len)
{
	size_t setup, o, l;
	unsigned version;

	/* the real-mode header: "HdrS" at 0x202, payload fields to 0x250 */
	if (size < 0x250 || memcmp(buf + 0x202, "HdrS", 4))
		return -ENOEXEC;
	version = (unsigned)buf[0x206] | (unsigned)buf[0x207] << 8;
	if (version < 0x208)
		return -ENOEXEC;
	setup = buf[0x1f1] ? buf[0x1f1] : 4;
	setup = (setup + 1) * 512;
	o = le32(buf + 0x248);
	l = le32(buf + 0x24c);
	if (setup > size || o > size - setup || l == 0 ||
	    l > size - setup - o)
		return -ENOEXEC;
	*off = setup + o;
	*len = l;
	return 0;
}

/* A Xen note of the PVH entry among the notes in buf[off, off+len). */
static bool notes_pvh(const unsigned char *buf, size_t off, size_t len)
{
	while (len >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr n;
		size_t name, desc, step;

		memcpy(&n, buf + off, sizeof(n));
		name = ((size_t)n.n_namesz + 3) & ~(size_t)3;
		desc = ((size_t)n.n_descsz + 3) & ~(size_t)3;
		if (name > len - sizeof(n) || desc > len - sizeof(n) - name)
			return false;
		if (n.n_namesz == 4 && !memcmp(buf + off + sizeof(n), "Xen", 4) &&
		    n.n_type == XEN_ELFNOTE_PHYS32_ENTRY && n.n_descsz >= 4)
			return true;
		step = sizeof(n) + name + desc;
		off += step;
		len -= step;
	}
	return false;
}

bool kernel_elf_pvh(const unsigned char *buf, size_t size)
{
	Elf64_Ehdr eh;
	bool pvh = false;
	size_t i;

	if (size < sizeof(eh))
		return false;
	memcpy(&eh, buf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_type != ET_EXEC ||
	    eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    eh.e_phoff > size ||
	    eh.e_phnum > (size - eh.e_phoff) / sizeof(Elf64_Phdr))
		return false;
	for (i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, buf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		/* every part of the kernel is there: nothing cut short */
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
			return false;
		if (ph.p_type == PT_NOTE &&
		    notes_pvh(buf, (size_t)ph.p_offset, (size_t)ph.p_filesz))
			pvh = true;
	}
	return pvh;
}

/* Decompress buf into out with whichever filter libarchive recognises. */
static int decompress(const unsigned char *buf, size_t size,
		      struct strbuf *out, struct strbuf *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char chunk[1 << 16];
	int r = 0;

	if (!a)
		return -ENOMEM;
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_memory(a, buf, size) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		r = -ENOTSUP;
		goto out;
	}
	/* the raw format takes anything: only a real filter decompresses */
	if (archive_filter_count(a) < 2 ||
	    archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
		r = -ENOTSUP;
		goto out;
	}
	for (;;) {
		la_ssize_t n = archive_read_data(a, chunk, sizeof(chunk));

		if (n == 0)
			break;
		if (n < 0) {
			const char *why = archive_error_string(a);

			strbuf_addstr(err, why ? why : "cannot decompress");
			r = -EIO;
			goto out;
		}
		if (out->len + (size_t)n > VMLINUX_MAX) {
			strbuf_addstr(err, "the kernel is larger than 512 MiB");
			r = -EFBIG;
			goto out;
		}
		strbuf_add(out, chunk, (size_t)n);
	}
out:
	archive_read_free(a);
	return r;
}

int kernel_extract_pvh(const char *bzimage, const char *dest,
		       struct strbuf *err)
{
	struct strbuf img = STRBUF_INIT, elf = STRBUF_INIT, first = STRBUF_INIT;
	const unsigned char *p;
	size_t off, len;
	int r;

	r = fs_read_file(bzimage, BZIMAGE_MAX, &img);
	if (r) {
		strbuf_addf(err, "%s: %s", bzimage, fs_read_strerror(r));
		goto out;
	}
	r = kernel_payload((const unsigned char *)img.buf, img.len, &off,
			   &len);
	if (r) {
		r = -ENOTSUP;
		goto out;
	}
	/*
	 * The kernel's build appends the decompressed size (4 bytes) to the
	 * payload, which the xz and zstd readers take for a broken stream:
	 * the payload without it first, then all of it.
	 */
	p = (const unsigned char *)img.buf + off;
	r = len > 4 ? decompress(p, len - 4, &elf, &first) : -ENOTSUP;
	if (r) {
		strbuf_reset(&elf);
		r = decompress(p, len, &elf, err);
	}
	if (r)
		goto out;
	if (!kernel_elf_pvh((const unsigned char *)elf.buf, elf.len)) {
		r = -ENOTSUP;
		goto out;
	}
	r = fs_write_atomic(dest, elf.buf, elf.len, 0644);
	if (r)
		strbuf_addf(err, "%s: %s", dest, strerror(-r));
out:
	strbuf_release(&img);
	strbuf_release(&elf);
	strbuf_release(&first);
	return r;
}
