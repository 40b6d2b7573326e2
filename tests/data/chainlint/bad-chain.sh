#!/bin/bash
# chainlint fixture: each way a failure can get lost in a test body.
# A "LINT: KIND" comment marks each report chainlint must make (tests/lint.sh).
test_expect "a missing && in the middle" '
	vm @create T	# LINT: &&
	vm @run &&
	test -f out
'

test_expect "a ; in the middle of a line, and at the end of one" '
	vm @create T; vm @run &&	# LINT: ;
	must_fail 1 vm @create -- 2>err;	# LINT: ;
	test ! -e guest.conf
'

test_expect "a loop spread over lines, and one nested in a subshell" '
	for k in a b c; do
		make $k &&
		test -f $k	# LINT: loop
	done &&
	(cd sub && while read x; do test -n "$x"; done <list) &&	# LINT: loop
	true
'

test_expect "a whole chain put in the background" '
	vm @create T &&
	"$VM_BIN" @run >out 2>&1 &	# LINT: &
	pid=$!
'

test_expect "if, a group and a function that lose their place in the chain" '
	if test -f a; then
		cat a	# LINT: &&
		cat b
	fi	# LINT: &&
	{ cat c; cat d; } &&	# LINT: ;
	check() {
		grep x "$1"	# LINT: &&
		grep y "$1"
	}	# LINT: &&
	check out
'

helper() {
	cat >job <<-\EOF	# LINT: &&
	echo a; echo b
	EOF
	vm @job job
}
