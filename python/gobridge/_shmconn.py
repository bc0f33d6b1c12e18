"""``shm:NAME`` connections: framed messages over a pair of shared-memory rings.

The Python half of Go's bridge/shm_transport.go (wire/SPEC.md section 11).
A listener owns the rendezvous segment ``NAME``; each connection is a segment
``NAME.<n>`` that the dialer creates and the listener attaches. Frames are the
same bytes as on a socket (SPEC 2), carried by the rings as a byte stream, so
a frame larger than a ring is streamed through it.

Use :class:`gobridge.Listener` and :func:`gobridge.Client` with an ``shm:``
address; they return :class:`ShmConnection`, which has the surface of
:class:`gobridge.Connection` (no ``fileno``: there is no descriptor).
"""
from __future__ import annotations

import errno
import fcntl
import mmap as _mmap
import os
import struct
import time
from typing import Any, Optional, Union

from . import _futex, _shm
from ._codec import DEFAULT_MAX_FRAME_SIZE, ReadableBuffer, _decode, encode
from ._errors import BufferTooShort, FrameTooLargeError, PeerGoneError, ProtocolError
from ._ring import SLICE, STEP, PeerGone, Ring, Waiter, fence
from ._unix import Listener, check_options
from .connection import Connection, _check_max_frame_size, payload_view

__all__ = ["ShmConnection", "ShmListener", "PeerGoneError", "client", "dial", "KIND_CONN", "KIND_LISTEN"]

KIND_CONN = "conn"
KIND_LISTEN = "conn-listen"

HDR_SIZE = 4096
VERSION = 1
DEFAULT_RING = 1 << 20
CONN_MAGIC = b"GBSHMCN1"
LISTEN_MAGIC = b"GBSHMLS1"
MAX_TAG = _shm.MAX_NAME_LEN - 21

# connection header (byte offsets)
_C_CAP = 16
_C_DIALER_PID = 24
_C_LISTENER_PID = 28
_C_STATE = 32
_C_RING0 = 64
_C_RING1 = 256
_LOCK_LISTENER = 0
_LOCK_DIALER = 1
# rendezvous header
_L_PID = 16
_L_CLOSED = 20
_L_NEXT = 24
_L_SLOT = 32
_L_POSTED = 40
_L_TAKEN = 44
_LOCK_LSN = 0
_LOCK_DMU = 1

_HEADER = struct.Struct("!i")
_HEADER64 = struct.Struct("!Q")
_MAX_SHORT = 0x7FFFFFFF
_FLOCK = struct.Struct("hhqqi4x")  # struct flock on x86-64 and arm64
_SMALL = 64 * 1024

WritableBuffer = Union[bytearray, memoryview]


# --- byte locks (SPEC 11.1): who is alive -------------------------------------


def _ofd(fd: int, cmd: int, typ: int, off: int) -> int:
    res = fcntl.fcntl(fd, cmd, _FLOCK.pack(typ, os.SEEK_SET, off, 1, 0))
    return int(_FLOCK.unpack(res)[0])


def lock_byte(fd: int, off: int) -> bool:
    """Take the OFD write lock on byte off; False if another handle holds it."""
    try:
        _ofd(fd, fcntl.F_OFD_SETLK, fcntl.F_WRLCK, off)
    except (BlockingIOError, PermissionError):
        return False
    return True


def unlock_byte(fd: int, off: int) -> None:
    _ofd(fd, fcntl.F_OFD_SETLK, fcntl.F_UNLCK, off)


def byte_locked(fd: int, off: int) -> bool:
    """Whether another handle holds a lock on byte off."""
    try:
        return _ofd(fd, fcntl.F_OFD_GETLK, fcntl.F_WRLCK, off) != fcntl.F_UNLCK
    except OSError:
        return True  # when in doubt, do not declare the peer dead


