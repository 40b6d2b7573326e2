#!/bin/bash
# Hostile snapshots: archives made to hurt (traversal, links, devices, a
# lying MANIFEST, settings vm would not start with, missing or stray
# disks, bit flips), interrupts at each phase of @backup and @restore, and
# full file systems.  A failed @backup or @restore leaves the VM, its
# snapshots and everything outside WORKDIR exactly as they were, says
# why in one line, and leaves nothing running.  No QEMU is booted: the
# disks are written directly.
. "$(dirname "$0")/../lib.sh"

# the test's own files beside the VM's, which state leaves out
SCRATCH="before\|after\|err\|out\|outcomes\|offsets\|flips\|good\|.*\.sum\|small\|big\.tar\.gz"

# state: everything a failed command must leave as it was, in one text:
# the .work and .host links, HOSTDIR's and WORKDIR's files with their
# digests, the snapshots and LAST, and what is in $TMPDIR
state() {
	check_args state "no arguments" 0 0 "$@" &&
	echo "work -> $(readlink .work)" &&
	echo "host -> $(readlink .work/.host)" &&
	ls -A . | grep -v -x -e "$SCRATCH" &&
	find . .work/ -maxdepth 1 -type f ! -name .lock -print0 | sort -z |
		xargs -0 -r sha256sum | grep -v -e "  \./\($SCRATCH\)$" &&
	ls -lA .work/ | awk "{print \$1, \$5, \$9, \$10, \$11}" &&
	if [ -d backups ]; then
		ls -A backups && echo "LAST -> $(readlink backups/LAST)" &&
		find backups -type f -print0 | sort -z | xargs -0 -r sha256sum
	fi &&
	echo "TMPDIR:" && ls -A "$TMPDIR"
}

# unchanged: state is what ./before says
unchanged() {
	check_args unchanged "no arguments" 0 0 "$@" &&
	state >after &&
	if ! cmp -s before after; then
		diff before after >&2 || return 1
	fi
}

# one_line FILE VERB WHAT: FILE holds the one error line of a failed
# "vm @VERB", "vm: cannot WHAT...", and the chain's "@VERB failed"
one_line() {
	check_args one_line "FILE VERB WHAT" 3 3 "$@" &&
	# (step banners and progress lines for logs aside: "*** Executing
	# command: ...", "vm: restore S0: started (SIZE)")
	# (-a: a hostile guest.conf puts its bytes in the message; in the
	# C locale grep would call it binary and count nothing)
	if [ "$(grep -av -e "^vm: @$2 failed" -e "^\*\*\* " "$1" |
		grep -acEv "^vm: (backup|restore) [^ ]*(: started|  +[0-9]+%)")" -ne 1 ]; then
		sed 's/^/|  /' "$1" >&2 &&
		echo "$1 is not one line (above)" >&2 && return 1
	fi &&
	contains "$1" "^vm: cannot $3[: ]"
}

# pigz_pids_dead: every pigz the wrapper on PATH started has ended
pigz_pids_dead() {
	check_args pigz_pids_dead "no arguments" 0 0 "$@" &&
	touch "$TEST_TMP/pigz.pids" &&
	while read -r p; do
		! kill -0 "$p" 2>/dev/null || return 1
	done <"$TEST_TMP/pigz.pids"
}

# slow_pigz SECONDS: a pigz that waits, then is pigz, for the vm that
# killed_at kills (what checks the outcome runs at full speed)
slow_pigz() {
	check_args slow_pigz SECONDS 1 1 "$@" &&
	mkdir -p "$TEST_TMP/bin" &&
	cat >"$TEST_TMP/bin/pigz" <<-EOF &&
	#!/bin/bash
	echo \$\$ >>"$TEST_TMP/pigz.pids"
	sleep $1
	exec $(command -v pigz) "\$@"
	EOF
	chmod +x "$TEST_TMP/bin/pigz" &&
	slow_path=$TEST_TMP/bin:$PATH
}

# small_vm NAME: a VM with one small raw disk of random data, its good
# snapshot (extracted in ./good too), then changes not saved
small_vm() {
	check_args small_vm NAME 1 1 "$@" &&
	vm -q --no-uefi -D VIRT=4M:raw @create "$1" &&
	head -c 3000000 /dev/urandom |
		dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup good &&
	mkdir good && tar -C good -xzf backups/good.tar.gz &&
	printf unsaved | dd of=.work/disk-0.img conv=notrunc status=none
}

# refused K WHY: @restore K fails with one line saying WHY, and nothing
# changed
refused() {
	check_args refused "SNAPSHOT WHY" 2 2 "$@" &&
	must_fail 1 vm @restore "$1" 2>err &&
	one_line err restore "restore $1" && contains err "$2" &&
	unchanged || {
		echo "snapshot $1" >&2 && return 1
	}
}

