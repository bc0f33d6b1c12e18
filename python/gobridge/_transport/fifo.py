"""The fifo: scheme and plain named pipes (wire/SPEC.md section 6.6).

Connections over FIFOs are fd connections (gobridge._transport.fd); this
module opens the FIFOs and runs the rendezvous.

Two uses of named pipes, as in Go's bridge package:

* Connections: ``Listener("fifo:/p")`` makes the rendezvous FIFO ``/p``;
  ``Client("fifo:/p")`` makes a private pair ``/p.<pid>.<hex>.up`` and
  ``.down``, asks for it with one atomic request frame written to ``/p``,
  and removes the pair's names once both ends are open. Each connection is
  duplex and private, like a socket's. The listener scans ``/p`` for
  requests, skipping anything else (:class:`_RequestScanner`), and runs
  their handshakes concurrently, each under a deadline
  (:class:`_PendingHandshakes`), so that no client holds up another.
* Plain named pipes: :func:`open_fifo` opens an existing FIFO
  (:func:`mkfifo`, ``gobridge mkfifo``) as one end of a one-way connection,
  as ``Pipe(duplex=False)``: many writers, one reader, ``EOFError`` once the
  last writer closed. Frames larger than PIPE_BUF are written under an
  exclusive ``flock`` on the FIFO, which every gobridge writer (Go's too)
  takes, so that they never interleave.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import secrets
import select
import stat
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, Generic, List, Optional, Tuple, TypeVar, Union

from .._codec import DEFAULT_MAX_FRAME_SIZE, encode
from .._errors import PeerGoneError
from .._internal import ofdlock
from .base import HEADER, Connection, _check_max_frame_size, pack_header
from .fd import PIPE_BUF, FdTransport, SharedFdTransport
from .unix import unlink_if_same

__all__ = ["mkfifo", "open_fifo", "FifoListener", "listen", "client", "PIPE_BUF"]

_UP = ".up"  # dialer -> listener
_DOWN = ".down"  # listener -> dialer


def _check_fifo(path: str, st: os.stat_result) -> None:
    if not stat.S_ISFIFO(st.st_mode):
        raise OSError(errno.EADDRINUSE, "address in use: the path exists and is not a FIFO", path)
    if st.st_uid != os.geteuid():
        raise OSError(errno.EADDRINUSE, f"address in use: the FIFO belongs to uid {st.st_uid}", path)


def mkfifo(path: str) -> bool:
    """Create a FIFO at path with mode 0600; return whether it was created.

    A FIFO already there and owned by this user is accepted (``False``);
    anything else at the path (a symlink included) raises
    ``OSError(errno.EADDRINUSE)`` and is left alone.
    """
    try:
        os.mkfifo(path, 0o600)
        return True
    except FileExistsError:
        _check_fifo(path, os.lstat(path))
        return False
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None


def _open(path: str, flags: int) -> int:
    """Open a FIFO of ours without blocking and without following symlinks."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        _check_fifo(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else deadline - time.monotonic()


def _open_writer(path: str, deadline: Optional[float], alive: Optional[Callable[[], None]] = None) -> int:
    """Open path for writing, waiting for a reader (ENXIO until one opens it).

    ``alive``, if given, is called between tries, at most every 100 ms, and
    ends the wait by raising when the reader can no longer come.
    """
    _check_fifo(path, os.lstat(path))  # not ours: refused before any wait
    delay = 0.00005
    checked = time.monotonic()
    while True:
        try:
            return _open(path, os.O_WRONLY)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
        if alive is not None and time.monotonic() - checked >= 0.1:
            alive()
            checked = time.monotonic()
        left = _remaining(deadline)
        if left is not None and left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, f"gobridge: no reader opened {path!r} in time")
        time.sleep(delay if left is None else min(delay, left))
        delay = min(delay * 2, 0.01)


