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

from . import futex as _futex
from .layout import CTL_HEAD, CTL_RCLOSED, CTL_RWAIT, CTL_SIZE, CTL_TAIL, CTL_WCLOSED, CTL_WWAIT, RING_STEP

__all__ = ["Ring", "CTL_SIZE", "PeerGone", "Corrupt", "fence", "init_ctl", "M64"]

# 8-byte word indices (offset // 8) and 4-byte word indices (offset // 4).
_HEAD = CTL_HEAD // 8
_TAIL = CTL_TAIL // 8
_WCLOSED = CTL_WCLOSED // 4
_RCLOSED = CTL_RCLOSED // 4
_RWAIT = CTL_RWAIT // 4
_WWAIT = CTL_WWAIT // 4

_SPIN = 400  # polls before sleeping (a few tens of microseconds)
# The most a write or read moves before publishing its index (SPEC 11.4): a
# larger transfer is published step by step, so that the reader copies out one
# step while the writer copies in the next. Go's internal/ring.Step.
STEP = RING_STEP
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


class Corrupt(Exception):
    """Internal: the other side's index is impossible (SPEC 11.4); the
    message says which values were found. The ring must not be used again."""


#: Indices are unsigned 64-bit counters that wrap (SPEC 11.2): every sum and
#: difference of indices is taken modulo 2**64.
M64 = (1 << 64) - 1


def _corrupt(head: int, tail: int, cap: int) -> Corrupt:
    return Corrupt(f"head {head} - tail {tail} = {(head - tail) & M64} bytes buffered in a {cap}-byte ring")


def init_ctl(buf: _mmap.mmap, ctl: int, start: int) -> None:
    """Prepare a fresh control block at offset ctl: both indices at start
    (any value below 2**64; tests start near the wrap), flags and futex words
    clear. Only the side that creates the memory calls it."""
    if ctl % 64:
        raise ValueError("ring: bad layout")
    buf[ctl:ctl + CTL_SIZE] = bytes(CTL_SIZE)
    struct.pack_into("<Q", buf, ctl + 8 * _HEAD, start & M64)
    struct.pack_into("<Q", buf, ctl + 8 * _TAIL, start & M64)


