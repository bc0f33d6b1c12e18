"""`gobridge queue put|get|stat` against a Python-held gobridge.Queue, and
`gobridge shm ls` naming the kinds of the shared objects."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Iterator, List

import pytest

import gobridge
from conftest import gobridge_bin
from shm_support import PREFIX, unique_tag


@pytest.fixture
def tag() -> Iterator[str]:
    t = unique_tag("mpcli")
    yield t
    if os.path.exists("/dev/shm/" + t):
        os.unlink("/dev/shm/" + t)
        pytest.fail(f"{t} left behind")


def gb(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([gobridge_bin(), *args], capture_output=True, text=True, timeout=30)


def test_put_get_stat(tag: str) -> None:
    q = gobridge.Queue(3, name=tag)
    try:
        r = gb("queue", "put", tag, "1", '"two"', '{"$bin": "AAE="}', '{"a": [1.5, null]}', "--timeout", "0.1")
        assert r.returncode == 1 and "full" in r.stderr, r  # maxsize 3
        assert q.get(timeout=1) == 1
        assert [q.get(timeout=1), q.get(timeout=1)] == ["two", b"\x00\x01"]
        q.put({"k": [True, None]})
        st = json.loads(gb("queue", "stat", tag).stdout)
        assert st["kind"] == "queue" and st["maxsize"] == 3 and st["qsize"] == st["puts"] - st["gets"]
        out = gb("queue", "get", tag, "--count", str(st["qsize"]), "--timeout", "1")
        lines: List[str] = out.stdout.splitlines()
        assert lines[-1] == '{"k":[true,null]}', out
        r = gb("queue", "get", tag, "--timeout", "0.05")
        assert r.returncode == 1 and "empty" in r.stderr
    finally:
        q.close()
    r = gb("queue", "get", tag, "--timeout", "0.05")
    assert r.returncode == 1 and "no queue" in r.stderr


def test_put_keep_then_rm(tag: str) -> None:
    assert gb("queue", "put", tag, "--keep", '"kept"').returncode == 0
    q = gobridge.Queue(name=tag)
    try:
        assert q.get(timeout=1) == "kept"
    finally:
        q.close()
    assert gb("shm", "rm", tag).returncode == 0


def test_shm_ls_shows_kinds(tag: str) -> None:
    objs = [gobridge.Queue(name=tag + "-q"), gobridge.JoinableQueue(name=tag + "-j"), gobridge.Value("d", 1, name=tag + "-v"),
            gobridge.Array("i", 3, name=tag + "-a"), gobridge.Semaphore(2, name=tag + "-s"), gobridge.Lock(name=tag + "-l"),
            gobridge.RLock(name=tag + "-r"), gobridge.BoundedSemaphore(1, name=tag + "-b"), gobridge.Event(name=tag + "-e"),
            gobridge.Condition(name=tag + "-c"), gobridge.Barrier(2, name=tag + "-w")]
    try:
        ls = json.loads(gb("shm", "ls", "--json", "--prefix", PREFIX).stdout)
        kinds = {e["tag"][len(tag) + 1:]: e["kind"] for e in ls if e["tag"].startswith(tag + "-")}
        assert kinds == {"q": "queue", "j": "joinable_queue", "v": "value", "a": "array", "s": "semaphore",
                         "l": "lock", "r": "rlock", "b": "bounded_semaphore", "e": "event", "c": "condition",
                         "w": "barrier"}
    finally:
        for o in objs:
            o.close()


def test_bench_queue_quick() -> None:
    r = subprocess.run([gobridge_bin(), "bench", "--python", sys.executable, "--quick", "--json", "queue"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    pairs = {(x["name"], x["pairing"]) for x in res}
    for p in ("go->py", "py->go"):
        assert ("queue 64B", p) in pairs and ("queue put->get", p) in pairs
    assert all(x["value"] > 0 for x in res)


def _interrupted_get(q: gobridge.Queue) -> None:
    """Leave a get committed but not applied: the redo log's count is set,
    head and get_seq are not, as a getter killed just after its commit point
    leaves them (SPEC 10.5)."""
    from gobridge import queues as Q
    h = q._h
    h.lock_get()
    try:
        hd, gs = h.u64(Q.Q_HEAD), h.u64(Q.Q_GETSEQ)
        (n,) = Q._LEN.unpack_from(q._ring, hd % q._cap)
        Q._GET_ENTRIES.pack_into(h.mm, Q.OFF_GET_REDO_N + 8, Q.Q_HEAD, 8, hd + 8 + ((n + 7) & ~7),
                                 Q.Q_GETSEQ, 8, gs + 1)
        h.set32(Q.OFF_GET_REDO_N, 2)
    finally:
        h.unlock_get()


def _interrupted_put(q: gobridge.Queue, payload: bytes) -> None:
    """Leave a put committed but not applied (a putter killed just after its
    commit point): the record is in the ring, the header's redo log set."""
    from gobridge import queues as Q
    h = q._h
    h.lock()
    try:
        tl, ps = h.u64(Q.Q_TAIL), h.u64(Q.Q_PUTSEQ)
        at = tl % q._cap
        Q._LEN.pack_into(q._ring, at, len(payload))
        q._ring[at + 8:at + 8 + len(payload)] = payload
        Q._PUT_ENTRIES2.pack_into(h.mm, Q.OFF_REDO_N + 8, Q.Q_TAIL, 8, tl + 8 + ((len(payload) + 7) & ~7),
                                  Q.Q_PUTSEQ, 8, ps + 1)
        h.set32(Q.OFF_REDO_N, 2)
    finally:
        h.unlock()


@pytest.mark.parametrize("getter", ["go", "py"])
def test_interrupted_get_commit_is_finished_by_the_next_getter(tag: str, getter: str) -> None:
    q = gobridge.Queue(name=tag)
    try:
        q.put("first")
        q.put("second")
        _interrupted_get(q)
        if getter == "go":
            out = gb("queue", "get", tag, "--timeout", "1")
            assert out.returncode == 0 and out.stdout.splitlines() == ['"second"'], out
        else:
            assert q.get_nowait() == "second"
        assert q.qsize() == 0
        st = json.loads(gb("queue", "stat", tag).stdout)
        assert st["gets"] == 2 and st["used_bytes"] == 0, st
    finally:
        q.close()


@pytest.mark.parametrize("getter", ["go", "py"])
def test_interrupted_put_commit_is_finished_by_a_getter(tag: str, getter: str) -> None:
    """Nobody puts after the killed putter: the getter that finds the queue
    empty finishes the commit under the internal lock and gets the message."""
    q = gobridge.Queue(name=tag)
    try:
        _interrupted_put(q, gobridge.encode("orphan"))
        if getter == "go":
            out = gb("queue", "get", tag, "--timeout", "1")
            assert out.returncode == 0 and out.stdout.splitlines() == ['"orphan"'], out
        else:
            assert q.get_nowait() == "orphan"
        q.put("next")
        assert q.get(timeout=1) == "next"
    finally:
        q.close()
