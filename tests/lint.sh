#!/bin/bash
# make check: tests/chainlint.sh over every tests/e2e/t*.sh, and over its
# own fixtures in tests/data/chainlint/: each bad-*.sh must draw exactly
# the reports its "# LINT: KIND..." marks name (KIND: && ; & loop), and
# good.sh none.
. "$(dirname "$0")/lib.sh"

# kinds FILE: "LINE KIND" for each report chainlint wrote into FILE
kinds() {
	sed -n 's/^[^:]*:\([0-9]*\): ".*": \(.*\)$/\1 \2/p' "$1" |
	while read -r line msg; do
		case $msg in
		*"loop body"*) echo "$line loop" ;;
		*background*) echo "$line &" ;;
		";"*|*"in ; not"*) echo "$line ;" ;;
		*"end in &&"*) echo "$line &&" ;;
		*) echo "$line ?" ;;
		esac
	done | sort
}

# marks FILE: "LINE KIND" for each kind a "# LINT:" comment names
marks() {
	local line text kinds k
	grep -n '# LINT:' "$1" | while IFS=: read -r line text; do
		read -ra kinds <<<"${text##*# LINT:}"
		for k in "${kinds[@]}"; do
			echo "$line $k"
		done
	done | sort
}

for f in "$TOP"/tests/e2e/t*.sh; do
	name=${f#"$TOP"/}
	test_expect "chainlint passes $name" '
		bash "$TOP/tests/chainlint.sh" "$f"
	'
done

for f in "$TOP"/tests/data/chainlint/bad-*.sh; do
	name=${f#"$TOP"/}
	test_expect "chainlint finds exactly what $name plants" '
		must_fail 1 bash "$TOP/tests/chainlint.sh" "$f" >out &&
		marks "$f" >want && test -s want &&
		kinds out >got && diff -u want got
	'
done

test_expect "chainlint passes tests/data/chainlint/good.sh, silently" '
	bash "$TOP/tests/chainlint.sh" "$TOP/tests/data/chainlint/good.sh" >out &&
	test ! -s out
'

test_done
