#!/bin/bash
# Snapshots: @backup, @restore, @snapshots, @forget, @last, and the faults
# that must never lose a snapshot or the working files.
. "$(dirname "$0")/../lib.sh"

need_rescue

# sums DIR: a digest of the contents (tests/data/content-sum.py: holes not
# read) of every disk and the efivars in DIR, by name
sums() {
	(cd "$1" && for f in disk-*.img efivars.bin; do
		[ ! -e "$f" ] || python3 "$TOP/tests/data/content-sum.py" "$f" ||
			exit 1
	done)
}

# a tarball of our format, by python's tarfile: NAME=TEXT pairs + extras
evil_tar() {
	python3 - "$@" <<-\EOF
	import io, sys, tarfile
	out, kind = sys.argv[1], sys.argv[2]
	with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
	    def add(name, data=b"x", **kw):
	        i = tarfile.TarInfo(name); i.size = len(data)
	        for k, v in kw.items(): setattr(i, k, v)
	        t.addfile(i, io.BytesIO(data) if i.isfile() else None)
	    add("TS", b"1\n")
	    if kind == "dotdot": add("../escaped")
	    if kind == "absolute": add("/tmp/absolute")
	    if kind == "symlink":
	        i = tarfile.TarInfo("disk-0.img"); i.type = tarfile.SYMTYPE
	        i.linkname = "/etc/passwd"; t.addfile(i)
	    if kind == "extra": add("hello.job", b"echo planted")
	    if kind == "device":
	        i = tarfile.TarInfo("disk-0.img"); i.type = tarfile.CHRTYPE
	        t.addfile(i)
	EOF
}

test_expect "round trip: a job writes, @backup, @destroy, @restore, a job reads it back" '
	vm --no-uefi -D VIRT=1G @create R &&
	cat >write.job <<-\EOF &&
	set -e
	mkfs.ext4 -q /dev/vda && mount /dev/vda /mnt
	head -c 3000000 /dev/urandom >/mnt/data
	sha256sum /mnt/data | cut -d" " -f1 >$OUTDIR/sum
	umount /mnt
	EOF
	printf "mount -o ro /dev/vda /mnt && sha256sum /mnt/data | cut -d\" \" -f1 >\$OUTDIR/sum\n" >read.job &&
	vm @job write && cp .work/.out/sum written.sum &&
	sums .work >disks.before &&
	vm @backup @destroy &&
	test ! -L .work &&
	vm @restore @job read &&
	cmp written.sum .work/.out/sum &&
	sums .work >disks.after && cmp disks.before disks.after
'

test_expect "names: S0, S1, ... and LAST follows; explicit names are checked" '
	vm --no-uefi -D AHCI=1G @create N &&
	vm @backup @backup && test -f backups/S0.tar.gz && test -f backups/S1.tar.gz &&
	test "$(readlink backups/LAST)" = S1.tar.gz &&
	vm @backup golden "before the update" &&
	test "$(readlink backups/LAST)" = golden.tar.gz &&
	vm @backup && test -f backups/S2.tar.gz &&
	must_fail 1 vm @backup golden 2>err && contains err "golden already exists" &&
	must_fail 2 vm @backup LAST 2>err && contains err "bad snapshot name" &&
	must_fail 2 vm @backup ../up 2>err && contains err "bad snapshot name" &&
	test "$(readlink backups/LAST)" = S2.tar.gz &&
	test ! -e up.tar.gz && test -z "$(ls -A backups | grep -v -e "^S[0-2].tar.gz$" -e "^golden.tar.gz$" -e "^LAST$" \
		-e "^\.S[0-2]\.manifest$" -e "^\.golden\.manifest$")"
'

test_expect "@snapshots shows time, size, description and LAST; --json parses" '
	vm --no-uefi -D AHCI=1G @create N &&
	vm @backup first "the first one" @backup &&
	vm @snapshots >out &&
	contains out "^first .*the first one" && contains out "^S0 .*<- LAST" &&
	contains out "$(date +%Y-%m-%d)" &&
	vm --json @snapshots >json &&
	python3 -c "
