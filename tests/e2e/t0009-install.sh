#!/bin/bash
# make install into a DESTDIR under another PREFIX: the installed vm finds
# its jobs, rescue builder and rescue image where it was put, and says
# installed commands, not source-tree targets.
. "$(dirname "$0")/../lib.sh"

ROOT=$T/root
PFX=/opt/vm-test
export ROOT PFX

test_expect "make install PREFIX DESTDIR puts every file under the new prefix" '
	make -s -C "$TOP" install PREFIX="$PFX" DESTDIR="$ROOT" >out 2>&1 &&
	test -x "$ROOT$PFX/bin/vm" &&
	test -f "$ROOT$PFX/share/vm/jobs/add-ssh-keys.job" &&
	test -x "$ROOT$PFX/share/vm/rescue/build-rescue" &&
	test -f "$ROOT$PFX/share/vm/rescue/guest/init" &&
	test -f "$ROOT$PFX/share/vm/rescue/out/rescue-x86_64.iso" &&
	test -f "$ROOT$PFX/share/man/man1/vm.1" &&
	test -f "$ROOT$PFX/share/doc/vm/README.md" &&
	test -f "$ROOT$PFX/share/doc/vm/README.ru.md" &&
	test -f "$ROOT$PFX/share/doc/vm/vm.conf.example" &&
	test ! -e "$ROOT/usr/local"
'

test_expect "the installed vm runs a job from its own data directory" '
	j="$ROOT$PFX/share/vm/jobs" &&
	printf "echo \"pre: JOBSDIR=\$JOBSDIR\"\n" >"$j/t-where.pre" &&
	printf "echo job ran in \$(uname -n)\n" >"$j/t-where.job" &&
	export XDG_CACHE_HOME=$PWD/cache &&
	"$ROOT$PFX/bin/vm" --no-uefi -D AHCI=64M @create I &&
	"$ROOT$PFX/bin/vm" @job t-where >out 2>&1 &&
	contains out "pre: JOBSDIR=$j$" &&
	contains out "job ran in rescue" &&
	"$ROOT$PFX/bin/vm" --dry-run @job t-where >dry 2>&1 &&
	lacks dry "$TOP/rescue" && lacks dry /usr/local/share/vm
'

test_expect "VM_DATADIR still overrides where the data directory is" '
	"$ROOT$PFX/bin/vm" --no-uefi @create I &&
	mkdir -p alt/jobs &&
	must_fail 1 env VM_DATADIR="$PWD/alt" "$ROOT$PFX/bin/vm" --dry-run \
		@job add-ssh-keys 2>err &&
	contains err "$PWD/alt/jobs/add-ssh-keys.job"
'

test_expect "without a rescue image the installed vm names the installed builder" '
	printf "echo hi\n" >"$ROOT$PFX/share/vm/jobs/t-where.job" &&
	cp -a "$ROOT" "$TEST_TMP/norescue" &&
	rm -rf "$TEST_TMP/norescue$PFX/share/vm/rescue/out" &&
	"$TEST_TMP/norescue$PFX/bin/vm" --no-uefi @create I &&
	must_fail 1 "$TEST_TMP/norescue$PFX/bin/vm" @job t-where 2>err &&
	contains err "build it: $TEST_TMP/norescue$PFX/share/vm/rescue/build-rescue" &&
	lacks err "make rescue"
'

test_expect "make uninstall removes what make install put there" '
	make -s -C "$TOP" uninstall PREFIX="$PFX" DESTDIR="$ROOT" &&
	test ! -e "$ROOT$PFX/bin/vm" &&
	test ! -e "$ROOT$PFX/share/vm" &&
	test ! -e "$ROOT$PFX/share/doc/vm" &&
	test ! -e "$ROOT$PFX/share/man/man1/vm.1"
'

test_done