def _open_reader_wait(path: str, deadline: Optional[float], alive: Optional[Callable[[], None]] = None) -> int:
    """Open path for reading once a writer has opened it.

    A blocking open does the waiting; with a deadline or ``alive`` it runs in
    a thread, released by a non-blocking open for writing when time is up or
    when ``alive`` (called every 100 ms) raises, which then ends the wait
    with that exception. Only the first open goes by path: an ``O_PATH``
    descriptor (which opens nothing, so no writer sees a reader early),
    checked, whose ``/proc/self/fd`` link the blocking open and the release
    then open, so that both reach the same FIFO whatever becomes of the path
    meanwhile (a FIFO unlinked under a blocked open could not be released by
    path).
    """
    _check_fifo(path, os.lstat(path))
    anchor = _open(path, os.O_PATH)
    try:
        return _wait_for_writer(path, f"/proc/self/fd/{anchor}", deadline, alive)
    finally:
        os.close(anchor)  # after the opener thread has returned


def _wait_for_writer(path: str, link: str, deadline: Optional[float], alive: Optional[Callable[[], None]]) -> int:
    if deadline is None and alive is None:
        return os.open(link, os.O_RDONLY | os.O_CLOEXEC)
    box: List[Union[int, BaseException]] = []

    def opener() -> None:
        try:
            box.append(os.open(link, os.O_RDONLY | os.O_CLOEXEC))
        except BaseException as e:  # reported to the caller
            box.append(e)

    t = threading.Thread(target=opener, daemon=True)
    t.start()
    cause: Optional[OSError] = None
    while cause is None:
        left = _remaining(deadline)
        if left is not None and left <= 0:
            cause = TimeoutError(errno.ETIMEDOUT, f"gobridge: no writer opened {path!r} in time")
            break
        t.join(0.1 if left is None or alive is not None and left > 0.1 else left)
        if not t.is_alive():
            break
        if alive is not None:
            try:
                alive()
            except OSError as e:
                cause = e
    while t.is_alive():  # the wait is over: release the blocked open
        try:
            w = os.open(link, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            t.join(1.0)
            os.close(w)
        except OSError:
            t.join(0.001)
    r = box[0]
    if cause is not None:
        if isinstance(r, int):
            os.close(r)
        raise cause
    if isinstance(r, BaseException):
        raise r
    return r


# --- the listener mark (SPEC 6.6): an OFD write lock on one byte -------------

_MARK = 0  # the byte of the rendezvous FIFO its live listener locks


def _take_mark(wfd: int) -> bool:
    """Take the listener mark through a write descriptor; False if held."""
    try:
        fcntl.fcntl(wfd, fcntl.F_OFD_SETLK, ofdlock.pack(fcntl.F_WRLCK, _MARK))
    except (BlockingIOError, PermissionError):
        return False
    return True


def _check_not_rendezvous(fd: int, path: str) -> None:
    """Refuse, for a plain-pipe reader or writer, a live listener's rendezvous."""
    if ofdlock.probe(fd, fcntl.F_WRLCK, _MARK) != fcntl.F_UNLCK:
        raise OSError(errno.EADDRINUSE, "address in use: the FIFO is a fifo: listener's rendezvous, not a plain pipe", path)


def _fifo_has_reader(path: str) -> bool:
    """Whether some process has the FIFO at path open for reading."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW))
        return True
    except OSError:
        return False


def _has_reader(wfd: int) -> bool:
    p = select.poll()
    p.register(wfd, select.POLLOUT)
    return not any(ev & select.POLLERR for _, ev in p.poll(0))


def fifo_connection(rfd: Optional[int], wfd: Optional[int], *, shared: bool = False,
                    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> Connection:
    """A Connection over FIFO descriptors (a read end, a write end, or both),
    made blocking; ``shared`` marks a write end other writers may share
    (see :class:`gobridge._transport.fd.SharedFdTransport`)."""
    if rfd is None and wfd is None:
        raise ValueError("a FIFO connection needs a descriptor")
    for fd in (rfd, wfd):
        if fd is not None:
            os.set_blocking(fd, True)
    t = SharedFdTransport(rfd, wfd) if shared else FdTransport(rfd, wfd)
    return Connection._over(t, rfd is not None, wfd is not None,
                            max_frame_size=max_frame_size)


def open_fifo(
    path: str,
    mode: str = "r",
    *,
    timeout: Optional[float] = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
) -> Connection:
    """Open the FIFO at path as a one-way connection.

    ``mode="r"``: a receive-only connection, returned once a writer has
    opened the FIFO; ``recv`` raises ``EOFError`` after the last writer
    closed. ``mode="w"``: a send-only connection, returned once a reader is
    there; when the reader has gone, ``send`` raises ``BrokenPipeError``.
    ``timeout`` (seconds) bounds the wait for the other end (``TimeoutError``).
    A live ``fifo:`` listener's rendezvous FIFO is refused at once with
    ``OSError(errno.EADDRINUSE)``.
    """
    max_frame_size = _check_max_frame_size(max_frame_size)
    deadline = None if timeout is None else time.monotonic() + timeout
    if mode == "r":
        fd = _open_reader_wait(path, deadline)
    elif mode == "w":
        fd = _open_writer(path, deadline)
    else:
        raise ValueError(f"gobridge: open_fifo mode must be 'r' or 'w', not {mode!r}")
    try:
        _check_not_rendezvous(fd, path)
    except BaseException:
        os.close(fd)
        raise
    if mode == "r":
        return fifo_connection(fd, None, max_frame_size=max_frame_size)
    return fifo_connection(None, fd, shared=True, max_frame_size=max_frame_size)


# --- rendezvous requests (SPEC 6.6) ------------------------------------------

_PID_MAX = 10  # digits of a request's pid
_HEX_LEN = 12  # hex digits of its random part
_TAIL_MIN, _TAIL_MAX = 1 + 1 + _HEX_LEN, _PID_MAX + 1 + _HEX_LEN  # after "<base>."
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdef")
_NO_MATCH, _PARTIAL, _WHOLE = 0, 1, 2


def _str_header(n: int) -> Optional[Tuple[bytes, int]]:
    """The shortest msgpack str header that fills a payload of n bytes, and its str's length."""
    if 1 <= n <= 32:
        return bytes([0xA0 | (n - 1)]), n - 1
    if 32 <= n - 2 < 256:
        return bytes([0xD9, n - 2]), n - 2
    if 256 <= n - 3 < 1 << 16:
        return b"\xda" + (n - 3).to_bytes(2, "big"), n - 3
    return None


def _match_request(buf: bytearray, i: int, base: bytes) -> Tuple[int, int, int]:
    """Whether buf[i:] starts with a request for the listener of basename base.

    Returns (verdict, end, name start): with ``_WHOLE`` the request's name
    is ``buf[name start:end]``. Every byte present is checked, so a prefix
    that cannot become a request is refused at once; ``_PARTIAL`` means the
    bytes so far may start one.
    """
    avail = len(buf) - i
    if avail < 4:  # a length well under PIPE_BUF: two zero bytes, then at most 0x0f
        head4 = bytes(buf[i:]) + b"\0" * (4 - avail)
        if head4[0] or head4[1] or head4[2] > 0x0F:
            return _NO_MATCH, 0, 0
        return _PARTIAL, 0, 0
    n = int(HEADER.unpack_from(buf, i)[0])
    sh = _str_header(n)
    if sh is None or 4 + n > PIPE_BUF:
        return _NO_MATCH, 0, 0
    head, str_len = sh
    tail = str_len - len(base) - 1
    if not _TAIL_MIN <= tail <= _TAIL_MAX:
        return _NO_MATCH, 0, 0
    prefix = head + base + b"."
    start = i + 4
    got = bytes(buf[start:start + min(n, avail - 4)])
    if not prefix.startswith(got[:len(prefix)]):
        return _NO_MATCH, 0, 0
    pid_len = tail - 1 - _HEX_LEN
    for k, b in enumerate(got[len(prefix):]):
        if k < pid_len:
            good = b in _DIGITS
        elif k == pid_len:
            good = b == 0x2E  # "."
        else:
            good = b in _HEX
        if not good:
            return _NO_MATCH, 0, 0
    if len(got) < n:
        return _PARTIAL, 0, 0
    return _WHOLE, start + n, start + len(head)


class _RequestScanner:
    """Finds the requests in the bytes read from a rendezvous FIFO (SPEC 6.6).

    Anything else is skipped a byte at a time until a request starts; no
    header is trusted for a size, and what is kept between feeds (the start
    of a request still to come) is less than PIPE_BUF. A request, written
    whole by one atomic write, is never lost to garbage before it: its
    header starts with two zero bytes, and every false start that reaches
    them fails there. Go's fifoRequestScanner follows the same rule.
    """

    __slots__ = ("_base", "_buf")

    def __init__(self, base: bytes) -> None:
        self._base = base
        self._buf = bytearray()

    def feed(self, data: bytes) -> List[bytes]:
        """Take the next bytes read; return the names of the requests now whole."""
        buf = self._buf
        buf += data
        names: List[bytes] = []
        i = 0
        while True:
            i = buf.find(0, i)
            if i < 0:
                buf.clear()
                return names
            verdict, end, name_start = _match_request(buf, i, self._base)
            if verdict == _WHOLE:
                names.append(bytes(buf[name_start:end]))
                i = end
            elif verdict == _PARTIAL:
                del buf[:i]
                return names
            else:
                i += 1


# --- pending handshakes -------------------------------------------------------

_K = TypeVar("_K")
_T = TypeVar("_T")


class _PendingHandshakes(Generic[_K, _T]):
    """Handshakes in progress, each in a thread of its own under a deadline.

    :meth:`start` one, :meth:`take` the first finished (:meth:`fileno` is
    readable once one has, successful or not), :meth:`close` all. It knows
    nothing of FIFOs (Go's twin is ``pendingHandshakes`` in
    bridge/fifo_handshakes.go), so that other transports' handshakes can
    share it.
    """

    def __init__(self, limit: int, discard: Callable[[_T], None]) -> None:
        self._limit = limit
        self._discard = discard
        self._lock = threading.Lock()
        self._running: Dict[_K, threading.Thread] = {}
        self._finished: Deque[_T] = deque()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def fileno(self) -> int:
        """A descriptor readable once a handshake has finished since the last :meth:`take`."""
        return self._wake_r

    def full(self) -> bool:
        """Whether ``limit`` handshakes are running, so that :meth:`start` would refuse another."""
        with self._lock:
            return len(self._running) >= self._limit

    def start(self, key: _K, timeout: float, run: Callable[[float, threading.Event], Optional[_T]]) -> bool:
        """Run ``run(deadline, stop)`` in a thread; False, running nothing, when a
        handshake with the same key is running, ``limit`` are, or after close.

        ``run`` returns the handshake's value, or None when it failed; it must
        return soon after the monotonic ``deadline`` (now + timeout) or after
        ``stop`` is set (close).
        """
        with self._lock:
            if self._stop.is_set() or key in self._running or len(self._running) >= self._limit:
                return False
            t = threading.Thread(target=self._run, args=(key, time.monotonic() + timeout, run),
                                 name="gobridge-handshake", daemon=True)
            self._running[key] = t
            t.start()
        return True

    def _run(self, key: _K, deadline: float, run: Callable[[float, threading.Event], Optional[_T]]) -> None:
        value: Optional[_T] = None
        try:
            value = run(deadline, self._stop)
        finally:
            late = False
            with self._lock:
                del self._running[key]
                if value is not None:
                    late = self._stop.is_set()
                    if not late:
                        self._finished.append(value)
            if late and value is not None:
                self._discard(value)
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:  # a wake-up is pending already
                pass

    def take(self) -> Optional[_T]:
        """The first finished handshake's value not taken yet, or None."""
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        with self._lock:
            return self._finished.popleft() if self._finished else None

    def close(self) -> None:
        """Stop the handshakes running, wait for them, discard what was not taken. Idempotent."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            threads = list(self._running.values())
        for t in threads:
            t.join()
        with self._lock:
            left = list(self._finished)
            self._finished.clear()
        for v in left:
            self._discard(v)
        os.close(self._wake_r)
        os.close(self._wake_w)


# --- the listener --------------------------------------------------------------

HANDSHAKE_TIMEOUT = 5.0  # seconds from taking a request to the dialer opening .up (SPEC 6.6)
_MAX_PENDING = 64  # handshakes at once; more requests wait in the rendezvous FIFO
_READ_CHUNK = 16 * 1024


def _remove_pair(base: str) -> None:
    """Remove a pair's names, where they are FIFOs of ours."""
    for suffix in (_UP, _DOWN):
        try:
            _check_fifo(base + suffix, os.lstat(base + suffix))
            os.unlink(base + suffix)
        except OSError:
            pass


def _open_pair(base: str, deadline: float, stop: threading.Event, max_frame_size: int) -> Optional[Connection]:
    """The listener's side of one handshake (SPEC 6.6); None when it failed.

    Opens the write end of ``.down`` (the dialer holds its read end before it
    asks), then waits until the deadline for the dialer to open ``.up`` for
    writing, giving up when ``.down`` loses its reader (the dialer died) or
    when ``stop`` is set. On failure the pair is removed.
    """
    try:
        wfd = _open(base + _DOWN, os.O_WRONLY)
    except OSError:
        _remove_pair(base)
        return None

    def alive() -> None:
        if stop.is_set():
            raise InterruptedError(errno.EINTR, "gobridge: the listener is closing")
        if not _has_reader(wfd):
            raise ConnectionResetError(errno.ECONNRESET, "gobridge: the dialer is gone")

    try:
        rfd = _open_reader_wait(base + _UP, deadline, alive)
    except OSError:
        os.close(wfd)
        _remove_pair(base)
        return None
    return fifo_connection(rfd, wfd, max_frame_size=max_frame_size)


class FifoListener:
    """What ``gobridge.Listener("fifo:/path")`` runs: accepts connections over FIFO pairs.

    Owns the rendezvous FIFO (mode 0600, made if missing); an OFD write lock
    on its first byte marks the live listener, so a second one gets
    ``OSError(errno.EADDRINUSE)`` and :func:`open_fifo` refuses it.
    :meth:`accept` runs the handshakes of the requests it reads
    concurrently, each for at most ``HANDSHAKE_TIMEOUT`` seconds, and
    returns whichever completes first; garbage in the FIFO is skipped.
    :meth:`close` ends the handshakes in progress and removes the FIFO.
    """

    def __init__(self, path: str, backlog: int, max_frame_size: int) -> None:  # noqa: D107
        self._path = path
        self._max_frame_size = max_frame_size
        self._rfd: Optional[int] = None
        mkfifo(self._path)
        rfd = _open(self._path, os.O_RDONLY)
        try:
            st = os.fstat(rfd)
            wfd = _open(self._path, os.O_WRONLY)  # also so that reads never see end of stream
        except BaseException:
            os.close(rfd)
            raise
        try:
            if not _take_mark(wfd):
                raise OSError(errno.EADDRINUSE, "address in use: a listener holds the FIFO", self._path)
            self._pending: _PendingHandshakes[bytes, Connection] = _PendingHandshakes(
                _MAX_PENDING, Connection.close)
        except BaseException:
            os.close(rfd)
            os.close(wfd)
            raise
        self._ident = (st.st_dev, st.st_ino)
        self._keep = wfd
        self._dir = os.path.dirname(self._path)
        self._scanner = _RequestScanner(os.fsencode(os.path.basename(self._path)))
        self._names: Deque[bytes] = deque()  # requests read, their handshakes not started yet
        self._handshake_timeout = HANDSHAKE_TIMEOUT  # seconds; tests shorten it
        self._rfd = rfd

    def fileno(self) -> int:
        """The rendezvous FIFO's read descriptor (readable when a client asks)."""
        if self._rfd is None:
            raise OSError("listener is closed")
        return self._rfd

    def accept(self, timeout: Optional[float] = None) -> Tuple[Connection, Optional[str]]:
        """Wait for a client (up to timeout seconds, ``TimeoutError``) and return the connection to it.

        The first handshake to complete wins, whichever request started it:
        a client that stalls holds up no other.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            rfd = self._rfd
            if rfd is None:
                raise OSError("listener is closed")
            conn = self._pending.take()
            if conn is not None:
                return conn, None
            while self._names and self._start(self._names[0]):
                self._names.popleft()
            poller = select.poll()
            poller.register(self._pending.fileno(), select.POLLIN)
            if not self._names and not self._pending.full():
                poller.register(rfd, select.POLLIN)
            left = _remaining(deadline)
            if left is not None and left <= 0:
                raise TimeoutError(errno.ETIMEDOUT, "gobridge: accept timed out")
            ms = None if left is None else min(math.ceil(left * 1000), 2**31 - 1)
            for fd, _ in poller.poll(ms):
                if fd == rfd:
                    self._read_requests(rfd)

    def accept_nowait(self) -> Tuple[Optional[Connection], List[int]]:
        """One step of :meth:`accept` that never waits (gobridge.asyncio's):
        the connection of a finished handshake, or None and the descriptors
        to wait on (readable: call again). Reads the requests there are and
        starts their handshakes."""
        rfd = self._rfd
        if rfd is None:
            raise OSError("listener is closed")
        conn = self._pending.take()
        if conn is not None:
            return conn, []
        while self._names and self._start(self._names[0]):
            self._names.popleft()
        if not self._names and not self._pending.full():
            self._read_requests(rfd)
            while self._names and self._start(self._names[0]):
                self._names.popleft()
        fds = [self._pending.fileno()]
        if not self._names and not self._pending.full():
            fds.append(rfd)
        return None, fds

    def _start(self, name: bytes) -> bool:
        """Start the handshake for a request; False when the handshakes are full."""
        if self._pending.full():
            return False
        base = os.path.join(self._dir, os.fsdecode(name))
        mfs = self._max_frame_size
        self._pending.start(name, self._handshake_timeout,
                            lambda deadline, stop: _open_pair(base, deadline, stop, mfs))
        return True  # or a duplicate of a request in progress: dropped

    def _read_requests(self, rfd: int) -> None:
        try:
            data = os.read(rfd, _READ_CHUNK)
        except BlockingIOError:
            return
        self._names.extend(self._scanner.feed(data))

    def close(self) -> None:
        """Stop listening, end the handshakes in progress (removing their pairs)
        and remove the rendezvous FIFO if it is still ours. Idempotent."""
        rfd, self._rfd = self._rfd, None
        if rfd is None:
            return
        try:
            unlink_if_same(self._path, self._ident)
        finally:
            try:
                self._pending.close()
            finally:
                os.close(rfd)
                os.close(self._keep)



listen = FifoListener


def client(path: str, address: str, max_frame_size: int, timeout: Optional[float]) -> Connection:
    """``gobridge.Client("fifo:/path")``: connect to a FIFO listener.

    A missing FIFO raises ``FileNotFoundError``; a FIFO nobody listens on is
    waited for, up to ``timeout`` seconds (``TimeoutError``), as opening a
    FIFO waits for its other end, and so is a listener that does not take
    the request. A listener that dies after taking it raises
    :class:`PeerGoneError`; one that gives up on the handshake (its deadline
    passed, or it closed) ``ConnectionRefusedError``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        _check_fifo(path, os.lstat(path))
    except FileNotFoundError as e:
        raise FileNotFoundError(e.errno, f"gobridge: no listener at {address!r}: {e.strerror}") from None
    name = f"{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(6)}"
    base = os.path.join(os.path.dirname(path), name)
    fds: List[int] = []
    try:
        for suffix in (_UP, _DOWN):
            os.mkfifo(base + suffix, 0o600)
        fds.append(_open(base + _DOWN, os.O_RDONLY))
        _send_request(path, name, deadline)

        def listener_alive() -> None:  # a dead listener leaves /p without a reader
            if not _fifo_has_reader(path):
                raise PeerGoneError(errno.ECONNRESET, f"gobridge: the listener at {address!r} went away")

        try:
            fds.append(_open_writer(base + _UP, deadline, listener_alive))
        except FileNotFoundError:  # the listener removed the pair
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"gobridge: the listener at {address!r} dropped the handshake") from None
        except TimeoutError:
            raise TimeoutError(errno.ETIMEDOUT, f"gobridge: the listener at {address!r} did not answer in time") from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        for suffix in (_UP, _DOWN):
            try:
                os.unlink(base + suffix)
            except OSError:
                pass
    return fifo_connection(fds[0], fds[1], max_frame_size=max_frame_size)


def _send_request(path: str, name: str, deadline: Optional[float]) -> None:
    """Write one frame holding name to the rendezvous FIFO, in one atomic write."""
    payload = encode(name)
    frame = pack_header(len(payload)) + payload
    if len(frame) > PIPE_BUF:
        raise ValueError("gobridge: fifo path too long")
    fd = _open_writer(path, deadline)
    try:
        delay = 0.00005
        while True:
            try:
                os.write(fd, frame)
                return
            except BlockingIOError:  # the listener's FIFO is full
                left = _remaining(deadline)
                if left is not None and left <= 0:
                    raise TimeoutError(errno.ETIMEDOUT, f"gobridge: listener at {path!r} is not accepting")
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
    finally:
        os.close(fd)
