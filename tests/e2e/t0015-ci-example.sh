#!/bin/bash
# The pipeline example of docs/pipelines.md works as written: the chain
# between <!-- ci-chain --> and <!-- /ci-chain --> is the one both its CI
# jobs show, and it runs with real
# QEMU and the real rescue against a small unattended installer, stores
# backups/S0.tar.gz, its JSON lines are as docs/json.md documents, its jq
# lines read them, and that snapshot restores.  The fleet's blocks
# (ci-login, ci-push, ci-pull) are in both jobs too: the image is pushed
# to a registry started here (TLS, htpasswd) and each matrix job pulls
# it on a runner of its own and runs its job.
. "$(dirname "$0")/../lib.sh"

need_rescue

# shows FILE NAME CHAIN: block NAME of FILE holds the lines of CHAIN in a
# row, whatever their indent there
shows() {
	check_args shows "FILE NAME CHAIN" 3 3 "$@" &&
	local code chain &&
	code=$(block "$1" "$2" | sed 's/^ *//') &&
	chain=$(sed 's/^ *//' "$3") &&
	[ -n "$chain" ] && [[ $code == *"$chain"* ]] || {
		echo "block $2 of $1 does not show the chain:" >&2 &&
		cat "$3" >&2 &&
		return 1
	}
}

# shows_lines FILE NAME LINES: each line of LINES is a line of block NAME
# of FILE, in order, whatever its indent or a YAML list's "- " before it
shows_lines() {
	check_args shows_lines "FILE NAME LINES" 3 3 "$@" &&
	block "$1" "$2" >shown &&
	python3 - shown "$3" <<-\EOF
	import sys
	norm = lambda l: l.strip().removeprefix("- ")
	have = [norm(l) for l in open(sys.argv[1])]
	want = [norm(l) for l in open(sys.argv[2]) if l.strip()]
	i = 0
	for w in want:
	    while i < len(have) and have[i] != w:
	        i += 1
	    if i == len(have):
	        sys.exit("not shown in order: " + w)
	EOF
}

test_expect "docs/pipelines.md and both its CI jobs show the same chain" '
	block "$TOP/docs/pipelines.md" ci-chain >chain.sh &&
	contains chain.sh "@backup S0" && contains chain.sh "> *vm-steps.jsonl" &&
	block "$TOP/docs/pipelines.md" ci-jq >jq.sh && test -s jq.sh &&
	shows "$TOP/docs/pipelines.md" ci-github chain.sh &&
	shows "$TOP/docs/pipelines.md" ci-gitlab chain.sh &&
	for b in ci-login ci-push ci-pull; do
		block "$TOP/docs/pipelines.md" $b >$b.sh && test -s $b.sh &&
		shows_lines "$TOP/docs/pipelines.md" ci-github $b.sh &&
		shows_lines "$TOP/docs/pipelines.md" ci-gitlab $b.sh || return 1
	done &&
	contains ci-pull.sh "@pull \"\$IMAGE\" @job \"\$JOB\"" &&
	test -f "$TOP/tests/data/demo-check.job" && test -f "$TOP/tests/data/demo-size.job"
'

test_expect "the chain builds S0 from an installer; S0 restores elsewhere" '
	iso=$(autorun_iso test-install "$TOP/tests/data/autorun-install") &&
	mkdir ../bin && ln -s "$VM_BIN" ../bin/vm &&
	block "$TOP/docs/pipelines.md" ci-chain >../chain.sh &&
	cp "$TOP/tests/data/demo-check.job" check.job &&
	{ ISO=$iso PATH=$PWD/../bin:$PATH bash -e ../chain.sh 2>err ||
		{ echo "the chain exited with status $?" && cat err && false; }; } &&
	test -s backups/S0.tar.gz && test -f vm-steps.jsonl &&
	no_qemu &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" vm-steps.jsonl \
		create run job backup &&
	block "$TOP/docs/pipelines.md" ci-jq >../jq.sh &&
	bash -e ../jq.sh >jq.out &&
	size=$(stat -c %s backups/S0.tar.gz) &&
	test "$(sed -n 1p jq.out)" = "$PWD/backups/S0.tar.gz $size" &&
	contains jq.out "^job check: [0-9][0-9]* s$" &&
	test "$(wc -l <jq.out)" -eq 2 &&
	mkdir ../later ../later/backups &&
	cp backups/S0.tar.gz ../later/backups/ && cp check.job ../later/ &&
	cd ../later &&
	vm @restore S0 @job check >out 2>err &&
	contains out "VM-INSTALLED-BY-AUTORUN" && no_qemu &&
	cd ../vm &&
	: the build job publishes the image to a registry with TLS and a user &&
	port=$(free_port) && certs && htpasswd -Bbc htpasswd ci pw 2>/dev/null &&
	registry "$port" tls &&
	echo "registry_ca = $PWD/certs/ca.crt" >>"$XDG_CONFIG_HOME/vm.conf" &&
	export REGISTRY=127.0.0.1:$port REGISTRY_USER=ci REGISTRY_PASSWORD=pw \
		IMAGE=127.0.0.1:$port/ci/golden:v1 &&
	block "$TOP/docs/pipelines.md" ci-login >../login.sh &&
	block "$TOP/docs/pipelines.md" ci-push >../push.sh &&
	block "$TOP/docs/pipelines.md" ci-pull >../pull.sh &&
	PATH=$PWD/../bin:$PATH bash -e ../login.sh &&
	PATH=$PWD/../bin:$PATH bash -e ../push.sh 2>err &&
	contains err "1 sent" &&
	: each test job, on a runner of its own, pulls it and runs its job &&
	for job in check size; do
		mkdir -p ../runner-$job/home/.config ../runner-$job/cache ../runner-$job/opt &&
		cp "$XDG_CONFIG_HOME/vm.conf" ../runner-$job/home/.config/ &&
		ln -s "$TOP" ../runner-$job/opt/vm-src &&
		( cd ../runner-$job &&
		  export HOME=$PWD/home XDG_CONFIG_HOME=$PWD/home/.config \
			XDG_CACHE_HOME=$PWD/cache JOB=$job PATH=$PWD/../bin:$PATH &&
		  bash -e ../login.sh &&
		  sed "s|/opt/vm-src|$PWD/opt/vm-src|" ../pull.sh | bash -e 2>err ||
			{ cat err && false; } ) || return 1
	done &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" \
		../runner-check/vm-steps.jsonl pull job &&
	contains ../runner-check/err "VM-INSTALLED-BY-AUTORUN" &&
	contains ../runner-size/err "the first disk has [0-9]* sectors" &&
	no_qemu
'

test_done
