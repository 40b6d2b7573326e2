#!/bin/bash
# The catalogue of images: vm images, @create NAME IMAGE by a name of
# it, each image verified before its first use against the checksum
# file the entry names (and that file's signature, with gpgv), against
# a local test server (127.0.0.1 only).
. "$(dirname "$0")/../lib.sh"

SRV=$T/srv
mkdir -p "$SRV/files" "$SRV/other"
qemu-img create -q -f qcow2 "$SRV/files/test-cloud.qcow2" 64M
python3 "$TOP/tests/data/httpd.py" "$SRV/files" "$SRV/port" "$SRV/log" &
HTTPD=$!
trap 'kill $HTTPD 2>/dev/null; kill_ours; rm -rf "$T"' EXIT
wait_for 10 test -s "$SRV/port" || { echo "not ok 1 - no test server"; exit 1; }
URL=http://127.0.0.1:$(cat "$SRV/port")
# a signing key of this test, and one of nobody the catalogue trusts
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME" "$T/gnupg-other"
gpg -q --batch --pinentry-mode loopback --passphrase "" \
	--quick-gen-key "vm test <test@example.invalid>" ed25519 sign never 2>/dev/null
gpg -q --export >"$T/key.gpg"
GNUPGHOME=$T/gnupg-other gpg -q --batch --pinentry-mode loopback --passphrase "" \
	--quick-gen-key "other <other@example.invalid>" ed25519 sign never 2>/dev/null
GNUPGHOME=$T/gnupg-other gpg -q --export >"$T/other.gpg"
export SRV URL

