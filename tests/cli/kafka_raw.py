#!/usr/bin/env python3
"""kafka_raw.py - hand-made Kafka requests for tests/cli/kafka.bats: the
malformed and unusual frames no client library sends.

    kafka_raw.py HOST:PORT CASE

Prints one line saying what the broker did (the bats test compares it):

    api-versions-v9   ApiVersions at an unknown version: "error 35 ranges N"
    unknown-key [KEY] API key KEY (999; 57 is UpdateFeatures, not served): "closed"
                      when the broker closed the connection
    metadata-v99      Metadata at an unknown version: "closed"
    truncated         a frame cut short, then the connection shut: "ok" (no crash)
    oversized SIZE    a size prefix of SIZE bytes (over socket.request.max.bytes): "closed"
    bad-crc TOPIC     Produce v3 of a batch whose CRC is wrong: "error 2"
    magic1 TOPIC      Produce v3 of a magic 1 message set: "error 87"
    acks2 TOPIC       Produce v3 with acks=2: "error 21" (INVALID_REQUIRED_ACKS)
    acks0-bad-crc TOPIC  the bad batch with acks=0: "closed" (nothing to answer)
    latest TOPIC      ListOffsets v1, latest offset of partition 0: "offset N"
    flexible TOPIC    every API at its highest (flexible) version, each answer
                      parsed field by field as Kafka's message definitions lay
                      it out, every byte accounted for: one "API vN ..." line each

The admin APIs (tests/cli/kafka-admin.bats):

    create NAME PARTS RF   CreateTopics v4 of one topic: "error N"
    incremental TOPIC OP NAME [VALUE]
                      IncrementalAlterConfigs v1 (flexible) of one setting
                      (OP 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT): "error N"
    admin-flexible TOPIC  DescribeConfigs v4, AlterConfigs v2, CreatePartitions
                      v3, DescribeCluster v0 and DeleteTopics v4 (all flexible),
                      parsed strictly: one line each
    admin-truncated KEY VERSION  a request of that admin API cut short inside
                      its body: "closed"
"""
import socket
import struct
import sys
import zlib


def frame(key, version, corr, body, client=b"raw"):
    header = struct.pack(">hhih", key, version, corr, len(client)) + client
    msg = header + body
    return struct.pack(">i", len(msg)) + msg


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def answer(s):
    size = recv_exact(s, 4)
    if size is None:
        return None
    return recv_exact(s, struct.unpack(">i", size)[0])


def closed(s):
    """True when the broker closes the connection (within 5 s)."""
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def crc32c(data):
    """CRC-32C (Castagnoli), bit by bit: batches here are small."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(v):
    v = (v << 1) ^ (v >> 63)
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def batch(value, good_crc=True):
    """A RecordBatch v2 of one record (no key, no headers)."""
    rec = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(len(value)) + value + varint(0)
    rec = varint(len(rec)) + rec
    after_crc = struct.pack(">hiqqqhii", 0, 0, 1700000000000, 1700000000000, -1, -1, -1, 1) + rec
    crc = crc32c(after_crc)
    if not good_crc:
        crc ^= 1
    body = struct.pack(">ibI", 0, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def message_set_v1(value):
    """A magic 1 message set of one message."""
    msg = struct.pack(">bbq", 1, 0, 1700000000000) + struct.pack(">i", -1)
    msg += struct.pack(">i", len(value)) + value
    msg = struct.pack(">I", zlib.crc32(msg)) + msg
    return struct.pack(">qi", 0, len(msg)) + msg


def produce_v3(topic, records, acks=1):
    t = topic.encode()
    body = struct.pack(">hhi", -1, acks, 5000)  # null transactional id, acks, timeout
    body += struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">ii", 1, 0) + struct.pack(">i", len(records)) + records
    return frame(0, 3, 11, body)


def produce_error(s, topic, records):
    s.sendall(produce_v3(topic, records))
    r = answer(s)
    # corr, [topic: name, [partition, error, base_offset, log_append_time]], throttle
    pos = 4 + 4
    (n,) = struct.unpack_from(">h", r, pos)
    pos += 2 + n + 4 + 4
    (err,) = struct.unpack_from(">h", r, pos)
    return err


class Reader:
    """Reads a flexible (compact) response strictly: every byte accounted for."""

    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(">" + fmt, self.d, self.p)
        self.p += struct.calcsize(">" + fmt)
        return v[0] if len(v) == 1 else v

    def uvarint(self):
        shift = v = 0
        while True:
            b = self.d[self.p]
            self.p += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def string(self):
        n = self.uvarint() - 1
        if n < 0:
            return None
        s = self.d[self.p:self.p + n].decode()
        self.p += n
        return s

    def array(self, item):
        return [item() for _ in range(self.uvarint() - 1)]

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.p += self.uvarint()

    def done(self):
        assert self.p == len(self.d), "%d bytes left over" % (len(self.d) - self.p)


def cstr(s):
    b = s.encode()
    return bytes([len(b) + 1]) + b


def flex_frame(key, version, corr, body):
    header = struct.pack(">hhih", key, version, corr, 3) + b"raw" + b"\x00"
    msg = header + body
    return struct.pack(">i", len(msg)) + msg


def ask_flexible(s, key, version, body):
    """Sends a flexible request; a Reader past its answer's header."""
    s.sendall(flex_frame(key, version, 9, body))
    r = Reader(answer(s))
    assert r.take("i") == 9
    r.tags()
    return r


