"""gobridge.signals in real child processes: SIGTERM ends them as the signal says, nothing left."""
import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import gobridge
from gbtest_support import unique_name

# The child: listen on argv[1], register the listener, print "ready", then run
# the loop argv[2] names. Every loop is one a program writes without thinking
# of signals: none catches anything, none closes anything itself.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import gobridge
    from gobridge import signals
    signals.install()
    addr, loop = sys.argv[1], sys.argv[2]
    if loop == "grace":
        signals.SHUTDOWN_GRACE = 0.5
    listener = gobridge.Listener(addr)
    signals.close_on_shutdown(listener)

    class Closer:
        def __init__(self, fn):
            self.close = fn

    if loop == "second-signal":    # a SIGINT comes while SIGTERM's shutdown runs
        signals.close_on_shutdown(Closer(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2))))
    if loop == "grace":            # a close() that never returns
        signals.close_on_shutdown(Closer(lambda: time.sleep(3600)))
    if loop == "other-thread":     # a thread that will take the signal instead of the main thread
        import threading
        t = threading.Thread(target=time.sleep, args=(3600,), daemon=True)
        t.start()
        print("ready", t.native_id, flush=True)
    else:
        print("ready", flush=True)
    if loop in ("accept", "other-thread"):
        while True:
            conn = listener.accept()
            conn.send(conn.recv())
    elif loop == "churn":          # short-lived registrations, as a per-request object has
        while True:
            unregister = signals.close_on_shutdown(Closer(lambda: None))
            unregister()
    else:
        while True:
            time.sleep(1)
""")


def _addr(scheme, sockdir):
    if scheme == "shm":
        return "shm:" + unique_name("sig")
    return f"{scheme}:{os.path.join(sockdir, 'l')}"


def _leftovers(addr, sockdir):
    left = os.listdir(sockdir)
    if addr.startswith("shm:"):
        name = addr[4:]
        for n in os.listdir("/dev/shm"):
            if n == name or n.startswith(name + "."):
                left.append("/dev/shm/" + n)
                os.unlink("/dev/shm/" + n)
    return left


def _start(addr, loop, said=None):
    p = subprocess.Popen([sys.executable, "-c", CHILD, addr, loop], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if line.split()[:1] != ["ready"]:
        p.kill()
        p.wait()
        pytest.fail(f"child said {line!r}")
    if said is not None:
        said.extend(line.split()[1:])
    return p


def _wait(p, timeout=10.0):
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        pytest.fail(f"child still running {timeout}s after SIGTERM")


@pytest.mark.parametrize("scheme", ["unix", "fifo", "shm"])
def test_natural_accept_loop_dies_of_sigterm(scheme, sockdir):
    """`while True: conn = listener.accept()`: 20 SIGTERMs, 20 deaths by SIGTERM, nothing left."""
    for i in range(20):
        addr = _addr(scheme, sockdir)
        p = _start(addr, "accept")
        client = None
        if i % 2:  # half the runs have had a client served and still connected
            client = gobridge.Client(addr)
            client.send("ping")
            assert client.recv() == "ping"
        p.send_signal(signal.SIGTERM)
        rc = _wait(p)
        if client is not None:
            client.close()
        assert (i, rc, _leftovers(addr, sockdir)) == (i, -signal.SIGTERM, [])


def _tgkill(pid, tid, sig):
    """Send sig to one thread of another process (what kill() does when it picks that thread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    tgkill = getattr(libc, "tgkill", None)
    if tgkill is not None:
        rc = tgkill(pid, tid, sig)
    else:
        nr = {"x86_64": 234, "aarch64": 131}[os.uname().machine]
        rc = libc.syscall(nr, pid, tid, sig)
    if rc != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


@pytest.mark.parametrize("scheme", ["unix", "fifo"])
def test_signal_taken_by_another_thread_still_ends_accept(scheme, sockdir):
    """SIGTERM taken while the main thread sits in accept() but run by no one (Python runs handlers
    only in the main thread, between bytecodes): the main thread must still be woken to handle it.
    The same lost wake-up happens when the signal lands just before the main thread blocks."""
    addr = _addr(scheme, sockdir)
    said = []
    p = _start(addr, "other-thread", said)
    time.sleep(0.2)  # the main thread is in accept() by now
    _tgkill(p.pid, int(said[0]), signal.SIGTERM)
    assert _wait(p) == -signal.SIGTERM
    assert _leftovers(addr, sockdir) == []


def test_signal_during_registration_does_not_hang(sockdir):
    """SIGTERM while the main thread is inside close_on_shutdown/unregister (it held a plain Lock)."""
    for i in range(10):
        addr = _addr("unix", sockdir)
        p = _start(addr, "churn")
        time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        rc = _wait(p)
        assert (i, rc, _leftovers(addr, sockdir)) == (i, -signal.SIGTERM, [])


def test_second_signal_during_shutdown_is_ignored(sockdir):
    """A SIGINT that arrives while SIGTERM's shutdown runs neither skips the rest nor changes the status."""
    addr = _addr("unix", sockdir)
    p = _start(addr, "second-signal")
    p.send_signal(signal.SIGTERM)
    assert _wait(p) == -signal.SIGTERM
    assert _leftovers(addr, sockdir) == []


def test_close_that_hangs_is_bounded_by_the_grace(sockdir):
    """A close() that never returns: the process still ends, with 128 + SIGTERM, after the grace."""
    addr = _addr("unix", sockdir)
    p = _start(addr, "grace")
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert _wait(p) == 128 + signal.SIGTERM
    assert 0.4 < time.monotonic() - t0 < 5
    _leftovers(addr, sockdir)  # the listener (registered before the hanging closer) was never reached
    if os.path.exists(os.path.join(sockdir, "l")):
        os.unlink(os.path.join(sockdir, "l"))


FORK_CHILD = textwrap.dedent("""
    import multiprocessing, os, sys, time
    import gobridge
    from gobridge import signals
    signals.install()
    listener = gobridge.Listener(sys.argv[1])
    signals.close_on_shutdown(listener)
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
    child.start()
    time.sleep(0.2)
    child.terminate()
    child.join()
    time.sleep(0.5)  # long enough for a wrong wake-up of this process to land
    print(child.exitcode, os.path.exists(sys.argv[1][len("unix:"):]))
    listener.close()
""")


def test_forked_child_does_not_close_its_parents_objects(sockdir):
    """multiprocessing's fork child inherits the handler; its SIGTERM must not remove the parent's socket."""
    addr = _addr("unix", sockdir)
    out = subprocess.run([sys.executable, "-c", FORK_CHILD, addr], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(-signal.SIGTERM), "True"]
    assert os.listdir(sockdir) == []
