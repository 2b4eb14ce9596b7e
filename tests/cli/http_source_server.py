#!/usr/bin/python3
"""A real HTTP server for the HTTP source's tests (stream-pub --url).

    http_source_server.py PORTFILE [--dir DIR] [--tls CERT KEY] [--log FILE]

Listens on 127.0.0.1, an ephemeral port written to PORTFILE once it
listens (the tests wait for it). Threaded, HTTP/1.1. Paths:

  /file/NAME        DIR/NAME with ETag and Last-Modified; answers 304 to
                    If-None-Match / If-Modified-Since when unchanged;
                    ?noetag=1: Last-Modified only
  /lines?n=N        N lines "line-I" (Content-Length)
  /chunked?n=N      N JSON lines {"i":I}, chunked, flushed one by one
  /sse?n=N          N events: id I, event "tick", data "event-I"; starts
                    after the request's Last-Event-ID; &drop=K closes the
                    connection after K events (no blank line after the
                    last: a half event); &hold=S keeps the stream open S s
                    after the last event; &every=MS between events;
                    &retry=MS sends a retry field first; &rate=R paces
                    the events at R a second (in groups of 7)
  /sse-bad          an event stream with bytes that are not UTF-8
  /status/CODE      answers CODE with the body "server says CODE"
  /flaky/KEY?fail=F&code=C[&retry_after=S]
                    the first F requests for KEY answer C (with
                    Retry-After: S when given), later ones /lines?n=3
  /slow?n=N&ms=MS   N lines, MS between them
  /drop?n=N         Content-Length of N lines, then N/2 lines and a close
  /big?bytes=B      one line of B bytes, no newline
  /endless          100-byte lines, chunked, until the client goes; /count's
                    "written" is the bytes the client let through
  /headers          the request's X-* headers, one "Name: value" line each
  /count            how many requests each path had (JSON), for the tests

--log FILE appends "PATH LAST-EVENT-ID UNIX-TIME" per request (the tests read it).
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
import email.utils

counts = {}
counts_lock = threading.Lock()
log_file = None
serve_dir = "."


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, code, body, ctype="text/plain", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query).items()}
        with counts_lock:
            counts[u.path] = counts.get(u.path, 0) + 1
            n_req = counts[u.path]
        if log_file:
            with open(log_file, "a") as f:
                f.write("%s %s %.3f\n" % (u.path, self.headers.get("Last-Event-ID", "-"), time.time()))
        try:
            self.route(u.path, q, n_req)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route(self, path, q, n_req):
        if path.startswith("/file/"):
            return self.file(path[6:], "noetag" not in q)
        if path == "/lines":
            n = int(q.get("n", 10))
            return self.send_body(200, b"".join(b"line-%d\n" % i for i in range(1, n + 1)))
        if path == "/chunked":
            return self.chunked(int(q.get("n", 10)))
        if path == "/sse":
            return self.sse(q)
        if path == "/sse-bad":
            body = b"id: 1\ndata: good\n\nid: 2\ndata: bad \xff\xfe\n\n"
            return self.send_body(200, body, "text/event-stream")
        if path.startswith("/status/"):
            code = int(path[8:])
            return self.send_body(code, b"server says %d" % code)
        if path.startswith("/flaky/"):
            if n_req <= int(q.get("fail", 1)):
                extra = {}
                if "retry_after" in q:
                    extra["Retry-After"] = q["retry_after"]
                code = int(q.get("code", 500))
                return self.send_body(code, b"flaky %d" % code, extra=extra)
            return self.send_body(200, b"a\nb\nc\n")
        if path == "/slow":
            return self.slow(int(q.get("n", 3)), int(q.get("ms", 200)))
        if path == "/drop":
            n = int(q.get("n", 10))
            body = b"".join(b"line-%d\n" % i for i in range(1, n + 1))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if path == "/endless":
            return self.endless()
        if path == "/big":
            return self.big(int(q.get("bytes", 1 << 20)))
        if path == "/headers":
            lines = ["%s: %s\n" % (k, v) for k, v in self.headers.items() if k.lower().startswith("x-")]
            return self.send_body(200, "".join(lines).encode())
        if path == "/count":
            with counts_lock:
                return self.send_body(200, json.dumps(counts).encode(), "application/json")
        return self.send_body(404, b"no such path")

    def file(self, name, with_etag):
        p = os.path.join(serve_dir, os.path.basename(name))
        try:
            st = os.stat(p)
            with open(p, "rb") as f:
                body = f.read()
        except OSError:
            return self.send_body(404, b"no such file")
        etag = '"%x-%x"' % (st.st_mtime_ns, st.st_size)
        modified = email.utils.formatdate(int(st.st_mtime), usegmt=True)
        inm = self.headers.get("If-None-Match") if with_etag else None
        ims = self.headers.get("If-Modified-Since")
        unchanged = inm == etag if inm is not None else (
            ims is not None and email.utils.parsedate_to_datetime(ims).timestamp() >= int(st.st_mtime))
        if unchanged:
            self.send_response(304)
            if with_etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ctype = "text/event-stream" if name.endswith(".sse") else "text/plain"
        validators = {"Last-Modified": modified}
        if with_etag:
            validators["ETag"] = etag
        self.send_body(200, body, ctype, validators)

    def start_chunked(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def chunk(self, b):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))

    def chunked(self, n):
        self.start_chunked("application/x-ndjson")
        for i in range(1, n + 1):
            self.chunk(b'{"i":%d}\n' % i)
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def sse(self, q):
        n = int(q.get("n", 10))
        drop = int(q.get("drop", 0))
        every = float(q.get("every", 0)) / 1000
        hold = float(q.get("hold", 0))
        rate = float(q.get("rate", 0))
        began = time.time()
        last = self.headers.get("Last-Event-ID")
        first = int(last) + 1 if last and last.isdigit() else 1
        self.start_chunked("text/event-stream")
        if "retry" in q:
            self.chunk(b"retry: %d\n\n" % int(q["retry"]))
        sent = 0
        batch = []
        for i in range(first, n + 1):
            ev = b"id: %d\nevent: tick\ndata: event-%d\n\n" % (i, i)
            sent += 1
            if drop and sent == drop:
                # Half an event, then the connection goes.
                batch.append(ev[:-1])
                self.chunk(b"".join(batch))
                self.wfile.flush()
                self.close_connection = True
                return
            batch.append(ev)
            if every or len(batch) >= (7 if rate else 256):
                self.chunk(b"".join(batch))
                self.wfile.flush()
                batch = []
                if every:
                    time.sleep(every)
                elif rate:
                    ahead = began + sent / rate - time.time()
                    if ahead > 0:
                        time.sleep(ahead)
        if batch:
            self.chunk(b"".join(batch))
            self.wfile.flush()
        end = time.time() + hold
        while time.time() < end:
            self.chunk(b": keep-alive\n\n")
            self.wfile.flush()
            time.sleep(min(0.5, max(0.0, end - time.time())))
        self.wfile.write(b"0\r\n\r\n")

    def slow(self, n, ms):
        self.start_chunked("text/plain")
        for i in range(1, n + 1):
            self.chunk(b"slow-%d\n" % i)
            self.wfile.flush()
            time.sleep(ms / 1000)
        self.wfile.write(b"0\r\n\r\n")

    def endless(self):
        # 100-byte lines until the client goes; counts["written"] says how
        # far the client let it get.
        self.start_chunked("text/plain")
        block = (b"y" * 99 + b"\n") * 655
        while True:
            self.chunk(block)
            with counts_lock:
                counts["written"] = counts.get("written", 0) + len(block)

    def big(self, size):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        block = b"x" * (1 << 20)
        left = size
        while left > 0:
            k = min(left, len(block))
            self.wfile.write(block[:k])
            left -= k


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global log_file, serve_dir
    args = sys.argv[1:]
    portfile = args.pop(0)
    tls = None
    while args:
        a = args.pop(0)
        if a == "--dir":
            serve_dir = args.pop(0)
        elif a == "--log":
            log_file = args.pop(0)
        elif a == "--tls":
            tls = (args.pop(0), args.pop(0))
        else:
            sys.exit("unknown argument " + a)
    srv = Server(("127.0.0.1", 0), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
