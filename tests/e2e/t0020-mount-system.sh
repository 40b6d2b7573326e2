#!/bin/bash
# mount-system on the layouts installers make, laid out by libguestfs
# (guestfish: sfdisk-like partitioning, mkfs, btrfs subvolumes) since the
# test machine may have no loop partitions: GPT with an EFI system
# partition, XFS, btrfs with the root in @ and /home in @home, a disk
# with two systems, a hostile fstab and a partition that cannot be read,
# and LVM as Debian's installer lays it out.
# On each, add-ssh-keys (twice) and a post-install that chroots, read
# back by a job.
. "$(dirname "$0")/../lib.sh"

need_rescue
D=$T/disks
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
mkdir -p "$D" "$LIBGUESTFS_CACHEDIR"

# tree ROOT PRETTY: guestfish commands for a minimal system under ROOT
tree() {
	check_args tree "ROOT PRETTY" 2 2 "$@" &&
	printf '%s\n' "mkdir-p $1/etc" "mkdir-p $1/root" "mkdir-p $1/bin" \
		"write $1/etc/os-release \"ID=test\\nPRETTY_NAME=\\\"$2\\\"\\n\""
}

test_expect "guestfish lays out the five disks" '
	{
	echo "sparse $D/gpt.img 300M" &&
	echo "sparse $D/xfs.img 400M" &&
	echo "sparse $D/btrfs.img 300M" &&
	echo "sparse $D/two.img 300M" &&
	echo "sparse $D/lvm.img 300M" &&
	echo run &&
	# GPT: ESP (by PARTUUID) and an ext4 root (by UUID)
	echo "part-init /dev/sda gpt" &&
	echo "part-add /dev/sda p 2048 133119" &&
	echo "part-add /dev/sda p 133120 -64" &&
	echo "part-set-gpt-type /dev/sda 1 C12A7328-F81F-11D2-BA4B-00A0C93EC93B" &&
	echo "part-set-gpt-guid /dev/sda 1 6E1F2C4A-3B7D-4C1E-9A55-0123456789AB" &&
	echo "mkfs vfat /dev/sda1" &&
	echo "mkfs ext4 /dev/sda2" &&
	echo "set-uuid /dev/sda2 0b3c5d7e-1111-4222-8333-444455556666" &&
	echo "mount /dev/sda2 /" && tree "" "Test GPT" &&
	echo "write /etc/fstab \"UUID=0b3c5d7e-1111-4222-8333-444455556666 / ext4 errors=remount-ro 0 1\\nPARTUUID=6e1f2c4a-3b7d-4c1e-9a55-0123456789ab /boot/efi vfat umask=0077 0 1\\n\"" &&
	echo "mkdir-p /boot/efi" && echo "mount /dev/sda1 /boot/efi" &&
	echo "mkdir-p /boot/efi/EFI/test" &&
	echo "write /boot/efi/EFI/test/grub.cfg \"esp-file\\n\"" &&
	echo umount-all &&
	# MBR, XFS root by LABEL
	echo "part-disk /dev/sdb mbr" &&
	echo "mkfs xfs /dev/sdb1 label:XROOT" &&
	echo "mount /dev/sdb1 /" && tree "" "Test XFS" &&
	echo "write /etc/fstab \"LABEL=XROOT / xfs defaults 0 0\\n\"" &&
	echo umount-all &&
	# btrfs: the root in @, /home in @home
	echo "part-disk /dev/sdc gpt" &&
	echo "mkfs btrfs /dev/sdc1 label:BSYS" &&
	echo "mount /dev/sdc1 /" &&
	echo "btrfs-subvolume-create /@" && echo "btrfs-subvolume-create /@home" &&
	tree /@ "Test btrfs" &&
	echo "write /@/etc/fstab \"LABEL=BSYS / btrfs subvol=@,compress=zstd 0 0\\nLABEL=BSYS /home btrfs subvol=@home 0 0\\n\"" &&
	echo "mkdir-p /@home/alice" &&
	echo "write /@home/alice/note \"in @home\\n\"" &&
	echo umount-all &&
	# two systems (OLD has no os-release), a hostile fstab, and BAD
	echo "part-init /dev/sdd mbr" &&
	echo "part-add /dev/sdd p 2048 204799" &&
	echo "part-add /dev/sdd p 204800 409599" &&
	echo "part-add /dev/sdd p 409600 614399" &&
	echo "mkfs ext4 /dev/sdd1 label:OLD" &&
	echo "mkfs ext4 /dev/sdd2 label:NEW" &&
	echo "mkfs ext4 /dev/sdd3 label:BAD" &&
	echo "mount /dev/sdd1 /" && echo "mkdir-p /etc" &&
	echo "write /etc/fstab \"LABEL=OLD / ext4 defaults 0 1\\n\"" &&
	echo umount-all &&
	echo "mount /dev/sdd2 /" && tree "" "Test Two" &&
	echo "ln-s /tmp /srv" && echo "mkdir-p /mnt/old" &&
	echo "write /etc/fstab \"LABEL=NEW / ext4 defaults 0 1\\nLABEL=OLD /../../tmp/escape ext4 defaults 0 0\\nLABEL=OLD /srv/data ext4 defaults 0 0\\nLABEL=OLD /mnt/old ext4 defaults,nofail 0 0\\nLABEL=GONE /data ext4 defaults 0 0\\n\"" &&
	echo umount-all &&
	# Debian'"'"'s guided LVM: /boot on a partition, root and swap on
	# logical volumes of debian-vg (a dash in a VG name is doubled in
	# /dev/mapper), /home on a volume of a second group
	echo "part-init /dev/sde mbr" &&
	echo "part-add /dev/sde p 2048 206847" &&
	echo "part-add /dev/sde p 206848 411647" &&
	echo "part-add /dev/sde p 411648 -64" &&
	echo "mkfs ext2 /dev/sde1" &&
	echo "set-uuid /dev/sde1 7d2e9f10-2222-4333-8444-555566667777" &&
	echo "pvcreate /dev/sde2" && echo "pvcreate /dev/sde3" &&
	echo "vgcreate debian-vg /dev/sde2" && echo "vgcreate data /dev/sde3" &&
	echo "lvcreate root debian-vg 80" && echo "lvcreate swap_1 debian-vg 8" &&
	echo "lvcreate home data 40" &&
	echo "mkswap /dev/debian-vg/swap_1" &&
	echo "mkfs ext4 /dev/debian-vg/root" && echo "mkfs ext4 /dev/data/home" &&
	echo "mount /dev/debian-vg/root /" && tree "" "Test LVM" &&
	echo "write /etc/fstab \"/dev/mapper/debian--vg-root / ext4 errors=remount-ro 0 1\\nUUID=7d2e9f10-2222-4333-8444-555566667777 /boot ext2 defaults 0 2\\n/dev/data/home /home ext4 defaults 0 2\\n/dev/mapper/debian--vg-swap_1 none swap sw 0 0\\n\"" &&
	echo "mkdir-p /boot" && echo "mount /dev/sde1 /boot" &&
	echo "write /boot/grub.cfg \"boot-file\\n\"" &&
	echo "mkdir-p /home" && echo "mount /dev/data/home /home" &&
	echo "mkdir-p /home/alice" && echo "write /home/alice/note \"on data/home\\n\"" &&
	echo umount-all
	} >layout.gf &&
	timeout 600 flock -s -w 1800 "$GUESTFS_LOCK" guestfish -f layout.gf &&
	# BAD keeps its superblock (blkid still says ext4) but loses its
	# group descriptors: it cannot be mounted
	dd if=/dev/zero of="$D/two.img" bs=1024 seek=$((409600 / 2 + 2)) \
		count=64 conv=notrunc status=none &&
	test -s "$D/btrfs.img"
