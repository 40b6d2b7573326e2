#!/bin/bash
# VMs made from existing disk images: -D '' -i makes a VM whose disks are
# its images, the boot order follows the images, @job and @inspect see
# them, and what cannot work is refused before anything is made.
# --base makes disk 0 an overlay on an image that is never written,
# checked by its digest wherever it is used.
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

# serve_seed: serves srv/files/seed.raw, an installer image, over HTTP
# at $url ($sum its digest), with a download cache of the test's own
serve_seed() {
	check_args serve_seed "no arguments" 0 0 "$@" &&
	mkdir -p srv/files && installer_image "$PWD/srv/files/seed.raw" &&
	sum=$(sha256sum <srv/files/seed.raw) &&
	{ python3 "$TOP/tests/data/httpd.py" srv/files srv/port srv/log & } &&
	wait_for 10 test -s srv/port &&
	url=http://127.0.0.1:$(cat srv/port)/seed.raw &&
	export XDG_CACHE_HOME=$PWD/cache
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

test_expect "a VM of images alone works again after @destroy: @run, @job, @inspect" '
	installer_image "$PWD/seed.raw" &&
	vm --no-uefi -D "" -i AHCI=raw="$PWD/seed.raw" @create D @backup @destroy &&
	test ! -e .work &&
	vm -t 120 @run >out 2>&1 &&
	lacks out "restoring snapshot" &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda" &&
	test "$(first_line seed.raw)" = VM-INSTALLED-BY-AUTORUN &&
	printf "%s\n" "ls /dev/sda && echo job-ran" >see.job &&
	vm @destroy @job see >out 2>&1 &&
	contains out "^/dev/sda$" && contains out "^job-ran$" &&
	vm @destroy && vm @inspect >report 2>&1 &&
	contains report "no operating system found" &&
	mkdir u && cd u && truncate -s 8M u.raw &&
	vm -D "" -i VIRT=raw=u.raw @create U @destroy &&
	test ! -e .work && echo "ls /dev/vda && echo job-ran" >see.job &&
	vm @job see >out 2>&1 && contains out "^/dev/vda$" &&
	cmp .work/efivars.bin /usr/share/OVMF/OVMF_VARS_4M.fd
'

test_expect "what cannot make a VM is refused, and nothing is made" '
	must_fail 2 vm -D "" @create N 2>err &&
	contains err "cannot create N: no disks and no images" &&
	must_fail 1 vm -D "" -i VIRT=raw=missing.raw @create N 2>err &&
	contains err "cannot create N: image $PWD/missing.raw: No such file or directory" &&
	test ! -e guest.conf && test ! -e .work &&
	truncate -s 1M some.raw &&
	vm --no-uefi -D "" -i VIRT=raw=some.raw @create N &&
	rm some.raw &&
	must_fail 1 vm @backup 2>err &&
	contains err "cannot back up N: image $PWD/some.raw: No such file or directory" &&
	test -z "$(ls backups 2>/dev/null)" &&
	must_fail 1 vm -t 30 @run 2>err &&
	contains err "image $PWD/some.raw: No such file or directory" &&
	no_qemu
'

test_expect "an image by URL boots from the download cache, which it never writes" '
	serve_seed &&
	vm --no-uefi -D "" -i AHCI=raw="$url" @create U &&
	vm -t 120 @run &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda" &&
	contains .work/run-vm.sh "format=raw,discard=unmap,snapshot=on" &&
	cached=$(ls "$XDG_CACHE_HOME"/vm/downloads/*-seed.raw) &&
	test "$(sha256sum <"$cached")" = "$sum"
'

# backing DISK: the backing file DISK's qcow2 header names
backing() {
	check_args backing DISK 1 1 "$@" &&
	qemu-img info --output=json "$1" |
		python3 -c "import json,sys; print(json.load(sys.stdin).get(\"backing-filename\", \"\"))"
}

# vm_files: what the VM is (settings, snapshots, working files), by digest
vm_files() {
	check_args vm_files "no arguments" 0 0 "$@" &&
	find guest.conf backups .work/ -type f ! -name .lock -print0 |
		sort -z | xargs -0 sha256sum
}

test_expect "--base: disk 0 is an overlay; the guest writes it, never the base" '
	installer_image "$PWD/seed.raw" && sum=$(sha256sum <seed.raw) &&
	vm --no-uefi --base seed.raw @create B &&
	contains guest.conf "^base = $PWD/seed.raw$" &&
	contains guest.conf "^base_format = raw$" &&
	contains guest.conf "^base_sha256 = ${sum%% *}$" &&
	test "$(backing .work/disk-0.img)" = "$PWD/seed.raw" &&
	test "$(qemu-img info --output=json .work/disk-0.img |
		grep -c "\"virtual-size\": $(stat -c %s seed.raw),")" = 1 &&
	vm -t 120 @run &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda" &&
	contains .work/run-vm.sh "-add-fd fd=[0-9]*,set=1,opaque=$PWD/seed.raw" &&
	contains .work/run-vm.sh "\"\$@\" [0-9]*<$PWD/seed.raw$" &&
	contains .work/run-vm.sh "backing.driver=raw,backing.file.driver=file,backing.file.filename=/dev/fdset/1" &&
	test "$(sha256sum <seed.raw)" = "$sum" &&
	qemu-img convert -O raw .work/disk-0.img disk0.raw &&
	test "$(first_line disk0.raw)" = VM-INSTALLED-BY-AUTORUN &&
	vm @backup S0 &&
	test "$(tar -tzf backups/S0.tar.gz | grep -c disk-0.img)" = 1 &&
	test "$(stat -c %s backups/S0.tar.gz)" -lt $(( $(stat -c %s seed.raw) / 4 )) &&
	rm .work/disk-0.img && vm --base ./seed.raw @restore S0 &&
	qemu-img convert -O raw .work/disk-0.img again.raw && cmp disk0.raw again.raw &&
	test "$(sha256sum <seed.raw)" = "$sum" &&
	must_fail 2 vm --base disk0.raw @snapshots 2>err &&
	contains err "option --base: B lays over $PWD/seed.raw, not disk0.raw; --base is for @create" &&
	mkdir ../plain && vm -d ../plain @create P &&
	must_fail 2 vm -d ../plain --base seed.raw @snapshots 2>err &&
	contains err "option --base: P was made without a base; --base is for @create"
'

test_expect "@create NAME IMAGE: a disk image, told by content not name, is the base (path or URL); a disc stays the installer; an empty file is neither" '
	installer_image "$PWD/seed.raw" &&
	# the installer as a qcow2 disk: a disk image, whatever its name
	qemu-img convert -O qcow2 seed.raw disk.iso && sum=$(sha256sum <disk.iso) &&
	vm --no-uefi -d a @create A disk.iso >out 2>&1 &&
	contains out "disk.iso is a disk image, not an installer.s disc: disk 0 lays over it (as --base)" &&
	contains a/guest.conf "^base = $PWD/disk.iso$" &&
	contains a/guest.conf "^base_format = qcow2$" &&
	contains a/guest.conf "^bootimage = $" && contains a/guest.conf "^firstboot = no$" &&
	test "$(backing a/.work/disk-0.img)" = "$PWD/disk.iso" &&
	vm -d a -t 120 @run &&
	contains a/.work/console.log "AUTORUN-DONE on /dev/sda" &&
	test "$(sha256sum <disk.iso)" = "$sum" &&
	# the hybrid ISO itself is a disc: the installer, as before
	vm --no-uefi -d b @create B seed.raw >out 2>&1 && lacks out "disk image" &&
	contains b/guest.conf "^bootimage = $PWD/seed.raw$" && lacks b/guest.conf "^base = ." &&
	# by URL: fetched once into the cache, then the base
	mkdir -p srv/files && cp disk.iso srv/files/img.qcow2 &&
	{ python3 "$TOP/tests/data/httpd.py" srv/files srv/port srv/log & } &&
	wait_for 10 test -s srv/port &&
	url=http://127.0.0.1:$(cat srv/port)/img.qcow2 &&
	vm --no-uefi -d c @create C "$url" &&
	contains c/guest.conf "^base = $url$" && contains c/guest.conf "^firstboot = no$" &&
	test "$(backing c/.work/disk-0.img)" = "$(ls "$XDG_CACHE_HOME"/vm/downloads/*-img.qcow2)" &&
	: >empty.img && must_fail 1 vm -d e @create E empty.img 2>err &&
	contains err "cannot create E: empty.img is empty: neither an installer.s disc nor a disk image" &&
	test ! -e e/guest.conf &&
	must_fail 2 vm -d r -D VIRT=64M:raw @create R disk.iso 2>err &&
	contains err "cannot create R: a disk image needs disk 0 to be qcow2" && test ! -e r/guest.conf
'

# table_image NAME SFDISK: NAME.qcow2, 64M, partitioned by the sfdisk
# script SFDISK (nothing in the partitions)
table_image() {
	check_args table_image "NAME SFDISK" 2 2 "$@" &&
	truncate -s 64M "$1.raw" && printf "$2" | sfdisk -q "$1.raw" &&
	qemu-img convert -O qcow2 "$1.raw" "$1.qcow2" && rm "$1.raw"
}

test_expect "a base's firmware from its partition table: no ESP is BIOS, only an ESP is UEFI, both keep the default; the command line wins; headless unless a port is asked for" '
	bb=21686148-6449-6E6F-744E-656564454649 &&
	table_image bios "label: gpt\nsize=1MiB, type=$bb\ntype=linux\n" &&
	table_image mbr "label: dos\ntype=83\n" &&
	table_image esp "label: gpt\nsize=8MiB, type=uefi\ntype=linux\n" &&
	table_image both "label: gpt\nsize=1MiB, type=$bb\nsize=8MiB, type=uefi\ntype=linux\n" &&
	for i in bios mbr esp both; do
		vm -d "$i" @create X "$i.qcow2" 2>"$i.err" || exit 1
	done &&
	contains bios/guest.conf "^uefi = no$" && contains mbr/guest.conf "^uefi = no$" &&
	contains bios.err "bios.qcow2 boots with BIOS only (its partition table says so): uefi = no" &&
	contains esp/guest.conf "^uefi = yes$" && contains both/guest.conf "^uefi = yes$" &&
	lacks both.err "boots with" &&
	printf "uefi = no\n" >>"$XDG_CONFIG_HOME/vm.conf" &&
	vm -d esp2 --base esp.qcow2 @create X 2>err && contains esp2/guest.conf "^uefi = yes$" &&
	contains err "esp.qcow2 boots with UEFI only (its partition table says so): uefi = yes" &&
	vm -d both2 @create X both.qcow2 && contains both2/guest.conf "^uefi = no$" &&
	vm -d esp3 --no-uefi @create X esp.qcow2 2>err && contains esp3/guest.conf "^uefi = no$" &&
	lacks err "boots with" &&
	test -z "$(ls "$TMPDIR" | grep vm-fw)" &&
	# a GPT whose header is gone leaves its protective MBR: no verdict
	table_image nogpt "label: gpt\nsize=8MiB, type=uefi\ntype=linux\n" &&
	qemu-img convert -O raw nogpt.qcow2 nogpt.raw &&
	dd if=/dev/zero of=nogpt.raw bs=512 seek=1 count=1 conv=notrunc status=none &&
	vm -q -d ng -D VIRT=64M @create X nogpt.raw 2>err && contains ng/guest.conf "^uefi = no$" &&
	lacks err "boots with" &&
	# a format whose file names other files is no base
	qemu-img create -q -f vmdk x.vmdk 1M &&
	must_fail 1 vm -d vk @create X x.vmdk 2>err &&
	contains err "x.vmdk is vmdk, not qcow2 or raw (convert it: qemu-img convert -O qcow2)" &&
	test ! -e vk/guest.conf &&
	# headless unless a port is asked for (here vm.conf names none)
	printf "[vm]\naccel = tcg\n" >"$XDG_CONFIG_HOME/vm.conf" &&
	vm -q -d h @create X both.qcow2 && contains h/guest.conf "^port = $" &&
	vm -q -d h2 -p 5907 @create X both.qcow2 && contains h2/guest.conf "^port = 5907$" &&
	vm -q -d h3 @create X && lacks h3/guest.conf "^port"
'

test_expect "cloud_init: a seed disk labelled cidata, made for each boot: your key for ssh_user; HOSTDIR/user-data instead; none with no" '
	mkdir -p "$HOME/.ssh" && rm -f "$HOME"/.ssh/id_* &&
	ssh-keygen -q -t ed25519 -N "" -C seed-key -f "$HOME/.ssh/id_ed25519" &&
	iso=$(autorun_iso test-cidata "$TOP/tests/data/autorun-cidata") &&
	vm -q --no-uefi @create web_1.x &&
	printf "cloud_init = yes\nssh_user = alice\nsshkeys = ~/.ssh/id_ed25519.pub\nsshkeys = ~/.ssh/id_ed25519\n" >>guest.conf &&
	vm -q -t 120 @run "$iso" &&
	contains .work/console.log "^CIDATA meta-data: local-hostname: .web-1-x." &&
	contains .work/console.log "^CIDATA user-data: hostname: .web-1-x." &&
	lacks .work/console.log "PRIVATE" &&
	test "$(grep -ac "seed-key" .work/console.log)" = 1 &&
	contains .work/console.log "^CIDATA user-data:   - name: .alice." &&
	contains .work/console.log "^CIDATA user-data:       - .ssh-ed25519 [^ ]* seed-key." &&
	id1=$(grep -a "CIDATA meta-data: instance-id: iid-" .work/console.log) &&
	: >.work/console.log && vm -q -t 120 @run "$iso" &&
	test "$(grep -a "CIDATA meta-data: instance-id" .work/console.log)" = "$id1" &&
	printf "#cloud-config\nhostname: mine\n" >user-data &&
	: >.work/console.log && vm -q -t 120 @run "$iso" &&
	contains .work/console.log "^CIDATA user-data: hostname: mine" &&
	lacks .work/console.log "seed-key" &&
	test "$(grep -a "CIDATA meta-data: instance-id" .work/console.log)" != "$id1" &&
	sed -i "s/^cloud_init = yes/cloud_init = no/" guest.conf &&
	: >.work/console.log && vm -q -t 120 @run "$iso" &&
	contains .work/console.log "^CIDATA: none" && lacks .work/run-vm.sh seed0 &&
	test -z "$(ls -A .work | grep -e "^\.cidata" -e "cidata.iso.tmp")"
'

test_expect "QEMU has the base read-only: even its owner's monitor cannot commit into it" '
	truncate -s 32M seed.raw && echo original | dd of=seed.raw conv=notrunc status=none &&
	sum=$(sha256sum <seed.raw) &&
	# no key: no forward of vm'"'"'s own, no sshd waited for
	rm -f "$HOME"/.ssh/id_* &&
	vm --no-uefi -D VIRT=64M --base "$PWD/seed.raw" @create C &&
	vm @start &&
	vm -q @monitor qemu-io disk0 \"write -P 0x55 0 64k\" >w &&
	vm -q @monitor commit disk0 >c &&
	contains c "Permission denied" &&
	must_fail 1 vm -q --json @monitor "{\"execute\": \"block-commit\", \"arguments\": {\"device\": \"disk0\"}}" 2>err &&
	contains err "QEMU says: .*Permission denied" &&
	vm @kill &&
	test "$(sha256sum <seed.raw)" = "$sum"
'

test_expect "a changed base is refused by @run, @backup and @restore; nothing changes" '
	truncate -s 32M seed.raw && echo original | dd of=seed.raw conv=notrunc status=none &&
	cp seed.raw orig.raw &&
	vm --no-uefi -D VIRT=64M --base "$PWD/seed.raw" @create C && vm @backup S0 &&
	touch seed.raw && vm -q @backup S1 &&
	echo changed | dd of=seed.raw conv=notrunc status=none &&
	vm_files >../before &&
	must_fail 1 vm -t 30 @run 2>err &&
	contains err "cannot run C: base $PWD/seed.raw has changed since the VM was made" &&
	must_fail 1 vm @backup 2>err && contains err "base $PWD/seed.raw has changed" &&
	must_fail 1 vm @restore S0 2>err &&
	contains err "cannot restore S0: base $PWD/seed.raw has changed" &&
	rm seed.raw &&
	must_fail 1 vm @restore S0 2>err &&
	contains err "cannot restore S0: base $PWD/seed.raw of disk 0: No such file or directory" &&
	vm_files >../after && cmp ../before ../after && no_qemu &&
	cp orig.raw seed.raw && vm @restore S0 && vm -q @backup S2 &&
	test "$(head -c 8 seed.raw)" = original
'

test_expect "--base that cannot work is refused before anything is made" '
	truncate -s 64M big.raw &&
	must_fail 2 vm -D "" --base big.raw @create N 2>err &&
	contains err "cannot create N: --base needs disk 0 to be qcow2" &&
	must_fail 2 vm -D VIRT=64M:raw --base big.raw @create N 2>err &&
	contains err "--base needs disk 0 to be qcow2" &&
	must_fail 1 vm --no-uefi -D VIRT=32M --base big.raw @create N 2>err &&
	contains err "cannot create N: base $PWD/big.raw is 64M, larger than disk 0 (32M); give -D at least that size" &&
	qemu-img create -q -f qcow2 -b "$PWD/big.raw" -F raw top.qcow2 &&
	must_fail 1 vm --no-uefi --base top.qcow2 @create N 2>err &&
	contains err "cannot create N: base $PWD/top.qcow2 is itself an overlay on $PWD/big.raw" &&
	must_fail 1 vm --no-uefi --base nothere.raw @create N 2>err &&
	contains err "cannot create N: base nothere.raw: No such file or directory" &&
	test ! -e guest.conf && test ! -e .work && test -z "$(ls "$TMPDIR")"
'

test_expect "a disk whose header names a file guest.conf does not is never opened" '
	vm --no-uefi -D VIRT=64M @create H && vm @backup S0 &&
	qemu-img rebase -q -u -b /etc/hostname -F raw .work/disk-0.img &&
	must_fail 1 vm -t 30 @run 2>err &&
	contains err "disk-0.img names a backing file (/etc/hostname) guest.conf does not" &&
	must_fail 1 vm @backup 2>err && contains err "names a backing file" &&
	no_qemu && test "$(ls backups)" = "LAST
S0.tar.gz" &&
	vm @restore S0 && test -z "$(backing .work/disk-0.img)"
'

test_expect "a base by URL: from the cache, never asked again, pinned; restored elsewhere" '
	serve_seed &&
	vm --no-uefi --base "$url" @create W &&
	contains guest.conf "^base = $url$" &&
	cached=$(ls "$XDG_CACHE_HOME"/vm/downloads/*-seed.raw) &&
	test "$(backing .work/disk-0.img)" = "$cached" &&
	vm @backup S0 &&
	cp srv/files/seed.raw orig.raw && echo newer >>srv/files/seed.raw &&
	n=$(wc -l <srv/log) &&
	vm -t 120 @run &&
	contains .work/console.log "AUTORUN-DONE on /dev/sda" &&
	test "$(wc -l <srv/log)" = "$n" &&
	test "$(sha256sum <"$cached")" = "$sum" &&
	XDG_CACHE_HOME=$PWD/cache2 must_fail 1 vm @restore S0 2>err &&
	contains err "checksum mismatch" &&
	cp orig.raw srv/files/seed.raw &&
	XDG_CACHE_HOME=$PWD/cache2 vm @restore S0 &&
	cached2=$(ls "$PWD"/cache2/vm/downloads/*-seed.raw) &&
	test "$(backing .work/disk-0.img)" = "$cached2" &&
	XDG_CACHE_HOME=$PWD/cache2 vm -t 120 @run &&
	contains .work/run-vm.sh "opaque=$cached2"
'

test_expect "-D '' -i: snapshots hold the image; @restore puts it back exactly" '
	cp --sparse=never "$ISO" seed.raw && cp seed.raw before.raw &&
	vm --no-uefi -D "" -i AHCI=raw=seed.raw -i CDROM="$ISO" @create D &&
	vm @backup S0 &&
	tar -tzf backups/S0.tar.gz >list &&
	test "$(grep -c "^image-\|^disk-" list)" = 1 && grep -qx image-0.img list &&
	vm -t 120 @run && test "$(first_line seed.raw)" = VM-INSTALLED-BY-AUTORUN &&
	cp seed.raw after.raw && chmod 640 seed.raw &&
	vm @backup S1 && vm @restore S0 && cmp seed.raw before.raw &&
	test "$(stat -c %a seed.raw)" = 640 &&
	vm @restore S1 && cmp seed.raw after.raw &&
	test -z "$(ls -A | grep restore)"
'

# retarget SNAP OUT PATH: SNAP with its guest.conf naming PATH as image
# 0 (the MANIFEST line of guest.conf made to match), as a hostile
# archive would; the other files (not sparse) are copied as they are
retarget() {
	check_args retarget "SNAP OUT PATH" 3 3 "$@" &&
	python3 - "$@" <<-\EOF
	import hashlib, io, re, sys, tarfile
	src, out, path = sys.argv[1:]
	def digest(b):
	    n = len(b)
	    return hashlib.sha256(b + (b"0 %d\n" % n if n else b"") + b"%d\n" % n).hexdigest()
	members = []
	with tarfile.open(src, "r:gz") as t:
	    for m in t.getmembers():
	        members.append([m.name, t.extractfile(m).read()])
	conf = [m for m in members if m[0] == "guest.conf"][0]
	conf[1] = re.sub(rb"raw=[^\n]*", b"raw=" + path.encode(), conf[1], count=1)
	man = [m for m in members if m[0] == "MANIFEST"][0]
	man[1] = b"".join(b"%s %d guest.conf\n" % (digest(conf[1]).encode(), len(conf[1]))
	                  if l.endswith(b" guest.conf") else l + b"\n"
	                  for l in man[1].splitlines())
	with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
	    for n, d in members:
	        i = tarfile.TarInfo(n); i.size = len(d); i.mode = 0o600
	        t.addfile(i, io.BytesIO(d))
	EOF
}

test_expect "a snapshot of images goes back only where the VM itself names them" '
	head -c 1M /dev/urandom >victim && cp victim victim.orig &&
	head -c 1M /dev/urandom >img.raw && cp img.raw img.orig &&
	vm --no-uefi -D "" -i VIRT=raw=img.raw @create H && vm @backup S0 &&
	retarget backups/S0.tar.gz backups/S9.tar.gz "$PWD/victim" &&
	vm_files >../before &&
	must_fail 1 vm @restore S9 2>err &&
	contains err "cannot restore S9: image-0.img is the image $PWD/victim, which this VM.s guest.conf does not name there" &&
	vm_files >../after && cmp ../before ../after &&
	cmp victim victim.orig && cmp img.raw img.orig &&
	mkdir ../copy && cp -r backups ../copy/ &&
	must_fail 1 vm -d ../copy @restore S0 2>err &&
	contains err "which this VM has no guest.conf to name" &&
	test ! -e ../copy/guest.conf &&
	sed -i "s|raw=img.raw|raw=$PWD/victim|" guest.conf &&
	must_fail 1 vm @restore S0 2>err &&
	contains err "image-0.img is the image $PWD/img.raw, which this VM.s guest.conf does not name there" &&
	cmp victim victim.orig &&
	sed -i "s|raw=$PWD/victim|raw=img.raw|" guest.conf &&
	echo left-by-a-killed-restore >.img.raw.vm-restore.tmp &&
	head -c 1M /dev/urandom >img.raw && vm @restore S0 && cmp img.raw img.orig &&
	test -z "$(ls -A | grep restore)"
'

test_expect "what a snapshot of images cannot hold is refused" '
	head -c 1M /dev/urandom >img.raw &&
	qemu-img create -q -f qcow2 -b "$PWD/img.raw" -F raw top.qcow2 &&
	vm --no-uefi -D "" -i VIRT=qcow2=top.qcow2 @create Q &&
	must_fail 1 vm @backup 2>err &&
	contains err "cannot back up Q: $PWD/top.qcow2 keeps data in another file ($PWD/img.raw); a snapshot holds only self-contained images" &&
	mkdir ../cd && vm -d ../cd --no-uefi -D "" -i CDROM="$ISO" @create C &&
	must_fail 1 vm -d ../cd @backup 2>err &&
	contains err "nothing to back up: the images of C are CDs or downloads" &&
	test -z "$(ls backups ../cd/backups 2>/dev/null)"
'

test_done
