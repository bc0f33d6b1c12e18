"""Named RawValue, RawArray, Value and Array in shared memory, as
``multiprocessing.sharedctypes`` has them (wire/SPEC.md section 10.3); Go's
bridge/mp opens the same names.

Each is a segment under ``/dev/shm`` (gobridge._internal.objects) whose
items are native little-endian numbers of one typecode, or bytes (``'c'``,
as ``ctypes.c_char``). As in multiprocessing, :class:`RawValue` and
:class:`RawArray` have no lock; :func:`Value` and :func:`Array` return a
synchronized wrapper (:class:`Synchronized`, :class:`SynchronizedArray`,
:class:`SynchronizedString` for ``'c'``) whose accesses go under a lock:
by default the object's own RLock (``get_lock()``, the segment's user lock,
which Go's ``Lock``/``Unlock`` take too), or the lock given as ``lock=``;
``lock=False`` returns the raw object itself.
"""
from __future__ import annotations

import ctypes
import operator
import struct
from typing import Any, Final, Iterator, List, Literal, Optional, Sequence, Union, overload

from ._internal.layout import KIND_ARRAY, KIND_VALUE, VALUE_OFF
from ._internal.objects import TYPECODES, ClosedError, LayoutError, SegmentTruncatedError, _Handle, _UserLock
from .synchronize import RLock

__all__ = ["RawValue", "RawArray", "Value", "Array", "Synchronized", "SynchronizedArray", "SynchronizedString"]

#: A typecode (``'i'``, ``'c'``...) or the ctypes type it stands for (``ctypes.c_int``...).
TypecodeOrType = Union[str, "type[Any]"]
#: What an item holds: a number, or one byte (``bytes`` of length 1) for ``'c'``.
Item = Union[int, float, bytes]
Number = Union[int, float]

_CHAR: Final = "c"
_FLOATS = ("f", "d")


def _typecode(typecode_or_type: Any) -> str:
    """The typecode of typecode_or_type: a typecode itself, or a ctypes simple
    type (ctypes.c_int is 'i'; c_longlong is c_long, 'l', on Linux); TypeError
    for anything else, as multiprocessing's sharedctypes (through ctypes)."""
    tc = typecode_or_type
    if isinstance(tc, type) and issubclass(tc, ctypes._SimpleCData):
        tc = getattr(tc, "_type_", None)
    if not isinstance(tc, str) or tc not in TYPECODES:
        raise TypeError(f"typecode must be one of {' '.join(TYPECODES)} or its ctypes type, "
                        f"not {typecode_or_type!r}")
    return tc


def _check_lock(lock: Any) -> Any:
    """multiprocessing's rule for lock=: True or None, a new RLock (here the
    object's own, returned as None); anything else must have acquire, else
    AttributeError with multiprocessing's message. False is the caller's."""
    if lock in (True, None):
        return None
    if not hasattr(lock, "acquire"):
        raise AttributeError("%r has no method 'acquire'" % lock)
    return lock


# -- raw objects -------------------------------------------------------------

