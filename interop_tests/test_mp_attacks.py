"""The attacks of issue 11 across the language line: a hostile process
(plain open, mmap, truncate, fcntl) against objects that Python made and the
`gobridge queue` command opens, and the reverse; a stopped lock holder in one
language and bounded calls in the other; names and shm: listeners both ways.
The Go side is bin/gobridge and interop_tests/internal/mppeer."""
from __future__ import annotations

import mmap
import os
import queue
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from typing import Iterator, List

import pytest

import gobridge
from conftest import gobridge_bin
from gobridge._internal import objects as O
from gobridge import queues as Q
from gobridge._internal import shmseg as _shm
from shm_support import Proc, unique_tag

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
_peer: List[str] = []


@pytest.fixture(scope="module", autouse=True)
def _build_peer() -> Iterator[None]:
    go = shutil.which("go")
    if go is None:
        pytest.skip("go not found")
    d = tempfile.mkdtemp(prefix="gbmpatk")
    out = os.path.join(d, "mppeer")
    subprocess.run([go, "build", "-o", out, "./interop_tests/internal/mppeer"], cwd=REPO, check=True, timeout=300)
    _peer.append(out)
    yield
    _peer.clear()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tag() -> Iterator[str]:
    t = unique_tag("mpatk")
    yield t
    if os.path.lexists("/dev/shm/" + t):
        os.unlink("/dev/shm/" + t)
        pytest.fail(f"{t} left behind")