'

# vm_on IMAGE: a VM here with a 1 MiB disk and IMAGE (sda and sdb, in
# the order the kernel probes them), with a key to add
# and a post-install profile that chroots into the system
vm_on() {
	check_args vm_on IMAGE 1 1 "$@" &&
	mkdir -p "$HOME/k" && rm -f "$HOME/k/k" "$HOME/k/k.pub" &&
	ssh-keygen -q -t ed25519 -N "" -C layout-key -f "$HOME/k/k" &&
	vm --no-uefi -D AHCI=1M -i "AHCI=raw=$1" @create L &&
	printf "[vm]\nsshkeys = ~/k/k.pub\n" >>guest.conf &&
	cat >post-install.sh <<-\EOF
	mkdir -p "$DESTDIR/bin" && cp /bin/busybox "$DESTDIR/bin/busybox"
	chroot "$DESTDIR" /bin/busybox sh -c \
		"grep -qx done-by-chroot /etc/motd 2>/dev/null || echo done-by-chroot >>/etc/motd"
	EOF
}

# check_job: ./check.job mounts the system, shows what is mounted and
# what the jobs wrote, unmounts it all and counts what is left
check_job() {
	check_args check_job "no arguments" 0 0 "$@" &&
	cat >check.job <<-\EOF
	d=$(mount-system) || exit 1
	awk '$2 ~ "^/mnt/system1" { print "mounted", $1, $2, $3 }' /proc/mounts
	echo "keys: $(grep -c layout-key "$d/root/.ssh/authorized_keys")"
	echo "motd: $(cat "$d/etc/motd")"
	[ ! -d "$d/boot/efi/EFI" ] || cat "$d/boot/efi/EFI/test/grub.cfg"
	[ ! -d "$d/home/alice" ] || cat "$d/home/alice/note"
	[ ! -f "$d/boot/grub.cfg" ] || cat "$d/boot/grub.cfg"
	mount-system -u
	echo "left: $(grep -c /mnt/system1 /proc/mounts)"
	echo "active: $(lvm lvs --noheadings -S lv_active=active 2>/dev/null | wc -l)"
	EOF
}

