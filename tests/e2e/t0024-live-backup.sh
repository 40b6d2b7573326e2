#!/bin/bash
# Live snapshots: @backup of a running VM holds its disks still through
# the VM's own vm (an overlay taken in one QMP transaction, committed
# back after), the guest paused only for that.  The guest here writes a
# numbered sequence to its disk without a pause: every snapshot taken
# while it writes restores to an unbroken prefix of it.  An interrupted
# or killed live backup leaves the VM running on its own disks.
. "$(dirname "$0")/../lib.sh"

need_rescue
WRITER=$(autorun_iso test-writer "$TOP/tests/data/autorun-writer") || {
	echo "not ok 1 - cannot build the writer ISO"
	exit 1
}
AGENT=$(autorun_iso test-agent "$TOP/tests/data/autorun-agent") || {
	echo "not ok 1 - cannot build the agent ISO"
	exit 1
}
export WRITER AGENT

# prefix SNAPSHOT DIR: SNAPSHOT restored into the VM in DIR holds an
# unbroken prefix of the sequence; prints its length
prefix() {
	check_args prefix "SNAPSHOT DIR" 2 2 "$@" &&
	(cd "$2" && vm -q @restore "$1" &&
	 qemu-img convert -O raw .work/disk-0.img disk.raw &&
	 python3 "$TOP/tests/data/seq-check.py" disk.raw)
}
# nothing_live: no overlay, copy or NBD socket (the bitmaps' exports) a
# live backup makes is left
nothing_live() {
	check_args nothing_live "no arguments" 0 0 "$@" &&
	test -z "$(ls -A .work/ | grep "^\.live-")" && test ! -e .work/nbd.sock
}
# paused FILE: the --json line of a live @backup says it paused the
# guest at most 100 ms
paused() {
	check_args paused FILE 1 1 "$@" &&
	python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[0])["result"]
assert r["taken"] == "crash-consistent", r
assert 0 <= r["paused_ms"] <= 100, r["paused_ms"]' "$1"
}

test_expect "@backup of a running UEFI VM: a prefix of what the guest writes, its variables, paused at most 100 ms; the guest writes on" '
	vm -D VIRT=64M -f "tcp:127.0.0.1:$(free_port)-:80" @create W "$WRITER" &&
	vm @start && wait_for 180 writing 100 &&
	vm --json @backup L1 >l1 && paused l1 &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" l1 backup &&
	tar -tzf backups/L1.tar.gz >list && contains list "^efivars.bin$" &&
	tar -xzOf backups/L1.tar.gz efivars.bin | cmp - .work/efivars.bin &&
	nothing_live && vm -q @status >/dev/null &&
	n1=$(records) && wait_for 60 writing $((n1 + 100)) &&
	vm -q @backup L2 && nothing_live &&
	mkdir r && cp guest.conf r/ && cp -a backups r/ &&
	k1=$(prefix L1 r) && k2=$(prefix L2 r) &&
	test "$k1" -ge 100 && test "$k2" -gt "$k1" &&
	vm @stop 60 &&
	qemu-img convert -O raw .work/disk-0.img final.raw &&
	k=$(python3 "$TOP/tests/data/seq-check.py" final.raw) &&
	test "$k" -gt "$k2" && nothing_live && no_qemu &&
	vm --json @backup OFF >off && contains off "\"taken\":\"offline\"" &&
	vm -q @snapshots >list &&
	contains list "^L1  .* crash-consistent  " && contains list "^L2  .* crash-consistent  " &&
	contains list "^OFF  .* offline  " &&
	vm --json @snapshots >json &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" json snapshots &&
	# folding L1 into L2 keeps how L2 was taken, and its seal
	vm -q @forget L1 && vm -q @verify && vm -q @snapshots >list &&
	contains list "^L2  .* crash-consistent  " && lacks list "^L1 " &&
	rm -rf r && mkdir r && cp guest.conf r/ && cp -a backups r/ &&
	test "$(prefix L2 r)" = "$k2" &&
	vm @restore L2 2>err && lacks err "not a snapshot you made" &&
	contains guest.conf "^forwards = hostfwd=tcp:127.0.0.1:[0-9]*-:80$"
'

