#!/bin/bash
# Hostile files where vm reads one, and the VM's identity whatever path
# names it: every case ends in one line and changes nothing.
. "$(dirname "$0")/../lib.sh"

# sums DIR: what a VM is (settings, snapshots, working files), by name
sums() {
	check_args sums DIR 1 1 "$@" &&
	(cd "$1" && ls -l --time-style=+ backups &&
		find guest.conf backups "$(readlink -f .work)/" -type f \
			-print0 | sort -z | xargs -0 sha256sum)
}

# spoil PATH KIND: make PATH a file vm must refuse, quickly
spoil() {
	check_args spoil "PATH KIND" 2 2 "$@" &&
	rm -rf "$1" &&
	case $2 in
	zero) ln -s /dev/zero "$1" ;;
	fifo) mkfifo "$1" ;;
	dir) mkdir "$1" ;;
	huge) truncate -s 1T "$1" ;;
	binary) { head -c 4096 /dev/urandom && printf '\0'; } >"$1" ;;
	*) bug "spoil: unknown kind $2" ;;
	esac
}

# refused PATH KIND CMD...: CMD fails with status 1 within 10 s, and says
# so in one line that names PATH
refused() {
	check_args refused "PATH KIND CMD..." 3 - "$@" &&
	local path=$1 kind=$2 rc=0 &&
	shift 2 &&
	spoil "$path" "$kind" &&
	{ timeout -k 2 10 "$@" >out 2>err || rc=$?; } &&
	if [ "$rc" -ne 1 ] || [ "$(grep -c -F "$path" err)" -ne 1 ]; then
		echo "$kind $path: status $rc, not one line naming it:" >&2 &&
		cat err >&2 && return 1
	fi
}

test_expect "a settings file that is /dev/zero, a FIFO, a directory, huge or binary: one line" '
	vm --no-uefi @create v && cp guest.conf saved.conf &&
	for kind in zero fifo dir huge binary; do
		refused "$PWD/guest.conf" $kind "$VM_BIN" --dry-run @run &&
		rm -rf guest.conf && cp saved.conf guest.conf &&
		refused "$XDG_CONFIG_HOME/vm.conf" $kind "$VM_BIN" --dry-run @run &&
		rm -rf "$XDG_CONFIG_HOME/vm.conf" &&
		refused "$VM_SYSTEM_CONFIG" $kind "$VM_BIN" --dry-run @run &&
		rm -rf "$VM_SYSTEM_CONFIG" &&
		refused "$PWD/vm.defaults" $kind "$VM_BIN" --dry-run @run &&
		rm -rf vm.defaults || exit 1
	done &&
	vm --dry-run @run >out && contains out "qemu-system"
'

test_expect "status files that are /dev/zero or FIFOs do not stop @status" '
	vm --no-uefi @create v &&
	for kind in zero fifo dir huge; do
		spoil last-job $kind && spoil run.json $kind &&
		must_fail 3 timeout -k 2 10 "$VM_BIN" @status >out 2>err &&
		contains out "stopped" || exit 1
	done
'

test_expect "a job script that is a FIFO is refused in one line" '
	vm --no-uefi @create v && mkfifo hang.job &&
	must_fail 1 timeout -k 2 20 "$VM_BIN" @job hang 2>err &&
	contains err "hang.job" && test "$(grep -c "vm: " err)" -le 2
'

test_expect "a symlink, .. and the WORKDIR all name the same VM and take its lock" '
	vm --no-uefi @create v && vm @backup && w=$(readlink .work) &&
	ln -s "$PWD" ../link &&
	vm -d ../link --dry-run @run >out 2>err &&
	contains out "$w/disk-0.img" && lacks err "restor" &&
	vm -d ../link @backup && vm -d "$PWD/../vm/." @snapshots >list &&
	contains list "^S1 " && test "$(readlink .work)" = "$w" &&
	vm -d "$w" @snapshots >list2 && contains list2 "^S1 " &&
	sums . >before && hold_lock .lock &&
	must_fail 1 vm -d ../link @backup 2>err && contains err "busy" &&
	must_fail 1 vm -d "$w" @backup 2>err && contains err "busy" &&
	kill $locker && sums . >after && cmp before after
'

