#!/bin/bash
# Real guests under QEMU: an unattended installer ISO boots once, later
# boots use the disks, timeouts and signals stop QEMU, the lock holds.
. "$(dirname "$0")/../lib.sh"

ISO=$(autorun_iso test-install "$TOP/tests/data/autorun-install") || {
	echo "not ok 1 - cannot build the test ISO (make rescue first)"
	exit 1
}
export ISO

# first_sector DISK: the first 512 bytes of a qcow2 disk, as text
first_sector() {
	qemu-img convert -O raw "$1" "$TEST_TMP/raw.$$" &&
	head -c 512 "$TEST_TMP/raw.$$" | tr -d '\0' &&
	rm -f "$TEST_TMP/raw.$$"
}

test_expect "@create ISO @run: the installer boots once from the ISO and powers off" '
	vm --no-uefi @create T "$ISO" @run >out 2>&1 &&
	contains out "Executing command: create(.T., .*test-install.iso.)" &&
	contains out "Executing command: run()" &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda" &&
	first_sector .work/disk-0.img | grep -q VM-INSTALLED-BY-AUTORUN &&
	contains guest.conf "^firstboot = no" &&
	sh -n .work/run-vm.sh && contains .work/run-vm.sh "^exec qemu-system-x86_64" &&
	contains .work/run-vm.sh "-no-reboot"
'

test_expect "with UEFI (the default) the installer ISO boots through OVMF" '
	vm @create T "$ISO" @run &&
	contains .work/run-vm.sh "machine q35,accel=tcg" &&
	contains .work/run-vm.sh "if=pflash" &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda"
'

test_expect "a later @run boots the disks, not the ISO; --timeout stops it" '
	vm --no-uefi @create T "$ISO" @run &&
	: >.work/console.log &&
	must_fail 1 vm -t 6 @run 2>err &&
	contains err "timeout of 6 s expired" &&
	lacks .work/console.log AUTORUN &&
	lacks .work/run-vm.sh "-no-reboot" && lacks .work/run-vm.sh "cd0"
'

test_expect "--keep-cd keeps the ISO attached after the first boot, disks first" '
	vm --no-uefi -k @create T "$ISO" @run &&
	must_fail 1 vm -t 4 @run 2>err &&
	contains .work/run-vm.sh "ide-cd,drive=cd0,bus=ahci0.1,bootindex=1"
'

test_expect "vm ISO is @run ISO: boots that ISO first" '
	vm --no-uefi @create T &&
	vm "$ISO" >out 2>&1 &&
	contains out "Executing command: run(.*test-install.iso.)" &&
	contains .work/console.log "AUTORUN-DONE"
'

test_expect "the installer sees NVMe and virtio disks on their buses" '
	vm --no-uefi -D NVME=1G @create N "$ISO" @run &&
	contains .work/console.log "AUTORUN-DONE on /dev/nvme0n1" &&
	vm --no-uefi -D VIRT=1G -d "$PWD/v" @create V "$ISO" @run &&
	contains v/.work/console.log "AUTORUN-DONE on /dev/vda"
'

test_expect "SIGTERM to vm stops QEMU; a second vm on the same VM is refused" '
	vm --no-uefi @create T &&
	{ "$VM_BIN" -t 120 @run >run.out 2>&1 & } &&
	pid=$! &&
	wait_for 20 test -S .work/qmp.sock &&
	must_fail 1 vm @destroy 2>err &&
	contains err "T is running (pid [0-9]*): stop it first with vm @stop" &&
	kill -TERM $pid && rc=0 && { wait $pid || rc=$?; } &&
	test $rc -eq 143 &&
	contains run.out "vm was interrupted" &&
	no_qemu &&
	vm @destroy
'

test_expect "QEMU failing to start is reported with its own words" '
	vm --no-uefi @create T &&
	printf -- "-device no-such-device\n" >vm.defaults &&
	must_fail 1 vm @run 2>err &&
	contains err "QEMU for T exited with status 1" &&
	contains err "no-such-device"
'

test_done
