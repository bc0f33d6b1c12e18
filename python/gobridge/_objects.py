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

Nothing another process wrote is trusted: a creator writes the whole header
before the name exists, so an opener never writes to a segment it did not
make; every field an operation reads is read once and checked; and every
operation checks, after taking its lock, that the segment still has the
size it was mapped with, so that a segment truncated by another process
raises SegmentTruncatedError instead of killing the interpreter with SIGBUS
(a truncation in the microseconds of one operation still can: SPEC 10.2).
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

__all__ = ["Value", "Array", "Semaphore", "Lock", "RLock", "TYPECODES", "LayoutError", "NotReadyError",
           "SegmentTruncatedError", "ClosedError"]

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
READY_WAIT = 2.0  # an opener waits this long for a marked segment's magic (SPEC 10.1)
MAX_SEGMENT = 1 << 40
Q_RING, MIN_CAP = 256, 64
# the fields a commit may change, by log: (offset, width) (SPEC 10.5)
_PUT_FIELDS = {(88, 8), (96, 8)}  # tail, put_seq
_UNFIN_FIELD = (128, 4)  # a joinable queue's unfinished
_GET_FIELDS = {(80, 8), (104, 8)}  # head, get_seq

KIND_QUEUE, KIND_JOINABLE, KIND_VALUE, KIND_ARRAY, KIND_SEMAPHORE, KIND_LOCK, KIND_RLOCK = range(1, 8)
_QUEUES = (KIND_QUEUE, KIND_JOINABLE)
KIND_NAMES = {
    KIND_QUEUE: "queue", KIND_JOINABLE: "joinable_queue", KIND_VALUE: "value", KIND_ARRAY: "array",
    KIND_SEMAPHORE: "semaphore", KIND_LOCK: "lock", KIND_RLOCK: "rlock",
}
_KIND_CODES = {v: k for k, v in KIND_NAMES.items()}

#: typecode -> item size in bytes (native, little-endian; l/L are C long, 8 bytes on Linux)
TYPECODES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8, "f": 4, "d": 8}
_SAME = {("l", "q"), ("q", "l"), ("L", "Q"), ("Q", "L")}

_FLOCK = struct.Struct("hhqqi4x")  # struct flock on LP64 Linux


def _flock(typ: int, off: int) -> bytes:
    return _FLOCK.pack(typ, os.SEEK_SET, off, 1, 0)


_WRLCK = [_flock(fcntl.F_WRLCK, i) for i in range(3)]
_UNLCK = [_flock(fcntl.F_UNLCK, i) for i in range(3)]


_fcntl = fcntl.fcntl
_lseek = os.lseek
_SEEK_END = os.SEEK_END
_monotonic = time.monotonic
_SETLKW, _SETLK = fcntl.F_OFD_SETLKW, fcntl.F_OFD_SETLK
_WRLCK0, _UNLCK0 = _WRLCK[LOCK_INTERNAL], _UNLCK[LOCK_INTERNAL]
_WRLCKG, _UNLCKG = _WRLCK[LOCK_GET], _UNLCK[LOCK_GET]
_POLL_MIN, _POLL_MAX = 5e-6, 1e-3  # lock polling under a deadline: first wait, longest wait


class LayoutError(ValueError):
    """The segment is not a valid gobridge shared object (no magic, another
    version, too small for its kind, fields out of range), or holds another
    kind of object, typecode or length than asked for. An opener raises it
    without writing to the segment; an operation that reads an impossible
    state raises it and changes nothing."""


class NotReadyError(LayoutError):
    """The segment carries the kind mark of the object asked for but never
    got its header (its creator, of an older version, died while making it);
    `gobridge shm gc` removes it once nobody holds it."""


class SegmentTruncatedError(LayoutError, OSError):
    """Another process truncated the object's segment under this handle's
    mapping: touching it would kill the process with SIGBUS. The handle is
    broken (every later call raises this); close it. A LayoutError and an
    OSError (Go: ErrFault)."""