# flip I: restoring f$I either fails in one line with nothing changed,
# or (the flip hit a byte nothing reads) restores good exactly
flip() {
	check_args flip I 1 1 "$@" &&
	local rc=0 &&
	{ vm @restore "f$1" 2>err || rc=$?; } &&
	if [ $rc -eq 0 ]; then
		test "$(sha256sum .work/disk-0.img | cut -d" " -f1)" = "$(cat good.sum)" &&
		echo ok >>flips && vm -q @restore good &&
		printf unsaved | dd of=.work/disk-0.img conv=notrunc status=none &&
		state | sed "s/vm-[a-z0-9]*\.tmp/W/" >after &&
		sed "s/vm-[a-z0-9]*\.tmp/W/" before | cmp - after
	else
		test $rc -eq 1 && one_line err restore "restore f$1" && unchanged &&
		echo refused >>flips
	fi || {
		echo "flip $1: $(grep "^$((10#$1)) " offsets)" >&2 && return 1
	}
}

# killed_at VERB SIG DELAY: vm @VERB (the rest of the words), killed
# with SIG after DELAY seconds; sets rc, the output is in ./out
killed_at() {
	check_args killed_at "SIG DELAY VERB..." 3 - "$@" &&
	local sig=$1 delay=$2 pid &&
	shift 2 &&
	{ PATH=${slow_path:-$PATH} "$VM_BIN" "$@" >out 2>&1 & } &&
	pid=$! && sleep "$delay" &&
	{ kill -"$sig" $pid 2>/dev/null || true; } &&
	rc=0 && { wait $pid || rc=$?; } &&
	wait_for 5 pigz_pids_dead &&
	if [ $rc -ne 0 ]; then
		test $rc -eq "$([ "$sig" = INT ] && echo 130 || echo 137)"
	fi
}

# restore_killed SIG DELAY: @restore big killed: the old disk or big's
# (big's when it succeeded; a signal just after the swap also fails the
# chain), the links intact; after SIGINT nothing else in $TMPDIR
restore_killed() {
	check_args restore_killed "SIG DELAY" 2 2 "$@" &&
	killed_at "$1" "$2" @restore big &&
	local sum &&
	sum=$(sha256sum .work/disk-0.img | cut -d" " -f1) &&
	echo "$1 $2 status $rc ${sum:0:8}" >>outcomes &&
	if [ "$sum" = "$(cat big.sum)" ]; then
		printf unsaved | dd of=.work/disk-0.img conv=notrunc status=none
	else
		test $rc -ne 0 && test "$sum" = "$(cat unsaved.sum)"
	fi &&
	test "$(readlink .work/.host)" = "$PWD" &&
	if [ "$1" = INT ]; then
		test "$(ls -A "$TMPDIR")" = "$(basename "$(readlink .work)")"
	fi || {
		echo "$1 after $2 s: status $rc" >&2 && cat out >&2 &&
		ls -la "$TMPDIR" >&2 && return 1
	}
}

# backup_killed SIG DELAY: @backup new killed: no trace of it, unless
# it finished or was linked (then it verifies, is forgotten, and LAST
# is put back)
backup_killed() {
	check_args backup_killed "SIG DELAY" 2 2 "$@" &&
	killed_at "$1" "$2" @backup new &&
	# a kill between the link of new.tar.gz and the move of LAST leaves
	# a whole snapshot that LAST does not name yet: it must verify
	if [ $rc -eq 0 ] || [ -e backups/new.tar.gz ]; then
		vm -q @verify new && vm -q @last keep @forget new
	fi &&
	unchanged || {
		echo "$1 after $2 s: status $rc" >&2 && cat out >&2 && return 1
	}
}

# mksnap OUT KIND: an archive made by python's tarfile from the files
# of ./good (an extracted snapshot), with the MANIFEST vm writes, then
# spoiled as KIND says
mksnap() {
	check_args mksnap "OUT KIND" 2 2 "$@" &&
	python3 - "$@" <<-\EOF
	import gzip, hashlib, io, os, sys, tarfile
	out, kind = sys.argv[1], sys.argv[2]
	rd = lambda n: open(os.path.join("good", n), "rb").read()
	files = [[n, rd(n)] for n in ("TS", "DESCRIPTION", "guest.conf", "disk-0.img")]
	def get(n): return [f for f in files if f[0] == n][0]
	def drop(n): files[:] = [f for f in files if f[0] != n]
	def digest(b):
	    n = len(b)
	    run = b"0 %d\n" % n if n else b""
	    return hashlib.sha256(b + run + b"%d\n" % n).hexdigest()
	extra = []           # (TarInfo, data) entries out of the MANIFEST
	listed = None        # MANIFEST text, when not the true one
	if kind == "unknown-key": get("guest.conf")[1] += b"bogus = 1\n"
	if kind == "bad-value": get("guest.conf")[1] += b"cores = many\n"
	if kind == "bad-section": get("guest.conf")[1] += b"[nosuch]\nx = 1\n"
	if kind == "binary-conf": get("guest.conf")[1] = os.urandom(300)
	if kind == "taken-escape": files.insert(2, ["TAKEN", b"\x1b[31mlive\n"])
	if kind == "no-conf": drop("guest.conf")
	if kind == "bad-defaults": files.append(["vm.defaults", b"-name \"unterminated\n"])
	if kind == "no-disks": drop("disk-0.img")
	if kind == "manifest-only": files.clear(); listed = ""
	if kind == "missing-disk":
	    c = get("guest.conf")
	    c[1] = c[1].replace(b"disks = VIRT=4M:raw", b"disks = VIRT=4M:raw,AHCI=4M:raw")
	if kind == "stray-disk": files.append(["disk-1.img", b"stray"])
	if kind == "zero-disks":
	    c = get("guest.conf")
	    c[1] = c[1].replace(b"disks = VIRT=4M:raw", b"disks =")
	if kind in ("disk-00", "disk-007", "disk-16"):
	    get("disk-0.img")[0] = {"disk-00": "disk-00.img", "disk-007": "disk-007.img", "disk-16": "disk-16.img"}[kind]
	if kind == "dotdot": files.append(["../escaped", b"x"])
	if kind == "absolute": files.append([os.environ["TEST_TMP"] + "/absolute", b"x"])
	if kind == "planted": files.append(["evil.job", b"touch /tmp/planted"])
	if kind == "dotfile": files.append([".work", b"x"])
	if kind == "sealed-other-disk":
	    get("disk-0.img")[1] = os.urandom(len(get("disk-0.img")[1]))
	    files.append(["SEAL", rd("SEAL")])
	def manifest():
	    return "".join("%s %d %s\n" % (digest(d), len(d), n) for n, d in files)
	if kind == "lie-sum":
	    listed = manifest().replace(digest(get("disk-0.img")[1]), "0" * 64)
	if kind == "lie-size":
	    d = get("disk-0.img")[1]
	    listed = manifest().replace(" %d disk-0.img" % len(d), " %d disk-0.img" % (len(d) + 1))
	if kind == "lie-extra": listed = manifest() + "%s 1 disk-1.img\n" % ("0" * 64)
	if kind == "lie-unlisted":
	    listed = "".join(l for l in manifest().splitlines(True) if not l.endswith(" guest.conf\n"))
	if kind == "lie-garbage": listed = manifest() + "this is not a line\n"
	if kind == "many-files":
	    listed = manifest() + "".join("%s 1 f%d\n" % ("0" * 64, i) for i in range(100000))
	if kind == "huge-blocks":
	    listed = manifest().replace(" %d disk-0.img" % len(get("disk-0.img")[1]), " %d disk-0.img" % (1 << 52)) + \
	        "blocks disk-0.img 4096 z%d\n" % (1 << 40)
	def info(name, type, data=b"", link=""):
	    i = tarfile.TarInfo(name); i.type = type; i.size = len(data); i.linkname = link
	    return (i, data)
	if kind == "hardlink": extra.append(info("disk-1.img", tarfile.LNKTYPE, link="disk-0.img"))
	if kind == "symlink": extra.append(info("efivars.bin", tarfile.SYMTYPE, link="/etc/passwd"))
	if kind == "chardev": extra.append(info("saved-state", tarfile.CHRTYPE))
	if kind == "blockdev": extra.append(info("efivars.bin", tarfile.BLKTYPE))
	if kind == "fifo": extra.append(info("efivars.bin", tarfile.FIFOTYPE))
	if kind == "dir": extra.append(info("vm.defaults", tarfile.DIRTYPE))
	if kind == "twice": extra.append(info("disk-0.img", tarfile.REGTYPE, b"again"))
	buf = io.BytesIO()
	with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
	    if kind != "empty":
	        for i, d in extra:
	            t.addfile(i, io.BytesIO(d) if d else None)
	        for n, d in files:
	            i = tarfile.TarInfo(n); i.size = len(d); i.mode = 0o600
	            t.addfile(i, io.BytesIO(d))
	        m = (manifest() if listed is None else listed).encode()
	        i = tarfile.TarInfo("MANIFEST"); i.size = len(m)
	        t.addfile(i, io.BytesIO(m))
	        if kind == "after-manifest":
	            i = tarfile.TarInfo("TS"); i.size = 2
	            t.addfile(i, io.BytesIO(b"1\n"))
	data = buf.getvalue()
	if kind == "plain-tar": open(out, "wb").write(data)
	elif kind == "zero-bytes": open(out, "wb").close()
	elif kind == "junk": open(out, "wb").write(os.urandom(5000))
	elif kind == "gzip-junk": open(out, "wb").write(b"\x1f\x8b" + os.urandom(5000))
	else: open(out, "wb").write(gzip.compress(data))
	EOF
}

test_expect "the archive maker's own snapshot restores (the MANIFEST is vm's)" '
	small_vm H && sums=$(sha256sum good/disk-0.img | cut -d" " -f1) &&
	mksnap backups/remade.tar.gz ok &&
	vm @restore remade &&
	test "$(sha256sum .work/disk-0.img | cut -d" " -f1)" = "$sums" &&
	test "$(ls -A "$TMPDIR" | wc -l)" -eq 1
'

# kind:what the message must say
HOSTILE="
unknown-key:its settings do not load: guest.conf:[0-9]*: unknown key .bogus. in \[vm\]
bad-value:its settings do not load: guest.conf:[0-9]*: cores: .many. is not a number
bad-section:its settings do not load: guest.conf:[0-9]*: unknown section \[nosuch\]
binary-conf:its settings do not load: guest.conf:
no-conf:guest.conf is missing
bad-defaults:vm.defaults: unterminated quote$
no-disks:disk-0.img is missing (guest.conf names 1 disk)
manifest-only:guest.conf is missing
missing-disk:disk-1.img is missing (guest.conf names 2 disks)
stray-disk:disk-1.img is there, but guest.conf names 1 disk
zero-disks:guest.conf names no disks
empty:archive holds no files (no MANIFEST)
disk-00:archive holds .disk-00.img., which is not a plain file name
disk-007:archive holds .disk-007.img., which is not a plain file name
disk-16:archive holds .disk-16.img., which is not a plain file name
dotdot:archive holds .\.\./escaped., which is not a plain file name
absolute:which is not a plain file name
planted:archive holds .evil.job., which is not a plain file name
dotfile:archive holds .\.work., which is not a plain file name
lie-sum:checksum mismatch in disk-0.img
lie-size:disk-0.img has 4194304 bytes, the MANIFEST says 4194305
lie-extra:disk-1.img is in the MANIFEST but not in the archive
lie-unlisted:guest.conf is not in the MANIFEST
lie-garbage:MANIFEST line 5 is malformed
many-files:MANIFEST names more than 64 files$
huge-blocks:MANIFEST: disk-0.img has more blocks than vm holds for one snapshot (268435456)$
hardlink:archive holds .disk-1.img., which is not a plain file name
symlink:archive holds .efivars.bin., which is not a plain file name
chardev:archive holds .saved-state., which is not a plain file name
blockdev:archive holds .efivars.bin., which is not a plain file name
fifo:archive holds .efivars.bin., which is not a plain file name
dir:archive holds .vm.defaults/., which is not a plain file name
twice:disk-0.img: stored twice
after-manifest:archive has entries after its MANIFEST
plain-tar:not a gzip archive$
zero-bytes:not a gzip archive (empty file)
junk:not a gzip archive$
gzip-junk:archive is damaged at byte [0-9]*$
"

test_expect "38 hostile archives: each refused in one line, the VM and its snapshots unchanged" '
	test "$(echo "$HOSTILE" | grep -c .)" -eq 38 &&
	small_vm H &&
	for k in $(echo "$HOSTILE" | cut -d: -f1); do
		mksnap backups/$k.tar.gz $k || exit 1
	done &&
	state >before &&
	while IFS=: read -r k why; do
		[ -z "$k" ] || refused "$k" "$why" || exit 1
	done <<<"$HOSTILE" &&
	test ! -e ../escaped && test ! -e "$TEST_TMP/absolute" &&
	test ! -e evil.job && test ! -e /tmp/planted &&
	vm -q @restore good && cmp good/disk-0.img .work/disk-0.img
'

test_expect "an unknown key in a snapshot: old WORKDIR kept, @restore S0 works after" '
	small_vm U && vm -q @backup S0 && mksnap backups/S1.tar.gz unknown-key &&
	sha256sum <.work/disk-0.img >s0.sum &&
	printf again | dd of=.work/disk-0.img conv=notrunc status=none &&
	state >before &&
	refused S1 "unknown key .bogus." &&
	vm @restore S0 && sha256sum <.work/disk-0.img | cmp - s0.sum
'

test_expect "an archive holding only an empty MANIFEST restores nothing and keeps the disks" '
	small_vm M && mksnap backups/M.tar.gz manifest-only &&
	test "$(tar -tzf backups/M.tar.gz)" = MANIFEST &&
	test "$(tar -xzOf backups/M.tar.gz MANIFEST | wc -c)" -eq 0 &&
	state >before && refused M "guest.conf is missing" &&
	test -s .work/disk-0.img
'

test_expect "@restore --inplace of a hostile archive leaves HOSTDIR as it was" '
	vm -q --inplace --no-uefi -D VIRT=4M:raw @create P &&
	head -c 1000000 /dev/urandom | dd of=disk-0.img conv=notrunc status=none &&
	vm -q @backup good && mkdir good && tar -C good -xzf backups/good.tar.gz &&
	for k in unknown-key stray-disk missing-disk lie-sum manifest-only; do
		mksnap backups/$k.tar.gz $k || exit 1
	done &&
	ls -A >../before && sha256sum guest.conf disk-*.img >>../before &&
	for k in unknown-key stray-disk missing-disk lie-sum manifest-only; do
		must_fail 1 vm @restore $k 2>../err &&
		one_line ../err restore "restore $k" &&
		ls -A >../after && sha256sum guest.conf disk-*.img >>../after &&
		cmp ../before ../after || exit 1
	done
'

test_expect "snapshots in the reference layout: a stray disk, a cut, flipped or lying disk-0.img.gz; @verify of each" '
	small_vm R && mkdir -p backups/stray backups/cut backups/flip backups/crc &&
	gzip -c good/disk-0.img >backups/stray/disk-0.img.gz &&
	cp backups/stray/disk-0.img.gz backups/stray/disk-1.img.gz &&
	head -c 100000 backups/stray/disk-0.img.gz >backups/cut/disk-0.img.gz &&
	cp backups/stray/disk-0.img.gz backups/flip/disk-0.img.gz &&
	cp backups/stray/disk-0.img.gz backups/crc/disk-0.img.gz &&
	python3 -c "
f = open(\"backups/flip/disk-0.img.gz\", \"r+b\"); f.seek(200000)
b = f.read(1); f.seek(200000); f.write(bytes([b[0] ^ 4]))
f = open(\"backups/crc/disk-0.img.gz\", \"r+b\"); f.seek(-8, 2)
b = f.read(1); f.seek(-8, 2); f.write(bytes([b[0] ^ 1]))" &&
	state >before &&
	refused stray "disk-1.img is there, but guest.conf names 1 disk" &&
	refused cut "disk-0.img.gz: archive is truncated" &&
	refused flip "disk-0.img.gz: archive is damaged at byte [0-9]" &&
	refused crc "disk-0.img.gz: archive is damaged at byte [0-9]" &&
	vm -q @verify stray &&
	for k in cut flip crc; do
		must_fail 1 vm @verify $k 2>err &&
		contains err "^vm: $k: disk-0.img.gz: archive is" &&
		test "$(grep -vc -e "^vm: @verify failed" -e "^\*\*\* " err)" = 1 || exit 1
	done &&
	must_fail 1 vm --json @verify >out 2>/dev/null &&
	python3 -c "
import json, sys
r = {s[\"name\"]: s for s in json.load(open(\"out\"))[\"result\"][\"snapshots\"]}
assert r[\"stray\"][\"ok\"] and r[\"stray\"][\"checked\"].startswith(\"gzip\"), r
assert not any(r[k][\"ok\"] for k in (\"cut\", \"flip\", \"crc\")), r" &&
	unchanged
'

test_expect "@backup refuses a WORKDIR restore would refuse, before writing anything" '
	small_vm B && state >before &&
	for f in disk-007.img disk-00.img disk-1.img disk-16.img; do
		cp .work/disk-0.img .work/$f &&
		must_fail 1 vm @backup 2>err && one_line err backup "back up B" &&
		contains err "$f" && rm .work/$f && unchanged || exit 1
	done &&
	ln -s /etc/passwd .work/efivars.bin &&
	must_fail 1 vm @backup 2>err && contains err "efivars.bin: it is not a regular file" &&
	rm .work/efivars.bin &&
	mv .work/disk-0.img .work/disk-0.keep && ln -s disk-0.keep .work/disk-0.img &&
	must_fail 1 vm @backup 2>err && contains err "disk-0.img is not a regular file" &&
	rm .work/disk-0.img && mv .work/disk-0.keep .work/disk-0.img &&
	printf "%s\n" "-name \"unterminated" >vm.defaults &&
	must_fail 1 vm @backup 2>err && contains err "vm.defaults: unterminated quote" &&
	rm vm.defaults &&
	unchanged && vm -q @backup && vm -q @restore
'

test_expect "50 bit flips at random offsets (seed 11): each refused cleanly or restored exactly" '
	vm -q --no-uefi -D VIRT=8M:raw @create F &&
	head -c 200000 /dev/urandom |
		dd of=.work/disk-0.img bs=64k seek=10 conv=notrunc status=none &&
	vm -q @backup good && sha256sum .work/disk-0.img | cut -d" " -f1 >good.sum &&
	printf unsaved | dd of=.work/disk-0.img conv=notrunc status=none &&
	python3 -c "
import random
random.seed(11)
data = open(\"backups/good.tar.gz\", \"rb\").read()
for i in range(50):
    b = bytearray(data); o = random.randrange(len(b))
    b[o] ^= 1 << random.randrange(8)
    open(\"backups/f%02d.tar.gz\" % i, \"wb\").write(b)
    print(i, o)
" >offsets &&
	state >before &&
	for i in $(seq -w 0 49); do
		flip $i || exit 1
	done &&
	echo "refused $(grep -c refused flips), restored exactly $(grep -c ok flips)" &&
	test "$(grep -c refused flips)" -ge 40 && test "$(wc -l <flips)" -eq 50
'

test_expect "a damaged small archive says where, not a child status" '
	small_vm D && cp backups/good.tar.gz backups/d.tar.gz &&
	size=$(stat -c %s backups/d.tar.gz) &&
	printf "\377\377\377\377" |
		dd of=backups/d.tar.gz bs=1 seek=$((size / 2)) conv=notrunc status=none &&
	head -c 300 backups/good.tar.gz >backups/cut.tar.gz &&
	state >before &&
	refused d "archive is damaged at byte [0-9]" && lacks err "Child process" &&
	refused cut "archive is truncated" && lacks err "Child process"
'

test_expect "a snapshot whose gzip trailer lies is refused, though its tar reads whole" '
	small_vm D && cp backups/good.tar.gz backups/crc.tar.gz &&
	size=$(stat -c %s backups/crc.tar.gz) &&
	printf "\377\377\377\377" |
		dd of=backups/crc.tar.gz bs=1 seek=$((size - 8)) conv=notrunc status=none &&
	state >before &&
	refused crc "archive is damaged at byte [0-9]" && lacks err "Child process"
'

test_expect "SIGINT and SIGKILL at each phase of @restore: the old VM or the snapshot, never a mix; what a kill left is swept" '
	vm -q --no-uefi -D VIRT=64M:raw @create K &&
	head -c 40000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup big && sha256sum .work/disk-0.img | cut -d" " -f1 >big.sum &&
	printf unsaved | dd of=.work/disk-0.img conv=notrunc status=none &&
	sha256sum .work/disk-0.img | cut -d" " -f1 >unsaved.sum &&
	slow_pigz 0.3 &&
	for sig in INT KILL; do
		for delay in 0.05 0.15 0.25 0.35 0.4 0.45 0.5 0.7 3; do
			restore_killed $sig $delay || exit 1
		done || exit 1
	done &&
	cat outcomes && grep -q "status 13[07] $(cut -c1-8 unsaved.sum)" outcomes &&
	grep -q " $(cut -c1-8 big.sum)$" outcomes &&
	# what a kill between mkdir and mark leaves: swept once its vm ended
	dead=$(sh -c "echo \$\$") &&
	mkdir "$TMPDIR/vm-deadpart.$dead.part.tmp" "$TMPDIR/vm-livepart.$$.part.tmp" &&
	vm -q @restore big &&
	test ! -e "$TMPDIR/vm-deadpart.$dead.part.tmp" &&
	rmdir "$TMPDIR/vm-livepart.$$.part.tmp" &&
	ls -A "$TMPDIR" && test "$(ls -A "$TMPDIR")" = "$(basename "$(readlink .work)")"
'

test_expect "SIGINT and SIGKILL during @backup: no partial snapshot, LAST unchanged" '
	vm -q --no-uefi -D VIRT=64M:raw @create I &&
	head -c 40000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup keep && slow_pigz 0.5 &&
	state >before &&
	for sig in INT KILL; do
		for delay in 0.1 0.3 0.5 0.6 0.7 0.8 1.5; do
			backup_killed $sig $delay || exit 1
		done || exit 1
	done
'

test_expect "SIGINT and SIGKILL during an incremental @backup: no partial snapshot, LAST unchanged" '
	vm -q --no-uefi -D VIRT=64M:raw @create J &&
	head -c 40000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup base && head -c 20000000 /dev/urandom |
		dd of=.work/disk-0.img bs=1M seek=10 conv=notrunc status=none &&
	vm -q @backup keep && test -n "$(tar -xzOf backups/keep.tar.gz CHAIN | grep "^parent base ")" &&
	head -c 20000000 /dev/urandom | dd of=.work/disk-0.img bs=1M seek=5 conv=notrunc status=none &&
	slow_pigz 0.5 &&
	state >before &&
	for sig in INT KILL; do
		for delay in 0.1 0.3 0.5 0.7 1.5; do
			backup_killed $sig $delay || exit 1
		done || exit 1
	done
'

# fold_killed SIG DELAY: in a copy of the VM F0 (in place), @forget S1
# (S2 built on it, S3 on S2) killed: every snapshot left restores to its
# disk, @verify holds, nothing else is left in backups/
fold_killed() {
	check_args fold_killed "SIG DELAY" 2 2 "$@" &&
	rm -rf F && cp -a F0 F && cd F &&
	killed_at "$1" "$2" @forget S1 &&
	echo "$1 $2 status $rc: $(ls backups | tr "\n" " ")" >>../outcomes &&
	vm -q @verify 2>../err &&
	for i in 0 1 2 3; do
		[ ! -e backups/S$i.tar.gz ] || {
			vm -q @restore S$i && cmp disk-0.img ../disk.$i
		} || return 1
	done &&
	if [ $rc -eq 0 ]; then test ! -e backups/S1.tar.gz; fi &&
	# the restores above swept the directory a killed fold worked in
	test -z "$(ls -A | grep "^\.restore-")" &&
	# (what a SIGKILL leaves, .S2.tar.gz.tmpPID, the next @forget sweeps)
	test -z "$(ls -A backups | grep -v -e "^S[0-3]\.tar\.gz$" -e "^LAST$" \
		-e "^\.S[0-3]\.manifest$" -e "^\.S2\.tar\.gz\.tmp[0-9]*$")" &&
	if [ "$1" = INT ]; then
		test -z "$(ls -A backups | grep "\.tmp")"
	fi &&
	cd .. || {
		echo "$1 after $2 s: status $rc" >&2 && cat out err >&2 && return 1
	}
}

test_expect "SIGINT and SIGKILL during a fold by @forget: every snapshot still restores" '
	mkdir F0 && cd F0 &&
	vm -q --inplace --no-uefi -D VIRT=64M:raw @create F &&
	head -c 30000000 /dev/urandom | dd of=disk-0.img conv=notrunc status=none &&
	cp disk-0.img ../disk.0 && vm -q @backup &&
	for i in 1 2 3; do
		head -c 3000000 /dev/urandom | dd of=disk-0.img bs=1M seek=$((i * 9)) conv=notrunc status=none &&
		cp disk-0.img ../disk.$i && vm -q @backup || exit 1
	done &&
	cd .. && slow_pigz 0.3 &&
	for sig in INT KILL; do
		for delay in 0.2 0.6 1 1.5 2.5; do
			fold_killed $sig $delay || exit 1
		done || exit 1
	done &&
	cat outcomes && grep -q "status 0" outcomes && grep -q "status 13[07]" outcomes
'

test_expect "SIGINT and SIGKILL during a chain restore: the old VM or the snapshot, never a mix" '
	vm -q --no-uefi -D VIRT=64M:raw @create C &&
	head -c 40000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup root &&
	head -c 2000000 /dev/urandom | dd of=.work/disk-0.img bs=1M seek=3 conv=notrunc status=none &&
	vm -q @backup mid &&
	head -c 2000000 /dev/urandom | dd of=.work/disk-0.img bs=1M seek=30 conv=notrunc status=none &&
	vm -q @backup big && sha256sum .work/disk-0.img | cut -d" " -f1 >big.sum &&
	printf unsaved | dd of=.work/disk-0.img conv=notrunc status=none &&
	sha256sum .work/disk-0.img | cut -d" " -f1 >unsaved.sum &&
	slow_pigz 0.3 &&
	for sig in INT KILL; do
		for delay in 0.1 0.35 0.6 0.9 1.2 3; do
			restore_killed $sig $delay || exit 1
		done || exit 1
	done &&
	cat outcomes && grep -q "status 13[07] $(cut -c1-8 unsaved.sum)" outcomes &&
	grep -q " $(cut -c1-8 big.sum)$" outcomes
'

test_expect "a full backups/: @backup says no space left on MOUNT; nothing changed" '
	vm -q --no-uefi -D VIRT=64M:raw @create N &&
	head -c 30000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup big && mv backups/big.tar.gz big.tar.gz && rm backups/LAST &&
	mount -t tmpfs -o size=8M tmpfs backups &&
	{ trap "umount \"$PWD/backups\" 2>/dev/null || true" EXIT; } &&
	state >before &&
	must_fail 1 vm @backup 2>err && one_line err backup "back up N" &&
	contains err "no space left on $PWD/backups$" &&
	unchanged
'

test_expect "a full TMPDIR: @restore says no space left on MOUNT, not EAGAIN; nothing changed" '
	vm -q --no-uefi -D VIRT=64M:raw @create N &&
	head -c 30000000 /dev/urandom | dd of=.work/disk-0.img conv=notrunc status=none &&
	vm -q @backup big &&
	printf unsaved | dd of=.work/disk-0.img conv=notrunc status=none &&
	mkdir small && mount -t tmpfs -o size=8M tmpfs small &&
	{ trap "umount \"$PWD/small\" 2>/dev/null || true" EXIT; } &&
	state >before &&
	rc=0 && { TMPDIR=$PWD/small vm @restore big 2>err || rc=$?; } &&
	left=$(ls -A small) && umount small && echo "status $rc, left: $left" &&
	test $rc -eq 1 && one_line err restore "restore big" &&
	contains err "no space left on $PWD/small$" && lacks err "temporarily" &&
	test -z "$left" && unchanged
'

test_expect "a snapshot from elsewhere is data: its guest's settings apply, never what reaches the host" '
	vm --no-uefi -D VIRT=64M @create T &&
	printf "forwards = tcp:127.0.0.1:2222-:22\n" >>guest.conf &&
	mkdir -p ../else/cfg ../secret && cp "$XDG_CONFIG_HOME/vm.conf" ../else/cfg/ &&
	secret=$(cd ../secret && pwd) &&
	(
		cd ../else && export XDG_CONFIG_HOME=$PWD/cfg &&
		"$VM_BIN" -q --no-uefi -D VIRT=64M @create T &&
		printf "%s\n" "cores = 3" "memory = 768M" "shares = home:$secret" \
			"forwards = tcp:127.0.0.1:5555-:22" "control_group = users" \
			"images = VIRT=raw=/etc/passwd" "sshkeys = /etc/shadow" \
			"arch = x86_64/../../tmp/q" "host = 0.0.0.0" >>guest.conf &&
		printf "[rescue.big]\nshares = x:rw:%s\n" "$secret" >>guest.conf &&
		printf "%s\n" "-pidfile $secret/pwned" >vm.defaults &&
		"$VM_BIN" -q @backup S9
	) &&
	mkdir -p backups && cp ../else/backups/S9.tar.gz backups/ &&
	vm @restore S9 2>err &&
	contains err "^vm: warning: S9 is not a snapshot you made on this host: its arch, shares, forwards, control_group, images, sshkeys, host, rescue.big.shares, vm.defaults were not applied, this host.s kept (--trust-snapshot applies them)$" &&
	contains guest.conf "^cores = 3$" && contains guest.conf "^memory = 768M$" &&
	contains guest.conf "^forwards = .*tcp:127.0.0.1:2222-:22$" &&
	lacks guest.conf "secret\|5555\|control_group\|passwd\|shadow\|tmp/q\|0.0.0.0" &&
	test ! -e vm.defaults && test ! -e .work/SEAL &&
	{ python3 "$TOP/tests/data/httpd.py" ../else/backups port log & } && srv=$! &&
	{ trap "kill $srv 2>/dev/null || true" EXIT; } &&
	wait_for 10 test -s port && url=http://127.0.0.1:$(cat port) &&
	mkdir ../fresh && cd ../fresh &&
	vm @restore "$url/S9.tar.gz" 2>err &&
	contains err "warning: S9 is not a snapshot you made on this host: its arch, shares, forwards, control_group, images, sshkeys, host, rescue.big.shares, vm.defaults were not applied" &&
	lacks guest.conf "secret\|5555\|control_group\|passwd\|shadow\|tmp/q\|0.0.0.0" &&
	contains guest.conf "^cores = 3$" && test ! -e vm.defaults &&
	kill $srv && cd ../vm &&
	sed -i "/^images/d" ../else/guest.conf &&
	(cd ../else && XDG_CONFIG_HOME=$PWD/cfg "$VM_BIN" -q @backup S8) &&
	cp ../else/backups/S8.tar.gz backups/ &&
	vm --trust-snapshot @restore S8 2>err && lacks err warning &&
	contains guest.conf "5555" && contains guest.conf "control_group = users" &&
	test -s vm.defaults &&
	vm -q @backup S10 && vm @restore S10 2>err && lacks err warning &&
	contains guest.conf "5555"
'

test_expect "a seal holds for its snapshot alone: another disk under a copied SEAL is from elsewhere" '
	small_vm H &&
	printf "forwards = tcp:127.0.0.1:2222-:22\n" >>guest.conf &&
	vm -q @backup good2 && rm -rf good && mkdir good &&
	tar -C good -xzf backups/good2.tar.gz && test -s good/SEAL &&
	vm @restore good2 2>err && lacks err "not a snapshot you made" &&
	sed -i "s/2222/3333/" guest.conf &&
	mksnap backups/other.tar.gz sealed-other-disk &&
	vm @restore other 2>err &&
	contains err "warning: other is not a snapshot you made on this host: its forwards was not applied" &&
	contains guest.conf "3333" && lacks guest.conf "2222"
'

test_expect "a TAKEN vm does not write is shown as unknown, never as its bytes; the snapshot restores" '
	small_vm T && mksnap backups/t.tar.gz taken-escape &&
	vm -q @snapshots >out && contains out "^t  .* unknown  " &&
	test "$(tr -d -c "\033" <out | wc -c)" = 0 &&
	vm --json @snapshots >json && contains json "\"taken\":\"unknown\"" &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" json snapshots &&
	vm -q @restore t && test ! -e TAKEN && test ! -e .work/TAKEN
'

test_done
