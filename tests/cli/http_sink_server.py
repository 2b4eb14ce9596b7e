#!/usr/bin/python3
"""A real HTTP endpoint for the tests of `stream-sub --post` (http-sink.bats,
tests/soak/connect-soak.sh, tests/bench/http-sink.sh).

It listens on 127.0.0.1 (an ephemeral port, written to --port-file once it
listens, so a test never races the bind), takes POSTs and writes down what
it took:

  --out FILE    the body of every request it answered 2xx, appended as it
                came (batches of JSON lines stay JSON lines); with --each,
                one JSON line per request instead: {"headers": {name: [values]},
                "body_b64": ...}
  --log FILE    one JSON line per request, whatever the answer:
                {"n", "status", "bytes", "headers": {...}}

and misbehaves on demand:

  --fail-first N --status S   the first N requests get S (e.g. 429, 500, 503)
  --retry-after V             ... with Retry-After: V
  --always S                  every request gets S (body: "no such thing: S")
  --drop-first N              the first N connections are closed unanswered
  --slow MS                   every answer waits MS first
  --slow-random MS            every answer waits a random 0..MS first
  --reject-containing TEXT    400 for a request whose body holds TEXT
  --fail-rate P --seed N      a random fraction P of requests get 500 (the
                              kill -9 checker's load)
  --big-answer BYTES          2xx answers carry BYTES of body (the client
                              must not keep them)
  --tls CERT KEY              serve HTTPS with this certificate

Threads: one per connection (ThreadingHTTPServer), HTTP/1.1 keep-alive.
Writes to --out and --log are serialised and flushed per request, so a
test reading them sees whole lines.
"""
import argparse
import base64
import json
import random
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"n": 0, "conns": 0}


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--out")
    ap.add_argument("--log")
    ap.add_argument("--each", action="store_true")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--status", type=int, default=500)
    ap.add_argument("--retry-after")
    ap.add_argument("--always", type=int, default=0)
    ap.add_argument("--drop-first", type=int, default=0)
    ap.add_argument("--slow", type=int, default=0)
    ap.add_argument("--slow-random", type=int, default=0)
    ap.add_argument("--reject-containing")
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--big-answer", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    return ap.parse_args()


args = parse()
rng = random.Random(args.seed)
out = open(args.out, "ab", buffering=0) if args.out else None
log = open(args.log, "a", buffering=1) if args.log else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The status line and headers go out in one write, the body in another:
    # without TCP_NODELAY the second waits for the client's delayed ACK
    # (40 ms a request).
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        with lock:
            state["conns"] += 1
            self.conn_no = state["conns"]

    def log_message(self, fmt, *a):  # quiet: the tests read --log instead
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        with lock:
            state["n"] += 1
            n = state["n"]
            status = 200
            if self.conn_no <= args.drop_first:
                status = 0
            elif args.always:
                status = args.always
            elif n <= args.fail_first:
                status = args.status
            elif args.reject_containing and args.reject_containing.encode() in body:
                status = 400
            elif args.fail_rate and rng.random() < args.fail_rate:
                status = 500
            pause = args.slow + (rng.random() * args.slow_random if args.slow_random else 0)
        if pause:
            time.sleep(pause / 1000.0)
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        with lock:
            if log:
                log.write(json.dumps({"n": n, "status": status, "bytes": len(body),
                                      "headers": headers}) + "\n")
            if out and 200 <= status < 300:
                if args.each:
                    out.write((json.dumps({"headers": headers,
                                           "body_b64": base64.b64encode(body).decode()})
                               + "\n").encode())
                else:
                    out.write(body)
        if status == 0:  # drop the connection without an answer
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if 200 <= status < 300:
            answer = b"x" * args.big_answer if args.big_answer else b"ok\n"
        else:
            answer = ("no such thing: %d\n" % status).encode()
        self.send_response(status)
        if args.retry_after and status in (429, 503):
            self.send_header("Retry-After", args.retry_after)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        chunk = 1 << 16
        for i in range(0, len(answer), chunk):
            self.wfile.write(answer[i:i + chunk])


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client killed mid-request (the kill -9 tests) or refusing our
        # certificate (the TLS test) is expected: no traceback.
        pass


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    import os
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
