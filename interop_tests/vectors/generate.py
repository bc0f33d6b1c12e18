"""Write vectors.json, the shared test vectors (wire/SPEC.md section 8).

    python interop_tests/vectors/generate.py        # rewrites vectors.json next to it

Canonical vectors take their bytes from msgpack-python (the reference encoder,
run with gobridge's options: use_bin_type=True, datetime=True); each one's
Python value is also turned into gobridge JSON (section 7) here, and checked
to read back as the same value. Non-canonical and invalid payloads are written
by hand as hex. Maps with several keys are listed in the order Go's encoder
writes them (SPEC 3.1: nil, bools, numbers by value, strings bytewise,
timestamps), so both encoders reproduce the bytes.

The output is committed; run this again only when adding vectors.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import sys
from typing import Any, Dict, List, Optional

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import gbjson  # noqa: E402  (interop_tests/gbjson.py: the reader of this file)

UTC = dt.timezone.utc
GO_MAP_STR = "map[string]interface {}"
GO_MAP_ANY = "map[interface {}]interface {}"
GO_ARRAY = "[]interface {}"

vectors: List[Dict[str, Any]] = []


def to_json(v: Any) -> Any:
    """A Python value in gobridge JSON (section 7)."""
    if isinstance(v, float):
        if math.isnan(v):
            return {"$float": "NaN"}
        if math.isinf(v):
            return {"$float": "Infinity" if v > 0 else "-Infinity"}
        return v
    if isinstance(v, bytes):
        return {"$bin": base64.b64encode(v).decode()}
    if isinstance(v, dt.datetime):
        u = v.astimezone(UTC)
        s = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"  # %Y: no zero padding
        if v.microsecond:
            s += ("." + "%06d" % v.microsecond).rstrip("0")
        return {"$time": s + "Z"}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        wrapper = len(v) == 1 and next(iter(v)) in ("$bin", "$time", "$float", "$map")
        if all(isinstance(k, str) for k in v) and not wrapper:
            return {k: to_json(x) for k, x in v.items()}
        return {"$map": [[to_json(k), to_json(x)] for k, x in v.items()]}
    return v


def py_type(v: Any) -> str:
    return "datetime" if isinstance(v, dt.datetime) else type(v).__name__


def go_type(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "uint64" if v > 2**63 - 1 else "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bytes):
        return "[]uint8"
    if isinstance(v, dt.datetime):
        return "time.Time"
    if isinstance(v, (list, tuple)):
        return GO_ARRAY
    if isinstance(v, dict):
        return GO_MAP_STR if all(isinstance(k, str) for k in v) else GO_MAP_ANY
    raise TypeError(type(v))


def add(name: str, value: Any, note: Optional[str] = None, *, hex: Optional[str] = None,
        json_value: Any = None, python_writes_it: bool = False, canonical: Optional[bool] = None) -> None:
    """A valid vector. Without hex, msgpack-python encodes value and it is canonical."""
    packed = msgpack.packb(value, use_bin_type=True, datetime=True).hex()
    if canonical is None:
        canonical = hex is None
    if hex is not None and (hex == packed) != python_writes_it:
        raise SystemExit(f"{name}: hand-written hex vs msgpack-python's {packed}: check python_writes_it")
    jv = to_json(value) if json_value is None else json_value
    decoded = msgpack.unpackb(bytes.fromhex(hex or packed), raw=False, strict_map_key=False, timestamp=3)
    if not gbjson.same(gbjson.from_obj(jv), decoded if not isinstance(value, tuple) else list(value)):
        raise SystemExit(f"{name}: JSON value {jv!r} does not read back as {decoded!r}")
    entry: Dict[str, Any] = {"name": name, "hex": hex or packed, "value": jv, "canonical": canonical,
                             "go": go_type(value), "py": "list" if isinstance(value, tuple) else py_type(value)}
    if note:
        entry["note"] = note
    vectors.append(entry)


def bad(name: str, hex: str, error: str, note: str) -> None:
    try:
        msgpack.unpackb(bytes.fromhex(hex), raw=False, strict_map_key=False, timestamp=3,
                        ext_hook=lambda code, data: (_ for _ in ()).throw(ValueError("ext")))
    except Exception:
        pass
    else:
        raise SystemExit(f"{name}: msgpack-python accepts it")
    vectors.append({"name": name, "hex": hex, "error": error, "note": note})


def gen(entry: Dict[str, Any]) -> None:
    vectors.append(entry)


def array_of(name: str, n: int, unit: Any, note: str, *, error: Optional[str] = None) -> None:
    """A generator entry: an array of n copies of unit (SPEC 8, "array_of").

    Valid ones are canonical: msgpack-python writes exactly these bytes.
    Invalid ones are well-formed msgpack that SPEC 3.2's budget refuses."""
    unit_hex = msgpack.packb(unit, use_bin_type=True).hex()
    payload = bytes.fromhex(msgpack.packb([unit] * n, use_bin_type=True).hex())
    head = payload[:len(payload) - n * len(unit_hex) // 2]
    want = (bytes([0x90 | n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big") if n < 65536
            else b"\xdd" + n.to_bytes(4, "big"))
    if head != want:
        raise SystemExit(f"{name}: unexpected array header {head.hex()}")
    entry: Dict[str, Any] = {"name": name, "gen": "array_of", "n": n, "unit": unit_hex}
    if error:
        msgpack.unpackb(payload, raw=False, strict_map_key=False)  # well-formed: only the budget refuses it
        entry["error"] = error
    else:
        entry.update(unit_value=to_json(unit), canonical=True, go=GO_ARRAY, py="list")
    entry["note"] = note
    vectors.append(entry)


def py_bad(name: str, hex: str, go_value: Any, py_error: str, note: str) -> None:
    """A payload Go decodes (to go_value, in gobridge JSON) and Python cannot
    (SPEC 8, "py_error"): Go's encoder writes these bytes back (canonical)."""
    try:
        msgpack.unpackb(bytes.fromhex(hex), raw=False, strict_map_key=False, timestamp=3)
    except (OverflowError, ValueError):
        pass
    else:
        raise SystemExit(f"{name}: msgpack-python decodes it")
    msgpack.unpackb(bytes.fromhex(hex), raw=False, strict_map_key=False, timestamp=0)  # well-formed
    vectors.append({"name": name, "hex": hex, "value": go_value, "canonical": True, "go": go_type_of(go_value),
                    "py_error": py_error, "note": note})


def go_type_of(json_value: Any) -> str:
    if isinstance(json_value, dict) and "$time" in json_value:
        return "time.Time"
    if isinstance(json_value, list):
        return GO_ARRAY
    raise TypeError(json_value)


def ts96(seconds: int, nanos: int = 0) -> str:
    return "c70cff" + nanos.to_bytes(4, "big").hex() + seconds.to_bytes(8, "big", signed=True).hex()


# --- nil, bool ---------------------------------------------------------------
add("nil", None)
add("false", False)
add("true", True)

# --- integers: every width boundary, smallest form -----------------------------
for n, note in [
    (0, "positive fixint"), (1, None), (127, "largest positive fixint"), (128, "smallest uint8"),
    (255, "largest uint8"), (256, "smallest uint16"), (65535, "largest uint16"), (65536, "smallest uint32"),
    (2**32 - 1, "largest uint32"), (2**32, "smallest uint64"), (2**63 - 1, "largest int64, Go int64"),
    (2**63, "smallest value only uint64 holds: Go decodes uint64"), (2**64 - 1, "largest uint64"),
    (-1, "negative fixint"), (-32, "smallest negative fixint"), (-33, "int8"), (-128, "smallest int8"),
    (-129, "int16"), (-32768, "smallest int16"), (-32769, "int32"), (-2**31, "smallest int32"),
    (-2**31 - 1, "int64"), (-2**63, "smallest int64"),
]:
    add(f"int {n}", n, note)
add("int 1 as int64", 1, "non-canonical: d3 form of 1; encoders write 01", hex="d30000000000000001")
add("int 5 as uint8", 5, "non-canonical: cc form of 5", hex="cc05")
add("int 255 as uint16", 255, "non-canonical: cd form of 255", hex="cd00ff")
add("int -1 as int8", -1, "non-canonical: d0 form of -1", hex="d0ff")
add("int 7 as uint64", 7, "non-canonical: cf form; still int64 in Go", hex="cf0000000000000007")
add("int 100 as int32", 100, "non-canonical: a positive value in a signed form", hex="d200000064")

# --- floats -------------------------------------------------------------------
add("float 0.0", 0.0)
add("float -0.0", -0.0, "sign of zero kept")
add("float 1.5", 1.5)
add("float -2.25", -2.25)
add("float 1e300", 1e300)
add("float smallest subnormal", 5e-324)
add("float NaN", math.nan, "compare with isnan; not canonical: the NaN payload is the encoder's "
    "(Python writes 7ff8000000000000, Go's math.NaN() is 7ff8000000000001), and both pass any payload "
    "unchanged", canonical=False)
add("float +Inf", math.inf)
add("float -Inf", -math.inf)
add("float32 1.5", 1.5, "non-canonical: float 32 (Go float32) widens exactly; Python never sends float 32",
    hex="ca3fc00000")
add("float32 0.1", float.fromhex("0x1.99999ap-4"), "non-canonical: float32(0.1) widened exactly",
    hex="ca3dcccccd")

# --- str ----------------------------------------------------------------------
add("str empty", "")
add("str ascii", "hello")
add("str 2-byte utf8", "é")
add("str 3-byte utf8", "€")
add("str 4-byte utf8", "😀", "outside the BMP")
add("str mixed utf8", "a€😀é")
add("str 31 bytes", "x" * 31, "largest fixstr")
add("str 32 bytes", "x" * 32, "smallest str 8")
add("str 255 bytes", "y" * 255, "largest str 8")
add("str 256 bytes", "z" * 256, "smallest str 16")
add("str 65536 bytes", "w" * 65536, "smallest str 32")
add("str 8 bytes as str8", "abcdefgh", "non-canonical: str 8 form of a fixstr", hex="d908" + b"abcdefgh".hex())

# --- bin ----------------------------------------------------------------------
add("bin empty", b"")
add("bin small", b"\x00\x01\xfe\xff")
add("bin 256 bytes", bytes(range(256)), "bin 16")
gen({"name": "bin 1 MiB", "gen": "bin", "n": 1048576, "byte": 171, "canonical": True,
     "go": "[]uint8", "py": "bytes", "note": "bin 32 header, 1048576 bytes of 0xab"})

# --- arrays -------------------------------------------------------------------
add("array empty", [])
add("array mixed", [1, "a", None, True, 1.5, b"\x01"])
add("array nested", [[], [[]], [1, [2, [3]]]])
add("array from tuple", (1, 2), "a Python tuple (1, 2) is sent as this array and arrives as a list")
add("array 15", list(range(15)), "largest fixarray")
add("array 16", list(range(16)), "smallest array 16")
add("array 1 as array16", [1], "non-canonical: array 16 form", hex="dc000101")
gen({"name": "deep array 1024", "gen": "deep_array", "n": 1024, "canonical": True, "go": GO_ARRAY, "py": "list",
     "note": "1024 nested arrays around nil: the deepest allowed (SPEC 3.2)"})

# --- maps ---------------------------------------------------------------------
add("map empty", {})
add("map str keys", {"a": 1, "b": [True], "c": {"d": None}}, "keys sorted bytewise, as Go writes them")
add("map str keys utf8 order", {"Z": 1, "a": 2, "é": 3}, "bytewise order: 'Z' < 'a' < 'é'")
add("map int keys", {1: "one", 2: "two", 300: "three hundred"}, "int keys round-trip (strict_map_key=False)")
add("map negative int keys", {-129: "a", -1: "b", 0: "c", 7: "d"})
add("map mixed keys", {None: 0, True: 1, -5: 2, 2.5: 3, "s": 4,
                       dt.datetime(2020, 1, 1, tzinfo=UTC): 5},
    "Go's key order: nil, bools, numbers by value, strings, timestamps")
add("map 16 entries", {"k%02d" % i: i for i in range(16)}, "smallest map 16")
add("map wrapper-named key", {"$bin": 1}, "a real map whose only key is a wrapper name uses the $map form")
add("map str keys unsorted", {"b": 1, "a": 2},
    "non-canonical: Go writes a before b (Python keeps insertion order and writes these bytes)", hex="82a16201a16102",
    python_writes_it=True)

# --- timestamps (extension -1) ------------------------------------------------
add("timestamp32 epoch", dt.datetime(1970, 1, 1, tzinfo=UTC), "timestamp 32")
add("timestamp32 2020", dt.datetime(2020, 1, 1, tzinfo=UTC), "timestamp 32")
add("timestamp32 max", dt.datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC), "largest timestamp 32: 2^32-1 s")
add("timestamp64 micros", dt.datetime(2020, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), "timestamp 64")
add("timestamp64 2^32 s", dt.datetime(2106, 2, 7, 6, 28, 16, tzinfo=UTC), "seconds past 32 bits: timestamp 64")
add("timestamp96 pre-1970", dt.datetime(1960, 1, 1, tzinfo=UTC), "negative seconds: timestamp 96")
add("timestamp96 just before epoch", dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    "seconds -1, 999999000 ns: timestamp 96")
add("timestamp96 year 2600", dt.datetime(2600, 1, 1, tzinfo=UTC), "seconds past 34 bits: timestamp 96")
add("timestamp64 nanoseconds", dt.datetime(2020, 1, 1, tzinfo=UTC),
    "non-canonical for Python: 1 ns, which Go keeps and Python truncates to microseconds",
    hex="d7ff" + ((1 << 34) | 1577836800).to_bytes(8, "big").hex(), json_value={"$time": "2020-01-01T00:00:00.000000001Z"})

# --- timestamps outside Python's datetime (SPEC 3.1) -----------------------------
add("timestamp96 first datetime", dt.datetime(1, 1, 1, tzinfo=UTC),
    "0001-01-01T00:00:00Z, -62135596800 s: the earliest instant a Python datetime holds")
add("timestamp96 last datetime", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    "9999-12-31T23:59:59.999999Z: the latest instant a Python datetime holds")
py_bad("timestamp96 year 10000", ts96(253402300800), {"$time": "10000-01-01T00:00:00Z"}, "timestamp_range",
       "one second after Python's last datetime: Go decodes it, Python raises DecodeError")
py_bad("timestamp96 year 0", ts96(-62135596801, 999999999), {"$time": "0000-12-31T23:59:59.999999999Z"},
       "timestamp_range", "just before 0001-01-01: Go decodes it, Python raises DecodeError")
py_bad("timestamp96 year -5000", ts96(-219951936000), {"$time": "-5000-01-01T00:00:00Z"}, "timestamp_range",
       "a negative year, as Go's time.Format writes it")
py_bad("timestamp96 2^40 s", ts96(1 << 40), {"$time": "36812-02-20T00:36:16Z"}, "timestamp_range",
       "a five-digit year")
py_bad("timestamp in an array", "92" + "01" + ts96(253402300800), [1, {"$time": "10000-01-01T00:00:00Z"}],
       "timestamp_range", "the whole payload is refused, as for any invalid part")

# --- the container budget (SPEC 3.2) ---------------------------------------------
array_of("budget: 196607 empty arrays", 196607, [],
         "arrays + 3 x maps = 196608 = max(196608, n/3): the most a payload of this size may hold")
array_of("budget: 65535 empty maps", 65535, {},
         "1 + 3 x 65535 = 196606 containers' worth in 65540 bytes: within the minimum budget")
array_of("budget: 200000 [1, 2] pairs", 200000, [1, 2],
         "600005 bytes, 200001 arrays = n/3: a list of small-int pairs (3 bytes each) always fits")
array_of("budget: 196608 empty arrays", 196608, [],
         "196609 arrays: one more than the minimum budget", error="too_many_containers")
array_of("budget: 65536 empty maps", 65536, {},
         "1 + 3 x 65536 = 196609: a map counts 3", error="too_many_containers")
array_of("budget: 300000 [0] arrays", 300000, [0],
         "600005 bytes (2 per array), 300001 arrays > n/3 = 200001", error="too_many_containers")

# --- invalid ------------------------------------------------------------------
gen({"name": "deep array 1025", "gen": "deep_array", "n": 1025, "error": "too_deep",
     "note": "one container more than SPEC 3.2 allows"})
bad("deep map 1025", "81c0" * 1025 + "c0", "too_deep", "1025 maps nested as values")
bad("invalid utf8 byte", "a1ff", "invalid_utf8", "0xff never occurs in UTF-8")
bad("invalid utf8 surrogate", "a3eda080", "invalid_utf8", "an encoded surrogate (U+D800)")
bad("invalid utf8 overlong", "a2c080", "invalid_utf8", "overlong encoding of NUL")
bad("invalid utf8 map key", "81a2c3280a", "invalid_utf8", "a truncated 2-byte sequence in a key")
bad("unknown extension 5", "d40501", "unknown_extension", "fixext 1, type 5")
bad("unknown extension 0 ext8", "c7020011ff", "unknown_extension", "ext 8, type 0")
bad("unknown extension -2", "d6fe00000000", "unknown_extension", "negative types other than -1 are reserved")
bad("empty payload", "", "malformed", "no object at all")
bad("truncated array", "9201", "malformed", "array of 2 with one element")
bad("truncated str", "a36162", "malformed", "str of 3 with 2 bytes")
bad("truncated uint32", "ce0001", "malformed", "uint 32 cut short")
bad("reserved byte c1", "c1", "malformed", "0xc1 is never used")
bad("trailing bytes", "c0c0", "malformed", "two objects in one payload")
bad("pickle protocol 4", "8004950a000000000000007d948c0161944b01732e", "malformed",
    "pickle.dumps({'a': 1}): decoders say it looks like a pickle (msgpack reads {} and trailing bytes)")
bad("array header claims 2^32-1", "ddffffffffc0", "malformed",
    "more elements than bytes remain: rejected before allocating")
bad("timestamp length 3", "c703ff000000", "malformed", "timestamp extension of length 3")
bad("timestamp64 nanoseconds 1e9", "d7ff" + ((10**9) << 34).to_bytes(8, "big").hex(), "malformed",
    "nanoseconds must be below 10^9")
bad("timestamp96 nanoseconds 1e9", "c70cff" + (10**9).to_bytes(4, "big").hex() + "00" * 8, "malformed",
    "nanoseconds must be below 10^9")
bad("array key", "81910100", "unsupported_key", "an array used as a map key")
bad("map key", "81800100", "unsupported_key", "a map used as a map key")

names = [v["name"] for v in vectors]
if len(names) != len(set(names)):
    raise SystemExit("duplicate vector names")

with open(os.path.join(HERE, "vectors.json"), "w") as f:
    f.write("[\n")
    f.write(",\n".join(json.dumps(v, ensure_ascii=False) for v in vectors))
    f.write("\n]\n")
print(f"wrote {len(vectors)} vectors ({sum('error' in v for v in vectors)} invalid)")
