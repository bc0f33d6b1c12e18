"""The gobridge command with tcp: addresses, --authkey-file and --codec pickle,
against unmodified multiprocessing.connection peers (and gobridge's)."""
import json
import multiprocessing.connection as mpc
import os
import subprocess
from multiprocessing import AuthenticationError

import pytest

import gobridge

KEY = b"cli secret"


@pytest.fixture
def keyfile(sockdir):
    path = os.path.join(sockdir, "key")
    with open(path, "wb") as f:
        f.write(KEY + b"\n")  # as `echo secret > key` writes it: the newline is not the key's
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def listen(gb_bin):
    """Start `gobridge CMD ARGS... ADDR`; return it and the address it reports."""
    procs = []

    def start(*args):
        proc = subprocess.Popen([gb_bin, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        line = proc.stderr.readline()
        assert line.startswith("gobridge: listening on "), (line, proc.stderr.read() if proc.poll() is not None else "")
        return proc, line.split("listening on ", 1)[1].strip()

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
        try:
            p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()


def tcp_tuple(addr):
    host, port = addr[len("tcp:"):].rsplit(":", 1)
    return host.strip("[]"), int(port)


def test_echo_tcp_pickle_authkey_serves_a_stdlib_client(listen, keyfile):
    proc, addr = listen("echo", "--codec", "pickle", "--authkey-file", keyfile, "tcp:127.0.0.1:0")
    assert addr.startswith("tcp:127.0.0.1:") and not addr.endswith(":0")
    with mpc.Client(tcp_tuple(addr), authkey=KEY) as c:
        value = {"a": (1, "x"), "b": b"\x00", "c": [None, True, 2.5], "d": {3: "int key"}}
        c.send(value)
        got = c.recv()
        assert got == {"a": (1, "x"), "b": b"\x00", "c": [None, True, 2.5], "d": {3: "int key"}}
        assert type(got["a"]) is tuple
    with pytest.raises(AuthenticationError):
        mpc.Client(tcp_tuple(addr), authkey=b"wrong")
    # the refused client does not stop the server
    with mpc.Client(tcp_tuple(addr), authkey=KEY) as c:
        c.send("again")
        assert c.recv() == "again"
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "refused a client" in err


def test_recv_pickle_prints_natural_json(listen, keyfile, sockdir):
    path = os.path.join(sockdir, "r.sock")
    proc, addr = listen("recv", "--count", "2", "--codec", "pickle", "--authkey-file", keyfile, "unix:" + path)
    with mpc.Client(path, authkey=KEY) as c:
        c.send({"t": (1, 2), "s": {"only"}, "ba": bytearray(b"\x01"), "n": 2**63})
        c.send([1.5, "x"])
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [{"t": [1, 2], "s": ["only"], "ba": {"$bin": "AQ=="}, "n": 2**63}, [1.5, "x"]]


def test_send_to_a_stdlib_tcp_listener(gb_bin, keyfile):
    with mpc.Listener(("127.0.0.1", 0), authkey=KEY) as l:
        host, port = l.address
        proc = subprocess.Popen([gb_bin, "send", "--reply", "--codec", "pickle", "--authkey-file", keyfile,
                                 f"tcp:{host}:{port}", '{"job": [1, 2]}'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with l.accept() as c:
            assert c.recv() == {"job": [1, 2]}
            c.send(("done", {1, 2} - {2}))
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert json.loads(out) == ["done", [1]]


def test_msgpack_over_tcp_with_gobridge(listen, keyfile):
    _, addr = listen("echo", "--authkey-file", keyfile, "tcp:localhost:0")
    with gobridge.Client(addr, authkey=KEY, timeout=10) as c:
        c.send({"k": [1, 2]})
        assert c.recv() == {"k": [1, 2]}


def test_flag_errors(gb_bin, sockdir, keyfile):
    empty = os.path.join(sockdir, "empty")
    open(empty, "w").close()
    for args, msg in [
        (["echo", "--codec", "json", "tcp:127.0.0.1:0"], "--codec"),
        (["echo", "--authkey-file", empty, "tcp:127.0.0.1:0"], "empty key"),
        (["echo", "--authkey-file", os.path.join(sockdir, "none"), "tcp:127.0.0.1:0"], "no such file"),
        (["send", "--pipe", "--authkey-file", keyfile, os.path.join(sockdir, "p"), "1"], "--pipe"),
    ]:
        r = subprocess.run([gb_bin, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode in (1, 2) and msg in r.stderr and r.stdout == "", (args, r)
    # secure by default: a non-loopback listener without a key is refused...
    r = subprocess.run([gb_bin, "echo", "tcp:0.0.0.0:0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "needs WithAuthkey" in r.stderr
    # ...and a key file others can read is used, with a warning
    os.chmod(keyfile, 0o644)
    proc = subprocess.Popen([gb_bin, "echo", "--authkey-file", keyfile, "tcp:127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "can be read by other users" in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
