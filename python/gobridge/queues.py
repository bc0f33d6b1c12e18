"""Named Queue and JoinableQueue in shared memory (wire/SPEC.md section 10.4),
the Python half of Go's bridge/mp queues. Messages are one msgpack value
each, with the type rules of connections (SPEC section 3)."""
from __future__ import annotations

import queue as _stdqueue
import struct
import time
from typing import Any, Optional

from ._codec import DEFAULT_MAX_FRAME_SIZE, _decode, decode, encode
from ._internal.layout import KIND_JOINABLE, KIND_QUEUE
from ._internal.layout import O_REDO_N as OFF_REDO_N
from ._internal.layout import Q_GET_REDO_N as OFF_GET_REDO_N
from ._internal.objects import ClosedError, LayoutError, _Handle, _monotonic
from ._internal.layout import (Q_CAPACITY, Q_DEFAULT_CAPACITY, Q_GETSEQ, Q_GETTERS, Q_HEAD, Q_MAXSIZE, Q_MIN_CAP,
                               Q_NGET, Q_NPUT, Q_PUTSEQ, Q_PUTTERS, Q_REC_HEADER, Q_TAIL, Q_UNFIN)
from ._internal.layout import Q_RING as Q_RING
from ._internal.ring import WEAK, fence

__all__ = ["Queue", "JoinableQueue", "SimpleQueue", "DEFAULT_CAPACITY"]

#: Ring bytes of a new queue unless capacity= says otherwise.
DEFAULT_CAPACITY = Q_DEFAULT_CAPACITY

# word indexes of the header fields in the handle's w64/w32 views
_HEAD, _TAIL, _PUTSEQ, _GETSEQ, _MAXSIZE = Q_HEAD >> 3, Q_TAIL >> 3, Q_PUTSEQ >> 3, Q_GETSEQ >> 3, Q_MAXSIZE >> 3
_NPUT, _NGET, _GETTERS, _PUTTERS, _UNFIN = Q_NPUT >> 2, Q_NGET >> 2, Q_GETTERS >> 2, Q_PUTTERS >> 2, Q_UNFIN >> 2
_REDO_N, _GET_REDO_N = OFF_REDO_N >> 2, OFF_GET_REDO_N >> 2
# redo entries (u32 offset, u32 width, u64 value) of the commits: put (tail,
# put_seq, and unfinished in a joinable queue) and get (head, get_seq)
_PUT_ENTRIES2 = _GET_ENTRIES = struct.Struct("<IIQIIQ")
_PUT_ENTRIES3 = struct.Struct("<IIQIIQIIQ")
REC_HEADER = Q_REC_HEADER
MIN_CAP = Q_MIN_CAP
SPIN = 50e-6  # seconds a blocking get polls an empty queue before sleeping
_LEN = struct.Struct("<I4x")


def _round_cap(n: int) -> int:
    if n <= 0:
        n = DEFAULT_CAPACITY
    return max((n + 7) & ~7, MIN_CAP)


def _room_enough(used: int, cap: int, count: int, maxsize: int) -> bool:
    """Whether a get that left used bytes and count messages wakes a sleeping
    putter: only once the ring is at most half full (and at most half of
    maxsize), so a fast putter refills in a burst instead of sleeping and
    waking once per message (SPEC 10.4)."""
    return used <= cap // 2 and (maxsize == 0 or count <= maxsize // 2)


