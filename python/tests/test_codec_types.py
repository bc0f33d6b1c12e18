"""Values that are not builtins: subclasses of builtins are encoded as the
builtin (the Packer runs with strict_types=True, so they come to gobridge's
hook, which converts them), anything else is refused (SPEC 3.1)."""
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


@pytest.mark.parametrize("value, same_as", [
    (Color.RED, 5),
    ({Color.RED: [Color.RED]}, {5: [5]}),
    (Name("abc"), "abc"),
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


def test_integer_subclass_out_of_range():
    with pytest.raises(gobridge.IntegerRangeError):
        gobridge.encode(Color.RED * 2**70)


@pytest.mark.parametrize("value, what", [
    (fractions.Fraction(1, 3), "'Fraction'"),
    (1j, "'complex'"),
])
def test_refused(value, what):
    with pytest.raises(EncodeError, match=what):
        gobridge.encode(value)
