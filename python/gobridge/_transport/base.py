"""The one connection class: framed messages over a transport's bytes (wire/SPEC.md 2).

:class:`Connection` has the surface of ``multiprocessing.connection.Connection``
and writes and reads the same bytes (SPEC section 2), but ``send``/``recv``
carry msgpack (SPEC section 3) instead of pickle, and every reader has a frame
size limit.

Sends may be batched (:meth:`Connection.set_write_buffer`, Go's
``bridge.WithWriteBuffer``): frames then wait in the sender's buffer until it
fills, :meth:`Connection.flush`, a receive or poll, or close.

Reads are exact on every descriptor transport (SPEC 6.4): a receive reads
the 4-byte (or 12-byte) header, then exactly that payload, and never a byte
of the next message, as CPython does. What has not been returned stays in
the kernel, so ``select``/``selectors``/``multiprocessing.connection.wait``/
``loop.add_reader`` on ``fileno()`` see it, and processes sharing one end
after ``fork()`` each get distinct messages. On a stream socket a receive
may peek (``MSG_PEEK``) at the frames queued behind its own and read each
later one in a single read (see ``_peeked_frame``). A transport whose bytes no
descriptor announces (the shm ring) sets ``read_ahead = True``: its reads
fill the receive buffer with as many frames as are there, later receives
slice them out, and ``poll`` counts them. A payload too large for the
buffer is read straight into its final object, which grows at most
``_GROW_STEP`` bytes ahead of what has arrived, so a header that lies about
its size costs little.

Everything above is done here, once, for every transport. A transport
(:class:`Transport`) supplies only byte hooks: write these bytes, read into
this buffer, wait until readable, close, fileno. gobridge._transport.fd is
the one of sockets, pipes and FIFOs (``Connection(fd)`` uses it),
gobridge._transport.shm the one of shared-memory rings; a new transport is
one module that imports this one and calls :meth:`Connection._over`.
"""

from __future__ import annotations

import io
import os
import socket
import struct
from types import TracebackType
from typing import Any, Callable, List, Optional, Protocol, Tuple, Type, TypeVar, Union

from .._codec import DEFAULT_MAX_FRAME_SIZE, Default, ReadableBuffer, _decode, encode
from .._errors import BufferTooShort, CorruptError, FrameTooLargeError, ProtocolError
from .fd import FdTransport, SharedFdTransport

__all__ = ["Connection", "Pipe", "Transport", "HEADER", "pack_header"]

WritableBuffer = Union[bytearray, memoryview]

#: A frame's 4-byte big-endian signed length (SPEC 2); -1 announces an 8-byte one.
HEADER = _HEADER = struct.Struct("!i")
_HEADER64 = struct.Struct("!Q")
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from
_MAX_SHORT = 0x7FFFFFFF


def pack_header(n: int) -> bytes:
    """The header of an n-byte frame: 4 bytes, or 0xFFFFFFFF and 8 more past 2**31-1 (SPEC 2)."""
    return _pack_header(n) if n <= _MAX_SHORT else _pack_header(-1) + _HEADER64.pack(n)


# Receive buffer: frames whose payload fits are read through it, many per
# system call; larger ones are read directly into their final object.
_BUF_SIZE = 256 * 1024
# A large payload's object grows at most this far ahead of the bytes received.
_GROW_STEP = 1024 * 1024

_TRUNCATED = "got end of file during message"

# A socket receive peeks at most this many bytes to learn the lengths of
# the frames queued behind the one it reads (_peeked_frame).
_PEEK_SIZE = 64 * 1024
# After a peek that found at most one frame, this many receives read header
# and payload without one.
_PEEK_SKIP = 16

# Bumped in parent and child at every os.fork(): a connection made before it
# may now be read by several processes, so it stops peeking (_peeked_frame).
_fork_generation = [0]


def _forked() -> None:
    _fork_generation[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_parent=_forked, after_in_child=_forked)

# Where a connection's frame limit is set, for the messages that say how.
_RAISE_LIMIT = "pass a larger max_frame_size= to Client/Listener/Pipe/open_fifo/Process"


def frame_too_large_to_send(n: int, limit: int) -> FrameTooLargeError:
    """The error for sending an n-byte payload past the frame limit (SPEC 2.1).
    The message starts with "bad message length", as CPython's does."""
    return FrameTooLargeError(
        f"bad message length: {n} bytes is more than max_frame_size {limit} "
        f"({_RAISE_LIMIT}, on both ends)"
    )


