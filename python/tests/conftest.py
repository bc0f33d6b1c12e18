"""Shared helpers for gobridge's Python tests: real descriptors, bounded waits."""
import os
import shutil
import socket
import tempfile

import pytest


@pytest.fixture
def sockdir():
    """A short private directory for socket paths (sun_path holds 107 bytes)."""
    d = tempfile.mkdtemp(prefix="gbpy")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class RawEnd:
    """A raw descriptor for writing crafted bytes; close() is idempotent."""

    def __init__(self, fd):
        self.fd = fd

    def write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@pytest.fixture
def conn_raw():
    """(gobridge Connection, RawEnd) on the two ends of a socketpair."""
    from gobridge import Connection

    made = []

    def make(**kwargs):
        a, b = socket.socketpair()
        pair = (Connection(a.detach(), **kwargs), RawEnd(b.detach()))
        made.append(pair)
        return pair

    yield make
    for conn, raw in made:
        conn.close()
        raw.close()


@pytest.fixture
def raw_pair():
    """A socketpair as two raw descriptors; whatever is still open is closed after."""
    a, b = socket.socketpair()
    fds = [a.detach(), b.detach()]
    yield fds
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
