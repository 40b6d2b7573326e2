#!/bin/bash
# The pipeline example of docs/pipelines.md works as written: the chain
# between <!-- ci-chain --> and <!-- /ci-chain --> is the one both its CI
# jobs show, and it runs with real
# QEMU and the real rescue against a small unattended installer, stores
# backups/S0.tar.gz, its JSON lines are as docs/json.md documents, its jq
# lines read them, and that snapshot restores.
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

test_expect "docs/pipelines.md and both its CI jobs show the same chain" '
	block "$TOP/docs/pipelines.md" ci-chain >chain.sh &&
	contains chain.sh "@backup S0" && contains chain.sh "> *vm-steps.jsonl" &&
	block "$TOP/docs/pipelines.md" ci-jq >jq.sh && test -s jq.sh &&
	shows "$TOP/docs/pipelines.md" ci-github chain.sh &&
	shows "$TOP/docs/pipelines.md" ci-gitlab chain.sh
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
	contains out "VM-INSTALLED-BY-AUTORUN" && no_qemu
'

test_done
