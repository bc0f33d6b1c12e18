"""Named shared objects: the common segment handle, Value, Array, Semaphore,
Lock and RLock (wire/SPEC.md section 10). Queue and JoinableQueue are in
_queue.py. Go's bridge/mp opens the same names.

Processes exclude each other with open-file-description locks
(fcntl F_OFD_SETLKW) on bytes of the segment file, which the kernel releases
when a holder dies, and sleep on futex words in the segment. Within one
process a threading lock makes the handle's OFD lock exclusive between
threads (the kernel sees one owner per open file description). After
os.fork() the child reopens its own handle, so parent and child exclude each
other as two processes (multiprocessing's fork start method works).
"""
from __future__ import annotations

import fcntl
import mmap
import operator
import os
import struct
import threading
import time
import weakref
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union, overload

from . import _futex, _shm

__all__ = ["Value", "Array", "Semaphore", "Lock", "RLock", "TYPECODES"]

MAGIC = 0x504D4247  # "GBMP"
VERSION = 2  # 2: queues have a get lock and a get redo log (SPEC 10.5)
HEADER = 64
REDO_MAX = 3
OFF_REDO_N = 8  # the header's redo log: count at 8, entries (u32 offset, u32 width, u64 value) from 16
OFF_HOLDER = 12
LOCK_INTERNAL = 0
LOCK_USER = 1
LOCK_GET = 2  # a queue's get side
OFF_GET_REDO_N = 136  # a queue's get-side redo log: count at 136, entries at 144
VALUE_OFF = 64
WAIT_SLICE = 0.05  # every futex sleep is bounded by this (SPEC 10.6)

KIND_QUEUE, KIND_JOINABLE, KIND_VALUE, KIND_ARRAY, KIND_SEMAPHORE, KIND_LOCK, KIND_RLOCK = range(1, 8)
_QUEUES = (KIND_QUEUE, KIND_JOINABLE)
KIND_NAMES = {
    KIND_QUEUE: "queue", KIND_JOINABLE: "joinable_queue", KIND_VALUE: "value", KIND_ARRAY: "array",
    KIND_SEMAPHORE: "semaphore", KIND_LOCK: "lock", KIND_RLOCK: "rlock",
}

#: typecode -> item size in bytes (native, little-endian; l/L are C long, 8 bytes on Linux)
TYPECODES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8, "f": 4, "d": 8}
_SAME = {("l", "q"), ("q", "l"), ("L", "Q"), ("Q", "L")}

_FLOCK = struct.Struct("hhqqi4x")  # struct flock on LP64 Linux


def _flock(typ: int, off: int) -> bytes:
    return _FLOCK.pack(typ, os.SEEK_SET, off, 1, 0)


_WRLCK = [_flock(fcntl.F_WRLCK, i) for i in range(3)]
_UNLCK = [_flock(fcntl.F_UNLCK, i) for i in range(3)]


_fcntl = fcntl.fcntl
_SETLKW, _SETLK = fcntl.F_OFD_SETLKW, fcntl.F_OFD_SETLK
_WRLCK0, _UNLCK0 = _WRLCK[LOCK_INTERNAL], _UNLCK[LOCK_INTERNAL]
_WRLCKG, _UNLCKG = _WRLCK[LOCK_GET], _UNLCK[LOCK_GET]


class LayoutError(ValueError):
    """The segment is not a valid gobridge shared object, or holds another
    kind of object, typecode or length than asked for."""


_live: "weakref.WeakSet[_Handle]" = weakref.WeakSet()


def _after_fork() -> None:
    for h in list(_live):
        h.after_fork()


os.register_at_fork(after_in_child=_after_fork)


def _auto_name() -> str:
    return f"gbmp-{os.getpid()}-{os.urandom(6).hex()}"


Init = Callable[["_Handle"], None]
Check = Callable[["_Handle"], None]


