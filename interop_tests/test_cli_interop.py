"""Python <-> Go through the gobridge command: echo, recv, send, bad input."""
import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

import gobridge
import gbjson
from conftest import VALID, vector_payload, vector_value


def ids(vs):
    return [v["name"] for v in vs]


def test_help_and_version(gb_bin):
    out = subprocess.run([gb_bin, "version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("gobridge ") and "(wire 1)" in out
    for cmd in ("echo", "send", "recv", "bench", "mkfifo", "version"):
        r = subprocess.run([gb_bin, cmd, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage: gobridge " + cmd in r.stdout and r.stderr == ""
        r = subprocess.run([gb_bin, cmd, "--no-such-flag"], capture_output=True, text=True)
        assert r.returncode == 2 and r.stdout == "" and r.stderr.count("not defined: -no-such-flag") == 1
    r = subprocess.run([gb_bin, "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_echo_every_vector(serve):
    """Python encodes each vector value, Go decodes and re-encodes it: the bytes
    that come back are the vector's bytes wherever the encoding is canonical."""
    _, addr = serve("echo")
    with gobridge.Client(addr) as c:
        for v in VALID:
            want = vector_value(v)
            c.send(want)
            raw = c.recv_bytes()
            if v.get("canonical"):
                assert raw.hex() == vector_payload(v).hex(), v["name"]
            got = gobridge.decode(raw)
            if v.get("py"):
                assert type(got).__name__ == v["py"], v["name"]
            assert gbjson.same(got, want), v["name"]


def test_recv_prints_gobridge_json(serve):
    values = [v for v in VALID if not v.get("gen")]
    proc, addr = serve("recv", "--count", str(len(values)))
    with gobridge.Client(addr) as c:
        for v in values:
            c.send(vector_value(v))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == len(values)
    for v, line in zip(values, lines):
        assert gbjson.same(gbjson.loads(line), vector_value(v)), (v["name"], line)


def test_send_json_to_python_listener(gb_bin, sockdir):
    values = [v for v in VALID if not v.get("gen")]
    addr = "unix:" + os.path.join(sockdir, "l.sock")
    with gobridge.Listener(addr) as l:
        proc = subprocess.Popen([gb_bin, "send", addr, *[json.dumps(v["value"]) for v in values]],
                                stderr=subprocess.PIPE, text=True)
        with l.accept() as c:
            for v in values:
                assert c.poll(30), v["name"]
                got = c.recv()
                assert gbjson.same(got, vector_value(v)), v["name"]
        assert proc.wait(timeout=30) == 0, proc.stderr.read()


def test_send_reply_reads_stdin(serve, gb_bin):
    _, addr = serve("echo")
    r = subprocess.run([gb_bin, "send", "--reply", addr], input='{"a": [1, 2.5]}\n\n{"$bin": "AQI="}\n',
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ['{"a":[1,2.5]}', '{"$bin":"AQI="}']


def raw_client(addr):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(addr[len("unix:"):])
    s.settimeout(20)
    return s


BAD_PAYLOADS = {
    "invalid msgpack": b"\xc1",
    "nesting too deep": b"\x91" * 1025 + b"\xc0",
    "invalid utf-8": b"\xa2\xff\xfe",
    "unknown extension": b"\xd4\x05\x00",
    "array as map key": b"\x81\x90\x01",
}


@pytest.mark.parametrize("name", sorted(BAD_PAYLOADS))
def test_bad_payload_is_dropped_and_connection_survives(serve, name):
    proc, addr = serve("echo")
    with gobridge.Client(addr) as c:
        c.send_bytes(BAD_PAYLOADS[name])
        c.send("after")
        assert c.poll(20) and c.recv() == "after"
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "dropped a message" in err


def test_huge_header_and_truncation_do_not_hurt_other_clients(serve):
    proc, addr = serve("echo")
    good = gobridge.Client(addr)
    good.send(1)
    assert good.recv() == 1
    # a header that claims 2 GiB: that connection ends, nothing is allocated
    bad = raw_client(addr)
    bad.sendall(struct.pack("!i", 0x7FFFFFFF) + b"x" * 10)
    assert bad.recv(16) == b""  # Go closed it
    bad.close()
    # a peer that dies in the middle of a frame
    trunc = raw_client(addr)
    trunc.sendall(struct.pack("!i", 100) + b"\x91")
    trunc.close()
    # the 12-byte form claiming 2**40 bytes
    big = raw_client(addr)
    big.sendall(b"\xff\xff\xff\xff" + struct.pack("!Q", 1 << 40))
    assert big.recv(16) == b""
    big.close()
    good.send({"still": "served"})
    assert good.poll(20) and good.recv() == {"still": "served"}
    good.close()
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "frame too large" in err


def _echo_child(a, b):
    a.close()
    try:
        while True:
            b.send_bytes(b.recv_bytes())
    except EOFError:
        pass


def test_python_to_python_vectors():
    """Python -> Python over a gobridge Pipe with a forked child."""
    import multiprocessing
    a, b = gobridge.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_echo_child, args=(a, b))
    child.start()
    b.close()
    for v in VALID:
        payload = vector_payload(v)
        a.send_bytes(payload)
        got = a.recv()
        assert gbjson.same(got, vector_value(v)), v["name"]
    a.close()
    child.join(10)
    assert child.exitcode == 0


def test_python_one_way_misuse():
    r, w = gobridge.Pipe(duplex=False)
    with pytest.raises(OSError, match="connection is read-only"):
        r.send(1)
    with pytest.raises(OSError, match="connection is write-only"):
        w.recv()
    r.close()
    w.close()


def test_cli_on_fifo_addresses(gb_bin, sockdir):
    """mkfifo, recv and send on fifo: addresses, against Python's Client and Listener."""
    plain = os.path.join(sockdir, "plain")
    subprocess.run([gb_bin, "mkfifo", plain], check=True)
    assert oct(os.stat(plain).st_mode & 0o777) == "0o600"
    link = os.path.join(sockdir, "link")
    os.symlink(plain, link)
    r = subprocess.run([gb_bin, "mkfifo", link], capture_output=True, text=True)
    assert r.returncode != 0 and "not a FIFO" in r.stderr
    os.unlink(link)
    os.unlink(plain)

    # gobridge recv listens on a fifo: address; Python dials it.
    addr = "fifo:" + os.path.join(sockdir, "r")
    proc = subprocess.Popen([gb_bin, "recv", "--count", "2", addr], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(addr[5:]):
            assert time.monotonic() < deadline, "recv did not listen"
            time.sleep(0.01)
        with gobridge.Client(addr, timeout=20) as c:
            c.send({"a": [1, 2.5]})
            c.send(b"\x00\xff")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert [json.loads(l) for l in out.splitlines()] == [{"a": [1, 2.5]}, {"$bin": "AP8="}]

    # gobridge send --reply dials a Python fifo: listener.
    addr = "fifo:" + os.path.join(sockdir, "s")
    with gobridge.Listener(addr) as listener:
        proc = subprocess.Popen([gb_bin, "send", "--reply", addr, '"hi"', "[1, null]"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with listener.accept() as c:
            for _ in range(2):
                c.send(["got", c.recv()])
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.splitlines() == ['["got","hi"]', '["got",[1,null]]']
    assert os.listdir(sockdir) == []


def test_cli_on_plain_named_pipes(gb_bin, sockdir):
    """send --pipe / recv --pipe on a plain FIFO, with Python's open_fifo on the other end."""
    p = os.path.join(sockdir, "jobs")
    gobridge.mkfifo(p)
    # Python writes, gobridge recv --pipe reads until the last writer closes.
    proc = subprocess.Popen([gb_bin, "recv", "--pipe", p], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with gobridge.open_fifo(p, "w", timeout=20) as w:
        w.send({"job": 1})
        w.send_bytes(gobridge.encode([b"\x01", None]))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert [json.loads(l) for l in out.splitlines()] == [{"job": 1}, [{"$bin": "AQ=="}, None]]
    # gobridge send --pipe writes, Python reads.
    proc = subprocess.Popen([gb_bin, "send", "--pipe", p, '{"job": 2}', '"done"'],
                            stderr=subprocess.PIPE, text=True)
    with gobridge.open_fifo(p, "r", timeout=20) as r:
        got = [r.recv(), r.recv()]
        with pytest.raises(EOFError):
            r.recv()
    assert proc.wait(30) == 0
    assert got == [{"job": 2}, "done"]
    r = subprocess.run([gb_bin, "send", "--pipe", "--reply", p, "1"], capture_output=True, text=True)
    assert r.returncode == 2 and "one-way" in r.stderr
    os.unlink(p)


def test_cli_recv_pipe_ends_at_a_cut_frame(gb_bin, sockdir):
    """A writer that dies inside a frame: recv --pipe prints what came whole,
    reports the cut frame once and exits non-zero (it used to report it in a
    loop, millions of lines a second, until killed)."""
    p = os.path.join(sockdir, "cut")
    gobridge.mkfifo(p)
    proc = subprocess.Popen([gb_bin, "recv", "--pipe", p], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    fd = os.open(p, os.O_WRONLY)  # waits for recv's open
    whole = gobridge.encode("whole")
    os.write(fd, struct.pack("!i", len(whole)) + whole + b"\x00\x00\x00\x64\x91")  # then 1 of 100 bytes
    os.close(fd)
    try:
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert out.splitlines() == ['"whole"']
    assert proc.returncode != 0
    assert err.count("end of file during message") == 1, err[:500]
    os.unlink(p)
