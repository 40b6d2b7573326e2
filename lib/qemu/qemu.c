#include "qemu/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/proc.h"

/* Generated from accel-probe.S by the Makefile. */
extern const unsigned char accel_probe_bin[];
extern const unsigned int accel_probe_bin_len;

#define PROBE_EXIT_OK 85	/* (0x2a << 1) | 1 */
#define PROBE_TIMEOUT_MS 4000

/* d: how path is attached (its path is not used) */
static void push_drive(struct strvec *a, const char *id, const char *path,
		       const struct disk_spec *d, const char *backing)
{
	struct strbuf sb = STRBUF_INIT;
	bool cdrom = d->bus == BUS_CDROM, readonly = cdrom;

	strbuf_addf(&sb, "if=none,id=%s,file=", id);
	strbuf_add_qemu_escaped(&sb, path);
	strbuf_addf(&sb, ",format=%s",
		    d->format ? d->format : cdrom ? "raw" : "qcow2");
	/* the base is what vm checked, not what the header names */
	if (d->backing) {
		strbuf_addf(&sb, ",backing.driver=%s,backing.file.driver=file,backing.file.filename=",
			    d->backing_format);
		strbuf_add_qemu_escaped(&sb, backing ? backing : d->backing);
	}
	if (cdrom)
		strbuf_addstr(&sb, ",media=cdrom");
	if (readonly)
		strbuf_addstr(&sb, ",readonly=on");
	else
		strbuf_addstr(&sb, ",discard=unmap");
	/* QEMU keeps the guest's writes in a temporary file, dropped at exit */
	if (d->scratch && !readonly)
		strbuf_addstr(&sb, ",snapshot=on");
	strvec_push(a, "-drive");
	strvec_push(a, sb.buf);
	strbuf_release(&sb);
}

/* One AHCI controller has six ports; add controllers as they fill. */
static void ahci_port(struct strvec *a, int *used, struct strbuf *bus)
{
	int ctl = *used / 6;

	if (*used % 6 == 0) {
		strvec_push(a, "-device");
		strvec_pushf(a, "ahci,id=ahci%d", ctl);
	}
	strbuf_reset(bus);
	strbuf_addf(bus, "ahci%d.%d", ctl, *used % 6);
	(*used)++;
}

/* The machine: name, type, CPUs, memory and firmware. */
static void argv_machine(const struct qemu_plan *p, struct strvec *a,
			 struct strbuf *sb)
{
	strvec_push(a, p->binary);
	strvec_push(a, "-name");
	strbuf_add_qemu_escaped(sb, p->name);
	strvec_pushf(a, "%s,process=vm-%s", sb->buf, sb->buf);
	strvec_push(a, "-nodefaults");
	strvec_push(a, "-machine");
	strvec_pushf(a, "%s,accel=%s", p->q35 ? "q35" : "pc", p->accel);
	strvec_push(a, "-cpu");
	strvec_push(a, !strcmp(p->accel, "kvm") ? "host" : "max");
	strvec_push(a, "-smp");
	strvec_pushf(a, "cpus=%u,sockets=%u,cores=%u", p->sockets * p->cores,
		     p->sockets, p->cores);
	strvec_push(a, "-m");
	strvec_pushf(a, "%lluM", (unsigned long long)p->memory_mib);

	if (p->uefi) {
		strbuf_reset(sb);
		strbuf_addstr(sb, "if=pflash,format=raw,unit=0,readonly=on,file=");
		strbuf_add_qemu_escaped(sb, p->ovmf_code);
		strvec_push(a, "-drive");
		strvec_push(a, sb->buf);
		strbuf_reset(sb);
		strbuf_addstr(sb, "if=pflash,format=raw,unit=1,file=");
		strbuf_add_qemu_escaped(sb, p->ovmf_vars);
		strvec_push(a, "-drive");
		strvec_push(a, sb->buf);
	}
	if (p->sandbox) {
		strvec_push(a, "-sandbox");
		strvec_push(a, QEMU_SANDBOX);
	}
}

/* A CD-ROM on the next AHCI port; bootindex < 0: none. */
static void push_cd(struct strvec *a, const char *id, const char *path,
		    int *ahci, struct strbuf *bus, int bootindex)
{
	static const struct disk_spec cd = { .bus = BUS_CDROM };

	push_drive(a, id, path, &cd, NULL);
	ahci_port(a, ahci, bus);
	strvec_push(a, "-device");
	if (bootindex < 0)
		strvec_pushf(a, "ide-cd,drive=%s,bus=%s", id, bus->buf);
	else
		strvec_pushf(a, "ide-cd,drive=%s,bus=%s,bootindex=%d", id,
			     bus->buf, bootindex);
}

