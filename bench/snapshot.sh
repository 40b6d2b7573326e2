#!/bin/bash
# Snapshot speed and size against the plain tools, at the same gzip level:
#   1. a 1 GiB raw ext4 image with realistic content (system libraries,
#      documentation, some random data), made with mkfs.ext4 -d:
#        vm @backup / @restore
#        tar -cSf - | pigz  /  pigz -d | tar -xSf -
#        the reference's per-file pigz -9 (and unpigz)
#   2. a 20 GiB raw image holding 200 MiB of data: vm @backup against
#      pigz over the whole file.
#   3. SHA-256, which every MANIFEST needs: the old lib/sha256.c against
#      libcrypto (bench/sha256.sh).
#   4. incremental snapshots on a 2 GiB raw ext4 image with 1.5 GiB
#      allocated: a full @backup against tar -cS | pigz, @restore against
#      pigz -d | tar -xS of the same archive, an incremental @backup after
#      1% of the data was rewritten (as 64 KiB writes at random places,
#      a guest's), and the restore of a 5-deep chain against a full
#      snapshot of the same disk.
#   5. where @restore's time goes, on part 1's image: pigz -d alone, the
#      plain tools and vm @restore of the same archive, and perf's CPU
#      samples of one @restore by process and by function (needs perf).
#   6. live snapshots of a running VM (the rescue image as its guest, a
#      qcow2 disk with 2, 4 and 8 GiB allocated, half random, half text):
#      a full @backup stopped and running, the guest's pause, and an
#      incremental one after 80 MiB were rewritten at random places
#      (64 KiB writes through QEMU, as the guest's go), running and
#      stopped.  LIVE_SIZES (default "2 4 8") sets the sizes in GiB.
#   7. incremental by dirty bitmap against by digests, on part 6's disks
#      and change (80 MiB rewritten at random places): after the change
#      by the running guest (a live @backup), after it and a clean end of
#      QEMU (QMP quit, as @stop ends a guest that ignores its power
#      button), and after a @job that wrote it; each also with the bitmap taken
#      away (the digest way, as before); the seconds and the bytes read
#      from the disk (read_bytes of /proc/PID/io, the disk file's pages
#      dropped from the page cache first) against a full @backup; by
#      bitmap the median of RUNS changes and @backups.  Uses LIVE_SIZES
#      too.
# Prints Markdown tables.  LEVEL (default 6) and RUNS (default 3; the
# median is shown) can be set; PARTS (default "1 2 3 4 5") picks parts.
# Needs pigz, e2fsprogs; takes minutes.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vm=$top/vm
level=${LEVEL:-6}
runs=${RUNS:-3}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vm-bench-snap.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
cd "$scratch"

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# time_of CMD...: median wall time of RUNS runs
time_of() {
	local i t0 t1
	for ((i = 0; i < runs; i++)); do
		sync
		t0=$(now)
		"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
		t1=$(now)
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
	done | median
}
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

parts=${PARTS:-1 2 3 4 5}
part() { [[ " $parts " == *" $1 "* ]]; }

# content MIB: about MIB MiB of libraries (binary), documentation (text)
# and 64 MiB of random data in ./content
content() {
	local want=$1 n=0
	mkdir -p content/lib content/doc
	cp -a /usr/share/doc/. content/doc/ 2>/dev/null || true
	head -c $((64 << 20)) /dev/urandom >content/random.bin
	while [ "$(du -sm content | cut -f1)" -lt "$want" ]; do
		n=$((n + 1))
		find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name '*.so*' -size -40M |
			sort | while read -r f; do
				[ "$(du -sm content | cut -f1)" -lt "$want" ] || break
				cp "$f" "content/lib/$n.$(basename "$f")"
			done
	done
}

# realistic_vm NAME: a VM NAME in . whose one disk is a 1 GiB raw ext4
# image of libraries (binary), documentation (text) and random data, about
# 600 MiB; sets used (MiB allocated)
realistic_vm() {
	content 584
	mkfs.ext4 -q -F -d content -L "$1" disk.img 1G
	rm -rf content
	used=$(du -m disk.img | cut -f1)
	"$vm" -q --no-uefi -p '' -D VIRT=1G:raw @create "$1"
	cp --sparse=always disk.img .work/disk-0.img
	rm disk.img
	printf 'compress_level = %s\n' "$level" >>guest.conf
}

if part 1; then
# --- 1. a realistic 1 GiB image ---
realistic_vm bench

