"""A seeded randomized attack on the readers of the shared objects: a few
thousand segments, each a real object's bytes cut short and patched where a
hostile process could write, opened and used through gobridge.queues and gobridge._internal.objects.
Go's twin is bridge/mp's FuzzObjectSegment."""
import os
import queue
import time

import gobridge
from gobridge._internal import objects as O
from gobridge import queues as Q
from gobridge._internal import shmseg as _shm

from gbtest_support import unique_name


def plant(name: str, data: bytes) -> str:
    p = _shm.path(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def read(p: str) -> bytes:
    with open(p, "rb") as f:
        return f.read()


def _templates(tag: str):
    """Bytes of real objects: a joinable queue whose last payload wraps the
    ring with a commit left in each redo log, a value, a semaphore, an array."""
    out = {}
    n = tag + "-tq"
    q = gobridge.JoinableQueue(6, name=n, capacity=256)
    for i, v in enumerate(["a", [1, 2.5, None], b"\x00" * 60, "wraps around the ring's end", 7]):
        q.put(v)
        if i < 3:
            q.get()
    h = q._h
    h.lock_get()
    hd, gs = h.u64(Q.Q_HEAD), h.u64(Q.Q_GETSEQ)
    (ln,) = Q._LEN.unpack_from(q._ring, hd % 256)
    Q._GET_ENTRIES.pack_into(h.mm, O.OFF_GET_REDO_N + 8, Q.Q_HEAD, 8, hd + 8 + ((ln + 7) & ~7), Q.Q_GETSEQ, 8, gs + 1)
    h.set32(O.OFF_GET_REDO_N, 2)
    h.unlock_get()
    out["queue"] = read(_shm.path(n))
    q.close()
    for k, make in (("value", lambda x: gobridge.Value("d", 2.5, name=x)),
                    ("semaphore", lambda x: gobridge.Semaphore(2, name=x)),
                    ("array", lambda x: gobridge.Array("h", [1, -2, 3], name=x))):
        o = make(tag + "-t" + k)
        out[k] = read(_shm.path(tag + "-t" + k))
        o.close()
    return out


def test_randomized_hostile_segments() -> None:
    """A few thousand segments, each a real object's bytes cut short and
    patched at random offsets (seeded): opening and every operation end in a
    documented error or a result, never another exception, a crash, a
    message larger than the ring or a wait."""
    import random
    rng = random.Random(20261201)
    tag = unique_name("rand")
    tmpl = _templates(tag)
    allowed = (O.LayoutError, queue.Empty, queue.Full, gobridge.DecodeError)
    counts = {"opened": 0, "refused": 0}
    deadline = time.monotonic() + 20
    for case in range(3000):
        kind = rng.choice(list(tmpl))
        seg = bytearray(tmpl[kind])
        if rng.random() < 0.1:
            del seg[rng.randrange(len(seg) + 1):]
        for _ in range(rng.choice((1, 1, 2, 3, 8))):
            if seg:
                if rng.random() < 0.5:
                    seg[rng.randrange(min(len(seg), 320))] = rng.randrange(256)  # mostly the header and fields
                else:
                    seg[rng.randrange(len(seg))] = rng.randrange(256)
        n = f"{tag}-{case}"
        p = plant(n, bytes(seg))
        try:
            try:
                if kind == "queue":
                    o = gobridge.Queue(name=n)
                elif kind == "value":
                    o = gobridge.Value("d", 0, name=n)
                elif kind == "semaphore":
                    o = gobridge.Semaphore(0, name=n)
                else:
                    o = gobridge.Array("h", 3, name=n)
            except O.LayoutError:
                counts["refused"] += 1
                continue
            counts["opened"] += 1
            try:
                for op in range(4):
                    try:
                        if kind == "queue":
                            if op < 3:
                                m = o._get(False, None)
                                assert len(m) <= o._cap
                                gobridge.decode(m)
                            else:
                                o.put_nowait(["fuzz", 1])
                                o.qsize()
                                o.full()
                                if isinstance(o, gobridge.JoinableQueue):
                                    o.task_done()
                        elif kind == "value":
                            o.value = o.value + 1
                        elif kind == "semaphore":
                            if o.acquire(False):
                                o.release()
                            o.get_value()
                        else:
                            o[1] = o[2]
                            list(o)
                    except allowed:
                        pass
                    except ValueError as e:
                        assert "too many times" in str(e), e  # a semaphore count at its limit
            finally:
                o.close()
        finally:
            if os.path.lexists(p):
                os.unlink(p)
        assert time.monotonic() < deadline, f"too slow: {case} cases"
    assert counts["opened"] > 500 and counts["refused"] > 100, counts
