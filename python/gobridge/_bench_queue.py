"""Python side of ``gobridge bench queue`` (not a public API).

Run as ``python -m gobridge._bench_queue ROLE ARGS...``. Measuring roles print
one JSON object on the last line of standard output.

Throughput is timed by the consumer, from its first message to its last
((N-1) / elapsed). Latency is put -> get: the producer puts its
CLOCK_MONOTONIC time (nanoseconds) with each message, one every PACE_US
microseconds so the consumer is asleep in get when it arrives; the consumer
subtracts it from its own clock on return from get. The first tenth of the
samples is dropped as warm-up.

  mp-tput N SIZE        multiprocessing.Queue, forked producer -> parent  -> {"msgs_per_s": x}
  mp-lat N PACE_US      multiprocessing.Queue put->get                    -> {"samples_us": [...]}
  gb-tput N SIZE        gobridge.Queue, the same, Python -> Python        -> {"msgs_per_s": x}
  gb-lat N PACE_US      gobridge.Queue put->get, Python -> Python         -> {"samples_us": [...]}
  put NAME N SIZE       put N messages on named queue NAME (a Go consumer measures)
  get NAME N            take N messages from NAME                         -> {"msgs_per_s": x}
  lat-put NAME N PACE_US  put N timestamped messages, paced
  lat-get NAME N        take N timestamped messages                       -> {"samples_us": [...]}
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from typing import Any, List

import gobridge

_clock = time.monotonic_ns


def _payload(size: int) -> bytes:
    return b"x" * max(size - 2, 0)  # a bin 8 payload of SIZE bytes


def _put(q: Any, n: int, size: int) -> None:
    p = _payload(size)
    for _ in range(n):
        q.put(p)


def _get(q: Any, n: int) -> float:
    q.get()
    t = time.perf_counter()
    for _ in range(n - 1):
        q.get()
    return (n - 1) / (time.perf_counter() - t)


def _lat_put(q: Any, n: int, pace_us: int) -> None:
    pad = b"x" * 48
    for _ in range(n):
        q.put([_clock(), pad])
        time.sleep(pace_us / 1e6)


def _lat_get(q: Any, n: int) -> List[float]:
    out = []
    for _ in range(n):
        ts = q.get()[0]
        out.append((_clock() - ts) / 1e3)
    return out[n // 10:]


def _forked(q: Any, fn: Any, *args: Any) -> Any:
    return multiprocessing.get_context("fork").Process(target=fn, args=(q, *args))


def main(argv: List[str]) -> int:
    role, a = argv[0], argv[1:]
    if role in ("mp-tput", "gb-tput", "mp-lat", "gb-lat"):
        n = int(a[0])
        if role.startswith("mp"):
            q: Any = multiprocessing.get_context("fork").Queue()
        else:
            q = gobridge.Queue(name=f"gobridge-benchq-{os.getpid()}")
        if role.endswith("tput"):
            child = _forked(q, _put, n, int(a[1]))
            child.start()
            out: Any = {"msgs_per_s": _get(q, n)}
        else:
            child = _forked(q, _lat_put, n, int(a[1]))
            child.start()
            out = {"samples_us": _lat_get(q, n)}
        child.join()
        q.close()
        print(json.dumps(out))
    elif role == "put":
        with gobridge.Queue(name=a[0]) as gq:
            _put(gq, int(a[1]), int(a[2]))
    elif role == "get":
        with gobridge.Queue(name=a[0]) as gq:
            print(json.dumps({"msgs_per_s": _get(gq, int(a[1]))}))
    elif role == "lat-put":
        with gobridge.Queue(name=a[0]) as gq:
            _lat_put(gq, int(a[1]), int(a[2]))
    elif role == "lat-get":
        with gobridge.Queue(name=a[0]) as gq:
            print(json.dumps({"samples_us": _lat_get(gq, int(a[1]))}))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