class Queue:
    """multiprocessing.Queue(maxsize), named: every process (Go or Python)
    that opens the same name shares it, with no feeder thread and no broker.

    put/get raise queue.Full/queue.Empty as multiprocessing's do. maxsize
    counts messages (<= 0: no count limit); capacity is the ring's size in
    bytes (default 1 MiB): a message needs 8 bytes plus its msgpack payload
    rounded up to 8, so put blocks while the ring lacks room even below
    maxsize, and a message that can never fit raises ValueError. Attaching
    keeps the existing queue's maxsize and capacity. close() releases this
    handle; the last handle removes the queue and any messages in it, unless
    keep=True. ``create=False`` only attaches: FileNotFoundError naming the
    name when no such queue exists (Go's WithAttachOnly).
    """

    _kind = KIND_QUEUE

    def __init__(self, maxsize: int = 0, *, name: Optional[str] = None, capacity: int = DEFAULT_CAPACITY,
                 keep: bool = False, create: bool = True) -> None:
        cap = _round_cap(capacity)
        # Fields that never change after creation, read once: ours when we
        # create the queue, the checked ones when we attach.
        fixed = [cap, max(maxsize, 0)]

        def init(h: _Handle) -> None:
            h.set64(Q_CAPACITY, fixed[0])
            h.set64(Q_MAXSIZE, fixed[1])

        def check(h: _Handle) -> None:
            # Only these; every operation checks the other fields it reads.
            c, m = h.u64(Q_CAPACITY), h.u64(Q_MAXSIZE)
            if c < MIN_CAP or c % 8 or Q_RING + c > h.size or m >= 1 << 63:
                raise LayoutError(f"{h.name!r}: capacity {c} or maxsize {m} out of range for {h.size} bytes")
            fixed[:] = [c, m]

        self._h = h = _Handle(name, self._kind, Q_RING + cap, init=init, check=check, keep=keep,
                                   create=create)
        self._cap, self._maxsize = fixed
        self._ring = h.view(Q_RING, Q_RING + self._cap)
        self._joinable = h.kind == KIND_JOINABLE
        self._closed = False
        self._used = False  # put through this handle (multiprocessing: the feeder thread started)
        self._closed_n: Optional[int] = None  # qsize when this handle closed

    @property
    def name(self) -> str:
        """The queue's name (under /dev/shm), for other processes to open."""
        return self._h.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__}(name={self.name!r})>"

    def __reduce__(self) -> "tuple[Any, ...]":
        return (type(self), (), {"name": self.name})

    def __setstate__(self, state: "dict[str, str]") -> None:
        type(self).__init__(self, name=state["name"])

    # -- put -------------------------------------------------------------

    def _closed_error(self) -> ClosedError:
        return ClosedError(f"Queue {self!r} is closed")

    def _invalid(self, hd: int, tl: int, ps: int, gs: int) -> LayoutError:
        return LayoutError(f"{self.name!r}: head {hd}, tail {tl}, put_seq {ps}, get_seq {gs} "
                           f"with a {self._cap}-byte ring")

    def put(self, obj: object, block: bool = True, timeout: Optional[float] = None) -> None:
        """multiprocessing's put: queue.Full when the queue stays full until
        timeout; the timeout bounds the whole call, waits for the internal
        lock included (without one the lock is waited for in the kernel)."""
        if self._closed:
            raise self._closed_error()
        self._used = True
        self._put(encode(obj), block, timeout)

    def put_nowait(self, obj: object) -> None:
        """put(obj, False): queue.Full at once when there is no room."""
        self.put(obj, False)

    def _put(self, p: bytes, block: bool, timeout: Optional[float]) -> None:
        # Putters hold the internal lock, getters the get lock (SPEC 10.4,
        # 10.5): the getters' head and get_seq are read without their lock,
        # and a stale value only shows less room.
        n = len(p)
        need = REC_HEADER + ((n + 7) & ~7)
        cap = self._cap
        if need > cap:
            raise ValueError(f"message of {n} bytes does not fit the queue's ring of {cap} bytes")
        deadline = None
        if block and timeout is not None:
            if timeout < 0:
                raise ValueError("'timeout' must be a non-negative number")
            deadline = _monotonic() + timeout
        h = self._h
        w32, w64 = h.w32, h.w64
        maxsize = self._maxsize
        asleep = False  # counted in putters by the last round
        while True:
            if not h.lock(deadline):
                if asleep:
                    self._uncount(h.try_lock, h.unlock, _PUTTERS)
                raise _stdqueue.Full
            try:
                if asleep:
                    asleep = False
                    if w32[_PUTTERS]:
                        w32[_PUTTERS] -= 1
                # nget before head and get_seq: a get that makes room after
                # these reads changes nget, so the sleep below returns at once.
                # Each field is read once and checked before use.
                seq = w32[_NGET]
                hd, tl = w64[_HEAD], w64[_TAIL]
                ps, gs = w64[_PUTSEQ], w64[_GETSEQ]
                if hd > tl or tl - hd > cap or (hd | tl) & 7 or ps < gs:
                    raise self._invalid(hd, tl, ps, gs)
                if (maxsize == 0 or ps - gs < maxsize) and cap - (tl - hd) >= need:
                    ring = self._ring
                    at = tl % cap
                    _LEN.pack_into(ring, at, n)
                    at = (at + REC_HEADER) % cap
                    if at + n <= cap:
                        ring[at:at + n] = p
                    else:
                        first = cap - at
                        ring[at:cap] = p[:first]
                        ring[0:n - first] = p[first:]
                    if WEAK:
                        fence()  # arm64: the record before tail and put_seq (lock-free getters read them)
                    # The put commit (SPEC 10.5), inline: entries, count (the
                    # commit point), fields, count cleared.
                    if self._joinable:
                        unfin = (w32[_UNFIN] + 1) & 0xFFFFFFFF
                        _PUT_ENTRIES3.pack_into(h.mm, OFF_REDO_N + 8, Q_TAIL, 8, tl + need, Q_PUTSEQ, 8, ps + 1,
                                                Q_UNFIN, 4, unfin)
                        w32[_REDO_N] = 3
                        w64[_TAIL] = tl + need
                        w64[_PUTSEQ] = ps + 1
                        w32[_UNFIN] = unfin
                    else:
                        _PUT_ENTRIES2.pack_into(h.mm, OFF_REDO_N + 8, Q_TAIL, 8, tl + need, Q_PUTSEQ, 8, ps + 1)
                        w32[_REDO_N] = 2
                        w64[_TAIL] = tl + need
                        w64[_PUTSEQ] = ps + 1
                    w32[_REDO_N] = 0
                    w32[_NPUT] = (w32[_NPUT] + 1) & 0xFFFFFFFF
                    # Wake a sleeping getter before unlocking: getters take
                    # the get lock, not ours, so it runs while our unlock is
                    # still in the kernel. The fence orders nput before the
                    # getters load (Dekker with a getter's "getters += 1;
                    # unlock; futex wait on nput", SPEC 10.6).
                    fence()
                    if w32[_GETTERS]:
                        h.wake(Q_NPUT, 1)
                    break
                if not block:
                    raise _stdqueue.Full
                w32[_PUTTERS] += 1
                asleep = True
            finally:
                h.unlock()
            if not h.sleep(Q_NGET, seq, deadline):
                self._uncount(h.try_lock, h.unlock, _PUTTERS)
                raise _stdqueue.Full

    def _uncount(self, try_lock: Any, unlock: Any, i: int) -> None:
        """Take back a sleeper's count in word i, if the lock guarding it is
        free at once (the deadline has passed; a count left high is a hint
        that only costs a spare wake-up)."""
        w32 = self._h.w32
        if try_lock():
            try:
                if w32[i]:
                    w32[i] -= 1
            finally:
                unlock()

    # -- get -------------------------------------------------------------

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """multiprocessing's get: queue.Empty when nothing comes until
        timeout, which bounds the whole call, lock waits included."""
        if self._closed:
            raise self._closed_error()
        p = self._get(block, timeout)
        return _decode(p) if len(p) <= DEFAULT_MAX_FRAME_SIZE else decode(p)

    def get_nowait(self) -> Any:
        """get(False): queue.Empty at once when there is no message."""
        return self.get(False)

    def _get(self, block: bool, timeout: Optional[float]) -> bytes:
        deadline = None
        if block and timeout is not None:
            if timeout < 0:
                raise ValueError("'timeout' must be a non-negative number")
            deadline = _monotonic() + timeout
        h = self._h
        w32, w64 = h.w32, h.w64
        cap = self._cap
        spin = block  # a blocking get that finds the queue empty polls it for SPIN seconds, once
        asleep = False  # counted in getters by the last round
        while True:
            if not h.lock_get(deadline):
                if asleep:
                    self._uncount(h.try_lock_get, h.unlock_get, _GETTERS)
                raise _stdqueue.Empty
            try:
                if asleep:
                    asleep = False
                    if w32[_GETTERS]:
                        w32[_GETTERS] -= 1
                # nput before put_seq: a put after these reads changes nput,
                # so the sleep below returns at once.
                seq = w32[_NPUT]
                ps, gs = w64[_PUTSEQ], w64[_GETSEQ]
                if ps != gs:
                    if WEAK:
                        fence()  # arm64: put_seq before tail and the record
                    hd, tl = w64[_HEAD], w64[_TAIL]
                    if hd > tl or tl - hd > cap or (hd | tl) & 7 or ps < gs:
                        raise self._invalid(hd, tl, ps, gs)
                    ring = self._ring
                    at = hd % cap
                    (n,) = _LEN.unpack_from(ring, at)
                    need = REC_HEADER + ((n + 7) & ~7)
                    if need > tl - hd:  # hence n < cap: checked before anything is copied
                        raise LayoutError(f"{self.name!r}: record of {n} bytes with {tl - hd} bytes queued")
                    at = (at + REC_HEADER) % cap
                    if at + n <= cap:
                        p: bytes = ring[at:at + n].tobytes()
                    else:
                        p = ring[at:cap].tobytes() + ring[0:n - (cap - at)].tobytes()
                    if WEAK:
                        fence()  # arm64: our reads of the record before head frees its space
                    # The get commit (SPEC 10.5), inline: entries, count (the
                    # commit point), fields, count cleared.
                    _GET_ENTRIES.pack_into(h.mm, OFF_GET_REDO_N + 8, Q_HEAD, 8, hd + need, Q_GETSEQ, 8, gs + 1)
                    w32[_GET_REDO_N] = 2
                    w64[_HEAD] = hd + need
                    w64[_GETSEQ] = gs + 1
                    w32[_GET_REDO_N] = 0
                    w32[_NGET] = (w32[_NGET] + 1) & 0xFFFFFFFF
                    getters = w32[_GETTERS]
                    break
                if w32[_REDO_N]:
                    # A putter is inside its commit, or was killed there: the
                    # internal lock (taken after the get lock, as always)
                    # finishes the commit; look again.
                    if not h.lock(deadline):
                        raise _stdqueue.Empty
                    h.unlock()
                    continue
                if not block:
                    raise _stdqueue.Empty
                if not spin:
                    w32[_GETTERS] += 1
                    asleep = True
            finally:
                h.unlock_get()
            if spin:
                # Spin briefly without the lock (the size was checked under
                # it a moment ago): a message that arrives within SPIN
                # seconds costs no futex sleep and wake-up on either side.
                spin = False
                clock = time.perf_counter
                end = clock() + SPIN
                while w64[_PUTSEQ] == w64[_GETSEQ] and clock() < end:
                    pass
                continue
            if not h.sleep(Q_NPUT, seq, deadline):
                self._uncount(h.try_lock_get, h.unlock_get, _GETTERS)
                raise _stdqueue.Empty
        # putters is read after the unlock (a full barrier), see _put.
        if w32[_PUTTERS] and _room_enough(tl - hd - need, cap, ps - gs - 1, self._maxsize):
            h.wake(Q_NGET, 1)
        if getters and ps - gs > 1:
            h.wake(Q_NPUT, 1)  # pass the baton: more messages are waiting
        return p

    # -- state -----------------------------------------------------------

    def _snapshot(self) -> int:
        """put_seq - get_seq, read without the lock (SPEC 10.4); after
        close(), the count this handle read when it closed (SPEC 10.2)."""
        if self._closed:
            if self._closed_n is None:  # the segment was already broken then
                raise self._closed_error()
            return self._closed_n
        h = self._h
        h.check()
        w64 = h.w64
        return max(int(w64[_PUTSEQ] - w64[_GETSEQ]), 0)

    def qsize(self) -> int:
        """The number of messages (a snapshot). After close(), the number
        when this handle closed, as multiprocessing's qsize() still answers
        after close()."""
        return self._snapshot()

    def empty(self) -> bool:
        """Whether the queue holds no message (a snapshot). After close():
        ClosedError (an OSError saying "is closed", as multiprocessing's
        empty() raises) once this handle has put anything; a handle that
        never put answers as of its close, as multiprocessing's does (3.13's
        test_closed_queue_empty_exceptions)."""
        if self._closed and self._used:
            raise self._closed_error()
        return self._snapshot() == 0

    def full(self) -> bool:
        """Whether the queue holds maxsize messages (a snapshot; after
        close(), as of the close)."""
        n = self._snapshot()
        return self._maxsize > 0 and n >= self._maxsize

    def close(self) -> None:
        """No more puts or gets through this handle; releases it (the last
        handle removes the queue unless kept). Idempotent."""
        if self._closed:
            return
        try:
            self._closed_n = self._snapshot()
        except (ClosedError, LayoutError):
            self._closed_n = None  # truncated under us: nothing to report after close
        self._closed = True
        self._h.close()

    def join_thread(self) -> None:
        """No feeder thread here: puts are in shared memory when put returns."""

    def cancel_join_thread(self) -> None:
        """No feeder thread here: nothing to cancel."""

    def __enter__(self) -> "Queue":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JoinableQueue(Queue):
    """multiprocessing.JoinableQueue(maxsize), named: task_done() and join().
    Opening the name of a plain Queue raises LayoutError."""

    _kind = KIND_JOINABLE

    def task_done(self) -> None:
        """Mark one message got from the queue as processed (ValueError when
        called more times than messages were put), waking join() at 0."""
        if self._closed:
            raise self._closed_error()
        h = self._h
        h.lock()
        try:
            n = h.u32(Q_UNFIN)
            if n == 0:
                raise ValueError("task_done() called too many times")
            h.set32(Q_UNFIN, n - 1)
        finally:
            h.unlock()
        if n == 1:
            h.wake(Q_UNFIN)

    def join(self) -> None:
        """Block until every message put has been marked by task_done()."""
        h = self._h
        while True:
            if self._closed or h.closed:
                raise self._closed_error()
            h.check()
            n = h.u32(Q_UNFIN)
            if n == 0:
                return
            h.sleep(Q_UNFIN, n, None)


