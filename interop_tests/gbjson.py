"""gobridge JSON (wire/SPEC.md section 7) for the Python tests.

loads() turns the JSON text of a test vector (or of `gobridge recv` output)
into the Python value gobridge gives; same() compares two received values the
way the contract means them (NaN equals NaN, bool is not int, int is not float).
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import math
from typing import Any

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def parse_time(s: str) -> _dt.datetime:
    """RFC 3339 in UTC with up to nine fractional digits, truncated to microseconds."""
    if not s.endswith("Z"):
        raise ValueError("gobridge JSON times are UTC ('Z'): " + s)
    body = s[:-1]
    frac = ""
    if "." in body:
        body, frac = body.split(".", 1)
    t = _dt.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.timezone.utc)
    return t.replace(microsecond=int((frac + "000000")[:6]))


def from_obj(o: Any) -> Any:
    if isinstance(o, list):
        return [from_obj(e) for e in o]
    if isinstance(o, dict):
        if len(o) == 1:
            (k, v), = o.items()
            if k == "$bin":
                return base64.b64decode(v)
            if k == "$time":
                return parse_time(v)
            if k == "$float":
                return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
            if k == "$map":
                return {from_obj(pk): from_obj(pv) for pk, pv in v}
        return {k: from_obj(v) for k, v in o.items()}
    return o


def loads(text: str) -> Any:
    return from_obj(json.loads(text))


def dumps(v: Any) -> str:
    """The inverse of loads, for values a Python peer received."""
    def conv(x: Any) -> Any:
        if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
            return {"$float": "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")}
        if isinstance(x, bytes):
            return {"$bin": base64.b64encode(x).decode()}
        if isinstance(x, _dt.datetime):
            u = x.astimezone(_dt.timezone.utc)  # not strftime: %Y does not pad years before 1000
            return {"$time": f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
                             f"{u.second:02d}.{u.microsecond:06d}Z"}
        if isinstance(x, (list, tuple)):
            return [conv(e) for e in x]
        if isinstance(x, dict):
            if all(isinstance(k, str) for k in x) and not (len(x) == 1 and next(iter(x)).startswith("$")):
                return {k: conv(e) for k, e in x.items()}
            return {"$map": [[conv(k), conv(e)] for k, e in x.items()]}
        return x
    return json.dumps(conv(v), ensure_ascii=False)


def same(a: Any, b: Any) -> bool:
    """Equal as the contract means it, iteratively (vectors nest 1024 deep)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, float):
            if not (x == y and math.copysign(1, x) == math.copysign(1, y) or math.isnan(x) and math.isnan(y)):
                return False
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif isinstance(x, dict):
            if len(x) != len(y) or set(x) != set(y):
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True
