"""Connections, listeners and clients, as ``multiprocessing.connection`` has them
(wire/SPEC.md 2, 4-6, 11).

:class:`Connection` has the surface of ``multiprocessing.connection.Connection``
and writes and reads the same bytes (SPEC section 2), but ``send``/``recv``
carry msgpack (SPEC section 3) instead of pickle, and every reader has a frame
size limit. :func:`Pipe` makes a connected pair. :class:`Listener` and
:func:`Client` take an address (SPEC 4): ``unix:/path`` or a path (AF_UNIX
sockets), ``fifo:/path`` (named pipes), ``shm:NAME`` (shared-memory rings).
Each scheme's implementation comes from one table, :data:`SCHEME_IMPLS`, and
every address goes through one parser, :func:`gobridge.parse_address`.

The one connection class is gobridge._transport.base's; its transports (the
byte hooks) are gobridge._transport.fd (sockets, pipes, FIFOs) and
gobridge._transport.shm (rings).
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import tempfile
import time
from types import TracebackType
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Protocol, Tuple, Type, Union

from ._address import RESERVED_SCHEMES, SCHEMES, parse_address
from ._codec import DEFAULT_MAX_FRAME_SIZE
from ._transport import fifo, shm, unix
from ._transport.base import Connection, Pipe, _check_max_frame_size

__all__ = ["Connection", "Pipe", "Listener", "Client", "wait", "SCHEME_IMPLS"]

Address = Union[str, "os.PathLike[str]"]


class _ListenerImpl(Protocol):
    def accept(self, timeout: Optional[float] = None) -> Tuple[Connection, Optional[str]]: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class Scheme(NamedTuple):
    """One scheme's implementation: ``listen(rest, backlog, max_frame_size)``
    and ``client(rest, address, max_frame_size, timeout)``, rest being the
    address after its scheme as :func:`parse_address` returns it."""

    listen: Callable[[str, int, int], _ListenerImpl]
    client: Callable[[str, str, int, Optional[float]], Connection]


#: scheme -> implementation; the schemes of RESERVED_SCHEMES have none yet.
SCHEME_IMPLS: Dict[str, Scheme] = {
    "unix": Scheme(unix.listen, unix.client),
    "fifo": Scheme(fifo.listen, fifo.client),
    "shm": Scheme(shm.listen, shm.client),
}
assert set(SCHEME_IMPLS) | set(RESERVED_SCHEMES) == set(SCHEMES)


def _resolve(address: Address, family: Optional[str], authkey: Optional[bytes]) -> Tuple[str, str, Scheme]:
    """Parse address and check the options multiprocessing.connection takes
    but gobridge does not: ``authkey`` is never supported; ``family`` may be
    None or the scheme's own (``AF_UNIX``, ``AF_FIFO``, ``AF_SHM``).
    Returns the address as text, the rest after the scheme, the scheme's
    implementation."""
    text = os.fspath(address)
    scheme, rest = parse_address(text)  # bytes: refused there (ValueError)
    if authkey is not None:
        raise ValueError("gobridge: authkey is not supported")
    if family is not None and family != "AF_" + scheme.upper():
        raise ValueError(f"gobridge: family {family!r} is not supported for {scheme}: addresses")
    impl = SCHEME_IMPLS.get(scheme)
    if impl is None:
        raise NotImplementedError(f"gobridge: {scheme}: addresses are reserved for a later version")
    return text, rest, impl


class Listener:
    """A listener, as ``multiprocessing.connection.Listener``.

    ``address`` is ``"unix:/path"`` or a path (SPEC section 4): a unix socket
    whose file is created with mode 0600; a stale file left by a dead
    process is replaced, a live server's gives ``OSError(errno.EADDRINUSE)``,
    and a non-socket (regular file, directory, symlink) is refused the same
    way and left untouched. :meth:`close` removes the file if it is still ours.
    With no address (None or ''), the listener picks a fresh private one of
    ``family`` (default ``AF_UNIX``: a socket in a new 0700 directory, both
    removed by :meth:`close`), as multiprocessing does, reported in
    :attr:`address`.

    An ``shm:NAME`` address gives a shared-memory listener instead (SPEC
    section 11, a unix socket at ``/dev/shm/NAME`` for the handshake), a
    ``fifo:/path`` one a listener over named pipes (SPEC 6.6).

    ``authkey`` is not supported (gobridge does no authentication handshake;
    the 0600 socket file is the access control): passing one raises
    ``ValueError``. ``family`` may only be ``None`` or the scheme's own
    (``"AF_UNIX"``, ``"AF_FIFO"``, ``"AF_SHM"``).
    """

    def __init__(
        self,
        address: Optional[Address] = None,
        family: Optional[str] = None,
        backlog: int = 1,
        authkey: Optional[bytes] = None,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._impl: Optional[_ListenerImpl] = None
        self._tmpdir: Optional[str] = None
        self._last_accepted: Optional[str] = None
        if not address:  # None or '', as multiprocessing's arbitrary_address
            address = self._arbitrary_address(family)
        try:
            text, rest, scheme = _resolve(address, family, authkey)
            self._address = text
            self._impl = scheme.listen(rest, backlog, _check_max_frame_size(max_frame_size))
        except BaseException:
            self._remove_tmpdir()
            raise

    def _arbitrary_address(self, family: Optional[str]) -> str:
        """A fresh private address of family (default ``AF_UNIX``), as
        multiprocessing's ``arbitrary_address``: for ``AF_UNIX`` and
        ``AF_FIFO`` a path in a new directory of mode 0700 that close()
        removes (the unix one a bare path, as multiprocessing reports it);
        for ``AF_SHM`` a random ``shm:`` name. ``AF_INET`` is refused until a
        tcp: transport exists, with multiprocessing's error for a family it
        does not have."""
        if family in (None, "AF_UNIX", "AF_FIFO"):
            self._tmpdir = tempfile.mkdtemp(prefix="gobridge-")
            path = os.path.join(self._tmpdir, "listener-" + secrets.token_hex(4))
            return path if family != "AF_FIFO" else "fifo:" + path
        if family == "AF_SHM":
            return f"shm:gbl-{os.getpid()}-{secrets.token_hex(6)}"
        if family == "AF_INET":
            raise ValueError(f"Family {family} is not recognized.")
        raise ValueError("unrecognized family")

    def _remove_tmpdir(self) -> None:
        d, self._tmpdir = self._tmpdir, None
        if d is not None:
            shutil.rmtree(d, ignore_errors=True)

    @property
    def address(self) -> str:
        """The address this listener was created with, or the one it picked
        when given none."""
        return self._address

    @property
    def last_accepted(self) -> Optional[str]:
        """The peer address of the last accepted connection (usually '' for
        unix sockets; the listener's address for fifo: and shm:)."""
        return self._last_accepted

    def fileno(self) -> int:
        """The descriptor that is readable when a client asks (the listening
        socket, the rendezvous FIFO); an ``shm:`` listener has none (OSError)."""
        if self._impl is None:
            raise OSError("listener is closed")
        return self._impl.fileno()

    def accept(self, timeout: Optional[float] = None) -> Connection:
        """Wait for a client (up to timeout seconds, ``TimeoutError``; None:
        forever) and return the connection to it. ``fifo:`` and ``shm:``
        listeners run the handshakes of several clients side by side: one
        that stalls holds up no other."""
        if self._impl is None:
            raise OSError("listener is closed")
        conn, peer = self._impl.accept(timeout)
        self._last_accepted = self._address if peer is None else peer
        return conn

    def close(self) -> None:
        """Stop listening and remove the file at the address if it is still
        ours (and, for fifo: and shm:, end the handshakes in progress). Idempotent."""
        impl, self._impl = self._impl, None
        try:
            if impl is not None:
                impl.close()
        finally:
            self._remove_tmpdir()

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
        state = "closed" if self._impl is None else "listening"
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
    text, rest, scheme = _resolve(address, family, authkey)
    return scheme.client(rest, text, _check_max_frame_size(max_frame_size), timeout)


# wait(): how often connections without a descriptor (shm:) are polled, at
# first and at most, in seconds.
_POLL_FIRST = 0.0002
_POLL_MAX = 0.01


def wait(object_list: Iterable[Any], timeout: Optional[float] = None) -> List[Any]:
    """Wait till an object in object_list is ready/readable, as
    ``multiprocessing.connection.wait``; return those that are (in
    object_list's order), or ``[]`` after timeout seconds (None: no limit).

    Accepts what the stdlib's does (connections, gobridge's and the
    stdlib's, sockets, objects with ``fileno()``, descriptors as ints) and
    also ``shm:`` connections, which have no descriptor: while any is in
    the list, the descriptors are waited on in slices of at most 10 ms and
    the rings polled between them (readable: a message, end of stream or a
    dead peer, as :meth:`Connection.poll` says). A gobridge connection
    holding a message that is not yet returned (only shm: ones keep any
    between calls) is ready at once. A closed connection raises OSError, as
    the stdlib's does.
    """
    objs = list(object_list)
    polled: List[Connection] = []  # no descriptor: Connection.poll
    with selectors.DefaultSelector() as sel:
        for obj in objs:
            if isinstance(obj, Connection):
                if obj.closed:
                    raise OSError("handle is closed")
                try:
                    obj.fileno()
                except OSError:
                    polled.append(obj)
                    continue
                if obj._rend > obj._rstart:  # part of a message an interrupted receive took
                    polled.append(obj)
            sel.register(obj, selectors.EVENT_READ)
        deadline = None if timeout is None else time.monotonic() + timeout
        step = _POLL_FIRST
        while True:
            ready = {id(o) for o in polled if o.poll(0)}
            slice_: Optional[float]
            if ready or (deadline is not None and deadline <= time.monotonic()):
                slice_ = 0
            elif polled:
                slice_ = step
                if deadline is not None:
                    slice_ = max(0.0, min(slice_, deadline - time.monotonic()))
                step = min(step * 2, _POLL_MAX)
            else:
                slice_ = None if deadline is None else max(0.0, deadline - time.monotonic())
            if sel.get_map():
                ready.update(id(key.fileobj) for key, _ in sel.select(slice_))
            elif slice_:
                time.sleep(slice_)
            if ready:
                return [o for o in objs if id(o) in ready]
            if deadline is not None and deadline <= time.monotonic():
                return []