/* The disks, each on its bus in order, the CD-ROM, a kernel to boot. */
static void argv_disks(const struct qemu_plan *p, struct strvec *a,
		       struct strbuf *sb)
{
	struct strbuf bus = STRBUF_INIT;
	int ahci = 0, scsi = 0, i, boot = 0;

	if (p->cdrom && p->cdrom_first)
		boot = 1;
	for (i = 0; p->base_fd > 2 && i < p->ndisks; i++) {
		if (!p->disks[i].backing)
			continue;
		/* the opaque says what the fd is: the base's path */
		strbuf_reset(sb);
		strbuf_addf(sb, "fd=%d,set=1,opaque=", p->base_fd);
		strbuf_add_qemu_escaped(sb, p->disks[i].backing);
		strvec_push(a, "-add-fd");
		strvec_push(a, sb->buf);
		break;
	}
	for (i = 0; i < p->ndisks; i++) {
		const struct disk_spec *d = &p->disks[i];
		char id[16];

		snprintf(id, sizeof(id), "disk%d", i);
		push_drive(a, id, d->path, d,
			   p->base_fd > 2 ? "/dev/fdset/1" : NULL);
		if (d->bus == BUS_SCSI && !scsi++) {
			strvec_push(a, "-device");
			strvec_push(a, "virtio-scsi-pci,id=scsi0");
		}
		if (d->bus == BUS_AHCI || d->bus == BUS_CDROM)
			ahci_port(a, &ahci, &bus);
		strvec_push(a, "-device");
		switch (d->bus) {
		case BUS_AHCI:
		case BUS_CDROM:
			strbuf_reset(sb);
			strbuf_addf(sb, "%s,drive=%s,bus=%s",
				    d->bus == BUS_CDROM ? "ide-cd" : "ide-hd",
				    id, bus.buf);
			break;
		case BUS_NVME:
			strbuf_reset(sb);
			strbuf_addf(sb, "nvme,drive=%s,serial=vmdisk%d", id, i);
			break;
		case BUS_SCSI:
			strbuf_reset(sb);
			strbuf_addf(sb, "scsi-hd,drive=%s,bus=scsi0.0", id);
			break;
		case BUS_VIRT:
			strbuf_reset(sb);
			strbuf_addf(sb, "virtio-blk-pci,drive=%s", id);
			break;
		}
		/* A direct kernel boot owns boot order; disks get none. */
		if (!p->kernel)
			strbuf_addf(sb, ",bootindex=%d", boot + i);
		strvec_push(a, sb->buf);
	}
	if (p->cdrom)
		push_cd(a, "cd0", p->cdrom, &ahci, &bus,
			p->kernel ? -1 : p->cdrom_first ? 0 : p->ndisks);
	/*
	 * data for the guest, never booted: a read-only virtio disk, as
	 * every cloud kernel has virtio's driver (Debian's cloud kernel
	 * has none for SATA); NoCloud finds it by its label on any disk
	 */
	if (p->seed) {
		strbuf_reset(sb);
		strbuf_addstr(sb, "if=none,id=seed0,file=");
		strbuf_add_qemu_escaped(sb, p->seed);
		strbuf_addstr(sb, ",format=raw,readonly=on");
		strvec_pushl(a, "-drive", sb->buf, "-device",
			     "virtio-blk-pci,drive=seed0", NULL);
	}
	if (p->kernel) {
		strvec_push(a, "-kernel");
		strvec_push(a, p->kernel);
		if (p->initrd) {
			strvec_push(a, "-initrd");
			strvec_push(a, p->initrd);
		}
		if (p->append) {
			strvec_push(a, "-append");
			strvec_push(a, p->append);
		}
	}
	strbuf_release(&bus);
}

/* The user network with its forwards, and the 9p shares. */
static void argv_net_shares(const struct qemu_plan *p, struct strvec *a,
			    struct strbuf *sb)
{
	size_t f;
	int i;

