"""fifo: connections and plain named pipes, Python to Python (SPEC 6.6).

Real FIFOs and real processes; the Go side of the same cases is in
bridge/fifo_test.go and interop_tests/fifo_interop_test.go.
"""
import errno
import os
import random
import secrets
import select
import stat
import subprocess
import sys
import threading
import time

import pytest

import gobridge
from gobridge._transport import fifo as _fifo

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


# --- a hostile same-user process against the listener (issue 11) -------------


def raw_write(path, data):
    """Write data into the FIFO with plain write(2)s, no lock, no framing of ours."""
    fd = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def request_frame(name):
    payload = gobridge.encode(name)
    return len(payload).to_bytes(4, "big") + payload


def frame(payload):
    return len(payload).to_bytes(4, "big") + payload


def echo_through(listener, value, bound=2.0):
    """A Client in a thread sends value; accept gets it within bound seconds; the reply comes back."""
    def dial():
        with gobridge.Client(listener.address, timeout=10) as c:
            c.send(value)
            return c.recv()

    join = in_thread(dial)
    t0 = time.monotonic()
    with listener.accept(timeout=10) as c:
        took = time.monotonic() - t0
        assert c.recv() == value
        c.send(value)
    assert join(10) == value
    assert took < bound, f"accept took {took:.2f}s"


GARBAGE = {
    "negative length": b"\xff\xff\xff\xfe",
    "huge 8-byte length": b"\xff\xff\xff\xff\x7f\xff\xff\xff\xff\xff\xff\xff",
    "frame too large": b"\x7f\xff\xff\xff\x01\x02",
    "non-str payload": frame(b"\x07"),
    "str with a slash": frame(gobridge.encode("f.1/../../x.0123456789ab")),
    "a plain pipe's message": frame(gobridge.encode("hello")),
    "random bytes": bytes(random.Random(5).getrandbits(8) for _ in range(200 * 1024)),
    "a request cut short": request_frame("f.99.0123456789ab")[:9],
}


def test_listener_skips_garbage(sockdir):
    p = os.path.join(sockdir, "f")
    with gobridge.Listener("fifo:" + p) as listener:
        for what, garbage in GARBAGE.items():
            # In a thread: more than the pipe holds waits for accept to read
            # it, and none of it makes a connection.
            writer = threading.Thread(target=raw_write, args=(p, garbage), daemon=True)
            writer.start()
            deadline = time.monotonic() + 10
            while writer.is_alive():
                with pytest.raises(TimeoutError):
                    listener.accept(timeout=0.05)
                assert time.monotonic() < deadline, "the garbage is not being read"
            echo_through(listener, what)
    assert os.listdir(sockdir) == []


def stall_dialer(path, pair, down, keep):
    """Play a dialer that posts a request and stops: with pair it makes its
    pair, with down it also opens .down for reading (kept in keep)."""
    name = f"{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(6)}"
    base = os.path.join(os.path.dirname(path), name)
    if pair:
        for suffix in (".up", ".down"):
            os.mkfifo(base + suffix, 0o600)
    if down:
        keep.append(os.open(base + ".down", os.O_RDONLY | os.O_NONBLOCK))
    raw_write(path, request_frame(name))
    return base


def test_stalled_dialers_hold_up_no_one(sockdir):
    p = os.path.join(sockdir, "f")
    keep = []
    try:
        with gobridge.Listener("fifo:" + p) as listener:
            listener._impl._handshake_timeout = 0.7
            t0 = time.monotonic()
            stalled = [
                stall_dialer(p, True, True, keep),    # opens .down, never .up
                stall_dialer(p, True, True, keep),    # a second one
                stall_dialer(p, False, False, keep),  # posts and opens nothing
                stall_dialer(p, True, False, keep),   # makes its pair, opens nothing
            ]
            for i in range(3):
                echo_through(listener, f"legit {i}")
            # The stalled handshakes give up at their deadline and remove the pairs.
            while any(os.path.lexists(b + s) for b in stalled for s in (".up", ".down")):
                assert time.monotonic() - t0 < 0.7 + 3, os.listdir(sockdir)
                time.sleep(0.005)
        assert os.listdir(sockdir) == []
    finally:
        for fd in keep:
            os.close(fd)


