#!/usr/bin/python3
"""sd_notify_listen.py - plays systemd's side of Type=notify for a test.

    sd_notify_listen.py WATCHDOG_USEC SECONDS -- stream-broker ARGS...

Binds a unix datagram socket of its own, starts the command with
NOTIFY_SOCKET pointing at it (and WATCHDOG_USEC when not 0), and reads the
messages. When READY=1 arrives it at once connects to every --listen,
--kafka-listen and --metrics-listen address in ARGS: each must accept,
since readiness means the listeners accept connections. Then it counts
WATCHDOG=1 messages for SECONDS, stops the broker with SIGTERM and
prints, one per line:

    ready connected=N        (N: the listeners that accepted at READY=1)
    watchdog=N               (WATCHDOG=1 messages seen after READY=1)
    exit=RC                  (the broker's exit status)

Exits 1 (with the reason on stderr) if READY=1 never comes within 30 s or
a listener refuses.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def addresses(args):
    out = []
    for i, a in enumerate(args[:-1]):
        if a in ("--listen", "-l", "--kafka-listen", "--metrics-listen") and args[i + 1] != "off":
            host, port = args[i + 1].rsplit(":", 1)
            out.append((host, int(port)))
    return out


def main():
    watchdog_usec, seconds = int(sys.argv[1]), float(sys.argv[2])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    env.pop("WATCHDOG_PID", None)
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    else:
        env.pop("WATCHDOG_USEC", None)
    broker = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        ready = False
        while not ready:
            left = deadline - time.monotonic()
            if left <= 0 or broker.poll() is not None:
                sys.exit("no READY=1 (broker status %s)" % broker.poll())
            sock.settimeout(min(left, 0.5))
            try:
                msg = sock.recv(4096).decode()
            except socket.timeout:
                continue
            ready = "READY=1" in msg.split("\n")
        connected = 0
        for host, port in addresses(cmd):
            with socket.create_connection((host, port), timeout=5):
                connected += 1
        print("ready connected=%d" % connected, flush=True)
        pings = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sock.settimeout(max(end - time.monotonic(), 0.01))
            try:
                msg = sock.recv(4096).decode()
            except socket.timeout:
                break
            pings += msg.split("\n").count("WATCHDOG=1")
        print("watchdog=%d" % pings, flush=True)
        broker.send_signal(signal.SIGTERM)
        print("exit=%d" % broker.wait(timeout=30), flush=True)
    finally:
        if broker.poll() is None:
            broker.kill()
            broker.wait()
        sock.close()
        os.unlink(path)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
