#!/usr/bin/env python3
"""hold-socket.py SOCKET READY: be the client a unix socket's server
serves (read its first line, QMP's greeting), then fill its listen
backlog with clients it never serves, write READY and hold them all
until killed: what a hostile or hung client does to QEMU's monitor.
With --idle N: open N connections instead, each greeted and then silent
(a server that accepts every client has no backlog to fill)."""
import os
import socket
import sys
import time

idle = 0
if sys.argv[1] == "--idle":
    idle = int(sys.argv[2])
    del sys.argv[1:3]
path, ready = sys.argv[1:3]
held = []


def greeted():
    """A client the server has greeted."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(30)
    if not s.recv(4096):
        sys.exit("no greeting on " + path)
    return s


def hold():
    """Say how many are held, then hold them until killed."""
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % len(held))
    os.rename(ready + ".tmp", ready)
    while True:
        time.sleep(60)


if idle:
    held = [greeted() for _ in range(idle)]
    hold()
held.append(greeted())
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
hold()
