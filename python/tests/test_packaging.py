"""The wheel built from python/ holds the library and nothing else.

The benchmarks' Python roles live in internal/bench/python (embedded in the
gobridge binary); none of them may come back into the package users install.
"""
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata

PYTHON_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


def _library_only(names):
    """The names of names that are not the library's own files."""
    return [n for n in names
            if "bench" in n.lower() or n.split("/", 1)[0] not in ("gobridge", "gobridge-0.1.0.dist-info")]


def test_wheel_has_only_the_library(tmp_path):
    # Built from a copy, so that setuptools' build/ and egg-info (possibly
    # stale, from an older tree) neither leak in nor get written to the source.
    src = tmp_path / "src"
    shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", "tests"))
    out = tmp_path / "wheel"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", str(src), "-w", str(out)],
        capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    wheels = list(out.glob("gobridge-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as z:
        names = z.namelist()
    assert "gobridge/__init__.py" in names and "gobridge/py.typed" in names, names
    assert _library_only(names) == [], names


def test_installed_package_has_no_bench_module():
    files = metadata.files("gobridge") or []
    names = [str(f) for f in files]
    assert any(n.endswith("gobridge/__init__.py") for n in names), names
    assert [n for n in names if "bench" in n.lower()] == []
    import gobridge
    pkg = os.path.dirname(gobridge.__file__)
    assert [n for n in os.listdir(pkg) if "bench" in n.lower()] == []
