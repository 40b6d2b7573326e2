#!/bin/bash
# @push to a real registry (Docker Distribution, Debian's docker-registry)
# started here on 127.0.0.1: over plain HTTP for a registry listed as
# insecure, and over TLS with a certificate made here and htpasswd users.
# skopeo, the containers tool, must read what vm pushed.
. "$(dirname "$0")/../lib.sh"

# chain N: a VM with snapshots S0..S(N-1), each changing the disk
chain() {
	check_args chain N 1 1 "$@" &&
	vm -q --no-uefi -p "" -D VIRT=64M @create R &&
	for i in $(seq 0 $(($1 - 1))); do
		qwrite $((i * 4))M 2M && vm -q @backup || return 1
	done
}

# same_disk A B: two qcow2 disks hold the same data (their own metadata,
# a dirty bitmap's name, may differ)
same_disk() {
	check_args same_disk "A B" 2 2 "$@" &&
	qemu-img compare -q -U -f qcow2 -F qcow2 "$1" "$2"
}

# sent FILE: the bytes a --json @push in FILE sent
sent() {
	check_args sent FILE 1 1 "$@" &&
	jq -r .result.sent "$1"
}

test_expect "plain HTTP to a registry listed as insecure: a chain of 3 goes up once, again nothing, a fourth snapshot alone; skopeo reads it" '
	port=$(free_port) && registry "$port" &&
	printf "registry_insecure = 127.0.0.1:%s\n" "$port" >>"$XDG_CONFIG_HOME/vm.conf" &&
	chain 3 &&
	vm --json @push "127.0.0.1:$port/ci/golden:v1" >p1 2>err &&
	contains err "pushed 127.0.0.1:$port/ci/golden:v1 (sha256:[0-9a-f]\{64\}): 3 snapshots, 3 sent" &&
	contains err "^vm: push 127.0.0.1:$port/ci/golden:v1: started (" &&
	equals "$(jq -r .result.uploaded p1)" 3 &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" p1 push &&
	size=$(cat backups/S*.tar.gz | wc -c) &&
	test "$(sent p1)" -ge "$size" &&
	test "$(sent p1)" -le $((size + 4096)) &&
	vm --json @push "127.0.0.1:$port/ci/golden:v1" >p2 2>err2 &&
	lacks err2 "started" &&
	equals "$(jq -r .result.uploaded p2)" 0 &&
	equals "$(sent p2)" 0 &&
	equals "$(jq -r .result.digest p2)" "$(jq -r .result.digest p1)" &&
	qwrite 20M 1M && vm -q @backup &&
	vm --json @push "127.0.0.1:$port/ci/golden:v2" >p3 &&
	equals "$(jq -r .result.uploaded p3)" 1 &&
	s3=$(wc -c <backups/S3.tar.gz) &&
	test "$(sent p3)" -le $((s3 * 105 / 100 + 4096)) &&
	skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/ci/golden:v2" >insp &&
	for s in S0 S1 S2 S3; do
		contains insp "sha256:$(sha256sum <backups/$s.tar.gz | cut -c1-64)" || return 1
	done &&
	equals "$(jq -r .Labels.\"org.opencontainers.image.title\" insp)" S3 &&
	skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/ci/golden:v2" oci:copy:v2 &&
	for s in S0 S1 S2 S3; do
		cmp "copy/blobs/sha256/$(sha256sum <backups/$s.tar.gz | cut -c1-64)" backups/$s.tar.gz || return 1
	done &&
	vm -q @push "127.0.0.1:$port/ci/golden:s1" S1 &&
	skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/ci/golden:s1" >insp1 &&
	equals "$(jq -r ".Layers | length" insp1)" 2
'