class RawValue:
    """multiprocessing.RawValue(typecode_or_type, *args), named: one item in a
    segment, read and written with no lock (as ctypes objects in shared
    memory are). ``RawValue('i')`` is 0, ``RawValue('i', 5)`` 5,
    ``RawValue('c', b'x')`` one byte. Attaching to an existing name keeps its
    value; ``create=False`` only attaches (FileNotFoundError naming the name
    when it does not exist). As with ctypes, an integer out of the typecode's
    range wraps (``RawValue('b', 200).value == -56``) and float typecodes take
    ints."""

    def __init__(self, typecode_or_type: TypecodeOrType, *args: Item, name: Optional[str] = None,
                 keep: bool = False, create: bool = True) -> None:
        typecode = _typecode(typecode_or_type)
        if len(args) > 1:
            raise TypeError(f"__init__ expected at most 1 argument, got {len(args)}")
        init_value = _wrap(typecode, args[0]) if args else _zero(typecode)
        size = TYPECODES[typecode]

        def init(h: _Handle) -> None:
            h.view(VALUE_OFF, VALUE_OFF + size, typecode)[0] = init_value

        self._h = _Handle(name, KIND_VALUE, VALUE_OFF + 8, typecode, init=init, keep=keep, create=create)
        self._typecode = self._h.typecode  # the segment's: l and q (L and Q) are interchangeable
        self._item = self._h.view(VALUE_OFF, VALUE_OFF + size, self._typecode)

    @property
    def name(self) -> str:
        """The object's name (under /dev/shm), for other processes to open."""
        return self._h.name

    @property
    def typecode(self) -> str:
        """The typecode the segment holds."""
        return self._typecode

    @property
    def value(self) -> Any:
        """The item (no lock; ClosedError after close())."""
        self._h.check()
        return self._item[0]

    @value.setter
    def value(self, v: Any) -> None:
        v = _wrap(self._typecode, v)
        self._h.check()
        self._item[0] = v

    def _get(self) -> Any:
        """value, for a caller that checked the handle under its lock."""
        return self._item[0]

    def _set(self, v: Item) -> None:
        self._item[0] = v  # wrapped by the caller, outside the lock

    def close(self) -> None:
        """Release this handle; the last one removes the value unless kept."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen, (type(self), self._typecode, None, self.name))

    def __repr__(self) -> str:
        try:
            value = repr(self.value)
        except (ClosedError, SegmentTruncatedError):
            value = "unknown"
        return f"<{type(self).__name__}({self._typecode!r}, {value}, name={self.name!r})>"


class RawArray:
    """multiprocessing.RawArray(typecode_or_type, size_or_initializer), named:
    indexing, slicing, len(), iteration, with no lock. An int gives that many
    zero items; a sequence (``bytes`` too, for ``'c'``) the items. Attaching
    keeps the items; the length must match (LayoutError otherwise).
    ``create=False`` only attaches. A ``'c'`` array is a ctypes char array:
    items and slices are bytes, and it has ``.value`` (the bytes before the
    first NUL) and ``.raw`` (all of them)."""

    def __init__(self, typecode_or_type: TypecodeOrType, size_or_initializer: Union[int, Sequence[Item], bytes],
                 *, name: Optional[str] = None, keep: bool = False, create: bool = True) -> None:
        typecode = _typecode(typecode_or_type)
        size = TYPECODES[typecode]
        packed: Optional[Any] = None
        if isinstance(size_or_initializer, int):
            n = size_or_initializer
        else:
            items = list(size_or_initializer)
            n = len(items)
            packed = _pack_seq(typecode, items)
        if n < 0:
            raise ValueError(f"negative array length {n}")
        self._n = n

        def init(h: _Handle) -> None:
            h.set64(VALUE_OFF, n)
            if n and packed is not None:
                h.view(VALUE_OFF + 8, VALUE_OFF + 8 + n * size, typecode)[:] = packed

        def check(h: _Handle) -> None:
            got = h.u64(VALUE_OFF)
            if got != n:
                raise LayoutError(f"{h.name!r} has {got} items, not {n}")
            if VALUE_OFF + 8 + n * size > h.size:
                raise LayoutError(f"{h.name!r}: {n} items do not fit {h.size} bytes")

        self._h = _Handle(name, KIND_ARRAY, VALUE_OFF + 8 + n * size, typecode, init=init, check=check, keep=keep,
                          create=create)
        self._typecode = self._h.typecode
        self._items = self._h.view(VALUE_OFF + 8, VALUE_OFF + 8 + n * size, self._typecode)

    @property
    def name(self) -> str:
        """The object's name (under /dev/shm), for other processes to open."""
        return self._h.name

    @property
    def typecode(self) -> str:
        """The typecode the segment holds."""
        return self._typecode

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> Any: ...

    def __getitem__(self, i: Union[int, slice]) -> Any:
        self._h.check()
        return self._getitem(i)

    def _getitem(self, i: Union[int, slice]) -> Any:
        if isinstance(i, slice):
            items = self._items[i]
            return items.tobytes() if self._typecode == _CHAR else items.tolist()
        return self._items[i]

    def __setitem__(self, i: Union[int, slice], v: Any) -> None:
        packed = self._packed(i, v)
        self._h.check()
        self._items[i] = packed

    def _packed(self, i: Union[int, slice], v: Any) -> Any:
        """v as the items at i take it: one wrapped item, or for a slice the
        packed items of a sequence of the slice's length (ctypes' errors)."""
        if not isinstance(i, slice):
            return _wrap(self._typecode, v)
        if isinstance(v, (int, float)):
            raise TypeError("can only assign a sequence to a slice")
        items = list(v)
        if len(items) != len(range(*i.indices(self._n))):
            raise ValueError("Can only assign sequence of same size")
        return _pack_seq(self._typecode, items)

    def __iter__(self) -> Iterator[Any]:
        self._h.check()
        return iter(self._items_list())

    def _items_list(self) -> List[Any]:
        if self._typecode == _CHAR:
            return [bytes((b,)) for b in self._items.tobytes()]
        return self._items.tolist()  # type: ignore[no-any-return]

    # 'c' arrays, as ctypes char arrays

    @property
    def value(self) -> bytes:
        """A ``'c'`` array's bytes up to the first NUL; setting it writes the
        bytes and a NUL after them if there is room (ValueError "byte string
        too long" beyond the length), as ctypes does."""
        self._char_only("value")
        self._h.check()
        return self._get_value()

    @value.setter
    def value(self, v: bytes) -> None:
        self._char_only("value")
        self._check_value(v)
        self._h.check()
        self._set_value(v)

    @property
    def raw(self) -> bytes:
        """A ``'c'`` array's bytes, all of them; setting it writes the bytes
        given from the start (at most the length), as ctypes does."""
        self._char_only("raw")
        self._h.check()
        return self._items.tobytes()  # type: ignore[no-any-return]

    @raw.setter
    def raw(self, v: Any) -> None:
        self._char_only("raw")
        b = self._check_raw(v)
        self._h.check()
        self._write(b)

    def _char_only(self, what: str) -> None:
        if self._typecode != _CHAR:
            raise AttributeError(f"{type(self).__name__} of typecode {self._typecode!r} has no attribute {what!r}")

    def _get_value(self) -> bytes:
        b: bytes = self._items.tobytes()
        end = b.find(b"\0")
        return b if end < 0 else b[:end]

    def _check_value(self, v: Any) -> None:
        if not isinstance(v, bytes):
            raise TypeError(f"bytes expected instead of {type(v).__name__} instance")
        if len(v) > self._n:
            raise ValueError("byte string too long")

    def _set_value(self, v: bytes) -> None:
        self._write(v + b"\0" if len(v) < self._n else v)

    def _write(self, b: bytes) -> None:
        """Store b over a 'c' array's first len(b) items."""
        self._items[:len(b)] = memoryview(b).cast(_CHAR)

    def _check_raw(self, v: Any) -> bytes:
        b = bytes(memoryview(v))  # TypeError for str, as ctypes
        if len(b) > self._n:
            raise ValueError("byte string too long")
        return b

    def close(self) -> None:
        """Release this handle; the last one removes the array unless kept."""
        self._h.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_reopen, (type(self), self._typecode, self._n, self.name))

    def __repr__(self) -> str:
        try:
            items = repr(self[:])
        except (ClosedError, SegmentTruncatedError):
            items = "unknown"
        return f"<{type(self).__name__}({self._typecode!r}, {items}, name={self.name!r})>"


