import datetime as dt
import math
import threading

import msgpack
import pytest

import gobridge
from gobridge import DecodeError, EncodeError, IntegerRangeError

UTC = dt.timezone.utc


@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2**64 - 1, -2**63, 1.5, -0.0, "", "€😀", b"", b"\x00\xff",
    [], [1, [2, [3]]], {}, {"a": 1}, {1: "x", None: 2, 2.5: [True]},
    dt.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), dt.datetime(1900, 1, 1, tzinfo=UTC),
])
def test_round_trip(value):
    got = gobridge.decode(gobridge.encode(value))
    assert got == value and type(got) is type(value)


def test_encodes_like_msgpack_python():
    value = {"s": "x", "b": b"y", "l": [1, 2.5, None], 7: dt.datetime(2020, 1, 1, tzinfo=UTC)}
    assert gobridge.encode(value) == msgpack.packb(value, use_bin_type=True, datetime=True)


def test_tuple_arrives_as_list():
    assert gobridge.decode(gobridge.encode((1, (2, 3)))) == [1, [2, 3]]


def test_bytes_like_are_bin():
    for b in (bytearray(b"ab"), memoryview(b"ab")):
        assert gobridge.encode(b) == b"\xc4\x02ab"


def test_aware_datetime_arrives_in_utc():
    t = dt.datetime(2020, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    got = gobridge.decode(gobridge.encode(t))
    assert got == t and got.utcoffset() == dt.timedelta(0)


def test_datetime_subclass_is_encoded():
    class Stamp(dt.datetime):
        pass

    t = Stamp(2020, 1, 1, tzinfo=UTC)
    assert gobridge.decode(gobridge.encode(t)) == t


@pytest.mark.parametrize("n", [2**64, -2**63 - 1, 2**100])
def test_integer_out_of_range(n):
    with pytest.raises(IntegerRangeError) as e:
        gobridge.encode([1, {"k": n}])
    assert isinstance(e.value, EncodeError) and isinstance(e.value, OverflowError)
    assert isinstance(e.value, TypeError) and isinstance(e.value, gobridge.BridgeError)
    assert f"{n.bit_length()}-bit" in str(e.value)


@pytest.mark.parametrize("value", [
    {1, 2}, frozenset(), object(), dt.datetime(2020, 1, 1), 1j, "\ud800",
])
def test_not_encodable(value):
    with pytest.raises(EncodeError):
        gobridge.encode(value)


def test_nesting_limit_on_encode():
    ok = None
    for _ in range(gobridge.MAX_DEPTH):
        ok = [ok]
    assert gobridge.encode(ok) == b"\x91" * gobridge.MAX_DEPTH + b"\xc0"
    with pytest.raises(EncodeError, match="nesting"):
        gobridge.encode([ok])


def test_packer_usable_after_error():
    with pytest.raises(EncodeError):
        gobridge.encode([1, 2, {3}])
    assert gobridge.encode([7]) == b"\x91\x07"


def test_encode_from_threads():
    value = {"x": list(range(100)), "t": dt.datetime(2020, 1, 1, tzinfo=UTC)}
    want = gobridge.encode(value)
    bad = []

    def work():
        for _ in range(300):
            if gobridge.encode(value) != want:
                bad.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not bad


@pytest.mark.parametrize("hexdata, what", [
    ("", "malformed"), ("c1", "malformed"), ("c0c0", "trailing"), ("9201", "malformed"),
    ("a1ff", "UTF-8"), ("d40501", "extension type 5"), ("81910100", "map key"),
    ("c703ff000000", "malformed"), ("91" * 1025 + "c0", "nesting"),
])
def test_decode_errors(hexdata, what):
    with pytest.raises(DecodeError, match=what) as e:
        gobridge.decode(bytes.fromhex(hexdata))
    assert isinstance(e.value, ValueError) and isinstance(e.value, gobridge.BridgeError)


def test_huge_count_header_allocates_nothing():
    # an array header claiming 2^32-1 elements in a 6-byte payload
    with pytest.raises(DecodeError):
        gobridge.decode(bytes.fromhex("ddffffffffc0"))


def test_decode_max_size():
    data = gobridge.encode("x" * 100)
    assert gobridge.decode(data, max_size=len(data)) == "x" * 100
    with pytest.raises(DecodeError, match="max_size"):
        gobridge.decode(data, max_size=len(data) - 1)


def test_decode_accepts_buffers():
    data = gobridge.encode({"a": [1, 2]})
    assert gobridge.decode(bytearray(data)) == gobridge.decode(memoryview(data)) == {"a": [1, 2]}


def test_nan_and_inf():
    for x in (math.nan, math.inf, -math.inf):
        got = gobridge.decode(gobridge.encode(x))
        assert (math.isnan(got) and math.isnan(x)) or got == x
