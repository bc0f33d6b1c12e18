"""The shared vectors (wire/SPEC.md section 8) through gobridge's Python codec.

Each valid vector decodes to its value with its Python type and, when
canonical, encodes back to the same bytes; each invalid one raises
DecodeError. The Go table test (wire/vectors_test.go) reads the same file.
"""
import importlib.util
import math
import os

import pytest

import gobridge

# The vector loader lives in this directory's conftest.py; load it by path, as
# "conftest" may name another directory's conftest when suites run together.
_spec = importlib.util.spec_from_file_location(
    "interop_conftest", os.path.join(os.path.dirname(os.path.abspath(__file__)), "conftest.py"))
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)
VECTORS, vector_payload, vector_value = _conftest.VECTORS, _conftest.vector_payload, _conftest.vector_value
VALID, PY_INVALID = _conftest.VALID, _conftest.PY_INVALID

import gbjson  # noqa: E402  (on sys.path through conftest)

ERROR_CLASSES = {"malformed", "too_deep", "too_many_containers", "invalid_utf8", "unknown_extension",
                 "unsupported_key"}
PY_ERROR_CLASSES = {"timestamp_range"}
PY_TYPES = {"int", "float", "str", "bytes", "bool", "NoneType", "list", "dict", "datetime"}


def test_enough_vectors():
    assert len(VECTORS) >= 40
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("v", VALID, ids=lambda v: v["name"])
def test_valid_vector(v):
    payload = vector_payload(v)
    want = vector_value(v)
    got = gobridge.decode(payload)
    assert gbjson.same(got, want), (got, want) if not v.get("gen") else v["name"]
    assert v["py"] in PY_TYPES
    assert type(got).__name__ == v["py"]
    if isinstance(got, float) and math.isnan(want):
        assert math.isnan(got)
    if v["canonical"]:
        assert gobridge.encode(want) == payload


@pytest.mark.parametrize("v", PY_INVALID, ids=lambda v: v["name"])
def test_invalid_vector(v):
    if v.get("error"):
        assert v["error"] in ERROR_CLASSES and "py_error" not in v
        assert "value" not in v and "unit_value" not in v
    else:
        assert v["py_error"] in PY_ERROR_CLASSES and "value" in v  # the value Go decodes
    with pytest.raises(gobridge.DecodeError) as e:
        gobridge.decode(vector_payload(v))
    message = str(e.value)
    if v.get("py_error") == "timestamp_range":
        assert "timestamp out of range" in message and "years 1 to 9999" in message
    if v.get("error") == "too_many_containers":
        assert "too many arrays and maps" in message
    if v["name"].startswith("pickle"):
        assert "looks like a pickle (protocol 4)" in message


def test_datetime_type_name():
    # the "py" field says "datetime"; make sure it is the datetime class, tz-aware, UTC
    for v in VECTORS:
        if v.get("py") == "datetime":
            got = gobridge.decode(vector_payload(v))
            assert type(got).__module__ == "datetime" and got.utcoffset().total_seconds() == 0


def _mutants(rng, seeds, count):
    """count payloads made from the seed payloads by a few random edits each."""
    for _ in range(count):
        p = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(6)
            i = rng.randrange(len(p) + 1)
            if op == 0 and p:  # flip a byte
                p[min(i, len(p) - 1)] = rng.randrange(256)
            elif op == 1:  # insert bytes
                p[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif op == 2 and p:  # delete some
                del p[i:i + rng.randint(1, 8)]
            elif op == 3:  # splice in another seed
                p[i:i] = rng.choice(seeds)
            elif op == 4:  # a timestamp 96 with random seconds, where datetime's range ends
                secs = rng.choice([rng.getrandbits(64) - 2**63, 253402300800 + rng.randrange(10**6),
                                   -62135596801 - rng.randrange(10**6), rng.getrandbits(40)])
                p[i:i] = b"\xc7\x0c\xff" + rng.randrange(10**9).to_bytes(4, "big") + secs.to_bytes(8, "big", signed=True)
            else:  # an ext or container header
                p[i:i] = bytes([rng.choice([0xc7, 0xd4, 0xd6, 0xd7, 0xd8, 0xdc, 0xdd, 0xde, 0xdf, 0x81, 0x91])])
        yield bytes(p)


def test_decoder_raises_only_decode_error():
    """A seeded randomized test over mutated vectors (and Python-only-invalid
    ones): every payload decodes or raises DecodeError, never anything else
    (OverflowError for a timestamp out of datetime's range once escaped)."""
    import random

    rng = random.Random(20261202)
    seeds = [p for p in map(vector_payload, VECTORS) if len(p) < 4096]
    kinds = {}
    for p in _mutants(rng, seeds, 150000):
        try:
            gobridge.decode(p)
        except gobridge.DecodeError as e:
            kinds[str(e).split(":")[1].strip()] = kinds.get(str(e).split(":")[1].strip(), 0) + 1
        except Exception as e:  # pragma: no cover - the failure being tested for
            pytest.fail(f"decode({p.hex()}) raised {type(e).__name__}: {e}")
    assert kinds.get("timestamp out of range", 0) > 100, kinds
