#!/usr/bin/env python3
"""kafka_raw.py - hand-made Kafka requests for tests/cli/kafka.bats: the
malformed and unusual frames no client library sends.

    kafka_raw.py HOST:PORT CASE

Prints one line saying what the broker did (the bats test compares it):

    api-versions-v9   ApiVersions at an unknown version: "error 35 ranges N"
    unknown-key       API key 999: "closed" when the broker closed the connection
    metadata-v99      Metadata at an unknown version: "closed"
    truncated         a frame cut short, then the connection shut: "ok" (no crash)
    oversized SIZE    a size prefix of SIZE bytes (over socket.request.max.bytes): "closed"
    bad-crc TOPIC     Produce v3 of a batch whose CRC is wrong: "error 2"
    magic1 TOPIC      Produce v3 of a magic 1 message set: "error 87"
    latest TOPIC      ListOffsets v1, latest offset of partition 0: "offset N"
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


def produce_v3(topic, records):
    t = topic.encode()
    body = struct.pack(">hhi", -1, 1, 5000)  # null transactional id, acks 1, timeout
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
        s.sendall(frame(999, 0, 1, b""))
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
    else:
        sys.exit("unknown case " + case)


main()
