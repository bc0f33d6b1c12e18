"""``shm:NAME`` connections: framed messages over a pair of shared-memory rings.

The Python half of Go's bridge/shm_transport.go (wire/SPEC.md section 11).
A listener is a unix socket at ``/dev/shm/NAME``. A dialer connects, creates
the connection's memory as a sealed memfd (neither side can shrink or grow
it, so no access can fault), and passes it over the socket; the listener
checks it and replies. The socket then stays open as the connection's
control channel: its end of stream tells each side that the other is gone.
Frames are the same bytes as on a socket (SPEC 2), carried by the rings as a
byte stream, so a frame larger than a ring is streamed through it.

:class:`ShmTransport` is the rings' byte hooks under the one connection
class (gobridge._transport.base); :class:`ShmListener` and :func:`dial` the
handshake, which gobridge.connection's Listener and Client run for an
``shm:`` address. They return :class:`ShmConnection`, a
:class:`gobridge.Connection` over an ShmTransport (no ``fileno``). A connection that is dropped
without :meth:`ShmConnection.close` is closed when it is collected and at
exit; the memory goes back to the kernel with the last mapping, so nothing
is left in ``/dev/shm`` but, after a SIGKILL, a stale listener socket (the
next listener replaces it; ``gobridge shm gc`` removes it).
"""
from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import mmap as _mmap
import os
import selectors
import socket
import stat
import struct
import time
import weakref
from typing import Callable, Dict, List, Optional, Tuple, Union

from .._codec import DEFAULT_MAX_FRAME_SIZE
from .._errors import CorruptError, PeerGoneError
from .._internal import layout as L
from .._internal import shmseg as _shm
from .._internal.ring import Corrupt, PeerGone, Ring, Waiter, init_ctl
from .base import Connection
from .unix import connect_unix, listen_unix, unlink_if_same

__all__ = ["ShmTransport", "ShmConnection", "ShmListener", "listen", "dial"]

HDR_SIZE = L.CONN_HDR_SIZE
VERSION = L.CONN_VERSION
DEFAULT_RING = L.CONN_DEFAULT_RING
MIN_RING = L.CONN_MIN_RING
MAX_RING = L.CONN_MAX_RING
CONN_MAGIC = L.CONN_MAGIC
REQUEST = L.CONN_REQUEST  # dialer -> listener, with the memfd
ACCEPT = L.CONN_ACCEPT  # listener -> dialer
MAX_TAG = _shm.MAX_NAME_LEN - 21  # the v1 limit, kept
#: A dialer's request must arrive within this many seconds of its connect;
#: other dialers are served meanwhile (SPEC 11.3).
HANDSHAKE_TIMEOUT = L.CONN_HANDSHAKE_SECONDS
#: Connections in handshake at once; more wait in the socket's backlog.
BACKLOG = 64
_MAX_FDS = 8  # room for descriptors in a request (all are closed; one is used)

# connection header (byte offsets)
_C_VERSION = L.C_VERSION  # u32 version, u32 header size, u64 C, u32 dialer pid
_C_LISTENER_PID = L.C_LISTENER_PID
_C_RING0 = L.C_RING0
_C_RING1 = L.C_RING1
_HDR = struct.Struct("<IIQ")

_MFD_NOEXEC_SEAL = 0x0008  # Linux 6.3+; os has no name for it before Python 3.12
_TMPFS_MAGIC = 0x01021994
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW  # what a listener requires
_libc = ctypes.CDLL(None, use_errno=True)


def _check_name(name: str) -> None:
    _shm.validate_name(name)
    if len(name.encode()) > MAX_TAG:
        raise ValueError(f"gobridge: invalid address 'shm:{name}': an shm: name has at most {MAX_TAG} bytes")


