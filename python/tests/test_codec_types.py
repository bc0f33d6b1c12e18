"""Values that are not builtins: subclasses, numpy scalars (by duck typing,
with stand-ins and, when it is installed, numpy itself), numpy arrays, and
the default= hook of encode and Connection.set_default (SPEC 3.1)."""
import collections
import enum
import fractions

import pytest

import gobridge
from gobridge import EncodeError


class Color(enum.IntEnum):
    RED = 5


class Name(str):
    def __str__(self):
        return "not the value"


class Index:
    """An integer type that is no int subclass, as numpy.int64 is."""

    def __init__(self, n):
        self.n = n

    def __index__(self):
        return self.n


def numpy_like(name, **methods):
    """A class whose type says it is numpy's `name`, as the encoder sees it."""
    cls = type(name, (), methods)
    cls.__module__ = "numpy"
    return cls


Bool = numpy_like("bool_", __init__=lambda self, v: setattr(self, "v", v), __bool__=lambda self: self.v,
                  __index__=lambda self: 1 / 0)  # numpy.bool_ refuses __index__ in recent numpy
Float32 = numpy_like("float32", item=lambda self: 0.10000000149011612)
Array = numpy_like("ndarray", shape=(2, 3), __index__=lambda self: 0)
Datetime = numpy_like("datetime64", item=lambda self: 1577836800000000000)


@pytest.mark.parametrize("value, same_as", [
    (Color.RED, 5),
    ({Color.RED: [Color.RED]}, {5: [5]}),
    (Name("abc"), "abc"),
    (Index(7), 7),
    (Index(2**64 - 1), 2**64 - 1),
    ({Index(3): Index(-4)}, {3: -4}),
    (Bool(True), True),
    (Bool(False), False),
    (Float32(), 0.10000000149011612),
    (collections.OrderedDict(b=1, a=2), {"b": 1, "a": 2}),
    (collections.defaultdict(list, {"k": [1]}), {"k": [1]}),
    (collections.namedtuple("P", "x y")(1, 2), [1, 2]),
    (type("L", (list,), {})([1, 2]), [1, 2]),
    (type("B", (bytes,), {})(b"ab"), b"ab"),
    (bytearray(b"ab"), b"ab"),
    (type("F", (float,), {})(2.5), 2.5),
])
def test_encoded_as_the_builtin(value, same_as):
    assert gobridge.encode(value) == gobridge.encode(same_as)


def test_integer_types_out_of_range():
    with pytest.raises(gobridge.IntegerRangeError):
        gobridge.encode(Index(2**64))
    with pytest.raises(gobridge.IntegerRangeError):
        gobridge.encode(Color.RED * 2**70)


@pytest.mark.parametrize("value, what", [
    (Array(), "numpy.ndarray \\(shape \\(2, 3\\)\\): send its raw bytes with conn.send_bytes"),
    (Datetime(), "'datetime64'"),  # its item() is an int of nanoseconds: not silently sent as one
    (fractions.Fraction(1, 3), "'Fraction'"),
    (1j, "'complex'"),
])
def test_refused(value, what):
    with pytest.raises(EncodeError, match=what):
        gobridge.encode(value)


class Vec:
    def __init__(self, *xs):
        self.xs = xs


def test_default_hook():
    as_dict = lambda v: {"vec": list(v.xs)}  # noqa: E731
    assert gobridge.decode(gobridge.encode([Vec(1, 2)], default=as_dict)) == [{"vec": [1, 2]}]
    # the result is encoded with the same rules: tuples, nested user types
    nested = lambda v: (v.xs[0], Vec(*v.xs[1:])) if v.xs else None  # noqa: E731
    assert gobridge.decode(gobridge.encode(Vec(1, 2), default=nested)) == [1, [2, None]]
    # not called for what encodes anyway, nor for numpy scalars
    calls = []
    gobridge.encode([1, "a", Index(3), (1,)], default=calls.append)
    assert calls == []


def test_default_hook_errors():
    def refuse(v):
        raise TypeError(f"no form for {type(v).__name__}")

    with pytest.raises(EncodeError, match="no form for Vec"):
        gobridge.encode(Vec(), default=refuse)
    with pytest.raises(EncodeError, match="default hook returned a 'Vec' object for a 'Vec' object"):
        gobridge.encode(Vec(), default=lambda v: v)
    with pytest.raises(EncodeError, match="can not serialize 'Vec' object"):
        gobridge.encode(Vec())  # no hook at all


def test_default_hook_may_encode_reentrantly():
    assert gobridge.decode(gobridge.encode(Vec(1), default=lambda v: gobridge.encode(list(v.xs)))) == b"\x91\x01"


def test_connection_set_default():
    a, b = gobridge.Pipe()
    with a, b:
        with pytest.raises(EncodeError):
            a.send(Vec(1))
        a.set_default(lambda v: list(v.xs))
        a.send({"v": Vec(1, 2)})
        assert b.recv() == {"v": [1, 2]}
        a.set_default(None)
        with pytest.raises(EncodeError):
            a.send(Vec(1))
        with pytest.raises(TypeError):
            a.set_default(3)  # type: ignore[arg-type]
        a.send("still fine")
        assert b.recv() == "still fine"


def test_numpy_itself():
    np = pytest.importorskip("numpy")
    values = [np.int64(5), np.int8(-3), np.uint64(2**64 - 1), np.uint8(200), np.bool_(True), np.False_,
              np.float64(1.5), np.float32(0.1), np.float16(2.5), np.str_("s"), np.bytes_(b"b"),
              {np.int64(3): [np.bool_(False), np.float32(0.5)]}]
    builtins = [5, -3, 2**64 - 1, 200, True, False, 1.5, float(np.float32(0.1)), 2.5, "s", b"b", {3: [False, 0.5]}]
    for v, want in zip(values, builtins):
        got = gobridge.decode(gobridge.encode(v))
        assert got == want and type(got) is type(want), (v, got)
    for arr in (np.arange(6).reshape(2, 3), np.array(5), np.array([1.5])):
        with pytest.raises(EncodeError, match="send_bytes"):
            gobridge.encode(arr)
    assert gobridge.decode(gobridge.encode(np.arange(3), default=lambda a: a.tolist())) == [0, 1, 2]
    a, b = gobridge.Pipe()
    with a, b:
        a.send_bytes(np.arange(4, dtype="<i4"))  # the documented way for arrays
        assert np.frombuffer(b.recv_bytes(), dtype="<i4").tolist() == [0, 1, 2, 3]
