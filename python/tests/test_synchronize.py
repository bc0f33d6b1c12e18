"""BoundedSemaphore (and the other named synchronization objects of SPEC
10.9-10.12) in Python alone: the stdlib's semantics, the bound stored in the
object, hostile segments refused. Across languages: interop_tests/test_mp_interop.py."""
import multiprocessing
import os
import pickle
import struct

import pytest

import gobridge
from gobridge._internal import layout as L
from gobridge._internal import objects as O
from gobridge._internal import shmseg as _shm

from gbtest_support import in_thread, unique_name


@pytest.fixture
def name():
    n = unique_name("sync")
    yield n
    p = _shm.path(n)
    if os.path.lexists(p):
        os.unlink(p)
        pytest.fail(f"{n} left behind")


def raw(s: object) -> memoryview:
    """The object's segment, mapped by this test as another process would."""
    return s._h.mm  # type: ignore[attr-defined,no-any-return]


# -- BoundedSemaphore ----------------------------------------------------------------

def test_bounded_release_above_initial_value_raises_as_the_stdlib(name: str) -> None:
    ref = multiprocessing.BoundedSemaphore(2)
    s = gobridge.BoundedSemaphore(2, name=name)
    try:
        for sem in (ref, s):
            assert sem.acquire() and sem.acquire()
            assert not sem.acquire(False)
            sem.release()
            sem.release()
            with pytest.raises(ValueError, match="semaphore or lock released too many times"):
                sem.release()
            assert sem.get_value() == 2  # unchanged
        assert "maxvalue=2" in repr(s)
    finally:
        s.close()


def test_bounded_zero_never_releases(name: str) -> None:
    s = gobridge.BoundedSemaphore(0, name=name)
    try:
        assert not s.acquire(timeout=0.01)
        with pytest.raises(ValueError, match="too many times"):
            s.release()
    finally:
        s.close()


def test_bounded_bound_is_the_objects_not_the_attachers(name: str) -> None:
    s = gobridge.BoundedSemaphore(1, name=name)
    other = gobridge.BoundedSemaphore(5, name=name)  # attaches: 5 is ignored
    try:
        assert other.get_value() == 1
        assert struct.unpack_from("<I", raw(s), L.BSEM_BOUND)[0] == 1
        with pytest.raises(ValueError, match="too many times"):
            other.release()
        assert other.acquire(False)
        other.release()
        with pytest.raises(ValueError, match="too many times"):
            s.release()
    finally:
        other.close()
        s.close()


def test_bounded_and_plain_refuse_each_other(name: str) -> None:
    s = gobridge.Semaphore(1, name=name)
    try:
        with pytest.raises(O.LayoutError, match="semaphore"):
            gobridge.BoundedSemaphore(1, name=name)
    finally:
        s.close()
    b = gobridge.BoundedSemaphore(1, name=name)
    try:
        with pytest.raises(O.LayoutError, match="bounded_semaphore"):
            gobridge.Semaphore(1, name=name)
    finally:
        b.close()


def test_bounded_hostile_bound_refused_on_attach(name: str) -> None:
    s = gobridge.BoundedSemaphore(1, name=name, keep=True)
    try:
        struct.pack_into("<I", raw(s), L.BSEM_BOUND, 0x80000000)
        with pytest.raises(O.LayoutError, match="bound"):
            gobridge.BoundedSemaphore(1, name=name)
    finally:
        s.close()
        os.unlink(_shm.path(name))


def test_bounded_count_above_bound_is_a_layout_error(name: str) -> None:
    s = gobridge.BoundedSemaphore(2, name=name)
    try:
        struct.pack_into("<I", raw(s), L.SEM_COUNT, 3)  # no process could make it
        with pytest.raises(O.LayoutError):
            s.acquire(False)
        with pytest.raises(O.LayoutError):
            s.release()
        struct.pack_into("<I", raw(s), L.SEM_COUNT, 2)
        assert s.acquire(False)
    finally:
        s.close()


