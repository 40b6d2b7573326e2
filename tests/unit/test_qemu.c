/* Unit tests for lib/qemu: argv from a plan (golden files), vm.defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "scratch.h"
#include "qemu/qemu.h"

#include "golden.h"

/* A writable copy of a literal, for the char * fields of lib structs. */
#define MUT(s) ((char[]){ s })

/* One AHCI disk, BIOS, headless, user networking: the plainest VM. */
static const struct disk_spec one_ahci[] = {
	{ BUS_AHCI, 0, NULL, MUT("/W/disk-0.img"), false, NULL, NULL },
};

static void base_plan(struct qemu_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->binary = "qemu-system-x86_64";
	p->name = "test";
	p->accel = "tcg";
	p->sockets = 1;
	p->cores = 2;
	p->memory_mib = 2048;
	p->disks = one_ahci;
	p->ndisks = 1;
	p->netdev = true;
	p->console_log = "/W/console.log";
	p->console_sock = "/W/console.sock";
	p->qmp_sock = "/W/qmp.sock";
}

/* Build p, compare with tests/golden/NAME.args; argv stays for checks. */
static void build_golden(const struct qemu_plan *p, const char *name,
			 struct strvec *argv)
{
	char *file = xasprintf("%s.args", name);
	char *text;

	qemu_argv_build(p, argv);
	assert_true(argv->nr > 0);
	assert_null(argv->v[argv->nr]);
	text = golden_argv_text(argv);
	golden_check(file, text);
	free(text);
	free(file);
}

/* Index of the first arg equal to s at or after from, or -1. */
static int find_arg(const struct strvec *a, const char *s, int from)
{
	int i;

	for (i = from; i < (int)a->nr; i++)
		if (!strcmp(a->v[i], s))
			return i;
	return -1;
}

static int count_arg(const struct strvec *a, const char *s)
{
	int i, n = 0;

	for (i = 0; i < (int)a->nr; i++)
		n += !strcmp(a->v[i], s);
	return n;
}

/* opt followed by val somewhere in argv. */
static void assert_pair(const struct strvec *a, const char *opt,
			const char *val)
{
	int i = -1;

	while ((i = find_arg(a, opt, i + 1)) >= 0)
		if (i + 1 < (int)a->nr && !strcmp(a->v[i + 1], val))
			return;
	fail_msg("no \"%s %s\" in the argv", opt, val);
}

static void assert_no_arg(const struct strvec *a, const char *s)
{
	if (find_arg(a, s, 0) >= 0)
		fail_msg("unexpected \"%s\" in the argv", s);
}

static void test_bios_ahci(void **state)
{
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	build_golden(&p, "bios_ahci", &a);
	assert_string_equal(a.v[0], "qemu-system-x86_64");
	assert_pair(&a, "-name", "test,process=vm-test");
	assert_pair(&a, "-machine", "pc,accel=tcg");
	assert_pair(&a, "-cpu", "max");
	assert_pair(&a, "-smp", "cpus=2,sockets=1,cores=2");
	assert_pair(&a, "-m", "2048M");
	assert_pair(&a, "-drive",
		    "if=none,id=disk0,file=/W/disk-0.img,format=qcow2,discard=unmap");
	assert_pair(&a, "-device", "ahci,id=ahci0");
	assert_pair(&a, "-device", "ide-hd,drive=disk0,bus=ahci0.0,bootindex=0");
	assert_pair(&a, "-netdev", "user,id=net0");
	assert_pair(&a, "-device", "virtio-net-pci,netdev=net0");
	assert_pair(&a, "-display", "none");
	assert_pair(&a, "-serial", "chardev:con0");
	assert_pair(&a, "-qmp", "unix:/W/qmp.sock,server=on,wait=off");
	assert_int_equal(count_arg(&a, "-nodefaults"), 1);
	assert_no_arg(&a, "-spice");
	assert_no_arg(&a, "-no-reboot");
	assert_no_arg(&a, "-kernel");
	assert_true(find_arg(&a, "if=pflash", 0) < 0);
	strvec_clear(&a);
}

