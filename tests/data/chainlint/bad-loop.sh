#!/bin/bash
# chainlint fixture: the loop t0001 had, which checked only its last verb.
# A "LINT: KIND" comment marks each report chainlint must make (tests/lint.sh).
test_expect "a loop that checks only its last round" '
	vm -h >out &&
	for v in @create @run @destroy; do contains out "$v"; done &&	# LINT: loop
	vm --version >v
'
