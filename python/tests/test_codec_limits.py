"""The decoder's container budget (SPEC 3.2)."""
import tracemalloc

import pytest

import gobridge
from gobridge import DecodeError
from gobridge._codec import _MAP_WEIGHT, _MIN_BUDGET, _UNCOUNTED


def array_of(n, unit):
    return b"\xdd" + n.to_bytes(4, "big") + unit * n


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