static void test_uefi_q35(void **state)
{
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;
	int code, vars;

	(void)state;
	base_plan(&p);
	p.accel = "kvm";
	p.q35 = true;
	p.uefi = true;
	p.ovmf_code = "/usr/share/OVMF/OVMF_CODE_4M.fd";
	p.ovmf_vars = "/W/efivars.bin";
	p.sockets = 2;
	p.cores = 4;
	p.memory_mib = 8192;
	build_golden(&p, "uefi_q35", &a);
	assert_pair(&a, "-machine", "q35,accel=kvm");
	assert_pair(&a, "-cpu", "host");
	assert_pair(&a, "-smp", "cpus=8,sockets=2,cores=4");
	assert_pair(&a, "-m", "8192M");
	code = find_arg(&a, "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd", 0);
	vars = find_arg(&a, "if=pflash,format=raw,unit=1,file=/W/efivars.bin", 0);
	assert_true(code > 0);
	assert_true(vars > code);
	assert_string_equal(a.v[code - 1], "-drive");
	strvec_clear(&a);
}

static void test_disk_buses(void **state)
{
	const struct disk_spec disks[] = {
		{ BUS_AHCI, 0, NULL, MUT("/W/disk-0.img"), false, NULL, NULL },
		{ BUS_NVME, 0, NULL, MUT("/W/disk-1.img"), false, NULL, NULL },
		{ BUS_SCSI, 0, NULL, MUT("/W/disk-2.img"), false, NULL, NULL },
		{ BUS_SCSI, 0, NULL, MUT("/W/disk-3.img"), false, NULL, NULL },
		{ BUS_VIRT, 0, NULL, MUT("/W/disk-4.img"), false, NULL, NULL },
		{ BUS_CDROM, 0, NULL, MUT("/H/tools.iso"), false, NULL, NULL },
		{ BUS_VIRT, 0, MUT("raw"), MUT("/H/extra.img"), false, NULL, NULL },
		{ BUS_VIRT, 0, NULL, MUT("/C/cached.qcow2"), true, NULL,
		  NULL },
		{ BUS_VIRT, 0, NULL, MUT("/W/disk-5.img"), false,
		  MUT("/B/base,1.raw"), MUT("raw") },
	};
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.disks = disks;
	p.ndisks = 9;
	build_golden(&p, "disk_buses", &a);
	assert_pair(&a, "-device", "ide-hd,drive=disk0,bus=ahci0.0,bootindex=0");
	assert_pair(&a, "-device", "nvme,drive=disk1,serial=vmdisk1,bootindex=1");
	assert_pair(&a, "-device", "scsi-hd,drive=disk2,bus=scsi0.0,bootindex=2");
	assert_pair(&a, "-device", "scsi-hd,drive=disk3,bus=scsi0.0,bootindex=3");
	assert_pair(&a, "-device", "virtio-blk-pci,drive=disk4,bootindex=4");
	assert_pair(&a, "-drive",
		    "if=none,id=disk5,file=/H/tools.iso,format=raw,media=cdrom,readonly=on");
	assert_pair(&a, "-device", "ide-cd,drive=disk5,bus=ahci0.1,bootindex=5");
	assert_pair(&a, "-drive",
		    "if=none,id=disk6,file=/H/extra.img,format=raw,discard=unmap");
	assert_pair(&a, "-device", "virtio-blk-pci,drive=disk6,bootindex=6");
	/* an image from the download cache: its writes are thrown away */
	assert_pair(&a, "-drive",
		    "if=none,id=disk7,file=/C/cached.qcow2,format=qcow2,discard=unmap,snapshot=on");
	/* an overlay: QEMU is told its base, whatever its header says */
	assert_pair(&a, "-drive",
		    "if=none,id=disk8,file=/W/disk-5.img,format=qcow2,backing.driver=raw,backing.file.driver=file,backing.file.filename=/B/base,,1.raw,discard=unmap");
	/* One controller each, however many disks use it. */
	assert_int_equal(count_arg(&a, "virtio-scsi-pci,id=scsi0"), 1);
	assert_int_equal(count_arg(&a, "ahci,id=ahci0"), 1);
	assert_int_equal(count_arg(&a, "ahci,id=ahci1"), 0);
	/* The controller comes before the first disk on it. */
	assert_true(find_arg(&a, "virtio-scsi-pci,id=scsi0", 0) <
		    find_arg(&a, "scsi-hd,drive=disk2,bus=scsi0.0,bootindex=2", 0));
	strvec_clear(&a);
}