class _Handle:
    """One handle on a named shared object: segment, mapping, header views."""

    def __init__(self, name: Optional[str], kind: int, size: int, typecode: str = "", *,
                 init: Optional[Init] = None, check: Optional[Check] = None,
                 create: bool = True, attach: bool = True, keep: bool = False,
                 mode: int = _shm.DEFAULT_MODE, allow_other_owner: bool = False) -> None:
        self.name = name if name is not None else _auto_name()
        self.kind = kind
        self._open_args = {"keep": keep, "allow_other_owner": allow_other_owner}
        seg = None
        for _ in range(10):
            if attach:
                try:
                    seg = _shm.open_segment(self.name, 0, kind=KIND_NAMES[kind], create=False,
                                            keep=keep, allow_other_owner=allow_other_owner)
                    break
                except FileNotFoundError:
                    if not create:
                        raise
            try:
                seg = _shm.open_segment(self.name, size, kind=KIND_NAMES[kind], attach=False,
                                        keep=keep, mode=mode)
                break
            except FileExistsError:
                if not attach:
                    raise
        if seg is None:
            raise OSError(f"shared object {self.name!r}: gave up after create/unlink races")
        self.seg = seg
        self.fd = seg.fileno()
        self.mu = threading.Lock()
        self.gmu = threading.Lock()  # held while this handle holds a queue's get lock
        self.closed = False
        try:
            n = seg.size()
            if n < HEADER:
                raise LayoutError(f"{self.name!r} has {n} bytes: not a shared object")
            self.mm = mmap.mmap(seg.fileno(), n)
            self._views: List[Any] = []
            hl = min(n, 256) & ~7
            self.w32 = self.view(0, hl, "I")
            self.w64 = self.view(0, hl, "Q")
            self._word: Optional[_futex.Word] = _futex.Word(self.mm, 0)
            self.base = self._word.addr
            self._setup(size, typecode, create, init, check)
        except BaseException:
            self._release()
            raise
        self.pid = os.getpid()
        _live.add(self)
        self._finalizer = weakref.finalize(self, _Handle._finalize, self.seg, self.mm, self._views, self._word)

    def view(self, start: int, end: int, fmt: str = "B") -> Any:
        """A memoryview of [start, end) cast to fmt, released on close."""
        v: Any = memoryview(self.mm)[start:end]
        if fmt != "B":
            v = v.cast(fmt)
        self._views.append(v)
        return v

    # -- header words ------------------------------------------------------

    def u32(self, off: int) -> int:
        return int(self.w32[off >> 2])

    def set32(self, off: int, v: int) -> None:
        self.w32[off >> 2] = v & 0xFFFFFFFF

    def u64(self, off: int) -> int:
        return int(self.w64[off >> 3])

    def set64(self, off: int, v: int) -> None:
        self.w64[off >> 3] = v & 0xFFFFFFFFFFFFFFFF

    # -- setup ---------------------------------------------------------------

    def _setup(self, size: int, typecode: str, may_init: bool, init: Optional[Init], check: Optional[Check]) -> None:
        # A queue's fields are checked with both of its locks held (the get
        # lock first), so that getters do not move head under the check.
        queue = self.kind in (KIND_QUEUE, KIND_JOINABLE)
        deadline = time.monotonic() + 2.0
        while True:
            if queue:
                self.lock_get()
            try:
                if self._setup_once(size, typecode, may_init, init, check):
                    return
            finally:
                if queue:
                    self.unlock_get()
            if time.monotonic() > deadline:
                raise LayoutError(f"shared object {self.name!r} was never initialized")
            time.sleep(0.005)

    def _setup_once(self, size: int, typecode: str, may_init: bool, init: Optional[Init],
                    check: Optional[Check]) -> bool:
        self.lock()
        try:
            if self.u32(0) == MAGIC:
                self._check(typecode, check)
                return True
            if may_init:
                if len(self.mm) < size:
                    raise LayoutError(f"{self.name!r} has {len(self.mm)} bytes, an empty object needs {size}")
                self.mm[4] = VERSION
                self.mm[5] = self.kind
                self.mm[6] = ord(typecode) if typecode else 0
                self.mm[7] = TYPECODES.get(typecode, 0)
                if init is not None:
                    init(self)
                self.set32(0, MAGIC)
                return True
            return False
        finally:
            self.unlock()

    def _check(self, typecode: str, check: Optional[Check]) -> None:
        if self.mm[4] != VERSION:
            raise LayoutError(f"{self.name!r} has layout version {self.mm[4]}, not {VERSION}")
        k = self.mm[5]
        ok = (k == self.kind or (self.kind == KIND_QUEUE and k == KIND_JOINABLE)
              or {k, self.kind} == {KIND_LOCK, KIND_RLOCK})
        if not ok:
            raise LayoutError(f"{self.name!r} holds a {KIND_NAMES.get(k, 'kind %d' % k)}, "
                              f"not a {KIND_NAMES[self.kind]}")
        have = chr(self.mm[6]) if self.mm[6] else ""
        if typecode and have != typecode and (have, typecode) not in _SAME:
            raise LayoutError(f"{self.name!r} has typecode {have!r}, not {typecode!r}")
        if self.u32(OFF_REDO_N) > REDO_MAX:
            raise LayoutError(f"{self.name!r}: bad redo count")
        if check is not None:
            check(self)

    # -- the internal lock and the redo log ---------------------------------

    def lock(self) -> None:
        """Take the internal lock (this handle's mutex, then the OFD lock on
        byte 0) and replay an interrupted commit of the header's redo log."""
        self.mu.acquire()
        try:
            if self.closed:
                raise ValueError(f"shared object {self.name!r} is closed")
            _fcntl(self.fd, _SETLKW, _WRLCK0)
        except BaseException:
            self.mu.release()
            raise
        w32 = self.w32
        if w32[OFF_REDO_N >> 2] and w32[0] == MAGIC:
            self._replay(OFF_REDO_N)

    def unlock(self) -> None:
        try:
            _fcntl(self.fd, _SETLK, _UNLCK0)
        finally:
            self.mu.release()

    def lock_get(self) -> None:
        """Take a queue's get lock (byte 2) and replay an interrupted commit
        of the get side's redo log. Lock order: the get lock before the
        internal lock, never the reverse."""
        self.gmu.acquire()
        try:
            if self.closed:
                raise ValueError(f"shared object {self.name!r} is closed")
            _fcntl(self.fd, _SETLKW, _WRLCKG)
        except BaseException:
            self.gmu.release()
            raise
        w32 = self.w32
        if len(w32) > OFF_GET_REDO_N >> 2 and w32[OFF_GET_REDO_N >> 2] and w32[0] == MAGIC and self.mm[5] in _QUEUES:
            self._replay(OFF_GET_REDO_N)

    def unlock_get(self) -> None:
        try:
            _fcntl(self.fd, _SETLK, _UNLCKG)
        finally:
            self.gmu.release()

    def _replay(self, log: int) -> None:
        n = self.u32(log)
        self._apply(log, n if n <= REDO_MAX else 0)
        self.set32(log, 0)

    def _apply(self, log: int, n: int) -> None:
        w32, w64 = self.w32, self.w64
        for i in range(n):
            e = log + 8 + 16 * i
            off, width, val = w32[e >> 2], w32[(e >> 2) + 1], w64[(e + 8) >> 3]
            if off < HEADER or off + width > len(self.mm) or width not in (4, 8) or off % width:
                continue
            if width == 4:
                w32[off >> 2] = val & 0xFFFFFFFF
            else:
                w64[off >> 3] = val

    # -- futex ----------------------------------------------------------------

    def sleep(self, off: int, val: int, deadline: Optional[float]) -> bool:
        """Sleep on the word at off while it holds val, at most WAIT_SLICE;
        False when deadline (time.monotonic()) has passed."""
        t = WAIT_SLICE
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            t = min(t, left)
        _futex.wait(self.base + off, val, t)
        return True

    def wake(self, off: int, n: int = 0x7FFFFFFF) -> None:
        _futex.wake(self.base + off, n)

    # -- lifetime -------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: drop the inherited descriptor (its OFD and
        flock are the parent's) and attach a handle of our own."""
        if self.closed or self.pid == os.getpid():
            return
        self.pid = os.getpid()
        self.mu = threading.Lock()
        self.gmu = threading.Lock()
        old = self.seg
        fd = old._fd
        old._fd = None
        if fd is not None:
            os.close(fd)  # not old.close(): its LOCK_EX test would be the parent's
        self.seg = _shm.open_segment(self.name, 0, kind=KIND_NAMES[self.kind], create=False,
                                     keep=self._open_args["keep"],
                                     allow_other_owner=self._open_args["allow_other_owner"])
        self.fd = self.seg.fileno()
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _Handle._finalize, self.seg, self.mm, self._views, self._word)

    @staticmethod
    def _finalize(seg: _shm.Segment, mm: mmap.mmap, views: List[Any], word: Optional[_futex.Word]) -> None:
        for v in views:
            v.release()
        views.clear()
        if word is not None:
            word.release()
        try:
            mm.close()
        finally:
            seg.close()

    def _release(self) -> None:
        for v in getattr(self, "_views", []):
            v.release()
        w = getattr(self, "_word", None)
        if w is not None:
            w.release()
        mm = getattr(self, "mm", None)
        if mm is not None:
            mm.close()
        self.seg.close()

    def close(self) -> None:
        # Both mutexes (get lock's first, the lock order), so that a get or
        # put in another thread finishes before the mapping goes.
        with self.gmu, self.mu:
            if self.closed:
                return
            self.closed = True
        _live.discard(self)
        self._finalizer()


