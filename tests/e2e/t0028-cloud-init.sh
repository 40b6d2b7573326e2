#!/bin/bash
# A real cloud image, end to end: Debian 12 with Debian's cloud-init,
# made by debootstrap (tests/data/cloud-image.sh, once, in the shared
# test cache), served with its SHA256SUMS on 127.0.0.1 and named in the
# user's catalogue (also in place of debian-12, for the README's first
# recipe, run as written).  @create by name, @start, @ssh as the image's
# default user with your key, two VMs of it at once; the same image
# without cloud-init reached through add-ssh-keys.
. "$(dirname "$0")/../lib.sh"

need_rescue
IMG=$VM_TEST_SHARED/cloud-image
# made once, one test file at a time (debootstrap needs Debian's
# archive), under a lock of its own: the autorun ISOs' is not held
# those minutes
if ! flock -w 1800 "$VM_TEST_SHARED/cloud-image.lock" \
	bash "$TOP/tests/data/cloud-image.sh" "$IMG" >"$T/image.log" 2>&1; then
	echo "not ok 1 - cannot make the Debian test image (tests/data/cloud-image.sh):"
	sed 's/^/#   /' "$T/image.log"
	exit 1
fi
python3 "$TOP/tests/data/httpd.py" "$IMG" "$T/port" "$T/httpd.log" &
HTTPD=$!
trap 'kill $HTTPD 2>/dev/null; kill_ours; rm -rf "$T"' EXIT
wait_for 10 test -s "$T/port" || { echo "not ok 1 - no test server"; exit 1; }
URL=http://127.0.0.1:$(cat "$T/port")
mkdir -p "$XDG_CONFIG_HOME/vm" "$HOME/.ssh"
# the test image under its own name, and in place of Debian's for the
# README's recipe
for name in debian-12-test debian-12; do
	printf "[%s]\nabout = Debian 12 with cloud-init, made by the tests\nurl = %s\nsums = %s\nfirmware = uefi\nuser = debian\n" \
		"$name" "$URL/debian-12-test.qcow2" "$URL/SHA256SUMS"
done >"$XDG_CONFIG_HOME/vm/images.conf"
# the recipe calls vm from PATH
mkdir -p "$T/bin" && ln -sf "$VM_BIN" "$T/bin/vm" && export PATH="$T/bin:$PATH"
ssh-keygen -q -t ed25519 -N "" -C cloud-key -f "$HOME/.ssh/id_ed25519"
export URL
# slow_boots: under TCG a first boot with cloud-init takes minutes on a
# busy machine; @start and @ssh wait up to [rescue] boot_timeout
slow_boots() {
	check_args slow_boots "no arguments" 0 0 "$@" &&
	printf "[rescue]\nboot_timeout = 900\n" >>"$XDG_CONFIG_HOME/vm.conf"
}

test_expect "the README's first recipe as written, and a second VM at once: cloud-init made the image's user with your key (sudo, the VM's name), or ran your own user-data; two ports, both answer" '
	slow_boots && block "$TOP/README.md" recipe-cloud >cloud.sh && test -s cloud.sh &&
	contains cloud.sh "@create web debian-12 @start @ssh" &&
	{ bash -e cloud.sh >a.out 2>&1 & } && pa=$! &&
	vm -d b -m 1G @create b debian-12-test &&
	printf "#cloud-config\nhostname: own-name\nusers:\n  - name: alice\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    shell: /bin/bash\n    ssh_authorized_keys:\n      - %s\n" \
		"$(cat "$HOME/.ssh/id_ed25519.pub")" >b/user-data &&
	sed -i "s/^ssh_user = .*/ssh_user = alice/" b/guest.conf &&
	vm -d b @start >b.out 2>&1 &&
	pb_port=$(vm -d b --json @status | python3 -c "import json,sys; print(json.load(sys.stdin)[\"result\"][\"ssh_port\"])") &&
	test -n "$pb_port" &&
	# with a seed, @start returned once sshd answers: the banner is there
	ssh_banner "$pb_port" &&
	{ wait "$pa" || ! cat a.out; } &&
	a=$HOME/vms/web &&
	contains a.out "image debian-12: .*, verified" &&
	contains a.out "^debian$" && contains a.out "^Linux web .* x86_64" &&
	contains "$a/guest.conf" "^ssh_user = debian$" &&
	pa_port=$(vm -d "$a" --json @status | python3 -c "import json,sys; print(json.load(sys.stdin)[\"result\"][\"ssh_port\"])") &&
	test -n "$pa_port" && test -n "$pb_port" && test "$pa_port" != "$pb_port" &&
	vm -d "$a" -q @ssh "hostname; sudo -n true && echo sudo-ok" >ha 2>ha.err &&
	contains ha "^web$" && contains ha "^sudo-ok$" &&
	lacks ha.err "unable to resolve host" &&
	vm -d b -q @ssh "id -un; hostname" >hb &&
	contains hb "^alice$" && contains hb "^own-name$" &&
	# (its last stage may still run after sshd is up)
	wait_for 300 grep -aq "Cloud-init v.* finished" "$a/.work/console.log" &&
	contains "$a/.work/console.log" "Cloud-init v.* finished.*DataSourceNoCloud" &&
	vm -d "$a" @stop 120 && vm -d b @stop 120 && no_qemu
'

test_expect "without cloud-init (cloud_init = no): add-ssh-keys for a user of the image gives the same login" '
	slow_boots && vm -d p -m 1G @create p debian-12-test &&
	sed -i "s/^ssh_user = .*/ssh_user = tester/" p/guest.conf &&
	printf "cloud_init = no\n" >>p/guest.conf &&
	vm -d p @job add-ssh-keys @start >out 2>&1 &&
	contains out "1 key(s) added" &&
	lacks p/.work/run-vm.sh seed0 &&
	vm -d p -q @ssh "id -un" >who && contains who "^tester$" &&
	vm -d p @stop 120 && no_qemu
'

test_done
