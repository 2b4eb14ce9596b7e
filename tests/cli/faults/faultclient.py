#!/usr/bin/env python3
"""faultclient.py - raw protocol clients for tests/cli/faults.bats.

The fault tests need clients that misbehave on purpose (half a frame and
then silence, requests whose responses are never read, thousands of
connections) and one that measures how a well-behaved client fares
meanwhile. The C client library is too polite for the first kind, so this
speaks the native protocol (share/doc/protocol.md) itself: a 4-byte
big-endian length, one MessagePack map, and RecordBatch v2 bytes built
here with their CRC-32C. Only the Python standard library is used.

Commands (every one prints one JSON object on stdout):

  probe   HOST:PORT --topic T --seconds S [--new-topic-after S2]
          one connection: produce (acks=1) and fetch round trips for S
          seconds; prints the count and latency percentiles in ms. After S2
          seconds it produces once to the new topic T-late (new_topic: ok).
  storm   HOST:PORT --connects N --half H --noread K --topic T --seconds S
          H clients send half a frame and stall, K clients pipeline big
          fetches and never read, and N short connections come and go
          (several flavours) within S seconds; then reports when the broker
          closed the stalled ones and how far the non-readers got.
  fetch   HOST:PORT --topic T [--partition P]... [--offset O] [--max-bytes N]
          one fetch; prints err, msg, the batches returned ([base offset,
          size]) and whether every one of them passes its CRC (crc_ok).
          With several --partition options the one fetch asks for all of
          them (each from offset O) and prints {"partitions": [...]}, one
          such object per partition, with its "partition".
  request HOST:PORT OP JSON
          hello (protocol version 3), then one request of OP with the
          fields of the JSON object; prints the answer as JSON (bins as
          their length: {"bin": N}).
  acker   HOST:PORT,... --topic T --out FILE [--stop-file F] [--interval-ms MS]
          a leader-following acks=all producer for failover measurements:
          finds partition 0's leader in the metadata of any live broker,
          produces one record at a time to it (acks=all, timeout 5 s) and
          appends 'WALL_MS NODE OFFSET' to FILE for each acknowledgement; on
          any error or a lost connection asks the metadata again (every
          5 ms) and carries on, until F exists.
  hold    HOST:PORT --count N --seconds S
          opens N connections, says hello on each, counts the answered,
          refused and unanswered ones, holds them S seconds, closes them.
"""
import argparse
import errno
import json
import os
import select
import socket
import struct
import sys
import time

# ---- MessagePack (the subset the protocol uses) -------------------------------


def pack(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 0x80:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack("b", o)
        if 0 <= o < 1 << 32:
            return b"\xce" + struct.pack(">I", o)
        if o >= 0:
            return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(o)) + bytes(o)
    if isinstance(o, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(o)) + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        return b"\xdf" + struct.pack(">I", len(o)) + b"".join(
            pack(k) + pack(v) for k, v in o.items())
    raise TypeError(type(o))


def unpack(b, i=0):
    """Decodes one object at b[i:]; returns (object, next index)."""
    t = b[i]
    i += 1
    if t < 0x80:
        return t, i
    if t >= 0xE0:
        return t - 0x100, i
    if 0x80 <= t <= 0x8F:
        return _map(b, i, t & 0x0F)
    if 0x90 <= t <= 0x9F:
        return _arr(b, i, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return b[i:i + n].decode(errors="replace"), i + n
    fixed = {0xC0: None, 0xC2: False, 0xC3: True}
    if t in fixed:
        return fixed[t], i
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
            0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if t in ints:
        f = ints[t]
        n = struct.calcsize(f)
        return struct.unpack(f, b[i:i + n])[0], i + n
    lens = {0xC4: (">B", "bin"), 0xC5: (">H", "bin"), 0xC6: (">I", "bin"),
            0xD9: (">B", "str"), 0xDA: (">H", "str"), 0xDB: (">I", "str"),
            0xDC: (">H", "arr"), 0xDD: (">I", "arr"), 0xDE: (">H", "map"), 0xDF: (">I", "map")}
    if t in lens:
        f, kind = lens[t]
        k = struct.calcsize(f)
        n = struct.unpack(f, b[i:i + k])[0]
        i += k
        if kind == "bin":
            return bytes(b[i:i + n]), i + n
        if kind == "str":
            return b[i:i + n].decode(errors="replace"), i + n
        return (_arr if kind == "arr" else _map)(b, i, n)
    raise ValueError("msgpack type 0x%02x" % t)


def _arr(b, i, n):
    out = []
    for _ in range(n):
        v, i = unpack(b, i)
        out.append(v)
    return out, i


def _map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = unpack(b, i)
        v, i = unpack(b, i)
        out[k] = v
    return out, i


# ---- RecordBatch v2 ----------------------------------------------------------------

def _crc32c_table():
    tab = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for x in data:
        c = CRC_TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(n):
    n = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def record_batch(values, ts_ms=None):
    """One uncompressed batch of records with null keys and these values."""
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    recs = bytearray()
    for i, v in enumerate(values):
        body = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        recs += varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, ts, ts, -1, -1, -1,
                            len(values)) + bytes(recs)
    crc = crc32c(after_crc)
    body = struct.pack(">iBI", 0, 2, crc) + after_crc  # leaderEpoch, magic, crc
    return struct.pack(">qi", 0, len(body)) + body