static void test_seven_ahci_disks(void **state)
{
	struct disk_spec disks[7];
	char paths[7][32];
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;
	int i;

	(void)state;
	for (i = 0; i < 7; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/W/disk-%d.img", i);
		disks[i] = (struct disk_spec){ BUS_AHCI, 0, NULL, paths[i], false, NULL, NULL };
	}
	base_plan(&p);
	p.disks = disks;
	p.ndisks = 7;
	p.cdrom = "/H/install.iso";
	build_golden(&p, "ahci_seven", &a);
	assert_int_equal(count_arg(&a, "ahci,id=ahci0"), 1);
	assert_int_equal(count_arg(&a, "ahci,id=ahci1"), 1);
	assert_pair(&a, "-device", "ide-hd,drive=disk5,bus=ahci0.5,bootindex=5");
	assert_pair(&a, "-device", "ide-hd,drive=disk6,bus=ahci1.0,bootindex=6");
	/* The CD takes the next port on the second controller. */
	assert_pair(&a, "-device", "ide-cd,drive=cd0,bus=ahci1.1,bootindex=7");
	assert_true(find_arg(&a, "ahci,id=ahci1", 0) >
		    find_arg(&a, "ide-hd,drive=disk5,bus=ahci0.5,bootindex=5", 0));
	assert_true(find_arg(&a, "ahci,id=ahci1", 0) <
		    find_arg(&a, "ide-hd,drive=disk6,bus=ahci1.0,bootindex=6", 0));
	strvec_clear(&a);
}

static void test_cdrom_first(void **state)
{
	const struct disk_spec disks[] = {
		{ BUS_AHCI, 0, NULL, MUT("/W/disk-0.img"), false, NULL, NULL },
		{ BUS_NVME, 0, NULL, MUT("/W/disk-1.img"), false, NULL, NULL },
	};
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.disks = disks;
	p.ndisks = 2;
	p.cdrom = "/H/install.iso";
	p.cdrom_first = true;
	p.no_reboot = true;	/* the first boot stops at the installer's reboot */
	build_golden(&p, "cdrom_first", &a);
	assert_pair(&a, "-drive",
		    "if=none,id=cd0,file=/H/install.iso,format=raw,media=cdrom,readonly=on");
	assert_pair(&a, "-device", "ide-cd,drive=cd0,bus=ahci0.1,bootindex=0");
	assert_pair(&a, "-device", "ide-hd,drive=disk0,bus=ahci0.0,bootindex=1");
	assert_pair(&a, "-device", "nvme,drive=disk1,serial=vmdisk1,bootindex=2");
	assert_int_equal(count_arg(&a, "-no-reboot"), 1);
	strvec_clear(&a);
}

static void test_cdrom_last(void **state)
{
	const struct disk_spec disks[] = {
		{ BUS_AHCI, 0, NULL, MUT("/W/disk-0.img"), false, NULL, NULL },
		{ BUS_NVME, 0, NULL, MUT("/W/disk-1.img"), false, NULL, NULL },
	};
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.disks = disks;
	p.ndisks = 2;
	p.cdrom = "/H/install.iso";
	build_golden(&p, "cdrom_last", &a);
	assert_pair(&a, "-device", "ide-hd,drive=disk0,bus=ahci0.0,bootindex=0");
	assert_pair(&a, "-device", "nvme,drive=disk1,serial=vmdisk1,bootindex=1");
	assert_pair(&a, "-device", "ide-cd,drive=cd0,bus=ahci0.1,bootindex=2");
	assert_no_arg(&a, "-no-reboot");
	strvec_clear(&a);
}

/* the cloud-init seed: a read-only virtio disk, after the CD, never booted */
static void test_seed(void **state)
{
	const struct disk_spec disks[] = {
		{ BUS_VIRT, 0, NULL, MUT("/W/disk-0.img"), false, NULL, NULL },
	};
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.disks = disks;
	p.ndisks = 1;
	p.cdrom = "/H/x.iso";
	p.seed = "/W/cidata,1.iso";
	qemu_argv_build(&p, &a);
	assert_pair(&a, "-drive",
		    "if=none,id=seed0,file=/W/cidata,,1.iso,format=raw,readonly=on");
	assert_pair(&a, "-device", "virtio-blk-pci,drive=seed0");
	assert_pair(&a, "-device", "ide-cd,drive=cd0,bus=ahci0.0,bootindex=1");
	assert_int_equal(count_arg(&a, "virtio-blk-pci,drive=seed0"), 1);
	strvec_clear(&a);
}

