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

The group APIs (tests/cli/kafka-groups.bats):

    join-bad-session GROUP   JoinGroup v0 with a 1 ms session timeout: "error 26"
    unknown-member GROUP     Heartbeat v0 and SyncGroup v0 of a member the group
                      does not know: "heartbeat 25 sync 25"
    stale GROUP TOPIC  a member joins (JoinGroup v0) and syncs; then SyncGroup,
                      Heartbeat and OffsetCommit v2 of the generation before:
                      "sync 0 sync-stale 22 heartbeat-stale 22 commit-stale 22 heartbeat 0"
    truncated-join GROUP   a JoinGroup whose body stops short: "closed"
    join-then-close GROUP  a member joins and syncs; a second one's JoinGroup
                      (held: the first must join again) is left by resetting its
                      connection; the first, told to rejoin, forms the next
                      generation alone once the second's 1 s session is over:
                      "heartbeat 27 rejoin 0 generation 2 members 1"
    groups-flexible GROUP TOPIC   the group APIs at their highest (flexible)
                      versions, each answer parsed field by field: a line each
    static-raw GROUP  static membership by hand (v5 JoinGroup, v3 SyncGroup,
                      Heartbeat and LeaveGroup, instance id "s1"): a member
                      joins and syncs; a second connection joins with the
                      same instance and no member id and is answered at once
                      in the same generation under a new id, the leader named
                      as it was; the old id's heartbeat is fenced, the new
                      one's is not; LeaveGroup by instance id alone; then the
                      new id is unknown: "join 0 rejoin 0 generation same
                      leader old heartbeat-old 82 heartbeat-new 0 leave 0 0
                      after 25"
    commit-epoch GROUP TOPIC EPOCH  a standalone OffsetCommit v8 of TOPIC's
                      partition 0 at offset 42 with committed_leader_epoch
                      EPOCH ("old": OffsetCommit v2, which has none): "error N"
    fetch-epoch GROUP TOPIC  OffsetFetch v7 of TOPIC's partition 0:
                      "offset O epoch E metadata M error N"
    describe-static GROUP  DescribeGroups v5 (flexible) of GROUP: "STATE
                      instances I,I,..." (each member's group_instance_id,
                      sorted; "-" for a dynamic member)

In a cluster (tests/cli/kafka-admin.bats):

    coord-gate GROUP ADDR,ADDR,...  finds GROUP's coordinator
                      (FindCoordinator v0), forms the group there (a member
                      joins and syncs, JoinGroup/SyncGroup v0), then asks
                      each broker for DescribeGroups v0 of it and ListGroups
                      v0: "coordinator describe 0 Stable list [GROUP]" for
                      the coordinator, "other describe 16 list []" for each
                      of the others (NOT_COORDINATOR), coordinator first

The transactional APIs (tests/cli/kafka.bats), refused until stream has
transactions:

    txn TOPIC         every transactional API at every version Kafka defines
                      (AddPartitionsToTxn 0-5, AddOffsetsToTxn 0-4, EndTxn 0-5,
                      WriteTxnMarkers 0-2, TxnOffsetCommit 0-5,
                      DescribeTransactions 0, ListTransactions 0-1), each
                      answer parsed strictly in its version's layout with what
                      the request named echoed: "API vLO-HI errors [CODES]" a
                      line each, after "ApiVersions lists none" (ApiVersions v3
                      does not list them)
