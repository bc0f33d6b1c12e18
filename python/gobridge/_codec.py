"""Payload encoding: one msgpack object per payload (wire/SPEC.md section 3).

msgpack-python does the work; this module fixes its options to the ones the
spec requires and turns its exceptions into gobridge's:

- pack with ``use_bin_type=True`` (str and bytes never confused) and
  ``datetime=True`` (tz-aware datetimes as timestamp extension -1);
- unpack with ``raw=False`` (str is str, invalid UTF-8 is an error),
  ``strict_map_key=False`` (integer keys round-trip), ``timestamp=3``
  (timestamps arrive as tz-aware datetimes in UTC), an ``ext_hook`` that
  rejects every other extension type, and ``max_*_len`` equal to the payload
  size (``unpackb``'s default since msgpack 1.0), so a header claiming four
  billion elements allocates nothing. Payloads over 64 KiB also count their
  arrays and maps (``list_hook``/``object_hook``) against the container
  budget of SPEC 3.2; smaller ones cannot reach it.
"""

from __future__ import annotations

import datetime
import itertools
import threading
from typing import Any, List, NoReturn, Optional, Union

import msgpack  # type: ignore[import-untyped, unused-ignore]

from ._errors import DecodeError, EncodeError, IntegerRangeError

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "MAX_DEPTH", "encode", "decode", "ReadableBuffer"]

#: Default limit on one frame's payload, bytes (SPEC 2.1); the same in Go.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

#: Deepest container nesting either side encodes or decodes (SPEC 3.2). It is
#: msgpack-python's own limit (the C unpacker's stack and the packer's
#: default nest limit), written down here so callers can see it.
MAX_DEPTH = 1024

ReadableBuffer = Union[bytes, bytearray, memoryview]

# The container budget (SPEC 3.2), as Go's wire.ContainerBudget: a payload of
# n bytes may hold arrays + _MAP_WEIGHT * maps <= max(_MIN_BUDGET, n // 3).
_MAP_WEIGHT = 3
_MIN_BUDGET = 3 << 16
# Each container takes at least one byte, so no payload this small (64 KiB)
# can exceed _MIN_BUDGET: those are decoded without counting.
_UNCOUNTED = _MIN_BUDGET // _MAP_WEIGHT

_INT_MIN = -(1 << 63)
_INT_END = 1 << 64

# Python datetime's range, in seconds since the epoch (SPEC 3.1).
_DT_MIN_S = -62135596800  # 0001-01-01T00:00:00Z
_DT_MAX_S = 253402300799  # 9999-12-31T23:59:59Z