def _fs_type(fd: int) -> int:
    """fstatfs(fd).f_type (the first field of struct statfs, a long)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs: 120 bytes on x86-64 and arm64
    if _libc.fstatfs(fd, buf) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(struct.unpack_from("l", buf)[0]) & 0xFFFFFFFF


def peer_gone(sock: socket.socket) -> bool:
    """Whether the control socket shows the peer's end closed (end of stream
    or an error). Nothing is sent on it in this version: a byte that arrives
    anyway is read and dropped."""
    for _ in range(16):
        try:
            if not sock.recv(64, socket.MSG_DONTWAIT):
                return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
    return False


def _watch(sock: socket.socket) -> Callable[[], None]:
    """A Waiter check for a connection: no reference to the connection, so
    that dropping it frees it at once (and its finalizer runs)."""

    def check() -> None:
        if sock.fileno() < 0:
            raise OSError("handle is closed")
        if peer_gone(sock):
            raise PeerGone

    return check


def _release(rin: Ring, rout: Ring, mm: _mmap.mmap, sock: socket.socket) -> None:
    """Close one end: mark both rings closed (the peer reads what was sent,
    then end of stream), unmap, close the control socket."""
    try:
        rout.close_write()
        rin.close_read()
    finally:
        rin.release()
        rout.release()
        mm.close()
        sock.close()


class ShmTransport:
    """The byte hooks of one end of an ``shm:`` connection: a pair of rings
    (gobridge._internal.ring) and the control socket whose end of stream
    tells that the peer is gone. gobridge._transport.base frames the bytes.

    Closed when collected (and at interpreter exit) if its connection was
    dropped without close, so that the peer sees end of stream and the
    memory and socket are released."""

    no_batching: Optional[str] = None
    #: No descriptor announces the ring's bytes, so reads may fill the
    #: connection's buffer (gobridge._transport.base).
    read_ahead = True

    def __init__(self, mm: _mmap.mmap, sock: socket.socket, r0: Ring, r1: Ring, dialer: bool, name: str) -> None:
        self._in, self._out = (r1, r0) if dialer else (r0, r1)
        self._sock = sock
        check = _watch(sock)
        self._rwaiter = Waiter(check)
        self._wwaiter = Waiter(check)
        self.name = name
        self._failed: Optional[str] = None
        self._finalizer = weakref.finalize(self, _release, self._in, self._out, mm, sock)

    def describe(self) -> str:
        return f"shm:{self.name}"

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "gobridge: an shm: connection has no file descriptor")

    def close(self) -> None:
        self._finalizer()

    def _fail(self, cause: Corrupt, direction: str) -> CorruptError:
        """End the connection after a protocol error (SPEC 11.4): the peer is
        told through both rings' closed flags and the control socket."""
        if self._failed is None:
            self._failed = f"gobridge: shm:{self.name} {direction} ring: the peer broke the ring protocol: {cause}"
            try:
                self._out.close_write()
                self._in.close_read()
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return CorruptError(errno.EPROTO, self._failed)

    def write(self, header: bytes, payload: Union[bytes, bytearray, memoryview]) -> None:
        """Write header and payload to the ring: a frame, or with an empty
        header a batch of them."""
        out = self._out
        if out.reader_closed():
            raise BrokenPipeError(errno.EPIPE, "gobridge: shm: peer closed its end")
        try:
            out.write_frame(header, payload if isinstance(payload, memoryview) else memoryview(payload), self._wwaiter)
        except PeerGone:
            raise PeerGoneError(errno.ECONNRESET, "gobridge: shm: peer process is gone") from None
        except Corrupt as e:
            raise self._fail(e, "send") from None

    def readinto(self, view: memoryview) -> int:
        """Copy what the ring holds (up to len(view)), waiting for a byte; 0
        once the peer closed its end and everything was read."""
        ring = self._in
        try:
            n = ring.wait_avail(1, self._rwaiter, True)
        except EOFError:
            return 0
        except PeerGone:
            raise PeerGoneError(errno.ECONNRESET, "gobridge: shm: peer process is gone") from None
        except Corrupt as e:
            raise self._fail(e, "receive") from None
        if n < len(view):
            view = view[:n]
            ring.read_into(view)
            return n
        ring.read_into(view)
        return len(view)

    def take_frame(self, limit: int) -> Optional[bytes]:
        """The base's fast path (see gobridge._transport.base.TakeFrame): a
        whole small frame straight out of the ring, one copy, one index store."""
        ring = self._in
        try:
            ring.wait_avail(4, self._rwaiter, True)
            return ring.take_frame(limit)
        except (EOFError, OSError):
            return None  # end of stream, or inside a frame: the buffered path says which
        except PeerGone:
            raise PeerGoneError(errno.ECONNRESET, "gobridge: shm: peer process is gone") from None
        except Corrupt as e:
            raise self._fail(e, "receive") from None

    def wait(self, timeout: Optional[float]) -> bool:
        """Whether bytes, end of stream, a dead peer or a broken ring can be
        read now; waits up to timeout seconds (None: forever)."""
        ring = self._in
        if ring.readable():
            return True
        if timeout is not None and timeout <= 0:
            return peer_gone(self._sock)
        w = self._rwaiter
        w.deadline = None if timeout is None else time.monotonic() + timeout
        try:
            ring.wait_avail(1, w, True)
        except TimeoutError:
            return False
        except (PeerGone, Corrupt, EOFError, OSError):
            return True
        finally:
            w.deadline = None
        return True


