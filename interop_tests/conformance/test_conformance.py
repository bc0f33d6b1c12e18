"""CPython's own test classes against gobridge, for pytest (see gbconformance.py).

pytest collects the unittest classes below; those listed in expected.json are
expectedFailure (strict: an unexpected success fails the run).
"""
import os

import pytest

import gbconformance

globals().update(gbconformance.build(module=__name__))


@pytest.fixture(autouse=True)
def _private_cwd(tmp_path, monkeypatch):
    """test_mmap and test_fd_transfer write TESTFN into the current directory."""
    monkeypatch.chdir(tmp_path)
