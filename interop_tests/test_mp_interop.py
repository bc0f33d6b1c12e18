"""Named Queue, JoinableQueue, Value, Array, Semaphore and Lock across Go and
Python: the seed 003/004 queue examples with Go on one side, a counter, an
array, a semaphore's peak, the Event, Barrier and Condition seed examples
with either half in Go, and SIGKILL in the middle of put, get and a held
lock. The Go side is interop_tests/internal/mppeer."""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Iterator, List

import pytest

import gobridge
from gobridge._internal import objects as O
from shm_support import Proc, unique_tag

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SEEDS = os.path.join(HERE, "seeds")
PEER_PY = os.path.join(HERE, "mp_peer.py")
INTERVAL = 0.02
GO_INTERVAL = "20ms"

_peer: List[str] = []


@pytest.fixture(scope="module", autouse=True)
def _build_peer() -> Iterator[None]:
    go = shutil.which("go")
    if go is None:
        pytest.skip("go not found")
    d = tempfile.mkdtemp(prefix="gbmppeer")
    out = os.path.join(d, "mppeer")
    subprocess.run([go, "build", "-o", out, "./interop_tests/internal/mppeer"], cwd=REPO, check=True, timeout=300)
    _peer.append(out)
    yield
    _peer.clear()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tag() -> Iterator[str]:
    t = unique_tag("mp")
    yield t
    assert not os.path.exists("/dev/shm/" + t), f"{t} left behind"


def go(*args: str) -> List[str]:
    return [_peer[0], *args]


def py(*args: str) -> List[str]:
    return [sys.executable, PEER_PY, *args]


def seed(script: str, tag: str, old: str, role: str) -> List[str]:
    return [sys.executable, os.path.join(SEEDS, "run_mp_seed.py"), os.path.join(SEEDS, script), str(INTERVAL),
            f"{old}={tag}", role]


def run_all(argvs: List[List[str]], timeout: float = 120) -> List[str]:
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in argvs]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, f"{p.args}: exit {p.returncode}: {err}"
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


def wait_exists(t: str, proc: Proc) -> None:
    deadline = time.monotonic() + 20
    while not os.path.exists("/dev/shm/" + t):
        assert proc.p.poll() is None, f"{proc.argv} exited"
        assert time.monotonic() < deadline, f"{t} never appeared"
        time.sleep(0.01)


PRODUCTS = sorted(f"{p}的{v}" for p in ("p1", "p2") for v in "ABC")


def taken(lines: List[str]) -> List[str]:
    return sorted(line[: -len("已被取出")] for line in lines if line.endswith("已被取出"))


# -- seed 003: two producers, one consumer, None as the end marker ----------

def test_seed003_go_consumer_python_producers(tag: str) -> None:
    c = Proc(go("consumer", tag, GO_INTERVAL))
    try:
        c.wait_for(lambda ls: "ready" in ls)
        (out,) = run_all([seed("seed003_queue.py", tag, "seed003", "producers")])
        assert sorted(line[: -len("已被添加至队列中")] for line in out.splitlines() if "已被添加" in line) == PRODUCTS
        assert c.p.wait(30) == 0
        assert taken(c.wait_for(lambda ls: len(taken(ls)) == 6)) == PRODUCTS
    finally:
        c.stop()


def test_seed003_python_consumer_go_producers(tag: str) -> None:
    c = Proc(seed("seed003_queue.py", tag, "seed003", "consumer"))
    try:
        c.wait_for(lambda ls: "ready" in ls)
        wait_exists(tag, c)
        run_all([go("producer", tag, "p1", GO_INTERVAL), go("producer", tag, "p2", GO_INTERVAL)])
        run_all([go("put", tag, "null")])  # 放入消费者结束标志
        assert c.p.wait(30) == 0
        assert taken(c.wait_for(lambda ls: len(taken(ls)) == 6)) == PRODUCTS
    finally:
        c.stop()


# -- seed 003: JoinableQueue with task_done/join ----------------------------

def test_seed003_joinable_go_consumer_python_producers(tag: str) -> None:
    c = Proc(go("jconsumer", tag, GO_INTERVAL))
    try:
        c.wait_for(lambda ls: "ready" in ls)
        run_all([seed("seed003_joinable.py", tag, "seed003j", "producers")])
        # The producers' join() returned: every product was taken and done.
        assert taken(c.wait_for(lambda ls: len(taken(ls)) == 6, 5)) == PRODUCTS
    finally:
        c.stop()


