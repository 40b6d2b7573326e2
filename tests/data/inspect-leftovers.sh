#!/bin/bash
# t0006, run with a /tmp of its own (private_tmp): @inspect -t SECS of the
# VM here; its status goes to rc, its errors to err, and the libguestfs
# directories it left in /tmp to left.  Usage: inspect-leftovers.sh VM SECS
"$1" -t "$2" @inspect 2>err
echo $? >rc
ls -d /tmp/libguestfs* >left 2>/dev/null || :
