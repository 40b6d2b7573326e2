#!/bin/bash
# Incremental snapshots: @backup on LAST stores what changed, @restore
# rebuilds a chain exactly, @verify checks without restoring, @forget
# folds a parent into its children, --full and full_every start chains,
# and a damaged or replaced parent is named with nothing changed.  No
# QEMU is booted: the disks are written directly (qemu-io for qcow2).
# Interrupts of all three are in t0011.
. "$(dirname "$0")/../lib.sh"

# keep N: copies of the VM's disk and UEFI variables as snapshot N has them
keep() {
	check_args keep N 1 1 "$@" &&
	for f in disk-0.img efivars.bin; do
		[ ! -e ".work/$f" ] || cp --sparse=always ".work/$f" "kept.$1.$f" || return 1
	done
}

# same N: the working files are, byte for byte, what keep N saved (cmp
# names the first difference)
same() {
	check_args same N 1 1 "$@" &&
	for f in disk-0.img efivars.bin; do
		{ [ ! -e "kept.$1.$f" ] || cmp "kept.$1.$f" ".work/$f"; } || return 1
	done
}

# parent_of NAME: the parent @snapshots --json names ("null": none)
parent_of() {
	check_args parent_of NAME 1 1 "$@" &&
	vm -q --json @snapshots | python3 -c '
import json, sys
for s in json.load(sys.stdin)["result"]["snapshots"]:
    if s["name"] == sys.argv[1]: print(s["parent"] or "null")' "$1"
}

size_of() { stat -c %s "backups/$1.tar.gz"; }

test_expect "a chain of 6 on a qcow2 disk with UEFI variables: each restores byte for byte" '
	vm -q -p "" -D VIRT=256M @create Q && test -f .work/efivars.bin &&
	qwrite 0 24M && keep 0 && vm -q @backup &&
	for i in 1 2 3 4 5; do
		qwrite $((i * 3))M 200k && qwrite $((100 + i))M 64k &&
		printf "var$i" | dd of=.work/efivars.bin bs=1 seek=$((i * 1000)) conv=notrunc status=none &&
		keep $i && vm -q @backup || exit 1
	done &&
	test "$(parent_of S0)" = null && test "$(parent_of S3)" = S2 &&
	test "$(parent_of S5)" = S4 &&
	echo "full $(size_of S0), incremental $(size_of S1)" >&2 &&
	test $(($(size_of S1) * 20)) -lt "$(size_of S0)" &&
	for i in 3 0 5 1 4 2; do
		vm -q @restore S$i && same $i || exit 1
	done &&
	qemu-img check -q .work/disk-0.img &&
	vm @verify 2>err && contains err "6 snapshots checked"
'

test_expect "a raw disk that grows, shrinks, is replaced, changes by one byte: exact restores" '
	vm -q --no-uefi -p "" -D VIRT=8M:raw @create R &&
	head -c 3M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	keep 0 && vm -q @backup &&
	printf z | dd of=.work/disk-0.img bs=1 seek=123457 conv=notrunc status=none &&
	keep 1 && vm -q @backup && test "$(size_of S1)" -lt 150000 &&
	truncate -s 12M .work/disk-0.img && printf end >>.work/disk-0.img &&
	keep 2 && vm -q @backup &&
	truncate -s 1000001 .work/disk-0.img && keep 3 && vm -q @backup &&
	rm .work/disk-0.img && head -c 2M /dev/urandom >.work/disk-0.img &&
	keep 4 && vm -q @backup &&
	dd if=/dev/zero of=.work/disk-0.img bs=64k count=8 conv=notrunc status=none &&
	keep 5 && vm -q @backup &&
	for i in 0 1 2 3 4 5; do
		vm -q @restore S$i && same $i || exit 1
	done &&
	test "$(parent_of S4)" = S3 &&
	test "$(stat -c %b .work/disk-0.img)" -lt $((2 * 2048 - 900))
'

test_expect "--full and full_every start new chains; other disks make a full one" '
	vm -q --no-uefi -p "" -D VIRT=4M:raw @create F &&
	head -c 1M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup @backup && test "$(parent_of S1)" = S0 &&
	vm -q --full @backup && test "$(parent_of S2)" = null &&
	echo "full_every = 3" >>guest.conf &&
	vm -q @backup @backup @backup 2>err &&
	test "$(parent_of S3)" = S2 && test "$(parent_of S4)" = S3 &&
	test "$(parent_of S5)" = null &&
	vm @snapshots >list && contains list "^S4 .* S3 " &&
	vm -q --json @snapshots | grep -q "\"restore_size\":4194" &&
	sed -i "s/^disks = .*/disks = VIRT=4M:raw,VIRT=1M:raw/" guest.conf &&
	truncate -s 1M .work/disk-1.img && vm @backup 2>err &&
	contains err "a full snapshot: the disks are not those of S5" &&
	test "$(parent_of S6)" = null && vm -q @backup && test "$(parent_of S7)" = S6