def flexible(s, topic):
    t = cstr(topic)

    def ask(key, version, body):
        return ask_flexible(s, key, version, body)

    # Metadata v12: topics [topic_id, name], allow_auto_create, include_topic_ops
    r = ask(3, 12, b"\x02" + b"\x00" * 16 + t + b"\x00" + b"\x00\x00" + b"\x00")
    r.take("i")
    brokers = r.array(lambda: (r.take("i"), r.string(), r.take("i"), r.string(), r.tags()))
    cluster, controller = r.string(), r.take("i")

    def partition():
        p = r.take("hiii")
        reps, isr, off = r.array(lambda: r.take("i")), r.array(lambda: r.take("i")), r.array(lambda: r.take("i"))
        r.tags()
        return p, reps, isr, off

    def mtopic():
        err, name = r.take("h"), r.string()
        r.p += 16
        internal = r.take("b")
        parts = r.array(partition)
        r.take("i")
        r.tags()
        return err, name, len(parts)

    topics = r.array(mtopic)
    r.tags()
    r.done()
    print("Metadata v12 brokers %d cluster %s controller %d topics %s" % (len(brokers), cluster, controller, topics))
    # Produce v9 of one batch, acks 1
    rec = batch(b"flex")
    body = b"\x00" + struct.pack(">hi", 1, 5000) + b"\x02" + t + b"\x02" + struct.pack(">i", 0)
    body += bytes([len(rec) + 1]) + rec + b"\x00" + b"\x00" + b"\x00"
    r = ask(0, 9, body)

    def ppart():
        v = r.take("ihqqq")
        r.array(lambda: (r.take("i"), r.string(), r.tags()))
        msg = r.string()
        r.tags()
        return v[1], v[2], msg

    resp = r.array(lambda: (r.string(), r.array(ppart), r.tags())[1])
    r.take("i")
    r.tags()
    r.done()
    print("Produce v9 %s" % resp)
    # Fetch v12 from offset 0
    body = struct.pack(">iiiibii", -1, 0, 1, 1 << 20, 0, 0, -1) + b"\x02" + t + b"\x02"
    body += struct.pack(">iiqiqi", 0, -1, 0, -1, -1, 1 << 20) + b"\x00" + b"\x00" + b"\x01" + b"\x01" + b"\x00"
    r = ask(1, 12, body)
    r.take("ihi")

    def fpart():
        idx, err, hw, lso, start = r.take("ihqqq")
        r.array(lambda: r.take("qq"))
        r.take("i")
        n = r.uvarint() - 1
        r.p += n
        r.tags()
        return idx, err, hw, n > 0

    resp = r.array(lambda: (r.string(), r.array(fpart), r.tags())[1])
    r.tags()
    r.done()
    print("Fetch v12 %s" % resp)
    # ListOffsets v7, latest
    body = struct.pack(">ib", -1, 0) + b"\x02" + t + b"\x02" + struct.pack(">iiq", 0, -1, -1) + b"\x00\x00\x00"
    r = ask(2, 7, body)
    r.take("i")
    resp = r.array(lambda: (r.string(), r.array(lambda: (r.take("ihqqi"), r.tags())[0]), r.tags())[1])
    r.tags()
    r.done()
    print("ListOffsets v7 %s" % resp)
    # OffsetForLeaderEpoch v4, epoch 0
    body = struct.pack(">i", -1) + b"\x02" + t + b"\x02" + struct.pack(">iii", 0, -1, 0) + b"\x00\x00\x00"
    r = ask(23, 4, body)
    r.take("i")
    resp = r.array(lambda: (r.string(), r.array(lambda: (r.take("hiiq"), r.tags())[0]), r.tags())[1])
    r.tags()
    r.done()
    print("OffsetForLeaderEpoch v4 %s" % resp)
    # InitProducerId v4, no transactional id
    r = ask(22, 4, b"\x00" + struct.pack(">iqh", 60000, -1, -1) + b"\x00")
    thr, err, pid, epoch = r.take("ihqh")
    r.tags()
    r.done()
    print("InitProducerId v4 error %d epoch %d pid %s" % (err, epoch, "set" if pid >= 0 else "none"))
    # FindCoordinator v3
    r = ask(10, 3, cstr("group-1") + b"\x00\x00")
    thr, err = r.take("ih")
    msg, node, host, port = r.string(), r.take("i"), r.string(), r.take("i")
    r.tags()
    r.done()
    print("FindCoordinator v3 error %d node %d" % (err, node))
    # ApiVersions v3: the header of the answer is v0 (no tags)
    s.sendall(flex_frame(18, 3, 10, cstr("raw") + cstr("1") + b"\x00"))
    r = Reader(answer(s))
    assert r.take("i") == 10
    err = r.take("h")
    apis = r.array(lambda: (r.take("hhh"), r.tags())[0])
    r.take("i")
    r.tags()
    r.done()
    print("ApiVersions v3 error %d apis %s" % (err, " ".join("%d:%d-%d" % a for a in apis)))


