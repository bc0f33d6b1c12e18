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

import contextlib
import os
import secrets
import selectors
import shutil
import tempfile
import time
import weakref
from multiprocessing import AuthenticationError
from types import TracebackType
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Protocol, Tuple, Type, Union

from . import _authkey
from ._address import RESERVED_SCHEMES, SCHEMES, join_tcp, parse_address
from ._codec import DEFAULT_MAX_FRAME_SIZE
from ._transport import fifo, shm, tcp, unix
from ._transport.base import Connection, Pipe, _check_max_frame_size

__all__ = [
    "Connection", "Pipe", "Listener", "Client", "wait", "SCHEME_IMPLS", "AuthenticationError", "HANDSHAKE_TIMEOUT",
    "Address", "PeerAddress",
]

#: Seconds a client has, from its accept, to complete the authkey handshake
#: (SPEC 14); ``Listener(handshake_timeout=)`` changes it.
HANDSHAKE_TIMEOUT = 5.0

#: An address: a SPEC 4 string (or path), or the stdlib's ('host', port) for TCP.
Address = Union[str, "os.PathLike[str]", Tuple[str, int]]
#: A peer's address as Listener.last_accepted reports it.
PeerAddress = Union[str, Tuple[str, int]]


class _ListenerImpl(Protocol):
    def accept(self, timeout: Optional[float] = None) -> Tuple[Connection, Optional[PeerAddress]]: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class Scheme(NamedTuple):
    """One scheme's implementation: ``listen(rest, backlog, max_frame_size,
    secured)`` and ``client(rest, address, max_frame_size, timeout)``, rest
    being the address after its scheme as :func:`parse_address` returns it;
    secured says the listener will authenticate its clients (an authkey) or
    its caller opted out of that (tcp: refuses a non-loopback address
    otherwise)."""

    listen: Callable[[str, int, int, bool], _ListenerImpl]
    client: Callable[[str, str, int, Optional[float]], Connection]


def _local(listen: Callable[[str, int, int], _ListenerImpl]) -> Callable[[str, int, int, bool], _ListenerImpl]:
    """A listen of a scheme that stays on this machine (its file modes are
    the access control), which takes secured and ignores it."""
    def run(rest: str, backlog: int, max_frame_size: int, secured: bool) -> _ListenerImpl:
        return listen(rest, backlog, max_frame_size)
    return run


#: scheme -> implementation; the schemes of RESERVED_SCHEMES have none yet.
SCHEME_IMPLS: Dict[str, Scheme] = {
    "unix": Scheme(_local(unix.listen), unix.client),
    "fifo": Scheme(_local(fifo.listen), fifo.client),
    "shm": Scheme(_local(shm.listen), shm.client),
    "tcp": Scheme(tcp.listen, tcp.client),
}
assert set(SCHEME_IMPLS) | set(RESERVED_SCHEMES) == set(SCHEMES)


def _check_authkey(authkey: object) -> Optional[bytes]:
    """authkey as multiprocessing.connection checks it: None or bytes."""
    if authkey is not None and not isinstance(authkey, bytes):
        raise TypeError("authkey should be a byte string")
    return authkey


_FAMILIES = {"unix": ("AF_UNIX",), "fifo": ("AF_FIFO",), "shm": ("AF_SHM",), "tcp": ("AF_INET", "AF_INET6")}


def _address_text(address: Address) -> str:
    """address as a SPEC 4 string: a ('host', port) tuple is a tcp: one."""
    if isinstance(address, tuple):
        if len(address) != 2 or not isinstance(address[0], str) or type(address[1]) is not int:
            raise ValueError(f"gobridge: invalid address {address!r}: want ('host', port)")
        return join_tcp(address[0], address[1])
    return os.fspath(address)


def _resolve(address: Address, family: Optional[str]) -> Tuple[str, str, Scheme]:
    """Parse address and check ``family``, which may be None or the
    scheme's own (``AF_UNIX``, ``AF_FIFO``, ``AF_SHM``; ``AF_INET`` or
    ``AF_INET6`` for tcp:). Returns the address as text, the rest after the
    scheme, the scheme's implementation."""
    text = _address_text(address)
    scheme, rest = parse_address(text)  # bytes: refused there (ValueError)
    if family is not None and family not in _FAMILIES[scheme]:
        raise ValueError(f"gobridge: family {family!r} is not supported for {scheme}: addresses")
    impl = SCHEME_IMPLS.get(scheme)
    if impl is None:
        raise NotImplementedError(f"gobridge: {scheme}: addresses are reserved for a later version")
    return text, rest, impl


