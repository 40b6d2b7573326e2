/* Unit tests for lib/kernel: a bzImage's payload, PVH notes, extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include <archive.h>
#include <archive_entry.h>

#include "util/fsutil.h"
#include "qemu/kernel.h"
#include "scratch.h"

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* A bzImage header: 2 setup sectors, then payload at off, len bytes. */
static void bz_header(unsigned char *buf, unsigned version, uint32_t off,
		      uint32_t len)
{
	buf[0x1f1] = 2;
	memcpy(buf + 0x202, "HdrS", 4);
	buf[0x206] = (unsigned char)version;
	buf[0x207] = (unsigned char)(version >> 8);
	put32(buf + 0x248, off);
	put32(buf + 0x24c, len);
}

static void test_payload(void **state)
{
	unsigned char buf[4096] = { 0 };
	size_t off, len;

	(void)state;
	bz_header(buf, 0x20f, 100, 200);
	assert_int_equal(kernel_payload(buf, sizeof(buf), &off, &len), 0);
	assert_int_equal(off, 3 * 512 + 100);
	assert_int_equal(len, 200);
	/* setup_sects 0 means 4 */
	buf[0x1f1] = 0;
	assert_int_equal(kernel_payload(buf, sizeof(buf), &off, &len), 0);
	assert_int_equal(off, 5 * 512 + 100);
	/* past the end, too old, not a bzImage, too short */
	bz_header(buf, 0x20f, 100, 4096);
	assert_int_equal(kernel_payload(buf, sizeof(buf), &off, &len),
			 -ENOEXEC);
	bz_header(buf, 0x207, 100, 200);
	assert_int_equal(kernel_payload(buf, sizeof(buf), &off, &len),
			 -ENOEXEC);
	bz_header(buf, 0x20f, 100, 200);
	buf[0x202] = 'X';
	assert_int_equal(kernel_payload(buf, sizeof(buf), &off, &len),
			 -ENOEXEC);
	bz_header(buf, 0x20f, 100, 200);
	assert_int_equal(kernel_payload(buf, 0x240, &off, &len), -ENOEXEC);
}

/*
 * A minimal x86-64 ELF executable: one PT_LOAD and one PT_NOTE holding
 * a Xen note of type note_type.  Returns its size.
 */
static size_t make_elf(unsigned char *buf, size_t size, unsigned note_type)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph[2] = { { 0 } };
	Elf64_Nhdr nh = { 4, 8, note_type };
	size_t notes = sizeof(eh) + sizeof(ph);

	memset(buf, 0, size);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 2;
	ph[0].p_type = PT_NOTE;
	ph[0].p_offset = notes;
	ph[0].p_filesz = sizeof(nh) + 4 + 8;
	ph[1].p_type = PT_LOAD;
	ph[1].p_offset = 512;
	ph[1].p_filesz = size - 512;
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), ph, sizeof(ph));
	memcpy(buf + notes, &nh, sizeof(nh));
	memcpy(buf + notes + sizeof(nh), "Xen", 4);
	put32(buf + notes + sizeof(nh) + 4, 0x1000000);
	memset(buf + 512, 0x90, size - 512);
	return size;
}

static void test_elf_pvh(void **state)
{
	unsigned char buf[2048];
	size_t n;

	(void)state;
	n = make_elf(buf, sizeof(buf), XEN_ELFNOTE_PHYS32_ENTRY);
	assert_true(kernel_elf_pvh(buf, n));
	/* cut short: the PT_LOAD is not all there */
	assert_false(kernel_elf_pvh(buf, n - 1));
	/* another Xen note only */
	n = make_elf(buf, sizeof(buf), 6);
	assert_false(kernel_elf_pvh(buf, n));
	/* not x86-64 */
	n = make_elf(buf, sizeof(buf), XEN_ELFNOTE_PHYS32_ENTRY);
	buf[offsetof(Elf64_Ehdr, e_machine)] = EM_386;
	assert_false(kernel_elf_pvh(buf, n));
	/* a note that claims more than its segment */
	n = make_elf(buf, sizeof(buf), XEN_ELFNOTE_PHYS32_ENTRY);
	put32(buf + sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr) + 4, 4000);
	assert_false(kernel_elf_pvh(buf, n));
	assert_false(kernel_elf_pvh(buf, 10));
}

