"""Python side of ``gobridge bench queue`` (not a public API).

Run as ``python -m gobridge_bench_queue ROLE ARGS...``. Measuring roles print
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
  wake-wait PATH N      the floor under put->get: sleep on the futex word of the
                        4 KiB file PATH until woken N times; each sample is the
                        waker's clock, stored before its wake, to ours on return
                        from the futex wait                                -> {"samples_us": [...]}
  wake-wake PATH N PACE_US  the waker: N times, sleep PACE_US, store the clock,
                        bump the word and wake it

Wake file layout (little-endian): u32 sequence at 0 (the futex word), u32
"waiter ready" at 4, i64 CLOCK_MONOTONIC nanoseconds at 8. The Go side
(internal/bench/wake.go) uses the same.
"""
from __future__ import annotations

import json
import mmap
import multiprocessing
import os
import sys
import time
from typing import Any, List

import gobridge
from gobridge._internal import futex as _futex  # the one private import: the futex word
from gobridge._internal.ring import WEAK, fence  # and the store fence

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


def _wake_file(path: str) -> "tuple[Any, Any, Any]":
    """The wake file's 32- and 64-bit views and its futex word."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        m = mmap.mmap(fd, 4096)
    finally:
        os.close(fd)
    return memoryview(m).cast("I"), memoryview(m).cast("q"), _futex.Word(m, 0)


def _wake_wait(path: str, n: int) -> List[float]:
    w32, w64, seq = _wake_file(path)
    out: List[float] = []
    seen = 0
    w32[1] = 1  # ready: the waker starts
    while seen < n:
        while seq.load() == seen:
            if not seq.wait(seen, 5.0) and seq.load() == seen:
                raise TimeoutError("wake-wait: no wake-up in 5 s (the waker died?)")
        now, v = _clock(), seq.load()
        if v == seen + 1:  # one wake-up per store: a missed one is no sample
            out.append((now - w64[1]) / 1e3)
        seen = v
    return out[min(n // 10, len(out)):]


def _wake_wake(path: str, n: int, pace_us: int) -> None:
    w32, w64, seq = _wake_file(path)
    deadline = time.monotonic() + 30
    while not w32[1]:
        if time.monotonic() > deadline:
            raise TimeoutError("wake-wake: the sleeper never got ready")
        time.sleep(0.001)
    for i in range(1, n + 1):
        time.sleep(pace_us / 1e6)
        w64[1] = _clock()
        if WEAK:
            fence()  # arm64: the clock before the sequence
        seq.store(i)
        seq.wake(1)


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
    elif role == "wake-wait":
        print(json.dumps({"samples_us": _wake_wait(a[0], int(a[1]))}))
    elif role == "wake-wake":
        _wake_wake(a[0], int(a[1]), int(a[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