def _child_release(s: "gobridge.BoundedSemaphore", q: "multiprocessing.SimpleQueue[str]") -> None:
    try:
        s.release()
        q.put("released")
    except ValueError as e:
        q.put(str(e))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_bounded_bound_holds_in_a_child(name: str, method: str) -> None:
    s = gobridge.BoundedSemaphore(1, name=name)
    try:
        assert type(pickle.loads(pickle.dumps(s))) is gobridge.BoundedSemaphore
        ctx = multiprocessing.get_context(method)
        q = ctx.SimpleQueue()
        p = ctx.Process(target=_child_release, args=(s, q))
        p.start()
        assert q.get() == "semaphore or lock released too many times"
        p.join(30)
        assert p.exitcode == 0
        assert s.get_value() == 1
    finally:
        s.close()


# -- Event -------------------------------------------------------------------------

def test_event_as_the_stdlib(name: str) -> None:
    ref = multiprocessing.Event()
    e = gobridge.Event(name=name)
    try:
        for ev in (ref, e):
            assert not ev.is_set()
            assert ev.wait(0) is False and ev.wait(0.01) is False
            ev.set()
            ev.set()
            assert ev.is_set() and ev.wait() is True and ev.wait(0.01) is True
            ev.clear()
            assert not ev.is_set() and ev.wait(0) is False
        assert "unset>" in repr(e)
        e.set()
        assert repr(e).endswith(" set>")
    finally:
        e.close()
    with pytest.raises(O.ClosedError):
        e.wait(0)


def test_event_wakes_a_waiter_of_another_handle(name: str) -> None:
    e = gobridge.Event(name=name)
    other = gobridge.Event(name=name, create=False)
    try:
        join = in_thread(other.wait, 20.0)
        e.set()
        assert join() is True
    finally:
        other.close()
        e.close()


def test_event_set_then_clear_is_not_missed(name: str) -> None:
    """A waiter whom set() woke returns True even when clear() came first:
    set() counts in the state word (SPEC 10.10). Pulses go on until the
    waiter returns; with a flag alone a pulse between two looks was lost."""
    e = gobridge.Event(name=name)
    try:
        join = in_thread(e.wait, 20.0)
        done = []
        t = in_thread(lambda: done.append(join()))
        while not done:
            e.set()
            e.clear()
        assert done == [True]
        t()
    finally:
        e.close()


def test_event_state_word_counts_sets(name: str) -> None:
    e = gobridge.Event(name=name)
    try:
        word = lambda: struct.unpack_from("<I", raw(e), L.EV_STATE)[0]  # noqa: E731
        assert word() == 0
        e.set()
        assert word() == 3
        e.set()  # already set: no count
        e.clear()
        assert word() == 2
        struct.pack_into("<I", raw(e), L.EV_STATE, 0xFFFFFFFE)  # the count wraps
        e.set()
        assert word() == 1 and e.is_set()
    finally:
        e.close()


def _child_set(e: "gobridge.Event") -> None:
    e.set()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_event_set_in_a_child(name: str, method: str) -> None:
    e = gobridge.Event(name=name)
    try:
        ctx = multiprocessing.get_context(method)
        p = ctx.Process(target=_child_set, args=(e,))
        p.start()
        assert e.wait(30) is True
        p.join(30)
        assert p.exitcode == 0
    finally:
        e.close()


def test_event_refuses_other_kinds(name: str) -> None:
    s = gobridge.Semaphore(1, name=name)
    try:
        with pytest.raises(O.LayoutError):
            gobridge.Event(name=name)
    finally:
        s.close()
    e = gobridge.Event(name=name)
    try:
        with pytest.raises(O.LayoutError):
            gobridge.Lock(name=name)
    finally:
        e.close()


# -- Condition -----------------------------------------------------------------------

def slot_states(c: "gobridge.Condition") -> list:
    return [struct.unpack_from("<I", raw(c), L.CV_SLOTS + i * L.CV_SLOT)[0] for i in range(L.CV_NSLOTS)]


def wait_until(pred, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    import time
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.005)


