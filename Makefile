# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test install install-dev clean bench

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(DEVSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEVSTAMP)

## Code the bundled sample transcripts, write data/coded/, matrices and figures.
run: $(STAMP)
	$(VENV)/bin/qcode run

## Install dev extras and run the full test suite.
test: $(DEVSTAMP)
	$(PY) -m pytest -q

bench: $(DEVSTAMP)
	$(PY) benchmarks/run_benchmarks.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
