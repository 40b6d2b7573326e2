#!/bin/bash
# Provisioning that can be re-run (add-ssh-keys, post-install) and job
# directories written for the reference vm, on a disk a job lays out
# (sfdisk, mkfs.ext4) with a minimal installed system on it: os-release,
# fstab, /root and a static busybox to chroot into.
. "$(dirname "$0")/../lib.sh"

need_rescue

# install_job: ./install.job lays out /dev/sda: one partition, ext4
# labelled ROOT, the minimal system
install_job() {
	check_args install_job "no arguments" 0 0 "$@" &&
	cat >install.job <<-\EOF
	set -e
	echo "type=83" | sfdisk -q /dev/sda
	mdev -s; sleep 1
	mkfs.ext4 -q -L ROOT /dev/sda1
	mount /dev/sda1 /mnt
	mkdir -p /mnt/etc /mnt/root /mnt/bin /mnt/tmp
	printf 'ID=testos\nNAME="Test OS"\n' >/mnt/etc/os-release
	echo "LABEL=ROOT / ext4 defaults 0 1" >/mnt/etc/fstab
	echo "root:x:0:0:root:/root:/bin/sh" >/mnt/etc/passwd
	cp /bin/busybox /mnt/bin/busybox
	ln -s busybox /mnt/bin/sh
	umount /mnt
	echo installed
	EOF
}

# key NAME FILE: a new ed25519 public key, comment NAME, at FILE
key() {
	check_args key "NAME FILE" 2 2 "$@" &&
	mkdir -p "$(dirname "$2")" && rm -f "${2%.pub}" "$2" &&
	ssh-keygen -q -t ed25519 -N "" -C "$1" -f "${2%.pub}"
}

# readback_job: ./readback.job copies root's authorized_keys to OUTDIR
readback_job() {
	check_args readback_job "no arguments" 0 0 "$@" &&
	printf '%s\n' 'd=$(mount-system)' \
		'cp "$d/root/.ssh/authorized_keys" "$OUTDIR/keys"' >readback.job
}

test_expect "add-ssh-keys run again adds only the new key; each key is there once" '
	key first "$HOME/k/first.pub" && key second "$HOME/my keys/second.pub" &&
	vm --no-uefi -D AHCI=1G @create J && install_job && readback_job &&
	# sshkeys from any layer: the user'"'"'s vm.conf, then guest.conf
	printf "sshkeys = ~/k/first.pub\n" >>"$XDG_CONFIG_HOME/vm.conf" &&
	vm @job install @job add-ssh-keys >out &&
	contains out "1 key(s) added, 0 already there" &&
	printf "[vm]\nsshkeys = ~/k/first.pub \"~/my keys/second.pub\"\n" >>guest.conf &&
	vm @job add-ssh-keys >out &&
	contains out "already there: first" && contains out "adding second" &&
	contains out "1 key(s) added, 1 already there" &&
	vm @job add-ssh-keys >out &&
	contains out "0 key(s) added, 2 already there" &&
	vm @job readback &&
	test "$(grep -c " first$" .work/.out/keys)" = 1 &&
	test "$(grep -c " second$" .work/.out/keys)" = 1 &&
	test "$(wc -l <.work/.out/keys)" = 2
'

test_expect "a key file that sshkeys names and that is missing is an error naming it" '
	key first "$HOME/k/first.pub" &&
	vm --no-uefi -D AHCI=1G @create J &&
	printf "[vm]\nsshkeys = ~/k/first.pub ~/k/gone.pub\n" >>guest.conf &&
	must_fail 1 vm @job add-ssh-keys >out 2>err &&
	contains err "public key file $HOME/k/gone.pub not found (sshkeys setting)" &&
	test ! -e .work/rescue-console.log &&
	printf "[vm]\nsshkeys =\n" >>guest.conf &&
	must_fail 1 vm @job run-ssh >out 2>err &&
	contains err "no public key: set sshkeys"
'

test_expect "the built-in sshkeys skip the usual key files that do not exist" '
	key only-ed25519 "$HOME/.ssh/id_ed25519.pub" &&
	test ! -e "$HOME/.ssh/id_rsa.pub" &&
	vm --no-uefi -D AHCI=1G @create J && install_job &&
	vm @job install @job add-ssh-keys >out &&
	contains out "1 key file(s): $HOME/.ssh/id_ed25519.pub" &&
	contains out "1 key(s) added"
'