def test_condition_as_the_stdlib(name: str) -> None:
    ref = multiprocessing.Condition()
    c = gobridge.Condition(name=name)
    try:
        for cv in (ref, c):
            with pytest.raises(AssertionError):
                cv.wait(0)
            with pytest.raises(AssertionError):
                cv.notify()
            with cv:
                assert cv.wait(0.01) is False
                assert cv.acquire()  # an RLock: again
                cv.release()
                assert cv.wait_for(lambda: 5, 0.01) == 5
                assert cv.wait_for(lambda: 0, 0.01) == 0
                cv.notify()
                cv.notify_all()
        assert slot_states(c) == [0] * L.CV_NSLOTS
    finally:
        c.close()


def test_condition_notify_wakes_the_oldest_of_another_handle(name: str) -> None:
    c = gobridge.Condition(name=name)
    others = [gobridge.Condition(name=name, create=False) for _ in range(3)]
    results: list = []

    def waiter(cv: "gobridge.Condition", k: int) -> None:
        with cv:
            results.append((k, cv.wait(20)))

    try:
        joins = []
        for k, o in enumerate(others):
            joins.append(in_thread(waiter, o, k))
            wait_until(lambda: slot_states(c).count(L.CV_WAITING) == k + 1)
        with c:
            c.notify()
        joins[0]()
        assert results == [(0, True)]
        with c:
            c.notify_all()
        for j in joins[1:]:
            j()
        assert sorted(results) == [(0, True), (1, True), (2, True)]
        assert slot_states(c) == [0] * L.CV_NSLOTS
    finally:
        for o in others:
            o.close()
        c.close()


def test_condition_threads_of_one_handle(name: str) -> None:
    c = gobridge.Condition(name=name)
    box = {"ready": False}
    try:
        def waiter() -> bool:
            with c:
                return c.wait_for(lambda: box["ready"], 20)
        joins = [in_thread(waiter) for _ in range(3)]
        wait_until(lambda: slot_states(c).count(L.CV_WAITING) == 3)
        with c:
            box["ready"] = True
            c.notify_all()
        assert [j() for j in joins] == [True, True, True]
    finally:
        c.close()


def test_condition_with_a_given_lock(name: str) -> None:
    lk = gobridge.Lock(name=name + "-l")
    c = gobridge.Condition(lk, name=name)
    try:
        with c:
            assert not lk.acquire(False)  # the condition holds lk
            assert c.wait(0.01) is False
        assert lk.acquire(False)
        lk.release()
        with pytest.raises(TypeError):
            gobridge.Condition(threading_lock(), name=name)  # type: ignore[arg-type]
    finally:
        c.close()
        lk.close()


def threading_lock():  # type: ignore[no-untyped-def]
    import threading
    return threading.Lock()


def _cond_waiter(c: "gobridge.Condition") -> None:
    with c:
        c.wait()


def test_condition_killed_waiter_never_takes_a_notify(name: str) -> None:
    """A waiter SIGKILLed while waiting: notify(1) skips it though it waited
    longest (its liveness lock is gone), wakes the live waiter and frees the
    dead one's slot."""
    c = gobridge.Condition(name=name)
    try:
        ctx = multiprocessing.get_context("fork")
        dead = ctx.Process(target=_cond_waiter, args=(c,))
        dead.start()
        wait_until(lambda: slot_states(c).count(L.CV_WAITING) == 1)
        live = ctx.Process(target=_cond_waiter, args=(c,))
        live.start()
        wait_until(lambda: slot_states(c).count(L.CV_WAITING) == 2)
        os.kill(dead.pid, 9)  # the older waiter
        dead.join(30)
        with c:
            c.notify()
        live.join(30)
        assert live.exitcode == 0
        assert slot_states(c) == [0] * L.CV_NSLOTS
        again = ctx.Process(target=_cond_waiter, args=(c,))  # a dead waiter's slot is reused too
        again.start()
        wait_until(lambda: slot_states(c).count(L.CV_WAITING) == 1)
        os.kill(again.pid, 9)
        again.join(30)
        last = ctx.Process(target=_cond_waiter, args=(c,))
        last.start()
        wait_until(lambda: slot_states(c)[0] == L.CV_WAITING and last.pid is not None
                   and not _slot_is_dead(c, 0))
        with c:
            c.notify()
        last.join(30)
        assert last.exitcode == 0
    finally:
        c.close()


