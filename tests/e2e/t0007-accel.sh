#!/bin/bash
# --accel: how auto decides on a host without KVM, with a KVM that opens
# but does not run guests, and with one that works.  VM_KVM_DEVICE (see
# kvm_device in lib/qemu/qemu.c) stands in for /dev/kvm and a fake QEMU for the
# probe's outcome, so each path is taken whatever this host is; the last
# tests run the real probe with the real QEMU.
. "$(dirname "$0")/../lib.sh"

# fake_qemu: bin/qemu-system-x86_64 that appends its argv to $PWD/argv and
# exits 0; as the probe (it has isa-debug-exit) it does what $FAKE_PROBE
# says: pass (exit 85, as the probe guest does), fail (exit 1) or hang;
# with FAKE_SANDBOX=no it is a QEMU without seccomp (no -sandbox)
fake_qemu() {
	mkdir -p bin &&
	cat >bin/qemu-system-x86_64 <<-EOF &&
	#!/bin/sh
	printf '%s\n' "\$*" >>"$PWD/argv"
	case "\$FAKE_SANDBOX \$*" in
	"no "*-sandbox*-version*) exit 1 ;;
	esac
	case "\$*" in
	*isa-debug-exit*)
		case "\$FAKE_PROBE" in
		pass) exit 85 ;;
		hang) echo \$\$ >"$PWD/probe.pid"; exec sleep 60 ;;
		*) exit 1 ;;
		esac ;;
	esac
	EOF
	chmod +x bin/qemu-system-x86_64 &&
	: >argv &&
	export PATH=$PWD/bin:$PATH XDG_CACHE_HOME=$PWD/cache
}

# warnings FILE: how many warning lines vm wrote into FILE
warnings() {
	grep -c "^vm: warning:" "$1" || true
}

# probes: how many times the fake QEMU ran as the probe
probes() {
	grep -c isa-debug-exit argv || true
}

test_expect "no KVM device: TCG with one warning, no probe, nothing cached" '
	fake_qemu && vm --no-uefi @create T &&
	VM_KVM_DEVICE=$PWD/no-kvm vm --accel=auto @run 2>err &&
	contains err "^vm: warning: KVM is not available ($PWD/no-kvm: No such file or directory), using TCG$" &&
	test "$(warnings err)" -eq 1 &&
	test "$(probes)" -eq 0 && contains argv "accel=tcg" &&
	test ! -e cache/vm
'

test_expect "a chain warns once: TCG and an unconfined QEMU are said once a run" '
	fake_qemu && vm --no-uefi @create T &&
	VM_KVM_DEVICE=$PWD/no-kvm vm --accel=auto @run @run 2>err &&
	test "$(warnings err)" -eq 1 &&
	test "$(grep -c "accel=tcg" argv)" -eq 2 &&
	test "$(grep -c "accel=tcg.*-sandbox on,obsolete=deny" argv)" -eq 2 &&
	: >argv &&
	FAKE_SANDBOX=no VM_KVM_DEVICE=$PWD/no-kvm vm --accel=auto @run @run 2>err &&
	test "$(warnings err)" -eq 2 &&
	contains err "^vm: warning: qemu-system-x86_64 takes no -sandbox (built without seccomp): it runs unconfined$" &&
	test "$(grep -c "accel=tcg" argv)" -eq 2 &&
	test "$(grep -c "accel=tcg.*-sandbox" argv)" -eq 0
'

test_expect "a KVM that runs the probe: kvm, cached, no warning" '
	fake_qemu && vm --no-uefi @create T && : >kvm &&
	FAKE_PROBE=pass VM_KVM_DEVICE=$PWD/kvm vm --accel=auto @run 2>err &&
	test "$(warnings err)" -eq 0 && test "$(probes)" -eq 1 &&
	contains argv "^-nodefaults .*-machine pc,accel=kvm .*-device isa-debug-exit -drive file=$TMPDIR/vm-accel-probe\.[0-9]*,format=raw,if=ide$" &&
	contains argv "^-name T,process=vm-T .*-machine pc,accel=kvm -cpu host " &&
	contains .work/run-vm.sh "accel=kvm" &&
	test "$(cat cache/vm/accel-*)" = kvm &&
	test -z "$(ls "$TMPDIR" | grep accel-probe)" &&
	FAKE_PROBE=fail VM_KVM_DEVICE=$PWD/kvm vm --accel=auto @run 2>err &&
	test "$(warnings err)" -eq 0 && test "$(probes)" -eq 1 &&
	test "$(grep -c "accel=kvm -cpu host" argv)" -eq 2
'

test_expect "a KVM that fails the probe: TCG, one warning, the verdict cached" '
	fake_qemu && vm --no-uefi @create T && : >kvm &&
	FAKE_PROBE=fail VM_KVM_DEVICE=$PWD/kvm vm --accel=auto @run 2>err &&
	contains err "^vm: warning: KVM does not run guests on this host, using TCG$" &&
	test "$(warnings err)" -eq 1 && test "$(probes)" -eq 1 &&
	contains .work/run-vm.sh "accel=tcg" &&
	test "$(cat cache/vm/accel-*)" = tcg &&
	FAKE_PROBE=pass VM_KVM_DEVICE=$PWD/kvm vm --accel=auto @run 2>err &&
	contains err "^vm: warning: KVM does not run guests on this host (cached probe), using TCG$" &&
	test "$(warnings err)" -eq 1 && test "$(probes)" -eq 1 &&
	contains .work/run-vm.sh "accel=tcg"
