"""asyncio connections and listeners, with the names of the blocking ones
(wire/SPEC.md 2, 5, 6; issue 16).

``await Client(address)``, ``Listener(address)`` with ``await accept()``,
and :func:`wrap` (any descriptor :class:`gobridge.Connection`: a ``Pipe()``
end, :func:`gobridge.parent`, one a blocking Listener accepted) give a
:class:`Connection` whose ``send``/``recv``/``send_bytes``/``recv_bytes``/
``recv_bytes_into`` are awaited. They speak the same frames as the blocking
connection (SPEC 2) and run on the event loop's own readiness
(``loop.add_reader``/``add_writer`` on the descriptor, made non-blocking):
no thread per call, no polling. Works on every descriptor transport:
``unix:``, ``fifo:``, sockets and pipes; other schemes (``tcp:``) connect
through their blocking ``Client`` in the loop's default executor and then
run as these do. ``shm:`` connections have no descriptor yet and are
refused with ``TypeError``.

Cancellation is safe:

* a cancelled receive loses nothing: the bytes of a frame read so far stay
  in the connection, and the next receive resumes that frame, so it gets
  the next whole message;
* a cancelled send either wrote none of its frame (cancelled before any
  byte left) or its frame is finished in the background (the rest copied
  first, so the caller may reuse its buffer), never a broken frame; the
  next send on the connection waits for it, :meth:`Connection.drain` waits
  for it, and ``async with`` waits for it before closing. A failure of that
  background write is raised by the next send.

The named objects (:class:`Queue`, :class:`JoinableQueue`,
:class:`Semaphore`, :class:`Lock`) are the blocking ones (SPEC 10: every
Go and Python process that opens the name shares them) with awaited
``get``/``put``/``acquire``/``join``: each try is the non-blocking
operation, and between tries the task waits for one timer per event loop
that looks at every waiting object without a lock or a system call (a
queue's message count, a semaphore's value), first after ``POLL_FIRST``
seconds, the gap doubling while nothing changes up to ``POLL_MAX`` (50 ms),
and wakes the tasks whose object changed. No thread, no busy loop: the
idle cost is one loop wake-up per ``POLL_MAX`` whatever the number of
waiters, and a value that arrives after a long idle spell is taken within
``POLL_MAX``. The operation that takes a message or a count runs in the
task and never awaits, so a cancelled ``get()`` loses no message and a
cancelled ``acquire()`` holds nothing.

Like the blocking connection, one receiver and one sender at a time make
sense; concurrent calls here are queued (one lock per direction), so
frames never interleave.
"""

from __future__ import annotations

import asyncio
import errno
import queue as _stdqueue
import fcntl
import os
import secrets
import socket
import struct
import time
import weakref
from types import TracebackType
from typing import Any, Awaitable, Callable, List, Optional, Type, TypeVar, Union

from ._address import MAX_UNIX_PATH, parse_address
from ._codec import DEFAULT_MAX_FRAME_SIZE, Default, ReadableBuffer, _decode, encode
from ._errors import BufferTooShort, ProtocolError
from ._transport import fifo as _fifo
from ._transport.base import Connection as _BlockingConnection
from ._transport.base import _check_max_frame_size, frame_too_large_received, frame_too_large_to_send, payload_view
from ._transport.fd import PIPE_BUF, FdTransport, SharedFdTransport
from . import connection as _connection
from . import queues as _queues
from . import synchronize as _synchronize
from ._internal.layout import Q_UNFIN, SEM_COUNT

__all__ = ["Connection", "Listener", "Client", "wrap", "Queue", "JoinableQueue", "Semaphore", "Lock"]

Address = Union[str, "os.PathLike[str]"]
WritableBuffer = Union[bytearray, memoryview]

_HEADER = struct.Struct("!i")
_HEADER64 = struct.Struct("!Q")
_MAX_SHORT = 0x7FFFFFFF
# A payload's buffer grows at most this far ahead of the bytes received, so
# a header that lies about its size costs little (as the blocking core).
_GROW_STEP = 1024 * 1024
# Payloads up to this size are written together with their header.
_SMALL_SEND = 64 * 1024
_TRUNCATED = "got end of file during message"

_T = TypeVar("_T")