test_expect "a .work that names another VM is an error, never a restore over it" '
	vm --no-uefi @create v && vm @backup &&
	vm --no-uefi -d "$PWD/../w" @create w @backup &&
	ln -sfn "$(readlink ../w/.work)" .work &&
	sums . >before && sums ../w >wbefore && ls "$TMPDIR" >tmp1 &&
	must_fail 1 vm --dry-run @run 2>err &&
	contains err "belongs to .*/w, not .*/vm" && test "$(wc -l <err)" -eq 1 &&
	must_fail 1 vm -t 5 @run 2>err && contains err "belongs to" &&
	must_fail 1 vm @backup 2>err && contains err "belongs to" &&
	sums . >after && sums ../w >wafter && ls "$TMPDIR" >tmp2 &&
	cmp before after && cmp wbefore wafter && cmp tmp1 tmp2 && no_qemu
'

test_expect "a moved VM says how to tell its WORKDIR, and works after" '
	vm --no-uefi -d "$PWD/a" @create a && w=$(readlink a/.work) &&
	mv a b && must_fail 1 vm -d b --dry-run @run 2>err &&
	contains err "ln -sfn $PWD/b $w/.host" &&
	ln -sfn "$PWD/b" "$w/.host" &&
	vm -d b --dry-run @run >out && contains out "$w/disk-0.img"
'

test_expect "a failed @create removes the directories it made" '
	must_fail 1 vm -d "$PWD/x1/a/b" @create v /missing.iso 2>err &&
	contains err "/missing.iso" && test ! -e x1 &&
	must_fail 2 vm -d "$PWD/f1" -f tcp::99999-:22 @create f1 2>err &&
	contains err "bad forward" && test ! -e f1 &&
	mkdir keep && echo mine >keep/file &&
	must_fail 1 vm -d "$PWD/keep" @create k /missing.iso &&
	test "$(cat keep/file)" = mine && test -z "$(ls "$TMPDIR")"
'

test_expect "backups/ as a symbolic link is never written or cleaned; a LAST that leads outside is named" '
	vm -q --no-uefi -D VIRT=4M:raw @create B && vm -q @backup S0 &&
	vm -q @backup S1 && mv backups ../store &&
	ln -s ../store backups && : >../store/.S2.tar.gz.tmp123 &&
	ls -lA --time-style=+ ../store >before &&
	must_fail 1 vm @backup 2>err &&
	contains err "cannot back up B: $PWD/backups is a symbolic link: vm writes and removes snapshots only in a directory of the VM.s own" &&
	must_fail 1 vm @forget S0 2>err &&
	contains err "cannot forget S0: $PWD/backups is a symbolic link" &&
	must_fail 1 vm @last S0 2>err &&
	contains err "cannot move LAST: $PWD/backups is a symbolic link" &&
	ls -lA --time-style=+ ../store >after && cmp before after &&
	vm -q @restore S0 &&
	rm backups && mv ../store backups && ln -sfn ../../etc backups/LAST &&
	must_fail 1 vm @restore 2>err &&
	contains err "cannot restore: backups/LAST points outside backups/ (to ../../etc; @last NAME moves it)$" &&
	vm -q @last S1 && test "$(readlink backups/LAST)" = S1.tar.gz
'

test_expect "a run.json whose pids are not its QEMU is stale: never signalled, removed under the lock" '
	vm -q --no-uefi -D VIRT=4M:raw @create R &&
	{ sleep 300 & } && a=$! && { sleep 300 & } && b=$! &&
	python3 -c "
import json, sys
def start(p): return int(open(\"/proc/%d/stat\" % p).read().rsplit(\")\", 1)[1].split()[19])
a, b = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({\"state\": \"running\", \"pid\": a, \"pid_start\": start(a),
                  \"qemu_pid\": b, \"qemu_start\": start(b)}))
" $a $b >run.json &&
	must_fail 3 vm @status >st && contains st "^R: stale$" &&
	contains st "run.json *names processes that are not this VM.s running QEMU" &&
	vm --json @status >sj || test $? -eq 3 &&
	contains sj "\"state\":\"stale\"" &&
	vm @kill >out 2>&1 && contains out "R is not running" &&
	vm @stop >out 2>&1 && contains out "R is not running" &&
	kill -0 $a && kill -0 $b && test -e run.json &&
	vm -q @backup && test ! -e run.json &&
	must_fail 3 vm @status >st && contains st "^R: stopped$" &&
	kill $a $b
'

test_done
