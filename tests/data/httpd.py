#!/usr/bin/env python3
"""A small HTTP server for the download tests, on 127.0.0.1 only.

httpd.py DIR PORTFILE LOGFILE: serves DIR with ETag, Last-Modified, 304
answers and Range requests; writes its port to PORTFILE and one line per
request ("GET /path range=... status") to LOGFILE.  /drop/NAME serves NAME
but cuts the first whole-file answer in the middle, as a dropped
connection would.  /endless/NAME sends zeros without end and without a
Content-Length; /huge/NAME announces 1 TiB; /slow/NAME trickles 16 bytes
a second; /paced/NAME serves NAME at 256 KiB a second (with an ETag); /droplie/NAME
cuts the first answer as /drop/ does, then answers the resume with only
half of the rest, its Content-Range still naming the whole file's size;
/chain/CN.tar.gz is a snapshot's head (TS, DESCRIPTION, CHAIN) whose
parent is C(N+1), without end.
"""
import email.utils
import hashlib
import http.server
import io
import os
import sys
import tarfile
import time

ROOT, PORTFILE, LOGFILE = sys.argv[1:4]
dropped = set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def note(self, status):
        with open(LOGFILE, "a") as f:
            f.write("GET %s range=%s inm=%s status=%d\n" % (
                self.path, self.headers.get("Range", "-"),
                self.headers.get("If-None-Match", "-"), status))

    def stream(self, chunk, delay, length=None):
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.note(200)
        try:
            while True:
                self.wfile.write(chunk)
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
        except OSError:
            pass

    def not_modified(self, data):
        """DATA's ETag, and whether a 304 answered the request."""
        etag = '"%s"' % hashlib.sha256(data).hexdigest()[:16]
        if self.headers.get("If-None-Match") != etag:
            return etag, False
        self.note(304)
        self.send_response(304)
        self.send_header("ETag", etag)
        self.end_headers()
        return etag, True

    def paced(self, file):
        data = open(file, "rb").read()
        etag, done = self.not_modified(data)
        if done:
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.note(200)
        for i in range(0, len(data), 1 << 16):
            self.wfile.write(data[i:i + (1 << 16)])
            self.wfile.flush()
            time.sleep(0.25)

    def chain(self, name):
        """A snapshot's head whose parent is the next number, ever on."""
        parent = "C%d" % (int(name[1:-len(".tar.gz")]) + 1)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            for entry, text in (("TS", "0\n"), ("DESCRIPTION", ""),
                                ("CHAIN", "parent %s %s\nblock 65536\n" %
                                 (parent, "0" * 64))):
                data = text.encode()
                info = tarfile.TarInfo(entry)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        body = buf.getvalue()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.note(200)
        self.wfile.write(body)

    def do_GET(self):
        path = self.path
        if path.startswith("/chain/C") and path.endswith(".tar.gz"):
            return self.chain(os.path.basename(path))
        if path.startswith("/endless/"):
            return self.stream(bytes(1 << 16), 0)
        if path.startswith("/huge/"):
            return self.stream(bytes(1 << 16), 0, 1 << 40)
        if path.startswith("/slow/"):
            return self.stream(b"x" * 16, 1)
        if path.startswith("/paced/"):
            return self.paced(os.path.join(ROOT, os.path.basename(path)))
        lie = path.startswith("/droplie/")
        drop = lie or path.startswith("/drop/")
        name = path.split("/")[-1] if drop else path.lstrip("/")
        file = os.path.join(ROOT, os.path.basename(name))
        if not os.path.isfile(file):
            self.note(404)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(file, "rb").read()
        mtime = email.utils.formatdate(os.stat(file).st_mtime, usegmt=True)
        etag, done = self.not_modified(data)
        if done:
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.note(416)
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            end = len(data)
            if lie:
                end = start + (len(data) - start) // 2
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (
                start, end - 1, len(data)))
            data = data[:end]
            status = 206
        else:
            self.send_response(200)
            status = 200
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", mtime)
        self.end_headers()
        body = data[start:]
        if drop and status == 200 and path not in dropped:
            dropped.add(path)
            self.note(200)
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.note(status)
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
