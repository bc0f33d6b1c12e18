"""The fenced code paths of weakly ordered machines (arm64), run on any.

On x86-64 ``WEAK`` is False and the fences of SPEC 10.4 and 11.5 are skipped;
here they are forced on, so that the arm64 branches of the ring and the
queue at least run and keep every message intact.
"""
import os
import threading

import pytest

import gobridge
from gobridge import _queue, _ring


@pytest.fixture
def weak(monkeypatch):
    """Force the fences on; yields the count of fences each module ran."""
    calls = {"ring": 0, "queue": 0}
    real = _ring.fence

    def counting(where):
        def fence():
            calls[where] += 1
            real()
        return fence

    monkeypatch.setattr(_ring, "WEAK", True)
    monkeypatch.setattr(_queue, "WEAK", True)
    monkeypatch.setattr(_ring, "fence", counting("ring"))
    monkeypatch.setattr(_queue, "fence", counting("queue"))
    yield calls


def test_queue_with_fences(weak):
    q = gobridge.Queue(name=f"gbtest-weak-q-{os.getpid()}")
    try:
        for i in range(100):
            q.put([i, b"x" * (i * 37)])
        for i in range(100):
            assert q.get(timeout=5) == [i, b"x" * (i * 37)]
    finally:
        q.close()
    assert weak["queue"] >= 300  # a fence per put, two per get


def test_shm_connection_with_fences(weak):
    addr = f"shm:gbtest-weak-c-{os.getpid()}"
    big = bytes(range(256)) * 20000  # larger than a 1 MiB ring: streamed
    with gobridge.Listener(addr) as listener:
        got = []

        def serve():
            with listener.accept() as c:
                got.append(c.recv_bytes())
                c.send(c.recv())

        t = threading.Thread(target=serve)
        t.start()
        with gobridge.Client(addr, timeout=10) as c:
            c.send_bytes(big)
            c.send({"small": 1})
            assert c.recv() == {"small": 1}
        t.join(10)
    assert got == [big]
    assert weak["ring"] > 0
