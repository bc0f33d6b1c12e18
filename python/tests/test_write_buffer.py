"""Connection.set_write_buffer: batched sends (Go's bridge.WithWriteBuffer)
over every transport, Python to Python."""
import os
import struct

import pytest

import gobridge
from gobridge import Client, Listener

from gbtest_support import in_thread, unique_name

TRANSPORTS = ["socketpair", "pipe", "unix", "fifo", "shm"]


@pytest.fixture
def make_pair(sockdir):
    """make(kind) -> (tx, rx): a sender and a receiver over that transport."""
    opened = []

    def make(kind):
        if kind in ("socketpair", "pipe"):
            a, b = gobridge.Pipe(duplex=kind == "socketpair")
            tx, rx = (a, b) if kind == "socketpair" else (b, a)
        else:
            address = {
                "unix": f"unix:{sockdir}/w.sock",
                "fifo": f"fifo:{sockdir}/w.fifo",
                "shm": "shm:" + unique_name("wbuf"),
            }[kind]
            listener = Listener(address)
            opened.append(listener)
            join = in_thread(listener.accept)
            tx = Client(address, timeout=10)
            rx = join()
        opened.extend([tx, rx])
        return tx, rx

    yield make
    for o in reversed(opened):
        o.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_held_until_flush(make_pair, kind):
    tx, rx = make_pair(kind)
    tx.set_write_buffer(4096)
    for i in range(3):
        tx.send(i)
    assert not rx.poll(0.03), "batched frames were written before flush()"
    tx.flush()
    assert [rx.recv() for _ in range(3)] == [0, 1, 2]
    tx.flush()  # nothing waiting: a no-op


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_overflow_and_large_frames_keep_order(make_pair, kind):
    tx, rx = make_pair(kind)
    tx.set_write_buffer(1000)
    n = 1500

    def size(i):
        return {7: 5000, 8: 996}.get(i % 50, 8 + i % 90)  # 996 + header fills the buffer

    def send_all():
        for i in range(n):
            b = bytearray([i & 0xFF]) * size(i)
            struct.pack_into("<I", b, 0, i)
            tx.send_bytes(b)
        tx.flush()

    join = in_thread(send_all)
    for i in range(n):
        b = rx.recv_bytes()
        assert len(b) == size(i) and struct.unpack_from("<I", b)[0] == i and b[-1] == i & 0xFF, i
    join()


@pytest.mark.parametrize("kind", ["socketpair", "unix", "fifo", "shm"])
def test_receive_flushes_first(make_pair, kind):
    tx, rx = make_pair(kind)
    tx.set_write_buffer(1 << 16)

    def serve():
        rx.send(rx.recv() + 1)

    join = in_thread(serve)
    tx.send(41)
    assert tx.poll(10), "the request stayed batched while its sender waited"
    assert tx.recv() == 42
    join()


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_close_flushes(make_pair, kind):
    tx, rx = make_pair(kind)
    tx.set_write_buffer(4096)
    for i in range(10):
        tx.send(i)
    tx.close()
    assert [rx.recv() for _ in range(10)] == list(range(10))
    with pytest.raises(EOFError):
        rx.recv()


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_flush_to_closed_peer_fails(make_pair, kind):
    tx, rx = make_pair(kind)
    tx.set_write_buffer(1 << 16)
    rx.close()
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        for _ in range(100):
            tx.send_bytes(bytes(1000))
            tx.flush()


def test_set_write_buffer_flushes_and_disables(make_pair):
    tx, rx = make_pair("socketpair")
    tx.set_write_buffer(4096)
    tx.send("a")
    tx.set_write_buffer(0)  # writes "a" first
    tx.send("b")  # at once
    assert rx.poll(5) and rx.recv() == "a" and rx.recv() == "b"


def test_refused_on_shared_fifo(sockdir):
    path = os.path.join(sockdir, "plain")
    gobridge.mkfifo(path)
    join = in_thread(gobridge.open_fifo, path, "r")
    w = gobridge.open_fifo(path, "w", timeout=10)
    r = join()
    try:
        with pytest.raises(ValueError, match="share"):
            w.set_write_buffer(4096)
    finally:
        w.close()
        r.close()


@pytest.mark.parametrize("kind", ["socketpair", "unix", "fifo", "shm"])
def test_failed_flush_then_receive(make_pair, kind):
    """A batch that can never be written (the peer closed) fails one
    receive, is dropped, and the peer's last message still arrives."""
    tx, rx = make_pair(kind)
    tx.set_write_buffer(1 << 16)
    rx.send("bye")
    rx.close()
    tx.send_bytes(bytes(1000))
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        tx.recv()
    assert tx.recv() == "bye"