	if (p->netdev) {
		strbuf_reset(sb);
		strbuf_addstr(sb, "user,id=net0");
		for (f = 0; p->forwards && f < p->forwards->nr; f++) {
			strbuf_addch(sb, ',');
			strbuf_add_qemu_escaped(sb, p->forwards->v[f]);
		}
		strvec_push(a, "-netdev");
		strvec_push(a, sb->buf);
		strvec_push(a, "-device");
		strvec_push(a, "virtio-net-pci,netdev=net0");
	}

	for (i = 0; i < p->nshares; i++) {
		const struct share_spec *s = &p->shares[i];

		strbuf_reset(sb);
		/*
		 * A share the guest writes keeps the guest's modes and owners
		 * out of the host's inodes: QEMU makes files 0600 and
		 * directories 0700 owned by itself, never setuid, device
		 * nodes or symlinks.  A read-only share shows the host's
		 * files as they are.
		 */
		strbuf_addf(sb, "local,id=fs%d,security_model=%s,path=", i,
			    !s->rw ? "none" :
			    s->mapped_file ? "mapped-file" : "mapped-xattr");
		strbuf_add_qemu_escaped(sb, s->dir);
		if (!s->rw)
			strbuf_addstr(sb, ",readonly=on");
		strvec_push(a, "-fsdev");
		strvec_push(a, sb->buf);
		strvec_push(a, "-device");
		strbuf_reset(sb);
		strbuf_add_qemu_escaped(sb, s->id);
		strvec_pushf(a, "virtio-9p-pci,fsdev=fs%d,mount_tag=%s", i,
			     sb->buf);
	}
}

/* A SPICE display with the agent's channel, or a headless one. */
static void argv_display(const struct qemu_plan *p, struct strvec *a,
			 struct strbuf *sb)
{
	if (p->spice_port && p->spice_host && *p->spice_host) {
		strbuf_reset(sb);
		strbuf_add_qemu_escaped(sb, p->spice_host);
		strvec_push(a, "-vga");
		strvec_push(a, "qxl");
		strvec_push(a, "-spice");
		strvec_pushf(a, "port=%u,addr=%s,disable-ticketing=on",
			     p->spice_port, sb->buf);
		strvec_push(a, "-device");
		strvec_push(a, "virtio-serial-pci");
		strvec_push(a, "-chardev");
		strvec_push(a, "spicevmc,id=vdagent,name=vdagent");
		strvec_push(a, "-device");
		strvec_push(a, "virtserialport,chardev=vdagent,name=com.redhat.spice.0");
	} else {
		strvec_push(a, "-vga");
		strvec_push(a, p->no_vga ? "none" : "std");
		strvec_push(a, "-display");
		strvec_push(a, "none");
	}
}

/* A QMP monitor at path, when there is one. */
static void argv_qmp(const char *path, struct strvec *a, struct strbuf *sb)
{
	if (!path)
		return;
	strbuf_reset(sb);
	strbuf_addstr(sb, "unix:");
	strbuf_add_qemu_escaped(sb, path);
	strbuf_addstr(sb, ",server=on,wait=off");
	strvec_push(a, "-qmp");
	strvec_push(a, sb->buf);
}

/* The serial console and the QMP monitors (the owner's, vm's own). */
static void argv_sockets(const struct qemu_plan *p, struct strvec *a,
			 struct strbuf *sb)
{
	strbuf_reset(sb);
	/* Without a log of its own, QEMU waits for the vm that serves the
	 * console (and keeps the log), so no output is lost. */
	strbuf_addf(sb, "socket,id=con0,server=on,wait=%s,path=",
		    p->console_log ? "off" : "on");
	strbuf_add_qemu_escaped(sb, p->console_sock);
	if (p->console_log) {
		strbuf_addstr(sb, ",logfile=");
		strbuf_add_qemu_escaped(sb, p->console_log);
		strbuf_addstr(sb, ",logappend=on");
	}
	strvec_push(a, "-chardev");
	strvec_push(a, sb->buf);
	strvec_push(a, "-serial");
	strvec_push(a, "chardev:con0");
	argv_qmp(p->qmp_sock, a, sb);
	argv_qmp(p->vm_qmp_sock, a, sb);
	if (p->agent_sock) {
		strbuf_reset(sb);
		strbuf_addstr(sb, "socket,id=qga0,server=on,wait=off,path=");
		strbuf_add_qemu_escaped(sb, p->agent_sock);
		strvec_push(a, "-chardev");
		strvec_push(a, sb->buf);
		strvec_push(a, "-device");
		strvec_push(a, "virtio-serial-pci,id=qgaser0");
		strvec_push(a, "-device");
		strvec_push(a, "virtserialport,bus=qgaser0.0,chardev=qga0,name=org.qemu.guest_agent.0");
	}
}

