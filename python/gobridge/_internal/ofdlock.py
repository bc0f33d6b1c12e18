"""Open-file-description byte locks (``fcntl`` ``F_OFD_*``): the one packer of
``struct flock`` in the package.

Shared objects lock bytes 0-2 of their segment (wire/SPEC.md 10.5, 10.8) and
a ``fifo:`` listener marks its rendezvous FIFO with a write lock on byte 0
(SPEC 6.6). An OFD lock belongs to the open file description, so the kernel
releases it when its holder dies, and threads of one process sharing the
description do not exclude each other (callers add a threading lock).
"""
from __future__ import annotations

import fcntl
import os
import struct

from .layout import FLOCK_STRUCT

__all__ = ["FLOCK", "pack", "probe"]

#: struct flock on LP64 Linux (x86-64 and arm64): l_type, l_whence, l_start,
#: l_len, l_pid, padding.
FLOCK = struct.Struct(FLOCK_STRUCT)


def pack(typ: int, start: int, length: int = 1) -> bytes:
    """A struct flock for ``length`` bytes from ``start`` (SEEK_SET) of type
    ``typ`` (``fcntl.F_WRLCK``, ``F_RDLCK`` or ``F_UNLCK``), pid 0 as OFD
    locks require."""
    return FLOCK.pack(typ, os.SEEK_SET, start, length, 0)


def probe(fd: int, typ: int, start: int, length: int = 1) -> int:
    """``F_OFD_GETLK``: the type of a lock another description holds that
    would conflict with ``typ`` on those bytes, or ``fcntl.F_UNLCK``."""
    res = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, pack(typ, start, length))
    return int(FLOCK.unpack(res)[0])