class ShmConnection(Connection):
    """One end of an ``shm:`` connection: a :class:`gobridge.Connection` over
    an :class:`ShmTransport` (no ``fileno``). Not thread-safe (one reader
    and one writer thread at most).

    :meth:`close` is the owner's job; a connection dropped without it is
    closed when it is collected (and at interpreter exit), so that its peer
    sees end of stream and its memory and socket are released."""

    __slots__ = ("name",)

    def __init__(self, mm: _mmap.mmap, sock: socket.socket, r0: Ring, r1: Ring, dialer: bool,
                 name: str, max_frame_size: int) -> None:  # noqa: D107
        self.name = name
        self._setup(ShmTransport(mm, sock, r0, r1, dialer, name), True, True, max_frame_size)

    def __repr__(self) -> str:
        return f"<ShmConnection shm:{self.name} {'closed' if self.closed else 'open'}>"

    def __reduce__(self) -> "tuple[Callable[..., object], tuple[object, ...]]":
        """Refused: see _reduce_shm_connection."""
        return _reduce_shm_connection(self)


def _reduce_shm_connection(conn: ShmConnection) -> "tuple[Callable[..., object], tuple[object, ...]]":
    """An shm: connection is not pickled (for multiprocessing children or
    otherwise): its rings have exactly one reader and one writer, which a
    copy in a child would break. TypeError, with what to do instead."""
    raise TypeError(
        f"gobridge: an shm: connection (shm:{conn.name}) cannot be pickled: its rings have one "
        "reader and one writer; pass the child the address and connect there, or use a unix: connection"
    )


def _register_reducers() -> None:
    from multiprocessing import reduction
    reduction.register(ShmConnection, _reduce_shm_connection)


_register_reducers()


# --- the connection's memory (SPEC 11.2, 11.3) ---------------------------------


