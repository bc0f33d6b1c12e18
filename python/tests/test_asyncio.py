"""gobridge.asyncio, Python to Python: awaited connections over unix:, fifo:
and Pipe() ends, concurrency, cancellation in the middle of frames, errors.
The Go peers are in interop_tests/test_asyncio_interop.py and asyncio_test.go."""
import asyncio
import os
import socket
import struct
import subprocess
import sys

import pytest

import gobridge
import gobridge.asyncio as ga
from gbtest_support import unique_name

BOUND = 30.0  # a guard against hangs, not a timing assertion


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, BOUND))


async def _until(pred):
    """Yield to the loop until pred() holds (the guard in run() bounds it)."""
    while not pred():
        await asyncio.sleep(0.001)


async def _echo_server(listener, n):
    async def one(c):
        async with c:
            while True:
                try:
                    await c.send_bytes(await c.recv_bytes())
                except EOFError:
                    return

    conns = [await listener.accept() for _ in range(n)]
    await asyncio.gather(*(one(c) for c in conns))


@pytest.mark.parametrize("scheme", ["unix", "fifo"])
def test_hundred_tasks_request_response(sockdir, scheme):
    addr = f"{scheme}:" + os.path.join(sockdir, "l")

    async def main():
        async with ga.Listener(addr, backlog=128) as l:
            server = asyncio.create_task(_echo_server(l, 100))

            async def client(i):
                async with await ga.Client(addr) as c:
                    for j in range(20):
                        await c.send([i, j, "x" * (i * j % 300)])
                        assert await c.recv() == [i, j, "x" * (i * j % 300)]
                return i

            assert sorted(await asyncio.gather(*(client(i) for i in range(100)))) == list(range(100))
            await server
        assert os.listdir(sockdir) == []

    run(main())


def test_pipe_ends_and_large_messages():
    async def main():
        a, b = gobridge.Pipe()
        r, w = gobridge.Pipe(duplex=False)
        async with ga.wrap(a) as A, ga.wrap(b) as B, ga.wrap(r) as R, ga.wrap(w) as W:
            big = os.urandom(5 << 20)  # larger than the socket buffer and the grow step
            sender = asyncio.create_task(A.send_bytes(big))
            assert await B.recv_bytes() == big
            await sender
            await W.send({"k": [1, 2.5, None]})
            assert not W.readable and not R.writable
            assert await R.recv() == {"k": [1, 2.5, None]}
            buf = bytearray(10)
            await A.send_bytes(b"abc")
            assert await B.recv_bytes_into(buf, 2) == 3 and buf[2:5] == b"abc"
            await A.send_bytes(b"x" * 11)
            with pytest.raises(gobridge.BufferTooShort) as e:
                await B.recv_bytes_into(buf)
            assert e.value.args[0] == b"x" * 11
            with pytest.raises(OSError):
                await R.send(1)
            with pytest.raises(OSError):
                await W.recv()

    run(main())


