"""Tagged shared memory between Go and Python: gobridge.mmap, SharedMemory,
ShareableList, the lifetime rule and the safety checks."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory, ShareableList
from typing import Iterator

import pytest

from gobridge import mmap
from gobridge._internal import shmseg as _shm
from shm_support import PREFIX, Proc, cleanup_peer, go_peer, remove_tag, unique_tag


@pytest.fixture(scope="module", autouse=True)
def _peer() -> Iterator[None]:
    yield
    cleanup_peer()


@pytest.fixture
def tag() -> Iterator[str]:
    t = unique_tag()
    yield t
    remove_tag(t)


def gone(tag: str) -> bool:
    return not os.path.exists("/dev/shm/" + tag)


def go(*args: str) -> str:
    out = subprocess.run([go_peer(), *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_go_writes_python_reads(tag: str) -> None:
    w = Proc([go_peer(), "write-tag", tag, "4096", "from go"])
    try:
        w.wait_for(lambda lines: "ready" in lines)
        with mmap.mmap(-1, 4096, tagname=tag, access=mmap.ACCESS_READ) as m:
            assert m[:7] == b"from go"
            assert m.size() == 4096
            with pytest.raises(TypeError):
                m[0] = 1
        assert not gone(tag), "the reader's close removed a segment Go still holds"
    finally:
        assert w.close_stdin_and_wait() == 0
    assert gone(tag)


def test_resize_refused_while_the_other_language_maps(tag: str) -> None:
    """As on Windows, a tag another handle maps is not resized: a Go handle
    stops Python's resize (OSError EBUSY, nothing changed) and a Python handle
    stops Go's (ErrBusy). Alone, each resizes."""
    w = Proc([go_peer(), "write-tag", tag, "8192", "from go"])
    try:
        w.wait_for(lambda lines: "ready" in lines)
        with mmap.mmap(-1, 8192, tagname=tag) as m:
            with pytest.raises(OSError) as e:
                m.resize(4096)
            assert e.value.errno == errno.EBUSY and tag in str(e.value)
            assert m.size() == 8192 and len(m) == 8192 and m[:7] == b"from go"
            assert go("resize-tag", tag, "16384").split() == ["busy"]
            assert m.size() == 8192
    finally:
        assert w.close_stdin_and_wait() == 0
    with mmap.mmap(-1, 8192, tagname=tag) as m:
        m.resize(4096)
        assert m.size() == 4096 and len(m) == 4096
    with mmap.mmap(-1, 100, tagname=tag, keep=True) as m:
        pass
    try:
        assert go("resize-tag", tag, "16384").split() == ["resized", "16384"]
    finally:
        mmap.unlink(tag)


def test_python_writes_go_reads(tag: str) -> None:
    with mmap.mmap(-1, 100, tagname=tag, access=mmap.ACCESS_WRITE) as m:
        m.write(b"from python")
        assert go("read-tag", tag).strip() == "from python"
        assert not gone(tag)
    assert gone(tag)


