#!/bin/bash
# @job interrupted at each of its phases (.pre, the rescue's boot, the
# job, .post), by SIGINT and SIGTERM: vm ends with 128+N and one line,
# takes its QEMU and every process of the host scripts with it, and the
# VM's disks are as they were.
. "$(dirname "$0")/../lib.sh"

need_rescue

# disk_sums: the VM's working files, by name
disk_sums() {
	check_args disk_sums "no arguments" 0 0 "$@" &&
	(cd .work/ && sha256sum disk-*.img)
}

# interrupt SIG WHEN: run @job phase, send SIG once WHEN (a command)
# holds, and check what a user must find afterwards
interrupt() {
	check_args interrupt "SIG WHEN" 2 2 "$@" &&
	local sig=$1 when=$2 pid rc=0 want &&
	want=$((128 + $(kill -l "$sig"))) &&
	disk_sums >before &&
	{ "$VM_BIN" @job phase >out 2>err & } &&
	pid=$! &&
	wait_for 60 eval "$when" &&
	kill -"$sig" $pid &&
	{ wait $pid || rc=$?; } &&
	if [ "$rc" -ne "$want" ]; then
		echo "vm ended with $rc after SIG$sig, not $want" >&2 &&
		cat err >&2 && return 1
	fi &&
	contains err "interrupted" &&
	[ "$(grep -v -e "^vm: @job failed" -e "^vm: rescue for" -e "^\*\*\*" \
		err | grep -c .)" -eq 1 ] &&
	wait_for 5 eval "! pgrep -f \"sleep $marker\" >/dev/null" &&
	no_qemu && disk_sums >after && cmp before after &&
	test ! -e .work/.in && contains last-job "^phase $want "
}

# phase scripts: every one sleeps (marker) when told to by its name
setup() {
	check_args setup PHASE 1 1 "$@" &&
	marker=3000.$$$RANDOM &&
	vm --no-uefi -D AHCI=1G @create J &&
	printf "echo pre-started\n%s\n" \
		"$([ "$1" = pre ] && echo "sleep $marker & sleep $marker")" \
		>phase.pre &&
	printf "echo job-started >\$OUTDIR/flag\nsync\n%s\ntrue\n" \
		"$([ "$1" = job ] && echo "sleep 300")" >phase.job &&
	printf "echo post-started >post.flag\n%s\n" \
		"$([ "$1" = post ] && echo "sleep $marker & sleep $marker")" \
		>phase.post &&
	export marker
}

test_expect "SIGINT during .pre" '
	setup pre &&
	interrupt INT "pgrep -f \"sleep $marker\" >/dev/null" &&
	lacks out "job-started"
'

test_expect "SIGTERM while the rescue boots" '
	setup boot &&
	interrupt TERM "contains err \"rescue for J started\"" &&
	test ! -e post.flag
'

test_expect "SIGINT while the job runs" '
	setup job &&
	interrupt INT "test -s .work/.out/flag" &&
	test ! -e post.flag
'

test_expect "SIGTERM during .post" '
	setup post &&
	interrupt TERM "pgrep -f \"sleep $marker\" >/dev/null" &&
	test -e post.flag
'

test_expect "on a terminal, .pre may read it, and Ctrl-C there stops vm too" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "read -r -t 20 line </dev/tty && echo \"got=\$line\" >got\n" >ask.pre &&
	printf "true\n" >ask.job &&
	{ sleep 2 && echo hello; } |
		timeout -k 2 40 script -qec "\"$VM_BIN\" -t 30 @job ask" /dev/null >out &&
	test "$(cat got)" = got=hello &&
	marker=3000.$$$RANDOM && printf "sleep $marker\n" >slow.pre &&
	printf "true\n" >slow.job && rc=0 &&
	{ { sleep 3 && printf "\003"; } |
		timeout -k 2 40 script -qec "\"$VM_BIN\" @job slow" /dev/null >out ||
		rc=$?; } &&
	test $rc = 130 && contains out "slow.pre was interrupted" &&
	! pgrep -f "sleep $marker" && no_qemu
'

test_done
