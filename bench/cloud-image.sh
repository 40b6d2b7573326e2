#!/bin/bash
# bench/cloud-image.sh: from a cached cloud image to an SSH login, side
# by side with what a user would do instead, in one run:
#
#   create: `vm @create X NAME` of a catalogue image already in the
#           download cache (a qcow2 overlay on it, its SHA-256 checked
#           again), against `cp` of the image and against the overlay
#           made by hand (`qemu-img create -b`), and the image's SHA-256
#           by `openssl dgst` (the library vm uses): what each @create
#           paid before the digest was kept in the cache's .meta
#   boot:   `vm @create X NAME @start` on a new directory until @start
#           returns (sshd answers), split into the guest's own boot
#           (QEMU's process start to the first SSH banner a poller of
#           our own sees on the forwarded port) and what vm adds
#           (before QEMU starts, and from the banner until @start
#           returns); the target is at most 5 s added
#
#   N=3 bench/cloud-image.sh
#
# N runs of each (default 3), medians.  The image is the tests' Debian
# 12 with cloud-init (tests/data/cloud-image.sh, made once into
# build/test-cache/cloud-image; that needs root and Debian's archive),
# served on 127.0.0.1 and named in a catalogue of the bench's own.
# VM_ACCEL (default: what vm picks) is the accelerator; under TCG one
# first boot takes one to two minutes.  Works in a scratch directory
# under $TMPDIR, removed at the end with every VM it started.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
VM=$TOP/vm
N=${N:-3}
IMGDIR=${IMGDIR:-$TOP/build/test-cache/cloud-image}
for p in qemu-img python3 ssh-keygen xorriso curl openssl; do
	command -v "$p" >/dev/null || { echo "bench: $p is not installed" >&2; exit 2; }
done
[ -x "$VM" ] || { echo "bench: build ./vm first (make)" >&2; exit 2; }
# the script returns at once when the image is there and made by its
# current version; under t0028's lock
[ -f "$IMGDIR/debian-12-test.qcow2" ] ||
	echo "bench: making the test image (tests/data/cloud-image.sh, 5-10 minutes)" >&2
mkdir -p "$(dirname "$IMGDIR")"
flock -w 1800 "$(dirname "$IMGDIR")/cloud-image.lock" \
	bash "$TOP/tests/data/cloud-image.sh" "$IMGDIR"