static void test_shares(void **state)
{
	const struct share_spec shares[] = {
		{ MUT("data"), MUT("/H/data"), false, false },
		{ MUT("out"), MUT("/W/.out,with,commas"), true, false },
		{ MUT("tmp"), MUT("/T"), true, true },
	};
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.shares = shares;
	p.nshares = 3;
	build_golden(&p, "shares", &a);
	assert_pair(&a, "-fsdev",
		    "local,id=fs0,security_model=none,path=/H/data,readonly=on");
	assert_pair(&a, "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=data");
	assert_pair(&a, "-fsdev",
		    "local,id=fs1,security_model=mapped-xattr,path=/W/.out,,with,,commas");
	assert_pair(&a, "-device", "virtio-9p-pci,fsdev=fs1,mount_tag=out");
	/* where the directory has no user xattrs */
	assert_pair(&a, "-fsdev",
		    "local,id=fs2,security_model=mapped-file,path=/T");
	assert_int_equal(count_arg(&a, "-fsdev"), 3);
	strvec_clear(&a);
}

static void test_forwards(void **state)
{
	struct strvec fwd = STRVEC_INIT, a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	strvec_pushl(&fwd, "hostfwd=tcp::5555-:22", "hostfwd=udp::6000-:6000",
		     "guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080", NULL);
	base_plan(&p);
	p.forwards = &fwd;
	build_golden(&p, "forwards", &a);
	assert_pair(&a, "-netdev",
		    "user,id=net0,hostfwd=tcp::5555-:22,hostfwd=udp::6000-:6000,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080");
	assert_int_equal(count_arg(&a, "-netdev"), 1);
	strvec_clear(&a);

	/* No user networking: no forwards either. */
	p.netdev = false;
	qemu_argv_build(&p, &a);
	assert_no_arg(&a, "-netdev");
	assert_no_arg(&a, "virtio-net-pci,netdev=net0");
	strvec_clear(&a);
	strvec_clear(&fwd);
}

static void test_spice_on(void **state)
{
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.spice_port = 5901;
	p.spice_host = "0.0.0.0";
	build_golden(&p, "spice", &a);
	assert_pair(&a, "-vga", "qxl");
	assert_pair(&a, "-spice", "port=5901,addr=0.0.0.0,disable-ticketing=on");
	assert_pair(&a, "-chardev", "spicevmc,id=vdagent,name=vdagent");
	assert_pair(&a, "-device",
		    "virtserialport,chardev=vdagent,name=com.redhat.spice.0");
	assert_no_arg(&a, "-display");
	strvec_clear(&a);
}

static void test_spice_off(void **state)
{
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.spice_port = 0;
	p.spice_host = "127.0.0.1";
	qemu_argv_build(&p, &a);
	assert_pair(&a, "-display", "none");
	assert_pair(&a, "-vga", "std");
	assert_no_arg(&a, "-spice");
	assert_no_arg(&a, "qxl");
	strvec_clear(&a);
	/* A port without an address is headless too. */
	p.spice_port = 5900;
	p.spice_host = "";
	qemu_argv_build(&p, &a);
	assert_pair(&a, "-display", "none");
	assert_no_arg(&a, "-spice");
	strvec_clear(&a);
}

static void test_kernel_boot(void **state)
{
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.name = "test-rescue";
	p.memory_mib = 1024;
	p.kernel = "/R/vmlinuz";
	p.initrd = "/R/initrd.img";
	p.append = "console=ttyS0 quiet vm.share=a,b";
	p.no_reboot = true;
	p.qmp_sock = NULL;
	build_golden(&p, "kernel", &a);
	assert_pair(&a, "-kernel", "/R/vmlinuz");
	assert_pair(&a, "-initrd", "/R/initrd.img");
	/* The kernel boots first; disks carry no boot order. */
	assert_pair(&a, "-device", "ide-hd,drive=disk0,bus=ahci0.0");
	/* -append is a plain argument: its commas stay single. */
	assert_pair(&a, "-append", "console=ttyS0 quiet vm.share=a,b");
	assert_no_arg(&a, "-qmp");
	assert_int_equal(count_arg(&a, "-no-reboot"), 1);
	strvec_clear(&a);

	p.initrd = NULL;
	p.append = NULL;
	p.cdrom = "/R/rescue.iso";
	qemu_argv_build(&p, &a);
	assert_pair(&a, "-kernel", "/R/vmlinuz");
	assert_no_arg(&a, "-initrd");
	assert_no_arg(&a, "-append");
	assert_pair(&a, "-device", "ide-cd,drive=cd0,bus=ahci0.1");
	assert_pair(&a, "-vga", "std");
	strvec_clear(&a);

	/* A rescue on the serial console alone gets no display adapter. */
	p.no_vga = true;
	qemu_argv_build(&p, &a);
	assert_pair(&a, "-vga", "none");
	assert_pair(&a, "-display", "none");
	strvec_clear(&a);
}

