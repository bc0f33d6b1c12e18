"""gobridge._internal.ring against a peer that writes anything (SPEC 11.4): the Python
twin of Go's FuzzRing, as a seeded randomized test.

A ring lives in an anonymous shared mapping; the random "peer" writes
indices, flags and data bytes between any two calls. Whatever it writes, no
call raises anything but the documented errors, returns more than asked or
than the ring holds, hands out a byte from outside the data area, or writes
outside its control block and data area; the 64-bit indices wrap.
"""
import mmap
import random
import struct
import time

import pytest

from gobridge._internal import ring as _ring
from gobridge._internal.ring import M64, Corrupt, PeerGone, Ring, Waiter, init_ctl

CAP = 64
DATA = 4096
GUARD = 0xFF  # around the data area; the writers' bytes are below 0x80


def _waiter() -> Waiter:
    w = Waiter(lambda: None)
    w.deadline = time.monotonic() - 1  # a wait returns at once
    return w


def _clean(b: bytes) -> None:
    assert all(x < 0x80 for x in b), "a byte from outside the data area"


def _case(rng: random.Random) -> None:
    mm = mmap.mmap(-1, 3 * 4096)
    try:
        mm[_ring.CTL_SIZE:] = bytes([GUARD]) * (len(mm) - _ring.CTL_SIZE)
        mm[DATA:DATA + CAP] = bytes(CAP)
        start = rng.choice([0, M64, M64 - 10, M64 - CAP, rng.getrandbits(64)])
        init_ctl(mm, 0, start)
        r = Ring(mm, 0, DATA, CAP)
        w = _waiter()
        try:
            for _ in range(rng.randrange(1, 40)):
                op = rng.randrange(10)
                try:
                    if op == 0:
                        k = rng.randrange(0, 100)
                        n = r.try_write(memoryview(bytes(i & 0x7F for i in range(k))))
                        assert 0 <= n <= min(k, CAP)
                    elif op == 1:
                        k = rng.randrange(0, 128)  # header bytes below 0x80 too
                        r.write_frame(struct.pack("!i", k), memoryview(bytes(k)), w)
                    elif op == 2:
                        need = rng.randrange(1, 80)
                        n = r.wait_avail(need, w, rng.random() < 0.5)
                        assert min(need, CAP) <= n <= CAP
                    elif op == 3:
                        limit = rng.randrange(0, 100)
                        b = r.take_frame(limit)
                        assert b is None or len(b) <= limit
                        _clean(b or b"")
                    elif op == 4:
                        n = r.buffered()
                        assert 0 <= n <= CAP
                        k = rng.randrange(0, n + 1)
                        b = r.read_bytes(k) if rng.random() < 0.5 else r.peek(k)
                        assert len(b) == k
                        _clean(b)
                    elif op == 5:
                        struct.pack_into("<Q", mm, 0, rng.choice([rng.getrandbits(64), r._tail + rng.randrange(-3, CAP + 3)]) & M64)
                    elif op == 6:
                        struct.pack_into("<Q", mm, 64, rng.choice([rng.getrandbits(64), r._head - rng.randrange(-3, CAP + 3)]) & M64)
                    elif op == 7:
                        struct.pack_into("<I", mm, rng.choice([8, 72, 128, 132]), rng.getrandbits(32))
                    elif op == 8:
                        mm[DATA + rng.randrange(CAP)] = rng.randrange(0x80)
                    else:
                        r.readable()
                except (Corrupt, EOFError, TimeoutError, BrokenPipeError, PeerGone):
                    pass
                except OSError as e:
                    assert e.args == ("got end of file during message",), e
        finally:
            r.release()
        assert mm[_ring.CTL_SIZE:DATA] == bytes([GUARD]) * (DATA - _ring.CTL_SIZE), "wrote between the control block and the data"
        assert mm[DATA + CAP:] == bytes([GUARD]) * (len(mm) - DATA - CAP), "wrote past the data area"
    finally:
        mm.close()


def test_ring_survives_a_peer_that_writes_anything() -> None:
    rng = random.Random(20261202)
    for _ in range(2500):
        _case(rng)


def test_corrupt_is_reported_not_used() -> None:
    """The consumer never hands out bytes from an impossible state, nor waits
    on one; the producer never writes into one."""
    mm = mmap.mmap(-1, 2 * 4096)
    try:
        init_ctl(mm, 0, M64 - 5)
        r = Ring(mm, 0, DATA, CAP)
        assert r.try_write(memoryview(b"0123456789")) == 10  # across the wrap
        assert r._head == 4 and r.read_bytes(10) == b"0123456789" and r._tail == 4
        struct.pack_into("<Q", mm, 0, 4 + (1 << 40))  # head: 2^40 bytes "buffered"
        with pytest.raises(Corrupt, match="head"):
            r.wait_avail(1, _waiter(), True)
        with pytest.raises(Corrupt):
            r.take_frame(100)
        struct.pack_into("<Q", mm, 0, 3)  # head behind the tail
        with pytest.raises(Corrupt):
            r.buffered()
        assert r.readable()
        struct.pack_into("<Q", mm, 0, 4)
        struct.pack_into("<Q", mm, 64, 5)  # tail past the head
        with pytest.raises(Corrupt):
            r.try_write(memoryview(b"x"))
        with pytest.raises(Corrupt):
            r.write_frame(b"\0\0\0\1", memoryview(b"x"), _waiter())
        r.release()
        with pytest.raises(Corrupt):
            Ring(mm, 0, DATA, CAP)
    finally:
        mm.close()
