#!/bin/bash
# --json: one JSON line per step on stdout and nothing else there, each
# checked by tests/data/json-check.py against docs/json.md's table of fields;
# dry runs, failures, usage errors, strings that are not UTF-8, and the
# verbs that boot a guest.
. "$(dirname "$0")/../lib.sh"

need_rescue
RESCUE=$(rescue_iso)
ISO=$(autorun_iso test-install "$TOP/tests/data/autorun-install") || {
	echo "not ok 1 - cannot build the test ISO"
	exit 1
}
export RESCUE ISO

# check FILE VERB...: FILE is those steps' JSON lines, as docs/json.md documents
check() { python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" "$@"; }
# field FILE LINE EXPR: a Python expression on step LINE (1-based) as s;
# a tuple is printed as its items with spaces between
field() {
	python3 -c "
import json, sys
s = json.loads(open(sys.argv[1], encoding=\"utf-8\").read().splitlines()[int(sys.argv[2]) - 1])
v = eval(sys.argv[3])
print(*v) if isinstance(v, tuple) else print(v)" "$@"
}
# refuses WANT VERBS LINE...: the checker fails on these lines, saying WANT
refuses() {
	check_args refuses "WANT VERBS LINE..." 3 - "$@" &&
	local want=$1 verbs=$2 &&
	shift 2 &&
	printf "%s\n" "$@" >refused.jsonl &&
	# shellcheck disable=SC2086
	must_fail 1 check refused.jsonl $verbs >refused.out &&
	contains refused.out "$want"
}
booted() { grep -q "root shell on ttyS0" .work/console.log 2>/dev/null; }

test_expect "the checker itself refuses what docs/json.md does not document" '
	refuses "field extra is not in docs/json.md" last \
		"{\"verb\":\"last\",\"args\":[],\"status\":0,\"result\":{\"last\":\"S0\",\"extra\":1}}" &&
	refuses "is not string" last \
		"{\"verb\":\"last\",\"args\":[],\"status\":0,\"result\":{\"last\":7}}" &&
	refuses "field last is missing" last \
		"{\"verb\":\"last\",\"args\":[],\"status\":0,\"result\":{}}" &&
	refuses "not JSON" last "vm: hello" &&
	refuses "field name is missing" status \
		"{\"verb\":\"status\",\"args\":[],\"status\":3,\"result\":{}}" &&
	refuses "stopped = .gone. is none of" stop \
		"{\"verb\":\"stop\",\"args\":[],\"status\":0,\"result\":{\"stopped\":\"gone\"}}" &&
	refuses "goes on after a step" "last last" \
		"{\"verb\":\"last\",\"args\":[],\"status\":1,\"result\":{},\"error\":\"x\"}" \
		"{\"verb\":\"last\",\"args\":[],\"status\":0,\"result\":{\"last\":\"S0\"}}" &&
	refuses "field last_job.name is missing" status \
		"{\"verb\":\"status\",\"args\":[],\"status\":3,\"result\":{\"name\":\"t\",\"state\":\"stopped\",\"hostdir\":\"/x\",\"workdir\":null,\"last_job\":{},\"snapshots\":0,\"last\":null}}" &&
	printf "%s" "{\"verb\":\"last\",\"args\":[],\"status\":0,\"result\":{\"last\":\"S0\"}}" >x7 &&
	must_fail 1 check x7 last >o && contains o "does not end in a newline" &&
	: >x10 && must_fail 1 check x10 >o && contains o "no output"
'

test_expect "a chain of the verbs that need no guest: one valid line each" '
	desc=$(printf "caf\351 ok") &&
	vm --json --no-uefi -D VIRT=64M @create J @snapshots @backup S0 "$desc" \
		@backup S1 @last S0 @forget S1 @snapshots @kill @stop \
		@destroy @restore @destroy @verify >out 2>err &&
	check out create snapshots backup backup last forget snapshots kill \
		stop destroy restore destroy verify &&
	test "$(field out 4 "s[\"result\"][\"parent\"]")" = S0 &&
	test "$(field out 13 "s[\"result\"][\"snapshots\"][0][\"ok\"]")" = True &&
	test "$(field out 3 "s[\"result\"][\"description\"]")" = "caf$(printf "\357\277\275") ok" &&
	test "$(field out 7 "s[\"result\"][\"last\"]")" = S0 &&
	test "$(field out 7 "len(s[\"result\"][\"snapshots\"])")" = 1 &&
	test "$(field out 3 "s[\"result\"][\"file\"]")" = "$PWD/backups/S0.tar.gz" &&
	test "$(field out 8 "s[\"result\"][\"killed\"]")" = False &&
	test "$(field out 9 "s[\"result\"][\"stopped\"]")" = not_running &&
	contains err "snapshot S0 of J stored" &&
	vm --json -d "$PWD/k" --no-uefi -D VIRT=64M @create K @backup S2 \
		"$(printf "a\342\200\250b\302\205c")" >sep 2>/dev/null &&
	check sep create backup &&
	must_fail 1 vm --json @snapshots >/dev/full 2>err &&
	contains err "cannot write the result of @snapshots to stdout" &&
	must_fail 3 vm --json @status >st 2>/dev/null &&
	check st status &&
	test "$(field st 1 "s[\"result\"][\"state\"], s[\"status\"], \"error\" in s")" = "stopped 3 False" &&
	test "$(field st 1 "s[\"result\"][\"last\"][\"name\"]")" = S0
'

test_expect "--dry-run: the commands are in result.dry_run, nothing is done" '
	vm --json --dry-run --no-uefi -D VIRT=64M @create D "$ISO" >out 2>err &&
	check out create && test ! -e guest.conf &&
	contains out "\"dry_run\":\[\"qemu-img create" &&
	vm --no-uefi -D VIRT=64M @create D "$ISO" @backup S0 @backup S1 \
		2>/dev/null &&
	printf "echo hi\n" >hello.job &&
	vm --json --dry-run @run @start @job hello @backup @restore @last S0 \
		@forget S0 @destroy >out 2>err &&
	check out run start job backup restore last forget destroy &&
	vm --json --json --dry-run @start >twice 2>/dev/null &&
	check twice start && contains twice "in the background: vm --dry-run -d" &&
	lacks twice "vm --json" &&
	test "$(field out 1 "s[\"result\"][\"dry_run\"][0].split()[0]")" = qemu-system-x86_64 &&
	test "$(field out 3 "s[\"result\"][\"dry_run\"][0].split()[0]")" = qemu-system-x86_64 &&
	test -e backups/S0.tar.gz && test ! -e backups/S2.tar.gz &&
	test "$(readlink backups/LAST)" = S1.tar.gz && test -e .work/disk-0.img &&
	no_qemu
'

test_expect "a failed step: its line has status and error, the chain stops" '
	vm --no-uefi -D VIRT=64M @create F 2>/dev/null &&
	must_fail 1 vm --json @snapshots @last NOPE @snapshots >out 2>err &&
	check out snapshots last &&
	test "$(field out 2 "s[\"status\"], s[\"error\"]")" = "1 no snapshot NOPE (see @snapshots)" &&
	must_fail 1 vm --json -d "$PWD/nowhere" @snapshots >out2 2>/dev/null &&
	check out2 snapshots &&
	contains out2 "\"error\":\"VM directory .*nowhere does not exist\""
'

test_expect "usage errors print nothing on stdout; @ssh and @console refuse --json" '
	vm --no-uefi -D VIRT=64M @create U 2>/dev/null &&
	must_fail 2 vm --json @nosuch >out 2>err && test ! -s out &&
	must_fail 2 vm --json --cores @run >out 2>err && test ! -s out &&
	must_fail 2 vm --json @ssh true >out 2>err && test ! -s out &&
	contains err "@ssh has nothing to report in JSON" &&
	must_fail 2 vm --json @snapshots @console >out 2>err && test ! -s out &&
	contains err "@console has nothing to report in JSON" &&
	no_qemu
'

test_expect "@create ISO @run @job @backup: a guest, a job and its log, only JSON on stdout" '
	cat >noisy.pre <<-\EOF &&
	echo "PRE on stdout"
	EOF
	echo "echo JOB-LOG-LINE" >noisy.job &&
	vm --json --no-uefi -p "" -m 512M -c 1 -D AHCI=256M @create G "$ISO" \
		@run @job noisy @backup S0 "built" >out 2>err &&
	check out create run job backup &&
	contains err "JOB-LOG-LINE" && contains err "PRE on stdout" &&
	lacks out "JOB-LOG-LINE" && lacks out "PRE on stdout" &&
	test "$(field out 2 "s[\"result\"][\"ended\"], s[\"result\"][\"firstboot\"]")" = "poweroff True" &&
	test "$(field out 3 "s[\"result\"][\"outcome\"], s[\"result\"][\"job_status\"]")" = "done 0" &&
	contains "$(field out 3 "s[\"result\"][\"log\"]")" "JOB-LOG-LINE" &&
	printf "exit 7\n" >seven.job &&
	must_fail 7 vm --json @job seven >out2 2>err2 &&
	check out2 job &&
	test "$(field out2 1 "s[\"status\"], s[\"result\"][\"job_status\"]")" = "7 7" &&
	contains out2 "\"error\":\"job seven failed with status 7" &&
	no_qemu
'

test_expect "@start @status @monitor @stop and @kill of a running guest" '
	vm --no-uefi -m 512M @create L "$RESCUE" &&
	vm --json @start @status >out &&
	check out start status &&
	pid=$(field out 1 "s[\"result\"][\"pid\"]") && kill -0 "$pid" &&
	equals "$(field out 2 "s[\"result\"][\"state\"], s[\"result\"][\"pid\"]")" "running $pid" &&
	vm --json @monitor "{\"execute\": \"query-status\"}" >mon &&
	check mon monitor &&
	equals "$(field mon 1 "s[\"result\"][\"reply\"][\"return\"][\"status\"]")" running &&
	must_fail 1 vm --json @monitor "{\"execute\": \"no-such\"}" >mon2 &&
	check mon2 monitor &&
	contains mon2 "\"error\":\"@monitor: QEMU says: " &&
	vm --json --dry-run @stop @kill >dry && check dry stop kill &&
	contains dry "system_powerdown" && contains dry "kill -KILL $(field out 1 "s[\"result\"][\"qemu_pid\"]")" &&
	kill -0 "$pid" &&
	wait_for 60 booted &&
	vm --json @stop 60 >st && check st stop &&
	equals "$(field st 1 "s[\"result\"][\"stopped\"]")" powerdown &&
	no_qemu &&
	vm @start && vm --json @kill >k && check k kill &&
	equals "$(field k 1 "s[\"result\"][\"killed\"]")" True &&
	no_qemu
'

test_done
