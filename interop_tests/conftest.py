"""Shared fixtures for the pytest half of the interop suite."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import gbjson  # noqa: E402


def gobridge_bin() -> str:
    path = os.environ.get("GOBRIDGE_BIN") or str(ROOT / "bin" / "gobridge")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found: run `make build` (or `make test`)")
    return path


@pytest.fixture
def gb_bin() -> str:
    return gobridge_bin()


@pytest.fixture
def sockdir():
    """A short directory for socket paths (sun_path holds 107 bytes)."""
    d = tempfile.mkdtemp(prefix="gbt")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def wait_for_path(path: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {path} appeared")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout}s")
        time.sleep(0.01)


@pytest.fixture
def serve(gb_bin, sockdir):
    """Start `gobridge CMD ... unix:PATH` and wait until it listens; stop it after."""
    procs = []

    def start(*args, name="s.sock"):
        path = os.path.join(sockdir, name)
        proc = subprocess.Popen([gb_bin, *args, "unix:" + path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        wait_for_path(path, proc)
        return proc, "unix:" + path

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
        try:
            p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()


def load_vectors():
    with open(HERE / "vectors" / "vectors.json") as f:
        return json.load(f)


def vector_payload(v) -> bytes:
    """A vector's bytes, generator entries expanded (SPEC 8)."""
    n = v.get("n")
    if v.get("gen") == "deep_array":
        return bytes.fromhex("91" * n + "c0")
    if v.get("gen") == "bin":
        head = (b"\xc4" + n.to_bytes(1, "big") if n < 256 else
                b"\xc5" + n.to_bytes(2, "big") if n < 65536 else b"\xc6" + n.to_bytes(4, "big"))
        return head + bytes([v["byte"]]) * n
    if v.get("gen") == "array_of":
        head = (bytes([0x90 | n]) if n < 16 else
                b"\xdc" + n.to_bytes(2, "big") if n < 65536 else b"\xdd" + n.to_bytes(4, "big"))
        return head + bytes.fromhex(v["unit"]) * n
    return bytes.fromhex(v["hex"])


def vector_value(v):
    """A vector's value as Python receives it."""
    if v.get("gen") == "deep_array":
        x = [None]
        for _ in range(v["n"] - 1):
            x = [x]
        return x
    if v.get("gen") == "bin":
        return bytes([v["byte"]]) * v["n"]
    if v.get("gen") == "array_of":
        return [gbjson.from_obj(v["unit_value"]) for _ in range(v["n"])]
    return gbjson.from_obj(v["value"])


VECTORS = load_vectors()
# Valid in both languages; PY_INVALID are those Python's decoder refuses
# (error, or py_error for a value only Go can hold).
VALID = [v for v in VECTORS if not v.get("error") and not v.get("py_error")]
PY_INVALID = [v for v in VECTORS if v.get("error") or v.get("py_error")]
# A vector-driven test over an empty set would pass without testing anything.
assert len(VALID) >= 30, f"only {len(VALID)} valid vectors in vectors.json"
