"""Named Lock, RLock and Semaphore in shared memory, as ``multiprocessing.synchronize``
has them (wire/SPEC.md sections 10.7, 10.8); Go's bridge/mp opens the same names.

Each is a segment under ``/dev/shm`` (gobridge._internal.objects): a Lock is
an OFD lock on byte 1 of it, released by the kernel when its holder dies; a
Semaphore is a count word with futex sleepers.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Optional

from ._internal.layout import (BSEM_BOUND, BSEM_SIZE, EV_STATE, KIND_BOUNDED_SEMAPHORE, KIND_EVENT, KIND_LOCK,
                               KIND_RLOCK, KIND_SEMAPHORE, SEM_COUNT, SEM_WAITERS, VALUE_OFF)
from ._internal.objects import ClosedError, LayoutError, SegmentTruncatedError, _Handle, _monotonic, _UserLock

__all__ = ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event"]


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
