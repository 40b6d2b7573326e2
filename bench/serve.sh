#!/bin/bash
# bench/serve.sh: vm serve under load, side by side with a static file
# server, in one run:
#
#   20 VM directories, 2 of them running (QEMU with an empty disk, so
#   their guests cost no CPU), served by `vm serve`; wrk with 100
#   connections reads /v1/vms for DURATION seconds (default 30): requests
#   per second, p50 and p99 latency, and vm serve's peak RSS; then the
#   same load while one VM is killed and started again and again through
#   the API (POST .../kill, .../start with a token, a second apart); then
#   the same load
#   on `python3 -m http.server` serving a copy of that answer as a static
#   file (what a hand-made status page would be)
#
#   DURATION=30 bench/serve.sh
#
# Needs ./vm, wrk, curl, python3, QEMU.  Works in a scratch directory
# under $TMPDIR, servers on 127.0.0.1, all removed at the end.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
VM=$TOP/vm
DURATION=${DURATION:-30}
for p in wrk curl python3; do
	command -v "$p" >/dev/null || { echo "bench: $p is not installed" >&2; exit 2; }
done
[ -x "$VM" ] || { echo "bench: build ./vm first (make)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/vm-bench-serve.XXXXXX")
PIDS=()
cleanup() {
	for d in "$W"/vms/run*; do
		[ -d "$d" ] && "$VM" -q -d "$d" @kill 2>/dev/null || :
	done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || :; done
	rm -rf "$W"
}
trap cleanup EXIT
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_CACHE_HOME=$W/cache TMPDIR=$W/tmp
mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$TMPDIR" "$W/vms"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; return 1; }

echo "bench: 20 VM directories, 2 running" >&2
for i in $(seq -w 1 18); do
	"$VM" -q -d "$W/vms/vm$i" --no-uefi -p '' -D VIRT=64M @create "V$i"
done
for i in 1 2; do
	"$VM" -q -d "$W/vms/run$i" --no-uefi -p '' -m 128M -D VIRT=64M @create "R$i"
	"$VM" -q -d "$W/vms/run$i" @start
done

# load PORT: "requests/s p50 p99" of wrk on /v1/vms (or /vms.json)
load() {
	wrk -t2 -c100 -d"${DURATION}s" --latency "http://127.0.0.1:$1$2" >"$W/wrk.out"
	awk '/Requests\/sec/ { r = $2 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
		END { print r, p50, p99 }' "$W/wrk.out"
}

# a token for the control run
tok=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'bench %s\n' "$(printf %s "$tok" | sha256sum | cut -c1-64)" >"$W/tokens"
chmod 600 "$W/tokens"
printf '[serve]\ncontrol_from = 127.0.0.1\ntokens = %s/tokens\n' "$W" >"$XDG_CONFIG_HOME/vm.conf"

port=$(free_port)
"$VM" serve --listen="127.0.0.1:$port" "$W/vms" 2>"$W/serve.log" &
SPID=$!
PIDS+=("$SPID")
wait_up "$port"
echo "bench: vm serve, $DURATION s" >&2
read -r vr vp50 vp99 < <(load "$port" /v1/vms)
rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$SPID/status")
# the same while run1 is stopped and started again through the API (a
# second between the requests: a VM in use, not a loop of starts)
echo "bench: vm serve, $DURATION s, run1 stopped and started through the API meanwhile" >&2
ctl() { curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $tok" \
	"http://127.0.0.1:$port/v1/vms/run1/$1"; }
(
	end=$((SECONDS + DURATION - 2))
	n=0
	while [ "$SECONDS" -lt "$end" ]; do
		[ "$(ctl kill)" = 200 ] && sleep 1 &&
			[ "$(ctl start)" = 200 ] && sleep 1 && n=$((n + 1))
	done
	echo "$n" >"$W/cycles"
) &
read -r cr cp50 cp99 < <(load "$port" /v1/vms)
wait $!
cycles=$(cat "$W/cycles")
rss2=$(awk '/^VmHWM/ { print $2 }' "/proc/$SPID/status")
mkdir -p "$W/static"
curl -s "http://127.0.0.1:$port/v1/vms" >"$W/static/vms.json"
n=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$W/static/vms.json")

pport=$(free_port)
(cd "$W/static" && exec python3 -m http.server --bind 127.0.0.1 "$pport" >/dev/null 2>&1) &
PIDS+=("$!")
wait_up "$pport"
echo "bench: python3 -m http.server, $DURATION s" >&2
read -r pr pp50 pp99 < <(load "$pport" /vms.json)

printf '\n%s VMs, wrk -t2 -c100 -d%ss, one run\n\n' "$n" "$DURATION"
printf '| server | requests/s | p50 | p99 | peak RSS |\n|---|---|---|---|---|\n'
printf '| vm serve, /v1/vms | %s | %s | %s | %s MiB |\n' "$vr" "$vp50" "$vp99" "$((rss / 1024))"
printf '| vm serve, /v1/vms, a VM killed and started %s times through the API meanwhile | %s | %s | %s | %s MiB |\n' "$cycles" "$cr" "$cp50" "$cp99" "$((rss2 / 1024))"
printf '| python3 -m http.server, the same answer as a file | %s | %s | %s | |\n' "$pr" "$pp50" "$pp99"
