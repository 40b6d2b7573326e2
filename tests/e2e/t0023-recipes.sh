#!/bin/bash
# The README's recipes work as written: each is the code between
# <!-- recipe-NAME --> and <!-- /recipe-NAME -->, run as it is, with a
# small unattended installer in place of Debian's ISO (at the path the
# recipe names), a small system with sshd in place of Debian's cloud
# image (served on 127.0.0.1), and a free port in place of 8000.  The
# service recipe runs under a systemd of its own: a container of this
# system (systemd-nspawn), since the tests' machine need not run one.
# README.ru.md is a translation of README.md: the same headings and the
# same code.
. "$(dirname "$0")/../lib.sh"

need_rescue
ISO=$(autorun_iso test-install "$TOP/tests/data/autorun-install") || {
	echo "not ok 1 - cannot build the test ISO (make rescue first)"
	exit 1
}

# the recipes call vm from PATH
mkdir -p "$T/bin" && ln -sf "$VM_BIN" "$T/bin/vm" && export PATH="$T/bin:$PATH"

# scraped PORT: the prometheus on 127.0.0.1:PORT has a value of vm_up
scraped() {
	check_args scraped PORT 1 1 "$@" &&
	curl -s "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=vm_up" >scraped.json &&
	test "$(jq ".data.result | length" scraped.json)" -ge 1
}

# recipe NAME: README's recipe NAME into ./NAME.sh (not empty)
recipe() {
	check_args recipe NAME 1 1 "$@" &&
	block "$TOP/README.md" "recipe-$1" >"$1.sh" &&
	test -s "$1.sh"
}

test_expect "README.md is short, has the seven recipes and README.ru.md has its headings and code; every link resolves" '
	test "$(wc -l <"$TOP/README.md")" -le 400 &&
	python3 "$TOP/tests/data/doc-links.py" "$TOP" &&
	for r in cloud iso image job snapshots service serve; do
		recipe $r || exit 1
	done &&
	python3 - "$TOP/README.md" "$TOP/README.ru.md" <<-\EOF
	import re, sys
	def shape(path):
	    lines = open(path).read().split("\n")
	    heads, code, block, prev = [], [], None, ""
	    for i, l in enumerate(lines):
	        nxt = lines[i + 1] if i + 1 < len(lines) else ""
	        m = re.match(r"(#+) ", l)
	        if m and block is None:
	            heads.append(len(m.group(1)))
	        if block is None and l.startswith("    ") and (prev == "" or prev.startswith("<!--")):
	            block = [l]
	        elif block is not None and (l.startswith("    ") or (l == "" and nxt.startswith("    "))):
	            block.append(l)
	        elif block is not None:
	            code.append("\n".join(block))
	            block = None
	        if l.startswith("<!--"):
	            code.append(l)
	        prev = l
	    return heads, code
	en, ru = shape(sys.argv[1]), shape(sys.argv[2])
	bad = []
	if en[0] != ru[0]:
	    bad.append("heading levels differ: %s against %s" % (en[0], ru[0]))
	for k, (a, b) in enumerate(zip(en[1], ru[1])):
	    if a != b:
	        bad.append("code block %d differs:\n%s\n---\n%s" % (k + 1, a, b))
	        break
	if len(en[1]) != len(ru[1]):
	    bad.append("%d code blocks against %d" % (len(en[1]), len(ru[1])))
	print("\n".join(bad) or "%d headings, %d code blocks alike" % (len(en[0]), len(en[1])))
	sys.exit(1 if bad else 0)
	EOF
'

