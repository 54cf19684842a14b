# The two commands of the README: `make serve` runs Corral, `make test` checks it;
# `make bench` measures it.
# Both create the virtual environment and install into it when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# the bench extras (matplotlib) on top, so that `make test` and CI never need them
BENCH_STAMP := $(VENV)/.installed-bench-$(shell cksum pyproject.toml | cut -d' ' -f1)

# the browser the page tests drive: Debian's, installed by `make test` when missing
CHROMIUM := /usr/lib/chromium/chromium

.PHONY: serve test lint install bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/corral serve --local-worker $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# needs root (CI runs as root); without the browser the run fails, it does not skip
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: lint $(CHROMIUM)
	$(BIN)/pytest $(PYTEST_ARGS)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# Measure and write docs/benchmarks.md and its plots; ARGS="--quick" for a run under two
# minutes.
bench: $(BENCH_STAMP)
	$(BIN)/python -m tests.bench.run $(ARGS)