test_expect "the config says what a restore needs: each snapshot, its parent and STATE, the guest.conf; diff_ids are the tars" '
	port=$(free_port) && registry "$port" &&
	printf "registry_insecure = 127.0.0.1:%s\n" "$port" >>"$XDG_CONFIG_HOME/vm.conf" &&
	chain 2 && vm -q @push "127.0.0.1:$port/x/y" &&
	skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$port/x/y:latest" >manifest &&
	equals "$(jq -r .mediaType manifest)" application/vnd.oci.image.manifest.v1+json &&
	equals "$(jq -r ".layers[].mediaType" manifest | sort -u)" application/vnd.oci.image.layer.v1.tar+gzip &&
	equals "$(jq -r ".layers[1].annotations.\"org.opencontainers.image.title\"" manifest)" S1.tar.gz &&
	skopeo inspect --config --raw --tls-verify=false "docker://127.0.0.1:$port/x/y:latest" >config &&
	equals "$(jq -r ".vm.snapshots[1].name" config)" S1 &&
	equals "$(jq -r ".vm.snapshots[1].parent" config)" S0 &&
	equals "$(jq -r ".vm.snapshots[0].parent" config)" null &&
	jq -j ".vm[\"guest.conf\"]" config >conf &&
	cmp conf guest.conf &&
	equals "$(jq -r ".rootfs.diff_ids[0]" config)" "sha256:$(gzip -dc backups/S0.tar.gz | sha256sum | cut -c1-64)" &&
	equals "$(jq -r ".rootfs.diff_ids[1]" config)" "sha256:$(gzip -dc backups/S1.tar.gz | sha256sum | cut -c1-64)"
'

test_expect "TLS and htpasswd: no credentials, a wrong password and an unknown CA are one line each; each of the three auth files works" '
	port=$(free_port) && certs &&
	htpasswd -Bbc htpasswd ci s3cret 2>/dev/null &&
	registry "$port" tls &&
	chain 1 &&
	ref="127.0.0.1:$port/team/web:v1" &&
	must_fail 1 vm @push "$ref" 2>err &&
	contains err "TLS error" && contains err "registry_ca" &&
	printf "registry_ca = %s/certs/ca.crt\n" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	must_fail 1 vm @push "$ref" 2>err &&
	contains err "UNAUTHORIZED" && contains err "no credentials for 127.0.0.1:$port" &&
	equals "$(grep -c "^vm: cannot push" err)" 1 &&
	auth_json ~/.docker/config.json ci wrong "127.0.0.1:$port" &&
	must_fail 1 vm @push "$ref" 2>err &&
	contains err "UNAUTHORIZED" && contains err "credentials are from $HOME/.docker/config.json" &&
	auth_json ~/.docker/config.json ci s3cret "https://127.0.0.1:$port" &&
	vm -q @push "$ref" &&
	rm ~/.docker/config.json &&
	export XDG_RUNTIME_DIR=$PWD/run &&
	auth_json run/containers/auth.json ci s3cret "127.0.0.1:$port/team" &&
	vm -q @push "$ref" &&
	auth_json run/containers/auth.json ci wrong "127.0.0.1:$port" &&
	export REGISTRY_AUTH_FILE=$PWD/mine.json &&
	auth_json mine.json ci s3cret "127.0.0.1:$port" &&
	vm --json @push "$ref" >ok && equals "$(jq -r .result.uploaded ok)" 0 &&
	mkdir trust && cp certs/ca.crt trust/ &&
	skopeo inspect --cert-dir trust --authfile mine.json "docker://$ref" >insp &&
	contains insp "sha256:$(sha256sum <backups/S0.tar.gz | cut -c1-64)"
'

test_expect "another repository of the same registry: the layers are mounted from the first, not sent" '
	port=$(free_port) && registry "$port" &&
	printf "registry_insecure = 127.0.0.1:%s\n" "$port" >>"$XDG_CONFIG_HOME/vm.conf" &&
	chain 2 && vm -q @push "127.0.0.1:$port/team/a:v1" &&
	vm --json @push "127.0.0.1:$port/team/b:v1" >p &&
	equals "$(jq -r .result.mounted p)" 2 &&
	equals "$(jq -r .result.uploaded p)" 0 &&
	equals "$(sent p)" 0 &&
	contains registry.log "POST /v2/team/b/blobs/uploads/?mount=sha256:" &&
	skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/team/b:v1" oci:copy:v1 &&
	cmp "copy/blobs/sha256/$(sha256sum <backups/S1.tar.gz | cut -c1-64)" backups/S1.tar.gz