static void test_extra_args(void **state)
{
	struct strvec extra = STRVEC_INIT, a = STRVEC_INIT;
	struct qemu_plan p;
	size_t n;

	(void)state;
	strvec_pushl(&extra, "-usb", "-device", "usb-tablet", "-rtc",
		     "base=localtime,clock=host", NULL);
	base_plan(&p);
	p.extra = &extra;
	build_golden(&p, "extra", &a);
	/* The user's arguments come last, untouched. */
	n = a.nr;
	assert_string_equal(a.v[n - 5], "-usb");
	assert_string_equal(a.v[n - 4], "-device");
	assert_string_equal(a.v[n - 3], "usb-tablet");
	assert_string_equal(a.v[n - 1], "base=localtime,clock=host");
	strvec_clear(&a);
	strvec_clear(&extra);
}

static void test_commas_escaped(void **state)
{
	const struct disk_spec disks[] = {
		{ BUS_AHCI, 0, NULL, MUT("/W,x/disk-0.img"), false, NULL, NULL },
	};
	const struct share_spec shares[] = {
		{ MUT("s"), MUT("/H,x/share"), false, false },
	};
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.name = "a,b";
	p.q35 = true;
	p.uefi = true;
	p.ovmf_code = "/fw,1/CODE.fd";
	p.ovmf_vars = "/W,x/efivars.bin";
	p.disks = disks;
	p.cdrom = "/H,x/in,stall.iso";
	p.shares = shares;
	p.nshares = 1;
	p.spice_port = 5930;
	p.spice_host = "::1,x";
	p.console_log = "/W,x/console.log";
	p.console_sock = "/W,x/console.sock";
	p.qmp_sock = "/W,x/qmp.sock";
	build_golden(&p, "commas", &a);
	assert_pair(&a, "-name", "a,,b,process=vm-a,,b");
	assert_pair(&a, "-drive",
		    "if=pflash,format=raw,unit=0,readonly=on,file=/fw,,1/CODE.fd");
	assert_pair(&a, "-drive", "if=pflash,format=raw,unit=1,file=/W,,x/efivars.bin");
	assert_pair(&a, "-drive",
		    "if=none,id=disk0,file=/W,,x/disk-0.img,format=qcow2,discard=unmap");
	assert_pair(&a, "-drive",
		    "if=none,id=cd0,file=/H,,x/in,,stall.iso,format=raw,media=cdrom,readonly=on");
	assert_pair(&a, "-fsdev",
		    "local,id=fs0,security_model=none,path=/H,,x/share,readonly=on");
	assert_pair(&a, "-spice", "port=5930,addr=::1,,x,disable-ticketing=on");
	assert_pair(&a, "-chardev",
		    "socket,id=con0,server=on,wait=off,path=/W,,x/console.sock,logfile=/W,,x/console.log,logappend=on");
	assert_pair(&a, "-qmp", "unix:/W,,x/qmp.sock,server=on,wait=off");
	strvec_clear(&a);
}

/* No log of QEMU's own: it waits for vm, which serves and logs. */
static void test_console_served_by_vm(void **state)
{
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.console_log = NULL;
	p.console_sock = "/W/qemu-console.sock";
	qemu_argv_build(&p, &a);
	assert_pair(&a, "-chardev",
		    "socket,id=con0,server=on,wait=on,path=/W/qemu-console.sock");
	assert_pair(&a, "-serial", "chardev:con0");
	strvec_clear(&a);
}

/*
 * The confinement vm asks for: -sandbox with every deny, a monitor of
 * vm's own beside the owner's, and the base by a read-only fd.
 */
