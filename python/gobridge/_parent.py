"""Handing a connection to a child process (wire/SPEC.md section 6.3)."""

from __future__ import annotations

import fcntl
import os
import socket
import stat
from typing import Dict, Mapping, Optional

from ._transport.base import Connection

__all__ = ["parent", "child_environ", "ENV_FD", "ENV_FD_MODE", "ENV_MAX_FRAME"]

ENV_FD = "GOBRIDGE_FD"
ENV_FD_MODE = "GOBRIDGE_FD_MODE"
ENV_MAX_FRAME = "GOBRIDGE_MAX_FRAME"

_MODES = {"rw": (True, True), "r": (True, False), "w": (False, True)}


def parent() -> Connection:
    """Open the connection the parent process handed down (SPEC 6.3).

    Reads ``GOBRIDGE_FD`` (descriptor number), ``GOBRIDGE_FD_MODE`` (``rw``,
    ``r`` or ``w``; default ``rw``) and ``GOBRIDGE_MAX_FRAME`` (optional frame
    limit), checks that the descriptor is an open stream socket or pipe that
    can move data in that direction, marks it close-on-exec and blocking, removes the
    three variables from ``os.environ`` and returns the connection. A
    second call therefore raises ``LookupError``, as does a process started
    without ``GOBRIDGE_FD``; bad values raise ``ValueError``.
    """
    raw = os.environ.get(ENV_FD)
    if raw is None:
        raise LookupError(
            f"gobridge: {ENV_FD} is not set: this process was not handed a connection by its parent"
        )
    if not raw.isdigit():
        raise ValueError(f"gobridge: {ENV_FD}={raw!r} is not a descriptor number")
    fd = int(raw)
    mode = os.environ.get(ENV_FD_MODE) or "rw"
    if mode not in _MODES:
        raise ValueError(f"gobridge: {ENV_FD_MODE}={mode!r}: expected rw, r or w")
    readable, writable = _MODES[mode]
    max_raw = os.environ.get(ENV_MAX_FRAME)
    kwargs = {}
    if max_raw:
        if not max_raw.isdigit() or int(max_raw) <= 0:
            raise ValueError(f"gobridge: {ENV_MAX_FRAME}={max_raw!r} is not a positive byte count")
        kwargs["max_frame_size"] = int(max_raw)
    try:
        st = os.fstat(fd)
    except OSError as e:
        raise OSError(e.errno, f"gobridge: {ENV_FD}={fd} is not an open descriptor ({e.strerror})") from None
    if stat.S_ISSOCK(st.st_mode):
        sock = socket.socket(fileno=fd)
        kind = sock.type
        sock.detach()
        if kind != socket.SOCK_STREAM:
            raise ValueError(f"gobridge: {ENV_FD}={fd} is a socket but not a stream socket")
    elif not stat.S_ISFIFO(st.st_mode):
        raise ValueError(f"gobridge: {ENV_FD}={fd} is not a socket or a pipe")
    access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    if (readable and access == os.O_WRONLY) or (writable and access == os.O_RDONLY):
        raise ValueError(f"gobridge: {ENV_FD}={fd} cannot be used in mode {mode!r}")
    os.set_inheritable(fd, False)
    # SPEC 6.3: the descriptor shares its open file description with the
    # parent's copy, which a Go parent keeps non-blocking for its poller.
    os.set_blocking(fd, True)
    for name in (ENV_FD, ENV_FD_MODE, ENV_MAX_FRAME):
        os.environ.pop(name, None)
    return Connection(fd, readable, writable, **kwargs)


def child_environ(conn: Connection, environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment for a child process that will call :func:`parent` on conn.

    Starts from ``environ`` (default ``os.environ``) and adds the
    ``GOBRIDGE_*`` variables describing conn. The descriptor must reach the
    child under the same number: pass ``pass_fds=[conn.fileno()]`` to
    ``subprocess``. Close the parent's copy of conn after starting the child.
    """
    env = dict(os.environ if environ is None else environ)
    conn._share()  # the child reads the same socket: no lengths peeked ahead
    env[ENV_FD] = str(conn.fileno())
    env[ENV_FD_MODE] = ("r" if conn.readable else "") + ("w" if conn.writable else "")
    env[ENV_MAX_FRAME] = str(conn.max_frame_size)
    return env
