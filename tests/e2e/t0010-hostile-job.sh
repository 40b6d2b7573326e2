#!/bin/bash
# A hostile @job: what the guest leaves in the out share (setuid files,
# device nodes, foreign owners, symlinks, FIFOs, a 1 TB sparse job.log,
# a garbage STATUS) reaches the host as private regular files and is
# read with bounds, and the job's host scripts end with their timeout,
# their whole process group with them.
. "$(dirname "$0")/../lib.sh"

need_rescue

# one_error FILE: vm said exactly one thing (its "rescue ... started"
# and the chain runner's "@VERB failed" lines aside)
one_error() {
	check_args one_error FILE 1 1 "$@" &&
	local n &&
	n=$(grep -v -e '^vm: @[a-z-]* failed$' -e '^vm: rescue for .* started' \
		-e '^\*\*\* ' "$1" | grep -c .) ||
		n=0 &&
	[ "$n" -eq 1 ] || {
		sed 's/^/|  /' "$1" >&2 &&
		echo "expected one line of error in $1, got $n (above)" >&2 &&
		return 1
	}
}

# private_out: nothing under WORKDIR/.out is setuid, setgid, a device,
# FIFO, socket or symlink, owned by another user or writable by others,
# and .out itself is 0700
private_out() {
	check_args private_out "no arguments" 0 0 "$@" &&
	local bad &&
	[ "$(stat -c %a .work/.out)" = 700 ] || {
		echo ".out is mode $(stat -c %a .work/.out), not 700" >&2 &&
		return 1
	} &&
	bad=$(find .work/.out/ \( -perm /6000 -o -perm /022 \
		-o ! \( -type f -o -type d \) -o ! -user "$(id -u)" \
		-o ! -group "$(id -g)" \) -printf '%M %u:%g %p\n') &&
	[ -z "$bad" ] || {
		echo "from the guest, on the host:" >&2 &&
		echo "$bad" >&2 &&
		return 1
	}
}

# A file outside WORKDIR the tests watch: the job must not touch it.
canary() {
	check_args canary "no arguments" 0 0 "$@" &&
	echo "$TEST_TMP/canary-$test_count"
}
make_canary() {
	check_args make_canary "no arguments" 0 0 "$@" &&
	echo "SECRET-CANARY" >"$(canary)" &&
	chmod 600 "$(canary)" &&
	touch -d @1000000000 "$(canary)"
}
canary_intact() {
	check_args canary_intact "no arguments" 0 0 "$@" &&
	[ "$(cat "$(canary)")" = SECRET-CANARY ] &&
	[ "$(stat -c '%a %Y' "$(canary)")" = "600 1000000000" ]
}
# hostdir_listing: HOSTDIR's files but last-job (vm writes that) and
# the test's own
hostdir_listing() {
	check_args hostdir_listing "no arguments" 0 0 "$@" &&
	find . -mindepth 1 -path ./.work -prune -o ! -name last-job ! -name 'listing-*' \
		! -name out ! -name err -printf '%p %M %s %T@\n' | sort
}

test_expect "setuid, setgid, device nodes, FIFOs, foreign owners and symlinks from the guest reach the host as private files" '
	vm --no-uefi -D AHCI=1G @create J &&
	make_canary &&
	cat >evil.job <<-EOF &&
	cd "\$OUTDIR"
	cp /bin/busybox rootme && chmod 4755 rootme
	cp /bin/busybox groupme && chmod 2755 groupme
	mknod mem c 1 1 && mknod disk b 8 0 && mkfifo fifo
	echo all >everyone && chmod 0666 everyone
	mkdir open && chmod 1777 open && echo x >open/f && chmod 4777 open/f
	echo theirs >theirs && chown 1234:1234 theirs
	ln -s $(canary) link && ln -s / root
	echo guest sees: && ls -ln
	EOF
	hostdir_listing >listing-before &&
	vm @job evil >out 2>err &&
	contains out "guest sees:" &&
	contains out "^-rwsr-xr-x .* rootme" &&
	private_out &&
	test -f .work/.out/rootme && test ! -x .work/.out/rootme &&
	canary_intact &&
	hostdir_listing >listing-after &&
	cmp listing-before listing-after &&
	no_qemu
'

