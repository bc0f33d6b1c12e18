"""Listener and Client over AF_UNIX stream sockets (wire/SPEC.md section 5)."""

from __future__ import annotations

import errno
import os
import socket
import stat
import tempfile
import time
from types import TracebackType
from typing import Any, Optional, Tuple, Type, Union

from ._address import MAX_UNIX_PATH, parse_address
from ._codec import DEFAULT_MAX_FRAME_SIZE
from .connection import Connection, _check_max_frame_size

__all__ = ["Listener", "Client"]

Address = Union[str, "os.PathLike[str]"]


def _is_shm(address: object) -> bool:
    """Whether address is an shm: address (routed to gobridge._shmconn)."""
    return isinstance(address, str) and address.startswith("shm:")


def _is_fifo(address: object) -> bool:
    """Whether address is a fifo: address (routed to gobridge._fifo)."""
    return isinstance(address, str) and address.startswith("fifo:")


def check_options(family: Optional[str], authkey: Optional[bytes], scheme: str) -> None:
    """Refuse what multiprocessing.connection accepts but gobridge does not.

    ``authkey`` is never supported; ``family`` may be None or the scheme's
    own (``AF_UNIX``, ``AF_FIFO``, ``AF_SHM``).
    """
    if authkey is not None:
        raise ValueError("gobridge: authkey is not supported")
    if family is not None and family != "AF_" + scheme.upper():
        raise ValueError(f"gobridge: family {family!r} is not supported for {scheme}: addresses")


def unlink_if_same(path: str, ident: Tuple[int, int]) -> None:
    """Remove path if it still names the file (st_dev, st_ino) = ident.

    A listener's close removes only what it made: a file another process put
    at the path since is left alone.
    """
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) == ident:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _unix_path(address: Address, family: Optional[str], authkey: Optional[bytes]) -> str:
    check_options(family, authkey, "unix")
    text = os.fspath(address)
    scheme, rest = parse_address(text)
    if scheme != "unix":
        raise NotImplementedError(f"gobridge: {scheme}: addresses are reserved for a later version")
    return rest


def connect_unix(sock: socket.socket, path: str, deadline: Optional[float], address: Address) -> None:
    """Connect sock to the socket at path, as SPEC 5.2 says.

    A path longer than ``sun_path`` (an ``shm:`` name can be) is reached
    through ``/proc/self/fd/N``, N an ``O_PATH`` descriptor of the socket
    file. With a deadline (a ``time.monotonic()`` value) a listener whose
    backlog is full is retried until then; without, the connect blocks.
    """
    name, fd = path, None
    if len(os.fsencode(path)) > MAX_UNIX_PATH:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        name = f"/proc/self/fd/{fd}"
    try:
        if deadline is None:
            sock.connect(name)
        else:
            _connect_before(sock, name, deadline, address)
    finally:
        if fd is not None:
            os.close(fd)


