# gobridge: `make demo` and `make test` are the two commands a fresh machine needs.
SHELL      := /bin/bash
PYTHON3    ?= python3
VENV       := .venv
PY         := $(CURDIR)/$(VENV)/bin/python
GO         ?= go
BIN        := $(CURDIR)/bin
GOBRIDGE   := $(BIN)/gobridge
PY_SRCS    := $(shell find python -name '*.py' -o -name 'pyproject.toml' -o -name 'py.typed' | grep -v -e build/ -e egg-info)
GO_SRCS    := $(shell find . -name '*.go' -not -path './.venv/*') $(wildcard internal/bench/python/*.py) go.mod go.sum  # the bench's Python roles are embedded
FUZZTIME   ?= 300000x

export GOBRIDGE_PYTHON := $(PY)
export GOBRIDGE_BIN    := $(GOBRIDGE)

.PHONY: all venv build demo test test-go test-race test-py test-matrix test-fuzz vet typecheck leftovers bench stress clean

all: build

# The Python package is installed the way a user installs it (pip install ./python),
# re-installed whenever its sources change.
$(VENV)/.installed: $(PY_SRCS) Makefile
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet pytest mypy numpy wheel setuptools  # numpy: only tests use it (gobridge never imports it); wheel, setuptools: test_packaging builds one offline (3.12+ venvs have no setuptools)
	rm -rf python/build python/*.egg-info  # a stale build/lib would install modules that are gone
	$(PY) -m pip install --quiet --force-reinstall --no-deps ./python
	$(PY) -m pip install --quiet ./python
	touch $@

venv: $(VENV)/.installed

$(GOBRIDGE): $(GO_SRCS)
	$(GO) build -o $(GOBRIDGE) ./cmd/gobridge

build: $(GOBRIDGE)

demo: venv build
	$(PY) interop_tests/demo.py $(GOBRIDGE)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

typecheck: venv
	$(PY) -m mypy --strict python/gobridge python/typed_usage.py internal/bench/python

GO_PKGS ?= ./...
test-go: venv build
	$(GO) test -count=1 -timeout 300s $(GO_PKGS)

# The packages with goroutines, locks and shared memory, under the race detector.
RACE_PKGS = ./bridge/... ./internal/...
test-race: venv build
	$(GO) test -race -count=1 -timeout 300s $(RACE_PKGS)

test-fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

test-py: venv build
	$(PY) -m pytest -q python/tests interop_tests

# Every other supported CPython the machine has (pyenv's included): its own
# venv in .venvs/, then mypy, pytest and the Go interop tests against it.
PY_VERSIONS ?= 3.10 3.11 3.12 3.13
test-matrix: venv build
	MAIN_PYTHON=$(PY) interop_tests/matrix.sh $(PY_VERSIONS)

# Nothing the suite made may survive it.
leftovers:
	@$(PY) interop_tests/leftovers.py check

# Each run gets a private TMPDIR (sockets, FIFOs) and a /dev/shm name prefix of
# its own, so that two clones can run `make test` side by side and the leftover
# check judges only what this run made.
test: vet typecheck
	@run=$$(mktemp -d /tmp/gbrun-XXXXXX) && \
	export TMPDIR=$$run GOBRIDGE_TEST_PREFIX=gbt$${run##*-} && \
	echo "test run: TMPDIR=$$TMPDIR GOBRIDGE_TEST_PREFIX=$$GOBRIDGE_TEST_PREFIX" && \
	$(PY) interop_tests/leftovers.py snapshot && \
	$(MAKE) test-go GO_PKGS="$$($(GO) list ./... | grep -v -e /bridge -e /internal/ | xargs)" && \
	$(MAKE) test-race test-fuzz test-py test-matrix leftovers; \
	rc=$$?; rm -rf "$$run"; exit $$rc

bench: venv build
	$(GOBRIDGE) bench --python $(PY)

stress: venv build
	GOBRIDGE_STRESS=1 $(GO) test -count=1 -timeout 3600s -run Stress ./...

clean:
	rm -rf $(BIN) $(VENV) .venvs build python/build python/*.egg-info
