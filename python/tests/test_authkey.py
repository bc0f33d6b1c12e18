"""gobridge._authkey against the real multiprocessing handshake, on every
CPython 3.10-3.13 found (3.10/3.11: the legacy MD5 form, 3.12/3.13: the
{digest} form), over real socketpairs."""
import glob
import hmac
import multiprocessing.connection as mpc
import os
import socket
import subprocess
import sys
import time
from multiprocessing import AuthenticationError

import pytest

import gobridge
from gobridge import _authkey

from gbtest_support import in_thread

KEY = b"the key"
PKG_DIR = os.path.dirname(_authkey.__file__)


def interpreters():
    env = os.environ.get("GOBRIDGE_PYTHONS")
    if env:
        return env.split()
    found = []
    for v in ("3.10", "3.11", "3.12", "3.13"):
        found += sorted(glob.glob(f"/root/.pyenv/versions/{v}.*/bin/python{v}"))
    return found or [sys.executable]


def stdlib_pair():
    a, b = socket.socketpair()
    ca, cb = mpc.Connection(a.detach()), mpc.Connection(b.detach())
    return ca, cb


@pytest.fixture
def pair():
    ca, cb = stdlib_pair()
    yield ca, cb
    ca.close()
    cb.close()


# (our side, the stdlib side that pairs with it)
ROLES = [
    (_authkey.deliver_challenge, mpc.answer_challenge),
    (_authkey.answer_challenge, mpc.deliver_challenge),
]


@pytest.mark.parametrize("ours,theirs", ROLES)
def test_against_this_stdlib(pair, ours, theirs):
    a, b = pair
    join = in_thread(theirs, b, KEY)
    ours(a, KEY)
    join()
    a.send_bytes(b"in step")
    assert b.recv_bytes() == b"in step"


@pytest.mark.parametrize("ours,theirs", ROLES)
def test_wrong_key_fails_on_both_ends(pair, ours, theirs):
    a, b = pair
    join = in_thread(theirs, b, b"other key")
    with pytest.raises(AuthenticationError):
        ours(a, KEY)
    with pytest.raises(AuthenticationError):
        join()


def test_gobridge_both_ends_and_mutual(pair):
    a, b = pair
    join = in_thread(_authkey.client_handshake, b, KEY)
    _authkey.accept_handshake(a, KEY)
    join()


def test_over_gobridge_connections():
    a, b = gobridge.Pipe()
    with a, b:
        join = in_thread(_authkey.answer_challenge, b, KEY)
        _authkey.deliver_challenge(a, KEY)
        join()


def test_challenge_is_modern_form(pair):
    a, b = pair
    join = in_thread(_authkey.deliver_challenge, a, KEY)
    msg = b.recv_bytes()
    assert msg.startswith(b"#CHALLENGE#{sha256}") and len(msg) == len(b"#CHALLENGE#{sha256}") + 40
    b.send_bytes(b"\0" * 16)  # a legacy-shaped reply with the wrong MAC
    assert b.recv_bytes() == b"#FAILURE#"
    with pytest.raises(AuthenticationError):
        join()


def test_legacy_md5_reply_accepted(pair):
    """What a 3.10/3.11 client sends: raw HMAC-MD5 of everything after #CHALLENGE#."""
    a, b = pair
    join = in_thread(_authkey.deliver_challenge, a, KEY)
    msg = b.recv_bytes()[len(b"#CHALLENGE#") :]
    b.send_bytes(hmac.new(KEY, msg, "md5").digest())
    assert b.recv_bytes() == b"#WELCOME#"
    join()


def test_replayed_reply_fails(pair):
    a, b = pair
    join = in_thread(_authkey.deliver_challenge, a, KEY)
    msg = b.recv_bytes()[len(b"#CHALLENGE#") :]
    reply = _authkey._create_response(KEY, msg)
    b.send_bytes(reply)
    assert b.recv_bytes() == b"#WELCOME#"
    join()
    join = in_thread(_authkey.deliver_challenge, a, KEY)
    b.recv_bytes()
    b.send_bytes(reply)  # the first connection's reply, on a new challenge
    assert b.recv_bytes() == b"#FAILURE#"
    with pytest.raises(AuthenticationError, match="wrong"):
        join()


