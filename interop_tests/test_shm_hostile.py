"""A hostile process of the same user against shm: listeners and dialers, Go
and Python (issue 11 items 1, 2, 9, 12).

The attacker speaks the handshake by hand (shm_hostile.py): wrong requests
and memories, C changed while the listener validates it, dialers that never
send, truncation of the memory, impossible ring indices and garbage flags in
a live connection, connections dropped without close. The listener is the
Go command (`gobridge echo shm:NAME`) or the Python one (shm_conn_peer.py
serve-echo-many), each a process of its own: it must neither die nor spin,
and must go on serving everybody else.
"""
from __future__ import annotations

import errno
import json
import mmap
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterator, List

import pytest

import gobridge
from gobridge._transport import shm as _shmconn
from shm_hostile import HDR, HEAD, RCLOSED, RING0, RING1, TAIL, WCLOSED, HostileListener, Peer, hostile_dial
from shm_support import unique_tag

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peers", "shm_conn_peer.py")
CAP = 1 << 20


def gobridge_bin() -> str:
    return os.environ.get("GOBRIDGE_BIN") or os.path.join(os.path.dirname(HERE), "bin", "gobridge")


class Server:
    """A listener process on a fresh shm: name."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.name = unique_tag("hostile")
        self.addr = "shm:" + self.name
        self.err = tempfile.TemporaryFile()
        argv = [gobridge_bin(), "echo", self.addr] if lang == "go" else [sys.executable, PEER, "serve-echo-many", self.addr]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 20
        while not os.path.exists("/dev/shm/" + self.name):
            assert self.proc.poll() is None, f"{lang} server exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, f"{lang} server did not listen"
            time.sleep(0.01)

    def alive(self) -> None:
        assert self.proc.poll() is None, f"the {self.lang} server died: {self.stderr()}"

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def cpu(self) -> float:
        """User + system CPU seconds the server has used."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def serving(self) -> None:
        """A real client gets its echo."""
        self.alive()
        try:
            with gobridge.Client(self.addr, timeout=10) as c:
                c.send({"ping": 1})
                assert c.poll(10)
                assert c.recv() == {"ping": 1}
        except (OSError, AssertionError) as e:
            raise AssertionError(f"the {self.lang} server does not serve ({e!r}); its stderr: {self.stderr()}") from e

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        assert not os.path.exists("/dev/shm/" + self.name), "the listener socket was left behind"


