# Shared by tests/e2e/t*.sh: temp dirs, expectations, process cleanup.
#
#   . "$(dirname "$0")/../lib.sh"
#   test_expect "what it checks" '
#       vm @create T &&
#       test -f guest.conf
#   '
#   test_done
#
# Each test runs in a subshell with `set -e` inside its own empty
# directory; its output goes to the log and is shown when it fails.  TAP
# lines ("ok N - ...", "not ok N - ...") are what tests/run.sh counts.
# TEST_RUN="2,5" runs only those tests of a file (by number), for work
# on one test; the others are listed as "# not run".
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_BIN=${VM_BIN:-$TOP/vm}
T=$(mktemp -d "${TMPDIR:-/tmp}/vm-test.XXXXXX")
export TEST_TMP=$T
export HOME=$T/home
export XDG_CONFIG_HOME=$HOME/.config
# Each test file has caches of its own (downloads, the KVM verdict, the
# rescue's kernel), so files can run side by side (tests/run.sh -j).
# What is only built, never asserted on, is shared: the autorun ISOs
# (built under a lock, see autorun_iso) and libguestfs's appliance.
export XDG_CACHE_HOME=$T/cache
VM_TEST_SHARED=${VM_TEST_CACHE:-$TOP/build/test-cache}
export LIBGUESTFS_CACHEDIR=$VM_TEST_SHARED/guestfs
mkdir -p "$VM_TEST_SHARED/isos" "$LIBGUESTFS_CACHEDIR"
export TMPDIR=$T/tmp
export VM_SYSTEM_CONFIG=$T/etc-vm.conf
export NO_COLOR=1
unset VM_DATADIR VM_OVMF_CODE VM_OVMF_VARS
mkdir -p "$HOME/.config" "$TMPDIR" "$XDG_CACHE_HOME"

# Every test starts with the same settings and its own $TMPDIR.
reset_env() {
	check_args reset_env DIR 1 1 "$@"
	export TMPDIR=$1/tmp
	mkdir -p "$TMPDIR"
	rm -f "$VM_SYSTEM_CONFIG"
	# headless and under TCG unless a test says otherwise; the rescue
	# with one vCPU too: under TCG on two busy cores a second vCPU
	# makes its boot no faster (6.1 s against 6.5-8.8 s, two at once),
	# and the rare boot hang seen under TCG (see RESCUE_BOOTS in
	# cmd/job.c) had both vCPUs spinning; [vm] last, as tests add to it
	printf '[rescue]\ncores = 1\n[vm]\nport =\naccel = tcg\nmemory = 512M\ncores = 1\n' \
		>"$XDG_CONFIG_HOME/vm.conf"
}

test_count=0
test_failed=0
LOG=$T/log

# libguestfs run as root keeps its sockets in /tmp whatever TMPDIR says:
# every @inspect (and t0020's guestfish) holds this lock shared, and the
# check of what @inspect leaves in /tmp (t0006) holds it alone
GUESTFS_LOCK=$VM_TEST_SHARED/libguestfs-tmp.lock
vm() {
	local t0=$EPOCHREALTIME rc=0
	case " $* " in
	*" @inspect "*) flock -s -w 1800 "$GUESTFS_LOCK" "$VM_BIN" "$@" || rc=$? ;;
	*) "$VM_BIN" "$@" || rc=$? ;;
	esac
	# VM_TEST_PROFILE=FILE: one line per vm run, to see where time goes
	if [ -n "${VM_TEST_PROFILE:-}" ]; then
		printf '%s\t%s\t%s\t%s\n' "${0##*/}" "$test_count" \
			"$(awk "BEGIN { printf \"%.1f\", ${EPOCHREALTIME/,/.} - ${t0/,/.} }")" \
			"$*" >>"$VM_TEST_PROFILE"
	fi
	return $rc
}

# The QEMUs whose command line names our temp dir: those are ours (a
# VM's own directory, $PWD in a test, is not on it: its disks are in
# the WORKDIR under $TMPDIR).
our_qemus() {
	pgrep -f -- "qemu-system.*$T"
}
kill_ours() {
	local pids
	pids=$(our_qemus || true)
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
}