vm_backup() { rm -f backups/b.tar.gz backups/LAST; "$vm" -q @backup b; }
t_vm_b=$(time_of vm_backup)
s_vm=$(mib backups/b.tar.gz)
t_vm_r=$(time_of "$vm" -q @restore b)
w=$(readlink .work)

tar_backup() { tar -C "$w" -cSf - disk-0.img | pigz -"$level" >tar.tgz; }
t_tar_b=$(time_of tar_backup)
s_tar=$(mib tar.tgz)
tar_restore() { rm -rf out && mkdir out && pigz -d <tar.tgz | tar -C out -xSf -; }
t_tar_r=$(time_of tar_restore)

ref_backup() { pigz -9 -c "$w/disk-0.img" >ref.img.gz; }
t_ref_b=$(time_of ref_backup)
s_ref=$(mib ref.img.gz)
ref_restore() { unpigz -c ref.img.gz >ref.img; }
t_ref_r=$(time_of ref_restore)
rm -rf out ref.img ref.img.gz tar.tgz

printf '\n1 GiB raw ext4 image, %s MiB allocated; gzip level %s; %s cores; median of %s runs\n\n' \
	"$used" "$level" "$(nproc)" "$runs"
printf '| tool | backup s | restore s | archive MiB | backup time vs tar+pigz |\n'
printf '|---|---|---|---|---|\n'
printf '| vm @backup / @restore | %s | %s | %s | %s |\n' \
	"$t_vm_b" "$t_vm_r" "$s_vm" "$(ratio "$t_vm_b" "$t_tar_b")"
printf '| tar -S, pigz -%s | %s | %s | %s | 1.00 |\n' \
	"$level" "$t_tar_b" "$t_tar_r" "$s_tar"
printf '| reference: pigz -9 per file | %s | %s | %s | %s |\n' \
	"$t_ref_b" "$t_ref_r" "$s_ref" "$(ratio "$t_ref_b" "$t_tar_b")"

"$vm" -q @destroy
rm -rf backups guest.conf .work
fi

if part 2; then
# --- 2. a 20 GiB raw image with 200 MiB of data ---
"$vm" -q --no-uefi -p '' -D VIRT=20G:raw @create sparse
for i in 0 1 2 3; do
	dd if=/dev/urandom of=.work/disk-0.img bs=1M count=50 \
		seek=$((i * 5000 + 10)) conv=notrunc status=none
done
w=$(readlink .work)
runs=1
t_vm=$(time_of "$vm" -q @backup s)
s_vm=$(mib backups/s.tar.gz)
pigz_whole() { pigz -"$level" -c "$w/disk-0.img" >whole.gz; }
t_pigz=$(time_of pigz_whole)
s_pigz=$(mib whole.gz)
printf '\n20 GiB raw image, 200 MiB of data; gzip level %s\n\n' "$level"
printf '| tool | backup s | archive MiB |\n|---|---|---|\n'
printf '| vm @backup | %s | %s |\n' "$t_vm" "$s_vm"
printf '| pigz over the whole file | %s | %s |\n' "$t_pigz" "$s_pigz"
printf '\nvm @backup is %sx faster here\n' "$(ratio "$t_pigz" "$t_vm")"

"$vm" -q @destroy
rm -rf backups guest.conf .work
fi

# --- 3. the digest every snapshot's MANIFEST needs: vm's old SHA-256
# (lib/sha256.c before libcrypto) and libcrypto's, side by side ---
! part 3 || bash "$top/bench/sha256.sh"

