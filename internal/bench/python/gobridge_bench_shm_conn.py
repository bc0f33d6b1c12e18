"""Python roles of ``gobridge bench transports`` (not a public API).

Run as ``python -m gobridge_bench_shm_conn ROLE ARGS...``; each role prints
one JSON object on its last line of standard output. Go<->Python peers are
the roles of :mod:`gobridge_bench` (echo, sink, source), which work on any
address.

  pp-rtt ADDR N          Python<->Python round trips over ADDR (a listener
                         here, a forked client echoing)       -> {"samples_us": [...]}
  pp-tput ADDR N SIZE    Python->Python one-way messages/s over ADDR -> {"msgs_per_s": x}
  sink-into ADDR N SIZE  connect, receive N messages into one preallocated buffer
                         (recv_bytes_into: no allocation per message), reply "done"
  source-bytes ADDR N SIZE  connect, send_bytes N times from one buffer, wait for a reply
  mpq-rtt N              multiprocessing.Queue round trips (a queue each way)
  mpq-tput N SIZE        multiprocessing.Queue one-way messages/s
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from typing import Any, List

import gobridge

from gobridge_bench import _echo, _payload, _sink


def _client(addr: Any, role: str, n: int) -> None:
    with gobridge.Client(addr, timeout=30) as c:
        if role == "echo":
            _echo(c)
        else:
            _sink(c, n)


def _pp(addr: str, role: str, n: int, size: int) -> Any:
    ctx = multiprocessing.get_context("fork")
    with gobridge.Listener(addr) as listener:
        child = ctx.Process(target=_client, args=(listener.address, role, n))  # tcp: the port picked
        child.start()
        with listener.accept() as c:
            p = _payload(size)
            clock = time.perf_counter_ns
            if role == "echo":
                samples: List[float] = []
                for i in range(n + n // 10):
                    t = clock()
                    c.send(p)
                    c.recv()
                    if i >= n // 10:
                        samples.append((clock() - t) / 1e3)
                result: Any = {"samples_us": samples}
            else:
                t0 = time.perf_counter()
                for _ in range(n):
                    c.send(p)
                c.recv()
                result = {"msgs_per_s": n / (time.perf_counter() - t0)}
        child.join()
    return result


def _q_echo(q_in: Any, q_out: Any) -> None:
    while True:
        m = q_in.get()
        if m is None:
            return
        q_out.put(m)


def _q_sink(q_in: Any, q_out: Any, n: int) -> None:
    for _ in range(n):
        q_in.get()
    q_out.put("done")


def _mpq(role: str, n: int, size: int) -> Any:
    ctx = multiprocessing.get_context("fork")
    q_in, q_out = ctx.Queue(), ctx.Queue()
    p = _payload(size)
    clock = time.perf_counter_ns
    if role == "echo":
        child = ctx.Process(target=_q_echo, args=(q_in, q_out))
        child.start()
        samples: List[float] = []
        for i in range(n + n // 10):
            t = clock()
            q_in.put(p)
            q_out.get()
            if i >= n // 10:
                samples.append((clock() - t) / 1e3)
        q_in.put(None)
        result: Any = {"samples_us": samples}
    else:
        child = ctx.Process(target=_q_sink, args=(q_in, q_out, n))
        child.start()
        t0 = time.perf_counter()
        for _ in range(n):
            q_in.put(p)
        q_out.get()
        result = {"msgs_per_s": n / (time.perf_counter() - t0)}
    child.join()
    return result


def _sink_into(addr: str, n: int, size: int) -> None:
    buf = bytearray(size + 16)
    with gobridge.Client(addr, timeout=30) as c:
        for _ in range(n):
            c.recv_bytes_into(buf)
        c.send("done")


def _source_bytes(addr: str, n: int, size: int) -> None:
    buf = bytes(size)
    with gobridge.Client(addr, timeout=30) as c:
        for _ in range(n):
            c.send_bytes(buf)
        c.recv()


def main(argv: List[str]) -> int:
    role, args = argv[0], argv[1:]
    if role == "sink-into":
        _sink_into(args[0], int(args[1]), int(args[2]))
        return 0
    if role == "source-bytes":
        _source_bytes(args[0], int(args[1]), int(args[2]))
        return 0
    if role == "pp-rtt":
        out = _pp(args[0], "echo", int(args[1]), 64)
    elif role == "pp-tput":
        out = _pp(args[0], "sink", int(args[1]), int(args[2]))
    elif role == "mpq-rtt":
        out = _mpq("echo", int(args[0]), 64)
    elif role == "mpq-tput":
        out = _mpq("sink", int(args[0]), int(args[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.flush()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
