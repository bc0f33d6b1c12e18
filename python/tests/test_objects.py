"""Attacks on the shared objects by a hostile same-user process (issue 11):
one that opens the segments of SPEC section 10 with plain open, mmap and
truncate. Each must end in a documented error on that object only: no
SIGBUS, no IndexError, no giant allocation, no hang past a timeout, no
foreign data overwritten. And every method of a closed handle says "is
closed" (issue 12)."""
import mmap
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

import gobridge
from gobridge._internal import objects as O
from gobridge import queues as Q
from gobridge._internal import shmseg as _shm

from gbtest_support import in_thread, unique_name


@pytest.fixture
def name():
    n = unique_name("obj")
    yield n
    p = _shm.path(n)
    if os.path.lexists(p):
        os.unlink(p)
        pytest.fail(f"{n} left behind")


def plant(name: str, data: bytes, kind: str = "") -> str:
    """/dev/shm/NAME with data (marked with kind), as another program would."""
    p = _shm.path(name)
    with open(p, "wb") as f:
        f.write(data)
    if kind:
        try:
            os.setxattr(p, _shm.XATTR_KIND, kind.encode())
        except OSError:
            os.unlink(p)
            pytest.skip("no user xattrs on /dev/shm")
    return p


def header(kind: int, typecode: str = "") -> bytes:
    tc = ord(typecode) if typecode else 0
    return struct.pack("<IBBBB", O.MAGIC, O.VERSION, kind, tc, O.TYPECODES.get(typecode, 0)) + bytes(56)


def read(p: str) -> bytes:
    with open(p, "rb") as f:
        return f.read()


# -- item 2: a segment truncated under a handle --------------------------------

