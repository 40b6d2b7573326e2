#!/usr/bin/env python3
"""Clients that misbehave, against a server on 127.0.0.1:PORT, while a
well-behaved one reads PATH and times each answer.

    serve-abuse.py PORT PATH [--idle N] [--slow N] [--seconds S]

At once: N idle connections (opened, nothing sent), N slow clients
(a request's headers one byte every half second), a request with a
header of 1 MiB, and malformed requests (binary garbage, an HTTP
version that is not, a request line without a path, a URL of 100 KiB).
Each bad request must get an answer of 400 or more, or be closed,
within 5 s; meanwhile GET PATH is asked again and again for S seconds
(default 8), and each answer must be 200 within 1 s.  Prints one line of
figures; exits 1 with the reason when something failed.
"""
import argparse
import resource
import socket
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("path")
ap.add_argument("--idle", type=int, default=10000)
ap.add_argument("--slow", type=int, default=50)
ap.add_argument("--seconds", type=float, default=8)
a = ap.parse_args()
ADDR = ("127.0.0.1", a.port)
HOST = f"127.0.0.1:{a.port}".encode()
failures = []


def fail(msg):
    failures.append(msg)


def connect():
    s = socket.socket()
    s.settimeout(10)
    s.connect(ADDR)
    return s


def answer_of(s, limit=5.0):
    """The status code the server sent, or 0 when it closed first."""
    s.settimeout(limit)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return 0
    if not data:
        return 0
    try:
        return int(data.split(b" ")[1])
    except (IndexError, ValueError):
        return -1


def bad(name, payload):
    t = time.monotonic()
    try:
        s = connect()
        try:
            s.sendall(payload)
        except (ConnectionResetError, BrokenPipeError):
            pass
        code = answer_of(s)
        s.close()
    except socket.timeout:
        fail(f"{name}: no answer within 5 s")
        return
    took = time.monotonic() - t
    if code == -1 or (code and code < 400):
        fail(f"{name}: answered {code}")
    elif took > 5:
        fail(f"{name}: took {took:.1f} s")


def slow(stop):
    req = b"GET " + a.path.encode() + b" HTTP/1.1\r\nHost: " + HOST + b"\r\nX-Slow: " + b"a" * 200
    try:
        s = connect()
        for b in req:
            if stop.is_set():
                break
            s.send(bytes([b]))
            time.sleep(0.5)
        s.close()
    except OSError:
        pass  # closed by the server: what it may do


soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if hard != resource.RLIM_INFINITY and a.idle > hard - 300:
    sys.exit(f"serve-abuse: {a.idle} idle connections need more descriptors than {hard}")
idle = []
t0 = time.monotonic()
for _ in range(a.idle):
    try:
        idle.append(connect())
    except OSError as e:
        fail(f"idle connection {len(idle) + 1}: {e}")
        break
opened = time.monotonic() - t0

stop = threading.Event()
slows = [threading.Thread(target=slow, args=(stop,)) for _ in range(a.slow)]
for t in slows:
    t.start()
bads = [
    ("a 1 MiB header", b"GET " + a.path.encode() + b" HTTP/1.1\r\nHost: " + HOST + b"\r\nX-Big: "
     + b"b" * (1 << 20) + b"\r\n\r\n"),
    ("binary garbage", bytes(range(256)) * 4 + b"\r\n\r\n"),
    ("HTTP/9.9", b"GET " + a.path.encode() + b" HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("no path", b"GET HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n"),
    ("a URL of 100 KiB", b"GET /" + b"u" * (100 << 10) + b" HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n"),
]
bad_threads = [threading.Thread(target=bad, args=b) for b in bads]
for t in bad_threads:
    t.start()

worst, n = 0.0, 0
end = time.monotonic() + a.seconds
while time.monotonic() < end:
    t = time.monotonic()
    try:
        s = connect()
        s.sendall(b"GET " + a.path.encode() + b" HTTP/1.1\r\nHost: " + HOST + b"\r\nConnection: close\r\n\r\n")
        code = answer_of(s, 1.0)
        s.close()
    except OSError as e:
        fail(f"a good request: {e}")
        break
    took = time.monotonic() - t
    worst = max(worst, took)
    n += 1
    if code != 200:
        fail(f"a good request got {code}")
        break
    if took > 1:
        fail(f"a good request took {took:.2f} s")
        break
    time.sleep(0.05)

stop.set()
for t in bad_threads + slows:
    t.join()
for s in idle:
    s.close()
print(f"{len(idle)} idle connections opened in {opened:.1f} s; {a.slow} slow clients; "
      f"{n} good requests, the slowest {worst * 1000:.0f} ms")
if failures:
    print("serve-abuse: " + failures[0])
    sys.exit(1)