'

test_expect "a layer larger than 64 MiB goes up in parts and arrives whole" '
	port=$(free_port) && registry "$port" &&
	printf "registry_insecure = 127.0.0.1:%s\n" "$port" >>"$XDG_CONFIG_HOME/vm.conf" &&
	vm -q --no-uefi -p "" -D VIRT=128M @create L &&
	echo "compress_level = 1" >>"$XDG_CONFIG_HOME/vm.conf" &&
	qwrite 0 70M && vm -q @backup &&
	test "$(wc -c <backups/S0.tar.gz)" -gt $((64 << 20)) &&
	vm --json @push "127.0.0.1:$port/big/one" >p &&
	test "$(sent p)" -ge "$(wc -c <backups/S0.tar.gz)" &&
	contains registry.log "\"PATCH /v2/big/one/blobs/uploads/" &&
	skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/big/one" oci:copy:x &&
	cmp "copy/blobs/sha256/$(sha256sum <backups/S0.tar.gz | cut -c1-64)" backups/S0.tar.gz
'

# runner DIR: another machine, as a runner of a CI fleet is: its own
# HOME (no seal key, no credentials), cache and temporary files
runner() {
	check_args runner DIR 1 1 "$@" &&
	mkdir -p "$1/home/.config" "$1/cache" "$1/tmp" &&
	cp "$XDG_CONFIG_HOME/vm.conf" "$1/home/.config/" &&
	export HOME=$PWD/$1/home XDG_CONFIG_HOME=$PWD/$1/home/.config \
		XDG_CACHE_HOME=$PWD/$1/cache TMPDIR=$PWD/$1/tmp
}

test_expect "@pull on another runner makes the VM from the image, byte for byte; host settings stay behind; again fetches nothing" '
	port=$(free_port) && registry "$port" && insecure "$port" &&
	vm -q --no-uefi -p "" -D VIRT=64M -f tcp:127.0.0.1:2222-:22 @create R &&
	qwrite 0 2M && vm -q @backup && qwrite 8M 2M && vm -q @backup &&
	cp --sparse=always .work/disk-0.img kept.img &&
	ref="127.0.0.1:$port/ci/golden:v1" && vm -q @push "$ref" &&
	runner other &&
	vm --json -d other/vm @pull "$ref" >j 2>err &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" j pull &&
	equals "$(jq -r .result.fetched j)" 2 &&
	equals "$(jq -r .result.name j)" S1 &&
	contains err "LAST names it" &&
	cmp backups/S0.tar.gz other/vm/backups/S0.tar.gz &&
	cmp backups/S1.tar.gz other/vm/backups/S1.tar.gz &&
	same_disk kept.img other/vm/.work/disk-0.img &&
	equals "$(readlink other/vm/backups/LAST)" S1.tar.gz &&
	lacks other/vm/guest.conf "2222" &&
	contains err "forwards" &&
	vm --json -d other/vm @pull "$ref" >j2 &&
	equals "$(jq -r .result.fetched j2)" 0 &&
	equals "$(jq -r .result.received j2)" "$(jq -r .result.received j2 | grep -x "[0-9]\{1,4\}")" &&
	vm -q -d other/vm @verify
'

