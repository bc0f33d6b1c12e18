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


# --- the hostile side (SPEC 13, 14): each gives AuthenticationError and the
# listener goes on serving -------------------------------------------------

def raw_client(path):
    """A stdlib Connection on a plain socket to path: sends whatever we say."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return mpc.Connection(s.detach())


def reply_to(challenge, key=KEY):
    """The reply a key holder sends to a #CHALLENGE# message (3.12 form)."""
    import hmac

    message = challenge[len(b"#CHALLENGE#"):]
    assert message.startswith(b"{sha256}")
    return b"{sha256}" + hmac.new(key, message, "sha256").digest()


def still_serves(l, path):
    join = in_thread(l.accept, 10)
    with Client(path, authkey=KEY, timeout=10) as c, join() as s:
        s.send_bytes(b"still serving")
        assert c.recv_bytes() == b"still serving"


@pytest.mark.parametrize("attack", ["oversized", "malformed", "no prefix", "wrong length", "hang up", "huge header"])
def test_hostile_replies(sockdir, attack):
    path = os.path.join(sockdir, "h.sock")
    with Listener(path, authkey=KEY, handshake_timeout=5) as l:
        join = in_thread(l.accept, 10)
        raw = raw_client(path)
        try:
            assert raw.recv_bytes(256).startswith(b"#CHALLENGE#{sha256}")
            sock = socket.socket(fileno=os.dup(raw.fileno()))
            if attack == "oversized":
                sock.sendall(b"\x00\x00\x10\x00" + b"x" * 4096)
            elif attack == "huge header":
                sock.sendall(b"\xff\xff\xff\xff" + (2**62).to_bytes(8, "big"))
            elif attack == "malformed":
                raw.send_bytes(b"{sha256}" + b"\x00" * 5)
            elif attack == "no prefix":
                raw.send_bytes(b"x" * 32)
            elif attack == "wrong length":
                raw.send_bytes(b"{md5}" + b"\x00" * 32)
            sock.close()
            if attack == "hang up":
                raw.close()
            with pytest.raises(AuthenticationError) as e:
                join()
            if attack in ("oversized", "huge header"):
                assert isinstance(e.value.__cause__, gobridge.FrameTooLargeError)
            if attack == "hang up":
                assert isinstance(e.value.__cause__, EOFError)
        finally:
            raw.close()
        still_serves(l, path)


def test_a_replayed_reply_fails(sockdir):
    path = os.path.join(sockdir, "r.sock")
    with Listener(path, authkey=KEY) as l:
        # Connection 1: a key holder; its reply is recorded.
        join = in_thread(l.accept, 10)
        first = raw_client(path)
        recorded = reply_to(first.recv_bytes(256))
        first.send_bytes(recorded)
        assert first.recv_bytes(256) == b"#WELCOME#"
        mpc.deliver_challenge(first, KEY)  # our half of the mutual handshake
        join().close()
        first.close()
        # Connection 2: the recorded reply against a fresh challenge.
        join = in_thread(l.accept, 10)
        second = raw_client(path)
        try:
            challenge = second.recv_bytes(256)
            assert reply_to(challenge) != recorded  # fresh random bytes
            second.send_bytes(recorded)
            assert second.recv_bytes(256) == b"#FAILURE#"
            with pytest.raises(AuthenticationError, match="digest received was wrong"):
                join()
        finally:
            second.close()
        still_serves(l, path)


def test_many_clients_at_once(sockdir):
    path = os.path.join(sockdir, "m.sock")
    n = 16
    with Listener(path, backlog=n, authkey=KEY) as l:
        results = {}

        def client(i):
            key = KEY if i % 4 else b"wrong"
            try:
                with Client(path, authkey=key, timeout=20) as c:
                    c.send(i)
                    results[i] = c.recv()
            except AuthenticationError:
                results[i] = "refused"

        import threading
        ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        refused = served = 0
        for _ in range(n):
            try:
                with l.accept(timeout=20) as s:
                    s.send(s.recv() * 10)
                    served += 1
            except AuthenticationError:
                refused += 1
        for t in ts:
            t.join(20)
        assert (served, refused) == (12, 4)
        assert results == {i: (i * 10 if i % 4 else "refused") for i in range(n)}


@pytest.mark.parametrize("attack", ["silent", "oversized", "not a challenge", "short challenge"])
def test_hostile_listeners(sockdir, attack):
    """A listener that does not play by the rules fails Client() with
    AuthenticationError within its timeout, never a hang."""
    path = os.path.join(sockdir, "hl.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        s, _ = srv.accept()
        c = mpc.Connection(s.detach())
        if attack == "oversized":
            c.send_bytes(b"#CHALLENGE#{sha256}" + b"x" * 1000)
        elif attack == "not a challenge":
            c.send_bytes(b"#WELCOME#")
        elif attack == "short challenge":
            c.send_bytes(b"#CHALLENGE#" + b"x" * 19)
        return c

    join = in_thread(serve)
    try:
        with pytest.raises(AuthenticationError):
            Client(path, authkey=KEY, timeout=0.5)
        join().close()
    finally:
        srv.close()