"""
import socket
import struct
import sys
import time
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

    def skipbytes(self):
        n = self.uvarint() - 1
        self.p += max(n, 0)

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
def s16(text):
    b = text.encode()
    return struct.pack(">h", len(b)) + b


def b32(data):
    return struct.pack(">i", len(data)) + data


def join_v0(group, member, session_ms=10000):
    meta = struct.pack(">h", 0) + struct.pack(">i", 0) + struct.pack(">i", -1)  # no topics
    body = s16(group) + struct.pack(">i", session_ms) + s16(member) + s16("consumer")
    body += struct.pack(">i", 1) + s16("range") + b32(meta)
    return frame(11, 0, 21, body)


def join_answer(r):
    """JoinGroup v0's answer: error, generation, member id."""
    pos = 4
    err, gen = struct.unpack_from(">hi", r, pos)
    pos += 6
    for _ in range(2):  # protocol, leader
        (n,) = struct.unpack_from(">h", r, pos)
        pos += 2 + max(n, 0)
    (n,) = struct.unpack_from(">h", r, pos)
    member = r[pos + 2:pos + 2 + n].decode()
    return err, gen, member


def sync_v0(group, gen, member, assign=True):
    body = s16(group) + struct.pack(">i", gen) + s16(member)
    body += struct.pack(">i", 1) + s16(member) + b32(b"") if assign else struct.pack(">i", 0)
    return frame(14, 0, 22, body)


def heartbeat_v0(group, gen, member):
    return frame(12, 0, 23, s16(group) + struct.pack(">i", gen) + s16(member))


def commit_v2(group, gen, member, topic):
    body = s16(group) + struct.pack(">i", gen) + s16(member) + struct.pack(">q", -1)
    body += struct.pack(">i", 1) + s16(topic) + struct.pack(">i", 1)
    body += struct.pack(">iq", 0, 0) + s16("")
    return frame(8, 2, 24, body)


def error_at(r, pos):
    return struct.unpack_from(">h", r, pos)[0]


def commit_error(r):
    # corr, topics [name, [partition, error]]
    (n,) = struct.unpack_from(">h", r, 8)
    return error_at(r, 8 + 2 + n + 4 + 4)


def stale(s, group, topic):
    s.sendall(join_v0(group, ""))
    err, gen, member = join_answer(answer(s))
    assert err == 0, "join error %d" % err
    s.sendall(sync_v0(group, gen, member))
    out = ["sync %d" % error_at(answer(s), 4)]
    s.sendall(sync_v0(group, gen - 1, member))
    out.append("sync-stale %d" % error_at(answer(s), 4))
    s.sendall(heartbeat_v0(group, gen - 1, member))
    out.append("heartbeat-stale %d" % error_at(answer(s), 4))
    s.sendall(commit_v2(group, gen - 1, member, topic))
    out.append("commit-stale %d" % commit_error(answer(s)))
    s.sendall(heartbeat_v0(group, gen, member))
    out.append("heartbeat %d" % error_at(answer(s), 4))
    print(" ".join(out))


def join_then_close(s, group, addr):
    s.sendall(join_v0(group, ""))
    err, gen, member = join_answer(answer(s))
    assert err == 0, "join error %d" % err
    s.sendall(sync_v0(group, gen, member))
    assert error_at(answer(s), 4) == 0
    other = socket.create_connection(addr, timeout=10)
    other.sendall(join_v0(group, "", session_ms=1000))
    time.sleep(0.3)  # held by the coordinator
    # A reset, not an end of stream (after which the broker would still
    # answer a half-closed connection): the broker drops the connection now.
    other.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    other.close()
    s.sendall(heartbeat_v0(group, gen, member))
    out = ["heartbeat %d" % error_at(answer(s), 4)]
    s.sendall(join_v0(group, member))
    r = answer(s)
    err, gen2, _ = join_answer(r)
    # the leader's answer lists the members: count them after the member id
    pos = 4 + 6
    for _ in range(3):
        (n,) = struct.unpack_from(">h", r, pos)
        pos += 2 + max(n, 0)
    (nmembers,) = struct.unpack_from(">i", r, pos)
    out.append("rejoin %d generation %d members %d" % (err, gen2, nmembers))
    print(" ".join(out))


