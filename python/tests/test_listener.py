"""Listener and Client on real unix sockets (SPEC sections 4 and 5)."""
import errno
import os
import socket
import stat

import pytest

import gobridge
from gobridge import Client, Listener, parse_address

from gbtest_support import in_thread


def stale_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays: a server that died without close
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


@pytest.mark.parametrize("form", ["unix:{}", "{}"])
def test_listen_accept_roundtrip(sockdir, form):
    address = form.format(os.path.join(sockdir, "a.sock"))
    with Listener(address) as l:
        assert l.address == address
        join = in_thread(l.accept)
        with Client(address, timeout=10) as c:
            with join() as s:
                c.send({"hello": [1, 2]})
                assert s.recv() == {"hello": [1, 2]}
                s.send_bytes(b"back")
                assert c.recv_bytes() == b"back"
        assert l.last_accepted == ""


def test_socket_mode_0600_and_no_leftover_private_dir(sockdir):
    path = os.path.join(sockdir, "m.sock")
    old = os.umask(0)
    try:
        l = Listener(path)
    finally:
        os.umask(old)
    try:
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert os.listdir(sockdir) == ["m.sock"]
    finally:
        l.close()


def test_close_removes_file_and_is_idempotent(sockdir):
    path = os.path.join(sockdir, "c.sock")
    l = Listener(path)
    l.close()
    assert not os.path.exists(path)
    l.close()
    with pytest.raises(OSError):
        l.accept()
    with pytest.raises(FileNotFoundError, match="no listener"):
        Client(path)


def test_close_leaves_a_replaced_file(sockdir):
    path = os.path.join(sockdir, "r.sock")
    l = Listener(path)
    other = os.path.join(sockdir, "other")
    with open(other, "w") as f:
        f.write("someone else's")
    os.rename(other, path)
    l.close()
    with open(path) as f:
        assert f.read() == "someone else's"


def test_stale_socket_is_replaced(sockdir):
    path = os.path.join(sockdir, "s.sock")
    stale_socket(path)
    with pytest.raises(ConnectionRefusedError):
        Client(path)
    with Listener(path) as l:
        join = in_thread(l.accept)
        with Client(path, timeout=10) as c, join() as s:
            c.send(1)
            assert s.recv() == 1
    assert not os.path.exists(path)


def test_live_socket_is_address_in_use(sockdir):
    path = os.path.join(sockdir, "live.sock")
    with Listener(path) as first:
        with pytest.raises(OSError) as e:
            Listener(path)
        assert e.value.errno == errno.EADDRINUSE
        # The probe was a connection: the live server accepts it and sees
        # end of stream at once. Then it serves real clients as before.
        with first.accept() as probe:
            assert probe.poll(10)
            with pytest.raises(EOFError):
                probe.recv()
        join = in_thread(first.accept)
        with Client(path, timeout=10) as c, join() as s:
            c.send("still here")
            assert s.recv() == "still here"
    assert not os.path.exists(path)


def test_live_socket_with_full_backlog_is_in_use(sockdir):
    path = os.path.join(sockdir, "full.sock")
    with Listener(path, backlog=0) as first:
        waiting = []
        for _ in range(5):  # fill the backlog until a connect would wait
            try:
                waiting.append(Client(path, timeout=0.1))
            except TimeoutError:
                break
        else:
            pytest.fail("the backlog never filled")
        with pytest.raises(OSError) as e:
            Listener(path)
        assert e.value.errno == errno.EADDRINUSE
        for c in waiting:
            c.close()
        first.accept().close()


@pytest.mark.parametrize("kind", ["file", "dir", "symlink", "symlink-to-stale", "dangling-symlink"])
def test_non_socket_is_refused_and_untouched(sockdir, kind):
    path = os.path.join(sockdir, "x.sock")
    if kind == "file":
        with open(path, "w") as f:
            f.write("data")
    elif kind == "dir":
        os.mkdir(path)
    else:
        target = os.path.join(sockdir, "target.sock")
        if kind == "symlink":
            with open(target, "w"):
                pass
        elif kind == "symlink-to-stale":
            stale_socket(target)
        os.symlink(target, path)
    before = os.lstat(path)
    with pytest.raises(OSError) as e:
        Listener(path)
    assert e.value.errno == errno.EADDRINUSE
    after = os.lstat(path)
    assert (before.st_ino, before.st_mode) == (after.st_ino, after.st_mode)
    assert sorted(n for n in os.listdir(sockdir) if n.startswith(".gobridge")) == []


def test_long_path_binds_through_proc(sockdir):
    # a path near the 107-byte limit with a short name: the private directory
    # next to it would not fit in sun_path
    name = "p"
    room = 107 - len(sockdir) - 1 - len(name) - 1
    deep = os.path.join(sockdir, "d" * room)
    os.mkdir(deep)
    path = os.path.join(deep, name)
    assert len(path) == 107
    with Listener(path) as l:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        join = in_thread(l.accept)
        with Client(path, timeout=10) as c, join() as s:
            c.send("long")
            assert s.recv() == "long"
    assert os.listdir(deep) == []


def test_listener_max_frame_size(sockdir):
    path = os.path.join(sockdir, "f.sock")
    with Listener(path, max_frame_size=10) as l:
        join = in_thread(l.accept)
        with Client(path, timeout=10) as c, join() as s:
            assert s.max_frame_size == 10
            c.send_bytes(b"x" * 11)
            with pytest.raises(gobridge.FrameTooLargeError):
                s.recv_bytes()


