"""Exact readiness and fork safety of descriptor connections (SPEC 6.4).

A message gobridge has not returned yet stays in the kernel, so select,
poll, selectors, multiprocessing.connection.wait and loop.add_reader on
fileno() see it, and processes sharing one end after fork() each get
distinct messages. Real sockets, pipes, FIFOs and forks; the Go sender's
side of the same cases is in interop_tests/test_readiness_interop.py.
"""
import asyncio
import multiprocessing.connection
import os
import select
import selectors
import socket
import struct

import pytest

import gobridge

from gbtest_support import in_thread

WAIT = 10.0  # bound on every wait for something that must be ready


def _pairs(sockdir):
    """(name, reader, writer) of every descriptor transport."""
    out = []
    a, b = gobridge.Pipe()
    out.append(("socketpair", a, b))
    r, w = gobridge.Pipe(duplex=False)
    out.append(("os.pipe", r, w))
    with gobridge.Listener("unix:" + os.path.join(sockdir, "r.sock")) as l:
        join = in_thread(l.accept)
        c = gobridge.Client(l.address)
        out.append(("unix", join(), c))
    with gobridge.Listener("fifo:" + os.path.join(sockdir, "r.fifo")) as l:
        join = in_thread(l.accept)
        c = gobridge.Client(l.address)
        out.append(("fifo", join(), c))
    return out


@pytest.fixture
def pairs(sockdir):
    made = _pairs(sockdir)
    yield made
    for _, r, w in made:
        r.close()
        w.close()


def _ready_everywhere(conn):
    """Whether every readiness API of the stdlib says conn can be read now
    (each given up to WAIT seconds); a dict API -> bool."""
    fd = conn.fileno()
    got = {}
    got["select"] = bool(select.select([fd], [], [], WAIT)[0])
    p = select.poll()
    p.register(fd, select.POLLIN)
    got["poll"] = bool(p.poll(WAIT * 1000))
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        got["selectors"] = bool(sel.select(WAIT))
    got["mp.wait"] = multiprocessing.connection.wait([conn], WAIT) == [conn]
    got["gobridge.wait"] = gobridge.connection.wait([conn], WAIT) == [conn]

    async def reader():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(True))
        try:
            return await asyncio.wait_for(fut, WAIT)
        except asyncio.TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)

    got["add_reader"] = asyncio.run(reader())
    return got


def _not_ready(conn):
    fd = conn.fileno()
    return {
        "select": not select.select([fd], [], [], 0)[0],
        "mp.wait": multiprocessing.connection.wait([conn], 0) == [],
        "gobridge.wait": gobridge.connection.wait([conn], 0) == [],
        "poll()": not conn.poll(0),
    }


def test_second_message_is_visible_to_every_readiness_api(pairs):
    for name, r, w in pairs:
        w.send("first")
        w.send_bytes(b"second")
        assert r.recv() == "first", name
        got = _ready_everywhere(r)
        assert all(got.values()), (name, got)
        assert r.poll(0), name
        assert r.recv_bytes() == b"second", name
        got = _not_ready(r)
        assert all(got.values()), (name, got)


def test_every_receive_call_leaves_the_rest_in_the_kernel(pairs):
    """recv, recv_bytes, recv_bytes_into, an empty payload and a 12-byte
    header's frame: after each, what follows is still visible."""
    for name, r, w in pairs:
        def send():
            w.send_bytes(b"")
            w.send(1)
            w.send_bytes(b"x" * 300_000)  # larger than the receive buffer and the pipe
            w.send(2)
        join = in_thread(send)
        assert r.recv_bytes() == b"", name
        assert all(_ready_everywhere(r).values()), name
        assert r.recv() == 1, name
        assert all(_ready_everywhere(r).values()), name
        buf = bytearray(400_000)
        assert r.recv_bytes_into(buf) == 300_000, name
        assert all(_ready_everywhere(r).values()), name
        assert r.recv() == 2, name
        join()
        assert all(_not_ready(r).values()), name


