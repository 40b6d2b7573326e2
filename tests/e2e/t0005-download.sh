#!/bin/bash
# ISOs by URL: libcurl into the cache, reuse, resume, checksums, errors,
# against a local test server (127.0.0.1 only).
. "$(dirname "$0")/../lib.sh"

SRV=$T/srv
mkdir -p "$SRV/files"
# an ISO by its content (vm tells a disc from a disk image so): random
# bytes with ISO 9660's mark where its first volume descriptor is
fake_iso() {
	check_args fake_iso "FILE SIZE" 2 2 "$@" &&
	head -c "$2" /dev/urandom >"$1" &&
	printf CD001 | dd of="$1" bs=1 seek=32769 conv=notrunc status=none
}
fake_iso "$SRV/files/x.iso" 3000000
SUM=$(sha256sum "$SRV/files/x.iso" | cut -d" " -f1)
python3 "$TOP/tests/data/httpd.py" "$SRV/files" "$SRV/port" "$SRV/log" &
HTTPD=$!
trap 'kill $HTTPD 2>/dev/null; kill_ours; rm -rf "$T"' EXIT
wait_for 10 test -s "$SRV/port" || { echo "not ok 1 - no test server"; exit 1; }
PORT=$(cat "$SRV/port")
URL=http://127.0.0.1:$PORT
export SRV SUM URL

