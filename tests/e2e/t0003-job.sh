#!/bin/bash
# @job with the real rescue image under QEMU: .pre/.job/.post, exit
# status, the live log, timeouts, and a guest that is not trusted.
. "$(dirname "$0")/../lib.sh"

need_rescue

test_expect "a job that prints and exits 0: vm exits 0 and shows the log" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "echo hello from \$(uname -n)\nls /dev/sda\n" >hello.job &&
	vm @job hello >out 2>err &&
	contains out "hello from rescue" && contains out "^/dev/sda$" &&
	test ! -e .work/.in &&
	contains .work/.out/job.log "hello from rescue" &&
	no_qemu
'

test_expect "a job that exits 3: vm exits 3 and .post does not run" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "echo failing; exit 3\n" >three.job &&
	printf "touch \"\$HOSTDIR/post-ran\"\n" >three.post &&
	must_fail 3 vm @job three >out 2>err &&
	contains err "job three failed with status 3" &&
	test ! -e post-ran
'

test_expect ".pre prepares INDIR, the job writes OUTDIR, .post reads it" '
	vm --no-uefi -D AHCI=1G @create J &&
	cat >pass.pre <<-\EOF &&
	echo "pre for $GUESTNAME cores=$VM_CORES rescue=$VM_RESCUE_BOOT_TIMEOUT serve=$(env | grep -c "^VM_SERVE_")" &&
	echo 21 >"$INDIR/number"
	EOF
	printf "n=\$(cat \$INDIR/number); echo \$((n * 2)) >\$OUTDIR/answer\n" >pass.job &&
	cat >pass.post <<-\EOF &&
	[ "$(cat "$OUTDIR/answer")" = 42 ] || fatal "wrong answer"
	echo "post saw $(cat "$OUTDIR/answer")" >"$HOSTDIR/post.out"
	EOF
	vm @job pass >out &&
	contains out "pre for J cores=1 rescue=120 serve=0" &&
	contains post.out "post saw 42"
'

test_expect "a failing .pre stops the job before the rescue starts" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "fatal \"not ready\"\n" >notready.pre &&
	printf "echo must not run\n" >notready.job &&
	must_fail 1 vm @job notready >out 2>err &&
	contains err "not ready" && contains err "notready.pre failed" &&
	test ! -e .work/rescue-console.log && lacks out "must not run"
'

test_expect "a hanging job is stopped by --timeout and no QEMU is left" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "echo sleeping; sleep 600\n" >hang.job &&
	must_fail any vm -t 20 @job hang >out 2>err &&
	contains err "timeout of 20 s expired" && contains out sleeping &&
	no_qemu
'

test_expect "a rescue that never starts the job is booted once more, then the boot timeout is the error" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "true\n" >quick.job &&
	must_fail 1 vm --json --boot-timeout=1 @job quick >out 2>err &&
	contains err "did not start job quick within the boot timeout of 1 s; QEMU was stopped, booting it once more" &&
	contains err "did not start job quick within the boot timeout of 1 s, in 2 boots; QEMU was stopped" &&
	test "$(grep -c "rescue for J started" err)" = 2 &&
	contains out "\"outcome\":\"boot_timeout\"" && contains out "\"boots\":2" &&
	no_qemu
'

# The first rescue QEMU hangs as a guest kernel can (its CPUs never run:
# -S); the second, the real one, runs the job on the same disks.
test_expect "a rescue whose kernel hangs is stopped and booted once more; the job runs once" '
	vm --no-uefi -D AHCI=1G @create J &&
	real=$(command -v qemu-system-x86_64) && mkdir -p bin &&
	cat >bin/qemu-system-x86_64 <<-EOF &&
	#!/bin/sh
	case "\$*" in
	*-rescue,process=*)
		if [ ! -e "$PWD/hung" ]; then
			echo \$\$ >"$PWD/hung"
			exec "$real" "\$@" -S
		fi ;;
	esac
	exec "$real" "\$@"
	EOF
	chmod +x bin/qemu-system-x86_64 &&
	printf "echo the job ran\n" >once.job &&
	PATH=$PWD/bin:$PATH vm --json --boot-timeout=40 @job once >out 2>err &&
	contains err "did not start job once within the boot timeout of 40 s; QEMU was stopped, booting it once more" &&
	test "$(grep -c "rescue for J started" err)" = 2 &&
	contains .work/.out/job.log "^the job ran$" &&
	contains out "\"outcome\":\"done\"" && contains out "\"boots\":2" &&
	! kill -0 "$(cat hung)" 2>/dev/null && no_qemu
'

test_expect "a UEFI VM: the job sees the same disks on a q35 machine" '
	vm -D NVME=1G,SCSI=1G @create J &&
	printf "ls /dev/nvme0n1 /dev/sda\n" >disks.job &&
	vm @job disks >out &&
	contains out "^/dev/nvme0n1$" && contains out "^/dev/sda$" &&
	contains .work/run-rescue.sh "machine q35" && lacks .work/run-rescue.sh pflash