class Ring:
    """One direction of a connection: ctl is the control block's offset, data
    and cap the data area's offset and size (a power of two) in buf.

    The other process may write anything into the shared memory at any time.
    Each side keeps its own index here (``_head`` for the producer, ``_tail``
    for the consumer), stores it to the control block and never loads it
    back; it loads the other side's index once per decision and checks that
    head - tail (mod 2**64) lies in [0, cap], else raises :class:`Corrupt`.
    A flag counts as set when it is nonzero.
    """

    __slots__ = ("_q", "_w", "_data", "_cap", "_mask", "_rwait", "_wwait", "_head", "_tail", "_idle")

    def __init__(self, buf: _mmap.mmap, ctl: int, data: int, cap: int) -> None:
        if cap <= 0 or cap & (cap - 1) or ctl % 64:
            raise ValueError("ring: bad layout")
        with memoryview(buf) as whole:  # released here: a traceback must not pin the mmap
            self._q = whole[ctl:ctl + CTL_SIZE].cast("Q")
            self._w = whole[ctl:ctl + CTL_SIZE].cast("I")
            self._data = whole[data:data + cap]
        self._cap = cap
        self._mask = cap - 1
        self._rwait = _futex.Word(buf, ctl + 4 * _RWAIT)
        self._wwait = _futex.Word(buf, ctl + 4 * _WWAIT)
        # Both indices, loaded once: the producer's and the consumer's
        # starting points.
        head = self._q[_HEAD]
        tail = self._q[_TAIL]
        if (head - tail) & M64 > cap:
            self.release()
            raise _corrupt(head, tail, cap)
        self._head = head
        self._tail = tail
        self._idle = head == tail

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

    def idle(self) -> bool:
        """Whether the ring was empty when its indices were loaded and
        neither end is marked closed now (each flag loaded once)."""
        w = self._w
        return self._idle and w[_WCLOSED] == 0 and w[_RCLOSED] == 0

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
        """Bytes written and not yet read (the consumer's view)."""
        head = self._q[_HEAD]
        n = (head - self._tail) & M64
        if n > self._cap:
            raise _corrupt(head, self._tail, self._cap)
        return n

    def readable(self) -> bool:
        """Whether a read would not wait: bytes buffered, the writer closed,
        or an impossible index (the read then raises Corrupt)."""
        return self._q[_HEAD] != self._tail or self._w[_WCLOSED] != 0

    # --- producer ------------------------------------------------------------

    def _used(self) -> int:
        """Bytes in the ring by the consumer's index, loaded and checked."""
        tail = self._q[_TAIL]
        used = (self._head - tail) & M64
        if used > self._cap:
            raise _corrupt(self._head, tail, self._cap)
        return used

    def try_write(self, src: memoryview) -> int:
        """Copy as much of src as fits, publish it (STEP bytes at a time),
        wake a sleeping reader."""
        q = self._q
        head = self._head
        n = min(len(src), self._cap - self._used())
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
            q[_HEAD] = self._head = (head + done) & M64
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
        head = self._head
        if total <= STEP and total <= self._cap - self._used():
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
            q[_HEAD] = self._head = pos & M64
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
                        if (self._head - q[_TAIL]) & M64 != cap or w[_RCLOSED]:
                            break
                    else:
                        try:
                            waiter.wait(self._wwait, _WWAIT, w, self._space)
                        except PeerGone:
                            if w[_RCLOSED]:  # it closed its end, then exited
                                raise BrokenPipeError("gobridge: shm: peer closed its end") from None
                            raise

    def write_frame(self, header: bytes, payload: memoryview, waiter: "Waiter") -> None:
        """Write a frame's header and payload: a small frame that fits without
        wrapping is copied and published here with one index store (no list,
        no loop); anything else goes through write_all."""
        h = len(header)
        total = h + len(payload)
        head = self._head
        tail = self._q[_TAIL]
        cap = self._cap
        used = head - tail
        if not 0 <= used <= cap:  # rare: a wrap, or corrupt
            used &= M64
            if used > cap:
                raise _corrupt(head, tail, cap)
        i = head & self._mask
        if total <= STEP and total <= cap - used and i + total <= cap:
            data = self._data
            data[i:i + h] = header
            data[i + h:i + total] = payload
            if WEAK:
                fence()
            head += total
            if head > M64:
                head &= M64
            self._q[_HEAD] = self._head = head
            self._wake_reader()
            return
        self.write_all([memoryview(header), payload], waiter)

    def _space(self) -> bool:
        # Ready when there is room, the reader closed, or its index is
        # impossible (try_write then raises).
        return (self._head - self._q[_TAIL]) & M64 != self._cap or self._w[_RCLOSED] != 0

    # --- consumer ------------------------------------------------------------

    def _avail(self) -> int:
        head = self._q[_HEAD]
        n = (head - self._tail) & M64
        if n > self._cap:
            raise _corrupt(head, self._tail, self._cap)
        if WEAK:
            fence()  # arm64: the index before the bytes
        return n

    def wait_avail(self, need: int, waiter: "Waiter", at_boundary: bool) -> int:
        """Wait until at least min(need, cap) bytes are buffered; return how
        many are. Raises EOFError (writer closed at a frame boundary),
        OSError (closed inside a frame), PeerGone or Corrupt."""
        need = min(need, self._cap)
        head = self._q[_HEAD]  # self._avail(), inline: this is every receive's first step
        n = (head - self._tail) & M64
        if n >= need:
            if n > self._cap:
                raise _corrupt(head, self._tail, self._cap)
            if WEAK:
                fence()
            return n
        q = self._q
        w = self._w
        tail = self._tail
        for _ in range(_SPIN):
            if (q[_HEAD] - tail) & M64 >= need:
                return self._avail()
        while True:
            if w[_WCLOSED]:
                fence()
                n = self._avail()
                if n >= need:
                    return n
                if at_boundary and n == 0:
                    raise EOFError
                raise OSError("got end of file during message")
            try:
                waiter.wait(self._rwait, _RWAIT, w,
                            lambda: (q[_HEAD] - tail) & M64 >= need or w[_WCLOSED] != 0)
            except PeerGone:
                if not w[_WCLOSED]:
                    raise
                continue  # it closed its end, then exited: end of stream
            n = self._avail()
            if n >= need:
                return n

    def take_frame(self, limit: int) -> Optional[bytes]:
        """The payload of a whole frame with a 4-byte header of at most limit
        bytes that is buffered without wrapping, released with one index
        store; None (nothing consumed) for anything else."""
        tail = self._tail
        head = self._q[_HEAD]
        avail = head - tail
        if not 4 <= avail <= self._cap:  # rare: little buffered, a wrap, or corrupt
            avail &= M64
            if avail < 4:
                return None
            if avail > self._cap:
                raise _corrupt(head, tail, self._cap)
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
        tail = self._tail
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
        tail = self._tail
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
        i = self._tail & self._mask
        if i + n <= self._cap:
            return self._data[i:i + n].tobytes()
        k = self._cap - i
        return self._data[i:].tobytes() + self._data[:n - k].tobytes()

    def skip(self, n: int) -> None:
        self._consume(self._tail + n)

    def _consume(self, tail: int) -> None:
        if WEAK:
            fence()  # arm64: our reads of the bytes before giving their space back
        if tail > M64:
            tail &= M64
        self._q[_TAIL] = self._tail = tail
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
