#!/bin/bash
# SHA-256 speed in MB/s (10^6 bytes a second) on one buffer: 1 GiB hashed
# in 1 MiB pieces, by vm's own SHA-256 of before libcrypto (lib/sha256.c
# as of commit OLD, default bec37d6fe6d0: with the x86 SHA extensions,
# and its C code with VM_SHA256_NO_NI=1) and by libcrypto's EVP_Digest*,
# which replaces it.  Runs interleaved; the median of RUNS (default 5) is
# shown.  MIB (default 1024) sets the amount.  Needs git (for the old
# code), gcc and libssl-dev.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
old=${OLD:-bec37d6fe6d0}
runs=${RUNS:-5}
mib=${MIB:-1024}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vm-bench-sha.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

rename='s/\bsha256/old_sha256/g; s/SHA256_H/OLD_SHA256_H/g'
git -C "$top" show "$old:lib/sha256.h" | sed "$rename" >"$scratch/old_sha256.h"
git -C "$top" show "$old:lib/sha256.c" | sed "$rename" >"$scratch/old_sha256.c"
# shellcheck disable=SC2046
cc -std=gnu11 -O2 -I"$scratch" -o "$scratch/speed" \
	"$top/bench/sha256-speed.c" "$scratch/old_sha256.c" \
	$(pkg-config --cflags --libs libcrypto)

"$scratch/speed" "$mib" "$runs" "old evp" >"$scratch/ni"
VM_SHA256_NO_NI=1 "$scratch/speed" "$mib" "$runs" old >"$scratch/c"
ni=$(awk '$1 == "old" { print $2 }' "$scratch/ni")
evp=$(awk '$1 == "evp" { print $2 }' "$scratch/ni")
c=$(awk '$1 == "old" { print $2 }' "$scratch/c")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

printf '\n%s MiB in 1 MiB pieces; %s cores; %s; median of %s runs\n\n' \
	"$mib" "$(nproc)" \
	"$(grep -qw sha_ni /proc/cpuinfo && echo 'CPU with SHA extensions' ||
		echo 'CPU without SHA extensions')" "$runs"
printf '| SHA-256 | MB/s | vs old |\n|---|---|---|\n'
printf '| old lib/sha256.c, SHA extensions | %s | 1.00 |\n' "$ni"
printf '| old lib/sha256.c, C (VM_SHA256_NO_NI=1) | %s | %s |\n' \
	"$c" "$(ratio "$c" "$ni")"
printf '| libcrypto %s, EVP_Digest* | %s | %s |\n' \
	"$(pkg-config --modversion libcrypto)" "$evp" "$(ratio "$evp" "$ni")"