@contextlib.contextmanager
def _bounded(conn: Connection, timeout: Optional[float]) -> Iterator[None]:
    """Every read of conn within timeout seconds from now (None: no bound),
    else AuthenticationError: a peer that stalls in the middle of a
    handshake frame cannot hold the caller either. The transport's fast path
    (a whole frame out of an shm: ring, which waits) is off meanwhile."""
    if timeout is None:
        yield
        return
    end = time.monotonic() + timeout
    transport = conn._handle
    assert transport is not None
    orig_readinto, orig_take = conn._readinto, conn._take

    def readinto(view: memoryview) -> int:
        if not transport.wait(max(0.0, end - time.monotonic())):
            raise AuthenticationError(f"handshake timed out after {timeout}s: the peer stalled")
        return orig_readinto(view)

    conn._readinto, conn._take = readinto, None
    try:
        yield
    finally:
        conn._readinto, conn._take = orig_readinto, orig_take


def _handshake(conn: Connection, authkey: bytes, listener: bool, timeout: Optional[float]) -> None:
    """Run the authkey handshake (SPEC 14) on conn within timeout, in the
    listener's or the client's order; close conn if it fails. Whatever the
    peer did wrong (a wrong key, a malformed or oversized message, end of
    stream, a stall) is AuthenticationError, its cause chained, so that an
    accept loop has one exception to catch."""
    try:
        with _bounded(conn, timeout):
            if listener:
                _authkey.accept_handshake(conn, authkey, timeout=timeout)
            else:
                _authkey.client_handshake(conn, authkey, timeout=timeout)
    except AuthenticationError:
        conn.close()
        raise
    except (EOFError, OSError) as e:
        conn.close()
        what = "the peer closed the connection" if isinstance(e, EOFError) else str(e) or type(e).__name__
        raise AuthenticationError(f"handshake failed: {what}") from e
    except BaseException:
        conn.close()
        raise


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

    ``"tcp:HOST:PORT"`` (or the stdlib's ``('host', port)``, ``family``
    ``"AF_INET"``) listens on TCP (SPEC 5.3) at the first address HOST
    resolves to; port 0 picks a free one, and :attr:`address` reports the
    address bound (a tuple if given a tuple, as the stdlib's). **Secure by
    default**: an address that is not a loopback one (``0.0.0.0``, a
    network interface's) is refused with ``ValueError`` unless ``authkey``
    is given or ``insecure_tcp=True`` says that every process able to reach
    the port, on any machine, may connect and exchange messages.

    ``authkey`` (bytes, else ``TypeError``; ``b''`` included) makes
    :meth:`accept` run multiprocessing's handshake (SPEC 14) on every
    connection, on every transport, in the stdlib's order: challenge the
    client, then answer its challenge. A client that fails it in any way (a
    wrong key, a malformed or oversized message, hanging up) or does not
    finish it within ``handshake_timeout`` seconds (default
    :data:`HANDSHAKE_TIMEOUT`; None: no bound) makes that accept raise
    ``multiprocessing.AuthenticationError``, the cause chained (its
    connection closed); the listener keeps serving. With no authkey the 0600 socket file is the
    access control (tcp:: loopback only, see above). ``family`` may only be
    ``None`` or the scheme's own (``"AF_UNIX"``, ``"AF_FIFO"``, ``"AF_SHM"``,
    ``"AF_INET"``).
    """

    def __init__(
        self,
        address: Optional[Address] = None,
        family: Optional[str] = None,
        backlog: int = 1,
        authkey: Optional[bytes] = None,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        handshake_timeout: Optional[float] = HANDSHAKE_TIMEOUT,
        insecure_tcp: bool = False,
    ) -> None:
        self._impl: Optional[_ListenerImpl] = None
        self._authkey = _check_authkey(authkey)
        self._handshake_timeout = handshake_timeout
        self._tmpdir: Optional[str] = None
        self._last_accepted: Optional[PeerAddress] = None
        if not address:  # None or '', as multiprocessing's arbitrary_address
            address = self._arbitrary_address(family)
        try:
            text, rest, scheme = _resolve(address, family)
            self._address: PeerAddress = text
            self._impl = scheme.listen(rest, backlog, _check_max_frame_size(max_frame_size),
                                       self._authkey is not None or insecure_tcp)
            if isinstance(self._impl, tcp.TcpListener):
                self._address = self._impl.sockname if isinstance(address, tuple) else self._impl.address
        except BaseException:
            self._remove_tmpdir()
            raise
        # As the stdlib's Listener (util.Finalize): one never closed still has
        # what it made removed when it is collected or the interpreter exits,
        # in the process that made it only (not in a forked child).
        self._finalizer = weakref.finalize(self, _release_listener, self._impl, self._tmpdir, os.getpid())

    def _arbitrary_address(self, family: Optional[str]) -> Address:
        """A fresh private address of family (default ``AF_UNIX``), as
        multiprocessing's ``arbitrary_address``: for ``AF_UNIX`` and
        ``AF_FIFO`` a path in a new directory of mode 0700 that close()
        removes (the unix one a bare path, as multiprocessing reports it);
        for ``AF_SHM`` a random ``shm:`` name; for ``AF_INET``
        ``('localhost', 0)``, a free loopback port, as the stdlib's."""
        if family in (None, "AF_UNIX", "AF_FIFO"):
            self._tmpdir = tempfile.mkdtemp(prefix="gobridge-")
            path = os.path.join(self._tmpdir, "listener-" + secrets.token_hex(4))
            return path if family != "AF_FIFO" else "fifo:" + path
        if family == "AF_SHM":
            return f"shm:gbl-{os.getpid()}-{secrets.token_hex(6)}"
        if family == "AF_INET":
            return ("localhost", 0)
        raise ValueError("unrecognized family")

    def _remove_tmpdir(self) -> None:
        d, self._tmpdir = self._tmpdir, None
        if d is not None:
            shutil.rmtree(d, ignore_errors=True)

    @property
    def address(self) -> PeerAddress:
        """The address this listener was created with, or the one it picked
        when given none. A tcp: listener reports the address it bound, its
        port the one picked for port 0: ``"tcp:127.0.0.1:41234"``, or
        ``('127.0.0.1', 41234)`` when it was given a tuple."""
        return self._address

    @property
    def last_accepted(self) -> Optional[PeerAddress]:
        """The peer address of the last accepted connection (usually '' for
        unix sockets; the listener's address for fifo: and shm:; the
        client's ``(host, port)`` for tcp:, as the stdlib's)."""
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
        that stalls holds up no other. With an authkey, the handshake
        follows (within ``handshake_timeout``, not ``timeout``); a client
        that fails it raises ``AuthenticationError``."""
        if self._impl is None:
            raise OSError("listener is closed")
        conn, peer = self._impl.accept(timeout)
        self._last_accepted = self._address if peer is None else peer
        if self._authkey is not None:
            _handshake(conn, self._authkey, True, self._handshake_timeout)
        return conn

    def close(self) -> None:
        """Stop listening and remove the file at the address if it is still
        ours (and, for fifo: and shm:, end the handshakes in progress). Idempotent."""
        impl, self._impl = self._impl, None
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()
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


def _release_listener(impl: _ListenerImpl, tmpdir: Optional[str], pid: int) -> None:
    """A Listener's finalizer: close it and remove its private directory, in its own process only."""
    if os.getpid() != pid:
        return
    try:
        impl.close()
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


def Client(
    address: Address,
    family: Optional[str] = None,
    authkey: Optional[bytes] = None,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    timeout: Optional[float] = None,
) -> Connection:
    """Connect to a listener, as ``multiprocessing.connection.Client``.

    ``timeout`` (seconds) bounds the connect, and the handshake again (by
    default :data:`HANDSHAKE_TIMEOUT`: a listener that stays silent cannot
    hold the client); the connection returned is blocking. No listener gives ``FileNotFoundError``
    or ``ConnectionRefusedError`` naming the address; a timeout gives
    ``TimeoutError``. ``authkey`` (bytes, else ``TypeError``) runs
    multiprocessing's handshake (SPEC 14) in the client's order: answer the
    listener's challenge, then challenge it; a wrong key, or any other
    failure of the handshake, raises ``multiprocessing.AuthenticationError``.
    A ``tcp:HOST:PORT`` address (or ``('host', port)``) connects over TCP
    (SPEC 5.3), trying each address HOST resolves to.
    An ``shm:NAME`` address connects over shared memory (SPEC section 11),
    a ``fifo:/path`` one over a private pair of named pipes (SPEC 6.6).
    """
    key = _check_authkey(authkey)
    text, rest, scheme = _resolve(address, family)
    conn = scheme.client(rest, text, _check_max_frame_size(max_frame_size), timeout)
    if key is not None:
        _handshake(conn, key, False, HANDSHAKE_TIMEOUT if timeout is None else timeout)
    return conn


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
