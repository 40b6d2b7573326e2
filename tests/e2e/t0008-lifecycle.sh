#!/bin/bash
# A VM that lives on: @start in the background, @status, @monitor, @stop
# with ACPI and with force, @kill, and what refuses while it runs.  The
# guest is the real rescue image, which powers off on the power button.
. "$(dirname "$0")/../lib.sh"

need_rescue
RESCUE=$(rescue_iso)
DEAF=$(autorun_iso test-deaf "$TOP/tests/data/autorun-deaf") || {
	echo "not ok 1 - cannot build the deaf test ISO"
	exit 1
}
export RESCUE DEAF

# booted: the rescue's init has started (and with it acpid)
booted() { grep -q "root shell on ttyS0" .work/console.log 2>/dev/null; }
# pid KEY: a number from run.json
run_pid() { sed -n "s/^ *\"$1\": *\([0-9]*\),*$/\1/p" run.json; }

test_expect "@start returns with the VM up; @status says running, exit 0" '
	vm --no-uefi @create T "$RESCUE" &&
	vm @start >out 2>&1 &&
	contains out "T is running in the background" &&
	vm @status >st &&
	contains st "^T: running" &&
	contains st "in the background" &&
	pid=$(run_pid pid) && kill -0 "$pid" &&
	qpid=$(run_pid qemu_pid) && kill -0 "$qpid" &&
	vm --json @status >st.json &&
	python3 -c "