void qemu_argv_build(const struct qemu_plan *p, struct strvec *a)
{
	struct strbuf sb = STRBUF_INIT;

	argv_machine(p, a, &sb);
	argv_disks(p, a, &sb);
	strvec_push(a, "-device");
	strvec_push(a, "virtio-rng-pci");
	argv_net_shares(p, a, &sb);
	argv_display(p, a, &sb);
	argv_sockets(p, a, &sb);
	if (p->no_reboot)
		strvec_push(a, "-no-reboot");
	if (p->incoming) {
		strvec_push(a, "-incoming");
		strvec_push(a, p->incoming);
	}
	if (p->extra)
		strvec_pushv(a, p->extra->v);
	strbuf_release(&sb);
}

char *qemu_binary(const char *arch)
{
	return xasprintf("qemu-system-%s", arch);
}

int qemu_read_defaults(const char *const *dirs, struct strvec *out,
		       char **found, struct strbuf *err)
{
	struct strbuf text = STRBUF_INIT;
	size_t i;
	int r = 0;

	*found = NULL;
	for (i = 0; dirs[i]; i++) {
		char *path = xasprintf("%s/vm.defaults", dirs[i]);

		r = fs_read_file(path, 1 << 20, &text);
		if (r == -ENOENT || r == -ENOTDIR) {
			free(path);
			r = 0;
			continue;
		}
		if (r) {
			strbuf_addf(err, "%s: %s", path, fs_read_strerror(r));
			free(path);
			break;
		}
		if (memchr(text.buf, '\0', text.len)) {
			strbuf_addf(err, "%s: binary data, not QEMU options",
				    path);
			free(path);
			r = -EINVAL;
			break;
		}
		r = str_split_args(text.buf, out);
		if (r) {
			strbuf_addf(err, "%s: unterminated quote", path);
			free(path);
			break;
		}
		*found = path;
		break;
	}
	strbuf_release(&text);
	return r;
}

/*
 * Code and variables must come from the same build (2 MiB and 4 MiB
 * flash layouts differ), so they are chosen as a pair.
 */
static const char *ovmf_pick(bool code)
{
	static const char *const pairs[][2] = {
		{ "/usr/share/OVMF/OVMF_CODE_4M.fd",
		  "/usr/share/OVMF/OVMF_VARS_4M.fd" },
		{ "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd" },
		{ "/usr/share/edk2/ovmf/OVMF_CODE.fd",
		  "/usr/share/edk2/ovmf/OVMF_VARS.fd" },
	};
	const char *e = getenv(code ? "VM_OVMF_CODE" : "VM_OVMF_VARS");
	size_t i;

	if (e)
		return access(e, R_OK) == 0 ? e : NULL;
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if (access(pairs[i][0], R_OK) == 0 &&
		    access(pairs[i][1], R_OK) == 0)
			return pairs[i][code ? 0 : 1];
	return NULL;
}

const char *qemu_ovmf_code(void)
{
	return ovmf_pick(true);
}

const char *qemu_ovmf_vars(void)
{
	return ovmf_pick(false);
}


static int probe_kvm(const char *binary, const char *tmpdir)
{
	char *img = xasprintf("%s/vm-accel-probe.%ld", tmpdir, (long)getpid());
	char *drive = NULL;
	int r;

	r = fs_write_atomic(img, accel_probe_bin, accel_probe_bin_len, 0600);
	if (r)
		goto out;
	drive = xasprintf("file=%s,format=raw,if=ide", img);
	{
		struct strvec av = STRVEC_INIT;
		struct proc_opts o = PROC_OPTS_INIT;

		strvec_pushl(&av, binary, "-nodefaults", "-display", "none",
			     "-machine", "pc,accel=kvm", "-m", "16", "-device",
			     "isa-debug-exit", "-drive", drive, NULL);
		o.stdin_fd = o.stdout_fd = o.stderr_fd = -1;
		r = proc_run(av.v, &o, PROBE_TIMEOUT_MS);
		strvec_clear(&av);
	}
	r = r == PROBE_EXIT_OK ? 0 : r == -EINTR ? -EINTR : -ENODEV;
out:
	unlink(img);
	free(img);
	free(drive);
	return r;
}

