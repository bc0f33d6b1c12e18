"""Close gobridge resources when SIGTERM or SIGINT arrives.

Python's default SIGTERM kills the process without running ``finally``
blocks, so a listener's socket file or FIFO, or a shared-memory segment,
would stay behind. :func:`close_on_shutdown` registers objects with a
``close()`` method; :func:`install` sets handlers for SIGTERM and SIGINT that
close them (newest first) and then let the same signal end the process, so
the parent still sees ``-15``/``-2`` (Go's Signals does the same). Handlers
of your own (``signal.signal(signal.SIGUSR1, my_usr1)``) are unaffected; a
handler you set for SIGTERM afterwards replaces this one and may call
:func:`shutdown` itself.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Callable, Dict, Iterable, Optional, Protocol

__all__ = ["close_on_shutdown", "install", "shutdown"]


class _Closable(Protocol):
    def close(self) -> None: ...


_lock = threading.Lock()
_closers: Dict[int, _Closable] = {}
_next = 0


def close_on_shutdown(obj: _Closable) -> Callable[[], None]:
    """Register obj to be closed by :func:`shutdown`; return a function that unregisters it."""
    global _next
    with _lock:
        key = _next
        _next += 1
        _closers[key] = obj

    def unregister() -> None:
        with _lock:
            _closers.pop(key, None)

    return unregister


def shutdown() -> None:
    """Close every registered object, newest first (each once)."""
    with _lock:
        objs = [_closers[k] for k in sorted(_closers, reverse=True)]
        _closers.clear()
    for obj in objs:
        try:
            obj.close()
        except Exception:
            pass


def _handler(signum: int, frame: Optional[FrameType]) -> None:
    shutdown()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install(signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Close the registered objects, then die of the signal, on each of signals."""
    for s in signals:
        signal.signal(s, _handler)