W=$(mktemp -d "${TMPDIR:-/tmp}/vm-bench-cloud.XXXXXX")
HTTPD=
POLL=
cleanup() {
	local d
	for d in "$W"/vms/*/; do
		[ -d "$d" ] && "$VM" -q -d "$d" @kill >/dev/null 2>&1 || :
	done
	[ -z "$POLL" ] || kill "$POLL" 2>/dev/null || :
	[ -z "$HTTPD" ] || kill "$HTTPD" 2>/dev/null || :
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_CACHE_HOME=$W/cache
export TMPDIR=$W/tmp
mkdir -p "$XDG_CONFIG_HOME/vm" "$XDG_CACHE_HOME" "$HOME/.ssh" "$TMPDIR" "$W/vms"
printf '[rescue]\nboot_timeout = 900\n[vm]\nport =\nmemory = 1G\n%s' \
	"${VM_ACCEL:+accel = $VM_ACCEL
}" >"$XDG_CONFIG_HOME/vm.conf"
ssh-keygen -q -t ed25519 -N "" -f "$HOME/.ssh/id_ed25519"
# a plain web server, as a mirror is: Last-Modified and 304 answers
# (the tests' httpd.py hashes the whole file for its ETag each time)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hport=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$IMGDIR" "$hport" >"$W/httpd.log" 2>&1 &
HTTPD=$!
URL=http://127.0.0.1:$hport
for _ in $(seq 100); do curl -s -o /dev/null "$URL/SHA256SUMS" && break; sleep 0.1; done
printf '[bench]\nabout = Debian 12 with cloud-init, made by the tests\nurl = %s\nsums = %s\nfirmware = uefi\nuser = debian\n' \
	"$URL/debian-12-test.qcow2" "$URL/SHA256SUMS" >"$XDG_CONFIG_HOME/vm/images.conf"

now() { echo "$EPOCHREALTIME"; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# The wall-clock time a process started, from /proc (seconds).
started_at() {
	python3 - "$1" <<'EOF'
import os, sys, time
tick = os.sysconf("SC_CLK_TCK")
with open("/proc/%s/stat" % sys.argv[1]) as f:
    start = int(f.read().rsplit(")", 1)[1].split()[19])
with open("/proc/uptime") as f:
    up = float(f.read().split()[0])
print("%.3f" % (time.time() - up + start / tick))
EOF
}

echo "bench: one download into the cache" >&2
"$VM" -q -d "$W/vms/warm" @create warm bench
"$VM" -q -d "$W/vms/warm" @destroy
rm -rf "$W/vms/warm"
img=$(ls "$XDG_CACHE_HOME"/vm/downloads/*debian-12-test.qcow2 2>/dev/null | head -n 1)
[ -n "$img" ] || img=$(find "$XDG_CACHE_HOME/vm/downloads" -type f -size +100M | head -n 1)
size=$(stat -c %s "$img")

echo "bench: @create from the cache, $N times each" >&2
: >"$W/c.vm"; : >"$W/c.cp"; : >"$W/c.ovl"; : >"$W/c.sum"
for i in $(seq "$N"); do
	sync
	t=$(now); "$VM" -q -d "$W/vms/c$i" @create "c$i" bench; since "$t" >>"$W/c.vm"
	t=$(now); cp "$img" "$W/copy.qcow2"; sync "$W/copy.qcow2"; since "$t" >>"$W/c.cp"
	rm -f "$W/copy.qcow2"
	t=$(now); qemu-img create -q -f qcow2 -b "$img" -F qcow2 "$W/ovl.qcow2" 30G; since "$t" >>"$W/c.ovl"
	rm -f "$W/ovl.qcow2"
	t=$(now); openssl dgst -sha256 "$img" >/dev/null; since "$t" >>"$W/c.sum"
	"$VM" -q -d "$W/vms/c$i" @destroy; rm -rf "$W/vms/c$i"
done

echo "bench: @create + @start until sshd answers, $N times" >&2
: >"$W/b.total"; : >"$W/b.guest"; : >"$W/b.added"; : >"$W/b.before"; : >"$W/b.after"
for i in $(seq "$N"); do
	port=$(free_port)
	# the poller: the first SSH banner on the port, its time
	python3 - "$port" >"$W/banner" <<'EOF' &
import socket, sys, time
port = int(sys.argv[1])
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), 1)
        s.settimeout(1)
        if s.recv(64).startswith(b"SSH-2.0-"):
            print("%.3f" % time.time())
            break
    except OSError:
        pass
    time.sleep(0.05)
EOF
	POLL=$!
	d=$W/vms/b$i
	t0=$(now)
	"$VM" -q -d "$d" -f "tcp:127.0.0.1:$port-:22" @create "b$i" bench @start
	t1=$(now)
	wait "$POLL"; POLL=
	qpid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["qemu_pid"])' "$d/run.json")
	tq=$(started_at "$qpid")
	tb=$(cat "$W/banner")
	python3 - "$t0" "$tq" "$tb" "$t1" "$W" <<'EOF'
import sys
t0, tq, tb, t1 = (float(x) for x in sys.argv[1:5])
w = sys.argv[5]
for name, v in (("total", t1 - t0), ("guest", tb - tq), ("before", tq - t0),
                ("after", t1 - tb), ("added", (tq - t0) + (t1 - tb))):
    with open("%s/b.%s" % (w, name), "a") as f:
        f.write("%.2f\n" % v)
EOF
	accel=$(tr '\0' ' ' <"/proc/$qpid/cmdline" | grep -o 'accel[= ][a-z]*' | head -n 1 || :)
	"$VM" -q -d "$d" @ssh true
	"$VM" -q -d "$d" @kill
done

printf '\nimage: %s, %d MiB; %s; N=%d (medians, seconds)\n' "${img##*/}" \
	$((size >> 20)) "${accel:-accel as vm picks}" "$N"
printf '%-44s %8s\n' "what" "seconds"
printf '%-44s %8s\n' "vm @create (cached image)" "$(median <"$W/c.vm")"
printf '%-44s %8s\n' "SHA-256 of the image (openssl dgst)" "$(median <"$W/c.sum")"
printf '%-44s %8s\n' "qemu-img create -b (the overlay by hand)" "$(median <"$W/c.ovl")"
printf '%-44s %8s\n' "cp of the image" "$(median <"$W/c.cp")"
printf '%-44s %8s\n' "vm @create @start, until sshd answers" "$(median <"$W/b.total")"
printf '%-44s %8s\n' "  the guest: QEMU start to SSH banner" "$(median <"$W/b.guest")"
printf '%-44s %8s\n' "  vm: before QEMU starts" "$(median <"$W/b.before")"
printf '%-44s %8s\n' "  vm: from the banner until @start returns" "$(median <"$W/b.after")"
printf '%-44s %8s\n' "  vm added (target: at most 5)" "$(median <"$W/b.added")"
