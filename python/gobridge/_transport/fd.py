"""The byte hooks of connections over file descriptors: sockets, pipes and
FIFOs (wire/SPEC.md 5, 6). gobridge._transport.base frames the bytes."""

from __future__ import annotations

import fcntl
import io
import math
import os
import select
import socket
import stat
from typing import Any, Callable, Optional, Union

__all__ = ["FdTransport", "SharedFdTransport", "PIPE_BUF"]

PIPE_BUF = 4096  # select.PIPE_BUF on Linux
# Largest payload sent together with its header as one concatenated write
# (SPEC 2: "both implementations do for payloads up to 64 KiB").
_SMALL_SEND = 64 * 1024
# select.poll takes milliseconds as a C int.
_MAX_POLL_MS = 2**31 - 1

Payload = Union[bytes, bytearray, memoryview]


def _write_rest(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


class FdTransport:
    """Reads from ``rfd`` and writes to ``wfd``, which may be one descriptor
    (a socket, a pipe end) or two (a FIFO pair); it owns and closes both.
    A FIFO's write end that other writers share is a :class:`SharedFdTransport`.
    """

    __slots__ = ("_rfd", "_wfd", "_poller", "_peeker", "no_batching", "fast_readinto", "peek")

    def __init__(self, rfd: Optional[int], wfd: Optional[int]) -> None:
        self._rfd = rfd
        self._wfd = wfd
        self._poller: Any = None
        self._peeker: Optional[socket.socket] = None
        #: Why set_write_buffer is refused, or None.
        self.no_batching: Optional[str] = None
        #: readinto without a Python frame (one read(2), None where a
        #: non-blocking descriptor has nothing), for the connection's
        #: fast path; None: use readinto.
        self.fast_readinto: Optional[Callable[[memoryview], Optional[int]]] = None
        #: On a stream socket: peek(view) copies what is queued (waiting
        #: for a byte) without consuming it; 0 at end of stream.
        self.peek: Optional[Callable[[memoryview], int]] = None
        if rfd is not None:
            try:
                self.fast_readinto = io.FileIO(rfd, "rb", closefd=False).readinto
                if stat.S_ISSOCK(os.fstat(rfd).st_mode):
                    probe = socket.socket(fileno=rfd)
                    try:
                        if probe.type == socket.SOCK_STREAM:
                            self.peek = self._peek
                    finally:
                        probe.detach()
            except (OSError, ValueError):
                pass

    def _peek(self, view: memoryview) -> int:
        """recv(MSG_PEEK) into view: what the socket holds, nothing consumed;
        waits for a byte, 0 at end of stream. The call goes through a socket
        object over a duplicate of the descriptor (same open file, so the same
        queue), made at the first peek and closed with the transport: a socket
        object over the descriptor itself would close it when collected, and
        making one per peek cost three times the peek."""
        peeker = self._peeker
        if peeker is None:
            if socket.getdefaulttimeout() is not None:
                # socket() would make the shared open file non-blocking: no peeks
                self.peek = None
                return 0
            fd = self._rfd
            assert fd is not None
            dup = os.dup(fd)
            try:
                peeker = self._peeker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=dup)
            except BaseException:
                os.close(dup)
                raise
        return peeker.recv_into(view, 0, socket.MSG_PEEK)

    def fds(self) -> "tuple[Optional[int], Optional[int]]":
        """(read descriptor, write descriptor), for pickling (the same one twice
        for a socket)."""
        return self._rfd, self._wfd

    def describe(self) -> str:
        fd = self._rfd if self._rfd is not None else self._wfd
        return f"fd={fd}"

    def fileno(self) -> int:
        fd = self._rfd if self._rfd is not None else self._wfd
        if fd is None:
            raise OSError("handle is closed")
        return fd

    def close(self) -> None:
        rfd, wfd = self._rfd, self._wfd
        self._rfd = self._wfd = None
        self.peek = None
        peeker, self._peeker = self._peeker, None
        try:
            if peeker is not None:
                peeker.close()
            if rfd is not None:
                os.close(rfd)
        finally:
            if wfd is not None and wfd != rfd:
                os.close(wfd)

    def write(self, header: bytes, payload: Payload) -> None:
        """Write header, then payload, whole."""
        fd = self._wfd
        assert fd is not None
        if len(payload) <= _SMALL_SEND:
            data = header + payload
            written = os.write(fd, data)
            if written < len(data):
                _write_rest(fd, memoryview(data)[written:])
            return
        written = os.writev(fd, [header, payload])
        if written < len(header):
            _write_rest(fd, memoryview(header)[written:])
            written = len(header)
        _write_rest(fd, memoryview(payload)[written - len(header):])

    def readinto(self, view: memoryview) -> int:
        """Read what is there into view, waiting for at least a byte; 0 at end of stream."""
        fd = self._rfd
        assert fd is not None
        return os.readv(fd, [view])

    def wait(self, timeout: Optional[float]) -> bool:
        """Whether the read end is readable (bytes or end of stream) within
        timeout seconds (None: forever, 0: now)."""
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            poller.register(self.fileno(), select.POLLIN)
        if timeout is None:
            return bool(poller.poll())
        if timeout <= 0:
            return bool(poller.poll(0))
        ms = math.ceil(timeout * 1000)
        while ms > _MAX_POLL_MS:
            if poller.poll(_MAX_POLL_MS):
                return True
            ms -= _MAX_POLL_MS
        return bool(poller.poll(ms))


class SharedFdTransport(FdTransport):
    """The write end of a FIFO other writers may share: a frame up to
    PIPE_BUF is one atomic write, but a larger one goes in pieces whenever
    the pipe fills, so small frames hold ``flock(LOCK_SH)`` and large ones
    ``flock(LOCK_EX)``, and none lands between the pieces of another (SPEC
    6.6). Frames cannot be batched."""

    __slots__ = ()

    def __init__(self, rfd: Optional[int], wfd: Optional[int]) -> None:
        super().__init__(rfd, wfd)
        self.no_batching = "set_write_buffer does not apply to a FIFO that other writers may share"

    def write(self, header: bytes, payload: Payload) -> None:
        fd = self._wfd
        assert fd is not None
        fcntl.flock(fd, fcntl.LOCK_SH if len(header) + len(payload) <= PIPE_BUF else fcntl.LOCK_EX)
        try:
            super().write(header, payload)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