class _UserLock:
    """The lock on byte 1 of a segment, shared by Lock, RLock and the lock of
    a Value or Array. Robust: a holder that dies releases it (SPEC 10.8)."""

    def __init__(self, h: _Handle) -> None:
        self.h = h
        self.mu = threading.Lock()
        self.pid = os.getpid()
        self.held = False

    def _forked(self) -> None:
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.mu = threading.Lock()
            self.held = False

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        self._forked()
        h = self.h
        deadline = None
        if block and timeout is not None:
            deadline = time.monotonic() + max(timeout, 0.0)
            if not self.mu.acquire(True, max(timeout, 0.0)):
                return False
        elif not self.mu.acquire(block):
            return False
        try:
            if h.closed:
                raise ValueError(f"shared object {h.name!r} is closed")
            fd = h.seg.fileno()
            if block and deadline is None:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, _WRLCK[LOCK_USER])
            else:
                while True:
                    try:
                        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _WRLCK[LOCK_USER])
                        break
                    except (BlockingIOError, PermissionError):
                        pass
                    if not block or not h.sleep(OFF_HOLDER, h.u32(OFF_HOLDER), deadline):
                        self.mu.release()
                        return False
        except BaseException:
            self.mu.release()
            raise
        h.set32(OFF_HOLDER, os.getpid())
        self.held = True
        return True

    def release(self) -> None:
        self._forked()
        if not self.held:
            raise ValueError("semaphore or lock released too many times")
        h = self.h
        self.held = False
        h.set32(OFF_HOLDER, 0)
        try:
            fcntl.fcntl(h.seg.fileno(), fcntl.F_OFD_SETLK, _UNLCK[LOCK_USER])
            h.wake(OFF_HOLDER)
        finally:
            self.mu.release()


