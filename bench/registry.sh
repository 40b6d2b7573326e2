#!/bin/bash
# bench/registry.sh: @push and @pull against a local Docker Distribution
# (Debian's docker-registry), side by side with what a user would do
# instead, in one run:
#
#   push: `vm @push` of a 5-snapshot chain into an empty repository,
#         against `curl -T` of the same five archives to the same
#         registry's blob upload (POST, then PUT ?digest=, the digests
#         known beforehand) into another one; vm's first push also reads
#         each archive for its digests (cold), a later one has them kept
#         (warm)
#   incremental: the bytes `@push` sends for S5 when S0..S4 are there,
#         against S5's archive
#   pull: `vm @pull` into a VM without those snapshots (download only)
#         and into an empty directory (which also restores the VM),
#         against `skopeo copy docker://... oci:DIR` of the same image
#
#   N=3 SIZE=64M bench/registry.sh
#
# N runs of each (default 3), medians; SIZE: the random data each
# snapshot adds (default 64M).  Needs ./vm, docker-registry, skopeo,
# curl, qemu-io.  Works in a scratch directory under $TMPDIR, the
# registry on 127.0.0.1 (a free port), removed at the end.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
VM=$TOP/vm
N=${N:-3}
SIZE=${SIZE:-64M}
for p in docker-registry skopeo curl qemu-io; do
	command -v "$p" >/dev/null || { echo "bench: $p is not installed" >&2; exit 2; }
done
[ -x "$VM" ] || { echo "bench: build ./vm first (make)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/vm-bench-registry.XXXXXX")
REG_PID=
cleanup() {
	[ -z "$REG_PID" ] || kill "$REG_PID" 2>/dev/null || :
	rm -rf "$W"
}
trap cleanup EXIT
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_CACHE_HOME=$W/cache TMPDIR=$W/tmp
mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$TMPDIR"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
R=127.0.0.1:$port
printf '[vm]\nregistry_insecure = %s\n' "$R" >"$XDG_CONFIG_HOME/vm.conf"
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: %s\n' \
	"$W" "$R" >"$W/registry.yml"
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
	curl -s -o /dev/null "http://$R/v2/" && break
	sleep 0.1
done

now() { echo "$EPOCHREALTIME"; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mb() { python3 -c "import sys; print('%.0f' % (int(sys.argv[1]) / 1048576 / float(sys.argv[2])))" "$1" "$2"; }

echo "bench: making a chain of 6 snapshots, $SIZE of random data each" >&2
mkdir "$W/src" && cd "$W/src"
"$VM" -q --no-uefi -p '' -D VIRT=4G @create B
bytes=$(numfmt --from=iec "$SIZE")
for i in 0 1 2 3 4 5; do
	head -c "$bytes" /dev/urandom >"$W/rnd"
	qemu-io -f qcow2 -c "write -s $W/rnd $((i * bytes)) $bytes" .work/disk-0.img >/dev/null
	"$VM" -q @backup
done
rm -f "$W/rnd"
chain=$(cat backups/S[0-4].tar.gz | wc -c)

# one push of S0..S4 into a new repository; cold: the digests not kept
push_vm() {
	local repo=$1 cold=$2 t
	rm -f backups/.pushed
	[ "$cold" = 0 ] || rm -f backups/.S*.digests
	t=$(now)
	"$VM" -q @push "$R/$repo:v1" S4
	since "$t"
}
push_curl() {
	local repo=$1 t f loc
	t=$(now)
	for f in backups/S[0-4].tar.gz; do
		loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/$repo/blobs/uploads/" |
			sed -n 's/^[Ll]ocation: //p' | tr -d '\r')
		curl -s -f -o /dev/null -T "$f" -H 'Content-Type: application/octet-stream' \
			"$loc&digest=sha256:${digests[$f]}"
	done
	since "$t"
}
declare -A digests
for f in backups/S[0-4].tar.gz; do
	digests[$f]=$(sha256sum <"$f" | cut -c1-64)
done

echo "bench: push, $N runs each" >&2
for k in $(seq "$N"); do
	push_vm "cold$k" 1 >>"$W/t.vm-cold"
	push_vm "warm$k" 0 >>"$W/t.vm-warm"
	push_curl "curl$k" >>"$W/t.curl"
done
vc=$(median <"$W/t.vm-cold") vw=$(median <"$W/t.vm-warm") cu=$(median <"$W/t.curl")

echo "bench: incremental push of S5" >&2
rm -f backups/.pushed
"$VM" --json @push "$R/warm1:v2" S5 >"$W/inc.json" 2>/dev/null
sent=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["result"]["sent"])' "$W/inc.json")
s5=$(wc -c <backups/S5.tar.gz)

echo "bench: pull, $N runs each" >&2
for k in $(seq "$N"); do
	rm -rf "$W/oci" "$W/into" "$W/empty"
	t=$(now)
	skopeo copy -q --src-tls-verify=false "docker://$R/warm1:v1" "oci:$W/oci:v1"
	since "$t" >>"$W/t.skopeo"
	mkdir "$W/into" && (cd "$W/into" && "$VM" -q --no-uefi -p '' -D VIRT=4G @create P)
	t=$(now)
	"$VM" -q -d "$W/into" @pull "$R/warm1:v1"
	since "$t" >>"$W/t.pull"
	t=$(now)
	"$VM" -q -d "$W/empty" @pull "$R/warm1:v1"
	since "$t" >>"$W/t.pull-empty"
done
sk=$(median <"$W/t.skopeo") pl=$(median <"$W/t.pull") pe=$(median <"$W/t.pull-empty")

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
printf '\nchain S0..S4: %s bytes; medians of %s runs\n\n' "$chain" "$N"
printf '| what | seconds | MiB/s | against | ratio (throughput) |\n|---|---|---|---|---|\n'
printf '| curl -T, 5 blob uploads | %s | %s | | |\n' "$cu" "$(mb "$chain" "$cu")"
printf '| vm @push, digests kept (warm) | %s | %s | curl -T | %s |\n' "$vw" "$(mb "$chain" "$vw")" "$(ratio "$cu" "$vw")"
printf '| vm @push, digests read (cold) | %s | %s | curl -T | %s |\n' "$vc" "$(mb "$chain" "$vc")" "$(ratio "$cu" "$vc")"
printf '| skopeo copy to an OCI layout | %s | %s | | |\n' "$sk" "$(mb "$chain" "$sk")"
printf '| vm @pull into a VM (download) | %s | %s | skopeo copy | %s |\n' "$pl" "$(mb "$chain" "$pl")" "$(ratio "$sk" "$pl")"
printf '| vm @pull into an empty directory (+ restore) | %s | %s | skopeo copy | %s |\n' "$pe" "$(mb "$chain" "$pe")" "$(ratio "$sk" "$pe")"
printf '\nincremental: @push of S5 on S0..S4 sent %s bytes; S5 is %s bytes (%s times)\n' \
	"$sent" "$s5" "$(ratio "$sent" "$s5")"
