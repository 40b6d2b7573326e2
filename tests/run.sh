#!/bin/bash
# make check: the unit tests (cmocka, TAP), chainlint over the e2e tests
# (tests/lint.sh) and every tests/e2e/t*.sh, then one line
# "N passed, N failed".
#
#   tests/run.sh [-j N] [UNIT_BINARY...]
#
# The e2e files run N at a time (-j N, else JOBS, else make's -jN, else
# 2), the longest first (by the last run's times): each is hermetic (tests/lib.sh gives it its own TMPDIR, HOME, XDG
# directories and caches), so they may run side by side.  Each file's
# output is printed whole when it ends, with its time; the five slowest
# are listed at the end.  E2E="tests/e2e/t0003-job.sh ..." runs only
# those files; UNIT=0 skips the unit tests and E2E= (empty) skips the
# e2e files (make check-unit).  VM_TEST_PROFILE=FILE appends a line per
# vm run (file, test number, seconds, arguments): where the time goes.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

jobs=${JOBS:-}
if [ -z "$jobs" ]; then
	# make -j3 check: GNU make passes "-j3" in MAKEFLAGS
	for w in ${MAKEFLAGS:-}; do
		[[ $w =~ ^-j([0-9]+)$ ]] && jobs=${BASH_REMATCH[1]}
	done
fi
while [ $# -gt 0 ]; do
	case $1 in
	-j) jobs=${2:-}; shift 2 || shift ;;
	-j*) jobs=${1#-j}; shift ;;
	*) break ;;
	esac
done
jobs=${jobs:-2}
if ! [[ $jobs =~ ^[0-9]+$ ]] || [ "$jobs" -lt 1 ] || [ "$jobs" -gt 64 ]; then
	echo "tests/run.sh: -j takes a number from 1 to 64, got '$jobs'" >&2
	exit 2
fi

passed=0 failed=0
res=$(mktemp -d "${TMPDIR:-/tmp}/vm-check.XXXXXX") || exit 1
pids=()
# a ^C or a kill of make check ends every file still running: each runs
# in a session of its own (start), which holds all it started, its
# QEMUs included (timeout and vm put them in process groups of their own)
trap 'for p in "${pids[@]}"; do pkill -TERM -s "$p" 2>/dev/null; done
      rm -rf "$res"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# count FILE: sets p and f from FILE's TAP lines and adds them up
count() {
	p=$(grep -cE '^ok ' "$1")
	f=$(grep -cE '^not ok ' "$1")
	passed=$((passed + p))
	failed=$((failed + f))
}

if [ "${UNIT:-1}" != 0 ]; then
	for t in "$@"; do
		echo "# unit: $t"
		CMOCKA_MESSAGE_OUTPUT=TAP timeout 120 "$t" >"$res/unit" 2>&1
		rc=$?
		grep -E '^(not ok|#)' "$res/unit" | sed 's/^/  /'
		count "$res/unit"
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "  not ok - $t crashed (status $rc)"
			tail -n 20 "$res/unit"
			failed=$((failed + 1))
		fi
		echo "  $p passed, $f failed"
	done
fi

# report KIND FILE N: print file N's output and time, count its results;
# a script that fails without a "not ok" line still counts as one failure
report() {
	local kind=$1 file=$2 n=$3 rc secs
	rc=$(cat "$res/$n.rc" 2>/dev/null || echo 255)
	secs=$(cat "$res/$n.secs" 2>/dev/null || echo 0)
	echo "# $kind: $file (${secs} s)"
	sed 's/^/  /' "$res/$n.out"
	count "$res/$n.out"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "  not ok - $file exited with status $rc"
		failed=$((failed + 1))
	fi
	printf '%s %s\n' "$secs" "$file" >>"$res/times"
}

# start N FILE: run one TAP script in the background, in a session of its
# own so that an interrupt reaches everything it started
start() {
	setsid bash -c '
		s=$(date +%s%N)
		timeout 1800 bash "$1" >"$2.out" 2>&1 </dev/null
		echo $? >"$2.rc"
		e=$(date +%s%N)
		echo $(( (e - s) / 1000000000 )) >"$2.secs"
	' run "$2" "$res/$1" &
	pids+=($!)
	file_of[$!]=$2
	num_of[$!]=$1
}

declare -A file_of num_of
start lint tests/lint.sh
wait "${pids[0]}"
report lint tests/lint.sh lint
pids=()

files=(${E2E-tests/e2e/t*.sh})
# Longest first, by the times of the last run here (build/e2e-times),
# else of a run kept with the tests (tests/e2e/times, for a fresh
# clone), so that the files that end the run are short ones; a file
# never timed first.
times=$top/build/e2e-times
if [ ${#files[@]} -gt 1 ]; then
	mapfile -t files < <(
		for f in "${files[@]}"; do
			t=$(cat "$times" tests/e2e/times 2>/dev/null |
				awk -v f="$f" '$2 == f { print $1; exit }')
			echo "${t:-99999} $f"
		done | sort -k1,1nr -k2,2 | cut -d' ' -f2-)
fi
i=0 running=0 wall=$(date +%s)
while [ $i -lt ${#files[@]} ] || [ $running -gt 0 ]; do
	if [ $i -lt ${#files[@]} ] && [ $running -lt "$jobs" ]; then
		start $i "${files[$i]}"
		i=$((i + 1)) running=$((running + 1))
		continue
	fi
	done_pid=
	wait -n -p done_pid "${pids[@]}"
	[ -n "$done_pid" ] || continue
	running=$((running - 1))
	report e2e "${file_of[$done_pid]}" "${num_of[$done_pid]}"
	for k in "${!pids[@]}"; do
		[ "${pids[$k]}" != "$done_pid" ] || unset 'pids[k]'
	done
	pids=("${pids[@]}")
done

# keep this run's times for the next one's order
if [ -s "$res/times" ] && mkdir -p "$top/build"; then
	{ grep -v ' tests/lint.sh$' "$res/times"
	  [ ! -s "$times" ] || awk 'NR == FNR { seen[$2] = 1; next }
		!seen[$2]' "$res/times" "$times"
	} >"$times.tmp" && mv "$times.tmp" "$times"
fi
if [ -s "$res/times" ] && [ ${#files[@]} -gt 1 ]; then
	echo "# slowest (of ${#files[@]} files, $jobs at a time):"
	grep -v ' tests/lint.sh$' "$res/times" | sort -rn | head -n 5 |
		sed 's/^/#   /'
	echo "# e2e wall time: $(($(date +%s) - wall)) s"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
