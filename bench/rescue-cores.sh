#!/bin/bash
# bench/rescue-cores.sh: @job with a rescue of 1 vCPU against one of 2,
# under TCG (as on a machine without working KVM), in one run:
#   alone:     one @job at a time
#   two:       two @jobs at once (two VMs), as CI runners and the test
#              suite run them
# and two jobs: "noop" (true: the boot and the round trip) and "busy"
# (two CPU-bound processes in the guest, the case a second vCPU is for).
# N runs of each (default 5), medians in seconds.  Needs ./vm and the
# rescue image (make rescue).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/vm
n=${N:-5}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vm-bench-cores.XXXXXX")
trap 'pkill -f "qemu-system.*$scratch" 2>/dev/null || true; rm -rf "$scratch"' EXIT
export TMPDIR=$scratch HOME=$scratch/home XDG_CONFIG_HOME=$scratch/home/.config
export XDG_CACHE_HOME=$scratch/cache
mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME"
cd "$scratch"
for v in a b; do
	mkdir "$v"
	(cd "$v" && "$vm" -q --no-uefi -p '' -D AHCI=1G @create "$v" >/dev/null &&
		echo true >noop.job &&
		printf '%s\n' 'for i in 1 2; do head -c 150M /dev/zero | sha256sum & done; wait' >busy.job)
done

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
job() {
	"$vm" -q --accel=tcg -d "$1" @job "$2" >/dev/null 2>&1 ||
		{ echo "failed: @job $2 in $1" >&2; exit 1; }
}
# alone CORES JOB / two CORES JOB: one timing
alone() {
	local t0
	t0=$(now)
	job a "$2"
	echo "$(now) $t0" | awk '{ printf "%.2f\n", $1 - $2 }'
}
two() {
	local t0 p
	t0=$(now)
	job a "$2" & p=$!
	job b "$2"
	wait "$p"
	echo "$(now) $t0" | awk '{ printf "%.2f\n", $1 - $2 }'
}

printf '| job | load | 1 vCPU | 2 vCPUs |\n|---|---|---|---|\n'
for j in noop busy; do
	for load in alone two; do
		row="| $j | $load"
		for cores in 1 2; do
			printf '[rescue]\ncores = %s\n' "$cores" >"$XDG_CONFIG_HOME/vm.conf"
			job a noop	# warm-up: the rescue's kernel taken once
			row="$row | $(for _ in $(seq "$n"); do "$load" "$cores" "$j"; done | median)"
		done
		echo "$row |"
	done
done