def _reopen(cls: Any, typecode: str, n: Optional[int], name: str) -> Any:
    """Unpickle a raw object: attach by name (its value or items are kept)."""
    if n is None:
        return cls(typecode, name=name)
    return cls(typecode, n, name=name)


# -- synchronized wrappers ---------------------------------------------------

class SynchronizedBase:
    """What multiprocessing's synchronized wrappers share: the raw object
    (get_obj()), its lock (get_lock(), also acquire/release and the context
    manager). The default lock is the object's own RLock on its segment's
    user lock, the one Go's Lock/Unlock takes."""

    def __init__(self, obj: Union[RawValue, RawArray], lock: Any = None) -> None:
        self._obj = obj
        if lock is None:
            self._own = True
            self._lock: Any = RLock(_ul=_UserLock(obj._h))
        else:
            self._own = False
            self._lock = lock

    def _enter(self) -> None:
        """Take the lock for one access. The object's own lock checked the
        segment's size when it was freshly taken (_UserLock); a nested
        acquisition (the caller holds get_lock()) checks here. Another lock
        protects nothing of this segment: check it under that lock."""
        lk = self._lock
        lk.acquire()
        if not self._own or lk._count > 1:
            try:
                self._obj._h.check()
            except BaseException:
                lk.release()
                raise

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        """The lock's acquire."""
        return self._lock.acquire(*args, **kwargs)

    def release(self) -> None:
        """The lock's release."""
        self._lock.release()

    def __enter__(self) -> Any:
        return self._lock.__enter__()

    def __exit__(self, *args: Any) -> Any:
        return self._lock.__exit__(*args)

    def get_obj(self) -> Any:
        """The raw object under the wrapper (a RawValue or RawArray)."""
        return self._obj

    def get_lock(self) -> Any:
        """The lock every access takes: ``with v.get_lock(): v.value += 1``."""
        return self._lock

    @property
    def name(self) -> str:
        """The object's name (under /dev/shm), for other processes to open."""
        return self._obj.name

    @property
    def typecode(self) -> str:
        """The typecode the segment holds."""
        return self._obj.typecode

    def close(self) -> None:
        """Release this handle on the object (the last one removes it unless
        kept); a lock given as lock= is the caller's to close."""
        self._obj.close()

    def __reduce__(self) -> "tuple[Any, ...]":
        return (_resync, (type(self), self._obj, None if self._own else self._lock))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} wrapper for {self._obj!r}>"