# container DIR: a systemd of its own as PID 1 of a container of this
# system (systemd-nspawn over an overlay of /, mounted in a mount
# namespace of its own so that it goes with it; a network of its own; no
# unit of this system's multi-user.target), its writes in DIR, the
# current directory there too, read-only (its /tmp is a tmpfs of its
# own); sets ns to the nspawn process and ns_init to the container's
# PID 1.  In a chroot (as fresh-debian runs the tests), whose / is no
# mount point and has no cgroup file system, it makes both first.
container() {
	check_args container DIR 1 1 "$@" &&
	mkdir -p "$1/up" "$1/wk" "$1/root" "$1/self" &&
	cat >"$1/boot.sh" <<-'EOF' &&
	# boot.sh DIR SHARE: run in a mount namespace of its own
	if ! mountpoint -q /; then
		mount --rbind / "$1/self" && cd "$1/self" &&
			exec chroot . sh "$1/boot.sh" "$1" "$2"
		exit 1
	fi
	{ mountpoint -q /sys/fs/cgroup/systemd || mountpoint -q /sys/fs/cgroup || {
		mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup &&
		mkdir /sys/fs/cgroup/systemd &&
		mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd; }; } &&
	mount -t overlay overlay -o lowerdir=/,upperdir="$1/up",workdir="$1/wk" "$1/root" &&
	exec systemd-nspawn --quiet -D "$1/root" --private-network \
		--register=no --keep-unit --machine="vm-test-$$" \
		--bind-ro="$2" -b -- systemd.unit=basic.target
	EOF
	prop=private &&
	{ unshare -m --propagation private true 2>/dev/null || prop=unchanged; } &&
	{ unshare -m --propagation "$prop" sh "$1/boot.sh" "$1" "$PWD" \
		>"$1/boot.log" 2>&1 </dev/null & } &&
	ns=$! &&
	wait_for 60 pgrep -P "$ns" -x systemd >/dev/null &&
	ns_init=$(pgrep -P "$ns" -x systemd) &&
	wait_for 60 container_up
}
# container_up: the container's systemd has started what it starts
# (a unit of this system that fails there leaves it "degraded")
container_up() {
	check_args container_up "no arguments" 0 0 "$@" &&
	state=$(inside systemctl is-system-running 2>/dev/null || true) &&
	{ test "$state" = running || test "$state" = degraded; }
}

# inside CMD...: CMD as root in the container, in an environment of its
# own (none of the test's TMPDIR, HOME or XDG directories)
inside() {
	check_args inside "CMD..." 1 99 "$@" &&
	timeout 600 nsenter -t "$ns_init" -a -r -w env -i \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 "$@"
}

# container_off: the container powered off (its units stopped), nspawn
# gone; when that takes too long, its PID 1 killed, which ends every
# process of the container (a QEMU in it too), and nspawn
container_off() {
	check_args container_off "no arguments" 0 0 "$@" &&
	{ inside systemctl poweroff || true; } &&
	{ wait_for 120 eval "! kill -0 $ns 2>/dev/null" ||
		kill -KILL "$ns_init" "$ns" 2>/dev/null || true; } &&
	wait_for 10 eval "! kill -0 $ns 2>/dev/null"
}

test_expect "recipe: a VM from an ISO, installed, kept as a snapshot, booted from its disk" '
	mkdir -p "$HOME/Downloads" &&
	ln -sf "$ISO" "$HOME/Downloads/debian-12-amd64-netinst.iso" &&
	rm -rf "$HOME/vms/web1" && recipe iso &&
	# all but the last line; the last boots the installed disk, which
	# the test installer does not make bootable: it runs to a timeout
	head -n -1 iso.sh >most.sh && tail -n 1 iso.sh >last.sh &&
	test "$(cat last.sh)" = vm &&
	{ bash -e most.sh >out 2>&1 || ! cat out; } &&
	d=$HOME/vms/web1 &&
	contains "$d/.work/console.log" "AUTORUN-DONE on /dev/vda" &&
	contains "$d/guest.conf" "^firstboot = no" &&
	test -s "$d/backups/installed.tar.gz" &&
	: >"$d/.work/console.log" &&
	printf "[vm]\ntimeout = 15\n" >>"$XDG_CONFIG_HOME/vm.conf" &&
	must_fail 1 bash -e -c "cd \"$d\" && . \"$PWD/last.sh\"" 2>err &&
	contains err "timeout of 15 s expired" &&
	lacks "$d/.work/console.log" AUTORUN && no_qemu
'