def test_seed003_joinable_python_consumer_go_producers(tag: str) -> None:
    c = Proc(seed("seed003_joinable.py", tag, "seed003j", "consumer"))
    try:
        c.wait_for(lambda ls: "ready" in ls)
        wait_exists(tag, c)
        run_all([go("jproducer", tag, "p1", GO_INTERVAL), go("jproducer", tag, "p2", GO_INTERVAL)])
        assert taken(c.wait_for(lambda ls: len(taken(ls)) == 6, 5)) == PRODUCTS
        assert c.close_stdin_and_wait() == 0
    finally:
        c.stop()


# -- seed 004: writer and reader --------------------------------------------

@pytest.mark.parametrize("writer", ["go", "py"])
def test_seed004_writer_reader(tag: str, writer: str) -> None:
    if writer == "go":
        r = Proc(seed("seed004_queue.py", tag, "seed004", "read"))
        wargv = go("writer", tag)
    else:
        r = Proc(go("reader", tag))
        wargv = seed("seed004_queue.py", tag, "seed004", "write")
    try:
        r.wait_for(lambda ls: any(line.startswith("Process to read") for line in ls))
        wait_exists(tag, r)
        (out,) = run_all([wargv])
        assert [line for line in out.splitlines() if line.startswith("Put")] == [f"Put {v} to queue..." for v in "ABC"]
        got = r.wait_for(lambda ls: sum(line.startswith("Get") for line in ls) == 3)
        assert [line for line in got if line.startswith("Get")] == [f"Get {v} from queue." for v in "ABC"]
        if writer == "go":
            assert r.close_stdin_and_wait() == 0
    finally:
        r.stop(signal.SIGTERM)


# -- Value, Array, Semaphore --------------------------------------------------

def test_value_counter_4_go_4_python(tag: str) -> None:
    n = int(os.environ.get("GOBRIDGE_MP_COUNTER_N", "10000"))
    v = gobridge.Value("q", 0, name=tag)
    try:
        run_all([go("counter", tag, str(n)) for _ in range(4)] + [py("counter", tag, str(n)) for _ in range(4)])
        assert v.value == 8 * n
    finally:
        v.close()


@pytest.mark.parametrize("filler,summer", [("go", "py"), ("py", "go")])
def test_array_filled_by_one_summed_by_other(tag: str, filler: str, summer: str) -> None:
    n = 1000
    side = {"go": go, "py": py}
    keep = gobridge.Array("q", n, name=tag)
    try:
        run_all([side[filler]("array-fill", tag, str(n))])
        (out,) = run_all([side[summer]("array-sum", tag, str(n))])
        assert int(out) == sum(i * i for i in range(n))
        assert keep[n - 1] == (n - 1) ** 2
    finally:
        keep.close()


def test_semaphore_3_never_lets_a_fourth_in(tag: str) -> None:
    state = tag + "-state"
    s = gobridge.Semaphore(3, name=tag)
    st = gobridge.Array("q", 2, name=state)
    try:
        run_all([go("sem", tag, state, "20", "3ms") for _ in range(3)] +
                [py("sem", tag, state, "20", "0.003") for _ in range(3)])
        assert st[0] == 0
        # Never a fourth: how many overlap at the peak is up to the scheduler
        # (a loaded machine may never run three at once), so only the bound is asserted.
        assert 1 <= st[1] <= 3, f"peak {st[1]}"
        assert s.get_value() == 3
        assert all(s.acquire(timeout=0) for _ in range(3))  # three are let in at once
        assert not s.acquire(timeout=0)
        for _ in range(3):
            s.release()
    finally:
        st.close()
        s.close()
    assert not os.path.exists("/dev/shm/" + state)