def test_cancelled_recv_mid_frame_resumes(raw_pair):
    mine, raw = raw_pair
    payload = os.urandom(3 << 20)
    frame = struct.pack("!i", len(payload)) + payload

    async def main():
        conn = ga.wrap(gobridge.Connection(os.dup(mine)))
        try:
            os.write(raw, frame[:1 << 16])  # the header and part of the payload
            task = asyncio.create_task(conn.recv_bytes())
            await _until(lambda: conn._pgot > 0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert conn.poll()  # part of a frame is held
            writer = asyncio.get_running_loop().run_in_executor(
                None, lambda: os.write(raw, frame[1 << 16:]) and None)
            got = await conn.recv_bytes()
            await writer
            assert got == payload  # the interrupted frame, whole, not a broken one
            os.write(raw, struct.pack("!i", 2) + b"\x91\x01")  # msgpack [1]
            assert await conn.recv() == [1]
        finally:
            conn.close()

    run(main())


def test_cancelled_send_sends_whole_frame_or_none():
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer = gobridge.Connection(b.detach())
    big = os.urandom(4 << 20)

    async def main():
        conn = ga.wrap(gobridge.Connection(a.detach()))
        try:
            first = asyncio.create_task(conn.send_bytes(bytearray(big)))
            await _until(lambda: conn._wstarted and conn._wdrain is not None)
            first.cancel()  # part of the frame is out: it is finished in the background
            with pytest.raises(asyncio.CancelledError):
                await first
            second = asyncio.create_task(conn.send_bytes(b"never"))
            await asyncio.sleep(0)
            assert not second.done()  # waits for the first frame's rest
            second.cancel()  # none of its frame left: dropped
            with pytest.raises(asyncio.CancelledError):
                await second
            reader = asyncio.get_running_loop().run_in_executor(None, lambda: [peer.recv_bytes(), peer.recv()])
            await conn.send("after")
            await conn.drain()
            assert await reader == [big, "after"]
        finally:
            conn.close()
            peer.close()

    run(main())


def test_framing_errors_and_end_of_stream(conn_raw):
    async def main():
        conn, raw = conn_raw()
        c = ga.wrap(conn)
        raw.write(struct.pack("!i", -5))
        with pytest.raises(gobridge.ProtocolError, match="negative length"):
            await c.recv()
        with pytest.raises(gobridge.ProtocolError):  # every later receive
            await c.recv()
        conn2, raw2 = conn_raw(max_frame_size=100)
        c2 = ga.wrap(conn2)
        raw2.write(struct.pack("!i", 101))
        with pytest.raises(gobridge.FrameTooLargeError):
            await c2.recv_bytes()
        conn3, raw3 = conn_raw()
        c3 = ga.wrap(conn3)
        raw3.write(struct.pack("!i", 1) + b"\xc1" + struct.pack("!i", 10) + b"abc")
        with pytest.raises(gobridge.DecodeError):  # the frame was consumed: usable
            await c3.recv()
        raw3.close()
        with pytest.raises(gobridge.ProtocolError, match="end of file during message"):
            await c3.recv_bytes()
        conn4, raw4 = conn_raw()
        c4 = ga.wrap(conn4)
        raw4.write(struct.pack("!i", 1) + b"\x07")
        raw4.close()
        assert await c4.recv() == 7
        with pytest.raises(EOFError):
            await c4.recv()

    run(main())


def test_close_wakes_waiters_and_cancelled_accept_loses_no_client(sockdir):
    addr = "unix:" + os.path.join(sockdir, "l")

    async def main():
        a, b = gobridge.Pipe()
        A = ga.wrap(a)
        waiter = asyncio.create_task(A.recv())
        await asyncio.sleep(0)
        A.close()
        with pytest.raises(OSError):
            await waiter
        b.close()
        async with ga.Listener(addr) as l:
            t = asyncio.create_task(l.accept())
            await asyncio.sleep(0)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            c = await ga.Client(addr, timeout=10)
            s = await l.accept()
            await c.send("hi")
            assert await s.recv() == "hi"
            c.close()
            s.close()

    run(main())


def test_killed_peer_wakes_every_waiter(sockdir):
    """A peer process killed while 20 tasks await receives: each gets a
    clean error (end of stream or a reset), none hangs."""
    addr = "unix:" + os.path.join(sockdir, "k")
    code = ("import sys, time, gobridge\n"
            "l = gobridge.Listener(sys.argv[1], backlog=32)\n"
            "cs = [l.accept() for _ in range(20)]\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n")

    async def main():
        proc = subprocess.Popen([sys.executable, "-c", code, addr], stdout=subprocess.PIPE)
        try:
            while not os.path.exists(addr[5:]):
                await asyncio.sleep(0.01)
            conns = [await ga.Client(addr, timeout=10) for _ in range(20)]
            ready = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
            assert ready == b"ready\n"
            tasks = [asyncio.create_task(c.recv()) for c in conns]
            await asyncio.sleep(0)
            proc.kill()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, (EOFError, ConnectionResetError)) for r in results), results
            for c in conns:
                c.close()
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()

    run(main())


def test_shm_refused_and_errors_of_client(sockdir):
    async def main():
        with pytest.raises(TypeError, match="shm"):
            ga.Listener("shm:" + unique_name("as"))
        with pytest.raises(TypeError, match="shm"):
            await ga.Client("shm:" + unique_name("as"))
        with pytest.raises(FileNotFoundError):
            await ga.Client("unix:" + os.path.join(sockdir, "none"))
        with pytest.raises(FileNotFoundError):
            await ga.Client("fifo:" + os.path.join(sockdir, "none"))
        gobridge.mkfifo(os.path.join(sockdir, "nobody"))
        with pytest.raises(TimeoutError):
            await ga.Client("fifo:" + os.path.join(sockdir, "nobody"), timeout=0.05)
        with pytest.raises((ValueError, FileNotFoundError)):  # as gobridge.Client, which runs it
            await ga.Client("unix:" + os.path.join(sockdir, "x"), authkey=b"k")

    run(main())
    assert sorted(os.listdir(sockdir)) == ["nobody"]


def test_open_fifo_shared_writers(sockdir):
    """Two asyncio writers share a plain FIFO with large frames (the flock
    rule of SPEC 6.6): the reader gets every frame whole."""
    path = os.path.join(sockdir, "p")
    gobridge.mkfifo(path)

    async def main():
        loop = asyncio.get_running_loop()
        reader_f = loop.run_in_executor(None, lambda: gobridge.open_fifo(path, "r", timeout=10))
        w1 = ga.wrap(gobridge.open_fifo(path, "w", timeout=10))
        w2 = ga.wrap(gobridge.open_fifo(path, "w", timeout=10))
        r = ga.wrap(await reader_f)

        async def write(w, tag):
            async with w:
                for i in range(20):
                    await w.send_bytes(bytes([tag]) * (100_000 + i))

        writers = asyncio.gather(write(w1, 1), write(w2, 2))
        got = []
        async with r:
            while True:
                try:
                    got.append(await r.recv_bytes())
                except EOFError:
                    break
        await writers
        assert len(got) == 40
        for m in got:
            assert m == m[:1] * len(m)
        assert sorted(len(m) for m in got) == sorted([100_000 + i for i in range(20)] * 2)

    run(main())


