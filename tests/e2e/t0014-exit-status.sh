#!/bin/bash
# Every exit status of vm(1)'s table, as a pipeline sees it.
. "$(dirname "$0")/../lib.sh"

need_rescue

# status CMD...: print the exit status of CMD (never fails itself)
status() {
	check_args status "CMD..." 1 - "$@" &&
	local rc=0 &&
	{ "$@" >/dev/null 2>&1 || rc=$?; } &&
	echo $rc
}
# is N CMD...: CMD exits with status N, or it says what it did instead
is() {
	check_args is "N CMD..." 2 - "$@" &&
	local want=$1 rc=0 &&
	shift &&
	{ "$@" >is.out 2>&1 || rc=$?; } &&
	[ "$rc" = "$want" ] || {
		echo "$*: exit status $rc, not $want:" >&2 &&
		cat is.out >&2 &&
		return 1
	}
}

test_expect "0: every verb succeeded" '
	test "$(status vm --no-uefi @create T @backup @snapshots)" = 0
'

test_expect "1: a verb failed, a settings file is wrong, the VM is busy or missing" '
	is 1 vm -d "$PWD/nowhere" @run &&
	vm --no-uefi @create T && is 1 vm @restore &&
	printf "[vm]\ncores = many\n" >"$VM_SYSTEM_CONFIG" &&
	is 1 vm @snapshots && rm "$VM_SYSTEM_CONFIG" &&
	hold_lock .lock &&
	is 1 vm @backup && kill $locker
'

test_expect "2: usage errors, bad names and typos included" '
	for c in "@bogus" "--bogus @run" "snapshot" "--cores @run" \
		"-c 0 @run" "@create" "@create ../x" "@job ../x" \
		"@backup LAST" "@inspect relative/path"; do
		s=$(status vm $c) &&
		if [ "$s" != 2 ]; then
			echo "vm $c: $s, not 2" >&2 && exit 1
		fi || exit 1
	done
'

test_expect "3: @status of a VM that is not running" '
	vm --no-uefi @create T && test "$(status vm @status)" = 3
'

test_expect "2 and 4: no VM here; nothing is written, not even the lock" '
	mkdir empty && cd empty &&
	for c in "" "@run" "--dry-run @run" "@backup" "@snapshots" "@job x" \
		"@inspect" "@restore" "@destroy" "@stop" "@console"; do
		s=$(status vm $c) &&
		if [ "$s" != 2 ]; then
			echo "vm $c: $s, not 2" >&2 && exit 1
		fi || exit 1
	done &&
	is 4 vm @status && contains is.out "^vm: no VM in $PWD (make one with vm @create NAME)$" &&
	test "$(ls -A)" = is.out &&
	vm -q --no-uefi -D VIRT=8M @create T && test -f guest.conf
'

test_expect "N: the job's own status; 124: a timeout; 128+N: a signal" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "exit 7\n" >seven.job &&
	test "$(status vm @job seven)" = 7 &&
	printf "exit 5\n" >five.pre && printf "true\n" >five.job &&
	test "$(status vm @job five)" = 5 &&
	printf "sleep 30\n" >slow.pre && printf "true\n" >slow.job &&
	test "$(status vm -t 1 @job slow)" = 124 &&
	{ "$VM_BIN" @job slow >/dev/null 2>&1 & } && pid=$! &&
	wait_for 10 pgrep -f "sleep 30" && kill -TERM $pid &&
	rc=0 && { wait $pid || rc=$?; } && test $rc = 143
'

test_done
