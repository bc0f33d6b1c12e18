"""Address syntax shared with Go and the CLI (wire/SPEC.md section 4)."""

from __future__ import annotations

import os
from typing import Tuple

__all__ = ["parse_address", "SCHEMES", "RESERVED_SCHEMES", "MAX_UNIX_PATH"]

#: Every scheme the syntax knows (wire/SPEC.md section 4).
SCHEMES = ("unix", "fifo", "shm", "tcp")
#: Schemes the syntax accepts whose transport does not exist yet.
RESERVED_SCHEMES = ("tcp",)
#: sun_path holds 108 bytes including the terminating NUL.
MAX_UNIX_PATH = 107


def parse_address(address: str) -> Tuple[str, str]:
    """Split an address into (scheme, rest).

    ``"unix:/run/x.sock"``, ``"/run/x.sock"``, ``"./x.sock"`` and a bare
    ``"x.sock"`` (no colon: a path, as multiprocessing takes it) all give
    ``("unix", path)``: an AF_UNIX socket (SPEC 5). ``"fifo:/run/p"`` gives
    ``("fifo", "/run/p")``: named pipes (SPEC 6.6). ``"shm:jobs"`` gives
    ``("shm", "jobs")``: rings in shared memory (SPEC 11). ``tcp:`` is
    recognised but reserved (:data:`RESERVED_SCHEMES`: no transport yet).
    Anything else, an empty path, a NUL byte or a unix path longer than 107
    bytes raises ``ValueError``.
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
    if scheme == "unix":
        if rest.startswith("@"):
            raise ValueError(
                f"gobridge: invalid address {address!r}: abstract sockets are not supported"
            )
        if len(os.fsencode(rest)) > MAX_UNIX_PATH:
            raise ValueError(
                f"gobridge: invalid address {address!r}: unix path longer than {MAX_UNIX_PATH} bytes"
            )
    return scheme, rest
