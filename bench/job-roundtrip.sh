#!/bin/bash
# How long a trivial @job takes, start to exit, against
#   bare:      the same rescue kernel+initramfs and QEMU command (the
#              run-rescue.sh @job wrote), started by hand to power-off
#   guestfish: guestfish -a DISK run (the libguestfs appliance) on the
#              same disk
# Each is run N times (default 5) after one warm-up; the table shows the
# median and the ratio to bare.  Then one more @job, with QEMU started
# through a wrapper that notes the time, shows where its time goes: the
# host's clock before QEMU and after power-off, the guest's /proc/uptime
# (rescue/guest/init and stage3 write TIMES) for the boot stages, and the
# host mtimes of STARTED and TIMES (QEMU writes them) to put the two
# clocks side by side.  GUESTFISH=0 leaves guestfish out.  Needs: make rescue; for guestfish the
# packages libguestfs-tools and linux-image-amd64 (supermin builds its
# appliance from the host kernel).  Uses TCG where KVM does not work,
# for all three alike.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/vm
n=${N:-5}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vm-bench.XXXXXX")
# (|| true: under set -e a pkill that finds nothing would end the trap
# before the rm, and the script with status 1)
trap 'pkill -f "qemu-system.*$scratch" 2>/dev/null || true; rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
cd "$scratch"

"$vm" -q --no-uefi -p '' -D AHCI=1G @create bench >/dev/null
echo true >noop.job
"$vm" -q @job noop >/dev/null	# warm-up: extracts the rescue kernel
accel=tcg
grep -q accel=kvm .work/run-rescue.sh && accel=kvm

now() { date +%s.%N; }
# median of N timings of a command
measure() {
	local i t0 t1
	for ((i = 0; i < n; i++)); do
		t0=$(now)
		"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
		t1=$(now)
		echo "$t1 - $t0" | awk '{ printf "%.3f\n", $1 - $3 }'
	done | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

bare() {
	rm -rf .work/.in .work/.out
	mkdir -p .work/.in .work/.out
	cp noop.job .work/.in/job.sh
	sh .work/run-rescue.sh
	test "$(cat .work/.out/STATUS)" = 0
}

t_vm=$(measure "$vm" -q @job noop)
t_bare=$(measure bare)
t_gf=
if [ "${GUESTFISH:-1}" != 0 ] && command -v guestfish >/dev/null; then
	gf() {
		LIBGUESTFS_BACKEND=direct \
		LIBGUESTFS_BACKEND_SETTINGS=$([ $accel = tcg ] && echo force_tcg) \
			guestfish --ro --format=qcow2 -a .work/disk-0.img run
	}
	gf >/dev/null 2>&1 || true	# warm-up: supermin appliance
	t_gf=$(measure gf)
fi

printf '\n%s, %s, N=%d, median seconds\n\n' "$(nproc) cores" "$accel" "$n"
printf '| what | seconds | vs bare |\n|---|---|---|\n'
ratio() { awk -v a="$1" -v b="$t_bare" 'BEGIN { printf "%.2f", a / b }'; }
printf '| bare QEMU boot to power-off | %s | 1.00 |\n' "$t_bare"
printf '| vm @job (trivial job) | %s | %s |\n' "$t_vm" "$(ratio "$t_vm")"
if [ -n "$t_gf" ]; then
	printf '| guestfish -a DISK run | %s | %s |\n' "$t_gf" "$(ratio "$t_gf")"
elif [ "${GUESTFISH:-1}" = 0 ]; then
	printf '| guestfish -a DISK run | not run (GUESTFISH=0) | |\n'
else
	printf '| guestfish -a DISK run | not installed | |\n'
fi

# --- where the time of one @job goes ---
real_qemu=$(command -v qemu-system-x86_64)
mkdir -p wrap
# It notes when QEMU starts, and when SeaBIOS writes the first byte of
# its log to the debug port (0x402), which is when the firmware runs: a
# FIFO in its place, read on by the same process till QEMU closes it
# (fw.start only when a byte came; at most 5 minutes, should QEMU never
# open it).
cat >wrap/qemu-system-x86_64 <<EOF
#!/bin/sh
case "\$*" in
*rescue-console.log*)
	date +%s.%N >"$scratch/qemu-start"
	rm -f "$scratch/fw"
	mkfifo "$scratch/fw"
	timeout 300 sh -c '{ head -c 1 >"\$1.byte" && [ -s "\$1.byte" ] &&
		date +%s.%N >"\$1.start"; cat >/dev/null; } <"\$1"' \\
		sh "$scratch/fw" >/dev/null 2>&1 &
	set -- "\$@" -chardev file,id=fwlog,path="$scratch/fw" \\
		-device isa-debugcon,iobase=0x402,chardev=fwlog
	;;
esac
exec "$real_qemu" "\$@"
EOF
chmod 755 wrap/qemu-system-x86_64
rm -f qemu-start fw.start fw.byte
t0=$(now)
# --accel: the wrapper is another QEMU binary to the probe's cache
PATH=$scratch/wrap:$PATH "$vm" -q --accel=$accel @job noop >/dev/null
t_end=$(now)
out=.work/.out
[ -f qemu-start ] && [ -f $out/TIMES ] && [ -f $out/STARTED ] || {
	echo "the instrumented @job left no qemu-start, TIMES or STARTED" >&2
	exit 1
}
printf '\nWhere the time of one @job goes, seconds\n\n'
fw=
[ ! -f fw.start ] || fw=$(cat fw.start)
awk -v t0="$t0" -v t_end="$t_end" -v q0="$(cat qemu-start)" -v fw="$fw" \
    -v m_started="$(stat -c %.9Y $out/STARTED)" \
    -v m_times="$(stat -c %.9Y $out/TIMES)" '
	{ u[$1] = $2 }
	function row(what, s) { printf "| %s | %.2f |\n", what, s; sum += s }
	END {
		# the host time of the guest clock zero, from STARTED
		k = m_started - u["job"]
		print "| stage | seconds |"
		print "|---|---|"
		row("vm before QEMU starts", q0 - t0)
		if (fw != "") {
			row("QEMU start to firmware", fw - q0)
			row("firmware to kernel (loading kernel and initramfs)", k - fw)
		} else {
			row("QEMU start to kernel (firmware, loading kernel and initramfs)", k - q0)
		}
		row("kernel to /init (initramfs unpacked)", u["init"])
		row("/init: drivers for the shares (virtio, 9p)", u["modules"] - u["init"])
		row("/init: mounting the shares", u["shares"] - u["modules"])
		row("waiting for the disk and network drivers", u["devices"] - u["shares"])
		row("network start", u["job"] - u["devices"])
		row("the job", u["jobend"] - u["job"])
		row("job end to power-off (STATUS, sync)", u["off"] - u["jobend"])
		row("power-off to vm exit", t_end - m_times)
		printf "| sum of the parts | %.2f |\n", sum
		printf "| wall time | %.2f |\n", t_end - t0
	}' $out/TIMES
