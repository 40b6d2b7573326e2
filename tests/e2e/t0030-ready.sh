#!/bin/bash
# Readiness as camvirtd means it: @start returns once the guest's service
# answers (ready = tcp:PORT, ssh or agent), not when QEMU merely runs;
# a service that never answers within initialize_timeout fails @start
# and stops the VM; a ready the VM cannot meet is refused before a boot.
# The guest starts its services 10 s after it boots.
. "$(dirname "$0")/../lib.sh"

need_rescue
LATE=$(autorun_iso test-late "$TOP/tests/data/autorun-late") || {
	echo "not ok 1 - cannot build the late-services ISO"
	exit 1
}
export LATE

test_expect "ready = tcp:PORT: @start returns once the guest's silent service takes connections; ready = auto returns before" '
	hp=$(free_port) &&
	vm --no-uefi -D VIRT=64M -f "tcp:127.0.0.1:$hp-:8080" @create L "$LATE" &&
	vm @start 2>err && lacks .work/console.log "httpd listens" &&
	vm @kill && rm -f .work/console.log &&
	printf "[vm]\nready = tcp:8080\n" >>guest.conf &&
	vm @start 2>err &&
	contains .work/console.log "^LATE-GUEST: httpd listens on 8080" &&
	curl -sf --max-time 10 "http://127.0.0.1:$hp/" >page &&
	contains page "^late hello$" &&
	vm -q @status >st && contains st "^L: running" &&
	vm @kill && no_qemu
'

test_expect "ready = ssh waits for sshd to greet on the forward to 22; ready = agent for the guest agent to answer" '
	sp=$(free_port) &&
	vm --no-uefi -D VIRT=64M -f "tcp:127.0.0.1:$sp-:22" @create S "$LATE" &&
	printf "[vm]\nready = ssh\n" >>guest.conf &&
	vm @start 2>err &&
	contains .work/console.log "^LATE-GUEST: sshd listens on 22" &&
	vm @kill && rm -f .work/console.log &&
	sed -i "s/^ready = ssh$/ready = agent/" guest.conf &&
	vm @start 2>err &&
	contains .work/console.log "^LATE-GUEST: qemu-ga runs on /dev/vport" &&
	vm @kill && no_qemu
'

test_expect "nothing answers on the port within initialize_timeout: @start fails, says what it waited for, the VM is stopped" '
	hp=$(free_port) &&
	vm --no-uefi -D VIRT=64M -f "tcp:127.0.0.1:$hp-:8081" @create N "$LATE" &&
	printf "[vm]\nready = tcp:8081\ninitialize_timeout = 45\n" >>guest.conf &&
	must_fail 1 vm @start 2>err &&
	contains err "^vm: cannot start N: not ready within 45 s (initialize_timeout): nothing took a connection on the guest.s port 8081; it was stopped$" &&
	contains .work/console.log "^LATE-GUEST: httpd listens on 8080" &&
	no_qemu && test ! -e run.json
'

test_expect "a ready the VM cannot meet is refused before it boots, in one line" '
	vm --no-uefi @create E "$LATE" &&
	printf "[vm]\nready = tcp:9999\n" >>guest.conf &&
	must_fail 1 vm @start 2>err &&
	contains err "^vm: cannot start E: ready = tcp:9999, but no forward reaches the guest.s port 9999 from 127.0.0.1 (add one to forwards; netdev = yes)$" &&
	must_fail 1 vm @run 2>err &&
	contains err "^vm: cannot run E: ready = tcp:9999, but no forward reaches the guest.s port 9999 from 127.0.0.1 (add one to forwards; netdev = yes)$" &&
	sed -i "s/^ready = tcp:9999$/ready = agent\nguest_agent = no/" guest.conf &&
	must_fail 1 vm @start 2>err &&
	contains err "^vm: cannot start E: ready = agent, but guest_agent = no (the guest has no agent.s channel)$" &&
	sed -i "s/^ready = agent$/ready = http/" guest.conf &&
	must_fail 1 vm @start 2>err &&
	contains err "not auto, ssh, agent or tcp:PORT" &&
	test "$(wc -l <err)" = 1 &&
	sed -i "s/^ready = http$/ready = tcp:8080\nforwards = tcp:192.0.2.1:8080-:8080/" guest.conf &&
	must_fail 1 vm @start 2>err &&
	contains err "^vm: cannot start E: ready = tcp:8080, but no forward reaches the guest.s port 8080 from 127.0.0.1" &&
	no_qemu && test ! -e run.json && test ! -e .work/console.log
'

test_done
