#!/bin/bash
# The rescue mounts every file system it has a module for: disks made on
# the host (ext4, XFS, btrfs, vfat, an ISO), each holding a file the host
# planted, attached with -i and mounted read-only by a job.
. "$(dirname "$0")/../lib.sh"

[ -f "$(rescue_iso)" ] || {
	echo "not ok 1 - no rescue image: run make rescue"
	exit 1
}
PATH=$PATH:/sbin:/usr/sbin

# mkfs_all DIR: DIR/{ext4,xfs,btrfs,vfat}.img and DIR/iso.iso, each with
# planted.txt saying "planted in TYPE", labelled FS_TYPE
mkfs_all() {
	local d=$1 t &&
	for t in ext4 xfs btrfs vfat iso; do
		mkdir -p "$d/$t" && echo "planted in $t" >"$d/$t/planted.txt" ||
			return 1
	done &&
	truncate -s 64M "$d/ext4.img" &&
	mkfs.ext4 -q -L FS_EXT4 -d "$d/ext4" "$d/ext4.img" &&
	# mkfs.xfs has no -d DIR; a protofile lists what goes in
	printf 'boot\n0 0\nd--755 0 0\nplanted.txt ---644 0 0 %s\n$\n' \
		"$d/xfs/planted.txt" >"$d/xfs.proto" &&
	truncate -s 320M "$d/xfs.img" &&
	mkfs.xfs -q -L FS_XFS -p "$d/xfs.proto" "$d/xfs.img" &&
	truncate -s 128M "$d/btrfs.img" &&
	mkfs.btrfs -q -L FS_BTRFS --rootdir "$d/btrfs" "$d/btrfs.img" >/dev/null &&
	truncate -s 32M "$d/vfat.img" &&
	mkfs.vfat -n FS_VFAT "$d/vfat.img" >/dev/null &&
	mcopy -i "$d/vfat.img" "$d/vfat/planted.txt" ::/planted.txt &&
	xorriso -as mkisofs -quiet -V FS_ISO -R -o "$d/iso.iso" "$d/iso" 2>/dev/null
}

test_expect "ext4, XFS, btrfs, vfat and an ISO mount read-only in a job" '
	mkfs_all "$PWD/fs" &&
	vm --no-uefi -D VIRT=1G -i VIRT=raw="$PWD/fs/ext4.img" \
		-i SCSI=raw="$PWD/fs/xfs.img" -i AHCI=raw="$PWD/fs/btrfs.img" \
		-i NVME=raw="$PWD/fs/vfat.img" -i CDROM=raw="$PWD/fs/iso.iso" \
		@create F &&
	cat >mountall.job <<-\EOF &&
	for t in ext4 xfs btrfs vfat iso; do
		dev=$(blkid -L "FS_$(echo $t | tr a-z A-Z)") || { echo "$t: no device"; continue; }
		mkdir -p /mnt/$t
		if mount -o ro "$dev" /mnt/$t; then
			echo "$t on $dev: $(cat /mnt/$t/planted.txt)"
			umount /mnt/$t
		else
			echo "$t on $dev: cannot mount"
		fi
	done
	EOF
	vm @job mountall >out &&
	for t in ext4 xfs btrfs vfat iso; do
		contains out "^$t on /dev/.*: planted in $t$" || exit 1
	done &&
	lacks .work/rescue-console.log "Unknown symbol"
'

test_done