test_expect "a chain that grows: only the new snapshot comes; by digest too; an image skopeo copied is pulled the same" '
	port=$(free_port) && registry "$port" && insecure "$port" &&
	chain 3 && vm -q @push "127.0.0.1:$port/ci/g:v1" &&
	mkdir b && vm -q -d b @pull "127.0.0.1:$port/ci/g:v1" &&
	qwrite 30M 1M && vm -q @backup &&
	vm --json @push "127.0.0.1:$port/ci/g:v2" >p &&
	vm --json -d b @pull "127.0.0.1:$port/ci/g:v2" >j 2>err &&
	equals "$(jq -r .result.fetched j)" 1 &&
	s3=$(wc -c <backups/S3.tar.gz) &&
	test "$(jq -r .result.received j)" -le $((s3 * 105 / 100 + 8192)) &&
	contains err "LAST" && equals "$(readlink b/backups/LAST)" S2.tar.gz &&
	vm -q -d b @restore S3 && same_disk .work/disk-0.img b/.work/disk-0.img &&
	digest=$(jq -r .result.digest p) &&
	mkdir c && vm -q -d c @pull "127.0.0.1:$port/ci/g@$digest" &&
	cmp backups/S3.tar.gz c/backups/S3.tar.gz &&
	skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
		"docker://127.0.0.1:$port/ci/g:v2" "docker://127.0.0.1:$port/other/copy:x" &&
	mkdir d && vm -q -d d @pull "127.0.0.1:$port/other/copy:x" &&
	cmp backups/S3.tar.gz d/backups/S3.tar.gz &&
	same_disk .work/disk-0.img d/.work/disk-0.img
'

test_expect "a tampered layer, a name taken by another snapshot, no such tag: refused in one line, backups/ as it was" '
	port=$(free_port) && registry "$port" && insecure "$port" &&
	chain 2 && vm -q @push "127.0.0.1:$port/t/x:v1" &&
	mkdir other && vm -q --no-uefi -p "" -D VIRT=64M -d other @create O &&
	qwrite 0 1M && cp .work/disk-0.img .work/keep && vm -q -d other @backup --full S1 &&
	ls -l other/backups >before &&
	must_fail 1 vm -d other @pull "127.0.0.1:$port/t/x:v1" 2>err &&
	contains err "backups/S1.tar.gz is another snapshot than the image.s S1" &&
	ls -l other/backups | cmp - before &&
	must_fail 1 vm -d other @pull "127.0.0.1:$port/t/x:nope" 2>err &&
	contains err "MANIFEST_UNKNOWN" && equals "$(grep -c "^vm: cannot pull" err)" 1 &&
	must_fail 1 vm -d other @pull "127.0.0.1:$port/t/none:v1" 2>err &&
	contains err "NAME_UNKNOWN\|MANIFEST_UNKNOWN" &&
	d=$(sha256sum <backups/S1.tar.gz | cut -c1-64) &&
	data=registry/docker/registry/v2/blobs/sha256/${d:0:2}/$d/data &&
	printf "XXXX" | dd of="$data" bs=1 seek=100 conv=notrunc status=none &&
	mkdir fresh &&
	must_fail 1 vm -d fresh @pull "127.0.0.1:$port/t/x:v1" 2>err &&
	contains err "another digest" &&
	test ! -e fresh/backups/S1.tar.gz && test ! -e fresh/backups/.S1.tar.gz.pull &&
	test ! -e fresh/guest.conf
'

test_expect "a part an interrupted pull left is resumed, only the rest comes; a part that is not the blob is fetched afresh" '
	port=$(free_port) && registry "$port" && insecure "$port" &&
	vm -q --no-uefi -p "" -D VIRT=64M @create P && qwrite 0 4M &&
	vm -q @backup && vm -q @push "127.0.0.1:$port/r/p" &&
	size=$(wc -c <backups/S0.tar.gz) &&
	mkdir -p r/backups && head -c 1000000 backups/S0.tar.gz >r/backups/.S0.tar.gz.pull &&
	vm --json -d r @pull "127.0.0.1:$port/r/p" >j &&
	test "$(jq -r .result.received j)" -lt $((size - 1000000 + 8192)) &&
	cmp backups/S0.tar.gz r/backups/S0.tar.gz && test ! -e r/backups/.S0.tar.gz.pull &&
	mkdir -p s/backups && head -c 1000000 /dev/urandom >s/backups/.S0.tar.gz.pull &&
	vm --json -d s @pull "127.0.0.1:$port/r/p" >j2 &&
	test "$(jq -r .result.received j2)" -ge "$size" &&
	cmp backups/S0.tar.gz s/backups/S0.tar.gz