def groups_flexible(s, group, topic):
    g, t = cstr(group), cstr(topic)

    def ask(key, version, body):
        return ask_flexible(s, key, version, body)

    def cbytes(data):
        return bytes([len(data) + 1]) + data

    meta = struct.pack(">hi", 0, 1) + struct.pack(">h", len(topic)) + topic.encode() + struct.pack(">i", -1)
    # JoinGroup v7: group, session, rebalance, member, instance (null), type, protocols
    body = g + struct.pack(">ii", 10000, 10000) + cstr("") + b"\x00" + cstr("consumer")
    body += b"\x02" + cstr("range") + cbytes(meta) + b"\x00" + b"\x00"
    r = ask(11, 7, body)

    def join_answer7():
        thr, err, gen = r.take("ihi")
        ptype, pname, leader, member = r.string(), r.string(), r.string(), r.string()
        members = r.array(lambda: (r.string(), r.string(), r.skipbytes(), r.tags()))
        r.tags()
        r.done()
        return err, gen, ptype, pname, leader, member, len(members)

    err, gen, ptype, pname, leader, member, n = join_answer7()
    print("JoinGroup v7 error %d (member id required: %s)" % (err, "yes" if member else "no"))
    body = g + struct.pack(">ii", 10000, 10000) + cstr(member) + b"\x00" + cstr("consumer")
    body += b"\x02" + cstr("range") + cbytes(meta) + b"\x00" + b"\x00"
    r = ask(11, 7, body)
    err, gen, ptype, pname, leader, member2, n = join_answer7()
    print("JoinGroup v7 error %d generation %d %s %s leader %s members %d" % (
        err, gen, ptype, pname, "self" if leader == member else leader, n))
    # SyncGroup v5: group, generation, member, instance, type, name, assignments
    assign = struct.pack(">hi", 0, 1) + struct.pack(">h", len(topic)) + topic.encode() + struct.pack(">ii", 1, 0) + struct.pack(">i", -1)
    body = g + struct.pack(">i", gen) + cstr(member) + b"\x00" + cstr("consumer") + cstr("range")
    body += b"\x02" + cstr(member) + cbytes(assign) + b"\x00" + b"\x00"
    r = ask(14, 5, body)
    thr, err = r.take("ih")
    ptype, pname = r.string(), r.string()
    n = r.uvarint() - 1
    got = r.d[r.p:r.p + n]
    r.p += n
    r.tags()
    r.done()
    print("SyncGroup v5 error %d %s %s assignment %s" % (err, ptype, pname, "same" if got == assign else "differs"))
    # Heartbeat v4
    r = ask(12, 4, g + struct.pack(">i", gen) + cstr(member) + b"\x00" + b"\x00")
    thr, err = r.take("ih")
    r.tags()
    r.done()
    print("Heartbeat v4 error %d" % err)
    # OffsetCommit v8: group, generation, member, instance, topics [name, [partition, offset, epoch, metadata]]
    body = g + struct.pack(">i", gen) + cstr(member) + b"\x00" + b"\x02" + t + b"\x02"
    body += struct.pack(">iqi", 0, 1, -1) + cstr("m") + b"\x00" + b"\x00" + b"\x00"
    r = ask(8, 8, body)
    r.take("i")
    resp = r.array(lambda: (r.string(), r.array(lambda: (r.take("ih"), r.tags())[0]), r.tags())[1])
    r.tags()
    r.done()
    print("OffsetCommit v8 %s" % resp)
    # OffsetFetch v8: groups [group, topics null], require_stable
    r = ask(9, 8, b"\x02" + g + b"\x00" + b"\x00" + b"\x01" + b"\x00")
    r.take("i")

    def fpart():
        p, off, epoch = r.take("iqi")
        meta_s, err2 = r.string(), r.take("h")
        r.tags()
        return p, off, meta_s, err2

    def fgroup():
        name = r.string()
        topics = r.array(lambda: (r.string(), r.array(fpart), r.tags())[:2])
        err2 = r.take("h")
        r.tags()
        return name, topics, err2

    resp = r.array(fgroup)
    r.tags()
    r.done()
    print("OffsetFetch v8 %s" % resp)
    # ListGroups v4: states filter ["Stable"]
    r = ask(16, 4, b"\x02" + cstr("Stable") + b"\x00")
    thr, err = r.take("ih")
    groups = r.array(lambda: (r.string(), r.string(), r.string(), r.tags())[:3])
    r.tags()
    r.done()
    print("ListGroups v4 error %d %s" % (err, [x for x in groups if x[0] == group]))
    # DescribeGroups v5
    r = ask(15, 5, b"\x02" + g + b"\x00" + b"\x00")
    r.take("i")

    def dmember():
        mid, inst, cid, host = r.string(), r.string(), r.string(), r.string()
        r.skipbytes()
        r.skipbytes()
        r.tags()
        return mid == member, cid, host

    def dgroup():
        err2, name, state, ptype2, pdata = r.take("h"), r.string(), r.string(), r.string(), r.string()
        members = r.array(dmember)
        r.take("i")
        r.tags()
        return err2, name, state, ptype2, pdata, members

    resp = r.array(dgroup)
    r.tags()
    r.done()
    print("DescribeGroups v5 %s" % resp)
    # LeaveGroup v4: members [member, instance]
    r = ask(13, 4, g + b"\x02" + cstr(member) + b"\x00" + b"\x00" + b"\x00")
    thr, err = r.take("ih")
    resp = r.array(lambda: (r.string() == member, r.string(), r.take("h"), r.tags())[:3])
    r.tags()
    r.done()
    print("LeaveGroup v4 error %d %s" % (err, resp))
    # DeleteGroups v2
    r = ask(42, 2, b"\x02" + g + b"\x00")
    r.take("i")
    resp = r.array(lambda: (r.string(), r.take("h"), r.tags())[:2])
    r.tags()
    r.done()
    print("DeleteGroups v2 %s" % resp)