test_expect "a WORKDIR left 0710 for a control_group keeps it; .in and .out stay 0700" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "control_group = users\n" >>guest.conf &&
	w=$(readlink .work) &&
	chgrp users "$w" && chmod 710 "$w" &&
	printf "test -r \"\$INDIR/job.sh\" && echo x >\"\$OUTDIR/x\" && chmod 4777 \"\$OUTDIR/x\"\n" >grp.job &&
	printf "echo in >\"\$INDIR/from-pre\" && stat -c %%a \"\$INDIR\" >in.mode\n" >grp.pre &&
	vm @job grp >out 2>err &&
	test "$(stat -c %a:%G "$w")" = 710:users &&
	test "$(cat in.mode)" = 700 &&
	private_out &&
	test "$(stat -c %a "$w/.out/x")" = 600 &&
	no_qemu
'

test_expect "without user xattrs (ramfs) the out share is mapped-file, as private" '
	mkdir ramfs &&
	mount -t ramfs -o mode=0700 ramfs "$PWD/ramfs" &&
	trap "umount \"$PWD/ramfs\"" EXIT &&
	export TMPDIR=$PWD/ramfs &&
	vm --no-uefi -D AHCI=1G @create J &&
	printf "cd \"\$OUTDIR\"\ncp /bin/busybox r && chmod 6755 r\nmknod m c 1 1\nln -s / l\nmkdir d && chmod 1777 d\ncat \"\$INDIR/n\"\n" >x.job &&
	printf "echo from-the-host >\"\$INDIR/n\"\n" >x.pre &&
	vm @job x >out 2>err &&
	contains out "^from-the-host$" &&
	contains .work/run-rescue.sh "security_model=mapped-file" &&
	test -d .work/.out/.virtfs_metadata &&
	private_out &&
	no_qemu
'

test_expect "a 1 TB sparse job.log: no zeros copied or kept, -t holds, one line says it was cut" '
	vm --no-uefi -D AHCI=1G @create J &&
	cat >sparse.job <<-\EOF &&
	echo before the hole
	truncate -s 1099511627776 "$OUTDIR/job.log"
	echo after the hole >>"$OUTDIR/job.log"
	sleep 600
	EOF
	start=$SECONDS &&
	must_fail 124 timeout -k 10 200 "$VM_BIN" -t 20 @job sparse 2>err |
		head -c 1000000 >out &&
	[ $((SECONDS - start)) -lt 170 ] &&
	contains err "timeout of 20 s expired" &&
	contains err "job.log of job sparse was cut at 16M (job_log_max in \[rescue\])" &&
	[ "$(grep -c "cut at" err)" -eq 1 ] &&
	contains out "before the hole" && lacks out "after the hole" &&
	[ "$(stat -c %s out)" -lt 100000 ] &&
	[ "$(stat -c %s .work/.out/job.log)" -le $((16 << 20)) ] &&
	[ "$(du -k .work/.out/job.log | cut -f1)" -lt 1024 ] &&
	no_qemu
'

test_expect "SIGINT while a sparse job.log streams stops vm and its QEMU" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "truncate -s 1099511627776 \"\$OUTDIR/job.log\"\nsleep 600\n" >sparse.job &&
	mkfifo log &&
	{ "$VM_BIN" @job sparse >log 2>err & } &&
	pid=$! &&
	{ head -c 1000000 <log >out & } &&
	hpid=$! &&
	wait_for 150 test -e .work/.out/STARTED &&
	sleep 3 &&
	kill -INT $pid &&
	wait_for 20 grep -q "was interrupted" err || {
		# a vm deaf to the signal must not outlive the test
		kill -9 $pid &&
		false
	} &&
	must_fail 130 wait $pid &&
	wait $hpid &&
	contains err "job sparse was interrupted" &&
	[ "$(stat -c %s out)" -lt 100000 ] &&
	no_qemu
'

test_expect "job_log_max caps what is shown and what is kept of a long job.log" '
	vm --no-uefi -D AHCI=1G @create J &&
	printf "[rescue]\njob_log_max = 64K\n" >>guest.conf &&
	printf "echo first line\nhead -c 600000 /dev/urandom | base64\necho last line\n" >long.job &&
	vm @job long >out 2>err &&
	contains out "first line" && lacks out "last line" &&
	[ "$(stat -c %s out)" -le 66560 ] &&
	[ "$(stat -c %s .work/.out/job.log)" -le 65536 ] &&
	contains err "job.log of job long was cut at 64K" &&
	no_qemu
