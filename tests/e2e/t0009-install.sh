#!/bin/bash
# make install into a DESTDIR under another PREFIX: the installed vm finds
# its jobs, rescue builder and rescue image where it was put, and says
# installed commands, not source-tree targets.
. "$(dirname "$0")/../lib.sh"

ROOT=$T/root
PFX=/opt/vm-test
export ROOT PFX

test_expect "make install PREFIX DESTDIR puts every file under the new prefix" '
	make -s -C "$TOP" install PREFIX="$PFX" DESTDIR="$ROOT" >out 2>&1 &&
	test -x "$ROOT$PFX/bin/vm" &&
	test -f "$ROOT$PFX/share/vm/jobs/add-ssh-keys.job" &&
	test -x "$ROOT$PFX/share/vm/rescue/build-rescue" &&
	test -f "$ROOT$PFX/share/vm/rescue/guest/init" &&
	test -f "$ROOT$PFX/share/vm/rescue/out/rescue-x86_64.iso" &&
	test -f "$ROOT$PFX/share/vm/images.conf" &&
	test -f "$ROOT$PFX/share/man/man1/vm.1" &&
	test -f "$ROOT$PFX/share/man/man5/vm.conf.5" &&
	test -f "$ROOT$PFX/share/doc/vm/README.md" &&
	test -f "$ROOT$PFX/share/doc/vm/README.ru.md" &&
	test -f "$ROOT$PFX/share/doc/vm/docs/json.md" &&
	test -f "$ROOT$PFX/share/doc/vm/vm.conf.example" &&
	test ! -e "$ROOT/usr/local"
'

test_expect "the installed vm runs a job from its own data directory" '
	j="$ROOT$PFX/share/vm/jobs" &&
	printf "echo \"pre: JOBSDIR=\$JOBSDIR\"\n" >"$j/t-where.pre" &&
	printf "echo job ran in \$(uname -n)\n" >"$j/t-where.job" &&
	export XDG_CACHE_HOME=$PWD/cache &&
	"$ROOT$PFX/bin/vm" --no-uefi -D AHCI=64M @create I &&
	# (what it said, when it fails)
	{ "$ROOT$PFX/bin/vm" @job t-where >out 2>&1 || ! cat out; } &&
	contains out "pre: JOBSDIR=$j$" &&
	contains out "job ran in rescue" &&
	"$ROOT$PFX/bin/vm" --dry-run @job t-where >dry 2>&1 &&
	lacks dry "$TOP/rescue" && lacks dry /usr/local/share/vm
'

test_expect "the installed vm lists the catalogue of images it was installed with" '
	"$ROOT$PFX/bin/vm" images debian-12 >out &&
	contains out "^  from  *$ROOT$PFX/share/vm/images.conf$"
'

test_expect "VM_DATADIR still overrides where the data directory is" '
	"$ROOT$PFX/bin/vm" --no-uefi @create I &&
	mkdir -p alt/jobs &&
	must_fail 1 env VM_DATADIR="$PWD/alt" "$ROOT$PFX/bin/vm" --dry-run \
		@job add-ssh-keys 2>err &&
	contains err "$PWD/alt/jobs/add-ssh-keys.job"
'

test_expect "without a rescue image the installed vm names the installed builder" '
	printf "echo hi\n" >"$ROOT$PFX/share/vm/jobs/t-where.job" &&
	cp -a "$ROOT" "$TEST_TMP/norescue" &&
	rm -rf "$TEST_TMP/norescue$PFX/share/vm/rescue/out" &&
	"$TEST_TMP/norescue$PFX/bin/vm" --no-uefi @create I &&
	must_fail 1 "$TEST_TMP/norescue$PFX/bin/vm" @job t-where 2>err &&
	contains err "build it: $TEST_TMP/norescue$PFX/share/vm/rescue/build-rescue" &&
	lacks err "make rescue"
'

test_expect "vm@.service: systemd-analyze verify passes, the sandbox scores at most 4.5, a broken unit fails" '
	make -s -C "$TOP" install PREFIX="$TEST_TMP/pfx" >out 2>&1 &&
	u="$TEST_TMP/pfx/lib/systemd/system/vm@.service" &&
	uu="$TEST_TMP/pfx/lib/systemd/user/vm@.service" &&
	test -f "$uu" &&
	contains "$u" "^ExecStart=$TEST_TMP/pfx/bin/vm -n -d %f --inplace @run$" &&
	contains "$uu" "^WantedBy=default.target$" &&
	contains "$u" "^ProtectSystem=strict$" && contains "$u" "^ReadWritePaths=%f$" &&
	contains "$u" "^DeviceAllow=/dev/kvm rw$" && contains "$u" "^Restart=on-failure$" &&
	lacks "$uu" "ProtectSystem\|SystemCallFilter\|DeviceAllow" &&
	contains "$uu" "^ExecStart=.* --inplace @run$" &&
	inst=$(systemd-escape --path /srv/vms/web) &&
	test "$inst" = srv-vms-web &&
	systemd-analyze verify --man=no "$(dirname "$u")/vm@$inst.service" >v.out 2>&1 &&
	test ! -s v.out &&
	systemd-analyze verify --man=no "$(dirname "$uu")/vm@$inst.service" >vu.out 2>&1 &&
	test ! -s vu.out &&
	systemd-analyze security --offline=yes "$(dirname "$u")/vm@$inst.service" >sec.out 2>&1 &&
	score=$(sed -n "s/.*Overall exposure level for vm@$inst.service: \([0-9.]*\) .*/\1/p" sec.out) &&
	test -n "$score" && echo "exposure $score" &&
	awk -v s="$score" "BEGIN { exit !(s <= 4.5) }" &&
	mkdir bad && sed "s/^Type=notify/Type=sometimes/" "$u" >bad/vm@.service &&
	{ systemd-analyze verify --man=no "$PWD/bad/vm@x.service" >b.out 2>&1 || true; } &&
	contains b.out "Failed to parse service type"