'

# proxy PORT UPSTREAM OPTION...: tests/data/registry-proxy.py on
# 127.0.0.1:PORT in front of the registry at UPSTREAM, logging to proxy.log
proxy() {
	check_args proxy "PORT UPSTREAM OPTION..." 2 - "$@" &&
	{ python3 "$TOP/tests/data/registry-proxy.py" "$@" --log proxy.log \
		>proxy.out 2>&1 & } &&
	wait_for 30 listening "$1"
}

test_expect "behind a token service: a bearer token for the scope asked, pull rights on a mount's source too; 429 waited out" '
	up=$(free_port) && registry "$up" && port=$(free_port) &&
	proxy "$port" "$up" --bearer ci:pw --busy 2 && insecure "$port" &&
	chain 2 &&
	must_fail 1 vm @push "127.0.0.1:$port/team/a" 2>err &&
	contains err "UNAUTHORIZED" && contains err "no credentials" &&
	auth_json ~/.docker/config.json ci wrong "127.0.0.1:$port" &&
	must_fail 1 vm @push "127.0.0.1:$port/team/a" 2>err &&
	contains err "authenticating: UNAUTHORIZED: bad credentials" &&
	auth_json ~/.docker/config.json ci pw "127.0.0.1:$port" &&
	vm -q @push "127.0.0.1:$port/team/a" &&
	contains proxy.log " 429$" &&
	contains proxy.log "^scope repository:team/a:pull,push$" &&
	vm --json @push "127.0.0.1:$port/team/b" >p &&
	equals "$(jq -r .result.mounted p)" 2 &&
	contains proxy.log "^scope repository:team/a:pull$" &&
	mkdir o && vm -q -d o @pull "127.0.0.1:$port/team/b" &&
	contains proxy.log "^scope repository:team/b:pull$" &&
	cmp backups/S1.tar.gz o/backups/S1.tar.gz &&
	rm ~/.docker/config.json
'

test_expect "a request too large is one line; a registry that dies mid-upload leaves no tag, and the next push completes" '
	up=$(free_port) && registry "$up" && port=$(free_port) &&
	proxy "$port" "$up" --too-large 1000000 && insecure "$port" &&
	vm -q --no-uefi -p "" -D VIRT=64M @create D && qwrite 0 4M && vm -q @backup &&
	must_fail 1 vm @push "127.0.0.1:$port/d/x" 2>err &&
	contains err "SIZE_INVALID: request too large (HTTP 413)" &&
	equals "$(grep -c "^vm: cannot push" err)" 1 &&
	port2=$(free_port) &&
	proxy "$port2" "$up" --hold-after 1000000 --hold HOLD && insecure "$port2" &&
	{ vm -q @push "127.0.0.1:$port2/d/x" 2>err2 & } && pushing=$! &&
	wait_for 60 test -e HOLD &&
	kill "$(cat registry.pid)" && wait_for 30 not_listening "$up" &&
	rm HOLD &&
	must_fail 1 wait "$pushing" &&
	contains err2 "uploading a blob: the connection dropped" &&
	equals "$(grep -c "^vm: cannot push" err2)" 1 &&
	registry "$up" && insecure "$up" &&
	must_fail any skopeo inspect --tls-verify=false "docker://127.0.0.1:$up/d/x" &&
	vm -q @push "127.0.0.1:$port2/d/x" &&
	mkdir o && vm -q -d o @pull "127.0.0.1:$up/d/x" &&
	cmp backups/S0.tar.gz o/backups/S0.tar.gz
'

