#!/bin/bash
# @push to a real registry (Docker Distribution, Debian's docker-registry)
# started here on 127.0.0.1: over plain HTTP for a registry listed as
# insecure, and over TLS with a certificate made here and htpasswd users.
# skopeo, the containers tool, must read what vm pushed.
. "$(dirname "$0")/../lib.sh"

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

# chain N: a VM with snapshots S0..S(N-1), each changing the disk
chain() {
	check_args chain N 1 1 "$@" &&
	vm -q --no-uefi -p "" -D VIRT=64M @create R &&
	for i in $(seq 0 $(($1 - 1))); do
		qwrite $((i * 4))M 2M && vm -q @backup || return 1
	done
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
	equals "$(jq -r .result.uploaded p1)" 3 &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" p1 push &&
	size=$(cat backups/S*.tar.gz | wc -c) &&
	test "$(sent p1)" -ge "$size" &&
	test "$(sent p1)" -le $((size + 4096)) &&
	vm --json @push "127.0.0.1:$port/ci/golden:v1" >p2 &&
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

test_done