class VReader(Reader):
    """Reader for either layout: compact when fl, else Kafka's classic
    int16 strings and int32 array counts (no tags)."""

    def __init__(self, data, fl):
        Reader.__init__(self, data)
        self.fl = fl

    def string(self):
        if self.fl:
            return Reader.string(self)
        n = self.take("h")
        if n < 0:
            return None
        v = self.d[self.p:self.p + n].decode()
        self.p += n
        return v

    def array(self, item):
        n = self.uvarint() - 1 if self.fl else self.take("i")
        return [item() for _ in range(n)]

    def tags(self):
        if self.fl:
            Reader.tags(self)


def txn_apis(s, topic):
    """Every transactional API at every version: a refusal, well formed."""
    # ApiVersions v3 (flexible body, plain response header).
    s.sendall(flex_frame(18, 3, 1, cstr("raw") + cstr("1.0") + b"\x00"))
    r = Reader(answer(s))
    r.take("i")
    assert r.take("h") == 0
    keys = [k for k, lo, hi in r.array(lambda: (r.take("hhh"), r.tags())[0])]
    bad = sorted(set(keys) & {24, 25, 26, 27, 28, 65, 66})
    print("ApiVersions lists none" if not bad else "ApiVersions lists %s" % bad)

    def enc(fl):
        def st(x):
            b = x.encode()
            return bytes([len(b) + 1]) + b if fl else struct.pack(">h", len(b)) + b

        def arr(items):
            return (bytes([len(items) + 1]) if fl else struct.pack(">i", len(items))) + b"".join(items)

        tg = b"\x00" if fl else b""
        return st, arr, tg

    def topics(fl, offsets=False, v=0):
        st, arr, tg = enc(fl)
        if offsets:
            part = lambda i: struct.pack(">iq", i, 5) + (struct.pack(">i", -1) if v >= 2 else b"") + st("m") + tg
        else:
            part = lambda i: struct.pack(">i", i)
        return arr([st(topic) + arr([part(0), part(2)]) + tg])

    def read_topics(r):
        """[(name, [(partition, error)])], every error collected."""
        return r.array(lambda: (r.string(), r.array(lambda: (r.take("ih"), r.tags())[0]), r.tags())[:2])

    apis = [("AddPartitionsToTxn", 24, 0, 5, 3), ("AddOffsetsToTxn", 25, 0, 4, 3),
            ("EndTxn", 26, 0, 5, 3), ("WriteTxnMarkers", 27, 0, 2, 1),
            ("TxnOffsetCommit", 28, 0, 5, 3), ("DescribeTransactions", 65, 0, 0, 0),
            ("ListTransactions", 66, 0, 1, 0)]
    want_topics = [(topic, [(0, 35), (2, 35)])]
    corr = 100
    for name, key, lo, hi, flex in apis:
        errors = set()
        for v in range(lo, hi + 1):
            fl = v >= flex
            st, arr, tg = enc(fl)
            head = st("tx1") + struct.pack(">qh", 7, 0)
            if key == 24 and v <= 3:
                body = head + topics(fl)
            elif key == 24:
                body = arr([head + b"\x00" + topics(fl) + tg])
            elif key == 25:
                body = head + st("g")
            elif key == 26:
                body = head + b"\x01"
            elif key == 27:
                body = arr([struct.pack(">qhb", 7, 0, 1) + topics(fl) + struct.pack(">i", 3)
                            + (b"\x02" if v >= 2 else b"") + tg])
            elif key == 28:
                body = st("tx1") + st("g") + struct.pack(">qh", 7, 0)
                if v >= 3:
                    body += struct.pack(">i", -1) + st("") + b"\x00"  # null instance id
                body += topics(fl, True, v)
            elif key == 65:
                body = arr([st("tx1"), st("tx2")])
            else:
                body = arr([st("Ongoing")]) + arr([struct.pack(">q", 7)])
                if v >= 1:
                    body += struct.pack(">q", -1)
            body += tg
            corr += 1
            s.sendall(flex_frame(key, v, corr, body) if fl else frame(key, v, corr, body))
            r = VReader(answer(s), fl)
            assert r.take("i") == corr
            r.tags()
            if key != 27:
                assert r.take("i") == 0  # throttle_time_ms
            if key == 24 and v <= 3:
                got = read_topics(r)
                assert got == want_topics, got
                errors |= {e for _, ps in got for _, e in ps}
            elif key == 24:
                errors.add(r.take("h"))
                got = r.array(lambda: (r.string(), read_topics(r), r.tags())[:2])
                assert got == [("tx1", want_topics)], got
                errors |= {e for _, ts in got for _, ps in ts for _, e in ps}
            elif key in (25, 26):
                errors.add(r.take("h"))
                if key == 26 and v >= 5:
                    assert r.take("qh") == (-1, -1)
            elif key == 27:
                got = r.array(lambda: (r.take("q"), read_topics(r), r.tags())[:2])
                assert got == [(7, want_topics)], got
                errors |= {e for _, ts in got for _, ps in ts for _, e in ps}
            elif key == 28:
                got = read_topics(r)
                assert got == want_topics, got
                errors |= {e for _, ps in got for _, e in ps}
            elif key == 65:
                def state():
                    err, tid, st_ = r.take("h"), r.string(), r.string()
                    r.take("iqqi")
                    assert r.array(lambda: None) == []
                    r.tags()
                    return err, tid
                got = r.array(state)
                assert [t for _, t in got] == ["tx1", "tx2"], got
                errors |= {e for e, _ in got}
            else:
                errors.add(r.take("h"))
                assert r.array(lambda: None) == [] and r.array(lambda: None) == []
            r.tags()
            r.done()
        print("%s v%d-%d errors %s" % (name, lo, hi, sorted(errors)))


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def coord_gate(group, addrs):
    """DescribeGroups and ListGroups on the coordinator and the others."""
    deadline = time.time() + 20
    while True:
        s = connect(addrs[0])
        s.sendall(frame(10, 0, 31, s16(group)))
        r = answer(s)
        s.close()
        err, node = struct.unpack_from(">hi", r, 4)
        (n,) = struct.unpack_from(">h", r, 10)
        coord = "%s:%d" % (r[12:12 + n].decode(), struct.unpack_from(">i", r, 12 + n)[0])
        if err == 0:
            s = connect(coord)
            s.sendall(join_v0(group, ""))
            err, gen, member = join_answer(answer(s))
            if err == 0:
                break
            s.close()
        assert time.time() < deadline, "no coordinator for %s: error %d" % (group, err)
        time.sleep(0.2)
    s.sendall(sync_v0(group, gen, member))
    assert error_at(answer(s), 4) == 0
    lines = []
    for addr in [coord] + [a for a in addrs if a != coord]:
        c = connect(addr)
        c.sendall(frame(15, 0, 32, struct.pack(">i", 1) + s16(group)))
        r = answer(c)
        # corr, groups [error, group, state, protocol_type, protocol, members]
        (err,) = struct.unpack_from(">h", r, 8)
        (n,) = struct.unpack_from(">h", r, 10)
        (m,) = struct.unpack_from(">h", r, 12 + n)
        state = r[14 + n:14 + n + m].decode()
        c.sendall(frame(16, 0, 33, b""))
        r = answer(c)
        # corr, error, groups [group, protocol_type]
        pos, names = 10, []
        for _ in range(struct.unpack_from(">i", r, 6)[0]):
            (n,) = struct.unpack_from(">h", r, pos)
            names.append(r[pos + 2:pos + 2 + n].decode())
            pos += 2 + n
            (n,) = struct.unpack_from(">h", r, pos)
            pos += 2 + n
        c.close()
        role = "coordinator" if addr == coord else "other"
        lines.append("%s describe %d%s list %s" % (role, err, " " + state if state else "", names))
    print("\n".join(lines))


