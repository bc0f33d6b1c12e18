#!/usr/bin/env python3
"""Run the conformance suite and print counts per class.

usage: python interop_tests/conformance/run.py [-v] [--start-method fork|spawn|forkserver]
                                                [--markdown] [-k SUBSTRING]

Counts are passed / failed / skipped / expected-failure (listed in
expected.json and failing, as listed) / unexpected-success (listed but
passing: update expected.json). The exit status is 0 only when nothing
failed and nothing passed unexpectedly. --markdown prints the docs table of
expected.json instead of running anything.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gbconformance  # noqa: E402


def markdown() -> str:
    """The table of docs/conformance.md, from expected.json."""
    with open(gbconformance.EXPECTED_FILE) as f:
        tests = json.load(f)["tests"]
    lines = ["| test | Python | kind | cause | reason |", "|---|---|---|---|---|"]
    for test_id in sorted(tests):
        e = tests[test_id]
        versions = ", ".join(e["versions"]) if e.get("versions") else "all"
        lines.append(f"| `{test_id}` | {versions} | {e['kind']} | {e.get('cause', '')} | {e['reason']} |")
    return "\n".join(lines) + "\n"


class CountingResult(unittest.TextTestResult):
    """Counts outcomes per test class."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.per_class = collections.defaultdict(collections.Counter)

    def _count(self, test, outcome):
        self.per_class[type(test).__name__][outcome] += 1

    def addSuccess(self, test):
        super().addSuccess(test)
        self._count(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._count(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        self._count(test, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._count(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._count(test, "expected-failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._count(test, "unexpected-success")


COLUMNS = ["passed", "failed", "skipped", "expected-failure", "unexpected-success"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-k", dest="pattern", help="only tests whose id contains this")
    ap.add_argument("--start-method", default=gbconformance.START_METHOD)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    classes = gbconformance.build(args.start_method)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for cls in classes.values():
        for test in loader.loadTestsFromTestCase(cls):
            if args.pattern is None or args.pattern in test.id():
                suite.addTest(test)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gbconf") as cwd:
        old = os.getcwd()
        os.chdir(cwd)  # test_mmap and test_fd_transfer write TESTFN in the current directory
        try:
            runner = unittest.TextTestRunner(verbosity=2 if args.verbose else 1, resultclass=CountingResult,
                                             stream=sys.stderr)
            result = runner.run(suite)
        finally:
            os.chdir(old)
    elapsed = time.monotonic() - start
    width = max([len(c) for c in classes] + [5])
    print(f"\nconformance on Python {gobridge_version()} ({args.start_method}), {elapsed:.1f} s")
    print(f"{'class':<{width}} " + " ".join(f"{c:>18}" for c in COLUMNS))
    total = collections.Counter()
    for name in classes:
        counts = result.per_class.get(name, collections.Counter())
        total.update(counts)
        print(f"{name:<{width}} " + " ".join(f"{counts[c]:>18}" for c in COLUMNS))
    print(f"{'total':<{width}} " + " ".join(f"{total[c]:>18}" for c in COLUMNS))
    return 0 if result.wasSuccessful() else 1


def gobridge_version() -> str:
    return "%d.%d.%d" % sys.version_info[:3]


if __name__ == "__main__":
    sys.exit(main())