'

test_expect "a probe that hangs is stopped after 4 s and means TCG" '
	fake_qemu && vm --no-uefi @create T && : >kvm &&
	start=$(date +%s) &&
	FAKE_PROBE=hang VM_KVM_DEVICE=$PWD/kvm vm --accel=auto @run 2>err &&
	took=$(($(date +%s) - start)) &&
	test $took -ge 4 && test $took -le 15 &&
	contains err "KVM does not run guests on this host, using TCG" &&
	test "$(warnings err)" -eq 1 &&
	test "$(cat cache/vm/accel-*)" = tcg &&
	! kill -0 "$(cat probe.pid)" 2>/dev/null
'

test_expect "a dry run neither probes nor caches" '
	fake_qemu && vm --no-uefi @create T && : >kvm &&
	FAKE_PROBE=pass VM_KVM_DEVICE=$PWD/kvm vm --dry-run --accel=auto @run >cmd 2>err &&
	contains err "KVM not probed yet (dry run), showing TCG" &&
	contains cmd "accel=tcg" && test "$(probes)" -eq 0 && test ! -e cache/vm
'

test_expect "--accel=kvm: a missing device is one clear error, an open one is kvm" '
	fake_qemu && vm --no-uefi -D AHCI=1G @create T && : >kvm &&
	export VM_KVM_DEVICE=$PWD/no-kvm &&
	must_fail 1 vm --accel=kvm @run 2>err &&
	contains err "^vm: cannot run T: KVM is not usable ($PWD/no-kvm: No such file or directory); try --accel=auto or tcg$" &&
	test "$(grep -c "KVM" err)" -eq 1 && test "$(warnings err)" -eq 0 &&
	printf "true\n" >quick.job &&
	must_fail 1 vm --dry-run --accel=kvm @job quick 2>err &&
	contains err "^vm: cannot start the rescue for T: KVM is not usable" &&
	test "$(grep -c "KVM" err)" -eq 1 &&
	test ! -s argv &&
	VM_KVM_DEVICE=$PWD/kvm vm --accel=kvm @run 2>err &&
	test "$(probes)" -eq 0 && contains argv "accel=kvm -cpu host" &&
	test "$(warnings err)" -eq 0
'

test_expect "the probe guest reaches long mode and exits 85 under the real QEMU" '
	rc=0 &&
	{ timeout 60 qemu-system-x86_64 -nodefaults -display none \
		-machine pc,accel=tcg -m 16 -device isa-debug-exit \
		-drive file="$TOP/build/lib/qemu/accel-probe.bin",format=raw,if=ide ||
		rc=$?; } &&
	test $rc -eq 85
'

test_expect "--accel=auto with the real QEMU and /dev/kvm: the verdict fits this host" '
	export XDG_CACHE_HOME=$PWD/cache &&
	vm --no-uefi @create T &&
	must_fail 1 vm --accel=auto -t 3 @run 2>err &&
	contains err "timeout of 3 s expired" &&
	accel=$(sed -n "s/.*-machine pc,accel=\([a-z]*\).*/\1/p" .work/run-vm.sh) &&
	if [ ! -e /dev/kvm ]; then
		test "$accel" = tcg &&
		contains err "^vm: warning: KVM is not available (/dev/kvm: No such file or directory), using TCG$" &&
		test ! -e cache/vm
	elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		test "$accel" = tcg &&
		contains err "^vm: warning: KVM is not available (/dev/kvm: " &&
		test ! -e cache/vm
	else
		test "$(cat cache/vm/accel-*)" = "$accel" &&
		if [ "$accel" = tcg ]; then
			contains err "^vm: warning: KVM does not run guests on this host, using TCG$"
		else
			test "$(warnings err)" -eq 0
		fi
	fi &&
	test "$(warnings err)" -le 1 &&
	test -z "$(ls "$TMPDIR" | grep accel-probe)"
'

test_expect "a KVM device that opens, with the real QEMU: the real probe decides" '
	export XDG_CACHE_HOME=$PWD/cache &&
	vm --no-uefi @create T && : >kvm &&
	must_fail 1 env VM_KVM_DEVICE=$PWD/kvm "$VM_BIN" --accel=auto -t 3 @run 2>err &&
	verdict=$(cat cache/vm/accel-*) &&
	contains .work/run-vm.sh "accel=$verdict" &&
	if [ "$verdict" = tcg ]; then
		contains err "^vm: warning: KVM does not run guests on this host, using TCG$"
	else
		test -r /dev/kvm && test -w /dev/kvm && test "$(warnings err)" -eq 0
	fi &&
	if [ ! -e /dev/kvm ]; then test "$verdict" = tcg; fi &&
	test "$(warnings err)" -le 1 &&
	test -z "$(ls "$TMPDIR" | grep accel-probe)"
'

test_done
