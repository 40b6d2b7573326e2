#!/usr/bin/env python3
"""seq-check.py RAW: RAW (a disk as raw bytes) holds what
tests/data/autorun-writer writes: records 0..K-1 ("seq N" at 4 KiB
block N) and nothing after them.  Prints K; exits 1 (saying where) when
the sequence is broken."""
import sys

data = open(sys.argv[1], "rb").read()
k = 0
while k * 4096 < len(data):
    want = b"seq %08d\n" % k
    if data[k * 4096:k * 4096 + len(want)] != want:
        break
    k += 1
rest = data[k * 4096:]
if rest.strip(b"\0"):
    off = k * 4096 + (len(rest) - len(rest.lstrip(b"\0")))
    print("records 0..%d, then data at offset %d: %r" %
          (k - 1, off, data[off:off + 16]), file=sys.stderr)
    sys.exit(1)
print(k)