# sign_sums: the test image's SHA256SUMS (detached signature), SHA512SUMS
# and CHECKSUM (BSD lines, signed inline), as distributions publish them
sign_sums() {
	check_args sign_sums "no arguments" 0 0 "$@" &&
	(cd "$SRV/files" &&
	 sha256sum test-cloud.qcow2 >SHA256SUMS &&
	 sha512sum test-cloud.qcow2 >SHA512SUMS &&
	 rm -f SHA256SUMS.gpg CHECKSUM &&
	 gpg -q --batch --detach-sign -o SHA256SUMS.gpg SHA256SUMS &&
	 sha256sum --tag test-cloud.qcow2 | gpg -q --batch --clearsign -o CHECKSUM)
}
sign_sums
# catalogue KEYRING: the user's images.conf, three entries for the test
# image (t-sig, t-inline, t-plain)
catalogue() {
	check_args catalogue KEYRING 1 1 "$@" &&
	mkdir -p "$XDG_CONFIG_HOME/vm" &&
	cat >"$XDG_CONFIG_HOME/vm/images.conf" <<-EOF
	[t-sig]
	about = the test image, SHA256SUMS signed
	url = $URL/test-cloud.qcow2
	sums = $URL/SHA256SUMS
	sig = $URL/SHA256SUMS.gpg
	key = $1
	firmware = bios
	user = tester
	[t-inline]
	url = $URL/test-cloud.qcow2
	sums = $URL/CHECKSUM
	key = $1
	[t-plain]
	url = $URL/test-cloud.qcow2
	sums = $URL/SHA512SUMS
	EOF
}
# one_line FILE: FILE holds one message (the step's banner, the chain's
# "@create failed" and a download's progress aside)
one_line() {
	check_args one_line FILE 1 1 "$@" &&
	if [ "$(grep -av -e "^\*\*\* " -e "^vm: @create failed" -e ": started (" "$1" | wc -l)" != 1 ]; then
		sed "s/^/|  /" "$1" >&2 && echo "$1 is not one line (above)" >&2 && return 1
	fi
}
downloads() { ls "$XDG_CACHE_HOME/vm/downloads" 2>/dev/null | grep -v "\.meta$" | sort | tr "\n" " "; }

test_expect "vm images lists vm's catalogue; a user's images.conf adds and replaces entries whole" '
	rm -f "$XDG_CONFIG_HOME/vm/images.conf" &&
	vm images >out &&
	contains out "^NAME  *FIRMWARE  *USER  *ABOUT" &&
	for n in debian-12 debian-13 ubuntu-22.04 ubuntu-24.04 fedora-41 \
		almalinux-9 rocky-9 alpine-3.20 arch; do
		contains out "^$n " || exit 1
	done &&
	vm images debian-12 >one &&
	contains one "^debian-12: Debian 12" &&
	contains one "^  sums  *https://cloud.debian.org/.*/SHA512SUMS$" &&
	contains one "^  user  *debian$" &&
	contains one "^  from  *$TOP/conf/images.conf$" &&
	catalogue "$T/key.gpg" &&
	printf "[debian-12]\nurl = $URL/test-cloud.qcow2\nsha256 = %s\n" \
		"$(sha256sum "$SRV/files/test-cloud.qcow2" | cut -d" " -f1)" \
		>>"$XDG_CONFIG_HOME/vm/images.conf" &&
	vm images >out &&
	contains out "^t-sig  *bios  *tester  *the test image" &&
	contains out "^t-plain  *any  *-  *$URL/test-cloud.qcow2$" &&
	vm images debian-12 >one &&
	contains one "^  url  *$URL/test-cloud.qcow2$" &&
	lacks one "sums\|user  *debian" &&
	contains one "^  from  *$XDG_CONFIG_HOME/vm/images.conf$" &&
	vm --json images t-sig >json &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" json images &&
	python3 -c "
import json
r = json.load(open(\"json\"))
e = r[\"result\"][\"images\"]
assert r[\"args\"] == [\"t-sig\"] and len(e) == 1, r
assert e[0][\"key\"] == \"$T/key.gpg\" and e[0][\"firmware\"] == \"bios\", e
" &&
	must_fail 1 vm images no-such 2>err &&
	contains err "no image .no-such. in the catalogue (vm images lists them)" &&
	must_fail 2 vm images a b 2>err && one_line err
'

test_expect "a bad catalogue file is one line with its file and line, and nothing is made" '
	mkdir -p "$XDG_CONFIG_HOME/vm" &&
	printf "[x]\nurl = /srv/x.qcow2\n" >"$XDG_CONFIG_HOME/vm/images.conf" &&
	must_fail 1 vm images 2>err &&
	contains err "images.conf:2: url: ./srv/x.qcow2. is not a URL" && one_line err &&
	must_fail 1 vm @create X x 2>err &&
	contains err "images.conf:2: url" && test ! -e guest.conf &&
	printf "[x]\nurl = $URL/x.qcow2\nsums = $URL/S\nsig = $URL/S.gpg\n" \
		>"$XDG_CONFIG_HOME/vm/images.conf" &&
	must_fail 1 vm images 2>err &&
	contains err "images.conf: \[x\]: sig without the key to check it with"
'

test_expect "@create NAME IMAGE by a catalogue name: the image verified (signed SHA256SUMS), its firmware and user, a virtio overlay on the cache" '
	catalogue "$T/key.gpg" && rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	vm @create web t-sig 2>err &&
	contains err "image t-sig: .*test-cloud.qcow2, verified" &&
	contains guest.conf "^base = $URL/test-cloud.qcow2$" &&
	contains guest.conf "^base_sha256 = $(sha256sum "$SRV/files/test-cloud.qcow2" | cut -d" " -f1)$" &&
	contains guest.conf "^uefi = no$" && contains guest.conf "^ssh_user = tester$" &&
	# disk 0 on virtio, which every cloud kernel has, grown to the default
	contains guest.conf "^disks = VIRT=30G$" &&
	qemu-img info .work/disk-0.img >info &&
	contains info "^backing file: $XDG_CACHE_HOME/vm/downloads/.*test-cloud.qcow2" &&
	contains "$SRV/log" "GET /SHA256SUMS.gpg" &&
	# the command line and the settings files win over the catalogue
	rm -rf w2 && printf "[vm]\nssh_user = me\n" >>"$XDG_CONFIG_HOME/vm.conf" &&
	vm -d w2 --uefi -D AHCI=1G @create w2 t-sig &&
	contains w2/guest.conf "^uefi = yes$" && lacks w2/guest.conf "^ssh_user" &&
	contains w2/guest.conf "^disks = AHCI=1G$" &&
	# a directory named as the image is not the image
	mkdir -p t-plain && vm -d t-plain @create t-plain t-plain &&
	contains t-plain/guest.conf "^base = $URL/test-cloud.qcow2$"
'

test_expect "a checksum file signed inline (CHECKSUM) and a plain SHA512SUMS verify too" '
	catalogue "$T/key.gpg" && rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	vm -d a @create a t-inline && contains a/guest.conf "^base = $URL/" &&
	vm -d b @create b t-plain && contains b/guest.conf "^base = $URL/" &&
	test "$(downloads)" != ""
'

test_expect "a bad signature, a key the keyring lacks, a digest that does not match: refused in one line, nothing cached, nothing made" '
	catalogue "$T/key.gpg" && rm -rf "$XDG_CACHE_HOME/vm/downloads" &&
	cp "$SRV/files/SHA256SUMS" sums.good &&
	sed -i "s/^./0/" "$SRV/files/SHA256SUMS" &&
	must_fail 1 vm @create X t-sig 2>err &&
	contains err "cannot create X: signature $URL/SHA256SUMS.gpg of the checksum file: a bad signature (keyring $T/key.gpg)" &&
	one_line err && test ! -e guest.conf && test -z "$(downloads)" &&
	cp sums.good "$SRV/files/SHA256SUMS" &&
	catalogue "$T/other.gpg" &&
	must_fail 1 vm @create X t-sig 2>err &&
	contains err "signed by a key the keyring does not have (keyring $T/other.gpg)" &&
	must_fail 1 vm @create X t-inline 2>err &&
	contains err "$URL/CHECKSUM: signed by a key the keyring does not have" &&
	test ! -e guest.conf && test -z "$(downloads)" &&
	catalogue "$T/nokey.gpg" &&
	must_fail 1 vm @create X t-sig 2>err &&
	contains err "keyring $T/nokey.gpg (for \[t-sig\] in .*images.conf): no such file" &&
	catalogue "$T/key.gpg" &&
	# the image changed, its listed digest did not: deleted, refused
	cp "$SRV/files/test-cloud.qcow2" good.qcow2 &&
	echo tampered >>"$SRV/files/test-cloud.qcow2" &&
	must_fail 1 vm @create X t-plain 2>err &&
	contains err "checksum mismatch for $URL/test-cloud.qcow2: expected sha512 " &&
	contains err "(the download was deleted)" && one_line err &&
	test ! -e guest.conf && lacks_image=$(downloads) &&
	case "$lacks_image" in *test-cloud*) exit 1 ;; esac &&
	cp good.qcow2 "$SRV/files/test-cloud.qcow2" &&
	# not listed at all
	sed -i "s/test-cloud/other/" "$SRV/files/SHA512SUMS" &&
	must_fail 1 vm @create X t-plain 2>err &&
	contains err "$URL/SHA512SUMS does not list test-cloud.qcow2" &&
	sign_sums
'

test_expect "a name in no catalogue is said as such; a path or URL is still a path or URL" '
	catalogue "$T/key.gpg" &&
	must_fail 1 vm @create X debian-99 2>err &&
	contains err "cannot create X: debian-99 is no file and no image of the catalogue (vm images lists them)" &&
	one_line err && test ! -e guest.conf &&
	cp "$SRV/files/test-cloud.qcow2" t-sig &&
	vm @create X t-sig 2>err && contains guest.conf "^base = $PWD/t-sig$" &&
	lacks err "verified"
'

test_done
