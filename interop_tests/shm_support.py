"""Helpers for the test_shm_*.py files: unique tags, the Go peer, processes
that are always stopped, and the ported seeds."""
from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SEEDS = os.path.join(HERE, "seeds")
RUN_SEED = os.path.join(SEEDS, "run_seed.py")
INTERVAL = 0.02  # what the seeds' one-second sleep becomes

_counter = itertools.count()


# `make test` gives each run a prefix of its own, so that the leftover check
# judges only what this run made while another clone runs its suite.
PREFIX = os.environ.get("GOBRIDGE_TEST_PREFIX", "gbtest")


def unique_tag(label: str = "t") -> str:
    return f"{PREFIX}-{label}-{os.getpid()}-{next(_counter)}-{os.urandom(2).hex()}"


def remove_tag(tag: str) -> None:
    try:
        os.unlink("/dev/shm/" + tag)
    except FileNotFoundError:
        pass


_peer_lock = threading.Lock()
_peer_path: Optional[str] = None
_peer_dir: Optional[str] = None


def go_peer() -> str:
    """Build interop_tests/internal/shmpeer (once until cleanup_peer)."""
    global _peer_path, _peer_dir
    with _peer_lock:
        if _peer_path is None:
            go = shutil.which("go")
            if go is None:
                import pytest

                pytest.skip("go not found")
            _peer_dir = tempfile.mkdtemp(prefix="gbshmpeer")
            out = os.path.join(_peer_dir, "shmpeer")
            subprocess.run([go, "build", "-o", out, "./interop_tests/internal/shmpeer"], cwd=REPO, check=True, timeout=300)
            _peer_path = out
        return _peer_path


def cleanup_peer() -> None:
    """Remove the built peer (each test module builds and removes its own)."""
    global _peer_path, _peer_dir
    with _peer_lock:
        if _peer_dir is not None:
            shutil.rmtree(_peer_dir, ignore_errors=True)
        _peer_path = _peer_dir = None


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, argv: List[str], cwd: Optional[str] = None) -> None:
        self.argv = argv
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: List[str] = []
        self._cv = threading.Condition()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_for(self, pred, timeout: float = 10.0) -> List[str]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        with self._cv:
            while not pred(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self._t.is_alive()):
                    err = self.p.stderr.read() if self.p.poll() is not None and self.p.stderr else ""
                    raise AssertionError(f"{self.argv}: waited for output, got {self.lines[-5:]!r}; stderr {err!r}")
                self._cv.wait(min(left, 0.05))
            return list(self.lines)

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Interrupt (the seeds then close their maps) and reap."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.p.stdin:
            self.p.stdin.close()
        self._t.join(5)
        if self.p.stderr:
            self.p.stderr.close()
        return self.p.returncode

    def close_stdin_and_wait(self) -> int:
        assert self.p.stdin is not None
        self.p.stdin.close()
        try:
            self.p.wait(10)
        finally:
            self.stop()
        return self.p.returncode


def seed(script: str, tag: Optional[str] = None, extra: Optional[List[str]] = None) -> List[str]:
    argv = [sys.executable, RUN_SEED, os.path.join(SEEDS, script), "--interval", str(INTERVAL)]
    if tag is not None:
        argv += ["--subst", f"test={tag}"]
    return argv + (extra or [])


def msgs(lines: List[str]) -> List[int]:
    """The i of every 'msg i' line."""
    return [int(line[4:]) for line in lines if line.startswith("msg ") and line[4:].isdigit()]


def increasing(n: int):  # type: ignore[no-untyped-def]
    """A predicate: n distinct 'msg i' lines seen, in increasing order."""

    def pred(lines: List[str]) -> bool:
        m = msgs(lines)
        return len(set(m)) >= n

    return pred

