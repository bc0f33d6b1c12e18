"""The decoder's edges (SPEC 3.1-3.3): timestamps a datetime cannot hold, the
container budget, pickles sent by mistake, and the encoder refusing what no
decoder accepts."""
import collections
import datetime as dt
import pickle
import tracemalloc

import msgpack
import pytest

import gobridge
from gobridge import DecodeError, EncodeError
from gobridge._codec import _MAP_WEIGHT, _MIN_BUDGET, _UNCOUNTED

UTC = dt.timezone.utc


def ts96(seconds, nanos=0):
    return b"\xc7\x0c\xff" + nanos.to_bytes(4, "big") + seconds.to_bytes(8, "big", signed=True)


def array_of(n, unit):
    return b"\xdd" + n.to_bytes(4, "big") + unit * n


# --- timestamps ---------------------------------------------------------------

@pytest.mark.parametrize("seconds, nanos", [
    (253402300800, 0), (-62135596801, 999999999), (1 << 40, 0), (-(1 << 62), 0), ((1 << 63) - 1, 0),
])
def test_timestamp_outside_datetime_is_a_decode_error(seconds, nanos):
    with pytest.raises(DecodeError) as e:
        gobridge.decode(ts96(seconds, nanos))
    assert isinstance(e.value, ValueError)
    message = str(e.value)
    assert f"{seconds} s and {nanos} ns" in message and "years 1 to 9999" in message


def test_timestamp_range_edges_decode():
    assert gobridge.decode(ts96(-62135596800)) == dt.datetime(1, 1, 1, tzinfo=UTC)
    assert gobridge.decode(ts96(253402300799, 999999999)) == dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_timestamp_error_names_the_bad_one_inside_containers():
    payload = msgpack.packb({"ok": msgpack.Timestamp(0, 0), "bad": [1, msgpack.Timestamp(253402300800 + 5, 7)]})
    with pytest.raises(DecodeError, match="253402300805 s and 7 ns"):
        gobridge.decode(payload)


def test_connection_survives_a_timestamp_it_cannot_hold():
    a, b = gobridge.Pipe()
    with a, b:
        a.send_bytes(ts96(253402300800))
        a.send("next")
        with pytest.raises(DecodeError, match="timestamp out of range"):
            b.recv()
        assert b.recv() == "next"


# --- the container budget -----------------------------------------------------

def test_budget_constants_match_go():
    assert (_MAP_WEIGHT, _MIN_BUDGET, _UNCOUNTED) == (3, 196608, 65536)