# provision_and_check: add-ssh-keys twice, post-install, the check job
provision_and_check() {
	check_args provision_and_check "no arguments" 0 0 "$@" &&
	check_job &&
	vm @job add-ssh-keys @job add-ssh-keys @job post-install >prov.out 2>&1 &&
	contains prov.out "0 key(s) added, 1 already there" &&
	vm @job check >out 2>&1 &&
	contains out "^keys: 1$" && contains out "^motd: done-by-chroot$" &&
	contains out "^left: 0$" && contains out "^active: 0$"
}

test_expect "GPT with an ESP: root by UUID, /boot/efi by PARTUUID" '
	vm_on "$D/gpt.img" && provision_and_check &&
	contains out "Test GPT (/dev/sd[ab]2) at /mnt/system1" &&
	contains out "^mounted /dev/sd[ab]2 /mnt/system1 ext4" &&
	contains out "^mounted /dev/sd[ab]1 /mnt/system1/boot/efi vfat" &&
	contains out "^esp-file$"
'

test_expect "XFS root by LABEL on an MBR disk" '
	vm_on "$D/xfs.img" && provision_and_check &&
	contains out "Test XFS (/dev/sd[ab]1) at /mnt/system1" &&
	contains out "^mounted /dev/sd[ab]1 /mnt/system1 xfs" &&
	lacks out "Unknown symbol"
'

test_expect "btrfs: the root in subvolume @, /home in @home" '
	vm_on "$D/btrfs.img" && provision_and_check &&
	contains out "Test btrfs (/dev/sd[ab]1, subvolume @) at /mnt/system1" &&
	contains out "^mounted /dev/sd[ab]1 /mnt/system1 btrfs" &&
	contains out "^mounted /dev/sd[ab]1 /mnt/system1/home btrfs" &&
	contains out "^in @home$"
'

test_expect "two systems, a hostile fstab and a disk that cannot be read" '
	vm_on "$D/two.img" && provision_and_check &&
	contains out "2 installed systems; took Test Two (/dev/sd[ab]2)" &&
	contains out "cannot read /dev/sd[ab]3 (ext4)" &&
	contains out "mount point /../../tmp/escape leaves the system" &&
	contains out "mount point /srv/data leaves the system or passes a symbolic link" &&
	contains out "LABEL=GONE (for /data) not found" &&
	contains out "^mounted /dev/sd[ab]1 /mnt/system1/mnt/old ext4" &&
	lacks out "/tmp/escape ext4" &&
	printf "%s\n" "d=\$(mount-system -s LABEL=OLD) && ls \$d/etc" \
		"mount-system -u" "mount-system -s LABEL=NOPE || echo refused" >pick.job &&
	vm @job pick >out 2>&1 &&
	contains out "a system without /etc/os-release (/dev/sd[ab]1) at /mnt/system1" &&
	contains out "no installed system at LABEL=NOPE; found: /dev/sd[ab][12], /dev/sd[ab][12]$" &&
	contains out "^refused$"
'

test_expect "LVM: root and swap on debian-vg, /boot on a partition, /home in another group" '
	vm_on "$D/lvm.img" && provision_and_check &&
	contains out "LVM: activated volume group debian-vg" &&
	contains out "LVM: activated volume group data" &&
	contains out "Test LVM (/dev/mapper/debian--vg-root) at /mnt/system1" &&
	contains out "^mounted /dev/mapper/debian--vg-root /mnt/system1 ext4" &&
	contains out "^mounted /dev/sd[ab]1 /mnt/system1/boot ext2" &&
	contains out "^mounted /dev/data/home /mnt/system1/home ext4" &&
	contains out "^boot-file$" && contains out "^on data/home$" &&
	lacks out "swap_1" &&
	vm @inspect /root/.ssh/authorized_keys >keys &&
	test "$(grep -c layout-key keys)" = 1
'

test_done