@pytest.mark.parametrize("size", [0, 4096])
def test_truncated_segment_raises_instead_of_sigbus(size: int) -> None:
    """The old code touched the lost pages: SIGBUS killed the interpreter
    (and this test run). Run in a child so that a crash is a failure, not
    the end of the suite."""
    code = f"""
import os, queue, time, threading, gobridge
from gobridge._internal import objects as O
names = [{unique_name('trunc')!r} + s for s in ("-q", "-v", "-s", "-l", "-sleeper")]
q = gobridge.Queue(name=names[0], capacity=64 << 10)
v = gobridge.Value("q", 5, name=names[1])
s = gobridge.Semaphore(0, name=names[2])
lk = gobridge.Lock(name=names[3])
sleeper = gobridge.Queue(name=names[4])
for _ in range(3):
    q.put("x" * 5000)
box = {{}}
def sleep_get():
    try:
        sleeper.get(timeout=10)
    except BaseException as e:
        box["err"] = e
t = threading.Thread(target=sleep_get)
t.start()
time.sleep(0.05)
for n in names[1:]:
    os.truncate("/dev/shm/" + n, 0)
os.truncate("/dev/shm/" + names[0], {size})
t.join(5)
assert isinstance(box.get("err"), O.SegmentTruncatedError), box
def raises(f, *a, **kw):
    try:
        f(*a, **kw)
    except O.SegmentTruncatedError as e:
        assert isinstance(e, OSError) and isinstance(e, O.LayoutError)
        return
    raise AssertionError(f"{{f}} did not raise")
raises(q.get, timeout=1)
raises(q.put, 1)  # broken: raises at once
raises(q.qsize)
raises(q.empty)
raises(v.__class__.value.fget, v)
raises(s.acquire, timeout=0.1)
raises(s.get_value)
raises(lk.acquire, timeout=0.1)
raises(sleeper.put, 1)
for o in (q, v, s, lk, sleeper):
    o.close()
ok = gobridge.Queue(name=names[0] + "-after")
ok.put("fine")
assert ok.get(timeout=1) == "fine"
ok.close()
print("survived")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "survived", (r.returncode, r.stdout, r.stderr[-2000:])


def test_truncated_under_a_held_lock_still_releases_it(name: str) -> None:
    lk = gobridge.Lock(name=name)
    other = None
    try:
        assert lk.acquire()
        os.truncate(_shm.path(name), 0)
        with pytest.raises(O.SegmentTruncatedError):
            lk.release()
        fd = os.open(_shm.path(name), os.O_RDWR)
        try:
            fcntl_ok = True
            try:
                import fcntl
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK, O._WRLCK[O.LOCK_USER])
            except OSError:
                fcntl_ok = False
            assert fcntl_ok, "the OFD lock is still held after a failed release"
        finally:
            os.close(fd)
    finally:
        lk.close()


# -- item 3 and "read each shared field once" ------------------------------------

def corrupt(name: str, patch) -> gobridge.Queue:
    """A queue of capacity 256 holding "hello", rewritten by patch(buf)
    through a plain mapping of the file."""
    q = gobridge.Queue(name=name, capacity=256)
    q.put("hello")
    fd = os.open(_shm.path(name), os.O_RDWR)
    try:
        with mmap.mmap(fd, Q.Q_RING + 256) as m:
            patch(m)
    finally:
        os.close(fd)
    return q


def _u64(m, off, v):
    struct.pack_into("<Q", m, off, v)


CORRUPTIONS = {
    "record of 0xFFFFFFF0 bytes": lambda m: struct.pack_into("<I", m, Q.Q_RING, 0xFFFFFFF0),
    "record of 0xFFFFFFF0 bytes and tail far ahead": lambda m: (struct.pack_into("<I", m, Q.Q_RING, 0xFFFFFFF0),
                                                              _u64(m, Q.Q_TAIL, 1 << 40)),
    "tail behind head": lambda m: (_u64(m, Q.Q_HEAD, 16), _u64(m, Q.Q_TAIL, 8)),
    "more than capacity queued": lambda m: _u64(m, Q.Q_TAIL, 512),
    "unaligned head": lambda m: (_u64(m, Q.Q_HEAD, 3), _u64(m, Q.Q_TAIL, 19)),
    "get_seq past put_seq": lambda m: _u64(m, Q.Q_GETSEQ, 5),
}


@pytest.mark.parametrize("what", list(CORRUPTIONS))
def test_impossible_queue_state_is_a_layout_error(name: str, what: str) -> None:
    q = corrupt(name, CORRUPTIONS[what])
    try:
        with pytest.raises(O.LayoutError):
            q.get_nowait()
        if what != "record of 0xFFFFFFF0 bytes":  # there the positions are fine: put works
            before = read(_shm.path(name))
            with pytest.raises(O.LayoutError):
                q.put_nowait("more")
            assert read(_shm.path(name)) == before, "a put on an impossible state wrote to the segment"
    finally:
        q.close()


def test_redo_entries_outside_their_fields_are_skipped(name: str) -> None:
    def patch(m):
        struct.pack_into("<IIQIIQ", m, O.OFF_REDO_N + 8, Q.Q_CAPACITY, 8, 1 << 30, Q.Q_RING + 8, 8,
                         0x4141414141414141)
        struct.pack_into("<I", m, O.OFF_REDO_N, 2)

    q = corrupt(name, patch)
    try:
        q.put("next")  # takes the internal lock: replays
        b = read(_shm.path(name))
        assert struct.unpack_from("<Q", b, Q.Q_CAPACITY)[0] == 256, "replay rewrote the capacity"
        assert b"AAAAAAAA" not in b, "replay wrote into the ring"
        assert q.get_nowait() == "hello"
    finally:
        q.close()


# -- item 4: a segment too short for its kind ------------------------------------

OPENERS = {
    "queue": lambda n: gobridge.Queue(name=n, keep=True),
    "joinable": lambda n: gobridge.JoinableQueue(name=n),
    "value": lambda n: gobridge.Value("q", 0, name=n),
    "array": lambda n: gobridge.Array("q", 1, name=n),
    "semaphore": lambda n: gobridge.Semaphore(1, name=n),
    "lock": lambda n: gobridge.Lock(name=n),
    "rlock": lambda n: gobridge.RLock(name=n),
    "bounded_semaphore": lambda n: gobridge.BoundedSemaphore(1, name=n),
    "event": lambda n: gobridge.Event(name=n),
    "condition": lambda n: gobridge.Condition(name=n),
    "barrier": lambda n: gobridge.Barrier(2, name=n),
}
KINDS = {"queue": O.KIND_QUEUE, "joinable": O.KIND_JOINABLE, "value": O.KIND_VALUE, "array": O.KIND_ARRAY,
         "semaphore": O.KIND_SEMAPHORE, "lock": O.KIND_LOCK, "rlock": O.KIND_RLOCK,
         "bounded_semaphore": O.KIND_BOUNDED_SEMAPHORE, "event": O.KIND_EVENT,
         "condition": O.KIND_CONDITION, "barrier": O.KIND_BARRIER}


@pytest.mark.parametrize("marked", [False, True])
@pytest.mark.parametrize("what", list(OPENERS))
def test_short_segment_is_a_layout_error(name: str, what: str, marked: bool) -> None:
    k = KINDS[what]
    plant(name, header(k, "q" if what in ("value", "array") else ""), O.KIND_NAMES[k] if marked else "")
    try:
        with pytest.raises(O.LayoutError):  # the old code: IndexError
            OPENERS[what](name)
    finally:
        os.unlink(_shm.path(name))


# -- item 5: someone else's data is never written ----------------------------------

FOREIGN = b"someone else's data" + bytes((i * 7 + (i >> 11)) & 0xFF for i in range(2 << 20))


@pytest.mark.parametrize("data,mark", [(FOREIGN, ""), (bytes(4096), ""), (FOREIGN, "queue")],
                         ids=["2 MiB unmarked", "zeroes unmarked", "2 MiB marked queue, bad magic"])
@pytest.mark.parametrize("what", list(OPENERS))
def test_foreign_segment_is_refused_untouched(name: str, what: str, data: bytes, mark: str) -> None:
    p = plant(name, data, mark)
    try:
        t0 = time.monotonic()
        with pytest.raises(O.LayoutError):
            OPENERS[what](name)
        assert time.monotonic() - t0 < 1, "not refused at once"
        assert read(p) == data, "the segment was written to"
        assert _shm._get_mark(p, _shm.XATTR_KEEP) == "", "a refused segment was marked keep"
    finally:
        os.unlink(p)


def test_marked_but_never_initialized_is_not_ready(name: str) -> None:
    p = plant(name, bytes(Q.Q_RING + 1024), "queue")
    try:
        t0 = time.monotonic()
        with pytest.raises(O.NotReadyError):
            gobridge.Queue(name=name)
        assert O.READY_WAIT <= time.monotonic() - t0 < O.READY_WAIT + 2
        assert read(p) == bytes(Q.Q_RING + 1024)
    finally:
        os.unlink(p)


# -- item 11: other kinds and other file types, at once -----------------------------

@pytest.mark.parametrize("kind", ["conn-listen", "conn", "mmap", "shareable_list", "raw"])
def test_other_kinds_are_refused_before_any_lock(name: str, kind: str) -> None:
    import fcntl
    p = plant(name, bytes(4096), kind)
    fd = os.open(p, os.O_RDWR)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, O._WRLCK[O.LOCK_INTERNAL])  # as an shm: listener's liveness lock
        for what, open_ in OPENERS.items():
            join = in_thread(open_, name)
            with pytest.raises(O.LayoutError, match=kind):
                join(3)
    finally:
        os.close(fd)
        os.unlink(p)


@pytest.mark.parametrize("ftype", ["socket", "fifo", "directory"])
def test_non_regular_files_are_refused_at_once(name: str, ftype: str) -> None:
    p = _shm.path(name)
    s = None
    if ftype == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(p)
    elif ftype == "fifo":
        os.mkfifo(p)
    else:
        os.mkdir(p)
    try:
        for what, open_ in OPENERS.items():
            join = in_thread(open_, name)
            with pytest.raises(_shm.NotRegularError):
                join(3)
    finally:
        if s is not None:
            s.close()
        if ftype == "directory":
            os.rmdir(p)
        else:
            os.unlink(p)


# -- item 15: names ----------------------------------------------------------------

@pytest.mark.parametrize("bad", ["bad-\udcff", "\ud800", "", "a/b", ".x", "a..b"])
def test_object_names(bad: str) -> None:
    for open_ in OPENERS.values():
        with pytest.raises(_shm.ShmNameError):
            open_(bad)


# -- item 10: a stopped holder of the internal locks -----------------------------------

HOLDER = """
import sys, time, gobridge
n = sys.argv[1]
q = gobridge.Queue(name=n + "-q")
s = gobridge.Semaphore(0, name=n + "-s")
lk = gobridge.Lock(name=n + "-l")
c = gobridge.Condition(name=n + "-c")
b = gobridge.Barrier(2, name=n + "-b")
q._h.lock_get(); q._h.lock(); s._h.lock(); lk.acquire(); c._h.lock(); b._h.lock()
print("locked", flush=True)
time.sleep(3600)
"""


def test_timeouts_bound_lock_waits_of_a_stopped_holder() -> None:
    """The old code waited in F_OFD_SETLKW while the holder stayed stopped
    (8 s for one put)."""
    n = unique_name("stopped")
    q = gobridge.Queue(name=n + "-q")
    s = gobridge.Semaphore(0, name=n + "-s")
    lk = gobridge.Lock(name=n + "-l")
    c = gobridge.Condition(name=n + "-c")
    b = gobridge.Barrier(2, name=n + "-b")

    def cond_wait() -> bool:
        with c:
            return c.wait(0.3)

    def barrier_wait() -> bool:
        try:
            b.wait(0.3)
        except gobridge.BrokenBarrierError:
            return False
        return True

    q.put("waiting")
    p = subprocess.Popen([sys.executable, "-c", HOLDER, n], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        p.send_signal(signal.SIGSTOP)
        calls = {
            "put": lambda: q.put("x", timeout=0.3),
            "get": lambda: q.get(timeout=0.3),
            "semaphore": lambda: s.acquire(timeout=0.3),
            "lock": lambda: lk.acquire(timeout=0.3),
            "condition": cond_wait,
            "barrier": barrier_wait,
        }
        for what, call in calls.items():
            t0 = time.monotonic()
            join = in_thread(call)
            try:
                got = join(3)
            except (queue.Full, queue.Empty):
                got = False
            took = time.monotonic() - t0
            assert got is False, what
            assert took < 3, f"{what} with timeout=0.3 returned after {took:.2f}s"
    finally:
        p.send_signal(signal.SIGCONT)
        p.kill()
        p.wait()
        p.stdout.close()
    try:
        assert q.get(timeout=5) == "waiting"  # the holder is gone
    finally:
        for o in (q, s, lk, c, b):
            o.close()


# -- issue 12 item 6: every method after close -----------------------------------------

def test_every_method_after_close_says_closed(name: str) -> None:
    # multiprocessing: put/get raise ValueError("... is closed"), empty()
    # raises OSError("handle is closed") once the queue was put to (CPython's
    # test_closed_queue_empty_exceptions); ClosedError is both. qsize() and
    # full() still answer (test_queue_after_close_answers_as_the_stdlib).
    objs = {
        "queue": gobridge.Queue(name=name + "-q"),
        "joinable": gobridge.JoinableQueue(name=name + "-j"),
        "value": gobridge.Value("i", 1, name=name + "-v"),
        "array": gobridge.Array("i", 2, name=name + "-a"),
        "semaphore": gobridge.Semaphore(1, name=name + "-s"),
        "lock": gobridge.Lock(name=name + "-l"),
        "rlock": gobridge.RLock(name=name + "-r"),
        "bounded_semaphore": gobridge.BoundedSemaphore(1, name=name + "-b"),
        "event": gobridge.Event(name=name + "-e"),
        "condition": gobridge.Condition(name=name + "-c"),
        "barrier": gobridge.Barrier(2, name=name + "-w"),
    }
    objs["queue"].put(1)
    for o in objs.values():
        o.close()
        o.close()  # idempotent
    calls = {
        "queue": ["put", "get", "put_nowait", "get_nowait", "empty"],
        "joinable": ["put", "get", "task_done", "join"],
        "semaphore": ["acquire", "release", "get_value"],
        "lock": ["acquire"],
        "rlock": ["acquire"],
        "bounded_semaphore": ["acquire", "release", "get_value"],
        "event": ["set", "clear", "is_set", "wait"],
        "condition": ["acquire", "wait", "notify", "notify_all", "wait_for"],
        "barrier": ["wait", "reset", "abort"],
    }
    for what, names in calls.items():
        for m in names:
            args = (1,) if m in ("put", "put_nowait") else (lambda: False,) if m == "wait_for" else ()
            with pytest.raises(O.ClosedError, match="is closed"):
                getattr(objs[what], m)(*args)
    v, a = objs["value"], objs["array"]
    for f in (lambda: v.value, lambda: setattr(v, "value", 2), lambda: a[0], lambda: a.__setitem__(0, 1),
              lambda: list(a), lambda: objs["barrier"].broken, lambda: objs["barrier"].n_waiting):
        with pytest.raises(O.ClosedError, match="is closed"):
            f()
    assert issubclass(O.ClosedError, ValueError) and issubclass(O.ClosedError, OSError)
    for o in objs.values():
        assert "name=" in repr(o)  # repr never raises


def _closed_answers(q):
    """qsize(), empty(), full(): each one's value, or "closed" for an
    OSError saying "is closed"."""
    out = []
    for m in ("qsize", "empty", "full"):
        try:
            out.append(getattr(q, m)())
        except OSError as e:
            assert "is closed" in str(e)
            out.append("closed")
    return out


def test_queue_after_close_answers_as_the_stdlib(name: str) -> None:
    """Python 3.13's test_closed_queue_empty_exceptions and what every
    version's multiprocessing.Queue does after close(): an unused queue still
    answers empty(); one that was put to raises OSError "is closed" from
    empty(); qsize() and full() answer either way (here: as of the close)."""
    import multiprocessing
    for used in (False, True):
        for mine, theirs in ((gobridge.Queue(2, name=f"{name}-q{used}"), multiprocessing.Queue(2)),
                             (gobridge.JoinableQueue(1, name=f"{name}-j{used}"), multiprocessing.JoinableQueue(1))):
            other = gobridge.Queue(name=mine.name)  # another handle keeps the queue alive
            try:
                if used:
                    mine.put("foo")
                    theirs.put("foo")
                    time.sleep(0.1)  # the stdlib's feeder thread
                mine.close()
                mine.join_thread()
                theirs.close()
                theirs.join_thread()
                got = _closed_answers(mine)
                assert got == _closed_answers(theirs)
                assert got == ([1, "closed", mine._maxsize == 1] if used else [0, True, False])
                for f in (lambda: mine.put("x"), lambda: mine.get(timeout=0.1)):
                    with pytest.raises(ValueError, match="is closed"):
                        f()
            finally:
                other.close()


def test_simple_queue_after_close_raises_is_closed(name: str) -> None:
    q = gobridge.SimpleQueue(name=name)
    assert q.empty()
    q.close()
    q.close()
    for f in (q.empty, q.get, lambda: q.put(1)):
        with pytest.raises(OSError, match="is closed"):
            f()
