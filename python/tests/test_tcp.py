"""tcp: addresses and ('host', port) tuples (wire/SPEC.md 4 and 5.3), on real
loopback sockets, against each other and the stdlib's multiprocessing.connection."""
import errno
import multiprocessing.connection as mpc
import socket
from multiprocessing import AuthenticationError

import pytest

import gobridge
from gobridge import Client, Listener, parse_address
from gobridge._address import split_tcp

from gbtest_support import in_thread

KEY = b"tcp key"


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def roundtrip(l, address=None, **kw):
    join = in_thread(l.accept, 10)
    with Client(address or l.address, timeout=10, **kw) as c, join() as s:
        c.send({"n": [1, 2]})
        assert s.recv() == {"n": [1, 2]}
        s.send_bytes(b"x" * 200000)  # more than one segment
        assert c.recv_bytes() == b"x" * 200000
        return c, s


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_port_zero_reports_the_real_port(host):
    if host == "[::1]" and not have_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    with Listener(f"tcp:{host}:0") as l:
        scheme, rest = parse_address(l.address)
        bound, port = split_tcp(rest)
        assert scheme == "tcp" and port > 0
        assert bound in ("127.0.0.1", "::1")
        roundtrip(l)
        assert isinstance(l.last_accepted, tuple) and l.last_accepted[0] == bound


def test_tuple_addresses_as_the_stdlib():
    with Listener(("127.0.0.1", 0), family="AF_INET") as l:
        host, port = l.address
        assert host == "127.0.0.1" and port > 0
        roundtrip(l, ("127.0.0.1", port))
        roundtrip(l, f"tcp:localhost:{port}")


def test_tcp_nodelay_both_ends():
    with Listener("tcp:127.0.0.1:0") as l:
        join = in_thread(l.accept, 10)
        with Client(l.address, timeout=10) as c, join() as s:
            for conn in (c, s):
                sock = socket.socket(fileno=conn.fileno())
                try:
                    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                finally:
                    sock.detach()


def test_secure_by_default():
    for addr in ("tcp:0.0.0.0:0", ("0.0.0.0", 0)):
        with pytest.raises(ValueError, match="needs an authkey"):
            Listener(addr)
    with Listener("tcp:0.0.0.0:0", authkey=KEY) as l:
        assert l.address.startswith("tcp:0.0.0.0:")
        port = split_tcp(parse_address(l.address)[1])[1]
        roundtrip(l, f"tcp:127.0.0.1:{port}", authkey=KEY)
    with Listener("tcp:0.0.0.0:0", insecure_tcp=True) as l:
        port = split_tcp(parse_address(l.address)[1])[1]
        roundtrip(l, f"tcp:127.0.0.1:{port}")


def test_errors():
    with Listener("tcp:127.0.0.1:0") as l:
        addr = l.address
        with pytest.raises(OSError) as e:
            Listener(addr)
        assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(ConnectionRefusedError, match="no listener"):
        Client(addr, timeout=10)
    for bad in ("tcp:localhost", "tcp:::1:80", "tcp:h:65536", ("h",), ("h", "80"), ("h", 1, 2)):
        with pytest.raises(ValueError):
            Client(bad)
    with pytest.raises(ValueError, match="not supported"):
        Listener("tcp:127.0.0.1:0", family="AF_UNIX")


def test_authkey_and_the_stdlib_both_ways():
    with Listener(("127.0.0.1", 0), authkey=KEY) as l:
        join = in_thread(l.accept, 10)
        with mpc.Client(l.address, authkey=KEY) as c, join() as s:
            s.send_bytes(b"hi")
            assert c.recv_bytes() == b"hi"
        join = in_thread(l.accept, 10)
        with pytest.raises(AuthenticationError):
            mpc.Client(l.address, authkey=b"wrong")
        with pytest.raises(AuthenticationError):
            join()
    with mpc.Listener(("127.0.0.1", 0), authkey=KEY) as sl:
        join = in_thread(sl.accept)
        with Client(sl.address, authkey=KEY, timeout=10) as c, join() as s:
            c.send_bytes(b"to stdlib")
            assert s.recv_bytes() == b"to stdlib"


def test_write_buffer_and_frame_limit():
    with Listener("tcp:127.0.0.1:0", max_frame_size=100) as l:
        join = in_thread(l.accept, 10)
        with Client(l.address, timeout=10) as c, join() as s:
            c.set_write_buffer(1 << 16)
            for i in range(100):
                c.send(i)
            c.flush()
            assert [s.recv() for _ in range(100)] == list(range(100))
            c.send_bytes(b"y" * 101)
            c.flush()
            with pytest.raises(gobridge.FrameTooLargeError):
                s.recv_bytes()
