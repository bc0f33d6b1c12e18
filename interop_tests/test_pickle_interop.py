"""Connections to a Go peer, handed to spawn and forkserver children.

The Python end is pickled by multiprocessing (its descriptor passed along,
SPEC 6.4's exact reads make the hand-off after a receive safe) and the
child's end talks to Go in both directions. Python-to-Python is in
python/tests/test_pickling.py.
"""
import multiprocessing
import os
import subprocess

import pytest

import gobridge

import pickle_peers

JOIN = 60


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_child_asks_a_go_echo_server(method, serve):
    _, addr = serve("echo")
    with gobridge.Client(addr) as c:
        c.send("parent first")
        assert c.recv() == "parent first"
        rep_r, rep_w = gobridge.Pipe(duplex=False)
        p = multiprocessing.get_context(method).Process(target=pickle_peers.ask,
                                                         args=(c, {"from": "child"}, rep_w))
        p.start()
        rep_w.close()
        assert rep_r.poll(JOIN)
        assert rep_r.recv() == {"from": "child"}  # Python child -> Go -> Python child
        p.join(JOIN)
        assert p.exitcode == 0
        rep_r.close()
        c.send("parent again")  # the parent's copy still works
        assert c.recv() == "parent again"


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_go_sender_to_a_child_after_the_parent_took_one(method, gb_bin, sockdir):
    addr = "unix:" + os.path.join(sockdir, "g.sock")
    with gobridge.Listener(addr) as l:
        proc = subprocess.Popen([gb_bin, "send", addr, "1", "2", "3", '"four"'],
                                stderr=subprocess.PIPE, text=True)
        c = l.accept()
        try:
            assert c.recv() == 1
            rep_r, rep_w = gobridge.Pipe(duplex=False)
            p = multiprocessing.get_context(method).Process(target=pickle_peers.relay, args=(c, rep_w))
            p.start()
            rep_w.close()
            c.close()  # only the child reads now
            assert rep_r.poll(JOIN)
            assert rep_r.recv() == [2, 3, "four"]  # none lost to the parent's receive
            p.join(JOIN)
            assert p.exitcode == 0
            rep_r.close()
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
        finally:
            c.close()
            proc.stderr.close()
