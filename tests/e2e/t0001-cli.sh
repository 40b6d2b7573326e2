#!/bin/bash
# The command line, settings and @create/@destroy, with the real binary.
. "$(dirname "$0")/../lib.sh"

test_expect "vm -h lists every verb and option, exit 0" '
	vm -h >out &&
	for v in @create @run @job @backup @restore @snapshots @forget @last \
		@inspect @destroy; do
		contains out "^  $v " || exit 1
	done &&
	for o in --disks --host --sockets --arch --cores --hostdir --forward \
		--image --keep-cd --no-keep-cd --memory --no-colors --port \
		--quiet --rescue --share --timeout --uefi --no-uefi --no-netdev \
		--use-tmpdir --inplace --no-tmpdir --accel --boot-timeout \
		--dry-run --trust-snapshot --sha256 --json --version --help; do
		contains out "^ *\(-[a-zA-Z], \)\?$o[ =]" || exit 1
	done &&
	vm --version >v && contains v "^vm [0-9]"
'

test_expect "an unknown verb is a usage error with a suggestion" '
	must_fail 2 vm @creat T 2>err &&
	contains err "unknown command .@creat." &&
	contains err "did you mean @create" &&
	must_fail 2 vm @create T @rnu 2>err &&
	contains err "did you mean @run" &&
	test ! -e guest.conf
'

test_expect "argument counts are checked before anything runs" '
	must_fail 2 vm @create 2>err &&
	contains err "@create takes 1 to 2 arguments, got 0" &&
	must_fail 2 vm @create A B C 2>err &&
	contains err "@create takes 1 to 2 arguments, got 3" &&
	must_fail 2 vm @create T @destroy now 2>err &&
	contains err "@destroy takes no arguments" &&
	test ! -e guest.conf && test ! -e .work
'

test_expect "bad option values name the option and change nothing" '
	must_fail 2 vm -c 0 @create T 2>err && contains err "option -c/--cores" &&
	must_fail 2 vm -m 1X @create T 2>err && contains err "option -m/--memory" &&
	must_fail 2 vm -D FOO=1G @create T 2>err && contains err "option -D/--disks" &&
	must_fail 2 vm -D AHCI=0 @create T 2>err && contains err "bad disk size" &&
	must_fail 2 vm -p 70000 @create T 2>err && contains err "option -p/--port" &&
	must_fail 2 vm -f garbage @create T 2>err && contains err "option -f/--forward" &&
	must_fail 2 vm -s nocolon @create T 2>err && contains err "option -s/--share" &&
	must_fail 2 vm -t soon @create T 2>err && contains err "option -t/--timeout" &&
	must_fail 2 vm --accel=xen @create T 2>err && contains err "option --accel" &&
	must_fail 2 vm --bogus @create T 2>err && contains err "bad option" &&
	test ! -e guest.conf
'

test_expect "a bad VM name is a usage error" '
	must_fail 2 vm @create ../evil 2>err && contains err "bad name" &&
	must_fail 2 vm @create -- -- 2>err && contains err "bad name .--." &&
	must_fail 2 vm @create "bad name" 2>err && contains err "bad name" &&
	test ! -e guest.conf
'

test_expect "a bare word that is no file and no verb is a typo, with a suggestion" '
	must_fail 2 vm snapshot 2>err &&
	contains err "^vm: .snapshot. is neither a file nor a command (did you mean @snapshots?)$" &&
	test "$(wc -l <err)" -eq 1 &&
	must_fail 2 vm bakcup 2>err && contains err "did you mean @backup?" &&
	lacks err "ISO" && test ! -e guest.conf &&
	: >snapshot && must_fail 2 vm --dry-run snapshot 2>out &&
	contains out "^vm: no VM in $PWD" && lacks out "neither a file" &&
	vm -q --no-uefi -D VIRT=8M @create S &&
	vm --dry-run snapshot >out 2>&1 && contains out "snapshot"
'

test_expect "an option value that is a verb or an option is refused unless joined" '
	must_fail 2 vm --cores @run 2>err &&
	contains err "option -c/--cores needs a value, not .@run. (write --cores=@run" &&
	must_fail 2 vm -c @run 2>err && contains err "needs a value" &&
	must_fail 2 vm -m -q @run 2>err && contains err "not .-q." &&
	must_fail 2 vm --cores=@run @run 2>err &&
	contains err "option -c/--cores: .@run. is not a number" &&
	vm -f "" --dry-run @create T >out && contains out "disk-0.img"
'

