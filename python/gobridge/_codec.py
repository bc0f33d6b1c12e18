"""Payload encoding: one msgpack object per payload (wire/SPEC.md section 3).

msgpack-python does the work; this module fixes its options to the ones the
spec requires and turns its exceptions into gobridge's:

- pack with ``use_bin_type=True`` (str and bytes never confused),
  ``datetime=True`` (tz-aware datetimes as timestamp extension -1) and
  ``strict_types=True``, so that every value msgpack does not pack as it is
  (a tuple, a subclass of a builtin, a numpy scalar, a user type) comes to
  one hook, which turns it into a builtin or refuses it, and which knows when
  a value may hold a key no decoder accepts (a tuple key: checked then);
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
import operator
import threading
from typing import Any, Callable, FrozenSet, List, NoReturn, Optional, Union

import msgpack  # type: ignore[import-untyped, unused-ignore]

from ._errors import DecodeError, EncodeError, IntegerRangeError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE", "MAX_DEPTH", "Default", "encode", "decode", "ReadableBuffer",
]

#: Default limit on one frame's payload, bytes (SPEC 2.1); the same in Go.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

#: Deepest container nesting either side encodes or decodes (SPEC 3.2). It is
#: msgpack-python's own limit (the C unpacker's stack and the packer's
#: default nest limit), written down here so callers can see it.
MAX_DEPTH = 1024

ReadableBuffer = Union[bytes, bytearray, memoryview]

#: A ``default=`` hook, as ``json.dumps`` takes: called with an object msgpack
#: cannot encode, it returns something that can be encoded (or raises
#: ``TypeError``).
Default = Callable[[Any], Any]

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

class _Unconverted:
    pass


_NO = _Unconverted()

# What the Packer (strict_types=True) packs as it is and a decoder accepts as
# a map key; any other key is looked at by _bad_key.
_KEY_TYPES: FrozenSet[type] = frozenset((
    type(None), bool, int, float, str, bytes, memoryview, datetime.datetime, msgpack.Timestamp,
))
_CONTAINERS: FrozenSet[type] = frozenset((list, tuple, dict))
# Payloads up to this size get the plain walk for bad keys.
_SMALL_WALK = 4096


def _ndarray_error(obj: object) -> TypeError:
    return TypeError(
        f"can not serialize a numpy.ndarray (shape {getattr(obj, 'shape', '?')}): send its raw bytes "
        "with conn.send_bytes(arr) (arr.tobytes() makes them a bytes value), or a list made by "
        "arr.tolist() (default=lambda a: a.tolist(), or Connection.set_default, does that for every array)"
    )


def _builtin(obj: Any) -> Any:
    """obj (which msgpack does not pack as it is) as a builtin msgpack packs,
    or _NO. Subclasses of builtins become the builtin; numpy scalars (found
    by duck typing, numpy is never imported) their Python value."""
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, int):
        return int.__index__(obj)  # IntEnum, ...: the value, whatever __int__ says
    if isinstance(obj, float):
        return float.__float__(obj)  # numpy.float64 is a float subclass
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, (bytes, bytearray)):
        return memoryview(obj)
    if isinstance(obj, list):
        return list(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, datetime.datetime):
        # msgpack packs only exact datetimes; a subclass (a library's
        # timestamp type) is the same instant.
        return datetime.datetime(
            obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second,
            obj.microsecond, obj.tzinfo, fold=obj.fold,
        )
    t = type(obj)
    numpy = t.__module__ == "numpy"
    if numpy:
        if t.__name__ == "ndarray":
            return _NO  # an array is not a scalar, even if it has one element
        if t.__name__ in ("bool_", "bool"):
            return bool(obj)
    if hasattr(t, "__index__"):  # numpy integers, and any other exact integer type
        return operator.index(obj)
    if numpy and hasattr(obj, "item"):
        value = obj.item()  # numpy.float32 and the like: the exact Python float
        if type(value) is float:
            return value
    return _NO


class _Hook:
    """The Packer's ``default=``: one per Packer, so that it can say what the
    last pack made (containers that may carry a bad key)."""

    __slots__ = ("user", "containers", "made", "kinds")

    def __init__(self) -> None:
        self.user: Optional[Default] = None
        self.containers = 0  # tuples and converted containers packed
        self.made: List[Any] = []  # containers a user default returned
        self.kinds: set[type] = set()  # container subclasses seen

    def __call__(self, obj: Any) -> Any:
        t = type(obj)
        if t is int:
            # msgpack calls this for an int it cannot pack (instead of
            # raising OverflowError itself, as it does without a hook).
            raise OverflowError("integer out of range")
        if t is tuple:
            self.containers += 1
            return list(obj)
        value = _builtin(obj)
        if value is not _NO:
            if isinstance(obj, (tuple, list, dict)):
                self.containers += 1
                self.kinds.add(t)
            return value
        user = self.user
        if user is None:
            if t.__module__ == "numpy" and t.__name__ == "ndarray":
                raise _ndarray_error(obj)
            raise TypeError(f"can not serialize {t.__name__!r} object")
        value = user(obj)
        if type(value) not in _PACKED_AS_IS:
            converted = _builtin(value)
            if converted is _NO:
                raise TypeError(
                    f"the default hook returned a {type(value).__name__!r} object for a "
                    f"{t.__name__!r} object, and that cannot be encoded either"
                )
            value = converted
        if type(value) in (list, dict):
            self.containers += 1
            self.made.append(value)
        return value

    def key_shape(self, key: Any) -> Optional[str]:
        """What a map key that is not of a _KEY_TYPES type encodes as, if that
        is an array or a map (which no decoder accepts as a key)."""
        if isinstance(key, (tuple, list)):
            return "an array"
        if isinstance(key, dict):
            return "a map"
        try:
            value = self(key)
        except (TypeError, ValueError, OverflowError):
            return None  # the pack itself would have failed on it
        if isinstance(value, list):
            return "an array"
        if isinstance(value, dict):
            return "a map"
        return None


_PACKED_AS_IS: FrozenSet[type] = frozenset((
    type(None), bool, int, float, str, bytes, bytearray, memoryview, list, dict,
    datetime.datetime, msgpack.Timestamp, msgpack.ExtType,
))


def _describe(hook: _Hook, d: Any) -> Optional[str]:
    """The first key of dict d that encodes as an array or map, described."""
    for k in d:
        if type(k) not in _KEY_TYPES:
            shape = hook.key_shape(k)
            if shape is not None:
                text = repr(k)
                if len(text) > 60:
                    text = text[:57] + "..."
                return f"a {type(k).__name__} key ({text}) encodes as {shape}"
    return None


def _bad_key_small(hook: _Hook, roots: List[Any]) -> Optional[str]:
    """_bad_key for a value of a few KiB: a plain walk, cheaper than the
    set-up of the breadth-first one."""
    kinds = _CONTAINERS | hook.kinds if hook.kinds else _CONTAINERS
    key_types = _KEY_TYPES
    stack = roots
    while stack:
        x = stack.pop()
        if type(x) not in kinds and not isinstance(x, (list, tuple, dict)):
            continue  # a root that is no container
        if isinstance(x, dict):
            for k in x:
                if type(k) not in key_types:
                    found = _describe(hook, x)
                    if found is not None:
                        return found
                    break
            x = x.values()
        for v in x:
            if type(v) in kinds:
                stack.append(v)
    return None


def _bad_key(hook: _Hook, roots: List[Any]) -> Optional[str]:
    """The first map key in roots that encodes as an array or map, described.

    A breadth-first walk whose per-element work runs in C (itertools and map
    over type): one level's containers are flattened at once, every key of
    the level's maps is checked at once, and only containers go on.
    """
    kinds = _CONTAINERS | hook.kinds
    maps = frozenset(k for k in kinds if issubclass(k, dict))
    is_container, is_map = kinds.__contains__, maps.__contains__
    is_seq = (kinds - maps).__contains__
    compress, flatten = itertools.compress, itertools.chain.from_iterable
    level: List[Any] = [r for r in roots if isinstance(r, (list, tuple, dict))]
    while level:
        types = list(map(type, level))
        dicts: List[Any] = list(compress(level, map(is_map, types)))
        children: Any = flatten(compress(level, map(is_seq, types)))
        if dicts:
            if not _KEY_TYPES.issuperset(map(type, flatten(dicts))):
                for d in dicts:
                    found = _describe(hook, d)
                    if found is not None:
                        return found
            children = itertools.chain(children, flatten(map(dict.values, dicts)))
        children = list(children)
        level = list(compress(children, map(is_container, map(type, children))))
    return None


def _new_packer() -> Any:
    hook = _Hook()
    packer = msgpack.Packer(use_bin_type=True, datetime=True, strict_types=True, default=hook)
    return packer, hook


# A Packer keeps an internal buffer and is not safe to share between threads,
# but creating one per call costs more than the packing itself for small
# messages, so each thread keeps one. It is taken out while in use so that a
# re-entrant call (a tzinfo or default hook calling encode) gets its own.
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


def encode(obj: object, *, default: Optional[Default] = None) -> bytes:
    """Encode obj as one msgpack object (SPEC section 3.1).

    Tuples become arrays; subclasses of builtins (an ``IntEnum``, an
    ``OrderedDict``) and numpy scalars (``numpy.int64``, ``numpy.bool_``,
    ``numpy.float32``, ... found by duck typing: ``__index__``, ``.item()``)
    are encoded as the builtin value. ``default``, as for ``json.dumps``, is
    called with any other object and returns something encodable in its
    place (or raises ``TypeError``).

    Raises :class:`EncodeError` (a ``TypeError``) for a value that has no
    msgpack form (a set, a naive datetime, a numpy array, an arbitrary
    object, nesting deeper than :data:`MAX_DEPTH`) or that no decoder would
    accept (a map key that encodes as an array or map, such as a tuple), and
    :class:`IntegerRangeError` (also an ``OverflowError``) for an ``int``
    outside [-2**63, 2**64). Nothing is returned in part.
    """
    pair = _local.__dict__.pop("packer", None)
    if pair is None:
        pair = _new_packer()
    packer, hook = pair
    hook.user = default
    try:
        data: bytes = packer.pack(obj)
        # A key that encodes as an array or map is a tuple, or something the
        # hook turned into a container: look at the keys when the hook made
        # any, unless the one it made is the value itself (a tuple message).
        if hook.containers and (hook.containers > 1 or type(obj) is not tuple):
            roots = [obj, *hook.made]
            bad = (_bad_key_small if len(data) <= _SMALL_WALK else _bad_key)(hook, roots)
            if bad is not None:
                raise EncodeError(
                    f"gobridge: cannot encode: {bad}, and no decoder accepts an array or map "
                    "as a map key (SPEC 3.1): use str, int, float, bool, None, bytes or datetime keys"
                )
        return data
    except EncodeError:
        raise
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
        hook.user = None
        if hook.containers:
            hook.containers = 0
            if hook.made:
                hook.made = []
            if hook.kinds:
                hook.kinds = set()
        _local.packer = pair


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
        msg = "gobridge: malformed payload: trailing bytes after the msgpack object"
        head = bytes(memoryview(data)[:2])
        if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
            msg += (f"; the payload looks like a pickle (protocol {head[1]}), not msgpack: the "
                    "sender used pickle (multiprocessing's Connection.send?) instead of gobridge's send")
        return DecodeError(msg)
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
                f"gobridge: payload of {view.nbytes} bytes is larger than max_size {max_size} "
                "(pass a larger max_size= to decode)"
            )
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        return _decode(view)
