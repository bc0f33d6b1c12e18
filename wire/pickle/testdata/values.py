"""The Python values of the pickle vectors, by name (wire/pickle tests).

Run as a script: prints {"version": ..., "vectors": {name: [hex of the pickle
at protocol 0, 1, ..., 5]}} as JSON for the interpreter that runs it.
Imported (or exec'd) by the tests that check Go's encodings: VALUES.
"""
import json
import pickle
import sys

_shared = [1, 2]

VALUES = {
    "none": None,
    "true": True,
    "false": False,
    "int_0": 0,
    "int_255": 255,
    "int_256": 256,
    "int_65536": 65536,
    "int_neg1": -1,
    "int32_max": 2**31 - 1,
    "int32_min": -(2**31),
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "uint64_max": 2**64 - 1,
    "big": 2**100,
    "big_neg": -(2**100) - 7,
    "float": 1.5,
    "float_neg_zero": -0.0,
    "float_inf": float("inf"),
    "float_nan": float("nan"),
    "str_empty": "",
    "str": "hello",
    "str_unicode": "h\u00e9llo \u2603 \U0001f600",
    "str_specials": "a\\b\nc\r\x00\x1a\"'",
    "str_300": "x" * 300,
    "bytes_empty": b"",
    "bytes": b"\x00\xffab",
    "bytes_512": bytes(range(256)) * 2,
    "bytearray_empty": bytearray(),
    "bytearray": bytearray(b"\x00\xffab"),
    "list_empty": [],
    "list": [1, "a", None],
    "list_1001": list(range(1001)),
    "tuple_empty": (),
    "tuple1": (1,),
    "tuple2": (1, "b"),
    "tuple3": (1, 2, 3),
    "tuple4": (1, 2, 3, 4),
    "dict_empty": {},
    "dict_str": {"a": 1, "b": [2]},
    "dict_int": {1: "one", 2: "two"},
    "dict_mixed": {None: 1, 1.5: 2, "x": 3, 7: 4},
    "dict_1001": {i: i for i in range(1001)},
    "set_empty": set(),
    "set": {1, 2, 3},
    "frozenset_empty": frozenset(),
    "frozenset": frozenset({"a", "b"}),
    "nested": {"k": [(1, 2), {"x": {3}}]},
    "shared": [_shared, _shared],
}

if __name__ == "__main__":
    out = {
        name: [pickle.dumps(v, protocol=p).hex() for p in range(6)]
        for name, v in VALUES.items()
    }
    json.dump({"version": sys.version.split()[0], "vectors": out}, sys.stdout, indent=0, sort_keys=True)