test_expect "@create makes settings, qcow2 disks, UEFI vars and a private WORKDIR" '
	vm -c 3 -m 1G -D AHCI=2G,NVME=1G @create WS10 &&
	contains guest.conf "^name = WS10" &&
	contains guest.conf "^disks = AHCI=2G,NVME=1G" &&
	contains guest.conf "^cores = 3" &&
	contains guest.conf "^memory = 1G" &&
	lacks guest.conf "^sockets" &&
	test -L .work && w=$(readlink .work) &&
	test "$(stat -c %a "$w")" = 700 &&
	test "$(stat -c %a "$w/disk-0.img")" = 600 &&
	test "$(stat -c %a "$w/efivars.bin")" = 600 &&
	test "$(readlink "$w/.host")" = "$PWD" &&
	qemu-img info "$w/disk-0.img" | grep -q "file format: qcow2" &&
	qemu-img info "$w/disk-0.img" | grep -q "virtual size: 2 GiB" &&
	qemu-img info "$w/disk-1.img" | grep -q "virtual size: 1 GiB" &&
	cmp -s "$w/efivars.bin" /usr/share/OVMF/OVMF_VARS_4M.fd
'

test_expect "options about one run are not saved by @create" '
	vm -t 90 --accel=tcg --boot-timeout=60 -r fast -c 2 @create A &&
	contains guest.conf "^cores = 2" &&
	lacks guest.conf timeout && lacks guest.conf accel &&
	lacks guest.conf "^rescue"
'

test_expect "@create refuses an existing VM and says what is there" '
	vm @create A &&
	must_fail 1 vm @create B 2>err &&
	contains err "already has settings (guest.conf), 1 disk" &&
	contains err "@destroy" &&
	contains guest.conf "^name = A"
'

test_expect "@create refuses when snapshots exist" '
	mkdir -p backups/S0 &&
	must_fail 1 vm @create A 2>err && contains err "snapshots (backups/)" &&
	test ! -e guest.conf && test ! -e .work
'

test_expect "@create with a missing ISO leaves nothing behind" '
	must_fail 1 vm @create A /nonexistent.iso 2>err &&
	contains err "nonexistent.iso" &&
	test ! -e guest.conf && test ! -e .work &&
	test -z "$(ls "$TMPDIR")"
'

test_expect "an ISO path too long to record is refused, nothing created" '
	d=$(printf "d%.0s" $(seq 1 180)) && mkdir "$d" &&
	printf CD001 | dd of="$d/x.iso" bs=1 seek=32769 status=none &&
	must_fail 1 vm @create A "$d/x.iso" 2>err &&
	contains err "too long" &&
	test ! -e guest.conf && test ! -e .work
'

test_expect "@create fails clearly without OVMF, and --no-uefi works" '
	VM_OVMF_VARS=/nonexistent must_fail 1 vm @create A 2>err &&
	contains err "UEFI firmware not found" && test ! -e guest.conf &&
	VM_OVMF_VARS=/nonexistent vm --no-uefi @create A &&
	contains guest.conf "^uefi = no" && test ! -e .work/efivars.bin
'

test_expect "a failing qemu-img leaves nothing half-created" '
	mkdir bin && printf "#!/bin/sh\nexit 1\n" >bin/qemu-img && chmod +x bin/qemu-img &&
	PATH=$PWD/bin:$PATH must_fail 1 vm @create A 2>err &&
	contains err "cannot create disk" &&
	test ! -e guest.conf && test ! -e .work && test -z "$(ls "$TMPDIR")"
'

test_expect "--dry-run @run prints the QEMU command and runs nothing" '
	mkdir data &&
	vm -D AHCI=1G,NVME=1G,SCSI=1G,VIRT=1G @create A &&
	vm --dry-run -f tcp::5555-:22 -s data:rw:@HOSTDIR@/data -p 5930 -H 0.0.0.0 \
		@run >cmd &&
	contains cmd "^qemu-system-x86_64 " &&
	contains cmd "-machine q35,accel=tcg" &&
	contains cmd "if=pflash,format=raw,unit=0,readonly=on" &&
	contains cmd "ide-hd,drive=disk0,bus=ahci0.0" &&
	contains cmd "nvme,drive=disk1" &&
	contains cmd "scsi-hd,drive=disk2,bus=scsi0.0" &&
	contains cmd "virtio-blk-pci,drive=disk3" &&
	contains cmd "hostfwd=tcp::5555-:22" &&
	contains cmd "path=$PWD/data" && contains cmd "mount_tag=data" &&
	lacks cmd "mount_tag=data.*readonly" &&
	contains cmd "-spice port=5930,addr=0.0.0.0" && contains cmd "-vga qxl" &&
	contains cmd "-smp cpus=1,sockets=1,cores=1" && contains cmd "-m 512M" &&
	test -d .work/ && test ! -e .work/run-vm.sh && test ! -e .work/vm-qemu.log
