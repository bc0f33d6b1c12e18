"""Exact readiness and fork safety with Go as the sender (SPEC 6.4).

`gobridge send` (Go) writes the messages; the Python end, after taking one,
must still see the rest through select/selectors/wait on fileno(), and
forked Python readers sharing that end must each get distinct messages.
The Python-to-Python cases are in python/tests/test_readiness.py.
"""
import multiprocessing
import multiprocessing.connection
import os
import select
import selectors
import socket
import subprocess
import time

import gobridge

WAIT = 10.0


def _send(gb_bin, addr, values, stdin=None):
    return subprocess.Popen([gb_bin, "send", addr, *values], stdin=subprocess.PIPE if stdin else None,
                            stderr=subprocess.PIPE, text=True)


def _ready(conn):
    fd = conn.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        via_selectors = bool(sel.select(WAIT))
    return {
        "select": bool(select.select([fd], [], [], WAIT)[0]),
        "selectors": via_selectors,
        "mp.wait": multiprocessing.connection.wait([conn], WAIT) == [conn],
    }


def _queued(conn, nbytes):
    """Wait until nbytes are in conn's socket (peeked, nothing consumed)."""
    s = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        deadline = time.monotonic() + WAIT
        while len(s.recv(nbytes + 1, socket.MSG_PEEK)) < nbytes:
            assert time.monotonic() < deadline, "the Go sender's messages did not arrive"
            time.sleep(0.01)
    finally:
        s.close()


def test_go_sender_rest_visible_after_one_recv(gb_bin, sockdir):
    addr = "unix:" + os.path.join(sockdir, "r.sock")
    with gobridge.Listener(addr) as l:
        proc = _send(gb_bin, addr, [], stdin=True)  # stays connected until stdin closes
        with l.accept() as c:
            try:
                proc.stdin.write('0\n1\n2\n"3"\n')
                proc.stdin.flush()
                _queued(c, 4 * 5 + 1)  # 4-byte headers, 1-byte payloads, but "3" has 2
                for want in (0, 1, 2):
                    assert c.recv() == want
                    got = _ready(c)
                    assert all(got.values()), (want, got)
                assert c.recv() == "3"
                assert select.select([c.fileno()], [], [], 0)[0] == []
                assert multiprocessing.connection.wait([c], 0) == []
            finally:
                proc.stdin.close()
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
            got = _ready(c)  # end of stream is readable
            assert all(got.values()), got
    proc.stderr.close()


def test_go_sender_forked_python_readers(gb_bin, sockdir):
    """Go sends n messages; the Python end takes one, then three forked
    readers share it under a lock: each message reaches exactly one."""
    n = 2000
    addr = "unix:" + os.path.join(sockdir, "f.sock")
    lock = multiprocessing.get_context("fork").Lock()
    with gobridge.Listener(addr) as l:
        proc = _send(gb_bin, addr, [], stdin=True)
        c = l.accept()
        try:
            proc.stdin.write("".join(f"{i}\n" for i in range(n)) + "null\nnull\nnull\n")
            proc.stdin.close()
            assert c.recv() == 0
            kids = []
            for _ in range(3):
                back_r, back_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        os.close(back_r)
                        got = []
                        while True:
                            with lock:
                                m = c.recv()
                            if m is None:
                                break
                            got.append(m)
                        os.write(back_w, gobridge.encode(got))
                        code = 0
                    finally:
                        os._exit(code)
                os.close(back_w)
                kids.append((pid, back_r))
            taken = []
            for pid, back_r in kids:
                data = b""
                while chunk := os.read(back_r, 65536):
                    data += chunk
                os.close(back_r)
                assert os.waitpid(pid, 0)[1] == 0
                taken += gobridge.decode(data)
            assert sorted(taken) == list(range(1, n))
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
        finally:
            c.close()
            proc.stderr.close()
