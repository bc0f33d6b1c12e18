"""Python peer for the shm: connection interop tests (interop_tests/shm_conn_*_test.go).

    shm_conn_peer.py ROLE ADDR [ARGS...]

serve-echo ADDR        listen, print "ready", echo bytes on one connection until EOF
serve-echo-many ADDR   listen, print "ready", echo bytes on every connection (a thread
                       each) until it ends, whatever ended it; stop on SIGTERM
drop ADDR N            connect N times, exchange one message, drop each connection
                       without close; print JSON: descriptors before and after, and
                       the connection mappings left
check ADDR             connect, send values and sizes (up to 3 MiB, larger than a ring),
                       check the echoes, print "ok"
stress-send ADDR N     connect, send N sequence-numbered, checksummed messages of mixed
                       sizes, wait for the receiver's "ok"
stress-recv ADDR N     connect, receive and verify N such messages, reply "ok"
idle ADDR              connect, wait 1 s for a message that never comes; print the
                       CPU seconds used meanwhile
big-then-hang ADDR     connect, send 3 whole messages, print "sending", then start a
                       40 MiB message (the test kills us while it is in the ring)
"""
import gc
import json
import os
import resource
import signal
import struct
import threading
import sys
import time
import zlib

import gobridge

SEQ = struct.Struct("<QI")  # sequence number, CRC-32 of the body


def size_for(seq):
    """Mixed sizes, the same rule as the Go side (stressSize)."""
    x = (seq * 2654435761) & 0xFFFFFFFF
    if seq % 100003 == 7:
        return 2 * 1024 * 1024 + x % 4096  # larger than a ring: streamed
    if x % 97 == 0:
        return 4096 + x % 65536
    return x % 300


def body(seq, n):
    b = (seq & 0xFF).to_bytes(1, "little") * n
    return b


def stress_send(c, n):
    for seq in range(n):
        b = body(seq, size_for(seq))
        c.send_bytes(SEQ.pack(seq, zlib.crc32(b)) + b)
    reply = c.recv()
    if reply != "ok":
        raise SystemExit(f"receiver said {reply!r}")


def stress_recv(c, n):
    buf = bytearray(4 * 1024 * 1024)
    mv = memoryview(buf)
    for seq in range(n):
        k = c.recv_bytes_into(buf)
        got, crc = SEQ.unpack_from(buf)
        if got != seq:
            c.send(f"message {seq}: got sequence number {got}")
            raise SystemExit(1)
        want = size_for(seq)
        if k != SEQ.size + want or zlib.crc32(mv[SEQ.size:k]) != crc:
            c.send(f"message {seq}: {k} bytes, bad size or checksum")
            raise SystemExit(1)
    c.send("ok")


def check(c):
    values = [None, True, -3, 2**64 - 1, 2.5, "héllo", b"\x00\x01", [1, "x"], {"k": [1, {}]}]
    for v in values:
        c.send(v)
        got = c.recv()
        if got != v:
            raise SystemExit(f"echo of {v!r} came back as {got!r}")
    for n in (0, 1, 4095, 65536, 1 << 20, 3 << 20):
        data = os.urandom(n)
        c.send(data)
        got = c.recv()
        if got != data:
            raise SystemExit(f"echo of {n} bytes differs")
    print("ok", flush=True)


def serve_many(addr):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def echo(c):
        with c:
            try:
                while True:
                    c.send_bytes(c.recv_bytes())
            except (EOFError, OSError):
                pass  # end of stream, peer gone, corrupt: this connection is over

    with gobridge.Listener(addr) as l:
        print("ready", flush=True)
        while not stop.is_set():
            try:
                c = l.accept(timeout=0.1)
            except TimeoutError:
                continue
            threading.Thread(target=echo, args=(c,), daemon=True).start()


def fds():
    return len(os.listdir("/proc/self/fd"))


def memfd_maps():
    with open("/proc/self/maps") as f:
        return f.read().count("memfd:gobridge-shm")


def drop(addr, n):
    gc.collect()
    before = fds()
    for i in range(n):
        c = gobridge.Client(addr, timeout=30)
        c.send(i)
        if c.recv() != i:
            raise SystemExit(f"echo {i} differs")
        c = None  # dropped without close
    gc.collect()
    print(json.dumps({"fds_before": before, "fds_after": fds(), "maps_after": memfd_maps()}), flush=True)


def main():
    role, addr, *args = sys.argv[1:]
    if role == "serve-echo-many":
        serve_many(addr)
        return
    if role == "drop":
        drop(addr, int(args[0]))
        return
    if role == "serve-echo":
        with gobridge.Listener(addr) as l:
            print("ready", flush=True)
            with l.accept() as c:
                try:
                    while True:
                        c.send_bytes(c.recv_bytes())
                except EOFError:
                    pass
        return
    with gobridge.Client(addr, timeout=30) as c:
        if role == "check":
            check(c)
        elif role == "stress-send":
            stress_send(c, int(args[0]))
        elif role == "stress-recv":
            stress_recv(c, int(args[0]))
        elif role == "idle":
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            got = c.poll(1.0)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            print(f"{cpu:.6f} {got}", flush=True)
            c.recv()  # wait for the test to close
        elif role == "big-then-hang":
            for i in range(3):
                c.send_bytes(bytes([i]) * 1000)
            print("sending", flush=True)
            c.send_bytes(b"\xab" * (40 << 20))
            time.sleep(60)
        else:
            raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    try:
        main()
    except (EOFError, gobridge.PeerGoneError):
        pass