class _Mapped:
    """A segment handle and its read-write mapping."""

    def __init__(self, seg: _shm.Segment, populate: bool = False) -> None:
        self.seg = seg
        try:
            self.mm = _mmap.mmap(seg.fileno(), seg.size())
        except BaseException:
            seg.close()
            raise
        if populate and hasattr(_mmap, "MADV_POPULATE_WRITE"):
            try:
                self.mm.madvise(_mmap.MADV_POPULATE_WRITE)
            except OSError:
                pass
        self.u32 = memoryview(self.mm)[:HDR_SIZE].cast("I")
        self.u64 = memoryview(self.mm)[:HDR_SIZE].cast("Q")

    def alive(self, off: int) -> bool:
        return byte_locked(self.seg.fileno(), off)

    def close(self) -> None:
        self.u32.release()
        self.u64.release()
        self.mm.close()
        self.seg.close()


def _check_name(name: str) -> None:
    _shm.validate_name(name)
    if len(name.encode()) > MAX_TAG:
        raise ValueError(f"gobridge: invalid address 'shm:{name}': an shm: name has at most {MAX_TAG} bytes")


def _kind(name: str) -> Optional[str]:
    """The segment's kind mark; None if it does not exist."""
    try:
        return os.getxattr(_shm.path(name), _shm.XATTR_KIND, follow_symlinks=False).decode()
    except FileNotFoundError:
        return None
    except OSError:
        return "" if os.path.lexists(_shm.path(name)) else None