def _resync(cls: Any, obj: Any, lock: Any) -> Any:
    return cls(obj, lock)


class Synchronized(SynchronizedBase):
    """multiprocessing's Synchronized: what Value() returns; ``.value`` reads
    and writes under the lock."""

    _obj: RawValue

    @property
    def value(self) -> Any:
        """The item, read under the lock."""
        self._enter()
        try:
            return self._obj._get()
        finally:
            self._lock.release()

    @value.setter
    def value(self, v: Any) -> None:
        v = _wrap(self._obj._typecode, v)
        self._enter()
        try:
            self._obj._set(v)
        finally:
            self._lock.release()


class SynchronizedArray(SynchronizedBase):
    """multiprocessing's SynchronizedArray: what Array() returns; each item or
    slice access takes the lock."""

    _obj: RawArray

    def __len__(self) -> int:
        return len(self._obj)

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> Any: ...

    def __getitem__(self, i: Union[int, slice]) -> Any:
        self._enter()
        try:
            return self._obj._getitem(i)
        finally:
            self._lock.release()

    def __setitem__(self, i: Union[int, slice], v: Any) -> None:
        o = self._obj
        packed = o._packed(i, v)
        self._enter()
        try:
            o._items[i] = packed
        finally:
            self._lock.release()

    def __iter__(self) -> Iterator[Any]:
        self._enter()
        try:
            return iter(self._obj._items_list())
        finally:
            self._lock.release()


class SynchronizedString(SynchronizedArray):
    """multiprocessing's SynchronizedString: what Array('c', ...) returns;
    ``.value`` and ``.raw`` as a ctypes char array's, under the lock."""

    @property
    def value(self) -> bytes:
        """The bytes up to the first NUL (setting: ctypes' rules, RawArray.value)."""
        self._enter()
        try:
            return self._obj._get_value()
        finally:
            self._lock.release()

    @value.setter
    def value(self, v: bytes) -> None:
        self._obj._check_value(v)
        self._enter()
        try:
            self._obj._set_value(v)
        finally:
            self._lock.release()

    @property
    def raw(self) -> bytes:
        """All the bytes (setting: ctypes' rules, RawArray.raw)."""
        self._enter()
        try:
            return self._obj._items.tobytes()  # type: ignore[no-any-return]
        finally:
            self._lock.release()

    @raw.setter
    def raw(self, v: Any) -> None:
        b = self._obj._check_raw(v)
        self._enter()
        try:
            self._obj._write(b)
        finally:
            self._lock.release()


# -- the factories ---------------------------------------------------------------

@overload
def Value(typecode_or_type: TypecodeOrType, *args: Item, lock: Literal[False], ctx: Any = None,
          name: Optional[str] = None, keep: bool = False, create: bool = True) -> RawValue: ...
@overload
def Value(typecode_or_type: TypecodeOrType, *args: Item, lock: Any = True, ctx: Any = None,
          name: Optional[str] = None, keep: bool = False, create: bool = True) -> Synchronized: ...