static void test_sandbox_base_fd_vm_monitor(void **state)
{
	const struct disk_spec over[] = {
		{ BUS_VIRT, 0, NULL, MUT("/W/disk-0.img"), false,
		  MUT("/B/base.raw"), MUT("raw") },
	};
	struct strvec a = STRVEC_INIT;
	struct qemu_plan p;

	(void)state;
	base_plan(&p);
	p.disks = over;
	p.sandbox = true;
	p.base_fd = 7;
	p.vm_qmp_sock = "/W/vm-qmp.sock";
	qemu_argv_build(&p, &a);
	assert_pair(&a, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,"
				    "spawn=deny,resourcecontrol=deny");
	assert_pair(&a, "-add-fd", "fd=7,set=1,opaque=/B/base.raw");
	assert_pair(&a, "-drive", "if=none,id=disk0,file=/W/disk-0.img,format=qcow2,"
				  "backing.driver=raw,backing.file.driver=file,"
				  "backing.file.filename=/dev/fdset/1,discard=unmap");
	assert_pair(&a, "-qmp", "unix:/W/qmp.sock,server=on,wait=off");
	assert_pair(&a, "-qmp", "unix:/W/vm-qmp.sock,server=on,wait=off");
	strvec_clear(&a);
	/* fds 0-2 are never the base's: by path, no fd set */
	p.base_fd = 0;
	p.sandbox = false;
	qemu_argv_build(&p, &a);
	assert_no_arg(&a, "-add-fd");
	assert_no_arg(&a, "-sandbox");
	assert_pair(&a, "-drive", "if=none,id=disk0,file=/W/disk-0.img,format=qcow2,"
				  "backing.driver=raw,backing.file.driver=file,"
				  "backing.file.filename=/B/base.raw,discard=unmap");
	strvec_clear(&a);
}

static void test_build_is_pure(void **state)
{
	struct strvec a = STRVEC_INIT, b = STRVEC_INIT;
	struct qemu_plan p;
	size_t i;

	(void)state;
	base_plan(&p);
	p.cdrom = "/H/install.iso";
	qemu_argv_build(&p, &a);
	qemu_argv_build(&p, &b);
	assert_int_equal(a.nr, b.nr);
	for (i = 0; i < a.nr; i++)
		assert_string_equal(a.v[i], b.v[i]);
	/* It appends to what is already there. */
	strvec_clear(&a);
	strvec_push(&a, "env");
	qemu_argv_build(&p, &a);
	assert_string_equal(a.v[0], "env");
	assert_string_equal(a.v[1], "qemu-system-x86_64");
	assert_int_equal(a.nr, b.nr + 1);
	strvec_clear(&a);
	strvec_clear(&b);
}

static void test_qemu_binary(void **state)
{
	char *s;

	(void)state;
	s = qemu_binary("x86_64");
	assert_string_equal(s, "qemu-system-x86_64");
	free(s);
	s = qemu_binary("aarch64");
	assert_string_equal(s, "qemu-system-aarch64");
	free(s);
}

/* Make TMPDIR/name (a directory) and write text to its vm.defaults. */
static char *defaults_dir(const char *name, const char *text)
{
	char *dir = xasprintf("%s/%s", tmpdir, name);
	char *file = xasprintf("%s/vm.defaults", dir);

	assert_int_equal(fs_mkdir_p(dir, 0755), 0);
	if (text)
		assert_int_equal(fs_write_atomic(file, text, strlen(text), 0644),
				 0);
	free(file);
	return dir;
}

static void test_defaults_first_dir_wins(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct strvec out = STRVEC_INIT;
	char *empty = defaults_dir("d-empty", NULL);
	char *first = defaults_dir("d-first", "-usb\n");
	char *second = defaults_dir("d-second", "-display gtk\n");
	char *missing = xasprintf("%s/d-missing", tmpdir);
	char *want = xasprintf("%s/vm.defaults", first);
	const char *dirs[] = { missing, empty, first, second, NULL };
	char *found = NULL;

	(void)state;
	assert_int_equal(qemu_read_defaults(dirs, &out, &found, &err), 0);
	assert_string_equal(err.buf, "");
	assert_non_null(found);
	assert_string_equal(found, want);
	assert_int_equal(out.nr, 1);
	assert_string_equal(out.v[0], "-usb");
	free(found);
	strvec_clear(&out);

	/* The order of dirs decides, not the names. */
	dirs[2] = second;
	dirs[3] = first;
	assert_int_equal(qemu_read_defaults(dirs, &out, &found, &err), 0);
	assert_non_null(found);
	assert_non_null(strstr(found, "/d-second/vm.defaults"));
	assert_int_equal(out.nr, 2);
	assert_string_equal(out.v[0], "-display");
	assert_string_equal(out.v[1], "gtk");
	free(found);
	strvec_clear(&out);
	free(empty);
	free(first);
	free(second);
	free(missing);
	free(want);
	strbuf_release(&err);
}