@pytest.mark.parametrize(
    "reply",
    [b"", b"x" * 32, b"{sha1}" + b"x" * 20, b"{sha256" + b"x" * 32, b"{sha256}" + b"x" * 31],
    ids=["empty", "unprefixed", "sha1", "unterminated", "short-mac"],
)
def test_malformed_reply(pair, reply):
    a, b = pair
    join = in_thread(_authkey.deliver_challenge, a, KEY)
    b.recv_bytes()
    b.send_bytes(reply)
    assert b.recv_bytes() == b"#FAILURE#"
    with pytest.raises(AuthenticationError):
        join()


def test_oversized_reply_refused_unread(pair):
    a, b = pair
    join = in_thread(_authkey.deliver_challenge, a, KEY)
    b.recv_bytes()
    b.send_bytes(b"x" * 257)
    with pytest.raises(OSError, match="bad message length"):
        join()


@pytest.mark.parametrize(
    "challenge",
    [b"x" * 40, b"#CHALLENGE#" + b"x" * 19, b"#CHALLENGE#" + b"x" * 30, b"#CHALLENGE#{md4}" + b"x" * 40],
    ids=["no-tag", "too-short", "unprefixed", "unknown-digest"],
)
def test_malformed_challenge(pair, challenge):
    a, b = pair
    b.send_bytes(challenge)
    with pytest.raises(AuthenticationError):
        _authkey.answer_challenge(a, KEY)


def test_oversized_challenge(pair):
    a, b = pair
    b.send_bytes(b"#CHALLENGE#" + b"x" * 250)
    with pytest.raises(OSError, match="bad message length"):
        _authkey.answer_challenge(a, KEY)


def test_silent_peer_times_out(pair):
    a, b = pair
    start = time.monotonic()
    with pytest.raises(AuthenticationError, match="timed out"):
        _authkey.accept_handshake(a, KEY, timeout=0.3)
    assert time.monotonic() - start < 2
    b.recv_bytes()  # the challenge was sent


def test_key_must_be_bytes(pair):
    with pytest.raises(ValueError):
        _authkey.deliver_challenge(pair[0], "str key")  # type: ignore[arg-type]


# --- across processes and interpreters ---------------------------------------

CHILD = r"""
import sys, importlib.util
from multiprocessing.connection import Connection, AuthenticationError
impl, role, key = sys.argv[1], sys.argv[2], sys.argv[3].encode()
if impl == "stdlib":
    import multiprocessing.connection as m
    steps = {"deliver": [m.deliver_challenge], "answer": [m.answer_challenge]}[role]
else:
    spec = importlib.util.spec_from_file_location("_authkey", sys.argv[4] + "/_authkey.py")
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    steps = {"deliver": [m.deliver_challenge], "answer": [m.answer_challenge],
             "accept": [m.accept_handshake], "connect": [m.client_handshake]}[role]
c = Connection(int(sys.argv[5]))
try:
    for step in steps:
        step(c, key)
except AuthenticationError as e:
    print("AuthenticationError:", e); sys.exit(0)
c.send_bytes(b"after")
print("ok")
"""

# (child implementation, child role, what this process runs)
CASES = [
    ("stdlib", "answer", _authkey.deliver_challenge),
    ("stdlib", "deliver", _authkey.answer_challenge),
    ("gobridge", "answer", mpc.deliver_challenge),
    ("gobridge", "deliver", mpc.answer_challenge),
    ("gobridge", "accept", _authkey.client_handshake),
]


@pytest.mark.parametrize("python", interpreters(), ids=os.path.basename)
@pytest.mark.parametrize("impl,role,ours", CASES, ids=lambda c: getattr(c, "__name__", c))
@pytest.mark.parametrize("good", [True, False], ids=["key", "wrong-key"])
def test_across_interpreters(python, impl, role, ours, good):
    a, b = socket.socketpair()
    with a:
        fd = b.detach()
        child = subprocess.Popen(
            [python, "-c", CHILD, impl, role, "the key" if good else "bad key", PKG_DIR, str(fd)],
            pass_fds=[fd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(fd)
        conn = mpc.Connection(a.detach())
        try:
            if good:
                ours(conn, KEY)
                assert conn.recv_bytes(64) == b"after"
            else:
                with pytest.raises(AuthenticationError):
                    ours(conn, KEY)
        finally:
            conn.close()
            out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err.decode()
    want = "ok" if good else "AuthenticationError"
    assert out.decode().startswith(want), (out, err)