test_expect "add-ssh-keys does not follow a link the guest made for /root/.ssh" '
	key first "$HOME/k/first.pub" &&
	vm --no-uefi -D AHCI=1G @create J && install_job &&
	printf "[vm]\nsshkeys = ~/k/first.pub\n" >>guest.conf &&
	printf "%s\n" "d=\$(mount-system)" "ln -s /tmp/.out \$d/root/.ssh" >link.job &&
	vm @job install @job link &&
	must_fail 1 vm @job add-ssh-keys >out 2>err &&
	contains out "/root/.ssh in the installed system is a symbolic link" &&
	test ! -e .work/.out/authorized_keys
'

test_expect "add-ssh-keys for a user: home, uid and gid from the guest's /etc/passwd (SSH_USER, ssh_user); no such user, a bad name, a linked home refused" '
	key first "$HOME/k/first.pub" &&
	vm --no-uefi -D AHCI=1G @create J && install_job &&
	printf "[vm]\nsshkeys = ~/k/first.pub\n" >>guest.conf &&
	cat >users.job <<-\EOF &&
	d=$(mount-system)
	echo alice:x:1000:1001::/home/alice:/bin/sh >>"$d/etc/passwd"
	echo bob:x:1002:1003::/srv/bob:/bin/sh >>"$d/etc/passwd"
	echo carol:x:1004:1004::/var/carol:/bin/sh >>"$d/etc/passwd"
	echo dave:x:1005:1005::/home/.sshx:/bin/sh >>"$d/etc/passwd"
	echo erin:x:1006:1006::/home/erin:/bin/sh >>"$d/etc/passwd"
	mkdir -p "$d/home" "$d/srv/bob" && ln -s /tmp/.out "$d/var"
	ln -s /tmp/.out "$d/home/.sshx"
	mkdir -p "$d/home/erin/.ssh" && ln "$d/etc/os-release" "$d/home/erin/.ssh/authorized_keys"
	EOF
	cat >look.job <<-\EOF &&
	cd "$(mount-system)"
	stat -c "%u %g %a %n" home/alice home/alice/.ssh home/alice/.ssh/authorized_keys \
		srv/bob/.ssh srv/bob/.ssh/authorized_keys >"$OUTDIR/st" 2>&1
	cat home/alice/.ssh/authorized_keys >"$OUTDIR/alice"
	ls -A root >"$OUTDIR/rootls"
	stat -c "%u %a" etc/os-release >"$OUTDIR/osrel"
	EOF
	vm @job install @job users &&
	SSH_USER=alice vm @job add-ssh-keys >out 2>&1 && contains out "for user alice$" &&
	contains out "1 key(s) added" &&
	printf "ssh_user = bob\n" >>guest.conf &&
	vm @job add-ssh-keys >out 2>&1 && contains out "for user bob$" &&
	SSH_USER=nobody must_fail 1 vm @job add-ssh-keys >out 2>&1 &&
	contains out "user nobody is not in the installed system.s /etc/passwd (make the user first, or set ssh_user)" &&
	SSH_USER=carol must_fail 1 vm @job add-ssh-keys >out 2>&1 &&
	contains out "/var in the installed system is a symbolic link; not following it" &&
	test ! -e .work/.out/carol &&
	SSH_USER=dave must_fail 1 vm @job add-ssh-keys >out 2>&1 &&
	contains out "/home/.sshx in the installed system is a symbolic link; not following it" &&
	test ! -e .work/.out/.ssh &&
	SSH_USER=erin must_fail 1 vm @job add-ssh-keys >out 2>&1 &&
	contains out "/home/erin/.ssh/authorized_keys in the installed system has other names (hard links); not changing it" &&
	SSH_USER="a;b" must_fail 1 vm @job add-ssh-keys >out 2>&1 &&
	contains out "add-ssh-keys: .a;b. is not a user name (SSH_USER, or the ssh_user setting)" &&
	lacks out "rescue for J started" &&
	vm @job look && cat .work/.out/st &&
	contains .work/.out/st "^1000 1001 700 home/alice$" &&
	contains .work/.out/st "^1000 1001 700 home/alice/.ssh$" &&
	contains .work/.out/st "^1000 1001 600 home/alice/.ssh/authorized_keys$" &&
	contains .work/.out/st "^1002 1003 700 srv/bob/.ssh$" &&
	contains .work/.out/st "^1002 1003 600 srv/bob/.ssh/authorized_keys$" &&
	lacks .work/.out/st "No such" && test ! -s .work/.out/rootls &&
	test "$(cat .work/.out/osrel)" = "0 644" &&
	contains .work/.out/alice " first$"