'

test_expect "a BIOS VM: the job sees every bus's disks, named as before (PVH boot)" '
	vm --no-uefi -D AHCI=1G,NVME=1G,SCSI=1G,VIRT=1G @create J &&
	printf "%s\n" "for d in sda sdb; do echo \$d \$(cat /sys/block/\$d/device/vendor); done" \
		"ls /dev/nvme0n1 /dev/vda" "cat /proc/cmdline" >disks.job &&
	vm @job disks >out &&
	contains out "^sda QEMU" && contains out "^sdb ATA" &&
	contains out "^/dev/nvme0n1$" && contains out "^/dev/vda$" &&
	contains .work/run-rescue.sh "/vmlinux " && contains out "pci=noacpi"
'

test_expect "boot = cdrom boots the rescue ISO through BIOS and through UEFI" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "[rescue]\nboot = cdrom\n" >>guest.conf &&
	printf "echo from the CD; ls /dev/sda\n" >cd.job &&
	vm @job cd >out && contains out "from the CD" &&
	contains .work/run-rescue.sh "ide-cd,drive=cd0,bus=ahci0.1,bootindex=0" &&
	lacks .work/run-rescue.sh -kernel &&
	vm -d "$PWD/u" -D AHCI=1G @create U &&
	printf "[rescue]\nboot = cdrom\n" >>u/guest.conf && cp cd.job u/ &&
	cp u/.work/efivars.bin vars.before &&
	vm -d "$PWD/u" @job cd >out && contains out "from the CD" &&
	contains u/.work/run-rescue.sh "rescue-efivars.bin" &&
	cmp vars.before u/.work/efivars.bin
'

test_expect "an unknown job and a bad job name are clear errors" '
	vm --no-uefi -D AHCI=1G @create J &&
	must_fail 1 vm @job nosuch 2>err && contains err "job nosuch not found" &&
	must_fail 2 vm @job ../x 2>err && contains err "bad job name"
'

test_expect "STATUS written as a symlink by the guest is not followed" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "echo 0 >/tmp/zero; ln -s /tmp/zero \$OUTDIR/STATUS; ln -s /etc/shadow \$OUTDIR/FINISHED\n" >evil.job &&
	must_fail 1 vm @job evil 2>err &&
	contains err "job evil left a bad .*/STATUS: not a number from 0 to 255" &&
	test -z "$(find .work/.out -type l)"
'

test_expect "a job partitions the disk and installs a tree; mount-system finds it" '
	vm --no-uefi -D VIRT=1G @create J &&
	cat >install.job <<-\EOF &&
	set -e
	echo "type=83" | sfdisk -q /dev/vda
	mdev -s; sleep 1
	mkfs.ext4 -q -L SYSTEM /dev/vda1
	mount /dev/vda1 /mnt
	mkdir -p /mnt/etc /mnt/root
	echo "LABEL=SYSTEM / ext4 defaults 0 1" >/mnt/etc/fstab
	echo installed-os >/mnt/etc/hostname
	umount /mnt
	echo installed
	EOF
	cat >check.job <<-\EOF &&
	d=$(mount-system)
	echo "system at $d: $(cat $d/etc/hostname)"
	EOF
	vm @job install >out && contains out installed &&
	vm @job check >out && contains out "system at /mnt/system1: installed-os"
'

test_expect "add-ssh-keys installs the key, with 0600 and a backup; again, it adds nothing" '
	mkdir -p "$HOME/.ssh" &&
	ssh-keygen -q -t ed25519 -N "" -C vm-test -f "$HOME/.ssh/id_ed25519" &&
	vm --no-uefi -D AHCI=1G @create J &&
	cat >install.job <<-\EOF &&
	set -e
	echo "type=83" | sfdisk -q /dev/sda
	sleep 1
	mkfs.ext4 -q /dev/sda1
	mount /dev/sda1 /mnt
	mkdir -p /mnt/etc /mnt/root/.ssh
	echo "/dev/sda1 / ext4 defaults 0 1" >/mnt/etc/fstab
	echo "ssh-rsa OLDKEY old@host" >/mnt/root/.ssh/authorized_keys
	umount /mnt
	EOF
	cat >readback.job <<-\EOF &&
	d=$(mount-system)
	cp $d/root/.ssh/authorized_keys $OUTDIR/keys
	cp $d/root/.ssh/authorized_keys.vm-backup $OUTDIR/backup
	stat -c %a $d/root/.ssh/authorized_keys >$OUTDIR/mode
	stat -c %a $d/root/.ssh >$OUTDIR/dirmode
	EOF
	vm @job install @job add-ssh-keys >out &&
	contains out "1 key(s) added" &&
	vm @job readback &&
	contains .work/.out/keys "vm-test" && contains .work/.out/keys OLDKEY &&
	contains .work/.out/backup OLDKEY && lacks .work/.out/backup vm-test &&
	test "$(cat .work/.out/mode)" = 600 && test "$(cat .work/.out/dirmode)" = 700 &&
	vm @job add-ssh-keys >out &&
	contains out "0 key(s) added, 1 already there" &&
	vm @job readback &&
	test "$(grep -c vm-test .work/.out/keys)" = 1
