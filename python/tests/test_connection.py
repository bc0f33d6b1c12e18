"""Connection framing against real descriptors and CPython's own Connection."""
import errno
import multiprocessing.connection as mpc
import os
import socket
import struct
import tracemalloc

import pytest

import gobridge
from gobridge import Connection, DecodeError, FrameTooLargeError, ProtocolError

from gbtest_support import in_thread

SIZES = [0, 1, 100, 16384, 16385, 65536, 65537, 200_000, 300_000, 3 * 1024 * 1024 + 7]


def payload(n):
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def read_exactly(fd, n):
    out = bytearray()
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        assert chunk, "unexpected EOF"
        out += chunk
    return bytes(out)


@pytest.mark.parametrize("n", SIZES)
def test_gobridge_to_stdlib(raw_pair, n):
    a, b = raw_pair
    gb, std = Connection(a), mpc.Connection(b)
    raw_pair.clear()
    data = payload(n)
    join = in_thread(gb.send_bytes, data)
    assert std.recv_bytes() == data
    join()
    gb.close()
    std.close()


@pytest.mark.parametrize("n", SIZES)
def test_stdlib_to_gobridge(raw_pair, n):
    a, b = raw_pair
    gb, std = Connection(a), mpc.Connection(b)
    raw_pair.clear()
    data = payload(n)
    join = in_thread(std.send_bytes, data)
    assert gb.poll(10)
    assert gb.recv_bytes() == data
    join()
    gb.close()
    std.close()


@pytest.mark.parametrize("n", [0, 5, 65536, 70000])
def test_bytes_identical_to_stdlib(n):
    """What gobridge writes is byte for byte what CPython writes."""
    data = payload(n)
    seen = []
    for make in (Connection, mpc.Connection):
        s1, s2 = socket.socketpair()
        c = make(s1.detach())
        r = s2.detach()
        join = in_thread(c.send_bytes, data)
        seen.append(read_exactly(r, 4 + n))
        join()
        c.close()
        os.close(r)
    assert seen[0] == seen[1] == struct.pack("!i", n) + data


def test_send_recv_values_with_stdlib_peer(raw_pair):
    import msgpack
    gb, std = Connection(raw_pair[0]), mpc.Connection(raw_pair[1])
    raw_pair.clear()
    std.send_bytes(msgpack.packb({"x": [1, 2], 3: b"z"}, use_bin_type=True))
    assert gb.recv() == {"x": [1, 2], 3: b"z"}
    gb.send({"y": "€"})
    assert msgpack.unpackb(std.recv_bytes(), raw=False) == {"y": "€"}
    gb.close()
    std.close()


def test_many_small_frames_in_one_read(conn_raw):
    """Frames written in one burst come out one by one (each read exactly, the
    rest left in the socket: test_readiness.py)."""
    conn, raw = conn_raw()
    frames = b"".join(struct.pack("!i", len(p)) + p for p in (gobridge.encode(i) for i in range(1000)))
    join = in_thread(raw.write, frames)
    assert conn.poll(10)
    assert conn.recv() == 0
    join()
    raw.close()
    for i in range(1, 1000):
        assert conn.poll(0)
        assert conn.recv() == i
    assert conn.poll(0)  # end of stream is readable
    with pytest.raises(EOFError):
        conn.recv()
    with pytest.raises(EOFError):
        conn.recv()


def test_frame_split_across_reads(conn_raw):
    conn, raw = conn_raw()
    frame = struct.pack("!i", 5) + b"hello"
    for i in range(len(frame)):
        raw.write(frame[i:i + 1])
    raw.write(frame)
    assert conn.recv_bytes() == b"hello"
    assert conn.recv_bytes() == b"hello"
    assert not conn.poll(0)


def test_header_over_limit_allocates_nothing(raw_pair):
    """A header claiming 2 GiB: FrameTooLargeError, no big allocation, writable still."""
    conn = Connection(raw_pair[0])
    peer = Connection(raw_pair[1])
    raw_pair.clear()
    os.write(peer.fileno(), struct.pack("!i", 0x7FFFFFFF) + b"x" * 10)
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLargeError) as e:
            conn.recv()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024
    assert str(e.value).startswith("bad message length")
    assert isinstance(e.value, OSError) and isinstance(e.value, ProtocolError)
    assert not conn.readable and conn.writable and not conn.closed
    with pytest.raises(FrameTooLargeError, match="bad message length"):
        conn.recv()
    with pytest.raises(FrameTooLargeError):
        conn.poll()
    conn.send("still writable")
    assert peer.recv() == "still writable"
    conn.close()
    peer.close()


