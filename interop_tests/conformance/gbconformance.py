"""CPython's own multiprocessing and mmap tests, run against gobridge.

The test classes are CPython's, imported at run time from the running
interpreter's ``test`` package (test/_test_multiprocessing.py and
test/test_mmap.py; nothing is copied), with gobridge's objects in place of
the stdlib's:

- each listed ``_Test*`` class of _test_multiprocessing is combined, as that
  module's install_tests_in_module_dict does for ProcessesMixin, with
  :class:`GobridgeMixin`, whose factories are gobridge's (Pipe, Queue,
  JoinableQueue, Value, Array, RawValue, RawArray, Lock, RLock, Semaphore,
  BoundedSemaphore; ``connection`` is gobridge.connection). A name gobridge
  lacks raises AttributeError where a test calls it: it is never replaced by
  the stdlib's. Helpers a test only uses to coordinate (Event, Condition,
  Barrier) are gobridge's when it has them, the stdlib's otherwise (Event,
  Condition and Barrier are gobridge's, and _TestEvent, _TestCondition and
  _TestBarrier test them);
  ``Process`` is the stdlib's, of the chosen start method (fork by default).
- the test modules are private copies (executed from the interpreter's own
  files under a private module name), whose global ``multiprocessing`` is a
  module with the same substitutions and whose global ``mmap`` is
  gobridge.mmap, so the interpreter's own modules are untouched.
- test_mmap's Windows-only tests that use ``tagname`` are un-skipped: that is
  what gobridge.mmap emulates on Linux.

Every test listed in expected.json is run and must fail (unittest's
expectedFailure: one that passes is an "unexpected success", a failure of
the suite, and the list must be updated). ``run.py`` prints the counts per
class; ``test_conformance.py`` gives the same classes to pytest.
"""
from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import types
import unittest
from typing import Any, Dict, List, Optional, Tuple

import gobridge
import gobridge.connection
import gobridge.mmap
import gobridge.queues
import gobridge.sharedctypes
import gobridge.synchronize

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED_FILE = os.path.join(HERE, "expected.json")
VERSION = "%d.%d" % sys.version_info[:2]
PREFIX = os.environ.get("GOBRIDGE_TEST_PREFIX", "gbtest")
START_METHOD = os.environ.get("GOBRIDGE_CONFORMANCE_START", "fork")
TEST_TIMEOUT = float(os.environ.get("GOBRIDGE_CONFORMANCE_TIMEOUT", "30"))

#: _test_multiprocessing's classes under test, in CPython's order.
MP_CLASSES = ["_TestQueue", "_TestLock", "_TestSemaphore", "_TestCondition", "_TestEvent", "_TestBarrier",
              "_TestValue", "_TestArray", "_TestConnection", "_TestListener", "_TestListenerClient", "_TestPoll",
              "_TestPicklingConnections", "TestWait"]
#: test_mmap's classes.
MMAP_CLASSES = ["MmapTests", "LargeMmapTests"]

#: Names the tests exercise: gobridge's or, if it lacks one, an AttributeError.
REQUIRED = ["Pipe", "Queue", "JoinableQueue", "Value", "Array", "RawValue", "RawArray", "Lock", "RLock",
            "Semaphore", "BoundedSemaphore", "BufferTooShort"]
#: Names the tests only coordinate with: gobridge's if it has them, else the stdlib's.
HELPERS = ["Event", "Condition", "Barrier", "SimpleQueue"]


class TestTimeout(Exception):
    """A conformance test ran past GOBRIDGE_CONFORMANCE_TIMEOUT seconds."""


def _missing(owner: str, name: str) -> Any:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise AttributeError(f"module {owner!r} has no attribute {name!r}")
    missing.__name__ = name
    return missing


def _gobridge(name: str) -> Any:
    return getattr(gobridge, name, None) or _missing("gobridge", name)


def _connection_module() -> types.ModuleType:
    """gobridge.connection, plus what the tests read from multiprocessing.connection
    that is not an object of its own: ``families`` (the stdlib's that gobridge
    serves, unless gobridge.connection says) and ``wait`` (the stdlib's, which
    takes any object with fileno(), unless gobridge.connection has one)."""
    ns = types.ModuleType("gobridge.connection")
    ns.__dict__.update({k: v for k, v in vars(gobridge.connection).items() if not k.startswith("__")})
    if not hasattr(gobridge.connection, "families"):
        ns.families = [f for f in multiprocessing.connection.families if f == "AF_UNIX"]  # type: ignore[attr-defined]
    if not hasattr(gobridge.connection, "wait"):
        ns.wait = multiprocessing.connection.wait  # type: ignore[attr-defined]
    return ns


