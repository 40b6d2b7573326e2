/* A Linux kernel for a direct boot: the ELF inside a bzImage, for PVH. */
#ifndef VM_KERNEL_H
#define VM_KERNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/str.h"

/* The note type of the PVH entry point (Xen's public elfnote.h). */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/*
 * Where a bzImage keeps its compressed kernel (boot protocol 2.08 and
 * later: setup_sects, payload_offset, payload_length): 0 with *off and
 * *len inside buf, or -ENOEXEC when buf is not such a bzImage.
 */
int kernel_payload(const unsigned char *buf, size_t size, size_t *off,
		   size_t *len);

/*
 * Whether buf holds a 64-bit x86 ELF executable that names a PVH entry
 * point (a Xen note XEN_ELFNOTE_PHYS32_ENTRY), which QEMU boots with
 * -kernel without running the bzImage's decompressor.  Reads only what
 * is inside buf.
 */
bool kernel_elf_pvh(const unsigned char *buf, size_t size);

/*
 * Write the kernel inside bzimage, uncompressed, to dest (fs_write_atomic)
 * when it boots by PVH.  Returns 0, -ENOTSUP when bzimage holds no such
 * kernel (boot the bzImage instead), or another -errno with err saying
 * what failed.
 */
int kernel_extract_pvh(const char *bzimage, const char *dest,
		       struct strbuf *err);

#endif
