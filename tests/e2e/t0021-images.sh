#!/bin/bash
# VMs made from existing disk images: -D '' -i makes a VM whose disks are
# its images, the boot order follows the images, @job and @inspect see
# them, and what cannot work is refused before anything is made.
. "$(dirname "$0")/../lib.sh"

ISO=$(autorun_iso test-install "$TOP/tests/data/autorun-install") || {
	echo "not ok 1 - cannot build the test ISO (make rescue first)"
	exit 1
}
export ISO

# installer_image FILE: a bootable disk image, the test installer ISO
# (a hybrid image: it boots from a hard disk too), which marks the first
# disk it sees when it runs
installer_image() {
	check_args installer_image FILE 1 1 "$@" &&
	cp "$ISO" "$1"
}

# first_line FILE: the text in FILE's first sector
first_line() {
	head -c 512 "$1" | tr -d '\0' | head -n 1
}

test_expect "-D '' -i: the image is the VM's disk, @run boots it and writes it" '
	installer_image "$PWD/seed.raw" &&
	vm --no-uefi -D "" -i AHCI=raw="$PWD/seed.raw" @create D >out 2>&1 &&
	contains guest.conf "^disks = *$" &&
	contains guest.conf "^images = AHCI=raw=$PWD/seed.raw$" &&
	test -z "$(ls .work/ | grep "^disk-")" &&
	vm -t 120 @run &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda" &&
	test "$(first_line seed.raw)" = VM-INSTALLED-BY-AUTORUN &&
	contains .work/run-vm.sh "file=$PWD/seed.raw,format=raw" &&
	contains .work/run-vm.sh "ide-hd,drive=disk0,bus=ahci0.0,bootindex=0"
'

test_expect "with disks too, the images boot first and come first" '
	installer_image "$PWD/seed.raw" &&
	vm --no-uefi -D VIRT=64M -i AHCI=raw=seed.raw @create T &&
	vm -t 120 @run &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda" &&
	test "$(first_line seed.raw)" = VM-INSTALLED-BY-AUTORUN &&
	qemu-img convert -O raw .work/disk-0.img disk0.raw &&
	test -z "$(first_line disk0.raw)" &&
	contains .work/run-vm.sh "ide-hd,drive=disk0,bus=ahci0.0,bootindex=0" &&
	contains .work/run-vm.sh "virtio-blk-pci,drive=disk1,bootindex=1"
'

test_expect "a job sees the image as its disk; @inspect reads it" '
	mkdir -p root/etc root/bin root/root &&
	printf "PRETTY_NAME=\"Test Image\"\nID=test\n" >root/etc/os-release &&
	printf "LABEL=IMGROOT / ext4 defaults 0 1\n" >root/etc/fstab &&
	echo planted-in-image >root/root/note &&
	truncate -s 64M img.raw &&
	mkfs.ext4 -q -L IMGROOT -d root img.raw &&
	vm --no-uefi -D "" -i VIRT=raw=img.raw @create I &&
	printf "%s\n" "d=\$(mount-system) && cat \$d/root/note && echo written >\$d/root/by-job" \
		"mount-system -u" >note.job &&
	vm @job note >out 2>&1 &&
	contains out "^planted-in-image$" &&
	contains out "Test Image (/dev/vda) at /mnt/system1" &&
	vm -q @inspect /root/by-job >got &&
	test "$(cat got)" = written &&
	vm @inspect >report &&
	contains report "product *Test Image"
'

test_expect "what cannot make a VM is refused, and nothing is made" '
	must_fail 2 vm -D "" @create N 2>err &&
	contains err "cannot create N: no disks and no images" &&
	must_fail 1 vm -D "" -i VIRT=raw=missing.raw @create N 2>err &&
	contains err "cannot create N: image $PWD/missing.raw: No such file or directory" &&
	test ! -e guest.conf && test ! -e .work &&
	truncate -s 1M some.raw &&
	vm --no-uefi -D "" -i VIRT=raw=some.raw @create N &&
	must_fail 1 vm @backup 2>err &&
	contains err "cannot back up N: its disks are images outside the VM" &&
	test -z "$(ls backups 2>/dev/null)" &&
	rm some.raw &&
	must_fail 1 vm -t 30 @run 2>err &&
	contains err "image $PWD/some.raw: No such file or directory" &&
	no_qemu
'

test_expect "an image by URL boots from the download cache, which it never writes" '
	mkdir -p srv/files && installer_image "$PWD/srv/files/seed.raw" &&
	sum=$(sha256sum <srv/files/seed.raw) &&
	{ python3 "$TOP/tests/data/httpd.py" srv/files srv/port srv/log & } &&
	wait_for 10 test -s srv/port &&
	url=http://127.0.0.1:$(cat srv/port)/seed.raw &&
	export XDG_CACHE_HOME=$PWD/cache &&
	vm --no-uefi -D "" -i AHCI=raw="$url" @create U &&
	vm -t 120 @run &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda" &&
	contains .work/run-vm.sh "format=raw,discard=unmap,snapshot=on" &&
	cached=$(ls "$XDG_CACHE_HOME"/vm/downloads/*-seed.raw) &&
	test "$(sha256sum <"$cached")" = "$sum"
'

test_done