def frame_too_large_received(n: int, limit: int, max_frame_size: int) -> FrameTooLargeError:
    """The error for a frame header claiming n bytes past limit (SPEC 2.1);
    limit is below max_frame_size when recv_bytes' maxlength set it."""
    if limit < max_frame_size:
        return FrameTooLargeError(f"bad message length: header claims {n} bytes, more than maxlength {limit}")
    return FrameTooLargeError(
        f"bad message length: header claims {n} bytes, the limit is {limit} "
        f"(max_frame_size: {_RAISE_LIMIT} to receive it)"
    )


def payload_view(buf: ReadableBuffer, offset: int = 0, size: Optional[int] = None) -> memoryview:
    """The bytes send_bytes(buf, offset, size) sends, checked as CPython checks them."""
    m = memoryview(buf)
    if m.itemsize > 1 or m.ndim != 1:
        m = m.cast("B")
    n = m.nbytes
    if offset < 0:
        raise ValueError("offset is negative")
    if n < offset:
        raise ValueError("buffer length < offset")
    if size is None:
        size = n - offset
    elif size < 0:
        raise ValueError("size is negative")
    elif offset + size > n:
        raise ValueError("buffer length < offset + size")
    return m[offset:offset + size]


class Transport(Protocol):
    """The byte hooks a connection runs on. Errors they raise reach the
    caller as they are, except :class:`CorruptError`, which ends the
    connection in both directions."""

    #: Why frames cannot be batched (set_write_buffer refuses), or None.
    no_batching: Optional[str]

    # Optional: read_ahead = True lets reads fill the receive buffer past the
    # message asked for (only where no descriptor announces readiness, and
    # nothing else can read the bytes: the shm ring); without it every read
    # is exact. fast_readinto, if not None, is readinto without a Python
    # frame (None from it: nothing there on a non-blocking descriptor).

    def write(self, header: bytes, payload: Union[bytes, bytearray, memoryview]) -> None:
        """Write header then payload, whole, waiting for room."""

    def readinto(self, view: memoryview) -> int:
        """Read what is there into view (at least a byte, waiting for it); 0 at end of stream."""

    def wait(self, timeout: Optional[float]) -> bool:
        """Whether a read would not wait, within timeout seconds (None: forever; 0: now)."""

    def close(self) -> None:
        """Release everything; the peer sees end of stream. Called once."""

    def fileno(self) -> int:
        """The descriptor to poll, or OSError."""

    def describe(self) -> str:
        """What repr shows of the transport."""


# Optional hook: a transport whose bytes sit in memory already (the shm
# ring) may have take_frame(limit) -> Optional[bytes], which waits for a
# byte and returns the payload of a whole frame of at most limit bytes with
# a 4-byte header, consumed, or None (nothing consumed: the connection then
# reads through its buffer). It is only called when the buffer is empty.
TakeFrame = Callable[[int], Optional[bytes]]


_C = TypeVar("_C", bound="Connection")


def _check_max_frame_size(max_frame_size: int) -> int:
    value = max_frame_size.__index__()
    if value <= 0:
        raise ValueError(f"max_frame_size must be positive, not {value}")
    return value


