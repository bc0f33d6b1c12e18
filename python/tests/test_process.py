"""Connections across real processes: parent()/child_environ and a killed peer."""
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

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


# --- gobridge.Process: a Python parent starting a child with a Pipe end -------

def py_child(code, **kwargs):
    return gobridge.Process([sys.executable, "-c", textwrap.dedent(code)], **kwargs)


def test_process_round_trip_and_exit_codes():
    p = py_child("""
        import gobridge, sys
        c = gobridge.parent()
        c.send(c.recv() * 2)
        sys.exit(c.recv())
    """)
    assert p.pid is None and p.exitcode is None and not p.is_alive()
    p.start()
    assert p.is_alive() and p.pid > 0
    with pytest.raises(AssertionError):
        p.start()
    p.conn.send(21)
    assert p.conn.recv() == 42
    p.conn.send(3)
    with pytest.raises(EOFError):  # the child exited between messages
        p.conn.recv()
    p.join(20)
    assert p.exitcode == 3 and not p.is_alive()
    assert "exitcode=3" in repr(p)
    p.close()


@pytest.mark.parametrize("stop, code", [("terminate", -signal.SIGTERM), ("kill", -signal.SIGKILL)])
def test_process_terminate_and_kill(stop, code):
    p = py_child("""
        import gobridge, time
        gobridge.parent().send("up")
        time.sleep(60)
    """)
    p.start()
    assert p.conn.recv() == "up"
    getattr(p, stop)()
    p.join(20)
    assert p.exitcode == code
    getattr(p, stop)()  # a stopped child is not an error
    p.close()


def test_process_child_dies_mid_frame():
    p = py_child("""
        import gobridge, os
        c = gobridge.parent()
        c.send("hello")
        os.write(c.fileno(), b"\\x00\\x00\\x00\\x64\\x91")  # 1 byte of a 100-byte frame
        os._exit(9)
    """)
    p.start()
    assert p.conn.recv() == "hello"
    with pytest.raises(OSError, match="end of file during message"):
        p.conn.recv()
    p.join(20)
    assert p.exitcode == 9
    p.close()


def test_process_one_way_and_captured_output():
    p = py_child("""
        import gobridge
        c = gobridge.parent()
        print("to stdout", c.readable, c.writable, flush=True)
        c.send("one way")
    """, duplex=False, stdout=subprocess.PIPE)
    p.start()
    assert p.conn.recv() == "one way"
    with pytest.raises(OSError, match="read-only"):
        p.conn.send("back")
    assert p.popen.stdout.read() == b"to stdout False True\n"
    p.join(20)
    assert p.exitcode == 0
    p.close()


@pytest.mark.parametrize("program", ["/bin/true", b"/bin/true", pathlib.Path("/bin/true")])
def test_process_single_program_as_popen(program):
    """A str, bytes or path is one program with no arguments, as subprocess.Popen (shell=False) takes it."""
    p = gobridge.Process(program)
    p.start()
    p.join(20)
    assert p.exitcode == 0
    assert p.args == program and "/bin/true" in repr(p)
    p.close()


def test_process_string_with_spaces_is_one_program_name():
    """No shell and no splitting: the whole string names the program, and the error says so."""
    with pytest.raises(FileNotFoundError) as got:
        gobridge.Process("python3 -c pass").start()
    with pytest.raises(FileNotFoundError) as popen:
        subprocess.Popen("python3 -c pass")
    assert got.value.filename == popen.value.filename == "python3 -c pass"


def test_process_path_like_arguments():
    p = gobridge.Process([pathlib.Path(sys.executable), "-c", "import gobridge; gobridge.parent().send(7)"])
    p.start()
    assert p.conn.recv() == 7
    p.join(20)
    assert p.exitcode == 0
    p.close()


def test_daemon_child_dies_with_its_parent():
    """A daemon child is SIGKILLed by Linux when its parent dies, however it dies."""
    middle = py_child("""
        import gobridge, sys
        up = gobridge.parent()
        d = gobridge.Process([sys.executable, "-c", "import time; time.sleep(60)"], daemon=True)
        d.start()
        up.send(d.pid)
        up.recv()  # killed here
    """)
    middle.start()
    grandchild = middle.conn.recv()
    os.kill(grandchild, 0)  # alive
    middle.kill()
    middle.join(20)
    deadline = time.monotonic() + 20
    while True:
        try:
            with open(f"/proc/{grandchild}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break  # reaped by init
        if state == "Z":
            break  # dead, waiting for init to reap it
        assert time.monotonic() < deadline, "the daemon outlived its parent"
        time.sleep(0.02)
    middle.close()