test_expect "recipes: a provisioning job without booting, then snapshots rolled back, published and restored by URL" '
	d=$HOME/vms/web1 && rm -rf "$d" "$HOME/vms/web1-copy" &&
	mkdir -p "$d" && vm -q --no-uefi -D VIRT=64M -d "$d" @create web1 &&
	install_os "$d" /dev/vda old &&
	recipe job && { bash -e job.sh >out 2>err || ! cat out err; } &&
	{ test "$(tail -n 1 out)" = web1 || ! cat out err; } &&
	recipe snapshots && port=$(free_port) &&
	sed "s/8000/$port/g" snapshots.sh >snap.sh &&
	{ bash -e snap.sh >out 2>err || ! cat out err; } &&
	{ contains out "^before  .*before the upgrade" || ! cat out err; } &&
	contains err "restored web1 from snapshot http://127.0.0.1:$port/release.tar.gz" &&
	# the copy holds what the first web1 had when it shipped
	c=$HOME/vms/web1-copy && test -f "$c/guest.conf" &&
	printf "cat \"\$(mount-system)/etc/hostname\"\n" >"$c/read.job" &&
	vm -q -d "$c" @job read >out 2>&1 && contains out "^web1$" &&
	no_qemu
'

# image_disk OUT: the test's stand-in for Debian's nocloud image, in
# qcow2: GPT with an ESP whose BOOTX64.EFI is the rescue with
# tests/data/autorun-image (dropbear with the keys of the system's root),
# and an ext4 root (LABEL=ROOT) with fstab, os-release, a shell and an
# ssh-keygen that says it ran; made on the host, no guest booted
image_disk() {
	check_args image_disk OUT 1 1 "$@" &&
	local iso esp &&
	iso=$(autorun_iso test-image "$TOP/tests/data/autorun-image") &&
	rm -rf root && mkdir -p root/etc/ssh root/bin root/usr/bin root/root &&
	echo "LABEL=ROOT / ext4 defaults 0 1" >root/etc/fstab &&
	echo deb12 >root/etc/hostname &&
	printf "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n" >root/etc/os-release &&
	cpio -i --quiet --to-stdout bin/busybox <"$TOP/rescue/out/rescue-x86_64.initrd" >root/bin/sh &&
	printf "#!/bin/sh\necho made-by-chroot >/etc/ssh/ssh_host_test_key\n" >root/usr/bin/ssh-keygen &&
	chmod 755 root/bin/sh root/usr/bin/ssh-keygen &&
	osirrox -indev "$iso" -extract /boot/efiboot.img esp.img 2>/dev/null &&
	esp=$(( ($(stat -c %s esp.img) + 1048575) / 1048576 )) &&
	truncate -s $((esp + 66))M disk.raw &&
	printf "label: gpt\nstart=1MiB, size=%sMiB, type=uefi\nsize=64MiB, type=linux\n" "$esp" |
		sfdisk -q disk.raw &&
	dd if=esp.img of=disk.raw bs=1M seek=1 conv=notrunc status=none &&
	mkfs.ext4 -q -L ROOT -d root -E offset=$(( (esp + 1) * 1048576 )) disk.raw 64M &&
	qemu-img convert -O qcow2 disk.raw "$1" && rm -rf root esp.img disk.raw
}

test_expect "recipe: a VM from a disk image, reached by @ssh with your key (a test image served on 127.0.0.1)" '
	mkdir -p srv && image_disk srv/debian-12-nocloud-amd64.qcow2 &&
	port=$(free_port) &&
	{ python3 -m http.server --bind 127.0.0.1 "$port" --directory srv \
		>srv.log 2>&1 & } &&
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null &&
	mkdir -p "$HOME/.ssh" && rm -f "$HOME/.ssh/id_ed25519" &&
	ssh-keygen -q -t ed25519 -N "" -C recipe-key -f "$HOME/.ssh/id_ed25519" &&
	rm -rf "$HOME/vms/deb12" && recipe image &&
	# as written, with the served URL
	sed -e "s|https://cloud.debian.org/images/cloud/bookworm/latest/|http://127.0.0.1:$port/|" \
		image.sh >run.sh &&
	contains run.sh "^vm @ssh uname -a$" && contains run.sh "@start$" &&
	{ bash -e run.sh >out 2>&1 || ! cat out; } &&
	contains out "1 key(s) added" &&
	contains out "^Linux rescue .* x86_64" &&
	d=$HOME/vms/deb12 && contains "$d/guest.conf" "^base = http://127.0.0.1:$port/" &&
	# the forward to 22 was vm'"'"'s own, for that run (with the seed,
	# @start waited for sshd)
	lacks "$d/guest.conf" "^forwards" &&
	contains "$d/.work/run-vm.sh" "hostfwd=tcp:127.0.0.1:[0-9]*-:22" &&
	contains "$d/guest.conf" "^uefi = yes" &&
	# the host-key job ran the image'"'"'s ssh-keygen; the guest was that disk
	contains "$d/.work/console.log" "IMAGE-GUEST: host key: made-by-chroot" &&
	contains "$d/.work/console.log" "IMAGE-GUEST: dropbear is up" &&
	# pinned to the served image (each @job checks the base against it)
	sum=$(sha256sum srv/debian-12-nocloud-amd64.qcow2 | cut -d" " -f1) &&
	contains "$d/guest.conf" "^base_sha256 = $sum$" && no_qemu
