"""Check that the test suite leaves no socket file, FIFO or /dev/shm object behind.

`snapshot` records what exists before the suite; `check` fails if anything new
of those kinds exists afterwards. Python's own multiprocessing semaphores
(sem.mp-*) are ignored: they belong to the interpreter, not to gobridge.
"""
import json
import os
import stat
import sys
import tempfile

STATE = os.path.join(tempfile.gettempdir(), "gobridge-leftovers.json")
ROOTS = [tempfile.gettempdir()]


def inventory() -> set:
    found = set()
    for name in os.listdir("/dev/shm"):
        if not name.startswith("sem.mp-"):
            found.add("/dev/shm/" + name)
    for root in ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            if dirpath.count(os.sep) - root.count(os.sep) >= 3:
                dirnames[:] = []
            for name in filenames + dirnames:
                path = os.path.join(dirpath, name)
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    continue
                if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
                    found.add(path)
    return found


def main() -> int:
    if sys.argv[1:] == ["snapshot"]:
        with open(STATE, "w") as f:
            json.dump(sorted(inventory()), f)
        return 0
    if sys.argv[1:] == ["check"]:
        try:
            with open(STATE) as f:
                before = set(json.load(f))
        except FileNotFoundError:
            before = set()
        new = sorted(inventory() - before)
        if new:
            print("the test suite left these behind:", *new, sep="\n  ")
            return 1
        print("leftovers: none")
        return 0
    print("usage: leftovers.py snapshot|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