def test_close_ends_handshakes(sockdir):
    p = os.path.join(sockdir, "f")
    keep = []
    try:
        listener = gobridge.Listener("fifo:" + p)
        base = stall_dialer(p, True, True, keep)
        with pytest.raises(TimeoutError):
            listener.accept(timeout=0.3)
        assert os.path.lexists(base + ".down")  # its handshake is still running
        t0 = time.monotonic()
        listener.close()
        assert time.monotonic() - t0 < 1
        assert os.listdir(sockdir) == []
        with pytest.raises(OSError, match="closed"):
            listener.accept(timeout=0)
    finally:
        for fd in keep:
            os.close(fd)


def test_plain_pipe_refuses_a_listeners_rendezvous(sockdir):
    p = os.path.join(sockdir, "f")
    with gobridge.Listener("fifo:" + p) as listener:
        t0 = time.monotonic()
        for mode in ("w", "r"):
            with pytest.raises(OSError) as e:
                conn = gobridge.open_fifo(p, mode, timeout=5)
                if mode == "w":
                    conn.send(1)  # what used to hang on the listener's flock
                conn.close()
            assert e.value.errno == errno.EADDRINUSE, e.value
            assert "rendezvous" in str(e.value)
        assert time.monotonic() - t0 < 1
        echo_through(listener, "still serving")
    gobridge.mkfifo(p)  # with the listener gone it is a plain pipe again
    join = in_thread(lambda: gobridge.open_fifo(p, "r", timeout=10).close())
    gobridge.open_fifo(p, "w", timeout=10).close()
    join(10)
    os.unlink(p)


def read_request(rfd, deadline=10):
    """What a stand-in listener reads from its rendezvous FIFO: one request's name."""
    data = b""
    end = time.monotonic() + deadline
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        try:
            data += os.read(rfd, 4096)
        except BlockingIOError:
            pass
        assert time.monotonic() < end, "no request arrived"
        time.sleep(0.001)
    return gobridge.decode(data[4:])


def test_client_dropped_by_the_listener_is_refused(sockdir):
    """A listener that gives up on a handshake removes the pair; the client
    then fails at once with ConnectionRefusedError, not at its timeout."""
    p = os.path.join(sockdir, "f")
    gobridge.mkfifo(p)
    rfd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)  # the stand-in listener
    try:
        join = in_thread(lambda: gobridge.Client("fifo:" + p, timeout=20))
        base = os.path.join(sockdir, read_request(rfd))
        t0 = time.monotonic()
        os.unlink(base + ".up")
        try:
            os.unlink(base + ".down")
        except FileNotFoundError:
            pass  # the client saw .up go and removed its pair first: what it should do
        with pytest.raises(ConnectionRefusedError, match="dropped the handshake"):
            join(10)
        assert time.monotonic() - t0 < 2
    finally:
        os.close(rfd)
    os.unlink(p)
    assert os.listdir(sockdir) == []


# --- the request scanner (Go's twin: bridge/fifo_request_test.go) -------------


def scan_all(base, chunks):
    s = _fifo._RequestScanner(base)
    names = []
    for c in chunks:
        names += s.feed(c)
    assert len(s._buf) < _fifo.PIPE_BUF
    return names


BASES = [b"p", b"rendezvous-of-twenty", b"b" * 250]  # fixstr, str8 and str16 requests