def test_python_to_python(tag: str) -> None:
    code = (
        "import sys\nfrom gobridge import mmap\n"
        "with mmap.mmap(-1, 0, tagname=sys.argv[1]) as m: print(m.readline().decode().strip())\n"
    )
    with mmap.mmap(-1, 64, tagname=tag) as m:
        m[:6] = b"hello\n"
        out = subprocess.run([sys.executable, "-c", code, tag], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "hello", out.stderr
    assert gone(tag)


def test_keep_and_unlink(tag: str) -> None:
    with mmap.mmap(-1, 64, tagname=tag, keep=True) as m:
        m[:4] = b"kept"
    assert not gone(tag)
    with mmap.mmap(-1, 0, tagname=tag) as m:
        assert m[:4] == b"kept"
    assert not gone(tag), "keep is a property of the segment"
    mmap.unlink(tag)
    assert gone(tag)


_ATTACH_CHILD = {
    # gobridge's public helpers: the segment survives this process's exit.
    "attach_shared_memory": (
        "import sys, gobridge\n"
        "s = gobridge.attach_shared_memory(sys.argv[1]); print(bytes(s.buf[:6]).decode()); s.close()\n"
    ),
    "attach_shareable_list": (
        "import sys, gobridge\n"
        "sl = gobridge.attach_shareable_list(sys.argv[1]); print(sl[4]); sl.shm.close()\n"
    ),
    # The stdlib alone: its resource tracker unlinks the Go segment when the
    # child exits (CPython issue 82300), which is what the helpers prevent.
    "stdlib SharedMemory": (
        "import sys\nfrom multiprocessing.shared_memory import SharedMemory\n"
        "s = SharedMemory(name=sys.argv[1]); print(bytes(s.buf[:6]).decode()); s.close()\n"
    ),
}


@pytest.mark.parametrize("how", list(_ATTACH_CHILD))
def test_go_segment_survives_a_python_process_that_attached(tag: str, how: str) -> None:
    if how == "attach_shareable_list":
        w = Proc([go_peer(), "sl-new", tag, '[42, 0.25, false, null, "shared"]'])
    else:
        w = Proc([go_peer(), "write-tag", tag, "4096", "shared"])
    try:
        w.wait_for(lambda lines: "ready" in lines)
        out = subprocess.run([sys.executable, "-c", _ATTACH_CHILD[how], tag], capture_output=True, text=True,
                             timeout=30)
        assert out.stdout.strip() == "shared", out.stderr
        if how.startswith("stdlib"):
            assert gone(tag), "the stdlib's tracker kept its hands off: the control no longer shows issue 82300"
        else:
            assert "leaked" not in out.stderr and not gone(tag), "the tracker unlinked a segment Go holds"
    finally:
        w.close_stdin_and_wait()
    assert gone(tag)


def test_go_attaches_to_shared_memory(tag: str) -> None:
    s = SharedMemory(name=tag, create=True, size=256)
    try:
        s.buf[:9] = b"from psm\n"
        assert go("read-tag", tag).strip() == "from psm"
        assert not gone(tag), "Go's close removed a segment Python created (Python's unlink() owns it)"
    finally:
        s.close()
        s.unlink()


def test_shareable_list_python_to_go(tag: str) -> None:
    sl = ShareableList([1, -2.5, True, None, "héllo", b"by\x00tes", 2**62, ""], name=tag)
    try:
        got = json.loads(go("sl-dump", tag))
        assert got == [1, -2.5, True, None, "héllo", {"$bin": "YnkAdGVz"}, 2**62, ""]
        go("sl-set", tag, "0", '"seven"')
        go("sl-set", tag, "1", "7")
        go("sl-set", tag, "2", "null")
        go("sl-set", tag, "-1", '{"$bin": "AAE="}')  # b"\x00\x01"
        go("sl-set", tag, "3", "1.5")
        assert list(sl) == ["seven", 7, None, 1.5, "héllo", b"by\x00tes", 2**62, b"\x00\x01"]
        assert sl.format == "8sqxxxxxx?xd8s8sq8s"
        out = subprocess.run([go_peer(), "sl-set", tag, "4", '"much too long for it"'], capture_output=True, text=True)
        assert out.returncode != 0 and "exceed" in out.stderr
    finally:
        sl.shm.close()
        sl.shm.unlink()


def test_shareable_list_go_to_python(tag: str) -> None:
    w = Proc([go_peer(), "sl-new", tag, '[42, 0.25, false, null, "go", {"$bin": "AQI="}]'])
    try:
        w.wait_for(lambda lines: "ready" in lines)
        sl = ShareableList(name=tag)
        resource_tracker.unregister(sl.shm._name, "shared_memory")  # type: ignore[attr-defined]
        try:
            assert list(sl) == [42, 0.25, False, None, "go", b"\x01\x02"]
            sl[4] = "python"
            sl[0] = -1
        finally:
            sl.shm.close()
        assert json.loads(go("sl-dump", tag)) == [-1, 0.25, False, None, "python", {"$bin": "AQI="}]
    finally:
        w.close_stdin_and_wait()
    assert gone(tag)


def test_shareable_list_unknown_layout_rejected(tag: str) -> None:
    with open("/dev/shm/" + tag, "wb") as f:
        f.write(b"\x01" + b"\x00" * 7 + b"\x08" + b"\x00" * 31)
    out = subprocess.run([go_peer(), "sl-dump", tag], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "not a ShareableList" in out.stderr, out.stderr


@pytest.mark.parametrize("bad", ["", "a/b", "..", "x\x00y", "x" * 256, ".hidden"])
def test_bad_tag_names(bad: str) -> None:
    with pytest.raises(ValueError):
        mmap.mmap(-1, 16, tagname=bad)


def test_read_larger_than_segment(tag: str) -> None:
    with mmap.mmap(-1, 16, tagname=tag):
        with pytest.raises(ValueError, match="16 bytes"):
            mmap.mmap(-1, 32, tagname=tag, access=mmap.ACCESS_READ)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's file")
def test_other_users_segment_refused(tag: str) -> None:
    p = "/dev/shm/" + tag
    with open(p, "wb") as f:
        f.write(b"\x00" * 64)
    os.chown(p, 65534, 65534)
    with pytest.raises(PermissionError, match="allow_other_owner"):
        mmap.mmap(-1, 64, tagname=tag)
    out = subprocess.run([go_peer(), "read-tag", tag], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "another user" in out.stderr
    seg = _shm.open_segment(tag, 64, allow_other_owner=True)
    seg.close()
    assert not gone(tag), "an unmarked segment was removed by close"


def test_planted_symlink_refused(tag: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "victim"
    victim.write_bytes(b"secret")
    os.symlink(victim, "/dev/shm/" + tag)
    with pytest.raises(OSError):
        mmap.mmap(-1, 6, tagname=tag)
    assert victim.read_bytes() == b"secret"


def gobridge_bin() -> str:
    b = os.environ.get("GOBRIDGE_BIN", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin", "gobridge"))
    if not os.path.exists(b):
        pytest.skip("gobridge command not built (make build)")
    return b


def test_sigkilled_holder_is_reclaimed_by_gc(tag: str) -> None:
    """A SIGKILLed process leaves its segment unheld; `gobridge shm gc` removes
    it, and never a SharedMemory segment that is not gobridge's."""
    foreign = unique_tag("psm")
    psm = SharedMemory(name=foreign, create=True, size=16)
    code = (
        "import sys\nfrom gobridge import mmap\n"
        "m = mmap.mmap(-1, 4096, tagname=sys.argv[1]); print('ready', flush=True)\n"
        "import time\ntime.sleep(60)\n"
    )
    p = Proc([sys.executable, "-c", code, tag])
    try:
        p.wait_for(lambda lines: "ready" in lines)
        ls = json.loads(subprocess.run([gobridge_bin(), "shm", "ls", "--json", "--prefix", PREFIX], capture_output=True, text=True, check=True).stdout)
        mine = [e for e in ls if e["tag"] == tag]
        assert mine and mine[0]["handles"] == 1 and mine[0]["kind"] == "mmap"
        assert subprocess.run([gobridge_bin(), "shm", "gc", "--prefix", PREFIX], capture_output=True, text=True, check=True).stdout.split().count(tag) == 0
        p.stop(sig=9)
        assert not gone(tag), "SIGKILL cannot run cleanup"
        out = subprocess.run([gobridge_bin(), "shm", "gc", "--prefix", PREFIX], capture_output=True, text=True, check=True).stdout.split()
        assert tag in out and foreign not in out
        assert gone(tag) and not gone(foreign)
    finally:
        p.stop()
        psm.close()
        psm.unlink()
