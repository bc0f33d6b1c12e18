"""gobridge: multiprocessing-style connections between Go and Python.

The names mirror ``multiprocessing.connection``: :func:`Pipe`,
:class:`Listener`, :func:`Client`, :class:`Connection` with ``send``/``recv``,
``send_bytes``/``recv_bytes``/``recv_bytes_into``, ``poll``, ``close``.
Messages are one msgpack object each (not pickle), framed byte-for-byte as
``multiprocessing.connection`` frames them; ``wire/SPEC.md`` is the contract
the Go side follows too. :func:`parent` opens the connection a parent
process handed down; :class:`Process` starts a program (Go or Python) with
one end handed down. ``fifo:/path`` addresses and :func:`open_fifo` use named
pipes; :mod:`gobridge.signals` closes resources on SIGTERM/SIGINT.

The modules are named as multiprocessing's: :mod:`gobridge.connection`
(Connection, Listener, Client, Pipe), :mod:`gobridge.queues` (Queue,
JoinableQueue, SimpleQueue), :mod:`gobridge.synchronize` (Lock, RLock,
Semaphore, BoundedSemaphore, Event, Condition, Barrier), :mod:`gobridge.sharedctypes` (Value, Array, RawValue, RawArray),
:mod:`gobridge.mmap`,
:mod:`gobridge.process`, :mod:`gobridge.signals`; every public name is also
here. :mod:`gobridge.asyncio` (imported on first use) has the connections,
listeners and clients again with awaited calls. ``gobridge._transport`` (the connection core and its transports) and
``gobridge._internal`` (futex, ring, segments, OFD locks, layouts) are
private.
"""

from ._address import parse_address
from ._codec import DEFAULT_MAX_FRAME_SIZE, MAX_DEPTH, decode, encode
from ._internal.objects import ClosedError, LayoutError, NotReadyError, SegmentTruncatedError
from ._internal.shmseg import attach_shareable_list, attach_shared_memory
from .queues import JoinableQueue, Queue, SimpleQueue
from .sharedctypes import Array, RawArray, RawValue, Value
from .synchronize import Barrier, BoundedSemaphore, BrokenBarrierError, Condition, Event, Lock, RLock, Semaphore
from ._errors import (
    BridgeError,
    BufferTooShort,
    CorruptError,
    DecodeError,
    EncodeError,
    FrameTooLargeError,
    IntegerRangeError,
    PeerGoneError,
    ProtocolError,
)
from ._parent import child_environ, parent
from ._transport.fifo import mkfifo, open_fifo
from .connection import AuthenticationError, Client, Connection, Listener, Pipe
from .process import Process

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # gobridge.asyncio is imported on first use (it imports asyncio).
    if name == "asyncio":
        import importlib
        return importlib.import_module(".asyncio", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "MAX_DEPTH",
    "BridgeError",
    "ProtocolError",
    "FrameTooLargeError",
    "DecodeError",
    "EncodeError",
    "IntegerRangeError",
    "BufferTooShort",
    "PeerGoneError",
    "CorruptError",
    "AuthenticationError",
    "encode",
    "decode",
    "Connection",
    "Pipe",
    "Listener",
    "Client",
    "parent",
    "child_environ",
    "mkfifo",
    "open_fifo",
    "Process",
    "parse_address",
    "Queue",
    "JoinableQueue",
    "SimpleQueue",
    "Value",
    "Array",
    "RawValue",
    "RawArray",
    "Semaphore",
    "BoundedSemaphore",
    "Event",
    "Condition",
    "Barrier",
    "BrokenBarrierError",
    "Lock",
    "RLock",
    "LayoutError",
    "NotReadyError",
    "SegmentTruncatedError",
    "ClosedError",
    "attach_shared_memory",
    "attach_shareable_list",
]