# no_qemu: the test's QEMUs have all ended
no_qemu() {
	check_args no_qemu "no arguments" 0 0 "$@"
	! our_qemus >/dev/null || {
		echo "a QEMU is still running:" >&2
		pgrep -af -- "qemu-system.*$T" >&2
		return 1
	}
}
trap 'kill_ours; rm -rf "$T"' EXIT

test_expect() {
	check_args test_expect "DESCRIPTION CODE" 2 2 "$@"
	local desc=$1 code=$2 dir rc secs
	test_count=$((test_count + 1))
	if [ -n "${TEST_RUN:-}" ] &&
	   [[ ",${TEST_RUN// /,}," != *",$test_count,"* ]]; then
		echo "# not run $test_count - $desc"
		return 0
	fi
	dir=$T/t$test_count
	mkdir -p "$dir/vm"
	secs=$SECONDS
	(
		reset_env "$dir"
		cd "$dir/vm" || exit 99
		# what the test left running in the background (a vm, a
		# server) ends with it, whether it passed or not
		# (one that ended already is no failure: set -e holds in the trap)
		trap 'p=$(jobs -p) && [ -z "$p" ] || kill $p 2>/dev/null || :' EXIT
		set -e -o pipefail
		eval "$code"
	) >"$LOG" 2>&1 </dev/null
	rc=$? secs=$((SECONDS - secs))
	if [ $rc -eq 0 ]; then
		echo "ok $test_count - $desc ($secs s)"
	else
		test_failed=$((test_failed + 1))
		echo "not ok $test_count - $desc (status $rc, $secs s)"
		sed 's/^/#   /' "$LOG" | tail -n 40
	fi
	# nothing a test started may outlive it
	if our_qemus >/dev/null; then
		echo "not ok $test_count - $desc: left a QEMU running"
		test_failed=$((test_failed + 1))
		kill_ours
	fi
}

test_done() {
	check_args test_done "no arguments" 0 0 "$@"
	echo "1..$test_count"
	[ "$test_failed" -eq 0 ]
}

# bug MESSAGE: a test that misuses a helper is wrong, whatever it
# asserts; stop it (not just the && chain it is in) and say why
bug() {
	echo "bug in the test script: $*" >&2
	exit 99
}

