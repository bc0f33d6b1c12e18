"""The tcp: scheme: listening and connecting TCP sockets (wire/SPEC.md section 5.3).

gobridge.connection's Listener and Client run :func:`listen` and
:func:`client` for ``tcp:`` addresses (and the stdlib's ``(host, port)``
tuples); the connections are fd ones (gobridge._transport.fd), with
``TCP_NODELAY`` set. A listener on an address that is not a loopback one is
refused unless it will run the authkey handshake or its caller opted out.
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
from typing import Any, List, Optional, Tuple

from .._address import join_tcp, split_tcp
from .base import Connection

__all__ = ["TcpListener", "listen", "client", "INSECURE_MESSAGE"]

INSECURE_MESSAGE = (
    "a tcp: listener on a non-loopback address needs an authkey "
    "(or insecure_tcp=True: anyone who can reach the port may connect)"
)


def _no_delay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _resolve(host: str, port: int, passive: bool) -> List[Tuple[Any, ...]]:
    """getaddrinfo's TCP results, IPv4 first (as Go's resolver orders them)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                               flags=socket.AI_PASSIVE if passive else 0)
    return sorted(infos, key=lambda i: i[0] != socket.AF_INET)


class TcpListener:
    """What ``gobridge.Listener("tcp:HOST:PORT")`` runs: a listening TCP
    socket on the first address HOST resolves to (port 0: one the kernel
    picks, reported in :attr:`address`)."""

    def __init__(self, hostport: str, backlog: int, max_frame_size: int, secured: bool) -> None:
        self._sock: Optional[socket.socket] = None
        self._max_frame_size = max_frame_size
        host, port = split_tcp(hostport)
        family, _, _, _, sockaddr = _resolve(host, port, True)[0]
        if not secured and not ipaddress.ip_address(sockaddr[0].split("%")[0]).is_loopback:
            raise ValueError(f"gobridge: tcp:{hostport}: {INSECURE_MESSAGE}")
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the stdlib's and Go's listeners
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        name = sock.getsockname()
        #: (host, port) bound, the stdlib's Listener.address for AF_INET.
        self.sockname: Tuple[str, int] = (name[0], name[1])
        #: The same as a tcp: address.
        self.address = join_tcp(name[0], name[1])

    def fileno(self) -> int:
        if self._sock is None:
            raise OSError("listener is closed")
        return self._sock.fileno()

    def accept(self, timeout: Optional[float] = None) -> Tuple[Connection, Tuple[str, int]]:
        """Wait for a client (up to timeout seconds, ``TimeoutError``);
        return the connection and the peer's (host, port)."""
        if self._sock is None:
            raise OSError("listener is closed")
        if timeout is not None:
            p = select.poll()
            p.register(self._sock.fileno(), select.POLLIN)
            if not p.poll(max(0, min(int(timeout * 1000 + 0.999), 2**31 - 1))):
                raise TimeoutError(errno.ETIMEDOUT, "gobridge: accept timed out")
        sock, addr = self._sock.accept()
        _no_delay(sock)
        return Connection(sock.detach(), max_frame_size=self._max_frame_size), (addr[0], addr[1])

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


listen = TcpListener


def client(hostport: str, address: str, max_frame_size: int, timeout: Optional[float]) -> Connection:
    """Connect to the TCP listener at hostport (address: how the caller
    spelled it, for messages), trying each address the host resolves to."""
    host, port = split_tcp(hostport, address)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as e:
        raise ConnectionRefusedError(e.errno, f"gobridge: no listener at {address!r}: {e.strerror}") from None
    except socket.timeout:
        raise TimeoutError(errno.ETIMEDOUT, f"gobridge: timed out connecting to {address!r}") from None
    try:
        sock.settimeout(None)
        _no_delay(sock)
    except BaseException:
        sock.close()
        raise
    return Connection(sock.detach(), max_frame_size=max_frame_size)
