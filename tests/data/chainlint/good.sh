#!/bin/bash
# chainlint fixture: what a test body may do; chainlint must pass it all.
test_expect "chains, continuations, quotes and here-documents" '
	vm -c 2 @create T \
		"$ISO" &&
	printf "a; b\n" | grep -q "a; b" ||
	false &&
	x=$(echo one; echo two) && y="$(cd / && ls; pwd)" &&
	cat >a.job <<-\EOF &&
	echo one; echo two
	missing && at the end
	EOF
	python3 -c "
import sys; print(1)
" &&
	test "$(printf "%s" "it'"'"'s")" = "it'"'"'s" && # a comment; not code
	true
'

test_expect "loops, if, groups, subshells and functions" '
	for v in @create @run; do contains out "$v" || exit 1; done &&
	for k in a b; do
		make $k &&
		test -f $k || return 1
	done &&
	if test -f a; then
		cat a &&
		cat b
	elif test -f b
	then
		cat b
	else
		cat c
	fi &&
	{ cat a || true; } &&
	(cd sub && ls) >list &&
	login() {
		ssh "$@"
	} &&
	login true
'

test_expect "background commands and explicit results" '
	"$VM_BIN" @run >out 2>&1 &
	pid=$! &&
	vm @create T &&
	{ "$VM_BIN" @run >out 2>&1 & } &&
	rc=0 && { wait $pid || rc=$?; } &&
	kill $pid 2>/dev/null || true
'

test_expect "a one-line body" 'vm --version >v && contains v "^vm"'

helper() {
	(cd "$1" && for f in *.img; do
		sha256sum "$f" || exit 1
	done)
}
