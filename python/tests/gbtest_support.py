"""Helpers for gobridge's Python tests (a unique name: interop_tests has a conftest too)."""
import threading


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
