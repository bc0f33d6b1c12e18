"""Address syntax shared with Go and the CLI (wire/SPEC.md section 4)."""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Tuple

__all__ = ["parse_address", "split_tcp", "join_tcp", "SCHEMES", "RESERVED_SCHEMES", "MAX_UNIX_PATH"]

#: Every scheme the syntax knows (wire/SPEC.md section 4).
SCHEMES = ("unix", "fifo", "shm", "tcp")
#: Schemes the syntax accepts whose transport does not exist yet (none now).
RESERVED_SCHEMES: Tuple[str, ...] = ()
#: sun_path holds 108 bytes including the terminating NUL.
MAX_UNIX_PATH = 107


def parse_address(address: str) -> Tuple[str, str]:
    """Split an address into (scheme, rest).

    ``"unix:/run/x.sock"``, ``"/run/x.sock"``, ``"./x.sock"`` and a bare
    ``"x.sock"`` (no colon: a path, as multiprocessing takes it) all give
    ``("unix", path)``: an AF_UNIX socket (SPEC 5). ``"fifo:/run/p"`` gives
    ``("fifo", "/run/p")``: named pipes (SPEC 6.6). ``"shm:jobs"`` gives
    ``("shm", "jobs")``: rings in shared memory (SPEC 11).
    ``"tcp:127.0.0.1:0"`` gives ``("tcp", "127.0.0.1:0")``: TCP (SPEC 5.3;
    :func:`split_tcp` checks and splits the rest). Anything else, an empty
    path, a NUL byte, a unix path longer than 107 bytes or a malformed
    ``tcp:`` address raises ``ValueError``.
    """
    if not isinstance(address, str):
        raise ValueError(f"gobridge: address must be a str, not {type(address).__name__}")
    if "\0" in address:
        raise ValueError(f"gobridge: invalid address {address!r}: contains NUL")
    if address.startswith(("/", ".")) or ":" not in address:
        scheme, rest = "unix", address
    else:
        scheme, sep, rest = address.partition(":")
        if not sep or scheme not in SCHEMES:
            raise ValueError(
                f"gobridge: invalid address {address!r}: unknown scheme (expected unix:, fifo:, shm: or tcp:)"
            )
    if not rest:
        raise ValueError(f"gobridge: invalid address {address!r}: empty {scheme} address")
    if scheme == "tcp":
        split_tcp(rest, address)
    elif scheme == "unix":
        if rest.startswith("@"):
            raise ValueError(
                f"gobridge: invalid address {address!r}: abstract sockets are not supported"
            )
        if len(os.fsencode(rest)) > MAX_UNIX_PATH:
            raise ValueError(
                f"gobridge: invalid address {address!r}: unix path longer than {MAX_UNIX_PATH} bytes"
            )
    return scheme, rest


_HOST = re.compile(r"[A-Za-z0-9._-]{1,253}\Z")
_PORT = re.compile(r"[0-9]+\Z")


def split_tcp(rest: str, address: str = "") -> Tuple[str, int]:
    """Split a ``tcp:`` address's ``HOST:PORT`` (SPEC 4) into (host, port).

    HOST is a name or IPv4 address of letters, digits, ``.``, ``-`` and
    ``_``, or an IPv6 address in brackets (returned without them); PORT is
    decimal, 0 to 65535. Anything else raises ``ValueError``.
    """
    what = address or "tcp:" + rest

    def bad(why: str) -> ValueError:
        return ValueError(f"gobridge: invalid address {what!r}: {why}")

    if rest.startswith("["):
        host, sep, port = rest[1:].partition("]:")
        if not sep:
            raise bad("want tcp:HOST:PORT (an IPv6 address in brackets)")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad("bad IPv6 address in brackets") from None
    else:
        host, sep, port = rest.rpartition(":")
        if not sep or ":" in host or "[" in port or "]" in port:
            raise bad("want tcp:HOST:PORT (an IPv6 address in brackets)")
        if not _HOST.match(host):
            raise bad(f"bad tcp host {host!r}")
    if not _PORT.match(port) or int(port) > 65535:
        raise bad(f"bad tcp port {port!r} (want 0 to 65535)")
    return host, int(port)


def join_tcp(host: str, port: int) -> str:
    """The ``tcp:`` address of (host, port); an IPv6 host goes in brackets."""
    return f"tcp:[{host}]:{port}" if ":" in host else f"tcp:{host}:{port}"