class ShmConnection(Connection):
    """One end of an ``shm:`` connection: a :class:`gobridge.Connection` whose
    bytes travel through shared-memory rings instead of a descriptor.
    Not thread-safe (one reader and one writer thread at most)."""

    def __init__(self, m: _Mapped, dialer: bool, max_frame_size: int) -> None:  # noqa: D107
        # Connection.__init__ is not called: there is no descriptor.
        self._handle = None
        self._m: Optional[_Mapped] = m
        cap = int(m.u64[_C_CAP // 8])
        r0 = Ring(m.mm, _C_RING0, HDR_SIZE, cap)
        r1 = Ring(m.mm, _C_RING1, HDR_SIZE + cap, cap)
        self._in, self._out = (r1, r0) if dialer else (r0, r1)
        self._peer_lock = _LOCK_LISTENER if dialer else _LOCK_DIALER
        self._max_frame_size = max_frame_size
        self._rerror: Optional[ProtocolError] = None
        self._rwaiter = Waiter(self._check)
        self._wwaiter = Waiter(self._check)
        self._wbuf = None
        self._wcap = 0
        self.name = m.seg.name

    # --- state ---------------------------------------------------------------

    def _check(self) -> None:
        m = self._m
        if m is None:
            raise OSError("handle is closed")
        if not m.alive(self._peer_lock):
            raise PeerGone

    @property
    def closed(self) -> bool:
        return self._m is None

    @property
    def readable(self) -> bool:
        return self._rerror is None

    @property
    def writable(self) -> bool:
        return True

    @property
    def max_frame_size(self) -> int:
        return self._max_frame_size

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "gobridge: an shm: connection has no file descriptor")

    def close(self) -> None:
        """Close this end: the peer reads what was sent (set_write_buffer's
        batch is written first), then EOFError. Idempotent."""
        m = self._m
        if m is None:
            return
        try:
            if self._wbuf:
                self.flush()
        finally:
            self._m = None
            self._out.close_write()
            self._in.close_read()
            self._in.release()
            self._out.release()
            m.close()

    def __del__(self) -> None:
        pass  # close() is the owner's job; a dropped mapping is freed by the GC

    def __enter__(self) -> ShmConnection:
        return self

    def __repr__(self) -> str:
        return f"<ShmConnection shm:{self.name} {'closed' if self._m is None else 'open'}>"

    def _live(self) -> None:
        if self._m is None:
            raise OSError("handle is closed")

    # --- sending -------------------------------------------------------------

    def send(self, obj: object) -> None:
        """Send obj encoded as one msgpack object (SPEC section 3)."""
        self._send(memoryview(encode(obj)))

    def send_bytes(self, buf: ReadableBuffer, offset: int = 0, size: Optional[int] = None) -> None:
        """Send the bytes of a bytes-like object as one message."""
        self._send(payload_view(buf, offset, size))

    def _check_writable(self) -> int:
        self._live()
        return -1

    def _write_batch(self, view: memoryview) -> None:
        self._live()
        self._write(b"", view)

    def _send(self, payload: memoryview) -> None:
        self._live()
        n = len(payload)
        if n > self._max_frame_size:
            raise FrameTooLargeError(
                f"bad message length: {n} bytes is more than max_frame_size {self._max_frame_size}"
            )
        header = _HEADER.pack(n) if n <= _MAX_SHORT else _HEADER.pack(-1) + _HEADER64.pack(n)
        if self._wbuf is not None and self._batched(header, payload):
            return
        self._write(header, payload)

    def _write(self, header: bytes, payload: memoryview) -> None:
        """Write header and payload to the ring: a frame, or with an empty
        header a batch of them."""
        if self._out.reader_closed():
            raise BrokenPipeError(errno.EPIPE, "gobridge: shm: peer closed its end")
        self._wwaiter.deadline = None
        try:
            self._out.write_frame(header, payload, self._wwaiter)
        except PeerGone:
            raise PeerGoneError(errno.ECONNRESET, "gobridge: shm: peer process is gone") from None

    # --- receiving -----------------------------------------------------------

    def _not_readable(self) -> OSError:
        if self._m is None:
            return OSError("handle is closed")
        assert self._rerror is not None
        return type(self._rerror)(*self._rerror.args)

    def _framing_error(self, err: ProtocolError) -> ProtocolError:
        self._rerror = err
        return err

    def _read_header(self, limit: int) -> int:
        ring, w = self._in, self._rwaiter
        ring.wait_avail(4, w, True)
        n = int(_HEADER.unpack(ring.read_bytes(4))[0])
        if n < 0:
            if n != -1:
                raise self._framing_error(ProtocolError(f"bad message header: negative length {n}"))
            ring.wait_avail(8, w, False)
            n = int(_HEADER64.unpack(ring.read_bytes(8))[0])
            if n <= _MAX_SHORT:
                raise self._framing_error(
                    ProtocolError(f"bad message header: non-canonical 8-byte length {n}"))
        if n > limit:
            raise self._framing_error(
                FrameTooLargeError(f"bad message length: header claims {n} bytes, the limit is {limit}"))
        return n

    def _recv_into(self, dst: memoryview) -> None:
        """Fill dst from the ring, streaming when it is larger than the ring."""
        ring, w = self._in, self._rwaiter
        n = len(dst)
        got = 0
        step = max(1, min(STEP, ring.cap // 4))  # copy out while the writer copies in
        while got < n:
            avail = ring.wait_avail(min(n - got, step), w, False)
            k = min(avail, n - got)
            ring.read_into(dst[got:got + k])
            got += k

    def _recv_frame(self, limit: int, dest: Optional[memoryview] = None) -> "tuple[int, Union[bytes, bytearray, None]]":
        """Receive one frame: into dest when it fits (payload None), else as bytes."""
        if self._m is None or self._rerror is not None:
            raise self._not_readable()
        if self._wbuf:
            self.flush()
        self._rwaiter.deadline = None
        ring = self._in
        try:
            if dest is None:  # a small frame already whole: one index store
                ring.wait_avail(4, self._rwaiter, True)
                b = ring.take_frame(limit)
                if b is not None:
                    return len(b), b
            n = self._read_header(limit)
            if dest is not None and n <= len(dest):
                self._recv_into(dest[:n])
                return n, None
            if n <= self._in.cap:
                self._in.wait_avail(n, self._rwaiter, False)
                return n, self._in.read_bytes(n)
            out = bytearray(n)
            self._recv_into(memoryview(out))
            return n, out
        except PeerGone:
            raise PeerGoneError(errno.ECONNRESET, "gobridge: shm: peer process is gone") from None
        except ProtocolError:
            raise
        except OSError as e:
            if e.args == ("got end of file during message",):
                raise self._framing_error(ProtocolError("got end of file during message")) from None
            raise

    def recv(self) -> Any:
        """Receive one message and decode it (SPEC section 3).

        EOFError after the peer closed; :class:`PeerGoneError` after it died.
        """
        payload = self._recv_frame(self._max_frame_size)[1]
        assert payload is not None
        return _decode(payload)

    def recv_bytes(self, maxlength: Optional[int] = None) -> bytes:
        """Receive one message's bytes, undecoded."""
        limit = self._max_frame_size
        if maxlength is not None:
            if maxlength < 0:
                raise ValueError("negative maxlength")
            limit = min(limit, maxlength)
        payload = self._recv_frame(limit)[1]
        assert payload is not None
        return payload if isinstance(payload, bytes) else bytes(payload)

    def recv_bytes_into(self, buf: WritableBuffer, offset: int = 0) -> int:
        """Receive one message's bytes straight from the ring into buf at byte
        offset (no intermediate object). Returns the message size; raises
        BufferTooShort (holding the whole message, which is consumed) if it
        does not fit.
        """
        with memoryview(buf) as mv:
            dest = mv if mv.itemsize == 1 and mv.ndim == 1 else mv.cast("B")
            if offset < 0:
                raise ValueError("negative offset")
            if offset > dest.nbytes:
                raise ValueError("offset too large")
            n, payload = self._recv_frame(self._max_frame_size, dest[offset:])
            if payload is not None:
                raise BufferTooShort(bytes(payload))
            return n

    def poll(self, timeout: Optional[float] = 0.0) -> bool:
        """Whether a message (whole or partial), end of stream or a dead peer
        can be read now; waits up to timeout seconds (None: forever)."""
        if self._m is None or self._rerror is not None:
            raise self._not_readable()
        if self._wbuf:
            self.flush()
        ring = self._in
        if ring.readable():
            return True
        if timeout is not None and timeout <= 0:
            m = self._m
            return not m.alive(self._peer_lock)
        w = self._rwaiter
        w.deadline = None if timeout is None else time.monotonic() + timeout
        try:
            ring.wait_avail(1, w, True)
        except TimeoutError:
            return False
        except (PeerGone, EOFError, OSError):
            return True
        finally:
            w.deadline = None
        return True


# --- listener and dialer (SPEC 11.3) ------------------------------------------


class ShmListenerCore:
    """The rendezvous segment of ``shm:NAME``; accept() returns connections."""

    def __init__(self, name: str, max_frame_size: int) -> None:
        _check_name(name)
        kind = _kind(name)
        if kind is not None and kind != KIND_LISTEN:
            raise OSError(errno.EADDRINUSE, f"address in use: a segment of kind {kind!r} is named {name!r}")
        try:
            seg = _shm.open_segment(name, HDR_SIZE, kind=KIND_LISTEN)
        except _shm.TooSmallError:
            raise OSError(errno.EADDRINUSE, f"address in use: shm:{name}") from None
        if not lock_byte(seg.fileno(), _LOCK_LSN):
            seg.close()
            raise OSError(errno.EADDRINUSE, f"address in use: a listener holds shm:{name}")
        self._m: Optional[_Mapped] = _Mapped(seg)
        m = self._m
        nxt = m.u64[_L_NEXT // 8] if bytes(m.mm[0:8]) == LISTEN_MAGIC else 0
        m.mm[0:64] = bytes(64)
        m.u64[_L_NEXT // 8] = nxt
        m.u32[2] = VERSION
        m.u32[_L_PID // 4] = os.getpid()
        m.mm[0:8] = LISTEN_MAGIC
        self.name = name
        self._max_frame_size = max_frame_size
        self._posted = _futex.Word(m.mm, _L_POSTED)
        self._taken = _futex.Word(m.mm, _L_TAKEN)

    def accept(self, timeout: Optional[float] = None) -> ShmConnection:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            m = self._m
            if m is None:
                raise OSError("listener is closed")
            slot = _L_SLOT // 8
            if not self._posted.wait_until(lambda: m.u64[slot] != 0, 0, deadline):
                raise TimeoutError(errno.ETIMEDOUT, "gobridge: accept timed out")
            n = int(m.u64[slot])
            m.u64[slot] = 0
            self._taken.signal()
            conn = self._take(n)
            if conn is not None:
                return conn

    def _take(self, n: int) -> Optional[ShmConnection]:
        name = f"{self.name}.{n}"
        if _kind(name) != KIND_CONN:
            return None
        try:
            seg = _shm.open_segment(name, HDR_SIZE, kind=KIND_CONN, create=False)
        except OSError:
            return None
        m = _Mapped(seg)
        cap = int(m.u64[_C_CAP // 8])
        if (bytes(m.mm[0:8]) != CONN_MAGIC or cap <= 0 or cap & (cap - 1) or cap > 1 << 30
                or len(m.mm) < HDR_SIZE + 2 * cap or not lock_byte(seg.fileno(), _LOCK_LISTENER)
                or not m.alive(_LOCK_DIALER)):
            m.close()
            return None
        conn = ShmConnection(m, False, self._max_frame_size)
        m.u32[_C_LISTENER_PID // 4] = os.getpid()
        state = _futex.Word(m.mm, _C_STATE)
        state.signal()  # 0 -> 1: accepted
        state.release()
        return conn

    def close(self) -> None:
        m = self._m
        if m is None:
            return
        self._m = None
        m.u32[_L_CLOSED // 4] = 1
        self._posted.wake()
        self._taken.signal()
        self._posted.release()
        self._taken.release()
        m.close()


def dial(name: str, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
         timeout: Optional[float] = None) -> ShmConnection:
    """Connect to the listener at ``shm:name``."""
    _check_name(name)
    addr = f"shm:{name}"
    deadline = None if timeout is None else time.monotonic() + timeout
    kind = _kind(name)
    if kind is None:
        raise FileNotFoundError(errno.ENOENT, f"gobridge: no listener at {addr!r}")
    if kind != KIND_LISTEN:
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"gobridge: no listener at {addr!r}")
    try:
        seg = _shm.open_segment(name, HDR_SIZE, kind=KIND_LISTEN, create=False)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"gobridge: no listener at {addr!r}") from None
    lm = _Mapped(seg)
    taken = _futex.Word(lm.mm, _L_TAKEN)
    posted = _futex.Word(lm.mm, _L_POSTED)
    cm: Optional[_Mapped] = None
    conn: Optional[ShmConnection] = None
    try:
        def listener_up() -> None:
            if lm.u32[_L_CLOSED // 4] or not lm.alive(_LOCK_LSN):
                raise ConnectionRefusedError(errno.ECONNREFUSED, f"gobridge: no listener at {addr!r}")

        def left() -> Optional[float]:
            if deadline is None:
                return None
            t = deadline - time.monotonic()
            if t <= 0:
                raise TimeoutError(errno.ETIMEDOUT, f"gobridge: timed out connecting to {addr!r}")
            return t

        if bytes(lm.mm[0:8]) != LISTEN_MAGIC:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"gobridge: no listener at {addr!r}")
        listener_up()
        delay = 0.0001
        while not lock_byte(seg.fileno(), _LOCK_DMU):
            listener_up()
            t = left()
            time.sleep(delay if t is None else min(delay, t))
            delay = min(delay * 2, 0.01)
        slot = _L_SLOT // 8
        while lm.u64[slot] != 0:
            listener_up()
            t = left()
            taken.wait(taken.load(), SLICE / 4 if t is None else min(t, SLICE / 4))
        cm, n = _create_conn(lm, name)
        conn = ShmConnection(cm, True, max_frame_size)
        lm.u64[slot] = n
        fence()
        posted.signal()
        state = _futex.Word(cm.mm, _C_STATE)
        try:
            spins = 0
            while state.load() == 0:
                listener_up()
                t = left()
                s = 0.00005 if spins < 20 else SLICE / 4
                spins += 1
                state.wait(0, s if t is None else min(t, s))
        finally:
            state.release()
        return conn
    except BaseException:
        # Withdraw the request if the listener has not taken it; if it has,
        # it finds our lock gone once we close, and drops the connection.
        if conn is not None:
            if lm.u64[_L_SLOT // 8] == _conn_number(conn):
                lm.u64[_L_SLOT // 8] = 0
            conn.close()
        raise
    finally:
        taken.release()
        posted.release()
        lm.close()


def _conn_number(conn: ShmConnection) -> int:
    return int(conn.name.rsplit(".", 1)[1])


def _create_conn(lm: _Mapped, name: str) -> "tuple[_Mapped, int]":
    size = HDR_SIZE + 2 * DEFAULT_RING
    nxt = _L_NEXT // 8
    for _ in range(1000):
        n = int(lm.u64[nxt]) + 1
        lm.u64[nxt] = n
        try:
            seg = _shm.open_segment(f"{name}.{n}", size, kind=KIND_CONN, attach=False)
        except FileExistsError:
            continue  # a stale connection of a dead process: gc removes it
        if not lock_byte(seg.fileno(), _LOCK_DIALER):
            seg.close()
            raise OSError(errno.EAGAIN, f"gobridge: shm:{name}.{n} is locked")
        m = _Mapped(seg, populate=True)
        m.u32[2] = VERSION
        m.u32[3] = HDR_SIZE
        m.u64[_C_CAP // 8] = DEFAULT_RING
        m.u32[_C_DIALER_PID // 4] = os.getpid()
        m.mm[0:8] = CONN_MAGIC
        return m, n
    raise OSError(errno.EEXIST, f"gobridge: no free connection name under shm:{name}")


class ShmListener(Listener):
    """``gobridge.Listener("shm:NAME")``: accepts shared-memory connections.

    Owns the rendezvous segment ``NAME`` (kind ``conn-listen``); a live
    listener's name gives ``OSError(errno.EADDRINUSE)``, a dead one's is taken
    over. :meth:`close` removes it.
    """

    def __init__(  # noqa: D107
        self,
        address: "Union[str, os.PathLike[str]]",
        family: Optional[str] = None,
        backlog: int = 1,
        authkey: Optional[bytes] = None,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        check_options(family, authkey, "shm")
        self._address = os.fspath(address)
        self._last_accepted: Optional[str] = None
        self._core: Optional[ShmListenerCore] = ShmListenerCore(
            self._address[len("shm:"):], _check_max_frame_size(max_frame_size))

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "gobridge: an shm: listener has no file descriptor")

    def accept(self, timeout: Optional[float] = None) -> Connection:
        """Wait for a client (up to timeout seconds) and return the connection."""
        core = self._core
        if core is None:
            raise OSError("listener is closed")
        conn = core.accept(timeout)
        self._last_accepted = self._address
        return conn

    def close(self) -> None:
        """Stop listening and remove the rendezvous segment. Idempotent."""
        core, self._core = self._core, None
        if core is not None:
            core.close()

    def __repr__(self) -> str:
        return f"<Listener {self._address!r} {'closed' if self._core is None else 'listening'}>"


def client(
    address: str,
    family: Optional[str] = None,
    authkey: Optional[bytes] = None,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    timeout: Optional[float] = None,
) -> Connection:
    """``gobridge.Client("shm:NAME")``: connect to a shared-memory listener."""
    check_options(family, authkey, "shm")
    return dial(address[len("shm:"):], _check_max_frame_size(max_frame_size), timeout)
