"""Helpers for gobridge's Python tests (a unique name: interop_tests has a conftest too)."""
import itertools
import os
import threading

# `make test` gives each run a prefix of its own (see interop_tests/leftovers.py).
PREFIX = os.environ.get("GOBRIDGE_TEST_PREFIX", "gbtest")
_counter = itertools.count()


def unique_name(label: str) -> str:
    """A /dev/shm name no other test (and no other run) uses."""
    return f"{PREFIX}-{label}-{os.getpid()}-{next(_counter)}"


def in_thread(fn, *args):
    """Run fn in a daemon thread; return a join() that re-raises and bounds the wait."""
    box = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the joiner
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout=20.0):
        t.join(timeout)
        if t.is_alive():
            raise AssertionError(f"{fn.__name__} still running after {timeout}s")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    return join