'

test_expect "vm-serve.service and vm-serve.socket: systemd-analyze verify passes, the sandbox scores at most 3.0" '
	u="$TEST_TMP/pfx/lib/systemd/system/vm-serve.service" &&
	sk="$TEST_TMP/pfx/lib/systemd/system/vm-serve.socket" &&
	contains "$u" "^ExecStart=$TEST_TMP/pfx/bin/vm serve$" &&
	contains "$u" "^Type=notify$" && contains "$u" "^MemoryDenyWriteExecute=yes$" &&
	contains "$sk" "^ListenStream=127.0.0.1:9180$" &&
	systemd-analyze verify --man=no "$u" "$sk" >v.out 2>&1 &&
	test ! -s v.out &&
	systemd-analyze security --offline=yes "$u" >sec.out 2>&1 &&
	score=$(sed -n "s/.*Overall exposure level for vm-serve.service: \([0-9.]*\) .*/\1/p" sec.out) &&
	test -n "$score" && echo "exposure $score" &&
	awk -v s="$score" "BEGIN { exit !(s <= 3.0) }"
'

test_expect "the unit's ExecStart and ExecStop, run as systemd would" '
	u="$TEST_TMP/pfx/lib/systemd/system/vm@.service" &&
	vm --no-uefi --inplace @create S "$(rescue_iso)" && test -f disk-0.img &&
	secs=$(sed -n "s/^Environment=VM_STOP_TIMEOUT=//p" "$u") &&
	start=$(sed -n "s/^ExecStart=//p" "$u" | sed "s|%f|$PWD|g") &&
	stop=$(sed -n "s/^ExecStop=//p" "$u" | sed "s|%f|$PWD|g; s|\${VM_STOP_TIMEOUT}|$secs|") &&
	cat >notify.py <<-\EOF &&
	import os, socket, subprocess, sys, time
	path = sys.argv[1]
	s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
	s.bind(path)
	s.settimeout(120)
	p = subprocess.Popen(sys.argv[2].split(), env=dict(os.environ, NOTIFY_SOCKET=path),
	                     stdin=subprocess.DEVNULL)
	print("READY" if b"READY=1" in s.recv(4096) else "NOT READY", flush=True)
	open("main.pid", "w").write(str(p.pid))
	sys.exit(p.wait(timeout=300))
	EOF
	{ python3 notify.py "$PWD/notify.sock" "$start" >main.out 2>main.err & } &&
	main=$! &&
	wait_for 120 grep -q READY main.out &&
	contains main.out "^READY$" &&
	wait_for 60 grep -q "root shell on ttyS0" console.log &&
	$stop >stop.out 2>&1 &&
	contains stop.out "S powered off (ACPI power-down)" &&
	wait $main &&
	no_qemu &&
	test ! -e run.json &&
	vm -q @backup S0 && ino=$(stat -c %i disk-0.img) &&
	rm -rf "${TMPDIR:?}"/* && rm -f notify.sock main.out &&
	{ python3 notify.py "$PWD/notify.sock" "$start" >main.out 2>main.err & } &&
	main=$! &&
	wait_for 120 grep -q READY main.out &&
	lacks main.err "restoring" &&
	test "$(stat -c %i disk-0.img)" = "$ino" &&
	vm @kill && { wait $main || true; } && no_qemu &&
	rm disk-0.img &&
	must_fail 1 $start 2>err &&
	contains err "cannot run S: its working files are gone from $PWD, where it keeps them; vm puts snapshot S0 back only when told: --restore-last" &&
	test ! -e disk-0.img && no_qemu &&
	{ vm --inplace --restore-last -t 1 @run 2>rl.err || true; } &&
	contains rl.err "restoring snapshot S0 first" && test -f disk-0.img
'

test_expect "bash completion: verbs bare or not, options of vm or of the verb, values, files, snapshot and job names, vm serve" '
	c="$TEST_TMP/pfx/share/bash-completion/completions/vm" &&
	test -f "$c" &&
	vm --no-uefi -D AHCI=64M @create K @backup @backup &&
	printf "true\n" >mine.job &&
	cat >comp.sh <<-\EOF &&
	. "$1"
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	_vm
	printf "%s\n" "${COMPREPLY[@]}"
	EOF
	bash comp.sh "$c" "$TEST_TMP/pfx/bin/vm" @st >v &&
	contains v "^@start$" && contains v "^@status$" && contains v "^@stop$" &&
	lacks v "^@run$" &&
	bash comp.sh "$c" "$TEST_TMP/pfx/bin/vm" --no- >o &&
	contains o "^--no-uefi$" && contains o "^--no-netdev$" &&
	bash comp.sh "$c" "$TEST_TMP/pfx/bin/vm" @restore "" >s &&
	test "$(cat s)" = "$(printf "S0\nS1")" &&
	bash comp.sh "$c" "$TEST_TMP/pfx/bin/vm" @job "" >j &&
	contains j "^mine$" && contains j "^add-ssh-keys$" && contains j "^run-ssh$" &&
	v="$TEST_TMP/pfx/bin/vm" &&
	bash comp.sh "$c" "$v" back >b && contains b "^backup$" && contains b "^backups$" &&
	bash comp.sh "$c" "$v" @backup -- >f && test "$(cat f)" = "$(printf -- "--full\n--help")" &&
	bash comp.sh "$c" "$v" @backup S9 --f >f && test "$(cat f)" = --full &&
	bash comp.sh "$c" "$v" @stop -- >f && test "$(cat f)" = "$(printf -- "--save\n--help")" &&
	bash comp.sh "$c" "$v" --mem >m && test "$(cat m)" = --memory= &&
	bash comp.sh "$c" "$v" --accel= >a &&
	test "$(cat a)" = "$(printf -- "--accel=auto\n--accel=kvm\n--accel=tcg")" &&
	bash comp.sh "$c" "$v" --accel=k >a && test "$(cat a)" = --accel=kvm &&
	mkdir isos && : >isos/d12.iso &&
	bash comp.sh "$c" "$v" @create K2 isos/ >i && test "$(cat i)" = isos/d12.iso &&
	bash comp.sh "$c" "$v" --base=isos/ >i && test "$(cat i)" = --base=isos/d12.iso &&
	bash comp.sh "$c" "$v" -d is >d && test "$(cat d)" = isos &&
	bash comp.sh "$c" "$v" serve --l >l && test "$(cat l)" = --listen= &&
	bash comp.sh "$c" "$v" serve --listen=127.0.0.1:9180 is >d && test "$(cat d)" = isos &&
	bash comp.sh "$c" "$v" @restore S0 "" >r && lacks r "^S1$" &&
	bash comp.sh "$c" "$v" @backup @sn >n && test "$(cat n)" = @snapshots &&
	# as bash splits words at = and @ (COMP_WORDBREAKS): the part after
	bash comp.sh "$c" "$v" --accel = k >a && test "$(cat a)" = kvm &&
	bash comp.sh "$c" "$v" @ sn >n && test "$(cat n)" = snapshots &&
	bash comp.sh "$c" "$v" --hostdir = "$PWD" @restore "" >s &&
	test "$(cat s)" = "$(printf "S0\nS1")" &&
	# a value in the next word is no argument; file names with spaces
	mkdir "my isos" && : >"my isos/a b.iso" &&
	bash comp.sh "$c" "$v" @create --base "" >i && contains i "^my isos$" &&
	lacks i "^@" &&
	bash comp.sh "$c" "$v" @create --base x K2 "my isos/" >i &&
	test "$(cat i)" = "my isos/a b.iso" &&
	bash comp.sh "$c" "$v" -c 4 @restore S0 "" >r && lacks r "^S1$" &&
	bash comp.sh "$c" "$v" @create K2 --sha256 "" >h && test -z "$(cat h)"
'

test_expect "make uninstall removes what make install put there" '
	make -s -C "$TOP" uninstall PREFIX="$PFX" DESTDIR="$ROOT" &&
	test ! -e "$ROOT$PFX/bin/vm" &&
	test ! -e "$ROOT$PFX/share/vm" &&
	test ! -e "$ROOT$PFX/share/doc/vm" &&
	test ! -e "$ROOT$PFX/share/man/man1/vm.1" &&
	test ! -e "$ROOT$PFX/share/man/man5/vm.conf.5" &&
	make -s -C "$TOP" uninstall PREFIX="$TEST_TMP/pfx" &&
	test ! -e "$TEST_TMP/pfx/lib/systemd/system/vm@.service" &&
	test ! -e "$TEST_TMP/pfx/lib/systemd/system/vm-serve.service" &&
	test ! -e "$TEST_TMP/pfx/lib/systemd/system/vm-serve.socket" &&
	test ! -e "$TEST_TMP/pfx/share/bash-completion/completions/vm" &&
	test ! -e "$TEST_TMP/pfx/bin/vm"
'

test_done