def test_header_over_limit_closes_read_only_end():
    r, w = gobridge.Pipe(duplex=False, max_frame_size=1000)
    w.send_bytes(b"x" * 999)
    assert r.recv_bytes() == b"x" * 999
    os.write(w.fileno(), struct.pack("!i", 1001))
    with pytest.raises(FrameTooLargeError):
        r.recv_bytes()
    assert r.closed
    with pytest.raises(OSError, match="handle is closed"):
        r.recv_bytes()
    w.close()


def test_maxlength_like_cpython(raw_pair):
    conn, peer = Connection(raw_pair[0]), Connection(raw_pair[1])
    raw_pair.clear()
    peer.send_bytes(b"12345")
    with pytest.raises(OSError, match="^bad message length"):
        conn.recv_bytes(maxlength=4)
    assert not conn.readable
    with pytest.raises(ValueError):
        peer.recv_bytes(-1)
    conn.close()
    peer.close()


def test_twelve_byte_header_grows_with_the_data(conn_raw):
    """-1 then a 2 GiB length (the 12-byte form), 10 bytes, EOF: about 1 MiB at most."""
    conn, raw = conn_raw(max_frame_size=1 << 40)
    raw.write(struct.pack("!i", -1) + struct.pack("!Q", 2**31) + b"0123456789")
    raw.close()
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="^got end of file during message$") as e:
            conn.recv_bytes()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not isinstance(e.value, FrameTooLargeError)
    assert peak < 3 * 1024 * 1024


def test_twelve_byte_header_over_default_limit(conn_raw):
    conn, raw = conn_raw()
    raw.write(b"\xff\xff\xff\xff" + struct.pack("!Q", 5 * 2**30))
    with pytest.raises(FrameTooLargeError, match="5368709120"):
        conn.recv()


def test_twelve_byte_header_non_canonical(conn_raw):
    conn, raw = conn_raw()
    raw.write(b"\xff\xff\xff\xff" + struct.pack("!Q", 3) + b"abc")
    with pytest.raises(ProtocolError, match="non-canonical"):
        conn.recv_bytes()


def test_negative_length(conn_raw):
    conn, raw = conn_raw()
    raw.write(struct.pack("!i", -2))
    with pytest.raises(ProtocolError, match="negative"):
        conn.recv()
    assert not conn.readable and conn.writable


@pytest.mark.parametrize("written", [b"\x00\x00", struct.pack("!i", 10) + b"abc",
                                     struct.pack("!i", 300_000) + b"x" * 1000])
def test_truncated_frame(conn_raw, written):
    conn, raw = conn_raw()
    raw.write(written)
    raw.close()
    with pytest.raises(OSError, match="^got end of file during message$") as e:
        conn.recv_bytes()
    assert isinstance(e.value, ProtocolError)


def test_invalid_msgpack_then_next_message(raw_pair):
    conn, peer = Connection(raw_pair[0]), Connection(raw_pair[1])
    raw_pair.clear()
    peer.send_bytes(b"\xc1")
    peer.send_bytes(b"\xa1\xff")
    peer.send_bytes(b"\xc0\xc0")
    peer.send({"ok": True})
    for _ in range(3):
        with pytest.raises(DecodeError):
            conn.recv()
    assert conn.recv() == {"ok": True}
    assert conn.readable
    conn.close()
    peer.close()


def test_send_over_limit_writes_nothing(raw_pair):
    conn = Connection(raw_pair[0], max_frame_size=100)
    peer = Connection(raw_pair[1])
    raw_pair.clear()
    with pytest.raises(FrameTooLargeError, match="^bad message length"):
        conn.send_bytes(b"x" * 101)
    with pytest.raises(FrameTooLargeError):
        conn.send("x" * 200)
    conn.send_bytes(b"x" * 100)
    assert peer.recv_bytes() == b"x" * 100
    assert not peer.poll(0)
    conn.close()
    peer.close()


def test_encode_error_sends_nothing():
    a, b = gobridge.Pipe()
    with pytest.raises(gobridge.EncodeError):
        a.send({1, 2})
    with pytest.raises(gobridge.IntegerRangeError):
        a.send(2**64)
    assert not b.poll(0)
    a.close()
    b.close()


def test_one_way_pipe():
    r, w = gobridge.Pipe(duplex=False)
    assert r.readable and not r.writable and w.writable and not w.readable
    with pytest.raises(OSError, match="^connection is read-only$"):
        r.send(1)
    with pytest.raises(OSError, match="^connection is read-only$"):
        r.send_bytes(b"x")
    with pytest.raises(OSError, match="^connection is write-only$"):
        w.recv()
    with pytest.raises(OSError, match="^connection is write-only$"):
        w.recv_bytes()
    with pytest.raises(OSError, match="^connection is write-only$"):
        w.poll()
    w.send([1, "two"])
    assert r.recv() == [1, "two"]
    w.close()
    with pytest.raises(EOFError):
        r.recv()
    r.close()


