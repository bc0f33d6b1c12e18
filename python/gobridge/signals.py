"""Close gobridge resources when SIGTERM or SIGINT arrives.

Python's default SIGTERM kills the process without running ``finally``
blocks, so a listener's socket file or FIFO, or a shared-memory segment,
would stay behind. :func:`close_on_shutdown` registers objects with a
``close()`` method; :func:`install` sets handlers for SIGTERM and SIGINT that
end the process as Go's ``bridge.Signals`` does (SPEC 6.8):

1. The handler runs in the main thread and never returns to the code it
   interrupted, so the loop a program writes without thinking of signals::

       signals.close_on_shutdown(listener)
       while True:
           conn = listener.accept()

   never sees the closed listener. A second SIGTERM or SIGINT that arrives
   while the first one's shutdown runs is ignored.

   Python runs a handler only between bytecodes: a signal that lands just
   before the main thread enters a blocking call (``accept``, ``recv``) would
   wait for that call to return, maybe forever. So :func:`install` also sets
   :func:`signal.set_wakeup_fd` and starts a daemon thread that, when the
   handler has not started 50 ms after the signal, sends the signal again to
   the main thread itself (``pthread_kill``), which interrupts the call. A
   wake-up descriptor set before (asyncio's) still gets every byte; one set
   after replaces this one, and that race is then open again.
2. It closes the registered objects, newest first (a Listener's ``close()``
   removes its socket file, FIFO or ``shm:`` name), within
   :data:`SHUTDOWN_GRACE` seconds in all.
3. It lets the same signal end the process, so the parent still sees
   ``-15``/``-2`` (a shell: 143/130). If the signal cannot end it (it is
   blocked), or the closes take longer than the grace, the process exits
   with ``128 + signum``.

A child made with ``os.fork`` (multiprocessing's ``fork`` start method)
keeps the handlers but starts with nothing registered: what its parent
registered is the parent's to close (its SIGTERM must not remove the parent's
socket file).

Handlers of your own (``signal.signal(signal.SIGUSR1, my_usr1)``) are
unaffected; a handler you set for SIGTERM afterwards replaces this one and
may call :func:`shutdown` itself (which closes the objects and nothing more).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType
from typing import Callable, Dict, Iterable, Optional, Protocol, Set, Tuple

__all__ = ["SHUTDOWN_GRACE", "close_on_shutdown", "install", "shutdown"]

#: Seconds the default SIGTERM/SIGINT gives the registered objects' ``close()``
#: (a connection flushing to a peer that does not read, say) before the
#: process exits with ``128 + signum`` anyway. Go's ``bridge.ShutdownGrace``.
SHUTDOWN_GRACE = 5.0


class _Closable(Protocol):
    def close(self) -> None: ...


# Re-entrant: the handler runs in the main thread between two bytecodes, maybe
# while that same thread is inside close_on_shutdown or an unregister holding
# the lock; a plain Lock would deadlock the process there for good.
_lock = threading.RLock()
_closers: Dict[int, _Closable] = {}
_next = 0
_ending = False


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


# The wake-up pipe and its watcher (see the module docstring, step 1).
_installed: Set[int] = set()
_wakeup: Optional[Tuple[int, int]] = None  # (read end, write end)
_chained = -1  # the wake-up descriptor set before ours, which still gets every byte
_NUDGE_AFTER = 0.05


def _forget_in_child() -> None:
    """A forked child inherits the handlers but not the objects: they are its parent's.

    It also inherits the wake-up pipe, whose reader is the parent's watcher:
    the child's signals would nudge the parent. It gets a pipe of its own.
    """
    global _lock, _ending, _wakeup
    _lock = threading.RLock()  # the fork may have happened while another thread held it
    _closers.clear()
    _ending = False
    if _wakeup is not None:
        old = _wakeup
        _wakeup = None
        try:
            signal.set_wakeup_fd(_chained)
        except (ValueError, OSError):
            pass
        for fd in old:
            os.close(fd)
        if _installed:
            try:
                _start_watcher()
            except (ValueError, OSError):
                pass


os.register_at_fork(after_in_child=_forget_in_child)


def _start_watcher() -> None:
    """Set the wake-up descriptor (main thread only) and start its watcher."""
    global _wakeup, _chained
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    if _wakeup is None:  # a second install keeps the first descriptor to chain to
        _chained = old
    _wakeup = (r, w)
    threading.Thread(target=_watch, args=(r,), name="gobridge.signals", daemon=True).start()


def _watch(r: int) -> None:
    """Nudge the main thread when one of our signals was taken but its handler has not run."""
    main = threading.main_thread().ident
    while True:
        try:
            got = os.read(r, 64)
        except OSError:
            return
        if not got:
            return  # every write end is closed
        if _chained >= 0:
            try:
                os.write(_chained, got)
            except OSError:
                pass
        for signum in set(got):
            if signum not in _installed or main is None:
                continue
            time.sleep(_NUDGE_AFTER)
            try:
                if not _ending and signal.getsignal(signum) is _handler:
                    signal.pthread_kill(main, signum)
            except (OSError, ValueError):
                pass  # the main thread is gone: the process is ending anyway


def _handler(signum: int, frame: Optional[FrameType]) -> None:
    global _ending
    if _ending:
        return  # the first signal's shutdown is running further up this stack
    _ending = True
    # The watchdog is a daemon thread: the main thread may be stuck in a close().
    watchdog = threading.Timer(SHUTDOWN_GRACE, os._exit, (128 + signum,))
    watchdog.daemon = True
    watchdog.start()
    shutdown()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(1.0)  # a signal blocked in this thread may still be taken by another
    os._exit(128 + signum)


def install(signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Close the registered objects, then die of the signal, on each of signals.

    Call it from the main thread (as :func:`signal.signal` requires).
    """
    for s in signals:
        signal.signal(s, _handler)
        _installed.add(int(s))
    if _wakeup is None:
        _start_watcher()