def _slot_is_dead(c: "gobridge.Condition", i: int) -> bool:
    import fcntl
    from gobridge._internal import ofdlock
    return ofdlock.probe(c._h.fd, fcntl.F_WRLCK, L.CV_LIVE + i) == fcntl.F_UNLCK


def test_condition_hostile_slot_state_is_a_layout_error(name: str) -> None:
    c = gobridge.Condition(name=name)
    try:
        struct.pack_into("<I", raw(c), L.CV_SLOTS + 5 * L.CV_SLOT, 7)
        with c:
            with pytest.raises(O.LayoutError):
                c.notify()
        struct.pack_into("<I", raw(c), L.CV_SLOTS + 5 * L.CV_SLOT, L.CV_WAITING)  # no live waiter
        with c:
            c.notify()  # frees it
            assert c.wait(0.01) is False
        assert slot_states(c) == [0] * L.CV_NSLOTS
    finally:
        c.close()


# -- Barrier -------------------------------------------------------------------------

def bar_states(b: "gobridge.Barrier") -> list:
    return [struct.unpack_from("<I", raw(b), L.BAR_SLOTS + i * L.BAR_SLOT)[0] for i in range(L.BAR_NSLOTS)]


def test_barrier_as_the_stdlib(name: str) -> None:
    hits: list = []
    b = gobridge.Barrier(3, action=lambda: hits.append(1), name=name)
    others = [gobridge.Barrier(99, name=name, create=False) for _ in range(2)]  # 99 ignored: 3 parties
    try:
        assert (b.parties, b.n_waiting, b.broken) == (3, 0, False)
        assert others[0].parties == 3
        for _round in range(3):
            joins = [in_thread(o.wait, 20) for o in others]
            wait_until(lambda: b.n_waiting == 2)
            idx = b.wait()
            assert sorted([idx] + [j() for j in joins]) == [0, 1, 2]
        assert hits == [1, 1, 1]  # the last to arrive ran its action, once per trip
        assert bar_states(b) == [0] * L.BAR_NSLOTS and b.n_waiting == 0
        assert gobridge.BrokenBarrierError is __import__("threading").BrokenBarrierError
    finally:
        for o in others:
            o.close()
        b.close()


def test_barrier_timeout_abort_reset(name: str) -> None:
    b = gobridge.Barrier(2, name=name)
    other = gobridge.Barrier(2, name=name, timeout=0.05)
    try:
        with pytest.raises(gobridge.BrokenBarrierError):
            other.wait()  # the handle's default timeout breaks it
        assert b.broken
        with pytest.raises(gobridge.BrokenBarrierError):
            b.wait(5)
        b.reset()
        assert not b.broken
        join = in_thread(b.wait, 20)
        wait_until(lambda: b.n_waiting == 1)
        other.reset()  # a waiter during reset raises; the barrier is not broken
        with pytest.raises(gobridge.BrokenBarrierError):
            join()
        assert not b.broken
        join = in_thread(b.wait, 20)
        wait_until(lambda: b.n_waiting == 1)
        other.abort()
        with pytest.raises(gobridge.BrokenBarrierError):
            join()
        assert b.broken
        b.reset()

        def boom() -> None:
            raise KeyError("action")
        raising = gobridge.Barrier(2, action=boom, name=name)
        try:
            join = in_thread(b.wait, 20)
            wait_until(lambda: b.n_waiting == 1)
            with pytest.raises(KeyError):
                raising.wait()
            with pytest.raises(gobridge.BrokenBarrierError):
                join()
            assert b.broken
        finally:
            raising.close()
        assert bar_states(b) == [0] * L.BAR_NSLOTS
    finally:
        other.close()
        b.close()


def _bar_waiter(b: "gobridge.Barrier") -> None:
    b.wait()