class ClosedError(ValueError, OSError):
    """The handle was closed. A ValueError, as multiprocessing's Queue.put and
    get raise after close, and an OSError, as its empty() does."""


_live: "weakref.WeakSet[_Handle]" = weakref.WeakSet()


def _after_fork() -> None:
    for h in list(_live):
        h.after_fork()


os.register_at_fork(after_in_child=_after_fork)


def _auto_name() -> str:
    return f"gbmp-{os.getpid()}-{os.urandom(6).hex()}"


def _fits(want: int, have: int) -> bool:
    """Whether a handle of kind want may open a segment holding kind have."""
    return (have == want or (want == KIND_QUEUE and have == KIND_JOINABLE)
            or {have, want} == {KIND_LOCK, KIND_RLOCK})


def _min_size(kind: int) -> int:
    return Q_RING + MIN_CAP if kind in _QUEUES else VALUE_OFF + 8


def _poll_lock(fd: int, lk: bytes, deadline: float) -> bool:
    """Take an OFD lock by F_OFD_SETLK tries and sleeps (5 us doubling to
    1 ms, never past deadline); False when deadline passes (SPEC 10.5)."""
    d = _POLL_MIN
    while True:
        try:
            _fcntl(fd, _SETLK, lk)
            return True
        except (BlockingIOError, PermissionError):
            pass
        left = deadline - _monotonic()
        if left <= 0:
            return False
        time.sleep(min(d, left))
        d = min(d * 2, _POLL_MAX)


Init = Callable[["_Handle"], None]
Check = Callable[["_Handle"], None]


