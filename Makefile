SHELL := /bin/bash
# Two commands matter: `make demo` runs the example pipeline offline, `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test]' 2> >(grep -v 'is ignored: it is neither' >&2)
	touch $@

demo: $(VENV)/.installed
	$(PY) -m distil_dagster.examples.demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check distil_dagster tests benchmarks
	$(VENV)/bin/ruff format --check distil_dagster tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q

test-fast: lint
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed
	$(PY) benchmarks/inline_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