def Value(typecode_or_type: TypecodeOrType, *args: Item, lock: Any = True, ctx: Any = None,
          name: Optional[str] = None, keep: bool = False, create: bool = True) -> Union[RawValue, Synchronized]:
    """multiprocessing.Value(typecode_or_type, *args, lock=True), named.

    ``lock=True`` (or None): a :class:`Synchronized` wrapper whose accesses
    take the object's own RLock; ``lock=False``: the :class:`RawValue`
    itself; a lock (a gobridge Lock or RLock, or anything with ``acquire``):
    a wrapper that takes that one. Anything else raises AttributeError, as
    multiprocessing does. ``ctx`` is accepted for multiprocessing's
    signature and unused (gobridge objects need no start-method context).
    ``name``, ``keep``, ``create``: as RawValue's."""
    obj = RawValue(typecode_or_type, *args, name=name, keep=keep, create=create)
    if lock is False:
        return obj
    try:
        return Synchronized(obj, _check_lock(lock))
    except BaseException:
        obj.close()
        raise


@overload
def Array(typecode_or_type: TypecodeOrType, size_or_initializer: Union[int, Sequence[Item], bytes], *,
          lock: Literal[False], ctx: Any = None, name: Optional[str] = None, keep: bool = False,
          create: bool = True) -> RawArray: ...
@overload
def Array(typecode_or_type: TypecodeOrType, size_or_initializer: Union[int, Sequence[Item], bytes], *,
          lock: Any = True, ctx: Any = None, name: Optional[str] = None, keep: bool = False,
          create: bool = True) -> SynchronizedArray: ...


def Array(typecode_or_type: TypecodeOrType, size_or_initializer: Union[int, Sequence[Item], bytes], *,
          lock: Any = True, ctx: Any = None, name: Optional[str] = None, keep: bool = False,
          create: bool = True) -> Union[RawArray, SynchronizedArray]:
    """multiprocessing.Array(typecode_or_type, size_or_initializer, lock=True),
    named: a :class:`SynchronizedArray` (:class:`SynchronizedString` for
    ``'c'``), or with ``lock=False`` the :class:`RawArray` itself; ``lock``
    as for :func:`Value`. ``name``, ``keep``, ``create``: as RawArray's."""
    obj = RawArray(typecode_or_type, size_or_initializer, name=name, keep=keep, create=create)
    if lock is False:
        return obj
    try:
        cls = SynchronizedString if obj.typecode == _CHAR else SynchronizedArray
        return cls(obj, _check_lock(lock))
    except BaseException:
        obj.close()
        raise


# -- items -----------------------------------------------------------------------

def _zero(typecode: str) -> Item:
    if typecode == _CHAR:
        return b"\0"
    return 0.0 if typecode in _FLOATS else 0


def _pack_seq(typecode: str, items: Sequence[Any]) -> Any:
    # native sizes ("l" is C long, 8 bytes), as the segment's items; "="
    # would pack l/L in 4 bytes and the assignment would fail
    v: Any = memoryview(struct.pack(f"@{len(items)}{typecode}", *[_wrap(typecode, x) for x in items]))
    return v.cast(typecode)


_CHAR_ERROR = "one character bytes, bytearray or integer expected"


def _wrap(typecode: str, v: Any) -> Item:
    """What ctypes stores for v: integers wrap modulo 2**bits (ctypes does no
    overflow check: Value('b', 200).value == -56, as with multiprocessing);
    float typecodes take ints (and bools) too. A float for an integer
    typecode raises TypeError, as ctypes does. A 'c' item is one byte: bytes
    or bytearray of length 1, or an int 0-255 (ctypes.c_char's rule)."""
    if typecode == _CHAR:
        if isinstance(v, (bytes, bytearray)):
            if len(v) != 1:
                raise TypeError(_CHAR_ERROR)
            return bytes(v)
        if isinstance(v, int) and 0 <= v < 256:
            return bytes((v,))
        raise TypeError(_CHAR_ERROR)
    if typecode in _FLOATS:
        return float(v)
    bits = TYPECODES[typecode] * 8
    x = operator.index(v) & ((1 << bits) - 1)
    if typecode.islower() and x >> (bits - 1):
        x -= 1 << bits
    return x