class _Handle:
    """One handle on a named shared object: segment, mapping, header views."""

    def __init__(self, name: Optional[str], kind: int, size: int, typecode: str = "", *,
                 init: Optional[Init] = None, check: Optional[Check] = None,
                 create: bool = True, attach: bool = True, keep: bool = False,
                 mode: int = _shm.DEFAULT_MODE, allow_other_owner: bool = False) -> None:
        self.name = name if name is not None else _auto_name()
        self.kind = kind  # the kind asked for; the header's once attached
        self._open_args = {"keep": keep, "allow_other_owner": allow_other_owner}
        self.mu = threading.Lock()
        self.gmu = threading.Lock()  # held while this handle holds a queue's get lock
        self.closed = False
        self.broken = False  # the segment was truncated under the mapping
        self._views: List[Any] = []
        self._word: Optional[_futex.Word] = None
        self.mm: mmap.mmap = None  # type: ignore[assignment]
        self.size = 0
        self.typecode = typecode  # the segment's once attached (read once, checked)

        def make(fd: int) -> None:
            # A new segment, invisible to other processes: the whole header,
            # the magic last, before the name is published (SPEC 10.1).
            self._unmap()
            self._map(fd, size)
            mm = self.mm
            mm[4] = VERSION
            mm[5] = kind
            mm[6] = ord(typecode) if typecode else 0
            mm[7] = TYPECODES.get(typecode, 0)
            if init is not None:
                init(self)
            self.set32(0, MAGIC)

        seg = None
        for _ in range(10):
            if attach:
                try:
                    # keep is set only once the segment is known to be ours
                    seg = _shm.open_segment(self.name, 0, kind=KIND_NAMES[kind], create=False,
                                            allow_other_owner=allow_other_owner)
                except FileNotFoundError:
                    if not create:
                        raise
                else:
                    try:
                        self._attach(seg, typecode, check)
                        if keep:
                            try:
                                seg.set_keep()
                            except OSError:
                                pass  # no user xattrs: kept by this handle only, as before
                    except BaseException:
                        self._unmap()
                        seg.abandon()  # refused: leave it as it was, even as its last handle
                        raise
                    break
            try:
                seg = _shm.open_segment(self.name, size, kind=KIND_NAMES[kind], attach=False,
                                        keep=keep, mode=mode, init=make)
                break
            except FileExistsError:
                self._unmap()
                if not attach:
                    raise
            except BaseException:
                self._unmap()
                raise
        if seg is None:
            raise OSError(f"shared object {self.name!r}: gave up after create/unlink races")
        self.seg = seg
        self.fd = seg.fileno()
        self.pid = os.getpid()
        _live.add(self)
        self._finalizer = weakref.finalize(self, _Handle._finalize, self.seg, self.mm, self._views, self._word)

    def _map(self, fd: int, n: int) -> None:
        self.mm = mmap.mmap(fd, n)
        self.size = n
        hl = min(n, 256) & ~7
        self.w32 = self.view(0, hl, "I")
        self.w64 = self.view(0, hl, "Q")
        self._word = _futex.Word(self.mm, 0)
        self.base = self._word.addr

    def _unmap(self) -> None:
        for v in self._views:
            v.release()
        self._views.clear()
        if self._word is not None:
            self._word.release()
            self._word = None
        if self.mm is not None:
            self.mm.close()
            self.mm = None  # type: ignore[assignment]

    def _attach(self, seg: _shm.Segment, typecode: str, check: Optional[Check]) -> None:
        """Map an existing segment and check it holds an object this handle
        may use, before taking any lock and without writing to it: the kind
        mark first (a name in use by another kind, an shm: listener say, is
        refused at once), then the magic, the header and the size the kind
        needs, then check."""
        mark = seg.kind()
        if mark and not _fits(self.kind, _KIND_CODES.get(mark, 0)):
            raise LayoutError(f"{self.name!r} holds a {mark}, not a {KIND_NAMES[self.kind]}")
        deadline = _monotonic() + READY_WAIT
        fd = seg.fileno()
        while True:
            n = seg.size()
            if n > MAX_SEGMENT:
                raise LayoutError(f"{self.name!r} has {n} bytes")
            if n >= HEADER:
                self._map(fd, n)
                if _lseek(fd, 0, _SEEK_END) < n:
                    raise SegmentTruncatedError(f"shared object {self.name!r}: its segment was truncated")
                m = self.u32(0)
                if m == MAGIC:
                    self._check(typecode, check)
                    return
                self._unmap()
                if m != 0:
                    raise LayoutError(f"{self.name!r} is not a gobridge shared object (magic {m:#x}), "
                                      "left untouched")
            if not mark:
                raise LayoutError(f"{self.name!r} is not a gobridge shared object ({n} bytes, no magic, "
                                  "no kind mark), left untouched")
            if _monotonic() > deadline:
                raise NotReadyError(f"shared object {self.name!r} (marked {mark}) was never given its header")
            time.sleep(0.005)

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

    # -- checks ----------------------------------------------------------------

    def _check(self, typecode: str, check: Optional[Check]) -> None:
        v, k, tc, isz = bytes(self.mm[4:8])  # each header byte read once
        if v != VERSION:
            raise LayoutError(f"{self.name!r} has layout version {v}, not {VERSION}")
        if not _fits(self.kind, k):
            raise LayoutError(f"{self.name!r} holds a {KIND_NAMES.get(k, 'kind %d' % k)}, "
                              f"not a {KIND_NAMES[self.kind]}")
        if typecode:
            have = chr(tc) if tc else ""
            if have != typecode and (have, typecode) not in _SAME:
                raise LayoutError(f"{self.name!r} has typecode {have!r}, not {typecode!r}")
            if isz != TYPECODES[typecode]:
                raise LayoutError(f"{self.name!r}: item size {isz} for typecode {have!r}")
            self.typecode = have
        need = _min_size(k)
        if self.size < need:
            raise LayoutError(f"{self.name!r} has {self.size} bytes, a {KIND_NAMES[k]} needs at least {need}")
        self.kind = k
        if check is not None:
            check(self)

    def check(self) -> None:
        """Raise unless the handle is usable: ClosedError after close,
        SegmentTruncatedError when the segment is shorter than the mapping
        (then the handle is broken). One lseek (0.15 us)."""
        if self.closed:
            raise ClosedError(f"shared object {self.name!r} is closed")
        if self.broken or _lseek(self.fd, 0, _SEEK_END) < self.size:
            self.broken = True
            raise SegmentTruncatedError(f"shared object {self.name!r}: its segment was truncated under the "
                                        "mapping; this handle is broken, close it")

    # -- the internal lock and the redo log ---------------------------------

    def lock(self, deadline: Optional[float] = None) -> bool:
        """Take the internal lock (this handle's mutex, then the OFD lock on
        byte 0), check the segment's size and replay an interrupted commit
        of the header's redo log. With a deadline (time.monotonic()) the
        wait is bounded: False when it passes; without one it blocks in the
        kernel (SPEC 10.5)."""
        # The hot path, written out here and in lock_get.
        mu = self.mu
        if not mu.acquire(False) and not self._wait_mutex(mu, deadline):
            return False
        try:
            if self.closed:
                raise ClosedError(f"shared object {self.name!r} is closed")
            fd = self.fd
            if deadline is None:
                _fcntl(fd, _SETLKW, _WRLCK0)
            else:
                try:
                    _fcntl(fd, _SETLK, _WRLCK0)
                except (BlockingIOError, PermissionError):
                    if not _poll_lock(fd, _WRLCK0, deadline):
                        mu.release()
                        return False
            if self.broken or _lseek(fd, 0, _SEEK_END) < self.size:
                self._truncated(fd, _UNLCK0)
        except BaseException:
            mu.release()
            raise
        if self.w32[OFF_REDO_N >> 2]:
            self._replay(OFF_REDO_N)
        return True

    def unlock(self) -> None:
        try:
            _fcntl(self.fd, _SETLK, _UNLCK0)
        finally:
            self.mu.release()

    def try_lock(self) -> bool:
        """lock() if it is free at once (to take back a sleeper's count
        after the caller's deadline passed)."""
        try:
            return self.lock(0.0)
        except (ClosedError, SegmentTruncatedError):
            return False

    def lock_get(self, deadline: Optional[float] = None) -> bool:
        """Take a queue's get lock (byte 2) and replay an interrupted commit
        of the get side's redo log, as lock() does. Lock order: the get lock
        before the internal lock, never the reverse."""
        mu = self.gmu
        if not mu.acquire(False) and not self._wait_mutex(mu, deadline):
            return False
        try:
            if self.closed:
                raise ClosedError(f"shared object {self.name!r} is closed")
            fd = self.fd
            if deadline is None:
                _fcntl(fd, _SETLKW, _WRLCKG)
            else:
                try:
                    _fcntl(fd, _SETLK, _WRLCKG)
                except (BlockingIOError, PermissionError):
                    if not _poll_lock(fd, _WRLCKG, deadline):
                        mu.release()
                        return False
            if self.broken or _lseek(fd, 0, _SEEK_END) < self.size:
                self._truncated(fd, _UNLCKG)
        except BaseException:
            mu.release()
            raise
        if self.w32[OFF_GET_REDO_N >> 2]:
            self._replay(OFF_GET_REDO_N)
        return True

    def unlock_get(self) -> None:
        try:
            _fcntl(self.fd, _SETLK, _UNLCKG)
        finally:
            self.gmu.release()

    def try_lock_get(self) -> bool:
        try:
            return self.lock_get(0.0)
        except (ClosedError, SegmentTruncatedError):
            return False

    @staticmethod
    def _wait_mutex(mu: Any, deadline: Optional[float]) -> bool:
        if deadline is None:
            return bool(mu.acquire())
        return bool(mu.acquire(True, max(deadline - _monotonic(), 0.0)))

    def _truncated(self, fd: int, unlck: bytes) -> None:
        """The segment shrank under the mapping: drop the OFD lock just
        taken, mark the handle broken and raise."""
        _fcntl(fd, _SETLK, unlck)
        self.broken = True
        self.check()  # raises SegmentTruncatedError

    def _replay(self, log: int) -> None:
        """Finish a commit interrupted after its commit point (SPEC 10.5):
        apply the entries that name a field this log's commits change, with
        its width, skip any other (nothing else is ever written), clear the
        count. A count above REDO_MAX drops the log."""
        w32, w64 = self.w32, self.w64
        n = w32[log >> 2]
        if n <= REDO_MAX and self.kind in _QUEUES:
            if log == OFF_REDO_N:
                allowed = _PUT_FIELDS | {_UNFIN_FIELD} if self.kind == KIND_JOINABLE else _PUT_FIELDS
            else:
                allowed = _GET_FIELDS
            for i in range(n):
                e = log + 8 + 16 * i
                off, width, val = w32[e >> 2], w32[(e >> 2) + 1], w64[(e + 8) >> 3]
                if (off, width) not in allowed:
                    continue
                if width == 4:
                    w32[off >> 2] = val & 0xFFFFFFFF
                else:
                    w64[off >> 3] = val
        w32[log >> 2] = 0

    # -- futex ----------------------------------------------------------------

    def sleep(self, off: int, val: int, deadline: Optional[float]) -> bool:
        """Sleep on the word at off while it holds val, at most WAIT_SLICE;
        False when deadline (time.monotonic()) has passed."""
        t = WAIT_SLICE
        if deadline is not None:
            left = deadline - _monotonic()
            if left <= 0:
                return False
            t = min(t, left)
        try:
            _futex.wait(self.base + off, val, t)
        except OSError as e:
            if e.errno == 14:  # EFAULT: the page is gone
                self.broken = True
                self.check()
            raise
        return True

    def wake(self, off: int, n: int = 0x7FFFFFFF) -> None:
        try:
            _futex.wake(self.base + off, n)
        except OSError:
            pass  # EFAULT after a truncation: the next check reports it

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
            deadline = _monotonic() + max(timeout, 0.0)
            if not self.mu.acquire(True, max(timeout, 0.0)):
                return False
        elif not self.mu.acquire(block):
            return False
        try:
            if h.closed or h.broken:
                h.check()  # raises
            fd = h.fd
            if block and deadline is None:
                _fcntl(fd, _SETLKW, _WRLCK[LOCK_USER])
            else:
                while True:
                    try:
                        _fcntl(fd, _SETLK, _WRLCK[LOCK_USER])
                        break
                    except (BlockingIOError, PermissionError):
                        pass
                    if not block:
                        self.mu.release()
                        return False
                    h.check()
                    if not h.sleep(OFF_HOLDER, h.u32(OFF_HOLDER), deadline):
                        self.mu.release()
                        return False
            try:
                h.check()
                h.set32(OFF_HOLDER, os.getpid())
            except BaseException:
                _fcntl(fd, _SETLK, _UNLCK[LOCK_USER])
                raise
        except BaseException:
            self.mu.release()
            raise
        self.held = True
        return True

    def release(self) -> None:
        self._forked()
        if not self.held:
            raise ValueError("semaphore or lock released too many times")
        h = self.h
        self.held = False
        try:
            if h.closed:
                raise ClosedError(f"shared object {h.name!r} is closed")  # close dropped the OFD lock
            try:
                h.check()
                h.set32(OFF_HOLDER, 0)
            finally:
                _fcntl(h.fd, _SETLK, _UNLCK[LOCK_USER])
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
    _MAX = 0x7FFFFFFF

    def __init__(self, value: int = 1, *, name: Optional[str] = None, keep: bool = False) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        if value > self._MAX:
            raise OverflowError("semaphore initial value too large")

        def init(h: _Handle) -> None:
            h.set32(self._VALUE, value)

        self._h = _Handle(name, KIND_SEMAPHORE, VALUE_OFF + 8, init=init, keep=keep)

    @property
    def name(self) -> str:
        return self._h.name

    def _bad(self, v: int) -> LayoutError:
        """The count (at 64, read once under the internal lock) is above
        SEM_VALUE_MAX: no process could have made it."""
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
                if v > self._MAX:
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
        h = self._h
        h.lock()
        try:
            v = h.w32[16]
            if v > self._MAX:
                raise self._bad(v)
            if v == self._MAX:
                raise ValueError("semaphore or lock released too many times")
            h.w32[16] = v + 1
            waiters = h.u32(self._WAITERS)
        finally:
            h.unlock()
        if waiters:
            h.wake(self._VALUE, 1)

    def get_value(self) -> int:
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
        return (_reopen_sem, (self.name,))

    def __repr__(self) -> str:
        try:
            value = str(self.get_value())
        except (ClosedError, SegmentTruncatedError):
            value = "unknown"
        return f"<Semaphore(value={value}, name={self.name!r})>"


