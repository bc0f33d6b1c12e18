"""What idle gobridge.asyncio waiters cost (issue 16): not a benchmark the
CLI runs, a script to run by hand:

    python interop_tests/asyncio_idle.py [SECONDS]

Each case leaves tasks awaiting something that never comes (a queue get, a
put on a full queue, a semaphore, a lock held by another handle, connection
receives) and prints the process's CPU time over SECONDS (default 5) of wall
time, after a second for the poll gap to reach its maximum.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Awaitable, Callable, List, Tuple

import gobridge
import gobridge.asyncio as ga

Case = Callable[[], Awaitable[Tuple[List["asyncio.Task[object]"], Callable[[], None]]]]


async def _measure(label: str, make: Case, seconds: float) -> None:
    tasks, cleanup = await make()
    await asyncio.sleep(1.0)
    t0, c0 = time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    dt, dc = time.monotonic() - t0, time.process_time() - c0
    print(f"{label:40s} {100 * dc / dt:6.2f}% of a CPU")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cleanup()


async def _main(seconds: float) -> None:
    tag = f"gbidle-{os.getpid()}"

    def getters(n: int) -> Case:
        async def make() -> Tuple[List["asyncio.Task[object]"], Callable[[], None]]:
            q = ga.Queue(name=f"{tag}-q{n}")
            return [asyncio.create_task(q.get()) for _ in range(n)], q.close
        return make

    async def putter() -> Tuple[List["asyncio.Task[object]"], Callable[[], None]]:
        q = ga.Queue(1, name=f"{tag}-p")
        await q.put(0)
        return [asyncio.create_task(q.put(1))], q.close

    async def semaphore() -> Tuple[List["asyncio.Task[object]"], Callable[[], None]]:
        s = ga.Semaphore(0, name=f"{tag}-s")
        return [asyncio.create_task(s.acquire())], s.close

    async def lock() -> Tuple[List["asyncio.Task[object]"], Callable[[], None]]:
        lk = ga.Lock(name=f"{tag}-l")
        other = gobridge.Lock(name=lk.name, create=False)
        other.acquire()

        def cleanup() -> None:
            other.release()
            other.close()
            lk.close()
        return [asyncio.create_task(lk.acquire())], cleanup

    async def receives() -> Tuple[List["asyncio.Task[object]"], Callable[[], None]]:
        pairs = [gobridge.Pipe() for _ in range(100)]
        conns = [ga.wrap(a) for a, _ in pairs]

        def cleanup() -> None:
            for c in conns:
                c.close()
            for _, b in pairs:
                b.close()
        return [asyncio.create_task(c.recv()) for c in conns], cleanup

    await _measure("1 queue getter", getters(1), seconds)
    await _measure("100 queue getters", getters(100), seconds)
    await _measure("1 putter on a full queue", putter, seconds)
    await _measure("1 semaphore acquirer", semaphore, seconds)
    await _measure("1 lock acquirer (held by another handle)", lock, seconds)
    await _measure("100 connection receives", receives, seconds)


if __name__ == "__main__":
    asyncio.run(_main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0))