def _probe(path: str) -> Optional[OSError]:
    """Connect to the socket file at path; return None if it is stale.

    Returns the reason it must be left alone: a server accepted (or its
    backlog is full, which only a live server has) or it cannot be probed.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        connect_unix(probe, path, None, path)
    except (ConnectionRefusedError, FileNotFoundError):
        return None
    except BlockingIOError:
        return OSError(errno.EADDRINUSE, "address in use: a server is listening (backlog full)", path)
    except OSError as e:
        return OSError(errno.EADDRINUSE, f"address in use: cannot probe the socket ({e.strerror})", path)
    finally:
        probe.close()
    return OSError(errno.EADDRINUSE, "address in use: a server is listening", path)


def _listen_unix(path: str, backlog: int) -> Tuple[socket.socket, Tuple[int, int]]:
    """Create a listening socket at path per SPEC 5.1; return it and its file's (dev, ino)."""
    try:
        st: Optional[os.stat_result] = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(errno.EADDRINUSE, "address in use: the path exists and is not a socket", path)
        busy = _probe(path)
        if busy is not None:
            raise busy
        # stale: the rename below replaces it atomically
    tmpdir = tempfile.mkdtemp(prefix=".gobridge-", dir=os.path.dirname(path) or ".")  # mode 0700
    tmp = os.path.join(tmpdir, "s")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dirfd: Optional[int] = None
    try:
        name = tmp
        if len(os.fsencode(tmp)) > MAX_UNIX_PATH:
            # The private directory made the path too long for sun_path; bind
            # through /proc instead, which names the same directory.
            dirfd = os.open(tmpdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            name = f"/proc/self/fd/{dirfd}/s"
        sock.bind(name)
        os.chmod(tmp, 0o600)
        sock.listen(backlog)
        made = os.lstat(tmp)
        os.rename(tmp, path)
    except BaseException:
        sock.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        if dirfd is not None:
            os.close(dirfd)
        try:
            os.rmdir(tmpdir)
        except OSError:
            pass
    return sock, (made.st_dev, made.st_ino)


class Listener:
    """A listening unix socket, as ``multiprocessing.connection.Listener``.

    ``address`` is ``"unix:/path"`` or a path (SPEC section 4). The socket file
    is created with mode 0600; a stale file left by a dead process is
    replaced, a live server's gives ``OSError(errno.EADDRINUSE)``, and a
    non-socket (regular file, directory, symlink) is refused the same way
    and left untouched. :meth:`close` removes the file if it is still ours.

    ``authkey`` is not supported (gobridge does no authentication handshake;
    the 0600 socket file is the access control): passing one raises
    ``ValueError``. ``family`` may only be ``None`` or ``"AF_UNIX"``.

    An ``shm:NAME`` address gives a shared-memory listener instead
    (``gobridge._shmconn.ShmListener``, SPEC section 11), a ``fifo:/path``
    one a listener over named pipes (``gobridge._fifo.FifoListener``, 6.6).
    """

    def __new__(cls, address: Address, *args: Any, **kwargs: Any) -> "Listener":
        if cls is Listener and _is_shm(address):
            from ._shmconn import ShmListener
            return super().__new__(ShmListener)
        if cls is Listener and _is_fifo(address):
            from ._fifo import FifoListener
            return super().__new__(FifoListener)
        return super().__new__(cls)

    def __init__(
        self,
        address: Address,
        family: Optional[str] = None,
        backlog: int = 1,
        authkey: Optional[bytes] = None,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._sock: Optional[socket.socket] = None
        path = _unix_path(address, family, authkey)
        self._max_frame_size = _check_max_frame_size(max_frame_size)
        self._address = os.fspath(address)
        self._path = path
        self._last_accepted: Optional[str] = None
        self._sock, self._ident = _listen_unix(path, backlog)

    @property
    def address(self) -> str:
        """The address this listener was created with."""
        return self._address

    @property
    def last_accepted(self) -> Optional[str]:
        """The peer address of the last accepted connection (usually '' for unix sockets)."""
        return self._last_accepted

    def fileno(self) -> int:
        """The listening socket's descriptor (for select/poll)."""
        if self._sock is None:
            raise OSError("listener is closed")
        return self._sock.fileno()

    def accept(self) -> Connection:
        """Wait for a client and return the connection to it."""
        if self._sock is None:
            raise OSError("listener is closed")
        sock, addr = self._sock.accept()
        self._last_accepted = addr if isinstance(addr, str) else os.fsdecode(addr)
        return Connection(sock.detach(), max_frame_size=self._max_frame_size)

    def close(self) -> None:
        """Stop listening and remove the socket file if it is still ours. Idempotent."""
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        try:
            unlink_if_same(self._path, self._ident)
        finally:
            sock.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else "listening"
        return f"<Listener {self._address!r} {state}>"


def Client(
    address: Address,
    family: Optional[str] = None,
    authkey: Optional[bytes] = None,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    timeout: Optional[float] = None,
) -> Connection:
    """Connect to a listener, as ``multiprocessing.connection.Client``.

    ``timeout`` (seconds) bounds the connect only; the connection returned
    is blocking. No listener gives ``FileNotFoundError`` or
    ``ConnectionRefusedError`` naming the address; a timeout gives
    ``TimeoutError``. ``authkey`` is not supported (``ValueError``).
    An ``shm:NAME`` address connects over shared memory (SPEC section 11),
    a ``fifo:/path`` one over a private pair of named pipes (SPEC 6.6).
    """
    if _is_shm(address):
        from ._shmconn import client
        return client(str(address), family, authkey, max_frame_size=max_frame_size, timeout=timeout)
    if _is_fifo(address):
        from ._fifo import client as fifo_client
        return fifo_client(str(address), family, authkey, max_frame_size=max_frame_size, timeout=timeout)
    path = _unix_path(address, family, authkey)
    max_frame_size = _check_max_frame_size(max_frame_size)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if timeout is None:
            sock.connect(path)
        else:
            _connect_before(sock, path, time.monotonic() + timeout, address)
    except OSError as e:
        sock.close()
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
            raise OSError(e.errno, f"gobridge: no listener at {os.fspath(address)!r}: {e.strerror}") from None
        raise
    except BaseException:
        sock.close()
        raise
    return Connection(sock.detach(), max_frame_size=max_frame_size)


def _connect_before(sock: socket.socket, path: str, deadline: float, address: Address) -> None:
    # A unix connect either completes at once or, when the listener's backlog
    # is full, fails with EAGAIN; retry until the deadline.
    sock.setblocking(False)
    delay = 0.001
    while True:
        try:
            sock.connect(path)
            break
        except (BlockingIOError, InterruptedError):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    errno.ETIMEDOUT, f"gobridge: timed out connecting to {os.fspath(address)!r}"
                ) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
    sock.setblocking(True)
