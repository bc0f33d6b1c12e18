"""Connections across real processes: parent()/child_environ and a killed peer."""
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

import gobridge

CHILD = textwrap.dedent("""
    import fcntl, os, sys
    import gobridge
    conn = gobridge.parent()
    fd = conn.fileno()
    info = {
        "fd": fd,
        "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
        "blocking": os.get_blocking(fd),
        "env_left": sorted(k for k in ("GOBRIDGE_FD", "GOBRIDGE_FD_MODE", "GOBRIDGE_MAX_FRAME") if k in os.environ),
        "readable": conn.readable, "writable": conn.writable,
        "max": conn.max_frame_size,
    }
    mode = sys.argv[1]
    if mode == "rw":
        value = conn.recv()
        conn.send([value, info])
    elif mode == "w":
        conn.send(info)
    elif mode == "r":
        print(repr((conn.recv(), info["readable"], info["writable"])))
    conn.close()
""")


def run_child(conn, mode, **kwargs):
    env = gobridge.child_environ(conn)
    return subprocess.Popen([sys.executable, "-c", CHILD, mode], env=env, pass_fds=[conn.fileno()],
                            stdout=subprocess.PIPE, text=True, **kwargs)


def test_parent_duplex_round_trip():
    mine, theirs = gobridge.Pipe(max_frame_size=12345)
    proc = run_child(theirs, "rw")
    theirs.close()
    try:
        mine.send({"x": [1, b"2", None]})
        assert mine.poll(30)
        value, info = mine.recv()
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert value == {"x": [1, b"2", None]}
    assert info["cloexec"] and info["blocking"]
    assert info["env_left"] == []
    assert info["readable"] and info["writable"] and info["max"] == 12345
    with pytest.raises(EOFError):
        mine.recv()
    mine.close()


def test_parent_one_way_child_sends():
    r, w = gobridge.Pipe(duplex=False)
    os.set_blocking(w.fileno(), False)  # as a Go parent's copy may be: parent() fixes it
    proc = run_child(w, "w")
    w.close()
    try:
        assert r.poll(30)
        info = r.recv()
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert not info["readable"] and info["writable"] and info["blocking"]
    r.close()


def test_parent_one_way_child_receives():
    r, w = gobridge.Pipe(duplex=False)
    proc = run_child(r, "r")
    r.close()
    w.send("to the child")
    w.close()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out.strip() == "('to the child', True, False)"


def run_parent(env_extra, pass_fds=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOBRIDGE_")}
    env.update(env_extra)
    code = ("import gobridge\ntry:\n    gobridge.parent()\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\nelse:\n    print('ok')")
    out = subprocess.run([sys.executable, "-c", code], env=env, pass_fds=pass_fds,
                         capture_output=True, text=True, timeout=30).stdout
    return out.strip()


def test_parent_errors():
    assert run_parent({}).startswith("LookupError")
    assert run_parent({"GOBRIDGE_FD": "x"}).startswith("ValueError")
    assert run_parent({"GOBRIDGE_FD": "250"}).startswith("OSError")
    r, w = os.pipe()
    try:
        # a pipe's read end cannot be duplex, nor send
        assert run_parent({"GOBRIDGE_FD": str(r)}, (r,)).startswith("ValueError")
        assert run_parent({"GOBRIDGE_FD": str(r), "GOBRIDGE_FD_MODE": "w"}, (r,)).startswith("ValueError")
        assert run_parent({"GOBRIDGE_FD": str(r), "GOBRIDGE_FD_MODE": "r"}, (r,)) == "ok"
        assert run_parent({"GOBRIDGE_FD": str(r), "GOBRIDGE_FD_MODE": "x"}, (r,)).startswith("ValueError")
        assert run_parent({"GOBRIDGE_FD": str(r), "GOBRIDGE_FD_MODE": "r",
                           "GOBRIDGE_MAX_FRAME": "-5"}, (r,)).startswith("ValueError")
    finally:
        os.close(r)
        os.close(w)
    with open(os.devnull) as f:
        fd = f.fileno()
        assert run_parent({"GOBRIDGE_FD": str(fd), "GOBRIDGE_FD_MODE": "r"}, (fd,)).startswith("ValueError")


def test_parent_in_this_process_without_env(monkeypatch):
    monkeypatch.delenv("GOBRIDGE_FD", raising=False)
    with pytest.raises(LookupError):
        gobridge.parent()


def test_child_environ_keeps_given_environment():
    a, b = gobridge.Pipe(duplex=False)
    env = gobridge.child_environ(b, {"PATH": "/bin"})
    assert env == {"PATH": "/bin", "GOBRIDGE_FD": str(b.fileno()), "GOBRIDGE_FD_MODE": "w",
                   "GOBRIDGE_MAX_FRAME": str(gobridge.DEFAULT_MAX_FRAME_SIZE)}
    a.close()
    b.close()


HALF_FRAME = textwrap.dedent("""
    import os, struct, sys, time
    import gobridge
    conn = gobridge.parent()
    conn.send("ready")
    os.write(conn.fileno(), struct.pack("!i", 1000) + b"x" * 500)
    time.sleep(60)
""")


def test_peer_killed_mid_message_is_an_error_not_a_hang():
    mine, theirs = gobridge.Pipe()
    proc = subprocess.Popen([sys.executable, "-c", HALF_FRAME], env=gobridge.child_environ(theirs),
                            pass_fds=[theirs.fileno()])
    theirs.close()
    try:
        assert mine.poll(30)
        assert mine.recv() == "ready"
        assert mine.poll(30)  # the half frame has started to arrive
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        with pytest.raises(OSError) as e:
            mine.recv()
        assert isinstance(e.value, (gobridge.ProtocolError, ConnectionResetError))
        with pytest.raises(BrokenPipeError):
            mine.send_bytes(b"y" * 1000)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        mine.close()


def test_blocked_receiver_wakes_when_peer_is_killed():
    mine, theirs = gobridge.Pipe()
    proc = subprocess.Popen([sys.executable, "-c", HALF_FRAME], env=gobridge.child_environ(theirs),
                            pass_fds=[theirs.fileno()])
    theirs.close()
    import threading
    try:
        assert mine.poll(30) and mine.recv() == "ready"
        timer = threading.Timer(0.3, proc.kill)
        timer.start()
        # If the receive did hang, this wakes it (and the test fails on the message).
        dup = socket.socket(fileno=os.dup(mine.fileno()))
        watchdog = threading.Timer(20, dup.shutdown, (socket.SHUT_RDWR,))
        watchdog.start()
        try:
            with pytest.raises(OSError, match="^got end of file during message$|Connection reset"):
                mine.recv()  # blocks inside the half frame until the kill
        finally:
            watchdog.cancel()
            dup.close()
        timer.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        mine.close()