def test_barrier_killed_party_breaks_it(name: str) -> None:
    """A party SIGKILLed while waiting breaks the barrier for the others,
    who raise BrokenBarrierError instead of waiting for a party that will
    never come back."""
    b = gobridge.Barrier(3, name=name)
    try:
        ctx = multiprocessing.get_context("fork")
        dead = ctx.Process(target=_bar_waiter, args=(b,))
        dead.start()
        wait_until(lambda: b.n_waiting == 1)
        join = in_thread(b.wait, 60)
        wait_until(lambda: b.n_waiting == 2)
        os.kill(dead.pid, 9)
        dead.join(30)
        with pytest.raises(gobridge.BrokenBarrierError):
            join()
        assert b.broken and bar_states(b) == [0] * L.BAR_NSLOTS
    finally:
        b.close()


def test_barrier_hostile_fields(name: str) -> None:
    with pytest.raises(ValueError):
        gobridge.Barrier(0, name=name)
    with pytest.raises(ValueError):
        gobridge.Barrier(L.BAR_NSLOTS + 1, name=name)
    b = gobridge.Barrier(2, name=name, keep=True)
    try:
        struct.pack_into("<I", raw(b), L.BAR_COUNT, 9)
        with pytest.raises(O.LayoutError):
            b.wait(0.01)
        struct.pack_into("<I", raw(b), L.BAR_COUNT, 0)
        struct.pack_into("<I", raw(b), L.BAR_PARTIES, 0)
        with pytest.raises(O.LayoutError):
            gobridge.Barrier(2, name=name)
    finally:
        b.close()
        os.unlink(_shm.path(name))


# -- truncation --------------------------------------------------------------------

def test_truncated_segments_raise_instead_of_sigbus(name: str) -> None:
    """Another process truncates each object's segment: every call raises
    SegmentTruncatedError (a sleeping Event.wait and Barrier.wait included),
    never SIGBUS."""
    bs = gobridge.BoundedSemaphore(1, name=name + "-b")
    ev = gobridge.Event(name=name + "-e")
    cv = gobridge.Condition(name=name + "-c")
    bar = gobridge.Barrier(2, name=name + "-w")
    objs = [bs, ev, cv, bar]
    try:
        ev_join = in_thread(ev.wait, 20)
        bar_join = in_thread(bar.wait, 20)
        wait_until(lambda: bar.n_waiting == 1)
        for o in objs:
            os.truncate(_shm.path(o.name), 0)
        for fn in (ev_join, bar_join, bs.release, ev.set, ev.clear, ev.is_set, lambda: bar.broken, bar.abort,
                   bar.reset, cv.acquire):
            with pytest.raises(O.SegmentTruncatedError):
                fn()
    finally:
        for o in objs:
            o.close()


def _spawn_notifier(c: "gobridge.Condition") -> None:
    with c:
        c.notify_all()


def _spawn_party(b: "gobridge.Barrier", q: "multiprocessing.SimpleQueue[int]") -> None:
    q.put(b.wait())


def test_condition_and_barrier_go_to_spawn_children(name: str) -> None:
    """Both pickle by name (and a Condition with its given lock), so a spawn
    child opens the same objects."""
    lk = gobridge.RLock(name=name + "-l")
    c = gobridge.Condition(lk, name=name + "-c")
    b = gobridge.Barrier(2, name=name + "-b")
    ctx = multiprocessing.get_context("spawn")
    try:
        c2 = pickle.loads(pickle.dumps(c))
        assert c2.name == c.name and c2._lock.name == lk.name
        c2.close()
        with c:
            p = ctx.Process(target=_spawn_notifier, args=(c,))
            p.start()
            assert c.wait(30)  # the child takes the lock only once we wait
        p.join(30)
        assert p.exitcode == 0
        q = ctx.SimpleQueue()
        p = ctx.Process(target=_spawn_party, args=(b, q))
        p.start()
        assert sorted([b.wait(30), q.get()]) == [0, 1]
        p.join(30)
        assert p.exitcode == 0
    finally:
        b.close()
        c.close()
        lk.close()