class Lock:
    """multiprocessing.Lock, named: Lock(name='l') in every process that
    shares it. A lock whose holder dies is released (the next acquire gets
    it), not left locked as multiprocessing's is. The holder is this handle:
    release() from a process that did not acquire raises ValueError."""

    _kind = KIND_LOCK

    def __init__(self, *, name: Optional[str] = None, keep: bool = False) -> None:
        self._h = _Handle(name, self._kind, VALUE_OFF + 8, keep=keep)
        self._ul = _UserLock(self._h)

    @property
    def name(self) -> str:
        return self._h.name

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        return self._ul.acquire(block, timeout)

    def release(self) -> None:
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

    def __init__(self, *, name: Optional[str] = None, keep: bool = False,
                 _ul: Optional[_UserLock] = None) -> None:
        if _ul is None:
            super().__init__(name=name, keep=keep)
        else:
            self._h, self._ul = _ul.h, _ul
        self._owner: Optional[int] = None
        self._count = 0
        self._pid = os.getpid()

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
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

    _VALUE = 64
    _WAITERS = 68

    def __init__(self, value: int = 1, *, name: Optional[str] = None, keep: bool = False) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        if value > 0x7FFFFFFF:
            raise OverflowError("semaphore initial value too large")

        def init(h: _Handle) -> None:
            h.set32(self._VALUE, value)

        self._h = _Handle(name, KIND_SEMAPHORE, VALUE_OFF + 8, init=init, keep=keep)

    @property
    def name(self) -> str:
        return self._h.name

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        h = self._h
        deadline = None if timeout is None or not block else time.monotonic() + max(timeout, 0.0)
        while True:
            h.lock()
            try:
                v = h.u32(self._VALUE)
                if v > 0:
                    h.set32(self._VALUE, v - 1)
                    return True
                if not block:
                    return False
                h.set32(self._WAITERS, h.u32(self._WAITERS) + 1)
            finally:
                h.unlock()
            try:
                ok = h.sleep(self._VALUE, 0, deadline)
            finally:
                h.lock()
                try:
                    n = h.u32(self._WAITERS)
                    if n:
                        h.set32(self._WAITERS, n - 1)
                finally:
                    h.unlock()
            if not ok:
                return False

    def release(self) -> None:
        h = self._h
        h.lock()
        try:
            v = h.u32(self._VALUE)
            if v >= 0x7FFFFFFF:
                raise ValueError("semaphore or lock released too many times")
            h.set32(self._VALUE, v + 1)
            waiters = h.u32(self._WAITERS)
        finally:
            h.unlock()
        if waiters:
            h.wake(self._VALUE, 1)

    def get_value(self) -> int:
        return self._h.u32(self._VALUE)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        """Release this handle; the last one removes the semaphore."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen_sem, (self.name,))

    def __repr__(self) -> str:
        return f"<Semaphore(value={self.get_value()}, name={self.name!r})>"


def _reopen_sem(name: str) -> "Semaphore":
    return Semaphore(0, name=name)  # attaching keeps the count


def _check_typecode(typecode: str) -> int:
    if not isinstance(typecode, str) or typecode not in TYPECODES:
        raise TypeError(f"typecode must be one of {' '.join(TYPECODES)}, not {typecode!r}")
    return TYPECODES[typecode]


Number = Union[int, float]


class Value:
    """multiprocessing.Value(typecode, value), named. .value reads and writes
    under the object's lock as multiprocessing's synchronized Value does;
    get_lock() returns that lock (an RLock) for read-modify-write steps:
    ``with v.get_lock(): v.value += 1``. Attaching keeps the current value.
    As with ctypes, an integer out of the typecode's range wraps
    (Value('b', 200).value == -56) and float typecodes take ints."""

    def __init__(self, typecode: str, value: Number = 0, *, name: Optional[str] = None,
                 keep: bool = False, lock: bool = True) -> None:
        size = _check_typecode(typecode)

        def init(h: _Handle) -> None:
            v = h.view(VALUE_OFF, VALUE_OFF + size, typecode)
            v[0] = _wrap(typecode, value)

        self._h = _Handle(name, KIND_VALUE, VALUE_OFF + 8, typecode, init=init, keep=keep)
        self._typecode = chr(self._h.mm[6])
        self._item = self._h.view(VALUE_OFF, VALUE_OFF + size, self._typecode)
        self._lock = RLock(_ul=_UserLock(self._h))

    @property
    def name(self) -> str:
        return self._h.name

    @property
    def value(self) -> Number:
        with self._lock:
            return self._item[0]  # type: ignore[no-any-return]

    @value.setter
    def value(self, v: Number) -> None:
        v = _wrap(self._typecode, v)
        with self._lock:
            self._item[0] = v

    def get_lock(self) -> RLock:
        return self._lock

    def get_obj(self) -> "Value":
        return self

    def close(self) -> None:
        """Release this handle; the last one removes the value."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen_value, (self._typecode, self.name))

    def __repr__(self) -> str:
        return f"<Value({self._typecode!r}, {self.value!r}, name={self.name!r})>"


