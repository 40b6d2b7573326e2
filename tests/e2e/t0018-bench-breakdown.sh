#!/bin/bash
# bench/job-roundtrip.sh says where the time of one @job goes, and its
# parts (from the host's clock, the guest's and file times QEMU sets)
# add up to the wall time of that @job.
. "$(dirname "$0")/../lib.sh"

need_rescue

test_expect "the breakdown is printed and its parts add up to the wall time" '
	N=1 GUESTFISH=0 bash "$TOP/bench/job-roundtrip.sh" >out 2>err &&
	contains out "^| vm @job (trivial job) | [0-9.]* |" &&
	contains out "^Where the time of one @job goes" &&
	for stage in "vm before QEMU starts" "QEMU start to firmware" \
		"firmware to kernel" \
		"kernel to /init" "/init: drivers for the shares" \
		"waiting for the disk and network drivers" "the job" \
		"job end to power-off" "power-off to vm exit"; do
		contains out "^| $stage.* | [0-9][0-9.]* |$" || exit 1
	done &&
	sed -n "/^Where the time/,\$p" out | awk -F" [|] " "
		/^[|] ?(stage|---)/ { next }
		/sum of the parts/ { next }
		/wall time/ { wall = \$2; next }
		/^[|]/ { if (\$2 < 0) bad = bad \" \" \$1; sum += \$2 }
		END {
			printf \"sum %.2f, wall %.2f; negative:%s\n\", sum, wall, bad
			exit !(wall > 0 && bad == \"\" &&
			       sum >= wall * 0.9 && sum <= wall * 1.1)
		}"
'

test_done
