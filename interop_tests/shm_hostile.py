"""The shm: handshake (wire/SPEC.md 11.3) spoken by hand, for tests that play
a broken or hostile peer against Go and Python listeners and dialers: the
Python twin of Go's internal/shmtest.

``hostile_dial`` builds a request that is wrong in a chosen way (or right);
``HostileListener`` takes a real dialer's memory without checking it. The
layout constants are repeated on purpose: the tests check the transport
against the SPEC, not against itself. A peer that was accepted can be
wrapped in a real :class:`gobridge._transport.shm.ShmConnection` for honest
traffic, while the test writes garbage straight into ``peer.mm``.
"""
from __future__ import annotations

import array
import fcntl
import mmap
import os
import socket
import struct
import time
from typing import Callable, List, Optional

from gobridge._transport import shm as _shmconn
from gobridge._internal.ring import Ring

HDR = 4096
RING0, RING1 = 64, 256  # control blocks: dialer -> listener, listener -> dialer
HEAD, WCLOSED, TAIL, RCLOSED, RWAIT = 0, 8, 64, 72, 128  # offsets in a control block
MAGIC, REQUEST, ACCEPT = b"GBSHMCN2", b"GBSHMRQ2", b"GBSHMOK2"
ALL_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


def shm_path(name: str) -> str:
    return "/dev/shm/" + name


def _connect(name: str, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    path = shm_path(name)
    if len(path) > 107:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            s.connect(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
    else:
        s.connect(path)
    return s


class Peer:
    """One end made by hand: its memory, socket, memfd and the reply."""

    def __init__(self, sock: socket.socket, mm: Optional[mmap.mmap], memfd: int, reply: bytes,
                 cap: int, dialer: bool) -> None:
        self.sock, self.mm, self.memfd, self.reply, self.cap, self.dialer = sock, mm, memfd, reply, cap, dialer
        self.conn: Optional[_shmconn.ShmConnection] = None

    @property
    def accepted(self) -> bool:
        return self.reply == ACCEPT

    def q(self, off: int) -> int:
        assert self.mm is not None
        return int(struct.unpack_from("<Q", self.mm, off)[0])

    def set_q(self, off: int, v: int) -> None:
        assert self.mm is not None
        struct.pack_into("<Q", self.mm, off, v & (2**64 - 1))

    def w(self, off: int) -> int:
        assert self.mm is not None
        return int(struct.unpack_from("<I", self.mm, off)[0])

    def set_w(self, off: int, v: int) -> None:
        assert self.mm is not None
        struct.pack_into("<I", self.mm, off, v)

    def connection(self, name: str) -> _shmconn.ShmConnection:
        """The real Python connection over this peer's memory and socket,
        for honest traffic (made once; it owns the socket afterwards)."""
        if self.conn is None:
            assert self.mm is not None
            r0 = Ring(self.mm, RING0, HDR, self.cap)
            r1 = Ring(self.mm, RING1, HDR + self.cap, self.cap)
            self.conn = _shmconn.ShmConnection(self.mm, self.sock, r0, r1, self.dialer, name, 64 << 20)
        return self.conn

    def sock_closed(self) -> bool:
        """Whether the other side closed or shut down its end of the socket."""
        try:
            return self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.mm = None
        elif self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.memfd >= 0:
            os.close(self.memfd)
            self.memfd = -1
        self.sock.close()


def hostile_dial(name: str, *, cap: int = 1 << 20, size: Optional[int] = None, magic: bytes = MAGIC,
                 version: int = 2, hdr: int = HDR, start: int = 0, seals: int = ALL_SEALS,
                 message: bytes = REQUEST, fds: Optional[List[int]] = None, extra_fds: int = 0,
                 no_fd: bool = False, prepare: Optional[Callable[[mmap.mmap], None]] = None,
                 raw: bool = False, timeout: float = 10.0) -> Peer:
    """Connect to shm:name and send the request the arguments describe
    (defaults: a well-formed one). raw: connect and send nothing."""
    s = _connect(name, timeout)
    if raw:
        return Peer(s, None, -1, b"", cap, True)
    size = HDR + 2 * cap if size is None else size
    fd = os.memfd_create("gobridge-shmtest", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    mm = mmap.mmap(fd, size)
    if size >= HDR:
        for ctl in (RING0, RING1):
            struct.pack_into("<Q", mm, ctl + HEAD, start)
            struct.pack_into("<Q", mm, ctl + TAIL, start)
        struct.pack_into("<IIQI", mm, 8, version, hdr, cap, os.getpid())
        mm[0:8] = magic
    if prepare is not None:
        prepare(mm)
    if seals:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    send = [] if no_fd else (list(fds) if fds is not None else [fd])
    nulls = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC) for _ in range(extra_fds)]
    try:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", send + nulls).tobytes())] if send + nulls else []
        s.sendmsg([message], anc)
    finally:
        for n in nulls:
            os.close(n)
    reply = b""
    deadline = time.monotonic() + timeout
    while len(reply) < len(ACCEPT) and time.monotonic() < deadline:
        s.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            b = s.recv(len(ACCEPT) - len(reply))
        except (socket.timeout, ConnectionResetError):
            break
        if not b:
            break
        reply += b
    s.settimeout(None)
    return Peer(s, mm, fd, reply, cap, True)


class HostileListener:
    """A plain socket at /dev/shm/NAME that maps a dialer's memory unchecked."""

    def __init__(self, name: str) -> None:
        self.path = shm_path(name)
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)

    def accept(self, reply: bool = True, timeout: float = 10.0) -> Peer:
        self.sock.settimeout(timeout)
        while True:
            c, _ = self.sock.accept()
            c.settimeout(timeout)
            msg, fds, _, _ = socket.recv_fds(c, 16, 8)
            if msg or fds:
                break
            # A liveness probe (`gobridge shm ls` or `gc` of some other run
            # on this machine connects to every socket in /dev/shm and hangs
            # up): not a dialer, as a real listener ignores it.
            c.close()
        assert msg == REQUEST and len(fds) == 1, (msg, fds)
        fd = fds[0]
        mm = mmap.mmap(fd, os.fstat(fd).st_size)
        cap = int(struct.unpack_from("<Q", mm, 16)[0])
        if reply:
            c.sendall(ACCEPT)
        c.settimeout(None)
        return Peer(c, mm, fd, ACCEPT if reply else b"", cap, False)

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