def gb(*args: "str | bytes", timeout: float = 30) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([gobridge_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          errors="replace")


def no_crash(r: "subprocess.CompletedProcess[str]") -> None:
    for bad in ("fatal error", "SIGBUS", "panic:", "goroutine "):
        assert bad not in r.stderr, r.stderr[-3000:]


def mapped(name: str, n: int):
    fd = os.open(_shm.path(name), os.O_RDWR)
    try:
        return mmap.mmap(fd, n)
    finally:
        os.close(fd)


# -- item 2: `gobridge queue get` under a truncation ---------------------------------

@pytest.mark.parametrize("size", [0, 4096])
def test_cli_get_survives_a_truncated_queue(tag: str, size: int) -> None:
    """The old command died with "fatal error: fault [signal SIGBUS]". Size
    0: the getter wakes into a segment with no pages; 4096: the header page
    stays, and the hostile process publishes a record that runs past it."""
    q = gobridge.Queue(name=tag, capacity=64 << 10)
    try:
        get = subprocess.Popen([gobridge_bin(), "queue", "get", tag, "--timeout", "10"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)  # asleep on the empty queue
        os.truncate(_shm.path(tag), size)
        if size:
            with mapped(tag, size) as m:
                struct.pack_into("<I", m, Q.Q_RING, 5000)  # a record at head 0, 5000 bytes
                struct.pack_into("<Q", m, Q.Q_TAIL, 5008)
                struct.pack_into("<Q", m, Q.Q_PUTSEQ, 1)
        out, err = get.communicate(timeout=10)
        r = subprocess.CompletedProcess(get.args, get.returncode, out, err)
        no_crash(r)
        assert r.returncode == 1 and "truncated" in r.stderr, r
    finally:
        q.close()


# -- item 3: a record that claims 4 GiB ----------------------------------------------

@pytest.mark.parametrize("tail_too", [False, True])
def test_cli_get_never_allocates_what_a_record_claims(tag: str, tail_too: bool) -> None:
    q = gobridge.Queue(name=tag, capacity=256)
    try:
        q.put("hello")
        with mapped(tag, Q.Q_RING + 256) as m:
            struct.pack_into("<I", m, Q.Q_RING, 0xFFFFFFF0)
            if tail_too:
                struct.pack_into("<Q", m, Q.Q_TAIL, 1 << 40)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        r = gb("queue", "get", tag, "--timeout", "1")
        no_crash(r)
        assert r.returncode == 1 and "invalid shared object layout" in r.stderr, r
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        assert max(rss, before) < 512 << 10, f"a child reached {rss} KiB"
        with pytest.raises(O.LayoutError):  # Python says the same
            q.get_nowait()
    finally:
        q.close()


# -- item 4: `gobridge queue stat` on a 64-byte queue ----------------------------------

@pytest.mark.parametrize("marked", [False, True])
def test_cli_stat_of_a_short_segment(tag: str, marked: bool) -> None:
    """The old command: panic: runtime error: index out of range [72] with length 64."""
    p = _shm.path(tag)
    with open(p, "wb") as f:
        f.write(struct.pack("<IBBBB", O.MAGIC, O.VERSION, O.KIND_QUEUE, 0, 0) + bytes(56))
    try:
        if marked:
            os.setxattr(p, _shm.XATTR_KIND, b"queue")
        r = gb("queue", "stat", tag)
        no_crash(r)
        assert r.returncode == 1 and "invalid shared object layout" in r.stderr, r
    finally:
        os.unlink(p)


# -- item 5: `gobridge queue put --keep` on someone else's data --------------------------

def test_cli_put_keep_never_writes_foreign_data(tag: str) -> None:
    data = b"someone else's data" + os.urandom(2 << 20)
    p = _shm.path(tag)
    with open(p, "wb") as f:
        f.write(data)
    try:
        r = gb("queue", "put", tag, "--keep", "1")
        no_crash(r)
        assert r.returncode == 1 and "not a gobridge shared object" in r.stderr, r
        with open(p, "rb") as f:
            assert f.read() == data, "the command wrote over it"
    finally:
        os.unlink(p)


def test_go_made_queue_opened_by_python_and_back(tag: str) -> None:
    """The creator writes the header before the name exists, in both
    languages: each opens what the other made at once."""
    assert gb("queue", "put", tag, "--keep", "--maxsize", "3", '"from go"').returncode == 0
    try:
        q = gobridge.Queue(name=tag)
        try:
            assert q.get(timeout=1) == "from go" and q._maxsize == 3
        finally:
            q.close()
    finally:
        assert gb("shm", "rm", tag).returncode == 0
    q = gobridge.Queue(2, name=tag)
    try:
        q.put("from python")
        r = gb("queue", "get", tag, "--timeout", "1")
        assert r.stdout.strip() == '"from python"', r
    finally:
        q.close()


# -- item 10: a stopped holder in one language, timeouts in the other ---------------------

def _stopped(argv: List[str]) -> Proc:
    p = Proc(argv)
    p.wait_for(lambda ls: "locked" in ls)
    p.p.send_signal(signal.SIGSTOP)
    return p


def _release(p: Proc) -> None:
    p.p.send_signal(signal.SIGCONT)
    p.p.kill()
    p.stop()


def test_python_timeouts_with_a_stopped_go_holder(tag: str) -> None:
    q = gobridge.Queue(name=tag)
    s = gobridge.Semaphore(0, name=tag + "-s")
    holders = []
    try:
        q.put("waiting")
        holders = [_stopped([_peer[0], "hold-bytes", tag]), _stopped([_peer[0], "hold-bytes", tag + "-s"])]
        for what, call, exc in (("put", lambda: q.put("x", timeout=0.3), queue.Full),
                                ("get", lambda: q.get(timeout=0.3), queue.Empty),
                                ("semaphore", lambda: s.acquire(timeout=0.3), None)):
            t0 = time.monotonic()
            if exc is None:
                assert call() is False
            else:
                with pytest.raises(exc):
                    call()
            took = time.monotonic() - t0
            assert took < 3, f"{what}(timeout=0.3) returned after {took:.2f}s"
    finally:
        for h in holders:
            _release(h)
    try:
        assert q.get(timeout=5) == "waiting"
    finally:
        q.close()
        s.close()


HOLDER = """
import sys, time, gobridge
q = gobridge.Queue(name=sys.argv[1])
q._h.lock_get(); q._h.lock()
print("locked", flush=True)
time.sleep(3600)
"""


def test_cli_timeouts_with_a_stopped_python_holder(tag: str) -> None:
    """The old command: still blocked at 3 s; one put returned after 8.3 s."""
    q = gobridge.Queue(name=tag)
    h = None
    try:
        q.put("waiting")
        h = _stopped([sys.executable, "-c", HOLDER, tag])
        for args, word in ((["put", tag, "1"], "full"), (["get", tag], "empty"), (["stat", tag], "held")):
            t0 = time.monotonic()
            r = gb("queue", *args, "--timeout", "0.5", timeout=10)
            took = time.monotonic() - t0
            assert r.returncode == 1 and word in r.stderr, r
            assert took < 4, f"queue {args[0]} --timeout 0.5 returned after {took:.2f}s"
    finally:
        if h is not None:
            _release(h)
    try:
        assert q.get(timeout=5) == "waiting"
    finally:
        q.close()


# -- item 11: a name held by an shm: listener ------------------------------------------------

def _wait_exists(tag: str, p: "subprocess.Popen[str]") -> None:
    deadline = time.monotonic() + 20
    while not os.path.lexists("/dev/shm/" + tag):
        assert p.poll() is None, "listener exited"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_objects_on_the_name_of_a_go_shm_listener(tag: str) -> None:
    """The old opener took byte 0's lock, the listener's liveness lock, and
    waited forever."""
    lst = subprocess.Popen([gobridge_bin(), "echo", "shm:" + tag], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        _wait_exists(tag, lst)
        for open_ in (lambda: gobridge.Queue(name=tag), lambda: gobridge.Value("q", 0, name=tag),
                      lambda: gobridge.Lock(name=tag), lambda: gobridge.Semaphore(1, name=tag),
                      lambda: gobridge.BoundedSemaphore(1, name=tag), lambda: gobridge.Event(name=tag),
                      lambda: gobridge.Condition(name=tag), lambda: gobridge.Barrier(2, name=tag)):
            t0 = time.monotonic()
            with pytest.raises((O.LayoutError, _shm.NotRegularError)):
                open_()
            assert time.monotonic() - t0 < 1
        t0 = time.monotonic()
        r = gb("queue", "stat", tag, timeout=10)
        assert r.returncode == 1 and time.monotonic() - t0 < 2, r
        no_crash(r)
    finally:
        lst.terminate()
        lst.communicate(timeout=10)


def test_cli_on_the_name_of_a_python_shm_listener(tag: str) -> None:
    with gobridge.Listener("shm:" + tag):
        for args in (["stat", tag], ["get", tag, "--timeout", "0.2"], ["put", tag, "1", "--keep"]):
            t0 = time.monotonic()
            r = gb("queue", *args, timeout=10)
            no_crash(r)
            assert r.returncode == 1 and time.monotonic() - t0 < 2, r
            assert "holds a conn-listen" in r.stderr or "not a regular file" in r.stderr \
                or "is a socket" in r.stderr, r


# -- item 15: one name rule ---------------------------------------------------------------

def test_non_utf8_names_refused_by_both(tag: str) -> None:
    raw = (tag + "-\xff").encode("latin-1")  # a byte that is never UTF-8
    r = subprocess.run([gobridge_bin().encode(), b"queue", b"put", raw, b"--keep", b"1"], capture_output=True,
                       timeout=30)
    assert r.returncode == 1 and b"not valid UTF-8" in r.stderr, r
    with pytest.raises(_shm.ShmNameError, match="not valid UTF-8"):
        gobridge.Queue(name=os.fsdecode(raw))
    assert not os.path.lexists(b"/dev/shm/" + raw)
