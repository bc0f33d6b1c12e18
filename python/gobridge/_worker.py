"""Pool worker: ``python -m gobridge._worker``, started by Go's bridge/pool.

Reads requests from the connection its parent handed down (SPEC 6.3) and
runs ``module:function`` on each call's arguments (wire/SPEC.md section 12):

    request  {"id": int, "fn": "module:function", "calls": [[arg, ...], ...]}
          or {"id": int, "fn": "module:function", "items": [arg, ...]}
    reply    {"id": int, "results": [result, ...]}
          or {"id": int, "error": {"type": str, "message": str,
                                   "traceback": str, "index": int}}

Its first message, before any request, is the hello that tells the pool it
started (an interpreter without gobridge never gets that far)::

    hello    {"hello": "gobridge._worker", "version": str, "pid": int}

It exits with status 0 at end of stream (the pool closed its end).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional

from . import __version__
from ._errors import EncodeError
from ._parent import parent

__all__ = ["main"]


def _resolve(name: str, cache: Dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    fn = cache.get(name)
    if fn is None:
        module, sep, attr = name.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"gobridge pool: {name!r} is not 'module:function'")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"gobridge pool: {name!r} is not callable")
        fn = cache[name] = obj
    return fn


def _error(req_id: Any, exc: BaseException, index: int) -> Dict[str, Any]:
    return {
        "id": req_id,
        "error": {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            "index": index,
        },
    }


def main() -> int:
    conn = parent()
    conn.send({"hello": "gobridge._worker", "version": __version__, "pid": os.getpid()})
    cache: Dict[str, Callable[..., Any]] = {}
    while True:
        try:
            req = conn.recv()
        except EOFError:
            return 0
        req_id = req.get("id") if isinstance(req, dict) else None
        try:
            fn = _resolve(str(req["fn"]), cache)
            items: Optional[List[Any]] = req.get("items")
            calls: List[Any] = req["calls"] if items is None else []
        except Exception as e:  # bad request or unknown function
            conn.send(_error(req_id, e, -1))
            continue
        results: List[Any] = []
        append = results.append
        try:  # one try around the loop: the index of a failure is len(results)
            if items is not None:  # Map's chunks: one argument each
                for arg in items:
                    append(fn(arg))
            else:
                for args in calls:
                    append(fn(*args))
        except Exception as e:
            conn.send(_error(req_id, e, len(results)))
            continue
        try:
            conn.send({"id": req_id, "results": results})
        except EncodeError as e:  # a result msgpack cannot carry; nothing was sent
            conn.send(_error(req_id, e, -1))


if __name__ == "__main__":
    sys.exit(main())