CONNECTION = _connection_module()


class _Multiprocessing(types.ModuleType):
    """The ``multiprocessing`` the private test modules see: the stdlib's,
    but gobridge's objects under their names, of the chosen start method."""

    def __init__(self, ctx: Any) -> None:
        super().__init__("multiprocessing")
        self._ctx = ctx
        self.Process = ctx.Process
        self.connection = CONNECTION
        self.queues = gobridge.queues
        self.sharedctypes = gobridge.sharedctypes
        self.synchronize = gobridge.synchronize
        for name in REQUIRED:
            setattr(self, name, _gobridge(name))
        for name in HELPERS:
            setattr(self, name, getattr(gobridge, name, None) or getattr(ctx, name))

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def _load_private(modname: str, alias: str) -> types.ModuleType:
    """Execute the interpreter's test.<modname> under a private name."""
    spec = importlib.util.find_spec("test." + modname)
    if spec is None or spec.origin is None:
        raise unittest.SkipTest(f"this interpreter has no test.{modname}")
    priv = importlib.util.spec_from_file_location(alias, spec.origin)
    assert priv is not None and priv.loader is not None
    mod = importlib.util.module_from_spec(priv)
    sys.modules[alias] = mod  # pickling by name (spawn children) finds it
    priv.loader.exec_module(mod)
    return mod


