"""Connections go to spawn and forkserver children, as multiprocessing's do.

Their descriptors travel as multiprocessing.reduction.DupFd; the child's
end works on every descriptor transport (socketpair, os.pipe, unix:, fifo:).
shm: connections refuse with TypeError. A Go peer on the other end is in
interop_tests/test_pickle_interop.py.
"""
import multiprocessing
import os
import pickle

import pytest

import gobridge

import _pickle_children as kids
from gbtest_support import in_thread, unique_name

METHODS = ["spawn", "forkserver", "fork"]
JOIN = 60


def _run(method, target, *args):
    p = multiprocessing.get_context(method).Process(target=target, args=args)
    p.start()
    return p


def _joined(p):
    p.join(JOIN)
    assert p.exitcode == 0, p.exitcode


def _duplex_pairs(sockdir):
    out = [gobridge.Pipe()]
    with gobridge.Listener("unix:" + os.path.join(sockdir, "p.sock")) as l:
        join = in_thread(l.accept)
        c = gobridge.Client(l.address)
        out.append((join(), c))
    with gobridge.Listener("fifo:" + os.path.join(sockdir, "p.fifo")) as l:
        join = in_thread(l.accept)
        c = gobridge.Client(l.address)
        out.append((join(), c))
    return out


@pytest.mark.parametrize("method", METHODS)
def test_duplex_end_works_in_the_child(method, sockdir):
    for mine, theirs in _duplex_pairs(sockdir):
        try:
            p = _run(method, kids.echo_once, theirs)
            theirs.close()  # the child has its own copy
            mine.send({"n": 1})
            assert mine.poll(JOIN)
            assert mine.recv() == [{"n": 1}, "child"]
            _joined(p)
            assert mine.poll(JOIN)  # the child closed its end: end of stream
            with pytest.raises(EOFError):
                mine.recv()
        finally:
            mine.close()
            theirs.close()


@pytest.mark.parametrize("method", METHODS)
def test_one_way_ends_work_in_the_child(method):
    r, w = gobridge.Pipe(duplex=False)
    rep_r, rep_w = gobridge.Pipe(duplex=False)
    try:
        p = _run(method, kids.recv_then_report, r, rep_w)
        r.close()
        rep_w.close()
        w.send_bytes(b"to the child")
        assert rep_r.poll(JOIN)
        assert rep_r.recv_bytes() == b"to the child"
        _joined(p)
        r2, w2 = gobridge.Pipe(duplex=False, max_frame_size=1000)
        p = _run(method, kids.send_on, w2, "from the child")
        w2.close()
        assert r2.poll(JOIN)
        assert r2.recv() == "from the child"
        _joined(p)
        r2.close()
    finally:
        for c in (r, w, rep_r, rep_w):
            c.close()


def test_child_keeps_direction_and_frame_limit():
    r, w = gobridge.Pipe(duplex=False, max_frame_size=1234)
    try:
        from multiprocessing.reduction import ForkingPickler
        # in this process the resource sharer stands in for a spawning parent
        copy = pickle.loads(ForkingPickler.dumps(r))
        assert copy.readable and not copy.writable and copy.max_frame_size == 1234
        assert copy.fileno() != r.fileno()
        w.send("via the copy")
        assert copy.recv() == "via the copy"
        copy.close()
        assert not r.closed
    finally:
        r.close()
        w.close()


def test_plain_pickle_and_shm_refuse_with_typeerror():
    a, b = gobridge.Pipe()
    try:
        with pytest.raises(TypeError, match="outside multiprocessing"):
            pickle.dumps(a)
    finally:
        a.close()
        b.close()
    with gobridge.Listener("shm:" + unique_name("pickle")) as l:
        join = in_thread(l.accept)
        c = gobridge.Client(l.address)
        s = join()
        try:
            from multiprocessing.reduction import ForkingPickler
            with pytest.raises(TypeError, match="shm: connection"):
                ForkingPickler.dumps(c)
            with pytest.raises(TypeError, match="shm: connection"):
                pickle.dumps(c)
            p = multiprocessing.get_context("spawn").Process(target=kids.echo_once, args=(s,))
            with pytest.raises(TypeError, match="shm: connection"):
                p.start()
        finally:
            c.close()
            s.close()
