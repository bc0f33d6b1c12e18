"""Check that the test suite leaves no socket file, FIFO or /dev/shm object behind.

`make test` runs the suite with a private TMPDIR and a name prefix of its own
(GOBRIDGE_TEST_PREFIX), so that it judges only what this run made, even while
another clone runs its own suite on the same machine:

- every socket file and FIFO under TMPDIR is a leftover (the directory is
  this run's alone);
- every /dev/shm entry whose name starts with the prefix is a leftover.

`snapshot` records what exists before the suite, `check` fails if anything new
of those kinds exists afterwards. A new /dev/shm entry outside the prefix that
carries gobridge's kind mark is reported as a warning: it may be another run's,
or a test of this run that made a name without the prefix.
"""
import json
import os
import stat
import sys
import tempfile

STATE = os.path.join(tempfile.gettempdir(), "gobridge-leftovers.json")
ROOT = tempfile.gettempdir()
PREFIX = os.environ.get("GOBRIDGE_TEST_PREFIX", "gbtest")
XATTR_KIND = "user.gobridge.kind"


def shm_entries() -> set:
    try:
        return {"/dev/shm/" + n for n in os.listdir("/dev/shm") if not n.startswith("sem.mp-")}
    except FileNotFoundError:
        return set()


def ours(path: str) -> bool:
    if path.startswith("/dev/shm/"):
        return os.path.basename(path).startswith(PREFIX)
    return True


def inventory() -> set:
    found = shm_entries()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        if dirpath.count(os.sep) - ROOT.count(os.sep) >= 4:
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


def marked(path: str) -> bool:
    try:
        os.getxattr(path, XATTR_KIND, follow_symlinks=False)
        return True
    except OSError:
        return False


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
        new = inventory() - before
        mine = sorted(p for p in new if ours(p))
        foreign = sorted(p for p in new if not ours(p) and marked(p))
        if foreign:
            print(f"leftovers: warning: new gobridge segments outside this run's prefix {PREFIX!r}"
                  " (another run's, or a test that made a name without the prefix):",
                  *foreign, sep="\n  ")
        if mine:
            print("the test suite left these behind:", *mine, sep="\n  ")
            return 1
        print(f"leftovers: none (prefix {PREFIX!r}, TMPDIR {ROOT})")
        return 0
    print("usage: leftovers.py snapshot|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