@pytest.mark.parametrize("payload, ok", [
    (array_of(_MIN_BUDGET - 1, b"\x90"), True),
    (array_of(_MIN_BUDGET, b"\x90"), False),
    (array_of((_MIN_BUDGET - 1) // 3, b"\x80"), True),
    (array_of((_MIN_BUDGET - 1) // 3 + 1, b"\x80"), False),
    (array_of(400000, b"\x92\x01\x02"), True),        # [1, 2] pairs: always fit
    (array_of(1000000, b"\xa1a"), True),              # 1-char strings: no containers
    (array_of(300000, b"\x91\x00"), False),           # [0]: 2 bytes per array
    (array_of(100000, b"\x82\xa1x\x01\xa1y\x02"), False),          # 7-byte maps
    (array_of(100000, b"\x82\xa1x\x01\xa1y\xcd\x03\xe8"), True),   # 9-byte maps
], ids=["arrays at", "arrays over", "maps at", "maps over", "pairs", "strings", "[0]s", "7-byte maps",
        "9-byte maps"])
def test_container_budget(payload, ok):
    if ok:
        gobridge.decode(payload)
        return
    with pytest.raises(DecodeError, match="too many arrays and maps") as e:
        gobridge.decode(payload)
    assert "max(196608, bytes/3)" in str(e.value)


def test_small_payloads_are_not_counted():
    # a 64 KiB payload of empty maps would be 3 x 65531 weight: under the minimum
    gobridge.decode(array_of(_UNCOUNTED - 5, b"\x80"))


def _peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def flat(units, unit, per):
    """An array of units copies of unit, which holds per elements."""
    return b"\xdd" + (units * per).to_bytes(4, "big") + unit * units


def test_decode_memory_is_bounded():
    n = 1 << 19  # over 64 KiB: counted
    # The worst payloads the budget allows cost about what dense data does
    # (a list of [int, int] pairs, 3 bytes each, costs Python ~28 bytes a byte).
    for payload in (flat(n // 3, b"\x90\x00\x00", 3), flat(n // 9, b"\x81\x00\x00" + b"\x00" * 6, 7),
                    array_of(n // 3, b"\x92\x00\x00")):
        peak = _peak(lambda: gobridge.decode(payload))
        assert peak < 40 * len(payload), (payload[5:14].hex(), peak / len(payload))
    # Nothing but empty containers (72 bytes a byte, unbounded before) is
    # refused once the budget is spent.
    for unit in (b"\x90", b"\x80"):
        payload = array_of(n, unit)
        peak = _peak(lambda: pytest.raises(DecodeError, gobridge.decode, payload))
        assert peak < 30 * len(payload), (unit, peak / len(payload))


def test_connection_survives_a_payload_over_the_budget():
    a, b = gobridge.Pipe()
    with a, b:
        a.send_bytes(array_of(_MIN_BUDGET, b"\x90"))
        a.send("next")
        with pytest.raises(DecodeError, match="too many arrays and maps"):
            b.recv()
        assert b.recv() == "next"


# --- pickles sent by mistake ----------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_is_recognized(protocol):
    with pytest.raises(DecodeError, match=f"looks like a pickle \\(protocol {protocol}\\)"):
        gobridge.decode(pickle.dumps({"a": 1}, protocol=protocol))


def test_other_trailing_bytes_do_not_mention_pickle():
    with pytest.raises(DecodeError) as e:
        gobridge.decode(b"\x80\x01")
    assert "pickle" not in str(e.value)


# --- the encoder refuses what no decoder accepts --------------------------------

Point = collections.namedtuple("Point", "x y")


class Key:
    """A hashable object that a default hook turns into something else."""

    def __init__(self, as_):
        self.as_ = as_

    def __hash__(self):
        return id(self)


@pytest.mark.parametrize("value, key_type", [
    ({(1, 2): "x"}, "tuple"),
    ([1, {"a": {(3,): 4}}], "tuple"),
    ({Point(1, 2): "x"}, "Point"),
    (collections.OrderedDict([((1,), 2)]), "tuple"),
    (((1, 2), {((), 1): 2}), "tuple"),
    ([{i: i for i in range(2000)}, {(1,): 2}], "tuple"),  # a large value: the breadth-first walk
])
def test_encode_refuses_keys_that_encode_as_arrays(value, key_type):
    with pytest.raises(EncodeError, match=f"a {key_type} key .* encodes as an array") as e:
        gobridge.encode(value)
    assert isinstance(e.value, TypeError) and "no decoder accepts" in str(e.value)


def test_encode_refuses_keys_a_default_turns_into_containers():
    with pytest.raises(EncodeError, match="a Key key .* encodes as an array"):
        gobridge.encode({Key([1]): 1}, default=lambda o: o.as_)
    with pytest.raises(EncodeError, match="a Key key .* encodes as a map"):
        gobridge.encode([{Key({}): 1}], default=lambda o: o.as_)
    with pytest.raises(EncodeError, match="a tuple key"):  # a dict a default returned
        gobridge.encode(Key({(1,): 2}), default=lambda o: o.as_)
    assert gobridge.decode(gobridge.encode({Key("k"): 1}, default=lambda o: o.as_)) == {"k": 1}


def test_encode_accepts_what_decoders_accept():
    for value in [{b"bin": 1}, {1: 2, None: 3, 2.5: 4, True: 5, "s": 6, dt.datetime(2020, 1, 1, tzinfo=UTC): 7},
                  [(1, 2), (3, (4, 5))], ("job", 1, {"x": (1.5,)}), {"a": (1, 2)}]:
        assert gobridge.encode(value) == msgpack.packb(value, use_bin_type=True, datetime=True)


def test_encoder_usable_after_refusing_a_key():
    with pytest.raises(EncodeError):
        gobridge.encode({(1,): 2})
    assert gobridge.encode([(1, 2)]) == b"\x91\x92\x01\x02"