def _container_budget(n: int) -> int:
    return max(_MIN_BUDGET, n // 3)


# --- encoding ---------------------------------------------------------------

def _default(obj: Any) -> Any:
    # msgpack calls this for an int it cannot pack (instead of raising
    # OverflowError itself, as it does without a default hook).
    if isinstance(obj, int):
        raise OverflowError("integer out of range")
    # msgpack only recognises exact datetime.datetime instances; a subclass
    # (say a library's timestamp type) is the same instant.
    if isinstance(obj, datetime.datetime):
        return datetime.datetime(
            obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second,
            obj.microsecond, obj.tzinfo, fold=obj.fold,
        )
    raise TypeError(f"can not serialize {type(obj).__name__!r} object")


def _new_packer() -> msgpack.Packer:
    return msgpack.Packer(use_bin_type=True, datetime=True, default=_default)


# A Packer keeps an internal buffer and is not safe to share between threads,
# but creating one per call costs more than the packing itself for small
# messages, so each thread keeps one. It is taken out while in use so that a
# re-entrant call (a tzinfo written in Python calling encode) gets its own.
_local = threading.local()


def _find_big_int(obj: object, depth: int = 0) -> Optional[int]:
    """The first int outside [-2**63, 2**64) in obj, for the error message."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj if not _INT_MIN <= obj < _INT_END else None
    if depth > MAX_DEPTH:
        return None
    if isinstance(obj, (list, tuple)):
        items: Any = obj
    elif isinstance(obj, dict):
        items = [x for kv in obj.items() for x in kv]
    else:
        return None
    for item in items:
        found = _find_big_int(item, depth + 1)
        if found is not None:
            return found
    return None


def encode(obj: object) -> bytes:
    """Encode obj as one msgpack object (SPEC section 3.1).

    Raises :class:`EncodeError` (a ``TypeError``) for a value that has no
    msgpack form (a set, a naive datetime, an arbitrary object, nesting deeper
    than :data:`MAX_DEPTH`) and :class:`IntegerRangeError` (also an
    ``OverflowError``) for an ``int`` outside [-2**63, 2**64).
    """
    packer = _local.__dict__.pop("packer", None)
    if packer is None:
        packer = _new_packer()
    try:
        data: bytes = packer.pack(obj)
        return data
    except OverflowError:
        big = _find_big_int(obj)
        what = f"a {big.bit_length()}-bit integer" if big is not None else "an integer"
        raise IntegerRangeError(
            f"gobridge: cannot encode {what}: msgpack integers lie in [-2**63, 2**64)"
        ) from None
    except (TypeError, ValueError) as e:
        if str(e) == "recursion limit exceeded.":
            raise EncodeError(f"gobridge: cannot encode: nesting deeper than {MAX_DEPTH}") from None
        raise EncodeError(f"gobridge: cannot encode: {e}") from e
    finally:
        # The packer resets its buffer after an exception, so it is reusable.
        _local.packer = packer


# --- decoding ---------------------------------------------------------------

def _ext_hook(code: int, data: bytes) -> NoReturn:
    raise DecodeError(f"gobridge: unknown extension type {code} ({len(data)} bytes)")


def _too_many(n: int, budget: int) -> DecodeError:
    return DecodeError(
        f"gobridge: too many arrays and maps: more than {budget} (arrays count 1, maps "
        f"{_MAP_WEIGHT}) in a payload of {n} bytes, the most its size allows: "
        f"max({_MIN_BUDGET}, bytes/3) (SPEC 3.2)"
    )


def _unpack(data: ReadableBuffer, n: int, timestamp: int) -> Any:
    """msgpack.unpackb with gobridge's options, counting containers when n
    is large enough for the budget to matter."""
    if n <= _UNCOUNTED:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=False, timestamp=timestamp, ext_hook=_ext_hook,
        )
    budget = _container_budget(n)
    weight = 0

    def on_array(x: List[Any]) -> List[Any]:
        nonlocal weight
        weight += 1
        if weight > budget:
            raise _too_many(n, budget)
        return x

    def on_map(x: Any) -> Any:
        nonlocal weight
        weight += _MAP_WEIGHT
        if weight > budget:
            raise _too_many(n, budget)
        return x

    return msgpack.unpackb(
        data, raw=False, strict_map_key=False, timestamp=timestamp, ext_hook=_ext_hook,
        list_hook=on_array, object_hook=on_map,
    )


def _timestamp_error(data: ReadableBuffer, n: int) -> DecodeError:
    """The error for a payload whose timestamp Python's datetime cannot hold."""
    found: Optional[Any] = None
    try:
        value = _unpack(data, n, 0)  # timestamps as msgpack.Timestamp, any instant
    except Exception as e:  # the payload has another fault too: report that one
        return _decode_error(e, data, n)
    stack = [value]
    while stack and found is None:
        x = stack.pop()
        if isinstance(x, msgpack.Timestamp):
            if not _DT_MIN_S <= x.seconds <= _DT_MAX_S:
                found = x
        elif isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(itertools.chain.from_iterable(x.items()))
    instant = (f"{found.seconds} s and {found.nanoseconds} ns since 1970-01-01T00:00:00Z"
               if found is not None else "an instant")
    return DecodeError(
        f"gobridge: timestamp out of range: {instant} is outside what a Python datetime holds "
        f"(years 1 to 9999: {_DT_MIN_S} to {_DT_MAX_S} s); a Go peer can send it, Python "
        "cannot receive it (SPEC 3.1)"
    )


def _decode_error(e: BaseException, data: ReadableBuffer, n: int) -> DecodeError:
    """gobridge's DecodeError for an exception msgpack raised decoding data."""
    if isinstance(e, DecodeError):
        return e
    if isinstance(e, OverflowError):
        return _timestamp_error(data, n)
    if isinstance(e, msgpack.StackError):
        return DecodeError(f"gobridge: nesting deeper than {MAX_DEPTH}")
    if isinstance(e, msgpack.ExtraData):
        return DecodeError("gobridge: malformed payload: trailing bytes after the msgpack object")
    if isinstance(e, UnicodeDecodeError):
        return DecodeError(f"gobridge: invalid UTF-8 in a str: {e}")
    if isinstance(e, TypeError):
        # msgpack builds the dict with the key; an array or map key is unhashable
        return DecodeError(f"gobridge: unsupported map key: {e}")
    if isinstance(e, msgpack.FormatError):
        return DecodeError("gobridge: malformed payload: reserved or invalid msgpack byte")
    return DecodeError(f"gobridge: malformed payload: {e}")


def _decode(data: ReadableBuffer) -> Any:
    """decode without the size check; data is one whole payload (bytes, or
    a memoryview of unsigned bytes)."""
    n = len(data)
    try:
        if n <= _UNCOUNTED:  # the common case, as fast as msgpack alone
            return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3, ext_hook=_ext_hook)
        return _unpack(data, n, 3)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as e:
        raise _decode_error(e, data, n) from None


def decode(data: ReadableBuffer, *, max_size: int = DEFAULT_MAX_FRAME_SIZE) -> Any:
    """Decode one payload holding exactly one msgpack object (SPEC section 3).

    Raises :class:`DecodeError` (a ``ValueError``) for anything else: invalid
    msgpack, trailing bytes, invalid UTF-8, nesting deeper than
    :data:`MAX_DEPTH`, more arrays and maps than the payload's size allows
    (SPEC 3.2), an extension type other than the timestamp, a timestamp
    outside a ``datetime``'s years 1 to 9999, an array or map used as a map
    key, or a payload larger than ``max_size``.
    """
    with memoryview(data) as view:
        if view.nbytes > max_size:
            raise DecodeError(
                f"gobridge: payload of {view.nbytes} bytes is larger than max_size {max_size}"
            )
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        return _decode(view)