# --- named objects -------------------------------------------------------------


def test_queue_get_put_across_processes():
    """An asyncio getter and putter against a blocking process on the same
    named queue; a cancelled get loses no message; timeouts raise as
    multiprocessing's."""
    import queue
    name = unique_name("aq")
    back = unique_name("aqb")
    code = ("import sys, gobridge\n"
            "q = gobridge.Queue(name=sys.argv[1], create=False)\n"
            "b = gobridge.Queue(name=sys.argv[2], create=False)\n"
            "for i in range(200): q.put(['from child', i])\n"
            "got = [b.get(timeout=20) for _ in range(200)]\n"
            "assert got == [['to child', i] for i in range(200)], got\n"
            "q.close(); b.close()\n")

    async def main():
        async with ga.Queue(4, name=name) as q, ga.Queue(4, name=back) as b:
            with pytest.raises(queue.Empty):
                await q.get(timeout=0.01)
            with pytest.raises(queue.Empty):
                await q.get(False)
            waiting = asyncio.create_task(q.get())
            await asyncio.sleep(0.005)
            waiting.cancel()  # cancelled while waiting: it took nothing
            with pytest.raises(asyncio.CancelledError):
                await waiting
            proc = subprocess.Popen([sys.executable, "-c", code, name, back])
            try:
                getters = [asyncio.create_task(q.get()) for _ in range(200)]
                got = await asyncio.gather(*getters)
                assert sorted(got) == [["from child", i] for i in range(200)]
                for i in range(200):  # maxsize 4: most puts wait for room
                    await b.put(["to child", i])
                assert await asyncio.get_running_loop().run_in_executor(None, proc.wait) == 0
            finally:
                proc.kill()
                proc.wait()
            for i in range(4):
                await q.put(i)
            with pytest.raises(queue.Full):
                await q.put(4, timeout=0.01)
            with pytest.raises(ValueError):
                await q.get(timeout=-1)
            assert [await q.get() for _ in range(4)] == [0, 1, 2, 3]

    run(main())


def test_cancelled_gets_lose_no_message():
    """Many getters cancelled at random points while a putter runs: every
    message is got exactly once, by a getter that returned or later."""
    import random
    name = unique_name("ac")

    async def main():
        async with ga.Queue(name=name) as q:
            got = []

            async def getter():
                while True:
                    got.append(await q.get())

            tasks = [asyncio.create_task(getter()) for _ in range(20)]
            rng = random.Random(16)
            for i in range(500):
                await q.put(i)
                if rng.random() < 0.2:
                    k = rng.randrange(len(tasks))
                    tasks[k].cancel()
                    tasks[k] = asyncio.create_task(getter())
                await asyncio.sleep(0)
            await _until(lambda: len(got) >= 500)  # a lost message: the guard in run() fails the test
            assert q.qsize() == 0
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert sorted(got) == list(range(500))

    run(main())


def test_joinable_semaphore_lock():
    name = unique_name("aj")

    async def main():
        async with ga.JoinableQueue(name=name) as q:
            for i in range(3):
                await q.put(i)

            async def worker():
                for _ in range(3):
                    await q.get()
                    await asyncio.sleep(0)
                    q.task_done()

            w = asyncio.create_task(worker())
            await asyncio.wait_for(q.join(), BOUND)
            await w
        sem = ga.Semaphore(2, name=unique_name("as"))
        blocking = gobridge.Semaphore(name=sem.name, create=False)
        try:
            assert await sem.acquire() and await sem.acquire()
            assert not await sem.acquire(timeout=0.01)
            assert not await sem.acquire(False)
            third = asyncio.create_task(sem.acquire())
            await asyncio.sleep(0.005)
            third.cancel()  # held nothing
            with pytest.raises(asyncio.CancelledError):
                await third
            later = asyncio.create_task(sem.acquire())
            await asyncio.get_running_loop().run_in_executor(None, blocking.release)
            assert await later
            assert blocking.get_value() == 0
        finally:
            blocking.close()
            sem.close()
        lock = ga.Lock(name=unique_name("al"))
        other = gobridge.Lock(name=lock.name, create=False)
        try:
            inside = []

            async def critical(i):
                async with lock:
                    inside.append(i)
                    assert len(inside) == 1
                    await asyncio.sleep(0.001)
                    inside.remove(i)

            assert other.acquire()
            pending = asyncio.gather(*(critical(i) for i in range(5)))
            await asyncio.sleep(0.005)
            assert inside == []  # held by the other handle
            other.release()
            await pending
        finally:
            other.close()
            lock.close()

    run(main())