def _wake(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


def _consume(views: List[memoryview], n: int) -> List[memoryview]:
    """views without their first n bytes."""
    out: List[memoryview] = []
    for v in views:
        if n >= len(v):
            n -= len(v)
            continue
        out.append(v[n:])
        n = 0
    return out


class Connection:
    """An asyncio connection over a descriptor connection (see :func:`wrap`).

    The methods are the blocking :class:`gobridge.Connection`'s, awaited
    where that one blocks: ``await send(obj)``, ``await recv()``,
    ``await send_bytes(buf, offset, size)``, ``await recv_bytes(maxlength)``,
    ``await recv_bytes_into(buf, offset)``; ``poll()``, ``fileno()`` and
    ``close()`` are plain calls. Exceptions are the blocking ones
    (``EOFError`` at end of stream, :class:`gobridge.ProtocolError` for a
    broken frame, :class:`gobridge.DecodeError` for a bad payload, which
    leaves the connection usable). To bound a call, use
    ``asyncio.wait_for``/``asyncio.timeout``: cancelling is safe (see the
    module's doc).
    """

    def __init__(self, conn: _BlockingConnection) -> None:
        """Use :func:`wrap`, :func:`Client` or :meth:`Listener.accept`."""
        t = conn._handle
        if t is None:
            raise OSError("handle is closed")
        if not isinstance(t, FdTransport):
            raise TypeError(
                f"gobridge.asyncio: a connection over {t.describe()} has no descriptor to wait on "
                "(shm: connections are not pollable yet); use a unix:, fifo: or tcp: address"
            )
        if conn._wbuf:
            conn.flush()
        rfd, wfd = t._rfd, t._wfd
        self._conn = conn
        self._rfd = rfd if conn.readable else None
        self._wfd = wfd if conn.writable else None
        self._shared = isinstance(t, SharedFdTransport)
        for fd in {rfd, wfd} - {None}:
            assert fd is not None
            os.set_blocking(fd, False)
        # Bytes an interrupted blocking receive had read already: consumed first.
        self._carry = bytes(conn._rview[conn._rstart:conn._rend]) if conn._rend > conn._rstart else b""
        conn._rstart = conn._rend = 0
        self._max_frame_size = conn.max_frame_size
        self._default: Optional[Default] = conn._default
        # Receive state, kept across awaits (a cancelled receive resumes here).
        self._hbuf = bytearray(12)
        self._hview = memoryview(self._hbuf)
        self._hgot = 0
        self._n = -1  # the payload's length once its header is in
        self._pbuf: Optional[bytearray] = None
        self._pgot = 0
        self._rerror: Optional[BaseException] = None
        self._rlock = asyncio.Lock()
        self._rwaiter: Optional[asyncio.Future[None]] = None
        # Send state: the rest of a frame being written in the background.
        self._wlock = asyncio.Lock()
        self._wpending: List[memoryview] = []
        self._wstarted = False
        self._wdrain: Optional[asyncio.Future[None]] = None
        self._werror: Optional[BaseException] = None
        self._locked = False  # a shared FIFO's flock is held for the frame in progress
        self._closed = False

    # --- state -------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<gobridge.asyncio.Connection {self._conn!r}>"

    @property
    def closed(self) -> bool:
        """True if the connection is closed."""
        return self._closed

    @property
    def readable(self) -> bool:
        """True if the connection is readable."""
        return self._conn.readable

    @property
    def writable(self) -> bool:
        """True if the connection is writable."""
        return self._conn.writable

    @property
    def max_frame_size(self) -> int:
        """The largest payload this connection receives or sends, in bytes."""
        return self._max_frame_size

    def fileno(self) -> int:
        """File descriptor of the connection (non-blocking now)."""
        if self._closed:
            raise OSError("handle is closed")
        return self._conn.fileno()

    def set_default(self, default: Optional[Default]) -> None:
        """As :meth:`gobridge.Connection.set_default`: ``default(obj)``
        for an object :meth:`send` cannot encode."""
        if default is not None and not callable(default):
            raise TypeError(f"default must be callable or None, not {type(default).__name__}")
        self._default = default

    def poll(self) -> bool:
        """Whether a receive would make progress now without waiting: bytes
        or end of stream are waiting, or a cancelled receive left part of a
        frame here. It does not wait: to wait, await :meth:`recv` (bounded
        by ``asyncio.wait_for``)."""
        if self._closed:
            raise OSError("handle is closed")
        if self._rfd is None:
            raise OSError("connection is write-only")
        if self._rerror is not None or self._hgot or self._carry:
            return True
        return self._conn._handle is not None and self._conn._handle.wait(0)

    def close(self) -> None:
        """Close the connection now. A frame a cancelled send left to finish
        in the background is cut off (the peer sees a truncated frame);
        ``await drain()`` first, or leave an ``async with`` block, to finish
        it. Tasks waiting on the connection get ``OSError``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = self._loop_or_none()
        for fd, remove in ((self._rfd, "reader"), (self._wfd, "writer")):
            if fd is not None and loop is not None:
                getattr(loop, "remove_" + remove)(fd)
        if self._rwaiter is not None and not self._rwaiter.done():
            self._rwaiter.set_exception(OSError("handle is closed"))
            self._rwaiter.exception()  # retrieved: a waiter may be gone already
        drain, self._wdrain = self._wdrain, None
        self._wpending = []
        if drain is not None and not drain.done():
            drain.set_result(None)
        self._unlock()
        self._conn.close()

    async def drain(self) -> None:
        """Wait until the frame a cancelled send left is written (no-op if none);
        raise what that write failed with."""
        drain = self._wdrain
        if drain is not None:
            await asyncio.shield(drain)
        self._raise_werror()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        try:
            if not self._closed and self._wdrain is not None:
                await asyncio.shield(self._wdrain)
        finally:
            self.close()

    @staticmethod
    def _loop_or_none() -> Optional[asyncio.AbstractEventLoop]:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    # --- receiving ---------------------------------------------------------

    def _check_readable(self) -> None:
        if self._closed:
            raise OSError("handle is closed")
        if self._rerror is not None:
            # SPEC 2.1: after a framing error every receive fails the same way.
            raise type(self._rerror)(*self._rerror.args)
        if self._rfd is None:
            raise OSError("connection is write-only")

    def _framing_error(self, err: ProtocolError) -> ProtocolError:
        self._rerror = err
        self._hgot, self._n, self._pbuf = 0, -1, None
        return err

    def _read(self, view: memoryview) -> Optional[int]:
        """Read what is there into view: the count, 0 at end of stream, None if nothing is there."""
        carry = self._carry
        if carry:
            k = min(len(carry), len(view))
            view[:k] = carry[:k]
            self._carry = carry[k:]
            return k
        assert self._rfd is not None
        try:
            return os.readv(self._rfd, [view])
        except BlockingIOError:
            return None

    def _try_frame(self, limit: int) -> Optional[bytearray]:
        """Advance the frame in progress with the bytes there now; its
        payload once whole (the state reset), else None. Reads exactly the
        frame's bytes, never the next one's (SPEC 6.4: readiness stays exact)."""
        while self._n < 0:
            need = 4
            if self._hgot >= 4:
                first = int(_HEADER.unpack_from(self._hbuf)[0])
                if first == -1:
                    need = 12
                elif first < 0:
                    raise self._framing_error(ProtocolError(f"bad message header: negative length {first}"))
                if self._hgot >= need:
                    n = first if need == 4 else int(_HEADER64.unpack_from(self._hbuf, 4)[0])
                    if need == 12 and n <= _MAX_SHORT:
                        raise self._framing_error(
                            ProtocolError(f"bad message header: non-canonical 8-byte length {n}"))
                    self._n, self._pbuf, self._pgot = n, None, 0
                    break
            got = self._read(self._hview[self._hgot:need])
            if got is None:
                return None
            if got == 0:
                if self._hgot == 0:
                    raise EOFError
                raise self._framing_error(ProtocolError(_TRUNCATED))
            self._hgot += got
        n = self._n
        if n > limit:
            raise self._framing_error(frame_too_large_received(n, limit, self._max_frame_size))
        buf = self._pbuf
        if buf is None:
            buf = self._pbuf = bytearray(min(n, _GROW_STEP))
        while self._pgot < n:
            if len(buf) == self._pgot:
                buf.extend(bytes(min(_GROW_STEP, n - len(buf))))
            view = memoryview(buf)[self._pgot:]
            try:
                got = self._read(view)
            finally:
                view.release()
            if got is None:
                return None
            if got == 0:
                raise self._framing_error(ProtocolError(_TRUNCATED))
            self._pgot += got
        self._hgot, self._n, self._pbuf = 0, -1, None
        return buf

    async def _wait_readable(self) -> None:
        assert self._rfd is not None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._rwaiter = fut
        loop.add_reader(self._rfd, _wake, fut)
        try:
            await fut
        finally:
            self._rwaiter = None
            if not self._closed:
                loop.remove_reader(self._rfd)

    async def _recv_frame(self, limit: int) -> bytearray:
        self._check_readable()
        async with self._rlock:
            while True:
                self._check_readable()
                frame = self._try_frame(limit)
                if frame is not None:
                    return frame
                await self._wait_readable()

    async def recv(self) -> Any:
        """Receive one message and decode it (SPEC section 3); as
        :meth:`gobridge.Connection.recv`."""
        return _decode(await self._recv_frame(self._max_frame_size))

    async def recv_bytes(self, maxlength: Optional[int] = None) -> bytes:
        """Receive one message's bytes, undecoded; as
        :meth:`gobridge.Connection.recv_bytes` (a message longer than
        ``maxlength`` raises :class:`gobridge.FrameTooLargeError` and leaves
        the connection unreadable)."""
        limit = self._max_frame_size
        if maxlength is not None:
            if maxlength < 0:
                raise ValueError("negative maxlength")
            limit = min(limit, maxlength)
        return bytes(await self._recv_frame(limit))

    async def recv_bytes_into(self, buf: WritableBuffer, offset: int = 0) -> int:
        """Receive one message's bytes into ``buf`` at byte ``offset``; return
        its size. A message that does not fit raises
        ``multiprocessing.BufferTooShort`` holding it (consumed)."""
        with memoryview(buf) as m:
            dest = m if m.itemsize == 1 and m.ndim == 1 else m.cast("B")
            if offset < 0:
                raise ValueError("negative offset")
            if offset > dest.nbytes:
                raise ValueError("offset too large")
        frame = await self._recv_frame(self._max_frame_size)
        n = len(frame)
        with memoryview(buf) as m:
            dest = m if m.itemsize == 1 and m.ndim == 1 else m.cast("B")
            if offset + n > dest.nbytes:
                raise BufferTooShort(bytes(frame))
            dest[offset:offset + n] = frame
        return n

    # --- sending -----------------------------------------------------------

    def _raise_werror(self) -> None:
        err, self._werror = self._werror, None
        if err is not None:
            raise err

    def _check_writable(self) -> None:
        if self._closed:
            raise OSError("handle is closed")
        if self._wfd is None:
            raise OSError("connection is read-only")

    async def send(self, obj: object) -> None:
        """Send obj encoded as one msgpack object (SPEC section 3); as
        :meth:`gobridge.Connection.send`. See the module's doc for what a
        cancelled send guarantees."""
        self._check_writable()
        await self._send_frame(encode(obj, default=self._default))

    async def send_bytes(self, buf: ReadableBuffer, offset: int = 0, size: Optional[int] = None) -> None:
        """Send the bytes of a bytes-like object as one message, unencoded;
        as :meth:`gobridge.Connection.send_bytes`."""
        self._check_writable()
        await self._send_frame(payload_view(buf, offset, size))

    def _write_some(self, views: List[memoryview]) -> List[memoryview]:
        """Write what the descriptor takes now; return what is left."""
        assert self._wfd is not None
        while views:
            try:
                n = os.writev(self._wfd, views) if len(views) > 1 else os.write(self._wfd, views[0])
            except BlockingIOError:
                return views
            if n:
                self._wstarted = True
            views = _consume(views, n)
        return views

    def _lock_shared(self, size: int) -> bool:
        """A shared FIFO's flock for a frame of size bytes (SPEC 6.6), without waiting."""
        if not self._shared:
            return True
        assert self._wfd is not None
        try:
            fcntl.flock(self._wfd, (fcntl.LOCK_SH if size <= PIPE_BUF else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._locked = True
        return True

    def _unlock(self) -> None:
        if self._locked:
            self._locked = False
            if self._wfd is not None and not self._closed:
                fcntl.flock(self._wfd, fcntl.LOCK_UN)

    def _on_writable(self) -> None:
        drain = self._wdrain
        if drain is None:
            return
        try:
            self._wpending = self._write_some(self._wpending)
        except OSError as e:
            self._werror = e
            self._wpending = []
        if self._wpending:
            return
        assert self._wfd is not None
        asyncio.get_running_loop().remove_writer(self._wfd)
        self._unlock()
        self._wdrain = None
        drain.set_result(None)

    async def _send_frame(self, payload: Union[bytes, memoryview]) -> None:
        n = len(payload)
        if n > self._max_frame_size:
            raise frame_too_large_to_send(n, self._max_frame_size)
        header = _HEADER.pack(n) if n <= _MAX_SHORT else _HEADER.pack(-1) + _HEADER64.pack(n)
        async with self._wlock:
            if self._wdrain is not None:  # the rest of a cancelled send's frame
                await asyncio.shield(self._wdrain)
            self._check_writable()
            self._raise_werror()
            delay = 0.0001
            while not self._lock_shared(len(header) + n):  # another writer's large frame
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.01)
                self._check_writable()
            self._wstarted = False
            views = [memoryview(header + payload)] if n <= _SMALL_SEND else [memoryview(header), memoryview(payload)]
            try:
                views = self._write_some(views)
            except BaseException:
                self._unlock()
                raise
            if not views:
                self._unlock()
                return
            loop = asyncio.get_running_loop()
            wfd = self._wfd
            assert wfd is not None
            drain: asyncio.Future[None] = loop.create_future()
            self._wpending, self._wdrain = views, drain
            loop.add_writer(wfd, self._on_writable)
            try:
                await asyncio.shield(drain)
            except asyncio.CancelledError:
                if drain.done() or self._closed:
                    raise
                if not self._wstarted:  # none of the frame left: drop it
                    loop.remove_writer(wfd)
                    self._wpending, self._wdrain = [], None
                    self._unlock()
                    drain.set_result(None)
                else:  # finish it in the background, from a copy
                    self._wpending = [memoryview(b"".join(self._wpending))]
                raise
            self._check_writable()
            self._raise_werror()


def wrap(conn: _BlockingConnection) -> Connection:
    """An asyncio :class:`Connection` over a blocking gobridge connection
    (a ``Pipe()`` end, :func:`gobridge.parent`, one from ``Client``,
    ``Listener.accept`` or ``open_fifo``), which it takes over: its
    descriptors become non-blocking, so use only the returned object from
    then on (closing it closes ``conn``). Frames ``conn``'s write buffer
    held are written first. ``shm:`` connections raise ``TypeError``."""
    return Connection(conn)


# --- listeners -------------------------------------------------------------


async def _readable(fds: List[int]) -> None:
    """Wait until one of fds is readable."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    for fd in fds:
        loop.add_reader(fd, _wake, fut)
    try:
        await fut
    finally:
        for fd in fds:
            loop.remove_reader(fd)


async def _in_executor(fn: Callable[[], _T], discard: Callable[[_T], None]) -> _T:
    """fn() in the loop's default executor; if the caller is cancelled, what
    fn returns later is discarded."""
    fut = asyncio.get_running_loop().run_in_executor(None, fn)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        def late(f: "asyncio.Future[_T]") -> None:
            if not f.cancelled() and f.exception() is None:
                discard(f.result())
        fut.add_done_callback(late)
        raise


class Listener:
    """An asyncio listener, as :class:`gobridge.Listener` (the same
    arguments; it makes one and holds it): ``await accept()``, ``close()``,
    ``async with``. For ``unix:`` and ``fifo:`` (and ``tcp:``) addresses;
    an ``shm:`` one raises ``TypeError`` (it has no descriptor yet).
    """

    def __init__(
        self,
        address: Optional[Address] = None,
        family: Optional[str] = None,
        backlog: int = 1,
        authkey: Optional[bytes] = None,
        **kwargs: Any,
    ) -> None:
        """As :class:`gobridge.Listener` (``max_frame_size=`` and the other keywords too)."""
        self._listener = _connection.Listener(address, family, backlog, authkey, **kwargs)
        try:
            self._listener.fileno()
        except OSError:
            self._listener.close()
            raise TypeError(
                f"gobridge.asyncio: {self._listener.address!r} has no descriptor to wait on "
                "(shm: listeners are not pollable yet)"
            ) from None

    @property
    def address(self) -> _connection.PeerAddress:
        """The address listened on (the one picked when given none; a tcp: one's real port), as :class:`gobridge.Listener`'s."""
        return self._listener.address

    @property
    def last_accepted(self) -> Optional[_connection.PeerAddress]:
        """The peer address of the last accepted connection, as :class:`gobridge.Listener`'s."""
        return self._listener.last_accepted

    def fileno(self) -> int:
        """The descriptor that is readable when a client asks."""
        return self._listener.fileno()

    async def accept(self) -> Connection:
        """Wait for a client and return the connection to it. Cancelling
        loses no client: one not accepted yet waits for the next accept
        (a ``fifo:`` handshake in progress goes on). Bound it with
        ``asyncio.wait_for``."""
        blocking = self._listener
        while True:
            impl = blocking._impl
            if impl is None:
                raise OSError("listener is closed")
            step = getattr(impl, "accept_nowait", None)
            peer: Optional[_connection.PeerAddress]
            if step is not None:
                conn, fds = step()
                peer = None
            else:
                fds = [impl.fileno()]
                try:
                    conn, peer = impl.accept(0)
                except (TimeoutError, BlockingIOError):
                    conn = None
            if conn is not None:
                break
            await _readable(fds)
        blocking._last_accepted = blocking.address if peer is None else peer
        authkey = blocking._authkey
        if authkey is not None:  # the blocking listener's handshake (SPEC 14), bounded by its timeout
            timeout = blocking._handshake_timeout
            accepted = conn
            # Cancelled, the handshake still ends within its timeout; the
            # connection is then closed (a failed handshake closes it itself).
            await _in_executor(lambda: _connection._handshake(accepted, authkey, True, timeout), lambda _: accepted.close())
        return wrap(conn)

    def close(self) -> None:
        """Stop listening and remove what the listener made (as :meth:`gobridge.Listener.close`). Idempotent."""
        self._listener.close()

    async def __aenter__(self) -> Listener:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<gobridge.asyncio.Listener {self._listener.address!r}>"


# --- clients -----------------------------------------------------------------


async def _sleep_before(deadline: Optional[float], delay: float, what: str) -> float:
    """Sleep delay (at most until deadline; TimeoutError(what) past it); return the next delay."""
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, what)
        delay = min(delay, left)
    await asyncio.sleep(delay)
    return min(delay * 2, 0.01)


async def _unix_client(path: str, address: str, max_frame_size: int, deadline: Optional[float]) -> _BlockingConnection:
    """gobridge._transport.unix.client, awaited: a connect refused for a full
    backlog (EAGAIN) is retried."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    anchor: Optional[int] = None
    try:
        sock.setblocking(False)
        name = path
        if len(os.fsencode(path)) > MAX_UNIX_PATH:
            anchor = os.open(path, os.O_PATH | os.O_CLOEXEC)
            name = f"/proc/self/fd/{anchor}"
        delay = 0.0005
        while True:
            try:
                sock.connect(name)
                break
            except (BlockingIOError, InterruptedError):
                delay = await _sleep_before(deadline, delay, f"gobridge: timed out connecting to {address!r}")
    except OSError as e:
        sock.close()
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED):
            raise OSError(e.errno, f"gobridge: no listener at {address!r}: {e.strerror}") from None
        raise
    except BaseException:
        sock.close()
        raise
    finally:
        if anchor is not None:
            os.close(anchor)
    return _BlockingConnection(sock.detach(), max_frame_size=max_frame_size)


async def _open_fifo_writer(path: str, deadline: Optional[float], alive: Optional[Callable[[], None]] = None) -> int:
    """gobridge._transport.fifo._open_writer, awaited."""
    _fifo._check_fifo(path, os.lstat(path))
    delay = 0.0001
    checked = time.monotonic()
    while True:
        try:
            return _fifo._open(path, os.O_WRONLY)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
        if alive is not None and time.monotonic() - checked >= 0.1:
            alive()
            checked = time.monotonic()
        delay = await _sleep_before(deadline, delay, f"gobridge: no reader opened {path!r} in time")


async def _fifo_client(path: str, address: str, max_frame_size: int, deadline: Optional[float]) -> _BlockingConnection:
    """gobridge._transport.fifo.client (SPEC 6.6), awaited."""
    from ._errors import PeerGoneError
    try:
        _fifo._check_fifo(path, os.lstat(path))
    except FileNotFoundError as e:
        raise FileNotFoundError(e.errno, f"gobridge: no listener at {address!r}: {e.strerror}") from None
    name = f"{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(6)}"
    base = os.path.join(os.path.dirname(path), name)
    fds: List[int] = []
    try:
        for suffix in (_fifo._UP, _fifo._DOWN):
            os.mkfifo(base + suffix, 0o600)
        fds.append(_fifo._open(base + _fifo._DOWN, os.O_RDONLY))
        payload = encode(name)
        frame = _HEADER.pack(len(payload)) + payload
        if len(frame) > PIPE_BUF:
            raise ValueError("gobridge: fifo path too long")
        rendezvous = await _open_fifo_writer(path, deadline)
        try:
            delay = 0.0001
            while True:
                try:
                    os.write(rendezvous, frame)  # <= PIPE_BUF: whole or not at all
                    break
                except BlockingIOError:  # the listener's FIFO is full
                    delay = await _sleep_before(deadline, delay, f"gobridge: listener at {path!r} is not accepting")
        finally:
            os.close(rendezvous)

        def listener_alive() -> None:  # a dead listener leaves the rendezvous without a reader
            if not _fifo._fifo_has_reader(path):
                raise PeerGoneError(errno.ECONNRESET, f"gobridge: the listener at {address!r} went away")

        try:
            fds.append(await _open_fifo_writer(base + _fifo._UP, deadline, listener_alive))
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
        for suffix in (_fifo._UP, _fifo._DOWN):
            try:
                os.unlink(base + suffix)
            except OSError:
                pass
    return _fifo.fifo_connection(fds[0], fds[1], max_frame_size=max_frame_size)


_NATIVE: "dict[str, Callable[[str, str, int, Optional[float]], Awaitable[_BlockingConnection]]]" = {
    "unix": _unix_client,
    "fifo": _fifo_client,
}


async def Client(
    address: Any,
    family: Optional[str] = None,
    authkey: Optional[bytes] = None,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    timeout: Optional[float] = None,
) -> Connection:
    """Connect to a listener, as :func:`gobridge.Client` (the same
    arguments and errors), and return an asyncio :class:`Connection`.

    ``unix:`` and ``fifo:`` connect on the event loop (``timeout`` bounds
    the connect; cancelling leaves nothing behind). Other schemes, and an
    ``authkey``, run the blocking ``Client`` in the loop's default executor
    (a connection made after the caller was cancelled is closed). ``shm:``
    raises ``TypeError`` (no descriptor yet).
    """
    mfs = _check_max_frame_size(max_frame_size)
    if isinstance(address, (str, os.PathLike)) and authkey is None:
        text = os.fspath(address)
        scheme, rest = parse_address(text)
        native = _NATIVE.get(scheme)
        if native is not None and family in (None, "AF_" + scheme.upper()):
            deadline = None if timeout is None else time.monotonic() + timeout
            return wrap(await native(rest, text, mfs, deadline))
        if scheme == "shm":
            raise TypeError(f"gobridge.asyncio: {text!r}: shm: connections are not pollable yet")
    conn = await _in_executor(
        lambda: _connection.Client(address, family, authkey, max_frame_size=mfs, timeout=timeout),
        _BlockingConnection.close)
    return wrap(conn)


# --- named objects ---------------------------------------------------------

#: Seconds between the looks of an event loop's named-object waiters: the
#: first, doubling while nothing changes up to the last (what idle waiters
#: cost, and how late a long-idle waiter may see a change).
POLL_FIRST = 0.0002
POLL_MAX = 0.05


class _Ticker:
    """The one timer of an event loop's named-object waiters: each tick
    runs every waiter's cheap, lock-free ``ready()`` look and wakes the
    tasks whose object may have changed, which then try the real
    (non-blocking) operation themselves. The tick never takes a message
    or a count itself, so a task cancelled at any point holds nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: "dict[asyncio.Future[bool], tuple[Callable[[], bool], Optional[float]]]" = {}
        self._timer: Optional[asyncio.TimerHandle] = None
        self._delay = POLL_FIRST

    def wait(self, ready: Callable[[], bool], deadline: Optional[float], fresh: bool) -> "asyncio.Future[bool]":
        """A future set True when ready() says so, False at deadline (a
        loop.time() value). fresh: a new wait, looked at soon again."""
        fut: asyncio.Future[bool] = self._loop.create_future()
        self._waiters[fut] = (ready, deadline)
        if fresh:
            self._delay = POLL_FIRST
            if self._timer is not None and self._timer.when() > self._loop.time() + POLL_FIRST:
                self._timer.cancel()
                self._timer = None
        self._schedule()
        return fut

    def _schedule(self) -> None:
        if self._timer is not None or not self._waiters:
            return
        when = self._loop.time() + self._delay
        for _, deadline in self._waiters.values():
            if deadline is not None and deadline < when:
                when = deadline
        self._timer = self._loop.call_at(when, self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = self._loop.time()
        for fut, (ready, deadline) in list(self._waiters.items()):
            if fut.done():  # cancelled
                del self._waiters[fut]
                continue
            try:
                if deadline is not None and deadline <= now:
                    fut.set_result(False)  # the task makes one last try
                elif ready():
                    fut.set_result(True)
                else:
                    continue
            except Exception as e:  # the object broke or closed: the task raises it
                fut.set_exception(e)
            del self._waiters[fut]
        # Only a fresh wait brings the gap back down: a waiter whose look
        # says "maybe" but whose try fails keeps backing off.
        self._delay = min(self._delay * 2, POLL_MAX)
        self._schedule()


_TICKERS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticker]" = weakref.WeakKeyDictionary()


async def _retry(attempt: Callable[[], Optional[_T]], ready: Callable[[], bool], timeout: Optional[float]) -> Optional[_T]:
    """attempt() until it returns non-None, waiting on the loop's ticker for
    ready() between tries; None once timeout seconds (None: no limit) pass."""
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    got = attempt()
    if got is not None:
        return got
    loop = asyncio.get_running_loop()
    ticker = _TICKERS.get(loop)
    if ticker is None:
        ticker = _TICKERS[loop] = _Ticker(loop)
    deadline = None if timeout is None else loop.time() + timeout
    fresh = True
    while True:
        in_time = await ticker.wait(ready, deadline, fresh)
        fresh = False
        got = attempt()
        if got is not None or not in_time:
            return got


class Queue:
    """:class:`gobridge.Queue` (``multiprocessing.Queue``, named) with
    awaited ``get``/``put``: the same arguments, the same shared queue, one
    handle (see the module's doc for how the waits are done)."""

    _blocking_type: Type[_queues.Queue] = _queues.Queue

    def __init__(self, maxsize: int = 0, *, name: Optional[str] = None,
                 capacity: int = _queues.DEFAULT_CAPACITY, keep: bool = False, create: bool = True) -> None:
        """As :class:`gobridge.Queue`."""
        self._q = self._blocking_type(maxsize, name=name, capacity=capacity, keep=keep, create=create)

    @property
    def name(self) -> str:
        """The queue's name, for other processes to open."""
        return self._q.name

    def __repr__(self) -> str:
        return f"<gobridge.asyncio.{type(self).__name__} {self._q!r}>"

    async def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Remove and return a message, waiting up to timeout seconds (None:
        forever) for one; ``queue.Empty`` when none came (at once when block
        is False). Cancelling it loses no message."""
        if not block:
            return self._q.get_nowait()

        def attempt() -> Optional[List[Any]]:
            try:
                return [self._q.get_nowait()]
            except _stdqueue.Empty:
                return None

        q = self._q
        got = await _retry(attempt, lambda: q._closed or q._snapshot() > 0, timeout)
        if got is None:
            raise _stdqueue.Empty
        return got[0]

    def get_nowait(self) -> Any:
        """As :meth:`gobridge.Queue.get_nowait`."""
        return self._q.get_nowait()

    async def put(self, obj: object, block: bool = True, timeout: Optional[float] = None) -> None:
        """Put obj, waiting up to timeout seconds (None: forever) for room;
        ``queue.Full`` when there was none (at once when block is False).
        Cancelled, it put nothing."""
        q = self._q
        if q._closed:
            raise q._closed_error()
        q._used = True
        payload = encode(obj)  # once: an EncodeError before any wait
        if not block:
            q._put(payload, False, None)
            return

        gets = q._h.w32
        seen = [0]

        def attempt() -> Optional[bool]:
            if q._closed:
                raise q._closed_error()
            seen[0] = gets[_queues._NGET]  # before the try: a get after it shows
            try:
                q._put(payload, False, None)
                return True
            except _stdqueue.Full:
                return None

        def ready() -> bool:  # a get since the last try made room, maybe
            return q._closed or gets[_queues._NGET] != seen[0]

        if await _retry(attempt, ready, timeout) is None:
            raise _stdqueue.Full

    def put_nowait(self, obj: object) -> None:
        """As :meth:`gobridge.Queue.put_nowait`."""
        self._q.put_nowait(obj)

    def qsize(self) -> int:
        """The number of messages (a snapshot)."""
        return self._q.qsize()

    def empty(self) -> bool:
        """Whether the queue holds no message (a snapshot)."""
        return self._q.empty()

    def full(self) -> bool:
        """Whether the queue holds maxsize messages (a snapshot)."""
        return self._q.full()

    def close(self) -> None:
        """Release this handle (the last one removes the queue unless kept). Idempotent."""
        self._q.close()

    async def __aenter__(self: "_Q") -> "_Q":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


_Q = TypeVar("_Q", bound=Queue)


class JoinableQueue(Queue):
    """:class:`gobridge.JoinableQueue` with awaited ``get``/``put``/``join``."""

    _blocking_type = _queues.JoinableQueue

    def task_done(self) -> None:
        """Mark one message got as processed (as :meth:`gobridge.JoinableQueue.task_done`)."""
        q = self._q
        assert isinstance(q, _queues.JoinableQueue)
        q.task_done()

    async def join(self) -> None:
        """Wait until every message put has been marked by :meth:`task_done`."""
        q = self._q

        def attempt() -> Optional[bool]:
            if q._closed or q._h.closed:
                raise q._closed_error()
            q._h.check()
            return True if q._h.u32(Q_UNFIN) == 0 else None

        await _retry(attempt, lambda: q._closed or q._h.u32(Q_UNFIN) == 0, None)


class Semaphore:
    """:class:`gobridge.Semaphore` (named) with ``await acquire()`` and
    ``async with``."""

    def __init__(self, value: int = 1, *, name: Optional[str] = None, keep: bool = False,
                 create: bool = True) -> None:
        """As :class:`gobridge.Semaphore`."""
        self._s: Union[_synchronize.Semaphore, _synchronize.Lock] = _synchronize.Semaphore(
            value, name=name, keep=keep, create=create)

    @property
    def name(self) -> str:
        """The object's name, for other processes to open."""
        return self._s.name

    def __repr__(self) -> str:
        return f"<gobridge.asyncio.{type(self).__name__} {self._s!r}>"

    async def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        """True once acquired; False when block is False and it is not
        free, or after timeout seconds (None: no limit). Cancelled, it holds
        nothing."""
        if not block:
            return self._s.acquire(False)
        return await _retry(lambda: True if self._s.acquire(False) else None, self._ready, timeout) is not None

    def _ready(self) -> bool:
        s = self._s
        return not isinstance(s, _synchronize.Semaphore) or s._h.closed or s._h.u32(SEM_COUNT) > 0

    def release(self) -> None:
        """As the blocking object's release."""
        self._s.release()

    def close(self) -> None:
        """Release this handle; the last one removes the object."""
        self._s.close()

    async def __aenter__(self) -> bool:
        return await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class Lock(Semaphore):
    """:class:`gobridge.Lock` (named; a dead holder's lock is released) with
    ``await acquire()`` and ``async with lock:``. The holder is this handle,
    not the task: one task at a time should hold it."""

    def __init__(self, *, name: Optional[str] = None, keep: bool = False, create: bool = True) -> None:
        """As :class:`gobridge.Lock`."""
        self._s = _synchronize.Lock(name=name, keep=keep, create=create)