# ---- connections -------------------------------------------------------------------

def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def frame(m):
    p = pack(m)
    return struct.pack(">I", len(p)) + p


def hello(id_=1):
    return frame({"op": "hello", "id": id_, "version": 1, "client": "faultclient"})


class Conn:
    """A blocking connection that reads whole response frames."""

    def __init__(self, target, timeout=10.0):
        self.s = socket.create_connection(addr(target), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 1
        self.buf = bytearray()

    def request(self, m):
        m = dict(m)
        m["id"] = self.next_id
        self.next_id += 1
        self.s.sendall(frame(m))
        return self.response()

    def response(self):
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    body = bytes(self.buf[4:4 + n])
                    del self.buf[:4 + n]
                    return unpack(body)[0]
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self.buf += chunk

    def hello(self):
        r = self.request({"op": "hello", "version": 1, "client": "faultclient"})
        if r.get("err"):
            raise RuntimeError("hello: %r" % r)
        return r

    def close(self):
        self.s.close()


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


# ---- probe ---------------------------------------------------------------------------

def cmd_probe(a):
    c = Conn(a.target)
    c.hello()
    batch = record_batch([b"probe-%d" % i for i in range(10)])
    lat, errors = [], []
    start = time.monotonic()
    end = start + a.seconds
    new_topic = None
    while time.monotonic() < end:
        if a.new_topic_after is not None and new_topic is None and \
                time.monotonic() - start >= a.new_topic_after:
            # A topic created now needs new files: the broker must have
            # kept descriptors for them whatever its clients hold.
            r = c.request({"op": "produce", "acks": 1, "topics": [
                {"name": a.topic + "-late", "partitions": [{"partition": 0, "records": batch}]}]})
            p = r.get("topics", [{}])[0].get("partitions", [{}])[0] if not r.get("err") else r
            new_topic = "ok" if not p.get("err") else (p.get("msg") or "error %s" % p.get("err"))
        t0 = time.monotonic()
        r = c.request({"op": "produce", "acks": 1, "topics": [
            {"name": a.topic, "partitions": [{"partition": 0, "records": batch}]}]})
        p = r.get("topics", [{}])[0].get("partitions", [{}])[0] if not r.get("err") else r
        if r.get("err") or p.get("err"):
            errors.append(p.get("msg") or r.get("msg") or "produce failed")
            continue
        off = p["base_offset"]
        f = c.request({"op": "fetch", "max_wait_ms": 0, "min_bytes": 0, "topics": [
            {"name": a.topic, "partitions": [{"partition": 0, "offset": off}]}]})
        fp = f.get("topics", [{}])[0].get("partitions", [{}])[0] if not f.get("err") else f
        if f.get("err") or fp.get("err") or len(fp.get("records", b"")) < 61:
            errors.append(fp.get("msg") or f.get("msg") or "fetch returned nothing")
            continue
        lat.append((time.monotonic() - t0) * 1000.0)
        if a.interval_ms:
            time.sleep(a.interval_ms / 1000.0)
    c.close()
    print(json.dumps({"round_trips": len(lat), "errors": len(errors), "new_topic": new_topic,
                      "first_error": errors[0] if errors else None,
                      "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
                      "max_ms": max(lat) if lat else None}))


# ---- storm ---------------------------------------------------------------------------

def cmd_storm(a):
    target = addr(a.target)
    start = time.monotonic()
    deadline = start + a.seconds

    # Half a frame, then silence: a 1000-byte frame of which 10 bytes come.
    half = []
    for _ in range(a.half):
        s = socket.create_connection(target, timeout=5)
        s.sendall(struct.pack(">I", 1000) + b"\x85" * 10)
        s.setblocking(False)
        half.append([s, None])

    # Non-readers: hello, then big fetches pipelined until the broker stops
    # reading them (our sends block), never reading a byte back.
    noread = []
    fetch = frame({"op": "fetch", "id": 7, "max_wait_ms": 0, "min_bytes": 0,
                   "max_bytes": 8 << 20, "topics": [{"name": a.topic, "partitions": [
                       {"partition": 0, "offset": 0, "max_bytes": 8 << 20}]}]})
    for _ in range(a.noread):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(5)
        s.connect(target)
        s.sendall(hello())
        s.setblocking(False)
        noread.append({"s": s, "sent": 0, "pending": b"", "closed_ms": None})

    def pump_noread():
        for n in noread:
            if n["closed_ms"] is not None:
                continue
            for _ in range(64):
                if not n["pending"]:
                    n["pending"] = fetch
                try:
                    k = n["s"].send(n["pending"])
                except BlockingIOError:
                    break
                except OSError:
                    n["closed_ms"] = (time.monotonic() - start) * 1000
                    break
                n["pending"] = n["pending"][k:]
                if not n["pending"]:
                    n["sent"] += 1

    def poll_half():
        for h in half:
            if h[1] is not None:
                continue
            try:
                d = h[0].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                h[1] = (time.monotonic() - start) * 1000

    # Short connections, in flavours that each take a different path.
    flavours = ["close", "hello", "half", "badlen", "hello-read"]
    done = {f: 0 for f in flavours}
    failures = 0
    i = 0
    while i < a.connects and time.monotonic() < deadline:
        f = flavours[i % len(flavours)]
        i += 1
        try:
            s = socket.create_connection(target, timeout=5)
            if f == "hello":
                s.sendall(hello())
            elif f == "half":
                s.sendall(hello()[:7])
            elif f == "badlen":
                s.sendall(b"\xff\xff\xff\xff" + b"x" * 16)
            elif f == "hello-read":
                s.sendall(hello())
                if not s.recv(4096):
                    raise ConnectionError("no hello response")
            s.close()
            done[f] += 1
        except OSError:
            failures += 1
        if i % 50 == 0:
            pump_noread()
            poll_half()
    storm_s = time.monotonic() - start

    # Keep the stalled clients stalled until the end, watching for closes.
    while time.monotonic() < deadline:
        pump_noread()
        poll_half()
        time.sleep(0.05)
    closed = [h[1] for h in half if h[1] is not None]
    out = {
        "connects": sum(done.values()), "connect_failures": failures, "flavours": done,
        "storm_seconds": round(storm_s, 2),
        "half_open": len(half), "half_closed": len(closed),
        "half_closed_max_ms": max(closed) if closed else None,
        "noread": len(noread),
        "noread_requests_sent": [n["sent"] for n in noread],
        "noread_closed": sum(1 for n in noread if n["closed_ms"] is not None),
    }
    for h in half:
        h[0].close()
    for n in noread:
        n["s"].close()
    print(json.dumps(out))


# ---- hold ----------------------------------------------------------------------------

def cmd_hold(a):
    target = addr(a.target)
    socks, answered, refused, silent = [], 0, 0, 0
    for _ in range(a.count):
        try:
            s = socket.create_connection(target, timeout=2)
            s.sendall(hello())
        except OSError:
            refused += 1
            continue
        socks.append(s)
    # Read the hello responses (or the close) with one shared deadline.
    waiting = {s.fileno(): s for s in socks}
    end = time.monotonic() + a.answer_seconds
    while waiting and time.monotonic() < end:
        r, _, _ = select.select(list(waiting.values()), [], [], 0.1)
        for s in r:
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if d:
                answered += 1
            else:
                refused += 1
            del waiting[s.fileno()]
    silent = len(waiting)
    print(json.dumps({"answered": answered, "refused": refused, "silent": silent}), flush=True)
    time.sleep(a.seconds)
    for s in socks:
        s.close()


# ---- fetch ---------------------------------------------------------------------------

def cmd_fetch(a):
    parts = a.partition or [0]
    c = Conn(a.target)
    c.hello()
    r = c.request({"op": "fetch", "max_wait_ms": 0, "min_bytes": 0, "max_bytes": a.max_bytes,
                   "topics": [{"name": a.topic, "partitions": [
                       {"partition": n, "offset": a.offset, "max_bytes": a.max_bytes}
                       for n in parts]}]})
    c.close()
    out = []
    for i, n in enumerate(parts):
        p = r["topics"][0]["partitions"][i] if not r.get("err") else r
        recs = p.get("records", b"")
        batches, pos, crc_ok = [], 0, True
        while pos + 61 <= len(recs):
            base, length = struct.unpack(">qi", recs[pos:pos + 12])
            size = 12 + length
            crc = struct.unpack(">I", recs[pos + 17:pos + 21])[0]
            ok = pos + size <= len(recs) and crc32c(recs[pos + 21:pos + size]) == crc
            crc_ok = crc_ok and ok
            batches.append([base, size])
            pos += size
        out.append({"partition": p.get("partition", n), "err": p.get("err"), "msg": p.get("msg"),
                    "high_watermark": p.get("high_watermark"), "bytes": len(recs),
                    "batches": batches, "crc_ok": crc_ok and pos == len(recs)})
    print(json.dumps(out[0] if len(out) == 1 else {"partitions": out}))


def _leader(brokers, topic):
    """(node, "host:port") of partition 0's leader, from any live broker."""
    for b in brokers:
        try:
            c = Conn(b, timeout=1.0)
            c.request({"op": "hello", "version": 3, "client": "faultclient acker"})
            m = c.request({"op": "metadata", "topics": [topic]})
            c.close()
        except (OSError, ConnectionError):
            continue
        nodes = {x["node_id"]: "%s:%d" % (x["host"], x["port"]) for x in m.get("brokers", [])}
        for t in m.get("topics", []):
            for p in t.get("partitions", []):
                if p.get("partition") == 0 and p.get("leader", -1) in nodes:
                    return p["leader"], nodes[p["leader"]]
    return None, None


def cmd_acker(a):
    brokers = a.targets.split(",")
    out = open(a.out, "a", buffering=1)
    c, node = None, None
    n = 0
    while not (a.stop_file and os.path.exists(a.stop_file)):
        if c is None:
            node, target = _leader(brokers, a.topic)
            if node is None:
                time.sleep(0.005)
                continue
            try:
                c = Conn(target, timeout=6.0)
                c.request({"op": "hello", "version": 3, "client": "faultclient acker"})
            except (OSError, ConnectionError):
                c = None
                time.sleep(0.005)
                continue
        n += 1
        try:
            r = c.request({"op": "produce", "acks": -1, "timeout_ms": 5000, "topics": [
                {"name": a.topic, "partitions": [{"partition": 0,
                                                  "records": record_batch([b"ack-%d" % n])}]}]})
        except (OSError, ConnectionError):
            c.close()
            c = None
            continue
        p = r.get("topics", [{}])[0].get("partitions", [{}])[0] if not r.get("err") else r
        if r.get("err") or p.get("err"):
            c.close()
            c = None
            time.sleep(0.005)
            continue
        out.write("%d %d %d\n" % (int(time.time() * 1000), node, p["base_offset"]))
        if a.interval_ms:
            time.sleep(a.interval_ms / 1000.0)


def _jsonable(o):
    if isinstance(o, (bytes, bytearray)):
        return {"bin": len(o)}
    if isinstance(o, dict):
        return {(k.decode() if isinstance(k, bytes) else k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_jsonable(v) for v in o]
    return o


def cmd_request(a):
    c = Conn(a.target)
    r = c.request({"op": "hello", "version": 3, "client": "faultclient"})
    if r.get("err"):
        raise RuntimeError("hello: %r" % r)
    m = json.loads(a.fields)
    m["op"] = a.op
    r = c.request(m)
    c.close()
    print(json.dumps(_jsonable(r), sort_keys=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe")
    p.add_argument("target")
    p.add_argument("--topic", required=True)
    p.add_argument("--seconds", type=float, default=2)
    p.add_argument("--interval-ms", type=float, default=5)
    p.add_argument("--new-topic-after", type=float, default=None,
                   help="after this many seconds produce once to the new topic TOPIC-late")
    p = sub.add_parser("storm")
    p.add_argument("target")
    p.add_argument("--topic", required=True)
    p.add_argument("--connects", type=int, default=2000)
    p.add_argument("--half", type=int, default=50)
    p.add_argument("--noread", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    p = sub.add_parser("hold")
    p.add_argument("target")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seconds", type=float, default=2)
    p.add_argument("--answer-seconds", type=float, default=3)
    p = sub.add_parser("fetch")
    p.add_argument("target")
    p.add_argument("--topic", required=True)
    p.add_argument("--partition", type=int, action="append")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--max-bytes", type=int, default=1 << 20)
    p = sub.add_parser("acker")
    p.add_argument("targets")
    p.add_argument("--topic", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--stop-file")
    p.add_argument("--interval-ms", type=float, default=2)
    p = sub.add_parser("request")
    p.add_argument("target")
    p.add_argument("op")
    p.add_argument("fields")
    a = ap.parse_args()
    {"probe": cmd_probe, "storm": cmd_storm, "hold": cmd_hold, "fetch": cmd_fetch,
     "request": cmd_request, "acker": cmd_acker}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
