"""Named Value and Array in shared memory, as ``multiprocessing.sharedctypes``
has them (wire/SPEC.md section 10.3); Go's bridge/mp opens the same names.

Each is a segment under ``/dev/shm`` (gobridge._internal.objects) whose
items are native little-endian numbers of one typecode; ``.value`` and item
access go under the object's own RLock (``get_lock()``), as multiprocessing's
synchronized wrappers do.
"""
from __future__ import annotations

import operator
import struct
from typing import Any, Iterator, List, Optional, Sequence, Union, overload

from ._internal.layout import KIND_ARRAY, KIND_VALUE, VALUE_OFF
from ._internal.objects import TYPECODES, ClosedError, LayoutError, SegmentTruncatedError, _Handle, _UserLock
from .synchronize import RLock

__all__ = ["Value", "Array"]


def _check_typecode(typecode: str) -> int:
    if not isinstance(typecode, str) or typecode not in TYPECODES:
        raise TypeError(f"typecode must be one of {' '.join(TYPECODES)}, not {typecode!r}")
    return TYPECODES[typecode]


Number = Union[int, float]


def _enter_locked(self: Any) -> None:
    """Take the object's lock (an RLock) for one access. A fresh acquisition
    checked the segment's size already (_UserLock); a nested one (the caller
    holds get_lock()) checks it here."""
    lk = self._lock
    lk.acquire()
    if lk._count > 1:
        try:
            self._h.check()
        except BaseException:
            lk.release()
            raise


