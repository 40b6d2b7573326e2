#!/bin/bash
# Incremental @backup by dirty bitmaps: every qcow2 disk carries a
# persistent bitmap counting from LAST, kept by every QEMU that opens
# the disk (qemu-io here, the rescue's for @job, the VM's, across @stop
# and @start); the next @backup reads only what it marks.  A bitmap
# that cannot be trusted (QEMU killed, a raw disk) is said, and the
# disk is read whole and compared by digests: exact either way.
. "$(dirname "$0")/../lib.sh"

need_rescue
WRITER=$(autorun_iso test-writer "$TOP/tests/data/autorun-writer") || {
	echo "not ok 1 - cannot build the writer ISO"
	exit 1
}
export WRITER

# keep N: a copy of the VM's disk as snapshot N has it
keep() {
	check_args keep N 1 1 "$@" &&
	cp --sparse=always .work/disk-0.img "kept.$1"
}
# same N: the disk is, byte for byte, what keep N saved
same() {
	check_args same N 1 1 "$@" &&
	cmp "kept.$1" .work/disk-0.img
}
# changes FILE: how the --json line of @backup in FILE found each disk's
# changes: "bitmap MARKED" or "digests WHY", one line per disk; and
# the bytes it read, on a last line "read N"
changes() {
	check_args changes FILE 1 1 "$@" &&
	python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[0])["result"]
for c in r["changes"]:
    print(c["by"], c.get("marked", c.get("why")))
print("read", r["read"])' "$1"
}
# bitmaps: the names of the bitmaps in the disk file
bitmaps() {
	check_args bitmaps "no arguments" 0 0 "$@" &&
	qemu-img info -U --output=json .work/disk-0.img |
		python3 -c '
import json, sys
for b in json.load(sys.stdin)["format-specific"]["data"].get("bitmaps", []):
    print(b["name"], ",".join(b["flags"]))'
}
# rewriting N: the guest, booted a second time from its CD (kept: -k;
# the console log goes on), has written N records again from the start
rewriting() {
	check_args rewriting N 1 1 "$@" &&
	awk -v n="$1" "/WRITER: writing on/ { boots++ }
		boots == 2 && /WRITER: [0-9]/ { k = \$2 }
		END { exit !(k >= n) }" .work/console.log
}

test_expect "a stopped VM: each @backup reads only what the bitmap marks, --full starts over, a restored one brings its own, every snapshot restores byte for byte" '
	vm -q -p "" --no-uefi -D VIRT=256M @create Q &&
	qwrite 0 24M && keep 0 && vm --json @backup >j0 &&
	changes j0 >c0 && contains c0 "^read [0-9]*$" && equals "$(wc -l <c0)" 1 &&
	bitmaps >b && equals "$(wc -l <b)" 1 && contains b "^vm-[0-9a-f]\{64\} auto$" &&
	qwrite 3M 200k && qwrite 100M 64k && keep 1 && vm --json @backup >j1 &&
	changes j1 >c1 && contains c1 "^bitmap 327680$" &&
	read=$(sed -n "s/^read //p" c1) && test "$read" -lt 2000000 &&
	vm --json @backup --full F >jf && changes jf >cf &&
	equals "$(wc -l <cf)" 1 &&
	qwrite 5M 64k && keep 2 && vm --json @backup >j2 &&
	changes j2 >c2 && contains c2 "^bitmap 65536$" &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" j2 backup &&
	vm -q @restore S0 && same 0 && vm -q @restore S1 && same 1 &&
	vm -q @restore S2 && same 2 && vm -q @verify &&
	# S2 restored brings the bitmap counting from F, its parent: it
	# marks what F and S2 differ in, and what is written since
	bitmaps >b && equals "$(wc -l <b)" 1 && qwrite 7M 64k && keep 3 &&
	vm --json @backup >j3 2>err && changes j3 >c3 &&
	contains c3 "^bitmap 131072$" &&
	contains err "its bitmap marks 128.0 KiB written since F; what F and S2 differ in is read too" &&
	vm -q @restore S0 && vm -q @restore S3 && same 3
'

test_expect "a raw disk has no bitmap: read whole and compared by digests, said, exact" '
	vm -q -p "" --no-uefi -D VIRT=8M:raw @create R &&
	head -c 3M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup &&
	printf z | dd of=.work/disk-0.img bs=1 seek=123457 conv=notrunc status=none &&
	keep 1 && vm --json @backup >j1 2>err &&
	changes j1 >c1 && contains c1 "^digests a raw disk keeps no bitmap$" &&
	contains err "disk-0.img: read whole and compared with S0 block by block: a raw disk keeps no bitmap" &&
	vm -q @restore S1 && same 1