def _reopen_sem(name: str) -> "Semaphore":
    return Semaphore(0, name=name)  # attaching keeps the count


def _check_typecode(typecode: str) -> int:
    if not isinstance(typecode, str) or typecode not in TYPECODES:
        raise TypeError(f"typecode must be one of {' '.join(TYPECODES)}, not {typecode!r}")
    return TYPECODES[typecode]


Number = Union[int, float]


def _enter_locked(self: Any) -> None:
    """Take the object's lock (an RLock) for one access. A fresh acquisition
    checked the segment's size already (_UserLock); a nested one (the caller
    holds get_lock()) checks it here."""
    lk = self._lock
    lk.acquire()
    if lk._count > 1:
        try:
            self._h.check()
        except BaseException:
            lk.release()
            raise


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
        self._typecode = self._h.typecode  # the segment's: l and q (L and Q) are interchangeable
        self._item = self._h.view(VALUE_OFF, VALUE_OFF + size, self._typecode)
        self._lock = RLock(_ul=_UserLock(self._h))

    @property
    def name(self) -> str:
        return self._h.name

    @property
    def value(self) -> Number:
        self._enter()
        try:
            return self._item[0]  # type: ignore[no-any-return]
        finally:
            self._lock.release()

    @value.setter
    def value(self, v: Number) -> None:
        v = _wrap(self._typecode, v)
        self._enter()
        try:
            self._item[0] = v
        finally:
            self._lock.release()

    _enter = _enter_locked

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
        try:
            value = repr(self.value)
        except (ClosedError, SegmentTruncatedError):
            value = "unknown"
        return f"<Value({self._typecode!r}, {value}, name={self.name!r})>"


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
            if VALUE_OFF + 8 + n * size > h.size:
                raise LayoutError(f"{h.name!r}: {n} items do not fit {h.size} bytes")

        self._h = _Handle(name, KIND_ARRAY, VALUE_OFF + 8 + n * size, typecode, init=init, check=check, keep=keep)
        self._typecode = self._h.typecode
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
        self._enter()
        try:
            if isinstance(i, slice):
                return self._items[i].tolist()  # type: ignore[no-any-return]
            return self._items[i]  # type: ignore[no-any-return]
        finally:
            self._lock.release()

    @overload
    def __setitem__(self, i: int, v: Number) -> None: ...
    @overload
    def __setitem__(self, i: slice, v: Sequence[Number]) -> None: ...

    def __setitem__(self, i: Union[int, slice], v: Union[Number, Sequence[Number]]) -> None:
        self._enter()
        try:
            if isinstance(i, slice):
                if isinstance(v, (int, float)):
                    raise TypeError("can only assign a sequence to a slice")
                self._items[i] = _pack_seq(self._typecode, v)
            else:
                self._items[i] = _wrap(self._typecode, v)  # type: ignore[arg-type]
        finally:
            self._lock.release()

    def __iter__(self) -> Iterator[Number]:
        return iter(self[:])

    _enter = _enter_locked

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
        try:
            items = repr(self[:])
        except (ClosedError, SegmentTruncatedError):
            items = "unknown"
        return f"<Array({self._typecode!r}, {items}, name={self.name!r})>"


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