'

test_expect "recipe: the host's VMs on a dashboard, vm serve and prometheus (on free ports, a directory of its own)" '
	mkdir -p vms/web && vm -q -d vms/web --no-uefi -p "" -D VIRT=64M @create web &&
	recipe serve && port=$(free_port) && pport=$(free_port) &&
	sed -e "s|/srv/vms|$PWD/vms|; s|9180|$port|g; s|9090|$pport|g" serve.sh >run.sh &&
	contains run.sh "^vm serve --listen=127.0.0.1:$port $PWD/vms &$" &&
	# sourced, so what it starts in the background is this test'"'"'s
	# (and vm is the binary on PATH, not the function that would wrap it)
	unset -f vm && . ./run.sh >out 2>&1 &&
	contains out "^web stopped$" &&
	wait_for 60 scraped "$pport" &&
	curl -s "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=vm_up" >q.json &&
	equals "$(jq -r ".data.result[0].metric.vm, .data.result[0].value[1]" q.json | tr "\n" " ")" "web 0 "
'

test_expect "recipe: a VM as a service, as written, under systemd (a container of this system: sudo, useradd, systemctl, the journal)" '
	recipe service &&
	contains service.sh "systemctl enable --now" &&
	container "$PWD/ns" &&
	trap "container_off || :; p=\$(jobs -p) && [ -z \"\$p\" ] || kill \$p 2>/dev/null || :" EXIT &&
	# vm installed (the binary under test, not made again: the
	# container has none of make check'"'"'s flags), the test installer
	# where the recipe names Debian'"'"'s
	inside make -s -C "$TOP" -o vm install >inst.out 2>&1 &&
	inside mkdir -p /srv/iso &&
	inside cp "$ISO" /srv/iso/debian-12-amd64-netinst.iso &&
	inside chmod 644 /srv/iso/debian-12-amd64-netinst.iso &&
	{ inside bash -e "$PWD/service.sh" >out 2>&1 || ! cat out; } &&
	contains out "^web: running" &&
	contains out "created web in /srv/vms/web" &&
	unit="vm@$(systemd-escape --path /srv/vms/web).service" &&
	inside systemctl is-active "$unit" &&
	inside journalctl --no-pager -u "vm@*" -p warning >warn &&
	contains warn "warning: KVM is not available" &&
	lacks warn "is running (tcg" &&
	inside journalctl --no-pager -u "vm@*" -p info >info &&
	contains info "web is running (tcg" &&
	# the installed disk boots nothing that hears the power button: a
	# short stop timeout, so systemctl stop forces it soon
	inside mkdir -p /etc/systemd/system/vm@.service.d &&
	printf "[Service]\nEnvironment=VM_STOP_TIMEOUT=5\n" >stop.conf &&
	inside cp "$PWD/stop.conf" /etc/systemd/system/vm@.service.d/stop.conf &&
	inside systemctl daemon-reload &&
	inside systemctl stop "$unit" &&
	{ inside systemctl is-active "$unit" >state || true; } &&
	lacks state "^active" &&
	must_fail 3 inside runuser -u vm -- vm -d /srv/vms/web @status >st &&
	contains st "^web: stopped" &&
	! inside pgrep -f qemu-system &&
	container_off
'

test_done