def admin_create(s, name, parts, rf):
    """CreateTopics v4 of one topic, no configs: its error code."""
    n = name.encode()
    body = struct.pack(">i", 1) + struct.pack(">h", len(n)) + n + struct.pack(">ihii", parts, rf, 0, 0)
    body += struct.pack(">ib", 10000, 0)
    s.sendall(frame(19, 4, 3, body))
    r = answer(s)
    pos = 4 + 4 + 4
    (ln,) = struct.unpack_from(">h", r, pos)
    (err,) = struct.unpack_from(">h", r, pos + 2 + ln)
    return err


def admin_incremental(s, topic, op, name, value):
    """IncrementalAlterConfigs v1 of one topic setting: its error code."""
    val = cstr(value) if value is not None else b"\x00"
    body = b"\x02" + b"\x02" + cstr(topic) + b"\x02" + cstr(name) + bytes([op]) + val + b"\x00"
    body += b"\x00" + b"\x00" + b"\x00"
    s.sendall(flex_frame(44, 1, 4, body))
    r = Reader(answer(s))
    r.take("i")
    r.tags()
    r.take("i")
    res = r.array(lambda: (r.take("h"), r.string(), r.take("b"), r.string(), r.tags())[0])
    r.tags()
    r.done()
    return res[0]


def admin_flexible(s, topic):
    t = cstr(topic)

    def ask(key, version, body):
        return ask_flexible(s, key, version, body)

    # DescribeConfigs v4: the topic, keys retention.ms and segment.bytes, synonyms and docs
    body = b"\x02" + b"\x02" + t + b"\x03" + cstr("retention.ms") + cstr("segment.bytes") + b"\x00"
    body += b"\x01\x01\x00"
    r = ask(32, 4, body)
    r.take("i")

    def entry():
        name, value, ro, src, sens = r.string(), r.string(), r.take("b"), r.take("b"), r.take("b")
        syn = r.array(lambda: (r.string(), r.string(), r.take("b"), r.tags())[:3])
        ctype, doc = r.take("b"), r.string()
        r.tags()
        return "%s=%s/%d/%d/%s/%s" % (name, value, src, ctype, syn[0][0] if syn else "-", "doc" if doc else "nodoc")

    res = r.array(lambda: (r.take("h"), r.string(), r.take("b"), r.string(), r.array(entry), r.tags())[4])
    r.tags()
    r.done()
    print("DescribeConfigs v4 %s" % " ".join(res[0]))
    # AlterConfigs v2: set retention.ms (and so every other override goes)
    body = b"\x02" + b"\x02" + t + b"\x02" + cstr("retention.ms") + cstr("120000") + b"\x00" + b"\x00"
    body += b"\x00\x00"
    r = ask(33, 2, body)
    r.take("i")
    res = r.array(lambda: (r.take("h"), r.string(), r.take("b"), r.string(), r.tags())[0])
    r.tags()
    r.done()
    print("AlterConfigs v2 errors %s" % res)
    # CreatePartitions v3: to 1 partition (no more than it has)
    body = b"\x02" + t + struct.pack(">i", 1) + b"\x00" + b"\x00" + struct.pack(">ib", 5000, 0) + b"\x00"
    r = ask(37, 3, body)
    r.take("i")
    res = r.array(lambda: (r.string(), r.take("h"), r.string(), r.tags())[1])
    r.tags()
    r.done()
    print("CreatePartitions v3 errors %s" % res)
    # DescribeCluster v0
    r = ask(60, 0, b"\x00\x00")
    thr, err = r.take("ih")
    msg, cluster, controller = r.string(), r.string(), r.take("i")
    brokers = r.array(lambda: (r.take("i"), r.string(), r.take("i"), r.string(), r.tags())[0])
    r.take("i")
    r.tags()
    r.done()
    print("DescribeCluster v0 error %d controller %d brokers %s" % (err, controller, brokers))
    # DeleteTopics v4: the topic and one that is not there
    body = b"\x03" + t + cstr("no-such-topic") + struct.pack(">i", 5000) + b"\x00"
    r = ask(20, 4, body)
    r.take("i")
    res = r.array(lambda: (r.string(), r.take("h"), r.tags())[1])
    r.tags()
    r.done()
    print("DeleteTopics v4 errors %s" % res)


