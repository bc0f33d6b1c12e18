"""Named Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and
Barrier in shared memory, as ``multiprocessing.synchronize`` has them
(wire/SPEC.md sections 10.7-10.12); Go's bridge/mp opens the same names.

Each is a segment under ``/dev/shm`` (gobridge._internal.objects): a Lock is
an OFD lock on byte 1 of it, released by the kernel when its holder dies; a
Semaphore is a count word with futex sleepers (a BoundedSemaphore stores its
bound too); an Event is one futex state word; a Condition's and a Barrier's
waiters each hold a slot and a liveness OFD lock, so that a waiter that dies
is seen as dead by the others (never waited for, never notified, a broken
barrier).
"""
from __future__ import annotations

import fcntl
import os
import threading
from typing import Any, Callable, Optional, Set, TypeVar, Union

from ._internal import ofdlock
from ._internal.layout import (BAR_BROKEN, BAR_BROKEN_SLOT, BAR_COUNT, BAR_FREE, BAR_GEN, BAR_LIVE, BAR_NSLOTS,
                               BAR_PARTIES, BAR_PASSED, BAR_SIZE, BAR_SLOT, BAR_SLOTS, BAR_WAITING, KIND_BARRIER)
from ._internal.layout import (BSEM_BOUND, BSEM_SIZE, CV_FREE, CV_LIVE, CV_NOTIFIED, CV_NSLOTS, CV_SEQ, CV_SIZE,
                               CV_SLOT, CV_SLOTS, CV_TICKET, CV_WAITING, EV_STATE, KIND_BOUNDED_SEMAPHORE,
                               KIND_CONDITION, KIND_EVENT, KIND_LOCK, KIND_RLOCK, KIND_SEMAPHORE, SEM_COUNT,
                               SEM_WAITERS, VALUE_OFF)
from ._internal.objects import ClosedError, LayoutError, SegmentTruncatedError, _Handle, _monotonic, _UserLock

_T = TypeVar("_T")

__all__ = ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier", "BrokenBarrierError"]

BrokenBarrierError = threading.BrokenBarrierError