# slow_pigz SECONDS: a pigz on $slow_path that waits first, for a vm
# to be stopped while its disks are held still
slow_pigz() {
	check_args slow_pigz SECONDS 1 1 "$@" &&
	mkdir -p "$TEST_TMP/bin" &&
	printf "#!/bin/sh\nsleep %s\nexec %s \"\$@\"\n" "$1" \
		"$(command -v pigz)" >"$TEST_TMP/bin/pigz" &&
	chmod +x "$TEST_TMP/bin/pigz" &&
	slow_path=$TEST_TMP/bin:$PATH
}

test_expect "SIGINT and SIGKILL of a live @backup: the VM runs on its own disks, nothing is left, the next @backup works" '
	# on a snapshot: each live backup reads the bitmap QEMU exports
	vm --no-uefi -D VIRT=64M @create W "$WRITER" && vm -q @backup &&
	vm @start && wait_for 120 writing 100 && slow_pigz 30 &&
	for sig in INT KILL; do
		# (a file each: the last one still says "held still")
		{ PATH=$slow_path "$VM_BIN" @backup "X$sig" >"out.$sig" 2>&1 & } &&
		pid=$! && wait_for 30 grep -q "held still for a live backup" "out.$sig" &&
		test -S .work/nbd.sock && kill -$sig $pid && rc=0 && { wait $pid || rc=$?; } &&
		test $rc -ne 0 && wait_for 30 nothing_live &&
		test ! -e "backups/X$sig.tar.gz" &&
		vm -q @status >/dev/null || exit 1
	done &&
	n=$(records) && wait_for 60 writing $((n + 50)) &&
	# the bitmap the killed ones did not replace serves the next
	vm --json @backup L >l && contains l "\"by\":\"bitmap\"" &&
	nothing_live && vm @stop 60 &&
	qemu-img convert -O raw .work/disk-0.img final.raw &&
	k=$(python3 "$TOP/tests/data/seq-check.py" final.raw) &&
	test "$k" -gt "$n" &&
	mkdir r && cp guest.conf r/ && cp -a backups r/ && prefix L r >/dev/null
'

# held_backup NAME: the writer VM running (on a snapshot, so that its
# bitmap is exported), a live @backup NAME of it in the background ($!;
# its output in ./out), slowed so that it still holds the disks still
# when this returns
held_backup() {
	check_args held_backup NAME 1 1 "$@" &&
	vm --no-uefi -D VIRT=64M @create W "$WRITER" && vm -q @backup &&
	vm @start && wait_for 120 writing 100 && slow_pigz 10 &&
	{ PATH=$slow_path "$VM_BIN" @backup "$1" >out 2>&1 & } &&
	wait_for 30 grep -q "held still for a live backup" out &&
	test -S .work/nbd.sock &&
	# the guest's writes meanwhile are as private as its disks
	test "$(stat -c %a .work/.live-disk0.qcow2)" = 600
}

test_expect "QEMU ends during a live @backup: the backup reads on, whole; then what the guest wrote since goes into the disk" '
	held_backup K && pid=$! && n=$(records) &&
	wait_for 60 writing $((n + 20)) &&
	vm @kill && no_qemu &&
	# the vm that ran QEMU waits for the reader, then commits
	wait $pid && lacks out "not taken back" && lacks out "warning" &&
	wait_for 30 nothing_live &&
	qemu-img convert -O raw .work/disk-0.img final.raw &&
	k=$(python3 "$TOP/tests/data/seq-check.py" final.raw) &&
	test "$k" -ge $((n + 20)) &&
	mkdir r && cp guest.conf r/ && cp -a backups r/ &&
	kk=$(prefix K r) && test "$kk" -ge 100 && test "$kk" -lt "$k"
'

# a vm and its QEMU killed while the disks are held still (as a power
# cut would): the next vm that takes the lock commits what the overlay
# holds before anything reads the disks
test_expect "vm and QEMU killed during a live @backup: the next vm commits the overlay first" '
	held_backup K && pid=$! && n=$(records) &&
	wait_for 60 writing $((n + 20)) &&
	sup=$(vm -q --json @status | python3 -c "import json, sys; print(json.load(sys.stdin)[\"result\"][\"pid\"])") &&
	qpid=$(vm -q --json @status | python3 -c "import json, sys; print(json.load(sys.stdin)[\"result\"][\"qemu_pid\"])") &&
	kill -KILL "$sup" "$qpid" && wait_for 10 no_qemu && kill -KILL $pid &&
	test -e .work/.live-disk0.qcow2 &&
	vm @backup A 2>err && contains err "committed into its disks the 1 overlay" &&
	nothing_live &&
	qemu-img convert -O raw .work/disk-0.img final.raw &&
	k=$(python3 "$TOP/tests/data/seq-check.py" final.raw) &&
	test "$k" -ge $((n + 20)) &&
	mkdir r && cp guest.conf r/ && cp -a backups r/ &&
	test "$(prefix A r)" = "$k"