cached() { ls "$XDG_CACHE_HOME"/vm/downloads/*"$1" 2>/dev/null; }

test_expect "@create with a URL downloads into the cache and records URL and checksum" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" && : >"$SRV/log" &&
	vm --no-uefi @create T "$URL/x.iso" 2>err &&
	contains guest.conf "^bootimage = $URL/x.iso$" &&
	contains guest.conf "^bootimage_sha256 = $SUM$" &&
	f=$(cached -x.iso) && test "$(sha256sum <"$f" | cut -d" " -f1)" = "$SUM" &&
	test "$(grep -c "status=200" "$SRV/log")" -eq 1
'

test_expect "a cached file is reused after a conditional request (304)" '
	vm --no-uefi @create T "$URL/x.iso" && : >"$SRV/log" &&
	vm --dry-run @run >cmd && lacks cmd "$URL" && contains cmd "x.iso" &&
	lacks "$SRV/log" GET &&
	must_fail 1 vm -t 2 @run 2>err && contains err "timeout" &&
	grep -q "inm=\".*status=304" "$SRV/log" && lacks "$SRV/log" "status=200"
'

test_expect "two vm at once on one URL (two VMs of one image): one download, the other waits for it and uses the copy" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" && : >"$SRV/log" &&
	{ vm --no-uefi -d a @create A "$URL/paced/x.iso" >a.out 2>&1 & } && pa=$! &&
	vm --no-uefi -d b @create B "$URL/paced/x.iso" >b.out 2>&1 &&
	{ wait "$pa" || ! cat a.out; } &&
	test "$(grep -c "GET /paced/x.iso range=- inm=- status=200" "$SRV/log")" = 1 &&
	contains "$SRV/log" "GET /paced/x.iso .*status=304" &&
	test "$(ls "$XDG_CACHE_HOME/vm/downloads" | grep -c "x.iso$")" = 1 &&
	cmp "$(ls "$XDG_CACHE_HOME"/vm/downloads/*x.iso)" "$SRV/files/x.iso" &&
	contains a/guest.conf "^bootimage_sha256 = $SUM$" &&
	contains b/guest.conf "^bootimage_sha256 = $SUM$"
'

test_expect "offline, the cached copy is used with a note" '
	mkdir srv2 &&
	{ python3 "$TOP/tests/data/httpd.py" "$SRV/files" srv2/port srv2/log & } &&
	p2=$! &&
	wait_for 10 test -s srv2/port &&
	u2=http://127.0.0.1:$(cat srv2/port)/x.iso &&
	vm --no-uefi @create T "$u2" &&
	kill $p2 && { wait $p2 || true; } &&
	must_fail 1 vm -t 2 @run 2>err &&
	contains err "cannot be reached: using the cached copy" &&
	contains err "timeout of 2 s expired"
'

test_expect "a download cut in the middle is resumed with a Range request" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" && : >"$SRV/log" &&
	vm --no-uefi @create T "$URL/drop/x.iso" &&
	grep -q "range=bytes=1500000- .*status=206" "$SRV/log" &&
	f=$(cached -x.iso) && test "$(sha256sum <"$f" | cut -d" " -f1)" = "$SUM"
'

test_expect "a resume answered with less than its Content-Range announces is not kept" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" && : >"$SRV/log" &&
	must_fail 1 vm --no-uefi @create T "$URL/droplie/x.iso" 2>err &&
	grep -q "range=bytes=1500000- .*status=206" "$SRV/log" &&
	contains err "cannot download $URL/droplie/x.iso: the server announced 3000000 bytes, 2250000 arrived$" &&
	test -z "$(ls "$XDG_CACHE_HOME/vm/downloads")" &&
	test ! -e guest.conf
'

test_expect "URL#sha256= and --sha256: a match works, a mismatch fails and deletes; the digest is kept until the file changes" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	vm --no-uefi @create T "$URL/x.iso#sha256=$SUM" &&
	contains "$(cached -x.iso).meta" "^digest sha256 $SUM [0-9]" &&
	vm --no-uefi -d "$PWD/t2" @create T2 "$URL/x.iso#sha256=$SUM" &&
	printf y | dd of="$(cached -x.iso)" bs=1 seek=5 conv=notrunc status=none &&
	must_fail 1 vm --no-uefi -d "$PWD/t3" @create T3 "$URL/x.iso#sha256=$SUM" 2>err &&
	contains err "checksum mismatch" && test -z "$(cached -x.iso)" &&
	test ! -e t3/guest.conf &&
	bad=$(printf "%064d" 0) &&
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	must_fail 1 vm --no-uefi -d "$PWD/b" @create B "$URL/x.iso#sha256=$bad" 2>err &&
	contains err "checksum mismatch" && test -z "$(cached -x.iso)" &&
	test ! -e b/guest.conf &&
	must_fail 1 vm --no-uefi -d "$PWD/c" --sha256=$bad @create C "$URL/x.iso" 2>err &&
	contains err "checksum mismatch" && test ! -e c/guest.conf &&
	must_fail 2 vm --sha256=xyz @create D "$URL/x.iso" 2>err &&
	contains err "option --sha256"
'

test_expect "HTTP 404 and a refused connection are clear one-line errors" '
	must_fail 1 vm --no-uefi @create T "$URL/nope.iso" 2>err &&
	contains err "the server answered HTTP 404" && test ! -e guest.conf &&
	must_fail 1 vm --no-uefi @create T "http://127.0.0.1:1/x.iso" 2>err &&
	contains err "connection refused" && test ! -e guest.conf &&
	test -z "$(ls "$TMPDIR")"
'

test_expect "endless data stops at download_max, the space is given back" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	printf "[vm]\ndownload_max = 20M\n" >"$VM_SYSTEM_CONFIG" &&
	must_fail 1 vm --no-uefi -d "$PWD/e" \
		@create E "$URL/endless/x.iso" 2>err &&
	contains err "larger than download_max (20M" &&
	test "$(grep -cv -e "^vm: ISO" -e "^\*\*\* " err)" -le 2 &&
	test -z "$(ls "$XDG_CACHE_HOME/vm/downloads")" && test ! -e e
'

# age NAME SECS: the cached NAME (and its .meta) last used SECS ago
age() {
	check_args age "NAME SECS" 2 2 "$@" &&
	local f &&
	f=$(cached "$1") &&
	touch -d "@$(( $(date +%s) - $2 ))" "$f" "$f.meta"
}

test_expect "the cache keeps download_cache_max: least recently used go first, never a base a VM lays over" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	for f in a b c; do fake_iso "$SRV/files/lru-$f.iso" 3M || exit 1; done &&
	head -c 4M /dev/urandom >"$SRV/files/lru-base.raw" &&
	printf "[vm]\ndownload_cache_max = 7M\n" >"$VM_SYSTEM_CONFIG" &&
	vm -q --no-uefi -d "$PWD/a" @create A "$URL/lru-a.iso" &&
	vm -q --no-uefi -d "$PWD/b" @create B "$URL/lru-b.iso" &&
	age lru-a.iso 300 && age lru-b.iso 400 &&
	vm -q --no-uefi -d "$PWD/c" @create C "$URL/lru-c.iso" &&
	cached lru-a.iso && cached lru-c.iso && ! cached lru-b.iso &&
	test -z "$(ls "$XDG_CACHE_HOME"/vm/downloads/ | grep "lru-b")" &&
	vm -q --no-uefi -D VIRT=8M -d "$PWD/e" --base "$URL/lru-base.raw" @create E &&
	base=$(cached lru-base.raw) && contains "$base.pin" "^$PWD/e$" &&
	cached lru-c.iso && ! cached lru-a.iso &&
	age lru-base.raw 500 && age lru-c.iso 200 &&
	vm -q --no-uefi -d "$PWD/b2" @create B2 "$URL/lru-b.iso" &&
	cached lru-base.raw && cached lru-b.iso && ! cached lru-c.iso &&
	rm -rf e && age lru-b.iso 100 &&
	vm -q --no-uefi -d "$PWD/c2" @create C2 "$URL/lru-c.iso" &&
	! cached lru-base.raw && cached lru-b.iso && cached lru-c.iso &&
	rm -f "$VM_SYSTEM_CONFIG" && rm -rf "$XDG_CACHE_HOME/vm/downloads"
'

test_expect "an announced size larger than the disk can spare is refused at once" '
	must_fail 1 timeout 20 "$VM_BIN" --no-uefi -d "$PWD/h" @create H \
		"$URL/huge/x.iso" 2>err &&
	contains err "larger than the space .* can spare" &&
	test -z "$(ls "$XDG_CACHE_HOME/vm/downloads")" && test ! -e h
'

test_expect "download_timeout bounds a download that trickles" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	printf "[vm]\ndownload_timeout = 3\n" >"$VM_SYSTEM_CONFIG" &&
	must_fail 1 timeout 30 "$VM_BIN" \
		--no-uefi -d "$PWD/s" @create S "$URL/slow/x.iso" 2>err &&
	contains err "not done within download_timeout (3 s" && test ! -e s
'

test_expect "off a terminal: a start line, a line every 10 s and 10%, a summary; -q: none" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	vm --no-uefi @create T "$URL/paced/x.iso" 2>err &&
	contains err "^vm: ISO: started (2.9 MiB)$" &&
	contains err "^vm: ISO  *[0-9]*%  .* / 2.9 MiB  .*/s  ETA " &&
	test "$(grep -c "^vm: ISO  " err)" -le 2 &&
	contains err "^vm: ISO: 2.9 MiB in [0-9.]* s (.*/s)$" &&
	lacks err "$(printf "\r")" &&
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	vm -q --no-uefi -d "$PWD/q" @create Q "$URL/x.iso" 2>err && test ! -s err
'

test_expect "a progress bar on a terminal while downloading" '
	rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	script -qec "\"$VM_BIN\" --no-uefi @create T $URL/x.iso" /dev/null >tty.out &&
	grep -q "ISO .*%.*MiB" tty.out
'

test_done