class Lock:
    """multiprocessing.Lock, named: Lock(name='l') in every process that
    shares it. A lock whose holder dies is released (the next acquire gets
    it), not left locked as multiprocessing's is. The holder is this handle:
    release() from a process that did not acquire raises ValueError.
    ``create=False`` (here and on RLock, Semaphore) only attaches:
    FileNotFoundError naming the name when it does not exist."""

    _kind = KIND_LOCK

    def __init__(self, *, name: Optional[str] = None, keep: bool = False, create: bool = True) -> None:
        self._h = _Handle(name, self._kind, VALUE_OFF + 8, keep=keep, create=create)
        self._ul = _UserLock(self._h)

    @property
    def name(self) -> str:
        """The lock's name (under /dev/shm), for other processes to open."""
        return self._h.name

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        """multiprocessing's acquire: True once held; False when block is
        False and the lock is taken, or timeout passes."""
        return self._ul.acquire(block, timeout)

    def release(self) -> None:
        """Release the lock this handle holds (ValueError otherwise)."""
        self._ul.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        """Release this handle; the last one removes the lock."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen, (type(self), self.name))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}(name={self.name!r})>"


class RLock(Lock):
    """multiprocessing.RLock, named: the owning thread may acquire again and
    must release as many times."""

    _kind = KIND_RLOCK

    def __init__(self, *, name: Optional[str] = None, keep: bool = False, create: bool = True,
                 _ul: Optional[_UserLock] = None) -> None:
        if _ul is None:
            super().__init__(name=name, keep=keep, create=create)
        else:
            self._h, self._ul = _ul.h, _ul
        self._owner: Optional[int] = None
        self._count = 0
        self._pid = os.getpid()

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        """As Lock.acquire; the owning thread acquires again at once."""
        me = threading.get_ident()
        if self._pid != os.getpid():
            self._pid, self._owner, self._count = os.getpid(), None, 0
        if self._owner == me:
            self._count += 1
            return True
        if not self._ul.acquire(block, timeout):
            return False
        self._owner, self._count = me, 1
        return True

    def release(self) -> None:
        """Undo one acquire of the owning thread (AssertionError from any
        other, as multiprocessing's RLock); the last one releases the lock."""
        if self._owner != threading.get_ident() or self._pid != os.getpid():
            raise AssertionError("attempt to release recursive lock not owned by thread")
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._ul.release()


def _reopen(cls: Any, name: str) -> Any:
    return cls(name=name)


class Semaphore:
    """multiprocessing.Semaphore, named. A count is not owned: a process that
    dies holding one does not give it back (as with multiprocessing)."""

    _VALUE = SEM_COUNT
    _WAITERS = SEM_WAITERS
    _MAX = 0x7FFFFFFF
    _kind = KIND_SEMAPHORE
    _size = VALUE_OFF + 8

    def __init__(self, value: int = 1, *, name: Optional[str] = None, keep: bool = False,
                 create: bool = True) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        if value > self._MAX:
            raise OverflowError("semaphore initial value too large")
        self._max = self._MAX  # the largest count release() may reach

        def init(h: _Handle) -> None:
            h.set32(self._VALUE, value)
            if self._kind == KIND_BOUNDED_SEMAPHORE:
                h.set32(BSEM_BOUND, value)
                self._max = value

        def check(h: _Handle) -> None:
            if self._kind == KIND_BOUNDED_SEMAPHORE:
                bound = h.u32(BSEM_BOUND)  # read once
                if bound > self._MAX:
                    raise LayoutError(f"{h.name!r}: bounded semaphore bound {bound}")
                self._max = bound

        self._h = _Handle(name, self._kind, self._size, init=init, check=check, keep=keep, create=create)

    @property
    def name(self) -> str:
        """The semaphore's name (under /dev/shm), for other processes to open."""
        return self._h.name

    def _bad(self, v: int) -> LayoutError:
        """The count (at 64, read once under the internal lock) is above
        SEM_VALUE_MAX, or a bounded semaphore's bound: no process could have
        made it."""
        return LayoutError(f"{self.name!r}: semaphore count {v}")

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        """multiprocessing's acquire; the timeout bounds the whole call,
        waits for the internal lock included."""
        h = self._h
        deadline = None if timeout is None or not block else _monotonic() + max(timeout, 0.0)
        asleep = False  # counted in waiters by the last round
        while True:
            if not h.lock(deadline):
                if asleep:
                    self._uncount()
                return False
            try:
                if asleep:
                    asleep = False
                    n = h.u32(self._WAITERS)
                    if n:
                        h.set32(self._WAITERS, n - 1)
                v = h.w32[16]  # the count at 64, read once
                if v > self._max:
                    raise self._bad(v)
                if v > 0:
                    h.w32[16] = v - 1
                    return True
                if not block:
                    return False
                h.set32(self._WAITERS, h.u32(self._WAITERS) + 1)
                asleep = True
            finally:
                h.unlock()
            if not h.sleep(self._VALUE, 0, deadline):
                self._uncount()
                return False

    def _uncount(self) -> None:
        """Take back this waiter's count if the lock is free at once (a hint:
        one left high only costs a spare wake-up)."""
        h = self._h
        if h.try_lock():
            try:
                n = h.u32(self._WAITERS)
                if n:
                    h.set32(self._WAITERS, n - 1)
            finally:
                h.unlock()

    def release(self) -> None:
        """Add one to the count and wake one acquirer (ValueError above
        2**31-1, or a BoundedSemaphore's initial value)."""
        h = self._h
        h.lock()
        try:
            v = h.w32[16]
            if v > self._max:
                raise self._bad(v)
            if v == self._max:
                raise ValueError("semaphore or lock released too many times")
            h.w32[16] = v + 1
            waiters = h.u32(self._WAITERS)
        finally:
            h.unlock()
        if waiters:
            h.wake(self._VALUE, 1)

    def get_value(self) -> int:
        """The count (a snapshot)."""
        self._h.check()
        return self._h.u32(self._VALUE)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        """Release this handle; the last one removes the semaphore."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen_sem, (self.name, type(self)))

    def __repr__(self) -> str:
        try:
            value = str(self.get_value())
        except (ClosedError, SegmentTruncatedError):
            value = "unknown"
        return f"<Semaphore(value={value}, name={self.name!r})>"


class BoundedSemaphore(Semaphore):
    """multiprocessing.BoundedSemaphore, named: a Semaphore whose release()
    above its initial value raises ValueError ("semaphore or lock released
    too many times"). The bound is stored in the object (SPEC 10.9), so Go's
    mp.OpenBoundedSemaphore handles enforce it too; attaching keeps the
    existing bound and count. A plain Semaphore's name is refused
    (LayoutError), and Semaphore refuses a bounded one."""

    _kind = KIND_BOUNDED_SEMAPHORE
    _size = BSEM_SIZE

    def __repr__(self) -> str:
        try:
            value = str(self.get_value())
        except (ClosedError, SegmentTruncatedError):
            value = "unknown"
        return f"<BoundedSemaphore(value={value}, maxvalue={self._max}, name={self.name!r})>"


def _reopen_sem(name: str, cls: "type[Semaphore]" = Semaphore) -> "Semaphore":
    return cls(0, name=name)  # attaching keeps the count (and the bound)


class Event:
    """multiprocessing.Event, named: Event(name='e') in every process that
    shares it (Go: mp.OpenEvent). A new event is clear. wait() returns True
    once a set() happened while it waited, even if clear() came before it
    looked (threading.Event's rule; the state word counts the sets, SPEC
    10.10), so a waiter never misses a set."""

    def __init__(self, *, name: Optional[str] = None, keep: bool = False, create: bool = True) -> None:
        self._h = _Handle(name, KIND_EVENT, VALUE_OFF + 8, keep=keep, create=create)

    @property
    def name(self) -> str:
        """The event's name (under /dev/shm), for other processes to open."""
        return self._h.name

    def is_set(self) -> bool:
        """True if the event is set (a snapshot)."""
        self._h.check()
        return bool(self._h.u32(EV_STATE) & 1)

    def set(self) -> None:
        """Set the event and wake every waiter."""
        h = self._h
        h.lock()
        try:
            w = h.u32(EV_STATE)  # read once
            changed = not w & 1
            if changed:
                h.set32(EV_STATE, (w + 2) | 1)  # one more set; the count wraps in 31 bits
        finally:
            h.unlock()
        if changed:
            h.wake(EV_STATE)

    def clear(self) -> None:
        """Clear the event."""
        h = self._h
        h.lock()
        try:
            w = h.u32(EV_STATE)
            if w & 1:
                h.set32(EV_STATE, w & ~1)
        finally:
            h.unlock()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the event is set, at most timeout seconds (None: as
        long as it takes): True if it is set or was set meanwhile, False on
        timeout. Takes no lock."""
        h = self._h
        h.check()
        w = h.u32(EV_STATE)
        if w & 1:
            return True
        deadline = None if timeout is None else _monotonic() + max(timeout, 0.0)
        while True:
            slept = h.sleep(EV_STATE, w, deadline)
            h.check()
            now = h.u32(EV_STATE)
            if now & 1 or now >> 1 != w >> 1:
                return True
            if not slept:
                return False

    def close(self) -> None:
        """Release this handle; the last one removes the event."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen, (type(self), self.name))

    def __repr__(self) -> str:
        try:
            state = "set" if self.is_set() else "unset"
        except (ClosedError, SegmentTruncatedError):
            state = "closed"
        return f"<Event at {id(self):#x} name={self.name!r} {state}>"


_M32 = 0xFFFFFFFF
_CV_WRLCK = [ofdlock.pack(fcntl.F_WRLCK, CV_LIVE + i) for i in range(CV_NSLOTS)]
_CV_UNLCK = [ofdlock.pack(fcntl.F_UNLCK, CV_LIVE + i) for i in range(CV_NSLOTS)]


class Condition:
    """multiprocessing.Condition, named: Condition(name='c') in every
    process that shares it (Go: mp.OpenCondition). Its lock is, by default,
    an RLock on the condition's own segment; ``lock=`` a gobridge Lock or
    RLock uses that one instead (every process sharing the condition must
    then use that lock, and Go passes it to OpenCondition).

    Crash-safe (SPEC 10.11): a holder that dies releases the lock, as Lock's
    does; a waiter holds a liveness lock that the kernel drops when it dies,
    so notify() never counts, waits for or wakes a dead waiter. At most 128
    waiters at a time (RuntimeError beyond)."""

    def __init__(self, lock: Optional[Union[Lock, RLock]] = None, *, name: Optional[str] = None,
                 keep: bool = False, create: bool = True) -> None:
        if lock is not None and not isinstance(lock, Lock):
            raise TypeError("Condition's lock must be a gobridge Lock or RLock, "
                            f"not {type(lock).__name__}")
        self._h = _Handle(name, KIND_CONDITION, CV_SIZE, keep=keep, create=create)
        self._w32 = self._h.view(0, CV_SIZE, "I")  # the whole object (the handle's views stop at 256)
        self._lock: Lock = lock if lock is not None else RLock(_ul=_UserLock(self._h))
        self._own = lock is None
        self._mine: Set[int] = set()  # slots this handle's threads wait in (the kernel sees one owner)
        self._pid = os.getpid()

    @property
    def name(self) -> str:
        """The condition's name (under /dev/shm), for other processes to open."""
        return self._h.name

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        """Acquire the underlying lock (its acquire's arguments and result)."""
        return self._lock.acquire(block, timeout)

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    # -- the lock ----------------------------------------------------------------

    def _is_owned(self) -> bool:
        lk = self._lock
        if isinstance(lk, RLock):
            return lk._owner == threading.get_ident() and lk._pid == os.getpid()
        return lk._ul.held and lk._ul.pid == os.getpid()

    def _release_save(self) -> int:
        lk = self._lock
        if isinstance(lk, RLock):
            count = lk._count
            lk._count = 1
            lk.release()
            return count
        lk.release()
        return 1

    def _acquire_restore(self, count: int) -> None:
        lk = self._lock
        lk.acquire()
        if isinstance(lk, RLock):
            lk._count = count

    # -- waiting -------------------------------------------------------------------

    def _u32(self, off: int) -> int:
        return int(self._w32[off >> 2])

    def _set32(self, off: int, v: int) -> None:
        self._w32[off >> 2] = v & _M32

    def _forked(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._mine = os.getpid(), set()

    def _live(self, i: int) -> bool:
        """Whether slot i's waiter is alive: this handle's, or another
        description holds its liveness byte."""
        return i in self._mine or ofdlock.probe(self._h.fd, fcntl.F_WRLCK, CV_LIVE + i) != fcntl.F_UNLCK

    def _slot(self, i: int) -> "tuple[int, int]":
        """Slot i's state and ticket, each read once; a state no process
        writes is a LayoutError."""
        h = self._h
        st = self._u32(CV_SLOTS + i * CV_SLOT)
        if st > CV_NOTIFIED:
            raise LayoutError(f"{self.name!r}: condition slot {i} has state {st}")
        return st, self._u32(CV_SLOTS + i * CV_SLOT + 4)

    def _claim(self) -> int:
        """Under the internal lock: take a free slot (or a dead waiter's)
        and its liveness lock, register it with the next ticket."""
        h = self._h
        for i in range(CV_NSLOTS):
            if i in self._mine:
                continue
            st, _ = self._slot(i)
            if st != CV_FREE and self._live(i):
                continue
            try:
                fcntl.fcntl(h.fd, fcntl.F_OFD_SETLK, _CV_WRLCK[i])
            except (BlockingIOError, PermissionError):
                continue  # held by a description that is not a waiter's: skip it
            t = self._u32(CV_TICKET)
            self._set32(CV_SLOTS + i * CV_SLOT + 4, t)
            self._set32(CV_SLOTS + i * CV_SLOT, CV_WAITING)
            self._set32(CV_TICKET, t + 1)
            self._mine.add(i)
            return i
        raise RuntimeError(f"condition {self.name!r} has {CV_NSLOTS} waiters already")

    def _leave(self, i: int) -> bool:
        """Under the internal lock: free slot i; whether it was notified."""
        h = self._h
        notified = self._u32(CV_SLOTS + i * CV_SLOT) == CV_NOTIFIED
        self._set32(CV_SLOTS + i * CV_SLOT, CV_FREE)
        self._mine.discard(i)
        fcntl.fcntl(h.fd, fcntl.F_OFD_SETLK, _CV_UNLCK[i])
        return notified

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Release the lock, sleep until notified or timeout seconds pass,
        take the lock again: True if notified, False on timeout. The caller
        must hold the lock (AssertionError otherwise, as multiprocessing's)."""
        self._h.check()  # ClosedError after close, as every method
        assert self._is_owned(), "must acquire() condition before using wait()"
        self._forked()
        h = self._h
        deadline = None if timeout is None else _monotonic() + max(timeout, 0.0)
        if not h.lock(deadline):
            return False  # the internal lock's holder is stopped: time out without waiting
        try:
            i = self._claim()
        finally:
            h.unlock()
        count = self._release_save()
        notified = False
        try:
            state = CV_SLOTS + i * CV_SLOT
            while True:
                seq = self._u32(CV_SEQ)  # before the state: a notify after this read changes it
                if self._u32(state) == CV_NOTIFIED:
                    break
                if not h.sleep(CV_SEQ, seq, deadline):
                    break
                h.check()
        finally:
            try:
                h.lock()
                try:
                    notified = self._leave(i)
                finally:
                    h.unlock()
            finally:
                self._acquire_restore(count)
        return notified

    def wait_for(self, predicate: Callable[[], _T], timeout: Optional[float] = None) -> _T:
        """Wait until predicate() is true, at most timeout seconds; return
        its last result (threading.Condition.wait_for's)."""
        result = predicate()
        if result:
            return result
        endtime = None if timeout is None else _monotonic() + timeout
        waittime = None
        while not result:
            if endtime is not None:
                waittime = endtime - _monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to n waiters, the longest waiting first, skipping (and
        freeing the slots of) dead ones. The caller must hold the lock."""
        self._h.check()
        assert self._is_owned(), "lock is not owned"
        self._forked()
        h = self._h
        woke = False
        h.lock()
        try:
            nxt = self._u32(CV_TICKET)
            waiting = []
            for i in range(CV_NSLOTS):
                st, t = self._slot(i)
                if st == CV_FREE:
                    continue
                if not self._live(i):
                    self._set32(CV_SLOTS + i * CV_SLOT, CV_FREE)  # a dead waiter's slot
                elif st == CV_WAITING:
                    waiting.append(((nxt - t) & _M32, i))
            waiting.sort(reverse=True)  # oldest ticket first
            for _, i in waiting[:max(n, 0)]:
                self._set32(CV_SLOTS + i * CV_SLOT, CV_NOTIFIED)
                woke = True
            if woke:
                self._set32(CV_SEQ, self._u32(CV_SEQ) + 1)
        finally:
            h.unlock()
        if woke:
            h.wake(CV_SEQ)

    def notify_all(self) -> None:
        """Wake every waiter. The caller must hold the lock."""
        self.notify(CV_NSLOTS)

    def _states(self) -> "list[int]":
        return [self._u32(CV_SLOTS + i * CV_SLOT) for i in range(CV_NSLOTS)]

    @property
    def _sleeping_count(self) -> "_Count":
        """The slots taken (waiting or notified and not yet gone), under the
        name of multiprocessing's counter, which CPython's tests check."""
        return _Count(lambda: sum(st != CV_FREE for st in self._states()))

    @property
    def _woken_count(self) -> "_Count":
        """0: a woken waiter frees its slot itself (multiprocessing counts
        woken waiters here)."""
        return _Count(lambda: 0)

    @property
    def _wait_semaphore(self) -> "_Count":
        """The slots notified and not yet gone (multiprocessing's pending
        wake-ups)."""
        return _Count(lambda: sum(st == CV_NOTIFIED for st in self._states()))

    def close(self) -> None:
        """Release this handle; the last one removes the condition."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        if not self._own:
            return (_reopen_cond, (self.name, self._lock))
        return (_reopen_cond, (self.name, None))

    def __repr__(self) -> str:
        return f"<Condition({self._lock!r}, name={self.name!r})>"


class _Count:
    """A read-only count with multiprocessing's get_value()."""

    def __init__(self, fn: Callable[[], int]) -> None:
        self._fn = fn

    def get_value(self) -> int:
        """The count now."""
        return self._fn()


def _reopen_cond(name: str, lock: Optional[Lock]) -> Condition:
    return Condition(lock, name=name)


_BAR_WRLCK = [ofdlock.pack(fcntl.F_WRLCK, BAR_LIVE + i) for i in range(BAR_NSLOTS)]
_BAR_UNLCK = [ofdlock.pack(fcntl.F_UNLCK, BAR_LIVE + i) for i in range(BAR_NSLOTS)]


class Barrier:
    """multiprocessing.Barrier (threading.Barrier's semantics), named:
    Barrier(parties, name='b') in every process that shares it (Go:
    mp.OpenBarrier). wait() blocks until ``parties`` parties wait, then all
    return, each with a distinct index; the last to arrive runs ``action``
    first. A wait that times out, abort(), an action that raises, or a party
    killed while waiting breaks the barrier: every waiter raises
    BrokenBarrierError (threading's), and so does every later wait until
    reset(). At most 128 parties. Attaching keeps the existing parties (the
    argument is ignored); action and timeout belong to the handle."""

    def __init__(self, parties: int, action: Optional[Callable[[], object]] = None,
                 timeout: Optional[float] = None, *, name: Optional[str] = None, keep: bool = False,
                 create: bool = True) -> None:
        if not 1 <= parties <= BAR_NSLOTS:
            raise ValueError(f"parties must be between 1 and {BAR_NSLOTS}")
        self._action = action
        self._timeout = timeout
        self._mine: Set[int] = set()
        self._pid = os.getpid()
        self._parties = parties

        def init(h: _Handle) -> None:
            _w(h)[BAR_PARTIES >> 2] = parties

        def check(h: _Handle) -> None:
            n = int(_w(h)[BAR_PARTIES >> 2])  # read once
            if not 1 <= n <= BAR_NSLOTS:
                raise LayoutError(f"{h.name!r}: barrier of {n} parties")
            self._parties = n

        self._h = _Handle(name, KIND_BARRIER, BAR_SIZE, init=init, check=check, keep=keep, create=create)
        self._w32 = self._h.view(0, BAR_SIZE, "I")

    @property
    def name(self) -> str:
        """The barrier's name (under /dev/shm), for other processes to open."""
        return self._h.name

    @property
    def parties(self) -> int:
        """The number of parties that must wait for the barrier to trip."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """The number of parties waiting now (a snapshot)."""
        self._h.check()
        return min(int(self._w32[BAR_COUNT >> 2]), self._parties)

    @property
    def broken(self) -> bool:
        """True if the barrier is broken (until reset())."""
        self._h.check()
        return bool(self._w32[BAR_BROKEN >> 2] != 0)

    # -- shared state, under the internal lock -------------------------------------

    def _st(self, i: int) -> int:
        st = int(self._w32[(BAR_SLOTS + i * BAR_SLOT) >> 2])
        if st > BAR_BROKEN_SLOT:
            raise LayoutError(f"{self.name!r}: barrier slot {i} has state {st}")
        return st

    def _set_st(self, i: int, v: int) -> None:
        self._w32[(BAR_SLOTS + i * BAR_SLOT) >> 2] = v

    def _live(self, i: int) -> bool:
        return i in self._mine or ofdlock.probe(self._h.fd, fcntl.F_WRLCK, BAR_LIVE + i) != fcntl.F_UNLCK

    def _release_all(self, state: int, broken: int) -> None:
        """End this generation: every waiting party gets state (passed or
        broken), the count goes to 0, broken is stored, gen += 1."""
        w = self._w32
        for i in range(BAR_NSLOTS):
            if self._st(i) == BAR_WAITING:
                self._set_st(i, state)
        w[BAR_COUNT >> 2] = 0
        w[BAR_BROKEN >> 2] = broken
        w[BAR_GEN >> 2] = (int(w[BAR_GEN >> 2]) + 1) & _M32

    def _reap(self) -> bool:
        """Free the slots of dead parties; a dead party that was waiting
        breaks the barrier. True if anything changed (wake the others)."""
        changed = False
        for i in range(BAR_NSLOTS):
            st = self._st(i)
            if st == BAR_FREE or self._live(i):
                continue
            self._set_st(i, BAR_FREE)
            if st == BAR_WAITING:
                self._release_all(BAR_BROKEN_SLOT, 1)
                changed = True
        return changed

    def _check_count(self) -> int:
        n = int(self._w32[BAR_COUNT >> 2])
        if n > self._parties:
            raise LayoutError(f"{self.name!r}: {n} parties waiting at a barrier of {self._parties}")
        return n

    def _claim(self) -> int:
        h = self._h
        for i in range(BAR_NSLOTS):
            if i in self._mine or self._st(i) != BAR_FREE:
                continue
            try:
                fcntl.fcntl(h.fd, fcntl.F_OFD_SETLK, _BAR_WRLCK[i])
            except (BlockingIOError, PermissionError):
                continue
            self._mine.add(i)
            return i
        raise RuntimeError(f"barrier {self.name!r} has no free slot")

    def _leave(self, i: int) -> int:
        st = self._st(i)
        self._set_st(i, BAR_FREE)
        self._mine.discard(i)
        fcntl.fcntl(self._h.fd, fcntl.F_OFD_SETLK, _BAR_UNLCK[i])
        return st

    # -- the API -----------------------------------------------------------------

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait until parties parties wait here, then return this party's
        arrival index (0 to parties-1). timeout (default: the barrier's)
        passing breaks the barrier; BrokenBarrierError if it is or becomes
        broken, or is reset while waiting."""
        if self._pid != os.getpid():
            self._pid, self._mine = os.getpid(), set()
        if timeout is None:
            timeout = self._timeout
        deadline = None if timeout is None else _monotonic() + max(timeout, 0.0)
        h, w = self._h, self._w32
        wake = False
        if not h.lock(deadline):
            raise BrokenBarrierError  # the internal lock's holder is stopped: time out without waiting
        try:
            wake = self._reap()
            if w[BAR_BROKEN >> 2]:
                raise BrokenBarrierError
            index = self._check_count()
            if index >= self._parties:
                raise LayoutError(f"{self.name!r}: barrier already full")
            i = self._claim()
            self._set_st(i, BAR_WAITING)
            w[(BAR_SLOTS + i * BAR_SLOT + 4) >> 2] = index
            w[BAR_COUNT >> 2] = index + 1
            last = index + 1 == self._parties
        finally:
            h.unlock()
            if wake:
                h.wake(BAR_GEN)
        if last:
            return self._trip(i, index)
        return self._sleep(i, index, deadline)

    def _trip(self, i: int, index: int) -> int:
        """The last party: run the action, then release everyone (or break
        the barrier if the action raised)."""
        h = self._h
        err: Optional[BaseException] = None
        try:
            if self._action is not None:
                self._action()
        except BaseException as e:  # noqa: BLE001 - threading breaks the barrier on any
            err = e
        h.lock()
        try:
            st = self._st(i)
            if st == BAR_WAITING:
                self._release_all(BAR_PASSED if err is None else BAR_BROKEN_SLOT, 0 if err is None else 1)
                st = self._st(i)
            self._leave(i)
        finally:
            h.unlock()
            h.wake(BAR_GEN)
        if err is not None:
            raise err
        if st != BAR_PASSED:
            raise BrokenBarrierError
        return index

    def _sleep(self, i: int, index: int, deadline: Optional[float]) -> int:
        h, w = self._h, self._w32
        off = (BAR_SLOTS + i * BAR_SLOT) >> 2
        st = BAR_WAITING
        try:
            while True:
                gen = int(w[BAR_GEN >> 2])  # before the state: a change after this read bumps it
                if w[off] != BAR_WAITING:
                    break
                if not h.sleep(BAR_GEN, gen, deadline):
                    break  # timed out
                h.check()
                if w[off] == BAR_WAITING and w[BAR_GEN >> 2] == gen:  # a slice: look for dead parties
                    h.lock()
                    try:
                        wake = self._reap()
                    finally:
                        h.unlock()
                    if wake:
                        h.wake(BAR_GEN)
        finally:
            h.lock()
            try:
                st = self._st(i)
                if st == BAR_WAITING:  # timed out (or interrupted): break the barrier, as threading's
                    self._release_all(BAR_BROKEN_SLOT, 1)
                    st = BAR_BROKEN_SLOT
                self._leave(i)
            finally:
                h.unlock()
                h.wake(BAR_GEN)
        if st != BAR_PASSED:
            raise BrokenBarrierError
        return index

    def reset(self) -> None:
        """Return the barrier to its initial state: parties waiting now raise
        BrokenBarrierError, and it is no longer broken."""
        h = self._h
        h.lock()
        try:
            self._release_all(BAR_BROKEN_SLOT, 0)
        finally:
            h.unlock()
        h.wake(BAR_GEN)

    def abort(self) -> None:
        """Break the barrier: parties waiting now and every later wait()
        raise BrokenBarrierError until reset()."""
        h = self._h
        h.lock()
        try:
            self._release_all(BAR_BROKEN_SLOT, 1)
        finally:
            h.unlock()
        h.wake(BAR_GEN)

    def close(self) -> None:
        """Release this handle; the last one removes the barrier."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen_barrier, (self.name, self._parties, self._action, self._timeout))

    def __repr__(self) -> str:
        return f"<Barrier(parties={self._parties}, name={self.name!r})>"


def _w(h: _Handle) -> Any:
    """The first 256 bytes of h as u32s (a creator's or opener's check)."""
    return h.w32


def _reopen_barrier(name: str, parties: int, action: Optional[Callable[[], object]],
                    timeout: Optional[float]) -> Barrier:
    return Barrier(parties, action, timeout, name=name)