def test_request_scanner_skips_garbage():
    good = "p.4242.0123456789ab"
    cases = dict(GARBAGE)
    cases.update({
        "other base": request_frame("q.4242.0123456789ab"),
        "uppercase hex": request_frame("p.4242.0123456789AB"),
        "pid of 11 digits": request_frame("p.12345678901.0123456789ab"),
        "no pid": request_frame("p..0123456789ab"),
        "str8 where fixstr fits": frame(b"\xd9" + bytes([len(good)]) + good.encode()),
        "length over PIPE_BUF": b"\x00\x00\x10\x01\xb3",
        "zeros": bytes(100),
    })
    for what, garbage in cases.items():
        assert scan_all(b"p", [garbage, request_frame(good)]) == [good.encode()], what


def test_request_scanner_finds_every_request():
    r = random.Random(7)
    for base in BASES:
        stream, want = bytearray(), []
        for _ in range(300):
            stream += bytes(r.getrandbits(8) for _ in range(r.randrange(300)))
            name = b"%s.%d.%012x" % (base, r.randrange(1, 1 << 22), r.getrandbits(48))
            want.append(name)
            stream += request_frame(name.decode())
        chunks = []
        while stream:
            k = 1 + r.randrange(20000)
            chunks.append(bytes(stream[:k]))
            del stream[:k]
        got = iter(scan_all(base, chunks))
        # Random garbage may hold a request by chance; the real ones must all be there, in order.
        assert all(any(n == w for n in got) for w in want), f"base of {len(base)} bytes"


def test_stalled_dialer_that_removes_its_pair(sockdir):
    """The listener's wait is tied to the FIFO it opened, not to the path: a
    stalled dialer that unlinks its pair cannot keep it (or close) waiting."""
    p = os.path.join(sockdir, "f")
    keep = []
    try:
        listener = gobridge.Listener("fifo:" + p)
        listener._impl._handshake_timeout = 0.3
        base = stall_dialer(p, True, True, keep)
        with pytest.raises(TimeoutError):
            listener.accept(timeout=0.1)
        for suffix in (".up", ".down"):
            os.unlink(base + suffix)
        time.sleep(0.5)  # past the handshake deadline
        base = stall_dialer(p, True, True, keep)
        with pytest.raises(TimeoutError):
            listener.accept(timeout=0.1)
        for suffix in (".up", ".down"):
            os.unlink(base + suffix)
        join = in_thread(listener.close)
        join(5)  # raises AssertionError while close still waits
        assert os.listdir(sockdir) == []
        echo = gobridge.Listener("fifo:" + p)  # the path is free again
        echo.close()
    finally:
        for fd in keep:
            os.close(fd)


def test_pending_handshakes_first_finished_first():
    """The reusable piece alone: start, take the first finished, close all."""
    discarded = []
    pending = _fifo._PendingHandshakes(2, discarded.append)
    release = threading.Event()

    def slow(deadline, stop):
        while time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.01)
        return None  # failed: its deadline passed

    def fast(deadline, stop):
        release.wait(5)
        return "fast"

    try:
        assert pending.start("slow", 0.3, slow) and pending.start("fast", 10, fast)
        assert pending.full() and not pending.start("third", 10, fast)
        release.set()
        t0 = time.monotonic()
        got = None
        while got is None:
            assert select.select([pending.fileno()], [], [], 5)[0], "no wake-up"
            got = pending.take()
        assert got == "fast"  # taken before slow, whose 0.3 s deadline is still running
        assert not pending.start("slow", 0.3, slow)  # that key is still running
        while not pending.start("slow", 0.3, slow):  # free again once its deadline passed
            assert time.monotonic() - t0 < 5
            time.sleep(0.01)
        assert pending.start("done", 10, lambda deadline, stop: "left")
        time.sleep(0.2)
    finally:
        t0 = time.monotonic()
        pending.close()  # ends slow at once, discards the value never taken
        assert time.monotonic() - t0 < 1
    assert discarded == ["left"]
    assert not pending.start("after", 10, fast)
    pending.close()  # idempotent
