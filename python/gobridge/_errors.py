"""The gobridge exception hierarchy (wire/SPEC.md section 3.3).

Every gobridge exception derives from :class:`BridgeError` and also from the
builtin a caller would naturally catch, so ``except OSError`` around a receive
or ``except TypeError`` around a send keeps working.
"""

from __future__ import annotations

from multiprocessing import BufferTooShort

__all__ = [
    "BridgeError",
    "ProtocolError",
    "FrameTooLargeError",
    "DecodeError",
    "EncodeError",
    "IntegerRangeError",
    "BufferTooShort",
    "PeerGoneError",
    "CorruptError",
]


class BridgeError(Exception):
    """Base class of every gobridge exception."""


class ProtocolError(BridgeError, OSError):
    """The byte stream does not follow the framing rules (SPEC section 2).

    Raised for a bad length header and for a truncated frame
    (``"got end of file during message"``, as CPython says). After a framing
    error the stream is out of step: the connection stops being readable.
    """


class FrameTooLargeError(ProtocolError):
    """A frame is larger than the connection's ``max_frame_size``.

    The message starts with ``"bad message length"``, as CPython's does.
    Raised by a receive (nothing was allocated for the payload) and by a send
    (nothing was written).
    """


class DecodeError(BridgeError, ValueError):
    """A payload is not one valid msgpack object under SPEC section 3.

    The frame was consumed whole: the connection stays usable.
    """


class EncodeError(BridgeError, TypeError):
    """A value cannot be encoded (SPEC section 3.1); nothing was sent."""


class IntegerRangeError(EncodeError, OverflowError):
    """An ``int`` outside [-2**63, 2**64) cannot be encoded."""


class PeerGoneError(BridgeError, ConnectionResetError):
    """The peer process died (SIGKILL, crash) without closing its end.

    Every whole message it sent before dying is received first; a message it
    was still writing is never delivered. A ``fifo:`` client also gets it when
    the listener dies after taking its request.
    """


class CorruptError(ProtocolError):
    """An ``shm:`` peer left the shared ring indices in a state no correct
    peer can produce (more bytes buffered than the ring holds, a read index
    past the write index); Go's ``bridge.ErrCorrupt``.

    ``errno`` is ``EPROTO``; the message names the ring and the values found.
    The connection is over in both directions: every later receive and send
    raises the same error, and the peer is told (it sees end of stream or a
    broken pipe).
    """
