#include "vm/rescue.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fsutil.h"
#include "qemu/iso.h"
#include "qemu/kernel.h"

/*
 * Other UARTs, crypto self-tests (and the one initcall that runs its own:
 * KDF108's), timer and TSC checks, BIOS EDD probing, the in-guest
 * Spectre/Meltdown mitigations, which cost most under TCG and guard
 * nothing the host relies on, kprobe events and the "encrypted" key type.
 */
#define RESCUE_APPEND \
	"console=ttyS0 quiet panic=-1 8250.nr_uarts=1 cryptomgr.notests " \
	"no_timer_check tsc=reliable edd=off mitigations=off " \
	"initcall_blacklist=crypto_kdf108_init,init_kprobe_trace,init_encrypted"

const char *rescue_append(bool pci_noacpi)
{
	return pci_noacpi ? RESCUE_APPEND " pci=noacpi" : RESCUE_APPEND;
}

/* The ISO's kernel and initramfs, extracted once per ISO version. */
static int kernel_from_iso(const struct vm *vm, const char *iso,
			   struct rescue_image *rb, struct strbuf *err)
{
	static const char *const names[] = { "boot/vmlinuz",
					     "boot/initrd.img" };
	struct strbuf e = STRBUF_INIT;
	struct stat st;
	unsigned long long h = 1469598103934665603ULL;
	const char *dests[2];
	char *dir, *key, *p;
	int r;

	if (stat(iso, &st) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", iso, strerror(-r));
		return r;
	}
	key = xasprintf("%s|%lld|%lld", iso, (long long)st.st_size,
			(long long)st.st_mtime);
	for (p = key; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	free(key);
	dir = xasprintf("%s/rescue-%016llx", vm->cache_dir, h);
	rb->kernel = xasprintf("%s/vmlinuz", dir);
	rb->initrd = xasprintf("%s/initrd.img", dir);
	if ((fs_exists(rb->kernel) && fs_exists(rb->initrd)) || vm->dry_run) {
		free(dir);
		return 0;
	}
	r = fs_mkdir_p(dir, 0700);
	if (!r) {
		dests[0] = rb->kernel;
		dests[1] = rb->initrd;
		r = iso_extract(iso, names, dests, 2, &e);
		if (r)
			strbuf_addf(err, "cannot boot the rescue kernel: %s (set boot = cdrom in [rescue] for other ISOs)",
				    e.buf);
	} else {
		strbuf_addf(err, "cannot make %s: %s", dir, strerror(-r));
	}
	strbuf_release(&e);
	free(dir);
	return r;
}

int rescue_find(const struct vm *vm, struct rescue_image *rb,
		struct strbuf *note, struct strbuf *err)
{
	const struct vm_conf *c = &vm->conf;
	struct strbuf e = STRBUF_INIT;
	char *own = NULL;
	const char *iso;
	int r;

	*rb = (struct rescue_image)RESCUE_IMAGE_INIT;
	rb->cdrom = c->rescue.boot == RESCUE_BOOT_CDROM;
	if (c->rescue.iso && *c->rescue.iso)
		iso = c->rescue.iso;
	else
		iso = own = xasprintf("%s/rescue/out/rescue-x86_64.iso",
				      vm->datadir);
	r = vm_fetch(vm, iso, NULL, NULL, NULL, &rb->iso, NULL, note, &e);
	free(own);
	if (r) {
		if (vm_datadir_is_tree(vm->datadir))
			strbuf_addf(err, "rescue ISO %s (build it: make rescue; or set iso in [rescue])",
				    e.buf);
		else
			strbuf_addf(err, "rescue ISO %s (build it: %s/rescue/build-rescue; or set iso in [rescue])",
				    e.buf, vm->datadir);
		strbuf_release(&e);
		return r;
	}
	strbuf_release(&e);
	if (!rb->cdrom)
		r = kernel_from_iso(vm, rb->iso, rb, err);
	return r;
}

char *rescue_pvh_kernel(const char *bzimage, bool dry_run,
			struct strbuf *note)
{
	struct strbuf err = STRBUF_INIT;
	char *dir = xstrdup(bzimage), *slash = strrchr(dir, '/');
	char *elf, *none;
	int r;

	if (slash)
		*slash = '\0';
	elf = xasprintf("%s/vmlinux", slash ? dir : ".");
	none = xasprintf("%s/vmlinux.none", slash ? dir : ".");
	free(dir);
	if (fs_exists(elf) || (dry_run && !fs_exists(none)))
		goto out;
	r = fs_exists(none) ? -ENOTSUP : kernel_extract_pvh(bzimage, elf, &err);
	if (r == -ENOTSUP) {
		if (!fs_exists(none))
			fs_write_atomic(none, "", 0, 0644);
	} else if (r) {
		if (note->len)
			strbuf_addch(note, '\n');
		strbuf_addf(note, "booting the rescue's bzImage: %s", err.buf);
	}
	if (r) {
		free(elf);
		elf = xstrdup(bzimage);
	}
out:
	strbuf_release(&err);
	free(none);
	return elf;
}

void rescue_image_release(struct rescue_image *rb)
{
	free(rb->iso);
	free(rb->kernel);
	free(rb->initrd);
	*rb = (struct rescue_image)RESCUE_IMAGE_INIT;
}

/* The newest V of /boot/vmlinuz-V with /lib/modules/V, or NULL. */
static char *newest_kernel(void)
{
	DIR *d = opendir("/boot");
	struct dirent *e;
	char *best = NULL;

	while (d && (e = readdir(d))) {
		const char *v = e->d_name + 8;
		char *mods;
		bool ok;

		if (strncmp(e->d_name, "vmlinuz-", 8) || !*v ||
		    (best && strverscmp(v, best) <= 0))
			continue;
		mods = xasprintf("/lib/modules/%s", v);
		ok = fs_is_dir(mods);
		free(mods);
		if (ok) {
			free(best);
			best = xstrdup(v);
		}
	}
	if (d)
		closedir(d);
	return best;
}

int rescue_appliance_kernel(const struct vm *vm, char **elf, char **version)
{
	struct strbuf err = STRBUF_INIT;
	char *v = newest_kernel(), *dir, *bz;
	int r = 0;

	*elf = *version = NULL;
	if (!v)
		return -ENOENT;
	dir = xasprintf("%s/appliance-kernel/%s", vm->cache_dir, v);
	*elf = xasprintf("%s/vmlinux", dir);
	bz = xasprintf("/boot/vmlinuz-%s", v);
	if (!fs_exists(*elf)) {
		r = vm->dry_run ? -ENOENT : fs_mkdir_p(dir, 0700);
		if (!r)
			r = kernel_extract_pvh(bz, *elf, &err);
	}
	if (r) {
		free(*elf);
		free(v);
		*elf = v = NULL;
	}
	*version = v;
	strbuf_release(&err);
	free(dir);
	free(bz);
	return r;
}
