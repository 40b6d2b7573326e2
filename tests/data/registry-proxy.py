#!/usr/bin/env python3
"""A proxy in front of a real registry (Docker Distribution) for t0026:
what a registry behind a token service, or one that is busy, says.

  registry-proxy.py LISTEN_PORT UPSTREAM_PORT [options]

  --bearer USER:PASSWORD  the distribution token flow: /v2/ requests
                          without a token get 401 and
                          WWW-Authenticate: Bearer realm=.../token,...;
                          /token gives one for Basic USER:PASSWORD with
                          the scopes asked, and a request is let through
                          only when its token has its repository's scope
                          (pull for GET/HEAD, push for the rest); every
                          scope asked is logged in LOG
  --busy N                the first N requests get 429 and Retry-After: 1
  --too-large BYTES       a request whose body is larger gets 413
  --deny-push             a request that is not GET or HEAD gets 403
                          DENIED, as for a user with read rights only
  --bad-upload            the first PUT that ends an upload gets 400
                          BLOB_UPLOAD_INVALID
  --hold-after BYTES      once a request body (an upload) or an answer's
                          (a download) has passed BYTES bytes, make the
                          file HOLD and wait while it is there (once)
  --hold FILE             (with --hold-after)
  --log FILE              one line per request: METHOD PATH STATUS, and
                          "scope S" per scope a token was asked for
Listens on 127.0.0.1 only.
"""
import argparse
import base64
import http.client
import json
import os
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ap = argparse.ArgumentParser()
ap.add_argument("listen", type=int)
ap.add_argument("upstream", type=int)
ap.add_argument("--bearer")
ap.add_argument("--busy", type=int, default=0)
ap.add_argument("--too-large", type=int, default=0)
ap.add_argument("--deny-push", action="store_true")
ap.add_argument("--bad-upload", action="store_true")
ap.add_argument("--hold-after", type=int, default=0)
ap.add_argument("--hold")
ap.add_argument("--log")
args = ap.parse_args()

lock = threading.Lock()
tokens = {}  # token -> set of scopes
busy_left = [args.busy]
held = [False]
bad_done = [False]


def log(line):
    if args.log:
        with lock, open(args.log, "a") as f:
            f.write(line + "\n")


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, headers=(), body=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        log("%s %s %d" % (self.command, self.path, status))
        if self.command == "HEAD":
            return
        n = args.hold_after
        if n and len(body) > n and status == 200 and not held[0]:
            # a download held mid-way: the first bytes, then a wait
            self.wfile.write(body[:n])
            self.wfile.flush()
            self.hold()
            body = body[n:]
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def hold(self):
        held[0] = True
        open(args.hold, "w").close()
        while os.path.exists(args.hold):
            time.sleep(0.05)

    def error(self, status, code, msg, headers=()):
        body = json.dumps({"errors": [{"code": code, "message": msg}]}).encode()
        self.reply(status, list(headers) + [("Content-Type", "application/json")], body)

    def token(self):
        auth = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(args.bearer.encode()).decode()
        if auth != want:
            return self.error(401, "UNAUTHORIZED", "bad credentials")
        q = parse_qs(urlsplit(self.path).query)
        scopes = set()
        for s in q.get("scope", []):
            log("scope " + s)
            m = re.match(r"repository:([^:]+):(.+)$", s)
            if m:
                for a in m.group(2).split(","):
                    scopes.add((m.group(1), a))
        t = secrets.token_hex(16)
        with lock:
            tokens[t] = scopes
        self.reply(200, [("Content-Type", "application/json")],
                   json.dumps({"token": t}).encode())

    def allowed(self):
        m = re.match(r"/v2/(.+?)/(blobs|manifests|tags)/", self.path)
        if not m:
            return True
        auth = self.headers.get("Authorization", "")
        t = auth[7:] if auth.startswith("Bearer ") else None
        need = "pull" if self.command in ("GET", "HEAD") else "push"
        with lock:
            have = tokens.get(t)
        if have is not None and (m.group(1), need) in have:
            # a mount also needs pull on the repository it is from
            frm = parse_qs(urlsplit(self.path).query).get("from")
            return not frm or (frm[0], "pull") in have
        realm = "http://127.0.0.1:%d/token" % args.listen
        self.error(401, "UNAUTHORIZED", "authentication required", [
            ("WWW-Authenticate",
             'Bearer realm="%s",service="vm-test",scope="repository:%s:%s"'
             % (realm, m.group(1), need))])
        return False

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        chunks, got = [], 0
        while got < n:
            c = self.rfile.read(min(1 << 20, n - got))
            if not c:
                break
            chunks.append(c)
            got += len(c)
            if args.hold_after and got > args.hold_after and not held[0]:
                self.hold()
        return b"".join(chunks)

    def forward(self):
        if self.path.startswith("/token"):
            return self.token()
        if args.bearer and not self.allowed():
            return
        with lock:
            busy = busy_left[0] > 0
            busy_left[0] -= busy
        n = int(self.headers.get("Content-Length") or 0)
        if busy:
            self.rfile.read(n)
            return self.error(429, "TOOMANYREQUESTS", "slow down", [("Retry-After", "1")])
        if args.deny_push and self.command not in ("GET", "HEAD"):
            self.rfile.read(n)
            return self.error(403, "DENIED", "requested access to the resource is denied")
        if (args.bad_upload and self.command == "PUT" and "/blobs/uploads/" in self.path
                and not bad_done[0]):
            bad_done[0] = True
            self.rfile.read(n)
            return self.error(400, "BLOB_UPLOAD_INVALID", "blob upload invalid")
        if args.too_large and n > args.too_large:
            self.close_connection = True
            return self.error(413, "SIZE_INVALID", "request too large")
        data = self.body()
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("authorization", "connection", "expect")}
        try:
            c = http.client.HTTPConnection("127.0.0.1", args.upstream, timeout=60)
            c.request(self.command, self.path, body=data, headers=hdrs)
            r = c.getresponse()
            out = r.read()
        except OSError as e:
            # as a registry that died: the connection drops, no answer
            log("%s %s dropped (%s)" % (self.command, self.path, e))
            self.close_connection = True
            return
        keep = [(k, v) for k, v in r.getheaders()
                if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        self.reply(r.status, keep, out)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", args.listen), Proxy).serve_forever()