class SimpleQueue:
    """multiprocessing.SimpleQueue, named: put, get, empty and close, with no
    size bound, no timeouts and no qsize(). It is a queue segment like
    Queue's (wire/SPEC.md 10.4, kind ``queue``): Go's mp.OpenQueue and a
    gobridge.Queue open the same name. put() blocks while the ring (capacity
    bytes, default 1 MiB) has no room for the message; get() blocks until
    one comes. ``create=False`` only attaches (FileNotFoundError naming the
    name when it does not exist). ``ctx`` is accepted for multiprocessing's
    signature and unused. After close() every method raises ClosedError (an
    OSError saying "is closed", as multiprocessing's do)."""

    def __init__(self, *, ctx: Any = None, name: Optional[str] = None, capacity: int = DEFAULT_CAPACITY,
                 keep: bool = False, create: bool = True) -> None:
        self._q = Queue(0, name=name, capacity=capacity, keep=keep, create=create)
        self._closed = False

    @property
    def name(self) -> str:
        """The queue's name (under /dev/shm), for other processes to open."""
        return self._q.name

    def _check(self) -> None:
        if self._closed:
            raise ClosedError(f"SimpleQueue {self!r} is closed")

    def put(self, obj: object) -> None:
        """Put obj (one msgpack value), waiting while the ring has no room."""
        self._check()
        self._q.put(obj)

    def get(self) -> Any:
        """Remove and return the oldest message, waiting until there is one."""
        self._check()
        return self._q.get()

    def empty(self) -> bool:
        """Whether the queue holds no message (a snapshot)."""
        self._check()
        return self._q.empty()

    def close(self) -> None:
        """Release this handle (the last one removes the queue and what it
        holds, unless kept). Idempotent."""
        self._closed = True
        self._q.close()

    def __repr__(self) -> str:
        return f"<SimpleQueue(name={self.name!r})>"

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen_simple, (self.name,))


def _reopen_simple(name: str) -> SimpleQueue:
    return SimpleQueue(name=name)
