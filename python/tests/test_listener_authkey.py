"""Listener(authkey=) and Client(authkey=) on every transport (SPEC 14), against
each other and against unmodified multiprocessing.connection peers, in this
interpreter and in every CPython 3.10-3.13 found (3.10/3.11 answer with the
legacy HMAC-MD5 form, 3.12/3.13 with {sha256})."""
import multiprocessing.connection as mpc
import os
import socket
import subprocess
import sys
from multiprocessing import AuthenticationError

import pytest

import gobridge
from gobridge import Client, Listener

from gbtest_support import in_thread, unique_name
from test_authkey import interpreters

KEY = b"the key"


def address(kind, sockdir):
    if kind == "unix":
        return "unix:" + os.path.join(sockdir, "k.sock")
    if kind == "fifo":
        return "fifo:" + os.path.join(sockdir, "k.fifo")
    return "shm:" + unique_name("authkey")


TRANSPORTS = ["unix", "fifo", "shm"]


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("key", [KEY, b""])
def test_gobridge_both_ends(sockdir, kind, key):
    with Listener(address(kind, sockdir), authkey=key) as l:
        join = in_thread(l.accept)
        with Client(l.address, authkey=key, timeout=10) as c, join() as s:
            c.send({"n": 1})
            assert s.recv() == {"n": 1}
            s.send_bytes(b"back")
            assert c.recv_bytes() == b"back"


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_wrong_key_and_no_key_then_the_listener_keeps_serving(sockdir, kind):
    with Listener(address(kind, sockdir), authkey=KEY, handshake_timeout=1.0) as l:
        # A wrong key: both ends raise AuthenticationError.
        join = in_thread(l.accept, 10)
        with pytest.raises(AuthenticationError):
            Client(l.address, authkey=b"wrong", timeout=10)
        with pytest.raises(AuthenticationError):
            join()
        # No key: the client waits for a message, the listener for its reply,
        # until the handshake deadline.
        join = in_thread(l.accept, 10)
        c = Client(l.address, timeout=10)
        try:
            with pytest.raises(AuthenticationError, match="timed out"):
                join()
        finally:
            c.close()
        # Then a good client.
        join = in_thread(l.accept, 10)
        with Client(l.address, authkey=KEY, timeout=10) as c, join() as s:
            c.send_bytes(b"ok")
            assert s.recv_bytes() == b"ok"


@pytest.mark.parametrize("sent", [b"", b"\x00\x00", b"\x00\x00\x00\x20{sha"])
def test_a_client_stalled_mid_frame_fails_its_accept_only(sockdir, sent):
    path = os.path.join(sockdir, "s.sock")
    with Listener(path, authkey=KEY, handshake_timeout=0.5) as l:
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(path)
        try:
            # Read the challenge, answer with part of a frame (or nothing).
            join = in_thread(l.accept, 10)
            mpc.Connection(os.dup(raw.fileno())).recv_bytes(256)
            raw.sendall(sent)
            with pytest.raises(AuthenticationError, match="timed out"):
                join()
        finally:
            raw.close()
        join = in_thread(l.accept, 10)
        with Client(path, authkey=KEY, timeout=10) as c, join() as s:
            s.send_bytes(b"still serving")
            assert c.recv_bytes() == b"still serving"


def test_stdlib_client_and_stdlib_listener_in_this_interpreter(sockdir):
    path = os.path.join(sockdir, "std.sock")
    with Listener(path, authkey=KEY) as l:
        join = in_thread(l.accept, 10)
        with mpc.Client(path, authkey=KEY) as c, join() as s:
            c.send({"from": "stdlib"})  # a pickle: read its bytes
            assert s.recv_bytes().startswith(b"\x80")
            s.send_bytes(b"raw")
            assert c.recv_bytes() == b"raw"
        join = in_thread(l.accept, 10)
        with pytest.raises(AuthenticationError):
            mpc.Client(path, authkey=b"wrong")
        with pytest.raises(AuthenticationError):
            join()
    path2 = os.path.join(sockdir, "std2.sock")
    with mpc.Listener(path2, authkey=KEY) as sl:
        join = in_thread(sl.accept)
        with Client(path2, authkey=KEY, timeout=10) as c, join() as s:
            c.send_bytes(b"to stdlib")
            assert s.recv_bytes() == b"to stdlib"
        join = in_thread(sl.accept)
        with pytest.raises(AuthenticationError):
            Client(path2, authkey=b"wrong", timeout=10)
        with pytest.raises(AuthenticationError):
            join()


STDLIB_CLIENT = """
import sys
from multiprocessing.connection import Client
c = Client(sys.argv[1], authkey=sys.argv[2].encode())
c.send_bytes(b"hello from " + sys.version.split()[0].encode())
print(c.recv_bytes().decode())
c.close()
"""

STDLIB_LISTENER = """
import sys
from multiprocessing.connection import Listener
with Listener(sys.argv[1], authkey=b"the key") as l:
    print("ready", flush=True)
    for _ in range(2):
        try:
            with l.accept() as c:
                c.send_bytes(c.recv_bytes() + b" back")
        except Exception as e:
            print(type(e).__name__, flush=True)
"""


@pytest.mark.parametrize("python", interpreters())
def test_every_stdlib_as_client(sockdir, python):
    path = os.path.join(sockdir, "py.sock")
    with Listener(path, authkey=KEY) as l:
        proc = subprocess.Popen([python, "-I", "-c", STDLIB_CLIENT, path, KEY.decode()],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with l.accept(timeout=20) as s:
                assert s.recv_bytes().startswith(b"hello from 3.")
                s.send_bytes(b"welcome")
            out, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == 0, err
        assert out.strip() == b"welcome"
        proc = subprocess.Popen([python, "-I", "-c", STDLIB_CLIENT, path, "wrong"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with pytest.raises(AuthenticationError):
                l.accept(timeout=20)
            _, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
            proc.wait()
        assert b"AuthenticationError" in err


@pytest.mark.parametrize("python", interpreters())
def test_every_stdlib_as_listener(sockdir, python):
    path = os.path.join(sockdir, "pl.sock")
    proc = subprocess.Popen([python, "-I", "-c", STDLIB_LISTENER, path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        with Client(path, authkey=KEY, timeout=10) as c:
            c.send_bytes(b"hi")
            assert c.recv_bytes() == b"hi back"
        with pytest.raises(AuthenticationError):
            Client(path, authkey=b"wrong", timeout=10)
        assert proc.stdout.readline() == b"AuthenticationError\n"
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_authkey_must_be_bytes(sockdir):
    with pytest.raises(TypeError):
        Listener(os.path.join(sockdir, "t.sock"), authkey="text")
    with pytest.raises(TypeError):
        Client(os.path.join(sockdir, "t.sock"), authkey=memoryview(b"x"))
    assert os.listdir(sockdir) == []
    assert gobridge.AuthenticationError is AuthenticationError
