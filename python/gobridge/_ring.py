"""Single-producer single-consumer byte ring in shared memory (not a public API).

The Python half of Go's internal/ring (wire/SPEC.md sections 11.2-11.4): the
same control block and data area, read and written by a Go or Python peer.

Indices are 8-byte words read and written through ``memoryview.cast("Q")``.
CPython's memoryview packs and unpacks a ``Q`` item with one ``memcpy`` of 8
bytes, which compilers emit as a single 8-byte load or store; an aligned one
is atomic on x86-64 and arm64, so the peer never sees a torn index. Ordering
(SPEC 11.4): on x86-64 stores are not reordered with stores, nor loads with
loads, so "data, then head" and "head, then data" need no fence; the one
reordering x86 allows, a later load passing an earlier store, matters only in
the sleep/wake handshake, where :func:`fence` is called. On arm64 every
publish and every index read also calls :func:`fence`.
"""
from __future__ import annotations

import mmap as _mmap
import platform
import struct
import threading
import time
from typing import Callable, Optional

from . import _futex

__all__ = ["Ring", "CTL_SIZE", "PeerGone", "fence"]

CTL_SIZE = 192
# 8-byte word indices (offset // 8) and 4-byte word indices (offset // 4).
_HEAD = 0
_TAIL = 8
_WCLOSED = 2
_RCLOSED = 18
_RWAIT = 32
_WWAIT = 33

_SPIN = 400  # polls before sleeping (a few tens of microseconds)
# The most a write or read moves before publishing its index (SPEC 11.4): a
# larger transfer is published step by step, so that the reader copies out one
# step while the writer copies in the next. Go's internal/ring.Step.
STEP = 64 << 10
# A read releases its space every four steps: each release costs Python a
# fence and a few object creations, and a Go writer spins for tens of
# microseconds before it sleeps, far longer than copying four steps takes.
_READ_STEP = 4 * STEP
_SHORT = struct.Struct("!i")  # a frame's 4-byte length (section 2)
SLICE = 0.2  # seconds per sleep; peer liveness is checked between slices

_fence_locks = threading.local()  # each thread's own lock, always held by it


def fence() -> None:
    """A full memory barrier.

    Releasing and re-acquiring a lock are atomic read-modify-write operations
    on a word (a LOCK-prefixed instruction on x86-64, which orders every
    earlier load and store before every later one; a release then an acquire
    on arm64, which are not reordered with each other). About 0.1 us. The
    lock is the calling thread's: with one shared by all, a thread switch
    between another thread's release and acquire made this thread's release
    raise (a connection's reader and writer threads both fence).
    """
    try:
        lock = _fence_locks.lock
    except AttributeError:
        lock = _fence_locks.lock = threading.Lock()
        lock.acquire()
    lock.release()
    lock.acquire()


#: Whether index loads and stores need fences around them (any machine but
#: x86, whose stores and loads are each kept in order: SPEC 11.5). Tested
#: inline, ``if WEAK: fence()``: on x86 the hot paths pay a branch, not a
#: call.
WEAK = platform.machine() not in ("x86_64", "AMD64", "i686", "i386")


class PeerGone(Exception):
    """Internal: raised by a Waiter's check when the peer died."""