'

test_expect "settings layer: /etc < user < guest.conf < options" '
	printf "[vm]\ncores = 4\nmemory = 3G\nsockets = 2\n" >"$VM_SYSTEM_CONFIG" &&
	printf "[vm]\nport =\naccel = tcg\nmemory = 768M\n" >"$XDG_CONFIG_HOME/vm.conf" &&
	vm --no-uefi @create A &&
	vm --dry-run @run >cmd && contains cmd "-smp cpus=8,sockets=2,cores=4" &&
	contains cmd "-m 768M" &&
	printf "cores = 1\n" >>guest.conf &&
	vm --dry-run @run >cmd && contains cmd "cores=1" &&
	vm --dry-run -c 5 @run >cmd && contains cmd "cores=5"
'

test_expect "an unknown key in guest.conf is an error with file:line" '
	vm --no-uefi @create A &&
	printf "colour = red\n" >>guest.conf &&
	n=$(wc -l <guest.conf) &&
	must_fail 1 vm --dry-run @run 2>err &&
	contains err "guest.conf:$n: unknown key .colour. in \[vm\]" &&
	printf "[vm]\nmemory = lots\n" >"$XDG_CONFIG_HOME/vm.conf" &&
	must_fail 1 vm --dry-run @destroy 2>err &&
	contains err "vm.conf:2: memory: bad memory size"
'

test_expect "a share whose directory is missing is an error" '
	vm --no-uefi @create A &&
	must_fail 1 vm --dry-run -s data:/nonexistent/dir @run 2>err &&
	contains err "share data: directory /nonexistent/dir does not exist"
'

test_expect "vm.defaults adds QEMU arguments; the WORKDIR one wins" '
	vm --no-uefi @create A &&
	printf "# extra\n-device \"virtio-balloon-pci\" # tail comment\n" >vm.defaults &&
	vm --dry-run @run >cmd && contains cmd " -device virtio-balloon-pci$" &&
	printf -- "-rtc base=utc\n" >.work/vm.defaults &&
	vm --dry-run @run >cmd && contains cmd " -rtc base=utc$" &&
	lacks cmd balloon
'

test_expect "vm works when started inside the WORKDIR" '
	vm --no-uefi @create A &&
	(cd .work && vm --dry-run @run) >cmd &&
	contains cmd "disk-0.img"
'

test_expect "--inplace keeps the working files in HOSTDIR" '
	vm --inplace --no-uefi @create A &&
	test -f disk-0.img && test ! -e .work &&
	contains guest.conf "^use_tmpdir = no" &&
	vm --dry-run @run >cmd && contains cmd "file=$PWD/disk-0.img" &&
	touch notes.txt && mkdir backups && touch backups/keep &&
	vm @destroy && test ! -e disk-0.img &&
	test -f guest.conf && test -f notes.txt && test -f backups/keep
'

test_expect "@destroy removes WORKDIR and .work, keeps settings and snapshots" '
	vm @create A && w=$(readlink .work) && mkdir backups && touch backups/S0 &&
	cp guest.conf before &&
	vm @destroy && test ! -e "$w" && test ! -L .work &&
	cmp guest.conf before && test -f backups/S0 &&
	vm @destroy 2>err && contains err "nothing to destroy"
'

test_expect "-d names the VM directory; @create makes it" '
	vm -d "$PWD/new/vm1" --no-uefi @create A &&
	test -f new/vm1/guest.conf &&
	must_fail 1 vm -d "$PWD/nope" @destroy 2>err &&
	contains err "does not exist"
'

test_expect "the chain stops at the first failure and names the step" '
	must_fail 1 vm --no-uefi @create A @create B @destroy 2>err &&
	contains err "@create failed (step 2 of 3)" &&
	test -L .work
'

test_expect "under systemd each line to the journal carries its priority" '
	: >err && js=$(stat -c "%d:%i" err) &&
	JOURNAL_STREAM=$js vm --no-uefi -D VIRT=8M @create J 2>>err &&
	JOURNAL_STREAM=$js vm @backup 2>>err && contains err "^<6>vm: backup S0: started" &&
	{ JOURNAL_STREAM=$js vm @backup "bad/name" 2>>err || true; } &&
	contains err "^<6>vm: created J in " &&
	contains err "^<3>vm: " &&
	test "$(grep -c "^vm: " err)" -eq 0 &&
	{ vm @forget nosuch 2>plain >/dev/null || true; } &&
	contains plain "^vm: " && lacks plain "^<[0-9]>"
