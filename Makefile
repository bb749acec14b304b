# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test test-fast lint bench clean

# The development groups need pip 25.1 or newer (dependency groups, PEP 735).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip>=25.1'
	$(PY) -m pip install --quiet -e . --group dev
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(PY) -m llm_toll.demo

# Everything: the linters first (seconds), then the whole suite, end-to-end tests included.
test: lint
	$(PY) -m pytest -q tests

# Without the end-to-end stack, PostgreSQL, the browser and the file-system faults: needs
# neither root nor Go.
test-fast: lint
	$(PY) -m pytest -q -m "not e2e and not postgres and not root and not browser" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build src/*.egg-info