@pytest.mark.parametrize("maker", ["go", "py"])
def test_bounded_semaphore_bound_holds_in_both_languages(tag: str, maker: str) -> None:
    """A BoundedSemaphore made by one language: Go and Python handles that
    attach both refuse a release above its initial value (the bound is in the
    segment, SPEC 10.9), and Go -> Go, Python -> Python likewise."""
    side = {"go": go, "py": py}
    p = subprocess.Popen(side[maker]("bsem-make", tag, "2"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout is not None and p.stdin is not None
        assert p.stdout.readline() == "ready\n"
        outs = run_all([go("bsem-check", tag), py("bsem-check", tag)])
        assert [o.strip() for o in outs] == ["max=2 value=2", "max=2 value=2"]
        with pytest.raises(O.LayoutError):
            gobridge.Semaphore(2, name=tag)  # a plain semaphore handle is refused
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0
        assert out.strip() == "value=2"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("waiter,setter", [("go", "py"), ("py", "go"), ("go", "go"), ("py", "py")])
def test_event_set_by_one_language_wakes_the_other(tag: str, waiter: str, setter: str) -> None:
    """An Event waited on in one language, set from the other (SPEC 10.10);
    and a wait with a timeout on a clear event times out."""
    side = {"go": go, "py": py}
    e = gobridge.Event(name=tag)
    w = Proc(side[waiter]("event-wait", tag))
    try:
        w.wait_for(lambda ls: "waiting" in ls)
        assert not e.is_set()
        run_all([side[setter]("event-set", tag)])
        assert "set" in w.wait_for(lambda ls: "set" in ls)
        assert w.p.wait(30) == 0
        assert e.is_set()
        e.clear()
        (out,) = run_all([side[waiter]("event-wait", tag, "50ms" if waiter == "go" else "0.05")])
        assert out.split() == ["waiting", "timeout"]
    finally:
        w.stop()
        e.close()


def cv_waiting(c: "gobridge.Condition") -> int:
    """How many of c's slots hold a waiter (SPEC 10.11), read as a peer would."""
    from gobridge._internal import layout as L
    return sum(c._w32[(L.CV_SLOTS + i * L.CV_SLOT) >> 2] == L.CV_WAITING for i in range(L.CV_NSLOTS))


def until(pred, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


@pytest.mark.parametrize("waiter,notifier", [("go", "py"), ("py", "go"), ("go", "go"), ("py", "py")])
def test_condition_notified_across_languages(tag: str, waiter: str, notifier: str) -> None:
    """A Condition waited on in one language and notified from the other
    (SPEC 10.11)."""
    side = {"go": go, "py": py}
    c = gobridge.Condition(name=tag)
    w = Proc(side[waiter]("cond-wait", tag))
    try:
        until(lambda: cv_waiting(c) == 1, "the waiter never waited")
        run_all([side[notifier]("cond-notify", tag, "1")])
        w.wait_for(lambda ls: "notified" in ls)
        assert w.p.wait(30) == 0
        assert cv_waiting(c) == 0
    finally:
        w.stop()
        c.close()


@pytest.mark.parametrize("dead", ["go", "py"])
def test_condition_sigkilled_waiter_never_takes_a_notify(tag: str, dead: str) -> None:
    """The longest waiter, of one language, is SIGKILLed; notify(1) from
    that language skips it (its liveness lock went with it) and wakes the
    live waiter of the other language."""
    side = {"go": go, "py": py}
    other = "py" if dead == "go" else "go"
    c = gobridge.Condition(name=tag)
    d = Proc(side[dead]("cond-wait", tag))
    w: "Proc | None" = None
    try:
        until(lambda: cv_waiting(c) == 1, "the first waiter never waited")
        w = Proc(side[other]("cond-wait", tag))
        until(lambda: cv_waiting(c) == 2, "the second waiter never waited")
        d.p.kill()
        d.p.wait()
        run_all([side[dead]("cond-notify", tag, "1")])
        w.wait_for(lambda ls: "notified" in ls)
        assert w.p.wait(30) == 0
        assert cv_waiting(c) == 0  # the dead waiter's slot was freed
    finally:
        d.stop()
        if w is not None:
            w.stop()
        c.close()


@pytest.mark.parametrize("holder", ["go", "py"])
def test_condition_sigkilled_holder_releases_its_lock(tag: str, holder: str) -> None:
    c = gobridge.Condition(name=tag)
    h = Proc((go if holder == "go" else py)("cond-hold", tag))
    try:
        h.wait_for(lambda ls: "held" in ls)
        assert not c.acquire(timeout=0.1)
        h.p.kill()
        h.p.wait()
        assert c.acquire(timeout=5), "the dead holder's lock was not released"
        c.release()
    finally:
        h.stop()
        c.close()


def test_barrier_of_go_and_python_parties(tag: str) -> None:
    """Two Go and two Python parties pass a Barrier(4) together (SPEC 10.12),
    each with its own index, three times over."""
    b = gobridge.Barrier(4, name=tag)
    try:
        for _ in range(3):
            outs = run_all([go("bar-wait", tag), go("bar-wait", tag), py("bar-wait", tag), py("bar-wait", tag)])
            assert sorted(o.strip() for o in outs) == [f"index={i}" for i in range(4)]
            assert b.n_waiting == 0 and not b.broken
    finally:
        b.close()


@pytest.mark.parametrize("dead", ["go", "py"])
def test_barrier_sigkilled_party_breaks_it_for_the_other_language(tag: str, dead: str) -> None:
    """A party SIGKILLed while waiting at a Barrier(3): the party of the
    other language waiting with it gets BrokenBarrierError / ErrBrokenBarrier
    instead of waiting forever."""
    side = {"go": go, "py": py}
    b = gobridge.Barrier(3, name=tag)
    d = Proc(side[dead]("bar-wait", tag))
    w: "Proc | None" = None
    try:
        until(lambda: b.n_waiting == 1, "the first party never waited")
        w = Proc(side["py" if dead == "go" else "go"]("bar-wait", tag))
        until(lambda: b.n_waiting == 2, "the second party never waited")
        d.p.kill()
        d.p.wait()
        assert "broken" in w.wait_for(lambda ls: "broken" in ls)
        assert w.p.wait(30) == 0
        assert b.broken
        with pytest.raises(gobridge.BrokenBarrierError):
            b.wait(5)
        b.reset()
        assert not b.broken
    finally:
        d.stop()
        if w is not None:
            w.stop()
        b.close()


# -- Event, Barrier, Condition seeds (seeds/seed_event.py, seed_barrier.py,
#    seed_condition.py), each half in Go or Python ----------------------------

def sync_seed(lang: str, script: str, subst: List[str], role: str, *args: str) -> List[str]:
    """The argv of one half of a sync seed: the Python script via
    run_mp_seed.py, or mppeer's seed-ROLE (which prints the same lines)."""
    if lang == "go":
        return go(f"seed-{script.split('_')[1].split('.')[0]}-{role}", *[t.split("=", 1)[1] for t in subst], *args)
    return [sys.executable, os.path.join(SEEDS, "run_mp_seed.py"), os.path.join(SEEDS, script), str(INTERVAL),
            *subst, role, *args]


EVENT_WAITER = ["wait_for_event: starting", "wait_for_event: e.is_set()-> True"]
EVENT_MAIN = ["main: waiting before calling Event.set()", "main: event is set"]


@pytest.mark.parametrize("waiter,main", [("py", "go"), ("go", "py"), ("go", "go"), ("py", "py")])
def test_seed_event(tag: str, waiter: str, main: str) -> None:
    """seed_event.py: the waiter blocks in wait() until the main half sets
    the event."""
    subst = [f"seedevent={tag}"]
    w = Proc(sync_seed(waiter, "seed_event.py", subst, "waiter"))
    try:
        w.wait_for(lambda ls: EVENT_WAITER[0] in ls)
        (out,) = run_all([sync_seed(main, "seed_event.py", subst, "main", *([GO_INTERVAL] if main == "go" else []))])
        assert out.splitlines() == EVENT_MAIN
        assert w.p.wait(30) == 0
        assert w.wait_for(lambda ls: len(ls) == 2) == EVENT_WAITER
    finally:
        w.stop()


@pytest.mark.parametrize("n_go", [2, 1, 3, 0, 4])
def test_seed_barrier(tag: str, n_go: int) -> None:
    """seed_barrier.py: four workers, n_go of them Go processes and the rest
    Python processes of the seed, pass a Barrier(4) twice; in each round
    every index 0-3 is taken once."""
    ids = [str(i) for i in range(4)]
    py_ids, go_ids = ids[n_go:], ids[:n_go]
    argvs = [go("seed-barrier-worker", tag, i) for i in go_ids]
    if py_ids:
        argvs.append(sync_seed("py", "seed_barrier.py", [f"seedbarrier={tag}"], "workers", *py_ids))
    lines = [line for out in run_all(argvs, timeout=30) for line in out.splitlines()]
    assert sorted(line for line in lines if line.endswith(" starting")) == [f"worker-{i} starting" for i in py_ids]
    rounds: "dict[str, List[int]]" = {i: [] for i in ids}
    for line in lines:
        words = line.split()
        if line.endswith(" others"):
            assert words[1:4] == ["waiting", "for", "barrier"] and 0 <= int(words[5]) < 4, line
        elif not line.endswith(" starting"):
            assert words[1:3] == ["after", "barrier"], line
            rounds[words[0][len("worker-"):]].append(int(words[3]))
    assert sum(line.endswith(" others") for line in lines) == 8
    for r in range(2):
        assert sorted(rounds[i][r] for i in ids) == [0, 1, 2, 3], rounds


@pytest.mark.parametrize("producer,consumer", [("py", "go"), ("go", "py"), ("go", "go"), ("py", "py")])
def test_seed_condition(tag: str, producer: str, consumer: str) -> None:
    """seed_condition.py: three items through a shared Value guarded by a
    Condition, the consumer in wait_for(items > 0), the producer notifying.
    The test holds both objects so that neither half can outlive them, and
    starts the producer once the consumer waits, so that at least the first
    item is handed over by a notify."""
    subst = [f"seedcond={tag}", f"seedcondv={tag}v"]
    c = gobridge.Condition(name=tag)
    items = gobridge.Value("i", 0, name=tag + "v")
    cons = Proc(sync_seed(consumer, "seed_condition.py", subst, "consumer"))
    try:
        until(lambda: cv_waiting(c) == 1, "the consumer never waited")
        (out,) = run_all([sync_seed(producer, "seed_condition.py", subst, "producer",
                                    *([GO_INTERVAL] if producer == "go" else []))], timeout=30)
        assert [line.split(",")[0] for line in out.splitlines()] == ["produced one item"] * 3
        assert cons.p.wait(30) == 0
        lines = cons.wait_for(lambda ls: len(ls) == 3)
        assert [line.split(",")[0] for line in lines] == ["consumed one item"] * 3
        left = [int(line.split()[3]) for line in lines]
        assert all(0 <= n < 3 for n in left) and left[-1] == 0
        assert items.value == 0 and cv_waiting(c) == 0
    finally:
        cons.stop()
        items.close()
        c.close()
    assert not os.path.exists("/dev/shm/" + tag + "v"), "the Value was left behind"


# -- crash safety -------------------------------------------------------------

@pytest.mark.parametrize("holder", ["go", "py"])
def test_sigkilled_lock_holder_releases_the_lock(tag: str, holder: str) -> None:
    lk = gobridge.Lock(name=tag)
    h = Proc((go if holder == "go" else py)("hold-lock", tag))
    try:
        h.wait_for(lambda ls: "held" in ls)
        assert not lk.acquire(timeout=0.1)
        h.p.kill()
        h.p.wait()
        assert lk.acquire(timeout=5), "the dead holder's lock was not released"
        lk.release()
    finally:
        h.stop()
        lk.close()


@pytest.mark.parametrize("side", ["go", "py"])
def test_sigkill_inside_put_loses_nothing_returned(tag: str, side: str) -> None:
    """Writers killed at random points of a put loop: the queue stays usable
    and holds exactly a prefix 0..k of each writer's sequence, every message
    whole."""
    q = gobridge.Queue(name=tag, capacity=1 << 16)
    try:
        for round_ in range(6):
            w = Proc((go if side == "go" else py)("spin-put", tag, str(50 + round_ * 97)))
            w.wait_for(lambda ls: "started" in ls)
            time.sleep(0.005 * round_)
            w.p.kill()
            w.p.wait()
            w.stop()
            seqs = []
            while True:
                try:
                    m = q.get(timeout=0.2)
                except queue.Empty:
                    break
                seqs.append(m[0])
                assert len(m[1]) == 50 + round_ * 97
            assert seqs == list(range(len(seqs))) and seqs, f"round {round_}: {seqs[:5]}...{seqs[-5:]}"
            q.put("alive")  # the internal lock is not wedged
            assert q.get(timeout=1) == "alive"
    finally:
        q.close()


@pytest.mark.parametrize("side", ["go", "py"])
def test_sigkill_inside_get_never_wedges_or_duplicates(tag: str, side: str) -> None:
    q = gobridge.Queue(name=tag, capacity=1 << 16)
    try:
        total = 0
        for round_ in range(6):
            n = 300
            for i in range(n):
                q.put([round_, i])
            r = Proc((go if side == "go" else py)("spin-get", tag))
            r.wait_for(lambda ls: "started" in ls)
            time.sleep(0.002 * round_)
            r.p.kill()
            r.p.wait()
            r.stop()
            rest = []
            while True:
                try:
                    rest.append(q.get(timeout=0.2))
                except queue.Empty:
                    break
            # What the killed reader did not take is still there, in order,
            # each exactly once: a suffix of what was put.
            assert rest == [[round_, i] for i in range(n - len(rest), n)]
            total += n - len(rest)
        q.put("alive", timeout=1)
        assert q.get(timeout=1) == "alive"
    finally:
        q.close()


def test_kinds_and_typecodes_are_checked(tag: str) -> None:
    v = gobridge.Value("i", 1, name=tag)
    try:
        with pytest.raises(ValueError):
            gobridge.Queue(name=tag)
        with pytest.raises(ValueError):
            gobridge.Value("d", 0, name=tag)
        w = gobridge.Value("i", 99, name=tag)
        assert w.value == 1
        w.close()
    finally:
        v.close()


_WRAP_CASES = [("b", 200), ("b", -129), ("B", 300), ("B", -1), ("h", 40000), ("H", -2), ("i", 2**40 + 5),
               ("I", -1), ("l", 2**63), ("L", -1), ("q", -(2**63) - 1), ("Q", 2**64 + 7), ("f", 3), ("d", True),
               ("f", 0.1), ("i", True)]


@pytest.mark.parametrize("typecode,value", _WRAP_CASES)
def test_value_and_array_store_what_ctypes_stores(tag: str, typecode: str, value: int) -> None:
    """Out-of-range integers wrap and float typecodes take ints, exactly as
    multiprocessing's ctypes-backed Value and Array do."""
    import multiprocessing
    want = multiprocessing.Value(typecode, value, lock=False).value
    v = gobridge.Value(typecode, value, name=tag)
    try:
        a = gobridge.Array(typecode, [value, 0], name=tag + "-a")
    except BaseException:
        v.close()
        raise
    try:
        assert v.value == want
        v.value = 0
        v.value = value
        assert v.value == want
        a[1] = value
        assert a[:] == [want, want]
        a[0:2] = [0, value]
        assert a[:] == [0, want]
    finally:
        v.close()
        a.close()


def test_value_rejects_a_float_for_an_integer_typecode(tag: str) -> None:
    import multiprocessing
    with pytest.raises(TypeError):
        multiprocessing.Value("i", 1.5)  # ctypes raises too
    with pytest.raises(TypeError):
        gobridge.Value("i", 1.5, name=tag)


def test_queue_message_types_cross_language(tag: str) -> None:
    q = gobridge.Queue(name=tag)
    try:
        run_all([go("put", tag, '{"a": [1, 2.5, null, true], "b": {"$bin": "AAEC"}}')])
        assert q.get(timeout=5) == {"a": [1, 2.5, None, True], "b": b"\x00\x01\x02"}
        with pytest.raises(gobridge.EncodeError):
            q.put({1, 2})
        with pytest.raises(ValueError):
            q.put(b"x" * (2 << 20))
    finally:
        q.close()


def test_char_typecode_across_languages(tag: str) -> None:
    """Typecode 'c': bytes of length 1 in Python, a byte in Go
    (WithTypecode('c')), both ways: Python makes, Go reads and writes, Python
    reads; then Go makes them and Python attaches."""
    v = gobridge.Value("c", b"P", name=tag)
    a = gobridge.Array("c", b"py", name=tag + "-a")
    a_len = gobridge.RawArray("c", 4, name=tag + "-b")  # a 4-item one, for the Go role's length
    try:
        a_len.value = b"ab"
        (out,) = run_all([go("char", tag, tag + "-b")])
        assert out.split() == ["'P'", '"ab\\x00\\x00"']
        assert v.value == b"G" and a_len.raw == b"go\x00\x00" and a_len.value == b"go"
        with pytest.raises(ValueError):  # a 'c' object is not a 'B' one, either way
            gobridge.Value("B", name=tag)
        assert a.value == b"py"
    finally:
        v.close()
        a.close()
        a_len.close()
    p = subprocess.Popen(go("char-make", tag, tag + "-b"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdin is not None
        assert p.stdout.readline() == "ready\n"
        v = gobridge.Value("c", name=tag, create=False)
        a_len = gobridge.Array("c", 4, name=tag + "-b", create=False)
        try:
            assert v.value == b"g" and a_len.value == b"go!" and a_len.raw == b"go!\x00"
            v.value = b"p"
            a_len[0:2] = b"py"
        finally:
            v.close()
            a_len.close()
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0
        assert out.split() == ["'p'", '"py!\\x00"']
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_simple_queue_across_languages(tag: str) -> None:
    """A Python SimpleQueue is a queue to Go's mp.OpenQueue, both ways."""
    sq = gobridge.SimpleQueue(name=tag)
    try:
        run_all([go("put", tag, '{"from": "go"}')])
        assert sq.get() == {"from": "go"}
        assert sq.empty()
        sq.put([1, "py"])
        (out,) = run_all([go("get", tag)])
        assert out == "[1 py]\n"
        assert sq.empty()
    finally:
        sq.close()
