#!/usr/bin/env python3
# rawreq.py HOST:PORT OP JSON-FIELDS - one request of the native protocol
# (share/doc/protocol.md) after a hello at version 3; prints the response
# map as JSON (bins as hex). For tests of ops no program sends, such as the
# brokers' own broker_heartbeat and alter_isr. A minimal MessagePack coder:
# ints, strs, bools, nil, arrays and maps.
import json, socket, struct, sys

def enc(o):
    if o is None: return b'\xc0'
    if o is True: return b'\xc3'
    if o is False: return b'\xc2'
    if isinstance(o, int):
        if 0 <= o < 128: return bytes([o])
        if 0 <= o: return b'\xcf' + struct.pack('>Q', o)
        if o >= -32: return struct.pack('>b', o)
        return b'\xd3' + struct.pack('>q', o)
    if isinstance(o, str):
        b = o.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else b'\xdb' + struct.pack('>I', len(b))) + b
    if isinstance(o, list):
        return b'\xdd' + struct.pack('>I', len(o)) + b''.join(enc(x) for x in o)
    if isinstance(o, dict):
        return b'\xdf' + struct.pack('>I', len(o)) + b''.join(enc(k) + enc(v) for k, v in o.items())
    raise TypeError(o)

def dec(b, i=0):
    t = b[i]
    if t < 0x80: return t, i + 1
    if t >= 0xe0: return t - 256, i + 1
    if 0x80 <= t <= 0x8f or t in (0xde, 0xdf):
        n, i = (t & 0x0f, i + 1) if t <= 0x8f else ((struct.unpack('>H', b[i+1:i+3])[0], i + 3) if t == 0xde else (struct.unpack('>I', b[i+1:i+5])[0], i + 5))
        d = {}
        for _ in range(n):
            k, i = dec(b, i); v, i = dec(b, i); d[k] = v
        return d, i
    if 0x90 <= t <= 0x9f or t in (0xdc, 0xdd):
        n, i = (t & 0x0f, i + 1) if t <= 0x9f else ((struct.unpack('>H', b[i+1:i+3])[0], i + 3) if t == 0xdc else (struct.unpack('>I', b[i+1:i+5])[0], i + 5))
        a = []
        for _ in range(n):
            v, i = dec(b, i); a.append(v)
        return a, i
    if 0xa0 <= t <= 0xbf or t in (0xd9, 0xda, 0xdb):
        if t <= 0xbf: n, i = t & 0x1f, i + 1
        elif t == 0xd9: n, i = b[i+1], i + 2
        elif t == 0xda: n, i = struct.unpack('>H', b[i+1:i+3])[0], i + 3
        else: n, i = struct.unpack('>I', b[i+1:i+5])[0], i + 5
        return b[i:i+n].decode(), i + n
    if t in (0xc4, 0xc5, 0xc6):
        w = {0xc4: 1, 0xc5: 2, 0xc6: 4}[t]
        n = int.from_bytes(b[i+1:i+1+w], 'big'); i += 1 + w
        return b[i:i+n].hex(), i + n
    if t == 0xc0: return None, i + 1
    if t == 0xc2: return False, i + 1
    if t == 0xc3: return True, i + 1
    fmt = {0xcc: '>B', 0xcd: '>H', 0xce: '>I', 0xcf: '>Q', 0xd0: '>b', 0xd1: '>h', 0xd2: '>i', 0xd3: '>q'}[t]
    n = struct.calcsize(fmt)
    return struct.unpack(fmt, b[i+1:i+1+n])[0], i + 1 + n

def recv(s, n):
    out = b''
    while len(out) < n:
        c = s.recv(n - len(out))
        if not c: raise SystemExit('connection closed')
        out += c
    return out

def call(s, req):
    body = enc(req)
    s.sendall(struct.pack('>I', len(body)) + body)
    n = struct.unpack('>I', recv(s, 4))[0]
    return dec(recv(s, n))[0]

host, port = sys.argv[1].rsplit(':', 1)
s = socket.create_connection((host, int(port)), timeout=5)
call(s, {'op': 'hello', 'id': 1, 'version': 3})
req = {'op': sys.argv[2], 'id': 2}
req.update(json.loads(sys.argv[3]))
print(json.dumps(call(s, req)))