class Ring:
    """One direction of a connection: ctl is the control block's offset, data
    and cap the data area's offset and size (a power of two) in buf."""

    __slots__ = ("_q", "_w", "_data", "_cap", "_mask", "_rwait", "_wwait")

    def __init__(self, buf: _mmap.mmap, ctl: int, data: int, cap: int) -> None:
        if cap <= 0 or cap & (cap - 1) or ctl % 64:
            raise ValueError("ring: bad layout")
        whole = memoryview(buf)
        self._q = whole[ctl:ctl + CTL_SIZE].cast("Q")
        self._w = whole[ctl:ctl + CTL_SIZE].cast("I")
        self._data = whole[data:data + cap]
        self._cap = cap
        self._mask = cap - 1
        self._rwait = _futex.Word(buf, ctl + 4 * _RWAIT)
        self._wwait = _futex.Word(buf, ctl + 4 * _WWAIT)

    def release(self) -> None:
        """Drop the buffer exports, so that the mmap can be closed."""
        self._q.release()
        self._w.release()
        self._data.release()
        self._rwait.release()
        self._wwait.release()

    @property
    def cap(self) -> int:
        return self._cap

    # --- flags ---------------------------------------------------------------

    def writer_closed(self) -> bool:
        return self._w[_WCLOSED] != 0

    def reader_closed(self) -> bool:
        return self._w[_RCLOSED] != 0

    def close_write(self) -> None:
        self._w[_WCLOSED] = 1
        self.interrupt_reader()

    def close_read(self) -> None:
        self._w[_RCLOSED] = 1
        self.interrupt_writer()

    def interrupt_reader(self) -> None:
        fence()
        self._w[_RWAIT] = 0
        self._rwait.wake()

    def interrupt_writer(self) -> None:
        fence()
        self._w[_WWAIT] = 0
        self._wwait.wake()

    def buffered(self) -> int:
        q = self._q
        return int(q[_HEAD] - q[_TAIL])

    def readable(self) -> bool:
        q = self._q
        return q[_HEAD] != q[_TAIL] or self._w[_WCLOSED] != 0

    # --- producer ------------------------------------------------------------

    def try_write(self, src: memoryview) -> int:
        """Copy as much of src as fits, publish it (STEP bytes at a time),
        wake a sleeping reader."""
        q = self._q
        head = q[_HEAD]
        n = min(len(src), self._cap - (head - q[_TAIL]))
        if n <= 0:
            return 0
        data, mask, cap = self._data, self._mask, self._cap
        done = 0
        while done < n:
            k = min(n - done, STEP)
            i = (head + done) & mask
            j = min(k, cap - i)
            data[i:i + j] = src[done:done + j]
            if j < k:
                data[:k - j] = src[done + j:done + k]
            done += k
            if WEAK:
                fence()  # arm64: the bytes before the index
            q[_HEAD] = head + done
            self._wake_reader()
        return n

    def _wake_reader(self) -> None:
        fence()  # Dekker with the reader's "rwait = 1; fence; load head"
        w = self._w
        if w[_RWAIT]:
            w[_RWAIT] = 0
            self._rwait.wake(1)

    def write_all(self, parts: "list[memoryview]", waiter: "Waiter") -> None:
        """Write every part, waiting for space; parts of at most STEP bytes
        together that fit are published with one index store (the reader sees
        a whole small frame)."""
        total = sum(len(p) for p in parts)
        q = self._q
        head = q[_HEAD]
        if total <= STEP and total <= self._cap - (head - q[_TAIL]):
            data, mask, cap = self._data, self._mask, self._cap
            pos = head
            for p in parts:
                n = len(p)
                i = pos & mask
                k = min(n, cap - i)
                data[i:i + k] = p[:k]
                if k < n:
                    data[:n - k] = p[k:]
                pos += n
            if WEAK:
                fence()
            q[_HEAD] = pos
            self._wake_reader()
            return
        w, cap = self._w, self._cap
        for p in parts:
            done = 0
            while done < len(p):
                if w[_RCLOSED]:
                    raise BrokenPipeError("gobridge: shm: peer closed its end")
                done += self.try_write(p[done:])
                if done < len(p):
                    # Spin first (SPEC 11.4): a reader copying out frees a
                    # step within microseconds; a futex sleep and wake-up
                    # per step would cost far more than the copy.
                    for _ in range(_SPIN):
                        if q[_HEAD] - q[_TAIL] < cap or w[_RCLOSED]:
                            break
                    else:
                        waiter.wait(self._wwait, _WWAIT, w, self._space)

    def write_frame(self, header: bytes, payload: memoryview, waiter: "Waiter") -> None:
        """Write a frame's header and payload: a small frame that fits without
        wrapping is copied and published here with one index store (no list,
        no loop); anything else goes through write_all."""
        h = len(header)
        total = h + len(payload)
        q = self._q
        head = q[_HEAD]
        i = head & self._mask
        if total <= STEP and total <= self._cap - (head - q[_TAIL]) and i + total <= self._cap:
            data = self._data
            data[i:i + h] = header
            data[i + h:i + total] = payload
            if WEAK:
                fence()
            q[_HEAD] = head + total
            self._wake_reader()
            return
        self.write_all([memoryview(header), payload], waiter)

    def _space(self) -> bool:
        q = self._q
        return q[_HEAD] - q[_TAIL] < self._cap or self._w[_RCLOSED] != 0

    # --- consumer ------------------------------------------------------------

    def _avail(self) -> int:
        q = self._q
        n = int(q[_HEAD] - q[_TAIL])
        if WEAK:
            fence()  # arm64: the index before the bytes
        return n

    def wait_avail(self, need: int, waiter: "Waiter", at_boundary: bool) -> int:
        """Wait until at least min(need, cap) bytes are buffered; return how
        many are. Raises EOFError (writer closed at a frame boundary),
        OSError (closed inside a frame) or PeerGone."""
        need = min(need, self._cap)
        q = self._q
        w = self._w
        n = q[_HEAD] - q[_TAIL]
        if n >= need:
            if WEAK:
                fence()
            return int(n)
        for _ in range(_SPIN):
            n = q[_HEAD] - q[_TAIL]
            if n >= need:
                if WEAK:
                    fence()
                return int(n)
        while True:
            if w[_WCLOSED]:
                fence()
                n = q[_HEAD] - q[_TAIL]
                if n >= need:
                    return int(n)
                if at_boundary and n == 0:
                    raise EOFError
                raise OSError("got end of file during message")
            waiter.wait(self._rwait, _RWAIT, w,
                        lambda: q[_HEAD] - q[_TAIL] >= need or w[_WCLOSED] != 0)
            n = q[_HEAD] - q[_TAIL]
            if n >= need:
                if WEAK:
                    fence()
                return int(n)

    def take_frame(self, limit: int) -> Optional[bytes]:
        """The payload of a whole frame with a 4-byte header of at most limit
        bytes that is buffered without wrapping, released with one index
        store; None (nothing consumed) for anything else."""
        q = self._q
        tail = q[_TAIL]
        avail = q[_HEAD] - tail
        if avail < 4:
            return None
        if WEAK:
            fence()
        i = tail & self._mask
        if i + 4 > self._cap:
            return None
        data = self._data
        n = _SHORT.unpack_from(data, i)[0]
        end = i + 4 + n
        if n < 0 or n > limit or 4 + n > avail or end > self._cap:
            return None
        b = data[i + 4:end].tobytes()
        self._consume(tail + 4 + n)
        return b

    def read_into(self, dst: memoryview) -> None:
        """Copy len(dst) bytes, which must be buffered, and release them
        (_READ_STEP bytes at a time)."""
        tail = self._q[_TAIL]
        n = len(dst)
        data, mask, cap = self._data, self._mask, self._cap
        done = 0
        while done < n:
            k = min(n - done, _READ_STEP)
            i = (tail + done) & mask
            j = min(k, cap - i)
            dst[done:done + j] = data[i:i + j]
            if j < k:
                dst[done + j:done + k] = data[:k - j]
            done += k
            self._consume(tail + done)

    def read_bytes(self, n: int) -> bytes:
        """Return n buffered bytes and release them."""
        q = self._q
        tail = q[_TAIL]
        i = tail & self._mask
        if i + n <= self._cap:
            b = self._data[i:i + n].tobytes()
        else:
            k = self._cap - i
            b = self._data[i:].tobytes() + self._data[:n - k].tobytes()
        self._consume(tail + n)
        return b

    def peek(self, n: int) -> bytes:
        """n buffered bytes, left in the ring."""
        i = self._q[_TAIL] & self._mask
        if i + n <= self._cap:
            return self._data[i:i + n].tobytes()
        k = self._cap - i
        return self._data[i:].tobytes() + self._data[:n - k].tobytes()

    def skip(self, n: int) -> None:
        self._consume(self._q[_TAIL] + n)

    def _consume(self, tail: int) -> None:
        if WEAK:
            fence()  # arm64: our reads of the bytes before giving their space back
        self._q[_TAIL] = tail
        fence()  # Dekker with the writer's "wwait = 1; fence; load tail"
        w = self._w
        if w[_WWAIT]:
            w[_WWAIT] = 0
            self._wwait.wake(1)


class Waiter:
    """Sleeps on a ring's futex word in bounded slices (SPEC 11.4).

    deadline is a time.monotonic() value or None; check() raises to stop
    waiting (a dead peer, a local close) and runs between slices.
    """

    __slots__ = ("deadline", "check")

    def __init__(self, check: Callable[[], None]) -> None:
        self.deadline: Optional[float] = None
        self.check = check

    def wait(self, word: _futex.Word, index: int, w: memoryview, ready: Callable[[], bool]) -> None:
        """Sleep until ready() (or a wake-up); raise TimeoutError at the deadline."""
        timeout = SLICE
        if self.deadline is not None:
            timeout = self.deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError("gobridge: shm: timed out")
            timeout = min(timeout, SLICE)
        w[index] = 1
        fence()
        if ready():
            w[index] = 0
            return
        start = time.monotonic()
        word.wait(1, timeout)
        if not ready() and time.monotonic() - start >= SLICE * 0.9:
            self.check()