'

test_expect "a damaged or replaced parent is named; the working files stay as they were" '
	vm -q --no-uefi -p "" -D VIRT=8M:raw @create D &&
	head -c 4M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup && qwrite_raw() { head -c "$2" /dev/urandom | dd of=.work/disk-0.img bs=1 seek="$1" conv=notrunc status=none; } &&
	qwrite_raw 100000 70000 && vm -q @backup &&
	qwrite_raw 900000 70000 && vm -q @backup &&
	printf unsaved | dd of=.work/disk-0.img conv=notrunc status=none && keep now &&
	cp backups/S1.tar.gz S1.good &&
	python3 -c "
f = open(\"backups/S1.tar.gz\", \"r+b\"); f.seek(40000)
b = f.read(1); f.seek(40000); f.write(bytes([b[0] ^ 0x21]))" &&
	must_fail 1 vm @restore S2 2>err && contains err "cannot restore S2: S1 (a parent of S2): " &&
	same now &&
	must_fail 1 vm @verify 2>err && contains err "S1: " && contains err "S2: its parent S1 does not check out" &&
	contains err "S0: ok" &&
	rm backups/S1.tar.gz && must_fail 1 vm @restore S2 2>err &&
	contains err "S2 needs its parent S1, which is not in backups/" && same now &&
	vm -q @last S0 && vm -q --full @backup S1 && vm -q @last S2 &&
	must_fail 1 vm @restore S2 2>err &&
	contains err "its parent S1 is not the snapshot it was made from" && same now &&
	mv S1.good backups/S1.tar.gz && vm -q @restore S2 && vm -q @verify
'

test_expect "@forget folds a parent into its children: every snapshot restores as before" '
	vm -q --no-uefi -p "" -D VIRT=8M:raw @create G &&
	head -c 4M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none && keep 0 &&
	vm -q @backup &&
	for i in 1 2 3; do
		head -c 100000 /dev/urandom | dd of=.work/disk-0.img bs=1 seek=$((i * 1000000)) conv=notrunc status=none &&
		keep $i && vm -q @backup || exit 1
	done &&
	vm @forget S1 2>err && contains err "S2 is built on S1" &&
	test ! -e backups/S1.tar.gz && test "$(parent_of S2)" = S0 &&
	vm -q @verify && vm -q @restore S2 && same 2 && vm -q @restore S3 && same 3 &&
	vm -q @forget S0 && test "$(parent_of S2)" = null &&
	test "$(size_of S2)" -gt 4000000 &&
	vm -q @verify && vm -q @restore S2 && same 2 && vm -q @restore S3 && same 3 &&
	must_fail 1 vm @forget S3 2>err && contains err "LAST points to it" &&
	test -z "$(ls -A backups | grep -v -e "^S[23]\.tar\.gz$" -e "^LAST$" -e "^\.S[23]\.manifest$")"
'

test_expect "@restore URL: a chain published by a plain web server, fetched and verified" '
	mkdir pub && cd pub &&
	vm -q --no-uefi -p "" -D VIRT=8M:raw @create P &&
	head -c 3M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none && vm -q @backup &&
	printf one | dd of=.work/disk-0.img bs=1 seek=5000 conv=notrunc status=none && vm -q @backup &&
	printf two | dd of=.work/disk-0.img bs=1 seek=2500000 conv=notrunc status=none && vm -q @backup &&
	cp .work/disk-0.img ../golden.img && cd .. &&
	{ python3 "$TOP/tests/data/httpd.py" pub/backups port log & } && srv=$! &&
	{ trap "kill $srv 2>/dev/null || true" EXIT; } &&
	wait_for 10 test -s port && url=http://127.0.0.1:$(cat port) &&
	mkdir runner && cd runner &&
	vm -q --no-uefi -p "" -D VIRT=8M:raw @create R &&
	vm @restore "$url/S2.tar.gz" 2>err && cmp .work/disk-0.img ../golden.img &&
	grep -c "GET /S[012].tar.gz" ../log &&
	grep -q "GET /S0.tar.gz" ../log && grep -q "GET /S1.tar.gz" ../log &&
	sum=$(sha256sum ../pub/backups/S2.tar.gz | cut -d" " -f1) &&
	printf x | dd of=.work/disk-0.img conv=notrunc status=none && keep before &&
	vm -q @restore "$url/S2.tar.gz#sha256=$sum" && cmp .work/disk-0.img ../golden.img &&
	printf x | dd of=.work/disk-0.img conv=notrunc status=none && keep before &&
	must_fail 1 vm @restore "$url/S2.tar.gz#sha256=$(printf "%064d" 0)" 2>err &&
	contains err "checksum mismatch" && same before &&
	mv ../pub/backups/S1.tar.gz ../S1.away &&
	must_fail 1 vm @restore "$url/S9.tar.gz" 2>err && contains err "HTTP 404" &&
	same before &&
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	must_fail 1 vm @restore "$url/S2.tar.gz" 2>err && contains err "S1.tar.gz" &&
	same before &&
	must_fail 1 vm @restore "$url/notes.txt" 2>err &&
	contains err "a snapshot.s URL names its NAME.tar.gz" &&
	kill $srv
'

test_expect "@restore URL of parents without end stops at max_chain and keeps nothing it fetched" '
	vm -q --no-uefi -p "" -D VIRT=8M:raw @create E &&
	printf x | dd of=.work/disk-0.img conv=notrunc status=none && keep before &&
	{ python3 "$TOP/tests/data/httpd.py" . port log & } && srv=$! &&
	{ trap "kill $srv 2>/dev/null || true" EXIT; } &&
	wait_for 10 test -s port && url=http://127.0.0.1:$(cat port) &&
	must_fail 1 vm @restore "$url/chain/C0.tar.gz" 2>err &&
	contains err "cannot restore $url/chain/C0.tar.gz: the chain of C0 is longer than max_chain (256 snapshots)$" &&
	test "$(grep -c "GET /chain/C" log)" -eq 256 &&
	test -z "$(ls -A "$XDG_CACHE_HOME/vm/downloads")" && same before &&
	echo "max_chain = 5" >>guest.conf && : >log &&
	must_fail 1 vm @restore "$url/chain/C7.tar.gz" 2>err &&
	contains err "the chain of C7 is longer than max_chain (5 snapshots)$" &&
	test "$(grep -c "GET /chain/C" log)" -eq 5 &&
	test -z "$(ls -A "$XDG_CACHE_HOME/vm/downloads")" && same before &&
	kill $srv
'

test_expect "the MANIFEST copy beside a snapshot is taken only while the archive is that file" '
	vm -q --no-uefi -p "" -D VIRT=8M:raw @create M &&
	head -c 3M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup A && test -s backups/.A.manifest &&
	cp backups/A.tar.gz a.first &&
	head -c 3M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q --full @backup B &&
	cp backups/B.tar.gz backups/A.tar.gz && vm -q @last A &&
	printf x | dd of=.work/disk-0.img bs=1 seek=100 conv=notrunc status=none &&
	keep 0 && vm -q @backup C && test "$(parent_of C)" = A &&
	test "$(size_of C)" -lt 200000 &&
	vm -q @restore C && same 0 &&
	cp a.first backups/A.tar.gz && must_fail 1 vm @restore C 2>err &&
	contains err "its parent A is not the snapshot it was made from" &&
	rm backups/A.tar.gz && vm -q @last B @backup D && test ! -e backups/.A.manifest
'

test_expect "an incremental MANIFEST names only what changed; a forged =N is caught" '
	vm -q --no-uefi -p "" -D VIRT=64M:raw @create F &&
	head -c 40M /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup &&
	head -c 64K /dev/urandom | dd of=.work/disk-0.img bs=64K seek=160 conv=notrunc status=none &&
	keep 1 && vm -q @backup && keep 2 &&
	tar -xzOf backups/S0.tar.gz MANIFEST >m0 && tar -xzOf backups/S1.tar.gz MANIFEST >m1 &&
	grep -q "^blocks disk-0.img 65536 =160 [0-9a-f]\{64\} =479 z384\$" m1 &&
	echo "MANIFEST: full $(wc -c <m0), incremental $(wc -c <m1) bytes" >&2 &&
	test "$(wc -c <m0)" -gt 40000 && test "$(wc -c <m1)" -lt 1000 &&
	mkdir good && tar -C good -xzf backups/S1.tar.gz TS DESCRIPTION CHAIN guest.conf &&
	sed "s/^blocks disk-0.img 65536 =160 [0-9a-f]\{64\} /blocks disk-0.img 65536 =160 =1 /" m1 >good/MANIFEST &&
	! cmp -s m1 good/MANIFEST && cp kept.1.disk-0.img good/disk-0.img &&
	python3 -c "
import tarfile
with tarfile.open(\"backups/S1.tar.gz\", \"w:gz\", format=tarfile.PAX_FORMAT) as t:
    for n in (\"TS\", \"DESCRIPTION\", \"CHAIN\", \"guest.conf\", \"disk-0.img\", \"MANIFEST\"):
        t.add(\"good/\" + n, arcname=n)" &&
	printf changed | dd of=.work/disk-0.img conv=notrunc status=none && keep now &&
	must_fail 1 vm @restore S1 2>err &&
	contains err "MANIFEST: the digest of disk-0.img does not match its blocks" &&
	same now
'

test_done
