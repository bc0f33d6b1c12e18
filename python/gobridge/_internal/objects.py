"""Named shared objects: the segment handle every one is built on (wire/SPEC.md
section 10), its header, locks and errors. The objects themselves are
gobridge.synchronize (Lock, RLock, Semaphore), gobridge.sharedctypes (Value,
Array) and gobridge.queues (Queue, JoinableQueue). Go's bridge/mp opens the
same names.

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

import errno
import fcntl
import mmap
import os
import threading
import time
import weakref
from typing import Any, Callable, List, Optional

from . import futex as _futex
from . import ofdlock
from . import shmseg as _shm
from .layout import (BAR_SIZE, BSEM_SIZE, CV_SIZE, KIND_ARRAY, KIND_BARRIER, KIND_BOUNDED_SEMAPHORE, KIND_CONDITION,
                     KIND_EVENT, KIND_JOINABLE, KIND_LOCK, KIND_NAMES, KIND_QUEUE, KIND_RLOCK, KIND_SEMAPHORE,
                     KIND_VALUE, LOCK_GET, LOCK_INTERNAL, LOCK_USER, OBJ_HEADER, OBJ_MAGIC, OBJ_REDO_MAX, OBJ_VERSION, O_HOLDER,
                     O_REDO_N, Q_GET_REDO_N, Q_MIN_CAP, Q_RING)
from .layout import VALUE_OFF as VALUE_OFF

__all__ = ["TYPECODES", "LayoutError", "NotReadyError", "SegmentTruncatedError", "ClosedError"]

MAGIC = OBJ_MAGIC
VERSION = OBJ_VERSION
HEADER = OBJ_HEADER
REDO_MAX = OBJ_REDO_MAX
OFF_REDO_N = O_REDO_N  # the header's redo log: count at 8, entries (u32 offset, u32 width, u64 value) from 16
OFF_HOLDER = O_HOLDER
OFF_GET_REDO_N = Q_GET_REDO_N  # a queue's get-side redo log: count at 136, entries at 144
WAIT_SLICE = 0.05  # every futex sleep is bounded by this (SPEC 10.6)
READY_WAIT = 2.0  # an opener waits this long for a marked segment's magic (SPEC 10.1)
MAX_SEGMENT = 1 << 40
MIN_CAP = Q_MIN_CAP
# the fields a commit may change, by log: (offset, width) (SPEC 10.5)
_PUT_FIELDS = {(88, 8), (96, 8)}  # tail, put_seq
_UNFIN_FIELD = (128, 4)  # a joinable queue's unfinished
_GET_FIELDS = {(80, 8), (104, 8)}  # head, get_seq

_QUEUES = (KIND_QUEUE, KIND_JOINABLE)
_KIND_CODES = {v: k for k, v in KIND_NAMES.items()}

#: typecode -> item size in bytes (native, little-endian; l/L are C long, 8 bytes on Linux; c is
#: one byte, ctypes.c_char)
TYPECODES = {"c": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8, "f": 4, "d": 8}
_SAME = {("l", "q"), ("q", "l"), ("L", "Q"), ("Q", "L")}

_WRLCK = [ofdlock.pack(fcntl.F_WRLCK, i) for i in range(3)]
_UNLCK = [ofdlock.pack(fcntl.F_UNLCK, i) for i in range(3)]


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
    if kind == KIND_BOUNDED_SEMAPHORE:
        return BSEM_SIZE
    if kind == KIND_CONDITION:
        return CV_SIZE
    if kind == KIND_BARRIER:
        return BAR_SIZE
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
                except FileNotFoundError as e:
                    if not create:
                        # create=False (Go's WithAttachOnly): a typo must not
                        # make an empty object; say which name is missing
                        raise FileNotFoundError(errno.ENOENT, "No such shared object (create=False)",
                                                self.name) from e
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
        return self._take(self.mu, _WRLCK0, _UNLCK0, OFF_REDO_N, deadline)

    def _take(self, mu: threading.Lock, wrlck: bytes, unlck: bytes, redo: int, deadline: Optional[float]) -> bool:
        """lock() and lock_get(): mu, then the OFD lock wrlck (released with
        unlck on failure), the size check, then the replay of the redo log
        at offset redo."""
        if not mu.acquire(False) and not self._wait_mutex(mu, deadline):
            return False
        try:
            if self.closed:
                raise ClosedError(f"shared object {self.name!r} is closed")
            fd = self.fd
            if deadline is None:
                _fcntl(fd, _SETLKW, wrlck)
            else:
                try:
                    _fcntl(fd, _SETLK, wrlck)
                except (BlockingIOError, PermissionError):
                    if not _poll_lock(fd, wrlck, deadline):
                        mu.release()
                        return False
            if self.broken or _lseek(fd, 0, _SEEK_END) < self.size:
                self._truncated(fd, unlck)
        except BaseException:
            mu.release()
            raise
        if self.w32[redo >> 2]:
            self._replay(redo)
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
        return self._take(self.gmu, _WRLCKG, _UNLCKG, OFF_GET_REDO_N, deadline)

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