def _with_timeout(fn: Any) -> Any:
    """Bound a test method by SIGALRM (main thread only), so that a test that
    would block forever on a bug fails instead of hanging the suite."""
    @functools.wraps(fn)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if TEST_TIMEOUT <= 0 or not hasattr(signal, "setitimer"):
            return fn(self, *args, **kwargs)
        import threading
        if threading.current_thread() is not threading.main_thread() or signal.getitimer(signal.ITIMER_REAL)[0]:
            return fn(self, *args, **kwargs)  # another thread, or within a test already timed

        def expire(signum: int, frame: Any) -> None:
            raise TestTimeout(f"{self.id()} still running after {TEST_TIMEOUT:g}s")

        old = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
        try:
            return fn(self, *args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return run


def load_expected() -> Dict[str, Dict[str, Any]]:
    """expected.json's entries that apply to this interpreter: test id
    (``Class.test_name``) -> entry (reason, kind: "intended" or "bug", cause)."""
    with open(EXPECTED_FILE) as f:
        data = json.load(f)
    out = {}
    for test_id, entry in data["tests"].items():
        versions = entry.get("versions")
        if versions is None or VERSION in versions:
            out[test_id] = entry
    return out


#: Windows-only tagname tests left skipped, and why.
KEEP_SKIPPED = {
    "test_crasher_on_windows": "its second half (issue 5385) maps a real file, which gobridge.mmap hands to the "
                               "stdlib unchanged; on Linux the stdlib's resize(0) truncates the file before it "
                               "fails, and the next m[:] kills the interpreter with SIGBUS",
}


def _windows_tagname_tests(cls: type) -> List[str]:
    """test_mmap's tests skipped off Windows that use tagname (but KEEP_SKIPPED)."""
    names = []
    for name, fn in vars(cls).items():
        if not name.startswith("test") or not getattr(fn, "__unittest_skip__", False) or name in KEEP_SKIPPED:
            continue
        why = getattr(fn, "__unittest_skip_why__", "")
        if "Windows" in why and "tagname" in inspect.getsource(fn):
            names.append(name)
    return names


def _finish(cls: type, expected: Dict[str, Dict[str, Any]], unskip: Tuple[str, ...] = ()) -> type:
    """Wrap each test of cls in the timeout, un-skip those named, and mark the
    expected failures."""
    for name in dir(cls):
        if not name.startswith("test"):
            continue
        fn = getattr(cls, name)
        if not callable(fn):
            continue
        if name in unskip:
            fn = fn.__wrapped__  # unittest.skip's wrapper around the test itself
        wrapped = _with_timeout(fn)
        if f"{cls.__name__}.{name}" in expected:
            wrapped = unittest.expectedFailure(wrapped)
        setattr(cls, name, wrapped)
    return cls


def build(start_method: str = START_METHOD, module: str = __name__) -> Dict[str, type]:
    """The conformance classes for this interpreter, by name."""
    expected = load_expected()
    ctx = multiprocessing.get_context(start_method)
    mp = _load_private("_test_multiprocessing", "_gbconformance_mp")
    mp.multiprocessing = _Multiprocessing(ctx)  # type: ignore[attr-defined]

    class GobridgeMixin(mp.BaseMixin):  # type: ignore[name-defined,misc]
        """ProcessesMixin with gobridge's factories."""
        TYPE = "processes"
        Process = ctx.Process
        connection = CONNECTION
        current_process = staticmethod(multiprocessing.current_process)
        parent_process = staticmethod(multiprocessing.parent_process)
        active_children = staticmethod(multiprocessing.active_children)
        Listener = gobridge.Listener
        Client = staticmethod(gobridge.Client)

    for name in REQUIRED + HELPERS:
        setattr(GobridgeMixin, name, staticmethod(getattr(mp.multiprocessing, name)))

    classes: Dict[str, type] = {}
    for name in MP_CLASSES:
        base = getattr(mp, name, None)
        if base is None:
            continue
        if issubclass(base, mp.BaseTestCase):
            if "processes" not in base.ALLOWED_TYPES:
                continue
            newname = "WithProcesses" + name[1:]
            cls = type(newname, (base, GobridgeMixin, unittest.TestCase), {})
        else:
            newname = name
            cls = type(newname, (base,), {})
        cls.__qualname__ = newname
        cls.__module__ = module
        classes[newname] = _finish(cls, expected)

    mm = _load_private("test_mmap", "_gbconformance_mmap")
    mm.mmap = _mmap_module()  # type: ignore[attr-defined]
    for name in MMAP_CLASSES:
        base = getattr(mm, name, None)
        if base is None:
            continue
        cls = type(name, (base,), {})
        cls.__qualname__ = name
        cls.__module__ = module
        classes[name] = _finish(cls, expected, tuple(_windows_tagname_tests(base)))
    if module == __name__:
        # Where a spawn or forkserver child's unpickler looks them up (by
        # module and name); __getattr__ builds them there.
        os.environ["GOBRIDGE_CONFORMANCE_START"] = start_method
        globals().update(classes)
    return classes


def __getattr__(name: str) -> type:
    """A conformance class, built on first use: how a spawn or forkserver
    child finds the class of the test that started it."""
    if name in MMAP_CLASSES or name.startswith("WithProcesses") or name in MP_CLASSES:
        classes = build(START_METHOD)
        if name in classes:
            return classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _IsolatedMmap(gobridge.mmap.mmap):
    """gobridge.mmap.mmap with the run's prefix before every tag, so that two
    clones running the suite at once never share a segment (3.10's test_mmap
    uses the fixed tags "foo" and "boo"), and what a test leaves behind is
    judged by the leftover check. sizeof leaves the prefix out."""

    def __new__(cls, fileno: int, length: int, *args: Any, **kwargs: Any) -> "_IsolatedMmap":
        if args and isinstance(args[0], str):
            args = (_prefixed(args[0]),) + args[1:]
        elif isinstance(kwargs.get("tagname"), str):
            kwargs["tagname"] = _prefixed(kwargs["tagname"])
        return super().__new__(cls, fileno, length, *args, **kwargs)  # type: ignore[return-value]

    def __sizeof__(self) -> int:
        n = super().__sizeof__()
        return n - len(PREFIX) - 1 if self.tagname is not None else n


def _prefixed(tag: str) -> str:
    return tag if tag.startswith(PREFIX) else f"{PREFIX}-{tag}"


def _mmap_module() -> types.ModuleType:
    ns = types.ModuleType("gobridge.mmap")
    ns.__dict__.update({k: v for k, v in vars(gobridge.mmap).items() if not k.startswith("__")})
    ns.mmap = _IsolatedMmap  # type: ignore[attr-defined]
    # Named as the class it stands for: repr() shows the type's name.
    _IsolatedMmap.__name__ = _IsolatedMmap.__qualname__ = "mmap"
    return ns


def class_of(test: unittest.TestCase) -> str:
    return type(test).__name__


def entry_for(test: unittest.TestCase, expected: Optional[Dict[str, Dict[str, Any]]] = None) -> Optional[Dict[str, Any]]:
    expected = load_expected() if expected is None else expected
    return expected.get(f"{class_of(test)}.{test._testMethodName}")