def nstr(text):
    """A nullable string with an int16 length (None: null)."""
    return struct.pack(">h", -1) if text is None else s16(text)


def static_raw(s, group, addr):
    meta = struct.pack(">h", 0) + struct.pack(">i", 0) + struct.pack(">i", -1)

    def join(conn, member):
        body = s16(group) + struct.pack(">ii", 10000, 10000) + s16(member) + nstr("s1")
        body += s16("consumer") + struct.pack(">i", 1) + s16("range") + b32(meta)
        conn.sendall(frame(11, 5, 41, body))
        r = answer(conn)
        pos = 8
        err, gen = struct.unpack_from(">hi", r, pos)
        pos += 6
        out = []
        for _ in range(3):  # protocol, leader, member id
            (n,) = struct.unpack_from(">h", r, pos)
            out.append(r[pos + 2:pos + 2 + max(n, 0)].decode())
            pos += 2 + max(n, 0)
        return err, gen, out[1], out[2]

    def heartbeat(gen, member):
        s.sendall(frame(12, 3, 42, s16(group) + struct.pack(">i", gen) + s16(member) + nstr("s1")))
        return error_at(answer(s), 8)

    err, gen, leader, a = join(s, "")
    out = ["join %d" % err]
    body = s16(group) + struct.pack(">i", gen) + s16(a) + nstr("s1")
    body += struct.pack(">i", 1) + s16(a) + b32(b"x")
    s.sendall(frame(14, 3, 43, body))
    assert error_at(answer(s), 8) == 0
    other = socket.create_connection(addr, timeout=10)
    err2, gen2, leader2, b = join(other, "")
    out.append("rejoin %d generation %s leader %s" % (
        err2, "same" if gen2 == gen else "new", "old" if leader2 == a and b != a else leader2))
    out.append("heartbeat-old %d heartbeat-new %d" % (heartbeat(gen, a), heartbeat(gen, b)))
    s.sendall(frame(13, 3, 44, s16(group) + struct.pack(">i", 1) + s16("") + nstr("s1")))
    r = answer(s)
    top = error_at(r, 8)
    (n,) = struct.unpack_from(">i", r, 10)
    pos = 14
    for _ in range(2):  # member id, instance id
        (m,) = struct.unpack_from(">h", r, pos)
        pos += 2 + max(m, 0)
    out.append("leave %d %d after %d" % (top, error_at(r, pos), heartbeat(gen, b)))
    print(" ".join(out))