import json, sys
s = json.load(open(\"st.json\"))[\"result\"]
assert s[\"state\"] == \"running\", s
assert s[\"pid\"] == $pid and s[\"qemu_pid\"] == $qpid, s
assert s[\"accel\"] == \"tcg\" and s[\"memory\"] == 512 << 20, s
" &&
	wait_for 60 booted &&
	vm @stop 30 &&
	no_qemu
'

test_expect "@monitor runs HMP and QMP commands" '
	vm --no-uefi @create T "$RESCUE" &&
	vm @start &&
	vm -q @monitor info status >mon &&
	contains mon "^VM status: running$" &&
	vm -q --json @monitor "{\"execute\": \"query-status\"}" >qmp &&
	contains qmp "\"status\":\"running\"" &&
	must_fail 2 vm -q --json @monitor "{\"no\": 1}" 2>err &&
	contains err "not a QMP command" &&
	vm -q @monitor no-such-command >mon2 &&
	contains mon2 "unknown command: .no-such-command." &&
	must_fail 1 vm -q --json @monitor "{\"execute\": \"no-such\"}" >qmp2 &&
	contains qmp2 "CommandNotFound" &&
	vm @kill
'

test_expect "a client that holds QEMU's monitor or vm's control socket makes @status, @monitor and @stop wait only their time" '
	vm --no-uefi @create T "$RESCUE" &&
	vm @start &&
	{ python3 "$TOP/tests/data/hold-socket.py" .work/qmp.sock held & } &&
	h=$! &&
	wait_for 30 test -s held &&
	{ python3 "$TOP/tests/data/hold-socket.py" --idle 20 .work/control.sock held2 & } &&
	h2=$! &&
	wait_for 30 test -s held2 &&
	s=$(date +%s) && vm @status >st && e=$(date +%s) &&
	contains st "^T: running" && test $((e - s)) -le 10 &&
	s=$(date +%s) && must_fail 1 vm -q @monitor info status 2>err &&
	e=$(date +%s) &&
	contains err "busy: other clients hold QEMU.s monitor" &&
	test $((e - s)) -le 45 &&
	wait_for 60 booted &&
	s=$(date +%s) && vm @stop 60 >out 2>&1 && e=$(date +%s) &&
	contains out "T powered off" && test $((e - s)) -le 70 &&
	no_qemu &&
	kill $h $h2
'

test_expect "two consoles at once: both see the guest, input from one goes in" '
	vm --no-uefi @create T "$RESCUE" &&
	vm @start &&
	wait_for 60 booted &&
	{ { sleep 3 && echo "echo CONSOLE-\$((6 * 7))"; } |
		vm -q -t 10 @console >a.out 2>a.err & } &&
	a=$! &&
	vm -q -t 10 @console </dev/null >b.out 2>b.err &&
	wait $a &&
	contains a.out "^CONSOLE-42" &&
	contains b.out "^CONSOLE-42" &&
	contains .work/console.log "^CONSOLE-42" &&
	test "$(stat -c %a .work/console.sock)" = 600 &&
	vm @stop 60
'

test_expect "@console works for a foreground @run too, and ends with the VM" '
	vm --no-uefi @create T "$RESCUE" &&
	{ "$VM_BIN" -t 120 @run >run.out 2>&1 & } &&
	run=$! &&
	wait_for 60 booted &&
	{ sleep 2 && echo "echo FG-\$((7 * 6))" && sleep 2 && echo poweroff; } |
		vm -t 60 @console >c.out 2>c.err &&
	contains c.out "^FG-42" &&
	contains c.err "the console of T closed: it stopped" &&
	wait $run &&
	no_qemu
'

test_expect "@stop: ACPI power-down, a clean power-off, nothing left" '
	vm --no-uefi @create T "$RESCUE" &&
	vm @start &&
	wait_for 60 booted &&
	vm @stop 60 >out 2>&1 &&
	contains out "T powered off (ACPI power-down)" &&
	contains .work/console.log "power button pressed, powering off" &&
	no_qemu &&
	test ! -e run.json &&
	test ! -e .work/qmp.sock &&
	must_fail 3 vm @status >st &&
	contains st "^T: stopped" &&
	vm @stop >out2 2>&1 &&
	contains out2 "T is not running"
'

test_expect "@stop SECS forces a guest deaf to ACPI and says so" '
	vm --no-uefi @create T "$DEAF" &&
	vm @start &&
	wait_for 60 grep -q DEAF-GUEST .work/console.log &&
	must_fail 1 vm @stop 3 2>err &&
	contains err "did not power off within 3 s: stopped with QMP quit" &&
	no_qemu &&
	must_fail 3 vm @status
'

test_expect "@kill ends QEMU at once; a killed supervisor takes QEMU along" '
	vm --no-uefi @create T "$RESCUE" &&
	vm @start &&
	vm @kill >out 2>&1 &&
	contains out "T killed" &&
	no_qemu &&
	must_fail 3 vm @status &&
	vm @start &&
	pid=$(run_pid pid) &&
	kill -9 "$pid" &&
	wait_for 10 no_qemu &&
	must_fail 3 vm @status >st &&
	contains st "^T: stopped"
'

test_expect "while it runs: @start again, @job, @restore, @destroy refuse at once; @backup is live" '
	vm --no-uefi -D AHCI=64M @create T "$RESCUE" &&
	vm @start &&
	s=$(date +%s) &&
	must_fail 1 vm @start 2>err &&
	contains err "T is running (pid [0-9]*, started by @start): stop it first with vm @stop" &&
	must_fail 1 vm @job add-ssh-keys 2>err &&
	contains err "stop it first with vm @stop" &&
	vm @backup 2>err && contains err "held still for a live backup" &&
	must_fail 1 vm @restore 2>err &&
	contains err "stop it first" &&
	must_fail 1 vm @backup @restore 2>err &&
	contains err "stop it first" &&
	must_fail 1 vm @destroy 2>err &&
	contains err "stop it first" &&
	test $(( $(date +%s) - s )) -lt 10 &&
	vm @status >/dev/null &&
	vm @kill
'

test_expect "one chain: @start @status @stop, and @backup after it" '
	vm --no-uefi -D AHCI=64M @create T "$RESCUE" &&
	vm @start @status @kill @backup >out 2>&1 &&
	contains out "^T: running" &&
	contains out "T killed" &&
	test -f backups/S0.tar.gz &&
	no_qemu
'

test_expect "another user may read @status but not stop the VM" '
	vm --no-uefi @create T "$RESCUE" &&
	vm @start &&
	chmod 755 "$TEST_TMP" "$PWD/.." "$PWD" &&
	as_nobody() {
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			env HOME=/nonexistent XDG_CONFIG_HOME=/nonexistent \
			XDG_CACHE_HOME=/nonexistent "$VM_BIN" "$@"
	} &&
	as_nobody @status >st &&
	contains st "^T: running" &&
	must_fail 1 as_nobody @stop 2>err &&
	contains err "permission denied" &&
	must_fail 1 as_nobody @kill 2>err &&
	contains err "permission denied" &&
	vm @status >/dev/null &&
	vm @kill
'

test_expect "a control_group member controls through vm, never QEMU: its monitor stays the owner's" '
	vm --no-uefi @create T "$RESCUE" &&
	printf "control_group = users\n" >>guest.conf &&
	vm @start &&
	w=$(readlink .work) &&
	test "$(stat -c %a:%G "$w")" = 710:users &&
	test "$(stat -c %a:%G "$w/console.sock")" = 660:users &&
	test "$(stat -c %a:%G "$w/control.sock")" = 660:users &&
	test "$(stat -c %a:%U "$w/qmp.sock")" = 700:root &&
	test "$(stat -c %a:%U "$w/vm-qmp.sock")" = 700:root &&
	test "$(stat -c %a "$w/disk-0.img")" = 600 &&
	chmod 755 "$TEST_TMP" "$PWD/.." "$PWD" "$PWD/../tmp" &&
	mkdir -m 777 drop &&
	as_member() {
		setpriv --reuid=65534 --regid=65534 --groups=100 \
			env HOME=/nonexistent XDG_CONFIG_HOME=/nonexistent \
			XDG_CACHE_HOME=/nonexistent "$VM_BIN" "$@"
	} &&
	as_member -q @monitor info status >mon &&
	contains mon "VM status: running" &&
	as_member -q --json @monitor "{\"execute\": \"query-status\"}" >qmp &&
	contains qmp "\"status\":\"running\"" &&
	must_fail 1 as_member -q @monitor migrate "exec:cp $w/disk-0.img $PWD/drop/x" 2>err &&
	contains err "^vm: @monitor migrate exec:.*: the control socket refuses HMP .migrate.: only info, help, system_powerdown, system_reset, stop, cont and quit pass" &&
	must_fail 1 as_member -q @monitor screendump "$PWD/drop/shot" 2>err &&
	contains err "refuses HMP .screendump." &&
	must_fail 1 as_member -q @monitor drive_add 0 "file=$w/disk-0.img,if=none" 2>err &&
	contains err "refuses HMP .drive_add." &&
	must_fail 1 as_member -q --json @monitor "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"exec:touch $PWD/drop/y\"}}" 2>err &&
	contains err "^vm: @monitor: the control socket refuses .migrate.: only power, pause and resume, reset and query-\* pass" &&
	must_fail 1 as_member -q --json @monitor "{\"execute\": \"dump-guest-memory\", \"arguments\": {\"paging\": false, \"protocol\": \"file:$PWD/drop/mem\"}}" 2>err &&
	contains err "refuses .dump-guest-memory." &&
	must_fail 1 as_member -q --json @monitor "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"  migrate exec:true\"}}" 2>err &&
	contains err "refuses HMP .migrate." &&
	sleep 1 && test -z "$(ls drop)" &&
	vm -q @monitor info status >own &&
	contains own "VM status: running" &&
	wait_for 60 booted &&
	as_member @stop 60 >out 2>&1 &&
	contains out "T powered off" &&
	no_qemu
'

test_expect "a control_group member may @stop --save: vm saves, into the owner's WORKDIR" '
	vm --no-uefi -D AHCI=64M @create T "$RESCUE" &&
	printf "control_group = users\n" >>guest.conf &&
	vm @start &&
	chmod 755 "$TEST_TMP" "$PWD/.." "$PWD" "$PWD/../tmp" &&
	wait_for 60 booted &&
	setpriv --reuid=65534 --regid=65534 --groups=100 \
		env HOME=/nonexistent XDG_CONFIG_HOME=/nonexistent \
		XDG_CACHE_HOME=/nonexistent "$VM_BIN" @stop --save >out 2>&1 &&
	contains out "T saved its state" &&
	no_qemu &&
	test "$(stat -c %a:%U .work/saved-state)" = 600:root &&
	wait_for 10 test -s .work/saved-state.disks &&
	vm @start >out2 2>&1 &&
	contains vm.log "T resumes from its saved state" &&
	vm @kill
'

test_expect "a control_group that does not exist stops @run in one line, reading nothing" '
	vm --no-uefi @create T "$RESCUE" &&
	printf "control_group = vm-no-such-group\n" >>guest.conf &&
	mkfifo in &&
	{ sleep 30 >in & } &&
	must_fail 1 timeout 20 "$VM_BIN" @run <in 2>err &&
	contains err "vm-no-such-group" &&
	no_qemu
'

test_expect "a guest not up in time: @start says so, shows both tails escaped, each message on its line" '
	port=$(free_port) &&
	vm --no-uefi -f "tcp:127.0.0.1:$port-:22" @create T "$RESCUE" &&
	must_fail 1 vm --boot-timeout 8 @start 2>err &&
	contains err "^vm: cannot start T: not up within 8 s (--boot-timeout); it was stopped$" &&
	contains err "^vm: the supervisor.s log (.*vm.log) ends with:$" &&
	contains err "^vm: @start failed$" &&
	test "$(tr -d -c "\033\007" <err | wc -c)" = 0 &&
	no_qemu
'

test_expect "two VMs at once on the default SPICE port: the second takes the next; one asked for and taken is one line" '
	p=$(free_port) &&
	printf "[vm]\nport = %s\naccel = tcg\nmemory = 512M\ncores = 1\n" "$p" \
		>"$XDG_CONFIG_HOME/vm.conf" &&
	vm -q --no-uefi -d "$PWD/a" @create A "$RESCUE" &&
	vm -q --no-uefi -d "$PWD/b" @create B "$RESCUE" &&
	{ vm -d "$PWD/a" @start 2>a.err & } && pa=$! &&
	{ vm -d "$PWD/b" @start 2>b.err & } && pb=$! &&
	wait $pa && wait $pb &&
	sa=$(sed -n "s/^  spice *//p" <(vm -d "$PWD/a" @status)) &&
	sb=$(sed -n "s/^  spice *//p" <(vm -d "$PWD/b" @status)) &&
	test -n "$sa" && test -n "$sb" && test "$sa" != "$sb" &&
	case "$sa $sb" in
	"127.0.0.1:$p "*|*" 127.0.0.1:$p") : ;;
	*) echo "neither took $p: $sa $sb" >&2 && exit 1 ;;
	esac &&
	grep -q "SPICE display on spice://127.0.0.1:" a/vm.log &&
	vm -q --no-uefi -d "$PWD/c" @create C "$RESCUE" &&
	must_fail 1 vm -d "$PWD/c" -p "${sa##*:}" @start 2>c.err &&
	contains c.err "SPICE port ${sa##*:} on 127.0.0.1 is taken (VM [AB], QEMU pid [0-9]*) (-p to pick another, -p .. for none)" &&
	vm -d "$PWD/a" @kill && vm -d "$PWD/b" @kill && no_qemu
'

test_expect "the supervisor outlives the terminal @start ran in" '
	vm --no-uefi @create T "$RESCUE" &&
	script -qec "$VM_BIN @start" /dev/null >out 2>&1 &&
	contains out "running in the background" &&
	sleep 2 &&
	vm @status >st &&
	contains st "^T: running" &&
	vm @kill
'

test_expect "@stop --save keeps RAM: the next @start resumes, a tmpfs file survives" '
	vm --no-uefi -D AHCI=64M @create T "$RESCUE" &&
	vm @start &&
	wait_for 60 booted &&
	{ sleep 2 && echo "echo SAVED-\$((40 + 2)) >/tmp/mark"; } |
		vm -q -t 5 @console >/dev/null &&
	vm @stop --save >out 2>&1 &&
	contains out "T saved its state" &&
	no_qemu &&
	test -s .work/saved-state &&
	must_fail 3 vm @status >st &&
	contains st "^T: saved" &&
	vm @backup &&
	tar -tzf backups/S0.tar.gz >list &&
	contains list "^saved-state$" &&
	vm @start >out2 2>&1 &&
	contains vm.log "T resumes from its saved state" &&
	test ! -e .work/saved-state &&
	{ sleep 2 && echo "cat /tmp/mark"; } | vm -q -t 5 @console >m.out &&
	contains m.out "^SAVED-42" &&
	vm @kill
'

test_expect "saved RAM goes back only onto the disks it was saved with: a changed disk is refused, a job drops it" '
	vm --no-uefi -D AHCI=64M @create T "$RESCUE" &&
	vm @start && wait_for 60 booted &&
	vm @stop --save >out 2>&1 && contains out "T saved its state" &&
	wait_for 10 test -s .work/saved-state.disks &&
	contains .work/saved-state.disks " disk-0.img$" &&
	touch .work/disk-0.img &&
	must_fail 1 vm @start 2>err &&
	contains err "disk-0.img changed since @stop --save saved its state; to boot afresh, remove .*saved-state (the saved RAM is lost)" &&
	no_qemu && test -s .work/saved-state &&
	printf "true\n" >noop.job && vm @job noop 2>err &&
	contains err "the state @stop --save saved is dropped, as job noop writes its disks" &&
	test ! -e .work/saved-state && test ! -e .work/saved-state.disks &&
	: >vm.log && vm @start && lacks vm.log "resumes from its saved state" &&
	vm @kill
'

# sshd_iso: a new key in ~/.ssh, and an autorun ISO (its path printed)
# whose guest runs dropbear on 22 with that key as root's
sshd_iso() {
	check_args sshd_iso "no arguments" 0 0 "$@" &&
	mkdir -p "$HOME/.ssh" && rm -f "$HOME"/.ssh/id_* &&
	ssh-keygen -q -t ed25519 -N "" -f "$HOME/.ssh/id_ed25519" &&
	mkdir sshd && cp "$TOP/tests/data/autorun-sshd/autorun" sshd/ &&
	cp "$HOME/.ssh/id_ed25519.pub" sshd/authorized_keys &&
	autorun_iso "test-sshd-$test_count" "$PWD/sshd"
}

test_expect "@start waits for the SSH banner; @ssh runs a command, its status" '
	iso=$(sshd_iso) &&
	port=$(free_port) &&
	vm --no-uefi -f "tcp:127.0.0.1:$port-:22" @create T "$iso" &&
	vm @start &&
	contains .work/console.log "SSHD-GUEST: dropbear is up" &&
	vm -q @ssh echo hello from \$\(uname -n\) >out &&
	contains out "^hello from rescue$" &&
	# stdout is the data alone, -q or not: h=$(vm @ssh hostname) works
	h=$(vm @ssh uname -n 2>err) && test "$h" = rescue &&
	contains err "^\*\*\* Executing command: ssh(.uname., .-n.)" &&
	must_fail 7 vm -q @ssh exit 7 &&
	test -s known_hosts &&
	vm -q --dry-run @ssh true >dry &&
	contains dry "-p $port" &&
	contains dry "UserKnownHostsFile=$PWD/known_hosts" &&
	contains dry "HostKeyAlias=vm-T" &&
	contains dry "root@127.0.0.1" &&
	vm @ssh uname -n @stop 60 >chain 2>&1 &&
	contains chain "^rescue$" &&
	contains chain "T powered off" &&
	no_qemu
'

test_expect "with a key and no forward to 22, @start forwards a free port of 127.0.0.1 itself: two at once differ, @status and @ssh use it" '
	iso=$(sshd_iso) &&
	vm -q --no-uefi -d a @create A "$iso" && vm -q --no-uefi -d b @create B "$iso" &&
	lacks a/guest.conf "^forwards" &&
	{ vm -d a @start >a.out 2>&1 & } && pa=$! &&
	vm -d b @start >b.out 2>&1 && wait $pa &&
	vm --json -d a @status >ja && vm --json -d b @status >jb &&
	port() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"result\"][\"ssh_port\"])" "$1"; } &&
	pa=$(port ja) && pb=$(port jb) && echo "ports $pa $pb" &&
	test "$pa" -gt 0 && test "$pb" -gt 0 && test "$pa" != "$pb" &&
	vm -d a @status >st && contains st "^  ssh  *127.0.0.1:$pa (vm @ssh)$" &&
	contains st "hostfwd=tcp:127.0.0.1:$pa-:22" &&
	contains a/.work/run-vm.sh "hostfwd=tcp:127.0.0.1:$pa-:22" &&
	# @start did not wait for an sshd the guest may not have; @ssh does
	test "$(vm -d a @ssh uname -n)" = rescue &&
	test "$(vm -d b @ssh uname -n)" = rescue &&
	vm -q -d a @stop 60 && vm -q -d b @stop 60 && no_qemu &&
	lacks a/guest.conf "^forwards"
'

test_expect "with a cloud-init seed, @start waits for sshd on its own forward too; a guest without one is up after boot_timeout less 10 s, with a warning" '
	iso=$(sshd_iso) &&
	deaf=$(autorun_iso test-deaf "$TOP/tests/data/autorun-deaf") &&
	vm -q --no-uefi -d a @create A "$iso" && echo "cloud_init = yes" >>a/guest.conf &&
	vm -d a @start 2>a.err && lacks a.err "no sshd answered" &&
	pa=$(vm --json -d a @status | python3 -c "import json,sys; print(json.load(sys.stdin)[\"result\"][\"ssh_port\"])") &&
	ssh_banner "$pa" && vm -q -d a @kill &&
	vm -q --no-uefi -d b @create B "$deaf" && echo "cloud_init = yes" >>b/guest.conf &&
	t0=$SECONDS && vm -d b --boot-timeout=40 @start 2>b.err &&
	echo "up after $((SECONDS - t0)) s" && test $((SECONDS - t0)) -ge 30 &&
	contains b.err "B is up, but no sshd answered on the port vm forwards to its 22" &&
	vm -q -d b @status && vm -q -d b @kill && no_qemu
'

test_expect "@ssh without a forward to port 22, and no key for vm to add one, says how to add one" '
	rm -f "$HOME"/.ssh/id_* &&
	vm --no-uefi @create T "$RESCUE" &&
	vm @start &&
	vm @status >st && lacks st "^  ssh " &&
	must_fail 1 vm @ssh true 2>err &&
	contains err "no forward reaches its port 22 (add one: -f tcp::2222-:22; vm adds one itself when a key sshkeys names is there)" &&
	vm @kill
'

# the vm that ran a QEMU holds the lock until it has cleaned up: a verb
# right after QEMU's end waits for it (here held back with SIGSTOP)
test_expect "QEMU ended, its vm still cleaning up: the next verb waits for it and goes on" '
	vm -q --no-uefi -p "" -D VIRT=64M @create E && vm -q @start &&
	vm -q --json @status >st &&
	pids=$(python3 -c "import json, sys; r = json.load(open(sys.argv[1]))[\"result\"]; print(r[\"pid\"], r[\"qemu_pid\"])" st) &&
	set -- $pids && kill -STOP "$1" && kill -KILL "$2" &&
	wait_for 30 no_qemu &&
	{ vm -q @backup 2>err & } && b=$! &&
	sleep 2 && kill -CONT "$1" && wait "$b" &&
	lacks err "busy" && test -e backups/S0.tar.gz
'

test_done