@pytest.fixture(params=["go", "python"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    s = Server(request.param)
    yield s
    s.stop()


@pytest.fixture
def peers() -> Iterator[List[Peer]]:
    made: List[Peer] = []
    yield made
    for p in made:
        p.close()


def wait_until(cond, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _set_q(off: int, v: int):  # type: ignore[no-untyped-def]
    return lambda mm: struct.pack_into("<Q", mm, off, v)


def _set_w(off: int, v: int):  # type: ignore[no-untyped-def]
    return lambda mm: struct.pack_into("<I", mm, off, v)


BAD = {
    "no seals": dict(seals=0),
    "only the shrink seal": dict(seals=2),  # F_SEAL_SHRINK
    "size disagrees with C": dict(size=HDR + 2 * CAP + 4096),
    "C not a power of two": dict(cap=3 << 18),
    "C too large": dict(cap=1 << 31, size=HDR + 2 * CAP),
    "version 1 magic": dict(magic=b"GBSHMCN1"),
    "version 1": dict(version=1),
    "header size": dict(hdr=8192),
    "bytes buffered": dict(prepare=_set_q(RING0 + HEAD, 5)),
    "impossible indices": dict(prepare=_set_q(RING1 + HEAD, 1 << 40)),
    "closed flag": dict(prepare=_set_w(RING0 + WCLOSED, 7)),
    "no descriptor": dict(no_fd=True),
    "two descriptors": dict(extra_fds=1),
    "nine descriptors": dict(extra_fds=8),
    "garbage bytes": dict(message=b"GET / HTTP/1.0\r\n"),
    "short request": dict(message=b"GBSHM"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_refused(server: Server, peers: List[Peer], case: str) -> None:
    """Every malformed request or memory is refused (end of stream instead
    of the reply); the listener keeps serving."""
    p = hostile_dial(server.name, **BAD[case])  # type: ignore[arg-type]
    peers.append(p)
    assert p.reply == b"", f"{case}: replied {p.reply!r}"
    assert wait_until(p.sock_closed)
    server.serving()


def test_pipe_and_plain_files_refused(server: Server, peers: List[Peer], tmp_path) -> None:  # type: ignore[no-untyped-def]
    r, w = os.pipe()
    plain = os.open(tmp_path / "plain", os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(plain, HDR + 2 * CAP)
    try:
        for fd in (r, plain):
            p = hostile_dial(server.name, fds=[fd])
            peers.append(p)
            assert p.reply == b""
        server.serving()
    finally:
        for fd in (r, w, plain):
            os.close(fd)


def test_well_formed_by_hand(server: Server, peers: List[Peer]) -> None:
    p = hostile_dial(server.name)
    peers.append(p)
    assert p.accepted
    c = p.connection(server.name)
    c.send([1, "by hand"])
    assert c.poll(10) and c.recv() == [1, "by hand"]


def test_capacity_changed_after_sending(server: Server, peers: List[Peer]) -> None:
    """C flips between a valid and an absurd value while the listener checks
    it: the listener uses one validated copy (or refuses), never dies."""
    accepted = 0
    for _ in range(60):
        stop = threading.Event()
        flipper: List[threading.Thread] = []

        def flip(mm: mmap.mmap) -> None:
            def run() -> None:
                i = 0
                while not stop.is_set():
                    struct.pack_into("<Q", mm, 16, (1 << 40) if i & 1 else CAP)
                    i += 1
            flipper.append(threading.Thread(target=run, daemon=True))
            flipper[0].start()

        p = hostile_dial(server.name, prepare=flip)
        stop.set()
        flipper[0].join(5)
        peers.append(p)
        if p.accepted:
            accepted += 1
            struct.pack_into("<Q", p.mm, 16, CAP)  # type: ignore[arg-type]
            c = p.connection(server.name)
            c.send(b"validated")
            assert c.poll(10) and c.recv() == b"validated"
            p.close()
    server.serving()


def test_stalled_dialers(server: Server, peers: List[Peer]) -> None:
    """Dialers that connect and never send delay nobody."""
    for _ in range(3):
        peers.append(hostile_dial(server.name, raw=True))
    time.sleep(0.05)
    start = time.monotonic()
    server.serving()
    assert time.monotonic() - start < 1.5


def test_truncation_refused(server: Server, peers: List[Peer]) -> None:
    """Neither the memfd that was passed nor the listener's own copy can be
    truncated; the old /dev/shm/NAME.1 target does not exist; the server
    (Go or Python) survives and serves the very connection."""
    p = hostile_dial(server.name)
    peers.append(p)
    assert p.accepted
    for size in (HDR + CAP, 0, HDR + 4 * CAP):
        with pytest.raises(PermissionError) as e:
            os.ftruncate(p.memfd, size)
        assert e.value.errno == errno.EPERM
    with open(f"/proc/self/fd/{p.memfd}", "r+b") as f:
        with pytest.raises(PermissionError):
            f.truncate(4096)
    def memfds() -> List[str]:
        out = []
        for n in os.listdir(f"/proc/{server.proc.pid}/fd"):
            try:
                if "memfd:" in os.readlink(f"/proc/{server.proc.pid}/fd/{n}"):
                    out.append(n)
            except FileNotFoundError:
                pass  # closed meanwhile (Go closes the passed memfd once it has mapped it)
        return out

    held = memfds()
    for n in held:  # the Python server keeps its mapping's descriptor
        try:
            fd = os.open(f"/proc/{server.proc.pid}/fd/{n}", os.O_RDWR)
        except FileNotFoundError:
            continue  # closed between the listing and the open
        try:
            with pytest.raises(PermissionError):
                os.ftruncate(fd, 4096)
        finally:
            os.close(fd)
    assert server.lang == "go" or held, "no memfd found in the Python server"
    assert not os.path.exists(f"/dev/shm/{server.name}.1")
    c = p.connection(server.name)
    c.send(b"still here")
    assert c.poll(10) and c.recv() == b"still here"
    server.serving()


CORRUPT = {
    "head 2^40 ahead": lambda p: p.set_q(RING0 + HEAD, p.q(RING0 + TAIL) + (1 << 40)),
    "head behind tail": lambda p: p.set_q(RING0 + HEAD, p.q(RING0 + TAIL) - 1),
    "tail past head": lambda p: p.set_q(RING1 + TAIL, p.q(RING1 + HEAD) + 100000),
    "garbage wclosed": lambda p: p.set_w(RING0 + WCLOSED, 0xDEADBEEF),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_indices(server: Server, peers: List[Peer], case: str) -> None:
    """Impossible indices (or a garbage flag) written into a live
    connection: the server ends that connection within a bounded time,
    tells the peer, makes up no message, does not spin, and keeps serving."""
    p = hostile_dial(server.name)
    peers.append(p)
    assert p.accepted
    c = p.connection(server.name)
    c.send(b"honest")
    assert c.poll(10) and c.recv() == b"honest"
    head1 = p.q(RING1 + HEAD)
    cpu0 = server.cpu()
    CORRUPT[case](p)
    if case == "tail past head":
        # the echo of a message larger than the ring must load the tail
        threading.Thread(target=lambda: _quiet(lambda: c.send(b"x" * (2 * CAP))), daemon=True).start()
    # (a reader asleep on its futex sees the rest at the end of its slice)
    assert wait_until(lambda: p.w(RING1 + WCLOSED) != 0, 3), "the server did not end the connection"
    assert wait_until(p.sock_closed, 3), "the server did not close or shut down its socket"
    if case != "tail past head":
        assert p.q(RING1 + HEAD) == head1, "the server sent something made up"
    time.sleep(0.5)
    assert server.cpu() - cpu0 < 0.3, "the server spins"
    if server.lang == "go":
        assert server.stderr().count("\n") <= 3, server.stderr()
    server.serving()


def _quiet(fn) -> None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except OSError:
        pass


@pytest.fixture
def hostile_listener() -> Iterator[HostileListener]:
    hl = HostileListener(unique_tag("hl"))
    yield hl
    hl.close()


def _accept(hl: HostileListener, reply: bool = True):  # type: ignore[no-untyped-def]
    box: dict = {}

    def run() -> None:
        try:
            box["peer"] = hl.accept(reply)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def get() -> Peer:
        t.join(10)
        if "error" in box:
            raise box["error"]
        return box["peer"]
    return get


@pytest.mark.parametrize("case", ["head 2^40 ahead", "head behind tail", "tail past head"])
def test_python_dialer_vs_corrupt_listener(hostile_listener: HostileListener, case: str) -> None:
    """A Python client whose listener corrupts the rings gets CorruptError
    (not a made-up b'', not a hang), for receives and sends alike."""
    get = _accept(hostile_listener)
    c = gobridge.Client("shm:" + hostile_listener.name, timeout=10)
    p = get()
    try:
        honest = p.connection(hostile_listener.name)
        honest.send(b"first")
        assert c.recv() == b"first"
        if case == "head 2^40 ahead":
            p.set_q(RING1 + HEAD, p.q(RING1 + TAIL) + (1 << 40))
        elif case == "head behind tail":
            p.set_q(RING1 + HEAD, p.q(RING1 + TAIL) - 1)
        else:
            p.set_q(RING0 + TAIL, p.q(RING0 + HEAD) + 100000)
        start = time.monotonic()
        with pytest.raises(gobridge.CorruptError) as e:
            if case == "tail past head":
                c.send_bytes(b"y" * (2 * CAP))
            else:
                c.recv_bytes()
        assert time.monotonic() - start < 3
        assert e.value.errno == errno.EPROTO and "ring" in str(e.value)
        assert isinstance(e.value, gobridge.ProtocolError) and isinstance(e.value, OSError)
        with pytest.raises(gobridge.CorruptError):
            c.recv()
        with pytest.raises(gobridge.CorruptError):
            c.send(1)
        assert c.poll(0) and not c.readable and not c.writable
        assert p.w(RING0 + WCLOSED) != 0 and p.w(RING1 + RCLOSED) != 0, "the listener was not told"
    finally:
        c.close()
        p.close()


def test_python_dialer_refused_or_ignored(hostile_listener: HostileListener) -> None:
    get = _accept(hostile_listener, reply=False)
    with pytest.raises(TimeoutError):
        gobridge.Client("shm:" + hostile_listener.name, timeout=0.3)
    get().close()
    get = _accept(hostile_listener, reply=False)
    threading.Thread(target=lambda: get().close(), daemon=True).start()
    with pytest.raises(ConnectionRefusedError):
        gobridge.Client("shm:" + hostile_listener.name, timeout=10)


def test_index_wrap(server: Server) -> None:
    """A Python dialer whose rings start just below 2^64 carries small and
    streamed messages across the wrap, to and from a Go or Python listener."""
    start = 2**64 - 1000
    c = _shmconn.dial(server.name, timeout=10, start=start)
    try:
        big = bytes(range(256)) * (3 * CAP // 256)  # larger than the ring: streamed
        for i in range(60):
            # 94 bytes are a 96-byte msgpack bin, a 100-byte frame: the tenth
            # frame each way ends exactly at 2^64, the one-store fast path
            msg = big if i == 30 else bytes([i]) * 94
            c.send(msg)
            assert c.poll(10) and c.recv() == msg, i
        assert c._handle._out._head < start and c._handle._in._tail < start, "the indices did not wrap"
    finally:
        c.close()


def test_dropped_connections(server: Server) -> None:
    """100 connections dropped without close (and collected): the client's
    descriptors and mappings come back to where they were, and so do the
    server's, which saw each peer go."""
    server.serving()
    base = server.fds()
    out = subprocess.run([sys.executable, PEER, "drop", server.addr, "100"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.splitlines()[-1])
    assert r["fds_after"] == r["fds_before"] and r["maps_after"] == 0, r
    assert wait_until(lambda: server.fds() <= base, 10), f"server descriptors {server.fds()}, were {base}"
    server.serving()


def test_lying_frame_header_allocates_little(hostile_listener: HostileListener) -> None:
    """A frame header that claims 60 MiB followed by 10 bytes and the end:
    the Python reader's memory follows the bytes that arrive (SPEC 2.1), not
    the header, and the frame is reported cut, never delivered."""
    import tracemalloc

    get = _accept(hostile_listener)
    c = gobridge.Client("shm:" + hostile_listener.name, timeout=10)
    p = get()
    try:
        honest = p.connection(hostile_listener.name)
        honest._write(b"", memoryview(struct.pack("!i", 60 << 20) + b"0123456789"))
        honest.close()
        tracemalloc.start()
        try:
            with pytest.raises(gobridge.ProtocolError, match="end of file during message"):
                c.recv_bytes()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 << 20, f"{peak} bytes for a frame that brought 10"
    finally:
        c.close()
        p.close()


def test_full_handshake_queue_does_not_spin(peers: List[Peer]) -> None:
    """With as many stalled dialers as handshake places, a Python accept()
    waits without burning CPU (the listening socket stays readable; it is
    not watched until a place frees)."""
    import resource

    name = unique_tag("full")
    with gobridge.Listener("shm:" + name) as l:
        for _ in range(_shmconn.BACKLOG):
            peers.append(hostile_dial(name, raw=True))
        with pytest.raises(TimeoutError):
            l.accept(timeout=0.2)  # takes them all into its handshake places
        for _ in range(2):  # and these wait in the socket's backlog
            peers.append(hostile_dial(name, raw=True))
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        with pytest.raises(TimeoutError):
            l.accept(timeout=1.0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        assert cpu < 0.3, f"accept used {cpu:.2f} s of CPU in 1 s"


def test_listener_cannot_truncate_python_dialer(hostile_listener: HostileListener) -> None:
    """The memory a Python dialer passes is sealed: the listener cannot
    shrink or grow it, so the dialer cannot be made to fault."""
    get = _accept(hostile_listener)
    c = gobridge.Client("shm:" + hostile_listener.name, timeout=10)
    p = get()
    try:
        for size in (HDR, 0, HDR + 4 * CAP):
            with pytest.raises(PermissionError):
                os.ftruncate(p.memfd, size)
        honest = p.connection(hostile_listener.name)
        honest.send(b"after")
        assert c.poll(10) and c.recv() == b"after"
        c.send(b"back")
        assert honest.poll(10) and honest.recv() == b"back"
    finally:
        c.close()
        p.close()