def commit_epoch(s, group, topic, epoch):
    if epoch == "old":
        s.sendall(commit_v2(group, -1, "", topic))
        print("error %d" % commit_error(answer(s)))
        return
    body = cstr(group) + struct.pack(">i", -1) + cstr("") + b"\x00" + b"\x02" + cstr(topic)
    body += b"\x02" + struct.pack(">iqi", 0, 42, int(epoch)) + cstr("m") + b"\x00" * 3
    r = ask_flexible(s, 8, 8, body)
    r.take("i")
    errs = r.array(lambda: (r.string(), r.array(lambda: (r.take("ih"), r.tags())[0]), r.tags())[1])
    r.tags()
    r.done()
    print("error %d" % errs[0][0][1])


def fetch_epoch(s, group, topic):
    body = cstr(group) + b"\x02" + cstr(topic) + b"\x02" + struct.pack(">i", 0) + b"\x00"
    r = ask_flexible(s, 9, 7, body + b"\x00" + b"\x00")  # require_stable, tags
    r.take("i")

    def part():
        p, off, epoch = r.take("iqi")
        meta, err = r.string(), r.take("h")
        r.tags()
        return off, epoch, meta, err

    topics = r.array(lambda: (r.string(), r.array(part), r.tags())[1])
    r.take("h")
    r.tags()
    r.done()
    print("offset %d epoch %d metadata %s error %d" % topics[0][0])


