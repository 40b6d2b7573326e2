/* QEMU command lines: a plan in, an argv out; accelerator probing. */
#ifndef VM_QEMU_H
#define VM_QEMU_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "util/str.h"

/* Everything qemu_argv_build needs, already resolved to paths. */
struct qemu_plan {
	const char *binary;		/* qemu-system-x86_64 */
	const char *name;
	const char *accel;		/* "kvm" or "tcg" */
	bool q35;			/* q35 machine, else pc */
	bool uefi;			/* OVMF in pflash */
	const char *ovmf_code;		/* with uefi */
	const char *ovmf_vars;		/* with uefi: the VM's copy */
	unsigned sockets, cores;
	uint64_t memory_mib;
	const struct disk_spec *disks;	/* path and format filled in */
	int base_fd;			/* > 2: the disks' base, open read-only;
					 * QEMU gets it as /dev/fdset/1 and so
					 * can never write it.  Else by path. */
	int ndisks;
	const char *cdrom;		/* NULL: none */
	const char *seed;		/* a cloud-init seed (read-only), or NULL */
	bool cdrom_first;		/* boot the CD before the disks */
	const char *kernel, *initrd, *append;	/* direct boot, or NULL */
	bool netdev;
	const struct strvec *forwards;
	const struct share_spec *shares;	/* dir resolved, existing */
	int nshares;
	unsigned spice_port;		/* 0: headless */
	const char *spice_host;
	const char *console_log;	/* serial console copy; NULL: QEMU
					 * waits for one client, who logs */
	const char *console_sock;	/* serial console to attach to */
	const char *qmp_sock;		/* NULL: none */
	const char *vm_qmp_sock;	/* a monitor vm alone uses (its control
					 * socket's way to QEMU), or NULL */
	const char *agent_sock;		/* the guest agent's channel
					 * (org.qemu.guest_agent.0), or NULL */
	bool sandbox;			/* -sandbox on with every deny */
	bool no_reboot;
	bool no_vga;			/* headless with no display adapter: a
					 * guest on the serial console alone */
	const char *incoming;		/* -incoming URI (saved state), or NULL */
	const struct strvec *extra;	/* from vm.defaults */
};

/*
 * Build the argv for a plan.  Pure: reads nothing but the plan.  Option
 * values are escaped for QEMU's comma syntax.
 */
void qemu_argv_build(const struct qemu_plan *p, struct strvec *argv);

/* The QEMU system binary for an arch ("x86_64" -> qemu-system-x86_64). */
char *qemu_binary(const char *arch);

/*
 * Read the extra arguments of the first vm.defaults found in dirs
 * (NULL-terminated list).  Returns 0 (none found is fine), or -EINVAL
 * with err naming the file.  *found gets the file used, or NULL.
 */
int qemu_read_defaults(const char *const *dirs, struct strvec *out,
		       char **found, struct strbuf *err);

/*
 * Decide the accelerator.  For ACCEL_AUTO probe KVM with a tiny guest
 * that must reach long mode and exit through isa-debug-exit; the verdict
 * is cached in cache_dir keyed by the QEMU binary and the host kernel.
 * Returns 0 with "kvm" or "tcg"; *note receives a warning line when
 * falling back.  ACCEL_KVM fails with -ENODEV when /dev/kvm (or
 * $VM_KVM_DEVICE, for tests) cannot be opened, a probe interrupted by a
 * signal with -EINTR; *note then says why, as one line.  Without
 * may_probe (a dry run) an unknown host gets "tcg", unprobed.
 */
int qemu_pick_accel(enum accel_mode mode, const char *binary,
		    const char *cache_dir, bool may_probe, const char **accel,
		    struct strbuf *note);

/*
 * True when binary takes QEMU_SANDBOX (built with seccomp): asked once
 * per process, by running it with the option and -version.
 */
#define QEMU_SANDBOX "on,obsolete=deny,elevateprivileges=deny," \
		     "spawn=deny,resourcecontrol=deny"
bool qemu_has_sandbox(const char *binary);

/* First existing OVMF code / vars template, or NULL. */
const char *qemu_ovmf_code(void);
const char *qemu_ovmf_vars(void);

#endif