if part 4; then
# --- 4. incremental snapshots ---
runs=${RUNS:-3}
content 1536
mkfs.ext4 -q -F -d content -L inc disk.img 2G
rm -rf content
used=$(du -m disk.img | cut -f1)
"$vm" -q --no-uefi -p '' -D VIRT=2G:raw @create inc
cp --sparse=always disk.img .work/disk-0.img
rm disk.img
printf 'compress_level = %s\n' "$level" >>guest.conf
w=$(readlink .work)
# rewrite 1% of the allocated data: random 64 KiB writes inside it
churn() {
	python3 - "$w/disk-0.img" "$1" <<-\EOF
	import os, random, sys
	path, seed = sys.argv[1], int(sys.argv[2])
	rnd = random.Random(seed)
	fd = os.open(path, os.O_RDWR)
	size = os.fstat(fd).st_size
	regions, pos = [], 0
	while pos < size:                       # the data regions
	    try: d = os.lseek(fd, pos, os.SEEK_DATA)
	    except OSError: break
	    h = os.lseek(fd, d, os.SEEK_HOLE); regions.append((d, h)); pos = h
	blocks = [b for d, h in regions for b in range(d // 65536, h // 65536)]
	want = sum(h - d for d, h in regions) // 100 // 65536
	for b in rnd.sample(blocks, want):
	    os.pwrite(fd, os.urandom(65536), b * 65536)
	os.close(fd)
	print(want * 65536 >> 20, "MiB in", want, "writes of 64 KiB")
	EOF
}
full_backup() { rm -f backups/*; "$vm" -q --full @backup f; }
t_full=$(time_of full_backup)
s_full=$(mib backups/f.tar.gz)
tar_backup() { tar -C "$w" -cSf - disk-0.img | pigz -"$level" >tar.tgz; }
t_tar=$(time_of tar_backup)
s_tar=$(mib tar.tgz)
t_vm_r=$(time_of "$vm" -q @restore f)
w=$(readlink .work)
# the same archive by the plain tools
tar_restore() { rm -rf out && mkdir out && pigz -d <backups/f.tar.gz | tar -C out -xSf -; }
t_tar_r=$(time_of tar_restore)
rm -rf out tar.tgz
changed=$(churn 1)
inc_backup() { rm -f backups/i.tar.gz; "$vm" -q @last f; "$vm" -q @backup i; }
t_inc=$(time_of inc_backup)
s_inc=$(mib backups/i.tar.gz)
# a chain of 5: f, then four of 1% each; against a full one of the last
rm -f backups/i.tar.gz
"$vm" -q @last f
for i in 2 3 4 5; do
	churn "$i" >/dev/null
	"$vm" -q @backup "c$i"
done
"$vm" -q --full @backup same
"$vm" -q @last c5
t_chain=$(time_of "$vm" -q @restore c5)
t_one=$(time_of "$vm" -q @restore same)
printf '\nIncremental snapshots: 2 GiB raw ext4 image, %s MiB allocated; gzip level %s; %s cores; median of %s runs\n\n' \
	"$used" "$level" "$(nproc)" "$runs"
printf '| what | vm s | plain tools s | vm / plain | archive MiB |\n|---|---|---|---|---|\n'
printf '| full backup (tar -cS, pigz -%s) | %s | %s | %s | %s (tar: %s) |\n' \
	"$level" "$t_full" "$t_tar" "$(ratio "$t_full" "$t_tar")" "$s_full" "$s_tar"
printf '| restore (pigz -d, tar -xS, same archive) | %s | %s | %s | |\n' \
	"$t_vm_r" "$t_tar_r" "$(ratio "$t_vm_r" "$t_tar_r")"
printf '\n| what | s | vs full | archive MiB | vs full |\n|---|---|---|---|---|\n'
printf '| full @backup | %s | 1.00 | %s | 1.00 |\n' "$t_full" "$s_full"
printf '| incremental @backup after %s | %s | %s | %s | %s |\n' "$changed" \
	"$t_inc" "$(ratio "$t_inc" "$t_full")" "$s_inc" "$(ratio "$s_inc" "$s_full")"
printf '| @restore of a full snapshot | %s | 1.00 | | |\n' "$t_one"
printf '| @restore of a 5-deep chain, same disk | %s | %s | | |\n' \
	"$t_chain" "$(ratio "$t_chain" "$t_one")"
"$vm" -q @destroy
rm -rf backups guest.conf .work
fi

if part 5; then
# --- 5. where @restore's time goes: perf over restores of part 1's image ---
command -v perf >/dev/null || { echo "part 5 needs perf (Debian: linux-perf)" >&2; exit 1; }
realistic_vm prof
"$vm" -q @backup p
a=$scratch/backups/p.tar.gz
inflate() { pigz -d <"$a" >/dev/null; }
t_inflate=$(time_of inflate)
tar_restore() { rm -rf out && mkdir out && pigz -d <"$a" | tar -C out -xSf -; }
t_tar=$(time_of tar_restore)
rm -rf out
t_vm=$(time_of "$vm" -q @restore p)
# CPU samples at $hz a second, children (pigz -d) included, kernel too
hz=999
perf record -q -F "$hz" -o perf.data -- "$vm" -q @restore p >/dev/null 2>&1
# cpu_of LINES: "PCT SAMPLES NAME..." -> Markdown rows with CPU seconds
cpu_rows() {
	awk -v hz="$hz" '$1 ~ /%$/ && $2 ~ /^[0-9]+$/ {
		name = $3; for (i = 4; i <= NF; i++) name = name " " $i
		printf "| %s | %s | %.2f |\n", name, $1, $2 / hz }'
}
printf '\nWhere @restore spends its time: 1 GiB raw ext4 image, %s MiB allocated; gzip level %s; %s cores; median of %s runs\n\n' \
	"$used" "$level" "$(nproc)" "$runs"
printf '| what | wall s |\n|---|---|\n'
printf '| pigz -d of the archive to /dev/null (inflating alone) | %s |\n' "$t_inflate"
printf '| pigz -d \\| tar -xS (same archive) | %s |\n' "$t_tar"
printf '| vm @restore | %s |\n' "$t_vm"
printf '\nCPU by process (perf record -F %s, one @restore):\n\n| process | share | CPU s |\n|---|---|---|\n' "$hz"
perf report -i perf.data --stdio --no-children -n -g none --sort comm -q 2>/dev/null | cpu_rows
printf '\nCPU by function, 2%% and more (process, library, function):\n\n| where | share | CPU s |\n|---|---|---|\n'
perf report -i perf.data --stdio --no-children -n -g none --sort comm,dso,sym \
	--percent-limit 2 -q 2>/dev/null | cpu_rows
rm -f perf.data
"$vm" -q @destroy
rm -rf backups guest.conf .work
fi

if part 6 || part 7; then
# --- 6 and 7: a running VM's disks, and a change by its guest ---
iso=$top/rescue/out/rescue-x86_64.iso
[ -f "$iso" ] || { echo "parts 6 and 7 need the rescue image (make rescue)" >&2; exit 1; }
head -c $((256 << 20)) /dev/urandom >rnd.bin
find /usr/share/doc -type f -name '*.gz' -print0 | xargs -0 zcat 2>/dev/null |
	head -c $((256 << 20)) >txt.bin || true
# fill GIB: GIB GiB of the disk written, 256 MiB of random data and of
# text by turns
fill() {
	local i
	for ((i = 0; i < $1 * 4; i++)); do
		qemu-io -f qcow2 -c "write -s $([ $((i % 2)) = 0 ] && echo rnd.bin || echo txt.bin) $((i * 256))M 256M" \
			.work/disk-0.img >/dev/null
	done
}
# rescue_vm NAME GIB: a VM whose guest is the rescue image, on a qcow2
# disk with GIB GiB of it written (fill), snapshots at gzip $level, on
# chains of any length (part 7 makes more than full_every's 8)
rescue_vm() {
	"$vm" -q --no-uefi -p '' --accel="${LIVE_ACCEL:-tcg}" -m 512M -c 1 \
		-D "VIRT=$(($2 + 1))G" @create "$1" "$iso"
	printf 'compress_level = %s\nfull_every = 0\n' "$level" >>guest.conf
	fill "$2"
}
# rewrite GIB SEED [SOCKET]: 80 MiB as 1280 writes of 64 KiB at random
# places in the first GIB GiB; through QEMU's monitor at SOCKET when
# the VM runs, else into the file
rewrite() {
	python3 - "$@" <<-\PY
	import json, random, socket, subprocess, sys
	gib, seed = int(sys.argv[1]), int(sys.argv[2])
	r = random.Random(seed)
	writes = ["write -P %d %d 64k" % (r.randrange(1, 255), r.randrange((gib << 30) >> 16) << 16)
	          for _ in range(1280)]
	if len(sys.argv) < 4:
	    args = ["qemu-io", "-f", "qcow2"]
	    for w in writes:
	        args += ["-c", w]
	    subprocess.run(args + [".work/disk-0.img"], check=True, stdout=subprocess.DEVNULL)
	    sys.exit(0)
	s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[3]); f = s.makefile("rw")
	def rd():
	    while True:
	        m = json.loads(f.readline())
	        if "event" not in m:
	            return m
	rd(); f.write('{"execute": "qmp_capabilities"}\n'); f.flush(); rd()
	for w in writes:
	    f.write(json.dumps({"execute": "human-monitor-command",
	                        "arguments": {"command-line": 'qemu-io disk0 "%s"' % w}}) + "\n")
	    f.flush()
	    if "error" in rd():
	        sys.exit("qemu-io through the monitor failed")
	PY
}
fi

if part 6; then
# --- 6. live snapshots: what a running VM costs, and what the change does ---
# timed_backup ARGS...: one vm @backup; "SECONDS PAUSED_MS" (- when offline)
timed_backup() {
	local t0 t1
	t0=$(now)
	"$vm" -q --json @backup "$@" >b.json
	t1=$(now)
	python3 -c '
import json, sys
r = json.load(open("b.json"))["result"]
print("%.2f %s" % (float(sys.argv[2]) - float(sys.argv[1]), r.get("paused_ms", "-")))' "$t0" "$t1"
}
printf '\nLive snapshots: a qcow2 disk, half random, half text; gzip level %s; %s cores; one run each; the guest is the rescue image under %s\n\n' \
	"$level" "$(nproc)" "${LIVE_ACCEL:-tcg}"
printf '| allocated | full, stopped s | full, running s | guest paused ms | incremental after 80 MiB, running s | paused ms | incremental after 80 MiB, stopped s | incremental running / full running |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for gib in ${LIVE_SIZES:-2 4 8}; do
	rescue_vm "live$gib" "$gib"
	read -r t_full_off _ < <(timed_backup --full off)
	"$vm" -q --accel="${LIVE_ACCEL:-tcg}" @start
	read -r t_full_live p_full < <(timed_backup --full on)
	rewrite "$gib" 1 .work/qmp.sock
	read -r t_inc_live p_inc < <(timed_backup inc)
	"$vm" -q @kill
	rewrite "$gib" 2
	read -r t_inc_off _ < <(timed_backup inc2)
	printf '| %s GiB | %s | %s | %s | %s | %s | %s | %s |\n' "$gib" \
		"$t_full_off" "$t_full_live" "$p_full" "$t_inc_live" "$p_inc" \
		"$t_inc_off" "$(ratio "$t_inc_live" "$t_full_live")"
	"$vm" -q @destroy
	rm -rf backups guest.conf .work vm.log
done
rm -f b.json
fi

if part 7; then
# --- 7. what an incremental @backup reads: the bitmap's marks or all ---
# measured ARGS...: one vm @backup, the disk file's pages dropped from
# the page cache first (programs stay cached): "SECONDS READ_MIB
# MARKED_MIB BY" (read_bytes of vm and all it ran: what came from the
# disk)
measured() {
	sync
	python3 - "$vm" "$@" <<-\PY
	import json, os, subprocess, sys, time
	fd = os.open(".work/disk-0.img", os.O_RDONLY)
	os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
	os.close(fd)
	def io():
	    return int(dict(l.split(": ") for l in open("/proc/self/io").read().splitlines())["read_bytes"])
	r0, t0 = io(), time.monotonic()
	out = subprocess.run([sys.argv[1], "-q", "--json", "@backup"] + sys.argv[2:],
	                     check=True, capture_output=True, text=True).stdout
	t, r = time.monotonic() - t0, io() - r0
	res = json.loads(out.splitlines()[0])["result"]
	ch = res.get("changes") or [{}]
	print("%.2f %.1f %.1f %s" % (t, r / 1048576, ch[0].get("marked", 0) / 1048576,
	                             ch[0].get("by", "full")))
	PY
}
# unbitmap [SOCKET]: take the disk's bitmaps away (through QEMU's
# monitor at SOCKET when it runs), so that the next @backup compares
# digests, as before bitmaps
unbitmap() {
	python3 - "$@" <<-\PY
	import json, socket, subprocess, sys
	if len(sys.argv) < 2:
	    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", ".work/disk-0.img"],
	                                     check=True, capture_output=True, text=True).stdout)
	    for b in info["format-specific"]["data"].get("bitmaps", []):
	        subprocess.run(["qemu-img", "bitmap", "--remove", ".work/disk-0.img", b["name"]], check=True)
	    sys.exit(0)
	s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
	def cmd(c, **a):
	    f.write(json.dumps({"execute": c, "arguments": a}) + "\n"); f.flush()
	    while True:
	        m = json.loads(f.readline())
	        if "event" not in m:
	            return m
	f.readline(); cmd("qmp_capabilities")
	for d in cmd("query-block")["return"]:
	    if d["device"] != "disk0":
	        continue
	    for b in d["inserted"].get("dirty-bitmaps", []):
	        cmd("block-dirty-bitmap-remove", node=d["inserted"]["node-name"], name=b["name"])
	PY
}
# quit_cleanly: QEMU closes the disks and ends (QMP quit, as @stop ends
# a guest that ignores its power button: the rescue does), and its vm
# with it, within 120 s
quit_cleanly() {
	local i
	python3 - <<-\PY
	import json, socket
	s = socket.socket(socket.AF_UNIX); s.connect(".work/qmp.sock"); f = s.makefile("rw")
	f.readline()
	for c in ("qmp_capabilities", "quit"):
	    f.write(json.dumps({"execute": c}) + "\n"); f.flush()
	    while "event" in json.loads(f.readline() or "{}"):
	        pass
	PY
	for ((i = 0; i < 1200; i++)); do
		"$vm" -q @status >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	echo "part 7: QEMU did not end after quit" >&2
	return 1
}
# median_run: of the lines measured printed (one a run), the one of the
# median time
median_run() { sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }
# job_rewrite GIB SEED: a job that writes 80 MiB as 1280 writes of 64 KiB
# at random places in the first GIB GiB of the disk, from the rescue
job_rewrite() {
	python3 - "$@" >rw.job <<-\PY
	import random, sys
	gib, seed = int(sys.argv[1]), int(sys.argv[2])
	r = random.Random(seed)
	offs = " ".join(str(r.randrange((gib << 30) >> 16)) for _ in range(1280))
	print("for d in /dev/vda /dev/sda /dev/nvme0n1; do [ -b $d ] && break; done")
	print("for o in %s; do" % offs)
	print("  dd if=/dev/urandom of=$d bs=64k seek=$o count=1 conv=notrunc status=none || exit 1")
	print("done; sync")
	PY
}
printf '\nIncremental by bitmap and by digests: the disks and the 80 MiB change of part 6; gzip level %s; %s cores; the disk file dropped from the page cache before each; the guest is the rescue image under %s; s = seconds, MiB = read from the disk by vm and what it ran, marked = what the bitmap marked; by bitmap: the median of %s runs (each after its own change), by digests and full: one run\n\n' \
	"$level" "$(nproc)" "${LIVE_ACCEL:-tcg}" "$runs"
printf '| allocated | full s | full MiB | running: bitmap s | MiB | marked | running: digests s | MiB | after quit: bitmap s | MiB | marked | after quit: digests s | MiB | after @job: bitmap s | MiB | marked | bitmap running / full |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for gib in ${LIVE_SIZES:-2 4 8}; do
	rescue_vm "bm$gib" "$gib"
	read -r t_full r_full _ _ < <(measured --full)
	"$vm" -q --accel="${LIVE_ACCEL:-tcg}" @start
	read -r t_run r_run m_run by_run < <(for ((k = 0; k < runs; k++)); do
		rewrite "$gib" $((10 + k)) .work/qmp.sock && measured || exit 1
	done | median_run)
	rewrite "$gib" 2 .work/qmp.sock
	unbitmap .work/qmp.sock
	read -r t_rund r_rund _ by_rund < <(measured)
	read -r t_stop r_stop m_stop by_stop < <(for ((k = 0; k < runs; k++)); do
		{ [ "$k" = 0 ] || "$vm" -q --accel="${LIVE_ACCEL:-tcg}" @start >/dev/null; } &&
		rewrite "$gib" $((20 + k)) .work/qmp.sock && quit_cleanly && measured || exit 1
	done | median_run)
	rewrite "$gib" 4
	unbitmap
	read -r t_stopd r_stopd _ by_stopd < <(measured)
	read -r t_job r_job m_job by_job < <(for ((k = 0; k < runs; k++)); do
		job_rewrite "$gib" $((30 + k)) &&
		"$vm" -q --accel="${LIVE_ACCEL:-tcg}" @job rw >/dev/null && measured || exit 1
	done | median_run)
	[ "$by_run $by_rund $by_stop $by_stopd $by_job" = "bitmap digests bitmap digests bitmap" ] ||
		{ echo "part 7: not the way meant: $by_run $by_rund $by_stop $by_stopd $by_job" >&2; exit 1; }
	printf '| %s GiB | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$gib" \
		"$t_full" "$r_full" "$t_run" "$r_run" "$m_run" "$t_rund" "$r_rund" \
		"$t_stop" "$r_stop" "$m_stop" "$t_stopd" "$r_stopd" \
		"$t_job" "$r_job" "$m_job" "$(ratio "$t_run" "$t_full")"
	"$vm" -q @destroy
	rm -rf backups guest.conf .work vm.log rw.job
done
fi
rm -f rnd.bin txt.bin