'

test_expect "STATUS and job.log as symlinks to a host file are not followed" '
	vm --no-uefi -D AHCI=1G @create J &&
	make_canary &&
	cat >links.job <<-EOF &&
	rm -f "\$OUTDIR/job.log"
	ln -s $(canary) "\$OUTDIR/job.log"
	ln -s $(canary) "\$OUTDIR/STATUS"
	ln -s /etc/shadow "\$OUTDIR/shadow"
	EOF
	must_fail 1 vm @job links >out 2>err &&
	contains err "job links left a bad .*/STATUS: not a number from 0 to 255" &&
	one_error err &&
	lacks out SECRET-CANARY && lacks err SECRET-CANARY &&
	test -z "$(find .work/.out -type l)" &&
	private_out && canary_intact &&
	no_qemu
'

test_expect "a FIFO as STATUS and as job.log blocks nothing" '
	vm --no-uefi -D AHCI=1G @create J &&
	cat >fifo.job <<-\EOF &&
	rm -f "$OUTDIR/job.log"
	mkfifo "$OUTDIR/job.log" "$OUTDIR/STATUS"
	date +%s >"$OUTDIR/FINISHED"
	sync
	poweroff -f
	EOF
	start=$SECONDS &&
	must_fail 1 timeout -k 10 200 "$VM_BIN" -t 60 @job fifo >out 2>err &&
	[ $((SECONDS - start)) -lt 170 ] &&
	contains err "job fifo left a bad .*/STATUS: not a number from 0 to 255" &&
	one_error err &&
	test -z "$(find .work/.out -type p)" &&
	private_out &&
	no_qemu
'

test_expect "a garbage STATUS is one error, not a QEMU post-mortem" '
	vm --no-uefi -D AHCI=1G @create J &&
	cat >garbage.job <<-\EOF &&
	printf "0; rm -rf /\n\001\002" >"$OUTDIR/STATUS"
	date +%s >"$OUTDIR/FINISHED"
	sync
	poweroff -f
	EOF
	must_fail 1 timeout -k 10 200 "$VM_BIN" -t 60 @job garbage >out 2>err &&
	contains err "job garbage left a bad .*/STATUS: not a number from 0 to 255" &&
	one_error err &&
	no_qemu
'

test_expect ".pre that hits the timeout takes its whole process group with it" '
	vm --no-uefi -D AHCI=1G @create J &&
	marker=3000.$$$RANDOM &&
	printf "sleep $marker &\necho \$! >\"\$HOSTDIR/bg.pid\"\nsleep $marker\n" >slow.pre &&
	printf "echo must not run\n" >slow.job &&
	start=$SECONDS &&
	must_fail 124 vm -t 3 @job slow >out 2>err &&
	[ $((SECONDS - start)) -lt 10 ] &&
	contains err "slow.pre took longer than 3 s and was stopped" &&
	one_error err &&
	test -s bg.pid &&
	wait_for 5 eval "! kill -0 $(cat bg.pid) 2>/dev/null" &&
	! pgrep -f "sleep $marker" &&
	lacks out "must not run" && test ! -e .work/rescue-console.log
'

test_expect "SIGTERM to vm during .pre ends the whole .pre group" '
	vm --no-uefi -D AHCI=1G @create J &&
	marker=3000.$$$RANDOM &&
	printf "(trap \"\" TERM; sleep $marker) &\necho \$! >\"\$HOSTDIR/bg.pid\"\nsleep $marker\n" >slow.pre &&
	printf "true\n" >slow.job &&
	{ "$VM_BIN" @job slow >out 2>err & } &&
	pid=$! &&
	wait_for 10 test -s bg.pid &&
	kill -TERM $pid &&
	must_fail any wait $pid &&
	contains err "slow.pre was interrupted" &&
	wait_for 5 eval "! pgrep -f \"sleep $marker\" >/dev/null"
'

test_expect "run-ssh forwards only the host's loopback address" '
	vm --no-uefi -D AHCI=1G @create J &&
	vm --dry-run @job run-ssh >out &&
	contains out "hostfwd=tcp:127.0.0.1:5555-:22" &&
	lacks out "hostfwd=tcp::5555" &&
	contains out "security_model=mapped-" &&
	lacks out "security_model=none,path=[^ ]*/\.out"
'

test_done
