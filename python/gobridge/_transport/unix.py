"""The unix: scheme: listening and connecting AF_UNIX stream sockets (wire/SPEC.md section 5).

gobridge.connection's Listener and Client run :func:`listen` and
:func:`client` for ``unix:`` addresses; the connections are fd ones
(gobridge._transport.fd). The socket-file helpers (:func:`listen_unix`,
:func:`connect_unix`, :func:`unlink_if_same`) also serve ``shm:``, whose
rendezvous is a unix socket.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import tempfile
import time
from typing import Optional, Tuple

from .._address import MAX_UNIX_PATH
from .base import Connection

__all__ = ["UnixListener", "listen", "client", "listen_unix", "connect_unix", "unlink_if_same"]


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


def connect_unix(sock: socket.socket, path: str, deadline: Optional[float], address: str) -> None:
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


def _naming(e: OSError, path: str) -> OSError:
    """e, naming the path the caller asked for instead of gobridge's private
    bind directory (the errno, and so the OSError subclass, is kept)."""
    return OSError(e.errno, e.strerror, path)


def listen_unix(path: str, backlog: int) -> Tuple[socket.socket, Tuple[int, int]]:
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
    try:
        tmpdir = tempfile.mkdtemp(prefix=".gobridge-", dir=os.path.dirname(path) or ".")  # mode 0700
    except OSError as e:
        raise _naming(e, path) from None
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
    except BaseException as e:
        sock.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and (e.filename is None or e.filename in (tmp, tmpdir)):
            raise _naming(e, path) from None
        raise
    finally:
        if dirfd is not None:
            os.close(dirfd)
        try:
            os.rmdir(tmpdir)
        except OSError:
            pass
    return sock, (made.st_dev, made.st_ino)


class UnixListener:
    """What ``gobridge.Listener("unix:/path")`` runs: a listening socket at
    path, made as SPEC 5.1 says (mode 0600; a stale file left by a dead
    process is replaced, a live server's or a non-socket gives
    ``OSError(errno.EADDRINUSE)``). :meth:`close` removes the file if it is
    still ours."""

    def __init__(self, path: str, backlog: int, max_frame_size: int) -> None:
        self._sock: Optional[socket.socket] = None
        self._max_frame_size = max_frame_size
        self._path = path
        self._sock, self._ident = listen_unix(path, backlog)

    def fileno(self) -> int:
        if self._sock is None:
            raise OSError("listener is closed")
        return self._sock.fileno()

    def accept(self, timeout: Optional[float] = None) -> Tuple[Connection, Optional[str]]:
        """Wait for a client (up to timeout seconds, ``TimeoutError``);
        return the connection and the peer's address."""
        if self._sock is None:
            raise OSError("listener is closed")
        if timeout is not None:
            p = select.poll()
            p.register(self._sock.fileno(), select.POLLIN)
            if not p.poll(max(0, min(int(timeout * 1000 + 0.999), 2**31 - 1))):
                raise TimeoutError(errno.ETIMEDOUT, "gobridge: accept timed out")
        sock, addr = self._sock.accept()
        peer = addr if isinstance(addr, str) else os.fsdecode(addr)
        return Connection(sock.detach(), max_frame_size=self._max_frame_size), peer

    def close(self) -> None:
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        try:
            unlink_if_same(self._path, self._ident)
        finally:
            sock.close()


listen = UnixListener


def client(path: str, address: str, max_frame_size: int, timeout: Optional[float]) -> Connection:
    """Connect to the unix socket at path (address: how the caller spelled
    it, for messages)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if timeout is None:
            sock.connect(path)
        else:
            _connect_before(sock, path, time.monotonic() + timeout, address)
    except OSError as e:
        sock.close()
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
            raise OSError(e.errno, f"gobridge: no listener at {address!r}: {e.strerror}") from None
        raise
    except BaseException:
        sock.close()
        raise
    return Connection(sock.detach(), max_frame_size=max_frame_size)


def _connect_before(sock: socket.socket, path: str, deadline: float, address: str) -> None:
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
                    errno.ETIMEDOUT, f"gobridge: timed out connecting to {address!r}"
                ) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
    sock.setblocking(True)