def admin_truncated(s, key, version):
    """An admin request whose body stops short: the connection closes."""
    bodies = {19: struct.pack(">i", 1) + b"\x00\x05ab", 20: struct.pack(">i", 3) + b"\x00\x01a",
              32: struct.pack(">i", 1) + b"\x02\x00", 33: struct.pack(">i", 2),
              37: struct.pack(">i", 1) + b"\x00\x01t", 44: b"\x02\x02", 60: b""}
    if key == 44 or key == 60:
        s.sendall(flex_frame(key, version, 1, bodies[key]))
    else:
        s.sendall(frame(key, version, 1, bodies[key]))
    return closed(s)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    case = sys.argv[2]
    s = socket.create_connection((host, int(port)), timeout=10)
    if case == "api-versions-v9":
        s.sendall(frame(18, 9, 1, b""))
        r = answer(s)
        corr, err, n = struct.unpack_from(">ihi", r, 0)
        print("error %d ranges %d" % (err, n))
    elif case == "unknown-key":
        s.sendall(frame(int(sys.argv[3]) if len(sys.argv) > 3 else 999, 0, 1, b""))
        print("closed" if closed(s) else "open")
    elif case == "metadata-v99":
        s.sendall(frame(3, 99, 1, struct.pack(">i", -1)))
        print("closed" if closed(s) else "open")
    elif case == "truncated":
        s.sendall(frame(3, 4, 1, struct.pack(">i", -1) + b"\x01")[:9])
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        print("ok" if s.recv(1) == b"" else "answered")
    elif case == "oversized":
        s.sendall(struct.pack(">i", int(sys.argv[3])) + b"\x00" * 64)
        print("closed" if closed(s) else "open")
    elif case == "bad-crc":
        print("error %d" % produce_error(s, sys.argv[3], batch(b"bad", good_crc=False)))
    elif case == "acks2":
        s.sendall(produce_v3(sys.argv[3], batch(b"x"), acks=2))
        r = answer(s)
        (n,) = struct.unpack_from(">h", r, 8)
        print("error %d" % struct.unpack_from(">h", r, 8 + 2 + n + 4 + 4)[0])
    elif case == "magic1":
        print("error %d" % produce_error(s, sys.argv[3], message_set_v1(b"old")))
    elif case == "latest":
        t = sys.argv[3].encode()
        body = struct.pack(">i", -1) + struct.pack(">ih", 1, len(t)) + t
        body += struct.pack(">iiq", 1, 0, -1)
        s.sendall(frame(2, 1, 5, body))
        r = answer(s)
        pos = 4 + 4
        (n,) = struct.unpack_from(">h", r, pos)
        pos += 2 + n + 4
        part, err, ts, off = struct.unpack_from(">ihqq", r, pos)
        print("offset %d" % off if err == 0 else "error %d" % err)
    elif case == "acks0-bad-crc":
        s.sendall(produce_v3(sys.argv[3], batch(b"bad", good_crc=False), acks=0))
        print("closed" if closed(s) else "open")
    elif case == "flexible":
        flexible(s, sys.argv[3])
    elif case == "create":
        print("error %d" % admin_create(s, sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    elif case == "incremental":
        value = sys.argv[6] if len(sys.argv) > 6 else None
        print("error %d" % admin_incremental(s, sys.argv[3], int(sys.argv[4]), sys.argv[5], value))
    elif case == "admin-flexible":
        admin_flexible(s, sys.argv[3])
    elif case == "admin-truncated":
        print("closed" if admin_truncated(s, int(sys.argv[3]), int(sys.argv[4])) else "open")
    else:
        sys.exit("unknown case " + case)


main()
