"""Futex wait/wake on a 32-bit word in shared memory (not a public API).

The same system calls as Go's internal/futex, on the same words, so a Python
waiter is woken by a Go waker and the reverse. Only shared (non-private)
operations are used. ctypes releases the GIL during the call, so a waiting
thread does not stop the others. No compiler is needed.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform

import time
from typing import Callable, Optional, Union

import mmap as _mmap

_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine())
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _futex(addr: int, op: int, val: int, timeout: Optional[float]) -> int:
    if _SYS_FUTEX is None:
        raise OSError(errno.ENOSYS, "futex: unsupported machine " + platform.machine())
    ts = None
    if timeout is not None:
        t = max(0.0, timeout)
        ts = ctypes.byref(_Timespec(int(t), int((t - int(t)) * 1e9)))
    r = _syscall(ctypes.c_long(_SYS_FUTEX), ctypes.c_void_p(addr), ctypes.c_int(op),
                 ctypes.c_uint32(val), ts, None, ctypes.c_int(0))
    if r == -1:
        return -ctypes.get_errno()
    return int(r)


def wait(addr: int, expected: int, timeout: Optional[float] = None) -> bool:
    """Sleep while the word at addr holds expected, until woken or timeout.

    Returns False only when the timeout passed; True when woken, when the word
    no longer held expected, or on a spurious wake-up (callers recheck).
    """
    r = _futex(addr, _FUTEX_WAIT, expected, timeout)
    if r == -errno.ETIMEDOUT:
        return False
    if r < 0 and r not in (-errno.EAGAIN, -errno.EINTR):
        raise OSError(-r, "futex wait: " + os.strerror(-r))
    return True


def wake(addr: int, n: int = 0x7FFFFFFF) -> int:
    """Wake up to n waiters on the word at addr; return how many woke."""
    r = _futex(addr, _FUTEX_WAKE, n, None)
    if r < 0:
        raise OSError(-r, "futex wake: " + os.strerror(-r))
    return r


Buffer = Union[_mmap.mmap, bytearray]


class Word:
    """A 32-bit word at an offset in a writable shared mapping.

    Holds a buffer export on the mapping (ctypes needs the address): call
    release() before closing the mmap, or mmap.close() raises BufferError.
    """

    def __init__(self, buf: Buffer, offset: int) -> None:
        if offset % 4:
            raise ValueError("futex word must be 4-byte aligned")
        self._c = ctypes.c_uint32.from_buffer(buf, offset)
        self.addr = ctypes.addressof(self._c)

    def load(self) -> int:
        return int(self._c.value)

    def store(self, v: int) -> None:
        self._c.value = v

    def wait(self, expected: int, timeout: Optional[float] = None) -> bool:
        return wait(self.addr, expected, timeout)

    def wake(self, n: int = 0x7FFFFFFF) -> int:
        return wake(self.addr, n)

    def signal(self) -> None:
        """Increment the word and wake every waiter (WaitUntil's waker side).

        Not atomic against other writers: only one process may signal a given
        word at a time (a single producer, or under a lock).
        """
        self._c.value = (self._c.value + 1) & 0xFFFFFFFF
        wake(self.addr)

    def wait_until(self, cond: Callable[[], bool], spin: int = 0,
                   deadline: Optional[float] = None) -> bool:
        """Spin, then sleep on this word until cond() holds.

        deadline is a time.monotonic() value or None. Returns False on
        timeout. The word is read before cond() is checked, so a signal
        between the check and the sleep is never lost.
        """
        for _ in range(spin):
            if cond():
                return True
        while True:
            v = self._c.value
            if cond():
                return True
            timeout = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return False
            self.wait(v, timeout)

    def release(self) -> None:
        del self._c