# check_args NAME USAGE MIN MAX ARGS...: MAX "-" for no limit.  A helper called
# with a wrong count checks something else, quietly: contains out -- "$o"
# was grepping for "--".
check_args() {
	local name=$1 usage=$2 min=$3 max=$4
	shift 4
	if [ $# -lt "$min" ] || { [ "$max" != - ] && [ $# -gt "$max" ]; }; then
		bug "$name takes $usage, got $# argument(s):" \
			"$(printf "'%s' " "$@")"
	fi
}

# must_fail STATUS cmd...: cmd must exit with STATUS (or any failure: "any")
must_fail() {
	check_args must_fail "STATUS CMD..." 2 - "$@"
	local want=$1 rc=0
	[[ $want =~ ^([0-9]+|any)$ ]] || bug "must_fail: bad status '$want'"
	shift
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "expected failure, got success: $*" >&2
		return 1
	fi
	if [ "$want" != any ] && [ "$rc" -ne "$want" ]; then
		echo "expected status $want, got $rc: $*" >&2
		return 1
	fi
}

# contains FILE PATTERN, lacks FILE PATTERN: grep with a useful message;
# a FILE that cannot be read fails both (it lacks nothing)
contains() {
	check_args contains "FILE PATTERN" 2 2 "$@"
	local rc=0
	grep -q -e "$2" "$1" || rc=$?
	[ $rc -ne 0 ] || return 0
	if [ $rc -eq 1 ]; then
		sed 's/^/|  /' "$1" >&2
		echo "'$2' not found in $1 (above)" >&2
	fi
	return 1
}
# equals GOT WANT: the two strings are the same; if not, say both
equals() {
	check_args equals "GOT WANT" 2 2 "$@"
	[ "$1" = "$2" ] && return 0
	echo "got '$1', want '$2'" >&2
	return 1
}
lacks() {
	check_args lacks "FILE PATTERN" 2 2 "$@"
	local rc=0
	grep -q -e "$2" "$1" || rc=$?
	[ $rc -ne 1 ] || return 0
	[ $rc -ne 0 ] || echo "'$2' unexpectedly found in $1" >&2
	return 1
}

# wait_for SECONDS CMD...: poll a condition, bounded
wait_for() {
	check_args wait_for "SECONDS CMD..." 2 - "$@"
	local secs=$1 i=0
	[[ $secs =~ ^[0-9]+$ ]] || bug "wait_for: bad seconds '$secs'"
	shift
	while ! "$@"; do
		i=$((i + 1))
		[ $i -le $((secs * 10)) ] || {
			echo "wait_for: '$*' not true within $secs s" >&2
			return 1
		}
		sleep 0.1
	done
}

# hold_lock FILE: hold FILE's flock in the background (PID in $locker)
# until killed; returns once it is held. The holder waits for the lock
# rather than giving up (-n), as the probe below takes it for a moment;
# it is one process (the sleep holds the lock), so killing it frees it.
hold_lock() {
	check_args hold_lock FILE 1 1 "$@"
	(exec 9>>"$1" && flock 9 && exec sleep 60) &
	locker=$!
	wait_for 5 sh -c '! flock -n "$1" true' sh "$1"
}

# The rescue image (make rescue) and an unattended test ISO built from it.
RESCUE_OUT=$TOP/rescue/out
rescue_iso() {
	check_args rescue_iso "no arguments" 0 0 "$@"
	echo "$RESCUE_OUT/rescue-x86_64.iso"
}
# need_rescue: a test file that boots the rescue fails at once without it
need_rescue() {
	check_args need_rescue "no arguments" 0 0 "$@"
	[ -f "$(rescue_iso)" ] && return 0
	echo "not ok 1 - no rescue image: run make rescue"
	exit 1
}
# autorun_iso NAME DIR: an ISO whose /autorun/autorun runs at boot; test
# files running side by side build each NAME once, one at a time
autorun_iso() {
	check_args autorun_iso "NAME DIR" 2 2 "$@"
	QUIET=1 flock -w 600 "$VM_TEST_SHARED/isos/.lock" \
		bash "$TOP/rescue/build-rescue" --out "$VM_TEST_SHARED/isos" \
		--name "$1" --autorun "$2" >&2 || return 1
	echo "$VM_TEST_SHARED/isos/$1.iso"
}

# install_os DIR DISK HOSTNAME: what an installer leaves on the VM in
# DIR, made by a job: an ext4 root on DISK's first partition (LABEL=ROOT)
# with fstab, os-release, the host name and a shell
install_os() {
	check_args install_os "DIR DISK HOSTNAME" 3 3 "$@" &&
	cat >"$1/install.job" <<-EOF &&
	set -e
	echo "type=83" | sfdisk -q $2
	sleep 1
	mkfs.ext4 -q -L ROOT ${2}1
	mount ${2}1 /mnt
	mkdir -p /mnt/etc /mnt/bin /mnt/root
	echo "LABEL=ROOT / ext4 defaults 0 1" >/mnt/etc/fstab
	echo $3 >/mnt/etc/hostname
	printf 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n' >/mnt/etc/os-release
	cp /bin/busybox /mnt/bin/ls && cp /bin/busybox /mnt/bin/sh
	umount /mnt
	EOF
	vm -d "$1" @job install
}

# block FILE NAME: the code between <!-- NAME --> and <!-- /NAME -->,
# its 4-space Markdown indent removed
block() {
	check_args block "FILE NAME" 2 2 "$@" &&
	sed -n "/^<!-- $2 -->\$/,/^<!-- \\/$2 -->\$/p" "$1" |
		sed -n 's/^    //p'
}

# qwrite OFFSET SIZE: random bytes into the VM's qcow2 disk, as a
# guest's write (qemu-io keeps the disk's dirty bitmap, as QEMU does)
qwrite() {
	check_args qwrite "OFFSET SIZE" 2 2 "$@" &&
	head -c "$2" /dev/urandom >rnd.bin &&
	qemu-io -f qcow2 -c "write -s rnd.bin $1 $2" .work/disk-0.img >/dev/null
}

# records: how many records the writer guest (tests/data/autorun-writer)
# has written, by its console
records() {
	check_args records "no arguments" 0 0 "$@" &&
	grep -a "WRITER: [0-9]" .work/console.log | tail -n 1 | tr -dc 0-9
}
# writing N: the writer guest has written at least N records
writing() {
	check_args writing N 1 1 "$@" &&
	[ "$(records || echo 0)" -ge "$1" ] 2>/dev/null
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now
free_port() {
	check_args free_port "no arguments" 0 0 "$@"
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ssh_banner PORT: an SSH server greets on 127.0.0.1:PORT now (within
# 30 s: a guest still running cloud-init on a busy 2-core machine
# greets slowly, but one that has no sshd yet takes minutes)
ssh_banner() {
	check_args ssh_banner PORT 1 1 "$@"
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 30)
s.settimeout(30)
sys.exit(0 if s.recv(64).startswith(b"SSH-2.0-") else 1)' "$1"
}

# ---- container registries (t0015, t0026) ----

# registry PORT [tls]: start a registry on 127.0.0.1:PORT storing into
# ./registry, in the background (it ends with the test), its access log
# in registry.log; with tls, over HTTPS with ./certs/registry.crt and
# htpasswd users from ./htpasswd
registry() {
	check_args registry "PORT [tls]" 1 2 "$@" &&
	mkdir -p registry &&
	printf 'version: 0.1\nlog:\n  level: error\n' >registry.yml &&
	printf 'storage:\n  filesystem:\n    rootdirectory: %s/registry\n' "$PWD" >>registry.yml &&
	printf 'http:\n  addr: 127.0.0.1:%s\n' "$1" >>registry.yml &&
	if [ $# -eq 2 ]; then
		printf '  tls:\n    certificate: %s/certs/registry.crt\n    key: %s/certs/registry.key\n' "$PWD" "$PWD" >>registry.yml &&
		printf 'auth:\n  htpasswd:\n    realm: vm-test\n    path: %s/htpasswd\n' "$PWD" >>registry.yml
	fi &&
	{ docker-registry serve registry.yml >registry.log 2>&1 & } &&
	echo $! >registry.pid &&
	wait_for 30 listening "$1"
}

# listening PORT: something accepts connections on 127.0.0.1:PORT
listening() {
	check_args listening PORT 1 1 "$@" &&
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null &&
	exec 3>&-
}
not_listening() {
	check_args not_listening PORT 1 1 "$@" &&
	! listening "$1"
}

# certs: a CA of this test and a certificate for 127.0.0.1 it signed
certs() {
	check_args certs "no arguments" 0 0 "$@" &&
	mkdir -p certs &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=vm-test-ca \
		-keyout certs/ca.key -out certs/ca.crt 2>/dev/null &&
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
		-keyout certs/registry.key -out certs/registry.csr 2>/dev/null &&
	printf 'subjectAltName = IP:127.0.0.1\n' >certs/ext &&
	openssl x509 -req -in certs/registry.csr -CA certs/ca.crt \
		-CAkey certs/ca.key -CAcreateserial -days 2 -extfile certs/ext \
		-out certs/registry.crt 2>/dev/null
}

# auth_json FILE USER PASSWORD HOST: the containers' auth file format
auth_json() {
	check_args auth_json "FILE USER PASSWORD HOST" 4 4 "$@" &&
	mkdir -p "$(dirname "$1")" &&
	printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$4" \
		"$(printf '%s:%s' "$2" "$3" | base64 -w0)" >"$1"
}

# insecure PORT: the registry on 127.0.0.1:PORT is reached over HTTP
insecure() {
	check_args insecure PORT 1 1 "$@" &&
	printf "registry_insecure = 127.0.0.1:%s\n" "$1" >>"$XDG_CONFIG_HOME/vm.conf"
}
