"""The fifo: transport (wire/SPEC.md section 6.6).

Two uses of named pipes, as in Go's bridge package:

* Connections: ``Listener("fifo:/p")`` makes the rendezvous FIFO ``/p``;
  ``Client("fifo:/p")`` makes a private pair ``/p.<pid>.<hex>.up`` and
  ``.down``, asks for it with one atomic request frame written to ``/p``,
  and removes the pair's names once both ends are open. Each connection is
  duplex and private, like a socket's.
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
import os
import secrets
import select
import stat
import threading
import time
from typing import Any, Callable, List, Optional, Union

from ._codec import DEFAULT_MAX_FRAME_SIZE, encode
from ._errors import PeerGoneError
from ._unix import Listener, check_options, unlink_if_same
from .connection import Connection, _check_max_frame_size

__all__ = ["mkfifo", "open_fifo", "FifoListener", "FifoConnection", "client"]

PIPE_BUF = 4096  # select.PIPE_BUF on Linux
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


def _open_reader_wait(path: str, deadline: Optional[float]) -> int:
    """Open path for reading once a writer has opened it.

    A blocking open does the waiting; with a deadline it runs in a thread,
    released when time is up by a non-blocking open for writing.
    """
    _check_fifo(path, os.lstat(path))
    if deadline is None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    else:
        box: List[Union[int, BaseException]] = []

        def opener() -> None:
            try:
                box.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW))
            except BaseException as e:  # reported to the caller
                box.append(e)

        t = threading.Thread(target=opener, daemon=True)
        t.start()
        t.join(max(0.0, deadline - time.monotonic()))
        while t.is_alive():  # time is up: release the blocked open
            try:
                w = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
                t.join(1.0)
                os.close(w)
            except OSError:
                t.join(0.001)
            if not t.is_alive():
                r = box[0]
                if isinstance(r, int):
                    os.close(r)
                raise TimeoutError(errno.ETIMEDOUT, f"gobridge: no writer opened {path!r} in time")
        r = box[0]
        if isinstance(r, BaseException):
            raise r
        fd = r
    try:
        _check_fifo(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


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


class FifoConnection(Connection):
    """A Connection over FIFO descriptors: a read end, a write end, or both.

    ``shared`` marks the write end of a FIFO other writers may share: frames
    larger than PIPE_BUF are then written under ``flock(LOCK_EX)``, smaller
    ones under ``flock(LOCK_SH)``.
    """

    __slots__ = ("_wfd", "_shared")

    def __init__(
        self,
        rfd: Optional[int],
        wfd: Optional[int],
        *,
        shared: bool = False,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._wfd: Optional[int] = None
        self._shared = shared
        for fd in (rfd, wfd):
            if fd is not None:
                os.set_blocking(fd, True)
        if rfd is None:
            if wfd is None:
                raise ValueError("a FIFO connection needs a descriptor")
            super().__init__(wfd, readable=False, max_frame_size=max_frame_size)
            return
        super().__init__(rfd, writable=wfd is not None, max_frame_size=max_frame_size)
        self._wfd = wfd

    def _check_writable(self) -> int:
        fd = super()._check_writable()
        return fd if self._wfd is None else self._wfd

    def _send_frame(self, payload: Union[bytes, memoryview]) -> None:
        if not self._shared:
            super()._send_frame(payload)
            return
        # A frame up to PIPE_BUF is one atomic write, but a larger one goes
        # in pieces whenever the pipe fills: small frames hold the flock
        # shared so that none lands between the pieces of a large one, which
        # holds it exclusive (SPEC 6.6).
        fd = self._check_writable()
        fcntl.flock(fd, fcntl.LOCK_SH if len(payload) + 4 <= PIPE_BUF else fcntl.LOCK_EX)
        try:
            super()._send_frame(payload)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def set_write_buffer(self, size: int) -> None:
        """As Connection's; refused on a FIFO that other writers may share,
        whose frames must each be written whole (Go's OpenFIFOWriter refuses
        WithWriteBuffer too)."""
        if self._shared and size.__index__() > 0:
            raise ValueError("set_write_buffer does not apply to a FIFO that other writers may share")
        super().set_write_buffer(size)

    def close(self) -> None:
        try:
            if self._wbuf and self._handle is not None:
                self.flush()  # while the write end is still open
        finally:
            wfd, self._wfd = self._wfd, None
            try:
                super().close()
            finally:
                if wfd is not None:
                    os.close(wfd)

    def __del__(self) -> None:
        if self._wfd is not None:
            try:
                os.close(self._wfd)
            except OSError:
                pass
            self._wfd = None
        super().__del__()


def open_fifo(
    path: str,
    mode: str = "r",
    *,
    timeout: Optional[float] = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
) -> FifoConnection:
    """Open the FIFO at path as a one-way connection.

    ``mode="r"``: a receive-only connection, returned once a writer has
    opened the FIFO; ``recv`` raises ``EOFError`` after the last writer
    closed. ``mode="w"``: a send-only connection, returned once a reader is
    there; when the reader has gone, ``send`` raises ``BrokenPipeError``.
    ``timeout`` (seconds) bounds the wait for the other end (``TimeoutError``).
    """
    max_frame_size = _check_max_frame_size(max_frame_size)
    deadline = None if timeout is None else time.monotonic() + timeout
    if mode == "r":
        return FifoConnection(_open_reader_wait(path, deadline), None, max_frame_size=max_frame_size)
    if mode == "w":
        return FifoConnection(None, _open_writer(path, deadline), shared=True, max_frame_size=max_frame_size)
    raise ValueError(f"gobridge: open_fifo mode must be 'r' or 'w', not {mode!r}")


def _path_of(address: Any) -> str:
    text = os.fspath(address)
    if not isinstance(text, str) or not text.startswith("fifo:") or len(text) == len("fifo:"):
        raise ValueError(f"gobridge: invalid fifo address {address!r}")
    return text[len("fifo:"):]


class FifoListener(Listener):
    """``gobridge.Listener("fifo:/path")``: accepts connections over FIFO pairs.

    Owns the rendezvous FIFO (mode 0600, made if missing); an exclusive
    ``flock`` on it marks the live listener, so a second one gets
    ``OSError(errno.EADDRINUSE)``. :meth:`close` removes it.
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
        check_options(family, authkey, "fifo")
        self._address = os.fspath(address)
        self._path = _path_of(address)
        self._max_frame_size = _check_max_frame_size(max_frame_size)
        self._last_accepted: Optional[str] = None
        self._req: Optional[Connection] = None
        mkfifo(self._path)
        rfd = _open(self._path, os.O_RDONLY)
        try:
            fcntl.flock(rfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(rfd)
            raise OSError(errno.EADDRINUSE, "address in use: a listener holds the FIFO", self._path) from None
        st = os.fstat(rfd)
        self._ident = (st.st_dev, st.st_ino)
        self._keep = _open(self._path, os.O_WRONLY)  # so that reads never see end of stream
        os.set_blocking(rfd, True)
        self._req = Connection(rfd, writable=False, max_frame_size=PIPE_BUF)

    def fileno(self) -> int:
        """The rendezvous FIFO's read descriptor (readable when a client asks)."""
        if self._req is None:
            raise OSError("listener is closed")
        return self._req.fileno()

    def accept(self) -> Connection:
        """Wait for a client and return the connection to it."""
        req = self._req
        if req is None:
            raise OSError("listener is closed")
        base = os.path.basename(self._path) + "."
        while True:
            try:
                name = req.recv()
            except ValueError:  # not a request (DecodeError); the stream is in step
                continue
            if not isinstance(name, str) or not name.startswith(base) or "/" in name:
                continue
            conn = self._open_pair(os.path.join(os.path.dirname(self._path), name))
            if conn is not None:
                self._last_accepted = self._address
                return conn

    def _open_pair(self, base: str) -> Optional[FifoConnection]:
        try:
            wfd = _open(base + _DOWN, os.O_WRONLY)
        except OSError:
            for suffix in (_UP, _DOWN):
                try:
                    os.unlink(base + suffix)
                except OSError:
                    pass
            return None
        while True:
            try:
                rfd = _open_reader_wait(base + _UP, time.monotonic() + 0.1)
                break
            except TimeoutError:
                if _has_reader(wfd):
                    continue
            except OSError:
                pass
            os.close(wfd)
            return None
        return FifoConnection(rfd, wfd, max_frame_size=self._max_frame_size)

    def close(self) -> None:
        """Stop listening and remove the rendezvous FIFO if it is still ours. Idempotent."""
        req, self._req = self._req, None
        if req is None:
            return
        try:
            unlink_if_same(self._path, self._ident)
        finally:
            req.close()
            os.close(self._keep)

    def __repr__(self) -> str:
        return f"<Listener {self._address!r} {'closed' if self._req is None else 'listening'}>"


def client(
    address: str,
    family: Optional[str] = None,
    authkey: Optional[bytes] = None,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    timeout: Optional[float] = None,
) -> Connection:
    """``gobridge.Client("fifo:/path")``: connect to a FIFO listener.

    A missing FIFO raises ``FileNotFoundError``; a FIFO nobody listens on is
    waited for, up to ``timeout`` seconds (``TimeoutError``), as opening a
    FIFO waits for its other end.
    """
    check_options(family, authkey, "fifo")
    max_frame_size = _check_max_frame_size(max_frame_size)
    path = _path_of(address)
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

        fds.append(_open_writer(base + _UP, deadline, listener_alive))
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
    return FifoConnection(fds[0], fds[1], max_frame_size=max_frame_size)


def _send_request(path: str, name: str, deadline: Optional[float]) -> None:
    """Write one frame holding name to the rendezvous FIFO, in one atomic write."""
    payload = encode(name)
    frame = len(payload).to_bytes(4, "big") + payload
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
