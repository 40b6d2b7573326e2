#!/bin/bash
# make check: the unit tests (cmocka, TAP), chainlint over the e2e tests
# (tests/lint.sh) and every tests/e2e/t*.sh, then one line
# "N passed, N failed".  Arguments: the unit test binaries.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
passed=0 failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# sets p and f from $out and adds them to the totals
count() {
	p=$(grep -cE '^ok ' "$out")
	f=$(grep -cE '^not ok ' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
}

for t in "$@"; do
	echo "# unit: $t"
	CMOCKA_MESSAGE_OUTPUT=TAP timeout 120 "$t" >"$out" 2>&1
	rc=$?
	grep -E '^(not ok|#)' "$out" | sed 's/^/  /'
	count
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "  not ok - $t crashed (status $rc)"
		cat "$out" | tail -n 20
		failed=$((failed + 1))
	fi
	echo "  $p passed, $f failed"
done

# tap KIND FILE: run a TAP script; a script that fails without a
# "not ok" line still counts as one failure
tap() {
	echo "# $1: $2"
	timeout 1800 bash "$2" >"$out" 2>&1
	rc=$?
	sed 's/^/  /' "$out"
	count
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "  not ok - $2 exited with status $rc"
		failed=$((failed + 1))
	fi
}

tap lint tests/lint.sh
for t in ${E2E:-tests/e2e/t*.sh}; do
	tap e2e "$t"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