def create_memory(name: str, cap: int = DEFAULT_RING, start: int = 0) -> Tuple[int, _mmap.mmap]:
    """A dialer's connection memory: a memfd of 4096 + 2*cap bytes, mode
    0600, sealed so that neither side can change its size, mapped,
    pre-faulted and initialized (magic last), both rings' indices at start.
    Returns the memfd and the mapping; the caller closes the memfd once it
    has been sent (the mapping keeps its own reference)."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    label = "gobridge-shm:" + name
    try:
        fd = os.memfd_create(label, flags | _MFD_NOEXEC_SEAL)
    except OSError as e:
        if e.errno != errno.EINVAL:  # before Linux 6.3
            raise
        fd = os.memfd_create(label, flags)
    try:
        size = HDR_SIZE + 2 * cap
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        mm = _mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise
    if hasattr(_mmap, "MADV_POPULATE_WRITE"):
        try:
            mm.madvise(_mmap.MADV_POPULATE_WRITE)
        except OSError:
            pass  # best effort: it only saves page faults
    init_ctl(mm, _C_RING0, start)
    init_ctl(mm, _C_RING1, start)
    _HDR.pack_into(mm, _C_VERSION, VERSION, HDR_SIZE, cap)
    struct.pack_into("<I", mm, L.C_DIALER_PID, os.getpid())
    mm[0:8] = CONN_MAGIC
    return fd, mm


class Refused(Exception):
    """Internal: a request the listener refuses (SPEC 11.3); the message says why."""


def map_memory(fd: int) -> Tuple[_mmap.mmap, int]:
    """Validate a dialer's memfd and map it (SPEC 11.3): a regular file on
    tmpfs (not hugetlbfs, whose exhausted pool would fault), owned by us,
    sealed against shrinking and growing, whose size and header agree. The
    seals are checked before the size, so that the size cannot change after
    it is read; every header field is read once. Returns the mapping and C."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"not a regular file (mode {st.st_mode:#o})")
        if st.st_uid != os.geteuid():
            raise Refused(f"owned by uid {st.st_uid}, not {os.geteuid()}")
        fs = _fs_type(fd)
        if fs != _TMPFS_MAGIC:
            raise Refused(f"not a memfd on tmpfs (file system {fs:#x})")
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as e:
        raise Refused(str(e)) from None
    if seals & _SEALS != _SEALS:
        raise Refused(f"not sealed against shrinking and growing (seals {seals:#x})")
    size = os.fstat(fd).st_size
    if not HDR_SIZE + 2 * MIN_RING <= size <= HDR_SIZE + 2 * MAX_RING:
        raise Refused(f"size {size} out of range")
    try:
        mm = _mmap.mmap(fd, size)
    except (OSError, ValueError) as e:
        raise Refused(f"mmap: {e}") from None
    magic = bytes(mm[0:8])
    version, hdr, cap = _HDR.unpack_from(mm, _C_VERSION)
    bad = None
    if magic != CONN_MAGIC:
        bad = f"magic {magic!r}, want {CONN_MAGIC!r}"
    elif version != VERSION:
        bad = f"layout version {version}, want {VERSION}"
    elif hdr != HDR_SIZE:
        bad = f"header size {hdr}, want {HDR_SIZE}"
    elif not MIN_RING <= cap <= MAX_RING or cap & (cap - 1):
        bad = f"ring size {cap} is not a power of two in [{MIN_RING}, {MAX_RING}]"
    elif size != HDR_SIZE + 2 * cap:
        bad = f"size {size}, want {HDR_SIZE + 2 * cap} for rings of {cap} bytes"
    if bad is not None:
        mm.close()
        raise Refused(bad)
    return mm, int(cap)


def open_rings(mm: _mmap.mmap, cap: int) -> Tuple[Ring, Ring]:
    """The two rings of a connection's memory (C validated by the caller):
    ring 0 carries dialer -> listener, ring 1 listener -> dialer."""
    r0 = Ring(mm, _C_RING0, HDR_SIZE, cap)
    try:
        r1 = Ring(mm, _C_RING1, HDR_SIZE + cap, cap)
    except BaseException:
        r0.release()
        raise
    return r0, r1


def _recv_request(sock: socket.socket) -> Tuple[bytes, List[int], int, Optional[str]]:
    """One recvmsg of a request: its bytes, every descriptor it carried, the
    message flags, and a reason to refuse the control data (or None)."""
    msg, anc, flags, _ = sock.recvmsg(16, socket.CMSG_SPACE(_MAX_FDS * 4), socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
    fds: List[int] = []
    bad = None
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(data[:len(data) - len(data) % a.itemsize])
            fds.extend(a)
        else:
            bad = f"control message of level {level}, type {typ}"
    return msg, fds, flags, bad


# --- listener and dialer (SPEC 11.3) ------------------------------------------


class ShmListener:
    """What ``gobridge.Listener("shm:NAME")`` runs: accepts shared-memory connections.

    Listens on a unix socket at ``/dev/shm/NAME``, made as SPEC 5.1 makes
    unix sockets: a live listener's name gives ``OSError(errno.EADDRINUSE)``,
    a dead one's stale socket is replaced, any other file there is left
    alone. :meth:`accept` runs the handshakes of every dialer that has
    connected side by side, each with its own deadline (HANDSHAKE_TIMEOUT),
    so a dialer that connects and sends nothing delays nobody. :meth:`close`
    removes the socket.
    """

    def __init__(self, name: str, backlog: int, max_frame_size: int) -> None:  # noqa: D107
        _check_name(name)
        self._sock: Optional[socket.socket] = None
        self._max_frame_size = max_frame_size
        self._name = name
        self._path = _shm.path(self._name)
        self._pending: Dict[socket.socket, float] = {}  # handshakes under way, and their deadlines
        self._sel = selectors.DefaultSelector()
        self._full = False  # BACKLOG handshakes pending: the listening socket is not watched
        self.refused = 0  # requests refused (for tests)
        self.last_refusal: Optional[str] = None
        try:
            self._sock, self._ident = listen_unix(self._path, max(backlog, BACKLOG))
            self._sock.setblocking(False)
            self._sel.register(self._sock, selectors.EVENT_READ)
        except BaseException:
            self._sel.close()
            if self._sock is not None:
                self._sock.close()
            raise

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "gobridge: an shm: listener has no file descriptor")

    def accept(self, timeout: Optional[float] = None) -> Tuple[Connection, Optional[str]]:
        """Wait for a client (up to timeout seconds) and return the connection."""
        if self._sock is None:
            raise OSError("listener is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            wait = None if deadline is None else max(0.0, deadline - now)
            if self._pending:
                first = min(self._pending.values())
                wait = max(0.0, first - now) if wait is None else min(wait, max(0.0, first - now))
            for key, _ in self._sel.select(wait):
                if key.fileobj is self._sock:
                    self._accept_sockets()
                else:
                    conn = self._handshake(key.fileobj)  # type: ignore[arg-type]
                    if conn is not None:
                        return conn, None
            now = time.monotonic()
            for s, dl in list(self._pending.items()):
                if dl <= now:
                    self._drop(s, "no request within the handshake deadline")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(errno.ETIMEDOUT, "gobridge: accept timed out")

    def _accept_sockets(self) -> None:
        assert self._sock is not None
        while len(self._pending) < BACKLOG:
            try:
                s, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of descriptors, say: the connection waits in the backlog
            s.setblocking(False)
            self._pending[s] = time.monotonic() + HANDSHAKE_TIMEOUT
            self._sel.register(s, selectors.EVENT_READ)
        # Full: stop watching the listening socket (it would stay readable,
        # and select would return at once) until a handshake ends.
        self._sel.unregister(self._sock)
        self._full = True

    def _settled(self, s: socket.socket) -> None:
        """s leaves the pending handshakes."""
        self._pending.pop(s, None)
        try:
            self._sel.unregister(s)
        except (KeyError, ValueError):
            pass
        if self._full and self._sock is not None:
            self._sel.register(self._sock, selectors.EVENT_READ)
            self._full = False

    def _drop(self, s: socket.socket, why: str) -> None:
        self._settled(s)
        s.close()
        self.refused += 1
        self.last_refusal = why

    def _handshake(self, s: socket.socket) -> Optional[ShmConnection]:
        """Read a request, validate its memory, reply (SPEC 11.3). None: not
        complete yet, or refused (the socket and every descriptor closed)."""
        try:
            msg, fds, flags, bad = _recv_request(s)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            self._drop(s, f"reading the request: {e}")
            return None
        mm: Optional[_mmap.mmap] = None
        try:
            if flags & socket.MSG_CTRUNC:
                raise Refused(f"control data truncated (more than {_MAX_FDS} descriptors)")
            if msg != REQUEST:
                raise Refused(f"request is {msg!r}, want {REQUEST!r}")
            if bad is not None:
                raise Refused(bad)
            if len(fds) != 1:
                raise Refused(f"{len(fds)} descriptors, want exactly one")
            mm, cap = map_memory(fds[0])
            try:
                r0, r1 = open_rings(mm, cap)
            except Corrupt as e:
                raise Refused(str(e)) from None
            if not (r0.idle() and r1.idle()):
                r0.release()
                r1.release()
                raise Refused("the rings are not empty and open")
            struct.pack_into("<I", mm, _C_LISTENER_PID, os.getpid())
            try:
                s.send(ACCEPT)
            except OSError as e:
                r0.release()
                r1.release()
                raise Refused(f"replying: {e}") from None
        except Exception as e:  # noqa: BLE001 - Refused, or anything a hostile dialer could cause
            if mm is not None:
                try:
                    mm.close()
                except BufferError:
                    pass  # a view still exported: the mapping goes with the last one
            self._drop(s, str(e) if isinstance(e, Refused) else f"{type(e).__name__}: {e}")
            return None
        finally:
            for fd in fds:
                os.close(fd)
        self._settled(s)
        return ShmConnection(mm, s, r0, r1, False, self._name, self._max_frame_size)

    def close(self) -> None:
        """Stop listening, drop the handshakes under way and remove the
        socket file if it is still ours. Idempotent."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        for s in list(self._pending):
            self._pending.pop(s, None)
            s.close()
        self._sel.close()
        try:
            unlink_if_same(self._path, self._ident)
        finally:
            sock.close()


def dial(name: str, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
         timeout: Optional[float] = None, start: int = 0) -> ShmConnection:
    """Connect to the listener at ``shm:name``. start is where both rings'
    indices begin (tests of the 2**64 wrap start just below it)."""
    _check_name(name)
    addr = f"shm:{name}"
    deadline = None if timeout is None else time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mm: Optional[_mmap.mmap] = None
    try:
        try:
            connect_unix(sock, _shm.path(name), deadline, addr)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, f"gobridge: no listener at {addr!r}") from None
        except ConnectionRefusedError:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"gobridge: no listener at {addr!r}") from None
        _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != os.geteuid():
            raise PermissionError(errno.EACCES, f"gobridge: the listener at {addr!r} runs as uid {uid}, not {os.geteuid()}")
        fd, mm = create_memory(name, DEFAULT_RING, start)
        try:
            socket.send_fds(sock, [REQUEST], [fd])
        except (BrokenPipeError, ConnectionResetError):
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"gobridge: the listener at {addr!r} refused the connection") from None
        finally:
            os.close(fd)  # in flight, the request holds the file; the mapping holds its memory
        reply = _recv_exactly(sock, len(ACCEPT), deadline, addr)
        if reply != ACCEPT:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"gobridge: the listener at {addr!r} refused the connection")
        sock.setblocking(False)
        r0, r1 = open_rings(mm, DEFAULT_RING)
        return ShmConnection(mm, sock, r0, r1, True, name, max_frame_size)
    except BaseException:
        if mm is not None:
            mm.close()
        sock.close()
        raise


def _recv_exactly(sock: socket.socket, n: int, deadline: Optional[float], addr: str) -> bytes:
    """n bytes, or fewer at end of stream; TimeoutError at the deadline."""
    got = b""
    while len(got) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(errno.ETIMEDOUT, f"gobridge: timed out connecting to {addr!r}")
            sock.settimeout(left)
        try:
            b = sock.recv(n - len(got))
        except socket.timeout:
            raise TimeoutError(errno.ETIMEDOUT, f"gobridge: timed out connecting to {addr!r}") from None
        except ConnectionResetError:
            break  # closed before it read the request: refused, as end of stream is
        if not b:
            break
        got += b
    return got


listen = ShmListener


def client(name: str, address: str, max_frame_size: int, timeout: Optional[float]) -> Connection:
    """``gobridge.Client("shm:NAME")``: connect to a shared-memory listener."""
    return dial(name, max_frame_size, timeout)
