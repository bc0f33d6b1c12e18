"""The fenced code paths of weakly ordered machines (arm64), run on any.

On x86-64 ``WEAK`` is False and the fences of SPEC 10.4 and 11.5 are skipped;
here each exchange runs once as is and once with them forced on, so that the
arm64 branches of the ring and the queue run (the second run must make more
fences than the first) and keep every message intact.
"""
import sys
import threading

import pytest

import gobridge
from gobridge import queues as _queue
from gobridge._internal import ring as _ring

from gbtest_support import in_thread, unique_name


@pytest.fixture
def fences(monkeypatch):
    """count(weak, fn) runs fn with WEAK set to weak and returns how many
    fences the ring and the queue modules made meanwhile."""
    real = _ring.fence

    def count(weak, fn):
        calls = {"ring": 0, "queue": 0}

        def counting(where):
            def fence():
                calls[where] += 1
                real()
            return fence

        monkeypatch.setattr(_ring, "WEAK", weak)
        monkeypatch.setattr(_queue, "WEAK", weak)
        monkeypatch.setattr(_ring, "fence", counting("ring"))
        monkeypatch.setattr(_queue, "fence", counting("queue"))
        fn()
        return calls

    return count


def queue_exchange(tag):
    q = gobridge.Queue(name=unique_name(f"weak-q-{tag}"))
    try:
        for i in range(100):
            q.put([i, b"x" * (i * 37)])
        for i in range(100):
            assert q.get(timeout=5) == [i, b"x" * (i * 37)]
    finally:
        q.close()


def test_queue_with_fences(fences):
    base = fences(False, lambda: queue_exchange("base"))
    weak = fences(True, lambda: queue_exchange("weak"))
    # WEAK adds one fence per put and two per get
    assert weak["queue"] - base["queue"] == 300


def shm_exchange(tag):
    addr = "shm:" + unique_name(f"weak-c-{tag}")
    big = bytes(range(256)) * 20000  # larger than a 1 MiB ring: streamed
    with gobridge.Listener(addr) as listener:

        def serve():
            with listener.accept() as c:
                got = c.recv_bytes()
                c.send(c.recv())
                return got

        join = in_thread(serve)
        with gobridge.Client(addr, timeout=10) as c:
            c.send_bytes(big)
            c.send({"small": 1})
            assert c.recv() == {"small": 1}
        assert join(10) == big


def test_shm_connection_with_fences(fences):
    base = fences(False, lambda: shm_exchange("base"))
    weak = fences(True, lambda: shm_exchange("weak"))
    assert weak["ring"] > base["ring"]


def test_fence_from_two_threads():
    """A connection's reader and writer threads fence at once: with one lock
    shared by every thread, a switch between one thread's release and
    acquire made the other's release raise RuntimeError."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        def run():
            for _ in range(100000):
                _ring.fence()

        joins = [in_thread(run) for _ in range(2)]
        for join in joins:
            join(60)
    finally:
        sys.setswitchinterval(old)