/* gzip src into dst (a gzip member, as a kernel built with gzip has) */
static size_t gzip(unsigned char *src, size_t n, unsigned char *dst,
		   size_t cap)
{
	z_stream z = { 0 };

	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8,
				      Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = src;
	z.avail_in = (unsigned)n;
	z.next_out = dst;
	z.avail_out = (unsigned)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	deflateEnd(&z);
	return z.total_out;
}

/* xz-compress src into dst with libarchive (the raw format). */
static size_t xz(unsigned char *src, size_t n, unsigned char *dst,
		 size_t cap)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	size_t used = 0;

	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	assert_int_equal(archive_write_add_filter_xz(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, dst, cap, &used),
			 ARCHIVE_OK);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)n);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, src, n), (la_ssize_t)n);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_free(a);
	return used;
}

/* A bzImage around the payload, written to path. */
static void write_bzimage(const char *path, const unsigned char *payload,
			  size_t n)
{
	static unsigned char img[65536];
	size_t setup = 3 * 512;

	memset(img, 0, sizeof(img));
	assert_true(setup + n + 4 <= sizeof(img));
	bz_header(img, 0x20f, 0, (uint32_t)n + 4);
	memcpy(img + setup, payload, n);
	/* the decompressed size a kernel appends to its payload */
	put32(img + setup + n, 2048);
	assert_int_equal(fs_write_atomic(path, img, setup + n + 4, 0644), 0);
}

static void test_extract(void **state)
{
	unsigned char elf[2048], gz[4096];
	struct strbuf err = STRBUF_INIT, got = STRBUF_INIT;
	char *bz = xasprintf("%s/vmlinuz", tmpdir);
	char *out = xasprintf("%s/vmlinux", tmpdir);
	size_t n;

	(void)state;
	make_elf(elf, sizeof(elf), XEN_ELFNOTE_PHYS32_ENTRY);
	n = gzip(elf, sizeof(elf), gz, sizeof(gz));
	write_bzimage(bz, gz, n);
	assert_int_equal(kernel_extract_pvh(bz, out, &err), 0);
	assert_int_equal(fs_read_file(out, 1 << 20, &got), 0);
	assert_int_equal(got.len, sizeof(elf));
	assert_memory_equal(got.buf, elf, sizeof(elf));
	unlink(out);

	/*
	 * xz, as Debian builds its kernels, with more than libarchive's
	 * 64 KiB block of output: the appended size must not cost the last
	 * block
	 */
	{
		static unsigned char big[200000], bigxz[65536];

		make_elf(big, sizeof(big), XEN_ELFNOTE_PHYS32_ENTRY);
		n = xz(big, sizeof(big), bigxz, sizeof(bigxz));
		write_bzimage(bz, bigxz, n);
		assert_int_equal(kernel_extract_pvh(bz, out, &err), 0);
		strbuf_reset(&got);
		assert_int_equal(fs_read_file(out, 1 << 20, &got), 0);
		assert_int_equal(got.len, sizeof(big));
		assert_memory_equal(got.buf, big, sizeof(big));
		unlink(out);
	}

	/* an ELF without the PVH note: boot the bzImage */
	make_elf(elf, sizeof(elf), 6);
	n = gzip(elf, sizeof(elf), gz, sizeof(gz));
	write_bzimage(bz, gz, n);
	assert_int_equal(kernel_extract_pvh(bz, out, &err), -ENOTSUP);
	assert_false(fs_exists(out));

	/* an uncompressed payload, and a file that is no bzImage */
	write_bzimage(bz, elf, 1000);
	assert_int_equal(kernel_extract_pvh(bz, out, &err), -ENOTSUP);
	assert_int_equal(fs_write_atomic(bz, "hello", 5, 0644), 0);
	assert_int_equal(kernel_extract_pvh(bz, out, &err), -ENOTSUP);
	assert_false(fs_exists(out));

	/* a missing file is an error of its own */
	unlink(bz);
	strbuf_reset(&err);
	assert_int_equal(kernel_extract_pvh(bz, out, &err), -ENOENT);
	assert_non_null(strstr(err.buf, "vmlinuz"));

	strbuf_release(&err);
	strbuf_release(&got);
	free(bz);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload),
		cmocka_unit_test(test_elf_pvh),
		cmocka_unit_test(test_extract),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
