"""fifo: connections and plain named pipes, Python to Python (SPEC 6.6).

Real FIFOs and real processes; the Go side of the same cases is in
bridge/fifo_test.go and interop_tests/fifo_interop_test.go.
"""
import errno
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

import gobridge
from gobridge import _fifo

from gbtest_support import in_thread

CHILD_TIMEOUT = 30


def child(code, *args):
    """Start a Python child running code with args in sys.argv[1:]."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_mkfifo_mode_and_refusals(sockdir):
    p = os.path.join(sockdir, "f")
    assert gobridge.mkfifo(p) is True
    st = os.lstat(p)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077 == 0
    assert gobridge.mkfifo(p) is False  # ours already: kept
    regular = os.path.join(sockdir, "r")
    open(regular, "w").close()
    link = os.path.join(sockdir, "l")
    os.symlink(p, link)
    for bad in (regular, link):
        with pytest.raises(OSError) as e:
            gobridge.mkfifo(bad)
        assert e.value.errno == errno.EADDRINUSE
    assert os.path.islink(link)  # left alone


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a FIFO owned by another user")
def test_fifo_of_another_user_is_refused(sockdir):
    p = os.path.join(sockdir, "f")
    os.mkfifo(p, 0o666)
    os.chown(p, 65534, 65534)
    for call in (lambda: gobridge.mkfifo(p), lambda: gobridge.Listener("fifo:" + p),
                 lambda: gobridge.open_fifo(p, "w", timeout=0.2)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EADDRINUSE


def test_connections_between_processes(sockdir):
    addr = "fifo:" + os.path.join(sockdir, "f")
    with gobridge.Listener(addr) as listener:
        with pytest.raises(OSError) as e:
            gobridge.Listener(addr)
        assert e.value.errno == errno.EADDRINUSE
        kids = [child(
            "import gobridge, sys\n"
            "with gobridge.Client(sys.argv[1], timeout=20) as c:\n"
            "    c.send(['hello', int(sys.argv[2])])\n"
            "    c.send_bytes(bytes([int(sys.argv[2])]) * 300000)\n"
            "    print(c.recv())\n",
            addr, str(i)) for i in range(3)]
        for _ in kids:
            with listener.accept() as c:
                assert c.poll(CHILD_TIMEOUT)
                hello, i = c.recv()
                assert hello == "hello"
                big = c.recv_bytes()
                assert big == bytes([i]) * 300000
                c.send({"you": i})
        outs = sorted(k.communicate(timeout=CHILD_TIMEOUT)[0] for k in kids)
        assert outs == [f"{{'you': {i}}}\n" for i in range(3)]
        assert all(k.returncode == 0 for k in kids)
        assert os.listdir(sockdir) == ["f"]  # the pairs are gone once open
    assert os.listdir(sockdir) == []


def test_client_without_listener(sockdir):
    with pytest.raises(FileNotFoundError):
        gobridge.Client("fifo:" + os.path.join(sockdir, "none"))
    p = os.path.join(sockdir, "f")
    gobridge.mkfifo(p)  # a FIFO nobody listens on: waited for, up to timeout
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        gobridge.Client("fifo:" + p, timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 5
    os.unlink(p)
    assert os.listdir(sockdir) == []


def test_client_fails_when_listener_dies_after_request(sockdir):
    """The listener reads the request and dies before opening the pair."""
    p = os.path.join(sockdir, "f")
    gobridge.mkfifo(p)
    rfd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    join = in_thread(lambda: gobridge.Client("fifo:" + p, timeout=20))
    deadline = time.monotonic() + 10
    while True:
        try:
            if os.read(rfd, 4096):
                break
        except BlockingIOError:
            pass
        assert time.monotonic() < deadline, "no request arrived"
        time.sleep(0.001)
    os.close(rfd)
    with pytest.raises(gobridge.PeerGoneError) as e:
        join(10)  # raises AssertionError if the client is still waiting
    assert isinstance(e.value, ConnectionResetError)
    os.unlink(p)
    assert os.listdir(sockdir) == []


def test_plain_fifo_one_way_eof_and_misuse(sockdir):
    p = os.path.join(sockdir, "f")
    gobridge.mkfifo(p)
    # An anchor writer, held until every writer process has exited, keeps the
    # FIFO open for writers that start late; the reader's EOF comes when it,
    # the last writer, closes.
    anchor = []
    opener = threading.Thread(target=lambda: anchor.append(gobridge.open_fifo(p, "w", timeout=20)))
    opener.start()
    writers = [child(
        "import gobridge, sys\n"
        "with gobridge.open_fifo(sys.argv[1], 'w', timeout=20) as w:\n"
        "    for i in range(50):\n"
        "        w.send_bytes(bytes([int(sys.argv[2])]) * 100000)\n",
        p, str(i)) for i in range(4)]
    with gobridge.open_fifo(p, "r", timeout=CHILD_TIMEOUT) as r:
        opener.join()

        def close_anchor():
            for w in writers:
                w.wait(CHILD_TIMEOUT)
            anchor[0].close()

        threading.Thread(target=close_anchor).start()
        with pytest.raises(OSError, match="connection is read-only"):
            r.send("x")
        counts = {}
        while True:
            try:
                b = r.recv_bytes()
            except EOFError:  # every writer has closed
                break
            assert len(b) == 100000 and b == b[:1] * len(b), "frames interleaved"
            counts[b[0]] = counts.get(b[0], 0) + 1
    assert counts == {i: 50 for i in range(4)}
    for w in writers:
        assert w.wait(CHILD_TIMEOUT) == 0


def test_plain_fifo_writer_misuse_broken_pipe_and_timeouts(sockdir):
    p = os.path.join(sockdir, "f")
    gobridge.mkfifo(p)
    with pytest.raises(TimeoutError):
        gobridge.open_fifo(p, "w", timeout=0.2)  # no reader
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        gobridge.open_fifo(p, "r", timeout=0.2)  # no writer
    assert time.monotonic() - t0 < 5
    with pytest.raises(ValueError):
        gobridge.open_fifo(p, "rw")
    reader = child(
        "import gobridge, sys\n"
        "r = gobridge.open_fifo(sys.argv[1], 'r', timeout=20)\n"
        "print(r.recv(), flush=True)\n",
        p)
    with gobridge.open_fifo(p, "w", timeout=CHILD_TIMEOUT) as w:
        with pytest.raises(OSError, match="connection is write-only"):
            w.recv()
        w.send("one")
        assert reader.stdout.readline() == "one\n"
        assert reader.wait(CHILD_TIMEOUT) == 0
        with pytest.raises(BrokenPipeError):  # SIGPIPE is not what ends us
            for _ in range(100):
                w.send_bytes(b"x" * 1000)


def test_listener_close_removes_only_its_fifo(sockdir):
    p = os.path.join(sockdir, "f")
    listener = gobridge.Listener("fifo:" + p)
    os.unlink(p)
    gobridge.mkfifo(p)  # someone else's FIFO now stands at the path
    listener.close()
    listener.close()  # idempotent
    assert os.path.exists(p)
    os.unlink(p)


def test_request_with_a_foreign_name_is_skipped(sockdir):
    p = os.path.join(sockdir, "f")
    with gobridge.Listener("fifo:" + p) as listener:
        fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)
        for payload in (gobridge.encode("../etc/passwd"), gobridge.encode(7), b"\xc1"):
            os.write(fd, len(payload).to_bytes(4, "big") + payload)
        os.close(fd)
        kid = child(
            "import gobridge, sys\n"
            "with gobridge.Client(sys.argv[1], timeout=20) as c:\n"
            "    c.send('after the junk')\n",
            "fifo:" + p)
        with listener.accept() as c:
            assert c.recv() == "after the junk"
        assert kid.wait(CHILD_TIMEOUT) == 0
    assert os.listdir(sockdir) == []
    assert _fifo.PIPE_BUF == 4096