import json, sys
s = {x[\"name\"]: x for x in json.load(open(\"json\"))[\"result\"][\"snapshots\"]}
assert s[\"first\"][\"description\"] == \"the first one\", s
assert s[\"S0\"][\"last\"] is True and s[\"first\"][\"last\"] is False
assert s[\"first\"][\"size\"] > 0 and s[\"first\"][\"time\"] > 1600000000
"
'

test_expect "a description with escape sequences reaches the terminal escaped, JSON as it is" '
	vm --no-uefi -D AHCI=64M @create N &&
	vm -q @backup s1 "$(printf "red \033[31mX\033[0m\a")" &&
	vm -q @snapshots >out &&
	contains out "red \\\\033\\[31mX\\\\033\\[0m\\\\007" &&
	test "$(tr -d -c "\033\007" <out | wc -c)" = 0 &&
	vm --json @snapshots >json &&
	python3 -c "
import json
s = json.load(open(\"json\"))[\"result\"][\"snapshots\"][0]
assert s[\"description\"] == \"red \x1b[31mX\x1b[0m\x07\", s
"
'

test_expect "a truncated snapshot and a flipped byte are refused; working files intact" '
	vm --no-uefi -D VIRT=64M:raw @create C &&
	head -c 20000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm @backup good &&
	printf "%s" changed | dd of=.work/disk-0.img conv=notrunc status=none &&
	sums .work >before && w=$(readlink .work) &&
	size=$(stat -c %s backups/good.tar.gz) &&
	head -c $((size / 2)) backups/good.tar.gz >backups/cut.tar.gz &&
	must_fail 1 vm @restore cut 2>err && contains err "cannot restore cut: archive is truncated" &&
	cp backups/good.tar.gz backups/flip.tar.gz &&
	python3 -c "
import sys
f = open(\"backups/flip.tar.gz\", \"r+b\"); f.seek(1500000)
b = f.read(1); f.seek(1500000); f.write(bytes([b[0] ^ 0x10]))" &&
	must_fail 1 vm @restore flip 2>err &&
	grep -q -e "damaged" -e "checksum mismatch" -e "truncated" err &&
	sums .work >after && cmp before after && test "$(readlink .work)" = "$w" &&
	test -z "$(ls "$TMPDIR" | grep -v "^$(basename "$w")$")"
'

test_expect "a wrong checksum in an intact archive is caught by the MANIFEST" '
	vm --no-uefi -D AHCI=1G @create M &&
	vm @backup m && mkdir x && tar -C x -xzf backups/m.tar.gz &&
	python3 - x/MANIFEST <<-\EOF &&
	# a block digest changed, and the file digest made to match it
	import hashlib, re, sys
	p = sys.argv[1]; lines = open(p).read().splitlines()
	for i, l in enumerate(lines):
	    if l.startswith("blocks disk-0.img "):
	        w = l.split(" ")
	        k = next(j for j in range(3, len(w)) if len(w[j]) == 64)
	        w[k] = ("1" if w[k][0] == "0" else "0") + w[k][1:]
	        lines[i] = " ".join(w)
	        digest = hashlib.sha256(" ".join(w[3:]).encode()).hexdigest()
	lines = [re.sub(r"^[0-9a-f]{64} (\d+ disk-0.img)$", digest + r" \1", l) for l in lines]
	open(p, "w").write("\n".join(lines) + "\n")
	EOF
	(cd x && tar --format=pax -czf ../backups/bad.tar.gz TS DESCRIPTION CHAIN guest.conf disk-0.img MANIFEST) &&
	must_fail 1 vm @restore bad 2>err && contains err "checksum mismatch in disk-0.img (block "
'

test_expect "archives with ../, absolute paths, symlinks or devices are refused" '
	vm --no-uefi -D AHCI=1G @create E && sums .work >before &&
	mkdir -p backups &&
	for k in dotdot absolute symlink device extra; do
		evil_tar backups/$k.tar.gz $k &&
		must_fail 1 vm @restore $k 2>err &&
		contains err "not a plain file name" || exit 1
	done &&
	test ! -e ../escaped && test ! -e /tmp/absolute && test ! -e hello.job &&
	sums .work >after && cmp before after
'

test_expect "a 10 GiB raw disk with 10 MiB of data: small archive, sparse restore" '
	vm --no-uefi -D VIRT=10G:raw @create S &&
	dd if=/dev/urandom of=.work/disk-0.img bs=1M count=10 seek=5000 conv=notrunc status=none &&
	sums .work >before &&
	start=$(date +%s) && vm @backup big && end=$(date +%s) &&
	test $((end - start)) -le 20 &&
	test "$(stat -c %s backups/big.tar.gz)" -lt $((12 << 20)) &&
	vm @destroy @restore big &&
	test "$(stat -c %s .work/disk-0.img)" -eq $((10 << 30)) &&
	test "$(du -k .work/disk-0.img | cut -f1)" -lt $((20 << 10)) &&
	sums .work >after && cmp before after
'

test_expect "SIGINT during @backup leaves no partial snapshot and LAST unchanged" '
	vm --no-uefi -D VIRT=1G:raw @create I &&
	vm @backup keep &&
	head -c 700000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	{ "$VM_BIN" @backup >out 2>&1 & } &&
	pid=$! &&
	# the archive has no name until it is complete: wait for its pigz
	wait_for 30 pgrep -x -P $pid pigz &&
	sleep 0.5 &&
	kill -INT $pid &&
	rc=0 && { wait $pid || rc=$?; } &&
	test $rc -eq 130 &&
	contains out "interrupted" &&
	test "$(ls -A backups | sort | tr "\n" " ")" = ".keep.manifest LAST keep.tar.gz " &&
	test "$(readlink backups/LAST)" = keep.tar.gz
'

test_expect "SIGINT during @restore leaves the previous working files in place" '
	vm --no-uefi -D VIRT=1G:raw @create I &&
	head -c 700000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup big &&
	printf "%s" changed | dd of=.work/disk-0.img conv=notrunc status=none &&
	sums .work >before && w=$(readlink .work) &&
	{ "$VM_BIN" @restore big >out 2>&1 & } &&
	pid=$! &&
	sleep 1 &&
	kill -INT $pid &&
	rc=0 && { wait $pid || rc=$?; } &&
	test $rc -eq 130 && contains out "interrupted" &&
	test "$(readlink .work)" = "$w" &&
	sums .work >after && cmp before after &&
	test -z "$(ls "$TMPDIR" | grep -v "^$(basename "$w")$")"
'

test_expect "a full disk gives a clear error and leaves nothing partial" '
	vm --no-uefi -D VIRT=64M:raw @create F &&
	head -c 30000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	mkdir backups && mount -t tmpfs -o size=8M tmpfs backups &&
	rc=0 && { vm @backup 2>err || rc=$?; } &&
	left=$(ls -A backups) && umount backups &&
	test $rc -eq 1 && contains err "no space left on $PWD/backups$" &&
	test -z "$left"
'

test_expect "a snapshot in the reference layout (backups/NAME/) restores" '
	vm --no-uefi -D VIRT=256M:raw @create L &&
	dd if=/dev/urandom of=.work/disk-0.img bs=1M count=3 seek=100 conv=notrunc status=none &&
	sums .work >before &&
	mkdir -p backups/2023-05-10 &&
	gzip -c .work/disk-0.img >backups/2023-05-10/disk-0.img.gz &&
	printf "GUESTNAME=\"OLD\"\nCORES=1\nMEMORY=\"512M\"\n" >backups/2023-05-10/guest.env &&
	echo 1683700000 >backups/2023-05-10/TS && echo "from the shell tool" >backups/2023-05-10/DESCRIPTION &&
	vm @snapshots >out && contains out "2023-05-10 .*from the shell tool" &&
	vm @verify 2023-05-10 2>err && contains err "^vm: 2023-05-10: ok" &&
	rm guest.conf && vm @destroy @restore 2023-05-10 &&
	sums .work >after && cmp before after &&
	contains guest.conf "^name = OLD" &&
	test "$(du -k .work/disk-0.img | cut -f1)" -lt $((10 << 10))
'

test_expect "@forget refuses LAST; @last moves it; then @forget works" '
	vm --no-uefi -D AHCI=1G @create G && vm @backup a @backup b &&
	must_fail 1 vm @forget b 2>err && contains err "LAST points to it" &&
	vm @last a @forget b && test ! -e backups/b.tar.gz &&
	test "$(readlink backups/LAST)" = a.tar.gz &&
	must_fail 1 vm @forget nosuch 2>err && contains err "no such snapshot"
'

test_expect "@run with no working files restores LAST first, as the reference does" '
	ISO=$(autorun_iso test-install "$TOP/tests/data/autorun-install") &&
	vm --no-uefi @create T "$ISO" @backup @destroy &&
	vm @run >out 2>&1 &&
	contains out "restoring snapshot S0 first" &&
	contains .work/console.log "AUTORUN-DONE"
'

test_expect "@backup with nothing to back up, and @restore with no snapshot, fail clearly" '
	vm --no-uefi @create Z @destroy &&
	must_fail 1 vm @backup 2>err && contains err "nothing to back up" &&
	test ! -e backups/S0.tar.gz &&
	must_fail 1 vm @restore 2>err && contains err "has no snapshots"
'

test_expect "--inplace: backup and restore in HOSTDIR; @run restores LAST there too" '
	vm --inplace --no-uefi -D VIRT=64M:raw @create P &&
	head -c 5000000 /dev/urandom | dd of=disk-0.img conv=notrunc status=none &&
	sums . >before && vm @backup &&
	printf "%s" changed | dd of=disk-0.img conv=notrunc status=none &&
	vm @restore && sums . >after && cmp before after &&
	test -z "$(ls -A | grep "^.restore-")" &&
	vm @destroy && test ! -e disk-0.img &&
	must_fail 1 vm -t 3 @run 2>err && contains err "timeout" &&
	sums . >again && cmp before again
'

test_expect "@backup of a VM a foreground @run runs elsewhere is live, and leaves it running" '
	vm --no-uefi -D AHCI=1G @create B &&
	{ "$VM_BIN" -t 60 @run >run.out 2>&1 & } &&
	pid=$! &&
	# running as @status says it (the control socket comes earlier)
	wait_for 60 vm -q @status &&
	if ! vm --json @backup >out 2>err; then cat err >&2 && false; fi &&
	kill -0 $pid &&
	contains out "\"taken\":\"crash-consistent\"" &&
	test -z "$(ls -A .work/ | grep "^\.live-")" &&
	kill -TERM $pid && { wait $pid || true; } &&
	contains err "B: its disks held still for a live backup" && test -f backups/S0.tar.gz &&
	vm -q @restore S0
'

test_expect "a progress bar on a terminal, none otherwise" '
	vm --no-uefi -D VIRT=256M:raw @create Q &&
	head -c 100000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	script -qec "\"$VM_BIN\" @backup tty @restore tty" /dev/null >tty.out &&
	grep -q "tty .*%.*MiB.*/s" tty.out &&
	# the bar reaches 100%; the summaries give the size and the time
	tr "\r" "\n" <tty.out | grep "restore tty " | tail -n 1 | grep -q "restore tty 100%" &&
	tr "\r" "\n" <tty.out | grep "backup tty " | tail -n 1 | grep -q "backup tty 100%" &&
	grep -q "stored in .*/tty.tar.gz ([0-9.]* MiB, 1 disk, full) in [0-9]*\.[0-9] s" tty.out &&
	grep -q "restored Q from snapshot tty ([0-9.]* MiB read) in [0-9]*\.[0-9] s" tty.out &&
	vm @backup notty 2>err && lacks err "%"
'

test_expect "off a terminal @backup and @restore print a start and a summary line; -q none" '
	vm -q --no-uefi -D VIRT=64M:raw @create P &&
	head -c 20000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm @backup 2>err && contains err "^vm: backup S0: started (19.1 MiB)$" &&
	contains err "^vm: backup S0: 19.1 MiB in [0-9.]* s (.*/s)$" &&
	vm @restore 2>err && contains err "^vm: restore S0: started (" &&
	contains err "^vm: restore S0: .* in [0-9.]* s (.*/s)$" &&
	vm -q @backup 2>err && test ! -s err && vm -q @restore 2>err && test ! -s err
'

test_done

