# The two commands of the README: `make serve` runs Corral, `make test` checks it;
# `make bench` measures it.
# Both create the virtual environment and install into it when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# the bench extras (matplotlib) on top, so that `make test` and CI never need them
BENCH_STAMP := $(VENV)/.installed-bench-$(shell cksum pyproject.toml | cut -d' ' -f1)

# Corral's page (api/dashboard): its npm libraries, installed from the lock file and their
# ES modules copied into the folder the server serves (no bundler: see docs/dashboard.md)
DASHBOARD := api/dashboard
VENDOR := $(DASHBOARD)/static/vendor/.installed

# the browser the page tests drive: Debian's, installed by `make test` when missing
CHROMIUM := /usr/lib/chromium/chromium

# AWE's own Go worker (0.9.68), built from the source shared beside the repo, so the AWE
# face is tested against the real client; cached in .cache (git ignores it), built once
AWE_WORKER_SRC := ../shared/reference/awe-worker/awe-worker-0.9.68-src-trimmed.tgz
AWE_WORKER := .cache/awe-worker/awe-worker

.PHONY: serve test lint install bench awe-worker

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

$(VENDOR): $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json $(DASHBOARD)/vendor.mjs
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error && node vendor.mjs
	touch $@

install: $(STAMP) $(VENDOR)

serve: $(STAMP) $(VENDOR)
	$(BIN)/corral serve --local-worker $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# needs root (CI runs as root); without the browser the run fails, it does not skip
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# Debian's Go 1.19 and the one Go library the worker needs that its tarball lacks; apt-get
# only as root and only when missing (like the browser). No module proxy: GOPATH mode.
$(AWE_WORKER): | $(AWE_WORKER_SRC)
	@if ! command -v go >/dev/null || ! test -d /usr/share/gocode/src/github.com/robertkrimen/otto; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      golang golang-github-robertkrimen-otto-dev; \
	  else echo "awe-worker: install golang and golang-github-robertkrimen-otto-dev" >&2; exit 1; fi; \
	fi
	rm -rf .cache/awe-worker/src && mkdir -p .cache/awe-worker/src
	tar xzf $(AWE_WORKER_SRC) -C .cache/awe-worker/src
	# -o names a file outside the tree: `-o awe-worker` there is the package's folder
	cd .cache/awe-worker/src/gopath/src/github.com/MG-RAST/AWE && \
	  GOPATH=$$PWD/../../../..:/usr/share/gocode GO111MODULE=off CGO_ENABLED=0 GOFLAGS= \
	  GOCACHE=$(abspath .cache/awe-worker/src/gocache) \
	  go build -o $(abspath $@).tmp ./awe-worker/
	rm -rf .cache/awe-worker/src
	mv $@.tmp $@
	$@ --version

awe-worker: $(AWE_WORKER)

# the AWE tests run the real worker: they fail, never skip, without it
test: lint $(VENDOR) $(CHROMIUM) $(AWE_WORKER)
	CORRAL_AWE_WORKER=$(abspath $(AWE_WORKER)) $(BIN)/pytest $(PYTEST_ARGS)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# Measure and write docs/benchmarks.md and its plots; ARGS="--quick" for a run under two
# minutes.
bench: $(BENCH_STAMP)
	$(BIN)/python -m tests.bench.run $(ARGS)