'

test_expect "post-install run twice leaves the system as one run does (chroot into it)" '
	vm --no-uefi -D AHCI=1G @create J && install_job &&
	printf "SETUP_HOSTNAME=web1\nSETUP_USERNAME=alice\nSETUP_USER_UID=1000\n" >web.env &&
	cat >web.sh <<-\EOF &&
	echo "$SETUP_HOSTNAME" >"$DESTDIR/etc/hostname"
	chroot "$DESTDIR" /bin/sh -c "grep -q \"^$SETUP_USERNAME:\" /etc/passwd ||
		echo \"$SETUP_USERNAME:x:$SETUP_USER_UID:$SETUP_USER_UID::/home/$SETUP_USERNAME:/bin/sh\" >>/etc/passwd"
	grep -qx "welcome to web1" "$DESTDIR/etc/motd" 2>/dev/null ||
		echo "welcome to web1" >>"$DESTDIR/etc/motd"
	mkdir -p "$DESTDIR/home/$SETUP_USERNAME"
	chroot "$DESTDIR" /bin/busybox chown -R "$SETUP_USER_UID" "/home/$SETUP_USERNAME"
	echo "chrooted: $(chroot "$DESTDIR" /bin/busybox cat /etc/os-release | grep ^ID=)"
	EOF
	printf "%s\n" "d=\$(mount-system)" "cd \$d" \
		"cat etc/hostname etc/passwd etc/motd >\$OUTDIR/state" \
		"stat -c \"%u %n\" home/alice >>\$OUTDIR/state" >check.job &&
	vm @job install &&
	SETUP_PROFILE=web vm @job post-install >out &&
	contains out "chrooted: ID=testos" &&
	vm @job check && cp .work/.out/state once &&
	SETUP_PROFILE=web vm @job post-install >out &&
	vm @job check && cp .work/.out/state twice &&
	cmp once twice &&
	test "$(grep -c ^alice: twice)" = 1 &&
	test "$(grep -c "welcome to web1" twice)" = 1 &&
	contains twice "^1000 home/alice$" && contains twice "^web1$"
'

test_expect "a job directory written for the reference vm works unchanged" '
	key "with space" "$HOME/my keys/ref.pub" &&
	vm --no-uefi -D AHCI=1G @create J && install_job &&
	mkdir -p media/alt-mirror && echo pool >media/alt-mirror/in-the-mirror &&
	printf "[vm]\nsshkeys = \"~/my keys/ref.pub\"\nmedia = %s\nmedia_mirror = alt-mirror\n" \
		"$PWD/media" >>guest.conf &&
	cat >refjob.pre <<-\EOF &&
	for key in "${SSHKEYS[@]}"; do
		run cp -- "$key" "$INDIR/"
		basename -- "$key" >>"$INDIR/SSHKEYS"
	done
	echo "pre: ${#SSHKEYS[@]} key(s)"
	: >"$INDIR/DEBUG"
	EOF
	cat >refjob.job <<-\EOF &&
	sshkeys="$(cat SSHKEYS 2>/dev/null)" || fatal "File SSHKEYS is required!"
	run mount-system && [ -d /mnt/system1/etc ] || fatal "Cannot mount the target system."
	run mkdir -p -m 0700 /mnt/system1/root/.ssh
	for key in $sshkeys; do
		run cat -- "$key" >>/mnt/system1/root/.ssh/authorized_keys
	done
	echo "mntopts=$MNTOPTS"
	ls "$MIRROR" >"$OUTDIR/mirror.ls"
	echo "indir=$INDIR outdir=$OUTDIR"
	EOF
	cat >refjob.post <<-\EOF &&
	[ -s "$OUTDIR/mirror.ls" ] || fatal "the job saw no mirror"
	echo "post: ${SSHKEYS[0]}"
	EOF
	printf "fatal \"Cannot go on\"\necho not reached\n" >refail.job &&
	readback_job &&
	vm @job install @job refjob >out &&
	contains out "pre: 1 key(s)" &&
	contains out "^+ echo .indir=/tmp/.in outdir=/tmp/.out" &&
	contains out "mntopts=trans=virtio" &&
	contains .work/.out/mirror.ls "^in-the-mirror$" &&
	contains out "post: $HOME/my keys/ref.pub" &&
	vm @job readback && contains .work/.out/keys " with space$" &&
	must_fail 1 vm @job refail >out 2>err &&
	contains out "fatal: Cannot go on" && lacks out "not reached"
'

test_done