class Value:
    """multiprocessing.Value(typecode, value), named. .value reads and writes
    under the object's lock as multiprocessing's synchronized Value does;
    get_lock() returns that lock (an RLock) for read-modify-write steps:
    ``with v.get_lock(): v.value += 1``. Attaching keeps the current value.
    As with ctypes, an integer out of the typecode's range wraps
    (Value('b', 200).value == -56) and float typecodes take ints."""

    def __init__(self, typecode: str, value: Number = 0, *, name: Optional[str] = None,
                 keep: bool = False, lock: bool = True) -> None:
        size = _check_typecode(typecode)

        def init(h: _Handle) -> None:
            v = h.view(VALUE_OFF, VALUE_OFF + size, typecode)
            v[0] = _wrap(typecode, value)

        self._h = _Handle(name, KIND_VALUE, VALUE_OFF + 8, typecode, init=init, keep=keep)
        self._typecode = self._h.typecode  # the segment's: l and q (L and Q) are interchangeable
        self._item = self._h.view(VALUE_OFF, VALUE_OFF + size, self._typecode)
        self._lock = RLock(_ul=_UserLock(self._h))

    @property
    def name(self) -> str:
        return self._h.name

    @property
    def value(self) -> Number:
        self._enter()
        try:
            return self._item[0]  # type: ignore[no-any-return]
        finally:
            self._lock.release()

    @value.setter
    def value(self, v: Number) -> None:
        v = _wrap(self._typecode, v)
        self._enter()
        try:
            self._item[0] = v
        finally:
            self._lock.release()

    _enter = _enter_locked

    def get_lock(self) -> RLock:
        return self._lock

    def get_obj(self) -> "Value":
        return self

    def close(self) -> None:
        """Release this handle; the last one removes the value."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen_value, (self._typecode, self.name))

    def __repr__(self) -> str:
        try:
            value = repr(self.value)
        except (ClosedError, SegmentTruncatedError):
            value = "unknown"
        return f"<Value({self._typecode!r}, {value}, name={self.name!r})>"


class Array:
    """multiprocessing.Array(typecode, size_or_initializer), named: indexing,
    slicing, len(), iteration, get_lock(). Each access takes the lock, as
    multiprocessing's synchronized Array does. Attaching keeps the items; the
    length must match."""

    def __init__(self, typecode: str, size_or_initializer: Union[int, Sequence[Number]], *,
                 name: Optional[str] = None, keep: bool = False, lock: bool = True) -> None:
        size = _check_typecode(typecode)
        init_items: Optional[Sequence[Number]] = None
        if isinstance(size_or_initializer, int):
            n = size_or_initializer
        else:
            init_items = list(size_or_initializer)
            n = len(init_items)
        if n < 0:
            raise ValueError(f"negative array length {n}")
        self._n = n

        def init(h: _Handle) -> None:
            h.set64(VALUE_OFF, n)
            if init_items:
                v = h.view(VALUE_OFF + 8, VALUE_OFF + 8 + n * size, typecode)
                v[:] = _pack_seq(typecode, init_items)

        def check(h: _Handle) -> None:
            got = h.u64(VALUE_OFF)
            if got != n:
                raise LayoutError(f"{h.name!r} has {got} items, not {n}")
            if VALUE_OFF + 8 + n * size > h.size:
                raise LayoutError(f"{h.name!r}: {n} items do not fit {h.size} bytes")

        self._h = _Handle(name, KIND_ARRAY, VALUE_OFF + 8 + n * size, typecode, init=init, check=check, keep=keep)
        self._typecode = self._h.typecode
        self._items = self._h.view(VALUE_OFF + 8, VALUE_OFF + 8 + n * size, self._typecode)
        self._lock = RLock(_ul=_UserLock(self._h))

    @property
    def name(self) -> str:
        return self._h.name

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Number: ...
    @overload
    def __getitem__(self, i: slice) -> List[Number]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[Number, List[Number]]:
        self._enter()
        try:
            if isinstance(i, slice):
                return self._items[i].tolist()  # type: ignore[no-any-return]
            return self._items[i]  # type: ignore[no-any-return]
        finally:
            self._lock.release()

    @overload
    def __setitem__(self, i: int, v: Number) -> None: ...
    @overload
    def __setitem__(self, i: slice, v: Sequence[Number]) -> None: ...

    def __setitem__(self, i: Union[int, slice], v: Union[Number, Sequence[Number]]) -> None:
        self._enter()
        try:
            if isinstance(i, slice):
                if isinstance(v, (int, float)):
                    raise TypeError("can only assign a sequence to a slice")
                self._items[i] = _pack_seq(self._typecode, v)
            else:
                self._items[i] = _wrap(self._typecode, v)  # type: ignore[arg-type]
        finally:
            self._lock.release()

    def __iter__(self) -> Iterator[Number]:
        return iter(self[:])

    _enter = _enter_locked

    def get_lock(self) -> RLock:
        return self._lock

    def get_obj(self) -> "Array":
        return self

    def close(self) -> None:
        """Release this handle; the last one removes the array."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen_array, (self._typecode, self._n, self.name))

    def __repr__(self) -> str:
        try:
            items = repr(self[:])
        except (ClosedError, SegmentTruncatedError):
            items = "unknown"
        return f"<Array({self._typecode!r}, {items}, name={self.name!r})>"


def _reopen_value(typecode: str, name: str) -> Value:
    return Value(typecode, 0, name=name)  # attaching keeps the value


def _reopen_array(typecode: str, n: int, name: str) -> Array:
    return Array(typecode, n, name=name)


def _pack_seq(typecode: str, items: Sequence[Number]) -> Any:
    # native sizes ("l" is C long, 8 bytes), as the segment's items; "="
    # would pack l/L in 4 bytes and the assignment would fail
    v: Any = memoryview(struct.pack(f"@{len(items)}{typecode}", *[_wrap(typecode, x) for x in items]))
    return v.cast(typecode)


_FLOATS = ("f", "d")


def _wrap(typecode: str, v: Number) -> Number:
    """What ctypes stores for v: integers wrap modulo 2**bits (ctypes does no
    overflow check: Value('b', 200).value == -56, as with multiprocessing);
    float typecodes take ints (and bools) too. A float for an integer
    typecode raises TypeError, as ctypes does."""
    if typecode in _FLOATS:
        return float(v)
    bits = TYPECODES[typecode] * 8
    x = operator.index(v) & ((1 << bits) - 1)  # type: ignore[arg-type]
    if typecode.islower() and x >> (bits - 1):
        x -= 1 << bits
    return x
