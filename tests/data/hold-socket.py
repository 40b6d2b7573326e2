#!/usr/bin/env python3
"""hold-socket.py SOCKET READY: be the client a unix socket's server
serves (read its first line, QMP's greeting), then fill its listen
backlog with clients it never serves, write READY and hold them all
until killed: what a hostile or hung client does to QEMU's monitor."""
import os
import socket
import sys
import time

path, ready = sys.argv[1:3]
held = []
first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
first.connect(path)
first.settimeout(30)
if not first.recv(4096):
    sys.exit("no greeting on " + path)
held.append(first)
for _ in range(64):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
    except BlockingIOError:
        s.close()
        break
    held.append(s)
else:
    sys.exit("the backlog of %s never filled" % path)
with open(ready + ".tmp", "w") as f:
    f.write("%d\n" % len(held))
os.rename(ready + ".tmp", ready)
while True:
    time.sleep(60)
