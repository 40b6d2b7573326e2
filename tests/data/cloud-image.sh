#!/bin/bash
# cloud-image.sh DIR: a Debian 12 cloud image for the tests, made once
# into DIR (kept there; a second call finds it): debootstrap of bookworm
# with Debian's cloud-init (NoCloud only), openssh-server, sudo and the
# cloud kernel, booted by UEFI from one EFI program (systemd's stub with
# the kernel, its initramfs and the command line) on a GPT disk whose
# root is ext4, made on the host without a loop device.  Like Debian's
# genericcloud image: cloud-init makes the user "debian" from the seed.
# One more user, "tester" (no password, no sudo), is there already, for
# the way without cloud-init (@job add-ssh-keys SSH_USER=tester).
#
#   DIR/debian-12-test.qcow2   the image
#   DIR/SHA256SUMS             its digest, as a distribution lists it
#
# Needs root (debootstrap, chroot), network to Debian's archive
# (MIRROR, default http://deb.debian.org/debian), about 2 GB in DIR's
# file system while it works, and 5-10 minutes.
set -euo pipefail
out=$1
mirror=${MIRROR:-http://deb.debian.org/debian}
image=$out/debian-12-test.qcow2
# an image made by another version of this script is made again
sum=$(sha256sum "$0" | cut -d' ' -f1)
[ -f "$image" ] && [ -f "$out/SHA256SUMS" ] &&
	[ "$(cat "$out/script.sha256" 2>/dev/null)" = "$sum" ] && exit 0
rm -f "$image" "$out/SHA256SUMS" "$out/script.sha256"
for t in debootstrap mkfs.ext4 mkfs.vfat mmd mcopy sfdisk objcopy qemu-img; do
	command -v "$t" >/dev/null || { echo "cloud-image.sh: $t is missing" >&2; exit 1; }
done
mkdir -p "$out"
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'umount -l "$work/root/proc" "$work/root/dev" 2>/dev/null || true; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
root=$work/root

# the base by debootstrap, the rest by apt (which resolves what
# debootstrap's --include does not), no service started meanwhile
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
	tail -20 "$work/debootstrap.log" >&2
	exit 1
}
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# the packages' scripts need /dev's nodes (null, urandom), which
# debootstrap does not make everywhere (not inside another chroot)
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
# in the chroot only its own environment: the caller's TMPDIR (a test's
# own directory) is no path there, and maintainer scripts that make a
# temporary file (update-ca-certificates, ucf) fail on it
in_root() {
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
in_root /bin/sh -c '
	apt-get update -qq &&
	apt-get install -y -qq --no-install-recommends systemd-sysv udev dbus \
		linux-image-cloud-amd64 initramfs-tools cloud-init openssh-server \
		sudo ifupdown isc-dhcp-client netbase iproute2 procps \
		systemd-boot-efi' >"$work/apt.log" 2>&1 || {
	tail -20 "$work/apt.log" >&2
	exit 1
}
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"

# the system: its root by label, NoCloud the only source, a serial
# console, the network by DHCP on the one NIC (cloud-init's fallback)
echo "LABEL=ROOT / ext4 defaults 0 1" >"$root/etc/fstab"
echo localhost >"$root/etc/hostname"
# Host keys: ed25519 alone.  The RSA key Debian's cloud-init also makes
# takes 20 s of a first boot under TCG, before sshd starts (the tests'
# clients use ed25519 anyway).
cat >"$root/etc/cloud/cloud.cfg.d/90-vm-test.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
ssh_genkeytypes: [ ed25519 ]
EOF
in_root useradd -m -s /bin/bash tester
in_root systemctl enable ssh.service >/dev/null 2>&1 || true
umount "$root/proc" "$root/dev"
rm -f "$root"/etc/ssh/ssh_host_*    # cloud-init or the first boot makes them
# without cloud-init (cloud_init = no) sshd still needs a host key:
# made before sshd's own check of its settings
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/hostkeys.conf" <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key || exec /usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key'
ExecStartPre=/usr/sbin/sshd -t
EOF

# one EFI program: the stub, the kernel, its initramfs, the command line
kernel=$(ls "$root"/boot/vmlinuz-* | head -n 1)
initrd=$(ls "$root"/boot/initrd.img-* | head -n 1)
stub=$root/usr/lib/systemd/boot/efi/linuxx64.efi.stub
# (mitigations=off: the in-guest Spectre/Meltdown work, page-table
# isolation most, costs most under TCG; the rescue leaves it off too)
printf 'root=LABEL=ROOT ro console=ttyS0 net.ifnames=0 quiet mitigations=off' >"$work/cmdline"
objcopy --add-section .osrel="$root/etc/os-release" --change-section-vma .osrel=0x20000 \
	--add-section .cmdline="$work/cmdline" --change-section-vma .cmdline=0x30000 \
	--add-section .linux="$kernel" --change-section-vma .linux=0x2000000 \
	--add-section .initrd="$initrd" --change-section-vma .initrd=0x3000000 \
	"$stub" "$work/BOOTX64.EFI"
rm -rf "$root/boot"/* "$root/var/cache/apt"/*.bin "$root/var/lib/apt/lists"/*_*

# the disk: GPT, an ESP of 64 MiB, the root in the rest of 3 GiB
esp_mib=$(( ($(stat -c %s "$work/BOOTX64.EFI") >> 20) + 16 ))
[ "$esp_mib" -ge 64 ] || esp_mib=64
mkfs.vfat -C -n ESP "$work/esp.img" $((esp_mib * 1024)) >/dev/null
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
truncate -s 3G "$work/disk.raw"
printf 'label: gpt\nstart=1MiB, size=%sMiB, type=uefi\ntype=linux\n' "$esp_mib" |
	sfdisk -q "$work/disk.raw"
dd if="$work/esp.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc status=none
root_mib=$(( 3 * 1024 - esp_mib - 2 ))
mkfs.ext4 -q -L ROOT -d "$root" -E offset=$(( (esp_mib + 1) << 20 )) \
	"$work/disk.raw" "${root_mib}M"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/debian-12-test.qcow2"
(cd "$work" && sha256sum debian-12-test.qcow2 >SHA256SUMS)
mv "$work/debian-12-test.qcow2" "$image"
mv "$work/SHA256SUMS" "$out/SHA256SUMS"
echo "$sum" >"$out/script.sha256"