def test_frames_written_in_one_burst(conn_raw):
    """Many whole frames arriving in one write are still taken one by one."""
    conn, raw = conn_raw()
    frames = b"".join(struct.pack("!i", len(p)) + p for p in (gobridge.encode(i) for i in range(50)))
    raw.write(frames)
    for i in range(50):
        assert select.select([conn.fileno()], [], [], WAIT)[0], i
        assert conn.recv() == i
    assert not select.select([conn.fileno()], [], [], 0)[0]


def test_end_of_stream_is_readable_after_the_last_message():
    a, b = gobridge.Pipe()
    b.send("last")
    b.close()
    assert a.recv() == "last"
    assert all(_ready_everywhere(a).values())
    with pytest.raises(EOFError):
        a.recv()
    a.close()


def _forked_readers(reader, count, lock):
    """Fork `count` children that each take messages from reader under lock
    until they get None; return every message they took (via a pipe)."""
    results = []
    kids = []
    for _ in range(count):
        back_r, back_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(back_r)
                got = []
                while True:
                    with lock:
                        m = reader.recv()
                    if m is None:
                        break
                    got.append(m)
                os.write(back_w, gobridge.encode(got))
                code = 0
            finally:
                os._exit(code)
        os.close(back_w)
        kids.append((pid, back_r))
    for pid, back_r in kids:
        data = b""
        while True:
            chunk = os.read(back_r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(back_r)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        results.append(gobridge.decode(data))
    return results


@pytest.mark.parametrize("duplex", [True, False])
def test_forked_readers_get_distinct_messages(duplex):
    """The issue's case: 4 sent, 1 received, fork: each message once. Then
    three forked readers sharing one end under a lock, as
    multiprocessing.Queue shares its pipe."""
    import multiprocessing
    r, w = gobridge.Pipe(duplex=duplex)
    try:
        for i in range(4):
            w.send(i)
        assert r.recv() == 0
        back_r, back_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.write(back_w, gobridge.encode(r.recv()))
                code = 0
            finally:
                os._exit(code)
        os.close(back_w)
        child_got = gobridge.decode(os.read(back_r, 100))
        os.close(back_r)
        assert os.waitpid(pid, 0)[1] == 0
        rest = [r.recv(), r.recv()]
        assert sorted([child_got, *rest]) == [1, 2, 3]
        assert not r.poll(0)

        lock = multiprocessing.get_context("fork").Lock()
        n = 3000
        sender = os.fork()  # a process, not a thread: the readers are forked next
        if sender == 0:
            code = 1
            try:
                for i in range(n):
                    w.send(i)
                for _ in range(3):
                    w.send(None)
                code = 0
            finally:
                os._exit(code)
        results = _forked_readers(r, 3, lock)
        assert os.waitpid(sender, 0)[1] == 0
        taken = sorted(m for got in results for m in got)
        assert taken == list(range(n))  # none lost, none twice
    finally:
        r.close()
        w.close()


def test_wait_mixes_every_kind_of_object(sockdir):
    """gobridge.connection.wait takes what the stdlib's does (connections of
    both libraries, sockets, ints) plus shm: connections, which have no
    descriptor; it answers only the ready ones, in the list's order."""
    import multiprocessing
    from gbtest_support import unique_name
    ga, gb = gobridge.Pipe()
    ma, mb = multiprocessing.Pipe()
    sa, sb = socket.socketpair()
    pr, pw = os.pipe()
    with gobridge.Listener("shm:" + unique_name("wait")) as l:
        join = in_thread(l.accept)
        shm_client = gobridge.Client(l.address)
        shm_server = join()
    objs = [ga, ma, sa, pr, shm_server]
    try:
        assert gobridge.connection.wait(objs, 0) == []
        assert gobridge.connection.wait(objs, 0.05) == []
        shm_client.send("ring")
        assert gobridge.connection.wait(objs, WAIT) == [shm_server]
        assert gobridge.connection.wait([shm_server]) == [shm_server]  # no timeout, no descriptor
        assert shm_server.recv() == "ring"
        gb.send(1)
        mb.send(2)
        sb.send(b"3")
        os.write(pw, b"4")
        shm_client.send(5)
        join = in_thread(gobridge.connection.wait, objs)  # timeout=None
        assert join() == objs
        assert multiprocessing.connection.wait([ga], 0) == [ga]  # the stdlib agrees on gobridge's
        # a blocked wait is woken by a descriptor and by a ring
        assert ga.recv() == 1 and ma.recv() == 2 and sa.recv(1) == b"3" and os.read(pr, 1) == b"4"
        assert shm_server.recv() == 5
        join = in_thread(gobridge.connection.wait, objs, WAIT)
        gb.send("late")
        assert join() == [ga]
        assert ga.recv() == "late"
        join = in_thread(gobridge.connection.wait, objs, WAIT)
        shm_client.send("late")
        assert join() == [shm_server]
        assert shm_server.recv() == "late"
        shm_client.close()  # end of stream is ready, as on a socket
        assert gobridge.connection.wait([shm_server], WAIT) == [shm_server]
        ga.close()
        with pytest.raises(OSError):
            gobridge.connection.wait([ga], 0)
    finally:
        for c in (ga, gb, ma, mb, sa, sb, shm_client, shm_server):
            c.close()
        os.close(pr)
        os.close(pw)


def test_a_foreign_reader_does_not_misframe_the_peeked_lengths(conn_raw):
    """A socket receive peeks at the frames queued behind the one it takes
    and reads each next one in one read, checking its header. A reader
    gobridge cannot know of (a raw duplicate of the descriptor) taking a
    frame in between makes the check fail: the messages still come whole."""
    conn, raw = conn_raw()
    payloads = [gobridge.encode(v) for v in (1, "b" * 9, [3], "d" * 49, 5)]
    raw.write(b"".join(struct.pack("!i", len(p)) + p for p in payloads))
    assert conn.recv() == 1
    thief = os.dup(conn.fileno())
    try:
        stolen = os.read(thief, 4 + len(payloads[1]))  # exactly the next frame
    finally:
        os.close(thief)
    assert stolen[4:] == payloads[1]
    assert conn.recv() == [3]  # shorter than the length peeked for it
    assert conn.recv() == "d" * 49
    assert conn.recv() == 5
    assert not conn.poll(0)
    raw.write(struct.pack("!i", 1) + gobridge.encode(6))
    assert conn.recv() == 6


def test_handed_down_and_forked_connections_stop_peeking():
    """After fork(), pickling or child_environ a connection never relies on
    lengths it peeked: other processes may read the socket."""
    import pickle
    from multiprocessing.reduction import ForkingPickler
    a, b = gobridge.Pipe()
    c, d = gobridge.Pipe()
    try:
        assert a._peek is not None
        gobridge.child_environ(a)
        assert a._peek is None
        copy = pickle.loads(ForkingPickler.dumps(c))
        assert c._peek is None and copy._peek is None
        copy.close()
    finally:
        for x in (a, b, c, d):
            x.close()


def test_peeked_burst_of_mixed_calls_and_sizes(conn_raw):
    """One write holds frames of many sizes (empty, small, larger than the
    peek, partial at the end); recv, recv_bytes, recv_bytes_into and
    recv_bytes(maxlength) take them in order, each exactly one, with the
    rest visible to select; a frame over maxlength raises as CPython's does."""
    conn, raw = conn_raw()
    payloads = [b"", b"a", b"b" * 70_000, b"c" * 63, gobridge.encode("d"), b"e" * 5, b"f" * 9, b"g" * 20]
    blob = b"".join(struct.pack("!i", len(p)) + p for p in payloads)
    join = in_thread(lambda: raw.write(blob[:-7]))  # the last frame arrives later
    assert conn.recv_bytes() == b""
    assert conn.recv_bytes() == b"a"
    assert conn.recv_bytes() == b"b" * 70_000
    buf = bytearray(100)
    assert conn.recv_bytes_into(buf, 3) == 63 and bytes(buf[3:66]) == b"c" * 63
    assert select.select([conn.fileno()], [], [], WAIT)[0]
    assert conn.recv() == "d"
    assert conn.recv_bytes(5) == b"e" * 5
    with pytest.raises(gobridge.FrameTooLargeError):
        conn.recv_bytes(8)  # f * 9: the stream is left, as CPython leaves it
    join()
