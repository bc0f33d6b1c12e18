"""The seed 004 mmap server/client pairs (test.dat and tagname='test') and the
seed 002 /tmp/mm.txt example, Python and Go on either side."""
from __future__ import annotations

import os
import runpy
import subprocess
import sys
import time
from typing import Iterator, List

import pytest

from shm_support import (
    INTERVAL,
    SEEDS,
    Proc,
    cleanup_peer,
    go_peer,
    increasing,
    msgs,
    remove_tag,
    seed,
    unique_tag,
)

GO_INTERVAL = f"{int(INTERVAL * 1000)}ms"


@pytest.fixture(scope="module", autouse=True)
def _peer() -> Iterator[None]:
    yield
    cleanup_peer()


def server_argv(kind: str, side: str, where: str) -> List[str]:
    if side == "py":
        return seed(f"server_{kind}.py", tag=where if kind == "tag" else None)
    return [go_peer(), f"{kind}-server", where if kind == "tag" else "test.dat", GO_INTERVAL]


def client_argv(kind: str, side: str, where: str) -> List[str]:
    if side == "py":
        return seed(f"client_{kind}.py", tag=where if kind == "tag" else None)
    return [go_peer(), f"{kind}-client", where if kind == "tag" else "test.dat", GO_INTERVAL]


@pytest.mark.parametrize("kind", ["file", "tag"])
@pytest.mark.parametrize("server,client", [("py", "py"), ("go", "py"), ("py", "go"), ("go", "go")])
def test_seed_004_server_client(kind: str, server: str, client: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tag = unique_tag()
    s = Proc(server_argv(kind, server, tag), cwd=str(tmp_path))
    c = None
    try:
        if kind == "file":
            # The seed client needs test.dat to exist: wait for the server's.
            dat = tmp_path / "test.dat"
            for _ in range(1000):
                if dat.exists() and dat.stat().st_size == 1024:
                    break
                time.sleep(0.01)
        c = Proc(client_argv(kind, client, tag), cwd=str(tmp_path))
        lines = c.wait_for(increasing(3))
        got = msgs(lines)
        assert got == sorted(got), got
        assert got[0] >= 1
    finally:
        if c is not None:
            c.stop()
        s.stop()
        remove_tag(tag)  # only matters if a peer failed to clean up
    if kind == "tag":
        assert not os.path.exists("/dev/shm/" + tag), "the tag outlived its last handle"


def test_seed_004_tag_client_first_sees_zeroes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ACCESS_READ on a tag nobody created yet maps zeroes (as on Windows): the
    seed client prints empty lines until the server starts, then its msgs."""
    tag = unique_tag()
    c = Proc(seed("client_tag.py", tag=tag))
    s = None
    try:
        c.wait_for(lambda lines: len(lines) >= 2)
        assert c.lines[0] == ""
        s = Proc(seed("server_tag.py", tag=tag))
        c.wait_for(increasing(2))
    finally:
        c.stop()
        if s is not None:
            s.stop()
        remove_tag(tag)
    assert not os.path.exists("/dev/shm/" + tag)


@pytest.mark.parametrize("reader", ["py", "go"])
def test_seed_002_mm_txt(reader: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Seed 002: fill the share file with 'a', map it with length 0; the other
    side maps the same file and writes; the seed's map sees it."""
    share = str(tmp_path / "mm.txt")  # the seed's /tmp/mm.txt, per test
    with open(os.path.join(SEEDS, "mm_txt.py")) as f:
        src = f.read().replace("'/tmp/mm.txt'", repr(share))
    g: dict = {"share_size": 4096}
    exec(compile(src, "mm_txt.py", "exec"), g)
    mm = g["mm"]
    try:
        assert len(mm) == 4096 and mm[:] == b"a" * 4096
        if reader == "go":
            out = subprocess.run([go_peer(), "mm-txt", share], capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == "4096"
        else:
            code = (
                "import mmap,sys\n"
                "f=open(sys.argv[1],'r+b'); m=mmap.mmap(f.fileno(),0); f.close()\n"
                "assert m[:]==b'a'*len(m); m[:13]=b'hello from go'; m.flush(); m.close()\n"
            )
            subprocess.run([sys.executable, "-c", code, share], check=True, timeout=30)
        assert mm[:13] == b"hello from go"
        assert mm[13:] == b"a" * (4096 - 13)
    finally:
        mm.close()