test_expect "read rights only: DENIED; an upload the registry calls invalid: BLOB_UPLOAD_INVALID; one line each, no tag" '
	up=$(free_port) && registry "$up" && insecure "$up" &&
	port=$(free_port) && proxy "$port" "$up" --deny-push && insecure "$port" &&
	chain 1 &&
	must_fail 1 vm @push "127.0.0.1:$port/a/b" 2>err &&
	contains err "DENIED: requested access to the resource is denied (HTTP 403)" &&
	equals "$(grep -c "^vm: cannot push" err)" 1 &&
	port2=$(free_port) && proxy "$port2" "$up" --bad-upload && insecure "$port2" &&
	must_fail 1 vm @push "127.0.0.1:$port2/a/b" 2>err &&
	contains err "uploading a blob: BLOB_UPLOAD_INVALID: blob upload invalid (HTTP 400)" &&
	must_fail any skopeo inspect --tls-verify=false "docker://127.0.0.1:$up/a/b" &&
	vm -q @push "127.0.0.1:$port2/a/b"
'

test_expect "a CA in ~/.config/containers/certs.d/HOST:PORT/ca.crt is trusted, as the containers tools do for a user" '
	port=$(free_port) && certs && htpasswd -Bbc htpasswd ci pw 2>/dev/null &&
	registry "$port" tls && chain 1 &&
	auth_json ~/.docker/config.json ci pw "127.0.0.1:$port" &&
	must_fail 1 vm @push "127.0.0.1:$port/c/d" 2>err && contains err "TLS error" &&
	mkdir -p ~/.config/containers/certs.d/127.0.0.1:$port &&
	cp certs/ca.crt ~/.config/containers/certs.d/127.0.0.1:$port/ca.crt &&
	vm -q @push "127.0.0.1:$port/c/d" &&
	rm -r ~/.config/containers/certs.d ~/.docker/config.json
'

test_expect "Ctrl-C during a push: status 130, no tag; during a pull: status 130, no snapshot, the part kept for the next" '
	up=$(free_port) && registry "$up" && insecure "$up" && port=$(free_port) &&
	proxy "$port" "$up" --hold-after 1000000 --hold HOLD && insecure "$port" &&
	vm -q --no-uefi -p "" -D VIRT=64M @create I && qwrite 0 4M && vm -q @backup &&
	{ "$VM_BIN" -q @push "127.0.0.1:$port/i/x" 2>err & } && pushing=$! &&
	wait_for 60 test -e HOLD &&
	kill -INT "$pushing" && must_fail 130 wait "$pushing" && rm HOLD &&
	contains err "interrupted" &&
	must_fail any skopeo inspect --tls-verify=false "docker://127.0.0.1:$up/i/x" &&
	vm -q @push "127.0.0.1:$up/i/x" &&
	port2=$(free_port) &&
	proxy "$port2" "$up" --hold-after 1000000 --hold HOLD2 && insecure "$port2" &&
	mkdir o && cd o && vm -q --no-uefi -p "" -D VIRT=64M @create O && cd .. &&
	{ "$VM_BIN" -q -d o @pull "127.0.0.1:$port2/i/x" 2>err2 & } && pulling=$! &&
	wait_for 60 test -e HOLD2 &&
	kill -INT "$pulling" && must_fail 130 wait "$pulling" && rm HOLD2 &&
	contains err2 "interrupted" &&
	test ! -e o/backups/S0.tar.gz && test -s o/backups/.S0.tar.gz.pull &&
	vm --json -d o @pull "127.0.0.1:$port2/i/x" >j &&
	test "$(jq -r .result.received j)" -lt "$(wc -c <backups/S0.tar.gz)" &&
	cmp backups/S0.tar.gz o/backups/S0.tar.gz
'

test_expect "bad references are usage errors; no snapshot, no push" '
	vm -q --no-uefi -p "" -D VIRT=64M @create B &&
	must_fail 2 vm @push "127.0.0.1:1/Team/x" 2>err &&
	contains err "bad image reference .127.0.0.1:1/Team/x.: a repository is lowercase" &&
	must_fail 2 vm @push "127.0.0.1:1/x@sha256:$(printf %064d 0)" 2>err &&
	contains err "@push names a tag, not a digest" &&
	must_fail 1 vm @push "127.0.0.1:1/x" 2>err &&
	contains err "no snapshot to push" &&
	vm -q @backup &&
	must_fail 1 vm @push "127.0.0.1:1/x" S9 2>err &&
	contains err "no snapshot S9"