class Connection:
    """A framed, msgpack-speaking connection over a socket or pipe descriptor
    (or, made by a Listener or Client, another transport).

    ``Connection(fd)`` takes ownership of ``fd``: :meth:`close` (or leaving the
    ``with`` block) closes it. ``readable``/``writable`` restrict the
    direction as in ``multiprocessing``. ``max_frame_size`` bounds every frame
    received and sent (SPEC 2.1).

    Not thread-safe, like ``multiprocessing.connection.Connection``: use one
    connection from one thread at a time (or one reader and one writer).
    """

    __slots__ = (
        "_handle", "_readable", "_writable", "_max_frame_size",
        "_rbuf", "_rview", "_rstart", "_rend", "_rerror", "_broken",
        "_wbuf", "_wcap", "_default", "_write", "_readinto", "_take", "_exact", "_fastread", "_hview", "_peek", "_pview", "_poff", "_known", "_known_gen", "_peek_skip",
        "__weakref__",
    )

    def __init__(
        self,
        handle: int,
        readable: bool = True,
        writable: bool = True,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._handle: Optional[Transport] = None
        handle = handle.__index__()
        if handle < 0:
            raise ValueError("invalid handle")
        if not readable and not writable:
            raise ValueError("at least one of `readable` and `writable` must be True")
        self._setup(FdTransport(handle, handle), readable, writable, _check_max_frame_size(max_frame_size))

    @classmethod
    def _over(cls: Type[_C], transport: Transport, readable: bool = True, writable: bool = True, *,
              max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> _C:
        """A connection over any transport, which it then owns."""
        conn = cls.__new__(cls)
        conn._setup(transport, readable, writable, _check_max_frame_size(max_frame_size))
        return conn

    def _setup(self, transport: Transport, readable: bool, writable: bool, max_frame_size: int) -> None:
        self._max_frame_size = max_frame_size
        self._readable = bool(readable)
        self._writable = bool(writable)
        self._rbuf: Optional[bytearray] = None
        self._rview = memoryview(b"")
        self._rstart = 0
        self._rend = 0
        self._rerror: Optional[ProtocolError] = None
        self._broken: Optional[CorruptError] = None
        self._wbuf: Optional[bytearray] = None
        self._wcap = 0
        self._default: Optional[Default] = None
        self._write = transport.write
        self._readinto = transport.readinto
        self._take: Optional[TakeFrame] = getattr(transport, "take_frame", None)
        self._exact = not getattr(transport, "read_ahead", False)
        self._fastread: Callable[[memoryview], Optional[int]] = (
            getattr(transport, "fast_readinto", None) or transport.readinto)
        self._hview: Optional[memoryview] = None
        # Stream sockets: peek(view) copies what is queued, consuming nothing
        # (see _peeked_frame).
        self._peek: Optional[Callable[[memoryview], int]] = getattr(transport, "peek", None) if self._exact else None
        # Sockets: what the last peek saw at the head of the socket's queue:
        # its copy, the offset of the next frame in it, the end of what is
        # still there (0: nothing).
        self._pview: Optional[memoryview] = None
        self._poff = 0
        self._known = 0
        self._known_gen = _fork_generation[0]  # the fork generation it was made in
        self._peek_skip = 0  # receives left before the next peek
        # The transport while the connection is open, None once closed (the
        # hot paths test it, as CPython's test self._handle).
        self._handle = transport

    # --- state -------------------------------------------------------------

    def __repr__(self) -> str:
        t = self._handle
        if t is None:
            return f"<{type(self).__name__} closed>"
        mode = ("r" if self._readable else "") + ("w" if self._writable else "")
        return f"<{type(self).__name__} {t.describe()} mode={mode}>"

    @property
    def closed(self) -> bool:
        """True if the connection is closed."""
        return self._handle is None

    @property
    def readable(self) -> bool:
        """True if the connection is readable."""
        return self._readable

    @property
    def writable(self) -> bool:
        """True if the connection is writable."""
        return self._writable

    @property
    def max_frame_size(self) -> int:
        """The largest payload this connection receives or sends, in bytes."""
        return self._max_frame_size

    def fileno(self) -> int:
        """File descriptor of the connection."""
        if self._handle is None:
            raise OSError("handle is closed")
        return self._handle.fileno()

    def close(self) -> None:
        """Close the connection, after writing what set_write_buffer holds
        back (which blocks while the peer is not reading). Closing twice is
        harmless."""
        t = self._handle
        if t is not None:
            try:
                if self._wbuf and self._broken is None:
                    self.flush()
            finally:
                self._handle = None
                self._rview = memoryview(b"")
                self._rbuf = None
                self._hview = None
                self._rstart = self._rend = 0
                self._known = 0
                self._pview = None
                t.close()

    def __del__(self) -> None:
        # As CPython's Connection: one dropped without close() releases its
        # descriptor (or segment) when collected, without flushing what
        # set_write_buffer holds back (a finalizer must not block).
        t = getattr(self, "_handle", None)
        if t is not None:
            self._handle = None
            try:
                t.close()
            except Exception:
                pass

    def __reduce__(self) -> Tuple[Any, ...]:
        """Refused outside multiprocessing: a connection pickles (as the
        stdlib's does) only for multiprocessing's own pickler, which passes
        its descriptor to a spawn or forkserver child (``Process(args=(conn,))``)
        or, through ``multiprocessing.reduction``'s resource sharer, to a
        running one; see _reduce_connection."""
        raise TypeError(
            f"gobridge: cannot pickle {type(self).__name__} outside multiprocessing: pass it to a "
            "multiprocessing Process (or Queue/Pipe) and its descriptor is passed along"
        )

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        exc_tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def _not_readable(self) -> OSError:
        """The error for a receive on a closed or non-readable connection."""
        if self._handle is None:
            return OSError("handle is closed")
        if self._broken is not None:
            return CorruptError(*self._broken.args)
        if self._rerror is not None:
            # SPEC 2.1: after a framing error every receive fails the same way.
            return type(self._rerror)(*self._rerror.args)
        return OSError("connection is write-only")

    def _check_writable(self) -> None:
        if self._handle is None:
            raise OSError("handle is closed")
        if not self._writable:
            if self._broken is not None:
                raise CorruptError(*self._broken.args)
            raise OSError("connection is read-only")

    def _break(self, err: CorruptError) -> CorruptError:
        """The transport found the peer broke its protocol: the connection is
        over in both directions, every later call raises the same error."""
        if self._broken is None:
            self._broken = err
            self._rerror = err
            self._readable = self._writable = False
            self._rstart = self._rend = 0
            self._known = 0
            self._wbuf = None
        return CorruptError(*self._broken.args)

    def _framing_error(self, err: ProtocolError) -> ProtocolError:
        """Leave the stream, as CPython's _bad_message_length does; return err."""
        self._rstart = self._rend = 0
        self._known = 0
        self._rerror = err
        if self._writable:
            self._readable = False
        else:
            self.close()
        return err

    # --- sending -----------------------------------------------------------

    def set_write_buffer(self, size: int) -> None:
        """Batch sends in a buffer of ``size`` bytes, as Go's
        ``bridge.WithWriteBuffer(size)`` does: a send adds its frame to the
        buffer, which is written in one piece when the next frame would not
        fit, by :meth:`flush`, before a receive or poll on this connection,
        and by :meth:`close`. A frame larger than ``size`` is written at once,
        after the buffer. Until then the peer sees nothing, and a process
        that dies loses the buffer. ``size <= 0`` (the default) writes every
        frame at once; changing the size flushes first."""
        size = size.__index__()
        self._check_writable()
        assert self._handle is not None
        if size > 0 and self._handle.no_batching is not None:
            raise ValueError(self._handle.no_batching)
        self.flush()
        self._wcap = max(size, 0)
        self._wbuf = bytearray() if size > 0 else None

    def flush(self) -> None:
        """Write the frames that set_write_buffer holds back (none: no-op).
        If the write fails they are dropped: the connection's peer is gone
        or the stream is cut."""
        wbuf = self._wbuf
        if wbuf:
            self._wbuf = bytearray()  # a fresh one: a failed write may keep views of this
            self._write_batch(memoryview(wbuf))

    def _write_batch(self, view: memoryview) -> None:
        self._check_writable()
        self._send_raw(b"", view)

    def _send_raw(self, header: bytes, payload: Union[bytes, memoryview]) -> None:
        try:
            self._write(header, payload)
        except CorruptError as e:
            raise self._break(e) from None

    def _batched(self, header: bytes, payload: Union[bytes, memoryview]) -> bool:
        """Add a frame to the write buffer; False when it must be written at
        once (after the buffer, which this then flushes)."""
        need = len(header) + len(payload)
        wbuf = self._wbuf
        assert wbuf is not None
        if len(wbuf) + need > self._wcap:
            self.flush()
            if need > self._wcap:
                return False
            wbuf = self._wbuf  # flush() started a new one
            assert wbuf is not None
        wbuf += header
        wbuf += payload
        return True

    def set_default(self, default: Optional[Default]) -> None:
        """Have :meth:`send` call ``default(obj)`` for an object it cannot
        encode, and send what that returns instead, as ``json.dumps(default=)``
        and :func:`gobridge.encode` do (``None``, the default: refuse such
        objects with :class:`EncodeError`). For example
        ``conn.set_default(lambda o: o.tolist())`` sends numpy arrays as lists."""
        if default is not None and not callable(default):
            raise TypeError(f"default must be callable or None, not {type(default).__name__}")
        self._default = default

    def send(self, obj: object) -> None:
        """Send obj encoded as one msgpack object (SPEC section 3).

        Raises :class:`EncodeError` (a ``TypeError``) for a value with no
        msgpack form (see :func:`gobridge.encode` and :meth:`set_default`);
        nothing is sent then."""
        self._check_writable()
        self._send_frame(encode(obj, default=self._default))

    def send_bytes(self, buf: ReadableBuffer, offset: int = 0, size: Optional[int] = None) -> None:
        """Send the bytes of a bytes-like object as one message, unencoded."""
        self._check_writable()
        self._send_frame(payload_view(buf, offset, size))

    def _send_frame(self, payload: Union[bytes, memoryview]) -> None:
        n = len(payload)
        if n > self._max_frame_size:
            raise frame_too_large_to_send(n, self._max_frame_size)
        header = _pack_header(n) if n <= _MAX_SHORT else _pack_header(-1) + _HEADER64.pack(n)
        if self._wbuf is not None and self._batched(header, payload):
            return
        self._check_writable()
        try:
            self._write(header, payload)
        except CorruptError as e:
            raise self._break(e) from None

    # --- receiving ---------------------------------------------------------

    def recv(self) -> Any:
        """Receive one message and decode it (SPEC section 3).

        Raises EOFError at an orderly end of stream, :class:`DecodeError` for
        a payload that is not valid msgpack (the connection stays usable),
        :class:`ProtocolError` for a broken frame.
        """
        if self._known and not self._wbuf:
            view = self._next_known(self._max_frame_size)
            if view is not None:
                return _decode(view)
        if self._handle is None or not self._readable:
            raise self._not_readable()
        if self._wbuf:
            self.flush()
        if self._exact and self._rstart == self._rend:
            if self._peek is not None and self._rbuf is not None:
                view = self._peeked_frame(self._max_frame_size)
                if view is not None:
                    return _decode(view)
            if self._rstart == self._rend:
                view = self._exact_frame(self._max_frame_size)
                if view is not None:
                    return _decode(view)
        # Fast path: the whole frame is already buffered.
        start = self._rstart
        avail = self._rend - start
        if avail >= 4:
            n = _unpack_header(self._rview, start)[0]
            if 0 <= n <= avail - 4 and n <= self._max_frame_size:
                self._rstart = start + 4 + n
                return _decode(self._rview[start + 4:start + 4 + n])
        elif not avail and self._take is not None:
            b = self._taken(self._max_frame_size)
            if b is not None:
                return _decode(b)
        frame = self._read_payload(self._read_header(self._max_frame_size))
        return _decode(frame if isinstance(frame, memoryview) else frame.getbuffer())

    def recv_bytes(self, maxlength: Optional[int] = None) -> bytes:
        """Receive one message's bytes, undecoded.

        A message longer than ``maxlength`` (or ``max_frame_size``) raises
        :class:`FrameTooLargeError` and leaves the connection unreadable, as
        CPython's ``OSError("bad message length")`` does.
        """
        if self._known and maxlength is None and not self._wbuf:
            view = self._next_known(self._max_frame_size)
            if view is not None:
                return view.tobytes()
        if self._handle is None or not self._readable:
            raise self._not_readable()
        if self._wbuf:
            self.flush()
        limit = self._max_frame_size
        if maxlength is not None:
            if maxlength < 0:
                raise ValueError("negative maxlength")
            limit = min(limit, maxlength)
        if self._exact and self._rstart == self._rend:
            if self._peek is not None and self._rbuf is not None:
                view = self._peeked_frame(limit)
                if view is not None:
                    return view.tobytes()
            if self._rstart == self._rend:
                view = self._exact_frame(limit)
                if view is not None:
                    return view.tobytes()
        start = self._rstart
        avail = self._rend - start
        if avail >= 4:
            n = _unpack_header(self._rview, start)[0]
            if 0 <= n <= avail - 4 and n <= limit:
                self._rstart = start + 4 + n
                return self._rview[start + 4:start + 4 + n].tobytes()
        elif not avail and self._take is not None:
            b = self._taken(limit)
            if b is not None:
                return b
        frame = self._read_payload(self._read_header(limit))
        return frame.tobytes() if isinstance(frame, memoryview) else frame.getvalue()

    def recv_bytes_into(self, buf: WritableBuffer, offset: int = 0) -> int:
        """Receive one message's bytes into a writable buffer at byte ``offset``.

        Returns the message size. If it does not fit, raises
        ``multiprocessing.BufferTooShort`` whose ``args[0]`` is the whole
        message (which is consumed).
        """
        if self._handle is None or not self._readable:
            raise self._not_readable()
        if self._wbuf:
            self.flush()
        self._known = 0  # it reads through the general path: forget the peek
        with memoryview(buf) as m:
            dest = m if m.itemsize == 1 and m.ndim == 1 else m.cast("B")
            bytesize = dest.nbytes
            if offset < 0:
                raise ValueError("negative offset")
            if offset > bytesize:
                raise ValueError("offset too large")
            n = self._read_header(self._max_frame_size)
            if n > _BUF_SIZE and offset + n <= bytesize:
                # Large and it fits: straight into the caller's memory.
                self._read_large(n, dest[offset:offset + n])
                return n
            frame = self._read_payload(n)
            if offset + n > bytesize:
                raise BufferTooShort(
                    frame.tobytes() if isinstance(frame, memoryview) else frame.getvalue()
                )
            dest[offset:offset + n] = frame if isinstance(frame, memoryview) else frame.getbuffer()
            return n

    def poll(self, timeout: Optional[float] = 0.0) -> bool:
        """Whether a message (whole or partial) or end of stream can be read now.

        On a descriptor this is exactly what ``select`` on :meth:`fileno`
        says (no message is held back in user space between calls). ``timeout=None`` waits
        indefinitely; 0 (the default) does not wait. A connection the peer
        broke (:class:`CorruptError`) is readable: the receive raises.
        """
        t = self._handle
        if t is None or not self._readable:
            if t is not None and self._broken is not None:
                return True
            raise self._not_readable()
        if self._wbuf:
            self.flush()
        if self._rend > self._rstart:
            return True
        return t.wait(timeout)

    def _share(self) -> None:
        """Another process may read this connection's descriptor from now on
        (pickled for a child, handed down): never trust peeked lengths again."""
        self._peek = None
        self._known = 0

    def _peeked_frame(self, limit: int) -> Optional[memoryview]:
        """Exact reads with one system call per message while messages queue
        up: a peek (MSG_PEEK, nothing consumed) copies what is at the head of
        the socket into the peek buffer; each receive then reads exactly the
        next frame the peek saw whole, header and payload, in one read, and
        checks that the header is the one peeked (_next_known). The kernel
        keeps every byte not returned, as with _exact_frame. A connection
        that lived through a fork() (in parent and child), was pickled or
        handed down never peeks again: other processes may read it. If
        another reader took bytes anyway, the check sees it and the general
        path goes on from what was read. None: use _exact_frame."""
        if self._known_gen != _fork_generation[0]:
            # It lived through a fork(): other processes may read it now.
            self._share()
            return None
        if self._known:
            return self._next_known(limit)
        if self._peek_skip:
            # The last peek found no whole frame (large frames): a peek
            # would be one more system call per message.
            self._peek_skip -= 1
            return None
        assert self._peek is not None
        pview = self._pview
        if pview is None:
            pview = self._pview = memoryview(bytearray(_PEEK_SIZE))
        try:
            got = self._peek(pview)
        except CorruptError as e:
            raise self._break(e) from None
        if got < 4 or not 0 <= _unpack_header(pview)[0] <= got - 4:
            # No whole frame (a large one, a partial one): the next receives
            # read header and payload without a peek first.
            self._peek_skip = _PEEK_SKIP
            return None  # _exact_frame reads it (and any error) as usual
        self._poff = 0
        self._known = got
        return self._next_known(limit)

    def _next_known(self, limit: int) -> Optional[memoryview]:
        """The next frame the last peek saw (self._poff < self._known, the end
        of what it saw; the receive buffer is empty; the connection is open
        and readable, as close, _break and _framing_error set _known to 0),
        read in one read, header and payload, when the peek saw it whole: the
        hot path of a receiver behind its sender. None: not that simple (a
        fork since the peek, a frame the peek saw in part, over limit, or
        another reader took bytes); the general path goes on from what was
        read."""
        off = self._poff
        end = self._known
        self._known = 0
        pview = self._pview
        if off + 4 > end or self._known_gen != _fork_generation[0] or pview is None:
            return None
        n = _unpack_header(pview, off)[0]
        if n < 0 or n > limit or off + 4 + n > end:
            return None
        rview = self._rview
        try:
            got = self._fastread(rview[:4 + n])
        except CorruptError as e:
            raise self._break(e) from None
        if got == 4 + n and _unpack_header(rview)[0] == n:
            self._poff = off = off + 4 + n
            if off < end:
                self._known = end
            return rview[4:4 + n]
        self._rstart, self._rend = 0, got or 0  # the general path goes on from here
        return None

    def _exact_frame(self, limit: int) -> Optional[memoryview]:
        """The exact reads' fast path (the buffer is empty): read a 4-byte
        header, then exactly its payload, into the receive buffer; return a
        view of the payload (valid until the next receive), consumed. None:
        not that simple (end of stream, a short read, a 12-byte header, a
        payload over limit or larger than the buffer); what was read is left
        in the buffer, unconsumed, for the general path to go on from."""
        hview = self._hview
        if hview is None:
            self._rbuf = bytearray(_BUF_SIZE)
            self._rview = memoryview(self._rbuf)
            hview = self._hview = self._rview[:4]
        readinto = self._fastread
        self._rstart = self._rend = 0
        try:
            got = readinto(hview)
            if got != 4:
                self._rend = got or 0  # None: a non-blocking descriptor had nothing
                return None
            # The header stays in the buffer until the payload is in: an
            # interrupted read (a signal handler raised) resumes from it.
            self._rend = 4
            n = _unpack_header(hview)[0]
            if not 0 <= n <= limit or n > _BUF_SIZE - 4:
                return None
            if n:
                view = self._rview[4:4 + n]
                got = readinto(view)
                if got != n:
                    self._rend = 4 + (got or 0)
                    return None
                self._rend = 0
                return view
        except CorruptError as e:
            raise self._break(e) from None
        self._rend = 0
        return self._rview[4:4]

    def _taken(self, limit: int) -> Optional[bytes]:
        assert self._take is not None
        try:
            return self._take(limit)
        except CorruptError as e:
            raise self._break(e) from None

    def _fill(self, need: int, at_boundary: bool) -> None:
        """Read until at least ``need`` bytes (<= _BUF_SIZE) are buffered."""
        if self._rbuf is None:
            self._rbuf = bytearray(_BUF_SIZE)
            self._rview = memoryview(self._rbuf)
            self._hview = self._rview[:4]
        view = self._rview
        if self._handle is None:
            raise OSError("handle is closed")
        readinto = self._readinto
        while self._rend - self._rstart < need:
            if self._rstart == self._rend:
                self._rstart = self._rend = 0
            elif self._rstart + need > _BUF_SIZE:
                kept = self._rend - self._rstart
                view[:kept] = view[self._rstart:self._rend]
                self._rstart, self._rend = 0, kept
            try:
                # Exact reads (every descriptor transport): never past the
                # bytes asked for, so nothing of a later message leaves the
                # kernel before its receive (readiness stays exact, forked
                # readers never share bytes).
                got = readinto(view[self._rend:self._rstart + need] if self._exact else view[self._rend:])
            except CorruptError as e:
                raise self._break(e) from None
            if got == 0:
                if at_boundary and self._rend == self._rstart:
                    raise EOFError
                raise self._framing_error(ProtocolError(_TRUNCATED))
            self._rend += got

    def _read_header(self, limit: int) -> int:
        """Consume one frame header; return the payload length."""
        if self._rend - self._rstart < 4:
            self._fill(4, True)
        view = self._rview
        n = int(_unpack_header(view, self._rstart)[0])
        size = 4
        if n < 0:
            if n != -1:
                raise self._framing_error(
                    ProtocolError(f"bad message header: negative length {n}")
                )
            if self._rend - self._rstart < 12:
                self._fill(12, False)
            n = int(_HEADER64.unpack_from(view, self._rstart + 4)[0])
            size = 12
            if n <= _MAX_SHORT:
                raise self._framing_error(
                    ProtocolError(f"bad message header: non-canonical 8-byte length {n}")
                )
        if n > limit:
            raise self._framing_error(frame_too_large_received(n, limit, self._max_frame_size))
        self._rstart += size
        return n

    def _read_payload(self, n: int) -> Union[memoryview, io.BytesIO]:
        """Consume an n-byte payload whose header was consumed.

        Returns a view of the receive buffer (valid until the next receive)
        or, for a payload larger than the buffer, a BytesIO holding it.
        """
        if n > _BUF_SIZE:
            bio = io.BytesIO()
            self._read_large(n, bio)
            return bio
        if self._rend - self._rstart < n:
            self._fill(n, False)
        start = self._rstart
        self._rstart = start + n
        return self._rview[start:start + n]

    def _read_large(self, n: int, dest: Union[memoryview, io.BytesIO]) -> None:
        """Read an n-byte payload (header consumed) into dest.

        dest is either a memoryview of exactly n bytes or an empty BytesIO
        that is grown at most _GROW_STEP bytes ahead of the data received.
        """
        if self._handle is None:
            raise OSError("handle is closed")
        readinto = self._readinto
        got = self._rend - self._rstart  # all buffered bytes belong to this payload
        if isinstance(dest, memoryview):
            dest[:got] = self._rview[self._rstart:self._rend]
        elif got:
            dest.write(self._rview[self._rstart:self._rend])
        self._rstart = self._rend = 0
        try:
            while got < n:
                if isinstance(dest, memoryview):
                    k = readinto(dest[got:n])
                else:
                    end = min(n, got + _GROW_STEP)
                    if dest.seek(0, io.SEEK_END) < end:
                        dest.seek(end - 1)
                        dest.write(b"\0")  # grows the buffer, zero-filled
                    with dest.getbuffer() as whole:
                        k = readinto(whole[got:end])
                if k == 0:
                    raise self._framing_error(ProtocolError(_TRUNCATED))
                got += k
        except CorruptError as e:
            raise self._break(e) from None
        except ProtocolError:
            raise
        except BaseException:
            # Interrupted mid-payload (a signal handler raised, a read failed):
            # the rest of this frame is still in the stream, out of step.
            if self._handle is not None:
                self._framing_error(ProtocolError(
                    "bad message stream: a receive was interrupted inside a message"
                ))
            raise


# --- pickling for multiprocessing children (spawn, forkserver) ----------------
#
# As multiprocessing.connection's reduce_connection: the descriptor travels
# as a reduction.DupFd (duplicated into the spawned child's pass_fds, sent
# to the forkserver, or through the resource sharer to a running process),
# and the child builds a connection of the same kind over it.


def _reduce_connection(conn: Connection) -> Tuple[Callable[..., Connection], Tuple[Any, ...]]:
    t = conn._handle
    if t is None:
        raise OSError("handle is closed")
    fds = getattr(t, "fds", None)
    if type(t) not in (FdTransport, SharedFdTransport) or fds is None:
        raise TypeError(
            f"gobridge: a connection over {t.describe()} cannot be pickled: only descriptor "
            "connections (sockets, pipes, FIFOs) go to multiprocessing children; "
            "give the child the address and connect there"
        )
    from multiprocessing import reduction
    if conn._wbuf:
        conn.flush()  # the child must not see later frames before these
    conn._share()
    rfd, wfd = fds()
    dup_r = reduction.DupFd(rfd) if rfd is not None else None
    dup_w = None if wfd is None else dup_r if wfd == rfd else reduction.DupFd(wfd)
    return _rebuild_connection, (type(t) is SharedFdTransport, dup_r, dup_w, conn._readable,
                                 conn._writable, conn._max_frame_size)


def _rebuild_connection(shared: bool, dup_r: Any, dup_w: Any, readable: bool, writable: bool,
                        max_frame_size: int) -> Connection:
    rfd = dup_r.detach() if dup_r is not None else None
    wfd = rfd if dup_w is dup_r else (dup_w.detach() if dup_w is not None else None)
    for fd in {rfd, wfd} - {None}:
        assert fd is not None
        os.set_blocking(fd, True)
    cls = SharedFdTransport if shared else FdTransport
    conn = Connection._over(cls(rfd, wfd), readable, writable, max_frame_size=max_frame_size)
    conn._share()  # the parent still holds the descriptor
    return conn


def _register_reducers() -> None:
    from multiprocessing import reduction
    reduction.register(Connection, _reduce_connection)


_register_reducers()


def Pipe(
    duplex: bool = True, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
) -> Tuple[Connection, Connection]:
    """Return a pair of connected Connections, as ``multiprocessing.Pipe``.

    duplex: a unix socket pair, both ends send and receive. Otherwise an
    ``os.pipe()``: the first end only receives, the second only sends.
    The descriptors are not inheritable; see :func:`gobridge.child_environ`
    to hand one to a child process.
    """
    max_frame_size = _check_max_frame_size(max_frame_size)
    if duplex:
        s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return (
            Connection(s1.detach(), max_frame_size=max_frame_size),
            Connection(s2.detach(), max_frame_size=max_frame_size),
        )
    r, w = os.pipe()
    return (
        Connection(r, writable=False, max_frame_size=max_frame_size),
        Connection(w, readable=False, max_frame_size=max_frame_size),
    )