def describe_static(s, group):
    r = ask_flexible(s, 15, 5, b"\x02" + cstr(group) + b"\x00" + b"\x00")
    r.take("i")

    def member():
        mid, iid, client, host = r.string(), r.string(), r.string(), r.string()
        r.skipbytes()
        r.skipbytes()
        r.tags()
        return iid or "-"

    def group_():
        err, gid, state, ptype, proto = r.take("h"), r.string(), r.string(), r.string(), r.string()
        members = r.array(member)
        r.take("i")
        r.tags()
        return err, state, members

    groups = r.array(group_)
    r.tags()
    r.done()
    err, state, members = groups[0]
    print("%s instances %s" % (state if err == 0 else "error %d" % err, ",".join(sorted(members))))


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
    elif case == "join-bad-session":
        s.sendall(join_v0(sys.argv[3], "", session_ms=1))
        print("error %d" % join_answer(answer(s))[0])
    elif case == "unknown-member":
        s.sendall(heartbeat_v0(sys.argv[3], 1, "nobody"))
        out = "heartbeat %d" % error_at(answer(s), 4)
        s.sendall(sync_v0(sys.argv[3], 1, "nobody"))
        print(out + " sync %d" % error_at(answer(s), 4))
    elif case == "stale":
        stale(s, sys.argv[3], sys.argv[4])
    elif case == "truncated-join":
        f = join_v0(sys.argv[3], "")
        cut = f[4:-6]
        s.sendall(struct.pack(">i", len(cut)) + cut)
        print("closed" if closed(s) else "open")
    elif case == "join-then-close":
        join_then_close(s, sys.argv[3], (host, int(port)))
    elif case == "coord-gate":
        coord_gate(sys.argv[3], sys.argv[4].split(","))
    elif case == "static-raw":
        static_raw(s, sys.argv[3], (host, int(port)))
    elif case == "commit-epoch":
        commit_epoch(s, sys.argv[3], sys.argv[4], sys.argv[5])
    elif case == "fetch-epoch":
        fetch_epoch(s, sys.argv[3], sys.argv[4])
    elif case == "describe-static":
        describe_static(s, sys.argv[3])
    elif case == "txn":
        txn_apis(s, sys.argv[3])
    elif case == "groups-flexible":
        groups_flexible(s, sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown case " + case)


main()