'

# spoil ARCHIVE MEMBER: one byte of MEMBER's data changed in place, the
# archive compressed again; its gzip and tar are sound, its MANIFEST no
# longer holds (the memos beside it go)
spoil() {
	check_args spoil "ARCHIVE MEMBER" 2 2 "$@" &&
	python3 - "$1" "$2" <<-\EOF &&
	import gzip, io, sys, tarfile
	tar = bytearray(gzip.decompress(open(sys.argv[1], "rb").read()))
	m = tarfile.open(fileobj=io.BytesIO(bytes(tar))).getmember(sys.argv[2])
	tar[m.offset_data + m.size // 2] ^= 0xFF
	open(sys.argv[1], "wb").write(gzip.compress(bytes(tar)))
	EOF
	rm -f "$(dirname "$1")"/.*.manifest "$(dirname "$1")"/.*.digests
}

test_expect "@restore REF and a pull into an empty directory restore each layer as it arrives: byte for byte; a parent that does not restore is named; Ctrl-C leaves no VM; --dry-run touches nothing" '
	up=$(free_port) && registry "$up" && insecure "$up" &&
	vm -q --no-uefi -p "" -D VIRT=64M @create G &&
	qwrite 0 512K && vm -q @backup && qwrite 8M 4M && vm -q @backup &&
	cp --sparse=always .work/disk-0.img kept.img &&
	ref="127.0.0.1:$up/s/g:v1" && vm -q @push "$ref" &&
	mkdir bad && cp -r backups bad/ && spoil bad/backups/S0.tar.gz disk-0.img &&
	cp guest.conf bad/ && vm -q -d bad @push "127.0.0.1:$up/s/bad:v1" S1 &&
	runner other && mkdir other/a other/b other/c other/d &&
	vm --dry-run -d other/a @pull "$ref" >dry &&
	contains dry "^pull 127.0.0.1:$up/s/g:v1 over HTTP into " &&
	contains dry "^restore the image.s newest snapshot into a new working directory" &&
	equals "$(ls -A other/a other/tmp | tr -d "\n")" "other/a:other/tmp:" &&
	vm -q -d other/b --no-uefi -p "" -D VIRT=64M @create B &&
	vm --json -d other/b @restore "$ref" >j 2>err &&
	equals "$(jq -r .result.name j)" S1 && equals "$(jq -r .result.fetched j)" 2 &&
	contains err "restored G from snapshot S1" &&
	same_disk kept.img other/b/.work/disk-0.img &&
	cmp backups/S1.tar.gz other/b/backups/S1.tar.gz &&
	ls -A other/tmp >tmp.before &&
	must_fail 1 vm -d other/c @pull "127.0.0.1:$up/s/bad:v1" 2>err &&
	contains err "cannot restore S1: S0 (a parent of S1): " &&
	equals "$(grep -c "^vm: cannot" err)" 1 &&
	test ! -e other/c/guest.conf && test ! -e other/c/.work &&
	ls -A other/tmp | cmp - tmp.before &&
	port=$(free_port) &&
	proxy "$port" "$up" --hold-after 1000000 --hold HOLD && insecure "$port" &&
	{ "$VM_BIN" -q -d other/d @pull "127.0.0.1:$port/s/g:v1" 2>err2 & } && pulling=$! &&
	wait_for 60 test -e HOLD &&
	kill -INT "$pulling" && must_fail 130 wait "$pulling" && rm HOLD &&
	contains err2 "interrupted" &&
	test ! -e other/d/guest.conf && test ! -e other/d/.work &&
	test ! -e other/d/backups/S0.tar.gz && test -s other/d/backups/.S1.tar.gz.pull &&
	ls -A other/tmp | cmp - tmp.before &&
	vm --json -d other/d @pull "127.0.0.1:$port/s/g:v1" >j2 &&
	test "$(jq -r .result.received j2)" -lt "$(wc -c <backups/S1.tar.gz)" &&
	same_disk kept.img other/d/.work/disk-0.img
'

test_done
