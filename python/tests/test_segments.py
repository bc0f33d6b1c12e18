"""gobridge._internal.shmseg, the segment layer under mmap tags, shared objects and shm:
connections: the name rule (the table Go's shmseg tests read too), refusing
what is not a segment, and creating a segment whole before its name exists."""
import json
import os
import socket
from pathlib import Path

import pytest

from gbtest_support import unique_name
from gobridge._internal import shmseg as _shm
from gobridge import mmap as gbmmap

NAMES = json.loads((Path(__file__).resolve().parents[2] / "interop_tests" / "vectors" / "names.json").read_text())


def _as_str(raw: bytes) -> str:
    """The str Python uses for a file name of these bytes (os.fsdecode)."""
    return raw.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("case", NAMES, ids=[c["why"] for c in NAMES])
def test_name_table(case) -> None:
    name = _as_str(bytes.fromhex(case["hex"]))
    if case["valid"]:
        _shm.validate_name(name)
    else:
        with pytest.raises(_shm.ShmNameError):
            _shm.validate_name(name)


def test_names_that_cannot_be_encoded_are_name_errors() -> None:
    # A lone surrogate has no file-system bytes at all: the old check let
    # os.fsencode raise UnicodeEncodeError.
    for bad in ("\ud800", "x\udfff", "a\udcffb"):
        with pytest.raises(_shm.ShmNameError, match="not valid UTF-8"):
            _shm.validate_name(bad)
        with pytest.raises(ValueError):
            gbmmap.mmap(-1, 64, tagname=bad)
    assert issubclass(_shm.ShmNameError, ValueError)


def test_shm_address_with_a_non_utf8_name_is_a_name_error() -> None:
    import gobridge
    with pytest.raises(_shm.ShmNameError):
        gobridge.Client("shm:" + _as_str(b"bad-\xff"))


def test_sockets_fifos_and_directories_are_refused_at_once(sockdir) -> None:
    made = []
    try:
        n_sock = unique_name("sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(_shm.path(n_sock))
        made.append((n_sock, s))
        n_fifo = unique_name("fifo")
        os.mkfifo(_shm.path(n_fifo))
        made.append((n_fifo, None))
        n_dir = unique_name("dir")
        os.mkdir(_shm.path(n_dir))
        made.append((n_dir, None))
        for name, _ in made:
            for ro in (False, True):
                with pytest.raises(_shm.NotRegularError, match="not a segment"):
                    _shm.open_segment(name, 0, readonly=ro, create=False)
    finally:
        for name, s in made:
            if s is not None:
                s.close()
            p = _shm.path(name)
            if os.path.isdir(p):
                os.rmdir(p)
            elif os.path.lexists(p):
                os.unlink(p)


@pytest.mark.parametrize("fallback", [False, True], ids=["O_TMPFILE", "linked temporary"])
def test_init_runs_before_the_name_exists(monkeypatch, fallback: bool) -> None:
    monkeypatch.setattr(_shm, "_NO_TMPFILE", fallback)
    name = unique_name("init")
    calls = []

    def init(fd: int) -> None:
        calls.append(fd)
        assert not os.path.lexists(_shm.path(name)), "published before init"
        assert os.fstat(fd).st_size == 64
        os.pwrite(fd, b"ready", 0)

    seg = _shm.open_segment(name, 64, kind="test-init", attach=False, init=init)
    try:
        assert len(calls) == 1
        with open(_shm.path(name), "rb") as f:
            assert f.read(5) == b"ready"
        assert seg.kind() == "test-init"
        with pytest.raises(FileExistsError):
            _shm.open_segment(name, 64, attach=False, init=lambda fd: None)
    finally:
        seg.close()
    assert not os.path.lexists(_shm.path(name))

    name2 = unique_name("init")

    def boom(fd: int) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _shm.open_segment(name2, 64, attach=False, init=boom)
    assert not os.path.lexists(_shm.path(name2)), "a segment whose init failed was published"
    left = [n for n in os.listdir(_shm.DIR) if n.startswith(f".gbnew-{os.getpid()}-")]
    assert not left, left


def test_attach_shared_memory_is_public() -> None:
    import gobridge
    assert gobridge.attach_shared_memory is _shm.attach_shared_memory
    assert "attach_shared_memory" in gobridge.__all__
    name = unique_name("psm")
    with gbmmap.mmap(-1, 64, tagname=name) as m:
        m[:5] = b"hello"
        s = gobridge.attach_shared_memory(name)
        try:
            assert bytes(s.buf[:5]) == b"hello"
        finally:
            s.close()
    assert not os.path.lexists(_shm.path(name))
