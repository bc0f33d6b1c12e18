#!/usr/bin/env bash
# The Python matrix of `make test`: every supported CPython (3.10-3.13) the
# machine has gets its own venv with gobridge installed the way a user installs
# it, then mypy --strict, the pytest suites and the Go interop tests against
# it. The main run (`make test-py`, the project's .venv) already covers its own
# interpreter's version, so that version is not run twice. A version the
# machine lacks is reported and skipped, not failed.
#
# usage: interop_tests/matrix.sh VERSION...   (from the repository root)
# env:   MAIN_PYTHON  the main run's interpreter (its version is skipped)
#        GOBRIDGE_BIN the built gobridge command
set -uo pipefail

root=$(pwd)
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
main_version=$("${MAIN_PYTHON:-python3}" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)

# find_python VERSION prints an interpreter of that version that runs, or nothing.
find_python() {
	local v=$1 c
	for c in "python$v" "/usr/bin/python$v" "/usr/local/bin/python$v" \
		$(ls -d "$pyenv_root"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V -r); do
		# pyenv's shims exist for versions that are not selected and then refuse to run.
		if "$c" -c 'import sys' >/dev/null 2>&1; then
			"$c" -c 'import sys; print(sys.executable)'
			return
		fi
	done
}

failed=()
ran=()
for v in "$@"; do
	if [[ "$v" == "$main_version" ]]; then
		echo "matrix: python$v is the main run's interpreter; covered there"
		continue
	fi
	py=$(find_python "$v")
	if [[ -z "$py" ]]; then
		echo "matrix: python$v not found on this machine; skipped"
		continue
	fi
	venv=$root/.venvs/$v
	echo "matrix: python$v ($py) in .venvs/$v"
	if [[ ! -x $venv/bin/python ]]; then
		"$py" -m venv "$venv" && "$venv/bin/python" -m pip install --quiet --upgrade pip ||
			{ failed+=("$v (venv)"); continue; }
	fi
	# The test tools, every run (a no-op once satisfied), so a venv made by
	# an older Makefile gets what the suite needs now.
	"$venv/bin/python" -m pip install --quiet pytest mypy numpy wheel setuptools || { failed+=("$v (test tools)"); continue; }
	rm -rf python/build python/*.egg-info # a stale build/lib would install modules that are gone
	# Re-installed each run, so the matrix never tests a stale copy.
	"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps ./python &&
		"$venv/bin/python" -m pip install --quiet ./python ||
		{ failed+=("$v (install)"); continue; }
	ok=1
	"$venv/bin/python" -m mypy --strict python/gobridge python/typed_usage.py || ok=0
	"$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests interop_tests || ok=0
	GOBRIDGE_PYTHON=$venv/bin/python go test -count=1 -timeout 300s ./interop_tests/ || ok=0
	if ((ok)); then ran+=("$v"); else failed+=("$v"); fi
done

echo "matrix: passed on ${ran[*]:-none}${main_version:+ (and $main_version in the main run)}"
if ((${#failed[@]})); then
	echo "matrix: FAILED on ${failed[*]}"
	exit 1
fi
