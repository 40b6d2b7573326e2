#!/bin/bash
# @inspect: libguestfs reads the VM's disks without booting the VM.
. "$(dirname "$0")/../lib.sh"

need_rescue
# supermin builds the libguestfs appliance once; keep it between tests
mkdir -p "$LIBGUESTFS_CACHEDIR"

test_expect "@inspect reports the OS a job installed, and its filesystems" '
	vm --no-uefi -D AHCI=1G @create I && install_os . /dev/sda web1 &&
	vm @inspect >out &&
	contains out "^os /dev/sda1" &&
	contains out "hostname  *web1" && contains out "distribution  *debian" &&
	contains out "version  *12.0" && contains out "type  *linux" &&
	contains out "arch  *x86_64" && contains out "mountpoints  */=/dev/sda1" &&
	contains out "^filesystem /dev/sda1" && contains out "label  *ROOT" &&
	contains out "size  *[0-9]" &&
	no_qemu
'

test_expect "@inspect --json is as docs/json.md documents; @inspect PATH prints a guest file" '
	vm --no-uefi -D AHCI=1G @create I && install_os . /dev/sda web1 &&
	vm --json @inspect >json &&
	python3 -c "
import json
d = json.load(open(\"json\"))[\"result\"]
os = d[\"os\"][0]
assert os[\"hostname\"] == \"web1\" and os[\"distribution\"] == \"debian\", os
fs = {f[\"device\"]: f for f in d[\"filesystems\"]}
assert fs[\"/dev/sda1\"][\"type\"] == \"ext4\" and fs[\"/dev/sda1\"][\"label\"] == \"ROOT\"
assert fs[\"/dev/sda1\"][\"used\"] > 0
assert os[\"mountpoints\"] == {\"/\": \"/dev/sda1\"}, os
" &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" json inspect &&
	vm -q @inspect /etc/hostname >file && test "$(cat file)" = web1 &&
	vm --json @inspect /etc/hostname >pj &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" pj inspect &&
	python3 -c "
import json
r = json.load(open(\"pj\"))[\"result\"]
assert r == {\"path\": \"/etc/hostname\", \"size\": 5, \"content\": \"web1\\n\", \"binary\": False}, r
" &&
	must_fail 1 vm @inspect /etc/nonexistent 2>err && contains err "/etc/nonexistent"
'

test_expect "an empty disk has no OS (exit 0); no disks is an error" '
	vm --no-uefi -D AHCI=1G @create E &&
	vm @inspect >out 2>err && contains err "no operating system found" &&
	lacks err "inspect-worker" &&
	must_fail 1 vm @inspect /etc/hostname 2>err &&
	contains err "no operating system found on the disks of E" &&
	lacks err "inspect-worker" &&
	vm @destroy && must_fail 1 vm @inspect 2>err && contains err "has no disks"
'

test_expect "@inspect stopped at its timeout leaves no libguestfs directory" '
	vm --no-uefi -D AHCI=1G @create I &&
	exec 8>>"$GUESTFS_LOCK" && flock -x -w 1800 8 &&
	{ ls -d /tmp/libguestfs* 2>/dev/null || true; } >before &&
	for t in 2 5; do
		must_fail 1 "$VM_BIN" -t $t @inspect 2>err &&
		contains err "took longer than $t s" || exit 1
	done &&
	{ ls -d /tmp/libguestfs* 2>/dev/null || true; } >after &&
	cmp before after &&
	test -z "$(ls -d "$TMPDIR"/vm-inspect-* 2>/dev/null)" &&
	no_qemu
'

test_done