'

# files SNAPSHOT DIR: SNAPSHOT restored into the VM in DIR holds a clean
# ext4 (e2fsck finds nothing to do, no journal to replay) with the files
# f0..fK-1 the agent guest writes, each holding its number; prints K
files() {
	check_args files "SNAPSHOT DIR" 2 2 "$@" &&
	(cd "$2" && vm -q @restore "$1" &&
	 qemu-img convert -O raw .work/disk-0.img fs.raw &&
	 e2fsck -fn fs.raw >fsck.out 2>&1 &&
	 debugfs -R "ls -p /" fs.raw 2>/dev/null |
		awk -F/ "\$6 ~ /^f[0-9]+\$/ {print substr(\$6, 2)}" | sort -n >names &&
	 k=$(wc -l <names) && test "$k" -gt 0 &&
	 test "$(tail -n 1 names)" = $((k - 1)) &&
	 test "$(debugfs -R "cat /f$((k - 1))" fs.raw 2>/dev/null)" = $((k - 1)) &&
	 echo "$k") || { cat "$2/fsck.out" >&2 && false; }
}

test_expect "with qemu-guest-agent in the guest: its file systems frozen for the instant, the snapshot clean, the guest thawed and writing on, a SIGKILL too" '
	vm --no-uefi -D VIRT=64M @create A "$AGENT" &&
	vm @start && wait_for 180 writing 50 &&
	contains .work/console.log "AGENT: qemu-ga runs on" &&
	vm --json @backup F1 >f1 2>err &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" f1 backup &&
	contains f1 "\"taken\":\"frozen\"" && contains f1 "\"frozen_ms\":" &&
	contains err "file systems frozen by its agent" &&
	n=$(records) && wait_for 60 writing $((n + 50)) &&
	vm -q @backup F2 && nothing_live && vm -q @snapshots >list &&
	contains list "^F1  .* frozen  " && contains list "^F2  .* frozen  " &&
	# killed while the disks are held: the guest was thawed, writes on
	slow_pigz 10 &&
	{ PATH=$slow_path "$VM_BIN" @backup K >out 2>&1 & } &&
	pid=$! && wait_for 30 grep -q "held still for a live backup" out &&
	kill -KILL $pid && { wait $pid || true; } && wait_for 30 nothing_live &&
	n=$(records) && wait_for 60 writing $((n + 50)) &&
	vm @kill &&
	mkdir r && cp guest.conf r/ && cp -a backups r/ &&
	k1=$(files F1 r) && k2=$(files F2 r) && test "$k2" -gt "$k1"
'

test_expect "no agent answers: auto takes a crash-consistent snapshot and says why; guest_agent = yes refuses, no adds no channel; a paused guest stays paused" '
	vm --no-uefi -D VIRT=64M @create W "$WRITER" &&
	vm @start && wait_for 120 writing 100 &&
	vm --json @backup C >c 2>err && contains c "\"taken\":\"crash-consistent\"" &&
	contains err "crash-consistent: no guest agent runs in it" &&
	printf "[vm]\nguest_agent = yes\n" >>guest.conf &&
	must_fail 1 vm @backup Y 2>err &&
	contains err "^vm: cannot back up W while it runs: guest_agent = yes, but no guest agent runs in it$" &&
	test ! -e backups/Y.tar.gz && nothing_live && vm -q @status >/dev/null &&
	# a guest its owner paused stays paused
	vm -q @monitor stop >/dev/null &&
	sed -i "s/^guest_agent = yes$/guest_agent = auto/" guest.conf &&
	vm -q @backup P && nothing_live &&
	{ vm -q @status >st || true; } && contains st "^W: paused" &&
	vm @kill && vm --dry-run @run >dry && contains dry "guest_agent.0" &&
	sed -i "s/^guest_agent = auto$/guest_agent = no/" guest.conf &&
	vm --dry-run @run >dry && lacks dry "guest_agent"
'

test_done