'

test_expect "what the docs say holds: @snapshots in natural name order, which verbs lock, verify is a bare verb" '
	vm -q --no-uefi -D VIRT=8M @create O &&
	vm -q @backup S10 @backup S2 @backup S9 &&
	vm -q @snapshots >out &&
	test "$(awk "NR > 1 {print \$1}" out | tr "\n" " ")" = "S2 S9 S10 " &&
	# the data alone on stdout, -q or not; the step banner on stderr
	vm @snapshots >out2 2>err && cmp out out2 &&
	contains err "^\*\*\* Executing command: snapshots()" &&
	must_fail 3 vm @status >out 2>err && contains out "^O: stopped" &&
	lacks out "Executing" && contains err "Executing command: status()" &&
	vm --json @snapshots >json &&
	python3 -c "
import json
r = json.load(open(\"json\"))[\"result\"]
assert [s[\"name\"] for s in r[\"snapshots\"]] == [\"S2\", \"S9\", \"S10\"], r
" &&
	vm backup verify 2>err && contains err "^vm: S10: ok$" &&
	hold_lock .lock &&
	for v in @status @snapshots @verify "@kill" "@stop"; do
		s=0 && timeout 10 "$VM_BIN" -q $v >/dev/null 2>err || s=$? &&
		if [ "$s" != 0 ] && [ "$s" != 3 ]; then
			echo "$v under a held lock: $s" >&2 && cat err >&2 && exit 1
		fi || exit 1
	done &&
	for v in "@backup" "@last S2" "@forget S9" "@destroy" "@restore"; do
		s=0 && timeout 10 "$VM_BIN" -q $v >/dev/null 2>err || s=$? &&
		if [ "$s" != 1 ] || ! grep -q "in use\|lock\|busy" err; then
			echo "$v under a held lock: $s" >&2 && cat err >&2 && exit 1
		fi || exit 1
	done &&
	kill $locker
'

test_expect "vm help, vm help VERB, @VERB --help and -h: usage, arguments, options, an example; exit 0, nothing written" '
	# (what they print goes to the test'"'"'s directory above this one)
	o=.. &&
	vm help >$o/h && vm -h >$o/dash && cmp $o/h $o/dash &&
	sed -n "s/^  @\([a-z]*\).*/\1/p" $o/dash >$o/verbs &&
	test "$(wc -l <$o/verbs)" -ge 17 && lacks $o/verbs inspect-worker &&
	while read -r v; do
		vm help "$v" >$o/a && vm help "@$v" >$o/b && vm "@$v" --help >$o/c &&
		vm "@$v" -h >$o/d && cmp $o/a $o/b && cmp $o/a $o/c && cmp $o/a $o/d &&
		contains $o/a "^Usage: vm \[options\] @$v" && contains $o/a "^Example:$" &&
		contains $o/a "^  vm .*@$v" && contains $o/a "^  -h, --help " || {
			echo "help of @$v" >&2 && cat $o/a >&2 && exit 1
		} || exit 1
	done <$o/verbs &&
	vm help backup >$o/out && contains $o/out "^  --full  *a full snapshot" &&
	contains $o/out "^  DESCRIPTION  *one line" &&
	vm @create T --help >$o/out && vm @job --help @run >$o/out &&
	contains $o/out "^Usage: vm \[options\] @job NAME" &&
	must_fail 2 vm help bakup 2>$o/err &&
	contains $o/err "no verb .bakup. (did you mean @backup?)" &&
	must_fail 2 vm help a b 2>$o/err && test -z "$(ls -A)"'

test_expect "a verb's options follow it, anywhere; vm's own there are refused with where they go; typos get a suggestion" '
	vm -q --no-uefi -D VIRT=8M:raw @create B &&
	vm -q @backup --full ci1 && vm -q @backup ci2 "the second" --full &&
	vm -q @backup ci3 &&
	test "$(tar -xzOf backups/ci2.tar.gz CHAIN | grep -c "^parent")" = 0 &&
	tar -xzOf backups/ci3.tar.gz CHAIN | grep -q "^parent ci2 " &&
	vm -q @snapshots >out && contains out "the second" &&
	vm -q @backup -- S9 -draft && vm -q @snapshots >out && contains out " -draft" &&
	must_fail 2 vm @backup -m 4G 2>err && test "$(wc -l <err)" = 1 &&
	contains err "^vm: -m is an option of vm, not of @backup: put it before the first verb" &&
	must_fail 2 vm @run --memory=4G 2>err &&
	contains err "^vm: --memory=4G is an option of vm, not of @run: put it before the first verb" &&
	must_fail 2 vm @run --full 2>err && contains err "^vm: @run has no option --full (@backup has)$" &&
	must_fail 2 vm @backup --ful 2>err && contains err "(did you mean --full?)$" &&
	must_fail 2 vm @backup --cors 2>err &&
	contains err "(did you mean --cores? it goes before the first verb)$" &&
	must_fail 2 vm --memroy 4G @run 2>err && contains err "^vm: bad option .--memroy. (did you mean --memory?)$" &&
	must_fail 2 vm --save @stop 2>err && contains err "^vm: option --save goes after @stop (vm @stop --save)$" &&
	must_fail 2 vm @stop --save=1 2>err && contains err "option --save of @stop takes no value" &&
	must_fail 2 vm @create --base 2>err && contains err "option --base of @create needs a value" &&
	must_fail 2 vm @create X --base --inplace 2>err &&
	contains err "needs a value, not .--inplace. (write --base=--inplace if that is the value)" &&
	must_fail 2 vm @create X --base stop 2>err && contains err "needs a value, not .stop." &&
	must_fail 2 vm --accel 2>err && contains err "^vm: option --accel needs a value" &&
	must_fail 2 vm @inspect-worker --help 2>err && contains err "unknown command" &&
	must_fail 2 vm @run -c4 2>err && contains err "^vm: -c4 is an option of vm, not of @run" &&
	vm @backup a b c @job --help >out && contains out "^Usage: vm \[options\] @job" &&
	vm --dry-run @start -- -x.iso >out 2>&1 && contains out "@run -- -x.iso$" &&
	vm @stop --save 30 >out 2>&1 && contains out "B is not running" &&
	vm -q @restore --inplace ci1 && test -f disk-0.img
'

test_expect "vm -h, vm help VERB and vm(1) list the same verbs, the same options of vm and of each verb" '
	vm -h >h &&
	sed -n "s/^  @\([a-z]*\).*/\1/p" h >verbs &&
	while read -r v; do
		vm help "$v" >"help.$v" || exit 1
	done <verbs &&
	python3 - "$TOP/vm.1" <<-\EOF
	import re, sys
	man = open(sys.argv[1]).read().split("\n")
	def section(name):
	    a = man.index(".SH " + name)
	    b = next(i for i in range(a + 1, len(man)) if man[i].startswith(".SH "))
	    return man[a:b]
	def heads(lines):
	    return [lines[i + 1] for i in range(len(lines) - 1) if lines[i] == ".TP"]
	def longs(text):
	    return set(re.findall(r"\\-\\-([a-z0-9]+(?:\\-[a-z0-9]+)*)", text))
	man_verbs = {}
	for h in heads(section("VERBS")):
	    m = re.match(r"\.B[IR]? \"?@([a-z]+)", h)
	    if m:
	        man_verbs.setdefault(m.group(1), set()).update(
	            o.replace("\\-", "-") for o in longs(h))
	man_opts = set()
	for h in heads(section("OPTIONS")):
	    man_opts |= {o.replace("\\-", "-") for o in longs(h)}
	help = open("h").read()
	h_verbs = open("verbs").read().split()
	opts = help.split("\nOptions:\n")[1].split("\n\n")[0]
	h_opts = set(re.findall(r"--([a-z0-9-]+)", opts))
	bad = []
	if set(h_verbs) != set(man_verbs):
	    bad.append("verbs: vm -h only %s, vm.1 only %s" % (
	        sorted(set(h_verbs) - set(man_verbs)), sorted(set(man_verbs) - set(h_verbs))))
	if h_opts != man_opts:
	    bad.append("options: vm -h only %s, vm.1 only %s" % (
	        sorted(h_opts - man_opts), sorted(man_opts - h_opts)))
	for v in h_verbs:
	    t = open("help." + v).read()
	    o = t.split("\nOptions:\n")[1].split("\n\n")[0]
	    own = set(re.findall(r"^  --([a-z0-9-]+)", o, re.M))
	    if own != man_verbs.get(v, set()):
	        bad.append("@%s: vm help only %s, vm.1 only %s" % (
	            v, sorted(own - man_verbs.get(v, set())), sorted(man_verbs.get(v, set()) - own)))
	    head = re.search(r"^  (@%s(?: [^ ]+)*)(?:  |$)" % v, help, re.M)
	    if head and set(re.findall(r"--([a-z0-9-]+)", head.group(1))) != own:
	        bad.append("@%s: vm -h and vm help differ" % v)
	print("\n".join(bad) or "agree")
	sys.exit(1 if bad else 0)
	EOF
'

test_done