/*
 * The device whose opening tells that KVM is there: /dev/kvm, or
 * VM_KVM_DEVICE when that is set.  The variable is a hook for the tests
 * (tests/e2e/t0007-accel.sh): a missing path stands for a host without
 * KVM and a plain file for one whose KVM opens, so every way
 * --accel=auto can decide is taken on any host.  QEMU itself still
 * opens /dev/kvm.
 */
static const char *kvm_device(void)
{
	const char *e = getenv("VM_KVM_DEVICE");

	return e && *e ? e : "/dev/kvm";
}

int qemu_pick_accel(enum accel_mode mode, const char *binary,
		    const char *cache_dir, bool may_probe, const char **accel,
		    struct strbuf *note)
{
	struct strbuf key = STRBUF_INIT, cached = STRBUF_INIT;
	struct utsname u;
	struct stat st;
	char *bin = NULL, *cache = NULL;
	const char *tmp = getenv("TMPDIR"), *dev = kvm_device();
	unsigned long long h = 1469598103934665603ULL;
	size_t i;
	int r = 0, fd;

	if (mode == ACCEL_TCG) {
		*accel = "tcg";
		return 0;
	}
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (mode == ACCEL_KVM) {
			strbuf_addf(note, "KVM is not usable (%s: %s); try --accel=auto or tcg",
				    dev, strerror(-r));
			return -ENODEV;
		}
		strbuf_addf(note, "KVM is not available (%s: %s), using TCG",
			    dev, strerror(-r));
		*accel = "tcg";
		return 0;
	}
	close(fd);
	if (mode == ACCEL_KVM) {
		*accel = "kvm";
		return 0;
	}

	/* The verdict holds for this QEMU build on this host kernel. */
	bin = fs_which(binary);
	if (!bin || stat(bin, &st) < 0) {
		*accel = "tcg";
		r = 0;
		goto out;
	}
	uname(&u);
	strbuf_addf(&key, "%s|%lld|%lld|%s|%s", bin, (long long)st.st_size,
		    (long long)st.st_mtime, u.release, u.version);
	for (i = 0; i < key.len; i++) {
		h ^= (unsigned char)key.buf[i];
		h *= 1099511628211ULL;
	}
	cache = xasprintf("%s/accel-%016llx", cache_dir, h);
	if (!fs_read_file(cache, 64, &cached)) {
		strbuf_trim_trailing(&cached);
		if (!strcmp(cached.buf, "kvm") || !strcmp(cached.buf, "tcg")) {
			*accel = !strcmp(cached.buf, "kvm") ? "kvm" : "tcg";
			if (**accel == 't')
				strbuf_addstr(note, "KVM does not run guests on this host (cached probe), using TCG");
			goto out;
		}
	}
	if (!may_probe) {
		*accel = "tcg";
		strbuf_addstr(note, "KVM not probed yet (dry run), showing TCG");
		goto out;
	}
	r = probe_kvm(bin, tmp && *tmp ? tmp : "/tmp");
	if (r == -EINTR) {
		strbuf_addstr(note, "interrupted while probing KVM");
		goto out;
	}
	*accel = r ? "tcg" : "kvm";
	if (r)
		strbuf_addstr(note, "KVM does not run guests on this host, using TCG");
	r = 0;
	if (!fs_mkdir_p(cache_dir, 0700))
		fs_write_atomic(cache, *accel, strlen(*accel), 0644);
out:
	free(bin);
	free(cache);
	strbuf_release(&key);
	strbuf_release(&cached);
	return r;
}

bool qemu_has_sandbox(const char *binary)
{
	static char *asked;
	static bool has;

	if (!asked || strcmp(asked, binary)) {
		struct strvec av = STRVEC_INIT;
		struct proc_opts o = PROC_OPTS_INIT;

		/* options are taken in order: -version ends after -sandbox
		 * has been parsed, or refused when seccomp is not built in */
		strvec_pushl(&av, binary, "-sandbox", QEMU_SANDBOX, "-version",
			     NULL);
		o.stdin_fd = o.stdout_fd = o.stderr_fd = -1;
		has = proc_run(av.v, &o, PROBE_TIMEOUT_MS) == 0;
		strvec_clear(&av);
		free(asked);
		asked = xstrdup(binary);
	}
	return has;
}