def test_closed_connection():
    a, b = gobridge.Pipe()
    a.close()
    a.close()
    assert a.closed
    for call in (lambda: a.send(1), lambda: a.recv(), lambda: a.poll(), a.fileno,
                 lambda: a.send_bytes(b""), lambda: a.recv_bytes()):
        with pytest.raises(OSError, match="^handle is closed$"):
            call()
    with pytest.raises(EOFError):
        b.recv()
    with pytest.raises(BrokenPipeError):
        b.send_bytes(b"x" * 100)
    b.close()


def test_context_manager():
    a, b = gobridge.Pipe()
    with a as x, b:
        assert x is a
    assert a.closed and b.closed


def test_invalid_arguments():
    with pytest.raises(ValueError):
        Connection(-1)
    with pytest.raises(ValueError):
        Connection(0, readable=False, writable=False)
    with pytest.raises(ValueError):
        gobridge.Pipe(max_frame_size=0)


def test_poll_timeouts():
    a, b = gobridge.Pipe()
    assert not a.poll()
    assert not a.poll(0.05)
    join = in_thread(b.send, "late")
    assert a.poll(None)
    join()
    assert a.recv() == "late"
    a.close()
    b.close()


def test_recv_bytes_into():
    a, b = gobridge.Pipe()
    buf = bytearray(10)
    b.send_bytes(b"abc")
    assert a.recv_bytes_into(buf, 2) == 3
    assert buf == b"\0\0abc" + b"\0" * 5
    b.send_bytes(b"0123456789")
    with pytest.raises(gobridge.BufferTooShort) as e:
        a.recv_bytes_into(buf, 1)
    assert e.value.args[0] == b"0123456789"
    import multiprocessing
    assert gobridge.BufferTooShort is multiprocessing.BufferTooShort
    b.send_bytes(b"next")
    assert a.recv_bytes() == b"next"  # the long message was consumed
    with pytest.raises(ValueError):
        a.recv_bytes_into(buf, 11)
    a.close()
    b.close()


def test_recv_bytes_into_large_and_typed_buffer():
    import array
    a, b = gobridge.Pipe()
    data = payload(1_000_000)
    join = in_thread(b.send_bytes, data)
    dest = bytearray(1_000_010)
    assert a.recv_bytes_into(dest, 10) == len(data)
    join()
    assert dest[10:] == data
    b.send_bytes(b"\x01\x00\x00\x00\x02\x00\x00\x00")
    arr = array.array("i", [0, 0, 0])
    assert a.recv_bytes_into(arr, 4) == 8
    assert arr.tolist() == [0, 1, 2]
    join = in_thread(b.send_bytes, data)
    with pytest.raises(gobridge.BufferTooShort) as e:
        a.recv_bytes_into(bytearray(10))
    join()
    assert e.value.args[0] == data
    a.close()
    b.close()


def test_send_bytes_offset_size():
    a, b = gobridge.Pipe()
    a.send_bytes(b"0123456789", 2, 3)
    assert b.recv_bytes() == b"234"
    a.send_bytes(bytearray(b"0123456789"), 7)
    assert b.recv_bytes() == b"789"
    for args in ((-1,), (11,), (0, -1), (5, 6)):
        with pytest.raises(ValueError):
            a.send_bytes(b"0123456789", *args)
    a.close()
    b.close()


def test_large_values_both_ways():
    a, b = gobridge.Pipe()
    value = {"blob": b"\xab" * (5 * 1024 * 1024), "list": list(range(100_000))}
    join = in_thread(a.send, value)
    assert b.recv() == value
    join()
    a.close()
    b.close()


def test_eintr_does_not_break_a_receive():
    import signal
    import threading
    hits = []
    old = signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
    a, b = gobridge.Pipe()
    try:
        def later():
            os.kill(os.getpid(), signal.SIGUSR1)
            b.send("after signal")
        t = threading.Timer(0.1, later)
        t.start()
        assert a.recv() == "after signal"
        t.join(10)
    finally:
        signal.signal(signal.SIGUSR1, old)
        a.close()
        b.close()
    assert hits


def test_broken_pipe_on_one_way():
    r, w = gobridge.Pipe(duplex=False)
    r.close()
    with pytest.raises(BrokenPipeError) as e:
        w.send("nobody reads")
    assert e.value.errno == errno.EPIPE
    w.close()


def test_a_dropped_connection_releases_its_descriptor():
    """As CPython's Connection.__del__: a connection never closed gives its
    descriptor back when collected (a loop of Pipe() must not run out of fds)."""
    import gc
    before = len(os.listdir("/proc/self/fd"))
    for i in range(50):
        a, b = gobridge.Pipe()
        a.send(i)
        assert b.recv() == i
        del a, b
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) - before <= 2  # the listing's own descriptor, none of the pipes'
