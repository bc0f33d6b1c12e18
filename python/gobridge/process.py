"""Start any program, Go or Python, with a connection handed down (SPEC 6.3).

:class:`Process` is the reverse of Go's ``bridge.StartProcess``, with the
surface of ``multiprocessing.Process`` where it fits: ``start``, ``join``,
``exitcode`` (negative signal number when killed), ``is_alive``,
``terminate``, ``kill``, ``pid``, ``daemon``. The child finds its end with
Go's ``bridge.Parent()`` or Python's :func:`gobridge.parent`; the parent's end
is :attr:`Process.conn`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from typing import IO, Any, Callable, List, Mapping, Optional, Sequence, Union

from ._codec import DEFAULT_MAX_FRAME_SIZE
from ._parent import child_environ
from ._transport.base import Connection, Pipe

__all__ = ["Process"]

_PR_SET_PDEATHSIG = 1
_File = Union[None, int, IO[Any]]
_Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _die_with_parent_fn() -> Callable[[], None]:
    """The preexec_fn of a daemon child: PR_SET_PDEATHSIG, SIGKILL.

    libc is loaded here, in the parent: between fork and exec the child
    should do as little as it can.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()

    def die_with_parent() -> None:  # runs in the child before exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl
            os._exit(1)

    return die_with_parent


class Process:
    """A child program with a gobridge connection to it.

    ``args`` is the command line, as ``subprocess.Popen``'s with
    ``shell=False`` on POSIX: a sequence (``["./server", "-v"]``), or a
    single string, bytes or path-like object naming a program to run with
    no arguments (``Process("./server")``; ``Process("python3 -c pass")``
    looks for a program of that whole name and raises
    ``FileNotFoundError``, as Popen does; there is no shell). ``duplex=False``
    hands the child the send end of a one-way pipe and keeps the receive
    end. ``daemon=True`` has Linux kill the child (SIGKILL) when this process
    dies, however it dies. ``stdout``/``stderr`` are passed to
    ``subprocess.Popen``: ``None`` shares the parent's (passthrough),
    ``subprocess.PIPE`` captures them (read ``popen.stdout``). ``conn``
    hands down that existing connection end instead of a new Pipe's (it is
    closed in this process once the child has started; :attr:`conn` is then
    unavailable), as the seed's children share one ``Pipe``.
    """

    def __init__(
        self,
        args: Union[_Path, Sequence[_Path]],
        *,
        duplex: bool = True,
        daemon: bool = False,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        stdout: _File = None,
        stderr: _File = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        conn: Optional[Connection] = None,
    ) -> None:
        # As Popen.args: a single program is kept as given, not iterated.
        self.args: Union[_Path, List[_Path]] = (
            args if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        )
        self._handed = conn
        self.duplex = duplex
        self.daemon = daemon
        self._env = env
        self._cwd = cwd
        self._stdout = stdout
        self._stderr = stderr
        self._max_frame_size = max_frame_size
        self._conn: Optional[Connection] = None
        self.popen: Optional["subprocess.Popen[bytes]"] = None

    def start(self) -> None:
        """Start the child with its end of a new Pipe."""
        if self.popen is not None:
            raise AssertionError("cannot start a process twice")
        mine: Optional[Connection]
        if self._handed is not None:  # hand down a given end, as Go's StartWithConn
            mine, theirs = None, self._handed
        else:
            mine, theirs = Pipe(self.duplex, max_frame_size=self._max_frame_size)
        try:
            self.popen = subprocess.Popen(
                self.args,
                env=child_environ(theirs, self._env),
                pass_fds=[theirs.fileno()],
                cwd=self._cwd,
                stdout=self._stdout,
                stderr=self._stderr,
                preexec_fn=_die_with_parent_fn() if self.daemon else None,
            )
        except BaseException:
            if mine is not None:
                mine.close()
            raise
        finally:
            theirs.close()
        self._conn = mine

    def _popen(self) -> "subprocess.Popen[bytes]":
        if self.popen is None:
            raise ValueError("process not started")
        return self.popen

    @property
    def conn(self) -> Connection:
        """The parent's end of the connection (after :meth:`start`)."""
        if self._conn is None:
            raise ValueError("process not started, or started with a given conn")
        return self._conn

    @property
    def pid(self) -> Optional[int]:
        """The child's process id, None before :meth:`start`."""
        return None if self.popen is None else self.popen.pid

    @property
    def exitcode(self) -> Optional[int]:
        """None while running; the exit status, or minus the killing signal."""
        return None if self.popen is None else self.popen.poll()

    def is_alive(self) -> bool:
        """Whether the child has started and not yet exited."""
        return self.popen is not None and self.popen.poll() is None

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the child to exit, at most timeout seconds (then return)."""
        try:
            self._popen().wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self) -> None:
        """Send SIGTERM."""
        if self.is_alive():
            self._popen().terminate()

    def kill(self) -> None:
        """Send SIGKILL."""
        if self.is_alive():
            self._popen().kill()

    def close(self) -> None:
        """Close the parent's connection end (the child keeps running)."""
        if self._conn is not None:
            self._conn.close()

    def __repr__(self) -> str:
        code = self.exitcode
        state = "initial" if self.popen is None else ("started" if code is None else f"stopped exitcode={code}")
        prog = self.args[0] if isinstance(self.args, list) else self.args
        return f"<gobridge.Process {prog!r} pid={self.pid} {state}>"