'

test_expect "run-ssh: log in through the forward, run a command, release it" '
	mkdir -p "$HOME/.ssh" && rm -f "$HOME/.ssh/id_ed25519"* &&
	ssh-keygen -q -t ed25519 -N "" -C vm-test -f "$HOME/.ssh/id_ed25519" &&
	port=$(free_port) &&
	vm --no-uefi -D AHCI=1G @create J &&
	printf "[rescue]\nforwards = tcp:127.0.0.1:$port-:22\n" >>guest.conf &&
	{ "$VM_BIN" @job run-ssh >job.out 2>&1 & } &&
	pid=$! &&
	login() {
		ssh -p "$port" -i "$HOME/.ssh/id_ed25519" -o BatchMode=yes \
			-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
			-o ConnectTimeout=10 -o LogLevel=ERROR root@127.0.0.1 "$@"
	} &&
	wait_for 120 test -e .work/.out/RELEASE &&
	wait_for 30 login true &&
	login "uname -n; ls /dev/sda" >ssh.out &&
	contains ssh.out "^rescue$" && contains ssh.out "^/dev/sda$" &&
	login "rm /tmp/.out/RELEASE" &&
	wait_for 60 eval "! kill -0 $pid 2>/dev/null" &&
	rc=0 && { wait $pid || rc=$?; } &&
	test $rc -eq 0 && contains job.out "released, powering off"
'

test_expect "post-install: a profile with .env, .pre, .sh, .post, a user tgz and SETUP_FILES" '
	vm --no-uefi -D AHCI=1G @create J &&
	cat >install.job <<-\EOF &&
	set -e
	echo "type=83" | sfdisk -q /dev/sda
	sleep 1
	mkfs.ext4 -q -L ROOT /dev/sda1
	mount /dev/sda1 /mnt
	mkdir -p /mnt/etc /mnt/home
	echo "LABEL=ROOT / ext4 defaults 0 1" >/mnt/etc/fstab
	umount /mnt
	EOF
	cat >web.env <<-\EOF &&
	SETUP_HOSTNAME=web1
	SETUP_USERNAME=alice
	SETUP_FILES=(extra.txt "notes dir")
	SETUP_GREETING="it'"'"'s here"
	EOF
	echo "extra file" >extra.txt && mkdir "notes dir" && echo n >"notes dir/n" &&
	mkdir -p u/.config && echo "alice config" >u/.config/app &&
	tar -C u -czf web.user-alice.tgz . &&
	printf "echo \"pre: \$SETUP_HOSTNAME\" >\"\$INDIR/pre-was-here\"\n" >web.pre &&
	cat >web.sh <<-\EOF &&
	echo "$SETUP_HOSTNAME" >"$DESTDIR/etc/hostname"
	mkdir -p "$DESTDIR/home/$SETUP_USERNAME"
	tar -C "$DESTDIR/home/$SETUP_USERNAME" -xzf "web.user-$SETUP_USERNAME.tgz"
	cp extra.txt pre-was-here "$DESTDIR/etc/"
	cp "notes dir/n" "$DESTDIR/etc/notes-n"
	test -e "$DESTDIR/proc/self/status" && echo "chroot ready: proc"
	test -b "$DESTDIR/dev/sda" && echo "chroot ready: dev"
	echo "greeting: $SETUP_GREETING uid=$SETUP_USER_UID"
	EOF
	printf "touch \"\$HOSTDIR/web-post-ran\"\n" >web.post &&
	cat >check.job <<-\EOF &&
	d=$(mount-system)
	cat $d/etc/hostname $d/home/alice/.config/app $d/etc/extra.txt $d/etc/pre-was-here $d/etc/notes-n
	EOF
	vm @job install &&
	SETUP_PROFILE=web vm @job post-install >out &&
	contains out "chroot ready: proc" && contains out "chroot ready: dev" &&
	contains out "greeting: it.s here uid=" &&
	test -e web-post-ran &&
	vm @job check >out &&
	contains out "^web1$" && contains out "^alice config$" &&
	contains out "^extra file$" && contains out "^pre: web1$" && contains out "^n$"
'

test_expect "post-install without the profile script fails on the host" '
	vm --no-uefi -D AHCI=1G @create J &&
	must_fail 1 vm @job post-install >out 2>err &&
	contains err "post-install.sh not found" &&
	test ! -e .work/rescue-console.log
'

test_done

