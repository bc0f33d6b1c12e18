"""gobridge.asyncio against Go peers (issue 16): `gobridge echo` (Go) serves
unix: and fifo: to 100 concurrent asyncio tasks; cancellation in the middle
of large frames in both directions; a Go peer killed while tasks await.
The Go-client side (Go dialing an asyncio listener) is asyncio_test.go;
Python-Python is python/tests/test_asyncio.py."""
import asyncio
import json
import os
import subprocess

import pytest

import gobridge
import gobridge.asyncio as ga
import gobridge.connection
from conftest import wait_for_path
from shm_support import unique_tag

BOUND = 60.0  # a guard against hangs, not a timing assertion


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, BOUND))


async def _until(pred):
    while not pred():
        await asyncio.sleep(0.001)


def _echo(gb_bin, addr, path):
    proc = subprocess.Popen([gb_bin, "echo", addr], stderr=subprocess.PIPE, text=True)
    wait_for_path(path, proc)
    return proc


def _echo_at(gb_bin, scheme, sockdir):
    """`gobridge echo` on a scheme; (process, the address it listens on)."""
    if scheme != "tcp":
        path = os.path.join(sockdir, "e")
        return _echo(gb_bin, f"{scheme}:{path}", path), f"{scheme}:{path}"
    if "tcp" not in gobridge.connection.SCHEME_IMPLS:
        pytest.skip("no tcp: transport in this build")
    proc = subprocess.Popen([gb_bin, "echo", "tcp:127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # "gobridge: listening on tcp:127.0.0.1:PORT"
    assert "listening on tcp:" in line, line
    return proc, line.split("listening on ", 1)[1].strip()


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
    proc.communicate(timeout=30)


@pytest.mark.parametrize("scheme", ["unix", "fifo", "tcp"])
def test_hundred_tasks_against_go_echo(gb_bin, sockdir, scheme):
    proc, addr = _echo_at(gb_bin, scheme, sockdir)
    try:
        async def client(i):
            async with await ga.Client(addr, timeout=20) as c:
                for j in range(20):
                    want = {"task": i, "n": j, "s": "y" * ((i * 7 + j) % 500), "b": bytes([i % 256]) * j}
                    await c.send(want)
                    assert await c.recv() == want
            return i

        async def main():
            return await asyncio.gather(*(client(i) for i in range(100)))

        assert sorted(run(main())) == list(range(100))
    finally:
        _stop(proc)
    assert os.listdir(sockdir) == []


def test_cancelled_send_to_go_sends_whole_frame(gb_bin, sockdir):
    """Python -> Go: a send cancelled after part of a 16 MiB frame left is
    finished in the background; Go echoes it whole, then the next message."""
    path = os.path.join(sockdir, "e")
    proc = _echo(gb_bin, "unix:" + path, path)
    big = os.urandom(16 << 20)
    try:
        async def main():
            async with await ga.Client("unix:" + path) as c:
                task = asyncio.create_task(c.send(big))  # a msgpack bin
                await _until(lambda: task.done() or c._wstarted and c._wdrain is not None)
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                await c.send("next")
                assert await c.recv() == big
                assert await c.recv() == "next"

        run(main())
    finally:
        _stop(proc)


def test_cancelled_recv_of_go_frame_resumes(gb_bin, sockdir):
    """Go -> Python: `gobridge send` writes a 16 MiB string; the receive is
    cancelled in the middle of it; the next receive returns it whole, then
    the next message."""
    addr = "unix:" + os.path.join(sockdir, "l")
    big = "z" * (16 << 20)

    async def main():
        async with ga.Listener(addr) as l:
            proc = subprocess.Popen([gb_bin, "send", addr], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                c = await l.accept()
                loop = asyncio.get_running_loop()
                feed = loop.run_in_executor(None, proc.communicate, (json.dumps(big) + '\n"after"\n').encode())
                task = asyncio.create_task(c.recv())
                await _until(lambda: task.done() or c._pgot > 0)
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    assert c._pgot > 0 or c._n < 0
                else:
                    pytest.skip("the whole frame arrived before the cancel")
                assert await c.recv() == big
                assert await c.recv() == "after"
                with pytest.raises(EOFError):
                    await c.recv()
                await feed
                assert proc.returncode == 0
                c.close()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    run(main())


@pytest.mark.parametrize("scheme", ["unix", "fifo", "tcp"])
def test_go_peer_killed_while_tasks_await(gb_bin, sockdir, scheme):
    proc, addr = _echo_at(gb_bin, scheme, sockdir)
    try:
        async def main():
            conns = [await ga.Client(addr, timeout=20) for _ in range(100)]
            for c in conns:  # every connection is served before the kill
                await c.send(1)
                assert await c.recv() == 1
            tasks = [asyncio.create_task(c.recv()) for c in conns]
            await asyncio.sleep(0)
            proc.kill()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, (EOFError, ConnectionResetError)) for r in results), results[:3]
            for c in conns:
                c.close()

        run(main())
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_queue_between_go_and_asyncio(gb_bin):
    """Go (`gobridge queue put/get`, bridge/mp) and asyncio tasks share one
    named queue: Go's puts reach 50 awaiting getters, asyncio's puts reach
    Go's get, through a maxsize that makes both sides wait."""
    name = unique_tag("aq")

    async def main():
        loop = asyncio.get_running_loop()
        async with ga.Queue(3, name=name) as q:
            getters = [asyncio.create_task(q.get()) for _ in range(50)]
            put = await loop.run_in_executor(None, lambda: subprocess.run(
                [gb_bin, "queue", "put", name, *[json.dumps({"go": i}) for i in range(50)], "--timeout", "30"],
                capture_output=True, text=True))
            assert put.returncode == 0, put.stderr
            got = await asyncio.gather(*getters)
            assert sorted(g["go"] for g in got) == list(range(50))
            reader = loop.run_in_executor(None, lambda: subprocess.run(
                [gb_bin, "queue", "get", name, "--count", "40", "--timeout", "30"],
                capture_output=True, text=True))
            for i in range(40):  # maxsize 3: these wait for Go's gets
                await q.put(["py", i])
            out = await reader
            assert out.returncode == 0, out.stderr
            assert [json.loads(line) for line in out.stdout.splitlines()] == [["py", i] for i in range(40)]

    run(main())