def test_unsupported_arguments(sockdir):
    path = os.path.join(sockdir, "u.sock")
    with pytest.raises(TypeError, match="authkey should be a byte string"):
        Listener(path, authkey="secret")
    with pytest.raises(TypeError, match="authkey should be a byte string"):
        Client(path, authkey=bytearray(b"secret"))
    with pytest.raises(ValueError):
        Listener(path, family="AF_INET")
    assert os.listdir(sockdir) == []


@pytest.mark.parametrize("address, want", [
    ("unix:/run/x.sock", ("unix", "/run/x.sock")),
    ("unix:rel.sock", ("unix", "rel.sock")),
    ("/tmp/a:b", ("unix", "/tmp/a:b")),
    ("./x.sock", ("unix", "./x.sock")),
    ("../x.sock", ("unix", "../x.sock")),
    ("x.sock", ("unix", "x.sock")),
    ("fifo:/tmp/f", ("fifo", "/tmp/f")),
    ("shm:seg", ("shm", "seg")),
    ("tcp:localhost:80", ("tcp", "localhost:80")),
    ("unix:/" + "a" * 106, ("unix", "/" + "a" * 106)),
])
def test_parse_address(address, want):
    assert parse_address(address) == want


@pytest.mark.parametrize("address", [
    "", "unix:", "bogus:/x", "@abstract", "unix:@abstract", "/a\0b",
    "unix:/" + "a" * 107, "shm:",
])
def test_parse_address_invalid(address):
    with pytest.raises(ValueError):
        parse_address(address)


# -- issue 14 item 4: Listener() with no address -------------------------------------

@pytest.mark.parametrize("args", [(), (None,), ("",), (None, "AF_UNIX")])
def test_listener_without_address_picks_a_private_one(args):
    import multiprocessing.connection as mpc

    std = mpc.Listener(*args)
    try:
        assert std.last_accepted is None and os.path.dirname(std.address) != ""
    finally:
        std.close()
    l = Listener(*args)
    a = l.address
    try:
        assert l.last_accepted is None
        assert parse_address(a) == ("unix", a)  # a bare path, as multiprocessing reports it
        d = os.path.dirname(a)
        assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700 and os.listdir(d) == [os.path.basename(a)]
        assert stat.S_ISSOCK(os.lstat(a).st_mode)
        with Listener() as other:
            assert other.address != a and os.path.dirname(other.address) != d  # fresh each time
        join = in_thread(l.accept)
        with Client(a, timeout=10) as c, join() as s:  # a stdlib Client reaches it too
            c.send("hi")
            assert s.recv() == "hi"
        with mpc.Client(a) as c, l.accept() as s:
            c.send_bytes(b"x")
            assert s.recv_bytes() == b"x"
        assert l.last_accepted == ""  # an unbound AF_UNIX peer, as the stdlib's
    finally:
        l.close()
    assert not os.path.lexists(a) and not os.path.lexists(d)  # socket and directory removed
    l.close()  # idempotent


@pytest.mark.parametrize("family,scheme", [("AF_FIFO", "fifo"), ("AF_SHM", "shm")])
def test_listener_without_address_other_families(family, scheme):
    l = Listener(family=family)
    a = l.address
    try:
        assert parse_address(a)[0] == scheme
        join = in_thread(l.accept)
        with Client(a, timeout=10) as c, join() as s:
            c.send(1)
            assert s.recv() == 1
    finally:
        l.close()
    if scheme == "fifo":
        assert not os.path.lexists(os.path.dirname(parse_address(a)[1]))


def test_listener_family_errors_as_the_stdlib():
    import multiprocessing.connection as mpc

    with pytest.raises(ValueError, match="^unrecognized family$"):
        mpc.Listener(family="AF_NOPE")
    with pytest.raises(ValueError, match="^unrecognized family$"):
        Listener(family="AF_NOPE")
    # AF_INET: ('localhost', 0), as the stdlib's arbitrary_address
    with Listener(family="AF_INET") as l:
        host, port = l.address
        assert host == "127.0.0.1" and port > 0
    with pytest.raises(ValueError, match="family 'AF_FIFO' is not supported"):
        Listener("/tmp/x.sock", family="AF_FIFO")


def test_unclosed_listener_removes_what_it_made_when_collected_or_at_exit(sockdir):
    """As the stdlib's Listener (its util.Finalize): a Listener() never closed
    has its private directory and socket removed when it is collected, and at
    interpreter exit in the process that made it; a forked child's exit
    leaves the parent's listener alone."""
    import gc
    import subprocess
    import sys

    env = dict(os.environ, TMPDIR=sockdir)
    code = (
        "import os, sys, gobridge\n"
        "l = gobridge.Listener()\n"
        "print(l.address, flush=True)\n"
        "if os.fork() == 0:\n"
        "    sys.exit(0)  # a forked child exiting normally: runs atexit, must not remove the parent's\n"
        "os.wait()\n"
        "assert os.path.exists(l.address), 'removed by the child'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    address = out.stdout.strip()
    assert address.startswith(sockdir)
    assert not os.path.exists(os.path.dirname(address))  # removed at exit
    listener = gobridge.Listener()
    where = os.path.dirname(listener.address)
    assert os.path.isdir(where)
    del listener
    gc.collect()
    assert not os.path.exists(where)
