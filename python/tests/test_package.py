"""The package's shape: no import cycles, every module importable on its own,
and every name ``from gobridge import X`` gave before the modules were named
as multiprocessing's still there."""
import ast
import pkgutil
import random
import subprocess
import sys
from pathlib import Path

import pytest

import gobridge

PKG = Path(gobridge.__file__).resolve().parent

#: gobridge.__all__ and __version__ as they were before the reorganisation
#: (issue 13), plus the public modules.
NAMES_BEFORE = [
    "DEFAULT_MAX_FRAME_SIZE", "MAX_DEPTH", "BridgeError", "ProtocolError", "FrameTooLargeError", "DecodeError",
    "EncodeError", "IntegerRangeError", "BufferTooShort", "PeerGoneError", "CorruptError", "encode", "decode",
    "Connection", "Pipe", "Listener", "Client", "parent", "child_environ", "mkfifo", "open_fifo", "Process",
    "parse_address", "Queue", "JoinableQueue", "SimpleQueue", "Value", "Array", "RawValue", "RawArray", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier",
    "BrokenBarrierError", "Lock", "RLock",
    "LayoutError",
    "NotReadyError", "SegmentTruncatedError", "ClosedError", "attach_shared_memory", "attach_shareable_list",
    "__version__",
]
PUBLIC_MODULES = {
    "connection": ["Connection", "Listener", "Client", "Pipe"],
    "queues": ["Queue", "JoinableQueue", "SimpleQueue"],
    "synchronize": ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier",
                    "BrokenBarrierError"],
    "sharedctypes": ["Value", "Array", "RawValue", "RawArray", "Synchronized", "SynchronizedArray",
                     "SynchronizedString"],
    "mmap": ["mmap"],
    "process": ["Process"],
    "signals": ["install", "close_on_shutdown", "shutdown"],
}


def modules():
    return sorted(m.name for m in pkgutil.walk_packages([str(PKG)], "gobridge."))


def imports_of(name):
    """Every gobridge module that module name imports, at any depth of its code."""
    path = PKG.joinpath(*name.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gobridge"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("gobridge"):
                continue
            found.add(mod)
            for a in node.names:  # "from . import x" imports the module x
                if f"{mod}.{a.name}" in ALL:
                    found.add(f"{mod}.{a.name}")
    # importing a.b.c runs a and a.b first: count the parent packages too
    out = set()
    for m in found:
        parts = m.split(".")
        out.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    out.discard(name)
    return {m for m in out if m in ALL}


ALL = set(modules()) | {"gobridge"}


def test_import_graph_is_acyclic():
    graph = {m: imports_of(m) for m in ALL}
    # gobridge/__init__ imports everything it re-exports; a submodule
    # importing the package back (only _worker does, for __version__, and it
    # is run with -m) would be a cycle through it.
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", "import cycle: " + " -> ".join(path + [m])
        state[m] = "open"
        for n in sorted(graph[m]):
            if m == "gobridge._worker" and n == "gobridge":
                continue
            visit(n, path + [m])
        state[m] = "done"

    for m in sorted(graph):
        visit(m, [])
    assert "gobridge._transport.base" in graph and "gobridge._internal.futex" in graph


@pytest.mark.parametrize("seed", range(3))
def test_every_module_imports_alone_in_any_order(seed):
    mods = [m for m in sorted(ALL) if m != "gobridge._worker"]  # _worker runs as a program
    random.Random(seed).shuffle(mods)
    script = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    subprocess.run([sys.executable, "-c", script, *mods], check=True, timeout=60)
    for m in mods:
        subprocess.run([sys.executable, "-c", f"import {m}"], check=True, timeout=60)


@pytest.mark.parametrize("name", NAMES_BEFORE)
def test_from_gobridge_import_keeps_working(name):
    exec(f"from gobridge import {name}", {})
    if name != "__version__":
        assert name in gobridge.__all__


@pytest.mark.parametrize("module", sorted(PUBLIC_MODULES))
def test_public_modules_named_as_multiprocessing(module):
    mod = __import__(f"gobridge.{module}", fromlist=["_"])
    for name in PUBLIC_MODULES[module]:
        obj = getattr(mod, name)
        if name in gobridge.__all__:
            assert getattr(gobridge, name) is obj


def test_private_plumbing_in_subpackages():
    for m in ("futex", "ring", "shmseg", "ofdlock", "layout", "objects"):
        __import__(f"gobridge._internal.{m}")
    for m in ("base", "fd", "shm", "unix", "fifo"):
        __import__(f"gobridge._transport.{m}")
    top = {m.name for m in pkgutil.iter_modules([str(PKG)])}
    for gone in ("_futex", "_ring", "_shm", "_objects", "_queue", "_unix", "_fifo", "_shmconn"):
        assert gone not in top
