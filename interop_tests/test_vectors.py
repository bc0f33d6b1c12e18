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
VALID = _conftest.VALID

import gbjson  # noqa: E402  (on sys.path through conftest)

ERROR_CLASSES = {"malformed", "too_deep", "too_many_containers", "invalid_utf8", "unknown_extension",
                 "unsupported_key"}
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


@pytest.mark.parametrize("v", [v for v in VECTORS if v.get("error")], ids=lambda v: v["name"])
def test_invalid_vector(v):
    assert v["error"] in ERROR_CLASSES
    assert "value" not in v and "unit_value" not in v
    with pytest.raises(gobridge.DecodeError) as e:
        gobridge.decode(vector_payload(v))
    if v["error"] == "too_many_containers":
        assert "too many arrays and maps" in str(e.value)


def test_datetime_type_name():
    # the "py" field says "datetime"; make sure it is the datetime class, tz-aware, UTC
    for v in VECTORS:
        if v.get("py") == "datetime":
            got = gobridge.decode(vector_payload(v))
            assert type(got).__module__ == "datetime" and got.utcoffset().total_seconds() == 0
