/*
 * The rescue guest's boot: its ISO (built by rescue/build-rescue, or
 * [rescue] iso), and for a direct boot the kernel and initramfs taken
 * out of it once (into vm's cache), the kernel's PVH entry when it has
 * one, and the command line.
 */
#ifndef VM_RESCUE_H
#define VM_RESCUE_H

#include <stdbool.h>

#include "util/str.h"
#include "vm/vm.h"

struct rescue_image {
	char *iso;		/* the ISO's local file */
	bool cdrom;		/* boot = cdrom: the ISO boots as a CD */
	char *kernel;		/* direct boot: the bzImage, or NULL */
	char *initrd;		/* direct boot: the initramfs, or NULL */
};

#define RESCUE_IMAGE_INIT { NULL, false, NULL, NULL }

/*
 * Find the rescue ISO of vm's settings (fetched when it is a URL) and,
 * unless it boots as a CD, its kernel and initramfs (extracted once per
 * ISO version into vm->cache_dir; a dry run extracts nothing).  note:
 * warnings for the user.  Returns 0 or -errno with the one-line reason
 * in err.
 */
int rescue_find(const struct vm *vm, struct rescue_image *rb,
		struct strbuf *note, struct strbuf *err);

/*
 * The kernel to boot directly under SeaBIOS: the ELF inside the bzImage
 * when it has a PVH entry (extracted once, beside it; "vmlinux.none"
 * notes that it has none), so that no decompressor runs in the guest.
 * Anything that goes wrong gives the bzImage, which boots too (note
 * says why).  Caller frees.
 */
char *rescue_pvh_kernel(const char *bzimage, bool dry_run,
			struct strbuf *note);

/*
 * The kernel's command line: what a throw-away guest does not need is
 * skipped (docs/benchmarks.md).  pci_noacpi: on the pc machine under
 * SeaBIOS, its PCI interrupts are routed by SeaBIOS's table, not by the
 * ACPI interpreter (0.1 s per PCI device under TCG).
 */
const char *rescue_append(bool pci_noacpi);

void rescue_image_release(struct rescue_image *rb);

/*
 * The kernel libguestfs's appliance boots, as supermin picks it (the
 * newest /boot/vmlinuz-V that has /lib/modules/V), made a PVH ELF once
 * in vm's cache (CACHE/appliance-kernel/V/vmlinux): under TCG it boots
 * about 5 s sooner, with no SeaBIOS and no decompressor in the guest.
 * Returns 0 with *elf and *version (caller frees), or -ENOENT (no
 * kernel), -ENOTSUP (none with a PVH entry) or -errno: then the
 * appliance boots as libguestfs would.
 */
int rescue_appliance_kernel(const struct vm *vm, char **elf, char **version);

#endif