'

test_expect "a snapshot made elsewhere brings no bitmap vm trusts: restored, its disks have none; the next @backup compares digests" '
	mkdir other && cp "$XDG_CONFIG_HOME/vm.conf" other/ &&
	XDG_CONFIG_HOME=$PWD/other vm -q -p "" --no-uefi -D VIRT=64M @create E &&
	qwrite 0 4M && XDG_CONFIG_HOME=$PWD/other vm -q @backup &&
	qwrite 2M 64k && XDG_CONFIG_HOME=$PWD/other vm -q @backup &&
	# S1 holds the disk with the bitmap counting from S0: its maker
	# restores it so, anyone else without
	XDG_CONFIG_HOME=$PWD/other vm -q @restore S1 &&
	bitmaps >b && equals "$(wc -l <b)" 1 &&
	vm -q @restore S1 && bitmaps >b && equals "$(wc -l <b)" 0 &&
	qwrite 1M 64k && keep 2 && vm --json @backup >j2 &&
	changes j2 >c2 && contains c2 "^digests it has no bitmap since that snapshot$" &&
	vm -q @restore S2 && same 2
'

test_expect "a @job that writes: the rescue keeps the bitmap, which marks exactly what the job wrote" '
	vm -q --no-uefi -D AHCI=256M @create J && qwrite 0 8M &&
	vm -q @backup &&
	printf "dd if=/dev/urandom of=/dev/sda bs=64k seek=100 count=16 conv=notrunc,fsync status=none\n" >w.job &&
	vm -q @job w && keep 1 && vm --json @backup >j1 &&
	changes j1 >c1 && contains c1 "^bitmap 1048576$" &&
	vm -q @restore S0 && vm -q @restore S1 && same 1 && no_qemu
'

test_expect "QEMU killed: its bitmap is not trusted, the disk is read whole, exact; the next @backup has a bitmap again" '
	vm -q --no-uefi -D VIRT=64M @create K "$WRITER" && vm -q @backup &&
	vm @start && wait_for 180 writing 50 &&
	qpid=$(vm -q --json @status | python3 -c "import json, sys; print(json.load(sys.stdin)[\"result\"][\"qemu_pid\"])") &&
	kill -KILL "$qpid" && wait_for 30 no_qemu &&
	bitmaps >b && contains b "in-use" &&
	keep 1 && vm --json @backup >j1 2>err &&
	changes j1 >c1 && contains c1 "^digests its bitmap was not saved" &&
	contains err "read whole and compared with S0 block by block: its bitmap was not saved (QEMU ended without closing the disk)" &&
	bitmaps >b && lacks b "in-use" &&
	keep 2 && vm --json @backup >j2 && changes j2 >c2 && contains c2 "^bitmap 0$" &&
	vm -q @restore S1 && same 1 && vm -q @restore S2 && same 2
'

# offline after a live one, live after @stop and @start: the bitmap
# counts on; every snapshot holds an unbroken prefix of what the guest
# wrote, the last one all of it
test_expect "a running VM: a live @backup reads what the bitmap marks; the bitmap survives @stop and @start" '
	vm -k -D VIRT=64M --no-uefi @create W "$WRITER" && vm -q @backup &&
	vm @start && wait_for 180 writing 100 &&
	vm --json @backup L1 >l1 && changes l1 >c1 &&
	contains c1 "^bitmap [1-9][0-9]*$" &&
	test ! -e .work/nbd.sock && n=$(records) &&
	wait_for 60 writing $((n + 50)) && vm @stop 60 && no_qemu &&
	keep 2 && vm --json @backup OFF >off && changes off >c2 &&
	contains c2 "^bitmap [1-9][0-9]*$" &&
	vm @start && wait_for 180 rewriting 100 &&
	vm --json @backup L3 >l3 && changes l3 >c3 &&
	contains c3 "^bitmap [1-9][0-9]*$" && vm @stop 60 &&
	keep 4 && vm --json @backup END >end && changes end >c4 &&
	contains c4 "^bitmap " &&
	for s in L1 L3; do
		vm -q @restore $s &&
		qemu-img convert -O raw .work/disk-0.img d.raw &&
		python3 "$TOP/tests/data/seq-check.py" d.raw >/dev/null || exit 1
	done &&
	vm -q @restore OFF && same 2 && vm -q @restore END && same 4
'

test_done