class Array:
    """multiprocessing.Array(typecode, size_or_initializer), named: indexing,
    slicing, len(), iteration, get_lock(). Each access takes the lock, as
    multiprocessing's synchronized Array does. Attaching keeps the items; the
    length must match."""

    def __init__(self, typecode: str, size_or_initializer: Union[int, Sequence[Number]], *,
                 name: Optional[str] = None, keep: bool = False, lock: bool = True) -> None:
        size = _check_typecode(typecode)
        init_items: Optional[Sequence[Number]] = None
        if isinstance(size_or_initializer, int):
            n = size_or_initializer
        else:
            init_items = list(size_or_initializer)
            n = len(init_items)
        if n < 0:
            raise ValueError(f"negative array length {n}")
        self._n = n

        def init(h: _Handle) -> None:
            h.set64(VALUE_OFF, n)
            if init_items:
                v = h.view(VALUE_OFF + 8, VALUE_OFF + 8 + n * size, typecode)
                v[:] = _pack_seq(typecode, init_items)

        def check(h: _Handle) -> None:
            got = h.u64(VALUE_OFF)
            if got != n:
                raise LayoutError(f"{h.name!r} has {got} items, not {n}")
            if VALUE_OFF + 8 + got * size > len(h.mm):
                raise LayoutError(f"{h.name!r}: {got} items do not fit")

        self._h = _Handle(name, KIND_ARRAY, VALUE_OFF + 8 + n * size, typecode, init=init, check=check, keep=keep)
        self._typecode = chr(self._h.mm[6])
        self._items = self._h.view(VALUE_OFF + 8, VALUE_OFF + 8 + n * size, self._typecode)
        self._lock = RLock(_ul=_UserLock(self._h))

    @property
    def name(self) -> str:
        return self._h.name

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Number: ...
    @overload
    def __getitem__(self, i: slice) -> List[Number]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[Number, List[Number]]:
        with self._lock:
            if isinstance(i, slice):
                return self._items[i].tolist()  # type: ignore[no-any-return]
            return self._items[i]  # type: ignore[no-any-return]

    @overload
    def __setitem__(self, i: int, v: Number) -> None: ...
    @overload
    def __setitem__(self, i: slice, v: Sequence[Number]) -> None: ...

    def __setitem__(self, i: Union[int, slice], v: Union[Number, Sequence[Number]]) -> None:
        with self._lock:
            if isinstance(i, slice):
                if isinstance(v, (int, float)):
                    raise TypeError("can only assign a sequence to a slice")
                self._items[i] = _pack_seq(self._typecode, v)
            else:
                self._items[i] = _wrap(self._typecode, v)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Number]:
        return iter(self[:])

    def get_lock(self) -> RLock:
        return self._lock

    def get_obj(self) -> "Array":
        return self

    def close(self) -> None:
        """Release this handle; the last one removes the array."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen_array, (self._typecode, self._n, self.name))

    def __repr__(self) -> str:
        return f"<Array({self._typecode!r}, {self[:]!r}, name={self.name!r})>"


def _reopen_value(typecode: str, name: str) -> Value:
    return Value(typecode, 0, name=name)  # attaching keeps the value


def _reopen_array(typecode: str, n: int, name: str) -> Array:
    return Array(typecode, n, name=name)


def _pack_seq(typecode: str, items: Sequence[Number]) -> Any:
    # native sizes ("l" is C long, 8 bytes), as the segment's items; "="
    # would pack l/L in 4 bytes and the assignment would fail
    v: Any = memoryview(struct.pack(f"@{len(items)}{typecode}", *[_wrap(typecode, x) for x in items]))
    return v.cast(typecode)


_FLOATS = ("f", "d")


def _wrap(typecode: str, v: Number) -> Number:
    """What ctypes stores for v: integers wrap modulo 2**bits (ctypes does no
    overflow check: Value('b', 200).value == -56, as with multiprocessing);
    float typecodes take ints (and bools) too. A float for an integer
    typecode raises TypeError, as ctypes does."""
    if typecode in _FLOATS:
        return float(v)
    bits = TYPECODES[typecode] * 8
    x = operator.index(v) & ((1 << bits) - 1)  # type: ignore[arg-type]
    if typecode.islower() and x >> (bits - 1):
        x -= 1 << bits
    return x