static void test_defaults_comments_and_quotes(void **state)
{
	static const char *const want[] = {
		"-device", "usb-tablet", "-append", "console=ttyS0 quiet",
		"-fw_cfg", "name=opt/x,string=it's \"here\"", "-smbios",
		"type=1,serial=a b", NULL
	};
	struct strbuf err = STRBUF_INIT;
	struct strvec out = STRVEC_INIT;
	char *dir = defaults_dir("d-quotes",
		"# extra arguments for every VM\n"
		"-device usb-tablet   # a pointer that follows the host\n"
		"\n"
		"   # indented comment 'with an odd quote\n"
		"-append 'console=ttyS0 quiet'\n"
		"-fw_cfg \"name=opt/x,string=it's \\\"here\\\"\"\n"
		"-smbios type=1,serial=a\\ b\n");
	const char *dirs[] = { dir, NULL };
	char *found = NULL;
	size_t i;

	(void)state;
	assert_int_equal(qemu_read_defaults(dirs, &out, &found, &err), 0);
	assert_non_null(found);
	for (i = 0; want[i]; i++) {
		assert_true(i < out.nr);
		assert_string_equal(out.v[i], want[i]);
	}
	assert_int_equal(out.nr, i);
	free(found);
	free(dir);
	strvec_clear(&out);
	strbuf_release(&err);
}

static void test_defaults_none_found(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct strvec out = STRVEC_INIT;
	char *a = xasprintf("%s/nothing-here", tmpdir);
	char *file = xasprintf("%s/plain-file", tmpdir);
	char *under = xasprintf("%s/plain-file/sub", tmpdir);
	const char *dirs[] = { a, file, under, NULL };
	const char *nodirs[] = { NULL };
	static char stale[] = "stale";
	char *found = stale;

	(void)state;
	assert_int_equal(fs_write_atomic(file, "x", 1, 0644), 0);
	assert_int_equal(qemu_read_defaults(dirs, &out, &found, &err), 0);
	assert_null(found);
	assert_int_equal(out.nr, 0);
	assert_string_equal(err.buf, "");
	found = stale;
	assert_int_equal(qemu_read_defaults(nodirs, &out, &found, &err), 0);
	assert_null(found);
	assert_int_equal(out.nr, 0);
	free(a);
	free(file);
	free(under);
	strbuf_release(&err);
}

static void test_defaults_unterminated_quote(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct strvec out = STRVEC_INIT;
	char *dir = defaults_dir("d-bad", "-append 'console=ttyS0\n");
	char *file = xasprintf("%s/vm.defaults", dir);
	const char *dirs[] = { dir, NULL };
	char *found = NULL;

	(void)state;
	assert_int_equal(qemu_read_defaults(dirs, &out, &found, &err), -EINVAL);
	assert_null(found);
	if (!strstr(err.buf, file))
		fail_msg("error \"%s\" does not name %s", err.buf, file);
	assert_non_null(strstr(err.buf, "unterminated quote"));
	strvec_clear(&out);
	free(file);
	free(dir);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bios_ahci),
		cmocka_unit_test(test_uefi_q35),
		cmocka_unit_test(test_disk_buses),
		cmocka_unit_test(test_seven_ahci_disks),
		cmocka_unit_test(test_cdrom_first),
		cmocka_unit_test(test_cdrom_last),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_shares),
		cmocka_unit_test(test_forwards),
		cmocka_unit_test(test_spice_on),
		cmocka_unit_test(test_spice_off),
		cmocka_unit_test(test_kernel_boot),
		cmocka_unit_test(test_extra_args),
		cmocka_unit_test(test_commas_escaped),
		cmocka_unit_test(test_build_is_pure),
		cmocka_unit_test(test_sandbox_base_fd_vm_monitor),
		cmocka_unit_test(test_console_served_by_vm),
		cmocka_unit_test(test_qemu_binary),
		cmocka_unit_test(test_defaults_first_dir_wins),
		cmocka_unit_test(test_defaults_comments_and_quotes),
		cmocka_unit_test(test_defaults_none_found),
		cmocka_unit_test(test_defaults_unterminated_quote),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
