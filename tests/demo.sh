#!/bin/bash
# make demo: a real pipeline end to end in a scratch directory.  Builds an
# unattended installer ISO from the rescue image (its autorun marks the
# disk), then: vm @create demo ISO @run @job demo-check @backup @destroy
# @restore @job demo-check @destroy, where the job, in the rescue guest,
# reads back what the installer wrote, before and after the round trip
# through a snapshot.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vm-demo.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
bash "$top/rescue/build-rescue" --out "$scratch/iso" --name installer \
	--autorun "$top/tests/data/autorun-install"
mkdir "$scratch/demo"
cp "$top/tests/data/demo-check.job" "$scratch/demo/"
cd "$scratch/demo"
# headless: no SPICE port, so the demo never clashes with a desktop
set -x
"$top/vm" --no-uefi -p '' -m 512M -c 1 \
	@create demo "$scratch/iso/installer.iso" @run @job demo-check \
	@backup @destroy @restore @job demo-check @destroy
set +x
echo "demo: ok"
