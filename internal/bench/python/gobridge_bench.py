"""Python side of ``gobridge bench`` (not a public API).

Run as ``python -m gobridge_bench ROLE ARGS...``. Roles that measure print one
JSON object on the last line of standard output; peer roles print nothing.

Peer roles (the Go side listens on ADDR and drives the measurement):
  echo ADDR             connect, send back every message until EOF
  sink ADDR N           connect, receive N messages, reply "done"
  source ADDR N SIZE [BATCH]
                        connect, send N messages of SIZE payload bytes (batched in
                        set_write_buffer(BATCH) when given), wait for a reply
  aecho ADDR, asink ADDR N, asource ADDR N SIZE
                        the same three on gobridge.asyncio (one event loop, awaited calls)

Python<->Python baselines, measured with a forked child as multiprocessing does:
  mp-pipe-rtt N         multiprocessing.Pipe round trips          -> {"samples_us": [...]}
  mp-pipe-tput N SIZE   multiprocessing.Pipe one-way messages/s   -> {"msgs_per_s": x}
  gb-pipe-rtt N         gobridge.Pipe round trips                 -> {"samples_us": [...]}
  gb-pipe-tput N SIZE   gobridge.Pipe one-way messages/s          -> {"msgs_per_s": x}
"""
from __future__ import annotations

import json
import multiprocessing
import sys
import time
from typing import Any, Callable, List, Tuple

import gobridge

# A bytes object of SIZE-2 bytes encodes as a SIZE-byte msgpack payload (bin 8).
def _payload(size: int) -> bytes:
    return b"x" * (size - 2)


def _echo(conn: Any) -> None:
    try:
        while True:
            conn.send(conn.recv())
    except EOFError:
        pass


def _sink(conn: Any, n: int) -> None:
    for _ in range(n):
        conn.recv()
    conn.send("done")


def _source(conn: Any, n: int, size: int) -> None:
    p = _payload(size)
    for _ in range(n):
        conn.send(p)
    conn.recv()


async def _aecho(addr: str) -> None:
    import gobridge.asyncio as ga
    async with await ga.Client(addr) as c:
        try:
            while True:
                await c.send(await c.recv())
        except EOFError:
            pass


async def _asink(addr: str, n: int) -> None:
    import gobridge.asyncio as ga
    async with await ga.Client(addr) as c:
        for _ in range(n):
            await c.recv()
        await c.send("done")


async def _asource(addr: str, n: int, size: int) -> None:
    import gobridge.asyncio as ga
    p = _payload(size)
    async with await ga.Client(addr) as c:
        for _ in range(n):
            await c.send(p)
        await c.recv()


def _child(other_end: Any, fn: Callable[..., None], *args: Any) -> None:
    # A forked child holds both ends: close the parent's, or EOF never comes.
    other_end.close()
    fn(*args)


def _rtt(pipe: Callable[[], Tuple[Any, Any]], n: int) -> List[float]:
    a, b = pipe()
    child = multiprocessing.get_context("fork").Process(target=_child, args=(a, _echo, b))
    child.start()
    b.close()
    p = _payload(64)
    samples = []
    clock = time.perf_counter_ns
    for i in range(n + n // 10):
        t = clock()
        a.send(p)
        a.recv()
        if i >= n // 10:
            samples.append((clock() - t) / 1e3)
    a.close()
    child.join()
    return samples


def _tput(pipe: Callable[[], Tuple[Any, Any]], n: int, size: int) -> float:
    a, b = pipe()
    child = multiprocessing.get_context("fork").Process(target=_child, args=(a, _sink, b, n))
    child.start()
    b.close()
    p = _payload(size)
    t = time.perf_counter()
    for _ in range(n):
        a.send(p)
    a.recv()
    rate = n / (time.perf_counter() - t)
    a.close()
    child.join()
    return rate


def main(argv: List[str]) -> int:
    role, args = argv[0], argv[1:]
    if role == "echo":
        with gobridge.Client(args[0]) as c:
            _echo(c)
    elif role == "sink":
        with gobridge.Client(args[0]) as c:
            _sink(c, int(args[1]))
    elif role == "source":
        with gobridge.Client(args[0]) as c:
            if len(args) > 3:
                c.set_write_buffer(int(args[3]))  # the wait for the reply flushes
            _source(c, int(args[1]), int(args[2]))
    elif role in ("aecho", "asink", "asource"):
        import asyncio
        if role == "aecho":
            asyncio.run(_aecho(args[0]))
        elif role == "asink":
            asyncio.run(_asink(args[0], int(args[1])))
        else:
            asyncio.run(_asource(args[0], int(args[1]), int(args[2])))
    elif role == "mp-pipe-rtt":
        print(json.dumps({"samples_us": _rtt(multiprocessing.Pipe, int(args[0]))}))
    elif role == "gb-pipe-rtt":
        print(json.dumps({"samples_us": _rtt(gobridge.Pipe, int(args[0]))}))
    elif role == "mp-pipe-tput":
        print(json.dumps({"msgs_per_s": _tput(multiprocessing.Pipe, int(args[0]), int(args[1]))}))
    elif role == "gb-pipe-tput":
        print(json.dumps({"msgs_per_s": _tput(gobridge.Pipe, int(args[0]), int(args[1]))}))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
